//! The 12306 ticket demo: sellers in separate processes share one stock of tickets kept in
//! Grove and take a mutex to sell them, so no ticket is sold twice and none is oversold.
//!
//! ```text
//! cargo run --example ticket_selling -- --server 127.0.0.1:7181 --name A --reset &
//! cargo run --example ticket_selling -- --server 127.0.0.1:7181 --name B
//! ```
//!
//! Each sale prints `ticket=N seller=NAME token=T`. The write that sells a ticket is
//! guarded by the lock's fencing token (`CheckFence` in the same transaction), so even a
//! seller that lost its lock without noticing (a long pause, an expired session) cannot
//! sell: its stale token is rejected by the servers.

use std::time::Duration;

use clap::Parser;
use grove_client::recipes::InterProcessMutex;
use grove_client::{CreateOptions, Error};

#[derive(Parser)]
struct Args {
    /// Grove servers: host:port[,host:port...]
    #[arg(long, default_value = "127.0.0.1:7181")]
    server: String,
    /// This seller's name.
    #[arg(long, default_value_t = format!("seller-{}", std::process::id()))]
    name: String,
    /// Tickets in a new stock.
    #[arg(long, default_value_t = 10)]
    tickets: u32,
    /// Start a new stock of `--tickets` even if one exists (run it in one seller only).
    #[arg(long)]
    reset: bool,
    /// Time spent on each sale while holding the lock, in ms.
    #[arg(long, default_value_t = 50)]
    pause_ms: u64,
}

const STOCK: &str = "/tickets/stock";
const LOCK: &str = "/tickets/lock";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = grove_examples::connect(&args.server).await;
    let stock = args.tickets.to_string();
    let opts = CreateOptions { create_parents: true, ..Default::default() };
    match client.create(STOCK, stock.clone(), &opts).await {
        Ok(_) => {}
        Err(Error::NodeExists { .. }) if args.reset => {
            client.set(STOCK, stock, None).await.expect("resetting the stock");
        }
        Err(Error::NodeExists { .. }) => {}
        Err(e) => panic!("creating {STOCK}: {e}"),
    }

    let mutex = InterProcessMutex::new(&client, LOCK);
    let mut sold = 0;
    loop {
        let guard = mutex.acquire().await.expect("acquiring the lock");
        let (data, stat) = client.get(STOCK).await.expect("reading the stock");
        let left: u32 = std::str::from_utf8(&data).ok().and_then(|s| s.parse().ok()).expect("a number of tickets");
        if left == 0 {
            guard.release().await.expect("releasing the lock");
            break;
        }
        // The sale lands only if this seller's token is still the lock's current one and
        // nobody changed the stock since it was read.
        let sale = client
            .framework()
            .transaction()
            .check_fence(LOCK, guard.token())
            .set_data(STOCK, (left - 1).to_string(), Some(stat.version))
            .commit()
            .await
            .expect("selling");
        match sale {
            Ok(_) => {
                sold += 1;
                println!("ticket={left} seller={} token={}", args.name, guard.token());
            }
            Err((_, e)) => eprintln!("sale refused: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
        guard.release().await.expect("releasing the lock");
        // Let the other sellers in line take their turn.
        tokio::task::yield_now().await;
    }
    println!("sold out seller={} sold={sold}", args.name);
    let _ = client.close_session().await;
}
