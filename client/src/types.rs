//! The client's value types: connect strings, sessions and their states, create options,
//! read consistency, transaction operations and their results.

use std::time::Duration;

use bytes::Bytes;
use grove_proto::v1 as pb;

use crate::error::{Error, Result};

pub use pb::{Acl, CreateMode, Stat};

/// Servers and an optional chroot, from `host:port,host:port/chroot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    pub servers: Vec<String>,
    pub chroot: Option<String>,
}

impl ConnectString {
    pub fn parse(s: &str) -> Result<ConnectString> {
        let s = s.trim();
        let (hosts, chroot) = match s.find('/') {
            Some(i) if !s[..i].ends_with(':') && !s[..i].contains("://") => (&s[..i], Some(&s[i..])),
            _ => (s, None),
        };
        let servers: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| if h.contains(':') { h.to_string() } else { format!("{h}:7181") })
            .collect();
        if servers.is_empty() {
            return Err(Error::BadArguments { message: format!("no server in connect string {s:?}") });
        }
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                let c = c.trim_end_matches('/');
                if c.contains("//") {
                    return Err(Error::BadArguments { message: format!("invalid chroot {c:?}") });
                }
                Some(c.to_string())
            }
        };
        Ok(ConnectString { servers, chroot })
    }
}

/// A session this client holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: u64,
    pub secret: Bytes,
    pub timeout: Duration,
}

impl Session {
    pub fn secret_hex(&self) -> String {
        self.secret.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The life of the client's session, as a listener sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// No session opened.
    None,
    Connected,
    /// Keepalives are failing; the session may still be alive on the servers.
    Suspended,
    /// Keepalives work again after a suspension (possibly through another server).
    Reconnected,
    /// The servers expired or closed the session; its ephemerals are gone.
    Lost,
    Closed,
}

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub mode: CreateMode,
    pub ttl: Option<Duration>,
    pub create_parents: bool,
    /// The new node's ACL; empty: open to everyone (`world:anyone:cdrwa`).
    pub acl: Vec<Acl>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions { mode: CreateMode::Persistent, ttl: None, create_parents: false, acl: Vec::new() }
    }
}

impl CreateOptions {
    pub fn mode(mode: CreateMode) -> Self {
        CreateOptions { mode, ..Default::default() }
    }

    /// The same options with an ACL for the new node.
    pub fn with_acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = acl;
        self
    }
}

/// Read freshness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consistency {
    #[default]
    Linearizable,
    Sequential,
}

/// One operation of a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    Create {
        path: String,
        data: Bytes,
        options: CreateOptions,
    },
    Delete {
        path: String,
        version: Option<i32>,
    },
    Set {
        path: String,
        data: Bytes,
        version: Option<i32>,
    },
    Check {
        path: String,
        version: Option<i32>,
    },
    /// Passes only while `token` is a current grant of the lock at `path`: put it first so
    /// the transaction is refused (FENCED) if the caller lost the lock.
    CheckFence {
        path: String,
        token: u64,
    },
}

/// What a successful operation of a transaction returned.
#[derive(Debug, Clone, PartialEq)]
pub enum OpResult {
    Created { path: String, stat: Stat },
    Set { stat: Stat },
    Deleted,
    Checked,
    Fenced,
}

/// A page of children.
#[derive(Debug, Clone, Default)]
pub struct Children {
    pub names: Vec<String>,
    pub stats: Vec<Stat>,
    pub stat: Stat,
    pub next_page_token: String,
    pub zxid: u64,
}
