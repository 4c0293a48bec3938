//! `grove election` (one-shot only): campaigns in an election and leads until Ctrl-C, or
//! (`-l`) prints each change of its leader.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use grove_client::Client;

use super::args::{CommandArgs, number};
use crate::hold::{fail, interrupted, session_lost, take};

/// For `grove --help`.
pub const GUIDE: &str = "  election [-t ms] NAME VALUE          campaign in NAME (a path, or a name under
                                       /elections), print when elected, lead until Ctrl-C
  election -l NAME                     print each change of NAME's leader";

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "election",
    no_binary_name = true,
    override_usage = "grove election [-t timeoutMs] name value | grove election -l name"
)]
pub struct Election {
    /// Listen: print the leader's value each time the leadership changes.
    #[arg(short = 'l', conflicts_with_all = ["timeout", "value"])]
    pub listen: bool,
    /// Give up if not elected within this many ms.
    #[arg(short = 't', value_name = "timeoutMs", value_parser = number::<u64>)]
    pub timeout: Option<u64>,
    /// A path, or a name under /elections.
    pub name: String,
    /// What the leader announces.
    #[arg(required_unless_present = "listen")]
    pub value: Option<String>,
}

impl CommandArgs for Election {}

impl Election {
    pub async fn run(self, client: Client, session_timeout: Duration) -> ExitCode {
        match self.value {
            Some(value) if !self.listen => {
                campaign(client, session_timeout, &self.name, value, self.timeout.map(Duration::from_millis)).await
            }
            _ => listen(client, &self.name).await,
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
