//! `loco-cc` and `loco-cxx` (installed also as `loco-c++`): drop-in
//! replacements for clang-16 and clang++-16, as mpicc is for cc. Every
//! argument goes to clang unchanged; the driver adds the LOCO pass plugin
//! and, when the invocation links, the LOCO runtime (`-lloco` with an rpath
//! to where it lives).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Arguments after which clang does not link.
const NO_LINK: &[&str] = &[
    "-c",
    "-S",
    "-E",
    "-fsyntax-only",
    "-M",
    "-MM",
    "--version",
    "-###",
];

fn find_clang(cxx: bool) -> Result<PathBuf, String> {
    if let Some(c) = std::env::var_os("LOCO_CLANG") {
        return Ok(PathBuf::from(c));
    }
    let name = if cxx { "clang++-16" } else { "clang-16" };
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    let fallback = Path::new("/usr/lib/llvm-16/bin").join(if cxx { "clang++" } else { "clang" });
    on_path
        .or_else(|| fallback.is_file().then_some(fallback))
        .ok_or_else(|| {
            format!("{name} not found: install clang-16 (scripts/setup.sh does) or set LOCO_CLANG")
        })
}

/// Where the driver's own companions are: the directory of the real executable.
fn own_dir() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the driver's own path: {e}"))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    Ok(exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

fn plugin_path(dir: &Path) -> Result<PathBuf, String> {
    let p = std::env::var_os("LOCO_PASS_PLUGIN")
        .map_or_else(|| dir.join("libloco_pass.so"), PathBuf::from);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "the LOCO pass plugin {} is missing: build the workspace (just build)",
            p.display()
        ))
    }
}

fn runtime_dir(dir: &Path) -> Result<PathBuf, String> {
    let d = std::env::var_os("LOCO_RUNTIME_DIR").map_or_else(|| dir.to_path_buf(), PathBuf::from);
    if d.join("libloco.so").is_file() {
        Ok(d)
    } else {
        Err(format!(
            "the LOCO runtime {} is missing: build the workspace (just build)",
            d.join("libloco.so").display()
        ))
    }
}

/// Whether clang, given these arguments, will link.
pub fn links(args: &[String]) -> bool {
    !args.is_empty()
        && !args
            .iter()
            .any(|a| NO_LINK.contains(&a.as_str()) || a == "-v" && args.len() == 1)
}

/// The clang command for these user arguments.
pub fn command(cxx: bool, args: &[String]) -> Result<Command, String> {
    let clang = find_clang(cxx)?;
    let dir = own_dir()?;
    let plugin = plugin_path(&dir)?;
    let mut cmd = Command::new(clang);
    cmd.arg(format!("-fpass-plugin={}", plugin.display()));
    cmd.args(args);
    if links(args) {
        let rt = runtime_dir(&dir)?;
        cmd.arg(format!("-L{}", rt.display()))
            .arg(format!("-Wl,-rpath,{}", rt.display()))
            .arg("-lloco");
    }
    Ok(cmd)
}

/// The whole driver: `cxx` for loco-cxx.
pub fn main(cxx: bool) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let me = if cxx { "loco-cxx" } else { "loco-cc" };
    if args.first().map(String::as_str) == Some("--loco-version") {
        let dir = own_dir().unwrap_or_default();
        println!("{me} {}", env!("CARGO_PKG_VERSION"));
        println!(
            "clang:   {}",
            find_clang(cxx).map_or_else(|e| e, |p| p.display().to_string())
        );
        println!(
            "plugin:  {}",
            plugin_path(&dir).map_or_else(|e| e, |p| p.display().to_string())
        );
        println!(
            "runtime: {}",
            runtime_dir(&dir).map_or_else(|e| e, |p| p.join("libloco.so").display().to_string())
        );
        return ExitCode::SUCCESS;
    }
    let mut cmd = match command(cxx, &args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{me}: {e}");
            return ExitCode::from(2);
        }
    };
    match cmd.status() {
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("{me}: cannot run {:?}: {e}", cmd.get_program());
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::links;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn compile_only_invocations_do_not_link() {
        assert!(links(&v(&["-O2", "x.c", "-o", "x"])));
        assert!(!links(&v(&["-O2", "-c", "x.c"])));
        assert!(!links(&v(&["-S", "-emit-llvm", "x.c"])));
        assert!(!links(&v(&["-E", "x.c"])));
        assert!(!links(&v(&["--version"])));
        assert!(!links(&v(&[])));
    }
}
