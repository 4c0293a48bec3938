//! `status`: the server's role like `zkServer.sh status` (`Mode: leader|follower|...`),
//! then its zxid, term, leader, counts and members.

use clap::Parser;
use grove_client::Error;
use grove_client::proto::ServerMode;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "status", no_binary_name = true, override_usage = "status")]
pub struct Status {}

impl CommandArgs for Status {}

impl Status {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let s = ctx.client()?.status().await?;
        let mode = match s.mode() {
            ServerMode::Standalone => "standalone",
            ServerMode::Leader => "leader",
            ServerMode::Follower => "follower",
            ServerMode::Observer => "observer",
            ServerMode::Candidate => "candidate (no leader)",
            ServerMode::NotAMember => "not a member",
            ServerMode::Unspecified => "unknown",
        };
        let leader =
            if s.leader_id == 0 { "none".to_string() } else { format!("{} {}", s.leader_id, s.leader_address) };
        let mut text = format!(
            "Mode: {mode}\nServer id: {}\nCluster: {:016x}\nZxid: 0x{:x}\nTerm: {}\nLeader: {leader}\nQuorum: {}\nReady: {}\nNodes: {}\nSessions: {}\nWatches: {}\nMembers:",
            s.server_id,
            s.cluster_id,
            s.zxid,
            s.term,
            if s.quorum { "yes" } else { "no" },
            s.ready,
            s.node_count,
            s.session_count,
            s.watch_count
        );
        for m in &s.members {
            let leader = if m.is_leader { " (leader)" } else { "" };
            text.push_str(&format!("\n  {} {} {}{leader}", m.id, format::role(m), m.peer_address));
        }
        if !s.failure.is_empty() {
            text.push_str(&format!("\nFailure: {}", s.failure));
        }
        let j = json!({
            "mode": mode.split(' ').next().unwrap_or(mode),
            "server_id": s.server_id,
            "cluster_id": format!("{:016x}", s.cluster_id),
            "zxid": s.zxid,
            "term": s.term,
            "leader_id": s.leader_id,
            "leader_address": s.leader_address,
            "ready": s.ready,
            "quorum": s.quorum,
            "failure": s.failure,
            "node_count": s.node_count,
            "session_count": s.session_count,
            "watch_count": s.watch_count,
            "members": s.members.iter().map(format::member_json).collect::<Vec<_>>(),
        });
        Ok(Output::text(text, j))
    }
}
