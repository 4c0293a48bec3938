//! `grove`: Grove's command-line client, with zkCli's commands and output.
//!
//! Without a command, an interactive shell; with one, runs it and exits (non-zero on error):
//! `grove --server 127.0.0.1:7181 create /app1 hehe`.

mod commands;
mod format;
mod hold;
mod shell;
mod watches;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use grove_client::Client;

#[derive(Parser)]
#[command(
    name = "grove",
    version,
    about = "Grove command-line client (zkCli's commands)",
    after_help = "Commands (run `grove help` for the list):\n  ls, create, get, set, delete, deleteall, stat, sync, getEphemerals,\n  getAllChildrenNumber, addWatch, removewatches, printwatches, history, redo,\n  connect, close, version, status, members, member add|remove, transfer-leader,\n  help, quit\n\nCoordination (they hold what they take until they end):\n  lock [-t ms] PATH [-- CMD ARGS...]   take the mutex at PATH, print token=N (its fencing\n                                       token), run CMD holding it (or hold until Ctrl-C),\n                                       release; CMD gets GROVE_LOCK_TOKEN in its environment\n  election [-t ms] NAME VALUE          campaign in NAME (a path, or a name under\n                                       /elections), print when elected, lead until Ctrl-C\n  election -l NAME                     print each change of NAME's leader\n\nExamples:\n  grove --server 127.0.0.1:7181 create /app1 hehe\n  grove --server 127.0.0.1:7181 get -s /app1\n  grove --server 127.0.0.1:7181 --json ls /\n  grove --server 127.0.0.1:7181 lock /locks/deploy -- ./deploy.sh"
)]
struct Cli {
    /// Servers to connect to: host:port[,host:port...][/chroot]
    #[arg(long, short = 's', visible_alias = "server-list", env = "GROVE_SERVER", default_value = "127.0.0.1:7181")]
    server: String,

    /// Print machine-readable JSON (one object per command).
    #[arg(long)]
    json: bool,

    /// Session timeout requested, in ms.
    #[arg(long, default_value_t = 30_000)]
    timeout: u64,

    /// A command and its arguments; none starts the interactive shell.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("grove: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Channels are created lazily but must be created inside the runtime.
    let guard = rt.enter();
    let client = match Client::connect(&cli.server) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("grove: {e}");
            return ExitCode::from(2);
        }
    };
    drop(guard);
    let timeout = Duration::from_millis(cli.timeout);
    if cli.command.is_empty() {
        shell::run(rt, client, cli.server, cli.json, timeout)
    } else if let Some(code) = rt.block_on(hold::run(client.clone(), timeout, &cli.command)) {
        code
    } else {
        rt.block_on(shell::one_shot(client, cli.server, cli.json, timeout, cli.command))
    }
}
