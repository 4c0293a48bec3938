//! A watch stream's outgoing queue: bounded in messages and in bytes, with room kept for
//! control messages, and the slow-consumer rule.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::StreamItem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Push {
    Event,
    Control,
}

/// About how much memory a message holds.
fn item_bytes(item: &StreamItem) -> usize {
    match item {
        StreamItem::Events { events, include_data, .. } => {
            events.iter().map(|e| 96 + e.path.len() + if *include_data { e.data.len() } else { 0 }).sum::<usize>()
        }
        StreamItem::Canceled { reason, .. } => 64 + reason.len(),
        _ => 64,
    }
}

/// A stream's outgoing queue.
pub struct StreamQueue {
    pub(super) state: Mutex<QueueState>,
    /// Something was queued (or the queue closed).
    notify: Notify,
    /// Something was taken: a replay waiting for room may go on.
    room: Notify,
    pub(super) capacity: usize,
    pub(super) capacity_bytes: usize,
}

pub(super) struct QueueState {
    pub(super) items: VecDeque<(StreamItem, usize)>,
    pub(super) bytes: usize,
    closed: bool,
}

impl StreamQueue {
    pub(super) fn new(capacity: usize, capacity_bytes: usize) -> Self {
        StreamQueue {
            state: Mutex::new(QueueState { items: VecDeque::new(), bytes: 0, closed: false }),
            notify: Notify::new(),
            room: Notify::new(),
            capacity,
            capacity_bytes,
        }
    }

    /// Queues an item unless the queue is over its limit for that kind of item. Events
    /// stop at the capacity (messages, or bytes; one message always fits an empty queue);
    /// control messages (created, cancelled, progress...) get as much again, so that a
    /// cancel can still follow a full queue of events.
    pub(super) fn push(&self, item: StreamItem, kind: Push) -> bool {
        self.offer(item, kind).is_ok()
    }

    /// `push`, giving a refused event back (`Some`) when the queue is only full, not closed.
    pub(super) fn offer(&self, item: StreamItem, kind: Push) -> Result<(), Option<StreamItem>> {
        let size = item_bytes(&item);
        let mut st = self.state.lock().unwrap();
        if st.closed {
            return Err(None);
        }
        let (count, bytes) = match kind {
            Push::Event => (self.capacity, self.capacity_bytes),
            Push::Control => (2 * self.capacity, 2 * self.capacity_bytes),
        };
        if !st.items.is_empty() && (st.items.len() >= count || st.bytes + size > bytes) {
            if kind == Push::Control {
                // A client that sends requests but never reads: no more memory for it.
                let reason = format!("more than {count} messages are waiting to be read on this watch stream");
                st.items.push_back((StreamItem::Terminated { reason }, 0));
                st.closed = true;
                drop(st);
                self.notify.notify_one();
                return Err(None);
            }
            return Err(Some(item));
        }
        st.bytes += size;
        st.items.push_back((item, size));
        drop(st);
        self.notify.notify_one();
        Ok(())
    }

    /// Waits until the queue is at most half full (in messages and in bytes), or closed
    /// (false): how a replay is paced by its consumer. Half, so that live control messages
    /// and the events of other watches keep room while a long replay runs.
    pub(super) async fn wait_room(&self, item: &StreamItem) -> bool {
        let size = item_bytes(item);
        loop {
            let room = self.room.notified();
            {
                let st = self.state.lock().unwrap();
                if st.closed {
                    return false;
                }
                let half = st.items.len() <= self.capacity / 2 && st.bytes + size <= self.capacity_bytes / 2;
                if half || st.items.is_empty() {
                    return true;
                }
            }
            room.await;
        }
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next item, waiting for one; `None` once the stream is closed and drained.
    pub async fn pop(&self) -> Option<StreamItem> {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = self.state.lock().unwrap();
                if let Some((item, size)) = st.items.pop_front() {
                    st.bytes = st.bytes.saturating_sub(size);
                    drop(st);
                    self.room.notify_waiters();
                    return Some(item);
                }
                if st.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    pub(super) fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.notify.notify_one();
        self.room.notify_waiters();
    }
}
