//! The workloads: request loops, watch fan-out, failover and elections.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use grove_client::{Client, CreateOptions};
use rand::{Rng, SeedableRng};

use crate::conn::{Conn, OpResult};
use crate::{Args, Stats, Target, Workload};

pub async fn conns(args: &Args, n: usize) -> Vec<Conn> {
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

pub async fn prepare(admin: &Conn, args: &Args, root: &str) -> OpResult {
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

pub async fn run_load(args: &Args, root: &str) -> Stats {
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
pub async fn run_fanout(args: &Args, root: &str) -> Stats {
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
pub async fn run_failover(args: &Args, root: &str) -> Stats {
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
pub async fn participant(args: &Args) -> Client {
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
pub async fn run_election(args: &Args, root: &str, crash: bool) -> Stats {
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
