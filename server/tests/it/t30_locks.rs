//! Server-side locks, semaphores and elections through the raw client calls: FIFO grants,
//! timeouts and cancellations that leave nothing behind, release on session end,
//! reentrancy, read/write rules, semaphore counts, multi-locks, fencing, and elections.

use std::time::Duration;

use bytes::Bytes;
use grove_client::{Client, CreateOptions, Error, LockKind, LockRequest, Op};

use crate::harness::{Server, eventually};

const FAST_SESSIONS: &[&str] = &["--min-session-timeout-ms", "300", "--max-session-timeout-ms", "10000"];

async fn session(s: &Server) -> Client {
    let c = s.connect();
    c.open_session(Duration::from_secs(10)).await.unwrap();
    c
}

fn mutex(path: &str) -> LockRequest {
    LockRequest::mutex(path)
}

/// Nodes of a lock, and which are granted.
async fn line(c: &Client, path: &str) -> Vec<(String, bool)> {
    c.describe_lock(path).await.unwrap().into_iter().map(|e| (e.node, e.granted)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutex_is_granted_in_fifo_order_with_increasing_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b, c) = (session(&s).await, session(&s).await, session(&s).await);
    let ga = a.acquire(&mutex("/locks/m")).await.unwrap();
    assert_eq!(ga.nodes.len(), 1);
    assert!(ga.nodes[0].starts_with("/locks/m/lock-"), "{:?}", ga.nodes);
    // b queues first, then c: they must be served in that order.
    let tb = tokio::spawn({
        let b = b.clone();
        async move { b.acquire(&mutex("/locks/m")).await }
    });
    eventually(Duration::from_secs(5), "b to queue", async || line(&a, "/locks/m").await.len() == 2).await;
    let tc = tokio::spawn({
        let c = c.clone();
        async move { c.acquire(&mutex("/locks/m")).await }
    });
    eventually(Duration::from_secs(5), "c to queue", async || line(&a, "/locks/m").await.len() == 3).await;
    let l = line(&a, "/locks/m").await;
    assert_eq!(l.iter().map(|(_, g)| *g).collect::<Vec<_>>(), vec![true, false, false]);

    assert!(a.release(&ga.nodes[0]).await.unwrap());
    let gb = tokio::time::timeout(Duration::from_secs(5), tb).await.unwrap().unwrap().unwrap();
    assert!(gb.token > ga.token, "tokens increase: {} then {}", ga.token, gb.token);
    assert!(!tc.is_finished(), "c was granted while b held the lock");
    assert!(b.release(&gb.nodes[0]).await.unwrap());
    let gc = tokio::time::timeout(Duration::from_secs(5), tc).await.unwrap().unwrap().unwrap();
    assert!(gc.token > gb.token);
    assert!(c.release(&gc.nodes[0]).await.unwrap());
    assert!(!c.release(&gc.nodes[0]).await.unwrap(), "a second release finds nothing");
    assert!(line(&a, "/locks/m").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_that_times_out_or_is_cancelled_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b) = (session(&s).await, session(&s).await);
    let ga = a.acquire(&mutex("/m")).await.unwrap();
    let err = b.acquire(&mutex("/m").timeout(Some(Duration::from_millis(300)))).await.unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err:?}");
    assert_eq!(line(&a, "/m").await, vec![(ga.nodes[0].clone(), true)], "the timed-out waiter was withdrawn");

    // A caller that goes away (its future dropped, the call cancelled) is withdrawn too.
    let waiting = tokio::spawn({
        let b = b.clone();
        async move { b.acquire(&mutex("/m")).await }
    });
    eventually(Duration::from_secs(5), "b to queue", async || line(&a, "/m").await.len() == 2).await;
    waiting.abort();
    eventually(Duration::from_secs(5), "the cancelled waiter to be withdrawn", async || {
        line(&a, "/m").await.len() == 1
    })
    .await;
    // And the lock still works: the next waiter is granted on release.
    let next = tokio::spawn({
        let b = b.clone();
        async move { b.acquire(&mutex("/m")).await }
    });
    eventually(Duration::from_secs(5), "b to queue again", async || line(&a, "/m").await.len() == 2).await;
    a.release(&ga.nodes[0]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), next).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_ends_releases_its_locks_and_wakes_the_next_waiter() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), FAST_SESSIONS);
    let b = session(&s).await;
    // a's session is opened by hand and never kept alive: it expires.
    let a = s.connect();
    a.open_session(Duration::from_millis(500)).await.unwrap();
    let (id, secret) = (a.session().unwrap().id, a.session().unwrap().secret);
    let ga = a.acquire(&mutex("/m")).await.unwrap();
    drop(a);
    let silent = s.connect();
    // Resuming on a client we drop right away stops the keepalives for good.
    silent.resume_session(id, secret).await.unwrap();
    drop(silent);
    let gb = tokio::time::timeout(Duration::from_secs(10), b.acquire(&mutex("/m"))).await.unwrap().unwrap();
    assert!(gb.token > ga.token);
    assert_eq!(line(&b, "/m").await, vec![(gb.nodes[0].clone(), true)]);
    // Closing a session releases at once.
    let c = session(&s).await;
    let waiting = tokio::spawn({
        let c = c.clone();
        async move { c.acquire(&mutex("/m")).await }
    });
    eventually(Duration::from_secs(5), "c to queue", async || line(&b, "/m").await.len() == 2).await;
    b.close_session().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reentrancy_is_per_owner_and_counts_holds() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let a = session(&s).await;
    let other = session(&s).await;
    let req = mutex("/r").owner("worker-1", true);
    let g1 = a.acquire(&req).await.unwrap();
    let g2 = tokio::time::timeout(Duration::from_secs(2), a.acquire(&req)).await.unwrap().unwrap();
    assert_eq!(g1.nodes, g2.nodes, "a reentrant acquire reuses the hold");
    assert_eq!(a.describe_lock("/r").await.unwrap()[0].holds, 2);
    // Another owner in the same session is not reentrant with it.
    let err = a.acquire(&mutex("/r").owner("worker-2", true).timeout(Some(Duration::from_millis(200)))).await;
    assert!(matches!(err, Err(Error::LockTimeout { .. })), "{err:?}");
    let waiting = tokio::spawn({
        let other = other.clone();
        async move { other.acquire(&mutex("/r")).await }
    });
    a.release(&g1.nodes[0]).await.unwrap();
    assert_eq!(a.describe_lock("/r").await.unwrap()[0].holds, 1, "one release per acquire");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    a.release(&g1.nodes[0]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_write_locks_share_reads_queue_writers_fairly_and_never_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (r1, r2, w) = (session(&s).await, session(&s).await, session(&s).await);
    let read = |c: &Client| {
        let c = c.clone();
        async move { c.acquire(&mutex("/rw").kind(LockKind::Read)).await }
    };
    let g1 = read(&r1).await.unwrap();
    let g2 = read(&r2).await.unwrap();
    assert!(g1.nodes[0].contains("__READ__"));
    let writer = tokio::spawn({
        let w = w.clone();
        async move { w.acquire(&mutex("/rw").kind(LockKind::Write)).await }
    });
    eventually(Duration::from_secs(5), "the writer to queue", async || line(&r1, "/rw").await.len() == 3).await;
    // A reader arriving after a waiting writer waits too: writers do not starve.
    let late = tokio::spawn(read(&r1));
    eventually(Duration::from_secs(5), "the late reader to queue", async || line(&r1, "/rw").await.len() == 4).await;
    // A reader cannot upgrade.
    let err = r2.acquire(&mutex("/rw").kind(LockKind::Write).timeout(Some(Duration::from_millis(200)))).await;
    assert!(matches!(err, Err(Error::BadArguments { .. })), "{err:?}");
    r1.release(&g1.nodes[0]).await.unwrap();
    r2.release(&g2.nodes[0]).await.unwrap();
    let gw = tokio::time::timeout(Duration::from_secs(5), writer).await.unwrap().unwrap().unwrap();
    assert!(!late.is_finished(), "a reader got in while the writer held");
    // The writer may also take the read lock (Curator's downgrade path).
    let wr = tokio::time::timeout(Duration::from_secs(2), w.acquire(&mutex("/rw").kind(LockKind::Read)))
        .await
        .unwrap()
        .unwrap();
    w.release(&gw.nodes[0]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), late).await.unwrap().unwrap().unwrap();
    w.release(&wr.nodes[0]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semaphore_hands_out_at_most_its_leases() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b) = (session(&s).await, session(&s).await);
    let mut req = mutex("/pool").kind(LockKind::Semaphore);
    req.max_leases = 3;
    req.permits = 2;
    let ga = a.acquire(&req).await.unwrap();
    assert!(ga.nodes[0].starts_with("/pool/leases/lease-"), "{:?}", ga.nodes);
    let waiting = tokio::spawn({
        let (b, req) = (b.clone(), req.clone());
        async move { b.acquire(&req).await }
    });
    eventually(Duration::from_secs(5), "b to queue", async || a.describe_lock("/pool").await.unwrap().len() == 2).await;
    // One lease is free, and b's two do not fit: nobody overtakes b either.
    let mut one = req.clone();
    one.permits = 1;
    one.timeout = Some(Duration::from_millis(200));
    assert!(matches!(a.acquire(&one).await, Err(Error::LockTimeout { .. })));
    // Asking for more leases than exist, or a different size, is refused outright.
    let mut too_many = req.clone();
    too_many.permits = 4;
    assert!(matches!(a.acquire(&too_many).await, Err(Error::BadArguments { .. })));
    let mut other_size = req.clone();
    other_size.max_leases = 5;
    assert!(matches!(a.acquire(&other_size).await, Err(Error::BadArguments { .. })));
    a.release(&ga.nodes[0]).await.unwrap();
    let gb = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap().unwrap();
    let granted: Vec<_> = a.describe_lock("/pool").await.unwrap().into_iter().filter(|e| e.granted).collect();
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0].node, gb.nodes[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_lock_is_granted_all_at_once_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b) = (session(&s).await, session(&s).await);
    let ga = a.acquire(&mutex("/m1")).await.unwrap();
    let mut both = mutex("/m1");
    both.paths.push("/m2".into());
    let waiting = tokio::spawn({
        let (b, both) = (b.clone(), both.clone());
        async move { b.acquire(&both).await }
    });
    eventually(Duration::from_secs(5), "b to queue on both", async || line(&a, "/m2").await.len() == 1).await;
    // b holds neither while it waits for /m1.
    assert!(!line(&a, "/m2").await[0].1, "/m2 must not be granted alone");
    a.release(&ga.nodes[0]).await.unwrap();
    let gb = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap().unwrap();
    assert_eq!(gb.nodes.len(), 2);
    assert!(line(&a, "/m1").await[0].1 && line(&a, "/m2").await[0].1);
    // Releasing one node of the group releases the whole grant.
    b.release(&gb.nodes[0]).await.unwrap();
    assert!(line(&a, "/m1").await.is_empty() && line(&a, "/m2").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_holder_is_fenced_out_of_a_guarded_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b) = (session(&s).await, session(&s).await);
    a.create("/resource", "v0", &CreateOptions::default()).await.unwrap();
    let ga = a.acquire(&mutex("/guard")).await.unwrap();
    let guarded = |token: u64, v: &'static str| {
        vec![
            Op::CheckFence { path: "/guard".into(), token },
            Op::Set { path: "/resource".into(), data: Bytes::from(v), version: None },
        ]
    };
    a.multi(&guarded(ga.token, "v1")).await.unwrap().unwrap();
    // a loses the lock (released here; a session expiry does the same) and b takes it.
    a.release(&ga.nodes[0]).await.unwrap();
    let gb = b.acquire(&mutex("/guard")).await.unwrap();
    let (i, err) = a.multi(&guarded(ga.token, "stale")).await.unwrap().unwrap_err();
    assert_eq!(i, 0);
    assert!(matches!(err, Error::Fenced { .. }), "{err:?}");
    b.multi(&guarded(gb.token, "v2")).await.unwrap().unwrap();
    assert_eq!(&a.get("/resource").await.unwrap().0[..], b"v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_requests_need_a_session_and_valid_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let anon = s.connect();
    assert!(matches!(anon.acquire(&mutex("/m")).await, Err(Error::BadArguments { .. })));
    let a = session(&s).await;
    for (req, what) in [
        (mutex("relative"), "a relative path"),
        (mutex("/"), "the root"),
        (LockRequest { paths: vec![], ..mutex("/x") }, "no path"),
        (LockRequest { paths: vec!["/x".into(), "/x".into()], ..mutex("/x") }, "a path twice"),
        (LockRequest { paths: vec!["/x".into(), "/y".into()], ..mutex("/x").kind(LockKind::Read) }, "a read multi"),
        (mutex("/sem").kind(LockKind::Semaphore), "a semaphore without a size"),
    ] {
        let r = a.acquire(&req).await;
        assert!(matches!(r, Err(Error::BadArguments { .. })), "{what}: {r:?}");
    }
    // A mutex path cannot then be used as a semaphore or a read/write lock.
    let g = a.acquire(&mutex("/kinds")).await.unwrap();
    assert!(matches!(a.acquire(&mutex("/kinds").kind(LockKind::Read)).await, Err(Error::BadArguments { .. })));
    // Releasing someone else's node is refused.
    let b = session(&s).await;
    assert!(matches!(b.release(&g.nodes[0]).await, Err(Error::BadArguments { .. })));
    assert_eq!(line(&a, "/kinds").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_election_has_one_leader_and_its_observers_see_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b) = (session(&s).await, session(&s).await);
    let watcher = s.connect();
    let mut observe = watcher.observe_leader("db").await.unwrap();
    assert_eq!(observe.next().await.unwrap().1, None, "nobody leads yet");
    assert_eq!(watcher.leader("db").await.unwrap(), None);

    let la = a.campaign("db", "a:1", None).await.unwrap();
    assert!(la.nodes[0].starts_with("/elections/db/lock-"), "{:?}", la.nodes);
    let seen = observe.next().await.unwrap().1.unwrap();
    assert_eq!((seen.node.as_str(), &seen.value[..], seen.token), (la.nodes[0].as_str(), &b"a:1"[..], la.token));
    let cb = tokio::spawn({
        let b = b.clone();
        async move { b.campaign("db", "b:1", None).await }
    });
    a.proclaim("db", &la.nodes[0], "a:2").await.unwrap();
    assert_eq!(&observe.next().await.unwrap().1.unwrap().value[..], b"a:2");
    eventually(Duration::from_secs(5), "b to campaign", async || {
        watcher.describe_lock("/elections/db").await.unwrap().len() == 2
    })
    .await;
    // Only the leader may proclaim.
    let b_node = watcher.describe_lock("/elections/db").await.unwrap()[1].node.clone();
    assert!(matches!(b.proclaim("db", &b_node, "b:2").await, Err(Error::Fenced { .. })));
    assert!(!cb.is_finished());

    a.resign("db", &la.nodes[0]).await.unwrap();
    let lb = tokio::time::timeout(Duration::from_secs(5), cb).await.unwrap().unwrap().unwrap();
    assert!(lb.token > la.token);
    let seen = observe.next().await.unwrap().1.unwrap();
    assert_eq!((seen.node, &seen.value[..]), (lb.nodes[0].clone(), &b"b:1"[..]));
    assert_eq!(watcher.leader("db").await.unwrap().unwrap().token, lb.token);
    b.close_session().await.unwrap();
    assert_eq!(observe.next().await.unwrap().1, None, "the leader's session ended");
}
