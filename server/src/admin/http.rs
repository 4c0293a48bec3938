use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;

use crate::api::cluster;
use crate::node::Node;

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(node)
}

/// Alive: the process answers and Raft runs.
async fn health(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let raft = node.status_raft();
    match (raft.role, raft.failure) {
        (_, Some(failure)) => (StatusCode::SERVICE_UNAVAILABLE, format!("raft stopped: {failure}\n")),
        (crate::raft::Role::Shutdown, None) => (StatusCode::SERVICE_UNAVAILABLE, "raft stopped\n".to_string()),
        _ => (StatusCode::OK, "ok\n".to_string()),
    }
}

/// Ready: knows a leader and has caught up with what it knew to be committed.
async fn ready(State(node): State<Arc<Node>>) -> impl IntoResponse {
    if node.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no leader known or still catching up\n")
    }
}

/// The same facts as `grove status`, as JSON.
async fn status(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let s = cluster::status_response(&node);
    let mode =
        grove_proto::v1::ServerMode::try_from(s.mode).map(|m| m.as_str_name().to_ascii_lowercase()).unwrap_or_default();
    let members: Vec<_> = s
        .members
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "role": if m.role == grove_proto::v1::MemberRole::Voter as i32 { "voter" } else { "observer" },
                "peer_address": m.peer_address,
                "client_address": m.client_address,
                "is_leader": m.is_leader,
                "matched_index": m.matched_index,
                "lag": m.lag,
            })
        })
        .collect();
    Json(json!({
        "mode": mode,
        "server_id": s.server_id,
        "cluster_id": format!("{:016x}", s.cluster_id),
        "leader_id": s.leader_id,
        "leader_address": s.leader_address,
        "term": s.term,
        "zxid": s.zxid,
        "commit_index": s.commit_index,
        "applied_index": s.applied_index,
        "last_log_index": s.last_log_index,
        "snapshot_index": s.snapshot_index,
        "ready": s.ready,
        "quorum": s.quorum,
        "failure": s.failure,
        "version": s.version,
        "node_count": s.node_count,
        "session_count": s.session_count,
        "watch_count": s.watch_count,
        "request_records": node.status().request_records,
        "members": members,
    }))
}

async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let handle = crate::admin::metrics::handle();
    crate::admin::metrics::refresh(&node);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
}
