//! `grove-bench`: load generator for Grove.
//!
//! `concurrency` clients, each with its own connection and one request in flight, run a
//! workload for `duration`; the tool prints ops/s and latency percentiles, then one JSON
//! line. With `--pid` it also reports the server processes' CPU time per operation, the
//! figure least disturbed by a noisy machine; with `--admin` the Raft log's entries per
//! fsync.

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum Workload {
    Create,
    Set,
    /// Reads served by the connected server from its own state.
    Get,
    /// Reads confirmed by a quorum (ReadIndex).
    GetLinearizable,
    /// 90% sequential gets, 10% sets.
    Mixed,
    /// W watchers on one node: time from a set until every watcher has the event.
    WatchFanout,
    /// Kill -9 the leader (its pid is the `--pid` entry at its server id) while writing:
    /// the time until writes succeed again.
    Failover,
    /// `concurrency` clients, each with its own session, contend for one mutex: acquire +
    /// release pairs per second and their latency (waiting included). On ZooKeeper, the
    /// Curator lock recipe (ephemeral sequential nodes and a watch on the predecessor).
    Lock,
    /// Two participants in one election; the leader resigns and the time until the other
    /// is elected is measured, `rounds` times.
    Election,
    /// The leading participant's process dies (its client stops, so its session expires):
    /// the time until the waiting participant is elected, `rounds` times. Dominated by the
    /// session timeout (`--session-timeout-ms`).
    ElectionFailover,
}

#[derive(Parser)]
#[command(name = "grove-bench", version, about = "Load generator for Grove")]
struct Args {
    /// Servers: host:port[,host:port...]; workers are spread over them.
    #[arg(long, short = 's', default_value = "127.0.0.1:7181")]
    server: String,
    #[arg(long, short = 'w', value_enum)]
    workload: Workload,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, short = 'c', default_value_t = 32)]
    concurrency: usize,
    /// Seconds to run (after warm-up).
    #[arg(long, short = 'd', default_value_t = 20.0)]
    duration: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Bytes of data per write.
    #[arg(long, default_value_t = 128)]
    value_size: usize,
    /// Nodes read by get workloads.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Watchers for watch-fanout, each with its own connection and session (so ZooKeeper
    /// sends one notification per watcher too, as Grove does).
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Sets measured by watch-fanout.
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Server process ids: report their CPU time per operation.
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
    /// Admin addresses, the leader's first: report Raft log entries per fsync (the leader's)
    /// and each server's mean time per write stage (`grove_write_stage_seconds`).
    #[arg(long)]
    admin: Option<String>,
    /// Label for the JSON line (e.g. the machine or the server role).
    #[arg(long, default_value = "")]
    label: String,
    /// What to benchmark: grove, or zookeeper (built with `--features zk-compare`; pass
    /// ZooKeeper's client address as --server) for a comparison on the same machine.
    #[arg(long, value_enum, default_value = "grove")]
    target: Target,
    /// Session timeout for the lock and election workloads.
    #[arg(long, default_value_t = 4000)]
    session_timeout_ms: u64,
}

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::json;

mod conn;
mod procfs;
mod runs;

use conn::Conn;
use procfs::{Stages, cpu_ticks, log_figures, stage_means, stages, ticks_per_second};
use runs::*;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum Target {
    Grove,
    Zookeeper,
}

struct Stats {
    latencies: Vec<u32>,
    ops: u64,
    errors: u64,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let root = format!("/bench-{}-{:?}", std::process::id(), args.workload).to_lowercase();
        let admin = conns(&args, 1).await.remove(0);
        if let Err(e) = prepare(&admin, &args, &root).await {
            eprintln!("grove-bench: preparing {root}: {e}");
            std::process::exit(1);
        }
        let admins: Vec<String> =
            args.admin.as_deref().map(|a| a.split(',').map(str::to_string).collect()).unwrap_or_default();
        let fsync_before = admins.first().and_then(|a| log_figures(a));
        let stages_before: Vec<Option<Stages>> = admins.iter().map(|a| stages(a)).collect();
        let cpu_before = cpu_ticks(&args.pid);
        let wall = Instant::now();
        let mut stats = match args.workload {
            Workload::WatchFanout => run_fanout(&args, &root).await,
            Workload::Failover => run_failover(&args, &root).await,
            Workload::Election => run_election(&args, &root, false).await,
            Workload::ElectionFailover => run_election(&args, &root, true).await,
            _ => run_load(&args, &root).await,
        };
        let driven = matches!(
            args.workload,
            Workload::WatchFanout | Workload::Failover | Workload::Election | Workload::ElectionFailover
        );
        let elapsed = if driven { wall.elapsed().as_secs_f64() } else { args.duration };
        let cpu = (cpu_ticks(&args.pid).saturating_sub(cpu_before)) as f64 / ticks_per_second();
        let fsync_after = admins.first().and_then(|a| log_figures(a));
        stats.latencies.sort_unstable();
        let l = &stats.latencies;
        let ops_s = stats.ops as f64 / elapsed;
        println!(
            "target={:?} workload={:?} concurrency={} duration={:.1}s value={}B servers={}",
            args.target, args.workload, args.concurrency, elapsed, args.value_size, args.server
        );
        println!("ops={} errors={} ops/s={:.0}", stats.ops, stats.errors, ops_s);
        println!(
            "latency ms: p50={:.3} p99={:.3} p999={:.3} max={:.3}",
            percentile(l, 0.5),
            percentile(l, 0.99),
            percentile(l, 0.999),
            percentile(l, 1.0)
        );
        let mut j = json!({
            "target": format!("{:?}", args.target),
            "workload": format!("{:?}", args.workload),
            "label": args.label,
            "concurrency": args.concurrency,
            "duration_s": elapsed,
            "value_size": args.value_size,
            "ops": stats.ops,
            "errors": stats.errors,
            "ops_per_s": ops_s.round(),
            "p50_ms": percentile(l, 0.5),
            "p99_ms": percentile(l, 0.99),
            "p999_ms": percentile(l, 0.999),
            "max_ms": percentile(l, 1.0),
        });
        if !args.pid.is_empty() && stats.ops > 0 && !driven {
            // Warm-up time is included in the CPU window: scale by the measured share.
            let share = args.duration / (args.duration + args.warmup);
            let per_op = cpu * share * 1e6 / stats.ops as f64;
            println!("server cpu: {:.1} µs per op ({:.2} cores)", per_op, cpu * share / args.duration);
            j["server_cpu_us_per_op"] = json!((per_op * 10.0).round() / 10.0);
        }
        if let (Some((f0, e0)), Some((f1, e1))) = (fsync_before, fsync_after)
            && f1 > f0
        {
            // One Raft entry carries a batch of operations: report both.
            let per = (e1 - e0) / (f1 - f0);
            let ops_per = stats.ops as f64 * (args.duration + args.warmup) / args.duration / (f1 - f0);
            println!("raft log: {per:.1} entries and {ops_per:.1} operations per fsync ({} fsyncs)", f1 - f0);
            j["entries_per_fsync"] = json!((per * 10.0).round() / 10.0);
            j["ops_per_fsync"] = json!((ops_per * 10.0).round() / 10.0);
        }
        let mut breakdown = serde_json::Map::new();
        for (admin, before) in admins.iter().zip(&stages_before) {
            let (Some(before), Some(after)) = (before, stages(admin)) else { continue };
            let means = stage_means(before, &after);
            if means.is_empty() {
                continue;
            }
            let text: Vec<String> = means.iter().map(|(n, ms, _)| format!("{n}={ms:.3}")).collect();
            println!("write stages, mean ms, server {admin}: {}", text.join(" "));
            breakdown.insert(
                admin.clone(),
                json!(
                    means
                        .iter()
                        .map(|(n, ms, c)| (n.clone(), json!({"mean_ms": (ms * 1000.0).round() / 1000.0, "count": c})))
                        .collect::<serde_json::Map<_, _>>()
                ),
            );
        }
        if !breakdown.is_empty() {
            j["stages"] = json!(breakdown);
        }
        println!("{j}");
        // Leave the tree as it was.
        let _ = tokio::time::timeout(Duration::from_secs(60), delete_tree(&admin, &root)).await;
    });
}

async fn delete_tree(c: &Conn, root: &str) {
    let Ok(children) = c.children(root).await else { return };
    for n in children {
        let _ = c.delete(&format!("{root}/{n}")).await;
    }
    let _ = c.delete(root).await;
}
