//! `groved`: the Grove server. With no arguments, a standalone node on 127.0.0.1:7181 with
//! its data in ./grove-data.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use grove_server::config::{Config, Settings};
use tracing_subscriber::EnvFilter;

// The request path allocates many small, short-lived buffers (gRPC frames, protobuf
// messages, redb pages); mimalloc serves them with far less contention than glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "groved",
    // A flag given twice: the last one wins (scripts append overrides).
    args_override_self = true,
    version,
    about = "Grove server: ZooKeeper's coordination model over gRPC",
    long_about = "Grove server: ZooKeeper's coordination model over gRPC.\n\n\
        Every flag can also be set in a TOML file (--config; same names with underscores) \
        or as a GROVE_* environment variable. Flags beat the environment, which beats the file.\n\n\
        With no arguments: a standalone node, clients on 127.0.0.1:7181, peers on 127.0.0.1:7281, \
        admin HTTP on 127.0.0.1:7381, data in ./grove-data."
)]
struct Cli {
    /// TOML file with settings.
    #[arg(long, short = 'c', env = "GROVE_CONFIG")]
    config: Option<PathBuf>,

    #[command(flatten)]
    settings: Settings,
}

/// The command line with every setting's default in its help (`Settings::defaults`).
fn command() -> clap::Command {
    let defaults = match serde_json::to_value(Settings::defaults()) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let mut cmd = Cli::command();
    for (name, value) in defaults {
        let shown = match value {
            serde_json::Value::String(s) if s.is_empty() => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => continue,
            v => v.to_string(),
        };
        cmd = cmd.mut_arg(name.as_str(), |a| {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            let long = a.get_long_help().map(|h| h.to_string()).unwrap_or_else(|| help.clone());
            a.help(format!("{help} [default: {shown}]")).long_help(format!("{long}\n[default: {shown}]"))
        });
    }
    cmd
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let flags = cli.settings.clone();
    let file = match cli.config.as_deref().map(Config::read_file).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => {
            eprintln!("groved: {e}");
            return ExitCode::from(2);
        }
    };
    let from_file = file.clone();
    let config = match Config::resolve(cli.settings, file) {
        Ok(mut c) => {
            let from_env = |name: &str| matches.value_source(name) == Some(ValueSource::EnvVariable);
            c.effective = grove_server::config::effective(&flags, &from_file, &from_env);
            c
        }
        Err(e) => {
            eprintln!("groved: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    if config.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    } else {
        // Colours only for a person at a terminal: a file, a pipe or a log collector gets
        // plain text.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt().with_ansi(ansi).with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("groved: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listeners = grove_server::Listeners::bind(&config).await?;
        grove_server::run(config, listeners, shutdown_signal(), |b| {
            // One line on stdout for scripts and tests: where this server listens.
            match b.health {
                Some(h) => {
                    println!("groved listening client={} peer={} admin={} health={h}", b.client, b.peer, b.admin)
                }
                None => println!("groved listening client={} peer={} admin={}", b.client, b.peer, b.admin),
            }
        })
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("groved: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
