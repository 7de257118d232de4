//! The program's entry: `main` runs through the runtime's `loco_main`
//! (ABI.md, "main").

use llvm_sys::{LLVMLinkage, LLVMTypeKind};

use crate::ir::{Ir, Type, Value};

/// What the program's own `main` is renamed to.
pub const USER_MAIN: &str = "__loco_user_main";

/// The adapter built for a `main` that does not return `int`.
const USER_MAIN_INT: &str = "__loco_user_main.int";

/// The runtime's entry: `int loco_main(int (*user_main)(int, char **,
/// char **), int argc, char **argv, char **envp)`.
const LOCO_MAIN: &str = "loco_main";

/// Whether `main`'s parameters are a prefix of `(int, char **, char **)`,
/// so that calling it with all three is sound (the x86-64 ABI passes them
/// in registers it ignores).
fn takes_argc_argv_envp(ir: &Ir, params: &[Type]) -> bool {
    let want = [
        LLVMTypeKind::LLVMIntegerTypeKind,
        LLVMTypeKind::LLVMPointerTypeKind,
        LLVMTypeKind::LLVMPointerTypeKind,
    ];
    params.len() <= want.len()
        && params.iter().zip(want).all(|(&t, kind)| ir.kind(t) == kind)
        && params.first().is_none_or(|&t| ir.int_width(t) == 32)
}

/// If the module defines the program's `main`, renames it `USER_MAIN` and
/// defines a new `main(argc, argv, envp)` returning
/// `loco_main(USER_MAIN, argc, argv, envp)`. Returns whether it did, or an
/// error message for a `main` it cannot call.
pub fn wrap_main(ir: &Ir) -> Result<bool, String> {
    let Some(main) = ir.function("main") else {
        return Ok(false);
    };
    if ir.is_declaration(main) || ir.linkage(main) != LLVMLinkage::LLVMExternalLinkage {
        return Ok(false);
    }
    let main_type = ir.function_type(main);
    let params = ir.param_types(main_type);
    if ir.is_var_arg(main_type) || !takes_argc_argv_envp(ir, &params) {
        return Err(
            "LOCO does not support this signature of main: \
                    use int main(void), int main(int, char **) or int main(int, char **, char **)"
                .into(),
        );
    }
    let returns = ir.return_type(main_type);
    let returns_int = ir.kind(returns) == LLVMTypeKind::LLVMIntegerTypeKind;
    let returns_void = ir.kind(returns) == LLVMTypeKind::LLVMVoidTypeKind;
    if !(returns_void || returns_int && ir.int_width(returns) == 32) {
        return Err("LOCO does not support a main that returns neither int nor void".into());
    }
    ir.rename(main, USER_MAIN);
    ir.clear_location();
    let entry_params = [ir.i32(), ir.ptr(), ir.ptr()];
    let entry_type = ir.function_type_of(ir.i32(), &entry_params);
    let user_main = if returns_void {
        void_main_adapter(ir, main, params.len(), entry_type)
    } else {
        main
    };
    let wrapper = ir.add_function("main", entry_type);
    ir.copy_codegen_attributes(main, wrapper);
    ir.position_at_end(ir.append_block(wrapper, c"entry"));
    let loco_main = ir.declare(
        LOCO_MAIN,
        ir.i32(),
        &[ir.ptr(), ir.i32(), ir.ptr(), ir.ptr()],
    );
    let mut args = vec![user_main];
    args.extend(ir.params(wrapper));
    let status = ir.call(loco_main, &args);
    ir.ret(Some(status));
    Ok(true)
}

/// `int USER_MAIN_INT(int argc, char **argv, char **envp)`: calls a `void
/// main` with the arguments it takes and returns 0 (what a C99 `main`
/// returns when it reaches its end).
fn void_main_adapter(ir: &Ir, main: Value, takes: usize, entry_type: Type) -> Value {
    let adapter = ir.add_function(USER_MAIN_INT, entry_type);
    ir.set_linkage(adapter, LLVMLinkage::LLVMInternalLinkage);
    ir.copy_codegen_attributes(main, adapter);
    ir.position_at_end(ir.append_block(adapter, c"entry"));
    let args = ir.params(adapter);
    let main_type = ir.function_type(main);
    ir.call((main, main_type), &args[..takes]);
    ir.ret(Some(ir.const_i32(0)));
    adapter
}
