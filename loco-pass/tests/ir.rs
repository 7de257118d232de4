//! IR-level tests of the pass: every tests/ir/*.ll file is run through
//! `opt-16 -load-pass-plugin=<the built plugin> -passes=loco` (opt verifies
//! the result) and checked with FileCheck. A file may say `; PASSES: ...`
//! to run another pipeline and `; STDERR: text` for a diagnostic the pass
//! must print.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn plugin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let p = dir.join("libloco_pass.so");
    // cargo test builds the rlib, not the cdylib opt loads: refuse a stale one.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if let Some(why) = loco_testkit::stale_artifact(&p, &[src]) {
        panic!("{why}");
    }
    p
}

fn tool(candidates: &[&str]) -> String {
    for c in candidates {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c.to_string();
        }
    }
    panic!("none of {candidates:?} found: install llvm-16 and llvm-16-tools (scripts/setup.sh)");
}

fn directive(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("; {key}: ")))
        .map(|s| s.trim().to_string())
}

#[test]
fn every_ir_file_matches_its_checks() {
    let opt = tool(&["opt-16", "/usr/lib/llvm-16/bin/opt"]);
    let filecheck = tool(&["FileCheck-16", "/usr/lib/llvm-16/bin/FileCheck"]);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ll"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "IR tests went missing");
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let passes = directive(&text, "PASSES").unwrap_or_else(|| "loco".into());
        let out = Command::new(&opt)
            .arg(format!("-load-pass-plugin={}", plugin().display()))
            .arg(format!("-passes={passes}"))
            .arg("-S")
            .arg(file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            failures.push(format!("{}: opt failed:\n{stderr}", file.display()));
            continue;
        }
        match directive(&text, "STDERR") {
            Some(want) if !stderr.contains(&want) => failures.push(format!(
                "{}: stderr lacks {want:?}:\n{stderr}",
                file.display()
            )),
            None if !stderr.trim().is_empty() => failures.push(format!(
                "{}: unexpected diagnostics:\n{stderr}",
                file.display()
            )),
            _ => {}
        }
        let mut check = Command::new(&filecheck)
            .arg(file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        check.stdin.take().unwrap().write_all(&out.stdout).unwrap();
        let checked = check.wait_with_output().unwrap();
        if !checked.status.success() {
            failures.push(format!(
                "{}: FileCheck failed:\n{}",
                file.display(),
                String::from_utf8_lossy(&checked.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
