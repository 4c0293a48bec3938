//! What no quorum looks like, and that the write path never wedges after one.
//!
//! A leader cut off from its peers keeps its role for a while (openraft 0.9 hears of no
//! higher term); writes and linearizable reads through it fail by themselves within the
//! server's request timeout, saying NO_QUORUM. Once the partition heals (after the others
//! have moved on far enough that the old leader is caught up by snapshot, which openraft
//! never answers its stale entry for), every server takes writes again.

use std::time::{Duration, Instant};

use grove_client::{Client, Consistency, CreateOptions, Error};

use crate::cluster::Cluster;
use crate::harness::grove_bin;

/// The request timeout the cluster runs with (FAST_RAFT).
const REQUEST_TIMEOUT: Duration = Duration::from_millis(3_000);

/// A client of one server that does not retry elsewhere.
fn only(cluster: &Cluster, id: u64) -> Client {
    Client::builder(&cluster.client_addr(id)).request_timeout(Duration::from_secs(15)).build().unwrap()
}

async fn write_through(c: &Client, path: &str) -> Result<(), Error> {
    c.create(path, "x", &CreateOptions::default()).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread")]
async fn without_quorum_writes_and_reads_fail_in_time_and_the_cli_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_proxied(dir.path(), 3, &[]).await;
    let leader = cluster.leader(Duration::from_secs(20)).await;
    only(&cluster, leader).create("/before", "x", &CreateOptions::default()).await.unwrap();
    cluster.isolate(leader);
    let c = only(&cluster, leader);

    let t = Instant::now();
    match write_through(&c, "/w").await {
        Err(Error::NoQuorum { .. }) => {}
        other => panic!("a write without quorum: {other:?}"),
    }
    let took = t.elapsed();
    assert!(took < REQUEST_TIMEOUT + Duration::from_secs(1), "the write failed after {took:?}");

    let t = Instant::now();
    match c.get_with("/before", Consistency::Linearizable).await {
        Err(Error::NoQuorum { .. } | Error::NotReady { .. }) => {}
        other => panic!("a linearizable read without quorum: {other:?}"),
    }
    assert!(t.elapsed() < REQUEST_TIMEOUT + Duration::from_secs(1), "the read failed after {:?}", t.elapsed());

    // The failure drill's step: the CLI prints the server's reason and exits 1 in time.
    let t = Instant::now();
    let out = std::process::Command::new(grove_bin())
        .args(["--server", &cluster.client_addr(leader), "create", "/x", "y"])
        .output()
        .unwrap();
    let took = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no quorum") && stderr.contains("may still be applied"), "{stderr}");
    assert!(took < REQUEST_TIMEOUT + Duration::from_secs(2), "grove create took {took:?}: {stderr}");
    cluster.heal();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_former_leader_caught_up_by_snapshot_takes_writes_again() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_proxied(dir.path(), 3, &["--snapshot-entries", "50", "--keep-log-entries", "5"]).await;
    let old = cluster.leader(Duration::from_secs(20)).await;
    cluster.isolate(old);
    // An entry the old leader appends and can never commit.
    assert!(matches!(write_through(&only(&cluster, old), "/stale").await, Err(Error::NoQuorum { .. })));
    // The others elect a leader and move on far past it: the old leader's log is purged
    // from their view, so it can only catch up by snapshot.
    let others: Vec<u64> = (1..=3).filter(|i| *i != old).collect();
    let majority = Client::builder(&others.iter().map(|i| cluster.client_addr(*i)).collect::<Vec<_>>().join(","))
        .request_timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    for i in 0..300 {
        majority.create(&format!("/n{i}"), "v", &CreateOptions::default()).await.unwrap();
    }
    // openraft purges only after a failed send to the cut-off server: keep it cut a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.heal();
    let new_leader = cluster.leader(Duration::from_secs(20)).await;
    assert_ne!(new_leader, old);
    // Every server takes writes again, the old leader included.
    for id in 1..=3 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match write_through(&only(&cluster, id), &format!("/after-{id}")).await {
                Ok(()) => break,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("write through {id}: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("server {id} takes no writes after the heal: {e}"),
            }
        }
    }
    // And after leadership moves back to the former leader, all three still do.
    let out = cluster.server(new_leader).grove_ok(&["transfer-leader", &old.to_string()]);
    assert!(out.contains(&old.to_string()), "{out}");
    assert_eq!(cluster.leader(Duration::from_secs(20)).await, old);
    for id in 1..=3 {
        write_through(&only(&cluster, id), &format!("/again-{id}")).await.unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    // The stale entry never took effect anywhere.
    assert!(majority.exists("/stale").await.unwrap().is_none(), "the cut-off leader's entry was applied");
}

/// An acquire given up with its outcome unknown leaves no lock behind, whatever became of
/// its entry: discarded with the old term when the paused followers elect, withdrawn by
/// the server once the caller went away, or committed after the answer and withdrawn by
/// the client in the background (its request sent again with the same id). The lock is
/// free for the next caller.
#[tokio::test(flavor = "multi_thread")]
async fn an_acquire_given_up_without_quorum_leaves_no_lock_behind() {
    use grove_client::{LockRequest, RetryPolicy};
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, 0, &[]);
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let c = Client::builder(&cluster.client_addr(leader))
        .request_timeout(Duration::from_secs(4))
        .retry_policy(RetryPolicy::Never)
        .build()
        .unwrap();
    c.open_session(Duration::from_secs(30)).await.unwrap();
    let followers: Vec<u64> = (1..=3).filter(|i| *i != leader).collect();
    for f in &followers {
        cluster.server(*f).signal("STOP");
    }
    let given_up = c.acquire(&LockRequest::mutex("/held-by-nobody")).await;
    assert!(
        matches!(given_up, Err(Error::NoQuorum { .. } | Error::ConnectionLoss { .. })),
        "an acquire without quorum: {given_up:?}"
    );
    // The followers come back.
    for f in &followers {
        cluster.server(*f).signal("CONT");
    }
    let other = Client::builder(&cluster.client_addr(followers[0])).build().unwrap();
    other.open_session(Duration::from_secs(30)).await.unwrap();
    let req = LockRequest { timeout: Some(Duration::from_secs(15)), ..LockRequest::mutex("/held-by-nobody") };
    let grant = other.acquire(&req).await.expect("the lock was left held by a request nobody waits for");
    assert_ne!(grant.session, c.session_id());
}
