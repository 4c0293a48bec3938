//! `grove lock` (one-shot only): takes the mutex at a path, prints its fencing token, runs
//! a command holding it (or holds until Ctrl-C), and releases it.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use grove_client::{Client, LockRequest};
use tokio::process::Command;

use super::args::{CommandArgs, number};
use crate::hold::{interrupted, session_lost, take};

/// For `grove --help`.
pub const GUIDE: &str = "  lock [-t ms] PATH [-- CMD ARGS...]   take the mutex at PATH, print token=N (its fencing
                                       token), run CMD holding it (or hold until Ctrl-C),
                                       release; CMD gets GROVE_LOCK_TOKEN in its environment";

#[derive(Debug, PartialEq, Parser)]
#[command(name = "lock", no_binary_name = true, override_usage = "grove lock [-t timeoutMs] path [-- command args...]")]
pub struct Lock {
    /// Give up if the lock is not granted within this many ms.
    #[arg(short = 't', value_name = "timeoutMs", value_parser = number::<u64>)]
    pub timeout: Option<u64>,
    pub path: String,
    /// Run with GROVE_LOCK_PATH, GROVE_LOCK_NODE and GROVE_LOCK_TOKEN set; everything after
    /// the path (or after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl CommandArgs for Lock {}

impl Lock {
    /// Exits with the command's status; 1 if the lock was not granted or was lost, 130 on
    /// an interrupt while waiting.
    pub async fn run(self, client: Client, session_timeout: Duration) -> ExitCode {
        let path = &self.path;
        let request = LockRequest::mutex(path).timeout(self.timeout.map(Duration::from_millis));
        let grant = match take(&client, session_timeout, client.acquire(&request)).await {
            Ok(g) => g,
            Err(code) => return code,
        };
        println!("token={}", grant.token);
        let node = grant.nodes[0].clone();
        let code = if self.command.is_empty() {
            tokio::select! {
                _ = interrupted() => ExitCode::SUCCESS,
                _ = session_lost(&client) => {
                    eprintln!("grove: the session ended; the lock {path} is no longer held");
                    ExitCode::FAILURE
                }
            }
        } else {
            run_holding(&client, &self.command, path, &node, grant.token).await
        };
        if let Err(e) = client.release(&node).await {
            eprintln!("grove: releasing {node}: {e}");
        }
        let _ = client.close_session().await;
        code
    }
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
