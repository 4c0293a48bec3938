//! Lock and semaphore recipes: handles on the server-side locks, with guards that release
//! when dropped.

use std::time::Duration;

use bytes::Bytes;

use crate::client::Client;
use crate::coordination::{Grant, LockEntry, LockKind, LockRequest};
use crate::error::{Error, Result};

/// A held lock (or semaphore lease). Dropping it releases it in the background; `release`
/// releases it and reports the outcome. Await `release` when the same handle acquires
/// again right after (a read half then the write half, say): a background release may not
/// have landed yet.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    client: Client,
    grant: Grant,
    released: bool,
}

/// A semaphore lease.
pub type Lease = LockGuard;

impl LockGuard {
    /// The grant's fencing token: pass it to the resource the lock protects (and reject
    /// anything carrying a smaller one), or check it inside a transaction with
    /// `check_fence`.
    pub fn token(&self) -> u64 {
        self.grant.token
    }

    /// The node holding the lock (the first, for a multi-lock).
    pub fn node(&self) -> &str {
        &self.grant.nodes[0]
    }

    pub fn nodes(&self) -> &[String] {
        &self.grant.nodes
    }

    /// True while the session that owns the grant is this client's and not LOST. A holder
    /// checks it (or waits on `lost`) before acting on what the lock protects; fencing
    /// tokens protect writes made through Grove, this protects everything else.
    pub fn is_held(&self) -> bool {
        self.client.session_id() == self.grant.session
            && !matches!(*self.client.session_state().borrow(), crate::client::SessionState::Lost)
    }

    /// Resolves when the lock must be taken as lost: its session is LOST (declared by the
    /// client before the servers could expire it and grant the lock to another), closed or
    /// replaced. Stop using what the lock protects then.
    pub async fn lost(&self) {
        self.client.session_gone(self.grant.session).await
    }

    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        self.client.release(&self.grant.nodes[0]).await.map(|_| ())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (client, node) = (self.client.clone(), self.grant.nodes[0].clone());
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move {
                    if let Err(e) = client.release(&node).await {
                        tracing::warn!("releasing {node} on drop: {e}");
                    }
                });
            }
            // No runtime: the session's end will release it.
            Err(_) => tracing::warn!("lock {node} dropped outside a runtime; released when the session ends"),
        }
    }
}

/// Acquires `req`; with a timeout, `None` when it passes.
async fn acquire(client: &Client, req: &LockRequest) -> Result<Option<LockGuard>> {
    match client.acquire(req).await {
        Ok(grant) => Ok(Some(LockGuard { client: client.clone(), grant, released: false })),
        Err(Error::LockTimeout { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn timed_out(path: &str) -> Error {
    Error::LockTimeout { message: format!("{path}: not granted") }
}

macro_rules! lock_methods {
    () => {
        /// Waits until the lock is granted.
        pub async fn acquire(&self) -> Result<LockGuard> {
            acquire(&self.client, &self.request(None)).await?.ok_or_else(|| timed_out(&self.path))
        }

        /// Waits at most `timeout`; `None` if not granted by then (nothing is left queued).
        pub async fn try_acquire(&self, timeout: Duration) -> Result<Option<LockGuard>> {
            acquire(&self.client, &self.request(Some(timeout))).await
        }

        /// The holders and waiters, in line order.
        pub async fn participants(&self) -> Result<Vec<LockEntry>> {
            self.client.describe_lock(&self.path).await
        }
    };
}

/// A reentrant mutex (Curator's InterProcessMutex). Reentrancy is per handle: the same
/// handle (or a clone of it) acquiring again while it holds does not wait, and each
/// acquisition is released once.
#[derive(Clone)]
pub struct InterProcessMutex {
    client: Client,
    path: String,
    owner: String,
}

impl InterProcessMutex {
    pub fn new(client: &Client, path: &str) -> Self {
        InterProcessMutex { client: client.clone(), path: path.to_string(), owner: super::unique_owner("mutex") }
    }

    fn request(&self, timeout: Option<Duration>) -> LockRequest {
        LockRequest::mutex(&self.path).owner(&self.owner, true).timeout(timeout)
    }

    lock_methods!();
}

/// A non-reentrant mutex (Curator's InterProcessSemaphoreMutex): acquiring it again
/// through the same handle waits like anyone else.
#[derive(Clone)]
pub struct InterProcessSemaphoreMutex {
    client: Client,
    path: String,
}

impl InterProcessSemaphoreMutex {
    pub fn new(client: &Client, path: &str) -> Self {
        InterProcessSemaphoreMutex { client: client.clone(), path: path.to_string() }
    }

    fn request(&self, timeout: Option<Duration>) -> LockRequest {
        LockRequest::mutex(&self.path).timeout(timeout)
    }

    lock_methods!();
}

/// A fair read/write lock (Curator's InterProcessReadWriteLock): readers share, a writer
/// is alone, nobody overtakes a waiting writer, the writer may also take the read lock,
/// and a reader never upgrades. Both halves are reentrant for this handle.
#[derive(Clone)]
pub struct InterProcessReadWriteLock {
    client: Client,
    path: String,
    owner: String,
}

/// One half of a read/write lock.
#[derive(Clone)]
pub struct RwHalf {
    client: Client,
    path: String,
    owner: String,
    kind: LockKind,
}

impl InterProcessReadWriteLock {
    pub fn new(client: &Client, path: &str) -> Self {
        InterProcessReadWriteLock { client: client.clone(), path: path.to_string(), owner: super::unique_owner("rw") }
    }

    pub fn read_lock(&self) -> RwHalf {
        RwHalf { client: self.client.clone(), path: self.path.clone(), owner: self.owner.clone(), kind: LockKind::Read }
    }

    pub fn write_lock(&self) -> RwHalf {
        RwHalf {
            client: self.client.clone(),
            path: self.path.clone(),
            owner: self.owner.clone(),
            kind: LockKind::Write,
        }
    }
}

impl RwHalf {
    fn request(&self, timeout: Option<Duration>) -> LockRequest {
        LockRequest::mutex(&self.path).kind(self.kind).owner(&self.owner, true).timeout(timeout)
    }

    lock_methods!();
}

/// Several mutexes acquired all-or-nothing (Curator's InterProcessMultiLock): the server
/// grants them together, so nobody holds some of them while waiting for the rest.
#[derive(Clone)]
pub struct InterProcessMultiLock {
    client: Client,
    paths: Vec<String>,
    path: String,
}

impl InterProcessMultiLock {
    pub fn new(client: &Client, paths: &[&str]) -> Self {
        InterProcessMultiLock {
            client: client.clone(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            path: paths.first().map(|p| p.to_string()).unwrap_or_default(),
        }
    }

    fn request(&self, timeout: Option<Duration>) -> LockRequest {
        LockRequest { paths: self.paths.clone(), ..LockRequest::mutex(&self.path) }.timeout(timeout)
    }

    lock_methods!();
}

/// A counting semaphore with `max_leases` leases (Curator's InterProcessSemaphoreV2).
/// Every handle on the same path must agree on the size.
#[derive(Clone)]
pub struct InterProcessSemaphoreV2 {
    client: Client,
    path: String,
    max_leases: u32,
}

impl InterProcessSemaphoreV2 {
    pub fn new(client: &Client, path: &str, max_leases: u32) -> Self {
        InterProcessSemaphoreV2 { client: client.clone(), path: path.to_string(), max_leases }
    }

    fn request(&self, permits: u32, timeout: Option<Duration>) -> LockRequest {
        LockRequest {
            permits,
            max_leases: self.max_leases,
            data: Bytes::new(),
            ..LockRequest::mutex(&self.path).kind(LockKind::Semaphore).timeout(timeout)
        }
    }

    /// Waits for one lease.
    pub async fn acquire(&self) -> Result<Lease> {
        self.acquire_many(1).await
    }

    /// Waits for `n` leases, granted together as one lease handle (first come, first
    /// served: a smaller later request does not overtake it).
    pub async fn acquire_many(&self, n: u32) -> Result<Lease> {
        acquire(&self.client, &self.request(n, None)).await?.ok_or_else(|| timed_out(&self.path))
    }

    pub async fn try_acquire(&self, timeout: Duration) -> Result<Option<Lease>> {
        self.try_acquire_many(1, timeout).await
    }

    pub async fn try_acquire_many(&self, n: u32, timeout: Duration) -> Result<Option<Lease>> {
        acquire(&self.client, &self.request(n, Some(timeout))).await
    }

    /// The lease holders and waiters, in line order.
    pub async fn participants(&self) -> Result<Vec<LockEntry>> {
        self.client.describe_lock(&self.path).await
    }
}
