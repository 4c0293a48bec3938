//! What `lock` and `election` share: commands that hold something (a lock, a leadership)
//! for as long as they run, like `etcdctl lock` and `etcdctl elect`.
//!
//! Both open a session: what they hold is owned by it, so if this process dies the servers
//! release it when the session times out. If the session is lost while holding, the
//! command says so and fails: a command run under a lock is stopped, because from then
//! on someone else may hold the lock (the fencing token tells a resource which holder is
//! current).

use std::process::ExitCode;
use std::time::Duration;

use grove_client::{Client, Error, Grant, SessionState};

pub fn fail(e: &Error) -> ExitCode {
    eprintln!("grove: {e}");
    ExitCode::FAILURE
}

/// Resolves when this process is asked to stop (Ctrl-C or SIGTERM).
pub async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Resolves if the session that holds everything ends.
pub async fn session_lost(client: &Client) {
    let mut state = client.session_state();
    let _ = state.wait_for(|s| matches!(s, SessionState::Lost | SessionState::Closed)).await;
}

/// Opens the session that will own the grant, then waits for `grant` (an acquire or a
/// campaign, not polled before the session exists). On an error or an interrupt the
/// session is closed, so nothing queued is left behind, and the exit code is returned.
pub async fn take(
    client: &Client,
    session_timeout: Duration,
    grant: impl Future<Output = Result<Grant, Error>>,
) -> Result<Grant, ExitCode> {
    if let Err(e) = client.open_session(session_timeout).await {
        return Err(fail(&e));
    }
    let outcome = tokio::select! {
        g = grant => g.map_err(|e| fail(&e)),
        _ = interrupted() => Err(ExitCode::from(130)),
    };
    if outcome.is_err() {
        let _ = client.close_session().await;
    }
    outcome
}
