//! Migration from ZooKeeper, against a real ZooKeeper 3.8 started here: `grove import
//! zookeeper` copies a tree of a few thousand nodes with data, ACLs, sequential, container
//! and TTL nodes and each parent's sequence counter; ephemerals are listed and skipped; a dry
//! run writes nothing; a re-run changes nothing; a conflict refuses the whole import. Then
//! `grove export` / `grove import FILE` move the imported tree to another path unchanged.

use std::time::Duration;

use grove_client::{Client, CreateMode};
use zookeeper_client as zk;

use crate::harness::{Server, grove_bin};
use crate::zookeeper::ZooKeeper;

const ITEMS: usize = 2_000;

fn grove(server: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(grove_bin()).arg("--server").arg(server).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

async fn populate(z: &zk::Client) -> (i32, Vec<String>) {
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    for p in ["/app", "/app/items", "/app/seq"] {
        z.create(p, b"", &open).await.unwrap();
    }
    for i in 0..ITEMS {
        z.create(&format!("/app/items/item-{i:05}"), format!("value {i}").as_bytes(), &open).await.unwrap();
    }
    let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let mut names = Vec::new();
    for _ in 0..10 {
        let (_, s) = z.create("/app/seq/job-", b"work", &seq).await.unwrap();
        names.push(format!("/app/seq/job-{s}"));
    }
    // Deleted sequentials leave a gap the counter remembers.
    for n in &names[..3] {
        z.delete(n, None).await.unwrap();
    }
    let (_, seq_stat) = z.get_data("/app/seq").await.unwrap();
    // Only alice may read or change /app/secure.
    z.auth("digest", b"alice:secret").await.unwrap();
    let alice =
        [zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", &grove_client::acl::digest("alice", "secret")))];
    z.create("/app/secure", b"alice's", &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&alice))).await.unwrap();
    let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
    z.create("/app/box", b"", &container).await.unwrap();
    z.create("/app/box/thing", b"in the box", &open).await.unwrap();
    let ttl = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()).with_ttl(Duration::from_secs(3600));
    z.create("/app/ttl", b"for an hour", &ttl).await.unwrap();
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    z.create("/app/live", b"me", &eph).await.unwrap();
    (seq_stat.cversion, names)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zookeeper_tree_imports_with_acls_modes_and_counters_and_moves_on_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let Some(zoo) = ZooKeeper::start(&dir.path().join("zk")) else { return };
    let z = zk::Client::connector().with_session_timeout(Duration::from_secs(20)).connect(&zoo.address).await.unwrap();
    let (seq_cversion, seq_names) = populate(&z).await;
    let s = Server::start_process(&dir.path().join("grove"), &[]);
    let from = format!("{}/app", zoo.address);
    // ZooKeeper's client protocol shows containers and TTL nodes as persistent: named here.
    let args = [
        "import",
        "zookeeper",
        "--from",
        &from,
        "--to",
        "/imported",
        "--zk-auth",
        "alice:secret",
        "--mode",
        "/app/box=container",
        "--mode",
        "/app/ttl=ttl:3600000",
    ];

    // A dry run: the plan, and nothing written.
    let (ok, out, err) = grove(&s.client, &[&args[..], &["-n"]].concat());
    assert!(ok, "{err}");
    assert!(out.contains("create /imported/items/item-00042 (persistent, 8 bytes"), "{out}");
    assert!(out.contains("create /imported/box (container"), "{out}");
    assert!(out.contains("create /imported/ttl (ttl 3600000 ms"), "{out}");
    assert!(out.contains("skip /app/live (ephemeral of session 0x"), "{out}");
    // /app, items, seq; the 7 sequentials left; secure, box, box/thing, ttl.
    let total = ITEMS + 3 + 7 + 4;
    let dry = format!("Dry run from ZooKeeper {from}: {total} to create, 0 already there, 0 ACLs to set, 1 skipped");
    assert!(out.contains(&dry), "{out}");
    let c = Client::builder(&s.client).digest_auth("alice", "secret").build().unwrap();
    assert!(c.exists("/imported").await.unwrap().is_none(), "a dry run wrote");

    // The import.
    let (ok, out, err) = grove(&s.client, &args);
    assert!(ok, "{err}");
    assert!(out.starts_with(&format!("Imported {total} nodes from ZooKeeper {from} in ")), "{out}");
    assert!(out.contains("Skipped 1: /app/live"), "{out}");
    eprintln!("{out}");
    // Every node, with its data.
    assert_eq!(c.count_descendants("/imported").await.unwrap() as usize, total - 1);
    for i in [0, 42, ITEMS - 1] {
        let (data, _) = c.get(&format!("/imported/items/item-{i:05}")).await.unwrap();
        assert_eq!(&data[..], format!("value {i}").as_bytes());
    }
    for n in &seq_names[3..] {
        assert!(c.exists(&n.replace("/app/", "/imported/")).await.unwrap().is_some(), "{n}");
    }
    assert!(c.exists("/imported/live").await.unwrap().is_none());
    // ACLs as ZooKeeper had them: an anonymous client is refused /imported/secure.
    let (acl, _) = c.get_acl("/imported/secure").await.unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!(
        (acl[0].scheme.as_str(), acl[0].id.as_str()),
        ("digest", grove_client::acl::digest("alice", "secret").as_str())
    );
    assert_eq!(&c.get("/imported/secure").await.unwrap().0[..], b"alice's");
    let anonymous = Client::connect(&s.client).unwrap();
    assert!(anonymous.get("/imported/secure").await.is_err());
    // Modes.
    assert_eq!(c.exists("/imported/box").await.unwrap().unwrap().mode(), CreateMode::Container);
    let ttl = c.exists("/imported/ttl").await.unwrap().unwrap();
    assert_eq!((ttl.mode(), ttl.ttl_ms), (CreateMode::PersistentWithTtl, 3_600_000));
    // The sequence counter goes on after ZooKeeper's: the parent's cversion (creates and
    // deletes), never below the name ZooKeeper itself would give next (3.8 gives the count
    // of creates until it restarts, then its cversion), so no imported name comes back.
    let seq = grove_client::CreateOptions::mode(CreateMode::PersistentSequential);
    let (next, _) = c.create("/imported/seq/job-", "", &seq).await.unwrap();
    assert_eq!(next, format!("/imported/seq/job-{seq_cversion:010}"));
    let zk_seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let (_, zk_next) = z.create("/app/seq/job-", b"", &zk_seq).await.unwrap();
    assert!(next >= format!("/imported/seq/job-{zk_next}"), "{next} before ZooKeeper's {zk_next}");
    assert!(seq_names.iter().all(|n| n.replace("/app/", "/imported/") < next));
    z.delete(&format!("/app/seq/job-{zk_next}"), None).await.unwrap();
    c.delete(&next, None).await.unwrap();

    // A re-run changes nothing (its reader needs alice to compare /imported/secure).
    let (ok, out, err) = grove(&s.client, &[&["--auth", "alice:secret"][..], &args].concat());
    assert!(ok, "{err}");
    assert!(out.starts_with(&format!("Imported 0 nodes from ZooKeeper {from}")), "{out}");
    assert!(out.contains(&format!("{total} already there; 0 ACLs set; 0 sequence counters advanced")), "{out}");

    // An import that stopped part-way leaves nodes with the open ACL they were created
    // with: a re-run sets the source's ACL on them.
    let open = vec![grove_client::acl::entry("world", "anyone", grove_client::acl::perms::ALL)];
    c.set_acl("/imported/secure", open, None).await.unwrap();
    let (ok, out, err) = grove(&s.client, &[&["--auth", "alice:secret"][..], &args].concat());
    assert!(ok, "{err}");
    assert!(out.contains("1 ACLs set"), "{out}");
    assert!(anonymous.get("/imported/secure").await.is_err(), "the ACL was not repaired");

    // An ACL tightened on the Grove side since is a conflict, never overwritten.
    let read_only = vec![grove_client::acl::entry("world", "anyone", grove_client::acl::perms::READ)];
    c.set_acl("/imported/items/item-00001", read_only, None).await.unwrap();
    let (ok, _, err) = grove(&s.client, &[&["--auth", "alice:secret"][..], &args].concat());
    assert!(!ok && err.contains("/imported/items/item-00001 exists with another ACL"), "{err}");

    // ACLs read masked (a reader without ADMIN sees `digest:user:x`) cannot be imported:
    // refused before anything is written, naming the node.
    let admin = [
        zk::Acl::new(zk::Permission::READ, zk::AuthId::new("world", "anyone")),
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", &grove_client::acl::digest("admin", "pw"))),
    ];
    z.create("/masked", b"", &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&admin))).await.unwrap();
    let masked_from = format!("{}/masked", zoo.address);
    let (ok, _, err) = grove(&s.client, &["import", "zookeeper", "--from", &masked_from]);
    assert!(!ok && err.contains("was read masked"), "{err}");
    assert!(c.exists("/masked").await.unwrap().is_none());

    // A node changed on the Grove side is a conflict: nothing is written, not even a node
    // new in ZooKeeper.
    c.set("/imported/items/item-00007", "changed in grove", None).await.unwrap();
    z.create("/app/items/new-in-zk", b"", &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())).await.unwrap();
    let (ok, _, err) = grove(&s.client, &[&["--auth", "alice:secret"][..], &args].concat());
    assert!(!ok);
    assert!(
        err.contains("refusing to import") && err.contains("/imported/items/item-00007 exists with other data"),
        "{err}"
    );
    assert!(c.exists("/imported/items/new-in-zk").await.unwrap().is_none(), "a refused import wrote");
    // A --mode naming no node (a typo) is refused, as is one naming an ephemeral.
    for named in ["/app/bx=container", "/app/live=container"] {
        let (ok, _, err) = grove(
            &s.client,
            &["import", "zookeeper", "-n", "--zk-auth", "alice:secret", "--from", &from, "--mode", named],
        );
        assert!(!ok && err.contains("no persistent node by that path"), "{named}: {err}");
    }
    // Unreachable ZooKeeper: a clear error.
    let (ok, _, err) = grove(&s.client, &["import", "zookeeper", "--from", "127.0.0.1:1/app", "-n"]);
    assert!(!ok && err.contains("ZooKeeper"), "{err}");

    // Grove's own JSON lines: export the imported tree, import it elsewhere, export again:
    // the same lines.
    let first = dir.path().join("imported.jsonl");
    let (ok, out, err) =
        grove(&s.client, &["--auth", "alice:secret", "export", "-o", first.to_str().unwrap(), "/imported"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("Exported {total} nodes")), "{out}");
    let (ok, out, err) = grove(&s.client, &["import", "--to", "/copy", first.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("Imported {total} nodes")), "{out}");
    let (ok, second, err) = grove(&s.client, &["--auth", "alice:secret", "export", "/copy"]);
    assert!(ok, "{err}");
    assert_eq!(second, std::fs::read_to_string(&first).unwrap());
    // A file out of order is put in tree order; a duplicate path refuses the whole file.
    let lines: Vec<&str> = std::fs::read_to_string(&first).unwrap().leak().lines().rev().collect();
    let reversed = dir.path().join("reversed.jsonl");
    std::fs::write(&reversed, lines.join("\n")).unwrap();
    let (ok, out, err) = grove(&s.client, &["import", "--to", "/reversed", reversed.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("Imported {total} nodes")), "{out}");
    let twice = dir.path().join("twice.jsonl");
    std::fs::write(&twice, format!("{}\n{}\n", lines[0], lines[0])).unwrap();
    let (ok, _, err) = grove(&s.client, &["import", "--to", "/twice", twice.to_str().unwrap()]);
    assert!(!ok && err.contains("appears twice") && err.contains("nothing written"), "{err}");
    assert!(c.exists("/twice").await.unwrap().is_none());
    // `--json export` to standard output is only the lines.
    let (ok, json_out, _) = grove(&s.client, &["--json", "--auth", "alice:secret", "export", "/copy"]);
    assert!(ok && json_out == second);
    // A damaged export is refused with its line.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"path\":\"/x\"}\n").unwrap();
    let (ok, _, err) = grove(&s.client, &["import", bad.to_str().unwrap()]);
    assert!(!ok && err.contains("line 1"), "{err}");
}
