//! How a node process is started, the same by the local launcher and by
//! `loco-daemon serve`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a node is started with, besides its program and arguments.
pub struct NodeEnv<'a> {
    pub rank: usize,
    pub cluster_file: &'a Path,
    pub stats: bool,
    /// `LOCO_STATS_JSON`: the node writes `<prefix>.node<rank>`.
    pub stats_json: Option<&'a Path>,
}

/// The command for one node: LOCO_RANK, LOCO_CLUSTER (and the statistics
/// settings), its own process group, address randomisation off, stdout and
/// stderr piped. stdin is the caller's choice.
pub fn command(program: &Path, args: &[impl AsRef<std::ffi::OsStr>], env: &NodeEnv) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LOCO_RANK", env.rank.to_string())
        .env("LOCO_CLUSTER", env.cluster_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // Every node must load the program and its libraries at the same
    // addresses: pointers to them (function pointers, `FILE *`, C++
    // vtables) travel between nodes inside shared data.
    // SAFETY: personality(2) only changes this child's execution domain
    // flags before exec; it is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let current = libc::personality(0xffff_ffff);
            if current == -1
                || libc::personality((current | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    if env.stats {
        cmd.env("LOCO_STATS", "1");
    }
    if let Some(prefix) = env.stats_json {
        cmd.env("LOCO_STATS_JSON", prefix);
    }
    cmd
}

/// Makes the node's process get SIGKILL when the thread that started it
/// (and so the process that supervises it) ends.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of the child before
    // exec; it is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The program as a file that exists here: a path as given (made absolute),
/// or a name looked up in PATH.
pub fn find_program(name: &Path) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = if name.as_os_str().as_encoded_bytes().contains(&b'/') {
        vec![name.to_path_buf()]
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
            .unwrap_or_default()
    };
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| std::path::absolute(&p).unwrap_or(p))
}

/// Kills a node's whole process group.
pub fn kill_group(pid: u32) {
    // SAFETY: kill(2) on the process group a node leads (process_group(0)
    // at spawn); it touches no memory of ours.
    unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
}
