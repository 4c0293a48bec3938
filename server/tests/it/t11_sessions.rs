//! Sessions: ephemerals go when their session closes or expires; a live session can be
//! resumed from another client with its id and secret.

use std::time::Duration;

use bytes::Bytes;
use grove_client::proto::sessions_client::SessionsClient;
use grove_client::proto::{ErrorCode, OpenSessionRequest};
use grove_client::{Client, CreateMode, CreateOptions, Error, WatchKind, WatchMessage, WatchSpec};

use crate::harness::{Server, eventually};

const FAST_SESSIONS: &[&str] = &["--min-session-timeout-ms", "300", "--max-session-timeout-ms", "5000"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_session_deletes_its_ephemerals_and_fires_their_watches() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), FAST_SESSIONS);
    let observer = s.connect();
    let owner = s.connect();
    owner.open_session(Duration::from_secs(5)).await.unwrap();
    owner.create("/e", "x", &CreateOptions::mode(CreateMode::Ephemeral)).await.unwrap();
    let (stat, zxid) = observer.exists_at("/e", grove_client::Consistency::Linearizable).await.unwrap();
    assert_eq!(stat.unwrap().ephemeral_owner, owner.session().unwrap().id);
    let mut w = observer.watch_stream().await.unwrap();
    w.watch(WatchSpec::new("/e", WatchKind::Node).from_zxid(zxid + 1)).await.unwrap();
    assert!(matches!(w.next().await.unwrap(), Some(WatchMessage::Created { .. })));
    owner.close_session().await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), w.next()).await.unwrap().unwrap();
    match msg {
        Some(WatchMessage::Events { events, .. }) => {
            assert_eq!(events[0].kind, grove_client::EventType::NodeDeleted);
            assert_eq!(events[0].path, "/e");
        }
        m => panic!("{m:?}"),
    }
    assert_eq!(observer.exists("/e").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_session_expires_and_takes_its_ephemerals() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), FAST_SESSIONS);
    let c = s.connect();
    // Open a session by hand and never keep it alive.
    let mut raw = SessionsClient::connect(format!("http://{}", s.client)).await.unwrap();
    let opened = raw
        .open(OpenSessionRequest { timeout_ms: 500, session_id: 0, secret: Bytes::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(opened.timeout_ms, 500);
    let owner = Client::connect(&s.client).unwrap();
    owner.resume_session(opened.session_id, opened.secret.clone()).await.unwrap();
    owner.create("/gone", "", &CreateOptions::mode(CreateMode::Ephemeral)).await.unwrap();
    drop(owner); // stops its keepalives
    eventually(Duration::from_secs(10), "the ephemeral to expire", async || c.exists("/gone").await.unwrap().is_none())
        .await;
    // Resuming the expired session is refused with SESSION_EXPIRED.
    let again =
        raw.open(OpenSessionRequest { timeout_ms: 0, session_id: opened.session_id, secret: opened.secret }).await;
    let st = again.unwrap_err();
    assert_eq!(grove_client::error::decode_detail(&st).unwrap().code(), ErrorCode::SessionExpired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_session_outlives_its_timeout_and_can_be_resumed_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), FAST_SESSIONS);
    let a = s.connect();
    let session = a.open_session(Duration::from_millis(600)).await.unwrap();
    a.create("/keep", "", &CreateOptions::mode(CreateMode::Ephemeral)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(a.exists("/keep").await.unwrap().is_some(), "keepalives hold the session");
    // Another client takes the session over with its id and secret.
    let b = s.connect();
    let resumed = b.resume_session(session.id, session.secret.clone()).await.unwrap();
    assert_eq!(resumed.id, session.id);
    assert_eq!(b.ephemerals("/").await.unwrap(), vec!["/keep"]);
    // A wrong secret is refused, and tells which code.
    let c = s.connect();
    let err = c.resume_session(session.id, Bytes::from_static(&[0; 16])).await.unwrap_err();
    assert!(matches!(err, Error::AuthFailed { .. }), "{err}");
    let err = c.resume_session(987654, Bytes::from_static(&[0; 16])).await.unwrap_err();
    assert!(matches!(err, Error::UnknownSession { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_timeouts_are_negotiated_into_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), FAST_SESSIONS);
    let c = s.connect();
    assert_eq!(c.open_session(Duration::from_millis(1)).await.unwrap().timeout, Duration::from_millis(300));
    let d = s.connect();
    assert_eq!(d.open_session(Duration::from_secs(600)).await.unwrap().timeout, Duration::from_secs(5));
}
