//! Every client recipe against a real server: the fluent framework API, caches, lock
//! recipes with RAII guards, leader latch and selector, barriers, counters, the queue,
//! persistent nodes, group membership and service discovery.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use grove_client::recipes::{
    DistributedAtomicLong, DistributedBarrier, DistributedDoubleBarrier, DistributedQueue, GroupMember,
    InterProcessMultiLock, InterProcessMutex, InterProcessReadWriteLock, InterProcessSemaphoreMutex,
    InterProcessSemaphoreV2, LeaderLatch, LeaderSelector, PersistentNode, ProviderStrategy, ServiceDiscovery,
    ServiceInstance, SharedCount,
};
use grove_client::{
    CacheEvent, Client, Consistency, CreateMode, CreateOptions, Error, NodeCache, PathChildrenCache, Stat, TreeCache,
};

use crate::harness::{Server, eventually, free_port};

const WAIT: Duration = Duration::from_secs(10);

async fn session(s: &Server) -> Client {
    Client::builder(&s.client).session_timeout(Duration::from_secs(10)).start().await.unwrap()
}

/// Everything under `root` as path → data, read from the server.
pub(crate) async fn tree(c: &Client, root: &str) -> BTreeMap<String, Bytes> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_string()];
    while let Some(p) = todo.pop() {
        let Ok((data, _)) = c.get_with(&p, Consistency::Linearizable).await else { continue };
        out.insert(p.clone(), data);
        for name in c.children(&p).await.unwrap_or_default() {
            todo.push(if p == "/" { format!("/{name}") } else { format!("{p}/{name}") });
        }
    }
    out
}

fn cached(cache: &TreeCache) -> BTreeMap<String, Bytes> {
    cache.snapshot().into_iter().map(|(p, d)| (p, d.data)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_framework_api_mirrors_curator() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let c = session(&s).await;
    let f = c.framework();

    let p = f.create().creating_parents_if_needed().for_path("/app/config/db", "v1").await.unwrap();
    assert_eq!(p, "/app/config/db");
    assert!(matches!(f.create().for_path("/nope/x", "").await, Err(Error::NoNode { .. })));
    let seq = f
        .create()
        .creating_parents_if_needed()
        .with_mode(CreateMode::EphemeralSequential)
        .for_path("/app/m/n-", "")
        .await;
    assert!(seq.unwrap().starts_with("/app/m/n-00000"));
    let protected = f
        .create()
        .creating_parents_if_needed()
        .with_protection()
        .with_mode(CreateMode::EphemeralSequential)
        .for_path("/app/p/lock-", "x")
        .await
        .unwrap();
    let name = protected.rsplit('/').next().unwrap();
    assert!(name.starts_with("_c_") && name.contains("-lock-"), "{name}");
    assert!(
        f.create().with_ttl(Duration::from_secs(5)).for_path("/app/ttl", "").await.is_err(),
        "TTL needs a TTL mode"
    );
    f.create()
        .with_mode(CreateMode::PersistentWithTtl)
        .with_ttl(Duration::from_secs(60))
        .for_path("/app/ttl", "")
        .await
        .unwrap();

    let mut stat = Stat::default();
    assert_eq!(f.get_data().storing_stat_in(&mut stat).for_path("/app/config/db").await.unwrap(), "v1");
    assert_eq!(stat.version, 0);
    let new = f.set_data().with_version(0).for_path("/app/config/db", "v2").await.unwrap();
    assert_eq!(new.version, 1);
    assert!(matches!(
        f.set_data().with_version(0).for_path("/app/config/db", "v3").await,
        Err(Error::BadVersion { .. })
    ));
    assert_eq!(f.get_data().sequential().for_path("/app/config/db").await.unwrap(), "v2");

    assert_eq!(f.check_exists().for_path("/app/config").await.unwrap().unwrap().num_children, 1);
    assert!(f.check_exists().for_path("/app/none").await.unwrap().is_none());
    let mut kids = f.get_children().for_path("/app").await.unwrap();
    kids.sort();
    assert_eq!(kids, ["config", "m", "p", "ttl"]);

    // A transaction is all or nothing.
    let failed = f
        .transaction()
        .create("/app/t1", "", CreateOptions::default())
        .check("/app/config/db", Some(0))
        .commit()
        .await
        .unwrap();
    assert!(matches!(failed, Err((1, Error::BadVersion { .. }))), "{failed:?}");
    assert!(c.exists("/app/t1").await.unwrap().is_none(), "nothing of a failed transaction is applied");
    let ok = f
        .transaction()
        .create("/app/t1", "", CreateOptions::default())
        .set_data("/app/config/db", "v3", Some(1))
        .delete("/app/ttl", None)
        .commit()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.len(), 3);
    assert!(f.sync("/app").await.unwrap() > 0);

    // Deleting a subtree, and guaranteed deletion of what is not there.
    assert!(matches!(f.delete().for_path("/app/config").await, Err(Error::NotEmpty { .. })));
    f.delete().deleting_children_if_needed().for_path("/app").await.unwrap();
    assert!(c.exists("/app").await.unwrap().is_none());
    // As in Curator, guaranteed() retries through connection loss but still reports a
    // node that is not there.
    assert!(matches!(f.delete().guaranteed().for_path("/app").await, Err(Error::NoNode { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_load_follow_changes_and_report_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let c = s.connect();
    let opts = CreateOptions { create_parents: true, ..Default::default() };
    c.create("/svc/a", "1", &opts).await.unwrap();

    let node = NodeCache::start(&c, "/svc/a").await.unwrap();
    let kids = PathChildrenCache::start(&c, "/svc").await.unwrap();
    let whole = TreeCache::start(&c, "/svc").await.unwrap();
    let shallow = TreeCache::with_max_depth(&c, "/svc", 1).await.unwrap();
    assert_eq!(node.current().unwrap().data, "1");
    assert_eq!(kids.current().len(), 1);
    let mut events = kids.listen();

    c.set("/svc/a", "2", None).await.unwrap();
    c.create("/svc/b", "x", &opts).await.unwrap();
    c.create("/svc/b/deep", "d", &opts).await.unwrap();
    let z = c.delete("/svc/a", None).await.map(|_| c.last_zxid()).unwrap();
    for cache in [&whole, &shallow] {
        assert!(cache.wait_for_zxid(z, WAIT).await);
    }
    assert!(kids.wait_for_zxid(z, WAIT).await && node.wait_for_zxid(z, WAIT).await);

    assert!(node.current().is_none(), "the node cache saw the delete");
    assert_eq!(kids.current().iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["/svc/b"]);
    assert_eq!(cached(&whole), tree(&c, "/svc").await);
    assert!(shallow.get("/svc/b/deep").is_none() && shallow.get("/svc/b").is_some(), "depth is bounded");
    assert_eq!(whole.children("/svc/b").len(), 1);

    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(match e {
            CacheEvent::Added(d) => format!("added {}", d.path),
            CacheEvent::Updated { new, .. } => format!("updated {} {:?}", new.path, new.data),
            CacheEvent::Removed(d) => format!("removed {}", d.path),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(seen, ["updated /svc/a b\"2\"", "added /svc/b", "removed /svc/a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_resumes_after_its_server_restarts_and_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_on(dir.path(), (free_port(), free_port(), free_port()), &[]);
    let c = s.connect();
    let opts = CreateOptions { create_parents: true, ..Default::default() };
    c.create("/r/x", "0", &opts).await.unwrap();
    let cache = TreeCache::start(&c, "/r").await.unwrap();
    let mut events = cache.listen();

    s.kill9();
    s.restart();
    // Changes made while the cache reconnects.
    let writer = s.connect();
    for i in 0..20 {
        writer.create(&format!("/r/n{i}"), format!("{i}"), &opts).await.unwrap();
    }
    writer.set("/r/x", "1", None).await.unwrap();
    writer.delete("/r/n3", None).await.unwrap();
    let z = writer.last_zxid();
    assert!(cache.wait_for_zxid(z, Duration::from_secs(20)).await, "the cache caught up");
    assert_eq!(cached(&cache), tree(&writer, "/r").await);
    let mut added = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, CacheEvent::Added(_)) {
            added += 1;
        }
    }
    assert_eq!(added, 20, "one Added per created node, none repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_recipes_guard_release_on_drop_and_keep_their_rules() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b) = (session(&s).await, session(&s).await);
    let short = Duration::from_millis(200);

    // Reentrant per handle; a second handle waits.
    let m = InterProcessMutex::new(&a, "/locks/m");
    let g1 = m.acquire().await.unwrap();
    let g2 = m.acquire().await.unwrap();
    assert_eq!(g1.token(), g2.token(), "re-entry is the same grant");
    let other = InterProcessMutex::new(&b, "/locks/m");
    assert!(other.try_acquire(short).await.unwrap().is_none());
    drop(g1);
    assert!(other.try_acquire(short).await.unwrap().is_none(), "still held once");
    let t2 = g2.token();
    g2.release().await.unwrap();
    let g3 = other.try_acquire(WAIT).await.unwrap().expect("free once both holds are released");
    assert!(g3.token() > t2);
    drop(g3);
    eventually(WAIT, "the dropped guard to release", async || m.participants().await.unwrap().is_empty()).await;

    // Not reentrant.
    let sm = InterProcessSemaphoreMutex::new(&a, "/locks/sm");
    let held = sm.acquire().await.unwrap();
    assert!(sm.try_acquire(short).await.unwrap().is_none(), "a second acquire through the same handle waits");
    held.release().await.unwrap();

    // Readers share, a writer excludes, a writer may also read.
    let rw_a = InterProcessReadWriteLock::new(&a, "/locks/rw");
    let rw_b = InterProcessReadWriteLock::new(&b, "/locks/rw");
    let r1 = rw_a.read_lock().acquire().await.unwrap();
    let r2 = rw_b.read_lock().try_acquire(WAIT).await.unwrap().expect("readers share");
    let rw_w = InterProcessReadWriteLock::new(&b, "/locks/rw");
    assert!(rw_w.write_lock().try_acquire(short).await.unwrap().is_none(), "a writer waits for readers");
    assert!(
        matches!(rw_b.write_lock().try_acquire(short).await, Err(Error::BadArguments { .. })),
        "a reader never upgrades"
    );
    // Released explicitly: a dropped guard releases in the background, and this handle's
    // write request must not race its own read hold (that would be an upgrade).
    r1.release().await.unwrap();
    r2.release().await.unwrap();
    let w = rw_a.write_lock().try_acquire(WAIT).await.unwrap().unwrap();
    assert!(rw_a.read_lock().try_acquire(WAIT).await.unwrap().is_some(), "the writer may read");
    assert!(rw_b.read_lock().try_acquire(short).await.unwrap().is_none(), "readers wait for the writer");
    drop(w);

    // All or nothing.
    let single = InterProcessMutex::new(&b, "/locks/y").acquire().await.unwrap();
    let multi = InterProcessMultiLock::new(&a, &["/locks/x", "/locks/y"]);
    assert!(multi.try_acquire(short).await.unwrap().is_none());
    assert!(a.describe_lock("/locks/x").await.unwrap().is_empty(), "nothing held of a multi-lock not granted");
    drop(single);
    let both = multi.try_acquire(WAIT).await.unwrap().unwrap();
    assert_eq!(both.nodes().len(), 2);
    drop(both);

    // Leases.
    let sem_a = InterProcessSemaphoreV2::new(&a, "/locks/pool", 3);
    let sem_b = InterProcessSemaphoreV2::new(&b, "/locks/pool", 3);
    let two = sem_a.acquire_many(2).await.unwrap();
    let one = sem_b.try_acquire(WAIT).await.unwrap().unwrap();
    assert!(sem_b.try_acquire(short).await.unwrap().is_none(), "all three leases are out");
    assert!(matches!(sem_a.acquire_many(4).await, Err(Error::BadArguments { .. })));
    drop(two);
    assert!(sem_b.try_acquire_many(2, WAIT).await.unwrap().is_some());
    drop(one);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_latch_hands_over_and_a_selector_runs_while_it_leads() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b) = (session(&s).await, session(&s).await);

    let la = LeaderLatch::new(&a, "jobs", "a");
    la.start();
    assert!(la.await_leadership(Some(WAIT)).await);
    let lb = LeaderLatch::new(&b, "jobs", "b");
    lb.start();
    eventually(WAIT, "b to queue", async || la.participants().await.unwrap().len() == 2).await;
    assert!(!lb.has_leadership());
    assert_eq!(lb.leader().await.unwrap().unwrap().value, "a");
    let first = la.leadership().unwrap();
    la.close().await;
    assert!(lb.await_leadership(Some(WAIT)).await);
    assert!(lb.leadership().unwrap().token > first.token);
    assert!(!la.has_leadership());
    lb.close().await;

    // Selectors take turns, each running its task while it leads.
    let running = Arc::new(AtomicUsize::new(0));
    let turns = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut selectors = Vec::new();
    for (name, c) in [("a", &a), ("b", &b)] {
        let (running, turns) = (running.clone(), turns.clone());
        selectors.push(LeaderSelector::start(c, "/elections/sel", name, true, move |l| {
            let (running, turns) = (running.clone(), turns.clone());
            async move {
                assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "two leaders at once");
                turns.lock().unwrap().push((name, l.token));
                tokio::time::sleep(Duration::from_millis(30)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }
        }));
    }
    eventually(WAIT, "six turns", async || turns.lock().unwrap().len() >= 6).await;
    for s in selectors {
        s.close().await;
    }
    let turns = turns.lock().unwrap().clone();
    assert!(turns.windows(2).all(|w| w[1].1 > w[0].1), "tokens increase: {turns:?}");
    assert!(turns.iter().any(|t| t.0 == "a") && turns.iter().any(|t| t.0 == "b"), "both led: {turns:?}");

    // Without requeue a selector leads once.
    let once = LeaderSelector::start(&a, "once", "a", false, |_| async {});
    eventually(WAIT, "the selector to finish", async || once.is_finished()).await;
    assert!(once.leadership().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barriers_hold_and_release_their_members() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b) = (session(&s).await, session(&s).await);

    let barrier = DistributedBarrier::new(&a, "/b/gate");
    barrier.set_barrier().await.unwrap();
    barrier.set_barrier().await.unwrap();
    let waiter = DistributedBarrier::new(&b, "/b/gate");
    assert!(!waiter.wait_on_barrier(Some(Duration::from_millis(200))).await.unwrap());
    let w = tokio::spawn(async move { waiter.wait_on_barrier(Some(WAIT)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    barrier.remove_barrier().await.unwrap();
    assert!(w.await.unwrap().unwrap());

    // Three members start together and finish together.
    let c = session(&s).await;
    let entered = Arc::new(AtomicUsize::new(0));
    let mut members = Vec::new();
    for client in [a.clone(), b.clone(), c.clone()] {
        let count = entered.clone();
        members.push(tokio::spawn(async move {
            let d = DistributedDoubleBarrier::new(&client, "/b/double", 3);
            assert!(d.enter(Some(WAIT)).await.unwrap());
            count.fetch_add(1, Ordering::SeqCst);
            assert!(d.leave(Some(WAIT)).await.unwrap());
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        if members.len() < 3 {
            assert_eq!(entered.load(Ordering::SeqCst), 0, "nobody enters before all three arrive");
        }
    }
    for m in members {
        m.await.unwrap();
    }
    assert_eq!(entered.load(Ordering::SeqCst), 3);
    // A member alone times out and leaves nothing behind.
    let d = DistributedDoubleBarrier::new(&a, "/b/double", 2);
    assert!(!d.enter(Some(Duration::from_millis(200))).await.unwrap());
    assert!(a.children("/b/double").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_count_exactly_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let c = s.connect();

    let mut tasks = Vec::new();
    for _ in 0..4 {
        let counter = DistributedAtomicLong::new(&s.connect(), "/counters/hits");
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                assert!(counter.increment().await.unwrap().succeeded);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let long = DistributedAtomicLong::new(&c, "/counters/hits");
    assert_eq!(long.get().await.unwrap().post_value, 100);
    let r = long.compare_and_set(99, 0).await.unwrap();
    assert!(!r.succeeded && r.pre_value == 100);
    assert!(long.compare_and_set(100, 7).await.unwrap().succeeded);
    assert_eq!(long.subtract(10).await.unwrap().post_value, -3);
    long.force_set(42).await.unwrap();
    assert_eq!(c.get("/counters/hits").await.unwrap().0, 42i64.to_be_bytes().to_vec());

    let shared = SharedCount::start(&c, "/counters/shared", 5).await.unwrap();
    let other = SharedCount::start(&s.connect(), "/counters/shared", 99).await.unwrap();
    assert_eq!(other.get_count(), 5, "the seed only applies to a new count");
    let mut changes = other.listen();
    let v = shared.get_versioned_value().unwrap();
    assert!(shared.try_set_count(v, 6).await.unwrap());
    assert!(!shared.try_set_count(v, 7).await.unwrap(), "a stale version loses");
    tokio::time::timeout(WAIT, changes.wait_for(|c| *c == 6)).await.unwrap().unwrap();
    c.set("/counters/shared", "xyz", None).await.unwrap();
    assert!(matches!(shared.set_count(1).await, Ok(())), "a set overwrites a malformed value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_delivers_every_item_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let producer = DistributedQueue::new(&s.connect(), "/q/work");
    assert!(producer.try_take().await.unwrap().is_none());
    assert!(producer.poll(Duration::from_millis(100)).await.unwrap().is_none());

    for i in 0..5 {
        producer.put(format!("early-{i}")).await.unwrap();
    }
    assert_eq!(producer.len().await.unwrap(), 5);
    assert_eq!(producer.peek().await.unwrap().unwrap(), "early-0");
    let first = DistributedQueue::new(&s.connect(), "/q/work");
    for i in 0..5 {
        assert_eq!(first.take().await.unwrap(), format!("early-{i}"), "FIFO");
    }

    // Two consumers racing for 40 items: each item is delivered exactly once.
    let mut consumers = Vec::new();
    for _ in 0..2 {
        let q = DistributedQueue::new(&s.connect(), "/q/work");
        consumers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(item) = q.poll(Duration::from_secs(2)).await.unwrap() {
                got.push(String::from_utf8(item.to_vec()).unwrap());
            }
            got
        }));
    }
    for i in 0..40 {
        producer.put(format!("item-{i:02}")).await.unwrap();
    }
    let mut all = Vec::new();
    for c in consumers {
        all.extend(c.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (0..40).map(|i| format!("item-{i:02}")).collect::<Vec<_>>());
    assert!(producer.is_empty().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_nodes_come_back_and_group_members_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--min-session-timeout-ms", "300"]);
    let a = session(&s).await;
    let admin = s.connect();

    let node = PersistentNode::start(&a, "/live/me", CreateMode::Ephemeral, "v1");
    assert!(node.wait_for_initial_create(WAIT).await);
    admin.delete("/live/me", None).await.unwrap();
    eventually(WAIT, "the node to be created again", async || admin.exists("/live/me").await.unwrap().is_some()).await;
    node.set_data("v2").await.unwrap();
    eventually(WAIT, "the new data", async || admin.get("/live/me").await.is_ok_and(|(d, _)| d == "v2")).await;

    let seq = PersistentNode::start(&a, "/live/seq-", CreateMode::EphemeralSequential, "");
    assert!(seq.wait_for_initial_create(WAIT).await);
    let first = seq.actual_path().unwrap();
    admin.delete(&first, None).await.unwrap();
    eventually(WAIT, "a new incarnation", async || seq.actual_path().is_some_and(|p| p != first)).await;
    seq.close().await.unwrap();
    node.close().await.unwrap();
    assert!(admin.children("/live").await.unwrap().is_empty(), "closing deletes");

    // A session that expires: the node is recreated under the client's new session.
    let short = Client::builder(&s.client).session_timeout(Duration::from_millis(600)).start().await.unwrap();
    let keeper = PersistentNode::start(&short, "/live/survivor", CreateMode::Ephemeral, "");
    assert!(keeper.wait_for_initial_create(WAIT).await);
    let old = short.session().unwrap();
    // End the session from elsewhere, as an expiry would.
    let killer = s.connect();
    killer.resume_session(old.id, old.secret.clone()).await.unwrap();
    killer.close_session().await.unwrap();
    eventually(Duration::from_secs(15), "the node under a new session", async || {
        let owner = admin.exists("/live/survivor").await.unwrap().map(|st| st.ephemeral_owner);
        owner.is_some_and(|o| o != old.id && o != 0)
    })
    .await;
    drop(keeper);

    let b = session(&s).await;
    let ma = GroupMember::start(&a, "/groups/workers", "a", "pa").await.unwrap();
    let mb = GroupMember::start(&b, "/groups/workers", "b", "pb").await.unwrap();
    assert!(ma.wait_registered(WAIT).await && mb.wait_registered(WAIT).await);
    eventually(WAIT, "both members to see both", async || {
        ma.current_members().len() == 2 && mb.current_members().len() == 2
    })
    .await;
    assert_eq!(ma.current_members()["b"], "pb");
    mb.set_this_data("pb2").await.unwrap();
    eventually(WAIT, "the new payload", async || ma.current_members().get("b").is_some_and(|p| p == "pb2")).await;
    b.close_session().await.unwrap();
    eventually(WAIT, "b to leave when its session ends", async || !ma.current_members().contains_key("b")).await;
    ma.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_discovery_registers_queries_and_balances() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b) = (session(&s).await, session(&s).await);
    let da = ServiceDiscovery::new(&a, "/services");
    let db = ServiceDiscovery::new(&b, "/services");
    let i1 = ServiceInstance::new("api", "10.0.0.1", 8080, serde_json::json!({"zone": "a"}));
    let i2 = ServiceInstance::new("api", "10.0.0.2", 8080, serde_json::json!({"zone": "b"}));
    da.register(&i1).await.unwrap();
    db.register(&i2).await.unwrap();
    db.register(&ServiceInstance::new("web", "10.0.0.3", 80, serde_json::Value::Null)).await.unwrap();

    let mut names = da.query_for_names().await.unwrap();
    names.sort();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(da.query_for_instances("api").await.unwrap().len(), 2);
    assert_eq!(db.query_for_instance("api", &i1.id).await.unwrap().unwrap(), i1);
    assert!(db.query_for_instance("api", "nope").await.unwrap().is_none());
    // Stored in Curator's JSON shape.
    let raw = a.get(&format!("/services/api/{}", i1.id)).await.unwrap().0;
    let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(json["address"], "10.0.0.1");
    assert_eq!(json["payload"]["zone"], "a");
    assert!(json.get("registrationTimeUTC").is_some());

    let provider = da.provider("api", ProviderStrategy::RoundRobin).await.unwrap();
    let picks: Vec<String> = (0..4).map(|_| provider.get_instance().unwrap().address).collect();
    assert_eq!(picks[0], picks[2]);
    assert_ne!(picks[0], picks[1], "round robin alternates: {picks:?}");
    let random = da.provider("api", ProviderStrategy::Random).await.unwrap();
    assert!(random.get_instance().is_some());

    let mut moved = i1.clone();
    moved.payload = serde_json::json!({"zone": "c"});
    da.update(&moved).await.unwrap();
    assert!(provider.wait_for_zxid(a.last_zxid(), WAIT).await);
    assert!(provider.get_all_instances().iter().any(|i| i.payload["zone"] == "c"));
    da.unregister(&moved).await.unwrap();
    assert!(provider.wait_for_zxid(a.last_zxid(), WAIT).await);
    assert_eq!(provider.get_all_instances(), vec![i2.clone()]);
    db.close().await.unwrap();
    assert!(da.query_for_instances("api").await.unwrap().is_empty());
    assert!(matches!(da.update(&i2).await, Err(Error::BadArguments { .. })), "only registered instances update");
}
