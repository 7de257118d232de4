//! The loco-cc / loco-cxx drivers: what they add to clang's command line,
//! their errors, and that clang runs the pass once at every -O level.
//!
//! The drivers are pointed at the plugin this `cargo test` built (in
//! target/<profile>/deps/; see tests/ir.rs) with LOCO_PASS_PLUGIN. Linking
//! against the real runtime, and running the result, is what
//! integration/programs.rs does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LOCO_CC: &str = env!("CARGO_BIN_EXE_loco-cc");
const LOCO_CXX: &str = env!("CARGO_BIN_EXE_loco-cxx");

fn plugin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let fresh = exe.parent().unwrap().join("libloco_pass.so");
    if fresh.is_file() {
        fresh
    } else {
        exe.parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("libloco_pass.so")
    }
}

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("loco-pass-driver-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn driver(exe: &str) -> Command {
    let mut cmd = Command::new(exe);
    cmd.env("LOCO_PASS_PLUGIN", plugin())
        .env_remove("LOCO_CLANG")
        .env_remove("LOCO_RUNTIME_DIR");
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PROGRAM: &str = r#"
#include <stdlib.h>
__attribute__((noinline)) void set(int *p, int v) { *p = v; }
int main(void) {
    int *p = malloc(sizeof *p);
    set(p, 3);
    int r = *p;
    free(p);
    return r;
}
"#;

#[test]
fn loco_version_names_what_it_found() {
    let out = driver(LOCO_CC).arg("--loco-version").output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("loco-cc "), "{stdout}");
    assert!(stdout.contains("clang:   /"), "{stdout}");
    assert!(stdout.contains("clang version 16"), "{stdout}");
    let plugin_line = format!("plugin:  {}", plugin().display());
    assert!(stdout.contains(&plugin_line), "{stdout}");
    assert!(stdout.contains("runtime: "), "{stdout}");

    let out = driver(LOCO_CXX).arg("--loco-version").output().unwrap();
    let (stdout, _) = text(&out);
    assert!(stdout.starts_with("loco-cxx "), "{stdout}");
    assert!(stdout.contains("clang++"), "{stdout}");
}

#[test]
fn instruments_once_at_every_optimisation_level() {
    let scratch = Scratch::new("levels");
    let src = scratch.file("prog.c", PROGRAM);
    for level in ["-O0", "-O1", "-O2", "-O3", "-Os", "-Oz"] {
        let out = driver(LOCO_CC)
            .args([level, "-g", "-S", "-emit-llvm", "-o", "-"])
            .arg(&src)
            .output()
            .unwrap();
        let (ir, stderr) = text(&out);
        assert!(out.status.success(), "{level}: {stderr}");
        assert!(stderr.is_empty(), "{level}: {stderr}");
        assert_eq!(ir.matches("!loco.instrumented = ").count(), 1, "{level}");
        assert!(ir.contains("@loco_malloc("), "{level}:\n{ir}");
        assert!(ir.contains("@loco_free("), "{level}:\n{ir}");
        assert!(!ir.contains("@malloc("), "{level}:\n{ir}");
        // set() has one store that may be shared (the rest, at -O0, are to
        // its own stack slots): one check. main()'s store is to the heap
        // (unless optimised away together with the load).
        let set = ir
            .split("define dso_local void @set(")
            .nth(1)
            .and_then(|s| s.split("\n}\n").next())
            .unwrap_or_else(|| panic!("{level}: no set():\n{ir}"));
        assert_eq!(
            set.matches(", 17592186044416").count(),
            1,
            "{level}:\n{set}"
        );
        assert!(set.contains("atomicrmw or ptr"), "{level}:\n{set}");
    }
}

#[test]
fn clang_exit_code_and_diagnostics_pass_through() {
    let scratch = Scratch::new("exit");
    let bad = scratch.file("bad.c", "int main(void) { return nope; }\n");
    let out = driver(LOCO_CC)
        .arg("-c")
        .arg(&bad)
        .arg("-o")
        .arg(scratch.0.join("bad.o"))
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("use of undeclared identifier 'nope'"),
        "{stderr}"
    );
}

#[test]
fn missing_pieces_are_clear_errors() {
    let scratch = Scratch::new("missing");
    let src = scratch.file("prog.c", PROGRAM);
    let nowhere = Path::new("/nonexistent/loco");

    let out = driver(LOCO_CC)
        .env("LOCO_PASS_PLUGIN", nowhere.join("libloco_pass.so"))
        .arg("-c")
        .arg(&src)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(
            "loco-cc: error: LOCO_PASS_PLUGIN=/nonexistent/loco/libloco_pass.so does not exist"
        ),
        "{stderr}"
    );

    let out = driver(LOCO_CC)
        .env("LOCO_CLANG", nowhere.join("clang"))
        .arg("-c")
        .arg(&src)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("loco-cc: error: LOCO_CLANG=/nonexistent/loco/clang does not exist"),
        "{stderr}"
    );

    let out = driver(LOCO_CC)
        .env("LOCO_RUNTIME_DIR", nowhere)
        .arg(&src)
        .arg("-o")
        .arg(scratch.0.join("prog"))
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("loco-cc: error: LOCO_RUNTIME_DIR=/nonexistent/loco has no libloco.so"),
        "{stderr}"
    );
}
