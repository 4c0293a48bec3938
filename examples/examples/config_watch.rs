//! Follows a configuration node with a NodeCache: prints its value at start and on every
//! change, with no change missed even across reconnects (the cache resumes by zxid).
//!
//! ```text
//! cargo run --example config_watch -- --server 127.0.0.1:7181 --path /config/app
//! grove set /config/app '{"pool": 20}'          # in another terminal
//! cargo run --example config_watch -- --path /config/app --set '{"pool": 30}'
//! ```

use clap::Parser;
use grove_client::{CacheEvent, CreateOptions, Error, NodeCache};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:7181")]
    server: String,
    #[arg(long, default_value = "/config/app")]
    path: String,
    /// Write this value instead of watching.
    #[arg(long)]
    set: Option<String>,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    for_secs: Option<u64>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = grove_examples::connect(&args.server).await;
    if let Some(value) = args.set {
        let opts = CreateOptions { create_parents: true, ..Default::default() };
        match client.create(&args.path, value.clone(), &opts).await {
            Err(Error::NodeExists { .. }) => {
                client.set(&args.path, value, None).await.expect("setting the value");
            }
            r => {
                r.expect("creating the node");
            }
        }
        println!("set {}", args.path);
        return;
    }

    let cache = NodeCache::start(&client, &args.path).await.expect("starting the cache");
    let mut events = cache.listen();
    match cache.current() {
        Some(d) => println!("config={} version={}", String::from_utf8_lossy(&d.data), d.stat.version),
        None => println!("config absent"),
    }
    let watch = async {
        loop {
            match events.recv().await {
                Ok(CacheEvent::Added(d)) | Ok(CacheEvent::Updated { new: d, .. }) => {
                    println!("config={} version={}", String::from_utf8_lossy(&d.data), d.stat.version)
                }
                Ok(CacheEvent::Removed(_)) => println!("config absent"),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("listener fell behind: {e}");
                    if let Some(d) = cache.current() {
                        println!("config={} version={}", String::from_utf8_lossy(&d.data), d.stat.version);
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = watch => {}
        _ = grove_examples::run_for(args.for_secs) => {}
    }
}
