//! Ensembles of real `groved` processes on 127.0.0.1 with reserved ports.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use grove_client::proto::{ServerMode, StatusResponse};
use grove_client::{Client, Error};

use crate::harness::{Server, free_port};

/// Raft timing for tests: quick elections, still far above loopback latencies.
pub const FAST_RAFT: &[&str] = &[
    "--heartbeat-ms",
    "100",
    "--election-timeout-min-ms",
    "600",
    "--election-timeout-max-ms",
    "1200",
    "--request-timeout-ms",
    "3000",
];

pub struct Member {
    pub id: u64,
    /// A command groved runs under from its next restart (see `Server::try_start_on_prefixed`).
    pub prefix: Vec<String>,
    pub ports: (u16, u16, u16),
    pub server: Option<Server>,
    pub dir: PathBuf,
    pub args: Vec<String>,
}

pub struct Cluster {
    pub members: Vec<Member>,
    /// With `start_proxied`: the directed peer links, (from, to) -> proxy.
    pub links: std::collections::HashMap<(u64, u64), crate::proxy::Link>,
}

impl Cluster {
    /// Starts `voters` voters and `observers` observers (ids 1..), each in `root/n<id>`.
    pub fn start(root: &Path, voters: u64, observers: u64, extra: &[&str]) -> Cluster {
        let ids: Vec<u64> = (1..=voters + observers).collect();
        let ports: Vec<(u16, u16, u16)> = ids.iter().map(|_| (free_port(), free_port(), free_port())).collect();
        let list = |range: &[u64]| {
            range
                .iter()
                .map(|id| format!("{id}=127.0.0.1:{}", ports[(*id - 1) as usize].1))
                .collect::<Vec<_>>()
                .join(",")
        };
        let voter_ids: Vec<u64> = (1..=voters).collect();
        let observer_ids: Vec<u64> = (voters + 1..=voters + observers).collect();
        let mut members = Vec::new();
        for id in ids {
            let mut args: Vec<String> = vec!["--id".into(), id.to_string(), "--peers".into(), list(&voter_ids)];
            if !observer_ids.is_empty() {
                args.extend(["--observers".into(), list(&observer_ids)]);
            }
            args.extend(FAST_RAFT.iter().map(|s| s.to_string()));
            args.extend(extra.iter().map(|s| s.to_string()));
            members.push(Member {
                id,
                prefix: Vec::new(),
                ports: ports[(id - 1) as usize],
                server: None,
                dir: root.join(format!("n{id}")),
                args,
            });
        }
        // Start them all before waiting on any: each needs the others to form the ensemble.
        let mut cluster = Cluster { members, links: Default::default() };
        cluster.start_all();
        cluster
    }

    /// Starts `voters` voters whose every peer link goes through a fault-injecting proxy:
    /// server i reaches server j through link (i, j).
    pub async fn start_proxied(root: &Path, voters: u64, extra: &[&str]) -> Cluster {
        let ports: Vec<(u16, u16, u16)> = (0..voters).map(|_| (free_port(), free_port(), free_port())).collect();
        let mut links = std::collections::HashMap::new();
        for i in 1..=voters {
            for j in (1..=voters).filter(|j| *j != i) {
                let target = format!("127.0.0.1:{}", ports[(j - 1) as usize].1);
                links.insert((i, j), crate::proxy::Link::start(target).await);
            }
        }
        let mut members = Vec::new();
        for i in 1..=voters {
            let peers = (1..=voters)
                .map(|j| {
                    let port = if j == i { ports[(i - 1) as usize].1 } else { links[&(i, j)].port };
                    format!("{j}=127.0.0.1:{port}")
                })
                .collect::<Vec<_>>()
                .join(",");
            let mut args: Vec<String> = vec!["--id".into(), i.to_string(), "--peers".into(), peers];
            args.extend(FAST_RAFT.iter().map(|s| s.to_string()));
            args.extend(extra.iter().map(|s| s.to_string()));
            members.push(Member {
                id: i,
                prefix: Vec::new(),
                ports: ports[(i - 1) as usize],
                server: None,
                dir: root.join(format!("n{i}")),
                args,
            });
        }
        let mut cluster = Cluster { members, links };
        cluster.start_all();
        cluster
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&self, id: u64) {
        for ((from, to), link) in &self.links {
            if *from == id || *to == id {
                link.cut();
            }
        }
    }

    /// Mends every link.
    pub fn heal(&self) {
        for link in self.links.values() {
            link.mend();
        }
    }

    fn start_all(&mut self) {
        let cluster = self;
        std::thread::scope(|s| {
            for m in cluster.members.iter_mut() {
                s.spawn(move || m.server = Some(Server::start_on(&m.dir, m.ports, &m.args)));
            }
        });
    }

    /// Adds a server that joins later (`--join`), not yet a member.
    pub fn add_joiner(&mut self, root: &Path, extra: &[&str]) -> u64 {
        let id = self.members.len() as u64 + 1;
        let ports = (free_port(), free_port(), free_port());
        let mut args: Vec<String> = vec!["--id".into(), id.to_string(), "--join".into()];
        args.extend(FAST_RAFT.iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        let dir = root.join(format!("n{id}"));
        let server = Server::start_on(&dir, ports, &args);
        self.members.push(Member { id, prefix: Vec::new(), ports, server: Some(server), dir, args });
        id
    }

    pub fn member(&self, id: u64) -> &Member {
        &self.members[(id - 1) as usize]
    }

    pub fn server(&self, id: u64) -> &Server {
        self.member(id).server.as_ref().unwrap_or_else(|| panic!("server {id} is stopped"))
    }

    pub fn client_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.member(id).ports.0)
    }

    pub fn peer_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.member(id).ports.1)
    }

    /// A client of one server (call inside a Tokio runtime).
    pub fn client(&self, id: u64) -> Client {
        Client::builder(&self.client_addr(id)).request_timeout(Duration::from_secs(8)).build().unwrap()
    }

    /// A client of every server, starting with `first`.
    pub fn client_all(&self, first: u64) -> Client {
        let mut ids: Vec<u64> = self.members.iter().map(|m| m.id).collect();
        ids.rotate_left((first - 1) as usize);
        let addrs: Vec<String> = ids.iter().map(|id| self.client_addr(*id)).collect();
        Client::builder(&addrs.join(",")).request_timeout(Duration::from_secs(8)).build().unwrap()
    }

    pub fn running(&self) -> Vec<u64> {
        self.members.iter().filter(|m| m.server.is_some()).map(|m| m.id).collect()
    }

    /// Stops a server with SIGTERM.
    pub fn stop(&mut self, id: u64) {
        let m = &mut self.members[(id - 1) as usize];
        if let Some(mut s) = m.server.take() {
            s.terminate();
        }
    }

    /// Kills a server with SIGKILL.
    pub fn kill(&mut self, id: u64) {
        let m = &mut self.members[(id - 1) as usize];
        if let Some(mut s) = m.server.take() {
            s.kill9();
        }
    }

    /// Starts a stopped server again with `args` in place of its own; the end of its log if
    /// it refuses to start.
    pub fn try_restart_with(&mut self, id: u64, args: Vec<String>) -> Result<(), String> {
        let m = &mut self.members[(id - 1) as usize];
        assert!(m.server.is_none(), "server {id} is running");
        m.server = Some(Server::try_start_on(&m.dir, m.ports, &args)?);
        m.args = args;
        Ok(())
    }

    /// Starts stopped servers again together (a server waits at start for a majority of
    /// the voters to answer, so a majority restarted one after the other would wait on
    /// the next).
    pub fn restart_together(&mut self, ids: &[u64]) {
        std::thread::scope(|s| {
            for m in self.members.iter_mut().filter(|m| ids.contains(&m.id)) {
                assert!(m.server.is_none(), "server {} is running", m.id);
                s.spawn(move || m.server = Some(Server::start_on(&m.dir, m.ports, &m.args)));
            }
        });
    }

    /// Starts a stopped server again with its data directory.
    pub fn restart(&mut self, id: u64) {
        let m = &mut self.members[(id - 1) as usize];
        assert!(m.server.is_none(), "server {id} is running");
        let started = Server::try_start_on_prefixed(&m.dir, m.ports, &m.args, m.prefix.clone());
        m.server = Some(started.unwrap_or_else(|log| panic!("groved did not start; its log:\n{log}")));
    }

    pub async fn status(&self, id: u64) -> Result<StatusResponse, Error> {
        self.client(id).status().await
    }

    /// Waits until the running servers agree on one leader; returns it.
    pub async fn leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            let mut seen = Vec::new();
            let mut errors = Vec::new();
            for id in self.running() {
                match self.status(id).await {
                    // A server waiting to be added has no say.
                    Ok(s) if s.mode() == ServerMode::NotAMember => {}
                    Ok(s) => {
                        if s.mode() == ServerMode::Leader && s.quorum {
                            leaders.push(id);
                        }
                        seen.push(s.leader_id);
                    }
                    Err(e) => errors.push(format!("{id}: {e}")),
                }
            }
            if leaders.len() == 1 && seen.iter().all(|l| *l == leaders[0]) {
                return leaders[0];
            }
            if Instant::now() > deadline {
                panic!(
                    "no single leader within {timeout:?}: leaders {leaders:?}, each server's leader {seen:?}, errors {errors:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `id` has applied at least `zxid`.
    pub async fn caught_up(&self, id: u64, zxid: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(s) = self.status(id).await
                && s.zxid >= zxid
            {
                return;
            }
            assert!(Instant::now() < deadline, "server {id} did not reach zxid {zxid} within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
