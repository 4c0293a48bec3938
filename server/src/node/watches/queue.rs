//! A watch stream's outgoing queue: bounded, with room for replays and control messages,
//! and the slow-consumer rule.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::StreamItem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Push {
    Event,
    Control,
    Replay,
}

/// A stream's outgoing queue.
pub struct StreamQueue {
    pub(super) state: Mutex<QueueState>,
    notify: Notify,
    pub(super) capacity: usize,
}

pub(super) struct QueueState {
    pub(super) items: VecDeque<StreamItem>,
    /// Extra room granted for replays, whose events are already held by the history.
    allowance: usize,
    closed: bool,
}

impl StreamQueue {
    pub(super) fn new(capacity: usize) -> Self {
        StreamQueue {
            state: Mutex::new(QueueState { items: VecDeque::new(), allowance: 0, closed: false }),
            notify: Notify::new(),
            capacity,
        }
    }

    /// Queues an item unless the queue is over its limit for that kind of item. Events
    /// stop at the capacity; control messages (created, cancelled, progress...) get as much
    /// again, so that a cancel can still follow a full queue of events; replayed events
    /// always fit, each granting itself room (the history already holds them).
    pub(super) fn push(&self, item: StreamItem, kind: Push) -> bool {
        let mut st = self.state.lock().unwrap();
        if st.closed {
            return false;
        }
        let limit = match kind {
            Push::Event => self.capacity + st.allowance,
            Push::Control => 2 * self.capacity + st.allowance,
            Push::Replay => {
                st.allowance += 1;
                usize::MAX
            }
        };
        if st.items.len() >= limit {
            if kind == Push::Control {
                // A client that sends requests but never reads: no more memory for it.
                let reason = format!("more than {limit} messages are waiting to be read on this watch stream");
                st.items.push_back(StreamItem::Terminated { reason });
                st.closed = true;
                drop(st);
                self.notify.notify_one();
            }
            return false;
        }
        st.items.push_back(item);
        drop(st);
        self.notify.notify_one();
        true
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
                if let Some(item) = st.items.pop_front() {
                    if st.items.is_empty() {
                        st.allowance = 0;
                    }
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
    }
}
