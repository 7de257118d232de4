//! `loco-cc` and `loco-cxx` (also installed as `loco-c++`): drop-in
//! replacements for clang-16 and clang++-16, as mpicc is for cc. Every
//! argument goes to clang unchanged; the driver adds the LOCO pass plugin
//! and, when the invocation links, the LOCO runtime (`-lloco` with an rpath
//! to where it lives). A link that makes an executable also gets what a
//! LOCO program needs (ABI.md, "The link"): the runtime as its first
//! library, libloco.so in place of libomp, and the shared globals placed
//! in the shared window (`-no-pie`, `--no-relax`, a linker script). An
//! invocation that compiles C or C++ for an executable asks for absolute
//! data addresses (`-fno-pic -mcmodel=medium`, which the user's own flags
//! override), so that code reaches the shared globals without the GOT.
//!
//! Where things are found (`loco-cc --loco-version` prints it):
//! - clang: `$LOCO_CLANG`, else `clang-16` / `clang++-16` on PATH, else
//!   /usr/lib/llvm-16/bin/clang / clang++;
//! - the plugin: `$LOCO_PASS_PLUGIN`, else libloco_pass.so beside the
//!   driver's own executable (target/<profile>/ in a cargo build);
//! - the runtime: libloco.so in `$LOCO_RUNTIME_DIR`, else beside the driver.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Arguments with which clang does not link.
const NO_LINK: &[&str] = &[
    "-c",
    "-S",
    "-E",
    "-fsyntax-only",
    "-M",
    "-MM",
    "--version",
    "-###",
    "--help",
    "-help",
    "-dumpversion",
    "-dumpmachine",
];

/// Which compiler a driver stands in for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    C,
    Cxx,
}

impl Language {
    fn driver(self) -> &'static str {
        match self {
            Language::C => "loco-cc",
            Language::Cxx => "loco-cxx",
        }
    }

    fn clang(self) -> &'static str {
        match self {
            Language::C => "clang-16",
            Language::Cxx => "clang++-16",
        }
    }

    fn clang_fallback(self) -> &'static str {
        match self {
            Language::C => "/usr/lib/llvm-16/bin/clang",
            Language::Cxx => "/usr/lib/llvm-16/bin/clang++",
        }
    }
}

fn find_clang(lang: Language) -> Result<PathBuf, String> {
    if let Some(c) = std::env::var_os("LOCO_CLANG") {
        let c = PathBuf::from(c);
        // A bare name is looked up on PATH by the OS when run.
        let exists = c.components().count() == 1 || c.is_file();
        return if exists {
            Ok(c)
        } else {
            Err(format!("LOCO_CLANG={} does not exist", c.display()))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(lang.clang()))
        .find(|p| p.is_file());
    let fallback = PathBuf::from(lang.clang_fallback());
    on_path
        .or_else(|| fallback.is_file().then_some(fallback))
        .ok_or_else(|| {
            format!(
                "{} not found on PATH nor as {}: install clang-16 (scripts/setup.sh does) or set LOCO_CLANG",
                lang.clang(),
                lang.clang_fallback()
            )
        })
}

/// The directory of the driver's real executable (through symlinks such as
/// loco-c++ -> loco-cxx), where the plugin and the runtime are built.
fn own_dir() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the driver's own path: {e}"))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} has no directory", exe.display()))
}

fn plugin_path(own_dir: &Path) -> Result<PathBuf, String> {
    let (p, from_env) = match std::env::var_os("LOCO_PASS_PLUGIN") {
        Some(p) => (PathBuf::from(p), true),
        None => (own_dir.join("libloco_pass.so"), false),
    };
    if p.is_file() {
        Ok(p)
    } else if from_env {
        Err(format!("LOCO_PASS_PLUGIN={} does not exist", p.display()))
    } else {
        Err(format!(
            "the LOCO pass plugin {} is missing: build the workspace (cargo build, or just build) or set LOCO_PASS_PLUGIN",
            p.display()
        ))
    }
}

fn runtime_dir(own_dir: &Path) -> Result<PathBuf, String> {
    let (d, from_env) = match std::env::var_os("LOCO_RUNTIME_DIR") {
        Some(d) => (PathBuf::from(d), true),
        None => (own_dir.to_path_buf(), false),
    };
    let lib = d.join("libloco.so");
    if lib.is_file() {
        Ok(d)
    } else if from_env {
        Err(format!(
            "LOCO_RUNTIME_DIR={} has no libloco.so",
            d.display()
        ))
    } else {
        Err(format!(
            "the LOCO runtime {} is missing: build the workspace (cargo build, or just build) or set LOCO_RUNTIME_DIR",
            lib.display()
        ))
    }
}

/// Whether clang, given these arguments, will link.
pub fn links(args: &[OsString]) -> bool {
    let only_v = args.len() == 1 && args[0] == "-v";
    !args.is_empty()
        && !only_v
        && !args.iter().any(|a| {
            let a = a.to_string_lossy();
            NO_LINK.contains(&a.as_ref()) || a.starts_with("-print-") || a.starts_with("--print-")
        })
}

/// Arguments with which a link makes something other than a dynamically
/// linked executable.
const NOT_EXECUTABLE: &[&str] = &[
    "-shared",
    "--shared",
    "-r",
    "-static",
    "--static",
    "-static-pie",
    "-Wl,-shared",
    "-Wl,-r",
    "-Wl,--relocatable",
];

/// What an invocation makes, as far as the driver cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// No link: compiling, preprocessing, printing.
    NoLink,
    /// A dynamically linked executable: a LOCO program.
    Executable,
    /// A shared library or a static executable: linked with the runtime,
    /// nothing else changes.
    OtherLink,
    /// A relocatable object (`-r`): left to clang entirely.
    Relocatable,
}

/// What clang, given these arguments, will make.
pub fn output(args: &[OsString]) -> Output {
    if !links(args) {
        return Output::NoLink;
    }
    let has = |names: &[&str]| args.iter().any(|a| names.iter().any(|n| a == *n));
    if has(&["-r", "-Wl,-r", "-Wl,--relocatable"]) {
        Output::Relocatable
    } else if has(NOT_EXECUTABLE) {
        Output::OtherLink
    } else {
        Output::Executable
    }
}

/// The linker script for LOCO programs (ABI.md, "The link"). INSERT makes
/// it an addition to ld's default script, after .bss: the shared globals'
/// sections at the start of the shared window, in one writable segment
/// (the zero-initialised ones take no room in the file), then a one-byte
/// segment at the window's end, which pushes the kernel's start of the brk
/// heap above the window. The addresses are set with `. =` rather than on
/// the output sections, because ld drops an empty output section with its
/// address (a program with no initialised global would get its .loco_bss
/// right after .bss).
pub const LINKER_SCRIPT: &str = "\
SECTIONS
{
  . = 0x400000000000;
  .loco_data : { *(loco_data loco_data.*) }
  .loco_bss (NOLOAD) : { *(.llvm.linkonce.b.loco_bss .llvm.linkonce.b.loco_bss.*) }
  . = 0x500000000000;
  .loco_fence : { BYTE(0) }
}
INSERT AFTER .bss;
";

/// Put before the user's arguments when compiling C or C++ for a LOCO
/// executable (no link, or the link of an executable): no PIC, and the
/// medium code model, in which code reaches data by its 64-bit absolute
/// address. The shared globals lie 64 TiB from the code at an address
/// fixed at link time, so they need no GOT (ABI.md, "Shared globals").
/// The user's own -fPIC, -fPIE or -mcmodel= come later and win (their
/// code then reaches the shared globals through the GOT).
pub const ABSOLUTE_DATA: [&str; 2] = ["-fno-pic", "-mcmodel=medium"];

/// File name endings of what clang compiles to code: C and C++ sources,
/// and LLVM IR (a module the pass saw in an earlier `-emit-llvm` step
/// reaches the shared globals directly, and clang takes the code model
/// of IR it compiles from its flags, not from the module).
const COMPILED: &[&str] = &[
    ".c", ".i", ".cc", ".cp", ".cxx", ".cpp", ".CPP", ".c++", ".C", ".ii", ".bc", ".ll",
];

/// Arguments with which clang makes no code (ABSOLUTE_DATA would only
/// change what `__PIC__` says to the preprocessor).
const NO_CODE: &[&str] = &["-E", "-M", "-MM", "-fsyntax-only"];

/// Whether clang, given these arguments, compiles C, C++ or LLVM IR to
/// code (a source file among them, or `-x c`/`-x c++`/`-x ir` and
/// friends) for x86-64; not for assembly or objects, which these flags do
/// not concern, nor for preprocessing or another target.
pub fn compiles_code(args: &[OsString]) -> bool {
    let mut previous: Option<String> = None;
    let mut compiles = false;
    for a in args {
        let a = a.to_string_lossy().into_owned();
        if NO_CODE.contains(&a.as_str()) {
            return false;
        }
        let target = match previous.as_deref() {
            Some("-target") => Some(a.as_str()),
            _ => a.strip_prefix("--target="),
        };
        if target.is_some_and(|t| !t.starts_with("x86_64")) {
            return false;
        }
        let language = match previous.as_deref() {
            Some("-x") => Some(a.as_str()),
            _ => a.strip_prefix("-x").filter(|l| !l.is_empty()),
        };
        if language.is_some_and(|l| (l.starts_with('c') && l != "cuda") || l == "ir") {
            compiles = true;
        }
        let is_output = previous.as_deref() == Some("-o");
        if !a.starts_with('-') && !is_output && COMPILED.iter().any(|e| a.ends_with(e)) {
            compiles = true;
        }
        previous = Some(a);
    }
    compiles
}

/// OpenMP runtimes' library names (what `-fopenmp`, `-fopenmp=libomp` and
/// `-fopenmp=libiomp5` make clang link) that must resolve to libloco.so.
const OPENMP_LIBRARIES: &[&str] = &["libomp.so", "libiomp5.so"];

/// A private directory for one link, removed (with what is in it) when
/// dropped, that is once clang has exited. It holds the linker script and
/// `libomp.so -> <runtime>/libloco.so`, searched first so that clang's own
/// `-lomp` links libloco.so instead of LLVM's libomp; libloco.so's SONAME
/// is `libloco.so`, so that is what the program records as needed.
///
/// Made per link rather than installed beside libloco.so: the runtime's
/// directory is another crate's build output (or a read-only install), and
/// a `libomp.so` there would also capture `-lomp` of unrelated links that
/// search it.
pub struct LinkFiles {
    dir: PathBuf,
}

impl LinkFiles {
    fn new(runtime: &Path) -> Result<LinkFiles, String> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0u32;
        let dir = loop {
            let dir = base.join(format!(
                "loco-cc.{}.{nanos:x}.{attempt}",
                std::process::id()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1
                }
                Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            }
        };
        let files = LinkFiles { dir };
        let script = files.script();
        std::fs::write(&script, LINKER_SCRIPT)
            .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        let libloco = runtime.join("libloco.so");
        for name in OPENMP_LIBRARIES {
            let link = files.dir.join(name);
            std::os::unix::fs::symlink(&libloco, &link)
                .map_err(|e| format!("cannot create {}: {e}", link.display()))?;
        }
        Ok(files)
    }

    fn script(&self) -> PathBuf {
        self.dir.join("loco.ld")
    }
}

impl Drop for LinkFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The clang command for these user arguments, and the files it needs
/// until it has run.
pub fn command(lang: Language, args: &[OsString]) -> Result<(Command, Option<LinkFiles>), String> {
    let clang = find_clang(lang)?;
    let dir = own_dir()?;
    let plugin = plugin_path(&dir)?;
    let mut cmd = Command::new(clang);
    let mut flag = OsString::from("-fpass-plugin=");
    flag.push(&plugin);
    cmd.arg(flag);
    let kind = output(args);
    if matches!(kind, Output::NoLink | Output::Executable) && compiles_code(args) {
        cmd.args(ABSOLUTE_DATA);
    }
    let runtime = match kind {
        Output::NoLink | Output::Relocatable => None,
        Output::Executable | Output::OtherLink => Some(runtime_dir(&dir)?),
    };
    let with_dir = |prefix: &str, d: &Path| {
        let mut a = OsString::from(prefix);
        a.push(d);
        a
    };
    // The runtime stays needed even under --as-needed: its constructor
    // joins the cluster whether or not the program calls into it.
    const LIBLOCO: [&str; 3] = [
        "-Wl,--push-state,--no-as-needed",
        "-lloco",
        "-Wl,--pop-state",
    ];
    let mut files = None;
    match (kind, &runtime) {
        (Output::Executable, Some(rt)) => {
            let link = LinkFiles::new(rt)?;
            // Before the user's arguments: the libomp link is searched
            // first, and libloco.so is the first library the program needs,
            // so glibc initialises every other library before libloco's
            // constructor (which, on the nodes other than node 0, never
            // returns).
            cmd.arg(with_dir("-L", &link.dir))
                .arg(with_dir("-L", rt))
                .arg(with_dir("-Wl,-rpath,", rt))
                .args(LIBLOCO)
                .args(args);
            // After them, so that they win over the user's -pie: the shared
            // globals sit at a fixed address (a non-PIE executable); code
            // reaches them by absolute address or through the GOT, which
            // ld must not relax into PC-relative accesses (they are 64 TiB
            // away from the code); the script places them.
            cmd.args(["-no-pie", "-Wl,--no-relax"])
                .arg(with_dir("-Wl,-T,", &link.script()));
            files = Some(link);
        }
        (Output::OtherLink, Some(rt)) => {
            cmd.args(args)
                .arg(with_dir("-L", rt))
                .arg(with_dir("-Wl,-rpath,", rt))
                .args(LIBLOCO);
        }
        _ => {
            cmd.args(args);
        }
    }
    Ok((cmd, files))
}

/// What `--loco-version` prints: versions and where everything was found.
fn describe(lang: Language) -> String {
    let dir = own_dir();
    let found = |r: Result<PathBuf, String>| r.map_or_else(|e| e, |p| p.display().to_string());
    let clang = find_clang(lang);
    let clang_version = clang
        .as_ref()
        .ok()
        .and_then(|c| Command::new(c).arg("--version").output().ok())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(String::from)
        })
        .unwrap_or_default();
    let plugin = dir.clone().and_then(|d| plugin_path(&d));
    let runtime = dir
        .and_then(|d| runtime_dir(&d))
        .map(|d| d.join("libloco.so"));
    format!(
        "{} {} (LOCO)\nclang:   {} ({clang_version})\nplugin:  {}\nruntime: {}\n",
        lang.driver(),
        env!("CARGO_PKG_VERSION"),
        found(clang),
        found(plugin),
        found(runtime),
    )
}

/// The exit code to pass on for clang's exit status (128 + signal when
/// clang was killed, as a shell reports it).
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

/// The whole driver.
pub fn main(lang: Language) -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "--loco-version") {
        print!("{}", describe(lang));
        return ExitCode::SUCCESS;
    }
    let (mut cmd, files) = match command(lang, &args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: error: {e}", lang.driver());
            return ExitCode::from(2);
        }
    };
    let code = match cmd.status() {
        Ok(status) => ExitCode::from(exit_code(status)),
        Err(e) => {
            let program = cmd.get_program().to_string_lossy().into_owned();
            eprintln!("{}: error: cannot run {program}: {e}", lang.driver());
            ExitCode::from(2)
        }
    };
    drop(files);
    code
}

#[cfg(test)]
mod tests {
    use super::{links, output, Output};
    use std::ffi::OsString;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn compile_only_invocations_do_not_link() {
        assert!(links(&args(&["-O2", "x.c", "-o", "x"])));
        assert!(links(&args(&["x.o", "y.o"])));
        assert!(links(&args(&["-v", "x.c"])));
        assert!(links(&args(&["-MD", "x.c"]))); // dependency files while linking
        assert!(!links(&args(&["-O2", "-c", "x.c"])));
        assert!(!links(&args(&["-S", "-emit-llvm", "x.c"])));
        assert!(!links(&args(&["-E", "x.c"])));
        assert!(!links(&args(&["-M", "x.c"])));
        assert!(!links(&args(&["-fsyntax-only", "x.c"])));
        assert!(!links(&args(&["--version"])));
        assert!(!links(&args(&["-v"])));
        assert!(!links(&args(&["-print-file-name=libc.so"])));
        assert!(!links(&args(&[])));
    }

    #[test]
    fn c_and_cxx_sources_are_told_from_other_inputs() {
        use super::compiles_code;
        assert!(compiles_code(&args(&["-O2", "-c", "x.c"])));
        assert!(compiles_code(&args(&["x.cpp", "y.o", "-o", "y"])));
        assert!(compiles_code(&args(&["-x", "c++", "-", "-c"])));
        assert!(compiles_code(&args(&["-xc", "src", "-c"])));
        assert!(!compiles_code(&args(&["-E", "x.C"])));
        assert!(!compiles_code(&args(&["-fsyntax-only", "x.c"])));
        assert!(!compiles_code(&args(&[
            "--target=aarch64-linux-gnu",
            "-c",
            "x.c"
        ])));
        assert!(!compiles_code(&args(&[
            "-target",
            "aarch64-linux-gnu",
            "-c",
            "x.c"
        ])));
        assert!(compiles_code(&args(&[
            "--target=x86_64-linux-gnu",
            "-c",
            "x.c"
        ])));
        assert!(compiles_code(&args(&["x.bc", "-o", "x"])));
        assert!(compiles_code(&args(&["-x", "ir", "-", "-c"])));
        assert!(!compiles_code(&args(&["x.o", "y.o", "-o", "y"])));
        assert!(!compiles_code(&args(&["-c", "x.s", "-o", "x.o"])));
        assert!(compiles_code(&args(&["-c", "x.ll"])));
        assert!(!compiles_code(&args(&["x.o", "-o", "out.c"])));
        assert!(!compiles_code(&args(&["-x", "assembler", "x"])));
        assert!(!compiles_code(&args(&["--version"])));
    }

    #[test]
    fn what_links_make() {
        assert_eq!(output(&args(&["-c", "x.c"])), Output::NoLink);
        assert_eq!(output(&args(&["x.o", "-o", "x"])), Output::Executable);
        assert_eq!(
            output(&args(&["-fopenmp", "x.c", "-o", "x"])),
            Output::Executable
        );
        assert_eq!(
            output(&args(&["-shared", "x.o", "-o", "x.so"])),
            Output::OtherLink
        );
        assert_eq!(output(&args(&["-static", "x.o"])), Output::OtherLink);
        assert_eq!(output(&args(&["-r", "x.o", "y.o"])), Output::Relocatable);
        assert_eq!(output(&args(&["-Wl,-r", "x.o"])), Output::Relocatable);
    }
}
