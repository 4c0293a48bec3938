//! Cluster membership: each process joins a group as an ephemeral node (kept by a
//! GroupMember even across session loss) and prints who is in the cluster as members come
//! and go. A member that crashes leaves when its session times out.
//!
//! ```text
//! cargo run --example cluster_members -- --server 127.0.0.1:7181 --name web-1 &
//! cargo run --example cluster_members -- --server 127.0.0.1:7181 --name web-2
//! ```

use clap::Parser;
use grove_client::CacheEvent;
use grove_client::recipes::GroupMember;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:7181")]
    server: String,
    #[arg(long, default_value = "/members/demo")]
    group: String,
    #[arg(long, default_value_t = format!("member-{}", std::process::id()))]
    name: String,
    /// What this member publishes (an address, say).
    #[arg(long, default_value = "")]
    payload: String,
    /// Leave after this many seconds (default: at Ctrl-C).
    #[arg(long)]
    for_secs: Option<u64>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = grove_examples::connect(&args.server).await;
    let member = GroupMember::start(&client, &args.group, &args.name, args.payload.clone()).await.expect("joining");
    let mut events = member.listen();
    member.wait_registered(std::time::Duration::from_secs(10)).await;
    println!("joined {} as {}", args.group, args.name);
    let print = |m: &GroupMember| {
        let names: Vec<String> = m.current_members().into_keys().collect();
        println!("members={}", names.join(","));
    };
    print(&member);
    let follow = async {
        loop {
            match events.recv().await {
                Ok(CacheEvent::Added(_) | CacheEvent::Removed(_)) | Err(_) => print(&member),
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = follow => {}
        _ = grove_examples::run_for(args.for_secs) => {}
    }
    member.close().await.expect("leaving");
    println!("left {}", args.group);
}
