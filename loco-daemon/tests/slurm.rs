//! `loco-daemon node` and `run --slurm` refuse what is not a Slurm job step
//! (or allocation) clearly. Running under a real Slurm is
//! integration/slurm.rs.

mod common;

use std::process::Command;

use common::{daemon, finish, text};

/// The launcher with these arguments and Slurm variables, and no others.
fn with_slurm_env(args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd: Command = daemon();
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SLURM") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .envs(vars.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let o = finish(cmd.spawn().unwrap(), &format!("loco-daemon {args:?}"));
    (o.status.code(), text(&o.stderr))
}

#[test]
fn node_outside_a_job_step_says_how_to_start_it() {
    let (code, err) = with_slurm_env(&["node", "--", "true"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("SLURM_JOB_ID is not set"), "{err}");
    assert!(err.contains("srun -n 4 loco-daemon node"), "{err}");

    // A batch script is a job but not a step.
    let (code, err) = with_slurm_env(
        &["node", "--", "true"],
        &[("SLURM_JOB_ID", "7"), ("SLURM_PROCID", "0")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("SLURM_STEP_ID is not set"), "{err}");
}

#[test]
fn node_names_the_slurm_variable_it_cannot_read() {
    let step = [
        ("SLURM_JOB_ID", "7"),
        ("SLURM_STEP_ID", "0"),
        ("SLURM_PROCID", "0"),
        ("SLURM_NTASKS", "2"),
        ("SLURM_STEP_TASKS_PER_NODE", "2"),
    ];
    let (code, err) = with_slurm_env(
        &["node", "--", "true"],
        &[&step[..], &[("SLURM_STEP_NODELIST", "node[1-")]].concat(),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("SLURM_STEP_NODELIST") && err.contains("'[' without ']'"),
        "{err}"
    );
    let (code, err) = with_slurm_env(
        &["node", "--", "true"],
        &[
            &step[..],
            &[
                ("SLURM_STEP_NODELIST", "localhost"),
                ("SLURM_DISTRIBUTION", "arbitrary"),
            ],
        ]
        .concat(),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--distribution=block"), "{err}");
}

#[test]
fn run_slurm_needs_an_allocation() {
    let (code, err) = with_slurm_env(&["run", "--slurm", "--", "true"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not inside a Slurm allocation"), "{err}");
    let (code, err) = with_slurm_env(
        &["run", "--slurm", "--", "true"],
        &[("SLURM_JOB_ID", "7"), ("SLURM_STEP_ID", "0")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("loco-daemon node -- PROGRAM"), "{err}");
    let (code, err) = with_slurm_env(
        &["run", "--slurm", "--config", "cluster.toml", "--", "true"],
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}

/// The variables of the task of `rank` in a one-machine step of `tasks` tasks.
fn step_of(tasks: &str, rank: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SLURM_JOB_ID", "7".into()),
        ("SLURM_STEP_ID", "0".into()),
        ("SLURM_PROCID", rank.into()),
        ("SLURM_NTASKS", tasks.into()),
        ("SLURM_STEP_NODELIST", "localhost".into()),
        ("SLURM_STEP_TASKS_PER_NODE", tasks.into()),
    ]
}

#[test]
fn memory_nodes_must_leave_a_compute_node_in_the_step() {
    let vars = step_of;
    let run = |args: &[&str], v: Vec<(&'static str, String)>| {
        let refs: Vec<(&str, &str)> = v.iter().map(|(k, x)| (*k, x.as_str())).collect();
        with_slurm_env(args, &refs)
    };
    // Every task of the step would be a memory node: rank 0 says so, once.
    let (code, err) = run(
        &["node", "--memory-nodes", "2", "--", "true"],
        vars("2", "0"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--memory-nodes 2: Slurm step 7.0 has 2 tasks")
            && err.contains("leaving no compute node")
            && err.contains("node 0 (the task of rank 0) runs main")
            && err.contains("give --memory-nodes 1 or fewer"),
        "{err}"
    );
    // The other tasks end as well, without saying it again.
    let (code, err) = run(
        &["node", "--memory-nodes", "2", "--", "true"],
        vars("2", "1"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err, "");
    let (code, err) = run(
        &["node", "--memory-nodes", "3", "--", "true"],
        vars("1", "0"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("one task has no room for memory nodes"),
        "{err}"
    );
    let (code, err) = run(
        &["node", "--memory-nodes", "x", "--", "true"],
        vars("2", "0"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("invalid value 'x' for '--memory-nodes <M>'"),
        "{err}"
    );
}

#[test]
fn run_slurm_passes_memory_nodes_to_every_task() {
    // A stand-in for srun that shows what it was asked to run.
    let dir = common::temp_dir("slurm", "fake-srun");
    let srun = dir.join("srun");
    std::fs::write(&srun, "#!/bin/sh\necho \"srun $*\"\n").unwrap();
    std::fs::set_permissions(&srun, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let srun_line = |args: &[&str], vars: &[(&str, &str)]| {
        let mut cmd: Command = daemon();
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SLURM") {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .envs(vars.iter().copied())
            .env("PATH", &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let o = finish(cmd.spawn().unwrap(), &format!("loco-daemon {args:?}"));
        (o.status.code(), text(&o.stdout), text(&o.stderr))
    };
    let job = [("SLURM_JOB_ID", "7"), ("SLURM_NTASKS", "4")];
    // -n counts compute nodes, as without --slurm: 2 + 1 tasks.
    let (code, out, err) = srun_line(
        &[
            "run",
            "--slurm",
            "-n",
            "2",
            "--memory-nodes",
            "1",
            "--",
            "prog",
        ],
        &job,
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("srun --ntasks=3 "), "{out}");
    assert!(out.contains(" node --memory-nodes=1 "), "{out}");
    assert!(out.trim_end().ends_with("-- prog"), "{out}");
    // Without -n, the allocation's tasks, the last 3 of them memory nodes.
    let (code, out, err) = srun_line(
        &["run", "--slurm", "--memory-nodes", "3", "--", "prog"],
        &job,
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("--ntasks"), "{out}");
    assert!(out.contains(" node --memory-nodes=3 "), "{out}");
    // Without memory nodes nothing changes.
    let (code, out, err) = srun_line(&["run", "--slurm", "-n", "2", "--", "prog"], &job);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("srun --ntasks=2 "), "{out}");
    assert!(!out.contains("--memory-nodes"), "{out}");
    // Refused before srun: no compute node left.
    let (code, out, err) = srun_line(
        &["run", "--slurm", "--memory-nodes", "4", "--", "prog"],
        &job,
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("--memory-nodes 4: the allocation (SLURM_NTASKS) has 4 tasks")
            && err.contains("give --memory-nodes 3 or fewer")
            && err.contains("-n C"),
        "{err}"
    );
    let (code, out, err) = srun_line(
        &[
            "run",
            "--slurm",
            "-n",
            "0",
            "--memory-nodes",
            "2",
            "--",
            "prog",
        ],
        &job,
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(out, "");
    assert!(err.contains("needs at least one compute node"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
