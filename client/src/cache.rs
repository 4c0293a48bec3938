//! Caches of a node, its children or a subtree, kept current by a watch stream (Curator's
//! NodeCache, PathChildrenCache, TreeCache and CuratorCache).
//!
//! A cache loads what it covers, then follows a watch started at the zxid the load began
//! from, so no change falls between the load and the watch. When its stream breaks (the
//! server failed, the client moved) it resumes from the last zxid it applied: no event is
//! missed or applied twice. Only when the servers' event history no longer reaches back
//! that far (COMPACTED) does it load again, reporting the differences as events.
//!
//! Events replayed over a fresher load are recognised by their zxids (a node's czxid and
//! mzxid only grow), so the cache never goes backwards.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, watch};

use crate::client::{Client, Consistency, Stat};
use crate::error::{Error, Result};
use crate::watch::{ErrorCode, EventType, WatchEvent, WatchKind, WatchMessage, WatchSpec};

/// A cached node.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildData {
    pub path: String,
    pub data: Bytes,
    pub stat: Stat,
}

/// A change the cache applied.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheEvent {
    Added(ChildData),
    Updated {
        old: ChildData,
        new: ChildData,
    },
    Removed(ChildData),
    /// The first load is complete (sent once).
    Initialized,
    /// The cache reloaded after its watch history was compacted; the differences were
    /// reported as the events before this one.
    Reloaded,
}

/// Which nodes a cache covers, relative to its root.
#[derive(Debug, Clone, Copy)]
struct Scope {
    /// 0: the root only; 1: the root and its children; `usize::MAX`: the whole subtree.
    max_depth: usize,
}

struct Shared {
    nodes: Mutex<BTreeMap<String, ChildData>>,
    events: broadcast::Sender<CacheEvent>,
    /// The zxid of the last change applied.
    zxid: watch::Sender<u64>,
}

/// The engine behind every cache.
struct Cache {
    root: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    initialized: watch::Receiver<bool>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn depth(root: &str, path: &str) -> Option<usize> {
    if path == root {
        return Some(0);
    }
    let rest = if root == "/" { path.strip_prefix('/') } else { path.strip_prefix(root)?.strip_prefix('/') }?;
    Some(rest.split('/').count())
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

impl Cache {
    async fn start(client: Client, root: &str, scope: Scope) -> Result<Cache> {
        let (events, _) = broadcast::channel(4096);
        let (zxid, _) = watch::channel(0);
        let shared = Arc::new(Shared { nodes: Mutex::new(BTreeMap::new()), events, zxid });
        let (init_tx, mut initialized) = watch::channel(false);
        let (first_tx, mut first_rx) = watch::channel(None::<Error>);
        let runner = Runner { client, root: root.to_string(), scope, shared: shared.clone() };
        let task = tokio::spawn(runner.run(init_tx, first_tx));
        // Wait for the first load, or its error.
        loop {
            if *initialized.borrow() {
                break;
            }
            if let Some(e) = first_rx.borrow().clone() {
                return Err(e);
            }
            let stopped = tokio::select! {
                r = initialized.changed() => r.is_err(),
                r = first_rx.changed() => r.is_err(),
            };
            if stopped && !*initialized.borrow() {
                return Err(first_rx.borrow().clone().unwrap_or(Error::Client("the cache stopped".into())));
            }
        }
        Ok(Cache { root: root.to_string(), shared, task, initialized })
    }

    fn get(&self, path: &str) -> Option<ChildData> {
        self.shared.nodes.lock().unwrap().get(path).cloned()
    }

    fn children_of(&self, parent: &str) -> Vec<ChildData> {
        let nodes = self.shared.nodes.lock().unwrap();
        let prefix = if parent == "/" { "/".to_string() } else { format!("{parent}/") };
        nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| *p != parent && !p[prefix.len()..].contains('/'))
            .map(|(_, d)| d.clone())
            .collect()
    }
}

struct Runner {
    client: Client,
    root: String,
    scope: Scope,
    shared: Arc<Shared>,
}

impl Runner {
    async fn run(self, initialized: watch::Sender<bool>, first_error: watch::Sender<Option<Error>>) {
        let mut last: Option<u64> = None;
        let mut pause = Duration::from_millis(50);
        loop {
            if last.is_none() {
                match self.load().await {
                    Ok(z) => {
                        last = Some(z);
                        pause = Duration::from_millis(50);
                        if !*initialized.borrow() {
                            let _ = self.shared.events.send(CacheEvent::Initialized);
                            initialized.send_replace(true);
                        } else {
                            let _ = self.shared.events.send(CacheEvent::Reloaded);
                        }
                    }
                    Err(e) => {
                        if !*initialized.borrow() && !e.is_transient() {
                            first_error.send_replace(Some(e));
                            return;
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
            let from = last.unwrap_or(0);
            match self.follow(from).await {
                Ok(Some(z)) => last = Some(z),
                // History compacted: load again.
                Ok(None) => last = None,
                Err((z, e)) => {
                    tracing::debug!("cache of {} resumes after: {e}", self.root);
                    last = Some(z);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Loads the scope; returns the zxid the load is at least as fresh as.
    async fn load(&self) -> Result<u64> {
        let z0 = self.client.sync(&self.root).await?;
        let mut fresh = BTreeMap::new();
        self.load_node(&self.root, 0, &mut fresh).await?;
        // Report the differences (everything, the first time).
        let mut nodes = self.shared.nodes.lock().unwrap();
        let old = std::mem::take(&mut *nodes);
        for (path, d) in &old {
            if !fresh.contains_key(path) {
                let _ = self.shared.events.send(CacheEvent::Removed(d.clone()));
            }
        }
        for (path, d) in &fresh {
            match old.get(path) {
                None => {
                    let _ = self.shared.events.send(CacheEvent::Added(d.clone()));
                }
                Some(o) if o != d => {
                    let _ = self.shared.events.send(CacheEvent::Updated { old: o.clone(), new: d.clone() });
                }
                Some(_) => {}
            }
        }
        *nodes = fresh;
        drop(nodes);
        self.shared.zxid.send_replace(z0);
        Ok(z0)
    }

    fn load_node<'a>(
        &'a self,
        path: &'a str,
        depth: usize,
        out: &'a mut BTreeMap<String, ChildData>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            // Sequential reads carry the client's last zxid (at least the sync's), so they
            // are never older than the load's start.
            let (data, stat) = match self.client.get_with(path, Consistency::Sequential).await {
                Ok(r) => r,
                Err(Error::NoNode { .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            out.insert(path.to_string(), ChildData { path: path.to_string(), data, stat });
            if depth >= self.scope.max_depth || stat.num_children == 0 {
                return Ok(());
            }
            let names = match self.client.children_with(path, Consistency::Sequential, false).await {
                Ok(c) => c.names,
                Err(Error::NoNode { .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            for name in names {
                self.load_node(&join(path, &name), depth + 1, out).await?;
            }
            Ok(())
        })
    }

    /// Follows the watch from `after + 1`. Returns the last zxid applied when the stream
    /// ends, `None` when the history no longer reaches back (reload).
    async fn follow(&self, after: u64) -> std::result::Result<Option<u64>, (u64, Error)> {
        let mut last = after;
        let mut stream = self.client.watch_stream().await.map_err(|e| (last, e))?;
        let kind = if self.scope.max_depth == 0 { WatchKind::Node } else { WatchKind::Subtree };
        stream.watch(WatchSpec::new(&self.root, kind).from_zxid(after + 1).with_data()).await.map_err(|e| (last, e))?;
        loop {
            match stream.next().await {
                Ok(Some(WatchMessage::Events { zxid, events, .. })) => {
                    self.apply(&events);
                    last = zxid;
                    self.shared.zxid.send_replace(zxid);
                }
                Ok(Some(WatchMessage::Canceled { code, reason, .. })) => {
                    if code == ErrorCode::Compacted {
                        return Ok(None);
                    }
                    return Err((last, Error::Server { code, message: reason }));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err((last, Error::ConnectionLoss { message: "watch stream ended".into() })),
                Err(e) => return Err((last, e)),
            }
        }
    }

    fn apply(&self, events: &[WatchEvent]) {
        let mut nodes = self.shared.nodes.lock().unwrap();
        for e in events {
            if depth(&self.root, &e.path).is_none_or(|d| d > self.scope.max_depth) {
                continue;
            }
            let new = ChildData { path: e.path.clone(), data: e.data.clone(), stat: e.stat };
            let event = match e.kind {
                EventType::NodeCreated | EventType::NodeDataChanged => match nodes.get(&e.path) {
                    // Already as fresh (a replay over a newer load), or a newer incarnation.
                    Some(old)
                        if old.stat.czxid > e.stat.czxid
                            || (old.stat.czxid == e.stat.czxid && old.stat.mzxid >= e.stat.mzxid) =>
                    {
                        None
                    }
                    Some(old) => Some(CacheEvent::Updated { old: old.clone(), new: new.clone() }),
                    None => Some(CacheEvent::Added(new.clone())),
                },
                EventType::NodeDeleted => match nodes.get(&e.path) {
                    Some(old) if old.stat.czxid <= e.stat.czxid => Some(CacheEvent::Removed(old.clone())),
                    _ => None,
                },
                _ => None,
            };
            match &event {
                Some(CacheEvent::Added(d)) | Some(CacheEvent::Updated { new: d, .. }) => {
                    nodes.insert(d.path.clone(), d.clone());
                }
                Some(CacheEvent::Removed(d)) => {
                    nodes.remove(&d.path);
                }
                _ => {}
            }
            if let Some(ev) = event {
                let _ = self.shared.events.send(ev);
            }
        }
    }
}

macro_rules! cache_common {
    () => {
        /// Changes from now on. A listener more than 4096 events behind gets `Lagged`
        /// and should re-read the cache.
        pub fn listen(&self) -> broadcast::Receiver<CacheEvent> {
            self.cache.shared.events.subscribe()
        }

        /// The zxid of the last change the cache reflects.
        pub fn zxid(&self) -> u64 {
            *self.cache.shared.zxid.borrow()
        }

        /// Waits until the cache reflects `zxid` (e.g. a write's), at most `timeout`.
        pub async fn wait_for_zxid(&self, zxid: u64, timeout: Duration) -> bool {
            let mut rx = self.cache.shared.zxid.subscribe();
            tokio::time::timeout(timeout, rx.wait_for(|z| *z >= zxid)).await.is_ok_and(|r| r.is_ok())
        }

        pub fn is_initialized(&self) -> bool {
            *self.cache.initialized.borrow()
        }
    };
}

/// One node's data and stat (Curator's NodeCache).
pub struct NodeCache {
    cache: Cache,
}

impl NodeCache {
    /// Loads the node (absent is fine) and starts following it.
    pub async fn start(client: &Client, path: &str) -> Result<NodeCache> {
        Ok(NodeCache { cache: Cache::start(client.clone(), path, Scope { max_depth: 0 }).await? })
    }

    /// The node now, or `None` if it does not exist.
    pub fn current(&self) -> Option<ChildData> {
        self.cache.get(&self.cache.root)
    }

    cache_common!();
}

/// The children of a node, with their data (Curator's PathChildrenCache).
pub struct PathChildrenCache {
    cache: Cache,
}

impl PathChildrenCache {
    pub async fn start(client: &Client, path: &str) -> Result<PathChildrenCache> {
        Ok(PathChildrenCache { cache: Cache::start(client.clone(), path, Scope { max_depth: 1 }).await? })
    }

    /// The children now, sorted by path.
    pub fn current(&self) -> Vec<ChildData> {
        self.cache.children_of(&self.cache.root)
    }

    pub fn get(&self, path: &str) -> Option<ChildData> {
        if path == self.cache.root { None } else { self.cache.get(path) }
    }

    cache_common!();
}

/// A subtree, to a maximum depth (Curator's TreeCache; `CuratorCache` is the whole
/// subtree).
pub struct TreeCache {
    cache: Cache,
}

/// Curator 5's CuratorCache: a TreeCache of the whole subtree.
pub type CuratorCache = TreeCache;

impl TreeCache {
    /// The whole subtree under `path` (the node included).
    pub async fn start(client: &Client, path: &str) -> Result<TreeCache> {
        Self::with_max_depth(client, path, usize::MAX).await
    }

    /// Nodes at most `max_depth` levels below `path` (0: the node alone).
    pub async fn with_max_depth(client: &Client, path: &str, max_depth: usize) -> Result<TreeCache> {
        Ok(TreeCache { cache: Cache::start(client.clone(), path, Scope { max_depth }).await? })
    }

    pub fn get(&self, path: &str) -> Option<ChildData> {
        self.cache.get(path)
    }

    /// The cached children of a node in the tree.
    pub fn children(&self, path: &str) -> Vec<ChildData> {
        self.cache.children_of(path)
    }

    /// Every cached node, by path.
    pub fn snapshot(&self) -> BTreeMap<String, ChildData> {
        self.cache.shared.nodes.lock().unwrap().clone()
    }

    cache_common!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_relative_to_the_root() {
        assert_eq!(depth("/a", "/a"), Some(0));
        assert_eq!(depth("/a", "/a/b"), Some(1));
        assert_eq!(depth("/a", "/a/b/c"), Some(2));
        assert_eq!(depth("/a", "/ab"), None);
        assert_eq!(depth("/", "/x/y"), Some(2));
        assert_eq!(depth("/", "/"), Some(0));
    }
}
