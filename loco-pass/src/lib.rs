//! LOCO's LLVM pass plugin (LLVM 16), and the `loco-cc` / `loco-cxx`
//! compiler drivers that load it.
//!
//! The pass rewrites a module so that its heap and its writes go through
//! LOCO; `ABI.md` beside this crate is the contract with the runtime
//! (libloco.so). It runs as `-passes=loco` under
//! `opt-16 -load-pass-plugin=libloco_pass.so`, and under
//! `clang-16 -fpass-plugin=libloco_pass.so` at the end of the optimisation
//! pipeline (the optimizer-last extension point, which clang-16 runs at
//! every level, -O0 and the LTO pre-link pipelines included). A marker in
//! the module (named metadata `loco.instrumented`) keeps it from rewriting
//! a module twice.

mod copyprivate;
pub mod driver;
mod entry;
mod globals;
mod instrument;
mod ir;
mod openmp;
mod reduce;

use llvm_plugin::inkwell::module::Module;
use llvm_plugin::{
    LlvmModulePass, ModuleAnalysisManager, PassBuilder, PipelineParsing, PreservedAnalyses,
};

pub use globals::{BSS_SECTION, DATA_SECTION};
pub use instrument::{Summary, MARKER, REGION_BASE, REGION_SPAN};

struct LocoPass;

impl LlvmModulePass for LocoPass {
    fn run_pass(&self, module: &mut Module<'_>, _: &ModuleAnalysisManager) -> PreservedAnalyses {
        // SAFETY: the module comes from LLVM's pass manager, which keeps it
        // alive and hands it to no one else while this pass runs; `ir` is
        // dropped before returning.
        let ir = unsafe { ir::Ir::new(module.as_mut_ptr()) };
        let summary = instrument::run(&ir);
        if std::env::var_os("LOCO_PASS_VERBOSE").is_some_and(|v| v != "0") {
            eprintln!("loco-pass: {summary:?}");
        }
        if summary == Summary::default() {
            PreservedAnalyses::All
        } else {
            PreservedAnalyses::None
        }
    }
}

#[llvm_plugin::plugin(name = "loco", version = "0.1")]
fn plugin_registrar(builder: &mut PassBuilder) {
    // opt -passes=loco
    builder.add_module_pipeline_parsing_callback(|name, manager| {
        if name == "loco" {
            manager.add_pass(LocoPass);
            PipelineParsing::Parsed
        } else {
            PipelineParsing::NotParsed
        }
    });
    // clang -fpass-plugin: last, so that the instrumentation neither blocks
    // optimisations nor gets optimised away.
    builder.add_optimizer_last_ep_callback(|manager, _level| manager.add_pass(LocoPass));
}
