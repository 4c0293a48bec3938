//! The watch hub: matches applied events to watches and queues them per stream.
//!
//! Events enter here from the apply path, in zxid order, under one lock; watches are
//! created, replayed from history and registered under the same lock. That single lock is
//! what makes a resume exact: a watch created with `start_zxid` gets the history from
//! there up to the last applied zxid, then every later event, with nothing in between
//! missed or sent twice.
//!
//! History keeps the events of the most recent zxids (bounded by count and bytes).
//! `history_start` is the oldest zxid from which it is complete; a resume from before it
//! is answered with an explicit COMPACTED cancel.
//!
//! Each stream has a bounded queue. A consumer that lets it fill has all its watches
//! cancelled with SLOW_CONSUMER, after the events already queued: it knows exactly the last
//! zxid it received and can resume from the next one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::queue::{Push, StreamQueue};
use super::{CancelCode, HubConfig, StreamItem, WatchKind, WatchSpec};
use crate::error::{GroveError, Limit};
use crate::fsm::acl::READ;
use crate::fsm::command::{Applied, Event, EventKind};
use crate::fsm::path;

struct Watch {
    stream: u64,
    spec: WatchSpec,
}

struct StreamEntry {
    queue: Arc<StreamQueue>,
    watches: HashMap<i64, Arc<Watch>>,
    next_watch_id: i64,
}

struct HistoryEntry {
    zxid: u64,
    events: Vec<Arc<Event>>,
    bytes: usize,
}

struct Hub {
    history: VecDeque<HistoryEntry>,
    history_bytes: usize,
    history_start: u64,
    last_zxid: u64,
    next_stream: u64,
    streams: HashMap<u64, StreamEntry>,
    /// Node, Children and NodeAndChildren watches by path.
    by_path: HashMap<String, Vec<Arc<Watch>>>,
    /// Subtree watches by their root.
    subtree: HashMap<String, Vec<Arc<Watch>>>,
    watch_count: usize,
}

pub struct WatchHub {
    inner: Mutex<Hub>,
    config: HubConfig,
}

fn event_bytes(e: &Event) -> usize {
    e.path.len() + e.data.len() + 128
}

/// Does a watch on `path` of `kind` see this event?
fn matches(kind: WatchKind, watch_path: &str, e: &Event) -> bool {
    match kind {
        WatchKind::Node => e.path == watch_path && e.kind != EventKind::ChildrenChanged,
        WatchKind::Children => {
            e.path == watch_path && matches!(e.kind, EventKind::ChildrenChanged | EventKind::Deleted)
        }
        WatchKind::NodeAndChildren => e.path == watch_path,
        WatchKind::Subtree => e.kind != EventKind::ChildrenChanged && path::is_under(&e.path, watch_path),
    }
}

/// Does this watch see the event: does it match, and may the watcher read the node?
fn sees(spec: &WatchSpec, e: &Event) -> bool {
    matches(spec.kind, &spec.path, e) && spec.caller.may(&e.acl, READ)
}

impl WatchHub {
    /// A hub whose state starts after `applied_zxid`.
    pub fn new(config: HubConfig, applied_zxid: u64) -> Self {
        WatchHub {
            inner: Mutex::new(Hub {
                history: VecDeque::new(),
                history_bytes: 0,
                history_start: applied_zxid + 1,
                last_zxid: applied_zxid,
                next_stream: 1,
                streams: HashMap::new(),
                by_path: HashMap::new(),
                subtree: HashMap::new(),
                watch_count: 0,
            }),
            config,
        }
    }

    pub fn open_stream(&self) -> (u64, Arc<StreamQueue>) {
        let mut hub = self.inner.lock().unwrap();
        let id = hub.next_stream;
        hub.next_stream += 1;
        let queue = Arc::new(StreamQueue::new(self.config.queue_capacity));
        hub.streams.insert(id, StreamEntry { queue: queue.clone(), watches: HashMap::new(), next_watch_id: 1 });
        (id, queue)
    }

    pub fn close_stream(&self, stream: u64) {
        let mut hub = self.inner.lock().unwrap();
        if let Some(entry) = hub.streams.remove(&stream) {
            for w in entry.watches.values() {
                hub.unindex(w);
            }
            entry.queue.close();
        }
    }

    /// Ends every stream (server shutdown).
    pub fn close_all(&self) {
        let streams: Vec<u64> = self.inner.lock().unwrap().streams.keys().copied().collect();
        for s in streams {
            self.close_stream(s);
        }
    }

    /// Creates a watch on a stream; its `Created` message (and any replay) are queued.
    /// Returns the watch id.
    pub fn create(&self, stream: u64, mut spec: WatchSpec) -> Result<i64, GroveError> {
        let mut hub = self.inner.lock().unwrap();
        let hub = &mut *hub;
        let entry = hub.streams.get_mut(&stream).ok_or_else(|| GroveError::internal("watch stream is closed"))?;
        if entry.watches.len() >= self.config.max_watches_per_stream {
            return Err(GroveError::too_many(
                Limit::Watches,
                format!(
                    "too many watches on this stream (limit {}, --max-watches-per-stream); cancel some or open another stream",
                    self.config.max_watches_per_stream
                ),
                0,
            ));
        }
        if hub.watch_count >= self.config.max_watches {
            return Err(GroveError::too_many(
                Limit::Watches,
                format!(
                    "this server holds {} watches, its limit (--max-watches); try another server or later",
                    hub.watch_count
                ),
                1_000,
            ));
        }
        if spec.watch_id == 0 {
            while entry.watches.contains_key(&entry.next_watch_id) {
                entry.next_watch_id += 1;
            }
            spec.watch_id = entry.next_watch_id;
            entry.next_watch_id += 1;
        } else if entry.watches.contains_key(&spec.watch_id) {
            return Err(GroveError::bad_args(
                &spec.path,
                format!("watch id {} is already in use on this stream", spec.watch_id),
            ));
        }
        let queue = entry.queue.clone();
        let id = spec.watch_id;
        if !queue.push(StreamItem::Created { watch_id: id, zxid: hub.last_zxid }, Push::Control) {
            hub.drop_watches(stream);
            return Err(GroveError::too_many(Limit::Watches, "this watch stream is not being read; it was ended", 0));
        }
        if spec.start_zxid > 0 && spec.start_zxid < hub.history_start {
            queue.push(
                StreamItem::Canceled {
                    watch_id: id,
                    code: CancelCode::Compacted,
                    reason: format!(
                        "history starts at zxid {}, after the requested {}; re-read and watch from now",
                        hub.history_start, spec.start_zxid
                    ),
                    compact_zxid: hub.history_start,
                },
                Push::Control,
            );
            return Ok(id);
        }
        let watch = Arc::new(Watch { stream, spec });
        // Replay what history holds from start_zxid on. These events are already held by
        // the history, so the queue is granted room for them.
        if watch.spec.start_zxid > 0 {
            for h in hub.history.iter().filter(|h| h.zxid >= watch.spec.start_zxid) {
                let events: Vec<Arc<Event>> = h.events.iter().filter(|e| sees(&watch.spec, e)).cloned().collect();
                if events.is_empty() {
                    continue;
                }
                queue.push(
                    StreamItem::Events { watch_id: id, zxid: h.zxid, include_data: watch.spec.include_data, events },
                    Push::Replay,
                );
                if watch.spec.one_shot {
                    return Ok(id);
                }
            }
        }
        hub.streams.get_mut(&stream).unwrap().watches.insert(id, watch.clone());
        hub.index(watch);
        Ok(id)
    }

    /// Cancels a watch at the client's request.
    pub fn cancel(&self, stream: u64, watch_id: i64) -> Result<(), GroveError> {
        let mut hub = self.inner.lock().unwrap();
        let entry = hub.streams.get_mut(&stream).ok_or_else(|| GroveError::internal("watch stream is closed"))?;
        let Some(w) = entry.watches.remove(&watch_id) else {
            return Err(GroveError::bad_args("", format!("no watch with id {watch_id} on this stream")));
        };
        let queue = entry.queue.clone();
        hub.unindex(&w);
        queue.push(
            StreamItem::Canceled {
                watch_id,
                code: CancelCode::Requested,
                reason: "canceled by the client".into(),
                compact_zxid: 0,
            },
            Push::Control,
        );
        Ok(())
    }

    /// Queues a progress message: every event up to the returned zxid is queued before it.
    pub fn progress(&self, stream: u64, only_if_idle: bool) {
        let hub = self.inner.lock().unwrap();
        if let Some(entry) = hub.streams.get(&stream)
            && (!only_if_idle || entry.queue.is_empty())
        {
            entry.queue.push(StreamItem::Progress { zxid: hub.last_zxid }, Push::Control);
        }
    }

    /// Reports a refused request on its stream.
    pub fn refuse(&self, stream: u64, watch_id: i64, error: GroveError) {
        let hub = self.inner.lock().unwrap();
        if let Some(entry) = hub.streams.get(&stream) {
            entry.queue.push(StreamItem::Refused { watch_id, error }, Push::Control);
        }
    }

    /// Takes in the events of an applied batch.
    pub fn publish(&self, batch: &[Applied]) {
        let mut hub = self.inner.lock().unwrap();
        for applied in batch {
            if !applied.events.is_empty() {
                let events: Vec<Arc<Event>> = applied.events.iter().cloned().map(Arc::new).collect();
                hub.dispatch(applied.zxid, &events);
                let bytes = events.iter().map(|e| event_bytes(e)).sum();
                hub.history_bytes += bytes;
                hub.history.push_back(HistoryEntry { zxid: applied.zxid, events, bytes });
                while hub.history.len() > self.config.history_entries || hub.history_bytes > self.config.history_bytes {
                    let Some(old) = hub.history.pop_front() else { break };
                    hub.history_bytes -= old.bytes;
                    hub.history_start = old.zxid + 1;
                }
            }
            hub.last_zxid = applied.zxid;
        }
    }

    /// The state was replaced by a snapshot ending at `zxid`: nobody can be told what
    /// changed, so every watch is cancelled as compacted.
    pub fn reset(&self, zxid: u64) {
        let mut hub = self.inner.lock().unwrap();
        hub.history.clear();
        hub.history_bytes = 0;
        hub.history_start = zxid + 1;
        hub.last_zxid = zxid;
        hub.by_path.clear();
        hub.subtree.clear();
        hub.watch_count = 0;
        for entry in hub.streams.values_mut() {
            for (id, _) in entry.watches.drain() {
                entry.queue.push(
                    StreamItem::Canceled {
                        watch_id: id,
                        code: CancelCode::Compacted,
                        reason: "this server installed a snapshot; re-read and watch again".into(),
                        compact_zxid: zxid + 1,
                    },
                    Push::Control,
                );
            }
        }
    }

    pub fn watch_count(&self) -> usize {
        self.inner.lock().unwrap().watch_count
    }

    pub fn stream_count(&self) -> usize {
        self.inner.lock().unwrap().streams.len()
    }

    /// (oldest zxid resumable, last zxid published).
    pub fn history_bounds(&self) -> (u64, u64) {
        let hub = self.inner.lock().unwrap();
        (hub.history_start, hub.last_zxid)
    }
}

impl Hub {
    /// Unregisters every watch of a stream whose queue has ended.
    fn drop_watches(&mut self, stream: u64) {
        let Some(entry) = self.streams.get_mut(&stream) else { return };
        let watches: Vec<_> = entry.watches.drain().map(|(_, w)| w).collect();
        for w in watches {
            self.unindex(&w);
        }
    }

    fn index(&mut self, w: Arc<Watch>) {
        let map = if w.spec.kind == WatchKind::Subtree { &mut self.subtree } else { &mut self.by_path };
        map.entry(w.spec.path.clone()).or_default().push(w);
        self.watch_count += 1;
    }

    fn unindex(&mut self, w: &Arc<Watch>) {
        let map = if w.spec.kind == WatchKind::Subtree { &mut self.subtree } else { &mut self.by_path };
        if let Some(list) = map.get_mut(&w.spec.path) {
            if let Some(i) = list.iter().position(|x| Arc::ptr_eq(x, w)) {
                list.swap_remove(i);
                self.watch_count -= 1;
            }
            if list.is_empty() {
                map.remove(&w.spec.path);
            }
        }
    }

    /// Sends one zxid's events to every watch they match: one message per watch, with its
    /// events in the order they happened.
    fn dispatch(&mut self, zxid: u64, events: &[Arc<Event>]) {
        let mut targets: Vec<(Arc<Watch>, Vec<Arc<Event>>)> = Vec::new();
        let add = |targets: &mut Vec<(Arc<Watch>, Vec<Arc<Event>>)>, w: &Arc<Watch>, e: &Arc<Event>| {
            if zxid < w.spec.start_zxid || !sees(&w.spec, e) {
                return;
            }
            match targets.iter_mut().find(|(t, _)| Arc::ptr_eq(t, w)) {
                Some((_, list)) => list.push(e.clone()),
                None => targets.push((w.clone(), vec![e.clone()])),
            }
        };
        for e in events {
            if let Some(list) = self.by_path.get(&e.path) {
                for w in list {
                    add(&mut targets, w, e);
                }
            }
            if !self.subtree.is_empty() && e.kind != EventKind::ChildrenChanged {
                for anc in path::ancestors(&e.path).chain(std::iter::once(e.path.as_str())) {
                    if let Some(list) = self.subtree.get(anc) {
                        for w in list {
                            add(&mut targets, w, e);
                        }
                    }
                }
            }
        }
        let mut overflowed: Vec<u64> = Vec::new();
        for (w, evs) in targets {
            if overflowed.contains(&w.stream) {
                continue;
            }
            let Some(entry) = self.streams.get(&w.stream) else { continue };
            let ok = entry.queue.push(
                StreamItem::Events { watch_id: w.spec.watch_id, zxid, include_data: w.spec.include_data, events: evs },
                Push::Event,
            );
            if !ok {
                overflowed.push(w.stream);
            } else if w.spec.one_shot {
                self.streams.get_mut(&w.stream).unwrap().watches.remove(&w.spec.watch_id);
                self.unindex(&w);
            }
        }
        for stream in overflowed {
            self.cancel_stream(stream, zxid);
        }
    }

    /// Cancels every watch of a stream whose queue is full.
    fn cancel_stream(&mut self, stream: u64, zxid: u64) {
        let Some(entry) = self.streams.get_mut(&stream) else { return };
        let watches: Vec<_> = entry.watches.drain().collect();
        let queue = entry.queue.clone();
        for (id, w) in watches {
            self.unindex(&w);
            queue.push(
                StreamItem::Canceled {
                    watch_id: id,
                    code: CancelCode::SlowConsumer,
                    reason: format!(
                        "the stream fell more than {} messages behind at zxid {zxid}; resume from the last zxid received + 1",
                        queue.capacity
                    ),
                    compact_zxid: 0,
                },
                Push::Control,
            );
        }
        metrics::counter!("grove_watch_slow_consumer_cancels_total").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::fsm::acl::Caller;
    use crate::fsm::znode::Stat;

    fn ev(kind: EventKind, path: &str) -> Event {
        Event { kind, path: path.into(), stat: Stat::default(), data: Bytes::new(), acl: Vec::new() }
    }

    fn applied(zxid: u64, events: Vec<Event>) -> Applied {
        Applied {
            zxid,
            results: vec![Ok(crate::fsm::command::Outcome::Done)],
            events,
            sessions: vec![],
            grants: vec![],
        }
    }

    fn spec(id: i64, path: &str, kind: WatchKind, start: u64) -> WatchSpec {
        WatchSpec {
            watch_id: id,
            path: path.into(),
            kind,
            one_shot: false,
            start_zxid: start,
            include_data: false,
            caller: Caller::default(),
        }
    }

    fn drain(q: &StreamQueue) -> Vec<StreamItem> {
        let mut st = q.state.lock().unwrap();
        st.items.drain(..).collect()
    }

    fn event_zxids(items: &[StreamItem]) -> Vec<u64> {
        items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Events { zxid, .. } => Some(*zxid),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn kinds_match_like_zookeeper() {
        use EventKind::*;
        assert!(matches(WatchKind::Node, "/a", &ev(DataChanged, "/a")));
        assert!(!matches(WatchKind::Node, "/a", &ev(ChildrenChanged, "/a")));
        assert!(matches(WatchKind::Children, "/a", &ev(ChildrenChanged, "/a")));
        assert!(matches(WatchKind::Children, "/a", &ev(Deleted, "/a")));
        assert!(!matches(WatchKind::Children, "/a", &ev(DataChanged, "/a")));
        assert!(matches(WatchKind::Subtree, "/a", &ev(Created, "/a/b/c")));
        assert!(!matches(WatchKind::Subtree, "/a", &ev(Created, "/ab")));
        assert!(!matches(WatchKind::Subtree, "/a", &ev(ChildrenChanged, "/a/b")));
    }

    #[test]
    fn resume_replays_history_then_goes_live_without_gap_or_duplicate() {
        let hub = WatchHub::new(HubConfig::default(), 0);
        for z in 1..=5 {
            hub.publish(&[applied(z, vec![ev(EventKind::DataChanged, "/a")])]);
        }
        let (s, q) = hub.open_stream();
        hub.create(s, spec(1, "/a", WatchKind::Node, 3)).unwrap();
        hub.publish(&[applied(6, vec![ev(EventKind::DataChanged, "/a")])]);
        let items = drain(&q);
        assert!(matches!(items[0], StreamItem::Created { watch_id: 1, zxid: 5 }));
        assert_eq!(event_zxids(&items), vec![3, 4, 5, 6]);
    }

    #[test]
    fn resume_before_history_is_compacted() {
        let hub = WatchHub::new(HubConfig { history_entries: 2, ..Default::default() }, 0);
        for z in 1..=5 {
            hub.publish(&[applied(z, vec![ev(EventKind::DataChanged, "/a")])]);
        }
        assert_eq!(hub.history_bounds(), (4, 5));
        let (s, q) = hub.open_stream();
        hub.create(s, spec(1, "/a", WatchKind::Node, 2)).unwrap();
        let items = drain(&q);
        assert!(matches!(items[1], StreamItem::Canceled { code: CancelCode::Compacted, compact_zxid: 4, .. }));
        assert_eq!(hub.watch_count(), 0);
        // From the oldest available zxid works.
        hub.create(s, spec(2, "/a", WatchKind::Node, 4)).unwrap();
        assert_eq!(event_zxids(&drain(&q)), vec![4, 5]);
    }

    #[test]
    fn one_shot_fires_once() {
        let hub = WatchHub::new(HubConfig::default(), 0);
        let (s, q) = hub.open_stream();
        let mut sp = spec(1, "/a", WatchKind::Node, 0);
        sp.one_shot = true;
        hub.create(s, sp).unwrap();
        hub.publish(&[applied(1, vec![ev(EventKind::Created, "/a")])]);
        hub.publish(&[applied(2, vec![ev(EventKind::DataChanged, "/a")])]);
        assert_eq!(event_zxids(&drain(&q)), vec![1]);
        assert_eq!(hub.watch_count(), 0);
    }

    #[test]
    fn full_queue_cancels_every_watch_of_the_stream_after_what_it_holds() {
        let hub = WatchHub::new(HubConfig { queue_capacity: 3, ..Default::default() }, 0);
        let (s, q) = hub.open_stream();
        hub.create(s, spec(1, "/a", WatchKind::Node, 0)).unwrap();
        hub.create(s, spec(2, "/", WatchKind::Subtree, 0)).unwrap();
        // Two Created messages already queued; capacity 3.
        for z in 1..=5 {
            hub.publish(&[applied(z, vec![ev(EventKind::DataChanged, "/a")])]);
        }
        let items = drain(&q);
        let cancels: Vec<_> =
            items.iter().filter(|i| matches!(i, StreamItem::Canceled { code: CancelCode::SlowConsumer, .. })).collect();
        assert_eq!(cancels.len(), 2);
        assert_eq!(hub.watch_count(), 0);
        // The cancels come after every event queued.
        let last_event = items.iter().rposition(|i| matches!(i, StreamItem::Events { .. })).unwrap();
        let first_cancel = items.iter().position(|i| matches!(i, StreamItem::Canceled { .. })).unwrap();
        assert!(last_event < first_cancel);
        // The stream stays usable.
        hub.create(s, spec(3, "/a", WatchKind::Node, 0)).unwrap();
        assert_eq!(hub.watch_count(), 1);
    }

    #[test]
    fn subtree_and_children_watches_see_their_events_in_order() {
        let hub = WatchHub::new(HubConfig::default(), 0);
        let (s, q) = hub.open_stream();
        hub.create(s, spec(1, "/app", WatchKind::Subtree, 0)).unwrap();
        hub.create(s, spec(2, "/app", WatchKind::Children, 0)).unwrap();
        hub.publish(&[applied(7, vec![ev(EventKind::Created, "/app/x"), ev(EventKind::ChildrenChanged, "/app")])]);
        let items = drain(&q);
        let per_watch: Vec<(i64, Vec<EventKind>)> = items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Events { watch_id, events, .. } => {
                    Some((*watch_id, events.iter().map(|e| e.kind).collect()))
                }
                _ => None,
            })
            .collect();
        assert!(per_watch.contains(&(1, vec![EventKind::Created])));
        assert!(per_watch.contains(&(2, vec![EventKind::ChildrenChanged])));
    }

    #[test]
    fn duplicate_watch_ids_and_limits_are_errors() {
        let hub = WatchHub::new(HubConfig { max_watches_per_stream: 1, ..Default::default() }, 0);
        let (s, _q) = hub.open_stream();
        hub.create(s, spec(1, "/a", WatchKind::Node, 0)).unwrap();
        assert!(matches!(hub.create(s, spec(2, "/a", WatchKind::Node, 0)), Err(GroveError::TooMany { .. })));
        hub.cancel(s, 1).unwrap();
        assert!(hub.cancel(s, 1).is_err());
        hub.create(s, spec(5, "/a", WatchKind::Node, 0)).unwrap();
        assert!(matches!(
            hub.create(s, spec(5, "/b", WatchKind::Node, 0)),
            Err(GroveError::TooMany { .. }) | Err(GroveError::BadArguments { .. })
        ));
        hub.close_stream(s);
        assert_eq!(hub.watch_count(), 0);
    }
}
