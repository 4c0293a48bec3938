//! Watches: what a watch observes, how events reach it, and the per-stream queues.
//!
//! `hub.rs` matches applied events to watches and keeps the history a resume replays;
//! `queue.rs` is a stream's bounded outgoing queue.

pub mod hub;
pub mod queue;

use std::sync::Arc;

use crate::error::GroveError;
use crate::fsm::acl::Caller;
use crate::fsm::command::Event;

/// What a watch observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    Node,
    Children,
    NodeAndChildren,
    Subtree,
}

#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub watch_id: i64,
    pub path: String,
    pub kind: WatchKind,
    pub one_shot: bool,
    pub start_zxid: u64,
    pub include_data: bool,
    /// Who watches: events about nodes this caller may not read are not sent.
    pub caller: Caller,
}

/// Why a watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelCode {
    /// The client asked.
    Requested,
    /// History no longer reaches back to the requested start.
    Compacted,
    /// The stream's queue filled up.
    SlowConsumer,
}

/// One message for a stream, in the order the client must see them.
#[derive(Debug, Clone)]
pub enum StreamItem {
    Created {
        watch_id: i64,
        zxid: u64,
    },
    Events {
        watch_id: i64,
        zxid: u64,
        include_data: bool,
        events: Vec<Arc<Event>>,
    },
    Canceled {
        watch_id: i64,
        code: CancelCode,
        reason: String,
        /// For COMPACTED: the oldest zxid a resume can start from.
        compact_zxid: u64,
    },
    Progress {
        zxid: u64,
    },
    /// A request on the stream that could not be honoured; the stream goes on.
    Refused {
        watch_id: i64,
        error: GroveError,
    },
    /// The client stopped reading while still sending requests: the stream ends here.
    Terminated {
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Most zxids with events kept for resume.
    pub history_entries: usize,
    /// Most bytes of event data and paths kept for resume.
    pub history_bytes: usize,
    /// Most messages queued for one stream before its watches are cancelled.
    pub queue_capacity: usize,
    /// Most bytes of events queued for one stream before its watches are cancelled.
    pub queue_bytes: usize,
    /// Most watches on one stream.
    pub max_watches_per_stream: usize,
    /// Most watches on all streams together.
    pub max_watches: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            history_entries: 100_000,
            history_bytes: 8 << 20,
            queue_capacity: 10_000,
            queue_bytes: 16 << 20,
            max_watches_per_stream: 10_000,
            max_watches: 1_000_000,
        }
    }
}
