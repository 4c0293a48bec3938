//! Watch streams: exact resume, compaction, slow consumers, progress.

use std::time::Duration;

use grove_client::proto::{self as pb, ErrorCode};
use grove_client::{CreateOptions, WatchKind, WatchMessage, WatchSpec, WatchStream};
use tokio_stream::StreamExt;

use crate::harness::Server;

async fn next(w: &mut WatchStream) -> WatchMessage {
    tokio::time::timeout(Duration::from_secs(10), w.next()).await.expect("a watch message in time").unwrap().unwrap()
}

/// Reads event zxids until `until` is seen.
async fn collect_until(w: &mut WatchStream, until: u64, seen: &mut Vec<u64>) {
    while seen.last().copied().unwrap_or(0) < until {
        if let WatchMessage::Events { events, .. } = next(w).await {
            seen.extend(events.iter().map(|e| e.zxid));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_reconnect_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let writer = s.connect();
    writer.create("/w", "0", &CreateOptions::default()).await.unwrap();
    let reader = s.connect();
    let (_, _, start) = reader.get_at("/w", grove_client::Consistency::Linearizable).await.unwrap();
    let mut w = reader.watch_stream().await.unwrap();
    w.watch(WatchSpec::new("/w", WatchKind::Subtree).from_zxid(start + 1)).await.unwrap();

    // The writer's acknowledged zxids are the truth.
    let mut written = Vec::new();
    for i in 0..30 {
        written.push(writer.set("/w", format!("{i}"), None).await.unwrap().mzxid);
    }
    let mut seen = Vec::new();
    collect_until(&mut w, written[9], &mut seen).await;
    // Disconnect mid-way; the writer goes on meanwhile.
    drop(w);
    for i in 30..60 {
        written.push(writer.set("/w", format!("{i}"), None).await.unwrap().mzxid);
    }
    let last = *seen.last().unwrap();
    let mut w = reader.watch_stream().await.unwrap();
    w.watch(WatchSpec::new("/w", WatchKind::Subtree).from_zxid(last + 1)).await.unwrap();
    for i in 60..80 {
        written.push(writer.set("/w", format!("{i}"), None).await.unwrap().mzxid);
    }
    collect_until(&mut w, *written.last().unwrap(), &mut seen).await;
    assert_eq!(seen, written, "every write seen exactly once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_before_the_history_window_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--watch-history-entries", "5"]);
    let c = s.connect();
    c.create("/h", "", &CreateOptions::default()).await.unwrap();
    for i in 0..20 {
        c.set("/h", format!("{i}"), None).await.unwrap();
    }
    let mut w = c.watch_stream().await.unwrap();
    let id = w.watch(WatchSpec::new("/h", WatchKind::Node).from_zxid(3)).await.unwrap();
    assert!(matches!(next(&mut w).await, WatchMessage::Created { .. }));
    match next(&mut w).await {
        WatchMessage::Canceled { watch_id, code, compact_zxid, .. } => {
            assert_eq!(watch_id, id);
            assert_eq!(code, ErrorCode::Compacted);
            assert!(compact_zxid > 3, "names the oldest zxid available: {compact_zxid}");
            // From that zxid, the resume works and replays the 5 newest changes.
            let id2 = w.watch(WatchSpec::new("/h", WatchKind::Node).from_zxid(compact_zxid)).await.unwrap();
            assert!(matches!(next(&mut w).await, WatchMessage::Created { watch_id, .. } if watch_id == id2));
            let mut zxids = Vec::new();
            while zxids.len() < 5 {
                if let WatchMessage::Events { events, .. } = next(&mut w).await {
                    zxids.extend(events.iter().map(|e| e.zxid));
                }
            }
            assert_eq!(zxids[0], compact_zxid);
        }
        m => panic!("expected COMPACTED, got {m:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cancelled_explicitly_and_the_server_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--watch-queue", "20"]);
    let c = s.connect();
    c.create("/slow", "", &CreateOptions::default()).await.unwrap();
    // A raw stream with tiny HTTP/2 windows, so the server's sends back up quickly.
    let (tx, mut inbound) = crate::harness::slow_watch_stream(&s.client).await;
    tx.send(pb::WatchRequest {
        request: Some(pb::watch_request::Request::Create(pb::WatchCreateRequest {
            watch_id: 1,
            path: "/slow".into(),
            kind: pb::WatchKind::Node as i32,
            include_data: true,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let first = inbound.next().await.unwrap().unwrap();
    assert!(first.created);
    // Not reading while 300 changes of 2 KiB each happen. Their zxids, since other entries
    // (the server's own registration, on a loaded machine) may come between them.
    let payload = "x".repeat(2048);
    let mut sets = Vec::new();
    for _ in 0..300 {
        sets.push(c.set("/slow", payload.clone(), None).await.unwrap().mzxid);
    }
    // Other clients are served meanwhile.
    assert!(s.connect().get("/slow").await.is_ok());
    // Now read: the sets' events in order without gaps, then an explicit SLOW_CONSUMER cancel.
    let mut received = 0;
    let cancel = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), inbound.next()).await.unwrap().unwrap().unwrap();
        if msg.canceled {
            break msg;
        }
        for e in &msg.events {
            assert_eq!(Some(&e.zxid), sets.get(received), "event {received}: a gap, a duplicate or out of order");
            received += 1;
        }
    };
    assert_eq!(cancel.cancel_code(), ErrorCode::SlowConsumer);
    assert!(received > 0 && received < sets.len(), "{received} of {} events before the cancel", sets.len());
    let last_zxid = sets[received - 1];
    // The same stream still serves a new watch, resumed right after the last event.
    tx.send(pb::WatchRequest {
        request: Some(pb::watch_request::Request::Create(pb::WatchCreateRequest {
            watch_id: 2,
            path: "/slow".into(),
            kind: pb::WatchKind::Node as i32,
            start_zxid: last_zxid + 1,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let created = tokio::time::timeout(Duration::from_secs(5), inbound.next()).await.unwrap().unwrap().unwrap();
    assert!(created.created && created.watch_id == 2);
    let resumed = tokio::time::timeout(Duration::from_secs(5), inbound.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(resumed.events[0].zxid, sets[received], "the resume starts at the first event not received");
    let (code, body) = s.admin_get("/health");
    assert_eq!((code, body.trim()), (200, "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_kinds_and_progress() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--watch-progress-ms", "200"]);
    let c = s.connect();
    let mut w = c.watch_stream().await.unwrap();
    let node = w.watch(WatchSpec::new("/k", WatchKind::Node).one_shot()).await.unwrap();
    let kids = w.watch(WatchSpec::new("/k", WatchKind::Children)).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(next(&mut w).await, WatchMessage::Created { .. }));
    }
    c.create("/k", "", &CreateOptions::default()).await.unwrap();
    c.create("/k/a", "", &CreateOptions::default()).await.unwrap();
    c.set("/k", "changed", None).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        match next(&mut w).await {
            WatchMessage::Events { watch_id, events, .. } => got.push((watch_id, events[0].kind)),
            WatchMessage::Progress { .. } => {}
            m => panic!("{m:?}"),
        }
    }
    use grove_client::EventType::*;
    // The one-shot node watch saw only the creation, not the later data change.
    assert_eq!(got, vec![(node, NodeCreated), (kids, NodeChildrenChanged)]);
    // An idle stream gets progress notifications with the current zxid.
    let zxid = c.sync("/").await.unwrap();
    loop {
        if let WatchMessage::Progress { zxid: z } = next(&mut w).await {
            assert!(z >= zxid);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_watch_requests_are_refused_on_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let c = s.connect();
    let mut w = c.watch_stream().await.unwrap();
    w.watch_with_id(5, WatchSpec::new("relative", WatchKind::Node)).await.unwrap();
    match next(&mut w).await {
        WatchMessage::Canceled { watch_id, code, .. } => assert_eq!((watch_id, code), (5, ErrorCode::BadArguments)),
        m => panic!("{m:?}"),
    }
    w.cancel(42).await.unwrap();
    assert!(matches!(next(&mut w).await, WatchMessage::Canceled { code: ErrorCode::BadArguments, .. }));
    // The stream still works.
    w.watch(WatchSpec::new("/", WatchKind::Children)).await.unwrap();
    assert!(matches!(next(&mut w).await, WatchMessage::Created { .. }));
}
