//! Faults with histories checked for linearizability.
//!
//! Concurrent clients create, set, compare-and-set and read a few nodes while a nemesis kills
//! (-9) and restarts servers, pauses them (SIGSTOP/SIGCONT) and cuts their peer links. Every
//! operation is recorded with its call and return times; afterwards each node's history
//! must have a linearization, the cluster must have recovered after every fault, and
//! final reads on every server are part of the history (so an acknowledged write that was
//! lost would show). `GROVE_FAULT_CYCLES` sets the number of faults (20 by default, the CI
//! size; set it higher for a soak).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grove_client::{Client, Consistency, CreateOptions, Error};
use rand::Rng;

use crate::cluster::Cluster;
use crate::linearizability::{self, Event, Op, Ret};

const KEYS: usize = 6;

/// Why outcomes were unknown, for the report.
static UNKNOWN: Mutex<std::collections::BTreeMap<String, usize>> = Mutex::new(std::collections::BTreeMap::new());
const WORKERS: u64 = 6;

type History = Arc<Mutex<Vec<(usize, Event)>>>;

fn key_path(k: usize) -> String {
    format!("/lin/k{k}")
}

fn now(t0: Instant) -> u64 {
    t0.elapsed().as_nanos() as u64
}

/// What a failed write tells: `Some(ret)` a definite result, `None` unknown, or that it
/// certainly did not happen (then it is left out).
enum Outcome {
    Known(Ret),
    Unknown,
    NotApplied,
}

fn write_outcome(r: Result<i32, Error>) -> Outcome {
    match r {
        Ok(version) => Outcome::Known(Ret::Written(version)),
        Err(Error::NoNode { .. }) => Outcome::Known(Ret::NoNode),
        Err(Error::NodeExists { .. }) => Outcome::Known(Ret::Exists),
        Err(Error::BadVersion { .. }) => Outcome::Known(Ret::BadVersion),
        // Refused before reaching a leader: nothing was proposed.
        Err(Error::Unreachable { .. } | Error::NotReady { .. }) => Outcome::NotApplied,
        Err(e @ (Error::NoQuorum { .. } | Error::ConnectionLoss { .. })) => {
            let kind = e.to_string().chars().take(300).collect::<String>();
            *UNKNOWN.lock().unwrap().entry(kind).or_default() += 1;
            Outcome::Unknown
        }
        Err(e) => panic!("unexpected error from a write: {e}"),
    }
}

async fn worker(id: u64, client: Client, t0: Instant, history: History, stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(id);
    let mut counter = 0u64;
    let mut versions = [0i32; KEYS];
    while !stop.load(Ordering::Relaxed) {
        let k = rng.random_range(0..KEYS);
        let path = key_path(k);
        counter += 1;
        let value = id * 1_000_000 + counter;
        let call = now(t0);
        let (op, outcome) = match rng.random_range(0..10) {
            0..=3 => {
                let r = client.get_with(&path, Consistency::Linearizable).await;
                let outcome = match r {
                    Ok((data, stat)) => {
                        versions[k] = stat.version;
                        let v: u64 = String::from_utf8_lossy(&data).parse().unwrap_or(0);
                        Outcome::Known(Ret::Read(Some((v, stat.version))))
                    }
                    Err(Error::NoNode { .. }) => Outcome::Known(Ret::Read(None)),
                    // A read that failed changed nothing: leave it out.
                    Err(_) => Outcome::NotApplied,
                };
                (Op::Get, outcome)
            }
            4 => {
                let r = client.create(&path, value.to_string(), &CreateOptions::default()).await;
                (Op::Create(value), write_outcome(r.map(|(_, s)| s.version)))
            }
            5..=6 => {
                let r = client.set(&path, value.to_string(), None).await;
                (Op::Set(value), write_outcome(r.map(|s| s.version)))
            }
            _ => {
                let expected = versions[k];
                let r = client.set(&path, value.to_string(), Some(expected)).await;
                (Op::Cas(expected, value), write_outcome(r.map(|s| s.version)))
            }
        };
        let ret = match outcome {
            Outcome::Known(r) => Some((now(t0), r)),
            Outcome::Unknown => None,
            Outcome::NotApplied => continue,
        };
        ops.fetch_add(1, Ordering::Relaxed);
        history.lock().unwrap().push((k, Event { call, ret, op }));
    }
}

use rand::SeedableRng;

/// Waits until a write succeeds through any server.
async fn recovered(c: &Cluster, timeout: Duration) -> Duration {
    let started = Instant::now();
    let ids = c.running();
    let client = c.client_all(ids[0]);
    loop {
        if client.set("/lin", "probe", None).await.is_ok() {
            return started.elapsed();
        }
        assert!(started.elapsed() < timeout, "the cluster did not recover within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_under_kills_pauses_and_partitions() {
    let cycles: usize = std::env::var("GROVE_FAULT_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start_proxied(root.path(), 3, &["--request-timeout-ms", "2000"]).await;
    c.leader(Duration::from_secs(20)).await;
    c.client_all(1).create("/lin", "", &CreateOptions::default()).await.unwrap();

    let t0 = Instant::now();
    let history: History = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        // Each worker starts on a different server: reads are served everywhere.
        let mut ids = c.running();
        let n = ids.len();
        ids.rotate_left(w as usize % n);
        let client = Client::builder(&ids.iter().map(|id| c.client_addr(*id)).collect::<Vec<_>>().join(","))
            .request_timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        workers.push(tokio::spawn(worker(w, client, t0, history.clone(), stop.clone(), ops.clone())));
    }

    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut worst_recovery = Duration::ZERO;
    let mut faults = Vec::new();
    for cycle in 0..cycles {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let leader = c.leader(Duration::from_secs(30)).await;
        let victim = if rng.random_bool(0.5) { leader } else { rng.random_range(1..=3) };
        let fault = match cycle % 4 {
            0 => {
                c.kill(victim);
                tokio::time::sleep(Duration::from_millis(rng.random_range(500..2000))).await;
                c.restart(victim);
                "kill -9 and restart"
            }
            1 => {
                c.server(victim).signal("STOP");
                tokio::time::sleep(Duration::from_millis(rng.random_range(1000..2500))).await;
                c.server(victim).signal("CONT");
                "SIGSTOP, then SIGCONT"
            }
            2 => {
                c.isolate(victim);
                tokio::time::sleep(Duration::from_millis(rng.random_range(1000..3000))).await;
                c.heal();
                "isolated from its peers"
            }
            _ => {
                // A one-way cut: the victim hears its peers but they do not hear it.
                for ((from, _), link) in &c.links {
                    if *from == victim {
                        link.cut();
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.random_range(1000..2500))).await;
                c.heal();
                "its outgoing links cut"
            }
        };
        let took = recovered(&c, Duration::from_secs(30)).await;
        worst_recovery = worst_recovery.max(took);
        faults.push(format!(
            "cycle {cycle}: server {victim} ({}): {fault}; recovered in {took:?}",
            if victim == leader { "leader" } else { "follower" }
        ));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    // Final reads through every server join the history: a lost acknowledged write
    // would make them unexplainable.
    for id in c.running() {
        let client = c.client(id);
        for k in 0..KEYS {
            let call = now(t0);
            let ret = match client.get_with(&key_path(k), Consistency::Linearizable).await {
                Ok((data, stat)) => {
                    Ret::Read(Some((String::from_utf8_lossy(&data).parse().unwrap_or(0), stat.version)))
                }
                Err(Error::NoNode { .. }) => Ret::Read(None),
                Err(e) => panic!("final read on server {id}: {e}"),
            };
            history.lock().unwrap().push((k, Event { call, ret: Some((now(t0), ret)), op: Op::Get }));
        }
    }

    let history = history.lock().unwrap().clone();
    let total = history.len();
    let unknown = history.iter().filter(|(_, e)| e.ret.is_none()).count();
    for line in &faults {
        eprintln!("{line}");
    }
    eprintln!("{total} operations ({unknown} with unknown outcome), worst recovery {worst_recovery:?}");
    for (why, n) in UNKNOWN.lock().unwrap().iter() {
        eprintln!("  {n} unknown: {why}");
    }
    assert!(total > 200, "the workload ran: {total} operations");
    for k in 0..KEYS {
        let events: Vec<Event> = history.iter().filter(|(key, _)| *key == k).map(|(_, e)| e.clone()).collect();
        if let Err(e) = linearizability::check(&events) {
            let head: String = e.chars().take(4000).collect();
            panic!("history of {} is not linearizable ({} operations): {head}", key_path(k), events.len());
        }
    }
}
