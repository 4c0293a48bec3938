//! The session's life: opening, resuming and closing it, and keeping it alive with a
//! KeepAlive stream to the current server, one message every third of the timeout. When
//! the stream breaks, the session is SUSPENDED and the task resumes it on the next server;
//! RECONNECTED once a server answers again. The servers saying the session expired (or a
//! whole timeout passing without any answer) makes it LOST: its ephemerals are gone and a
//! new session is needed.

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
    let resp = conn
        .call_retrying(|ch| async { SessionsClient::new(ch).open(conn.write_request(msg.clone(), id)).await })
        .await?;
    conn.saw(&resp.header);
    let session = Session {
        id: resp.session_id,
        secret: resp.secret,
        timeout: Duration::from_millis(resp.timeout_ms.max(0) as u64),
    };
    adopt(conn, session.clone());
    Ok(session)
}

/// Resumes a session (from another client or process) before it expires.
pub(crate) async fn resume(conn: &Arc<Connection>, id: u64, secret: Bytes) -> Result<Session> {
    let msg = pb::OpenSessionRequest { timeout_ms: 0, session_id: id, secret };
    let resp = conn.call_retrying(|ch| async { SessionsClient::new(ch).open(conn.request(msg.clone())).await }).await?;
    let session = Session {
        id: resp.session_id,
        secret: resp.secret,
        timeout: Duration::from_millis(resp.timeout_ms.max(0) as u64),
    };
    adopt(conn, session.clone());
    Ok(session)
}

fn adopt(conn: &Arc<Connection>, session: Session) {
    *conn.session.write().unwrap() = Some(session.clone());
    conn.set_state(SessionState::Connected);
    let task = tokio::spawn(keep_alive(Arc::downgrade(conn), session));
    if let Some(old) = conn.keepalive.lock().unwrap().replace(task) {
        old.abort();
    }
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

/// The session is gone: LOST, then, for a client started with a session timeout, a new
/// session in the background (RECONNECTED once it is open), as Curator's client makes a
/// new ZooKeeper session.
pub(crate) fn lost(conn: &Arc<Connection>, id: u64) {
    conn.drop_session(id);
    conn.set_state(SessionState::Lost);
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

pub(crate) async fn keep_alive(weak: Weak<Connection>, session: Session) {
    let every = (session.timeout / 3).max(Duration::from_millis(10));
    let mut attempt = 0usize;
    let mut suspended_since: Option<Instant> = None;
    loop {
        let Some(c) = weak.upgrade() else { return };
        let (server, channel) = c.channel_at(attempt);
        let servers = c.server_count();
        drop(c);
        let (tx, rx) = mpsc::channel(2);
        let request = pb::KeepAliveRequest { session_id: session.id, secret: session.secret.clone() };
        let _ = tx.send(request.clone()).await;
        let mut failure = None;
        match tokio::time::timeout(every, SessionsClient::new(channel).keep_alive(ReceiverStream::new(rx))).await {
            Ok(Ok(resp)) => {
                let mut inbound = resp.into_inner();
                loop {
                    match tokio::time::timeout(every, inbound.message()).await {
                        Ok(Ok(Some(_))) => {
                            let Some(c) = weak.upgrade() else { return };
                            if suspended_since.take().is_some() {
                                c.set_state(SessionState::Reconnected);
                            }
                            c.use_server(server);
                            attempt = 0;
                        }
                        Ok(Err(status)) => {
                            failure = Some(Error::from_status(&status));
                            break;
                        }
                        Ok(Ok(None)) | Err(_) => break,
                    }
                    tokio::time::sleep(every).await;
                    if weak.strong_count() == 0 || tx.send(request.clone()).await.is_err() {
                        break;
                    }
                }
            }
            Ok(Err(status)) => failure = Some(Error::from_status(&status)),
            Err(_) => {}
        }
        if matches!(failure, Some(Error::SessionExpired { .. }) | Some(Error::UnknownSession { .. })) {
            if let Some(c) = weak.upgrade() {
                lost(&c, session.id);
            }
            return;
        }
        let since = *suspended_since.get_or_insert_with(|| {
            if let Some(c) = weak.upgrade() {
                c.set_state(SessionState::Suspended);
            }
            Instant::now()
        });
        if since.elapsed() > session.timeout {
            // No server has heard from us for a whole timeout: the leader has expired the
            // session, or will before we could reach it.
            if let Some(c) = weak.upgrade() {
                lost(&c, session.id);
            }
            return;
        }
        attempt = (attempt + 1) % servers.max(1);
        tokio::time::sleep(Duration::from_millis(100).min(every)).await;
    }
}
