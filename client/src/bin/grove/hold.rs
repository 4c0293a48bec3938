//! `grove lock` and `grove election`: commands that hold something (a lock, a leadership)
//! for as long as they run, like `etcdctl lock` and `etcdctl elect`.
//!
//! Both open a session: what they hold is owned by it, so if this process dies the servers
//! release it when the session times out. If the session is lost while holding, the
//! command says so and fails: a command run under a lock is stopped, because from then
//! on someone else may hold the lock (the fencing token tells a resource which holder is
//! current).

use std::process::ExitCode;
use std::time::Duration;

use grove_client::{Client, Error, Grant, LockRequest, SessionState};
use tokio::process::Command;

const LOCK_USAGE: &str = "Usage: grove lock [-t timeoutMs] path [-- command args...]";
const ELECTION_USAGE: &str = "Usage: grove election [-t timeoutMs] name value | grove election -l name";

/// Handles `lock` and `election`; `None` for any other command.
pub async fn run(client: Client, session_timeout: Duration, words: &[String]) -> Option<ExitCode> {
    let (name, args) = words.split_first()?;
    let code = match name.as_str() {
        "lock" => match parse_lock(args) {
            Ok((path, timeout, cmd)) => lock(client, session_timeout, &path, timeout, cmd).await,
            Err(msg) => usage(&msg, LOCK_USAGE),
        },
        "election" => match parse_election(args) {
            Ok(Election::Campaign { name, value, timeout }) => {
                campaign(client, session_timeout, &name, value, timeout).await
            }
            Ok(Election::Listen { name }) => listen(client, &name).await,
            Err(msg) => usage(&msg, ELECTION_USAGE),
        },
        _ => return None,
    };
    Some(code)
}

fn usage(msg: &str, usage: &str) -> ExitCode {
    if !msg.is_empty() {
        eprintln!("grove: {msg}");
    }
    eprintln!("{usage}");
    ExitCode::from(2)
}

/// `[-t ms] path [-- cmd args...]`
fn parse_lock(args: &[String]) -> Result<(String, Option<Duration>, Vec<String>), String> {
    let (own, cmd) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], args[i + 1..].to_vec()),
        None => (args, Vec::new()),
    };
    let (timeout, rest) = timeout_flag(own)?;
    match rest.as_slice() {
        [path] => Ok((path.clone(), timeout, cmd)),
        [] => Err(String::new()),
        // Without `--`, everything after the path is the command (`grove lock /l make`).
        [path, more @ ..] if cmd.is_empty() => Ok((path.clone(), timeout, more.to_vec())),
        _ => Err(String::new()),
    }
}

fn timeout_flag(args: &[String]) -> Result<(Option<Duration>, Vec<String>), String> {
    match args {
        [flag, v, rest @ ..] if flag == "-t" => {
            let ms: u64 = v.parse().map_err(|_| format!("-t: {v:?} is not a number of milliseconds"))?;
            Ok((Some(Duration::from_millis(ms)), rest.to_vec()))
        }
        [flag] if flag == "-t" => Err("-t needs a number of milliseconds".into()),
        _ => Ok((None, args.to_vec())),
    }
}

enum Election {
    Campaign { name: String, value: String, timeout: Option<Duration> },
    Listen { name: String },
}

fn parse_election(args: &[String]) -> Result<Election, String> {
    if let [flag, name] = args
        && flag == "-l"
    {
        return Ok(Election::Listen { name: name.clone() });
    }
    let (timeout, rest) = timeout_flag(args)?;
    match rest.as_slice() {
        [name, value] => Ok(Election::Campaign { name: name.clone(), value: value.clone(), timeout }),
        _ => Err(String::new()),
    }
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("grove: {e}");
    ExitCode::FAILURE
}

/// Resolves when this process is asked to stop (Ctrl-C or SIGTERM).
async fn interrupted() {
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
async fn session_lost(client: &Client) {
    let mut state = client.session_state();
    let _ = state.wait_for(|s| matches!(s, SessionState::Lost | SessionState::Closed)).await;
}

/// Opens the session that will own the grant, then waits for `grant` (an acquire or a
/// campaign, not polled before the session exists). On an error or an interrupt the
/// session is closed, so nothing queued is left behind, and the exit code is returned.
async fn take(
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

async fn lock(
    client: Client,
    session_timeout: Duration,
    path: &str,
    timeout: Option<Duration>,
    cmd: Vec<String>,
) -> ExitCode {
    let request = LockRequest::mutex(path).timeout(timeout);
    let grant = match take(&client, session_timeout, client.acquire(&request)).await {
        Ok(g) => g,
        Err(code) => return code,
    };
    println!("token={}", grant.token);
    let node = grant.nodes[0].clone();
    let code = if cmd.is_empty() {
        tokio::select! {
            _ = interrupted() => ExitCode::SUCCESS,
            _ = session_lost(&client) => {
                eprintln!("grove: the session ended; the lock {path} is no longer held");
                ExitCode::FAILURE
            }
        }
    } else {
        run_holding(&client, &cmd, path, &node, grant.token).await
    };
    if let Err(e) = client.release(&node).await {
        eprintln!("grove: releasing {node}: {e}");
    }
    let _ = client.close_session().await;
    code
}

/// Runs `cmd` while the lock is held; exits with its status.
async fn run_holding(client: &Client, cmd: &[String], path: &str, node: &str, token: u64) -> ExitCode {
    let mut child = match Command::new(&cmd[0])
        .args(&cmd[1..])
        .env("GROVE_LOCK_PATH", path)
        .env("GROVE_LOCK_NODE", node)
        .env("GROVE_LOCK_TOKEN", token.to_string())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("grove: running {:?}: {e}", cmd[0]);
            return ExitCode::from(127);
        }
    };
    tokio::select! {
        status = child.wait() => match status {
            Ok(s) => ExitCode::from(s.code().map(|c| c as u8).unwrap_or(1)),
            Err(e) => {
                eprintln!("grove: waiting for {:?}: {e}", cmd[0]);
                ExitCode::FAILURE
            }
        },
        _ = session_lost(client) => {
            eprintln!("grove: the session ended; stopping {:?}, which no longer holds {path}", cmd[0]);
            let _ = child.kill().await;
            ExitCode::FAILURE
        }
        _ = interrupted() => {
            let _ = child.kill().await;
            ExitCode::from(130)
        }
    }
}

async fn campaign(
    client: Client,
    session_timeout: Duration,
    name: &str,
    value: String,
    timeout: Option<Duration>,
) -> ExitCode {
    let grant = match take(&client, session_timeout, client.campaign(name, value.clone(), timeout)).await {
        Ok(g) => g,
        Err(code) => return code,
    };
    let node = grant.nodes[0].clone();
    println!("elected {name} value={value} token={} node={node}", grant.token);
    let code = tokio::select! {
        _ = interrupted() => ExitCode::SUCCESS,
        _ = session_lost(&client) => {
            eprintln!("grove: the session ended; no longer the leader of {name}");
            ExitCode::FAILURE
        }
    };
    if let Err(e) = client.resign(name, &node).await {
        eprintln!("grove: resigning {node}: {e}");
    }
    let _ = client.close_session().await;
    code
}

/// Prints the leader's value each time the leadership changes, until interrupted.
async fn listen(client: Client, name: &str) -> ExitCode {
    let mut observer = match client.observe_leader(name).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    loop {
        tokio::select! {
            next = observer.next() => match next {
                Ok((_, Some(l))) => println!("leader {name} value={} token={} node={}", String::from_utf8_lossy(&l.value), l.token, l.node),
                Ok((_, None)) => println!("leader {name} none"),
                Err(e) => return fail(&e),
            },
            _ = interrupted() => return ExitCode::SUCCESS,
        }
    }
}
