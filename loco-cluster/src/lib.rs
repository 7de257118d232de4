//! `cluster.toml`: which nodes make up a LOCO cluster, how they talk, and how
//! the shared region is laid out.
//!
//! Every node parses the same file; [`ClusterConfig::fingerprint`] lets the
//! nodes check at bootstrap that they really agree. Errors name the file and
//! the offending entry so a user can fix the file without guessing.

mod size;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use size::{parse_size, ByteSize};

/// The first port of the embedded default cluster (node `i` listens on `DEFAULT_BASE_PORT + i`).
pub const DEFAULT_BASE_PORT: u16 = 7470;
/// Where the shared region is mapped in every node unless cluster.toml says otherwise:
/// far below the addresses Linux hands to mmap (0x7f..) and to PIE executables (0x55..).
pub const DEFAULT_REGION_BASE: u64 = 0x4000_0000_0000;
const DEFAULT_NODE_MEMORY: u64 = 1 << 30;
const DEFAULT_CACHE_SIZE: u64 = 1 << 30;
const DEFAULT_PAGE_SIZE: u64 = 4096;
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_OP_TIMEOUT_MS: u64 = 10_000;
/// The highest user-space address on x86_64 (47-bit) and aarch64 (48-bit with 4 KB pages
/// is larger, but 47 bits is what both give every process).
const USER_ADDRESS_LIMIT: u64 = 1 << 47;

/// How nodes reach each other's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// Plain TCP: each node serves one-sided operations from its own threads.
    Tcp,
    /// RDMA verbs: RC queue pairs, real RDMA READ/WRITE/ATOMIC.
    Verbs,
}

/// Which node is the home of each page of the shared region.
///
/// The default is first-touch (with home migration), as NUMA systems
/// place memory: OpenMP programs initialise their data in parallel so that
/// each thread's part lives where it runs, and data initialised serially
/// moves to the node that keeps writing it. Measured against interleaved
/// (docs/performance.md): STREAM on global arrays 36x and a Jacobi stencil
/// 37x faster on 2 nodes in the coherence bench, NAS MG class W 7x.
/// Interleaved suits data every node reads alike and nobody initialises
/// in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Page `p` lives on node `p mod N`; in a cluster with memory nodes,
    /// runs of pages take turns over the memory nodes only (the M nodes
    /// with `role = "memory"`, in rank order; see loco-uffd's layout.rs),
    /// and this is then the default.
    Interleaved,
    /// A page lives on the first node that touches it.
    FirstTouch,
    /// A page lives on the node whose allocator handed it out.
    AllocatingNode,
}

/// The placement of a cluster without memory nodes, when none is given.
pub const DEFAULT_PLACEMENT: Placement = Placement::FirstTouch;

/// What a node does in the cluster (`role` in cluster.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs its share of every OpenMP team (node 0 also runs `main`),
    /// takes part in the team's barriers, and homes what placement puts
    /// on it.
    #[default]
    Compute,
    /// Runs no program code: it homes pages of the shared region and
    /// serves them (and the atomics on them) to the compute nodes, and
    /// takes no part in forks, joins or barriers (disaggregated memory).
    Memory,
}

impl Role {
    /// The name in cluster.toml.
    pub fn name(self) -> &'static str {
        match self {
            Role::Compute => "compute",
            Role::Memory => "memory",
        }
    }
}

/// How the launcher starts a node's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// A child process of the launcher, on the launcher's machine.
    Local,
    /// `<ssh command> <host> <remote loco-daemon> serve --stdio`.
    Ssh,
    /// A connection to a `loco-daemon serve` running at this `HOST:PORT`.
    Daemon(String),
}

/// How nodes are started on other machines (`[launch]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSettings {
    /// The command prefix that runs a command on another machine; the host
    /// and the command follow it.
    pub ssh: Vec<String>,
    /// Path of loco-daemon on the other machines; `None`: the launcher's own path.
    pub remote_daemon: Option<String>,
}

impl Default for LaunchSettings {
    fn default() -> Self {
        LaunchSettings {
            ssh: DEFAULT_SSH.iter().map(|s| s.to_string()).collect(),
            remote_daemon: None,
        }
    }
}

/// The default `[launch] ssh`: no password prompts in the middle of a run.
pub const DEFAULT_SSH: [&str; 3] = ["ssh", "-o", "BatchMode=yes"];

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Host name or IP address the node listens on and others connect to.
    pub host: String,
    /// TCP port of the node's transport server (and, for verbs, its connection setup).
    pub port: u16,
    /// Bytes of the shared region this node is home to.
    pub memory: u64,
    /// RDMA device to use (verbs only); `None` picks the first device.
    pub rdma_device: Option<String>,
    /// RDMA port number on the device (verbs only).
    pub rdma_port: u8,
    /// GID table index (verbs only; RoCE needs a GID).
    pub gid_index: u8,
    /// How the node is started, as the file says (`daemon = ..` or
    /// `launch = ..`); `None`: see [`NodeConfig::launch_method`].
    pub launch: Option<Launch>,
    /// A compute node (the default) or a memory node.
    pub role: Role,
}

impl NodeConfig {
    /// `host:port`, as given to a socket connect.
    pub fn address(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// Whether the host is this machine's loopback (127.0.0.0/8, ::1, localhost).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// How the launcher starts this node: what the file says, else locally
    /// for a loopback host and over ssh for any other.
    pub fn launch_method(&self) -> Launch {
        match &self.launch {
            Some(l) => l.clone(),
            None if self.is_loopback() => Launch::Local,
            None => Launch::Ssh,
        }
    }
}

/// A checked description of the whole cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub transport: TransportKind,
    /// How long bootstrap waits for every node to come up.
    pub connect_timeout: Duration,
    /// How long a single remote read/write/atomic may take before it is an error
    /// (a node that stopped answering). Barriers wait without a limit, but fail
    /// as soon as a node is known dead.
    pub op_timeout: Duration,
    /// Virtual address of the shared region, the same in every node.
    pub region_base: u64,
    pub page_size: u64,
    pub placement: Placement,
    /// Bytes of remote pages a node may keep cached.
    pub cache_size: u64,
    pub nodes: Vec<NodeConfig>,
    /// How nodes on other machines are started (not part of the fingerprint:
    /// the nodes need not agree on it).
    pub launch: LaunchSettings,
}

/// What is wrong with a cluster description, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or "built-in default") the description came from.
    pub origin: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl std::error::Error for ConfigError {}

// The file's shape, before checking. Unknown keys are errors: a misspelt
// key silently ignored is a setting the user thinks they made.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    cluster: RawCluster,
    #[serde(default)]
    memory: RawMemory,
    #[serde(default, rename = "node")]
    nodes: Vec<RawNode>,
    #[serde(default)]
    launch: RawLaunch,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLaunch {
    ssh: Option<Vec<String>>,
    remote_daemon: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    transport: Option<TransportKind>,
    connect_timeout_ms: Option<u64>,
    op_timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMemory {
    region_base: Option<RawNumber>,
    page_size: Option<RawNumber>,
    placement: Option<Placement>,
    cache_size: Option<RawNumber>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    host: String,
    port: i64,
    memory: Option<RawNumber>,
    rdma_device: Option<String>,
    rdma_port: Option<u8>,
    gid_index: Option<u8>,
    daemon: Option<String>,
    launch: Option<String>,
    role: Option<Role>,
}

/// A number written either as a TOML integer or as a string ("4GiB", "0x4000_0000_0000").
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum RawNumber {
    Int(i64),
    Text(String),
}

impl RawNumber {
    /// `v` as [`ClusterConfig::to_toml`] writes it: a TOML integer, or a
    /// string of decimal digits where it is too large for one (TOML
    /// integers are 64-bit signed; [`parse_size`] reads the string back).
    fn of(v: u64) -> RawNumber {
        i64::try_from(v).map_or_else(|_| RawNumber::Text(v.to_string()), RawNumber::Int)
    }
}

// The file's shape as `to_toml` writes it: the same keys as the Raw*
// structs above, every setting spelt out.
#[derive(Serialize)]
struct OutFile<'a> {
    cluster: OutCluster,
    memory: OutMemory,
    #[serde(rename = "node")]
    nodes: Vec<OutNode<'a>>,
    launch: OutLaunch<'a>,
}

#[derive(Serialize)]
struct OutCluster {
    transport: TransportKind,
    connect_timeout_ms: RawNumber,
    op_timeout_ms: RawNumber,
}

#[derive(Serialize)]
struct OutMemory {
    region_base: RawNumber,
    page_size: RawNumber,
    placement: Placement,
    cache_size: RawNumber,
}

#[derive(Serialize)]
struct OutNode<'a> {
    host: &'a str,
    port: u16,
    memory: RawNumber,
    rdma_port: u8,
    gid_index: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdma_device: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    launch: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon: Option<&'a str>,
    role: Role,
}

#[derive(Serialize)]
struct OutLaunch<'a> {
    ssh: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_daemon: Option<&'a str>,
}

impl ClusterConfig {
    /// The embedded default: `n` nodes on 127.0.0.1, ports from [`DEFAULT_BASE_PORT`], tcp.
    pub fn localhost(n: usize) -> Result<Self, ConfigError> {
        let ports: Vec<u16> = (0..n)
            .map(|i| {
                u16::try_from(i)
                    .ok()
                    .and_then(|i| DEFAULT_BASE_PORT.checked_add(i))
                    .ok_or_else(|| ConfigError {
                        origin: "built-in default".into(),
                        message: format!("{n} nodes do not fit in the port range"),
                    })
            })
            .collect::<Result<_, _>>()?;
        Self::localhost_with_ports(&ports)
    }

    /// Nodes on 127.0.0.1 at the given ports (tests pick free ports), tcp, defaults elsewhere.
    pub fn localhost_with_ports(ports: &[u16]) -> Result<Self, ConfigError> {
        let config = ClusterConfig {
            transport: TransportKind::Tcp,
            connect_timeout: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            op_timeout: Duration::from_millis(DEFAULT_OP_TIMEOUT_MS),
            region_base: DEFAULT_REGION_BASE,
            page_size: DEFAULT_PAGE_SIZE,
            placement: DEFAULT_PLACEMENT,
            cache_size: DEFAULT_CACHE_SIZE,
            nodes: ports
                .iter()
                .map(|&port| NodeConfig {
                    host: "127.0.0.1".into(),
                    port,
                    memory: DEFAULT_NODE_MEMORY,
                    rdma_device: None,
                    rdma_port: 1,
                    gid_index: 0,
                    launch: None,
                    role: Role::Compute,
                })
                .collect(),
            launch: LaunchSettings::default(),
        };
        config.validate("built-in default")?;
        Ok(config)
    }

    /// Reads and checks a cluster.toml file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            message: format!("cannot read the file: {e}"),
        })?;
        Self::from_toml_str(&text, &origin)
    }

    /// Parses and checks cluster.toml text; `origin` names it in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            origin: origin.to_string(),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;

        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for (i, n) in raw.nodes.into_iter().enumerate() {
            let port = u16::try_from(n.port)
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| err(format!("node {i}: port {} is not in 1..=65535", n.port)))?;
            let memory = match n.memory {
                None => DEFAULT_NODE_MEMORY,
                Some(m) => number(&m).map_err(|e| err(format!("node {i}: memory: {e}")))?,
            };
            let launch = match (n.daemon, n.launch.as_deref()) {
                (Some(_), Some(_)) => {
                    return Err(err(format!(
                        "node {i}: both daemon and launch are set; a node is started one way: \
                         daemon = \"HOST:PORT\" or launch = \"ssh\" or \"local\""
                    )))
                }
                (Some(addr), None) => Some(Launch::Daemon(addr)),
                (None, Some("ssh")) => Some(Launch::Ssh),
                (None, Some("local")) => Some(Launch::Local),
                (None, Some(other)) => {
                    return Err(err(format!(
                        "node {i}: launch {other:?} is not a launch method: expected \"ssh\" or \
                         \"local\" (or daemon = \"HOST:PORT\" for a running loco-daemon serve)"
                    )))
                }
                (None, None) => None,
            };
            nodes.push(NodeConfig {
                host: n.host,
                port,
                memory,
                rdma_device: n.rdma_device,
                rdma_port: n.rdma_port.unwrap_or(1),
                gid_index: n.gid_index.unwrap_or(0),
                launch,
                role: n.role.unwrap_or_default(),
            });
        }
        let field =
            |value: Option<RawNumber>, default: u64, name: &str| -> Result<u64, ConfigError> {
                match value {
                    None => Ok(default),
                    Some(v) => number(&v).map_err(|e| err(format!("memory.{name}: {e}"))),
                }
            };
        let config = ClusterConfig {
            transport: raw.cluster.transport.unwrap_or(TransportKind::Tcp),
            connect_timeout: Duration::from_millis(
                raw.cluster
                    .connect_timeout_ms
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
            ),
            op_timeout: Duration::from_millis(
                raw.cluster.op_timeout_ms.unwrap_or(DEFAULT_OP_TIMEOUT_MS),
            ),
            region_base: field(raw.memory.region_base, DEFAULT_REGION_BASE, "region_base")?,
            page_size: field(raw.memory.page_size, DEFAULT_PAGE_SIZE, "page_size")?,
            placement: raw
                .memory
                .placement
                .unwrap_or_else(|| default_placement(&nodes)),
            cache_size: field(raw.memory.cache_size, DEFAULT_CACHE_SIZE, "cache_size")?,
            nodes,
            launch: LaunchSettings {
                ssh: raw
                    .launch
                    .ssh
                    .unwrap_or_else(|| LaunchSettings::default().ssh),
                remote_daemon: raw.launch.remote_daemon,
            },
        };
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks the rules a loaded or built config must keep.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let err = |message: String| {
            Err(ConfigError {
                origin: origin.to_string(),
                message,
            })
        };
        if self.nodes.is_empty() {
            return err("no [[node]] entries: a cluster needs at least one node".into());
        }
        if self.nodes.iter().all(|n| n.role == Role::Memory) {
            return err(
                "every node has role = \"memory\": a cluster needs at least one compute node \
                 (node 0 runs main)"
                    .into(),
            );
        }
        if self.nodes[0].role == Role::Memory {
            return err(
                "node 0 has role = \"memory\", but node 0 runs main and the program's serial \
                 parts: make it a compute node (list memory nodes after it)"
                    .into(),
            );
        }
        if self.nodes.len() > u16::MAX as usize {
            return err(format!(
                "{} nodes: at most 65535 are supported",
                self.nodes.len()
            ));
        }
        if !self.page_size.is_power_of_two() || self.page_size < 4096 {
            return err(format!(
                "memory.page_size {} must be a power of two of at least 4096",
                self.page_size
            ));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if let Err(why) = check_host(&node.host) {
                return err(format!(
                    "node {i}: host {:?} is not a valid address: {why}",
                    node.host
                ));
            }
            if node.port == 0 {
                return err(format!("node {i}: port 0 is not a valid port"));
            }
            if let Some(Launch::Daemon(addr)) = &node.launch {
                if let Err(why) = parse_host_port(addr) {
                    return err(format!(
                        "node {i}: daemon {addr:?} is not the HOST:PORT of a loco-daemon serve: {why}"
                    ));
                }
            }
            if node.memory == 0 || node.memory % self.page_size != 0 {
                return err(format!(
                    "node {i}: memory {} must be a positive multiple of the page size ({})",
                    node.memory, self.page_size
                ));
            }
            if let Some(j) = self.nodes[..i]
                .iter()
                .position(|other| same_endpoint(other, node))
            {
                return err(format!(
                    "node {i} ({}) is a duplicate of node {j}: every node needs its own host:port",
                    node.address()
                ));
            }
        }
        if self.transport == TransportKind::Tcp {
            if let Some(i) = self.nodes.iter().position(|n| n.rdma_device.is_some()) {
                return err(format!(
                    "node {i}: rdma_device is set but cluster.transport is \"tcp\"; \
                     set transport = \"verbs\" or remove rdma_device"
                ));
            }
        }
        if self.region_base == 0 || !self.region_base.is_multiple_of(self.page_size) {
            return err(format!(
                "memory.region_base {:#x} must be a non-zero multiple of the page size",
                self.region_base
            ));
        }
        let end = self.region_base.checked_add(self.region_size());
        if end.is_none_or(|end| end > USER_ADDRESS_LIMIT) {
            return err(format!(
                "the shared region ({:#x} + {} bytes of node memory) does not fit below {:#x}, \
                 the top of user address space",
                self.region_base,
                self.region_size(),
                USER_ADDRESS_LIMIT
            ));
        }
        if self.cache_size < self.page_size {
            return err(format!(
                "memory.cache_size {} is smaller than one page ({})",
                self.cache_size, self.page_size
            ));
        }
        if self.launch.ssh.first().is_none_or(|c| c.is_empty()) {
            return err(
                "launch.ssh must name a command (e.g. [\"ssh\", \"-o\", \"BatchMode=yes\"])".into(),
            );
        }
        if self
            .launch
            .remote_daemon
            .as_ref()
            .is_some_and(|d| d.is_empty())
        {
            return err("launch.remote_daemon is empty: give the path of loco-daemon".into());
        }
        if self.connect_timeout.is_zero() || self.op_timeout.is_zero() {
            return err(
                "cluster.connect_timeout_ms and cluster.op_timeout_ms must be positive".into(),
            );
        }
        Ok(())
    }

    /// The description as cluster.toml text that parses back to the same
    /// config (written with the `toml` crate). Timeouts past what a TOML
    /// integer holds (about 292 million years) are written as that maximum.
    pub fn to_toml(&self) -> String {
        let millis = |d: Duration| RawNumber::of(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let file = OutFile {
            cluster: OutCluster {
                transport: self.transport,
                connect_timeout_ms: millis(self.connect_timeout),
                op_timeout_ms: millis(self.op_timeout),
            },
            memory: OutMemory {
                region_base: RawNumber::Text(format!("{:#x}", self.region_base)),
                page_size: RawNumber::of(self.page_size),
                placement: self.placement,
                cache_size: RawNumber::of(self.cache_size),
            },
            nodes: self
                .nodes
                .iter()
                .map(|n| OutNode {
                    host: &n.host,
                    port: n.port,
                    memory: RawNumber::of(n.memory),
                    rdma_port: n.rdma_port,
                    gid_index: n.gid_index,
                    rdma_device: n.rdma_device.as_deref(),
                    launch: match n.launch {
                        Some(Launch::Local) => Some("local"),
                        Some(Launch::Ssh) => Some("ssh"),
                        None | Some(Launch::Daemon(_)) => None,
                    },
                    daemon: match &n.launch {
                        Some(Launch::Daemon(addr)) => Some(addr),
                        _ => None,
                    },
                    role: n.role,
                })
                .collect(),
            launch: OutLaunch {
                ssh: &self.launch.ssh,
                remote_daemon: self.launch.remote_daemon.as_deref(),
            },
        };
        // Serialising fails only for what TOML cannot hold (integers past
        // i64, a value after a table, a None in an array), and `OutFile`
        // has none of those.
        toml::to_string(&file).expect("a cluster description always serialises to TOML")
    }

    /// Size of the shared region: the sum of what every node contributes.
    pub fn region_size(&self) -> u64 {
        self.nodes.iter().map(|n| n.memory).sum()
    }

    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The ranks of the compute nodes, in order (node 0 first).
    pub fn compute_nodes(&self) -> Vec<usize> {
        self.ranks_with(Role::Compute)
    }

    /// The ranks of the memory nodes, in order (none in most clusters).
    pub fn memory_nodes(&self) -> Vec<usize> {
        self.ranks_with(Role::Memory)
    }

    fn ranks_with(&self, role: Role) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&r| self.nodes[r].role == role)
            .collect()
    }

    /// The placement a cluster gets when none is given: interleaved (over
    /// the memory nodes) if it has memory nodes, else first-touch.
    pub fn default_placement(&self) -> Placement {
        default_placement(&self.nodes)
    }

    /// A hash of everything the nodes must agree on. Nodes compare it at
    /// bootstrap, so a node started with another file is refused.
    pub fn fingerprint(&self) -> u64 {
        // FNV-1a over a canonical text: stable across builds and platforms
        // (std's hashers are not).
        let canonical = format!(
            "{:?}|{}|{}|{:#x}|{}|{:?}|{}|{}",
            self.transport,
            self.connect_timeout.as_millis(),
            self.op_timeout.as_millis(),
            self.region_base,
            self.page_size,
            self.placement,
            self.cache_size,
            self.nodes
                .iter()
                .map(|n| format!(
                    "{}:{}:{}:{:?}:{}:{}:{}",
                    n.host,
                    n.port,
                    n.memory,
                    n.rdma_device,
                    n.rdma_port,
                    n.gid_index,
                    n.role.name()
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        canonical.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}

/// `n` TCP ports on 127.0.0.1 that were free a moment ago: all bound at
/// once (so they differ) and released together. The kernel does not hand a
/// just-released listening port out again as an ephemeral port right away,
/// so the race with other programs is slight.
pub fn free_loopback_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// Splits `HOST:PORT` (`[v6]:PORT` for IPv6) and checks both parts.
pub fn parse_host_port(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| "it has no \":PORT\"".to_string())?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("{v6:?} is not an IPv6 address"));
            }
            v6
        }
        None => {
            if host.contains(':') {
                return Err("an IPv6 address must be written in brackets: [ADDR]:PORT".into());
            }
            check_host(host).map_err(|why| format!("host {host:?}: {why}"))?;
            host
        }
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("port {port:?} is not in 1..=65535"))?;
    Ok((host.to_string(), port))
}

/// See [`ClusterConfig::default_placement`].
fn default_placement(nodes: &[NodeConfig]) -> Placement {
    if nodes.iter().any(|n| n.role == Role::Memory) {
        Placement::Interleaved
    } else {
        DEFAULT_PLACEMENT
    }
}

fn number(value: &RawNumber) -> Result<u64, String> {
    match value {
        RawNumber::Int(i) => u64::try_from(*i).map_err(|_| format!("{i} is negative")),
        RawNumber::Text(s) => parse_size(s),
    }
}

fn same_endpoint(a: &NodeConfig, b: &NodeConfig) -> bool {
    fn canonical(host: &str) -> String {
        match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => "loopback".into(),
            Ok(ip) => ip.to_string(),
            Err(_) if host.eq_ignore_ascii_case("localhost") => "loopback".into(),
            Err(_) => host.to_ascii_lowercase(),
        }
    }
    a.port == b.port && canonical(&a.host) == canonical(&b.host)
}

/// An IP literal, or a host name made of RFC 1123 labels.
fn check_host(host: &str) -> Result<(), &'static str> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if host.is_empty() {
        return Err("it is empty");
    }
    if host.len() > 253 {
        return Err("a host name is at most 253 characters");
    }
    if host
        .split('.')
        .all(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("it looks like an IPv4 address but is not one");
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label must have 1 to 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label may not start or end with '-'");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("only letters, digits, '-' and '.' are allowed in a host name");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
