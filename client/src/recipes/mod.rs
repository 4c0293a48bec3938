//! Curator's recipes on Grove.
//!
//! Locks, semaphores and elections are decided by the servers (`grove.v1.Locks`,
//! `grove.v1.Election`): a recipe here is a thin, RAII-shaped handle on those calls, and a
//! contended hand-off is one committed entry rather than a chain of client round trips.
//! The other recipes (barriers, counters, queues, group membership, service discovery) are
//! built from nodes and watches as Curator builds them, with Grove's watch stream.

mod barrier;
mod counter;
mod discovery;
mod leader;
mod locks;
mod nodes;
mod queue;

use std::time::{Duration, Instant};

pub use barrier::{DistributedBarrier, DistributedDoubleBarrier};
pub use counter::{AtomicValue, DistributedAtomicLong, SharedCount, VersionedValue};
pub use discovery::{ProviderStrategy, ServiceDiscovery, ServiceInstance, ServiceProvider};
pub use leader::{LeaderLatch, LeaderSelector, Leadership};
pub use locks::{
    InterProcessMultiLock, InterProcessMutex, InterProcessReadWriteLock, InterProcessSemaphoreMutex,
    InterProcessSemaphoreV2, Lease, LockGuard,
};
pub use nodes::{GroupMember, PersistentNode};
pub use queue::DistributedQueue;

use crate::client::Client;
use crate::error::Result;
use crate::watch::{WatchKind, WatchMessage, WatchSpec};

/// Waits for the first change to `path` (as `kind` sees it) after `after_zxid`. Returns
/// false if `deadline` passes first. A change already made after `after_zxid` is reported
/// at once: the watch replays from there.
pub(crate) async fn wait_change(
    client: &Client,
    path: &str,
    kind: WatchKind,
    after_zxid: u64,
    deadline: Option<Instant>,
) -> Result<bool> {
    let wait = async {
        let mut stream = client.watch_stream().await?;
        stream.watch(WatchSpec::new(path, kind).one_shot().from_zxid(after_zxid + 1)).await?;
        loop {
            match stream.next().await? {
                Some(WatchMessage::Events { .. }) => return Ok(true),
                // Compacted or cut off: the caller looks again, which is what a change
                // would have made it do.
                Some(WatchMessage::Canceled { .. }) | None => return Ok(true),
                Some(_) => {}
            }
        }
    };
    match deadline {
        Some(d) => match tokio::time::timeout_at(d.into(), wait).await {
            Ok(r) => r,
            Err(_) => Ok(false),
        },
        None => wait.await,
    }
}

pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

/// A name unique to this process and handle: the owner of reentrant holds.
pub(crate) fn unique_owner(what: &str) -> String {
    format!("{what}-{}-{:016x}", std::process::id(), rand::random::<u64>())
}
