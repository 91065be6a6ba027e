//! A network of a test's own for a nats-server cluster: each node in a network namespace of
//! its own behind a veth pair, whose host end is a port of one bridge in the host namespace.
//! Addresses are loopback-range (`127.<octet>.<node>.2`, the host `127.<octet>.255.254`), so
//! they clash with no real network. Cutting a node off takes its port down: its TCP
//! connections neither close nor carry anything until the port is up again, as in a real
//! partition. Everything is removed when the network is dropped, on a panic too.
//!
//! The nodes reach each other through the bridge (layer 2), so the host forwards no packet
//! and no host-wide setting changes: `route_localnet` is set on the bridge and inside the
//! nodes' namespaces only, and a route in each `local` table sends the test's addresses to
//! the bridge or veth instead of `lo`.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Set to `1` to let the tests that need network namespaces pass without running where
/// they cannot be made (no root, no CAP_NET_ADMIN); otherwise such a test fails and says why.
pub const SKIP_NETNS_VARIABLE: &str = "CONTACT_IMPORT_SKIP_NETNS";

/// Every name this module gives starts with this, then the creating process's id.
const NAME_PREFIX: &str = "cit";

/// Networks made by this process so far: part of every name, so that the tests of one
/// process never share one.
static NETWORKS_MADE: AtomicUsize = AtomicUsize::new(0);

/// The bridge, and each node's namespace and veth pair.
pub struct NodeNetwork {
    octet: u8,
    bridge: String,
    nodes: Vec<NodeNamespace>,
}

struct NodeNamespace {
    namespace: String,
    host_end: String,
    address: Ipv4Addr,
}

impl NodeNetwork {
    /// A network of `nodes` namespaces, or `None` (said on stderr) when namespaces cannot be
    /// made here and `CONTACT_IMPORT_SKIP_NETNS=1` allows skipping. Without that variable a
    /// machine that cannot make them fails the test: a test that needs them never passes
    /// silently.
    pub fn create_or_skip(nodes: usize) -> Option<Self> {
        match Self::create(nodes) {
            Ok(network) => Some(network),
            Err(error) if std::env::var(SKIP_NETNS_VARIABLE).as_deref() == Ok("1") => {
                eprintln!("skipped, {SKIP_NETNS_VARIABLE}=1: {error}");
                None
            }
            Err(error) => panic!(
                "this test needs network namespaces (root, or CAP_NET_ADMIN, and `ip`): \
                 {error}; set {SKIP_NETNS_VARIABLE}=1 to skip it explicitly"
            ),
        }
    }

    /// Makes the network, on a second octet nobody on this machine uses; a clash with a
    /// network another process makes at the same moment is retried on another octet.
    pub fn create(nodes: usize) -> Result<Self, String> {
        assert!(nodes <= 250, "at most 250 nodes");
        remove_stale();
        let mut last_error = String::new();
        for _ in 0..5 {
            let octet = unused_octet()?;
            let sequence = NETWORKS_MADE.fetch_add(1, Ordering::Relaxed);
            let mut network = Self {
                octet,
                bridge: format!("{NAME_PREFIX}{}_{sequence}b", std::process::id()),
                nodes: Vec::new(),
            };
            // On an error, `network` is dropped, removing what was made of it.
            match network.build(sequence, nodes) {
                Ok(()) => return Ok(network),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    /// Where node `node` listens (clients and routes alike).
    pub fn address(&self, node: usize) -> Ipv4Addr {
        self.nodes[node].address
    }

    /// The command and arguments that run a program inside node `node`'s namespace:
    /// `ip netns exec` execs the program, so the child's process id is the program's own.
    pub fn launcher(&self, node: usize) -> Vec<OsString> {
        ["ip", "netns", "exec", &self.nodes[node].namespace]
            .map(OsString::from)
            .into()
    }

    /// Cuts node `node` off from the host and the other nodes: nothing it sends arrives,
    /// nothing reaches it, and no connection is closed.
    pub fn cut_off(&self, node: usize) {
        ip(&["link", "set", &self.nodes[node].host_end, "down"]).expect("cutting a node off");
    }

    /// Connects node `node` again: its connections carry on where they stopped.
    pub fn heal(&self, node: usize) {
        ip(&["link", "set", &self.nodes[node].host_end, "up"]).expect("healing a node");
    }

    fn build(&mut self, sequence: usize, nodes: usize) -> Result<(), String> {
        let octet = self.octet;
        let subnet = format!("127.{octet}.0.0/16");
        let host_address = format!("127.{octet}.255.254");
        ip(&["link", "add", &self.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{host_address}/16"),
            "dev",
            &self.bridge,
        ])?;
        sysctl(
            None,
            &[&format!("net.ipv4.conf.{}.route_localnet=1", self.bridge)],
        )?;
        ip(&["link", "set", &self.bridge, "up"])?;
        // Above the `local 127.0.0.0/8 dev lo` route that would take them for the host's own.
        // Another process that took the same octet at the same moment makes this fail.
        ip(&[
            "route",
            "add",
            &subnet,
            "dev",
            &self.bridge,
            "src",
            &host_address,
            "table",
            "local",
        ])?;
        let process = std::process::id();
        for node in 0..nodes {
            let name = format!("{NAME_PREFIX}{process}_{sequence}");
            let namespace = format!("{name}n{node}");
            let host_end = format!("{name}h{node}");
            let node_end = format!("{name}p{node}");
            let address = Ipv4Addr::new(127, octet, node as u8, 2);
            ip(&["netns", "add", &namespace])?;
            self.nodes.push(NodeNamespace {
                namespace: namespace.clone(),
                host_end: host_end.clone(),
                address,
            });
            ip(&[
                "link", "add", &host_end, "type", "veth", "peer", "name", &node_end, "netns",
                &namespace,
            ])?;
            ip(&["link", "set", &host_end, "master", &self.bridge, "up"])?;
            ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &namespace,
                "addr",
                "add",
                &format!("{address}/16"),
                "dev",
                &node_end,
            ])?;
            sysctl(
                Some(&namespace),
                &[
                    "net.ipv4.conf.all.route_localnet=1",
                    &format!("net.ipv4.conf.{node_end}.route_localnet=1"),
                ],
            )?;
            ip(&["-n", &namespace, "link", "set", &node_end, "up"])?;
            ip(&[
                "-n",
                &namespace,
                "route",
                "add",
                &subnet,
                "dev",
                &node_end,
                "src",
                &address.to_string(),
                "table",
                "local",
            ])?;
        }
        Ok(())
    }
}

impl Drop for NodeNetwork {
    /// Deleting a veth's host end deletes its pair; a namespace whose processes are still
    /// exiting goes when they have.
    fn drop(&mut self) {
        for node in &self.nodes {
            let _ = ip(&["link", "del", &node.host_end]);
            let _ = ip(&["netns", "del", &node.namespace]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// Runs `ip` with `arguments`; the error says what was asked and what `ip` answered.
fn ip(arguments: &[&str]) -> Result<(), String> {
    run(
        Command::new("ip").args(arguments),
        &format!("ip {}", arguments.join(" ")),
    )
}

/// Sets kernel parameters, in `namespace` or in the host's.
fn sysctl(namespace: Option<&str>, settings: &[&str]) -> Result<(), String> {
    let mut command = match namespace {
        Some(namespace) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", namespace, "sysctl"]);
            command
        }
        None => Command::new("sysctl"),
    };
    command.arg("-qw").args(settings);
    run(&mut command, &format!("sysctl -w {}", settings.join(" ")))
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|error| format!("`{what}` did not run: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{what}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn output_of(program: &str, arguments: &[&str]) -> String {
    Command::new(program)
        .args(arguments)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

/// A random second octet that no address or local route of the host uses.
fn unused_octet() -> Result<u8, String> {
    let in_use = format!(
        "{}\n{}",
        output_of("ip", &["-o", "-4", "addr", "show"]),
        output_of("ip", &["route", "show", "table", "local"])
    );
    for _ in 0..50 {
        let octet = 100 + uuid::Uuid::new_v4().as_bytes()[0] % 150;
        if !in_use.contains(&format!("127.{octet}.")) {
            return Ok(octet);
        }
    }
    Err("no free 127.x.0.0/16 range for the test's network".to_string())
}

/// Removes what an earlier test process left when it was killed before its drop ran: the
/// namespaces and bridges named after a process that no longer runs, and the servers still
/// running in such a namespace.
fn remove_stale() {
    let is_stale = |name: &str| {
        name.strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .and_then(|(process, _)| process.parse::<u32>().ok())
            .is_some_and(|process| !std::path::Path::new(&format!("/proc/{process}")).exists())
    };
    for line in output_of("ip", &["netns", "list"]).lines() {
        let Some(namespace) = line.split_whitespace().next() else {
            continue;
        };
        if !is_stale(namespace) {
            continue;
        }
        for process in output_of("ip", &["netns", "pids", namespace]).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", process]).status();
        }
        let _ = ip(&["netns", "del", namespace]);
    }
    for line in output_of("ip", &["-o", "link", "show", "type", "bridge"]).lines() {
        // "12: name: <FLAGS> ..."
        let Some(bridge) = line.split(": ").nth(1) else {
            continue;
        };
        if is_stale(bridge) {
            let _ = ip(&["link", "del", bridge]);
        }
    }
}
