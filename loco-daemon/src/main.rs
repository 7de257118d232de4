//! `loco-daemon`: starts the nodes of a LOCO run and watches over them.
//!
//!     loco-daemon run -n 4 -- ./prog args          # 4 nodes on this machine
//!     loco-daemon run -n 2 --memory-nodes 2 -- ./prog  # 2 compute nodes, 2 memory nodes
//!     loco-daemon run --config cluster.toml -- ./prog args
//!     loco-daemon serve [--listen ADDR:PORT]      # start nodes for launchers elsewhere
//!     srun -n 4 loco-daemon node -- ./prog args     # one node per Slurm task
//!     srun -n 4 loco-daemon node --memory-nodes 2 -- ./prog  # tasks 2 and 3: memory nodes
//!     loco-daemon run --slurm -- ./prog args        # the same, inside an allocation
//!     loco-daemon report stats.json -o report.html  # a page of charts from --stats-json
//!
//! Every node runs the same program; the LOCO runtime linked into it reads
//! LOCO_RANK and LOCO_CLUSTER (a cluster.toml the launcher writes) and joins
//! the cluster. Output of every node is forwarded line by line, prefixed by
//! its node; the exit code is node 0's (the program's). A node that fails
//! ends the run: the others get a short grace period to notice, then are
//! killed, and the launcher says which node failed and how.

mod json;
mod launch;
mod node;
mod proto;
mod remote;
mod report;
mod serve;
mod slurm;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};

use launch::PlacementArg;

#[derive(Parser)]
#[command(
    name = "loco-daemon",
    version,
    about = "Run OpenMP programs across the nodes of a LOCO cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The options of a run, the same for `run` and `node`.
#[derive(Args)]
struct RunOptions {
    /// Print each node's statistics at exit (same as LOCO_STATS=1).
    #[arg(long)]
    stats: bool,
    /// Also write every node's statistics to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Kill the run if it takes longer than this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// The remote pages each node may keep cached (e.g. 64MiB): cluster.toml's
    /// memory.cache_size, for this run.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    cache: Option<u64>,
    /// Pass output through without the "[node N] " prefixes.
    #[arg(long)]
    no_prefix: bool,
    /// Print a line of totals over the nodes on this machine every few seconds.
    #[arg(long)]
    progress: bool,
    /// Keep the progress samples of the nodes on this machine in FILE (one
    /// JSON object per line, about one per node per second), for
    /// `loco-daemon report --progress FILE`.
    #[arg(long, value_name = "FILE")]
    progress_log: Option<PathBuf>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    program: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Start a program on every node and wait for it.
    #[command(group(ArgGroup::new("described").args(["nodes", "slurm"]).multiple(true)))]
    Run {
        /// Number of nodes on this machine (tcp over loopback, free ports);
        /// with --slurm, the number of Slurm tasks (default: the allocation's).
        /// With --memory-nodes, the number of compute nodes.
        #[arg(short = 'n', long, conflicts_with = "config")]
        nodes: Option<usize>,
        /// With -n: this many memory nodes more, after the compute nodes
        /// (with --slurm too: -n + M tasks). With --slurm and no -n: the
        /// allocation's last M tasks are memory nodes. A memory node runs
        /// no OpenMP thread and takes no part in barriers: it homes pages
        /// (all of them by default: interleaved over the memory nodes) and
        /// serves them to the compute nodes.
        #[arg(
            long,
            value_name = "M",
            requires = "described",
            conflicts_with = "config"
        )]
        memory_nodes: Option<usize>,
        /// A cluster description (see cluster.toml): nodes on this machine,
        /// on other machines over ssh, or through `loco-daemon serve`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Inside a Slurm allocation (sbatch, salloc): one node per task,
        /// through `srun loco-daemon node`.
        #[arg(long, conflicts_with = "config")]
        slurm: bool,
        /// With -n or --slurm: which node is home to each page.
        #[arg(long, requires = "described", value_name = "POLICY")]
        placement: Option<PlacementArg>,
        /// With -n or --slurm: the memory each node contributes to the shared heap (e.g. 2GiB).
        #[arg(long, requires = "described", value_name = "SIZE", value_parser = parse_memory)]
        memory: Option<u64>,
        #[command(flatten)]
        options: RunOptions,
    },
    /// Run one node of a Slurm job step: `srun -n 4 loco-daemon node -- ./prog args`.
    ///
    /// Every task of the step runs it; rank, size and hosts come from
    /// Slurm's variables. The task of rank 0 is the run's launcher: its
    /// output and exit code are the run's.
    Node {
        /// The step's last M tasks are memory nodes: they run no OpenMP
        /// thread and take no part in barriers, but home pages (all of them
        /// by default: interleaved over the memory nodes) and serve them.
        #[arg(long, value_name = "M")]
        memory_nodes: Option<usize>,
        /// Which node is home to each page.
        #[arg(long, value_name = "POLICY")]
        placement: Option<PlacementArg>,
        /// The memory each node contributes to the shared heap (e.g. 2GiB).
        #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
        memory: Option<u64>,
        #[command(flatten)]
        options: RunOptions,
    },
    /// Start nodes for launchers on other machines: each connection runs one node.
    ///
    /// It runs whatever program a connecting launcher names, as the user it
    /// runs as: listen only on a trusted cluster network.
    Serve {
        /// Where to listen. Only loopback unless --allow-remote is given.
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7469")]
        listen: String,
        /// Listen on a non-loopback address: anyone who can connect can run
        /// programs as this user, so only on a trusted cluster network.
        #[arg(long, conflicts_with = "stdio")]
        allow_remote: bool,
        /// Run exactly one node, speaking the protocol on stdin/stdout (what
        /// the launcher runs over ssh), and exit when it ends.
        #[arg(long, conflicts_with = "listen")]
        stdio: bool,
    },
    /// Draw a run's statistics as one self-contained HTML page (inline SVG).
    ///
    /// Per node: remote page faults, bytes fetched and sent home, time in
    /// page faults, releases, acquires and barriers, and every counter in a
    /// table; with --progress, curves over time of the nodes on the
    /// launcher's machine.
    Report {
        /// The file `run --stats-json FILE` wrote.
        #[arg(value_name = "STATS.json")]
        stats: PathBuf,
        /// The file `run --progress-log FILE` wrote.
        #[arg(long, value_name = "FILE")]
        progress: Option<PathBuf>,
        /// Where to write the page.
        #[arg(short = 'o', long = "output", value_name = "report.html")]
        output: PathBuf,
    },
}

/// `--memory`: a size as cluster.toml takes it (`2GiB`, `512 MiB`, `4096`).
fn parse_memory(text: &str) -> Result<u64, String> {
    loco_cluster::parse_size(text)
}

fn plan(
    nodes: Option<usize>,
    config: Option<PathBuf>,
    placement: Option<PlacementArg>,
    memory: Option<u64>,
    o: RunOptions,
) -> launch::Plan {
    launch::Plan {
        nodes,
        memory_nodes: 0,
        config,
        placement,
        memory,
        cache: o.cache,
        stats: o.stats,
        stats_json: o.stats_json,
        timeout: o.timeout.map(Duration::from_secs),
        prefix: !o.no_prefix,
        progress: o.progress,
        progress_log: o.progress_log,
        program: o.program,
        nodes_die_with_launcher: false,
    }
}

fn exit(result: Result<u8, String>, who: &str) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{who}: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            nodes,
            memory_nodes,
            config,
            slurm: true,
            placement,
            memory,
            options,
        } => {
            let mut plan = plan(None, config, placement, memory, options);
            plan.memory_nodes = memory_nodes.unwrap_or(0);
            exit(slurm::exec_srun(&plan, nodes), "loco-daemon")
        }
        Command::Run {
            nodes,
            memory_nodes,
            config,
            slurm: false,
            placement,
            memory,
            options,
        } => {
            let mut plan = plan(nodes, config, placement, memory, options);
            plan.memory_nodes = memory_nodes.unwrap_or(0);
            exit(launch::run(plan), "loco-daemon")
        }
        Command::Node {
            memory_nodes,
            placement,
            memory,
            options,
        } => {
            let mut plan = plan(None, None, placement, memory, options);
            plan.memory_nodes = memory_nodes.unwrap_or(0);
            plan.nodes_die_with_launcher = true;
            exit(slurm::node(plan), "loco-daemon node")
        }
        Command::Report {
            stats,
            progress,
            output,
        } => exit(
            report::write(&stats, progress.as_deref(), &output).map(|()| 0),
            "loco-daemon report",
        ),
        Command::Serve {
            listen,
            allow_remote,
            stdio,
        } => {
            let result = if stdio {
                serve::stdio()
            } else {
                serve::listen(&listen, allow_remote)
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("loco-daemon serve: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
