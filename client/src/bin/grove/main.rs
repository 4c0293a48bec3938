//! `grove`: Grove's command-line client, with zkCli's commands and output.
//!
//! Without a command, an interactive shell; with one, runs it and exits (non-zero on error):
//! `grove --server 127.0.0.1:7181 create /app1 hehe`.

mod cmd;
mod context;
mod format;
mod hold;
mod shell;
mod transfer;
mod watches;
mod zookeeper;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use grove_client::TlsOptions;

#[derive(Parser)]
#[command(name = "grove", version, about = "Grove command-line client (zkCli's commands)")]
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

    /// TLS: the CA (PEM) to verify the servers with. Any of the --tls-* flags turns TLS on.
    #[arg(long, env = "GROVE_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,

    /// TLS: a client certificate (PEM); the server knows its caller as x509:<subject>.
    #[arg(long, env = "GROVE_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// TLS: the client certificate's private key (PEM).
    #[arg(long, env = "GROVE_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// TLS: the name to verify the server's certificate against, if not the host connected to.
    #[arg(long, env = "GROVE_TLS_SERVER_NAME", value_name = "NAME")]
    tls_server_name: Option<String>,

    /// Authenticate as a digest user, `user:password` (repeatable; zkCli's `addauth digest`
    /// for every command). Send passwords over TLS.
    #[arg(long, env = "GROVE_AUTH", value_name = "USER:PASSWORD")]
    auth: Vec<String>,

    /// A command and its arguments; none starts the interactive shell.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `grove --help`'s epilogue: the commands, from their declarations.
fn after_help() -> String {
    let mut names = Vec::new();
    for entry in cmd::TABLE.iter().filter(|e| !e.one_shot_only) {
        let declared = (entry.declare)();
        let subs: Vec<&str> = declared.get_subcommands().map(|s| s.get_name()).collect();
        names.push(if subs.is_empty() { entry.name() } else { format!("{} {}", entry.name(), subs.join("|")) });
    }
    let mut list = String::new();
    let mut line = String::from(" ");
    for (i, name) in names.iter().enumerate() {
        let word = if i + 1 < names.len() { format!(" {name},") } else { format!(" {name}") };
        if line.len() + word.len() > 80 {
            list.push_str(line.trim_end());
            list.push('\n');
            line = String::from(" ");
        }
        line.push_str(&word);
    }
    list.push_str(&line);
    format!(
        "Commands (run `grove help` for their syntax, `grove help COMMAND` for one in full):\n{list}\n\n\
         Coordination (they hold what they take until they end):\n{}\n{}\n\n\
         Examples:\n  grove --server 127.0.0.1:7181 create /app1 hehe\n  grove --server 127.0.0.1:7181 get -s /app1\n  \
         grove --server 127.0.0.1:7181 --json ls /\n  grove --server 127.0.0.1:7181 lock /locks/deploy -- ./deploy.sh",
        cmd::lock::GUIDE,
        cmd::election::GUIDE
    )
}

/// zkCli's own spelling of the options, `-server host:port` and `-timeout ms`, before the
/// command: taken as `--server` and `--timeout` (clap would read `-server` as `-s erver`).
fn zkcli_options(args: impl Iterator<Item = String>) -> Vec<String> {
    const TAKE_VALUES: [&str; 9] =
        ["-server", "-timeout", "--server", "-s", "--timeout", "--tls-ca", "--tls-cert", "--tls-key", "--auth"];
    let mut out = Vec::new();
    let mut args = args.enumerate();
    while let Some((i, a)) = args.next() {
        if i == 0 {
            out.push(a);
            continue;
        }
        if !a.starts_with('-') {
            // The command: the rest are its own words.
            out.push(a);
            out.extend(args.map(|(_, a)| a));
            break;
        }
        let takes_value = TAKE_VALUES.contains(&a.as_str()) || a == "--tls-server-name";
        out.push(if a == "-server" || a == "-timeout" { format!("-{a}") } else { a });
        if takes_value && let Some((_, v)) = args.next() {
            out.push(v);
        }
    }
    out
}

fn main() -> ExitCode {
    let matches = Cli::command().after_help(after_help()).get_matches_from(zkcli_options(std::env::args()));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("grove: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Channels are created lazily but must be created inside the runtime.
    let guard = rt.enter();
    let tls = (cli.tls_ca.is_some() || cli.tls_cert.is_some() || cli.tls_server_name.is_some()).then(|| TlsOptions {
        ca: cli.tls_ca.clone(),
        cert: cli.tls_cert.clone(),
        key: cli.tls_key.clone(),
        server_name: cli.tls_server_name.clone(),
    });
    let dial = context::Dial { tls, auth: cli.auth.clone() };
    let client = match context::dial(&cli.server, &dial) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("grove: {e}");
            return ExitCode::from(2);
        }
    };
    drop(guard);
    let timeout = Duration::from_millis(cli.timeout);
    if cli.command.is_empty() {
        shell::run(rt, client, cli.server, dial, cli.json, timeout)
    } else {
        rt.block_on(shell::one_shot(client, cli.server, dial, cli.json, timeout, cli.command))
    }
}

#[cfg(test)]
mod tests {
    use super::zkcli_options;

    fn args(line: &str) -> Vec<String> {
        zkcli_options(line.split_whitespace().map(String::from))
    }

    #[test]
    fn zkclis_single_dash_options_before_the_command() {
        assert_eq!(args("grove -server h:1 ls /"), ["grove", "--server", "h:1", "ls", "/"]);
        assert_eq!(
            args("grove -server h:1 -timeout 5000 get /a"),
            ["grove", "--server", "h:1", "--timeout", "5000", "get", "/a"]
        );
        // After the command they are the command's own words.
        assert_eq!(args("grove create /a -server"), ["grove", "create", "/a", "-server"]);
        assert_eq!(args("grove --json ls -server"), ["grove", "--json", "ls", "-server"]);
    }
}
