//! The loco-cc / loco-cxx drivers: what they add to clang's command line,
//! their errors, and that clang runs the pass once at every -O level.
//!
//! The drivers are pointed at the plugin this `cargo test` built (in
//! target/<profile>/deps/; see tests/ir.rs) with LOCO_PASS_PLUGIN. Linking
//! against the real runtime, and running the result, is what
//! integration/programs.rs does.

use std::ffi::OsStr;
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

/// Runs `driver` with the stand-in runtime of `scratch` and `args`, then
/// `-o out`; panics with clang's messages if it fails.
fn build_with_stub(driver_name: &str, scratch: &Scratch, args: &[&OsStr], out: &Path) {
    let o = driver(driver_name)
        .env("LOCO_RUNTIME_DIR", &scratch.0)
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
}

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
            set.matches("load i64, ptr @__loco_mark_span").count(),
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

// ------------------------------------------------------------ linking

/// A stand-in for libloco.so (SONAME libloco.so), built with plain clang
/// into `dir`: `loco_main` runs the program's main and adds 100 to its
/// status (so a test sees that main went through it), the store hooks do
/// nothing, the shadow bytes of the first MiB of the shared window are
/// mapped (the inline checks of stores to shared globals write them), and
/// the OpenMP entry points clang calls exist (for linking only).
fn stub_runtime(dir: &Path) {
    const STUB: &str = r#"
#include <sys/mman.h>
int loco_main(int (*m)(int, char **, char **), int argc, char **argv, char **envp) {
    return m(argc, argv, envp) + 100;
}
void loco_mark_dirty(void *p, unsigned long n) { (void)p; (void)n; }
unsigned long __loco_mark_span = 1UL << 44;
void __kmpc_fork_call(void *loc, int n, void *fn, ...) { (void)loc; (void)n; (void)fn; }
int __kmpc_global_thread_num(void *loc) { (void)loc; return 0; }
__attribute__((constructor)) static void shadows(void) {
    int prot = PROT_READ | PROT_WRITE;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    if (mmap((void *)(0x400000000000UL >> 3), 1 << 17, prot, flags, -1, 0) == MAP_FAILED
        || mmap((void *)(0x400000000000UL >> 12), 1 << 12, prot, flags, -1, 0) == MAP_FAILED
        || mmap((void *)((0x400000000000UL >> 12) + (1UL << 36)), 1 << 12, prot, flags, -1, 0) == MAP_FAILED)
        __builtin_trap();
}
"#;
    let src = dir.join("stub.c");
    std::fs::write(&src, STUB).unwrap();
    let out = Command::new("clang-16")
        .args(["-shared", "-fPIC", "-O1", "-Wl,-soname,libloco.so", "-o"])
        .arg(dir.join("libloco.so"))
        .arg(&src)
        .output()
        .expect("cannot run clang-16");
    assert!(out.status.success(), "{}", text(&out).1);
}

/// Runs a program linked against the stub runtime. Without
/// LD_LIBRARY_PATH: cargo points it at target/<profile>/, where the real
/// libloco.so would win over the program's runpath.
fn run_with_stub(prog: &Path) -> Output {
    Command::new(prog)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap()
}

/// `readelf <flag> file`'s output.
fn readelf(flag: &str, file: &Path) -> String {
    let out = Command::new("readelf")
        .arg(flag)
        .arg(file)
        .output()
        .expect("cannot run readelf");
    assert!(out.status.success(), "{}", text(&out).1);
    text(&out).0
}

/// The libraries a program needs, in order.
fn needed(file: &Path) -> Vec<String> {
    readelf("-d", file)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(String::from))
        .collect()
}

/// The LOAD segments of a program: (virtual address, file size, memory size).
fn load_segments(file: &Path) -> Vec<(u64, u64, u64)> {
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    readelf("-lW", file)
        .lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (hex(f[2]), hex(f[4]), hex(f[5]))
        })
        .collect()
}

const SHARED_A: &str = r#"
#include <stdio.h>
int x = 5;
int zeros[1000];
static int counter = 3;
int *px = &x;
extern int y;
int bump(void);
int main(void) {
    static int calls;
    calls++;
    counter += bump();
    zeros[10] = y;
    printf("%lx %lx %d %d %d %d\n", (unsigned long)&x >> 44, (unsigned long)&calls >> 44,
           *px, counter, zeros[10], calls);
    return 7;
}
"#;

const SHARED_B: &str =
    "int y = 42;\nstatic int counter = 10;\nint bump(void) { return ++counter; }\n";

#[test]
fn executable_gets_shared_globals_and_runs_main_through_the_runtime() {
    let scratch = Scratch::new("shared");
    stub_runtime(&scratch.0);
    let a = scratch.file("a.c", SHARED_A);
    let b = scratch.file("b.c", SHARED_B);
    let (ao, bo, prog) = (
        scratch.0.join("a.o"),
        scratch.0.join("b.o"),
        scratch.0.join("prog"),
    );
    for (src, obj) in [(&a, &ao), (&b, &bo)] {
        let out = driver(LOCO_CC)
            .args(["-O2", "-c"])
            .arg(src)
            .arg("-o")
            .arg(obj)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out).1);
    }
    build_with_stub(LOCO_CC, &scratch, &[ao.as_os_str(), bo.as_os_str()], &prog);

    let needed = needed(&prog);
    assert_eq!(
        needed.first().map(String::as_str),
        Some("libloco.so"),
        "{needed:?}"
    );
    let segments = load_segments(&prog);
    let shared = segments
        .iter()
        .find(|s| s.0 == 0x4000_0000_0000)
        .unwrap_or_else(|| panic!("no segment at the shared window: {segments:x?}"));
    // x, px, y and both counters have initial values; zeros and calls not.
    assert!(shared.1 >= 24 && shared.1 < 4096, "{segments:x?}");
    assert!(shared.2 >= shared.1 + 4000, "{segments:x?}");
    assert!(
        segments.iter().any(|s| s.0 == 0x5000_0000_0000),
        "{segments:x?}"
    );
    // Small on disk: the 4000 zero bytes are not in the file.
    assert!(std::fs::metadata(&prog).unwrap().len() < 64 << 10);

    let run = run_with_stub(&prog);
    let (stdout, stderr) = text(&run);
    assert_eq!(run.status.code(), Some(107), "{stdout}{stderr}");
    assert_eq!(stdout, "4 4 5 14 42 1\n");
}

#[test]
fn template_static_members_link_in_the_shared_window() {
    let scratch = Scratch::new("comdat");
    stub_runtime(&scratch.0);
    let t = scratch.file(
        "t.cc",
        "template <typename T> struct S { static int n; };\n\
         template <typename T> int S<T>::n = 7;\n\
         template <typename T> struct Z { static int n; };\n\
         template <typename T> int Z<T>::n;\n\
         int use() { S<int>::n++; Z<long>::n++; return S<int>::n + Z<long>::n; }\n",
    );
    let u = scratch.file(
        "u.cc",
        "#include <cstdio>\n\
         template <typename T> struct S { static int n; };\n\
         template <typename T> int S<T>::n = 7;\n\
         int use();\n\
         int main() {\n\
             S<int>::n++;\n\
             int u = use();\n\
             std::printf(\"%lx %d %d\\n\", (unsigned long)&S<int>::n >> 44, S<int>::n, u);\n\
         }\n",
    );
    let prog = scratch.0.join("prog");
    build_with_stub(
        LOCO_CXX,
        &scratch,
        &["-O2".as_ref(), t.as_os_str(), u.as_os_str()],
        &prog,
    );
    let run = run_with_stub(&prog);
    let (stdout, stderr) = text(&run);
    assert_eq!(run.status.code(), Some(100), "{stdout}{stderr}");
    assert_eq!(stdout, "4 9 10\n");
}

#[test]
fn openmp_programs_need_libloco_not_libomp() {
    let scratch = Scratch::new("openmp");
    stub_runtime(&scratch.0);
    let src = scratch.file(
        "omp.c",
        "int total;\n\
         int main(void) {\n\
         #pragma omp parallel\n\
             total = 1;\n\
             return 0;\n\
         }\n",
    );
    let prog = scratch.0.join("prog");
    build_with_stub(
        LOCO_CC,
        &scratch,
        &["-O2".as_ref(), "-fopenmp".as_ref(), src.as_os_str()],
        &prog,
    );
    let needed = needed(&prog);
    assert_eq!(
        needed.first().map(String::as_str),
        Some("libloco.so"),
        "{needed:?}"
    );
    assert!(!needed.iter().any(|n| n.contains("omp")), "{needed:?}");
    assert_eq!(
        needed.iter().filter(|n| *n == "libloco.so").count(),
        1,
        "{needed:?}"
    );
    let segments = load_segments(&prog);
    assert!(
        segments.iter().any(|s| s.0 == 0x4000_0000_0000),
        "{segments:x?}"
    );
}

#[test]
fn unsupported_openmp_is_a_compile_error_that_leaves_no_file() {
    let scratch = Scratch::new("task");
    let src = scratch.file(
        "task.c",
        "int main(void) {\n\
             int x = 0;\n\
         #pragma omp parallel for ordered(1)\n\
             for (int i = 0; i < 4; i++) {\n\
         #pragma omp ordered depend(sink: i - 1)\n\
                 x++;\n\
         #pragma omp ordered depend(source)\n\
             }\n\
             return x;\n\
         }\n",
    );
    let obj = scratch.0.join("task.o");
    let out = driver(LOCO_CC)
        .args(["-g", "-fopenmp", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "task.c:4: error: LOCO does not support OpenMP ordered depend (doacross loops) yet"
        ),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&scratch.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["task.c"], "files left behind");
}

#[test]
fn shared_libraries_are_not_placed_in_the_window() {
    let scratch = Scratch::new("sharedlib");
    stub_runtime(&scratch.0);
    let src = scratch.file(
        "lib.c",
        "int counter = 1;\nint next(void) { return counter++; }\n",
    );
    let lib = scratch.0.join("libx.so");
    build_with_stub(
        LOCO_CC,
        &scratch,
        &[
            "-O2".as_ref(),
            "-fPIC".as_ref(),
            "-shared".as_ref(),
            src.as_os_str(),
        ],
        &lib,
    );
    let segments = load_segments(&lib);
    assert!(
        segments.iter().all(|s| s.0 < 0x4000_0000_0000),
        "{segments:x?}"
    );
}

/// A stand-in for clang that writes its arguments, one a line, to
/// `$LOCO_TEST_ARGS`, and what the linker script and the directory beside
/// it hold while it runs to `$LOCO_TEST_ARGS.script` and `.dir`.
fn recording_clang(dir: &Path) -> PathBuf {
    let clang = dir.join("fake-clang");
    std::fs::write(
        &clang,
        "#!/bin/sh\n\
         printf '%s\\n' \"$@\" > \"$LOCO_TEST_ARGS\"\n\
         for a in \"$@\"; do\n\
           case \"$a\" in\n\
             -Wl,-T,*) s=\"${a#-Wl,-T,}\"; cat \"$s\" > \"$LOCO_TEST_ARGS.script\";\n\
                       ls \"$(dirname \"$s\")\" > \"$LOCO_TEST_ARGS.dir\";\n\
                       readlink \"$(dirname \"$s\")/libomp.so\" >> \"$LOCO_TEST_ARGS.dir\";;\n\
           esac\n\
         done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&clang, std::fs::Permissions::from_mode(0o755)).unwrap();
    clang
}

/// The arguments the driver gives clang for `args`.
fn clang_args(scratch: &Scratch, args: &[&str]) -> Vec<String> {
    let record = scratch.0.join("args");
    let _ = std::fs::remove_file(&record);
    let out = driver(LOCO_CC)
        .env("LOCO_CLANG", recording_clang(&scratch.0))
        .env("LOCO_RUNTIME_DIR", &scratch.0)
        .env("LOCO_TEST_ARGS", &record)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The relocations against symbol `name` in an object file, by type.
fn relocations_against(object: &Path, name: &str) -> Vec<String> {
    readelf("-rW", object)
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some(name))
        .filter_map(|l| l.split_whitespace().nth(2).map(String::from))
        .collect()
}

/// By default code reaches the shared globals (and other data) by their
/// 64-bit absolute addresses, fixed at link time; compiled with -fPIE or
/// -fPIC on the user's command line, through the GOT.
#[test]
fn shared_globals_are_reached_by_absolute_address_unless_pic() {
    let scratch = Scratch::new("absolute");
    let src = scratch.file(
        "g.c",
        "int counter; static int table[64];\n\
         int bump(int i) { table[i & 63]++; return ++counter; }\n",
    );
    let absolute = |t: &str| t == "R_X86_64_64";
    let got = |t: &str| t.contains("GOTPCREL");
    for (flags, want) in [
        (&[][..], &absolute as &dyn Fn(&str) -> bool),
        (&["-fPIE"][..], &got),
        (&["-fPIC"][..], &got),
    ] {
        let obj = scratch.0.join("g.o");
        let out = driver(LOCO_CC)
            .args(["-O2", "-c"])
            .args(flags)
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .output()
            .unwrap();
        assert!(out.status.success(), "{flags:?}: {}", text(&out).1);
        let counter = relocations_against(&obj, "counter");
        assert!(!counter.is_empty(), "{flags:?}: {}", readelf("-rW", &obj));
        assert!(counter.iter().all(|t| want(t)), "{flags:?}: {counter:?}");
    }
}

/// IR from an earlier `-emit-llvm` step was compiled for absolute data
/// addresses (the pass marked the shared globals dso_local): compiling it
/// to an object needs the same code model, or the link fails with
/// relocations truncated 64 TiB short.
#[test]
fn ir_from_an_earlier_step_builds_and_runs() {
    let scratch = Scratch::new("ir-steps");
    stub_runtime(&scratch.0);
    let a = scratch.file("a.c", SHARED_A);
    let b = scratch.file("b.c", SHARED_B);
    let mut objects = Vec::new();
    for (src, ir_flag, ext) in [(&a, "-emit-llvm", "bc"), (&b, "-emit-llvm", "ll")] {
        let ir = scratch.0.join(format!(
            "{}.{ext}",
            src.file_stem().unwrap().to_string_lossy()
        ));
        let step = if ext == "ll" { "-S" } else { "-c" };
        let out = driver(LOCO_CC)
            .args(["-O2", step, ir_flag])
            .arg(src)
            .arg("-o")
            .arg(&ir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out).1);
        let obj = ir.with_extension("o");
        let out = driver(LOCO_CC)
            .args(["-O2", "-c"])
            .arg(&ir)
            .arg("-o")
            .arg(&obj)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out).1);
        objects.push(obj);
    }
    let prog = scratch.0.join("prog");
    let objects: Vec<&OsStr> = objects.iter().map(|o| o.as_os_str()).collect();
    build_with_stub(LOCO_CC, &scratch, &objects, &prog);
    let run = run_with_stub(&prog);
    let (stdout, stderr) = text(&run);
    assert_eq!(run.status.code(), Some(107), "{stdout}{stderr}");
    assert_eq!(stdout, "4 4 5 14 42 1\n");
}

#[test]
fn what_the_driver_adds_to_each_kind_of_invocation() {
    let scratch = Scratch::new("args");
    std::fs::write(scratch.0.join("libloco.so"), "").unwrap();
    let plugin = format!("-fpass-plugin={}", plugin().display());
    let rt = scratch.0.display().to_string();

    // Compiling only: the plugin, absolute data addresses (no PIC, the
    // medium code model), then the user's arguments, nothing else.
    assert_eq!(
        clang_args(&scratch, &["-O2", "-fopenmp", "-c", "x.c", "-o", "x.o"]),
        [
            plugin.as_str(),
            "-fno-pic",
            "-mcmodel=medium",
            "-O2",
            "-fopenmp",
            "-c",
            "x.c",
            "-o",
            "x.o"
        ]
    );
    // Assembly only: no compile flags.
    assert_eq!(
        clang_args(&scratch, &["-c", "x.s", "-o", "x.o"]),
        [plugin.as_str(), "-c", "x.s", "-o", "x.o"]
    );
    assert_eq!(
        clang_args(&scratch, &["-r", "x.o", "y.o", "-o", "z.o"]),
        [plugin.as_str(), "-r", "x.o", "y.o", "-o", "z.o"]
    );

    // A shared library: the runtime after the user's arguments, and no
    // executable-only flag.
    let shared = clang_args(&scratch, &["-shared", "x.o", "-o", "x.so"]);
    assert_eq!(
        shared,
        [
            plugin.clone(),
            "-shared".into(),
            "x.o".into(),
            "-o".into(),
            "x.so".into(),
            format!("-L{rt}"),
            format!("-Wl,-rpath,{rt}"),
            "-Wl,--push-state,--no-as-needed".into(),
            "-lloco".into(),
            "-Wl,--pop-state".into(),
        ]
    );

    // Compiling and linking a shared library: nothing for executables.
    let shared_from_source = clang_args(&scratch, &["-shared", "-fPIC", "x.c", "-o", "x.so"]);
    assert_eq!(shared_from_source[1], "-shared", "{shared_from_source:?}");

    // Compiling and linking an executable: the compile flags come first.
    let exe_from_source = clang_args(&scratch, &["x.c", "-o", "x"]);
    assert_eq!(
        exe_from_source[1..3],
        ["-fno-pic", "-mcmodel=medium"],
        "{exe_from_source:?}"
    );

    // An executable: the libomp link and the runtime first, then the
    // user's arguments, then the placement of the shared globals.
    let exe = clang_args(&scratch, &["-fopenmp", "x.o", "-o", "x"]);
    assert_eq!(exe[0], plugin);
    assert!(
        exe[1].starts_with("-L") && exe[1] != format!("-L{rt}"),
        "{exe:?}"
    );
    let links_dir = PathBuf::from(&exe[1][2..]);
    assert_eq!(
        exe[2..],
        [
            format!("-L{rt}"),
            format!("-Wl,-rpath,{rt}"),
            "-Wl,--push-state,--no-as-needed".into(),
            "-lloco".into(),
            "-Wl,--pop-state".into(),
            "-fopenmp".into(),
            "x.o".into(),
            "-o".into(),
            "x".into(),
            "-no-pie".into(),
            "-Wl,--no-relax".into(),
            format!("-Wl,-T,{}", links_dir.join("loco.ld").display()),
        ]
    );
    let record = scratch.0.join("args");
    let script = std::fs::read_to_string(record.with_extension("script")).unwrap();
    assert_eq!(script, loco_pass::driver::LINKER_SCRIPT);
    let dir = std::fs::read_to_string(record.with_extension("dir")).unwrap();
    assert_eq!(
        dir,
        format!(
            "libiomp5.so\nlibomp.so\nloco.ld\n{}\n",
            scratch.0.join("libloco.so").display()
        )
    );
    assert!(
        !links_dir.exists(),
        "{} was not removed",
        links_dir.display()
    );
}
