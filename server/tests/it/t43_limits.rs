//! Abuse against a real server, with its limits set low: a connection flood from one
//! address, thousands of watches, thousands of lock waiters, a session-open flood, a
//! request flood from one session, streams nobody reads, oversized messages and metadata.
//! After each: the server is alive, other clients are served, and no data was lost or
//! half-applied. (Malformed requests of every kind are `t13_bad_input`; a slow watch
//! consumer on its own is `t12_watch`.)

use std::time::Duration;

use bytes::Bytes;
use grove_client::proto::nodes_client::NodesClient;
use grove_client::proto::{self as pb, ErrorCode};
use grove_client::{Client, CreateOptions, Error, LockRequest, WatchKind, WatchMessage, WatchSpec};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::harness::{Server, eventually};

const LIMITS: &[&str] = &[
    "--max-connections-per-ip",
    "12",
    "--max-connections",
    "40",
    "--max-sessions",
    "40",
    "--max-watches-per-stream",
    "1000",
    "--max-watches",
    "1500",
    "--max-lock-waiters",
    "30",
    "--max-lock-waiters-per-session",
    "20",
    "--max-session-request-rate",
    "200",
    "--watch-queue",
    "50",
];

/// Nodes written before the abuse, checked after each round: nothing lost or changed.
struct Sentinels {
    client: Client,
}

impl Sentinels {
    async fn write(client: Client) -> Sentinels {
        client.create("/sentinel", "root", &CreateOptions::default()).await.unwrap();
        for i in 0..20 {
            client.create(&format!("/sentinel/n{i}"), format!("value-{i}"), &CreateOptions::default()).await.unwrap();
        }
        Sentinels { client }
    }

    async fn intact(&self, after: &str) {
        let names = self.client.children("/sentinel").await.unwrap_or_else(|e| panic!("after {after}: {e}"));
        assert_eq!(names.len(), 20, "after {after}");
        for i in 0..20 {
            let (data, stat) = self.client.get(&format!("/sentinel/n{i}")).await.unwrap();
            assert_eq!((&data[..], stat.version), (format!("value-{i}").as_bytes(), 0), "after {after}");
        }
        // And the server still takes writes.
        let p = format!("/alive-{}", after.replace(' ', "-"));
        self.client.create(&p, "", &CreateOptions::default()).await.unwrap_or_else(|e| panic!("after {after}: {e}"));
    }
}

async fn channel(s: &Server) -> Channel {
    Endpoint::from_shared(format!("http://{}", s.client)).unwrap().connect().await.unwrap()
}

/// The refusal a limit gives: RESOURCE_EXHAUSTED, the Grove code, a message naming the limit.
fn assert_refused(st: &tonic::Status, code: ErrorCode, names: &str) {
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    let d = grove_client::error::decode_detail(st).expect("error detail");
    assert_eq!(d.code(), code, "{st:?}");
    assert!(st.message().contains(names), "the message names {names}: {}", st.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_and_session_floods() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), LIMITS);
    let sentinels = Sentinels::write(s.connect()).await;

    // One address opens connections until refused: the refused one hears why, and closes.
    let mut open = Vec::new();
    let refused = loop {
        let ch = channel(&s).await;
        let r = NodesClient::new(ch.clone()).get(pb::GetRequest { path: "/".into(), ..Default::default() }).await;
        match r {
            Ok(_) => open.push(ch),
            Err(st) => break st,
        }
        assert!(open.len() <= 12, "the per-address limit holds");
    };
    assert_refused(&refused, ErrorCode::TooManyRequests, "--max-connections-per-ip");
    assert_eq!(grove_client::error::decode_detail(&refused).unwrap().retry_after_ms, 1000);
    let (_, metrics) = s.admin_get("/metrics");
    assert!(metrics.contains("grove_limit_refusals_total{limit=\"connections\"}"), "{metrics}");
    // Established connections are still served.
    NodesClient::new(open[0].clone()).get(pb::GetRequest { path: "/".into(), ..Default::default() }).await.unwrap();
    // Closing some makes room again.
    open.truncate(2);
    eventually(Duration::from_secs(10), "room for a new connection", async || {
        let ch = channel(&s).await;
        NodesClient::new(ch).get(pb::GetRequest { path: "/".into(), ..Default::default() }).await.is_ok()
    })
    .await;
    drop(open);
    sentinels.intact("connection flood").await;

    // A flood of session opens (on one connection) stops at --max-sessions, typed.
    let mut sc = grove_client::proto::sessions_client::SessionsClient::new(channel(&s).await);
    let mut sessions = 0;
    let refused = loop {
        let open = pb::OpenSessionRequest { timeout_ms: 30_000, session_id: 0, secret: Bytes::new() };
        match sc.open(open).await {
            Ok(_) => sessions += 1,
            Err(st) => break st,
        }
        assert!(sessions <= 40);
    };
    assert_eq!(sessions, 40);
    assert_refused(&refused, ErrorCode::TooManyRequests, "--max-sessions");
    // Reads and writes without a session go on.
    sentinels.intact("session flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flood_from_one_session_is_throttled_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--max-session-request-rate", "20"]);
    let sentinels = Sentinels::write(s.connect()).await;
    let flooder = s.connect();
    flooder.open_session(Duration::from_secs(30)).await.unwrap();
    // 300 requests at once: far more than 20 a second however slow this machine is.
    let results = futures::future::join_all((0..300).map(|_| flooder.get("/sentinel"))).await;
    let (mut ok, mut throttled, mut advice) = (0, 0, 0);
    for r in results {
        match r {
            Ok(_) => ok += 1,
            Err(Error::TooMany { retry_after_ms, message }) => {
                throttled += 1;
                advice = advice.max(retry_after_ms);
                assert!(message.contains("--max-session-request-rate"), "{message}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(throttled >= 200, "300 requests at once exceed 20 a second: {throttled} throttled");
    assert!(ok >= 20, "a second's burst goes through: {ok}");
    assert!((1..=1000).contains(&advice), "retry advice in ms: {advice}");
    // Another session is not slowed by the first: its own second's worth goes through.
    let other = s.connect();
    other.open_session(Duration::from_secs(30)).await.unwrap();
    for _ in 0..20 {
        other.get("/sentinel").await.unwrap();
    }
    // Waiting as advised works.
    tokio::time::sleep(Duration::from_millis(advice as u64 + 10)).await;
    flooder.get("/sentinel").await.unwrap();
    sentinels.intact("request flood").await;
}

/// Adds a node watch and returns the server's answer to it.
async fn add(stream: &mut grove_client::WatchStream, path: &str) -> WatchMessage {
    stream.watch(WatchSpec::new(path, WatchKind::Node)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_watches_and_streams_nobody_reads() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), LIMITS);
    let sentinels = Sentinels::write(s.connect()).await;
    let c = s.connect();
    c.create("/w", "", &CreateOptions::default()).await.unwrap();

    // One stream: 1000 watches, then refusals; the stream and its watches go on.
    let mut first = c.watch_stream().await.unwrap();
    let mut created = 0;
    let (code, reason) = loop {
        match add(&mut first, &format!("/w/n{created}")).await {
            WatchMessage::Created { .. } => created += 1,
            WatchMessage::Canceled { code, reason, .. } => break (code, reason),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((created, code), (1000, ErrorCode::TooManyWatches));
    assert!(reason.contains("--max-watches-per-stream"), "{reason}");
    // A second stream meets the server's total.
    let mut second = c.watch_stream().await.unwrap();
    let mut created = 0;
    let reason = loop {
        match add(&mut second, &format!("/w/m{created}")).await {
            WatchMessage::Created { .. } => created += 1,
            WatchMessage::Canceled { code: ErrorCode::TooManyWatches, reason, .. } => break reason,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(created, 500);
    assert!(reason.contains("--max-watches)"), "{reason}");
    // The existing watches still fire.
    c.create("/w/n7", "x", &CreateOptions::default()).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), first.next()).await.unwrap().unwrap().unwrap() {
            WatchMessage::Events { events, .. } => {
                assert_eq!(events[0].path, "/w/n7");
                break;
            }
            WatchMessage::Canceled { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    drop(first);
    drop(second);
    eventually(Duration::from_secs(10), "closed streams' watches are gone", async || {
        c.status().await.unwrap().watch_count == 0
    })
    .await;

    // Streams that are never read, and one that keeps sending requests without reading:
    // their queues are bounded, their watches cancelled, others served.
    let mut unread = Vec::new();
    for _ in 0..8 {
        let (tx, inbound) = crate::harness::slow_watch_stream(&s.client).await;
        tx.send(pb::WatchRequest {
            request: Some(pb::watch_request::Request::Create(pb::WatchCreateRequest {
                path: "/w".into(),
                kind: pb::WatchKind::Subtree as i32,
                include_data: true,
                ..Default::default()
            })),
        })
        .await
        .unwrap();
        unread.push((tx, inbound));
    }
    let spammer = unread[0].0.clone();
    let spam = tokio::spawn(async move {
        for _ in 0..2000 {
            let progress = pb::WatchRequest { request: Some(pb::watch_request::Request::Progress(Default::default())) };
            if spammer.send(progress).await.is_err() {
                return;
            }
        }
    });
    let payload = "p".repeat(4096);
    for i in 0..300 {
        c.create(&format!("/w/unread-{i}"), payload.clone(), &CreateOptions::default()).await.unwrap();
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), spam).await;
    eventually(Duration::from_secs(10), "unread streams' watches are cancelled", async || {
        c.status().await.unwrap().watch_count == 0
    })
    .await;
    assert_eq!(s.admin_get("/health").0, 200);
    sentinels.intact("watch abuse").await;
    drop(unread);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_queueing_lock_waiters_without_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), LIMITS);
    let sentinels = Sentinels::write(s.connect()).await;
    let holder = s.connect();
    holder.open_session(Duration::from_secs(30)).await.unwrap();
    let grant = holder.acquire(&LockRequest::mutex("/l")).await.unwrap();

    // One session queues waiters until its limit.
    let greedy = s.connect();
    greedy.open_session(Duration::from_secs(30)).await.unwrap();
    let mut waiting = Vec::new();
    for i in 0..20 {
        let c = greedy.clone();
        let req = LockRequest::mutex("/l").owner(&format!("w{i}"), false);
        waiting.push(tokio::spawn(async move { c.acquire(&req).await }));
    }
    eventually(Duration::from_secs(10), "20 waiters queued", async || {
        holder.describe_lock("/l").await.unwrap().len() == 21
    })
    .await;
    let err = greedy.acquire(&LockRequest::mutex("/l").owner("one-more", false)).await.unwrap_err();
    assert!(matches!(err, Error::TooMany { .. }), "{err}");
    assert!(err.to_string().contains("--max-lock-waiters-per-session"), "{err}");
    // Others can still queue, up to the server's total.
    let other = s.connect();
    other.open_session(Duration::from_secs(30)).await.unwrap();
    let mut others = Vec::new();
    for i in 0..10 {
        let c = other.clone();
        let req = LockRequest::mutex("/l").owner(&format!("o{i}"), false);
        others.push(tokio::spawn(async move { c.acquire(&req).await }));
    }
    eventually(Duration::from_secs(10), "30 waiters queued", async || {
        holder.describe_lock("/l").await.unwrap().len() == 31
    })
    .await;
    let err = other.acquire(&LockRequest::mutex("/l2")).await.unwrap_err();
    assert!(err.to_string().contains("--max-lock-waiters)"), "{err}");
    // Giving up waiting frees the slots and leaves nothing in the tree.
    for w in &waiting {
        w.abort();
    }
    eventually(Duration::from_secs(10), "aborted waiters withdrawn", async || {
        holder.describe_lock("/l").await.unwrap().len() == 11
    })
    .await;
    let quick = other.acquire(&LockRequest::mutex("/l2").timeout(Some(Duration::from_secs(5)))).await.unwrap();
    other.release(&quick.nodes[0]).await.unwrap();
    // The queue still works: the holder lets go, and one of the others gets it, with a
    // larger token.
    holder.release(&grant.nodes[0]).await.unwrap();
    eventually(Duration::from_secs(10), "the next waiter holds the lock", async || {
        let entries = holder.describe_lock("/l").await.unwrap();
        entries.len() == 10 && entries[0].granted && entries[0].owner.starts_with('o') && entries[0].token > grant.token
    })
    .await;
    for o in &others {
        o.abort();
    }
    sentinels.intact("lock waiters").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), LIMITS);
    let sentinels = Sentinels::write(s.connect()).await;
    let mut n = NodesClient::new(channel(&s).await).max_encoding_message_size(usize::MAX);

    // Far past --max-request-bytes (4 MiB): refused by its length prefix, nothing created.
    for size in [5 << 20, 64 << 20] {
        let r = n
            .create(pb::CreateRequest {
                path: "/big".into(),
                data: Bytes::from(vec![7u8; size]),
                mode: 0,
                ..Default::default()
            })
            .await;
        let st = r.unwrap_err();
        assert!(matches!(st.code(), Code::OutOfRange | Code::ResourceExhausted), "{size}: {st:?}");
        assert!(st.message().contains("too large"), "{}", st.message());
    }
    // Past the data limit but within the request limit: TOO_LARGE.
    let st = n
        .create(pb::CreateRequest { path: "/big".into(), data: Bytes::from(vec![7u8; 2 << 20]), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(grove_client::error::decode_detail(&st).unwrap().code(), ErrorCode::TooLarge);
    // Piles of credentials and huge metadata values.
    let mut req = tonic::Request::new(pb::GetRequest { path: "/".into(), ..Default::default() });
    for i in 0..100 {
        req.metadata_mut().append("grove-auth", format!("digest u{i}:p").parse().unwrap());
    }
    let st = n.get(req).await.unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated, "{st:?}");
    let mut req = tonic::Request::new(pb::GetRequest { path: "/".into(), ..Default::default() });
    req.metadata_mut().insert("grove-auth", format!("digest u:{}", "p".repeat(200_000)).parse().unwrap());
    assert!(n.get(req).await.is_err(), "200 KB of metadata is refused");
    // The server may close the connection that sent it (an HTTP/2 connection error); a new
    // one is served.
    let mut n = NodesClient::new(channel(&s).await);
    n.get(pb::GetRequest { path: "/sentinel".into(), ..Default::default() }).await.unwrap();
    // A path of a megabyte.
    let long = format!("/{}", "a".repeat(1 << 20));
    let st = n.create(pb::CreateRequest { path: long, ..Default::default() }).await.unwrap_err();
    assert!(matches!(st.code(), Code::InvalidArgument | Code::OutOfRange), "{st:?}");
    let fresh = s.connect();
    assert!(fresh.exists("/big").await.unwrap().is_none());
    sentinels.intact("oversized messages").await;
}
