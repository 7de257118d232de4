//! Compiles cpp/marks.cc (what the pass needs of LLVM's C++ API: loops,
//! ScalarEvolution, SCEVExpander) against LLVM 16's headers. The plugin
//! already links libLLVM (through llvm-plugin), where its symbols live.

use std::path::PathBuf;
use std::process::Command;

/// `llvm-config --flag` of LLVM 16: `$LLVM_SYS_160_PREFIX/bin/llvm-config`
/// (where llvm-sys looks too), else `llvm-config-16`, else
/// /usr/lib/llvm-16/bin/llvm-config.
fn llvm_config(flag: &str) -> String {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(prefix) = std::env::var_os("LLVM_SYS_160_PREFIX") {
        candidates.push(PathBuf::from(prefix).join("bin/llvm-config"));
    }
    candidates.push("llvm-config-16".into());
    candidates.push("/usr/lib/llvm-16/bin/llvm-config".into());
    for c in &candidates {
        if let Ok(out) = Command::new(c).arg(flag).output() {
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
        }
    }
    panic!("llvm-config of LLVM 16 not found (tried {candidates:?}): install llvm-16-dev");
}

fn main() {
    println!("cargo:rerun-if-changed=cpp");
    println!("cargo:rerun-if-env-changed=LLVM_SYS_160_PREFIX");
    let include = llvm_config("--includedir");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("cpp/marks.cc")
        .flag("-std=c++17")
        .flag("-fno-exceptions")
        .define("__STDC_CONSTANT_MACROS", None)
        .define("__STDC_FORMAT_MACROS", None)
        .define("__STDC_LIMIT_MACROS", None)
        .warnings(true)
        .extra_warnings(false);
    // LLVM's headers are not ours to fix: their warnings are not shown.
    build.flag(format!("-isystem{include}"));
    if llvm_config("--has-rtti") != "YES" {
        build.flag("-fno-rtti");
    }
    build.compile("loco-pass-cpp");
}
