//! Barriers (Curator's DistributedBarrier and DistributedDoubleBarrier), from nodes and
//! watches.

use std::time::Duration;

use crate::client::{Client, Consistency, CreateMode, CreateOptions};
use crate::error::{Error, Result};
use crate::watch::WatchKind;

use super::{deadline, join, wait_change};

/// Holds everyone who waits on it until it is removed.
#[derive(Clone)]
pub struct DistributedBarrier {
    client: Client,
    path: String,
}

impl DistributedBarrier {
    pub fn new(client: &Client, path: &str) -> Self {
        DistributedBarrier { client: client.clone(), path: path.to_string() }
    }

    /// Raises the barrier (idempotent).
    pub async fn set_barrier(&self) -> Result<()> {
        let opts = CreateOptions { create_parents: true, ..Default::default() };
        match self.client.create(&self.path, "", &opts).await {
            Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lowers it, releasing the waiters (idempotent).
    pub async fn remove_barrier(&self) -> Result<()> {
        match self.client.delete(&self.path, None).await {
            Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until the barrier is down; false if `timeout` passes first.
    pub async fn wait_on_barrier(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline(timeout);
        loop {
            let (stat, zxid) = self.client.exists_at(&self.path, Consistency::Linearizable).await?;
            if stat.is_none() {
                return Ok(true);
            }
            if !wait_change(&self.client, &self.path, WatchKind::Node, zxid, deadline).await? {
                return Ok(false);
            }
        }
    }
}

/// Lets a group start together and finish together: `enter` returns once `member_count`
/// members have entered, `leave` once all of them have left. Members are ephemeral nodes
/// of the client's session (a member that dies leaves).
pub struct DistributedDoubleBarrier {
    client: Client,
    path: String,
    member_count: usize,
    our_path: String,
}

const READY: &str = "ready";

impl DistributedDoubleBarrier {
    pub fn new(client: &Client, path: &str, member_count: usize) -> Self {
        let id = format!("{:016x}", rand::random::<u64>());
        DistributedDoubleBarrier {
            client: client.clone(),
            path: path.to_string(),
            member_count,
            our_path: join(path, &id),
        }
    }

    /// (member nodes other than `ready`, whether `ready` exists, zxid)
    async fn members(&self) -> Result<(Vec<String>, bool, u64)> {
        match self.client.children_with(&self.path, Consistency::Linearizable, false).await {
            Ok(c) => {
                let ready = c.names.iter().any(|n| n == READY);
                Ok((c.names.into_iter().filter(|n| n != READY).collect(), ready, c.zxid))
            }
            Err(Error::NoNode { .. }) => Ok((vec![], false, self.client.last_zxid())),
            Err(e) => Err(e),
        }
    }

    /// Enters and waits for the others; false if `timeout` passes first (then it leaves
    /// again, so the count stays right).
    pub async fn enter(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline(timeout);
        let opts = CreateOptions { mode: CreateMode::Ephemeral, create_parents: true, ..Default::default() };
        match self.client.create(&self.our_path, "", &opts).await {
            Ok(_) | Err(Error::NodeExists { .. }) => {}
            Err(e) => return Err(e),
        }
        loop {
            let (members, ready, zxid) = self.members().await?;
            if ready {
                return Ok(true);
            }
            if members.len() >= self.member_count {
                // The last to arrive opens the barrier for everyone.
                let opts = CreateOptions { create_parents: true, ..Default::default() };
                match self.client.create(&join(&self.path, READY), "", &opts).await {
                    Ok(_) | Err(Error::NodeExists { .. }) => return Ok(true),
                    Err(e) => return Err(e),
                }
            }
            if !wait_change(&self.client, &self.path, WatchKind::Children, zxid, deadline).await? {
                let _ = self.client.delete(&self.our_path, None).await;
                return Ok(false);
            }
        }
    }

    /// Leaves and waits until every member has left; false if `timeout` passes first.
    pub async fn leave(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline(timeout);
        match self.client.delete(&self.our_path, None).await {
            Ok(()) | Err(Error::NoNode { .. }) => {}
            Err(e) => return Err(e),
        }
        loop {
            let (members, ready, zxid) = self.members().await?;
            if members.is_empty() {
                if ready {
                    match self.client.delete(&join(&self.path, READY), None).await {
                        Ok(()) | Err(Error::NoNode { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                return Ok(true);
            }
            if !wait_change(&self.client, &self.path, WatchKind::Children, zxid, deadline).await? {
                return Ok(false);
            }
        }
    }
}
