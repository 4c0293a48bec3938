//! A pool of N leases shared by many workers (InterProcessSemaphoreV2): at most N hold one
//! at a time, whichever process they run in. Each worker prints when it gets and returns
//! a lease, and the run ends with the largest number of leases held at once.
//!
//! ```text
//! cargo run --example semaphore_pool -- --server 127.0.0.1:7181 --leases 3 --workers 8
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;
use grove_client::recipes::InterProcessSemaphoreV2;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:7181")]
    server: String,
    #[arg(long, default_value = "/pools/demo")]
    path: String,
    #[arg(long, default_value_t = 3)]
    leases: u32,
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// How long each worker keeps its lease, in ms.
    #[arg(long, default_value_t = 100)]
    hold_ms: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for w in 0..args.workers {
        // One client (and session) per worker, as if each were its own process.
        let client = grove_examples::connect(&args.server).await;
        let sem = InterProcessSemaphoreV2::new(&client, &args.path, args.leases);
        let (now, most, hold) = (now.clone(), most.clone(), Duration::from_millis(args.hold_ms));
        workers.push(tokio::spawn(async move {
            let lease = sem.acquire().await.expect("acquiring a lease");
            let held = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(held, Ordering::SeqCst);
            println!("worker={w} lease token={} holding={held}", lease.token());
            tokio::time::sleep(hold).await;
            now.fetch_sub(1, Ordering::SeqCst);
            lease.release().await.expect("returning the lease");
            println!("worker={w} returned");
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    println!("max_concurrent={} leases={}", most.load(Ordering::SeqCst), args.leases);
}
