//! Leader election with a LeaderSelector: participants take turns leading; each term has a
//! fencing token, larger than every earlier term's. Start several and stop the leader:
//! another takes over.
//!
//! ```text
//! cargo run --example leader_election -- --server 127.0.0.1:7181 --name a &
//! cargo run --example leader_election -- --server 127.0.0.1:7181 --name b
//! ```

use std::time::Duration;

use clap::Parser;
use grove_client::recipes::LeaderSelector;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:7181")]
    server: String,
    /// The election: a path, or a name under /elections.
    #[arg(long, default_value = "demo")]
    election: String,
    #[arg(long, default_value_t = format!("participant-{}", std::process::id()))]
    name: String,
    /// How long each term lasts before leadership is handed on, in ms.
    #[arg(long, default_value_t = 1000)]
    term_ms: u64,
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long)]
    for_secs: Option<u64>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = grove_examples::connect(&args.server).await;
    let (name, term) = (args.name.clone(), Duration::from_millis(args.term_ms));
    let selector = LeaderSelector::start(&client, &args.election, args.name.clone(), true, move |l| {
        let name = name.clone();
        async move {
            println!("leader={name} token={}", l.token);
            // The work of a leader; if leadership is lost first, this future is dropped.
            tokio::time::sleep(term).await;
            println!("yield={name}");
        }
    });
    grove_examples::run_for(args.for_secs).await;
    selector.close().await;
}
