//! Kill -9 at any moment and restart: every acknowledged write is there.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grove_client::{Client, CreateOptions, Error};

use crate::harness::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_process(dir.path(), &[]);
    s.connect().create("/d", "", &CreateOptions::default()).await.unwrap();
    // node path -> last acknowledged data
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    for round in 0..3 {
        let client = Client::builder(&s.client).request_timeout(Duration::from_secs(2)).build().unwrap();
        let mut writers = Vec::new();
        for w in 0..8 {
            let (client, acked) = (client.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut i = 0;
                while Instant::now() < deadline {
                    let path = format!("/d/r{round}-w{w}-{i}");
                    let data = format!("{round}:{w}:{i}");
                    match client.create(&path, data.clone(), &CreateOptions::default()).await {
                        Ok(_) => {
                            acked.lock().unwrap().insert(path.clone(), data.clone());
                        }
                        Err(Error::ConnectionLoss { .. } | Error::Unreachable { .. }) => return,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                    // Overwrite some, so sets are checked too.
                    if i % 3 == 0 {
                        let data2 = format!("{data}+");
                        match client.set(&path, data2.clone(), Some(0)).await {
                            Ok(_) => {
                                acked.lock().unwrap().insert(path, data2);
                            }
                            Err(Error::ConnectionLoss { .. } | Error::Unreachable { .. }) => return,
                            Err(e) => panic!("unexpected error: {e}"),
                        }
                    }
                    i += 1;
                }
            }));
        }
        // Let the load run, then pull the plug.
        tokio::time::sleep(Duration::from_millis(700 + 300 * round as u64)).await;
        s.kill9();
        for w in writers {
            w.await.unwrap();
        }
        s.restart();
        let c = s.connect();
        let expected = acked.lock().unwrap().clone();
        assert!(!expected.is_empty());
        for (path, data) in &expected {
            match c.get(path).await {
                Ok((got, _)) => {
                    // A write in flight at the kill may have landed after its ack was lost:
                    // only a newer value of the same node is acceptable.
                    let got = String::from_utf8_lossy(&got).into_owned();
                    assert!(got == *data || got == format!("{data}+"), "{path}: acknowledged {data:?}, found {got:?}");
                }
                Err(e) => panic!("acknowledged {path} is missing after kill -9 (round {round}): {e}"),
            }
        }
        eprintln!("round {round}: {} acknowledged writes survived kill -9", expected.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_and_log_purge_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_process(dir.path(), &["--snapshot-entries", "50", "--keep-log-entries", "10"]);
    let c = s.connect();
    c.create("/s", "", &CreateOptions::default()).await.unwrap();
    for i in 0..200 {
        c.create(&format!("/s/n{i:03}"), format!("{i}"), &CreateOptions::default()).await.unwrap();
    }
    let status = c.status().await.unwrap();
    assert!(status.snapshot_index >= 150, "snapshots were built: {status:?}");
    assert!(dir.path().join("data/snapshots/snapshot.bin").exists());
    let zxid = status.zxid;
    drop(c);
    assert!(s.terminate().success());
    s.restart();
    let c = s.connect();
    assert_eq!(c.children("/s").await.unwrap().len(), 200);
    assert_eq!(&c.get("/s/n199").await.unwrap().0[..], b"199");
    assert!(c.status().await.unwrap().zxid >= zxid);
}

/// SEQUENTIAL reads never go backwards on one server, across a kill -9 and restart: the
/// server's state database syncs lazily and re-applies from its log after a crash, and
/// must not answer from the older state meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn sequential_reads_never_go_backwards_across_a_crash() {
    use grove_client::Consistency;
    let dir = tempfile::tempdir().unwrap();
    let mut c = crate::cluster::Cluster::start(dir.path(), 3, 0, &[]);
    let leader = c.leader(Duration::from_secs(20)).await;
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let writer = c.client(leader);
    writer.create("/seq", "0", &CreateOptions::default()).await.unwrap();
    for round in 0..4 {
        for i in 0..30 {
            writer.set("/seq", format!("{round}-{i}"), None).await.unwrap();
        }
        let zxid = writer.sync("/").await.unwrap();
        c.caught_up(follower, zxid, Duration::from_secs(10)).await;
        // What the follower served just before the crash.
        let (data, _, seen) = c.client(follower).get_at("/seq", Consistency::Sequential).await.unwrap();
        c.kill(follower);
        c.restart(follower);
        // A fresh client (no min_zxid of its own) reads from the restarted follower.
        let fresh = Client::builder(&c.client_addr(follower)).request_timeout(Duration::from_secs(10)).build().unwrap();
        let (after, _, at) = fresh.get_at("/seq", Consistency::Sequential).await.unwrap();
        assert!(at >= seen, "round {round}: served zxid {seen} ({data:?}) before the crash, then {at} ({after:?})");
    }
}
