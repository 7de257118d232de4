//! Real C and C++ programs (integration/programs/) compiled twice, with
//! native clang-16 and with loco-cc, at -O2 and -O0; the LOCO build runs on
//! its own and under `loco-daemon run` on 1, 2 and 4 local nodes (its heap
//! spread over all of them), and must print exactly what the native build
//! prints. A first line `// loco-test: FLAGS` adds compiler flags to both
//! builds; with -fopenmp the programs run with OMP_NUM_THREADS=4.
//!
//! `cargo test -p loco-integration --test programs [-- FILTER]`

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use loco_integration::{run_with_deadline, tool};

const DEADLINE: Duration = Duration::from_secs(180);

fn main() -> ExitCode {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("integration/programs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("c" | "cpp")))
        .collect();
    sources.sort();
    let work = std::env::temp_dir().join(format!("loco-programs-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temp dir");
    let (mut passed, mut failed) = (0, 0);
    for src in &sources {
        let name = src.file_stem().unwrap().to_string_lossy().to_string();
        for opt in ["-O2", "-O0"] {
            let test = format!("{name}{opt}");
            if filter.as_ref().is_some_and(|f| !test.contains(f.as_str())) {
                continue;
            }
            let t = Instant::now();
            match check(src, opt, &work) {
                Ok(runs) => {
                    println!(
                        "test {test} ... ok ({runs}, {:.1}s)",
                        t.elapsed().as_secs_f64()
                    );
                    passed += 1;
                }
                Err(why) => {
                    println!("test {test} ... FAILED\n{why}");
                    failed += 1;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!("programs: {passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Extra flags a program asks for on its first line (`// loco-test: FLAGS`).
fn extra_flags(src: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(src).unwrap_or_default();
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("// loco-test:"))
        .map(|f| f.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

fn compile(compiler: &Path, src: &Path, opt: &str, out: &Path) -> Result<(), String> {
    let mut flags = vec![opt.to_string(), "-g".to_string()];
    flags.extend(extra_flags(src));
    loco_integration::compile(compiler, &flags, src, out, DEADLINE)
}

fn output_of(cmd: &mut Command, what: &str) -> Result<String, String> {
    let o = run_with_deadline(cmd.env("OMP_NUM_THREADS", "4"), DEADLINE)?;
    if !o.status.success() {
        return Err(format!(
            "{what} failed ({}):\n--- stdout ---\n{}--- stderr ---\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn check(src: &Path, opt: &str, work: &Path) -> Result<String, String> {
    let cpp = src.extension().is_some_and(|e| e == "cpp");
    let stem = src.file_stem().unwrap().to_string_lossy();
    let (native_cc, loco_cc) = if cpp {
        ("clang++-16", tool("loco-cxx")?)
    } else {
        ("clang-16", tool("loco-cc")?)
    };
    let daemon = tool("loco-daemon")?;
    let native = work.join(format!("{stem}{opt}.native"));
    let loco = work.join(format!("{stem}{opt}.loco"));
    compile(Path::new(native_cc), src, opt, &native)?;
    compile(&loco_cc, src, opt, &loco)?;
    let expected = output_of(&mut Command::new(&native), "the native build")?;
    let mut runs = Vec::new();
    let alone = output_of(&mut Command::new(&loco), "the loco build on its own")?;
    compare(&expected, &alone, "on its own")?;
    runs.push("alone".to_string());
    for n in [1, 2, 4] {
        let got = output_of(
            Command::new(&daemon)
                .args([
                    "run",
                    "-n",
                    &n.to_string(),
                    "--no-prefix",
                    "--timeout",
                    "150",
                    "--",
                ])
                .arg(&loco),
            &format!("loco-daemon run -n {n}"),
        )?;
        compare(&expected, &got, &format!("on {n} nodes"))?;
        runs.push(format!("{n} nodes"));
    }
    Ok(runs.join(", "))
}

fn compare(expected: &str, got: &str, how: &str) -> Result<(), String> {
    if expected == got {
        return Ok(());
    }
    Err(format!(
        "output {how} differs from the native build\n--- native ---\n{expected}--- loco ---\n{got}"
    ))
}
