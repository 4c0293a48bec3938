//! A Python client generated from the .proto files with grpcio-tools drives a real server:
//! unary calls, a server-streaming watch, a typed error code from the status details, a lock.
//! The virtualenv comes from `scripts/setup-python.sh` (run by `.ci/run`).

use std::process::Command;

use crate::harness::{Server, repo_root};

#[test]
fn python_client_generated_from_the_protos() {
    let root = repo_root();
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup-python.sh first", python.display());
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let out = Command::new(&python)
        .arg(root.join("tests/python/smoke.py"))
        .arg(&s.client)
        .current_dir(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python smoke failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for step in [
        "created /py",
        "got hello",
        "stale version: BAD_VERSION",
        "watch event: NODE_DATA_CHANGED /py changed",
        "node: /locks/py/lock-0000000000",
        "released: True",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
}
