//! Power loss: acknowledged writes survive a crash that drops every write not yet fsynced.
//!
//! The servers run with `GROVE_TEST_POWER_LOSS_DISK=1`: their redb files live in memory and
//! reach the disk only as redb syncs them (`storage/power_loss.rs`), so SIGKILL leaves the
//! files as a power cut leaves a disk whose cache was lost. Writers record every write the
//! ensemble acknowledged; the nemesis cuts the power of one server, of the leader, or of all
//! of them at once; after each restart every acknowledged write must be there (a
//! linearizable read through every server), and the ensemble must take writes again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grove_client::{Client, Consistency, CreateOptions, Error};

use crate::cluster::Cluster;
use crate::nemesis::{self, Tally};

async fn writer(
    w: u64,
    client: Client,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    ops: Arc<AtomicU64>,
) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let path = format!("/p/w{w}-{i}");
        let data = format!("{w}:{i}");
        ops.fetch_add(1, Ordering::Relaxed);
        match client.create(&path, data.clone(), &CreateOptions::default()).await {
            Ok(_) => {
                acked.lock().unwrap().insert(path, data);
                i += 1;
            }
            // Sent again with the same request id, it may have been applied: a later
            // acknowledged create of the same name would say NODE_EXISTS.
            Err(Error::NodeExists { .. }) => {
                acked.lock().unwrap().insert(path, data);
                i += 1;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_power_loss() {
    // Inherited by every groved this test starts, never by other tests (each runs in a
    // process of its own).
    unsafe { std::env::set_var(grove_server::storage::power_loss::ENV, "1") };
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(root.path(), 3, 0, &["--request-timeout-ms", "2000"]);
    c.leader(Duration::from_secs(20)).await;
    c.client_all(1).create("/p", "", &CreateOptions::default()).await.unwrap();
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let ops = Arc::new(AtomicU64::new(0));
    let mut tally = Tally::new("power loss");
    let plans = ["one follower", "the leader", "every server at once", "the leader", "every server at once"];
    for cycle in 0..nemesis::cycles(plans.len()) {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| tokio::spawn(writer(w, c.client_all(w + 1), stop.clone(), acked.clone(), ops.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(800 + 200 * cycle as u64)).await;
        let leader = c.leader(Duration::from_secs(20)).await;
        let plan = plans[cycle % plans.len()];
        let victims: Vec<u64> = match plan {
            "one follower" => vec![(1..=3).find(|i| *i != leader).unwrap()],
            "the leader" => vec![leader],
            _ => vec![1, 2, 3],
        };
        // The power goes while writes are in flight.
        for v in &victims {
            c.kill(*v);
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            let _ = tokio::time::timeout(Duration::from_secs(20), w).await;
        }
        c.restart_together(&victims);
        let took = nemesis::recovered(&c, Duration::from_secs(30)).await;
        tally.worst_recovery = tally.worst_recovery.max(took);
        tally.faults.push(format!("cycle {cycle}: power cut on {plan} ({victims:?}); recovered in {took:?}"));
        tally.cycles += 1;
        // Every acknowledged write is there, on every server.
        let expected = acked.lock().unwrap().clone();
        for id in 1..=3 {
            let client = c.client(id);
            for (path, data) in &expected {
                match client.get_with(path, Consistency::Linearizable).await {
                    Ok((got, _)) if got == data.as_bytes() => {}
                    Ok((got, _)) => tally.violations.push(format!(
                        "cycle {cycle}: {path} was acknowledged as {data:?}, server {id} has {:?}",
                        String::from_utf8_lossy(&got)
                    )),
                    Err(e) => {
                        tally.violations.push(format!("cycle {cycle}: acknowledged {path} lost on server {id}: {e}"))
                    }
                }
            }
        }
        eprintln!("  cycle {cycle}: {} acknowledged writes checked on 3 servers", expected.len());
    }
    tally.operations = ops.load(Ordering::Relaxed);
    assert!(acked.lock().unwrap().len() > 50, "the workload ran");
    tally.finish();
}
