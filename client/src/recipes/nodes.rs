//! Nodes that stay (Curator's PersistentNode) and group membership built on them
//! (Curator's GroupMember).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::cache::PathChildrenCache;
use crate::client::{Client, Consistency, CreateMode, CreateOptions};
use crate::error::{Error, Result};
use crate::watch::WatchKind;

use super::{join, wait_change};

/// A node kept in existence: created at start, and created again whenever it disappears
/// (deleted by someone, or its session lost and a new one opened). Usually ephemeral, to
/// advertise something while this process lives. Sequential modes are created with
/// protection, and `actual_path` tells the name each incarnation got.
pub struct PersistentNode {
    client: Client,
    data: Arc<Mutex<Bytes>>,
    actual: watch::Receiver<Option<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl PersistentNode {
    pub fn start(client: &Client, path: &str, mode: CreateMode, data: impl Into<Bytes>) -> PersistentNode {
        let data = Arc::new(Mutex::new(data.into()));
        let (tx, actual) = watch::channel(None);
        let task = tokio::spawn(keep(client.clone(), path.to_string(), mode, data.clone(), tx));
        PersistentNode { client: client.clone(), data, actual, task }
    }

    /// Waits until the node first exists; false if `timeout` passes first.
    pub async fn wait_for_initial_create(&self, timeout: Duration) -> bool {
        let mut rx = self.actual.clone();
        tokio::time::timeout(timeout, rx.wait_for(|a| a.is_some())).await.is_ok_and(|r| r.is_ok())
    }

    /// The node's path now (`None` while it is being created again).
    pub fn actual_path(&self) -> Option<String> {
        self.actual.borrow().clone()
    }

    /// Changes the data, now and for every later incarnation.
    pub async fn set_data(&self, data: impl Into<Bytes>) -> Result<()> {
        let data = data.into();
        *self.data.lock().unwrap() = data.clone();
        match self.actual_path() {
            Some(p) => self.client.set(&p, data, None).await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// Stops keeping the node and deletes it.
    pub async fn close(self) -> Result<()> {
        self.task.abort();
        match self.actual_path() {
            Some(p) => match self.client.delete(&p, None).await {
                Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
                Err(e) => Err(e),
            },
            None => Ok(()),
        }
    }
}

impl Drop for PersistentNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn keep(
    client: Client,
    path: String,
    mode: CreateMode,
    data: Arc<Mutex<Bytes>>,
    actual: watch::Sender<Option<String>>,
) {
    let mut pause = Duration::from_millis(50);
    let ephemeral = matches!(mode, CreateMode::Ephemeral | CreateMode::EphemeralSequential);
    let sequential = matches!(mode, CreateMode::PersistentSequential | CreateMode::EphemeralSequential);
    let mut states = client.state_listener();
    loop {
        let current = data.lock().unwrap().clone();
        let current_sent = current.clone();
        let created = if sequential {
            client
                .framework()
                .create()
                .creating_parents_if_needed()
                .with_mode(mode)
                .with_protection()
                .for_path(&path, current)
                .await
        } else {
            let opts = CreateOptions { mode, create_parents: true, ..Default::default() };
            match client.create(&path, current.clone(), &opts).await {
                Ok((p, _)) => Ok(p),
                Err(Error::NodeExists { .. }) => adopt(&client, &path, ephemeral, current).await,
                Err(e) => Err(e),
            }
        };
        let node = match created {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("keeping {path}: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        pause = Duration::from_millis(50);
        actual.send_replace(Some(node.clone()));
        // A `set_data` that ran while the node was being created only stored its data
        // (there was no path to write to); publish it now. Checked after the path is
        // published, so every later `set_data` writes the node itself.
        let latest = data.lock().unwrap().clone();
        if latest != current_sent {
            let _ = client.set(&node, latest, None).await;
        }
        // Until it goes: deleted, or its session lost.
        loop {
            let (stat, zxid) = match client.exists_at(&node, Consistency::Linearizable).await {
                Ok(r) => r,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let alive =
                stat.is_some_and(|s| !ephemeral || client.session().is_some_and(|me| me.id == s.ephemeral_owner));
            if !alive {
                break;
            }
            tokio::select! {
                _ = wait_change(&client, &node, WatchKind::Node, zxid, None) => {}
                s = states.recv() => {
                    if matches!(s, Ok(crate::client::SessionState::Lost)) {
                        // Wait for the new session before creating again.
                        let _ = tokio::time::timeout(Duration::from_secs(30), async {
                            while client.session().is_none() {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        })
                        .await;
                    }
                }
            }
        }
        actual.send_replace(None);
    }
}

/// The node exists already: ours to keep if it is persistent or this session's; another
/// session's ephemeral must go first (its session ending removes it).
async fn adopt(client: &Client, path: &str, ephemeral: bool, data: Bytes) -> Result<String> {
    let (stat, zxid) = client.exists_at(path, Consistency::Linearizable).await?;
    let Some(stat) = stat else { return Err(Error::NoNode { path: path.to_string() }) };
    let ours = !ephemeral || client.session().is_some_and(|s| s.id == stat.ephemeral_owner);
    if !ours {
        wait_change(client, path, WatchKind::Node, zxid, Some(std::time::Instant::now() + Duration::from_secs(5)))
            .await?;
        return Err(Error::NodeExists { path: path.to_string() });
    }
    client.set(path, data, None).await?;
    Ok(path.to_string())
}

/// Membership of a group (Curator's GroupMember): this member is an ephemeral node
/// `group/id` kept alive by a PersistentNode, and everyone's membership is followed by a
/// PathChildrenCache.
pub struct GroupMember {
    node: PersistentNode,
    cache: PathChildrenCache,
    group: String,
}

impl GroupMember {
    pub async fn start(client: &Client, group: &str, id: &str, payload: impl Into<Bytes>) -> Result<GroupMember> {
        let node = PersistentNode::start(client, &join(group, id), CreateMode::Ephemeral, payload);
        let cache = PathChildrenCache::start(client, group).await?;
        Ok(GroupMember { node, cache, group: group.to_string() })
    }

    /// Waits until this member is registered.
    pub async fn wait_registered(&self, timeout: Duration) -> bool {
        self.node.wait_for_initial_create(timeout).await
    }

    /// The members now: id to payload.
    pub fn current_members(&self) -> BTreeMap<String, Bytes> {
        let prefix = if self.group == "/" { 1 } else { self.group.len() + 1 };
        self.cache.current().into_iter().map(|d| (d.path[prefix..].to_string(), d.data)).collect()
    }

    /// Membership changes.
    pub fn listen(&self) -> tokio::sync::broadcast::Receiver<crate::cache::CacheEvent> {
        self.cache.listen()
    }

    pub async fn set_this_data(&self, payload: impl Into<Bytes>) -> Result<()> {
        self.node.set_data(payload).await
    }

    /// Leaves the group.
    pub async fn close(self) -> Result<()> {
        self.node.close().await
    }
}
