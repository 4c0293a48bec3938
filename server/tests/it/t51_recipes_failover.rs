//! Recipes across a leader failover in a three-server ensemble: a mutex stays exclusive and
//! its fencing tokens keep increasing, an election has one leader at a time and its
//! observers see every term, and caches converge to the tree.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use grove_client::recipes::{InterProcessMutex, LeaderLatch};
use grove_client::{Client, CreateOptions, Error, TreeCache};

use crate::cluster::Cluster;
use crate::harness::eventually;
use crate::t32_recipes::tree;

const LEADER_WAIT: Duration = Duration::from_secs(20);

/// A client of every server (starting with `first`) with a session that outlives a failover.
async fn session_client(c: &Cluster, first: u64) -> Client {
    let mut ids: Vec<u64> = c.members.iter().map(|m| m.id).collect();
    ids.rotate_left((first - 1) as usize);
    let addrs: Vec<String> = ids.iter().map(|id| c.client_addr(*id)).collect();
    Client::builder(&addrs.join(","))
        .request_timeout(Duration::from_secs(10))
        .session_timeout(Duration::from_secs(10))
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutex_stays_exclusive_and_fenced_across_a_leader_failover() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(root.path(), 3, 0, &[]);
    let leader = c.leader(LEADER_WAIT).await;
    c.client(leader).create("/sold", "0", &CreateOptions::default()).await.unwrap();

    let holder = Arc::new(AtomicU64::new(0));
    let tokens: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut sellers = Vec::new();
    for seller in 1..=3u64 {
        let client = session_client(&c, seller).await;
        let (holder, tokens, stop) = (holder.clone(), tokens.clone(), stop.clone());
        sellers.push(tokio::spawn(async move {
            let mutex = InterProcessMutex::new(&client, "/locks/sold");
            let mut sold = 0u32;
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let guard = match mutex.try_acquire(Duration::from_secs(15)).await {
                    Ok(Some(g)) => g,
                    Ok(None)
                    | Err(Error::ConnectionLoss { .. } | Error::Unreachable { .. } | Error::NoQuorum { .. }) => {
                        continue;
                    }
                    Err(e) => panic!("seller {seller}: {e}"),
                };
                let prev = holder.swap(seller, Ordering::SeqCst);
                assert_eq!(prev, 0, "seller {seller} was granted the lock while seller {prev} held it");
                tokens.lock().unwrap().push(guard.token());
                // Read-modify-write, guarded by the token: only the current holder's write lands.
                let (data, stat) = client.get("/sold").await.unwrap();
                let n: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
                let done = client
                    .framework()
                    .transaction()
                    .check_fence("/locks/sold", guard.token())
                    .set_data("/sold", (n + 1).to_string(), Some(stat.version))
                    .commit()
                    .await
                    .unwrap();
                assert!(done.is_ok(), "seller {seller}'s guarded write failed: {done:?}");
                sold += 1;
                holder.store(0, Ordering::SeqCst);
                guard.release().await.unwrap();
            }
            sold
        }));
    }

    eventually(LEADER_WAIT, "sales before the failover", async || tokens.lock().unwrap().len() >= 10).await;
    c.kill(leader);
    let before = tokens.lock().unwrap().len();
    eventually(Duration::from_secs(40), "sales after the failover", async || {
        tokens.lock().unwrap().len() >= before + 10
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut sold = 0;
    for s in sellers {
        sold += s.await.unwrap();
    }

    let tokens = tokens.lock().unwrap().clone();
    assert!(tokens.windows(2).all(|w| w[1] > w[0]), "tokens strictly increase: {tokens:?}");
    let check = c.client(c.leader(LEADER_WAIT).await);
    assert_eq!(check.get("/sold").await.unwrap().0, sold.to_string(), "every sale counted once");

    // A holder from before the failover is fenced out.
    let stale = check
        .framework()
        .transaction()
        .check_fence("/locks/sold", tokens[0])
        .set_data("/sold", "0", None)
        .commit()
        .await
        .unwrap();
    assert!(matches!(stale, Err((0, Error::Fenced { .. }))), "{stale:?}");
    assert_eq!(check.get("/sold").await.unwrap().0, sold.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_across_a_failover_and_observers_see_every_term() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(root.path(), 3, 0, &[]);
    let leader = c.leader(LEADER_WAIT).await;

    let mut observer = session_client(&c, 1).await.observe_leader("svc").await.unwrap();
    let observed: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let watcher = tokio::spawn({
        let observed = observed.clone();
        async move {
            while let Ok((_, l)) = observer.next().await {
                if let Some(l) = l {
                    let mut o = observed.lock().unwrap();
                    if o.last().map(|x| &x.0) != Some(&l.node) {
                        o.push((l.node, l.token));
                    }
                }
            }
        }
    });

    let mut latches = Vec::new();
    for id in 1..=3u64 {
        let latch = LeaderLatch::new(&session_client(&c, id).await, "svc", format!("p{id}"));
        latch.start();
        latches.push(latch);
    }
    // Sampled throughout: never two participants that believe they lead.
    let overlap = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (latches, overlap, done) = (latches.clone(), overlap.clone(), done.clone());
        async move {
            while !done.load(Ordering::SeqCst) {
                if latches.iter().filter(|l| l.has_leadership()).count() > 1 {
                    overlap.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let current = async || -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leading: Vec<usize> = (0..3).filter(|i| latches[*i].has_leadership()).collect();
            if leading.len() == 1 {
                return leading[0];
            }
            assert!(Instant::now() < deadline, "no single leader: {leading:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    let mut terms = Vec::new();
    let first = current().await;
    terms.push(latches[first].leadership().unwrap());
    latches[first].close().await;
    let second = current().await;
    terms.push(latches[second].leadership().unwrap());

    // The servers fail over; the leading participant keeps (or regains) its term, as its
    // session survives.
    c.kill(leader);
    c.leader(LEADER_WAIT).await;
    let after = current().await;
    assert_eq!(after, second, "the session survived, so its leadership did too");
    latches[after].close().await;
    let third = current().await;
    terms.push(latches[third].leadership().unwrap());
    assert!(terms.windows(2).all(|w| w[1].token > w[0].token), "tokens increase: {terms:?}");

    let want: Vec<(String, u64)> = terms.iter().map(|t| (t.node.clone(), t.token)).collect();
    eventually(Duration::from_secs(10), "the observer to see the last term", async || {
        observed.lock().unwrap().last() == want.last()
    })
    .await;
    done.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    assert!(!overlap.load(Ordering::SeqCst), "two participants led at once");
    assert_eq!(*observed.lock().unwrap(), want, "the observer saw every term, in order");
    watcher.abort();
    latches[third].close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_cache_converges_after_its_server_fails() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(root.path(), 3, 0, &[]);
    let leader = c.leader(LEADER_WAIT).await;
    let opts = CreateOptions { create_parents: true, ..Default::default() };
    c.client(leader).create("/conf/base", "0", &opts).await.unwrap();

    // The cache reads from server 1 first; the writer from server 2.
    let cache = TreeCache::start(&c.client_all(1), "/conf").await.unwrap();
    let writer = c.client_all(2);
    for i in 0..30 {
        writer.create(&format!("/conf/a{i}"), format!("{i}"), &opts).await.unwrap();
    }
    c.kill(1);
    for i in 0..30 {
        writer.set(&format!("/conf/a{i}"), format!("v{i}"), None).await.unwrap();
        if i % 3 == 0 {
            writer.delete(&format!("/conf/a{i}"), None).await.unwrap();
        }
    }
    writer.create("/conf/b/c", "deep", &opts).await.unwrap();
    assert!(cache.wait_for_zxid(writer.last_zxid(), Duration::from_secs(30)).await, "the cache caught up");

    let want = tree(&writer, "/conf").await;
    let got: BTreeMap<String, Bytes> = cache.snapshot().into_iter().map(|(p, d)| (p, d.data)).collect();
    assert_eq!(got, want);
}
