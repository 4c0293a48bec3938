//! Curator's fluent API over a `Client`:
//!
//! ```no_run
//! # async fn demo(client: grove_client::Client) -> grove_client::Result<()> {
//! use grove_client::CreateMode;
//! let f = client.framework();
//! let path = f
//!     .create()
//!     .creating_parents_if_needed()
//!     .with_mode(CreateMode::EphemeralSequential)
//!     .with_protection()
//!     .for_path("/app/workers/w-", "payload")
//!     .await?;
//! let mut stat = Default::default();
//! let data = f.get_data().storing_stat_in(&mut stat).for_path(&path).await?;
//! f.set_data().with_version(stat.version).for_path(&path, data).await?;
//! f.delete().deleting_children_if_needed().guaranteed().for_path("/app").await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use bytes::Bytes;

use crate::client::{Client, Consistency, CreateMode, CreateOptions, Op, OpResult, Stat};
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// The prefix of a protected node's name: `_c_<32 hex digits>-`, as Curator names them.
pub const PROTECTED_PREFIX: &str = "_c_";

/// Curator-style builders on a client (cheap to clone).
#[derive(Clone)]
pub struct Framework {
    client: Client,
}

impl Client {
    /// The fluent, Curator-style API on this client.
    pub fn framework(&self) -> Framework {
        Framework { client: self.clone() }
    }
}

impl Framework {
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn create(&self) -> CreateBuilder<'_> {
        CreateBuilder { client: &self.client, options: CreateOptions::default(), protected: false }
    }

    pub fn get_data(&self) -> GetDataBuilder<'_, '_> {
        GetDataBuilder { client: &self.client, stat: None, consistency: Consistency::Linearizable }
    }

    pub fn set_data(&self) -> SetDataBuilder<'_> {
        SetDataBuilder { client: &self.client, version: None }
    }

    pub fn delete(&self) -> DeleteBuilder<'_> {
        DeleteBuilder { client: &self.client, version: None, children: false, guaranteed: false }
    }

    pub fn get_children(&self) -> GetChildrenBuilder<'_, '_> {
        GetChildrenBuilder { client: &self.client, stat: None, consistency: Consistency::Linearizable }
    }

    pub fn check_exists(&self) -> ExistsBuilder<'_> {
        ExistsBuilder { client: &self.client, consistency: Consistency::Linearizable }
    }

    /// Operations applied all-or-nothing by `commit`.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction { client: &self.client, ops: Vec::new() }
    }

    /// Brings the client's server up to date with the leader; returns the zxid.
    pub async fn sync(&self, path: &str) -> Result<u64> {
        self.client.sync(path).await
    }
}

pub struct CreateBuilder<'a> {
    client: &'a Client,
    options: CreateOptions,
    protected: bool,
}

impl CreateBuilder<'_> {
    pub fn creating_parents_if_needed(mut self) -> Self {
        self.options.create_parents = true;
        self
    }

    pub fn with_mode(mut self, mode: CreateMode) -> Self {
        self.options.mode = mode;
        self
    }

    /// For the TTL modes.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.options.ttl = Some(ttl);
        self
    }

    /// Names the node `_c_<id>-<name>`: if the create's outcome is unknown after a
    /// connection loss, the node is found by that id after reconnecting instead of being
    /// created twice (or, for an ephemeral, leaked). Grove's request ids already make a
    /// retried create apply once; protection also covers a retry policy that gave up.
    pub fn with_protection(mut self) -> Self {
        self.protected = true;
        self
    }

    /// Creates the node; returns its path (with the sequence number, if sequential).
    pub async fn for_path(self, path: &str, data: impl Into<Bytes>) -> Result<String> {
        let data = data.into();
        if !self.protected {
            return Ok(self.client.create(path, data, &self.options).await?.0);
        }
        let (parent, name) = split(path)?;
        let marker = format!("{PROTECTED_PREFIX}{:032x}-", rand::random::<u128>());
        let full = join(parent, &format!("{marker}{name}"));
        match self.client.create(&full, data, &self.options).await {
            Ok((p, _)) => Ok(p),
            Err(e @ (Error::ConnectionLoss { .. } | Error::NoQuorum { .. })) => {
                // Outcome unknown: look for our marker once the ensemble answers again.
                let found = find_protected(self.client, parent, &marker).await?;
                found.ok_or(e)
            }
            Err(e) => Err(e),
        }
    }
}

/// The node a protected create made, if it exists: retried until the servers answer.
async fn find_protected(client: &Client, parent: &str, marker: &str) -> Result<Option<String>> {
    let policy = RetryPolicy::exponential_backoff(Duration::from_millis(100), Duration::from_secs(2), 10);
    let started = std::time::Instant::now();
    let mut retries = 0;
    loop {
        match client.children(parent).await {
            Ok(names) => return Ok(names.into_iter().find(|n| n.starts_with(marker)).map(|n| join(parent, &n))),
            Err(Error::NoNode { .. }) => return Ok(None),
            Err(e) if e.is_transient() => match policy.next_sleep(retries, started.elapsed()) {
                Some(p) => {
                    retries += 1;
                    tokio::time::sleep(p).await;
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

fn split(path: &str) -> Result<(&str, &str)> {
    match path.rfind('/') {
        Some(i) if path.starts_with('/') => Ok((if i == 0 { "/" } else { &path[..i] }, &path[i + 1..])),
        _ => Err(Error::BadArguments { message: format!("path must start with '/': {path:?}") }),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

pub struct GetDataBuilder<'a, 's> {
    client: &'a Client,
    stat: Option<&'s mut Stat>,
    consistency: Consistency,
}

impl<'a, 's> GetDataBuilder<'a, 's> {
    pub fn storing_stat_in(mut self, stat: &'s mut Stat) -> Self {
        self.stat = Some(stat);
        self
    }

    /// Reads this server's state without confirming it is current (ZooKeeper's default).
    pub fn sequential(mut self) -> Self {
        self.consistency = Consistency::Sequential;
        self
    }

    pub async fn for_path(self, path: &str) -> Result<Bytes> {
        let (data, stat) = self.client.get_with(path, self.consistency).await?;
        if let Some(out) = self.stat {
            *out = stat;
        }
        Ok(data)
    }
}

pub struct SetDataBuilder<'a> {
    client: &'a Client,
    version: Option<i32>,
}

impl SetDataBuilder<'_> {
    /// Only if the node is at this version (compare-and-set).
    pub fn with_version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }

    pub async fn for_path(self, path: &str, data: impl Into<Bytes>) -> Result<Stat> {
        self.client.set(path, data, self.version).await
    }
}

pub struct DeleteBuilder<'a> {
    client: &'a Client,
    version: Option<i32>,
    children: bool,
    guaranteed: bool,
}

impl DeleteBuilder<'_> {
    pub fn with_version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }

    /// Deletes the node's descendants first.
    pub fn deleting_children_if_needed(mut self) -> Self {
        self.children = true;
        self
    }

    /// If the delete fails for want of a connection, keeps retrying it in the background
    /// until it succeeds or the node is gone (the error is still returned).
    pub fn guaranteed(mut self) -> Self {
        self.guaranteed = true;
        self
    }

    pub async fn for_path(self, path: &str) -> Result<()> {
        let result = delete(self.client, path, self.version, self.children).await;
        match result {
            Err(e) if self.guaranteed && e.is_transient() => {
                let (client, path, version, children) =
                    (self.client.clone(), path.to_string(), self.version, self.children);
                tokio::spawn(async move {
                    let mut pause = Duration::from_millis(100);
                    loop {
                        tokio::time::sleep(pause).await;
                        match delete(&client, &path, version, children).await {
                            Ok(()) | Err(Error::NoNode { .. }) => return,
                            Err(e) if e.is_transient() => pause = (pause * 2).min(Duration::from_secs(5)),
                            Err(e) => {
                                tracing::warn!("guaranteed delete of {path} gave up: {e}");
                                return;
                            }
                        }
                    }
                });
                Err(e)
            }
            r => r,
        }
    }
}

/// Deletes a node (and with `children`, its subtree, deepest first). Nodes that vanish
/// meanwhile are not an error below the top.
async fn delete(client: &Client, path: &str, version: Option<i32>, children: bool) -> Result<()> {
    if children {
        delete_descendants(client, path).await?;
    }
    client.delete(path, version).await
}

fn delete_descendants<'a>(client: &'a Client, path: &'a str) -> futures::future::BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let names = match client.children(path).await {
            Ok(names) => names,
            Err(Error::NoNode { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        for name in names {
            let child = join(path, &name);
            delete_descendants(client, &child).await?;
            match client.delete(&child, None).await {
                Ok(()) | Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
}

pub struct GetChildrenBuilder<'a, 's> {
    client: &'a Client,
    stat: Option<&'s mut Stat>,
    consistency: Consistency,
}

impl<'a, 's> GetChildrenBuilder<'a, 's> {
    pub fn storing_stat_in(mut self, stat: &'s mut Stat) -> Self {
        self.stat = Some(stat);
        self
    }

    pub fn sequential(mut self) -> Self {
        self.consistency = Consistency::Sequential;
        self
    }

    /// The children's names, sorted.
    pub async fn for_path(self, path: &str) -> Result<Vec<String>> {
        let c = self.client.children_with(path, self.consistency, false).await?;
        if let Some(out) = self.stat {
            *out = c.stat;
        }
        Ok(c.names)
    }
}

pub struct ExistsBuilder<'a> {
    client: &'a Client,
    consistency: Consistency,
}

impl ExistsBuilder<'_> {
    pub fn sequential(mut self) -> Self {
        self.consistency = Consistency::Sequential;
        self
    }

    pub async fn for_path(self, path: &str) -> Result<Option<Stat>> {
        Ok(self.client.exists_at(path, self.consistency).await?.0)
    }
}

/// A transaction being built (Curator's `transaction().forOperations(...)`).
pub struct Transaction<'a> {
    client: &'a Client,
    ops: Vec<Op>,
}

impl Transaction<'_> {
    pub fn create(mut self, path: &str, data: impl Into<Bytes>, options: CreateOptions) -> Self {
        self.ops.push(Op::Create { path: path.to_string(), data: data.into(), options });
        self
    }

    pub fn set_data(mut self, path: &str, data: impl Into<Bytes>, version: Option<i32>) -> Self {
        self.ops.push(Op::Set { path: path.to_string(), data: data.into(), version });
        self
    }

    pub fn delete(mut self, path: &str, version: Option<i32>) -> Self {
        self.ops.push(Op::Delete { path: path.to_string(), version });
        self
    }

    /// The node exists (at `version`, if given).
    pub fn check(mut self, path: &str, version: Option<i32>) -> Self {
        self.ops.push(Op::Check { path: path.to_string(), version });
        self
    }

    /// `token` is a current grant of the lock at `path` (see `Op::CheckFence`).
    pub fn check_fence(mut self, path: &str, token: u64) -> Self {
        self.ops.push(Op::CheckFence { path: path.to_string(), token });
        self
    }

    /// Applies every operation or none. A failed transaction is an error naming the
    /// operation that failed: `Err((index, error))` inside.
    pub async fn commit(self) -> Result<std::result::Result<Vec<OpResult>, (usize, Error)>> {
        self.client.multi(&self.ops).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_parent_and_name() {
        assert_eq!(split("/a/b").unwrap(), ("/a", "b"));
        assert_eq!(split("/a").unwrap(), ("/", "a"));
        assert_eq!(split("/a/").unwrap(), ("/a", ""));
        assert!(split("a").is_err());
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }
}
