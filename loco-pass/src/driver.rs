//! `loco-cc` and `loco-cxx` (also installed as `loco-c++`): drop-in
//! replacements for clang-16 and clang++-16, as mpicc is for cc. Every
//! argument goes to clang unchanged; the driver adds the LOCO pass plugin
//! and, when the invocation links, the LOCO runtime (`-lloco` with an rpath
//! to where it lives).
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

/// The clang command for these user arguments.
pub fn command(lang: Language, args: &[OsString]) -> Result<Command, String> {
    let clang = find_clang(lang)?;
    let dir = own_dir()?;
    let plugin = plugin_path(&dir)?;
    let mut cmd = Command::new(clang);
    let mut flag = OsString::from("-fpass-plugin=");
    flag.push(&plugin);
    cmd.arg(flag).args(args);
    if links(args) {
        let rt = runtime_dir(&dir)?;
        let mut search = OsString::from("-L");
        search.push(&rt);
        let mut rpath = OsString::from("-Wl,-rpath,");
        rpath.push(&rt);
        // After the user's objects, and kept even under --as-needed: the
        // runtime's constructor joins the cluster whether or not the
        // program calls into it.
        cmd.arg(search).arg(rpath).args([
            "-Wl,--push-state,--no-as-needed",
            "-lloco",
            "-Wl,--pop-state",
        ]);
    }
    Ok(cmd)
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
    let mut cmd = match command(lang, &args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: error: {e}", lang.driver());
            return ExitCode::from(2);
        }
    };
    match cmd.status() {
        Ok(status) => ExitCode::from(exit_code(status)),
        Err(e) => {
            let program = cmd.get_program().to_string_lossy().into_owned();
            eprintln!("{}: error: cannot run {program}: {e}", lang.driver());
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::links;
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
}
