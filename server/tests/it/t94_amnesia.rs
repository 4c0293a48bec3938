//! No amnesia: a voter that lost its state does not come back as the same member, and
//! the documented way back keeps every acknowledged write.
//!
//! The danger, as reproduced from outside before the fix: stop C; write W (acknowledged,
//! read back on B); restart B with an emptied data directory and the same --id/--peers;
//! kill A; start C: B and C elected a leader and a linearizable read of W said NOT_FOUND.

use std::time::Duration;

use grove_client::{Client, Consistency, CreateOptions};

use crate::cluster::Cluster;

fn client(c: &Cluster, ids: &[u64]) -> Client {
    let addrs: Vec<String> = ids.iter().map(|i| c.client_addr(*i)).collect();
    Client::builder(&addrs.join(",")).request_timeout(Duration::from_secs(10)).build().unwrap()
}

fn empty(dir: &std::path::Path) {
    let data = dir.join("data");
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir_all(&data).unwrap();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Waits until every running member has registered its data directory.
async fn registered(c: &Cluster, ids: &[u64]) {
    for id in ids {
        crate::harness::eventually(Duration::from_secs(15), "members registered", async || {
            c.status(*id).await.is_ok_and(|s| s.cluster_id != 0)
        })
        .await;
    }
    // Registrations are proposed every 500 ms; give the last one time to commit.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emptied_voter_refuses_to_come_back_and_the_documented_replacement_keeps_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(dir.path(), 3, 0, &[]);
    c.leader(Duration::from_secs(20)).await;
    registered(&c, &[1, 2, 3]).await;
    c.stop(3);
    let w = client(&c, &[1, 2]);
    w.create("/w", "acknowledged", &CreateOptions::default()).await.unwrap();
    assert_eq!(&client(&c, &[2]).get_with("/w", Consistency::Linearizable).await.unwrap().0[..], b"acknowledged");

    // B loses its disk and comes back with the same --id and --peers: refused, saying how.
    c.stop(2);
    empty(&c.member(2).dir);
    let args = c.member(2).args.clone();
    let log = c.try_restart_with(2, args.clone()).expect_err("an emptied voter must not rejoin as itself");
    assert!(log.contains("lost the votes and log entries"), "{log}");
    assert!(log.contains("grove member remove 2") && log.contains("--join"), "{log}");

    // The documented procedure: with a quorum again (C back), remove B, start it empty
    // with --join, add it back.
    c.restart(3);
    c.leader(Duration::from_secs(20)).await;
    let leader = c.leader(Duration::from_secs(20)).await;
    c.server(leader).grove_ok(&["member", "remove", "2"]);
    let join: Vec<String> = ["--id", "2", "--join"]
        .iter()
        .map(|s| s.to_string())
        .chain(crate::cluster::FAST_RAFT.iter().map(|s| s.to_string()))
        .collect();
    c.try_restart_with(2, join).unwrap();
    let peer = c.peer_addr(2);
    let client2 = c.client_addr(2);
    c.server(leader).grove_ok(&["member", "add", "-c", &client2, "2", &peer]);
    let zxid = w.sync("/").await.unwrap();
    c.caught_up(2, zxid, Duration::from_secs(20)).await;

    // Now A fails: B and C still have W, and take writes.
    c.kill(1);
    let bc = client(&c, &[2, 3]);
    assert_eq!(&bc.get_with("/w", Consistency::Linearizable).await.unwrap().0[..], b"acknowledged");
    bc.create("/after", "x", &CreateOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_copy_of_a_voters_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(dir.path(), 3, 0, &[]);
    c.leader(Duration::from_secs(20)).await;
    registered(&c, &[1, 2, 3]).await;
    // A copy of B's data directory, as a backup would be, taken while B is stopped.
    c.stop(2);
    let backup = dir.path().join("b-backup");
    copy_dir(&c.member(2).dir.join("data"), &backup);
    c.restart(2);
    registered(&c, &[2]).await;
    let w = client(&c, &[1, 2, 3]);
    for i in 0..20 {
        w.create(&format!("/n{i}"), "v", &CreateOptions::default()).await.unwrap();
    }
    let zxid = w.sync("/").await.unwrap();
    c.caught_up(2, zxid, Duration::from_secs(20)).await;
    // B is restored from the copy: refused.
    c.stop(2);
    let data = c.member(2).dir.join("data");
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&backup, &data);
    let args = c.member(2).args.clone();
    let log = c.try_restart_with(2, args).expect_err("an older copy must not run as the member");
    assert!(log.contains("older copy") || log.contains("acknowledged log entries up to"), "{log}");
    assert!(log.contains("grove member remove 2"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_restart_with_its_own_data_is_welcome() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(dir.path(), 3, 0, &[]);
    c.leader(Duration::from_secs(20)).await;
    registered(&c, &[1, 2, 3]).await;
    let w = client(&c, &[1, 2, 3]);
    w.create("/kept", "v", &CreateOptions::default()).await.unwrap();
    for round in 0..2 {
        c.kill(2);
        c.restart(2);
        registered(&c, &[2]).await;
        assert_eq!(
            &client(&c, &[2]).get_with("/kept", Consistency::Linearizable).await.unwrap().0[..],
            b"v",
            "{round}"
        );
    }
    // Every member knows the same cluster id.
    let ids: Vec<u64> = futures::future::join_all((1..=3).map(|i| c.status(i)))
        .await
        .into_iter()
        .map(|s| s.unwrap().cluster_id)
        .collect();
    assert!(ids[0] != 0 && ids.iter().all(|i| *i == ids[0]), "{ids:?}");
}

/// A voter started while most of the ensemble is down waits for a majority to answer
/// before it starts (fewer answers could miss the registration that refuses it), and
/// says so; once another is back, both check each other and the ensemble keeps its data.
#[tokio::test(flavor = "multi_thread")]
async fn a_voter_started_alone_waits_for_a_majority_of_the_voters() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(dir.path(), 3, 0, &[]);
    c.leader(Duration::from_secs(20)).await;
    registered(&c, &[1, 2, 3]).await;
    client(&c, &[1, 2, 3]).create("/kept", "yes", &CreateOptions::default()).await.unwrap();
    for id in 1..=3 {
        c.stop(id);
    }
    let m = c.member(1);
    let (data, ports, args) = (m.dir.clone(), m.ports, m.args.clone());
    let alone = std::thread::spawn(move || crate::harness::Server::start_on(&data, ports, &args));
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(!alone.is_finished(), "server 1 started with no other voter answering");
    let log = std::fs::read_to_string(c.member(1).dir.join("groved.log")).unwrap();
    assert!(log.contains("for a majority of the voters (2 of 3) to answer"), "{log}");
    c.restart(2);
    let first = alone.join().unwrap();
    c.members[0].server = Some(first);
    c.restart(3);
    c.leader(Duration::from_secs(20)).await;
    let (data, _) = client(&c, &[1, 2, 3]).get_with("/kept", Consistency::Linearizable).await.unwrap();
    assert_eq!(&data[..], b"yes");
}

/// A fresh server given the peers of a running ensemble, without `--join`, refuses to start
/// instead of bootstrapping a second ensemble over them; with `--join` it waits to be added.
#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_server_without_join_does_not_bootstrap_over_an_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(dir.path(), 3, 0, &[]);
    c.leader(Duration::from_secs(20)).await;
    registered(&c, &[1, 2, 3]).await;
    let ports = (crate::harness::free_port(), crate::harness::free_port(), crate::harness::free_port());
    let mut peers: Vec<String> = (1..=3).map(|i| format!("{i}={}", c.server(i).peer)).collect();
    peers.push(format!("4=127.0.0.1:{}", ports.1));
    let mut args: Vec<String> = vec!["--id".into(), "4".into(), "--peers".into(), peers.join(",")];
    args.extend(crate::cluster::FAST_RAFT.iter().map(|s| s.to_string()));
    let log = crate::harness::Server::try_start_on(&dir.path().join("n4"), ports, &args)
        .err()
        .expect("a fresh server without --join must not start over a running ensemble");
    assert!(log.contains("is not a member of") && log.contains("--join"), "{log}");
    // The ensemble is untouched.
    client(&c, &[1, 2, 3]).create("/still", "fine", &CreateOptions::default()).await.unwrap();
}

/// What a StatefulSet scaled up needs: fresh servers given the new, longer --peers and
/// `--auto-join` find the ensemble formed without them, ask its leader to add them, and
/// become voters with every write; the ensemble never bootstraps anew.
#[tokio::test(flavor = "multi_thread")]
async fn fresh_servers_with_auto_join_are_added_as_voters_by_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(dir.path(), 3, 0, &[]);
    c.leader(Duration::from_secs(20)).await;
    registered(&c, &[1, 2, 3]).await;
    client(&c, &[1, 2, 3]).create("/before", "kept", &CreateOptions::default()).await.unwrap();
    let ports = [4, 5].map(|_| (crate::harness::free_port(), crate::harness::free_port(), crate::harness::free_port()));
    let mut peers: Vec<String> = (1..=3).map(|i| format!("{i}={}", c.server(i).peer)).collect();
    peers.extend(ports.iter().enumerate().map(|(i, p)| format!("{}=127.0.0.1:{}", i + 4, p.1)));
    let joiners: Vec<_> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut args: Vec<String> =
                vec!["--id".into(), (i + 4).to_string(), "--peers".into(), peers.join(","), "--auto-join".into()];
            args.extend(crate::cluster::FAST_RAFT.iter().map(|s| s.to_string()));
            let (data, p) = (dir.path().join(format!("n{}", i + 4)), *p);
            std::thread::spawn(move || crate::harness::Server::start_on(&data, p, &args))
        })
        .collect();
    let joiners: Vec<_> = joiners.into_iter().map(|j| j.join().unwrap()).collect();
    let ensemble = client(&c, &[1, 2, 3]);
    crate::harness::eventually(Duration::from_secs(60), "both servers added as voters", async || {
        let members = ensemble.members().await.unwrap_or_default();
        members.iter().filter(|m| m.role == grove_proto::v1::MemberRole::Voter as i32).count() == 5
    })
    .await;
    let log = std::fs::read_to_string(joiners[0].dir.join("groved.log")).unwrap();
    assert!(log.contains("the peers formed the ensemble already: waiting for its leader"), "{log}");
    // The new voters hold the ensemble's writes and count toward its quorum.
    let fifth = Client::connect(&joiners[1].client).unwrap();
    let (data, _) = fifth.get_with("/before", Consistency::Linearizable).await.unwrap();
    assert_eq!(&data[..], b"kept");
    fifth.create("/after", "", &CreateOptions::default()).await.unwrap();
    let st = fifth.status().await.unwrap();
    assert_eq!(st.members.len(), 5);
    assert_eq!(st.cluster_id, ensemble.status().await.unwrap().cluster_id, "one cluster, not a second one");
    // Removed on purpose (the chart's shrink Job), a joiner still running does not come back.
    ensemble.remove_member(5).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ids: Vec<u64> = ensemble.members().await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
}

/// Two ensembles over the same addresses and ids never mix their logs: here a standalone
/// server's peers were started empty while it was down and formed a cluster of their own.
/// Its Raft messages from that cluster are refused (not applied, no crash), and started with
/// their --peers it refuses to start, naming both clusters.
#[tokio::test(flavor = "multi_thread")]
async fn members_of_another_cluster_are_refused_not_merged() {
    use crate::harness::{Server, eventually, free_port};
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<(u16, u16, u16)> = (0..3).map(|_| (free_port(), free_port(), free_port())).collect();
    let peers: Vec<String> = ports.iter().enumerate().map(|(i, p)| format!("{}=127.0.0.1:{}", i + 1, p.1)).collect();
    let args = |id: usize, with_peers: bool| {
        let mut a: Vec<String> = vec!["--id".into(), id.to_string()];
        if with_peers {
            a.extend(["--peers".into(), peers.join(",")]);
        }
        a.extend(crate::cluster::FAST_RAFT.iter().map(|s| s.to_string()));
        a
    };
    let cluster_of = async |s: &Server| Client::connect(&s.client).unwrap().status().await.map(|st| st.cluster_id);
    let alone_dir = dir.path().join("n1");
    let alone = Server::start_on(&alone_dir, ports[0], &args(1, false));
    Client::connect(&alone.client).unwrap().create("/kept", "x", &CreateOptions::default()).await.unwrap();
    eventually(Duration::from_secs(10), "the standalone server registered", async || {
        cluster_of(&alone).await.unwrap_or(0) != 0
    })
    .await;
    let x = cluster_of(&alone).await.unwrap();
    drop(alone);

    let others: Vec<_> = (2..=3)
        .map(|id| {
            let (data, p, a) = (dir.path().join(format!("n{id}")), ports[id - 1], args(id, true));
            std::thread::spawn(move || Server::start_on(&data, p, &a))
        })
        .collect();
    let others: Vec<Server> = others.into_iter().map(|t| t.join().unwrap()).collect();
    eventually(Duration::from_secs(20), "the other two formed a cluster", async || {
        cluster_of(&others[0]).await.unwrap_or(0) != 0
    })
    .await;
    let y = cluster_of(&others[0]).await.unwrap();
    assert_ne!(x, y);

    // Back without --peers: the new cluster's leader keeps sending it entries; refused.
    let alone = Server::start_on(&alone_dir, ports[0], &args(1, false));
    eventually(Duration::from_secs(10), "messages from the other cluster refused", async || {
        std::fs::read_to_string(alone_dir.join("groved.log")).unwrap().contains("refused a peer request from cluster")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = Client::connect(&alone.client).unwrap();
    assert_eq!(&c.get("/kept").await.unwrap().0[..], b"x");
    c.create("/still-mine", "", &CreateOptions::default()).await.unwrap();
    let st = c.status().await.unwrap();
    assert_eq!((st.cluster_id, st.members.len()), (x, 1), "{st:?}");
    drop(c);
    drop(alone);

    // With their --peers: refused before it starts.
    let started = Server::try_start_on(&alone_dir, ports[0], &args(1, true));
    let log = match started {
        Err(log) => log,
        Ok(s) => panic!("must not start: {}", s.log_tail()),
    };
    assert!(log.contains(&format!("{y:016x}")) && log.contains(&format!("{x:016x}")), "{log}");
    assert!(log.contains("two ensembles share these member addresses"), "{log}");
}

/// Scaling 1 -> 3 while the one existing server is slow to answer (here: stopped): the two
/// new servers are a majority of the new --peers, yet with `--auto-join` they wait to hear
/// from server 1 (the lowest id) instead of forming a second ensemble, and join once it
/// answers. A first start of fresh servers still needs only a majority with server 1 in it.
#[tokio::test(flavor = "multi_thread")]
async fn auto_join_servers_form_an_ensemble_only_with_the_first_voter() {
    use crate::harness::{Server, eventually, free_port};
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<(u16, u16, u16)> = (0..3).map(|_| (free_port(), free_port(), free_port())).collect();
    let peers: Vec<String> = ports.iter().enumerate().map(|(i, p)| format!("{}=127.0.0.1:{}", i + 1, p.1)).collect();
    let args = |id: usize, with_peers: bool| {
        let mut a: Vec<String> = vec!["--id".into(), id.to_string(), "--auto-join".into()];
        if with_peers {
            a.extend(["--peers".into(), peers.join(",")]);
        }
        a.extend(crate::cluster::FAST_RAFT.iter().map(|s| s.to_string()));
        a
    };
    // A first start where server 3 never comes: 1 and 2 form the ensemble.
    let fresh: Vec<_> = (1..=2)
        .map(|id| {
            let (data, p, a) = (dir.path().join(format!("f{id}")), ports[id - 1], args(id, true));
            std::thread::spawn(move || Server::start_on(&data, p, &a))
        })
        .collect();
    let fresh: Vec<Server> = fresh.into_iter().map(|t| t.join().unwrap()).collect();
    let f1 = Client::connect(&fresh[0].client).unwrap();
    f1.create("/formed", "", &CreateOptions::default()).await.unwrap();
    drop((f1, fresh));

    let first = Server::start_on(&dir.path().join("n1"), ports[0], &args(1, false));
    let c1 = Client::connect(&first.client).unwrap();
    c1.create("/kept", "x", &CreateOptions::default()).await.unwrap();
    eventually(Duration::from_secs(10), "registered", async || c1.status().await.is_ok_and(|s| s.cluster_id != 0))
        .await;
    first.signal("STOP");
    let joiners: Vec<_> = (2..=3)
        .map(|id| {
            let (data, p, a) = (dir.path().join(format!("n{id}")), ports[id - 1], args(id, true));
            std::thread::spawn(move || Server::try_start_on(&data, p, &a))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(joiners.iter().all(|j| !j.is_finished()), "the new servers started without hearing from server 1");
    first.signal("CONT");
    let joiners: Vec<Server> = joiners.into_iter().map(|j| j.join().unwrap().unwrap()).collect();
    eventually(Duration::from_secs(30), "both joined as voters", async || {
        c1.members()
            .await
            .is_ok_and(|m| m.iter().filter(|m| m.role == grove_proto::v1::MemberRole::Voter as i32).count() == 3)
    })
    .await;
    let third = Client::connect(&joiners[1].client).unwrap();
    assert_eq!(&third.get_with("/kept", Consistency::Linearizable).await.unwrap().0[..], b"x");
    assert_eq!(third.status().await.unwrap().cluster_id, c1.status().await.unwrap().cluster_id);
}

/// The leader promotes a server that asked to join only once it holds the log: one whose
/// advertised address leads nowhere stays a learner and the ensemble keeps its quorum; one
/// that advertises another member's address, or none, is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_joiner_is_promoted_only_when_caught_up_and_never_under_anothers_address() {
    use crate::harness::{Server, free_port};
    let dir = tempfile::tempdir().unwrap();
    let alone = Server::start_on(&dir.path().join("n1"), (free_port(), free_port(), free_port()), &[]);
    let c = Client::connect(&alone.client).unwrap();
    c.create("/kept", "x", &CreateOptions::default()).await.unwrap();
    let join = |id: u64, advertise: String| {
        let ports = (free_port(), free_port(), free_port());
        let peers = format!("1={},{id}=127.0.0.1:{}", alone.peer, ports.1);
        let mut args: Vec<String> = vec![
            "--id".into(),
            id.to_string(),
            "--peers".into(),
            peers,
            "--auto-join".into(),
            "--advertise-peer".into(),
            advertise,
        ];
        args.extend(crate::cluster::FAST_RAFT.iter().map(|s| s.to_string()));
        Server::start_on(&dir.path().join(format!("n{id}")), ports, &args)
    };
    // Advertises a port nobody listens on: a learner at most, never a voter.
    let nowhere = join(2, format!("127.0.0.1:{}", free_port()));
    // Advertises the leader's own peer address: refused.
    let impostor = join(3, alone.peer.clone());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let members = c.members().await.unwrap();
    assert!(members.iter().all(|m| m.id != 3), "{members:?}");
    assert!(members.iter().all(|m| m.id != 2 || m.role != grove_proto::v1::MemberRole::Voter as i32), "{members:?}");
    c.create("/still-writable", "", &CreateOptions::default()).await.unwrap();
    let log = std::fs::read_to_string(impostor.dir.join("groved.log")).unwrap();
    assert!(log.contains("is server 1's peer address"), "{log}");
    drop((nowhere, impostor));
}
