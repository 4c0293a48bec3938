//! Backup and restore, end to end with real processes: `grove snapshot save` from a
//! running 3-node ensemble while writes go on, `grove snapshot status`, every member
//! stopped and wiped, `groved --restore FILE` into a new 3-node ensemble on other ports;
//! the tree compares equal node by node (data, stat, ACL), sequence counters continue
//! where they were, quotas and their usage survive, sessions and what they owned do not.

use std::collections::BTreeMap;
use std::time::Duration;

use grove_client::acl::{digest, entry, perms};
use grove_client::{Client, CreateMode, CreateOptions, LockRequest, QuotaChange};

use crate::cluster::Cluster;

/// Every node: path → (data, stat, ACL).
type Tree = BTreeMap<String, (Vec<u8>, grove_client::Stat, Vec<grove_client::Acl>)>;

async fn dump(c: &Client) -> Tree {
    let mut tree = Tree::new();
    let mut todo = vec!["/".to_string()];
    while let Some(path) = todo.pop() {
        let (data, stat) = c.get(&path).await.unwrap();
        let (acl, _) = c.get_acl(&path).await.unwrap();
        for child in c.children(&path).await.unwrap() {
            todo.push(if path == "/" { format!("/{child}") } else { format!("{path}/{child}") });
        }
        tree.insert(path, (data.to_vec(), stat, acl));
    }
    tree
}

/// A client with a session, authenticated as alice.
async fn client(c: &Cluster, ids: &[u64]) -> Client {
    let addrs: Vec<String> = ids.iter().map(|i| c.client_addr(*i)).collect();
    Client::builder(&addrs.join(","))
        .digest_auth("alice", "secret")
        .request_timeout(Duration::from_secs(10))
        .session_timeout(Duration::from_secs(10))
        .start()
        .await
        .unwrap()
}

fn grove(addr: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::harness::grove_bin()).arg("--server").arg(addr).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_saved_online_restores_into_a_new_ensemble_with_every_persistent_node() {
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("grove.snap");
    let mut old = Cluster::start(&dir.path().join("old"), 3, 0, &[]);
    old.leader(Duration::from_secs(20)).await;
    // The cluster id is fixed by the first registration (proposed within ~500 ms of a
    // leader): wait for every member to know it, so the backup's header carries it.
    for id in 1..=3 {
        crate::harness::eventually(Duration::from_secs(15), "the cluster id", async || {
            old.status(id).await.is_ok_and(|s| s.cluster_id != 0)
        })
        .await;
    }
    let c = client(&old, &[1, 2, 3]).await;
    let opts = CreateOptions::default();

    // A tree with what a restore must carry: data, ACLs, sequential counters (with holes
    // from deletions), a container, a quota with its usage, and TTL nodes.
    c.create("/app", "config v1", &opts).await.unwrap();
    c.set("/app", "config v2", None).await.unwrap();
    let private = CreateOptions { acl: vec![entry("digest", &digest("alice", "secret"), perms::ALL)], ..opts.clone() };
    c.create("/app/private", "only alice", &private).await.unwrap();
    c.create("/queue", "", &opts).await.unwrap();
    let seq = CreateOptions::mode(CreateMode::PersistentSequential);
    let mut names = Vec::new();
    for _ in 0..5 {
        names.push(c.create("/queue/job-", "work", &seq).await.unwrap().0);
    }
    c.delete(&names[1], None).await.unwrap();
    c.create("/box", "", &CreateOptions::mode(CreateMode::Container)).await.unwrap();
    c.create("/box/item", "", &opts).await.unwrap();
    c.set_quota("/app", QuotaChange { count_soft: Some(100), bytes_hard: Some(1 << 20), ..Default::default() })
        .await
        .unwrap();
    // What belongs to a session: an ephemeral under its own parent, and a held lock.
    c.create("/members", "", &opts).await.unwrap();
    c.create("/members/me", "alive", &CreateOptions::mode(CreateMode::Ephemeral)).await.unwrap();
    let held = c.acquire(&LockRequest::mutex("/locks/deploy")).await.unwrap();

    // Writes go on while the backup streams: the copy is one point of the history, so the
    // counters it holds are a contiguous run.
    let writer = client(&old, &[1]).await;
    let writing = tokio::spawn(async move {
        writer.create("/counter", "", &CreateOptions::default()).await.unwrap();
        for i in 0..150 {
            writer.create(&format!("/counter/{i:04}"), "", &CreateOptions::default()).await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // From a follower: any member serves a backup.
    let leader = old.leader(Duration::from_secs(5)).await;
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let out = grove(&old.client_addr(follower), &["snapshot", "save", "-l", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(printed.starts_with("Snapshot saved at "), "{printed}");
    writing.await.unwrap();
    // The file does not let its reader act as a live session: secrets are left out.
    let raw = std::fs::read(&backup).unwrap();
    let secret = c.session().unwrap().secret;
    assert_eq!(secret.len(), 16);
    assert!(!raw.windows(16).any(|w| w == &secret[..]), "a session secret is in the backup");

    // The status names the point, the cluster and the members, after checking the file.
    let out = grove("127.0.0.1:1", &["--json", "snapshot", "status", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let old_status = old.status(leader).await.unwrap();
    assert_eq!(status["cluster_id"], format!("{:016x}", old_status.cluster_id));
    assert_eq!(status["members"].as_array().unwrap().len(), 3);
    let zxid = status["zxid"].as_u64().unwrap();
    assert!(zxid > 0 && zxid <= old_status.zxid, "{status}");

    // The tree as of the backup: everything but the counter run that went on after it.
    let mut before = dump(&c).await;
    let counters: Vec<String> = before.keys().filter(|p| p.starts_with("/counter/")).cloned().collect();
    for p in &counters {
        if before[p].1.czxid > zxid {
            before.remove(p);
        }
    }
    assert!(before.contains_key("/members/me") && before.contains_key("/locks/deploy"));

    let quota_before = c.get_quota("/app").await.unwrap().unwrap();

    // Every member gone, their data with them.
    for id in 1..=3 {
        old.stop(id);
    }
    std::fs::remove_dir_all(dir.path().join("old")).unwrap();

    // A new ensemble on other ports, every member restored from the same file.
    let file = backup.to_str().unwrap().to_string();
    let mut new = Cluster::start(&dir.path().join("new"), 3, 0, &["--restore", &file]);
    let leader = new.leader(Duration::from_secs(20)).await;
    let r = client(&new, &[1, 2, 3]).await;
    let after = dump(&r).await;

    // The counters: a contiguous run from 0, as of one point of the history.
    let run: Vec<&String> = after.keys().filter(|p| p.starts_with("/counter/")).collect();
    for (i, p) in run.iter().enumerate() {
        assert_eq!(**p, format!("/counter/{i:04}"), "the backup holds a hole in the counter run");
    }
    // Sessions did not survive, nor what they owned: the ephemeral and the lock holder's
    // entry are gone, as after an expiry (each deletion counted in the parent's cversion).
    assert!(!after.contains_key("/members/me"));
    let gone: Vec<&String> = before.keys().filter(|p| p.starts_with("/locks/deploy/")).collect();
    assert!(!gone.is_empty());
    for p in gone {
        assert!(!after.contains_key(p), "{p} belonged to a session");
    }
    for (path, (data, stat, acl)) in &before {
        let owned = stat.ephemeral_owner != 0;
        let parent_of_owned = before.iter().any(|(p, (_, s, _))| {
            s.ephemeral_owner != 0 && p.rsplit_once('/').map(|(d, _)| if d.is_empty() { "/" } else { d }) == Some(path)
        });
        if owned {
            continue;
        }
        let (data2, stat2, acl2) = after.get(path).unwrap_or_else(|| panic!("{path} was not restored"));
        assert_eq!(data, data2, "{path}: data");
        assert_eq!(acl, acl2, "{path}: ACL");
        if parent_of_owned {
            assert_eq!((stat.czxid, stat.mzxid, stat.version), (stat2.czxid, stat2.mzxid, stat2.version), "{path}");
            assert!(stat2.cversion > stat.cversion, "{path}: the removals count as child changes");
        } else if path != "/counter" {
            assert_eq!(stat, stat2, "{path}: stat");
        }
    }
    // A sequence counter goes on where the old cluster's would have (ZooKeeper's: the
    // parent's cversion, which the deletion advanced too), none of its names reused.
    let (next, _) = r.create("/queue/job-", "", &seq).await.unwrap();
    assert_eq!(next, format!("/queue/job-{:010}", before["/queue"].1.cversion));
    assert_eq!(next, "/queue/job-0000000006");
    // The quota and its usage.
    let quota = r.get_quota("/app/private").await.unwrap().unwrap();
    assert_eq!(quota, quota_before);
    assert_eq!((quota.1.count_soft, quota.1.bytes_hard, quota.1.count), (100, 1 << 20, 2));
    // The lock is free, and its next grant is fenced after the old holder's.
    let grant = r.acquire(&LockRequest::mutex("/locks/deploy")).await.unwrap();
    assert!(grant.token > held.token, "{} after {}", grant.token, held.token);

    // A new cluster: its own identity, its own members, no sessions from before.
    let st = new.status(leader).await.unwrap();
    assert_ne!(st.cluster_id, 0);
    assert_ne!(st.cluster_id, old_status.cluster_id);
    let peers: Vec<String> = st.members.iter().map(|m| m.peer_address.clone()).collect();
    assert_eq!(peers, (1..=3).map(|i| new.peer_addr(i)).collect::<Vec<_>>());
    // Its zxids go on well past the backup's: those the old cluster handed out after the
    // backup (in clients' min_zxid, fencing tokens, session ids) never come back.
    assert!(st.zxid > zxid + 1_000_000_000, "{}", st.zxid);

    // A member restarted with the same --restore flag (a pod restarted with its arguments)
    // starts as itself, even once the file is gone (a schedule's retention removed it).
    new.stop(2);
    std::fs::rename(&backup, dir.path().join("moved.snap")).unwrap();
    new.restart(2);
    new.caught_up(2, r.sync("/").await.unwrap(), Duration::from_secs(20)).await;
    std::fs::rename(dir.path().join("moved.snap"), &backup).unwrap();
    // A fresh server beside restored ones, started without --restore (or --join), would
    // bootstrap a log claiming the same positions for another state: refused.
    let stray = tempfile::tempdir().unwrap();
    let mut stray_args = new.members[0].args.clone();
    let at = stray_args.iter().position(|a| a == "--restore").unwrap();
    stray_args.drain(at..at + 2);
    let at = stray_args.iter().position(|a| a == "--id").unwrap();
    stray_args[at + 1] = "1".into();
    let ports = (crate::harness::free_port(), crate::harness::free_port(), crate::harness::free_port());
    let Err(refused) = crate::harness::Server::try_start_on(stray.path(), ports, &stray_args) else {
        panic!("a fresh server beside restored ones started");
    };
    assert!(refused.contains("was restored from a backup"), "{refused}");
    let other = tempfile::tempdir().unwrap();
    let foreign = other.path().join("other.snap");
    let out = grove(&new.client_addr(1), &["snapshot", "save", foreign.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    new.stop(3);
    let mut args = new.members[2].args.clone();
    let at = args.iter().position(|a| a == "--restore").unwrap();
    args[at + 1] = foreign.to_str().unwrap().to_string();
    let refused = new.try_restart_with(3, args).unwrap_err();
    assert!(refused.contains("already restored from another backup"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn saving_needs_admin_and_broken_backups_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (big, request) = ((8 << 20).to_string(), (9 << 20).to_string());
    let s = crate::harness::Server::start(
        dir.path(),
        &["--super-digest", &digest("root", "pw"), "--max-data-bytes", &big, "--max-request-bytes", &request],
    );
    let root = Client::builder(&s.client).digest_auth("root", "pw").build().unwrap();
    // A node larger than a gRPC message's default limit streams in pieces like any other.
    root.create("/big", vec![7u8; 5 << 20], &CreateOptions::default()).await.unwrap();
    // Lock the root down: ADMIN only for root.
    root.set_acl(
        "/",
        vec![entry("digest", &digest("root", "pw"), perms::ALL), entry("world", "anyone", perms::READ)],
        None,
    )
    .await
    .unwrap();
    let file = dir.path().join("b.snap");
    let out = grove(&s.client, &["snapshot", "save", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not authorized"), "{out:?}");
    assert!(!file.exists() && !dir.path().join("b.snap.partial").exists(), "a refused save leaves no file");
    let out = grove(&s.client, &["--auth", "root:pw", "snapshot", "save", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::metadata(&file).unwrap().len() > 5 << 20);
    // A second save to the same name while a partial one is there is refused, not mixed.
    std::fs::write(dir.path().join("b.snap.partial"), b"in progress").unwrap();
    let out = grove(&s.client, &["--auth", "root:pw", "snapshot", "save", file.to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("b.snap.partial"), "{out:?}");
    std::fs::remove_file(dir.path().join("b.snap.partial")).unwrap();

    // A truncated copy, a flipped byte and a file of something else: each refused by
    // `snapshot status` and by `groved --restore`, with what is wrong, and nothing restored.
    let raw = std::fs::read(&file).unwrap();
    let cases = [
        ("cut.snap", raw[..raw.len() / 2].to_vec(), "truncated"),
        (
            "flipped.snap",
            {
                let mut r = raw.clone();
                r[raw.len() / 2] ^= 1;
                r
            },
            "corrupt",
        ),
        ("other.snap", b"GROVESNAP\x01 a raft snapshot file, not a backup".to_vec(), "not a Grove backup"),
    ];
    for (name, bytes, why) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = grove("127.0.0.1:1", &["snapshot", "status", path.to_str().unwrap()]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(why), "{name}: {out:?}");
        let data = dir.path().join(format!("restore-{name}"));
        let out = std::process::Command::new(crate::harness::groved_bin())
            .args(["--data-dir", data.to_str().unwrap(), "--restore", path.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(why), "{name}: {out:?}");
        assert!(!data.join("state.redb").exists(), "{name}: a refused restore leaves no state");
    }
}
