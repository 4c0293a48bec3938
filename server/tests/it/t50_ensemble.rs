//! Three-node ensembles of real processes: the seed's failure drill, observers, session and
//! watch failover, membership changes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grove_client::proto::ServerMode;
use grove_client::{Client, Consistency, CreateMode, CreateOptions, Error, WatchKind, WatchMessage, WatchSpec};

use crate::cluster::Cluster;
use crate::harness::eventually;

const LEADER_WAIT: Duration = Duration::from_secs(20);

fn mode_line(out: &str) -> &str {
    out.lines().next().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_failure_drill() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(root.path(), 3, 0, &[]);
    let leader = c.leader(LEADER_WAIT).await;

    // `grove status` shows one leader and two followers.
    let mut modes = BTreeMap::new();
    for id in 1..=3 {
        modes.insert(id, mode_line(&c.server(id).grove_ok(&["status"])).to_string());
    }
    assert_eq!(modes[&leader], "Mode: leader");
    assert_eq!(modes.values().filter(|m| *m == "Mode: follower").count(), 2, "{modes:?}");

    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    // The client gives up after 4 s (the servers after 3 s): the bound on a failed write.
    let writer = Client::builder(&c.client_addr(leader)).request_timeout(Duration::from_secs(4)).build().unwrap();
    writer.create("/drill", "0", &CreateOptions::default()).await.unwrap();

    // One follower down: writes still succeed.
    c.stop(followers[0]);
    writer.create("/drill/one-down", "", &CreateOptions::default()).await.unwrap();

    // Two down: no quorum. Writes fail with UNAVAILABLE within the request timeout.
    c.stop(followers[1]);
    let started = Instant::now();
    let err = writer.create("/drill/no-quorum", "", &CreateOptions::default()).await.unwrap_err();
    assert!(matches!(err, Error::NoQuorum { .. } | Error::ConnectionLoss { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(6), "failed within a bounded time: {:?}", started.elapsed());
    let status = c.server(leader).grove_ok(&["status"]);
    assert!(status.contains("Quorum: no"), "{status}");

    // One back: writes succeed again.
    c.restart(followers[0]);
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        match writer.create("/drill/back", "", &CreateOptions::default()).await {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "writes did not resume: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Both followers back, then the leader down: the two others elect a new one and
    // writes succeed.
    c.restart(followers[1]);
    let zxid = writer.sync("/").await.unwrap();
    c.caught_up(followers[1], zxid, LEADER_WAIT).await;
    c.stop(leader);
    let new_leader = c.leader(LEADER_WAIT).await;
    assert_ne!(new_leader, leader);
    let w2 = c.client(new_leader);
    w2.create("/drill/new-leader", "", &CreateOptions::default()).await.unwrap();

    // The old leader back: it rejoins as a follower; the leader does not change.
    c.restart(leader);
    let zxid = w2.sync("/").await.unwrap();
    c.caught_up(leader, zxid, LEADER_WAIT).await;
    assert_eq!(mode_line(&c.server(leader).grove_ok(&["status"])), "Mode: follower");
    assert_eq!(c.leader(LEADER_WAIT).await, new_leader);
    // Everything acknowledged is there, read from the rejoined server. The write that
    // failed for want of a quorum had an unknown outcome: it may have been committed once
    // the quorum came back (it was in the leader's log), like a ZooKeeper ConnectionLoss.
    let r = c.client(leader);
    let mut kids = r.children("/drill").await.unwrap();
    kids.retain(|k| k != "no-quorum");
    kids.sort();
    assert_eq!(kids, vec!["back", "new-leader", "one-down"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_replicates_serves_reads_forwards_writes_and_never_votes() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(root.path(), 3, 1, &[]);
    let leader = c.leader(LEADER_WAIT).await;
    let observer = 4;
    // It becomes a member once the leader adds it.
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        let s = c.status(observer).await.unwrap();
        if s.mode() == ServerMode::Observer && s.ready {
            break;
        }
        assert!(Instant::now() < deadline, "the observer did not join: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mode_line(&c.server(observer).grove_ok(&["status"])), "Mode: observer");
    // Writes through the observer are forwarded; it reads them back locally.
    let o = c.client(observer);
    o.create("/obs", "via-observer", &CreateOptions::default()).await.unwrap();
    let (data, _) = o.get_with("/obs", Consistency::Sequential).await.unwrap();
    assert_eq!(&data[..], b"via-observer");
    // Writes on the leader replicate to it.
    c.client(leader).set("/obs", "from-leader", None).await.unwrap();
    let zxid = c.client(leader).sync("/").await.unwrap();
    c.caught_up(observer, zxid, LEADER_WAIT).await;
    assert_eq!(&o.get_with("/obs", Consistency::Sequential).await.unwrap().0[..], b"from-leader");

    // Stopping it never affects the quorum.
    c.stop(observer);
    c.client(leader).set("/obs", "no-observer", None).await.unwrap();
    c.restart(observer);
    // Two voters of three down with the observer up: no quorum.
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    c.stop(followers[0]);
    c.stop(followers[1]);
    let err = c.client(leader).set("/obs", "x", None).await.unwrap_err();
    assert!(matches!(err, Error::NoQuorum { .. } | Error::ConnectionLoss { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_fails_over_with_its_ephemerals_and_a_new_leader_waits_a_full_timeout() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(root.path(), 3, 0, &["--min-session-timeout-ms", "1000"]);
    let leader = c.leader(LEADER_WAIT).await;
    let first = (1..=3).find(|id| *id != leader).unwrap();

    // A client on a follower, with every server in its connect string.
    let client = c.client_all(first);
    let session = client.open_session(Duration::from_secs(3)).await.unwrap();
    client.create("/eph", "mine", &CreateOptions::mode(CreateMode::Ephemeral)).await.unwrap();
    // Its server dies; keepalives move on to another server and the session lives on.
    c.kill(first);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let other = (1..=3).find(|id| *id != first).unwrap();
    let (stat, _) = c.client(other).exists_at("/eph", Consistency::Linearizable).await.unwrap();
    assert_eq!(stat.expect("the ephemeral outlived its server").ephemeral_owner, session.id);
    assert_eq!(client.session().unwrap().id, session.id);

    // A session whose client vanished: when the leader dies, the new leader gives it a
    // full timeout from its election before expiring it.
    c.restart(first);
    let zxid = c.client(leader).sync("/").await.unwrap();
    c.caught_up(first, zxid, LEADER_WAIT).await;
    let ghost = c.client(leader);
    ghost.open_session(Duration::from_secs(3)).await.unwrap();
    ghost.create("/ghost", "", &CreateOptions::mode(CreateMode::Ephemeral)).await.unwrap();
    drop(ghost);
    c.kill(leader);
    let new_leader = c.leader(LEADER_WAIT).await;
    let elected = Instant::now();
    let observer = c.client(new_leader);
    let mut gone_after = None;
    while elected.elapsed() < Duration::from_secs(12) {
        if observer.exists("/ghost").await.unwrap().is_none() {
            gone_after = Some(elected.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone_after = gone_after.expect("the abandoned session expired");
    assert!(
        gone_after >= Duration::from_millis(2500),
        "expired {gone_after:?} after the election: before a full timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_on_another_server_with_the_exact_event_sequence() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(root.path(), 3, 0, &[]);
    let leader = c.leader(LEADER_WAIT).await;
    let watched = (1..=3).find(|id| *id != leader).unwrap();
    let other = (1..=3).find(|id| *id != leader && *id != watched).unwrap();
    let writer = c.client(leader);
    writer.create("/w", "0", &CreateOptions::default()).await.unwrap();
    let zxid = writer.sync("/").await.unwrap();
    c.caught_up(watched, zxid, LEADER_WAIT).await;

    let r1 = c.client(watched);
    let mut w = r1.watch_stream().await.unwrap();
    w.watch(WatchSpec::new("/w", WatchKind::Subtree).from_zxid(zxid + 1)).await.unwrap();
    let mut written = Vec::new();
    let mut seen = Vec::new();
    for i in 0..20 {
        written.push(writer.set("/w", format!("{i}"), None).await.unwrap().mzxid);
    }
    while seen.len() < 10 {
        if let Some(WatchMessage::Events { events, .. }) = w.next().await.unwrap() {
            seen.extend(events.iter().map(|e| e.zxid));
        }
    }
    // The watched server dies mid-stream; writes go on.
    c.kill(watched);
    for i in 20..40 {
        written.push(writer.set("/w", format!("{i}"), None).await.unwrap().mzxid);
    }
    let last = *seen.last().unwrap();
    let r2 = c.client(other);
    let mut w = r2.watch_stream().await.unwrap();
    w.watch(WatchSpec::new("/w", WatchKind::Subtree).from_zxid(last + 1)).await.unwrap();
    let want = written.clone();
    while seen.last() != want.last() {
        match tokio::time::timeout(Duration::from_secs(10), w.next()).await.unwrap().unwrap() {
            Some(WatchMessage::Events { events, .. }) => seen.extend(events.iter().map(|e| e.zxid)),
            Some(_) => {}
            None => panic!("stream ended"),
        }
    }
    assert_eq!(seen, want, "no event lost or repeated across the failover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_and_leadership_transfer_with_writes_running() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(root.path(), 3, 0, &[]);
    let leader = c.leader(LEADER_WAIT).await;
    c.client(leader).create("/m", "", &CreateOptions::default()).await.unwrap();

    // A writer on every server, recording what was acknowledged.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let client = Client::builder(&[1, 2, 3].map(|id| c.client_addr(id)).join(","))
            .request_timeout(Duration::from_secs(8))
            .build()
            .unwrap();
        let (acked, stop) = (acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let path = format!("/m/w{w}-{i}");
                match client.create(&path, "", &CreateOptions::default()).await {
                    Ok(_) => acked.lock().unwrap().push(path),
                    Err(
                        Error::NoQuorum { .. }
                        | Error::NotReady { .. }
                        | Error::ConnectionLoss { .. }
                        | Error::Unreachable { .. },
                    ) => {}
                    Err(e) => panic!("{e}"),
                }
                i += 1;
            }
        }));
    }

    // Add a fourth voter.
    let four = c.add_joiner(root.path(), &[]);
    let out = c.server(1).grove_ok(&["member", "add", &four.to_string(), &c.peer_addr(four)]);
    assert!(out.contains(&format!("{four} voter")), "{out}");
    let members = c.client(leader).members().await.unwrap();
    assert_eq!(members.iter().filter(|m| m.role == grove_client::proto::MemberRole::Voter as i32).count(), 4);
    // The joiner learns it was promoted when it applies the membership entry, which can
    // land a moment after the leader acknowledged the change.
    let joiner = c.server(four);
    eventually(Duration::from_secs(10), "the joiner to see itself as a follower", async || {
        mode_line(&joiner.grove_ok(&["status"])) == "Mode: follower"
    })
    .await;

    // Remove a voter that is not the leader.
    let removed = (1..=3).find(|id| *id != leader).unwrap();
    c.server(four).grove_ok(&["member", "remove", &removed.to_string()]);
    let members = c.client(leader).members().await.unwrap();
    assert!(!members.iter().any(|m| m.id == removed), "{members:?}");
    c.stop(removed);

    // Hand leadership to the new voter.
    let out = c.server(leader).grove_ok(&["transfer-leader", &four.to_string()]);
    assert_eq!(out.trim(), format!("Leader: {four}"));
    assert_eq!(c.leader(LEADER_WAIT).await, four);

    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    // Every acknowledged write is there.
    let check = c.client(four);
    let present: std::collections::HashSet<String> =
        check.children("/m").await.unwrap().into_iter().map(|n| format!("/m/{n}")).collect();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "writes kept going: {}", acked.len());
    for p in &acked {
        assert!(present.contains(p), "acknowledged {p} is missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_with_an_empty_data_dir_catches_up_by_snapshot() {
    let root = tempfile::tempdir().unwrap();
    // Snapshots every 50 entries, 5 entries kept behind them: the log a newcomer would
    // need is long gone.
    let small = ["--snapshot-entries", "50", "--keep-log-entries", "5"];
    let mut c = Cluster::start(root.path(), 3, 0, &small);
    let leader = c.leader(LEADER_WAIT).await;
    let w = c.client(leader);
    w.create("/snap", "", &CreateOptions::default()).await.unwrap();
    for i in 0..300 {
        w.create(&format!("/snap/n{i:03}"), format!("{i}"), &CreateOptions::default()).await.unwrap();
    }
    let zxid = w.sync("/").await.unwrap();
    let st = c.status(leader).await.unwrap();
    assert!(st.snapshot_index > 200, "the leader snapshotted: {st:?}");

    let joiner = c.add_joiner(root.path(), &small);
    c.client(leader).add_member(joiner, &c.peer_addr(joiner), "", false).await.unwrap();
    c.caught_up(joiner, zxid, LEADER_WAIT).await;
    let j = c.client(joiner);
    let st = c.status(joiner).await.unwrap();
    assert!(st.snapshot_index > 200, "installed the leader's snapshot: {st:?}");
    assert_eq!(j.children_with("/snap", Consistency::Sequential, false).await.unwrap().names.len(), 300);
    assert_eq!(&j.get_with("/snap/n299", Consistency::Sequential).await.unwrap().0[..], b"299");
    // And it is a working voter.
    assert_eq!(mode_line(&c.server(joiner).grove_ok(&["status"])), "Mode: follower");
    j.create("/snap/from-joiner", "", &CreateOptions::default()).await.unwrap();
}
