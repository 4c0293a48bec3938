//! Keeping a session alive: a KeepAlive stream to the current server, one message every
//! third of the timeout. When the stream breaks, the session is SUSPENDED and the task
//! resumes it on the next server; RECONNECTED once a server answers again. The servers
//! saying the session expired (or a whole timeout passing without any answer) makes it
//! LOST: its ephemerals are gone and a new session is needed.

use std::sync::Weak;
use std::time::{Duration, Instant};

use grove_proto::v1 as pb;
use grove_proto::v1::sessions_client::SessionsClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{Client, Inner, Session, SessionState};
use crate::error::Error;

fn client(weak: &Weak<Inner>) -> Option<Client> {
    weak.upgrade().map(|inner| Client { inner })
}

pub(crate) async fn keep_alive(weak: Weak<Inner>, session: Session) {
    let every = (session.timeout / 3).max(Duration::from_millis(10));
    let mut attempt = 0usize;
    let mut suspended_since: Option<Instant> = None;
    loop {
        let Some(c) = client(&weak) else { return };
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
                            let Some(c) = client(&weak) else { return };
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
            if let Some(c) = client(&weak) {
                c.session_lost(session.id);
            }
            return;
        }
        let since = *suspended_since.get_or_insert_with(|| {
            if let Some(c) = client(&weak) {
                c.set_state(SessionState::Suspended);
            }
            Instant::now()
        });
        if since.elapsed() > session.timeout {
            // No server has heard from us for a whole timeout: the leader has expired the
            // session, or will before we could reach it.
            if let Some(c) = client(&weak) {
                c.session_lost(session.id);
            }
            return;
        }
        attempt = (attempt + 1) % servers.max(1);
        tokio::time::sleep(Duration::from_millis(100).min(every)).await;
    }
}
