//! Watch streams: one bidirectional stream carrying many watches.

use bytes::Bytes;
use grove_proto::v1 as pb;
use grove_proto::v1::watch_client::WatchClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use std::sync::Arc;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::types::Stat;

pub use pb::{ErrorCode, EventType, WatchKind};

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub path: String,
    pub kind: WatchKind,
    /// Removed after its first event (ZooKeeper's standard watches).
    pub one_shot: bool,
    /// Replay events from this zxid on (0: from now). Resume with the last zxid seen + 1.
    pub start_zxid: u64,
    pub include_data: bool,
}

impl WatchSpec {
    pub fn new(path: &str, kind: WatchKind) -> Self {
        WatchSpec { path: path.to_string(), kind, one_shot: false, start_zxid: 0, include_data: false }
    }

    pub fn one_shot(mut self) -> Self {
        self.one_shot = true;
        self
    }

    pub fn from_zxid(mut self, zxid: u64) -> Self {
        self.start_zxid = zxid;
        self
    }

    pub fn with_data(mut self) -> Self {
        self.include_data = true;
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    pub kind: EventType,
    pub path: String,
    pub zxid: u64,
    pub stat: Stat,
    pub data: Bytes,
}

/// One message of a watch stream.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchMessage {
    Created {
        watch_id: i64,
        zxid: u64,
    },
    /// The events of one zxid for one watch.
    Events {
        watch_id: i64,
        zxid: u64,
        events: Vec<WatchEvent>,
    },
    /// The watch ended: at the client's request (code `Ok`), or `Compacted`,
    /// `SlowConsumer`, `BadArguments`...
    Canceled {
        watch_id: i64,
        code: ErrorCode,
        reason: String,
        compact_zxid: u64,
    },
    /// Every event up to `zxid` has been delivered on this stream.
    Progress {
        zxid: u64,
    },
}

pub struct WatchStream {
    conn: Arc<Connection>,
    tx: mpsc::Sender<pb::WatchRequest>,
    rx: Streaming<pb::WatchResponse>,
    next_id: i64,
}

impl WatchStream {
    pub(crate) async fn open(conn: Arc<Connection>, channel: Channel) -> Result<WatchStream> {
        let (tx, rx) = mpsc::channel(64);
        let mut req = tonic::Request::new(ReceiverStream::new(rx));
        conn.decorate(req.metadata_mut());
        let rx = WatchClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .watch(req)
            .await
            .map_err(|s| Error::from_status(&s))?
            .into_inner();
        Ok(WatchStream { conn, tx, rx, next_id: 1 })
    }

    async fn send(&self, request: pb::watch_request::Request) -> Result<()> {
        self.tx
            .send(pb::WatchRequest { request: Some(request) })
            .await
            .map_err(|_| Error::ConnectionLoss { message: "the watch stream is closed".into() })
    }

    /// Starts a watch; returns its id (chosen here, so it is known before any event).
    pub async fn watch(&mut self, spec: WatchSpec) -> Result<i64> {
        let id = self.next_id;
        self.next_id += 1;
        self.watch_with_id(id, spec).await?;
        Ok(id)
    }

    /// Starts a watch with a given id (unique on this stream).
    pub async fn watch_with_id(&mut self, id: i64, spec: WatchSpec) -> Result<()> {
        self.next_id = self.next_id.max(id + 1);
        self.send(pb::watch_request::Request::Create(pb::WatchCreateRequest {
            watch_id: id,
            path: self.conn.full_path(&spec.path),
            kind: spec.kind as i32,
            one_shot: spec.one_shot,
            start_zxid: spec.start_zxid,
            include_data: spec.include_data,
        }))
        .await
    }

    pub async fn cancel(&mut self, watch_id: i64) -> Result<()> {
        self.send(pb::watch_request::Request::Cancel(pb::WatchCancelRequest { watch_id })).await
    }

    /// Asks for a progress message.
    pub async fn request_progress(&mut self) -> Result<()> {
        self.send(pb::watch_request::Request::Progress(pb::WatchProgressRequest {})).await
    }

    /// The next message; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<WatchMessage>> {
        let Some(r) = self.rx.message().await.map_err(|s| Error::from_status(&s))? else {
            return Ok(None);
        };
        let zxid = r.header.as_ref().map(|h| h.zxid).unwrap_or(0);
        // What a watch delivered counts as seen, like a read's answer: a later read, on any
        // server, reflects at least the state this event (or progress mark) describes.
        if r.progress || !r.events.is_empty() {
            self.conn.saw(&r.header);
        }
        Ok(Some(if r.created {
            WatchMessage::Created { watch_id: r.watch_id, zxid }
        } else if r.canceled {
            WatchMessage::Canceled {
                watch_id: r.watch_id,
                code: r.cancel_code(),
                reason: r.cancel_reason,
                compact_zxid: r.compact_zxid,
            }
        } else if r.progress {
            WatchMessage::Progress { zxid }
        } else {
            WatchMessage::Events {
                watch_id: r.watch_id,
                zxid,
                events: r
                    .events
                    .into_iter()
                    .map(|e| WatchEvent {
                        kind: e.r#type(),
                        path: self.conn.client_path(&e.path),
                        zxid: e.zxid,
                        stat: e.stat.unwrap_or_default(),
                        data: e.data,
                    })
                    .collect(),
            }
        }))
    }
}
