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
