//! `grove.v1.Watch`: one bidirectional stream, many watches.
//!
//! Requests (create, cancel, progress) are read by a task that feeds the watch hub; the
//! response stream drains the stream's queue in the hub. The response stream stays open
//! after the client half-closes its side (grpcurl sends its requests, then waits for
//! events); it ends when the client goes away, which drops it and closes the hub stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use futures::future::BoxFuture;
use grove_proto::v1 as pb;
use grove_proto::v1::watch_server::Watch;
use tonic::{Request, Response, Status, Streaming};

use super::{caller_session, convert};
use crate::error::GroveError;
use crate::fsm::acl::{Caller, READ};
use crate::fsm::path;
use crate::node::Node;
use crate::node::watches::queue::StreamQueue;
use crate::node::watches::{CancelCode, StreamItem, WatchKind, WatchSpec};
use tracing::Instrument;

pub struct WatchService {
    pub node: Arc<Node>,
}

fn spec(r: pb::WatchCreateRequest, caller: Caller) -> Result<WatchSpec, GroveError> {
    path::validate(&r.path)?;
    let kind = match pb::WatchKind::try_from(r.kind) {
        Ok(pb::WatchKind::Node) => WatchKind::Node,
        Ok(pb::WatchKind::Children) => WatchKind::Children,
        Ok(pb::WatchKind::NodeAndChildren) => WatchKind::NodeAndChildren,
        Ok(pb::WatchKind::Subtree) => WatchKind::Subtree,
        Ok(pb::WatchKind::Unspecified) | Err(_) => {
            return Err(GroveError::bad_args(&r.path, format!("unknown watch kind {}", r.kind)));
        }
    };
    if r.watch_id < 0 {
        return Err(GroveError::bad_args(&r.path, "watch ids are positive (0 lets the server choose)"));
    }
    Ok(WatchSpec {
        watch_id: r.watch_id,
        path: r.path,
        kind,
        one_shot: r.one_shot,
        start_zxid: r.start_zxid,
        include_data: r.include_data,
        caller,
    })
}

/// A request the hub refused, reported on the stream without ending it.
fn refused(node: &Node, watch_id: i64, e: &GroveError) -> pb::WatchResponse {
    pb::WatchResponse {
        header: convert::header(node.header(node.applied_zxid())),
        watch_id,
        canceled: true,
        cancel_code: super::errors::codes(e).1 as i32,
        cancel_reason: e.to_string(),
        ..Default::default()
    }
}

fn response(node: &Node, item: StreamItem) -> pb::WatchResponse {
    match item {
        StreamItem::Created { watch_id, zxid } => pb::WatchResponse {
            header: convert::header(node.header(zxid)),
            watch_id,
            created: true,
            ..Default::default()
        },
        StreamItem::Events { watch_id, zxid, include_data, events } => pb::WatchResponse {
            header: convert::header(node.header(zxid)),
            watch_id,
            events: events.iter().map(|e| convert::event(e, zxid, include_data)).collect(),
            ..Default::default()
        },
        StreamItem::Canceled { watch_id, code, reason, compact_zxid } => pb::WatchResponse {
            header: convert::header(node.header(node.applied_zxid())),
            watch_id,
            canceled: true,
            cancel_code: match code {
                CancelCode::Requested => pb::ErrorCode::Ok,
                CancelCode::Compacted => pb::ErrorCode::Compacted,
                CancelCode::SlowConsumer => pb::ErrorCode::SlowConsumer,
            } as i32,
            cancel_reason: reason,
            compact_zxid,
            ..Default::default()
        },
        StreamItem::Refused { watch_id, error } => refused(node, watch_id, &error),
        StreamItem::Terminated { .. } => unreachable!("handled by the stream"),
        StreamItem::Progress { zxid } => {
            pb::WatchResponse { header: convert::header(node.header(zxid)), progress: true, ..Default::default() }
        }
    }
}

/// The response stream: pops the hub queue; closes the hub stream when dropped.
struct Outbound {
    node: Arc<Node>,
    stream: u64,
    next: BoxFuture<'static, Option<StreamItem>>,
    queue: Arc<StreamQueue>,
}

impl Outbound {
    fn pop(queue: Arc<StreamQueue>) -> BoxFuture<'static, Option<StreamItem>> {
        Box::pin(async move { queue.pop().await })
    }
}

impl Stream for Outbound {
    type Item = Result<pb::WatchResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.next.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(StreamItem::Terminated { reason })) => {
                let e = GroveError::TooMany { limit: crate::error::Limit::Watches, message: reason, retry_after_ms: 0 };
                Poll::Ready(Some(Err(super::errors::to_status(&e))))
            }
            Poll::Ready(Some(item)) => {
                let q = self.queue.clone();
                self.next = Outbound::pop(q);
                Poll::Ready(Some(Ok(response(&self.node, item))))
            }
        }
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        self.node.hub.close_stream(self.stream);
    }
}

/// Creates one watch on a hub stream. READ on the node if it exists (a watch on a missing
/// node waits for its creation, as ZooKeeper's exists watch does), checked once as in
/// ZooKeeper: a later ACL change does not cancel a watch. Beyond ZooKeeper, the hub also
/// filters every event by its node's ACL, so a subtree watch never carries nodes the
/// watcher may not read.
async fn create(node: &Arc<Node>, stream: u64, caller: &Caller, c: pb::WatchCreateRequest) -> Result<(), GroveError> {
    let s = spec(c, caller.clone())?;
    super::auth::check_here(node, caller, &s.path, READ).await?;
    node.hub.create(stream, s).map(|_| ())
}

/// A subscription whose watches are all known up front, opened in-process (the web
/// console's live view): the same checks and hub stream as a Watch call, each refusal
/// reported on the stream as a cancelled watch.
pub(crate) async fn subscribe(
    node: &Arc<Node>,
    caller: Caller,
    creates: Vec<pb::WatchCreateRequest>,
) -> impl Stream<Item = Result<pb::WatchResponse, Status>> + Send + use<> {
    let (stream, queue) = node.hub.open_stream();
    metrics::counter!("grove_watch_streams_total").increment(1);
    // The outbound half first: dropping it (an early return, a gone client) closes the
    // hub stream.
    let out = Outbound { node: node.clone(), stream, next: Outbound::pop(queue.clone()), queue };
    for c in creates {
        let id = c.watch_id;
        if let Err(e) = create(node, stream, &caller, c).await {
            node.hub.refuse(stream, id, e);
        }
    }
    out
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

    async fn watch(&self, req: Request<Streaming<pb::WatchRequest>>) -> Result<Response<Self::WatchStream>, Status> {
        // Watches need read access like reads do; a session, when given, must be valid.
        let session = caller_session(req.metadata(), &self.node).map_err(|e| super::errors::to_status(&e))?;
        // The stream's identities, for the READ check each watch creation makes.
        let caller = super::auth::identities(&req, &self.node.config).map_err(|e| super::errors::to_status(&e))?;
        let node = self.node.clone();
        let (stream, queue) = node.hub.open_stream();
        // The stream's requests are handled in their own task: give it the request span's
        // fields so its log lines name the session and the stream.
        let span =
            tracing::info_span!("watch", session = tracing::field::display(format_args!("0x{session:x}")), stream);
        metrics::counter!("grove_watch_streams_total").increment(1);
        let mut inbound = req.into_inner();
        let reader_node = node.clone();
        tokio::spawn(
            async move {
                use futures::StreamExt;
                while let Some(Ok(msg)) = inbound.next().await {
                    let result = match msg.request {
                        Some(pb::watch_request::Request::Create(c)) => {
                            let id = c.watch_id;
                            create(&reader_node, stream, &caller, c).await.map_err(|e| (id, e))
                        }
                        Some(pb::watch_request::Request::Cancel(c)) => {
                            reader_node.hub.cancel(stream, c.watch_id).map_err(|e| (c.watch_id, e))
                        }
                        Some(pb::watch_request::Request::Progress(_)) => {
                            reader_node.hub.progress(stream, false);
                            Ok(())
                        }
                        None => Err((0, GroveError::bad_args("", "empty watch request"))),
                    };
                    if let Err((id, e)) = result {
                        tracing::debug!(watch_id = id, error = %e, "watch request refused");
                        reader_node.hub.refuse(stream, id, e);
                    }
                }
                tracing::debug!("watch stream's requests ended");
            }
            .instrument(span),
        );
        if let Some(every) = node.config.watch_progress {
            let progress_node = node.clone();
            let weak = Arc::downgrade(&queue);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    // The stream is gone once nobody holds its queue.
                    if weak.upgrade().is_none() {
                        return;
                    }
                    progress_node.hub.progress(stream, true);
                }
            });
        }
        let out = Outbound { node, stream, next: Outbound::pop(queue.clone()), queue };
        Ok(Response::new(Box::pin(out)))
    }
}
