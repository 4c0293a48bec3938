//! The fault suite's nemesis: faults done to real `groved` processes whose peer links go
//! through proxies, and the tally every fault test prints.
//!
//! `GROVE_FAULT_CYCLES` multiplies the number of fault cycles of every fault test (1 in
//! CI); `GROVE_FAULT_CYCLES=25` is a soak. Each test prints its cycles, operations, unknown
//! outcomes and violations, the figures docs/reliability.md records.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;

use crate::cluster::Cluster;

/// How many cycles a fault test runs: its CI size times `GROVE_FAULT_CYCLES` (a multiplier;
/// 1 when unset).
pub fn cycles(ci: usize) -> usize {
    let factor: usize = std::env::var("GROVE_FAULT_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    ci * factor.max(1)
}

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, then a restart with the same data directory.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// Every peer link to and from the victim cut.
    Isolate,
    /// Only the victim's outgoing links cut: it hears its peers, they do not hear it.
    CutOutgoing,
    /// Isolated long enough for the others to move far ahead and purge their logs: the
    /// victim comes back by snapshot (with `--snapshot-entries` small).
    LongPartition,
    /// Two faults at once on two servers: one paused while another is isolated.
    PauseAndIsolate,
}

pub const BASIC: [Fault; 4] = [Fault::Kill, Fault::Pause, Fault::Isolate, Fault::CutOutgoing];

/// Which server a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Leader,
    Follower,
    Any,
}

/// What was done, for the report.
pub struct Done {
    pub fault: Fault,
    pub victim: u64,
    pub was_leader: bool,
    pub lasted: Duration,
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let role = if self.was_leader { "leader" } else { "follower" };
        write!(f, "{:?} on server {} ({role}) for {:?}", self.fault, self.victim, self.lasted)
    }
}

/// Does `fault` to a server chosen by `target`, for a random time in `span` (ms), then
/// undoes it. `during` runs while the fault holds (e.g. writes that force a snapshot).
pub async fn inject<F: std::future::Future<Output = ()>>(
    c: &mut Cluster,
    fault: Fault,
    target: Target,
    rng: &mut StdRng,
    span: std::ops::Range<u64>,
    during: impl FnOnce() -> F,
) -> Done {
    let leader = c.leader(Duration::from_secs(30)).await;
    let running = c.running();
    let followers: Vec<u64> = running.iter().copied().filter(|i| *i != leader).collect();
    let victim = match target {
        Target::Leader => leader,
        Target::Follower => followers[rng.random_range(0..followers.len())],
        Target::Any => running[rng.random_range(0..running.len())],
    };
    let hold = Duration::from_millis(rng.random_range(span));
    let started = Instant::now();
    match fault {
        Fault::Kill => {
            c.kill(victim);
            during().await;
            tokio::time::sleep(hold.saturating_sub(started.elapsed())).await;
            c.restart(victim);
        }
        Fault::Pause => {
            c.server(victim).signal("STOP");
            during().await;
            tokio::time::sleep(hold.saturating_sub(started.elapsed())).await;
            c.server(victim).signal("CONT");
        }
        Fault::Isolate | Fault::LongPartition => {
            c.isolate(victim);
            during().await;
            tokio::time::sleep(hold.saturating_sub(started.elapsed())).await;
            c.heal();
        }
        Fault::CutOutgoing => {
            for ((from, _), link) in &c.links {
                if *from == victim {
                    link.cut();
                }
            }
            during().await;
            tokio::time::sleep(hold.saturating_sub(started.elapsed())).await;
            c.heal();
        }
        Fault::PauseAndIsolate => {
            let other = running.iter().copied().find(|i| *i != victim).expect("two servers");
            c.isolate(other);
            c.server(victim).signal("STOP");
            during().await;
            tokio::time::sleep(hold.saturating_sub(started.elapsed())).await;
            c.server(victim).signal("CONT");
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..800))).await;
            c.heal();
        }
    }
    Done { fault, victim, was_leader: victim == leader, lasted: started.elapsed() }
}

/// What a fault test saw, printed at its end.
#[derive(Default)]
pub struct Tally {
    pub name: &'static str,
    pub cycles: usize,
    pub operations: u64,
    pub unknown: u64,
    pub violations: Vec<String>,
    pub faults: Vec<String>,
    pub worst_recovery: Duration,
}

impl Tally {
    pub fn new(name: &'static str) -> Tally {
        Tally { name, ..Default::default() }
    }

    /// Prints the figures; panics with the violations if there are any.
    pub fn finish(&self) {
        for f in &self.faults {
            eprintln!("  {f}");
        }
        eprintln!(
            "fault suite {}: {} cycles, {} operations, {} unknown outcomes, {} violations, worst recovery {:?}",
            self.name,
            self.cycles,
            self.operations,
            self.unknown,
            self.violations.len(),
            self.worst_recovery
        );
        if !self.violations.is_empty() {
            let shown: Vec<&String> = self.violations.iter().take(20).collect();
            panic!(
                "{}: {} violations:\n{}",
                self.name,
                self.violations.len(),
                shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// Waits until a write succeeds through some server; how long it took.
pub async fn recovered(c: &Cluster, timeout: Duration) -> Duration {
    let started = Instant::now();
    let ids = c.running();
    let client = c.client_all(ids[0]);
    loop {
        if client.set("/", "", None).await.is_ok() {
            return started.elapsed();
        }
        assert!(started.elapsed() < timeout, "the cluster did not recover within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
