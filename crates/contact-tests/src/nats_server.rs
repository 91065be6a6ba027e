//! nats-server processes of a test's own: one that can be killed and started again on the
//! same port and store, and three that form a JetStream cluster, on the host's loopback or
//! each in a network namespace of its own that a test can cut off.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

use crate::netns::NodeNetwork;
use crate::unique;

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// One nats-server child process, killed when dropped.
pub struct NatsServer {
    arguments: Vec<OsString>,
    /// The address it listens on for clients.
    pub host: String,
    pub port: u16,
    /// A command that runs the server where it belongs (`ip netns exec <namespace>`), or
    /// nothing to run it directly.
    launcher: Vec<OsString>,
    child: Option<Child>,
    /// A store of its own, removed when dropped.
    store: Option<PathBuf>,
}

impl NatsServer {
    /// Starts nats-server on `port` with `arguments` and waits until it says it is ready.
    pub async fn start(port: u16, arguments: Vec<OsString>) -> Self {
        Self::start_with("127.0.0.1", port, Vec::new(), arguments).await
    }

    /// Starts nats-server through `launcher` (say `ip netns exec <namespace>`), listening for
    /// clients on `host:port`.
    async fn start_with(
        host: &str,
        port: u16,
        launcher: Vec<OsString>,
        arguments: Vec<OsString>,
    ) -> Self {
        let mut server = Self {
            arguments,
            host: host.to_string(),
            port,
            launcher,
            child: None,
            store: None,
        };
        server.restart().await;
        server
    }

    /// A JetStream server with its own store directory, open to anybody, on a free port.
    pub async fn start_open() -> Self {
        let port = free_port();
        let store = std::env::temp_dir().join(format!("contact-import-{}", unique("nats-")));
        let mut server = Self::start(port, open_arguments(port, &store)).await;
        server.store = Some(store);
        server
    }

    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    /// Kills it at once (SIGKILL): no goodbye to its clients, whatever was not synced is lost
    /// as on a crash.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("nats-server killed");
        }
    }

    /// Asks it to read its configuration again (SIGHUP), as an operator does after
    /// `contact-import-admin tenant add`.
    pub fn reload(&self) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("a running nats-server");
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGHUP to nats-server {pid}");
    }

    /// Starts it again (after [`Self::kill`]) with the same port, store and configuration.
    pub async fn restart(&mut self) {
        self.kill().await;
        let binary =
            std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "/usr/sbin/nats-server".into());
        let mut command = match self.launcher.split_first() {
            Some((program, arguments)) => {
                let mut command = Command::new(program);
                command.args(arguments).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        let mut child = command
            .args(&self.arguments)
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {binary}: {error}"));
        // The server says when it is ready; it keeps logging to the pipe afterwards.
        let mut log = tokio::io::BufReader::new(child.stderr.take().expect("piped")).lines();
        let ready = async {
            let mut said = Vec::new();
            while let Some(line) = log.next_line().await.expect("reading the server's log") {
                if line.contains("Server is ready") {
                    return;
                }
                said.push(line);
            }
            panic!(
                "nats-server stopped before it was ready:\n{}",
                said.join("\n")
            );
        };
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("nats-server ready within 20 s");
        tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
        self.child = Some(child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(store) = &self.store {
            let _ = std::fs::remove_dir_all(store);
        }
    }
}

fn open_arguments(port: u16, store: &std::path::Path) -> Vec<OsString> {
    open_arguments_on("127.0.0.1", port, store)
}

fn open_arguments_on(host: &str, port: u16, store: &std::path::Path) -> Vec<OsString> {
    let mut arguments: Vec<OsString> = ["-a", host, "-p", &port.to_string(), "-js"]
        .map(OsString::from)
        .into();
    arguments.push("-sd".into());
    arguments.push(store.into());
    arguments
}

/// Three JetStream servers that form one cluster, each with its own store.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
    /// Each node's server name, in the order of `nodes`.
    pub names: Vec<String>,
    store: PathBuf,
    /// The namespaces the nodes run in, when they do; dropped after the nodes.
    network: Option<NodeNetwork>,
}

/// Where one node of a cluster listens, and how it is started.
struct NodePlacement {
    host: String,
    client_port: u16,
    route_port: u16,
    launcher: Vec<OsString>,
}

impl NatsCluster {
    /// Three nodes on the host's loopback, on free ports.
    pub async fn start() -> Self {
        let placements = (0..3)
            .map(|_| NodePlacement {
                host: "127.0.0.1".to_string(),
                client_port: free_port(),
                route_port: free_port(),
                launcher: Vec::new(),
            })
            .collect();
        Self::start_placed(placements, None).await
    }

    /// Three nodes, each in a network namespace of its own (see [`NodeNetwork`]), so that
    /// [`Self::cut_off`] can partition one from the rest and from the host's clients. `None`
    /// when namespaces cannot be made here and the test may be skipped.
    pub async fn start_partitionable() -> Option<Self> {
        let network = NodeNetwork::create_or_skip(3)?;
        // Each node has an address of its own, so every node takes the usual ports.
        let placements = (0..3)
            .map(|node| NodePlacement {
                host: network.address(node).to_string(),
                client_port: 4222,
                route_port: 6222,
                launcher: network.launcher(node),
            })
            .collect();
        Some(Self::start_placed(placements, Some(network)).await)
    }

    async fn start_placed(placements: Vec<NodePlacement>, network: Option<NodeNetwork>) -> Self {
        let cluster_name = unique("c");
        let store = std::env::temp_dir().join(format!("contact-import-{cluster_name}"));
        let routes = placements
            .iter()
            .map(|node| format!("nats://{}:{}", node.host, node.route_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        let mut names = Vec::new();
        for (index, placement) in placements.into_iter().enumerate() {
            let name = format!("{cluster_name}-n{index}");
            let mut arguments =
                open_arguments_on(&placement.host, placement.client_port, &store.join(&name));
            for argument in [
                "--name",
                &name,
                "--cluster_name",
                &cluster_name,
                "--cluster",
                &format!("nats://{}:{}", placement.host, placement.route_port),
                "--routes",
                &routes,
            ] {
                arguments.push(argument.into());
            }
            nodes.push(
                NatsServer::start_with(
                    &placement.host,
                    placement.client_port,
                    placement.launcher,
                    arguments,
                )
                .await,
            );
            names.push(name);
        }
        let cluster = Self {
            nodes,
            names,
            store,
            network,
        };
        cluster.wait_for_jetstream().await;
        cluster
    }

    /// Cuts the node named `name` off from the other nodes and from every client (see
    /// [`NodeNetwork::cut_off`]); only for a cluster from [`Self::start_partitionable`].
    pub fn cut_off(&self, name: &str) {
        self.partitionable_network().cut_off(self.index_of(name));
    }

    /// Connects the node named `name` again after [`Self::cut_off`].
    pub fn heal(&self, name: &str) {
        self.partitionable_network().heal(self.index_of(name));
    }

    fn partitionable_network(&self) -> &NodeNetwork {
        self.network
            .as_ref()
            .expect("a cluster from NatsCluster::start_partitionable")
    }

    fn index_of(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|node| node == name)
            .unwrap_or_else(|| panic!("no node is named {name}"))
    }

    /// Every node, comma-separated, as `NATS_URL` takes them.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node whose server name is `name`.
    pub fn node_named(&mut self, name: &str) -> &mut NatsServer {
        let index = self.index_of(name);
        &mut self.nodes[index]
    }

    /// Waits until the cluster has elected its JetStream leader and can place a stream on
    /// three nodes: servers say they are ready before that.
    async fn wait_for_jetstream(&self) {
        let urls = self.urls();
        let client = async_nats::connect(urls.split(',').collect::<Vec<_>>())
            .await
            .expect("connecting to the cluster");
        let jetstream = jetstream::new(client);
        let probe = unique("PROBE");
        let placed = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let created = jetstream
                    .create_stream(jetstream::stream::Config {
                        name: probe.clone(),
                        subjects: vec![format!("{probe}.>")],
                        num_replicas: 3,
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(_) => return,
                    // No JetStream leader yet: the servers are still electing one.
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        })
        .await;
        placed.expect("the JetStream cluster formed within 60 s");
        jetstream
            .delete_stream(&probe)
            .await
            .expect("probe stream deleted");
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
