//! A Node.js client loading the .proto files with @grpc/proto-loader drives a real server:
//! unary calls, a server-streaming watch, a typed error code from the status details, a lock.
//! Its packages come from `scripts/setup-node.sh` (run by `.ci/run`).

use std::process::Command;

use crate::harness::{Server, repo_root};

#[test]
fn node_client_loaded_from_the_protos() {
    let root = repo_root();
    let modules = root.join("tests/node/node_modules/@grpc/grpc-js");
    assert!(modules.exists(), "{} is missing: run scripts/setup-node.sh first", modules.display());
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let out = Command::new("node")
        .arg(root.join("tests/node/grove_client.js"))
        .arg(&s.client)
        .current_dir(&root)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "node client failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for step in [
        "created /js",
        "got hello version 0",
        "stale version: BAD_VERSION",
        "watch event: NODE_DATA_CHANGED /js changed",
        "node: /locks/js/lock-0000000000",
        "released: true",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    let token: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("lock token: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no lock token in:\n{stdout}"));
    assert!(token > 0);
    // The program's writes are in the server, as it said.
    assert_eq!(s.grove_ok(&["get", "/js"]).trim(), "changed");
}
