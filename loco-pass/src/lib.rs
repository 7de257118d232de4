//! LOCO's LLVM pass plugin (LLVM 16), and the `loco-cc` / `loco-cxx`
//! compiler drivers that load it.
//!
//! The pass rewrites a module so that its heap and its writes go through
//! LOCO; the contract with the runtime (libloco.so) is `ABI.md` beside this
//! crate. It runs as `-passes=loco` under `opt-16 -load-pass-plugin=…`, and
//! under `clang-16 -fpass-plugin=…` at the end of the optimisation pipeline
//! (at the start of it at -O0, where the end is never reached). A marker in
//! the module keeps it from running twice.

pub mod driver;
mod instrument;
mod ir;

use llvm_plugin::inkwell::module::Module;
use llvm_plugin::{
    LlvmModulePass, ModuleAnalysisManager, OptimizationLevel, PassBuilder, PipelineParsing,
    PreservedAnalyses,
};

pub use instrument::{Summary, REGION_BASE, REGION_SPAN};

struct LocoPass;

impl LlvmModulePass for LocoPass {
    fn run_pass(&self, module: &mut Module<'_>, _: &ModuleAnalysisManager) -> PreservedAnalyses {
        // SAFETY: the module handle comes from LLVM's pass manager and stays
        // live for the whole run, which is as long as `ir` exists.
        let ir = unsafe { ir::Ir::new(module.as_mut_ptr()) };
        let summary = instrument::run(&ir);
        if std::env::var_os("LOCO_PASS_VERBOSE").is_some() {
            eprintln!("loco-pass: {summary:?}");
        }
        PreservedAnalyses::None
    }
}

#[llvm_plugin::plugin(name = "loco", version = "0.1")]
fn plugin_registrar(builder: &mut PassBuilder) {
    builder.add_module_pipeline_parsing_callback(|name, manager| {
        if name == "loco" {
            manager.add_pass(LocoPass);
            PipelineParsing::Parsed
        } else {
            PipelineParsing::NotParsed
        }
    });
    builder.add_optimizer_last_ep_callback(|manager, _| manager.add_pass(LocoPass));
    builder.add_pipeline_start_ep_callback(|manager, level| {
        if matches!(level, OptimizationLevel::O0) {
            manager.add_pass(LocoPass);
        }
    });
}
