//! Leader election recipes on the server-side Election service: a latch that says whether
//! this participant leads, and a selector that runs a task while it leads.
//!
//! Leadership is considered lost as soon as the session is SUSPENDED (Curator's default):
//! the servers may expire the session meanwhile and elect someone else, so a participant
//! that cannot reach them must stop acting as leader. It is regained on RECONNECTED if the
//! servers confirm the same node still leads. The fencing token of each leadership lets a
//! resource reject a former leader that did not notice in time.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, watch};

use crate::client::{Client, SessionState};
use crate::coordination::{LeaderInfo, LockEntry, election_path};
use crate::error::Result;

/// One term of leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    pub node: String,
    pub token: u64,
}

/// Returns when `node` no longer leads the election, or (with `suspend_counts`) the
/// session is suspended.
async fn until_lost(client: &Client, name: &str, node: &str) {
    let mut states = client.state_listener();
    let mut observer = match client.observe_leader(name).await {
        Ok(o) => o,
        Err(_) => return,
    };
    loop {
        tokio::select! {
            next = observer.next() => match next {
                Ok((_, Some(l))) if l.node == node => {}
                _ => return,
            },
            state = states.recv() => match state {
                Ok(SessionState::Suspended | SessionState::Lost | SessionState::Closed) => return,
                Err(broadcast::error::RecvError::Closed) => return,
                _ => {}
            },
        }
    }
}

/// Campaigns until elected, retrying through failures (no session yet, servers down).
async fn campaign(client: &Client, name: &str, value: &Bytes) -> Leadership {
    let mut pause = Duration::from_millis(50);
    loop {
        match client.campaign(name, value.clone(), None).await {
            Ok(g) => return Leadership { node: g.nodes[0].clone(), token: g.token },
            Err(e) => {
                tracing::debug!("campaigning in {name}: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

async fn resign(client: &Client, name: &str, node: &str) {
    if let Err(e) = client.resign(name, node).await {
        tracing::debug!("resigning {node}: {e}");
    }
}

/// Curator's LeaderLatch: campaigns in the background and says whether this participant
/// currently leads. Needs a client with a session (`ClientBuilder::session_timeout`
/// renews it after a loss).
pub struct LeaderLatch {
    client: Client,
    name: String,
    id: Bytes,
    leading: watch::Sender<Option<Leadership>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl LeaderLatch {
    /// A latch on the election `name` (a path, or a name under `/elections`); `id` is this
    /// participant's value, shown to everyone as the leader's.
    pub fn new(client: &Client, name: &str, id: impl Into<Bytes>) -> Arc<LeaderLatch> {
        Arc::new(LeaderLatch {
            client: client.clone(),
            name: election_path(name),
            id: id.into(),
            leading: watch::channel(None).0,
            task: Mutex::new(None),
        })
    }

    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let l = campaign(&me.client, &me.name, &me.id).await;
                me.leading.send_replace(Some(l.clone()));
                until_lost(&me.client, &me.name, &l.node).await;
                me.leading.send_replace(None);
                // Suspended but still first in line: lead again once the servers confirm.
                if me.client.session().is_some() {
                    let mut confirmed = false;
                    for _ in 0..50 {
                        match me.client.leader(&me.name).await {
                            Ok(Some(now)) if now.node == l.node => {
                                confirmed = true;
                                break;
                            }
                            Ok(_) => break,
                            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    }
                    if confirmed {
                        me.leading.send_replace(Some(l.clone()));
                        until_lost(&me.client, &me.name, &l.node).await;
                        me.leading.send_replace(None);
                    }
                    // Our node may still queue; give it up before queueing again.
                    resign(&me.client, &me.name, &l.node).await;
                }
            }
        });
        if let Some(old) = self.task.lock().unwrap().replace(task) {
            old.abort();
        }
    }

    pub fn has_leadership(&self) -> bool {
        self.leading.borrow().is_some()
    }

    /// The current term (node and fencing token), while leading.
    pub fn leadership(&self) -> Option<Leadership> {
        self.leading.borrow().clone()
    }

    /// Waits until leading; false if `timeout` passes first.
    pub async fn await_leadership(&self, timeout: Option<Duration>) -> bool {
        let mut rx = self.leading.subscribe();
        let wait = rx.wait_for(|l| l.is_some());
        match timeout {
            Some(t) => tokio::time::timeout(t, wait).await.is_ok_and(|r| r.is_ok()),
            None => wait.await.is_ok(),
        }
    }

    /// Changes of this latch's leadership.
    pub fn listen(&self) -> watch::Receiver<Option<Leadership>> {
        self.leading.subscribe()
    }

    /// Who leads now.
    pub async fn leader(&self) -> Result<Option<LeaderInfo>> {
        self.client.leader(&self.name).await
    }

    /// Everyone campaigning, the leader first.
    pub async fn participants(&self) -> Result<Vec<LockEntry>> {
        self.client.describe_lock(&self.name).await
    }

    /// Stops campaigning and gives leadership up.
    pub async fn close(&self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
        if let Some(l) = self.leading.send_replace(None) {
            resign(&self.client, &self.name, &l.node).await;
        }
        // A campaign in flight may have queued a node: withdraw whatever this session has
        // in the election.
        if let (Ok(entries), Some(s)) = (self.client.describe_lock(&self.name).await, self.client.session()) {
            for e in entries.into_iter().filter(|e| e.session_id == s.id) {
                resign(&self.client, &self.name, &e.node).await;
            }
        }
    }
}

/// Curator's LeaderSelector: when elected, runs `take_leadership`; leadership is given up
/// when it returns, and it is cancelled (dropped) if leadership is lost first. With
/// `auto_requeue`, campaigns again afterwards.
pub struct LeaderSelector {
    client: Client,
    name: String,
    current: Arc<Mutex<Option<Leadership>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaderSelector {
    pub fn start<F, Fut>(
        client: &Client,
        name: &str,
        id: impl Into<Bytes>,
        auto_requeue: bool,
        take_leadership: F,
    ) -> Self
    where
        F: Fn(Leadership) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (name, id) = (election_path(name), id.into());
        let current = Arc::new(Mutex::new(None));
        let task = tokio::spawn({
            let (client, name, current) = (client.clone(), name.clone(), current.clone());
            async move {
                loop {
                    let l = campaign(&client, &name, &id).await;
                    *current.lock().unwrap() = Some(l.clone());
                    tokio::select! {
                        _ = take_leadership(l.clone()) => {}
                        _ = until_lost(&client, &name, &l.node) => {}
                    }
                    resign(&client, &name, &l.node).await;
                    *current.lock().unwrap() = None;
                    if !auto_requeue {
                        return;
                    }
                }
            }
        });
        LeaderSelector { client: client.clone(), name, current, task }
    }

    /// The current term, while `take_leadership` runs.
    pub fn leadership(&self) -> Option<Leadership> {
        self.current.lock().unwrap().clone()
    }

    /// True once a selector without auto-requeue has led and given up.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops campaigning; a running `take_leadership` is cancelled and leadership given up.
    pub async fn close(self) {
        self.task.abort();
        let current = self.current.lock().unwrap().take();
        if let Some(l) = current {
            resign(&self.client, &self.name, &l.node).await;
        }
    }
}

impl Drop for LeaderSelector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
