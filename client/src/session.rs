//! The session's life: opening, resuming and closing it, and keeping it alive.
//!
//! The rule (the same in every Grove client; docs/clients.md), with T the negotiated
//! timeout:
//! - a KeepAlive message every T/4 on a stream to the current server; a reply confirms
//!   the renewal *sent* at the time its request left (a server answers only once the leader
//!   recorded the renewal and a quorum confirmed that leader: `Node::vouch`);
//! - SUSPENDED as soon as the stream breaks, a server refuses to vouch (UNAVAILABLE: it
//!   is cut off from the leader or has no quorum) or nothing was confirmed for T/3; the
//!   task then tries the next server, and RECONNECTED is the next confirmation;
//! - LOST at `confirmed + T·(1 − ρ) − δ` by a timer of its own (ρ = 1%, the clock-rate
//!   margin; δ = T/10, the time the application needs to stop): before the leader, which
//!   recorded that renewal later than it was sent and waits a whole T after recording,
//!   can expire the session and grant what it held to someone else. Also LOST at once
//!   when a server says the session expired or is unknown.
//!
//! LOST is final for that session: recipes holding locks or leadership under it are told,
//! and give them up; a client started with a session timeout then opens a new session.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use grove_proto::v1 as pb;
use grove_proto::v1::sessions_client::SessionsClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::connection::{Connection, new_request_id};
use crate::error::{Error, Result};
use crate::types::{Session, SessionState};

/// Opens a session with the requested timeout and keeps it alive in the background.
pub(crate) async fn open(conn: &Arc<Connection>, timeout: Duration) -> Result<Session> {
    let msg = pb::OpenSessionRequest { timeout_ms: timeout.as_millis() as i64, session_id: 0, secret: Bytes::new() };
    let id = new_request_id();
    // A new session's deadline starts on the leader when the open is applied: later.
    let sent = Instant::now();
    let resp = conn
        .call_retrying(|ch| async { SessionsClient::new(ch).open(conn.write_request(msg.clone(), id)).await })
        .await?;
    conn.saw(&resp.header);
    Ok(adopt(conn, resp, sent))
}

/// Resumes a session (from another client or process) before it expires.
pub(crate) async fn resume(conn: &Arc<Connection>, id: u64, secret: Bytes) -> Result<Session> {
    let msg = pb::OpenSessionRequest { timeout_ms: 0, session_id: id, secret };
    // A resume is a renewal the server vouched for, like a keepalive.
    let sent = Instant::now();
    let resp = conn.call_retrying(|ch| async { SessionsClient::new(ch).open(conn.request(msg.clone())).await }).await?;
    Ok(adopt(conn, resp, sent))
}

/// Makes an opened or resumed session the client's, confirmed as of `sent`, and starts
/// keeping it alive.
fn adopt(conn: &Arc<Connection>, resp: pb::OpenSessionResponse, sent: Instant) -> Session {
    let session = Session {
        id: resp.session_id,
        secret: resp.secret,
        timeout: Duration::from_millis(resp.timeout_ms.max(0) as u64),
    };
    *conn.session.write().unwrap() = Some(session.clone());
    conn.set_state(SessionState::Connected);
    let task = tokio::spawn(keep_alive(Arc::downgrade(conn), session.clone(), sent));
    if let Some(old) = conn.keepalive.lock().unwrap().replace(task) {
        old.abort();
    }
    session
}

/// Closes the session: its ephemerals are deleted now.
pub(crate) async fn close(conn: &Arc<Connection>) -> Result<()> {
    let Some(s) = conn.session.write().unwrap().take() else { return Ok(()) };
    if let Some(task) = conn.keepalive.lock().unwrap().take() {
        task.abort();
    }
    let msg = pb::CloseSessionRequest { session_id: s.id, secret: s.secret.clone() };
    let r = conn.call(false, |ch| async { SessionsClient::new(ch).close(conn.request(msg.clone())).await }).await;
    conn.set_state(SessionState::Closed);
    match r {
        Ok(resp) => {
            conn.saw(&resp.header);
            Ok(())
        }
        Err(Error::SessionExpired { .. }) | Err(Error::UnknownSession { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The session is gone, or must be taken as gone: LOST, then, for a client started with a
/// session timeout, a new session in the background (RECONNECTED once it is open), as
/// Curator's client makes a new ZooKeeper session. `close`: the servers may still hold the
/// session (it was declared lost here, by the timer): close it when they can be reached,
/// so what it held is released at once rather than at its expiry.
pub(crate) fn lost(conn: &Arc<Connection>, id: u64, close: Option<Bytes>) {
    conn.drop_session(id);
    conn.set_state(SessionState::Lost);
    if let Some(secret) = close {
        let conn = conn.clone();
        tokio::spawn(async move {
            let msg = pb::CloseSessionRequest { session_id: id, secret };
            let r = conn.call(false, |ch| async { SessionsClient::new(ch).close(conn.request(msg.clone())).await });
            let _ = tokio::time::timeout(conn.request_timeout, r).await;
        });
    }
    let Some(timeout) = conn.auto_session else { return };
    let weak = Arc::downgrade(conn);
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(50);
        loop {
            let Some(conn) = weak.upgrade() else { return };
            if conn.session().is_some() {
                return;
            }
            match open(&conn, timeout).await {
                Ok(_) => {
                    conn.set_state(SessionState::Reconnected);
                    return;
                }
                Err(e) => tracing::debug!("opening a new session after losing one: {e}"),
            }
            drop(conn);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    });
}

/// The clock-rate margin of the LOST rule: the client's clock may run this much slower than
/// the leader's.
pub const CLOCK_RATE_MARGIN: f64 = 0.01;

/// How long after the send time of its last confirmed renewal a session is taken as LOST:
/// `T·(1 − ρ) − T/10`, 0.89·T.
pub fn lost_after(timeout: Duration) -> Duration {
    timeout.mul_f64(1.0 - CLOCK_RATE_MARGIN).saturating_sub(timeout / 10)
}

/// How long without a confirmed renewal before the session is SUSPENDED.
pub fn suspended_after(timeout: Duration) -> Duration {
    timeout / 3
}

/// Why a keepalive stream ended.
enum StreamEnd {
    /// The servers say the session is gone.
    Gone,
    /// The stream broke, the server refused to vouch, or it said nothing for too long.
    Broken,
    /// The session's time is up (`lost_after` since the last confirmed renewal).
    TimeUp,
}

/// Keeps the session alive by the rule above, from `confirmed` (the send time of the
/// request that opened or resumed it) on.
pub(crate) async fn keep_alive(weak: Weak<Connection>, session: Session, mut confirmed: Instant) {
    let every = (session.timeout / 4).max(Duration::from_millis(10));
    let mut attempt = 0usize;
    let mut suspended = false;
    loop {
        let Some(c) = weak.upgrade() else { return };
        let (server, channel) = c.channel_at(attempt);
        let servers = c.server_count();
        drop(c);
        let end = stream(&weak, &session, channel, server, every, &mut confirmed, &mut suspended).await;
        let Some(c) = weak.upgrade() else { return };
        match end {
            StreamEnd::Gone => {
                lost(&c, session.id, None);
                return;
            }
            StreamEnd::TimeUp => {
                tracing::warn!(
                    session = format_args!("0x{:x}", session.id),
                    "no renewal confirmed within {} ms: the session is taken as lost",
                    lost_after(session.timeout).as_millis()
                );
                lost(&c, session.id, Some(session.secret.clone()));
                return;
            }
            StreamEnd::Broken => {
                if !suspended {
                    suspended = true;
                    c.set_state(SessionState::Suspended);
                }
            }
        }
        drop(c);
        attempt = (attempt + 1) % servers.max(1);
        // A short pause before the next server, never past the session's time.
        let pause = Duration::from_millis(50).min(every);
        let deadline = confirmed + lost_after(session.timeout);
        tokio::time::sleep_until(tokio::time::Instant::from_std((Instant::now() + pause).min(deadline))).await;
        if Instant::now() >= deadline {
            if let Some(c) = weak.upgrade() {
                lost(&c, session.id, Some(session.secret.clone()));
            }
            return;
        }
    }
}

/// One KeepAlive stream to one server, until it ends.
async fn stream(
    weak: &Weak<Connection>,
    session: &Session,
    channel: tonic::transport::Channel,
    server: usize,
    every: Duration,
    confirmed: &mut Instant,
    suspended: &mut bool,
) -> StreamEnd {
    let at = tokio::time::Instant::from_std;
    // A server gets T/3 from the later of the last confirmation and this stream's start to
    // confirm something, before the next one is tried.
    let started = Instant::now();
    let (tx, rx) = mpsc::channel(16);
    let request = pb::KeepAliveRequest { session_id: session.id, secret: session.secret.clone() };
    // Send times of the requests not answered yet, in order: replies come in that order.
    let mut sent = std::collections::VecDeque::new();
    sent.push_back(Instant::now());
    let _ = tx.send(request.clone()).await;
    let mut sessions = SessionsClient::new(channel);
    let open = sessions.keep_alive(ReceiverStream::new(rx));
    let lost_at = |c: Instant| at(c + lost_after(session.timeout));
    let mut inbound = tokio::select! {
        r = open => match r {
            Ok(resp) => resp.into_inner(),
            Err(status) => return failure(&Error::from_status(&status)),
        },
        _ = tokio::time::sleep_until(at((*confirmed).max(started) + suspended_after(session.timeout))) => {
            return StreamEnd::Broken;
        }
        _ = tokio::time::sleep_until(lost_at(*confirmed)) => return StreamEnd::TimeUp,
    };
    let mut next_send = at(Instant::now() + every);
    loop {
        let quiet = at((*confirmed).max(started) + suspended_after(session.timeout));
        tokio::select! {
            _ = tokio::time::sleep_until(next_send) => {
                if weak.strong_count() == 0 {
                    return StreamEnd::Broken;
                }
                sent.push_back(Instant::now());
                if tx.send(request.clone()).await.is_err() {
                    return StreamEnd::Broken;
                }
                next_send += every;
            }
            msg = inbound.message() => match msg {
                Ok(Some(_)) => {
                    if let Some(t) = sent.pop_front() {
                        *confirmed = (*confirmed).max(t);
                    }
                    let Some(c) = weak.upgrade() else { return StreamEnd::Broken };
                    if std::mem::take(suspended) {
                        c.set_state(SessionState::Reconnected);
                    }
                    c.use_server(server);
                }
                Ok(None) => return StreamEnd::Broken,
                Err(status) => return failure(&Error::from_status(&status)),
            },
            // Nothing confirmed for T/3: this server is not getting renewals through.
            _ = tokio::time::sleep_until(quiet), if !sent.is_empty() => return StreamEnd::Broken,
            _ = tokio::time::sleep_until(lost_at(*confirmed)) => return StreamEnd::TimeUp,
        }
    }
}

fn failure(e: &Error) -> StreamEnd {
    match e {
        Error::SessionExpired { .. } | Error::UnknownSession { .. } => StreamEnd::Gone,
        _ => StreamEnd::Broken,
    }
}
