//! Five voters, overlapping faults and membership changes under faults, with the register
//! workload's histories checked for linearizability and the session guarantees.
//!
//! The faults: the leader isolated while a follower is paused; two followers killed at
//! once; a minority of two cut off; a member removed, emptied and added back (`--join`)
//! while another is isolated; the leader killed while a follower is paused.

use std::time::Duration;

use rand::{Rng, SeedableRng};

use crate::cluster::Cluster;
use crate::nemesis::{self, Fault, Tally, Target};
use crate::t90_faults::Register;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_voters_stay_linearizable_under_overlapping_faults_and_membership_changes() {
    let root = tempfile::tempdir().unwrap();
    let mut c = Cluster::start_proxied(root.path(), 5, &["--request-timeout-ms", "2000"]).await;
    c.leader(Duration::from_secs(30)).await;
    c.client_all(1).create("/lin", "", &grove_client::CreateOptions::default()).await.unwrap();
    let workload = Register::start(&c);
    let mut tally = Tally::new("five voters");
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let steps = 5;
    for cycle in 0..nemesis::cycles(steps) {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let leader = c.leader(Duration::from_secs(30)).await;
        let followers: Vec<u64> = (1..=5).filter(|i| *i != leader).collect();
        let what = match cycle % steps {
            0 => nemesis::inject(&mut c, Fault::PauseAndIsolate, Target::Leader, &mut rng, 1_500..3_000, || async {})
                .await
                .to_string(),
            1 => {
                let (a, b) = (followers[0], followers[1]);
                c.kill(a);
                c.kill(b);
                tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..2_500))).await;
                c.restart(a);
                c.restart(b);
                format!("followers {a} and {b} killed together, restarted")
            }
            2 => {
                let (a, b) = (followers[1], followers[2]);
                c.isolate(a);
                c.isolate(b);
                tokio::time::sleep(Duration::from_millis(rng.random_range(1_500..3_000))).await;
                c.heal();
                format!("a minority ({a}, {b}) cut off")
            }
            3 => {
                // A member replaced (lost disk) while another is isolated: remove it, empty
                // it, start it with --join, add it back.
                let (gone, cut) = (followers[0], followers[3]);
                c.isolate(cut);
                c.server(leader).grove_ok(&["member", "remove", &gone.to_string()]);
                c.kill(gone);
                let data = c.member(gone).dir.join("data");
                std::fs::remove_dir_all(&data).unwrap();
                let mut args = c.member(gone).args.clone();
                args.push("--join".into());
                c.try_restart_with(gone, args).expect("an emptied, removed member starts with --join");
                let peer = c.peer_addr(gone);
                let client = c.client_addr(gone);
                let now_leader = c.leader(Duration::from_secs(30)).await;
                let out = c.server(now_leader).grove(&["member", "add", "-c", &client, &gone.to_string(), &peer]);
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                tokio::time::sleep(Duration::from_millis(500)).await;
                c.heal();
                format!("member {gone} removed, emptied and added back while {cut} was isolated")
            }
            _ => {
                let paused = followers[2];
                c.server(paused).signal("STOP");
                c.kill(leader);
                tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..2_000))).await;
                c.restart(leader);
                c.server(paused).signal("CONT");
                format!("leader {leader} killed while {paused} was paused")
            }
        };
        let took = nemesis::recovered(&c, Duration::from_secs(40)).await;
        tally.worst_recovery = tally.worst_recovery.max(took);
        tally.faults.push(format!("cycle {cycle}: {what}; recovered in {took:?}"));
        tally.cycles += 1;
    }
    // Every member is back and knows five voters.
    let members = c.client_all(1).members().await.unwrap();
    assert_eq!(members.iter().filter(|m| m.role() == grove_client::proto::MemberRole::Voter).count(), 5, "{members:?}");
    workload.finish(&c, &mut tally).await;
    tally.finish();
}
