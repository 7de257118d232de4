//! The program's globals and `main`'s stack, moved into the shared region.
//!
//! loco-cc links every program with its writable globals in one segment at
//! the start of the shared window (loco-pass/ABI.md, "Shared globals"). At
//! start-up, before the shared region is mapped, the runtime copies that
//! segment out and unmaps it; the region is then mapped over it with a
//! prefix outside the heap, and node 0 writes the copy back. From then on
//! every node sees the globals at the same addresses, with node 0's
//! initial values. The globals' pages are placed by the placement policy
//! like the heap's (under first-touch the initialised ones are node 0's,
//! which writes them first; a zero-filled array lives where it is first
//! used); main's stack, after them, is always node 0's.
//!
//! Node 0 also runs `main` on a stack inside that prefix (see `loco_main`),
//! so that pointers to `main`'s locals, which parallel regions capture by
//! reference, mean the same on every node.

use std::sync::OnceLock;

use crate::runtime::ABI_REGION_BASE;

const PAGE: u64 = 4096;
/// The window compiled code takes for shared memory (loco-pass/ABI.md).
const WINDOW: u64 = 1 << 44;

/// The executable's shared-globals segment, copied out of the way.
pub struct Globals {
    /// Bytes of the segment (data and zero-filled part), page-rounded.
    pub span: u64,
    /// The initialised part, as node 0's image had it.
    pub image: Vec<u8>,
}

/// Where the runtime put `main`'s stack (inside the node-0 prefix).
#[derive(Clone, Copy, Debug)]
pub struct MainStack {
    pub base: u64,
    pub size: u64,
}

static MAIN_STACK: OnceLock<MainStack> = OnceLock::new();

/// The loaded executable's segment inside the shared window, if it has one:
/// (start, file size, memory size).
fn find_segment() -> Result<Option<(u64, u64, u64)>, String> {
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave us.
    let (phdr, phnum) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR),
            libc::getauxval(libc::AT_PHNUM),
        )
    };
    if phdr == 0 || phnum == 0 {
        return Ok(None);
    }
    // SAFETY: AT_PHDR/AT_PHNUM describe the executable's program headers,
    // mapped for the life of the process.
    let headers =
        unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum as usize) };
    // A position-independent executable is loaded at a bias; the segment
    // addresses in its headers are relative to it.
    let bias = headers
        .iter()
        .find(|h| h.p_type == libc::PT_PHDR)
        .map_or(0, |h| phdr.wrapping_sub(h.p_vaddr));
    let mut found = None;
    for h in headers.iter().filter(|h| h.p_type == libc::PT_LOAD) {
        let start = h.p_vaddr.wrapping_add(bias);
        if (ABI_REGION_BASE..ABI_REGION_BASE + WINDOW).contains(&start) {
            if found.is_some() {
                return Err("the executable has two segments in the shared window".into());
            }
            if start != ABI_REGION_BASE {
                return Err(format!(
                    "the executable's shared globals start at {start:#x}, not at {ABI_REGION_BASE:#x} \
                     (was it linked by loco-cc?)"
                ));
            }
            found = Some((start, h.p_filesz, h.p_memsz));
        }
    }
    Ok(found)
}

/// Copies the shared-globals segment out and unmaps it, so the shared
/// region can be mapped there. `None` when the program has no such segment
/// (not linked by loco-cc, or a shared library build).
pub fn take_globals() -> Result<Option<Globals>, String> {
    let Some((start, filesz, memsz)) = find_segment()? else {
        return Ok(None);
    };
    let span = memsz.div_ceil(PAGE) * PAGE;
    let mut image = vec![0u8; filesz as usize];
    // SAFETY: the segment is mapped readable and writable by the loader for
    // at least `memsz >= filesz` bytes from `start`.
    unsafe {
        std::ptr::copy_nonoverlapping(start as *const u8, image.as_mut_ptr(), filesz as usize)
    };
    // SAFETY: unmaps only the executable's own segment, which nothing but
    // the globals (copied above, not yet used by any code) lives in.
    if unsafe { libc::munmap(start as *mut libc::c_void, span as usize) } != 0 {
        return Err(format!(
            "cannot unmap the executable's globals segment: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(Some(Globals { span, image }))
}

/// The size of the stack `main` gets: LOCO_STACK_SIZE, else the soft
/// RLIMIT_STACK (8 MiB on most systems; 64 MiB when unlimited).
pub fn main_stack_size() -> Result<u64, String> {
    if let Ok(text) = std::env::var("LOCO_STACK_SIZE") {
        let size = loco_cluster::parse_size(&text).map_err(|e| format!("LOCO_STACK_SIZE: {e}"))?;
        return Ok(size.max(64 * 1024).div_ceil(PAGE) * PAGE);
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        libc::RLIM_INFINITY
    };
    let size = if soft == libc::RLIM_INFINITY || soft > 1 << 30 {
        64 << 20
    } else {
        soft.max(1 << 20)
    };
    Ok(size.div_ceil(PAGE) * PAGE)
}

/// Bytes of the node-0 prefix: the globals, a guard page, the stack.
pub fn prefix_size(globals: Option<&Globals>, stack: u64) -> u64 {
    globals.map_or(0, |g| g.span) + PAGE + stack
}

/// On node 0, once the region is mapped: writes the globals' initial image
/// back and sets up the main stack (with a guard page below it).
pub fn install(globals: Option<&Globals>, stack: u64) -> Result<(), String> {
    let span = globals.map_or(0, |g| g.span);
    if let Some(g) = globals {
        // SAFETY: the region is mapped at ABI_REGION_BASE and the prefix
        // (which holds the globals) is this node's home memory; no other
        // code uses it yet.
        unsafe {
            std::ptr::copy_nonoverlapping(
                g.image.as_ptr(),
                ABI_REGION_BASE as *mut u8,
                g.image.len(),
            )
        };
    }
    let guard = ABI_REGION_BASE + span;
    // SAFETY: the guard page lies inside the prefix, which nothing else
    // uses; making it inaccessible turns a stack overflow into a crash
    // instead of silently overwriting the globals.
    if unsafe { libc::mprotect(guard as *mut libc::c_void, PAGE as usize, libc::PROT_NONE) } != 0 {
        return Err(format!(
            "cannot protect main's stack guard page: {}",
            std::io::Error::last_os_error()
        ));
    }
    let _ = MAIN_STACK.set(MainStack {
        base: guard + PAGE,
        size: stack,
    });
    Ok(())
}

pub fn main_stack() -> Option<MainStack> {
    MAIN_STACK.get().copied()
}
