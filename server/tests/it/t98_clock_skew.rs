//! Clocks that disagree: servers whose wall clocks are hours apart (libfaketime, Debian's
//! `faketime`, preloaded into real `groved` processes) lead one after the other.
//!
//! - Entry times (ctime, mtime) never go back when leadership moves from a server whose
//!   clock is ahead to one whose clock is behind, and they keep moving (not frozen until the
//!   slow clock catches up).
//! - TTL nodes created after such a move are reaped about on time.
//! - Sessions are timed by each server's monotonic clock: one kept alive survives the move,
//!   and the wall clocks' gap neither expires it nor keeps a silent one alive.
//! - Request ids stamped by a client whose clock is hours behind the servers' still work.

use std::path::Path;
use std::time::{Duration, Instant};

use grove_client::{Client, CreateMode, CreateOptions};

use crate::cluster::Cluster;
use crate::harness::eventually;

/// The preload that fakes a process's clocks, if the machine has it.
fn libfaketime() -> Option<&'static str> {
    ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// Runs groved with its clocks moved by `offset` (libfaketime syntax, e.g. "+3h"); `env`
/// execs groved, so the PID the harness signals is groved's.
fn skewed(lib: &str, offset: &str) -> Vec<String> {
    vec!["env".into(), format!("LD_PRELOAD={lib}"), format!("FAKETIME={offset}"), "FAKETIME_NO_CACHE=1".into()]
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

const HOUR: i64 = 3_600_000;

async fn lead(c: &Cluster, id: u64) {
    eventually(Duration::from_secs(30), "the leadership moved", async || {
        let leader = c.leader(Duration::from_secs(20)).await;
        if leader != id {
            let _ = c.server(leader).grove(&["transfer-leader", &id.to_string()]);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        c.leader(Duration::from_secs(20)).await == id
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn entry_times_sessions_and_ttls_hold_when_leaders_clocks_disagree() {
    let Some(lib) = libfaketime() else {
        // scripts/setup-debian.sh installs it; CI runs it (scripts/test.sh).
        assert!(std::env::var("CI").is_err(), "libfaketime is missing: run scripts/setup-debian.sh");
        eprintln!("skipped: libfaketime is not installed (scripts/setup-debian.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(dir.path(), 3, 0, &["--reap-interval-ms", "200"]);
    c.leader(Duration::from_secs(20)).await;
    // Server 2 runs three hours ahead, server 3 three hours behind; server 1 is right.
    for (id, offset) in [(2, "+3h"), (3, "-3h")] {
        c.stop(id);
        c.members[(id - 1) as usize].prefix = skewed(lib, offset);
        c.restart(id);
    }
    let client = Client::builder(&(1..=3).map(|i| c.client_addr(i)).collect::<Vec<_>>().join(","))
        .request_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let session = client.open_session(Duration::from_secs(2)).await.unwrap();
    client.create("/mine", "", &CreateOptions::mode(CreateMode::Ephemeral)).await.unwrap();

    lead(&c, 2).await;
    let (_, ahead) = client.create("/t", "ahead", &CreateOptions::default()).await.unwrap();
    assert!(ahead.mtime > now_ms() + 2 * HOUR, "server 2's clock is ahead: mtime {}", ahead.mtime);

    // The leadership moves to the server six hours behind.
    lead(&c, 3).await;
    let first = client.set("/t", "behind", None).await.unwrap();
    assert!(first.mtime >= ahead.mtime, "mtime went back from {} to {}", ahead.mtime, first.mtime);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let second = client.set("/t", "later", None).await.unwrap();
    let moved = second.mtime - first.mtime;
    assert!((900..5_000).contains(&moved), "entry time moved {moved} ms in a second (frozen, or racing)");

    // A TTL node created now is reaped about on time by the slow leader.
    let ttl =
        CreateOptions { ttl: Some(Duration::from_millis(1_000)), ..CreateOptions::mode(CreateMode::PersistentWithTtl) };
    client.create("/ttl", "", &ttl).await.unwrap();
    let created = Instant::now();
    eventually(Duration::from_secs(10), "the TTL node was reaped", async || {
        client.exists("/ttl").await.is_ok_and(|s| s.is_none())
    })
    .await;
    assert!(created.elapsed() >= Duration::from_millis(900), "reaped early, after {:?}", created.elapsed());

    // The kept-alive session lived through both moves; request ids stamped by this client
    // (hours behind the entry clock) were applied once each.
    assert_eq!(client.session().map(|s| s.id), Some(session.id));
    assert!(client.exists("/mine").await.unwrap().is_some_and(|s| s.ephemeral_owner == session.id));

    // A silent session is expired by its timeout, not by the clocks' gap.
    let silent = Client::builder(&c.client_addr(3)).build().unwrap();
    let s = silent.open_session(Duration::from_secs(2)).await.unwrap();
    silent.create("/silent", "", &CreateOptions::mode(CreateMode::Ephemeral)).await.unwrap();
    let opened = Instant::now();
    drop(silent); // its keepalives stop; the session is not closed
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(client.exists("/silent").await.unwrap().is_some(), "expired early (session {:x})", s.id);
    eventually(Duration::from_secs(10), "the silent session expired", async || {
        client.exists("/silent").await.is_ok_and(|s| s.is_none())
    })
    .await;
    assert!(opened.elapsed() < Duration::from_secs(8), "expired after {:?}", opened.elapsed());
}
