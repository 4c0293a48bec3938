use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use grove_proto::v1 as pb;
use grove_proto::v1::cluster_server::Cluster;
use serde_json::{Value, json};

use super::caller::HttpCaller;
use crate::api::cluster::{self, ClusterService};
use crate::node::Node;

pub fn router(node: Arc<Node>, cluster: Arc<ClusterService>) -> Router {
    let inspect = Router::new()
        .route("/sessions", get(sessions))
        .route("/watches", get(watches))
        .route("/connections", get(connections))
        .route("/conf", get(conf))
        .with_state(cluster.clone());
    let console = super::console::router(node.clone(), cluster.clone());
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(node)
        .merge(inspect)
        .merge(console)
}

/// The JSON of an answer, or its error: 401 asking for Basic credentials when none were
/// given, 403 when the ones given are not enough.
fn answer<T>(
    caller: &HttpCaller,
    r: Result<tonic::Response<T>, tonic::Status>,
    to_json: impl FnOnce(T) -> Value,
) -> Response {
    match r {
        Ok(resp) => Json(to_json(resp.into_inner())).into_response(),
        Err(s) => {
            let code = match s.code() {
                tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => StatusCode::FORBIDDEN,
                tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let mut resp = (code, Json(json!({"error": s.message()}))).into_response();
            if code == StatusCode::FORBIDDEN && !caller.has_credentials() {
                // Ask for credentials (curl -u user:password) the way HTTP clients expect.
                *resp.status_mut() = StatusCode::UNAUTHORIZED;
                resp.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Basic realm=\"grove\""),
                );
            }
            resp
        }
    }
}

async fn sessions(State(c): State<Arc<ClusterService>>, caller: HttpCaller) -> Response {
    answer(&caller, c.sessions(caller.request(pb::SessionsRequest {})).await, |r| {
        let rows: Vec<Value> = r
            .sessions
            .iter()
            .map(|s| json!({"id": format!("0x{:x}", s.id), "timeout_ms": s.timeout_ms, "ephemerals": s.ephemerals}))
            .collect();
        json!({"sessions": rows})
    })
}

async fn watches(State(c): State<Arc<ClusterService>>, caller: HttpCaller) -> Response {
    answer(&caller, c.watches(caller.request(pb::WatchesRequest {})).await, |r| {
        let rows: Vec<Value> = r
            .watches
            .iter()
            .map(|w| json!({"stream": w.stream, "watch_id": w.watch_id, "kind": w.kind, "path": w.path}))
            .collect();
        json!({"streams": r.streams, "watches": rows})
    })
}

async fn connections(State(c): State<Arc<ClusterService>>, caller: HttpCaller) -> Response {
    answer(&caller, c.connections(caller.request(pb::ConnectionsRequest {})).await, |r| {
        let rows: Vec<Value> =
            r.connections.iter().map(|c| json!({"remote": c.remote, "connected_ms": c.connected_ms})).collect();
        json!({"connections": rows})
    })
}

async fn conf(State(c): State<Arc<ClusterService>>, caller: HttpCaller) -> Response {
    answer(&caller, c.config(caller.request(pb::ConfigRequest {})).await, |r| {
        let rows: Vec<Value> =
            r.settings.iter().map(|s| json!({"name": s.name, "value": s.value, "source": s.source})).collect();
        json!({"settings": rows})
    })
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
    Json(status_json(&node))
}

/// `/status`'s document (the console's cluster view shows it too).
pub(crate) fn status_json(node: &Node) -> Value {
    let s = cluster::status_response(node);
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
    json!({
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
    })
}

async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let handle = crate::admin::metrics::handle();
    crate::admin::metrics::refresh(&node);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
}
