//! `grove-bench`: load generator for Grove.
//!
//! `concurrency` clients, each with its own connection and one request in flight, run a
//! workload for `duration`; the tool prints ops/s and latency percentiles, then one JSON
//! line. With `--pid` it also reports the server processes' CPU time per operation, the
//! figure least disturbed by a noisy machine; with `--admin` the Raft log's entries per
//! fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use grove_client::{Client, Consistency, CreateOptions, LockRequest, WatchKind, WatchMessage, WatchSpec};
use rand::{Rng, SeedableRng};
use serde_json::json;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum Workload {
    Create,
    Set,
    /// Reads served by the connected server from its own state.
    Get,
    /// Reads confirmed by a quorum (ReadIndex).
    GetLinearizable,
    /// 90% sequential gets, 10% sets.
    Mixed,
    /// W watchers on one node: time from a set until every watcher has the event.
    WatchFanout,
    /// Kill -9 the leader (its pid is the `--pid` entry at its server id) while writing:
    /// the time until writes succeed again.
    Failover,
    /// `concurrency` clients, each with its own session, contend for one mutex: acquire +
    /// release pairs per second and their latency (waiting included). On ZooKeeper, the
    /// Curator lock recipe (ephemeral sequential nodes and a watch on the predecessor).
    Lock,
    /// Two participants in one election; the leader resigns and the time until the other
    /// is elected is measured, `rounds` times.
    Election,
    /// The leading participant's process dies (its client stops, so its session expires):
    /// the time until the waiting participant is elected, `rounds` times. Dominated by the
    /// session timeout (`--session-timeout-ms`).
    ElectionFailover,
}

#[derive(Parser)]
#[command(name = "grove-bench", version, about = "Load generator for Grove")]
struct Args {
    /// Servers: host:port[,host:port...]; workers are spread over them.
    #[arg(long, short = 's', default_value = "127.0.0.1:7181")]
    server: String,
    #[arg(long, short = 'w', value_enum)]
    workload: Workload,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, short = 'c', default_value_t = 32)]
    concurrency: usize,
    /// Seconds to run (after warm-up).
    #[arg(long, short = 'd', default_value_t = 20.0)]
    duration: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Bytes of data per write.
    #[arg(long, default_value_t = 128)]
    value_size: usize,
    /// Nodes read by get workloads.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Watchers for watch-fanout, each with its own connection and session (so ZooKeeper
    /// sends one notification per watcher too, as Grove does).
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Sets measured by watch-fanout.
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Server process ids: report their CPU time per operation.
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
    /// Admin address of the leader: report Raft log entries per fsync.
    #[arg(long)]
    admin: Option<String>,
    /// Label for the JSON line (e.g. the machine or the server role).
    #[arg(long, default_value = "")]
    label: String,
    /// What to benchmark: grove, or zookeeper (built with `--features zk-compare`; pass
    /// ZooKeeper's client address as --server) for a comparison on the same machine.
    #[arg(long, value_enum, default_value = "grove")]
    target: Target,
    /// Session timeout for the lock and election workloads.
    #[arg(long, default_value_t = 4000)]
    session_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum Target {
    Grove,
    Zookeeper,
}

/// One benchmark client: a Grove client, or a ZooKeeper session for comparison.
#[derive(Clone)]
enum Conn {
    Grove(Client),
    #[cfg(feature = "zk-compare")]
    Zk(zookeeper_client::Client),
}

type OpResult = Result<(), String>;

impl Conn {
    /// A connection; with `session`, a Grove client opens a session (ZooKeeper clients
    /// always have one).
    async fn open(target: Target, server: &str, session: Option<Duration>) -> Result<Conn, String> {
        match target {
            Target::Grove => {
                let mut b = Client::builder(server).request_timeout(Duration::from_secs(10));
                if let Some(t) = session {
                    b = b.session_timeout(t);
                }
                b.start().await.map(Conn::Grove).map_err(|e| e.to_string())
            }
            #[cfg(feature = "zk-compare")]
            Target::Zookeeper => {
                zookeeper_client::Client::connect(server).await.map(Conn::Zk).map_err(|e| e.to_string())
            }
            #[cfg(not(feature = "zk-compare"))]
            Target::Zookeeper => Err("this grove-bench was built without --features zk-compare".into()),
        }
    }

    async fn create(&self, path: &str, data: &[u8]) -> OpResult {
        match self {
            Conn::Grove(c) => {
                c.create(path, data.to_vec(), &CreateOptions::default()).await.map(|_| ()).map_err(|e| e.to_string())
            }
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => {
                let opts = zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
                z.create(path, data, &opts).await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }

    async fn set(&self, path: &str, data: &[u8]) -> OpResult {
        match self {
            Conn::Grove(c) => c.set(path, data.to_vec(), None).await.map(|_| ()).map_err(|e| e.to_string()),
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => z.set_data(path, data, None).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }

    /// A read; linearizable is a quorum read in Grove, `sync` + read in ZooKeeper.
    async fn get(&self, path: &str, linearizable: bool) -> OpResult {
        match self {
            Conn::Grove(c) => {
                let level = if linearizable { Consistency::Linearizable } else { Consistency::Sequential };
                c.get_with(path, level).await.map(|_| ()).map_err(|e| e.to_string())
            }
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => {
                if linearizable {
                    z.sync(path).await.map_err(|e| e.to_string())?;
                }
                z.get_data(path).await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }

    /// Takes the mutex `dir` and releases it.
    async fn lock_cycle(&self, dir: &str) -> OpResult {
        match self {
            Conn::Grove(c) => {
                let grant = c.acquire(&LockRequest::mutex(dir)).await.map_err(|e| e.to_string())?;
                c.release(&grant.nodes[0]).await.map(|_| ()).map_err(|e| e.to_string())
            }
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => {
                let prefix = zookeeper_client::LockPrefix::new_curator(dir, "lock-").map_err(|e| e.to_string())?;
                let lock =
                    z.lock(prefix, b"", zookeeper_client::Acls::anyone_all()).await.map_err(|e| e.to_string())?;
                // Release by an awaited delete, as Curator's release() does; the lock
                // handle's own drop would delete in the background, unmeasured. Forgetting
                // it leaks only its path string.
                let path = lock.lock_path().to_string();
                std::mem::forget(lock);
                z.delete(&path, None).await.map_err(|e| e.to_string())
            }
        }
    }

    async fn delete(&self, path: &str) -> OpResult {
        match self {
            Conn::Grove(c) => c.delete(path, None).await.map_err(|e| e.to_string()),
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => z.delete(path, None).await.map_err(|e| e.to_string()),
        }
    }

    async fn children(&self, path: &str) -> Result<Vec<String>, String> {
        match self {
            Conn::Grove(c) => c.children(path).await.map_err(|e| e.to_string()),
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => z.get_children(path).await.map(|(c, _)| c).map_err(|e| e.to_string()),
        }
    }

    /// Calls `notify` for every change of `path`, until the connection ends; `ready` once
    /// the watch is in place.
    async fn watch(&self, path: &str, ready: tokio::sync::oneshot::Sender<()>, notify: impl Fn() + Send) {
        match self {
            Conn::Grove(c) => {
                let Ok(mut w) = c.watch_stream().await else { return };
                if w.watch(WatchSpec::new(path, WatchKind::Node)).await.is_err() {
                    return;
                }
                let mut ready = Some(ready);
                while let Ok(Some(m)) = w.next().await {
                    match m {
                        WatchMessage::Created { .. } => {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                        WatchMessage::Events { .. } => notify(),
                        _ => {}
                    }
                }
            }
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => {
                let Ok(mut w) = z.watch(path, zookeeper_client::AddWatchMode::Persistent).await else { return };
                let _ = ready.send(());
                loop {
                    let e = w.changed().await;
                    if e.event_type == zookeeper_client::EventType::NodeDataChanged {
                        notify();
                    } else if e.event_type == zookeeper_client::EventType::Session {
                        return;
                    }
                }
            }
        }
    }
}

fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // Fields after the command name (which may contain spaces): utime is 14th, stime 15th.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        })
        .sum()
}

fn ticks_per_second() -> f64 {
    // CLK_TCK is 100 on every Linux this runs on.
    100.0
}

fn log_figures(admin: &str) -> Option<(f64, f64)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(admin).ok()?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let value = |name: &str| {
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some((value("grove_log_fsyncs")?, value("grove_log_entries_synced")?))
}

struct Stats {
    latencies: Vec<u32>,
    ops: u64,
    errors: u64,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn conns(args: &Args, n: usize) -> Vec<Conn> {
    let servers: Vec<&str> = args.server.split(',').collect();
    let mut out = Vec::with_capacity(n);
    let session = matches!(args.workload, Workload::Lock).then(|| Duration::from_millis(args.session_timeout_ms));
    for i in 0..n.max(1) {
        match Conn::open(args.target, servers[i % servers.len()], session).await {
            Ok(c) => out.push(c),
            Err(e) => {
                eprintln!("grove-bench: connecting to {}: {e}", servers[i % servers.len()]);
                std::process::exit(1);
            }
        }
    }
    out
}

async fn prepare(admin: &Conn, args: &Args, root: &str) -> OpResult {
    admin.create(root, b"").await?;
    let value = vec![b'v'; args.value_size];
    match args.workload {
        Workload::Get | Workload::GetLinearizable | Workload::Mixed => {
            for i in 0..args.keys {
                admin.create(&format!("{root}/k{i}"), &value).await?;
            }
        }
        Workload::Lock => admin.create(&format!("{root}/lock"), b"").await?,
        Workload::Set => {
            for w in 0..args.concurrency {
                admin.create(&format!("{root}/s{w}"), &value).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

async fn run_load(args: &Args, root: &str) -> Stats {
    let value = Bytes::from(vec![b'v'; args.value_size]);
    let clients = conns(args, args.concurrency).await;
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (w, client) in clients.into_iter().enumerate() {
        let (stop, measuring, seq, value) = (stop.clone(), measuring.clone(), seq.clone(), value.clone());
        let (workload, keys, root) = (args.workload, args.keys, root.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let (mut ops, mut errors) = (0u64, 0u64);
            let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = match workload {
                    Workload::Create => {
                        let i = seq.fetch_add(1, Ordering::Relaxed);
                        client.create(&format!("{root}/c{i}"), &value).await
                    }
                    Workload::Set => client.set(&format!("{root}/s{w}"), &value).await,
                    Workload::Get => client.get(&format!("{root}/k{}", rng.random_range(0..keys)), false).await,
                    Workload::GetLinearizable => {
                        client.get(&format!("{root}/k{}", rng.random_range(0..keys)), true).await
                    }
                    Workload::Mixed => {
                        let k = rng.random_range(0..keys);
                        if rng.random_range(0..10) == 0 {
                            client.set(&format!("{root}/k{k}"), &value).await
                        } else {
                            client.get(&format!("{root}/k{k}"), false).await
                        }
                    }
                    Workload::Lock => client.lock_cycle(&format!("{root}/lock")).await,
                    Workload::WatchFanout | Workload::Failover | Workload::Election | Workload::ElectionFailover => {
                        unreachable!("separate drivers")
                    }
                };
                if measuring.load(Ordering::Relaxed) {
                    match r {
                        Ok(()) => {
                            ops += 1;
                            lat.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        }
                        Err(_) => errors += 1,
                    }
                }
            }
            Stats { latencies: lat, ops, errors }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut all = Stats { latencies: Vec::new(), ops: 0, errors: 0 };
    for t in tasks {
        let s = t.await.unwrap();
        all.ops += s.ops;
        all.errors += s.errors;
        all.latencies.extend(s.latencies);
    }
    all
}

/// Sets one node `rounds` times; for each, the time until all watchers have the event.
/// Sets are strictly one after another, so every notification counted during a round
/// belongs to it.
async fn run_fanout(args: &Args, root: &str) -> Stats {
    let path = format!("{root}/fan");
    let writer = conns(args, 1).await.remove(0);
    writer.create(&path, b"0").await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let shared = conns(args, args.watchers).await;
    let mut ready = Vec::new();
    for i in 0..args.watchers {
        let conn = shared[i % shared.len()].clone();
        let (tx, path) = (tx.clone(), path.clone());
        let (rtx, rrx) = tokio::sync::oneshot::channel();
        ready.push(rrx);
        tokio::spawn(async move {
            conn.watch(&path, rtx, move || {
                let _ = tx.send(Instant::now());
            })
            .await;
        });
    }
    for r in ready {
        let _ = r.await;
    }
    let mut stats = Stats { latencies: Vec::new(), ops: 0, errors: 0 };
    for round in 0..args.rounds {
        let started = Instant::now();
        if writer.set(&path, format!("{round}").as_bytes()).await.is_err() {
            stats.errors += 1;
            continue;
        }
        let mut seen = 0;
        let mut last = started;
        let deadline = started + Duration::from_secs(10);
        while seen < args.watchers {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(at)) => {
                    seen += 1;
                    last = last.max(at);
                }
                _ => break,
            }
        }
        if seen == args.watchers {
            stats.ops += 1;
            stats.latencies.push(last.duration_since(started).as_micros() as u32);
        } else {
            stats.errors += 1;
        }
    }
    stats
}

/// Writes continuously, kills the leader, and measures the time from the kill until a
/// write succeeds again (the one latency sample).
async fn run_failover(args: &Args, root: &str) -> Stats {
    #[allow(clippy::infallible_destructuring_match)] // two variants with zk-compare
    let admin = match conns(args, 1).await.remove(0) {
        Conn::Grove(c) => c,
        #[cfg(feature = "zk-compare")]
        Conn::Zk(_) => {
            eprintln!("grove-bench: failover is measured on Grove only");
            std::process::exit(2);
        }
    };
    let status = admin.status().await.expect("status");
    let leader = status.leader_id;
    let Some(pid) = args.pid.get((leader as usize).wrapping_sub(1)) else {
        eprintln!("grove-bench: failover needs --pid with the pid of every server, in id order");
        std::process::exit(2);
    };
    let writer = Client::builder(&args.server).request_timeout(Duration::from_secs(10)).build().unwrap();
    for i in 0..20 {
        writer
            .create(&format!("{root}/before{i}"), "", &CreateOptions::default())
            .await
            .expect("write before the kill");
    }
    let killed = Instant::now();
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
    assert!(status.success(), "kill -9 {pid} failed");
    let mut i = 0;
    loop {
        i += 1;
        if writer.create(&format!("{root}/after{i}"), "", &CreateOptions::default()).await.is_ok() {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "writes did not resume within 30 s");
    }
    let took = killed.elapsed();
    println!("killed leader {leader} (pid {pid}); writes succeeded again after {:.0} ms", took.as_secs_f64() * 1000.0);
    Stats { latencies: vec![took.as_micros() as u32], ops: 1, errors: 0 }
}

/// A Grove participant with its own session.
async fn participant(args: &Args) -> Client {
    let server = args.server.split(',').next().unwrap_or_default();
    match Client::builder(server)
        .request_timeout(Duration::from_secs(10))
        .session_timeout(Duration::from_millis(args.session_timeout_ms))
        .start()
        .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("grove-bench: {e}");
            std::process::exit(1);
        }
    }
}

/// Leadership handoffs in one election: the leader resigns (or, with `crash`, its client
/// stops so its session expires); each sample is the time until the waiting participant
/// is elected.
async fn run_election(args: &Args, root: &str, crash: bool) -> Stats {
    if args.target != Target::Grove {
        eprintln!("grove-bench: the election workloads run on Grove only");
        std::process::exit(2);
    }
    let name = format!("{root}/election");
    let mut stats = Stats { latencies: Vec::new(), ops: 0, errors: 0 };
    let mut leader = participant(args).await;
    let mut lead = leader.campaign(&name, "p", None).await.expect("first campaign");
    for _ in 0..args.rounds {
        let next = participant(args).await;
        let waiting = tokio::spawn({
            let (next, name) = (next.clone(), name.clone());
            async move { next.campaign(&name, "p", None).await }
        });
        let mut prev = Some(std::mem::replace(&mut leader, next));
        let current = prev.as_ref().unwrap();
        // The follower is in line once the election has two participants.
        while current.describe_lock(&name).await.map(|l| l.len()).unwrap_or(0) < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let started = Instant::now();
        if crash {
            // A crash: no resign, no session close; the client's keepalives stop.
            prev = None;
        } else if current.resign(&name, &lead.nodes[0]).await.is_err() {
            stats.errors += 1;
        }
        match waiting.await {
            Ok(Ok(grant)) => {
                stats.ops += 1;
                stats.latencies.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if grant.token <= lead.token {
                    eprintln!("grove-bench: fencing token went backwards: {} after {}", grant.token, lead.token);
                    stats.errors += 1;
                }
                lead = grant;
            }
            _ => {
                stats.errors += 1;
                break;
            }
        }
        if let Some(p) = prev {
            let _ = p.close_session().await;
        }
    }
    let _ = leader.resign(&name, &lead.nodes[0]).await;
    let _ = leader.close_session().await;
    stats
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let root = format!("/bench-{}-{:?}", std::process::id(), args.workload).to_lowercase();
        let admin = conns(&args, 1).await.remove(0);
        if let Err(e) = prepare(&admin, &args, &root).await {
            eprintln!("grove-bench: preparing {root}: {e}");
            std::process::exit(1);
        }
        let fsync_before = args.admin.as_deref().and_then(log_figures);
        let cpu_before = cpu_ticks(&args.pid);
        let wall = Instant::now();
        let mut stats = match args.workload {
            Workload::WatchFanout => run_fanout(&args, &root).await,
            Workload::Failover => run_failover(&args, &root).await,
            Workload::Election => run_election(&args, &root, false).await,
            Workload::ElectionFailover => run_election(&args, &root, true).await,
            _ => run_load(&args, &root).await,
        };
        let driven = matches!(
            args.workload,
            Workload::WatchFanout | Workload::Failover | Workload::Election | Workload::ElectionFailover
        );
        let elapsed = if driven { wall.elapsed().as_secs_f64() } else { args.duration };
        let cpu = (cpu_ticks(&args.pid).saturating_sub(cpu_before)) as f64 / ticks_per_second();
        let fsync_after = args.admin.as_deref().and_then(log_figures);
        stats.latencies.sort_unstable();
        let l = &stats.latencies;
        let ops_s = stats.ops as f64 / elapsed;
        println!(
            "target={:?} workload={:?} concurrency={} duration={:.1}s value={}B servers={}",
            args.target, args.workload, args.concurrency, elapsed, args.value_size, args.server
        );
        println!("ops={} errors={} ops/s={:.0}", stats.ops, stats.errors, ops_s);
        println!(
            "latency ms: p50={:.3} p99={:.3} p999={:.3} max={:.3}",
            percentile(l, 0.5),
            percentile(l, 0.99),
            percentile(l, 0.999),
            percentile(l, 1.0)
        );
        let mut j = json!({
            "target": format!("{:?}", args.target),
            "workload": format!("{:?}", args.workload),
            "label": args.label,
            "concurrency": args.concurrency,
            "duration_s": elapsed,
            "value_size": args.value_size,
            "ops": stats.ops,
            "errors": stats.errors,
            "ops_per_s": ops_s.round(),
            "p50_ms": percentile(l, 0.5),
            "p99_ms": percentile(l, 0.99),
            "p999_ms": percentile(l, 0.999),
            "max_ms": percentile(l, 1.0),
        });
        if !args.pid.is_empty() && stats.ops > 0 && !driven {
            // Warm-up time is included in the CPU window: scale by the measured share.
            let share = args.duration / (args.duration + args.warmup);
            let per_op = cpu * share * 1e6 / stats.ops as f64;
            println!("server cpu: {:.1} µs per op ({:.2} cores)", per_op, cpu * share / args.duration);
            j["server_cpu_us_per_op"] = json!((per_op * 10.0).round() / 10.0);
        }
        if let (Some((f0, e0)), Some((f1, e1))) = (fsync_before, fsync_after)
            && f1 > f0
        {
            // One Raft entry carries a batch of operations: report both.
            let per = (e1 - e0) / (f1 - f0);
            let ops_per = stats.ops as f64 * (args.duration + args.warmup) / args.duration / (f1 - f0);
            println!("raft log: {per:.1} entries and {ops_per:.1} operations per fsync ({} fsyncs)", f1 - f0);
            j["entries_per_fsync"] = json!((per * 10.0).round() / 10.0);
            j["ops_per_fsync"] = json!((ops_per * 10.0).round() / 10.0);
        }
        println!("{j}");
        // Leave the tree as it was.
        let _ = tokio::time::timeout(Duration::from_secs(60), delete_tree(&admin, &root)).await;
    });
}

async fn delete_tree(c: &Conn, root: &str) {
    let Ok(children) = c.children(root).await else { return };
    for n in children {
        let _ = c.delete(&format!("{root}/{n}")).await;
    }
    let _ = c.delete(root).await;
}
