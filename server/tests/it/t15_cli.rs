//! Every `grove` command, one-shot and in the shell, against a real server.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::harness::{Server, grove_bin};

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn one_shot_commands_follow_the_tutorial() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);

    assert_eq!(s.grove_ok(&["create", "/app1", "hehe"]), "Created /app1\n");
    assert_eq!(s.grove_ok(&["get", "/app1"]), "hehe\n");
    let with_stat = s.grove_ok(&["get", "-s", "/app1"]);
    let l = lines(&with_stat);
    assert_eq!(l.len(), 12, "data line then ZooKeeper's 11 stat lines: {with_stat}");
    assert_eq!(l[0], "hehe");
    assert!(l[1].starts_with("cZxid = 0x"));
    assert!(l[2].starts_with("ctime = ") && l[2].ends_with(" UTC 2026") || l[2].contains(" UTC "));
    assert_eq!(l[7], "dataVersion = 0");
    assert_eq!(l[10], "dataLength = 4");

    assert_eq!(s.grove_ok(&["set", "/app1", "xixi"]), "");
    let set_s = s.grove_ok(&["set", "-s", "-v", "1", "/app1", "haha"]);
    assert!(set_s.contains("dataVersion = 2"), "{set_s}");
    let bad = s.grove(&["set", "-v", "0", "/app1", "nope"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).trim(), "version No is not valid : /app1");

    assert_eq!(s.grove_ok(&["create", "/app1/cfg", "c"]), "Created /app1/cfg\n");
    assert_eq!(s.grove_ok(&["create", "-s", "/app1/seq-", "s"]), "Created /app1/seq-0000000001\n");
    // A one-shot session ends with the command: its ephemeral is gone right after.
    assert_eq!(s.grove_ok(&["create", "-e", "/app1/eph", "e"]), "Created /app1/eph\n");
    assert_eq!(s.grove_ok(&["ls", "/app1"]), "[cfg, seq-0000000001]\n");
    let ls_s = s.grove_ok(&["ls", "-s", "/app1"]);
    assert_eq!(lines(&ls_s)[0], "[cfg, seq-0000000001]");
    assert!(ls_s.contains("numChildren = 2"), "{ls_s}");
    assert!(ls_s.contains("cversion = 4"), "cfg, seq, eph created and eph deleted: {ls_s}");

    let stat = s.grove_ok(&["stat", "/app1/cfg"]);
    assert_eq!(lines(&stat).len(), 11);
    assert_eq!(s.grove_ok(&["sync", "/"]), "Sync is OK\n");
    assert_eq!(s.grove_ok(&["getAllChildrenNumber", "/"]), "3\n");
    assert_eq!(s.grove_ok(&["getEphemerals", "/"]), "[]\n");
    assert_eq!(s.grove_ok(&["ls", "-R", "/app1"]), "/app1\n/app1/cfg\n/app1/seq-0000000001\n");

    let e = s.grove(&["delete", "/app1"]);
    assert_eq!(e.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&e.stderr).trim(), "Node not empty: /app1");
    let e = s.grove(&["create", "/app1", "again"]);
    assert_eq!(String::from_utf8_lossy(&e.stderr).trim(), "Node already exists: /app1");
    let e = s.grove(&["create", "/a/b/c", "x"]);
    assert_eq!(String::from_utf8_lossy(&e.stderr).trim(), "Node does not exist: /a/b/c");
    let e = s.grove(&["delete", "-v", "7", "/app1/cfg"]);
    assert_eq!(String::from_utf8_lossy(&e.stderr).trim(), "version No is not valid : /app1/cfg");

    assert_eq!(s.grove_ok(&["delete", "/app1/cfg"]), "");
    assert_eq!(s.grove_ok(&["deleteall", "/app1"]), "");
    assert_eq!(s.grove_ok(&["ls", "/"]), "[]\n");

    assert_eq!(s.grove_ok(&["create", "-c", "/cont"]), "Created /cont\n");
    assert_eq!(s.grove_ok(&["create", "-t", "60000", "/ttl", "t"]), "Created /ttl\n");
    assert!(s.grove_ok(&["version"]).starts_with("Grove CLI version: "));
    assert!(s.grove_ok(&["help"]).contains("create [-s] [-e] [-c] [-t ttl] path [data]"));

    let status = s.grove_ok(&["status"]);
    assert_eq!(lines(&status)[0], "Mode: standalone");
    assert!(status.contains("Zxid: 0x"), "{status}");
    assert!(s.grove_ok(&["members"]).contains("1 voter"));

    // Usage errors exit 2 with zkCli's usage line.
    let u = s.grove(&["get"]);
    assert_eq!(u.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&u.stderr).trim(), "Usage: get [-s] [-w] path");
    let u = s.grove(&["frobnicate"]);
    assert_eq!(u.status.code(), Some(2));
}

#[test]
fn json_output_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let out = s.grove_ok(&["--json", "create", "/j", "data"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["path"], "/j");
    let v: serde_json::Value = serde_json::from_str(&s.grove_ok(&["--json", "get", "/j"])).unwrap();
    assert_eq!(v["data"], "data");
    assert_eq!(v["stat"]["version"], 0);
    let v: serde_json::Value = serde_json::from_str(&s.grove_ok(&["--json", "ls", "/"])).unwrap();
    assert_eq!(v["children"], serde_json::json!(["j"]));
    let v: serde_json::Value = serde_json::from_str(&s.grove_ok(&["--json", "status"])).unwrap();
    assert_eq!(v["mode"], "standalone");
    let failed = s.grove(&["--json", "get", "/missing"]);
    assert_eq!(failed.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(v["error"]["code"], "NO_NODE");
}

#[test]
fn interactive_shell_runs_commands_history_redo_and_prints_watch_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(grove_bin())
        .args(["--server", &s.client])
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let stdin = child.stdin.as_mut().unwrap();
        let script = [
            "create /w one",
            "create -e /w/eph x",
            "getEphemerals /",
            "get -w /w",
            "set /w two",
            "ls /",
            "history",
            "redo 5",
            "printwatches off",
            "bogus",
            "quit",
        ];
        for line in script {
            writeln!(stdin, "{line}").unwrap();
            // Let the watch event print before the next command.
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Created /w"), "{stdout}");
    assert!(stdout.contains("[/w/eph]"), "the shell's session owns the ephemeral: {stdout}");
    assert!(stdout.contains("WatchedEvent state:SyncConnected type:NodeDataChanged path:/w"), "{stdout}");
    assert!(stdout.contains("0 - create /w one"), "{stdout}");
    assert!(stdout.contains("printwatches is off"), "{stdout}");
    assert!(stderr.contains("Command not found: bogus"), "{stderr}");
    // `redo 5` re-ran `ls /`: the listing appears twice.
    assert_eq!(stdout.matches("[w]").count(), 2, "{stdout}");
    // The shell's session closed at quit: its ephemeral is gone.
    assert_eq!(s.grove_ok(&["ls", "/w"]), "[]\n");
}

/// Starts the shell against `server`, with its own HOME (for the history file).
fn spawn_shell(server: &str, home: &std::path::Path) -> std::process::Child {
    Command::new(grove_bin())
        .args(["--server", server])
        .env("HOME", home)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Types `lines` into the shell, 300 ms apart (watch events print in between).
fn feed(child: &mut std::process::Child, lines: &[&str]) {
    let stdin = child.stdin.as_mut().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn zkcli_flags_bundle_and_come_after_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    assert_eq!(s.grove_ok(&["create", "/p"]), "Created /p\n");

    // `-es` is `-e -s`: an ephemeral sequential node, gone with the one-shot session.
    assert_eq!(s.grove_ok(&["create", "-es", "/p/e-", "x"]), "Created /p/e-0000000000\n");
    let v: serde_json::Value = serde_json::from_str(&s.grove_ok(&["--json", "create", "-se", "/p/j-", "x"])).unwrap();
    assert_eq!(v["stat"]["mode"], "EPHEMERAL_SEQUENTIAL", "{v}");
    assert_ne!(v["stat"]["ephemeralOwner"], 0, "{v}");
    assert_eq!(s.grove_ok(&["ls", "/p"]), "[]\n");
    let v: serde_json::Value = serde_json::from_str(&s.grove_ok(&["--json", "get", "-sw", "/p"])).unwrap();
    assert_eq!(v["stat"]["numChildren"], 0);

    // Flags after the path, as zkCli and the help put them.
    for i in 0..12 {
        s.grove_ok(&["create", &format!("/p/c{i:02}")]);
    }
    let tree = s.grove_ok(&["ls", "/p", "-R"]);
    assert_eq!(tree, s.grove_ok(&["ls", "-R", "/p"]));
    assert_eq!(lines(&tree).len(), 13, "/p and its 12 children: {tree}");
    assert_eq!(lines(&tree)[..2], ["/p", "/p/c00"]);
    // One-shot there are no watches to remove; the syntax is accepted.
    let out = s.grove(&["removewatches", "/p", "-a"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // 13 deletes in multis of 10.
    assert_eq!(s.grove_ok(&["deleteall", "/p", "-b", "10"]), "");
    assert_eq!(s.grove_ok(&["ls", "/"]), "[]\n");

    // Usage errors still exit 2, and name what is wrong.
    let u = s.grove(&["deleteall", "/p", "-b", "0"]);
    assert_eq!(u.status.code(), Some(2));
    let err = String::from_utf8_lossy(&u.stderr);
    assert_eq!(lines(&err), ["deleteall -b: the batch size must be positive", "Usage: deleteall path [-b batch size]"]);
    let u = s.grove(&["ls", "/p", "-x"]);
    assert_eq!(u.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&u.stderr).trim(), "Usage: ls [-s] [-w] [-R] path");
}

#[test]
fn shell_removewatches_takes_its_flag_after_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let home = tempfile::tempdir().unwrap();
    let mut child = spawn_shell(&s.client, home.path());
    feed(&mut child, &["create /rw x", "addWatch /rw", "removewatches /rw -a", "ls /", "removewatches /rw -a", "quit"]);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:/rw"), "{stdout}");
    // The second one found nothing left to remove; neither was a usage error.
    assert!(stderr.contains("No watcher found for path: /rw"), "{stderr}");
    assert!(!stderr.contains("Usage"), "{stderr}");
}

#[test]
fn shell_server_and_timeout_options_open_a_new_session() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (s1, s2) = (Server::start(d1.path(), &[]), Server::start(d2.path(), &[]));
    let home = tempfile::tempdir().unwrap();
    let mut child = spawn_shell(&s1.client, home.path());
    let to_s2 = format!("-server {}", s2.client);
    // Back to s1 with a 4 s session (the server's minimum) and a command on the same line.
    let back = format!("-server {} -timeout 4000 ls /", s1.client);
    feed(&mut child, &["create -e /first x", &to_s2, "create /on2 x", "ls /", &back, "create -e /short x"]);

    // The first session closed when the shell moved: its ephemeral went with it.
    assert_eq!(s1.grove_ok(&["ls", "/"]), "[short]\n");
    assert_eq!(s2.grove_ok(&["ls", "/"]), "[on2]\n");

    // With the shell stopped, the new session expires after its 4 s, not the default 30 s.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let stopped = std::time::Instant::now();
    while s1.grove_ok(&["ls", "/"]) != "[]\n" {
        assert!(stopped.elapsed() < std::time::Duration::from_secs(15), "the 4 s session did not expire");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    feed(&mut child, &["-timeout", "quit"]);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("[on2]"), "ls / ran on the second server: {stdout}");
    assert!(!stderr.contains("Command not found"), "{stderr}");
    assert!(stderr.contains("Usage: Grove -server host:port -timeout ms cmd args"), "-timeout needs a value: {stderr}");
}
