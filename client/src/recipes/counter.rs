//! Counters (Curator's SharedCount and DistributedAtomicLong): a number in a node, changed
//! by compare-and-set on the node's version.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::cache::{CacheEvent, NodeCache};
use crate::client::{Client, CreateOptions};
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// A value with the node version it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionedValue<T> {
    pub version: i32,
    pub value: T,
}

fn decode_i32(path: &str, data: &[u8]) -> Result<i32> {
    let bytes: [u8; 4] =
        data.try_into().map_err(|_| Error::BadArguments { message: format!("{path} does not hold a 4-byte count") })?;
    Ok(i32::from_be_bytes(bytes))
}

fn decode_i64(path: &str, data: &[u8]) -> Result<i64> {
    if data.is_empty() {
        return Ok(0);
    }
    let bytes: [u8; 8] =
        data.try_into().map_err(|_| Error::BadArguments { message: format!("{path} does not hold an 8-byte long") })?;
    Ok(i64::from_be_bytes(bytes))
}

/// Creates `path` with `data` unless it exists.
async fn ensure(client: &Client, path: &str, data: Vec<u8>) -> Result<()> {
    match client.create(path, data, &CreateOptions { create_parents: true, ..Default::default() }).await {
        Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A shared 32-bit count everyone sees (big-endian, as Curator stores it), followed by a
/// cache so reads are local and changes are announced.
pub struct SharedCount {
    client: Client,
    path: String,
    cache: NodeCache,
    changes: watch::Receiver<i32>,
    _task: tokio::task::JoinHandle<()>,
}

impl SharedCount {
    /// Creates the count with `seed` if it does not exist, and starts following it.
    pub async fn start(client: &Client, path: &str, seed: i32) -> Result<SharedCount> {
        ensure(client, path, seed.to_be_bytes().to_vec()).await?;
        let cache = NodeCache::start(client, path).await?;
        let current = cache.current().map(|d| decode_i32(path, &d.data)).transpose()?.unwrap_or(seed);
        let (tx, changes) = watch::channel(current);
        let mut events = cache.listen();
        let p = path.to_string();
        let task = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(CacheEvent::Added(d)) | Ok(CacheEvent::Updated { new: d, .. }) => {
                        if let Ok(v) = decode_i32(&p, &d.data) {
                            tx.send_replace(v);
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        });
        Ok(SharedCount { client: client.clone(), path: path.to_string(), cache, changes, _task: task })
    }

    /// The count as last seen (local).
    pub fn get_count(&self) -> i32 {
        *self.changes.borrow()
    }

    /// The count and its version as last seen, for `try_set_count`.
    pub fn get_versioned_value(&self) -> Result<VersionedValue<i32>> {
        let d = self.cache.current().ok_or_else(|| Error::NoNode { path: self.path.clone() })?;
        Ok(VersionedValue { version: d.stat.version, value: decode_i32(&self.path, &d.data)? })
    }

    /// Sets the count unconditionally.
    pub async fn set_count(&self, value: i32) -> Result<()> {
        self.client.set(&self.path, value.to_be_bytes().to_vec(), None).await.map(|_| ())
    }

    /// Sets the count only if it is still at `previous`'s version; false if someone changed
    /// it first.
    pub async fn try_set_count(&self, previous: VersionedValue<i32>, value: i32) -> Result<bool> {
        match self.client.set(&self.path, value.to_be_bytes().to_vec(), Some(previous.version)).await {
            Ok(_) => Ok(true),
            Err(Error::BadVersion { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every new count (Curator's SharedCountListener).
    pub fn listen(&self) -> watch::Receiver<i32> {
        self.changes.clone()
    }
}

/// The outcome of an atomic operation: whether it happened, and the values before and
/// after (Curator's AtomicValue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicValue {
    pub succeeded: bool,
    pub pre_value: i64,
    pub post_value: i64,
}

/// A 64-bit counter changed by optimistic compare-and-set, retried under a retry policy
/// when another writer wins (Curator's DistributedAtomicLong).
#[derive(Clone)]
pub struct DistributedAtomicLong {
    client: Client,
    path: String,
    retry: RetryPolicy,
}

impl DistributedAtomicLong {
    /// Retries a lost race up to 50 times with a short backoff.
    pub fn new(client: &Client, path: &str) -> Self {
        Self::with_retry(
            client,
            path,
            RetryPolicy::exponential_backoff(Duration::from_millis(1), Duration::from_millis(100), 50),
        )
    }

    pub fn with_retry(client: &Client, path: &str, retry: RetryPolicy) -> Self {
        DistributedAtomicLong { client: client.clone(), path: path.to_string(), retry }
    }

    /// The current value (0 if the counter was never set).
    pub async fn get(&self) -> Result<AtomicValue> {
        match self.client.get(&self.path).await {
            Ok((data, _)) => {
                let v = decode_i64(&self.path, &data)?;
                Ok(AtomicValue { succeeded: true, pre_value: v, post_value: v })
            }
            Err(Error::NoNode { .. }) => Ok(AtomicValue { succeeded: true, pre_value: 0, post_value: 0 }),
            Err(e) => Err(e),
        }
    }

    /// Applies `f` to the current value by compare-and-set until it wins or the policy
    /// gives up (`succeeded` false). `f` returning `None` means: do not change it.
    async fn modify(&self, f: impl Fn(i64) -> Option<i64>) -> Result<AtomicValue> {
        let started = Instant::now();
        let mut retries = 0;
        loop {
            let (pre, version) = match self.client.get(&self.path).await {
                Ok((data, stat)) => (decode_i64(&self.path, &data)?, Some(stat.version)),
                Err(Error::NoNode { .. }) => (0, None),
                Err(e) => return Err(e),
            };
            let Some(post) = f(pre) else {
                return Ok(AtomicValue { succeeded: false, pre_value: pre, post_value: pre });
            };
            let data = post.to_be_bytes().to_vec();
            let won = match version {
                Some(v) => match self.client.set(&self.path, data, Some(v)).await {
                    Ok(_) => true,
                    Err(Error::BadVersion { .. } | Error::NoNode { .. }) => false,
                    Err(e) => return Err(e),
                },
                None => {
                    let opts = CreateOptions { create_parents: true, ..Default::default() };
                    match self.client.create(&self.path, data, &opts).await {
                        Ok(_) => true,
                        Err(Error::NodeExists { .. }) => false,
                        Err(e) => return Err(e),
                    }
                }
            };
            if won {
                return Ok(AtomicValue { succeeded: true, pre_value: pre, post_value: post });
            }
            match self.retry.next_sleep(retries, started.elapsed()) {
                Some(pause) => {
                    retries += 1;
                    tokio::time::sleep(pause).await;
                }
                None => return Ok(AtomicValue { succeeded: false, pre_value: pre, post_value: pre }),
            }
        }
    }

    pub async fn add(&self, delta: i64) -> Result<AtomicValue> {
        self.modify(|v| Some(v.wrapping_add(delta))).await
    }

    pub async fn subtract(&self, delta: i64) -> Result<AtomicValue> {
        self.modify(|v| Some(v.wrapping_sub(delta))).await
    }

    pub async fn increment(&self) -> Result<AtomicValue> {
        self.add(1).await
    }

    pub async fn decrement(&self) -> Result<AtomicValue> {
        self.subtract(1).await
    }

    /// Sets `new` only if the value is `expected` now.
    pub async fn compare_and_set(&self, expected: i64, new: i64) -> Result<AtomicValue> {
        self.modify(|v| (v == expected).then_some(new)).await
    }

    /// Sets `new` whatever the value, by compare-and-set (so `pre_value` is exact).
    pub async fn try_set(&self, new: i64) -> Result<AtomicValue> {
        self.modify(|_| Some(new)).await
    }

    /// Sets `new` with a plain write.
    pub async fn force_set(&self, new: i64) -> Result<()> {
        match self.client.set(&self.path, new.to_be_bytes().to_vec(), None).await {
            Ok(_) => Ok(()),
            Err(Error::NoNode { .. }) => ensure(&self.client, &self.path, new.to_be_bytes().to_vec()).await,
            Err(e) => Err(e),
        }
    }
}
