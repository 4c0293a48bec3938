//! Helpers shared by the examples in `examples/examples/` (see `examples/README.md`).

use std::time::Duration;

use grove_client::Client;

/// A client of `server` with a session: what the recipes need, since what they hold is
/// owned by the session and released when it ends.
pub async fn connect(server: &str) -> Client {
    match Client::builder(server).session_timeout(Duration::from_secs(10)).start().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot reach Grove at {server}: {e}");
            std::process::exit(1);
        }
    }
}

/// Resolves after `secs` seconds if given, else on Ctrl-C.
pub async fn run_for(secs: Option<u64>) {
    match secs {
        Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
