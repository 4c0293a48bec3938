//! Sessions and locks when the network does not cooperate: three real servers whose peer
//! links go through proxies, a holder running `grove lock -- CMD`, and a second client
//! asking for the same lock through the majority. The invariant: **the holder is told it
//! lost the lock (its command is dead) before anyone else is granted it.**

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use grove_client::{Client, Error, LockRequest};

use crate::cluster::Cluster;
use crate::harness::grove_bin;

const SESSION_MS: u64 = 4_000;

/// `grove lock PATH -- sh -c 'echo $$ > PIDFILE; exec sleep 120'` against `servers`.
fn hold(servers: &str, path: &str, pidfile: &Path) -> Child {
    let script = format!("echo $$ > {}; exec sleep 120", pidfile.display());
    Command::new(grove_bin())
        .args(["--server", servers, "--timeout", &SESSION_MS.to_string(), "lock", path, "--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The pid the held command wrote, once it runs.
async fn command_pid(pidfile: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(pidfile)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the command under the lock did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks existence; a zombie (reaped by nobody yet) counts as dead.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
}

/// Watches `pid` from a thread; returns when it died, by the test's clock.
fn death_watch(pid: i32) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        while alive(pid) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Instant::now()
    })
}

async fn contender(servers: &str) -> Client {
    let c = Client::builder(servers).request_timeout(Duration::from_secs(8)).build().unwrap();
    c.open_session(Duration::from_millis(SESSION_MS)).await.unwrap();
    c
}

/// The holder reaches the cluster only through follower F; F is cut off from its peers
/// (its client port still answers). The holder must stop before the majority can grant the
/// lock to the contender, who asks through the leader.
#[tokio::test(flavor = "multi_thread")]
async fn a_holder_cut_off_with_its_follower_stops_before_the_lock_moves() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_proxied(dir.path(), 3, &[]).await;
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let pidfile = dir.path().join("a.pid");
    let mut a = hold(&cluster.client_addr(follower), "/lk", &pidfile);
    let pid = command_pid(&pidfile).await;
    let b = contender(&cluster.client_addr(leader)).await;
    let watch = death_watch(pid);

    let cut = Instant::now();
    cluster.isolate(follower);
    let grant = b.acquire(&LockRequest::mutex("/lk").timeout(Some(Duration::from_secs(30)))).await.unwrap();
    let granted = Instant::now();
    let died = watch.join().unwrap();
    assert!(
        died < granted,
        "two holders: A's command died {:?} after the cut, B was granted the lock {:?} after it",
        died - cut,
        granted - cut
    );
    // A said why it stopped, and failed.
    let out = a.wait_with_output_bounded();
    assert!(!out.0.success(), "grove lock exits non-zero when it loses the lock");
    assert!(out.1.contains("no longer holds /lk"), "{}", out.1);
    assert!(grant.token > 0);
    cluster.heal();
}

/// The holder reaches the cluster only through the leader, and the leader is cut off:
/// the old leader keeps its role for a while (it has not heard of a new term) but cannot
/// confirm renewals any more, so the holder stops before the new leader grants the lock.
#[tokio::test(flavor = "multi_thread")]
async fn a_holder_cut_off_with_the_old_leader_stops_before_the_lock_moves() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_proxied(dir.path(), 3, &[]).await;
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let other = (1..=3).find(|i| *i != leader).unwrap();
    let pidfile = dir.path().join("a.pid");
    let mut a = hold(&cluster.client_addr(leader), "/lk", &pidfile);
    let pid = command_pid(&pidfile).await;
    let b = contender(&cluster.client_addr(other)).await;
    let watch = death_watch(pid);

    let cut = Instant::now();
    cluster.isolate(leader);
    let grant = b.acquire(&LockRequest::mutex("/lk").timeout(Some(Duration::from_secs(30)))).await.unwrap();
    let granted = Instant::now();
    let died = watch.join().unwrap();
    assert!(
        died < granted,
        "two holders: A's command died {:?} after the cut, B was granted the lock {:?} after it",
        died - cut,
        granted - cut
    );
    assert!(!a.wait_with_output_bounded().0.success());
    assert!(grant.token > 0);
    cluster.heal();
}

/// With every server in its connect string, a holder whose server is cut off moves to
/// another one, keeps its session and its lock; the contender waits in vain.
#[tokio::test(flavor = "multi_thread")]
async fn a_holder_that_can_reach_the_majority_keeps_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_proxied(dir.path(), 3, &[]).await;
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let all: Vec<String> =
        [follower].into_iter().chain((1..=3).filter(|i| *i != follower)).map(|i| cluster.client_addr(i)).collect();
    let pidfile = dir.path().join("a.pid");
    let mut a = hold(&all.join(","), "/lk", &pidfile);
    let pid = command_pid(&pidfile).await;
    let b = contender(&cluster.client_addr(leader)).await;

    cluster.isolate(follower);
    let wait = Duration::from_millis(3 * SESSION_MS);
    match b.acquire(&LockRequest::mutex("/lk").timeout(Some(wait))).await {
        Err(Error::LockTimeout { .. }) => {}
        other => panic!("the lock moved while its holder could still renew its session: {other:?}"),
    }
    assert!(alive(pid), "the holder's command was stopped though its session lived");
    cluster.heal();
    let _ = a.kill();
    let _ = a.wait();
}

/// A server that cannot vouch for a session says so (UNAVAILABLE) instead of answering
/// from its own table: a client of the isolated follower alone is suspended within a third
/// of its timeout, and lost before the leader expires it.
#[tokio::test(flavor = "multi_thread")]
async fn an_isolated_follower_refuses_to_renew_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_proxied(dir.path(), 3, &[]).await;
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let c = Client::builder(&cluster.client_addr(follower)).request_timeout(Duration::from_secs(3)).build().unwrap();
    c.open_session(Duration::from_millis(SESSION_MS)).await.unwrap();
    let mut states = c.state_listener();
    let cut = Instant::now();
    cluster.isolate(follower);
    let mut suspended = None;
    let lost = loop {
        match tokio::time::timeout(Duration::from_secs(10), states.recv()).await {
            Ok(Ok(grove_client::SessionState::Suspended)) => suspended = Some(cut.elapsed()),
            Ok(Ok(grove_client::SessionState::Lost)) => break cut.elapsed(),
            Ok(Ok(_)) => {}
            other => panic!("no LOST within 10 s of the cut: {other:?}"),
        }
    };
    let suspended = suspended.expect("SUSPENDED came before LOST");
    let t = Duration::from_millis(SESSION_MS);
    assert!(suspended <= t / 3 + Duration::from_millis(500), "suspended after {suspended:?}");
    assert!(lost < t, "LOST after {lost:?}: later than the leader could expire the session");
    cluster.heal();
}

trait WaitBounded {
    fn wait_with_output_bounded(&mut self) -> (std::process::ExitStatus, String);
}

impl WaitBounded for Child {
    /// Waits (at most 20 s) for the process; its status and stderr.
    fn wait_with_output_bounded(&mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (status, err);
            }
            if Instant::now() > deadline {
                let _ = self.kill();
                panic!("grove lock did not end within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
