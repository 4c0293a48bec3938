//! The web console's API (`/ui/api` on the admin port), through real HTTP: every change is
//! the gRPC service's own, with the HTTP caller's identities, so versions, ACLs and limits
//! hold as for any client; the read-only and off modes; the live view's event stream and its
//! resume by zxid. The page itself is tested in a real browser (tests/console).

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use grove_client::acl::{self, perms};
use grove_client::{Client, CreateOptions, LockRequest};
use serde_json::{Value, json};

use crate::harness::{Server, http};

const JSON: &str = "Content-Type: application/json\r\n";

fn basic(user: &str, password: &str) -> String {
    format!("Authorization: Basic {}\r\n", B64.encode(format!("{user}:{password}")))
}

/// A console API call: (status, parsed body).
fn call(s: &Server, method: &str, path: &str, headers: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let (code, text) = http(&s.admin, method, &format!("/ui/api/{path}"), headers, &body);
    (code, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text:?}")))
}

fn get(s: &Server, path: &str, headers: &str) -> (u16, Value) {
    call(s, "GET", path, headers, Value::Null)
}

async fn data_of(c: &Client, path: &str) -> (String, i32) {
    let (data, stat) = c.get(path).await.unwrap();
    (String::from_utf8(data.to_vec()).unwrap(), stat.version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_changes_keep_versions_and_refuse_bad_input_without_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let c = s.connect();
    let (code, created) =
        call(&s, "POST", "node", JSON, json!({"path": "/app", "data": B64.encode("v0"), "make_parents": true}));
    assert_eq!(code, 200, "{created}");
    assert_eq!(created["path"], "/app");
    assert_eq!(data_of(&c, "/app").await, ("v0".into(), 0));
    let (code, seq) = call(&s, "POST", "node", JSON, json!({"path": "/app/job-", "mode": "persistent_sequential"}));
    assert_eq!(code, 200);
    assert_eq!(seq["path"], "/app/job-0000000000");

    let (code, node) = get(&s, "node?path=/app", "");
    assert_eq!(code, 200);
    assert_eq!(node["data"], B64.encode("v0"));
    assert_eq!(node["stat"]["version"], 0);
    assert_eq!(node["stat"]["num_children"], 1);
    assert_eq!(node["acl"], json!([{"perms": "cdrwa", "scheme": "world", "id": "anyone"}]));
    let (_, page) = get(&s, "children?path=/app", "");
    assert_eq!(
        page["children"],
        json!([{"name": "job-0000000000", "num_children": 0, "data_length": 0, "ephemeral": false}])
    );

    // Set at the version read; a change made meanwhile is a conflict showing the server's side.
    let (code, _) = call(&s, "PUT", "node", JSON, json!({"path": "/app", "data": B64.encode("v1"), "version": 0}));
    assert_eq!(code, 200);
    c.set("/app", "theirs", None).await.unwrap();
    let (code, conflict) =
        call(&s, "PUT", "node", JSON, json!({"path": "/app", "data": B64.encode("mine"), "version": 1}));
    assert_eq!(code, 409);
    assert_eq!(conflict["code"], "BAD_VERSION");
    assert_eq!(conflict["current"]["data"], B64.encode("theirs"));
    assert_eq!(conflict["current"]["stat"]["version"], 2);
    assert_eq!(data_of(&c, "/app").await, ("theirs".into(), 2));
    // Overwriting on purpose: version -1.
    let (code, _) = call(&s, "PUT", "node", JSON, json!({"path": "/app", "data": B64.encode("mine"), "version": -1}));
    assert_eq!(code, 200);
    assert_eq!(data_of(&c, "/app").await, ("mine".into(), 3));

    // Bad input: a clear error, nothing written.
    for (method, body, headers, want, needle) in [
        ("PUT", json!({"path": "/app", "data": B64.encode("x")}), "", 415, "application/json"),
        ("PUT", json!({"path": "/app", "data": "not base64!"}), JSON, 400, "base64"),
        ("POST", json!({"path": "/eph", "mode": "ephemeral"}), JSON, 400, "session"),
        ("POST", json!({"path": "/x", "mode": "sideways"}), JSON, 400, "unknown mode"),
        ("POST", json!({"path": "no-slash"}), JSON, 400, "no-slash"),
        ("POST", json!({"path": "/app"}), JSON, 409, "/app"),
        ("POST", json!({"path": "/missing/child"}), JSON, 404, "/missing"),
    ] {
        let (code, e) = call(&s, method, "node", headers, body.clone());
        assert_eq!(code, want, "{method} {body}: {e}");
        assert!(e["error"].as_str().unwrap().contains(needle), "{method} {body}: {e}");
    }
    assert_eq!(data_of(&c, "/app").await, ("mine".into(), 3));
    for p in ["/eph", "/x", "/missing"] {
        assert!(c.exists(p).await.unwrap().is_none(), "{p}");
    }

    // Delete: a stale version and a non-empty node are refused; recursive takes the subtree.
    let (code, e) = call(&s, "DELETE", "node?path=/app/job-0000000000", "", Value::Null);
    assert_eq!(code, 415, "{e}");
    let (code, e) = call(&s, "DELETE", "node?path=/app/job-0000000000&version=7", JSON, Value::Null);
    assert_eq!((code, e["code"].as_str()), (409, Some("BAD_VERSION")));
    let (code, e) = call(&s, "DELETE", "node?path=/app", JSON, Value::Null);
    assert_eq!((code, e["code"].as_str()), (409, Some("NOT_EMPTY")));
    let (code, e) = call(&s, "DELETE", "node?path=/&recursive=true", JSON, Value::Null);
    assert_eq!(code, 400, "{e}");
    for i in 0..30 {
        c.create(&format!("/app/deep/n{i}/leaf"), "", &CreateOptions { create_parents: true, ..Default::default() })
            .await
            .unwrap();
    }
    let (code, gone) = call(&s, "DELETE", "node?path=/app&recursive=true", JSON, Value::Null);
    assert_eq!(code, 200, "{gone}");
    assert_eq!(gone["deleted"], 63);
    assert!(c.exists("/app").await.unwrap().is_none());

    let (code, e) = get(&s, "node?path=/app", "");
    assert_eq!((code, e["code"].as_str()), (404, Some("NO_NODE")));
    let (code, e) = get(&s, "node", "");
    assert_eq!(code, 400, "{e}");
    let (code, _) = get(&s, "nonsense", "");
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_checked_against_the_acl_with_the_callers_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let alice = Client::builder(&s.client).digest_auth("alice", "pw").build().unwrap();
    let only_alice = vec![acl::entry("digest", &acl::digest("alice", "pw"), perms::ALL)];
    alice.create("/secret", "s3", &CreateOptions { acl: only_alice.clone(), ..Default::default() }).await.unwrap();

    let (code, e) = get(&s, "node?path=/secret", "");
    assert_eq!((code, e["code"].as_str()), (401, Some("NO_AUTH")), "{e}");
    let (code, e) = get(&s, "node?path=/secret", &basic("bob", "pw"));
    assert_eq!((code, e["code"].as_str()), (403, Some("NO_AUTH")), "{e}");
    let (code, node) = get(&s, "node?path=/secret", &basic("alice", "pw"));
    assert_eq!(code, 200);
    assert_eq!(node["data"], B64.encode("s3"));
    // Never a challenge: the page asks for credentials itself.
    let (_, raw) = http(&s.admin, "GET", "/ui/api/node?path=/secret", "", "");
    assert!(!raw.contains("WWW-Authenticate"));

    let put = json!({"path": "/secret", "data": B64.encode("vandal")});
    let (code, _) = call(&s, "PUT", "node", &format!("{JSON}{}", basic("bob", "pw")), put.clone());
    assert_eq!(code, 403);
    // Deleting needs DELETE on the parent, as in ZooKeeper.
    alice.create("/secret/child", "", &CreateOptions::default()).await.unwrap();
    let (code, _) = call(&s, "DELETE", "node?path=/secret/child", JSON, Value::Null);
    assert_eq!(code, 401);
    assert!(alice.exists("/secret/child").await.unwrap().is_some());
    assert_eq!(data_of(&alice, "/secret").await, ("s3".into(), 0));
    let (code, _) = call(&s, "PUT", "node", &format!("{JSON}{}", basic("alice", "pw")), put);
    assert_eq!(code, 200);

    let (_, info) = get(&s, "info", &basic("alice", "pw"));
    assert!(info["identity"].as_array().unwrap().contains(&json!("digest:alice")), "{info}");
    assert!(!info.to_string().contains(&acl::digest("alice", "pw")[6..]), "no hashes shown: {info}");

    // A node alice alone reads is left out of a children page's stats, not of its names
    // (READ on the parent reveals names, as in ZooKeeper).
    let (_, page) = get(&s, "children?path=/", "");
    assert!(page["children"].as_array().unwrap().iter().any(|c| c["name"] == "secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_every_change_and_off_serves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("ro"), &["--console", "read-only"]);
    let c = s.connect();
    c.create("/kept", "k", &CreateOptions::default()).await.unwrap();
    let (_, info) = get(&s, "info", "");
    assert_eq!(info["mode"], "read-only");
    assert!(info["read_only_reason"].as_str().unwrap().contains("--console read-only"));
    for (method, path, body) in [
        ("POST", "node", json!({"path": "/new"})),
        ("PUT", "node", json!({"path": "/kept", "data": ""})),
        ("DELETE", "node?path=/kept", Value::Null),
        ("DELETE", "node?path=/kept&recursive=true", Value::Null),
    ] {
        let (code, e) = call(&s, method, path, JSON, body);
        assert_eq!((code, e["code"].as_str()), (405, Some("READ_ONLY")), "{method} {path}");
    }
    assert_eq!(data_of(&c, "/kept").await, ("k".into(), 0));
    assert!(c.exists("/new").await.unwrap().is_none());
    assert_eq!(get(&s, "node?path=/kept", "").0, 200);
    let (code, page) = http(&s.admin, "GET", "/ui/", "", "");
    assert_eq!(code, 200);
    assert!(page.contains("<html"), "{page}");

    let off = Server::start(&dir.path().join("off"), &["--console", "off"]);
    assert_eq!(http(&off.admin, "GET", "/ui/", "", "").0, 404);
    assert_eq!(http(&off.admin, "GET", "/ui/api/info", "", "").0, 404);
    assert_eq!(http(&off.admin, "GET", "/health", "", "").0, 200);
}

/// The live view's stream, read on a thread: its `event:` names with their data.
fn subscribe(admin: &str, query: &str) -> mpsc::Receiver<(String, Value)> {
    let mut sock = std::net::TcpStream::connect(admin).unwrap();
    write!(sock, "GET /ui/api/watch?{query} HTTP/1.1\r\nHost: {admin}\r\n\r\n").unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(sock).lines() {
            let Ok(line) = line else { return };
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ")
                && tx.send((event.clone(), serde_json::from_str(data).unwrap())).is_err()
            {
                return;
            }
        }
    });
    rx
}

fn next(rx: &mpsc::Receiver<(String, Value)>, name: &str) -> Value {
    loop {
        let (event, data) = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("no {name} event"));
        if event == name {
            return data;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_streams_changes_and_resumes_by_zxid() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let c = s.connect();
    c.create("/live", "0", &CreateOptions::default()).await.unwrap();
    let rx = subscribe(&s.admin, "node=/live&children=/live");
    next(&rx, "ready");
    let stat = c.set("/live", "1", None).await.unwrap();
    let change = next(&rx, "change");
    assert_eq!(change["zxid"], stat.mzxid);
    assert_eq!(change["events"][0]["type"], "NODE_DATA_CHANGED");
    assert_eq!(change["events"][0]["stat"]["version"], 1);
    c.create("/live/kid", "", &CreateOptions::default()).await.unwrap();
    let change = next(&rx, "change");
    assert_eq!(change["events"][0]["type"], "NODE_CHILDREN_CHANGED");
    drop(rx);

    // Changes made while no page listened are replayed from the zxid it last saw + 1.
    let missed = c.set("/live", "2", None).await.unwrap();
    c.set("/live", "3", None).await.unwrap();
    let rx = subscribe(&s.admin, &format!("node=/live&start_zxid={}", missed.mzxid));
    let first = next(&rx, "change");
    assert_eq!(first["zxid"], missed.mzxid);
    assert_eq!(next(&rx, "change")["events"][0]["stat"]["version"], 3);

    // A watch the caller may not hold is cancelled on the stream with the reason.
    let alice = Client::builder(&s.client).digest_auth("alice", "pw").build().unwrap();
    let only_alice = vec![acl::entry("digest", &acl::digest("alice", "pw"), perms::ALL)];
    alice.create("/hidden", "", &CreateOptions { acl: only_alice, ..Default::default() }).await.unwrap();
    let rx = subscribe(&s.admin, "node=/hidden&children=bad-path");
    let mut codes = vec![next(&rx, "canceled")["code"].clone(), next(&rx, "canceled")["code"].clone()];
    codes.sort_by_key(|c| c.to_string());
    assert_eq!(codes, vec![json!("BAD_ARGUMENTS"), json!("NO_AUTH")]);
    let (code, e) = get(&s, "watch", "");
    assert_eq!(code, 400, "{e}");
    let (code, e) = get(&s, "watch?node=/live&start_zxid=soon", "");
    assert_eq!(code, 400, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_show_holders_waiters_and_fencing_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (a, b) = (s.connect(), s.connect());
    a.open_session(Duration::from_secs(10)).await.unwrap();
    b.open_session(Duration::from_secs(10)).await.unwrap();
    let held = a.acquire(&LockRequest::mutex("/locks/db")).await.unwrap();
    let waiter = tokio::spawn(async move { b.acquire(&LockRequest::mutex("/locks/db")).await });
    crate::harness::eventually(Duration::from_secs(5), "the waiter queues", async || {
        get(&s, "locks", "").1["locks"][0]["entries"].as_array().is_some_and(|e| e.len() == 2)
    })
    .await;
    let (code, locks) = get(&s, "locks", "");
    assert_eq!(code, 200);
    let lock = &locks["locks"][0];
    assert_eq!(lock["path"], "/locks/db");
    assert_eq!(lock["kind"], "mutex");
    assert_eq!(lock["entries"][0]["granted"], true);
    assert_eq!(lock["entries"][0]["token"], held.token.to_string());
    assert_eq!(lock["entries"][0]["session_id"], format!("0x{:x}", held.session));
    assert_eq!(lock["entries"][1]["granted"], false);
    a.release(&held.nodes[0]).await.unwrap();
    let next = waiter.await.unwrap().unwrap();
    assert!(next.token > held.token);
    let (_, sessions) = get(&s, "sessions", "");
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 2, "{sessions}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_console_answers_only_local_names_and_caps_live_views() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    // DNS rebinding: another site's name pointed at 127.0.0.1.
    let (code, text) = raw_request(&s.admin, "GET /ui/api/info", "attacker.example");
    assert_eq!(code, 403, "{text}");
    let (code, _) = raw_request(&s.admin, "POST /ui/api/node", "evil.test:80");
    assert_eq!(code, 403);
    assert_eq!(raw_request(&s.admin, "GET /ui/api/info", "localhost:7381").0, 200);
    assert_eq!(raw_request(&s.admin, "GET /ui/api/info", "LOCALHOST.").0, 200);
    assert_eq!(raw_request(&s.admin, "GET /ui/api/info", "[::1]:7381").0, 200);
    assert_eq!(get(&s, "info", "").0, 200);

    // Live views are capped: each holds a watch stream the gRPC clients share.
    let c = s.connect();
    c.create("/cap", "", &CreateOptions::default()).await.unwrap();
    let open: Vec<_> = (0..64).map(|_| subscribe(&s.admin, "node=/cap")).collect();
    for rx in &open {
        next(rx, "ready");
    }
    let (code, e) = get(&s, "watch?node=/cap", "");
    assert_eq!((code, e["code"].as_str()), (429, Some("TOO_MANY_REQUESTS")), "{e}");
    // Gone views free their places once the server writes to them and finds them closed.
    drop(open);
    crate::harness::eventually(Duration::from_secs(20), "closed views free their places", async || {
        c.set("/cap", "tick", None).await.unwrap();
        let rx = subscribe(&s.admin, "node=/cap");
        matches!(rx.recv_timeout(Duration::from_secs(2)), Ok((e, _)) if e == "ready")
    })
    .await;
}

/// A request with the given first line and Host header: (status, raw answer).
fn raw_request(addr: &str, line: &str, host: &str) -> (u16, String) {
    use std::io::Read;
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    write!(sock, "{line} HTTP/1.1\r\nHost: {host}\r\n{JSON}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}")
        .unwrap();
    let mut text = String::new();
    sock.read_to_string(&mut text).unwrap();
    (text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), text)
}
