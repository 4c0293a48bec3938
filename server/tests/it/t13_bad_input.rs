//! Every kind of bad request gets its typed error; the server stays up and the tree is
//! unchanged. (Sequence-counter overflow needs 2^31 creates under one parent: it is proven
//! in the state machine's unit tests, `sequence_overflow_is_an_error_that_changes_nothing`.)

use bytes::Bytes;
use grove_client::proto::nodes_client::NodesClient;
use grove_client::proto::sessions_client::SessionsClient;
use grove_client::proto::{self as pb, ErrorCode};
use grove_client::{Client, Consistency, CreateMode, CreateOptions};
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::Server;

fn check<T: std::fmt::Debug>(what: &str, r: Result<tonic::Response<T>, tonic::Status>, code: Code, ecode: ErrorCode) {
    let st = match r {
        Ok(v) => panic!("{what}: expected {code:?}/{ecode:?}, got {v:?}"),
        Err(st) => st,
    };
    assert_eq!(st.code(), code, "{what}: {}", st.message());
    let detail = grove_client::error::decode_detail(&st).unwrap_or_else(|| panic!("{what}: no error detail"));
    assert_eq!(detail.code(), ecode, "{what}: {}", st.message());
    assert_eq!(st.metadata().get("grove-error-code").unwrap().to_str().unwrap(), ecode.as_str_name(), "{what}");
    assert!(!st.message().is_empty(), "{what}: the message names the problem");
}

fn create(path: &str, data: &[u8], mode: i32, ttl_ms: i64) -> pb::CreateRequest {
    pb::CreateRequest {
        path: path.into(),
        data: Bytes::copy_from_slice(data),
        mode,
        ttl_ms,
        create_parents: false,
        acl: vec![],
    }
}

fn with_session<T>(msg: T, id: &str, secret: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("grove-session-id", id.parse().unwrap());
    r.metadata_mut().insert("grove-session-secret", secret.parse().unwrap());
    r
}

/// Every node with its data and stat versions.
async fn dump(c: &Client) -> Vec<(String, Vec<u8>, i32, i32)> {
    let mut out = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let (data, stat) = c.get_with(&p, Consistency::Linearizable).await.unwrap();
        for name in c.children(&p).await.unwrap() {
            stack.push(if p == "/" { format!("/{name}") } else { format!("{p}/{name}") });
        }
        out.push((p, data.to_vec(), stat.version, stat.cversion));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_typed_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &["--max-data-bytes", "1024", "--max-request-bytes", "131072", "--max-multi-ops", "10"],
    );
    let c = s.connect();
    c.create("/base", "b", &CreateOptions::default()).await.unwrap();
    c.create("/base/child", "c", &CreateOptions::default()).await.unwrap();
    let owner = s.connect();
    let session = owner.open_session(std::time::Duration::from_secs(30)).await.unwrap();
    owner.create("/eph", "e", &CreateOptions::mode(CreateMode::Ephemeral)).await.unwrap();
    let before = dump(&c).await;

    let ch = Channel::from_shared(format!("http://{}", s.client)).unwrap().connect().await.unwrap();
    let mut n = NodesClient::new(ch.clone());
    let ia = Code::InvalidArgument;
    let bad = ErrorCode::BadArguments;

    for path in ["a/b", "/a/", "//a", "/a//b", "/a/./b", "/a/..", "/.", "/a\u{1}b", "/a\u{7f}", "", "/\u{e000}"] {
        check(&format!("create {path:?}"), n.create(create(path, b"", 0, 0)).await, ia, bad);
        check(
            &format!("get {path:?}"),
            n.get(pb::GetRequest { path: path.into(), ..Default::default() }).await,
            ia,
            bad,
        );
    }
    check("data over the limit", n.create(create("/big", &[7; 2000], 0, 0)).await, ia, ErrorCode::TooLarge);
    check(
        "set over the limit",
        n.set(pb::SetRequest { path: "/base".into(), data: Bytes::from(vec![1; 2000]), version: None }).await,
        ia,
        ErrorCode::TooLarge,
    );
    let huge = n.create(create("/huge", &vec![1; 200_000], 0, 0)).await;
    assert!(huge.is_err(), "a request over max-request-bytes is refused");
    check(
        "negative version",
        n.set(pb::SetRequest { path: "/base".into(), data: Bytes::new(), version: Some(-5) }).await,
        ia,
        bad,
    );
    check(
        "stale version",
        n.set(pb::SetRequest { path: "/base".into(), data: Bytes::new(), version: Some(9) }).await,
        Code::FailedPrecondition,
        ErrorCode::BadVersion,
    );
    check(
        "delete with stale version",
        n.delete(pb::DeleteRequest { path: "/base/child".into(), version: Some(3) }).await,
        Code::FailedPrecondition,
        ErrorCode::BadVersion,
    );
    check(
        "unknown session",
        n.get(with_session(pb::GetRequest { path: "/base".into(), ..Default::default() }, "999", "00")).await,
        Code::FailedPrecondition,
        ErrorCode::UnknownSession,
    );
    check(
        "malformed session id",
        n.get(with_session(pb::GetRequest { path: "/base".into(), ..Default::default() }, "abc", "00")).await,
        ia,
        bad,
    );
    check(
        "wrong session secret",
        n.get(with_session(
            pb::GetRequest { path: "/base".into(), ..Default::default() },
            &session.id.to_string(),
            "00",
        ))
        .await,
        Code::Unauthenticated,
        ErrorCode::AuthFailed,
    );
    check(
        "child of an ephemeral",
        n.create(create("/eph/c", b"", 0, 0)).await,
        Code::FailedPrecondition,
        ErrorCode::NoChildrenForEphemerals,
    );
    check(
        "delete a non-empty node",
        n.delete(pb::DeleteRequest { path: "/base".into(), version: None }).await,
        Code::FailedPrecondition,
        ErrorCode::NotEmpty,
    );
    check("delete the root", n.delete(pb::DeleteRequest { path: "/".into(), version: None }).await, ia, bad);
    check("unknown create mode", n.create(create("/m", b"", 42, 0)).await, ia, bad);
    check("negative create mode", n.create(create("/m", b"", -1, 0)).await, ia, bad);
    check(
        "unknown consistency",
        n.get(pb::GetRequest { path: "/base".into(), consistency: 9, min_zxid: 0 }).await,
        ia,
        bad,
    );
    check("ephemeral without a session", n.create(create("/e2", b"", 1, 0)).await, ia, bad);
    check("TTL mode without a TTL", n.create(create("/t", b"", 5, 0)).await, ia, bad);
    check("TTL on a persistent node", n.create(create("/t", b"", 0, 1000)).await, ia, bad);
    check("negative TTL", n.create(create("/t", b"", 6, -3)).await, ia, bad);
    check(
        "missing node",
        n.get(pb::GetRequest { path: "/nope".into(), ..Default::default() }).await,
        Code::NotFound,
        ErrorCode::NoNode,
    );
    check("missing parent", n.create(create("/nope/x", b"", 0, 0)).await, Code::NotFound, ErrorCode::NoNode);
    check("existing node", n.create(create("/base", b"", 0, 0)).await, Code::AlreadyExists, ErrorCode::NodeExists);
    check("empty multi op", n.multi(pb::MultiRequest { ops: vec![pb::Op { op: None }] }).await, ia, bad);
    let many = (0..11)
        .map(|i| pb::Op { op: Some(pb::op::Op::Check(pb::CheckOp { path: format!("/x{i}"), version: None })) })
        .collect();
    check("too many multi ops", n.multi(pb::MultiRequest { ops: many }).await, ia, bad);
    check(
        "GetEphemerals without a session",
        n.get_ephemerals(pb::GetEphemeralsRequest { prefix: "/".into(), ..Default::default() }).await,
        ia,
        bad,
    );
    check(
        "children of a missing node",
        n.get_children(pb::GetChildrenRequest { path: "/nope".into(), ..Default::default() }).await,
        Code::NotFound,
        ErrorCode::NoNode,
    );
    let mut sessions = SessionsClient::new(ch.clone());
    check(
        "negative session timeout",
        sessions.open(pb::OpenSessionRequest { timeout_ms: -1, session_id: 0, secret: Bytes::new() }).await,
        ia,
        bad,
    );
    check(
        "close an unknown session",
        sessions.close(pb::CloseSessionRequest { session_id: 4242, secret: Bytes::new() }).await,
        Code::FailedPrecondition,
        ErrorCode::UnknownSession,
    );

    // A failed multi is all-or-nothing with ZooKeeper's per-operation results.
    let r = n
        .multi(pb::MultiRequest {
            ops: vec![
                pb::Op { op: Some(pb::op::Op::Create(create("/m1", b"1", 0, 0))) },
                pb::Op {
                    op: Some(pb::op::Op::Set(pb::SetRequest {
                        path: "/base".into(),
                        data: Bytes::from_static(b"z"),
                        version: Some(0),
                    })),
                },
                pb::Op { op: Some(pb::op::Op::Delete(pb::DeleteRequest { path: "/base".into(), version: None })) },
                pb::Op { op: Some(pb::op::Op::Create(create("/m2", b"2", 0, 0))) },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.succeeded);
    let codes: Vec<ErrorCode> = r.results.iter().map(|r| r.code()).collect();
    assert_eq!(codes, vec![ErrorCode::Ok, ErrorCode::Ok, ErrorCode::NotEmpty, ErrorCode::RuntimeInconsistency]);

    // An unknown watch kind is refused on the stream, which goes on.
    let mut w = c.watch_stream().await.unwrap();
    let mut raw = grove_client::proto::watch_client::WatchClient::new(ch);
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let mut inbound = raw.watch(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    tx.send(pb::WatchRequest {
        request: Some(pb::watch_request::Request::Create(pb::WatchCreateRequest {
            watch_id: 1,
            path: "/base".into(),
            kind: 9,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let refused = inbound.message().await.unwrap().unwrap();
    assert!(refused.canceled);
    assert_eq!(refused.cancel_code(), ErrorCode::BadArguments);
    w.watch(grove_client::WatchSpec::new("/base", grove_client::WatchKind::Node)).await.unwrap();

    // Nothing changed, and the server still serves.
    assert_eq!(dump(&c).await, before);
    assert_eq!(s.admin_get("/health").0, 200);
    c.create("/after", "ok", &CreateOptions::default()).await.unwrap();
}
