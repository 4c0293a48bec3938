//! A distributed FIFO queue (Curator's DistributedQueue): items are persistent sequential
//! nodes `qn-NNNNNNNNNN`; a consumer takes the oldest by deleting it, and only the consumer
//! whose delete succeeds gets the item.

use std::time::Duration;

use bytes::Bytes;

use crate::client::{Client, Consistency, CreateMode, CreateOptions};
use crate::error::{Error, Result};
use crate::watch::WatchKind;

use super::{deadline, join, wait_change};

const ITEM_PREFIX: &str = "qn-";

#[derive(Clone)]
pub struct DistributedQueue {
    client: Client,
    path: String,
}

impl DistributedQueue {
    pub fn new(client: &Client, path: &str) -> Self {
        DistributedQueue { client: client.clone(), path: path.to_string() }
    }

    /// Adds an item; returns its node.
    pub async fn put(&self, item: impl Into<Bytes>) -> Result<String> {
        let opts = CreateOptions { mode: CreateMode::PersistentSequential, create_parents: true, ..Default::default() };
        Ok(self.client.create(&join(&self.path, ITEM_PREFIX), item, &opts).await?.0)
    }

    /// Item nodes, oldest first, and the zxid of the listing.
    async fn items(&self) -> Result<(Vec<String>, u64)> {
        match self.client.children_with(&self.path, Consistency::Linearizable, false).await {
            Ok(c) => {
                let mut names: Vec<String> = c.names.into_iter().filter(|n| n.starts_with(ITEM_PREFIX)).collect();
                names.sort();
                Ok((names, c.zxid))
            }
            Err(Error::NoNode { .. }) => Ok((Vec::new(), self.client.last_zxid())),
            Err(e) => Err(e),
        }
    }

    /// Takes the oldest item if there is one.
    pub async fn try_take(&self) -> Result<Option<Bytes>> {
        Ok(self.take_one().await?.0)
    }

    async fn take_one(&self) -> Result<(Option<Bytes>, u64)> {
        let (names, zxid) = self.items().await?;
        for name in names {
            let node = join(&self.path, &name);
            let (data, stat) = match self.client.get(&node).await {
                Ok(r) => r,
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            };
            // Whoever deletes it owns it; a consumer that loses moves to the next item.
            match self.client.delete(&node, Some(stat.version)).await {
                Ok(()) => return Ok((Some(data), zxid)),
                Err(Error::NoNode { .. } | Error::BadVersion { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok((None, zxid))
    }

    /// Waits for an item and takes it.
    pub async fn take(&self) -> Result<Bytes> {
        loop {
            if let Some(item) = self.poll(Duration::from_secs(3600)).await? {
                return Ok(item);
            }
        }
    }

    /// Takes an item, waiting at most `timeout` for one.
    pub async fn poll(&self, timeout: Duration) -> Result<Option<Bytes>> {
        let deadline = deadline(Some(timeout));
        loop {
            let (item, zxid) = self.take_one().await?;
            if item.is_some() {
                return Ok(item);
            }
            if !wait_change(&self.client, &self.path, WatchKind::Children, zxid, deadline).await? {
                return Ok(None);
            }
        }
    }

    /// The oldest item, left in place.
    pub async fn peek(&self) -> Result<Option<Bytes>> {
        for name in self.items().await?.0 {
            match self.client.get(&join(&self.path, &name)).await {
                Ok((data, _)) => return Ok(Some(data)),
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    pub async fn len(&self) -> Result<usize> {
        Ok(self.items().await?.0.len())
    }

    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }
}
