//! Shared globals: the module's writable global variables go to the
//! sections the link line (driver.rs) places in the shared window, and
//! every access to a global either uses its 64-bit absolute address, known
//! at link time (code compiled with `-fno-pic -mcmodel=medium`, what
//! loco-cc asks for unless told otherwise), or goes through the GOT
//! (ABI.md, "Shared globals").

use llvm_sys::LLVMLinkage;

use crate::ir::{Ir, Value};

/// Section of the shared globals with a non-zero initializer.
pub const DATA_SECTION: &str = "loco_data";

/// Section of the zero-initialised shared globals. LLVM 16 makes a section
/// whose name starts with `.llvm.linkonce.b.` SHT_NOBITS (so the zeros take
/// no room in the file), and GNU ld's default script does not claim that
/// name, so the driver's script can.
pub const BSS_SECTION: &str = ".llvm.linkonce.b.loco_bss";

/// Name prefixes of globals that stay where they are: LLVM's own
/// (`llvm.used`, ...), the runtime's, and OpenMP's critical-section locks.
const KEPT_PREFIXES: &[&str] = &["llvm.", "__loco", ".gomp_critical_user_"];

/// What `share` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shared {
    /// Definitions moved to the shared sections.
    pub definitions: usize,
    /// Declarations made reachable wherever they are (through the GOT, or
    /// by absolute address).
    pub declarations: usize,
}

/// 64-bit FNV-1a: stable across runs, compilers and platforms.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        for &b in part.as_bytes().iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The external name a module-local global gets: its own name, then
/// `.loco.` and 16 hex digits of a hash of the module and the name, so that
/// two translation units' `static int n;` stay two symbols.
pub fn exported_name(module_id: &str, source_file: &str, name: &str) -> String {
    format!(
        "{name}.loco.{:016x}",
        fnv1a(&[module_id, source_file, name])
    )
}

fn kept_by_name(name: &str) -> bool {
    KEPT_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn is_local(linkage: LLVMLinkage) -> bool {
    matches!(
        linkage,
        LLVMLinkage::LLVMInternalLinkage | LLVMLinkage::LLVMPrivateLinkage
    )
}

/// Whether a global variable definition belongs in the shared region.
fn shareable_definition(ir: &Ir, g: Value) -> bool {
    !ir.is_global_constant(g)
        && !ir.is_thread_local(g)
        && ir.address_space(g) == 0
        && !kept_by_name(&ir.name(g))
        && ir.section(g).is_none()
        && !matches!(
            ir.linkage(g),
            LLVMLinkage::LLVMAppendingLinkage | LLVMLinkage::LLVMAvailableExternallyLinkage
        )
        && ir.alloc_size(ir.value_type(g)) > 0
}

/// Whether a declaration must be reachable wherever it is: any that may be
/// a shared global of another translation unit. Constant declarations are
/// included: C++ declares `extern const T x;` constant even when its
/// definition is written by a dynamic initializer, so is not constant there
/// and is shared.
fn indirect_declaration(ir: &Ir, g: Value) -> bool {
    !ir.is_thread_local(g) && ir.address_space(g) == 0 && !kept_by_name(&ir.name(g))
}

/// Moves the shareable definitions to the shared sections and makes them,
/// and the declarations that may name one, reachable 64 TiB from the code:
/// external if they were module-local (a local symbol is always assumed
/// close to the code), default visibility, and either `dso_local` if the
/// code reaches data by absolute address, or not, so that it goes through
/// the GOT.
pub fn share(ir: &Ir) -> Shared {
    let mut shared = Shared::default();
    let absolute = ir.absolute_data();
    let module_id = ir.module_identifier();
    let source_file = ir.source_file_name();
    for g in ir.globals() {
        let name = ir.name(g);
        if ir.is_declaration(g) {
            if indirect_declaration(ir, g) {
                if absolute {
                    ir.set_dso_local(g);
                } else {
                    ir.recreate_global(g, &name, ir.linkage(g));
                }
                shared.declarations += 1;
            }
            continue;
        }
        if !shareable_definition(ir, g) {
            continue;
        }
        let (new_name, linkage) = match ir.linkage(g) {
            l if is_local(l) => (
                exported_name(&module_id, &source_file, &name),
                LLVMLinkage::LLVMExternalLinkage,
            ),
            // A common symbol cannot have a section; a weak one can, and
            // the linker still lets one definition win over the others.
            LLVMLinkage::LLVMCommonLinkage => (name, LLVMLinkage::LLVMWeakAnyLinkage),
            l => (name, l),
        };
        let zero = ir.initializer(g).is_some_and(|init| ir.is_null(init));
        let g = ir.recreate_global(g, &new_name, linkage);
        ir.set_section(g, if zero { BSS_SECTION } else { DATA_SECTION });
        if absolute {
            ir.set_dso_local(g);
        }
        shared.definitions += 1;
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::exported_name;

    #[test]
    fn exported_names_differ_by_module_and_name() {
        let a = exported_name("a.c", "a.c", "count");
        assert!(a.starts_with("count.loco."), "{a}");
        assert_eq!(a.len(), "count.loco.".len() + 16);
        assert_eq!(a, exported_name("a.c", "a.c", "count"));
        assert_ne!(a, exported_name("b.c", "b.c", "count"));
        assert_ne!(a, exported_name("a.c", "a.c", "counts"));
        assert_ne!(exported_name("ab", "c", "x"), exported_name("a", "bc", "x"));
    }
}
