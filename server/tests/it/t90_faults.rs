//! Faults with histories checked for linearizability, and the session guarantees.
//!
//! Concurrent clients create, set, compare-and-set and read a few nodes while a nemesis kills
//! (-9) and restarts servers, pauses them (SIGSTOP/SIGCONT), cuts their peer links (both
//! ways, one way, and long enough that the cut-off server comes back by snapshot: the
//! servers run with `--snapshot-entries 50`). Every operation is recorded with its call and
//! return times; afterwards each node's history must have a linearization, the cluster must
//! have recovered after every fault, and final reads on every server are part of the
//! history (so an acknowledged write that was lost would show). Along the way each client
//! checks its own session guarantees: its SEQUENTIAL reads never go back (by zxid), and
//! read its own writes, across whichever servers it moves between (`min_zxid`).
//! `GROVE_FAULT_CYCLES` multiplies the number of faults (a soak).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grove_client::{Client, Consistency, CreateOptions, Error};
use rand::Rng;

use crate::cluster::Cluster;
use crate::linearizability::{self, Event, Op, Ret};
use crate::nemesis::{self, Fault, Tally, Target};

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

/// Session-guarantee violations seen by the workers.
static SESSION_VIOLATIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

async fn worker(id: u64, client: Client, t0: Instant, history: History, stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(id);
    let mut counter = 0u64;
    let mut versions = [0i32; KEYS];
    // The newest version this client wrote or read of each key.
    let mut known = [0i32; KEYS];
    while !stop.load(Ordering::Relaxed) {
        if rng.random_range(0..5) == 0 {
            // A SEQUENTIAL read: served by whichever server the client is on now.
            let k = rng.random_range(0..KEYS);
            let before = client.last_zxid();
            if let Ok((_, stat, zxid)) = client.get_at(&key_path(k), Consistency::Sequential).await {
                let mut v = SESSION_VIOLATIONS.lock().unwrap();
                if zxid < before {
                    v.push(format!("worker {id}: a SEQUENTIAL read at zxid {zxid} after seeing {before}"));
                }
                if stat.version < known[k] {
                    v.push(format!(
                        "worker {id}: read version {} of {} after writing or reading version {}",
                        stat.version,
                        key_path(k),
                        known[k]
                    ));
                }
                known[k] = known[k].max(stat.version);
            }
            continue;
        }
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
        if let Outcome::Known(Ret::Written(v) | Ret::Read(Some((_, v)))) = &outcome {
            known[k] = known[k].max(*v);
        }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_under_kills_pauses_and_partitions() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start_proxied(
        root.path(),
        3,
        &["--request-timeout-ms", "2000", "--snapshot-entries", "50", "--keep-log-entries", "5"],
    )
    .await;
    c.leader(Duration::from_secs(20)).await;
    c.client_all(1).create("/lin", "", &CreateOptions::default()).await.unwrap();

    let workload = Register::start(&c);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut tally = Tally::new("register");
    let plan = [
        (Fault::Kill, Target::Leader),
        (Fault::Pause, Target::Follower),
        (Fault::Isolate, Target::Leader),
        (Fault::CutOutgoing, Target::Any),
        (Fault::Kill, Target::Follower),
        (Fault::Pause, Target::Leader),
        (Fault::LongPartition, Target::Follower),
        (Fault::Isolate, Target::Follower),
        (Fault::LongPartition, Target::Leader),
        (Fault::PauseAndIsolate, Target::Any),
        (Fault::CutOutgoing, Target::Leader),
        (Fault::Kill, Target::Any),
    ];
    for cycle in 0..nemesis::cycles(plan.len()) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (fault, target) = plan[cycle % plan.len()];
        let span = if fault == Fault::LongPartition { 4_000..6_000 } else { 1_000..2_500 };
        let done = nemesis::inject(&mut c, fault, target, &mut rng, span, || async {}).await;
        let took = nemesis::recovered(&c, Duration::from_secs(30)).await;
        tally.worst_recovery = tally.worst_recovery.max(took);
        tally.faults.push(format!("cycle {cycle}: {done}; recovered in {took:?}"));
        tally.cycles += 1;
    }
    workload.finish(&c, &mut tally).await;
    tally.finish();
}

/// The register workload, for any fault test: clients reading and writing a few nodes,
/// their histories checked at the end.
pub struct Register {
    t0: Instant,
    history: History,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Register {
    pub fn start(c: &Cluster) -> Register {
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
        Register { t0, history, stop, workers }
    }

    /// Stops the clients, reads every key through every server, and adds the figures and
    /// any violation (linearizability, session guarantees) to `tally`.
    pub async fn finish(self, c: &Cluster, tally: &mut Tally) {
        let Register { t0, history, stop, workers } = self;
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
        tally.operations = history.len() as u64;
        tally.unknown = history.iter().filter(|(_, e)| e.ret.is_none()).count() as u64;
        for (why, n) in UNKNOWN.lock().unwrap().iter() {
            eprintln!("  {n} unknown: {why}");
        }
        assert!(history.len() > 200, "the workload ran: {} operations", history.len());
        tally.violations.extend(SESSION_VIOLATIONS.lock().unwrap().iter().cloned());
        for k in 0..KEYS {
            let events: Vec<Event> = history.iter().filter(|(key, _)| *key == k).map(|(_, e)| e.clone()).collect();
            if let Err(e) = linearizability::check(&events) {
                let head: String = e.chars().take(4000).collect();
                tally.violations.push(format!(
                    "history of {} is not linearizable ({} operations): {head}",
                    key_path(k),
                    events.len()
                ));
            }
        }
    }
}
