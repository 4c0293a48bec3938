//! Watches under faults: every stream's events against the committed history, across
//! kills, resumes on other servers, leader changes and snapshot installs
//! (`--snapshot-entries 50`, with partitions long enough to force them).
//!
//! Writers change nodes under `/w` and record each acknowledged change with its zxid.
//! Watchers hold a subtree watch on `/w`, each through its own server first; when a stream
//! breaks they resume on the next server from the last zxid they received + 1; when a
//! server says COMPACTED (its history does not reach back, or it installed a snapshot),
//! they start a new segment from a fresh read. The checker asks, per watcher:
//! - a stream's zxids only rise (nothing twice, nothing out of order, across resumes);
//! - every acknowledged change inside a segment's span was delivered (no gap);
//! - watchers agree: a zxid inside a segment's span that any watcher saw, this one saw,
//!   with the same events (no phantom, nothing lost).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grove_client::{Client, CreateOptions, Error, EventType, WatchKind, WatchMessage, WatchSpec};
use rand::{Rng, SeedableRng};

use crate::cluster::Cluster;
use crate::nemesis::{self, Fault, Tally, Target};

/// What one message of a stream said: its zxid and its events, sorted (several writes
/// share a zxid when they were batched into one log entry).
type Message = (u64, Vec<(String, EventType)>);

/// An acknowledged change: it happened at a zxid in `lo..=hi` (exact for creates and
/// sets, whose stat names it; a delete is known only to lie after the stat it was
/// conditioned on and no later than the answer's header).
#[derive(Debug, Clone)]
struct Acked {
    lo: u64,
    hi: u64,
    path: String,
    kind: EventType,
}

/// A stretch of a watcher's life with no COMPACTED in it: it saw everything from `from`
/// to `to` (inclusive).
#[derive(Debug, Clone, Default)]
struct Segment {
    from: u64,
    to: u64,
    messages: Vec<Message>,
}

async fn watcher(who: usize, servers: Vec<String>, stop: Arc<AtomicBool>, out: Arc<Mutex<Vec<Vec<Segment>>>>) {
    let mut segments: Vec<Segment> = Vec::new();
    let mut attempt = who;
    let mut next_from: Option<u64> = None;
    'outer: while !stop.load(Ordering::Relaxed) {
        let server = &servers[attempt % servers.len()];
        attempt += 1;
        let client = Client::builder(server).request_timeout(Duration::from_secs(3)).build().unwrap();
        // A new segment starts after what a fresh read shows.
        let from = match next_from {
            Some(z) => z,
            None => match client.sync("/").await {
                Ok(z) => {
                    segments.push(Segment { from: z + 1, to: z, messages: Vec::new() });
                    z + 1
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let Ok(mut stream) = client.watch_stream().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let spec = WatchSpec::new("/w", WatchKind::Subtree).from_zxid(from);
        if stream.watch(spec).await.is_err() {
            continue;
        }
        loop {
            let next = tokio::select! {
                m = stream.next() => m,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    let _ = stream.request_progress().await;
                    continue;
                }
            };
            let seg = segments.last_mut().expect("a segment");
            match next {
                Ok(Some(WatchMessage::Events { zxid, events, .. })) => {
                    // Recorded as received: the checker asks whether the stream's zxids
                    // only ever rise, so a resume that repeats or skips shows.
                    let mut list: Vec<(String, EventType)> = events.into_iter().map(|e| (e.path, e.kind)).collect();
                    list.sort();
                    seg.messages.push((zxid, list));
                    seg.to = seg.to.max(zxid);
                    next_from = Some(zxid + 1);
                }
                Ok(Some(WatchMessage::Progress { zxid })) => {
                    // Everything up to zxid has been delivered on this stream.
                    seg.to = seg.to.max(zxid);
                    next_from = Some(next_from.unwrap_or(zxid + 1).max(zxid + 1));
                }
                Ok(Some(WatchMessage::Canceled { code: grove_client::watch::ErrorCode::Compacted, .. })) => {
                    next_from = None; // start a new segment
                    continue 'outer;
                }
                Ok(Some(WatchMessage::Canceled { .. })) | Ok(None) | Err(_) => continue 'outer,
                Ok(Some(_)) => {}
            }
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
        }
    }
    out.lock().unwrap().push(segments);
}

async fn writer(who: u64, client: Client, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<Acked>>>, ops: Arc<AtomicU64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(who);
    while !stop.load(Ordering::Relaxed) {
        let path = format!("/w/n{}", rng.random_range(0..6));
        let r = match rng.random_range(0..4) {
            0 => client
                .create(&path, "c", &CreateOptions::default())
                .await
                .map(|(_, s)| (s.czxid, s.czxid, EventType::NodeCreated)),
            1 => match client.exists(&path).await {
                Ok(Some(stat)) => client
                    .delete(&path, Some(stat.version))
                    .await
                    .map(|_| (stat.mzxid + 1, client.last_zxid(), EventType::NodeDeleted)),
                _ => continue,
            },
            _ => {
                client.set(&path, format!("{who}"), None).await.map(|s| (s.mzxid, s.mzxid, EventType::NodeDataChanged))
            }
        };
        ops.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok((lo, hi, kind)) => acked.lock().unwrap().push(Acked { lo, hi, path, kind }),
            Err(Error::NoNode { .. } | Error::NodeExists { .. } | Error::BadVersion { .. }) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn check(watchers: &[Vec<Segment>], acked: &[Acked]) -> Vec<String> {
    let mut v = Vec::new();
    // The committed history as the watchers saw it: one message per zxid, and every
    // watcher that saw the zxid saw the same one (no phantom, nothing lost in a resume).
    let mut history: BTreeMap<u64, (&Message, usize)> = BTreeMap::new();
    for (w, segments) in watchers.iter().enumerate() {
        for (s, seg) in segments.iter().enumerate() {
            for pair in seg.messages.windows(2) {
                if pair[1].0 <= pair[0].0 {
                    v.push(format!(
                        "watcher {w} segment {s}: zxid {} after {} (repeated or out of order)",
                        pair[1].0, pair[0].0
                    ));
                }
            }
            for m in &seg.messages {
                match history.get(&m.0) {
                    Some((other, ow)) if *other != m => {
                        v.push(format!("at zxid {}: watcher {w} saw {:?}, watcher {ow} saw {:?}", m.0, m.1, other.1))
                    }
                    Some(_) => {}
                    None => {
                        history.insert(m.0, (m, w));
                    }
                }
            }
        }
    }
    for (w, segments) in watchers.iter().enumerate() {
        for (s, seg) in segments.iter().enumerate() {
            let mine: BTreeMap<u64, &Message> = seg.messages.iter().map(|m| (m.0, m)).collect();
            for (z, (m, ow)) in history.range(seg.from..=seg.to) {
                if !mine.contains_key(z) {
                    v.push(format!("watcher {w} segment {s} missed zxid {z} {:?} that watcher {ow} saw", m.1));
                }
            }
            // Every acknowledged change inside the span was delivered.
            for a in acked.iter().filter(|a| a.lo >= seg.from && a.hi <= seg.to) {
                let found = mine.range(a.lo..=a.hi).any(|(_, m)| m.1.iter().any(|(p, k)| *p == a.path && *k == a.kind));
                if !found {
                    v.push(format!(
                        "watcher {w} segment {s} (zxids {}..={}) missed acknowledged {a:?}",
                        seg.from, seg.to
                    ));
                }
            }
            for (z, m) in &mine {
                let acked_here: Vec<&Acked> = acked.iter().filter(|a| a.lo == a.hi && a.lo == *z).collect();
                for a in &acked_here {
                    let wanted = acked_here.iter().filter(|b| b.path == a.path && b.kind == a.kind).count();
                    let got = m.1.iter().filter(|(p, k)| *p == a.path && *k == a.kind).count();
                    if got < wanted {
                        v.push(format!(
                            "watcher {w} at zxid {z}: {got} of {wanted} acknowledged {:?} {:?}",
                            a.path, a.kind
                        ));
                    }
                }
            }
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_match_the_committed_history_under_faults() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start_proxied(
        root.path(),
        3,
        &["--snapshot-entries", "50", "--keep-log-entries", "5", "--request-timeout-ms", "2000"],
    )
    .await;
    c.leader(Duration::from_secs(20)).await;
    c.client_all(1).create("/w", "", &CreateOptions::default()).await.unwrap();
    let servers: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let ops = Arc::new(AtomicU64::new(0));
    let out: Arc<Mutex<Vec<Vec<Segment>>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..3 {
        tasks.push(tokio::spawn(watcher(w, servers.clone(), stop.clone(), out.clone())));
    }
    for w in 0..3 {
        tasks.push(tokio::spawn(writer(w, c.client_all(w + 1), stop.clone(), acked.clone(), ops.clone())));
    }
    let mut tally = Tally::new("watches");
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let plan = [
        (Fault::Kill, Target::Follower),
        (Fault::LongPartition, Target::Follower),
        (Fault::Kill, Target::Leader),
        (Fault::LongPartition, Target::Leader),
        (Fault::Pause, Target::Any),
        (Fault::Isolate, Target::Leader),
    ];
    for cycle in 0..nemesis::cycles(plan.len()) {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (fault, target) = plan[cycle % plan.len()];
        let span = if fault == Fault::LongPartition { 4_000..6_000 } else { 1_500..3_000 };
        let done = nemesis::inject(&mut c, fault, target, &mut rng, span, || async {}).await;
        let took = nemesis::recovered(&c, Duration::from_secs(30)).await;
        tally.faults.push(format!("cycle {cycle}: {done}; recovered in {took:?}"));
        tally.worst_recovery = tally.worst_recovery.max(took);
        tally.cycles += 1;
    }
    // Let the watchers catch up and mark their progress, then stop.
    let last = c.client_all(1).sync("/").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
    }
    let watchers = out.lock().unwrap().clone();
    let acked = acked.lock().unwrap().clone();
    tally.operations = ops.load(Ordering::Relaxed);
    tally.violations = check(&watchers, &acked);
    let delivered: usize = watchers.iter().flatten().flat_map(|s| &s.messages).map(|m| m.1.len()).sum();
    let segments: usize = watchers.iter().map(|s| s.len()).sum();
    eprintln!(
        "  {} acknowledged changes up to zxid {last}, {delivered} events delivered in {segments} segments",
        acked.len()
    );
    assert!(acked.len() > 50 && delivered > 50, "the workload ran: {} changes, {delivered} events", acked.len());
    tally.finish();
}
