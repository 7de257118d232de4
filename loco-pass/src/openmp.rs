//! OpenMP constructs the LOCO runtime does not implement: using one is a
//! compile error, never a program that runs and computes something else.

use llvm_sys::LLVMOpcode;

use crate::copyprivate;
use crate::ir::{Ir, Value};

/// The OpenMP runtime entry points clang emits for the constructs, and the
/// construct each stands for. `__tgt_*` (target offload) is matched by
/// prefix in `construct`.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("__kmpc_omp_target_task_alloc", "target offload"),
    ("__kmpc_taskred_init", "task reductions"),
    ("__kmpc_taskred_modifier_init", "task reductions"),
    ("__kmpc_task_reduction_init", "task reductions"),
    ("__kmpc_task_reduction_modifier_init", "task reductions"),
    ("__kmpc_task_reduction_get_th_data", "task reductions"),
    ("__kmpc_task_allow_completion_event", "task detach"),
    ("__kmpc_doacross_init", "ordered depend (doacross loops)"),
    ("__kmpc_fork_teams", "teams"),
];

/// The unsupported construct a call to `function` stands for, if any.
fn construct(function: &str) -> Option<&'static str> {
    if function.starts_with("__tgt_") {
        return Some("target offload");
    }
    UNSUPPORTED
        .iter()
        .find(|(name, _)| *name == function)
        .map(|&(_, what)| what)
}

/// The thread-local global a fork argument points to, if it does: what
/// clang passes for `copyin(x)` (the forking thread's copy, which every
/// team thread then copies into its own).
fn thread_local_source(ir: &Ir, arg: Value) -> Option<Value> {
    let mut v = ir.strip_pointer_offsets(arg);
    if let Some(wrapped) = thread_wrapper_variable(ir, v) {
        return Some(wrapped);
    }
    if let Some(sources) = ir.pointer_sources(v) {
        // llvm.threadlocal.address(@x): its one source is the variable.
        if sources.len() == 1 {
            v = ir.strip_pointer_offsets(sources[0]);
        }
    }
    (ir.is_global_variable(v) && ir.is_thread_local(v)).then_some(v)
}

/// A call to a thread-local wrapper (`_ZTW...`, what clang calls at -O0 to
/// reach some threadprivate variables): the variable whose address it returns.
fn thread_wrapper_variable(ir: &Ir, v: Value) -> Option<Value> {
    if ir.opcode_if_instruction(v) != Some(LLVMOpcode::LLVMCall) {
        return None;
    }
    let callee = ir.direct_callee(v)?;
    if !ir.name(callee).starts_with("_ZTW") || ir.is_declaration(callee) {
        return None;
    }
    ir.blocks(callee)
        .into_iter()
        .flat_map(|b| ir.instructions(b))
        .filter(|&i| ir.opcode(i) == LLVMOpcode::LLVMCall)
        .find_map(|i| {
            let source = ir.pointer_sources(i)?;
            let g = ir.strip_pointer_offsets(*source.first()?);
            (ir.is_global_variable(g) && ir.is_thread_local(g)).then_some(g)
        })
}

/// `copyin`: the forking thread's threadprivate copy, passed by address,
/// lives in its thread-local storage, which other nodes cannot read. Each
/// such argument is replaced by a copy made just before the fork in a
/// stack slot of the forking function; a region that reaches every node is
/// forked by node 0's initial thread, whose stack is in the shared region
/// (loco_main), so the copy is readable everywhere. Returns how many.
pub fn copyin_through_the_stack(ir: &Ir) -> usize {
    let mut rewritten = 0;
    for f in ir.functions() {
        if ir.is_declaration(f) {
            continue;
        }
        for b in ir.blocks(f) {
            for i in ir.instructions(b) {
                if ir.opcode(i) != LLVMOpcode::LLVMCall {
                    continue;
                }
                let Some(callee) = ir.direct_callee(i) else {
                    continue;
                };
                if ir.name(callee) != "__kmpc_fork_call" {
                    continue;
                }
                // (loc, argc, microtask, captured...)
                for (k, arg) in ir.call_args(i).into_iter().enumerate().skip(3) {
                    let Some(global) = thread_local_source(ir, arg) else {
                        continue;
                    };
                    let t = ir.value_type(global);
                    let slot = ir.alloca_at_entry(f, t);
                    ir.position_before(i);
                    ir.memcpy(slot, arg, ir.alloc_size(t), 1);
                    ir.set_operand(i, k as u32, slot);
                    rewritten += 1;
                }
            }
        }
    }
    rewritten
}

/// Where instruction `i` is, for a diagnostic: `file:line`, or the file
/// and function without debug info.
fn place(ir: &Ir, i: Value) -> String {
    ir.source_location(i).unwrap_or_else(|| {
        let function = ir.name(ir.function_of(i));
        format!("{}: in {function}", ir.source_file_name())
    })
}

/// One error per call to an unsupported entry point, in the module's order,
/// without repeats (a task is two calls on one line).
///
/// Calls to `__kmpc_copyprivate` are rewritten here (copyprivate.rs), first
/// of everything the pass does, since whether one can be is found only by
/// trying: each that cannot is an error too.
pub fn unsupported(ir: &Ir) -> Vec<String> {
    let mut errors = Vec::new();
    let mut copy_functions = copyprivate::Analyses::default();
    for f in ir.functions() {
        for b in ir.blocks(f) {
            for i in ir.instructions(b) {
                if !matches!(
                    ir.opcode(i),
                    LLVMOpcode::LLVMCall | LLVMOpcode::LLVMInvoke | LLVMOpcode::LLVMCallBr
                ) {
                    continue;
                }
                let Some(callee) = ir.direct_callee(i) else {
                    continue;
                };
                let name = ir.name(callee);
                let why = if name == copyprivate::ENTRY {
                    match copyprivate::rewrite(ir, i, &mut copy_functions) {
                        Ok(()) => continue,
                        Err(why) => why,
                    }
                } else {
                    let Some(what) = construct(&name) else {
                        continue;
                    };
                    format!("LOCO does not support OpenMP {what} yet")
                };
                let error = format!("{}: error: {why}", place(ir, i));
                if !errors.contains(&error) {
                    errors.push(error);
                }
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::construct;

    #[test]
    fn constructs_by_entry_point() {
        assert_eq!(construct("__kmpc_omp_task_alloc"), None);
        assert_eq!(construct("__kmpc_taskloop_5"), None);
        assert_eq!(construct("__kmpc_taskred_init"), Some("task reductions"));
        assert_eq!(construct("__kmpc_copyprivate"), None);
        assert_eq!(construct("__kmpc_fork_teams"), Some("teams"));
        assert_eq!(construct("__tgt_target_kernel"), Some("target offload"));
        assert_eq!(
            construct("__kmpc_omp_target_task_alloc"),
            Some("target offload")
        );
        assert_eq!(construct("__kmpc_fork_call"), None);
        assert_eq!(construct("__kmpc_omp_taskwait"), None);
    }
}
