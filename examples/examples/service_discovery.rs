//! Service discovery: instances register themselves (ephemeral, in Curator's JSON format so
//! Java clients can read them); clients pick one with a cached provider.
//!
//! ```text
//! cargo run --example service_discovery -- --server 127.0.0.1:7181 register --port 8080 &
//! cargo run --example service_discovery -- --server 127.0.0.1:7181 register --port 8081 &
//! cargo run --example service_discovery -- --server 127.0.0.1:7181 query
//! ```

use std::time::Duration;

use clap::{Parser, Subcommand};
use grove_client::recipes::{ProviderStrategy, ServiceDiscovery, ServiceInstance};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:7181")]
    server: String,
    #[arg(long, default_value = "/services")]
    base: String,
    #[arg(long, default_value = "api")]
    service: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Register an instance and stay registered.
    Register {
        #[arg(long, default_value = "127.0.0.1")]
        address: String,
        #[arg(long)]
        port: u16,
        /// Unregister after this many seconds (default: at Ctrl-C).
        #[arg(long)]
        for_secs: Option<u64>,
    },
    /// List the instances, then pick a few round-robin.
    Query {
        #[arg(long, default_value_t = 4)]
        picks: usize,
    },
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = grove_examples::connect(&args.server).await;
    let discovery = ServiceDiscovery::new(&client, &args.base);
    match args.cmd {
        Cmd::Register { address, port, for_secs } => {
            let me =
                ServiceInstance::new(&args.service, &address, port, serde_json::json!({"pid": std::process::id()}));
            discovery.register(&me).await.expect("registering");
            println!("registered {} id={} at {address}:{port}", args.service, me.id);
            grove_examples::run_for(for_secs).await;
            discovery.close().await.expect("unregistering");
        }
        Cmd::Query { picks } => {
            for i in discovery.query_for_instances(&args.service).await.expect("querying") {
                println!("instance id={} address={}:{}", i.id, i.address, i.port.unwrap_or(0));
            }
            let provider = discovery.provider(&args.service, ProviderStrategy::RoundRobin).await.expect("provider");
            provider.wait_for_zxid(client.last_zxid(), Duration::from_secs(5)).await;
            for _ in 0..picks {
                match provider.get_instance() {
                    Some(i) => println!("picked {}:{}", i.address, i.port.unwrap_or(0)),
                    None => println!("no instance of {}", args.service),
                }
            }
        }
    }
}
