//! Grove's Rust client.
//!
//! ```no_run
//! # async fn demo() -> grove_client::Result<()> {
//! use grove_client::{Client, CreateOptions};
//! let client = Client::connect("127.0.0.1:7181")?;
//! client.create("/app1", "hehe", &CreateOptions::default()).await?;
//! let (data, stat) = client.get("/app1").await?;
//! assert_eq!(&data[..], b"hehe");
//! client.set("/app1", "new", Some(stat.version)).await?;
//! # Ok(()) }
//! ```

pub mod acl;
pub mod cache;
pub mod client;
mod cluster;
mod connection;
pub mod coordination;
pub mod error;
pub mod framework;
pub mod quotas;
pub mod recipes;
pub mod retry;
mod session;
pub mod types;
pub mod watch;

pub use cache::{CacheEvent, ChildData, CuratorCache, NodeCache, PathChildrenCache, TreeCache};
pub use client::{Client, ClientBuilder};
pub use connection::TlsOptions;
pub use coordination::{Grant, LeaderInfo, LeaderObserver, LockEntry, LockKind, LockRequest};
pub use error::{Error, Result};
pub use framework::Framework;
pub use grove_proto::backup;
pub use grove_proto::v1 as proto;
pub use quotas::{Quota, QuotaChange};
pub use retry::RetryPolicy;
pub use types::{
    Acl, Children, ConnectString, Consistency, CreateMode, CreateOptions, Op, OpResult, Session, SessionState, Stat,
};
pub use watch::{EventType, WatchEvent, WatchKind, WatchMessage, WatchSpec, WatchStream};
