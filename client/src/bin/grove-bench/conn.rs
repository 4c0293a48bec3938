//! One benchmark client: a Grove client, or a ZooKeeper session for comparison.

use std::time::Duration;

use grove_client::{Client, Consistency, CreateOptions, LockRequest, WatchKind, WatchMessage, WatchSpec};

use crate::Target;

/// One benchmark client: a Grove client, or a ZooKeeper session for comparison.
#[derive(Clone)]
pub enum Conn {
    Grove(Client),
    #[cfg(feature = "zk-compare")]
    Zk(zookeeper_client::Client),
}

pub type OpResult = Result<(), String>;

impl Conn {
    /// A connection; with `session`, a Grove client opens a session (ZooKeeper clients
    /// always have one).
    pub async fn open(target: Target, server: &str, session: Option<Duration>) -> Result<Conn, String> {
        match target {
            Target::Grove => {
                let mut b = Client::builder(server).request_timeout(Duration::from_secs(10));
                if let Some(t) = session {
                    b = b.session_timeout(t);
                }
                b.start().await.map(Conn::Grove).map_err(|e| e.to_string())
            }
            #[cfg(feature = "zk-compare")]
            Target::Zookeeper => {
                zookeeper_client::Client::connect(server).await.map(Conn::Zk).map_err(|e| e.to_string())
            }
            #[cfg(not(feature = "zk-compare"))]
            Target::Zookeeper => Err("this grove-bench was built without --features zk-compare".into()),
        }
    }

    pub async fn create(&self, path: &str, data: &[u8]) -> OpResult {
        match self {
            Conn::Grove(c) => {
                c.create(path, data.to_vec(), &CreateOptions::default()).await.map(|_| ()).map_err(|e| e.to_string())
            }
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => {
                let opts = zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
                z.create(path, data, &opts).await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }

    pub async fn set(&self, path: &str, data: &[u8]) -> OpResult {
        match self {
            Conn::Grove(c) => c.set(path, data.to_vec(), None).await.map(|_| ()).map_err(|e| e.to_string()),
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => z.set_data(path, data, None).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }

    /// A read; linearizable is a quorum read in Grove, `sync` + read in ZooKeeper.
    pub async fn get(&self, path: &str, linearizable: bool) -> OpResult {
        match self {
            Conn::Grove(c) => {
                let level = if linearizable { Consistency::Linearizable } else { Consistency::Sequential };
                c.get_with(path, level).await.map(|_| ()).map_err(|e| e.to_string())
            }
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => {
                if linearizable {
                    z.sync(path).await.map_err(|e| e.to_string())?;
                }
                z.get_data(path).await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }

    /// Takes the mutex `dir` and releases it.
    pub async fn lock_cycle(&self, dir: &str) -> OpResult {
        match self {
            Conn::Grove(c) => {
                let grant = c.acquire(&LockRequest::mutex(dir)).await.map_err(|e| e.to_string())?;
                c.release(&grant.nodes[0]).await.map(|_| ()).map_err(|e| e.to_string())
            }
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => {
                let prefix = zookeeper_client::LockPrefix::new_curator(dir, "lock-").map_err(|e| e.to_string())?;
                let lock =
                    z.lock(prefix, b"", zookeeper_client::Acls::anyone_all()).await.map_err(|e| e.to_string())?;
                // Release by an awaited delete, as Curator's release() does; the lock
                // handle's own drop would delete in the background, unmeasured. Forgetting
                // it leaks only its path string.
                let path = lock.lock_path().to_string();
                std::mem::forget(lock);
                z.delete(&path, None).await.map_err(|e| e.to_string())
            }
        }
    }

    pub async fn delete(&self, path: &str) -> OpResult {
        match self {
            Conn::Grove(c) => c.delete(path, None).await.map_err(|e| e.to_string()),
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => z.delete(path, None).await.map_err(|e| e.to_string()),
        }
    }

    pub async fn children(&self, path: &str) -> Result<Vec<String>, String> {
        match self {
            Conn::Grove(c) => c.children(path).await.map_err(|e| e.to_string()),
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => z.get_children(path).await.map(|(c, _)| c).map_err(|e| e.to_string()),
        }
    }

    /// Calls `notify` for every change of `path`, until the connection ends; `ready` once
    /// the watch is in place.
    pub async fn watch(&self, path: &str, ready: tokio::sync::oneshot::Sender<()>, notify: impl Fn() + Send) {
        match self {
            Conn::Grove(c) => {
                let Ok(mut w) = c.watch_stream().await else { return };
                if w.watch(WatchSpec::new(path, WatchKind::Node)).await.is_err() {
                    return;
                }
                let mut ready = Some(ready);
                while let Ok(Some(m)) = w.next().await {
                    match m {
                        WatchMessage::Created { .. } => {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                        WatchMessage::Events { .. } => notify(),
                        _ => {}
                    }
                }
            }
            #[cfg(feature = "zk-compare")]
            Conn::Zk(z) => {
                let Ok(mut w) = z.watch(path, zookeeper_client::AddWatchMode::Persistent).await else { return };
                let _ = ready.send(());
                loop {
                    let e = w.changed().await;
                    if e.event_type == zookeeper_client::EventType::NodeDataChanged {
                        notify();
                    } else if e.event_type == zookeeper_client::EventType::Session {
                        return;
                    }
                }
            }
        }
    }
}
