//! The watch hub: matches applied events to watches and queues them per stream.
//!
//! Events enter here from the apply path, in zxid order, under one lock, and are sent to
//! the live watches that match them.
//!
//! History keeps the events of the most recent zxids (bounded by count and bytes).
//! `history_start` is the oldest zxid from which it is complete; a resume from before it
//! is answered with an explicit COMPACTED cancel. A watch created with `start_zxid` is
//! replayed outside the lock, by a task of its own that reads the history a chunk at a
//! time from a cursor and queues what matches as fast as the stream's reader takes it (the
//! replay is charged to the stream's queue like any event). When a chunk comes back empty,
//! the cursor has reached the last zxid published, and in that same hold of the lock the
//! watch turns live: every later event reaches it from `publish`. So a resume misses
//! nothing and sends nothing twice, and neither apply nor other watches wait for it.
//!
//! Each stream has a queue bounded in messages and bytes. A consumer that lets it fill has
//! all its live watches cancelled with SLOW_CONSUMER, after the events already queued: it
//! knows exactly the last zxid it received and can resume from the next one.

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

/// History entries handed to a replay per hold of the lock.
const REPLAY_CHUNK: usize = 64;

struct StreamEntry {
    queue: Arc<StreamQueue>,
    watches: HashMap<i64, Arc<Watch>>,
    next_watch_id: i64,
    /// Replays running on this stream: while any runs, no progress mark is sent, since a
    /// mark promises that everything up to its zxid is already queued.
    replaying: usize,
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

/// The memory an event held in the history takes: its `Arc` allocation (counts and the
/// struct), the path, the data and the ACL's entries with their strings, and its slot in
/// the history. What `--watch-history-bytes` bounds, so it counts what the process holds,
/// not only the payload (a 128-byte create holds about 450 bytes).
fn event_bytes(e: &Event) -> usize {
    use std::mem::size_of;
    let acl: usize = e.acl.iter().map(|a| size_of::<crate::fsm::acl::AclEntry>() + a.scheme.len() + a.id.len()).sum();
    2 * size_of::<usize>() + size_of::<Event>() + size_of::<Arc<Event>>() + e.path.capacity() + e.data.len() + acl
}

/// The cancel of a watch that asked to resume from before the history.
fn compacted(watch_id: i64, history_start: u64, requested: u64) -> StreamItem {
    StreamItem::Canceled {
        watch_id,
        code: CancelCode::Compacted,
        reason: format!(
            "history starts at zxid {history_start}, after the requested {requested}; re-read and watch from now"
        ),
        compact_zxid: history_start,
    }
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
        let queue = Arc::new(StreamQueue::new(self.config.queue_capacity, self.config.queue_bytes));
        hub.streams
            .insert(id, StreamEntry { queue: queue.clone(), watches: HashMap::new(), next_watch_id: 1, replaying: 0 });
        (id, queue)
    }

    pub fn close_stream(&self, stream: u64) {
        let mut hub = self.inner.lock().unwrap();
        if let Some(entry) = hub.streams.remove(&stream) {
            for w in entry.watches.values() {
                hub.unindex(w);
            }
            hub.watch_count -= entry.watches.len();
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

    /// Creates a watch on a stream; its `Created` message is queued, and its replay, if it
    /// resumes, runs in the background. Returns the watch id.
    pub fn create(self: &Arc<Self>, stream: u64, mut spec: WatchSpec) -> Result<i64, GroveError> {
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
            queue.push(compacted(id, hub.history_start, spec.start_zxid), Push::Control);
            return Ok(id);
        }
        let watch = Arc::new(Watch { stream, spec });
        hub.streams.get_mut(&stream).unwrap().watches.insert(id, watch.clone());
        hub.watch_count += 1;
        if watch.spec.start_zxid > 0 && watch.spec.start_zxid <= hub.last_zxid {
            hub.streams.get_mut(&stream).unwrap().replaying += 1;
            let this = self.clone();
            tokio::spawn(async move {
                this.clone().replay(watch, queue).await;
                if let Some(entry) = this.inner.lock().unwrap().streams.get_mut(&stream) {
                    entry.replaying -= 1;
                }
            });
        } else {
            hub.index(watch);
        }
        Ok(id)
    }

    /// Replays a resuming watch's history from its `start_zxid`, then makes it live (see
    /// the module's comment).
    async fn replay(self: Arc<Self>, watch: Arc<Watch>, queue: Arc<StreamQueue>) {
        let id = watch.spec.watch_id;
        let mut cursor = watch.spec.start_zxid;
        loop {
            let chunk: Vec<(u64, Vec<Arc<Event>>)> = {
                let mut hub = self.inner.lock().unwrap();
                if !hub.holds(&watch) {
                    return; // cancelled, or its stream closed, meanwhile
                }
                if cursor < hub.history_start {
                    let start = hub.history_start;
                    hub.remove_watch(watch.stream, id);
                    queue.push(compacted(id, start, cursor), Push::Control);
                    return;
                }
                let from = hub.history.partition_point(|h| h.zxid < cursor);
                let chunk: Vec<_> = hub
                    .history
                    .range(from..)
                    .take(REPLAY_CHUNK)
                    .map(|h| (h.zxid, h.events.iter().filter(|e| sees(&watch.spec, e)).cloned().collect()))
                    .collect();
                if chunk.is_empty() {
                    // Caught up with the last zxid published: live from the next one.
                    hub.index(watch);
                    return;
                }
                chunk
            };
            for (zxid, events) in chunk {
                cursor = zxid + 1;
                if events.is_empty() {
                    continue;
                }
                let mut item = StreamItem::Events { watch_id: id, zxid, include_data: watch.spec.include_data, events };
                let mut hub = loop {
                    if !queue.wait_room(&item).await {
                        return; // the stream ended
                    }
                    // Pushed in a hold of the lock that finds the watch still registered:
                    // a cancel (or a reset) queues its Canceled in a hold of its own, so no
                    // event of this watch ever follows its Canceled.
                    let hub = self.inner.lock().unwrap();
                    if !hub.holds(&watch) {
                        return;
                    }
                    match queue.offer(item, Push::Event) {
                        Ok(()) => break hub,
                        Err(None) => return,
                        // Live events of other watches took the room meanwhile.
                        Err(Some(back)) => item = back,
                    }
                };
                if watch.spec.one_shot {
                    hub.remove_watch(watch.stream, id);
                    return;
                }
            }
        }
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
        hub.watch_count -= 1;
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
            && entry.replaying == 0
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
                // The newest entry stays even when it alone is over the byte bound (one
                // entry may carry up to the proposer's 8 MiB batch): a resume from just
                // before it is still served. The entry count is a hard bound (0: none).
                while hub.history.len() > self.config.history_entries
                    || (hub.history.len() > 1 && hub.history_bytes > self.config.history_bytes)
                {
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
        // Replays still running find their watch gone and stop.
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

    /// Every watch, by stream then id (for `grove watches`).
    pub fn list(&self) -> Vec<(u64, WatchSpec)> {
        let hub = self.inner.lock().unwrap();
        let mut out: Vec<(u64, WatchSpec)> =
            hub.streams.iter().flat_map(|(id, s)| s.watches.values().map(move |w| (*id, w.spec.clone()))).collect();
        out.sort_by_key(|(stream, spec)| (*stream, spec.watch_id));
        out
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
    /// Whether this very watch is still registered (not cancelled, its stream open).
    fn holds(&self, watch: &Arc<Watch>) -> bool {
        self.streams
            .get(&watch.stream)
            .and_then(|e| e.watches.get(&watch.spec.watch_id))
            .is_some_and(|w| Arc::ptr_eq(w, watch))
    }

    fn drop_watches(&mut self, stream: u64) {
        let Some(entry) = self.streams.get_mut(&stream) else { return };
        let watches: Vec<_> = entry.watches.drain().map(|(_, w)| w).collect();
        self.watch_count -= watches.len();
        for w in watches {
            self.unindex(&w);
        }
    }

    /// Forgets one watch of a stream (its replay ended it).
    fn remove_watch(&mut self, stream: u64, id: i64) {
        if let Some(w) = self.streams.get_mut(&stream).and_then(|e| e.watches.remove(&id)) {
            self.unindex(&w);
            self.watch_count -= 1;
        }
    }

    fn index(&mut self, w: Arc<Watch>) {
        let map = if w.spec.kind == WatchKind::Subtree { &mut self.subtree } else { &mut self.by_path };
        map.entry(w.spec.path.clone()).or_default().push(w);
    }

    fn unindex(&mut self, w: &Arc<Watch>) {
        let map = if w.spec.kind == WatchKind::Subtree { &mut self.subtree } else { &mut self.by_path };
        if let Some(list) = map.get_mut(&w.spec.path) {
            if let Some(i) = list.iter().position(|x| Arc::ptr_eq(x, w)) {
                list.swap_remove(i);
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
                self.remove_watch(w.stream, w.spec.watch_id);
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
        self.watch_count -= watches.len();
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
            time: 0,
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
        st.bytes = 0;
        st.items.drain(..).map(|(item, _)| item).collect()
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
    fn the_history_bound_counts_what_an_event_holds_not_only_its_payload() {
        let mut e = ev(EventKind::Created, "/bench/c12345");
        e.data = Bytes::from(vec![b'v'; 128]);
        e.acl = vec![crate::fsm::acl::AclEntry::new(crate::fsm::acl::ALL, "world", "anyone")];
        let counted = event_bytes(&e);
        let held = std::mem::size_of::<Event>() + e.path.len() + 128 + std::mem::size_of::<crate::fsm::acl::AclEntry>();
        assert!(counted >= held, "counted {counted} of at least {held} bytes held");
        // So a history bounded at 1 MiB holds about 2,000 such events, not 3,500.
        let config = HubConfig { history_bytes: 1 << 20, ..HubConfig::default() };
        let hub = WatchHub::new(config, 0);
        for z in 1..=5_000 {
            hub.publish(&[applied(z, vec![e.clone()])]);
        }
        let held = hub.inner.lock().unwrap().history.len();
        // Counting only path and data (+128), as it once did, kept ~3,900.
        assert!((1_000..=3_000).contains(&held), "{held} events in a 1 MiB history");
    }

    #[test]
    fn an_entry_larger_than_the_history_bound_is_kept_until_the_next_one() {
        let config = HubConfig { history_bytes: 4096, ..HubConfig::default() };
        let hub = WatchHub::new(config, 0);
        let mut big = ev(EventKind::DataChanged, "/a");
        big.data = Bytes::from(vec![0u8; 64 << 10]);
        hub.publish(&[applied(1, vec![ev(EventKind::DataChanged, "/a")])]);
        hub.publish(&[applied(2, vec![big.clone()])]);
        {
            let h = hub.inner.lock().unwrap();
            assert_eq!((h.history.len(), h.history_start), (1, 2), "the oversized newest entry is kept");
        }
        hub.publish(&[applied(3, vec![ev(EventKind::DataChanged, "/a")])]);
        let h = hub.inner.lock().unwrap();
        assert_eq!((h.history.len(), h.history_start), (1, 3));
    }

    /// Lets replay tasks run.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn resume_replays_history_then_goes_live_without_gap_or_duplicate() {
        let hub = Arc::new(WatchHub::new(HubConfig::default(), 0));
        for z in 1..=5 {
            hub.publish(&[applied(z, vec![ev(EventKind::DataChanged, "/a")])]);
        }
        let (s, q) = hub.open_stream();
        hub.create(s, spec(1, "/a", WatchKind::Node, 3)).unwrap();
        // Published while the replay may be under way: seen once, after the history.
        hub.publish(&[applied(6, vec![ev(EventKind::DataChanged, "/a")])]);
        settle().await;
        hub.publish(&[applied(7, vec![ev(EventKind::DataChanged, "/a")])]);
        let items = drain(&q);
        assert!(matches!(items[0], StreamItem::Created { watch_id: 1, zxid: 5 }));
        assert_eq!(event_zxids(&items), vec![3, 4, 5, 6, 7]);
    }

    #[tokio::test]
    async fn resume_before_history_is_compacted() {
        let hub = Arc::new(WatchHub::new(HubConfig { history_entries: 2, ..Default::default() }, 0));
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
        settle().await;
        assert_eq!(event_zxids(&drain(&q)), vec![4, 5]);
    }

    #[test]
    fn one_shot_fires_once() {
        let hub = Arc::new(WatchHub::new(HubConfig::default(), 0));
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
        let hub = Arc::new(WatchHub::new(HubConfig { queue_capacity: 3, ..Default::default() }, 0));
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
        let hub = Arc::new(WatchHub::new(HubConfig::default(), 0));
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
        let hub = Arc::new(WatchHub::new(HubConfig { max_watches_per_stream: 1, ..Default::default() }, 0));
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

#[cfg(test)]
mod replay_tests {
    use bytes::Bytes;

    use super::*;
    use crate::fsm::acl::Caller;
    use crate::fsm::znode::Stat;

    fn applied(zxid: u64, data: usize) -> Applied {
        let e = Event {
            kind: EventKind::DataChanged,
            path: "/a".into(),
            stat: Stat::default(),
            data: Bytes::from(vec![b'x'; data]),
            acl: Vec::new(),
        };
        Applied { zxid, time: 0, results: vec![], events: vec![e], sessions: vec![], grants: vec![] }
    }

    /// A resume far behind is paced by its reader: the queue never holds more than its
    /// bytes allow, apply never waits, and every event arrives once, in order.
    #[tokio::test]
    async fn a_long_replay_is_paced_by_its_reader_and_charged_to_the_queue() {
        let config = HubConfig { queue_capacity: 1_000, queue_bytes: 64 * 1024, ..Default::default() };
        let hub = Arc::new(WatchHub::new(config, 0));
        for z in 1..=2_000 {
            hub.publish(&[applied(z, 1024)]);
        }
        let (s, q) = hub.open_stream();
        let spec = WatchSpec {
            watch_id: 1,
            path: "/a".into(),
            kind: WatchKind::Node,
            one_shot: false,
            start_zxid: 1,
            include_data: true,
            caller: Caller::default(),
        };
        hub.create(s, spec).unwrap();
        let mut seen = Vec::new();
        let mut most = 0;
        let mut next_publish = 2_001;
        while seen.len() < 2_100 {
            let depth = { q.state.lock().unwrap().bytes };
            most = most.max(depth);
            // Apply goes on meanwhile, never blocked by the replay.
            if next_publish <= 2_100 {
                hub.publish(&[applied(next_publish, 1024)]);
                next_publish += 1;
            }
            match tokio::time::timeout(std::time::Duration::from_secs(5), q.pop()).await.expect("stalled") {
                Some(StreamItem::Events { zxid, .. }) => seen.push(zxid),
                Some(_) => {}
                None => panic!("stream ended"),
            }
        }
        assert_eq!(seen, (1..=2_100).collect::<Vec<u64>>(), "in order, no gap, no duplicate");
        assert!(most <= 64 * 1024 + 2048, "the queue held {most} bytes");
    }

    fn resuming(id: i64, start_zxid: u64) -> WatchSpec {
        WatchSpec {
            watch_id: id,
            path: "/a".into(),
            kind: WatchKind::Node,
            one_shot: false,
            start_zxid,
            include_data: false,
            caller: Caller::default(),
        }
    }

    /// 200 entries of history, and a stream whose watch resumes from the first: its replay
    /// runs through a queue of 8, so it stays behind for a while.
    fn replaying_stream() -> (Arc<WatchHub>, u64, Arc<StreamQueue>) {
        let config = HubConfig { queue_capacity: 8, ..Default::default() };
        let hub = Arc::new(WatchHub::new(config, 0));
        for z in 1..=200 {
            hub.publish(&[applied(z, 10)]);
        }
        let (s, q) = hub.open_stream();
        hub.create(s, resuming(1, 1)).unwrap();
        (hub, s, q)
    }

    /// A progress mark promises that everything up to its zxid was queued before it: while
    /// a replay is still behind, none is sent; once it is live, marks come again.
    #[tokio::test]
    async fn no_progress_mark_runs_ahead_of_a_replay() {
        let (hub, s, q) = replaying_stream();
        let mut last_event = 0;
        let mut marks = 0;
        while last_event < 200 {
            hub.progress(s, false);
            match tokio::time::timeout(std::time::Duration::from_secs(5), q.pop()).await.expect("stalled") {
                Some(StreamItem::Events { zxid, .. }) => {
                    assert!(zxid > last_event, "in order");
                    last_event = zxid;
                }
                Some(StreamItem::Progress { zxid }) => {
                    assert!(zxid <= last_event, "a progress mark at {zxid} before event {} was sent", last_event + 1);
                    marks += 1;
                }
                Some(_) => {}
                None => panic!("stream ended"),
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        hub.progress(s, false);
        let after: Vec<_> = std::iter::from_fn(|| q.state.lock().unwrap().items.pop_front().map(|(i, _)| i)).collect();
        assert!(
            after.iter().any(|i| matches!(i, StreamItem::Progress { zxid: 200 })),
            "a live watch gets its marks again ({marks} during the replay, then {after:?})"
        );
    }

    /// A cancel during a replay is the watch's last word: no replayed event follows it.
    #[tokio::test]
    async fn no_replayed_event_follows_a_cancel() {
        let (hub, s, q) = replaying_stream();
        let mut canceled = false;
        let mut popped = 0;
        loop {
            if popped == 3 {
                hub.cancel(s, 1).unwrap();
            }
            let item = match tokio::time::timeout(std::time::Duration::from_millis(300), q.pop()).await {
                Ok(Some(item)) => item,
                _ => break, // nothing more comes
            };
            popped += 1;
            match item {
                StreamItem::Events { zxid, .. } => assert!(!canceled, "event {zxid} after the cancel"),
                StreamItem::Canceled { .. } => canceled = true,
                _ => {}
            }
        }
        assert!(canceled);
    }
}
