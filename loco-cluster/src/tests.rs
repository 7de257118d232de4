use super::*;
use proptest::prelude::*;

fn parse(text: &str) -> Result<ClusterConfig, ConfigError> {
    ClusterConfig::from_toml_str(text, "test.toml")
}

fn message(text: &str) -> String {
    parse(text)
        .expect_err("the config should be refused")
        .to_string()
}

const TWO_NODES: &str = r#"
[cluster]
transport = "tcp"
[memory]
page_size = 4096
placement = "first-touch"
cache_size = "256MiB"
[[node]]
host = "127.0.0.1"
port = 7000
memory = "1GiB"
[[node]]
host = "node-b.example"
port = 7001
memory = 536870912
"#;

#[test]
fn parses_a_complete_file() {
    let c = parse(TWO_NODES).unwrap();
    assert_eq!(c.transport, TransportKind::Tcp);
    assert_eq!(c.placement, Placement::FirstTouch);
    assert_eq!(c.cache_size, 256 << 20);
    assert_eq!(c.nodes.len(), 2);
    assert_eq!(c.nodes[1].memory, 512 << 20);
    assert_eq!(c.region_size(), (1 << 30) + (512 << 20));
    assert_eq!(c.nodes[1].address(), "node-b.example:7001");
}

#[test]
fn the_example_cluster_toml_in_the_repository_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cluster.toml");
    let c = ClusterConfig::load(&path).unwrap();
    assert_eq!(c.num_nodes(), 4);
}

#[test]
fn default_is_n_nodes_on_loopback() {
    let c = ClusterConfig::localhost(4).unwrap();
    assert_eq!(c.num_nodes(), 4);
    assert!(c.nodes.iter().all(|n| n.host == "127.0.0.1"));
    assert_eq!(c.nodes[3].port, DEFAULT_BASE_PORT + 3);
    assert_eq!(c.transport, TransportKind::Tcp);
}

#[test]
fn rejects_duplicate_nodes_including_loopback_aliases() {
    let m = message(
        "[[node]]\nhost=\"127.0.0.1\"\nport=7000\n[[node]]\nhost=\"localhost\"\nport=7000\n",
    );
    assert!(
        m.contains("node 1") && m.contains("duplicate of node 0"),
        "{m}"
    );
}

#[test]
fn rejects_bad_addresses() {
    for host in ["", "999.1.1.1", "bad host", "-lead.example", "a..b"] {
        let m = message(&format!("[[node]]\nhost={host:?}\nport=7000\n"));
        assert!(m.contains("is not a valid address"), "{host}: {m}");
    }
    let m = message("[[node]]\nhost=\"127.0.0.1\"\nport=70000\n");
    assert!(m.contains("port 70000"), "{m}");
    let m = message("[[node]]\nhost=\"127.0.0.1\"\nport=0\n");
    assert!(m.contains("port 0"), "{m}");
}

#[test]
fn rejects_memory_sizes_that_do_not_parse() {
    let m = message("[[node]]\nhost=\"127.0.0.1\"\nport=7000\nmemory=\"lots\"\n");
    assert!(
        m.contains("node 0: memory") && m.contains("does not start with a number"),
        "{m}"
    );
    let m = message("[[node]]\nhost=\"127.0.0.1\"\nport=7000\nmemory=\"4 furlongs\"\n");
    assert!(m.contains("unknown unit"), "{m}");
    let m = message("[[node]]\nhost=\"127.0.0.1\"\nport=7000\nmemory=-5\n");
    assert!(m.contains("negative"), "{m}");
    let m = message("[[node]]\nhost=\"127.0.0.1\"\nport=7000\nmemory=\"1000\"\n");
    assert!(m.contains("multiple of the page size"), "{m}");
}

#[test]
fn rejects_malformed_toml_with_its_position() {
    let m = message("[[node]\nhost=1");
    assert!(m.starts_with("test.toml: "), "{m}");
    assert!(m.contains("line 1"), "{m}");
}

#[test]
fn rejects_unknown_keys_and_values() {
    let m = message("[cluster]\ntransprt=\"tcp\"\n[[node]]\nhost=\"127.0.0.1\"\nport=7000\n");
    assert!(m.contains("transprt"), "{m}");
    let m = message("[cluster]\ntransport=\"udp\"\n[[node]]\nhost=\"127.0.0.1\"\nport=7000\n");
    assert!(m.contains("udp"), "{m}");
    let m = message("[memory]\nplacement=\"random\"\n[[node]]\nhost=\"127.0.0.1\"\nport=7000\n");
    assert!(m.contains("random"), "{m}");
}

#[test]
fn rejects_inconsistent_settings() {
    assert!(message("").contains("at least one node"));
    let node = "[[node]]\nhost=\"127.0.0.1\"\nport=7000\n";
    assert!(message(&format!("[memory]\npage_size=5000\n{node}")).contains("power of two"));
    assert!(message(&format!("[memory]\nregion_base=\"0x1001\"\n{node}")).contains("region_base"));
    assert!(message(&format!(
        "[memory]\nregion_base=\"0x7fff_ffff_0000\"\n{node}"
    ))
    .contains("does not fit"));
    assert!(message(&format!("[memory]\ncache_size=100\n{node}")).contains("cache_size"));
    assert!(message(&format!("{node}rdma_device=\"mlx5_0\"\n")).contains("rdma_device is set"));
}

#[test]
fn missing_file_is_a_clear_error() {
    let e = ClusterConfig::load(Path::new("/nonexistent/cluster.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/cluster.toml: cannot read the file"),
        "{e}"
    );
}

#[test]
fn fingerprint_changes_with_anything_nodes_must_agree_on() {
    let a = parse(TWO_NODES).unwrap();
    let mut b = a.clone();
    assert_eq!(a.fingerprint(), b.fingerprint());
    b.nodes[1].port = 7002;
    assert_ne!(a.fingerprint(), b.fingerprint());
    let mut c = a.clone();
    c.page_size = 8192;
    assert_ne!(a.fingerprint(), c.fingerprint());
}

#[test]
fn sizes_parse_with_units() {
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("64KiB"), Ok(64 << 10));
    assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
    assert_eq!(parse_size("1G"), Ok(1 << 30));
    assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
    assert_eq!(parse_size("0x4000_0000_0000"), Ok(0x4000_0000_0000));
    assert!(parse_size("99999999999TiB")
        .unwrap_err()
        .contains("64 bits"));
    assert_eq!(ByteSize(3 << 30).to_string(), "3 GiB");
    assert_eq!(ByteSize(1536 << 10).to_string(), "1536 KiB");
    assert_eq!(ByteSize(100).to_string(), "100 B");
}

proptest! {
    #[test]
    fn binary_sizes_round_trip(n in 0u64..1 << 20, unit in 0usize..4) {
        let (suffix, shift) = [("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40)][unit];
        prop_assert_eq!(parse_size(&format!("{n}{suffix}")), Ok(n << shift));
    }

    #[test]
    fn parse_size_never_panics(s in ".{0,24}") {
        let _ = parse_size(&s);
    }
}

#[test]
fn to_toml_parses_back_to_the_same_config() {
    let mut c = parse(TWO_NODES).unwrap();
    c.transport = TransportKind::Verbs;
    c.nodes[0].rdma_device = Some("mlx5_0".into());
    c.nodes[1].rdma_device = Some("mlx5_1".into());
    let back = ClusterConfig::from_toml_str(&c.to_toml(), "round trip").unwrap();
    assert_eq!(back, c);
    assert_eq!(back.fingerprint(), c.fingerprint());
}

#[test]
fn launch_methods_default_by_host_and_round_trip() {
    let c = parse(TWO_NODES).unwrap();
    assert_eq!(c.nodes[0].launch_method(), Launch::Local);
    assert_eq!(c.nodes[1].launch_method(), Launch::Ssh);
    assert_eq!(c.launch, LaunchSettings::default());
    assert_eq!(c.launch.ssh, ["ssh", "-o", "BatchMode=yes"]);

    let text = format!(
        "{TWO_NODES}daemon = \"node-b.example:7469\"\n[[node]]\nhost = \"10.0.0.3\"\nport = 7002\n\
         launch = \"ssh\"\n[[node]]\nhost = \"10.0.0.4\"\nport = 7003\nlaunch = \"local\"\n\
         [[node]]\nhost = \"::1\"\nport = 7004\ndaemon = \"[::1]:7469\"\n\
         [launch]\nssh = [\"/opt/my ssh\", \"-p\", \"2222\", \"quote\\\"back\\\\slash\"]\n\
         remote_daemon = \"/opt/loco/bin/loco-daemon\"\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(
        c.nodes[1].launch_method(),
        Launch::Daemon("node-b.example:7469".into())
    );
    assert_eq!(c.nodes[2].launch_method(), Launch::Ssh);
    assert_eq!(c.nodes[3].launch_method(), Launch::Local);
    assert_eq!(
        c.nodes[4].launch_method(),
        Launch::Daemon("[::1]:7469".into())
    );
    assert_eq!(c.launch.ssh[3], "quote\"back\\slash");
    assert_eq!(
        c.launch.remote_daemon.as_deref(),
        Some("/opt/loco/bin/loco-daemon")
    );
    let back = ClusterConfig::from_toml_str(&c.to_toml(), "round trip").unwrap();
    assert_eq!(back, c);
    // How nodes are started is not something the nodes must agree on.
    let mut other = c.clone();
    other.launch = LaunchSettings::default();
    other.nodes[2].launch = None;
    assert_eq!(other.fingerprint(), c.fingerprint());
}

#[test]
fn rejects_bad_launch_settings_naming_the_entry() {
    let node = "[[node]]\nhost = \"10.0.0.1\"\nport = 7000\n";
    let m = message(&format!("{node}launch = \"rsh\"\n"));
    assert!(m.starts_with("test.toml: node 0: launch \"rsh\""), "{m}");
    assert!(m.contains("not a launch method"), "{m}");
    for (bad, why) in [
        ("node-b", "no \":PORT\""),
        ("node-b:0", "not in 1..=65535"),
        ("node-b:70000", "not in 1..=65535"),
        ("bad_host:7469", "host \"bad_host\""),
        ("::1:7469", "brackets"),
        ("[zz]:7469", "not an IPv6 address"),
    ] {
        let m = message(&format!("{node}daemon = \"{bad}\"\n"));
        assert!(
            m.starts_with(&format!(
                "test.toml: node 0: daemon \"{bad}\" is not the HOST:PORT"
            )),
            "{m}"
        );
        assert!(m.contains(why), "{bad}: {m}");
    }
    let m = message(&format!("{node}daemon = \"a:1\"\nlaunch = \"ssh\"\n"));
    assert!(m.contains("node 0: both daemon and launch"), "{m}");
    let m = message(&format!("{node}[launch]\nssh = []\n"));
    assert!(m.contains("launch.ssh must name a command"), "{m}");
    let m = message(&format!("{node}[launch]\nremote_daemon = \"\"\n"));
    assert!(m.contains("launch.remote_daemon is empty"), "{m}");
    let m = message(&format!("{node}[launch]\nsshh = [\"ssh\"]\n"));
    assert!(m.contains("sshh"), "{m}");
}

#[test]
fn parse_host_port_accepts_names_and_addresses() {
    assert_eq!(
        parse_host_port("node-3.cluster:7469"),
        Ok(("node-3.cluster".into(), 7469))
    );
    assert_eq!(parse_host_port("10.0.0.1:1"), Ok(("10.0.0.1".into(), 1)));
    assert_eq!(parse_host_port("[fe80::1]:80"), Ok(("fe80::1".into(), 80)));
}

#[test]
fn to_toml_writes_what_toml_integers_cannot_hold_and_control_characters() {
    let mut c = parse(TWO_NODES).unwrap();
    // Past i64::MAX: written as a string of digits, read back by parse_size.
    c.cache_size = u64::MAX;
    c.launch.ssh = vec!["ssh".into(), "-o".into(), "tab\there\u{1}\u{7f}".into()];
    c.nodes[0].launch = Some(Launch::Daemon("[::1]:7469".into()));
    let text = c.to_toml();
    let back = ClusterConfig::from_toml_str(&text, "round trip").unwrap();
    assert_eq!(back, c, "{text}");
    assert!(
        text.contains("[[node]]") && text.contains("[memory]"),
        "{text}"
    );
}

const COMPUTE_AND_MEMORY: &str = r#"
[[node]]
host = "127.0.0.1"
port = 7000
[[node]]
host = "127.0.0.1"
port = 7001
role = "memory"
[[node]]
host = "127.0.0.1"
port = 7002
role = "compute"
[[node]]
host = "127.0.0.1"
port = 7003
role = "memory"
"#;

#[test]
fn roles_default_to_compute_and_memory_nodes_get_interleaved_pages() {
    let c = parse(TWO_NODES).unwrap();
    assert!(c.nodes.iter().all(|n| n.role == Role::Compute));
    assert_eq!(c.compute_nodes(), vec![0, 1]);
    assert!(c.memory_nodes().is_empty());
    assert_eq!(c.default_placement(), Placement::FirstTouch);

    let c = parse(COMPUTE_AND_MEMORY).unwrap();
    assert_eq!(c.compute_nodes(), vec![0, 2]);
    assert_eq!(c.memory_nodes(), vec![1, 3]);
    // No placement given: the pages are interleaved over the memory nodes.
    assert_eq!(c.placement, Placement::Interleaved);
    // One given still counts.
    let c = parse(&format!(
        "[memory]\nplacement = \"first-touch\"\n{COMPUTE_AND_MEMORY}"
    ))
    .unwrap();
    assert_eq!(c.placement, Placement::FirstTouch);
    let back = ClusterConfig::from_toml_str(&c.to_toml(), "round trip").unwrap();
    assert_eq!(back, c);
    assert!(c.to_toml().contains("role = \"memory\""), "{}", c.to_toml());
}

#[test]
fn roles_are_part_of_the_fingerprint() {
    let a = parse(COMPUTE_AND_MEMORY).unwrap();
    let mut b = a.clone();
    b.nodes[3].role = Role::Compute;
    assert_ne!(a.fingerprint(), b.fingerprint());
}

#[test]
fn rejects_clusters_whose_roles_cannot_run_a_program() {
    let memory =
        |port: u16| format!("[[node]]\nhost=\"127.0.0.1\"\nport={port}\nrole=\"memory\"\n");
    let compute = |port: u16| format!("[[node]]\nhost=\"127.0.0.1\"\nport={port}\n");
    let m = message(&format!("{}{}", memory(7000), memory(7001)));
    assert!(
        m.starts_with("test.toml: every node has role = \"memory\"")
            && m.contains("at least one compute node"),
        "{m}"
    );
    let m = message(&format!("{}{}", memory(7000), compute(7001)));
    assert!(
        m.contains("node 0 has role = \"memory\"") && m.contains("make it a compute node"),
        "{m}"
    );
    let m = message(&format!("{}role=\"storage\"\n", compute(7000)));
    assert!(m.contains("storage") && m.contains("compute"), "{m}");
}
