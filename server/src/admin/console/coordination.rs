//! What the console shows beside the tree: who the caller is and what the console may do,
//! locks and elections with their holders, waiters and fencing tokens, sessions, and the
//! cluster's members.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Json;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use grove_proto::v1 as pb;
use grove_proto::v1::cluster_server::Cluster;
use grove_proto::v1::locks_server::Locks;
use serde_json::{Value, json};

use super::{ApiError, Console};
use crate::admin::caller::HttpCaller;
use crate::config::Console as Mode;
use crate::fsm::locks::LockKind;
use crate::node::Consistency;
use crate::storage::access::StateTables;

/// Most locks listed: a page, not a report (`grove` and the Locks API serve the rest).
const MAX_LOCKS: usize = 200;
/// Where elections named without a leading '/' live (Election's `name`).
const ELECTIONS: &str = "/elections/";

pub async fn info(State(c): State<Arc<Console>>, caller: HttpCaller) -> Result<Json<Value>, ApiError> {
    let who = c.identities(&caller)?;
    // Names only: a digest id's hash is not for display.
    let identity: Vec<String> = who
        .ids
        .iter()
        .map(|(scheme, id)| match scheme.as_str() {
            "digest" => format!("digest:{}", id.split_once(':').map(|(u, _)| u).unwrap_or(id)),
            _ => format!("{scheme}:{id}"),
        })
        .collect();
    let (mode, reason) = match &c.node.config.console {
        Mode::ReadOnly { reason } => ("read-only", Some(reason.clone())),
        _ => ("read-write", None),
    };
    Ok(Json(json!({
        "mode": mode,
        "read_only_reason": reason,
        "server_id": c.node.id,
        "version": env!("CARGO_PKG_VERSION"),
        "identity": identity,
    })))
}

pub async fn locks(State(c): State<Arc<Console>>, caller: HttpCaller) -> Result<Json<Value>, ApiError> {
    let queues = {
        let view = c
            .node
            .read(Consistency::Sequential, 0)
            .await
            .map_err(|e| ApiError::from_grove(&e, caller.has_credentials()))?;
        view.tables.lock_queues(MAX_LOCKS + 1).map_err(|e| ApiError::from_grove(&e, caller.has_credentials()))?
    };
    let truncated = queues.len() > MAX_LOCKS;
    let service = crate::api::locks::LocksService { node: c.node.clone() };
    let mut out = Vec::new();
    for (dir, queue) in queues.into_iter().take(MAX_LOCKS) {
        let semaphore = queue.family == LockKind::Semaphore.family();
        let path = match semaphore {
            true => dir.strip_suffix("/leases").unwrap_or(&dir).to_string(),
            false => dir.clone(),
        };
        let kind = match queue.family {
            f if f == LockKind::Mutex.family() => "mutex",
            f if f == LockKind::Read.family() => "read_write",
            _ => "semaphore",
        };
        // The Locks service's own answer, so its READ check decides what this caller sees.
        let Ok(r) = service
            .describe(caller.request(pb::DescribeLockRequest {
                path: path.clone(),
                consistency: pb::Consistency::Sequential as i32,
            }))
            .await
        else {
            continue;
        };
        let mut entries: Vec<&pb::LockEntry> = r.get_ref().entries.iter().collect();
        // Holders first, then waiters; each group in line order (Describe's).
        entries.sort_by_key(|e| !e.granted);
        out.push(json!({
            "path": path,
            "kind": kind,
            "max_leases": queue.max_leases,
            "election": kind == "mutex" && path.starts_with(ELECTIONS),
            "entries": entries.iter().map(|e| lock_entry(e)).collect::<Vec<_>>(),
        }));
    }
    Ok(Json(json!({"locks": out, "truncated": truncated})))
}

fn lock_entry(e: &pb::LockEntry) -> Value {
    let kind = match pb::LockKind::try_from(e.kind) {
        Ok(pb::LockKind::Read) => "read",
        Ok(pb::LockKind::Write) => "write",
        Ok(pb::LockKind::Semaphore) => "semaphore",
        _ => "mutex",
    };
    json!({
        "node": e.node,
        "kind": kind,
        "granted": e.granted,
        // A string: tokens carry a zxid in their high bits, beyond JavaScript's 2^53.
        "token": e.token.to_string(),
        "session_id": format!("0x{:x}", e.session_id),
        "owner": e.owner,
        "holds": e.holds,
        "data": B64.encode(&e.data),
    })
}

pub async fn sessions(State(c): State<Arc<Console>>, caller: HttpCaller) -> Result<Json<Value>, ApiError> {
    let r = c
        .cluster
        .sessions(caller.request(pb::SessionsRequest {}))
        .await
        .map_err(|s| ApiError::from_status(&s, caller.has_credentials()))?;
    let rows: Vec<Value> = r
        .get_ref()
        .sessions
        .iter()
        .map(|s| json!({"id": format!("0x{:x}", s.id), "timeout_ms": s.timeout_ms, "ephemerals": s.ephemerals}))
        .collect();
    Ok(Json(json!({"sessions": rows})))
}

/// `/status`, with each member's lag as null where this server does not know it (only the
/// leader tracks its followers).
pub async fn cluster(State(c): State<Arc<Console>>) -> Json<Value> {
    let mut status = crate::admin::http::status_json(&c.node);
    let leading = status["mode"] == "leader" || status["mode"] == "standalone";
    if !leading && let Some(members) = status["members"].as_array_mut() {
        for m in members {
            m["lag"] = Value::Null;
            m["matched_index"] = Value::Null;
        }
    }
    Json(status)
}
