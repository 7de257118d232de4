//! IR-level tests of the pass: every tests/ir/*.ll file is run through
//! `opt-16 -load-pass-plugin=<the built plugin> -passes=loco -S` (opt
//! verifies the result) and the output is checked with FileCheck against
//! the file's CHECK lines.
//!
//! Directives a .ll file may carry:
//! - `; PASSES: <pipeline>`: run that pipeline instead of `loco`;
//! - `; STDERR: <text>`: the pass must print a line containing `<text>`
//!   (one directive per line expected). Without any, stderr must be empty;
//! - `; EXIT: <code>`: opt must exit with that status (a compile error);
//!   the file then has no CHECK lines, as opt prints no module.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The plugin built from this source. `cargo test` compiles the library's
/// cdylib into target/<profile>/deps/ beside this test executable (only
/// `cargo build` copies it up to target/<profile>/), so that copy is
/// current; the one a directory up is used only if it is not there, and
/// then only if it is newer than the sources.
fn plugin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let fresh = deps.join("libloco_pass.so");
    if fresh.is_file() {
        return fresh;
    }
    let built = deps.parent().unwrap().join("libloco_pass.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if let Some(why) = loco_testkit::stale_artifact(&built, &[src]) {
        panic!("{why}");
    }
    built
}

/// The first of `candidates` that runs.
fn tool(candidates: &[&str]) -> String {
    for c in candidates {
        let runs = Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if runs {
            return c.to_string();
        }
    }
    panic!("none of {candidates:?} found: install llvm-16 and llvm-16-tools (scripts/setup.sh)");
}

fn opt() -> String {
    tool(&["opt-16", "/usr/lib/llvm-16/bin/opt"])
}

fn filecheck() -> String {
    tool(&["/usr/lib/llvm-16/bin/FileCheck", "FileCheck-16"])
}

fn ir_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ir")
}

fn directives(text: &str, key: &str) -> Vec<String> {
    let prefix = format!("; {key}: ");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|s| s.trim().to_string())
        .collect()
}

/// `opt -passes=<passes> -S` on textual IR given as a file or on stdin.
fn run_opt(passes: &str, file: Option<&Path>, stdin: &[u8]) -> Output {
    let mut cmd = Command::new(opt());
    cmd.arg(format!("-load-pass-plugin={}", plugin().display()))
        .arg(format!("-passes={passes}"))
        .arg("-S")
        .arg(file.map_or_else(|| "-".into(), |f| f.as_os_str().to_owned()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot run opt");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// FileCheck's complaint, if `output` does not match `file`'s CHECK lines.
fn check(file: &Path, output: &[u8]) -> Option<String> {
    let mut child = Command::new(filecheck())
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run FileCheck");
    child.stdin.take().unwrap().write_all(output).unwrap();
    let done = child.wait_with_output().unwrap();
    (!done.status.success()).then(|| String::from_utf8_lossy(&done.stderr).into_owned())
}

/// Runs one .ll file as its directives say; the reasons it failed, if any.
fn run_file(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let passes = directives(&text, "PASSES")
        .pop()
        .unwrap_or_else(|| "loco".into());
    let out = run_opt(&passes, Some(file), b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let exit: Option<i32> = directives(&text, "EXIT")
        .pop()
        .map(|c| c.parse().expect("EXIT takes a number"));
    let mut failures = Vec::new();
    match exit {
        None if !out.status.success() => return vec![format!("opt failed:\n{stderr}")],
        Some(code) if out.status.code() != Some(code) => {
            failures.push(format!(
                "opt exited with {:?}, not {code}:\n{stderr}",
                out.status.code()
            ));
        }
        _ => {}
    }
    let expected = directives(&text, "STDERR");
    for want in &expected {
        if !stderr.contains(want.as_str()) {
            failures.push(format!("stderr lacks {want:?}:\n{stderr}"));
        }
    }
    if expected.is_empty() && !stderr.trim().is_empty() {
        failures.push(format!("unexpected diagnostics:\n{stderr}"));
    }
    if exit.is_some() {
        if !out.stdout.is_empty() {
            failures.push("opt printed a module after an error".into());
        }
        return failures;
    }
    if let Some(why) = check(file, &out.stdout) {
        let output = String::from_utf8_lossy(&out.stdout);
        failures.push(format!("FileCheck failed:\n{why}\nopt output:\n{output}"));
    }
    failures
}

#[test]
fn every_ir_file_matches_its_checks() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(ir_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ll"))
        .collect();
    files.sort();
    assert!(files.len() >= 24, "IR tests went missing: {files:?}");
    let failures: Vec<String> = files
        .iter()
        .flat_map(|f| {
            run_file(f)
                .into_iter()
                .map(move |why| format!("{}: {why}", f.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn inline_asm_that_may_write_memory_is_reported_once_each_with_its_line() {
    let out = run_opt("loco", Some(&ir_dir().join("asm.ll")), b"");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("loco-pass: warning: "))
        .collect();
    assert_eq!(
        warnings,
        [
            "loco-pass: warning: asm.c:7: inline assembly may write memory; loco-pass cannot mark \
             what it writes (the runtime's write-protection tracking finds it unless LOCO_TRACK=0)",
            "loco-pass: warning: asm.c:8: inline assembly may write memory; loco-pass cannot mark \
             what it writes (the runtime's write-protection tracking finds it unless LOCO_TRACK=0)",
        ],
        "{stderr}"
    );
}

/// The pass's own output, fed back to it, comes out unchanged.
#[test]
fn instrumented_output_is_not_instrumented_again() {
    for name in [
        "store.ll",
        "loop.ll",
        "atomics.ll",
        "libc.ll",
        "heap.ll",
        "globals.ll",
        "globals-comdat.ll",
        "main-2.ll",
        "main-void.ll",
    ] {
        let once = run_opt("loco", Some(&ir_dir().join(name)), b"");
        assert!(once.status.success(), "{name}");
        let twice = run_opt("loco", None, &once.stdout);
        assert!(
            twice.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&twice.stderr)
        );
        let (a, b) = (
            String::from_utf8_lossy(&once.stdout),
            String::from_utf8_lossy(&twice.stdout),
        );
        // Only the module identifier (the input's name) may differ, and
        // the order in which the printer lists a block's predecessors (it
        // follows the order of the block's uses, which parsing rebuilds).
        let body = |s: &str| -> String {
            s.lines()
                .filter(|l| !l.starts_with("; ModuleID") && !l.starts_with("source_filename"))
                .map(|l| l.split("; preds = ").next().unwrap_or(l).trim_end())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(body(&a), body(&b), "{name} changed on the second run");
    }
}
