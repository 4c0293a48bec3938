//! `grove lock` and `grove election`, and the examples, as separate processes against a
//! real server.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::{Server, grove_bin, groved_bin};

const WAIT: Duration = Duration::from_secs(20);

/// An example program, built into target/<profile>/examples by the workspace build.
fn example_bin(name: &str) -> PathBuf {
    let p = groved_bin().parent().unwrap().join("examples").join(name);
    assert!(
        p.exists(),
        "{} is missing: build the whole workspace first (cargo build --workspace --all-targets)",
        p.display()
    );
    p
}

/// A running process whose stdout lines arrive on a channel.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Proc { child, lines }
    }

    fn grove(s: &Server, args: &[&str]) -> Proc {
        let mut cmd = Command::new(grove_bin());
        cmd.args(["--server", &s.client]).args(args);
        Proc::spawn(cmd)
    }

    fn line(&self) -> String {
        self.lines.recv_timeout(WAIT).expect("a line of output")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
    }

    /// Waits (bounded) for the exit; returns the code and the rest of stdout and stderr.
    fn finish(mut self) -> (i32, Vec<String>, String) {
        let deadline = std::time::Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the process did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut err).unwrap();
        let rest: Vec<String> = std::iter::from_fn(|| self.lines.recv_timeout(Duration::from_secs(2)).ok()).collect();
        (status.code().unwrap_or(-1), rest, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(line: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("token="))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no token in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grove_lock_runs_a_command_holding_the_lock_and_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let log = dir.path().join("log");

    // Two commands under the same lock never overlap: each writes start, pauses, end.
    let script =
        format!("echo start $GROVE_LOCK_TOKEN >> {0}; sleep 0.3; echo end $GROVE_LOCK_TOKEN >> {0}", log.display());
    let a = Proc::grove(&s, &["lock", "/locks/job", "--", "sh", "-c", &script]);
    let b = Proc::grove(&s, &["lock", "/locks/job", "--", "sh", "-c", &script]);
    let (ta, tb) = (token(&a.line()), token(&b.line()));
    assert_ne!(ta, tb);
    assert_eq!(a.finish().0, 0);
    assert_eq!(b.finish().0, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let (first, second) = (ta.min(tb), ta.max(tb));
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [format!("start {first}"), format!("end {first}"), format!("start {second}"), format!("end {second}")],
        "the second holder started after the first ended, in token order"
    );
    let c = s.connect();
    assert!(c.describe_lock("/locks/job").await.unwrap().is_empty(), "released after the commands");

    // The command's exit status is grove's.
    let (code, _, _) = Proc::grove(&s, &["lock", "/locks/job", "--", "sh", "-c", "exit 3"]).finish();
    assert_eq!(code, 3);
    let (code, _, err) = Proc::grove(&s, &["lock", "/locks/job", "--", "/no/such/program"]).finish();
    assert_eq!(code, 127, "{err}");
    assert!(c.describe_lock("/locks/job").await.unwrap().is_empty(), "released after a failed command");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grove_lock_holds_until_interrupted_and_times_out_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let c = s.connect();

    let holder = Proc::grove(&s, &["lock", "/locks/hold"]);
    let t = token(&holder.line());
    let line = c.describe_lock("/locks/hold").await.unwrap();
    assert_eq!(line.len(), 1);
    assert!(line[0].granted && line[0].token == t);

    // Someone else gives up after 300 ms and leaves nothing behind.
    let (code, out, err) = Proc::grove(&s, &["lock", "-t", "300", "/locks/hold"]).finish();
    assert_eq!(code, 1, "{out:?} {err}");
    assert!(err.contains("not granted") || err.to_lowercase().contains("timeout"), "{err}");
    assert_eq!(c.describe_lock("/locks/hold").await.unwrap().len(), 1);

    holder.signal("INT");
    let (code, _, err) = holder.finish();
    assert_eq!(code, 0, "{err}");
    assert!(c.describe_lock("/locks/hold").await.unwrap().is_empty(), "released on Ctrl-C");

    // Usage errors.
    for bad in [&["lock"][..], &["lock", "-t", "x", "/l"], &["election", "only-a-name"]] {
        let (code, _, err) = Proc::grove(&s, bad).finish();
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains("Usage: grove"), "{err}");
    }
    let (code, _, err) = Proc::grove(&s, &["lock", "not/a/path"]).finish();
    assert_eq!(code, 1);
    assert!(err.contains("not/a/path"), "the bad path is named: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grove_election_prints_when_elected_and_hands_over() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);

    let listener = Proc::grove(&s, &["election", "-l", "web"]);
    let first = Proc::grove(&s, &["election", "web", "host-a"]);
    let l1 = first.line();
    assert!(l1.starts_with("elected web value=host-a token="), "{l1}");
    let second = Proc::grove(&s, &["election", "web", "host-b"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(second.lines.try_recv().is_err(), "the second is not elected while the first leads");

    first.signal("TERM");
    assert_eq!(first.finish().0, 0);
    let l2 = second.line();
    assert!(l2.starts_with("elected web value=host-b"), "{l2}");
    assert!(token(&l2) > token(&l1));

    // The listener saw both leaders in order (possibly after an initial "none").
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let l = listener.line();
        if l.starts_with("leader web value=") {
            seen.push(l.split_whitespace().nth(2).unwrap().to_string());
        }
    }
    assert_eq!(seen, ["value=host-a", "value=host-b"]);
    second.signal("INT");
    assert_eq!(second.finish().0, 0);
    listener.signal("INT");
    assert_eq!(listener.finish().0, 0);
}

#[test]
fn two_ticket_sellers_in_separate_processes_never_oversell() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let seller = |name: &str| {
        let mut cmd = Command::new(example_bin("ticket_selling"));
        cmd.args(["--server", &s.client, "--name", name, "--pause-ms", "20"]);
        Proc::spawn(cmd)
    };
    let (a, b) = (seller("A"), seller("B"));
    let (ca, la, ea) = a.finish();
    let (cb, lb, eb) = b.finish();
    assert_eq!((ca, cb), (0, 0), "{ea}\n{eb}");

    let mut sales: Vec<(u32, String, u64)> = Vec::new();
    for l in la.iter().chain(&lb).filter(|l| l.starts_with("ticket=")) {
        let f: Vec<&str> = l.split_whitespace().collect();
        sales.push((
            f[0].strip_prefix("ticket=").unwrap().parse().unwrap(),
            f[1].strip_prefix("seller=").unwrap().to_string(),
            token(l),
        ));
    }
    let mut tickets: Vec<u32> = sales.iter().map(|s| s.0).collect();
    tickets.sort();
    assert_eq!(tickets, (1..=10).collect::<Vec<_>>(), "each of the 10 tickets sold exactly once: {sales:?}");
    // Sold in stock order: ticket 10 first; a later sale always has a larger token.
    sales.sort_by_key(|s| std::cmp::Reverse(s.0));
    assert!(sales.windows(2).all(|w| w[1].2 > w[0].2), "{sales:?}");
    assert!(la.iter().chain(&lb).filter(|l| l.starts_with("sold out")).count() == 2);
    assert!(sales.iter().any(|s| s.1 == "A") && sales.iter().any(|s| s.1 == "B"), "both sold: {sales:?}");
    assert_eq!(s.grove_ok(&["get", "/tickets/stock"]), "0\n");
}

#[test]
fn the_other_examples_run_against_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let example = |name: &str, args: &[&str]| {
        let mut cmd = Command::new(example_bin(name));
        cmd.args(["--server", &s.client]).args(args);
        Proc::spawn(cmd)
    };

    // A pool of 2 leases shared by 6 workers.
    let (code, out, err) = example("semaphore_pool", &["--leases", "2", "--workers", "6", "--hold-ms", "50"]).finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.iter().filter(|l| l.ends_with("returned")).count(), 6);
    let max: usize = out.last().unwrap().split_whitespace().next().unwrap()["max_concurrent=".len()..].parse().unwrap();
    assert!((1..=2).contains(&max), "{out:?}");

    // A watcher sees the value it started with and a later change.
    let (code, _, err) = example("config_watch", &["--path", "/config/app", "--set", "v1"]).finish();
    assert_eq!(code, 0, "{err}");
    let watcher = example("config_watch", &["--path", "/config/app", "--for-secs", "10"]);
    assert_eq!(watcher.line(), "config=v1 version=0");
    s.grove_ok(&["set", "/config/app", "v2"]);
    assert_eq!(watcher.line(), "config=v2 version=1");

    // Members see each other come and go.
    let m1 = example("cluster_members", &["--name", "m1", "--for-secs", "10"]);
    assert_eq!(m1.line(), "joined /members/demo as m1");
    let (code, out, err) = example("cluster_members", &["--name", "m2", "--for-secs", "1"]).finish();
    assert_eq!(code, 0, "{err}");
    assert!(out.iter().any(|l| l == "members=m1,m2"), "{out:?}");
    // m1 saw m2 join, then leave.
    let mut m1_saw: Vec<String> = Vec::new();
    while !(m1_saw.iter().any(|l| l == "members=m1,m2") && m1_saw.last().is_some_and(|l| l == "members=m1")) {
        m1_saw.push(m1.line());
    }

    // Leaders take turns with increasing tokens.
    let la = example("leader_election", &["--name", "a", "--term-ms", "100", "--for-secs", "3"]);
    let lb = example("leader_election", &["--name", "b", "--term-ms", "100", "--for-secs", "3"]);
    let (_, outa, _) = la.finish();
    let (_, outb, _) = lb.finish();
    let mut terms: Vec<u64> = outa.iter().chain(&outb).filter(|l| l.starts_with("leader=")).map(|l| token(l)).collect();
    assert!(outa.iter().any(|l| l.starts_with("leader=a")) && outb.iter().any(|l| l.starts_with("leader=b")));
    let n = terms.len();
    terms.sort();
    terms.dedup();
    assert_eq!(terms.len(), n, "every term has its own token");

    // Two instances registered, picked round-robin.
    let r1 = example("service_discovery", &["register", "--port", "8080", "--for-secs", "10"]);
    let r2 = example("service_discovery", &["register", "--port", "8081", "--for-secs", "10"]);
    assert!(r1.line().starts_with("registered api") && r2.line().starts_with("registered api"));
    let (code, out, err) = example("service_discovery", &["query", "--picks", "4"]).finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.iter().filter(|l| l.starts_with("instance ")).count(), 2, "{out:?}");
    let picks: Vec<&String> = out.iter().filter(|l| l.starts_with("picked ")).collect();
    assert_eq!(picks.len(), 4);
    assert_ne!(picks[0], picks[1], "round robin: {picks:?}");
    assert_eq!(picks[0], picks[2]);
}
