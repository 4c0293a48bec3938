//! The tree: a node with its stat, ACL and quota; a page of children; create, set (with
//! the version the page read), delete and delete-recursive. Each call is the gRPC service's
//! own, with the HTTP caller's identities.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::response::Json;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use grove_proto::v1 as pb;
use grove_proto::v1::nodes_server::Nodes;
use grove_proto::v1::quotas_server::Quotas;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Console};
use crate::admin::caller::HttpCaller;

/// Children per page unless the page asks for fewer (or more, up to the server's page size).
const PAGE: u32 = 100;
/// Most nodes a recursive delete from the console removes: larger subtrees are a job for
/// `grove deleteall`, which shows its progress.
const MAX_RECURSIVE: usize = 10_000;

#[derive(Deserialize)]
pub struct PathQuery {
    path: String,
}

pub async fn get_node(
    State(c): State<Arc<Console>>,
    caller: HttpCaller,
    q: Result<Query<PathQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    Ok(Json(node_json(&c, &caller, &q.path).await?))
}

/// A node as the page shows it. The ACL and quota are left out (null) when the caller may
/// not read them: the data view still works.
async fn node_json(c: &Console, caller: &HttpCaller, path: &str) -> Result<Value, ApiError> {
    let refused = |s: tonic::Status| ApiError::from_status(&s, caller.has_credentials());
    let nodes = c.nodes();
    let got = nodes.get(caller.request(pb::GetRequest { path: path.into(), ..Default::default() })).await;
    let got = got.map_err(refused)?.into_inner();
    let acl = nodes.get_acl(caller.request(pb::GetAclRequest { path: path.into(), ..Default::default() })).await;
    let quotas = crate::api::quotas::QuotasService { node: c.node.clone() };
    let quota = quotas
        .get_quota(caller.request(pb::GetQuotaRequest {
            path: path.into(),
            consistency: pb::Consistency::Sequential as i32,
            ..Default::default()
        }))
        .await;
    Ok(json!({
        "path": path,
        "zxid": got.header.map(|h| h.zxid).unwrap_or_default(),
        "data": B64.encode(&got.data),
        "stat": got.stat.as_ref().map(stat_json),
        "acl": acl.ok().map(|r| r.into_inner().acl.iter().map(acl_json).collect::<Vec<_>>()),
        "quota": quota.ok().and_then(|r| r.into_inner().quota).map(|q| quota_json(&q)),
    }))
}

#[derive(Deserialize)]
pub struct ChildrenQuery {
    path: String,
    limit: Option<u32>,
    #[serde(default)]
    page_token: String,
}

pub async fn children(
    State(c): State<Arc<Console>>,
    caller: HttpCaller,
    q: Result<Query<ChildrenQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    let r = c
        .nodes()
        .get_children(caller.request(pb::GetChildrenRequest {
            path: q.path.clone(),
            include_stats: true,
            limit: q.limit.unwrap_or(PAGE).max(1),
            page_token: q.page_token,
            ..Default::default()
        }))
        .await
        .map_err(|s| ApiError::from_status(&s, caller.has_credentials()))?
        .into_inner();
    let children: Vec<Value> = r
        .names
        .iter()
        .zip(r.stats.iter())
        .map(|(name, s)| {
            json!({
                "name": name,
                "num_children": s.num_children,
                "data_length": s.data_length,
                "ephemeral": s.ephemeral_owner != 0,
            })
        })
        .collect();
    Ok(Json(json!({
        "path": q.path,
        "zxid": r.header.map(|h| h.zxid).unwrap_or_default(),
        "stat": r.stat.as_ref().map(stat_json),
        "children": children,
        "next_page_token": r.next_page_token,
    })))
}

#[derive(Deserialize)]
pub struct CreateBody {
    path: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    ttl_ms: i64,
    #[serde(default)]
    make_parents: bool,
}

pub async fn create(
    State(c): State<Arc<Console>>,
    caller: HttpCaller,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    c.writable()?;
    let Json(b) = body?;
    let mode = match b.mode.as_deref().unwrap_or("persistent") {
        "persistent" => pb::CreateMode::Persistent,
        "persistent_sequential" => pb::CreateMode::PersistentSequential,
        "container" => pb::CreateMode::Container,
        "ttl" => pb::CreateMode::PersistentWithTtl,
        "ttl_sequential" => pb::CreateMode::PersistentSequentialWithTtl,
        "ephemeral" | "ephemeral_sequential" => {
            return Err(ApiError::bad_request(
                "the console has no session, and an ephemeral node lives only as long as its session",
            ));
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown mode {other:?}: persistent, persistent_sequential, container, ttl or ttl_sequential"
            )));
        }
    };
    let r = c
        .nodes()
        .create(caller.request(pb::CreateRequest {
            path: b.path,
            data: data(&b.data)?.into(),
            mode: mode as i32,
            ttl_ms: b.ttl_ms,
            create_parents: b.make_parents,
            acl: vec![],
        }))
        .await
        .map_err(|s| ApiError::from_status(&s, caller.has_credentials()))?
        .into_inner();
    Ok(Json(json!({
        "path": r.path,
        "zxid": r.header.map(|h| h.zxid).unwrap_or_default(),
        "stat": r.stat.as_ref().map(stat_json),
    })))
}

#[derive(Deserialize)]
pub struct SetBody {
    path: String,
    #[serde(default)]
    data: String,
    /// The data version the page read; -1 or absent: any.
    version: Option<i32>,
}

pub async fn set(
    State(c): State<Arc<Console>>,
    caller: HttpCaller,
    body: Result<Json<SetBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    c.writable()?;
    let Json(b) = body?;
    let r = c
        .nodes()
        .set(caller.request(pb::SetRequest {
            path: b.path.clone(),
            data: data(&b.data)?.into(),
            version: b.version.filter(|v| *v != -1),
        }))
        .await;
    match r {
        Ok(r) => {
            let r = r.into_inner();
            Ok(Json(
                json!({"zxid": r.header.map(|h| h.zxid).unwrap_or_default(), "stat": r.stat.as_ref().map(stat_json)}),
            ))
        }
        Err(s) => {
            let e = ApiError::from_status(&s, caller.has_credentials());
            if e.code() != "BAD_VERSION" {
                return Err(e);
            }
            // Both sides of the conflict: what the page holds and what the server has now.
            let current = node_json(&c, &caller, &b.path).await.unwrap_or(Value::Null);
            Err(e.with("current", current))
        }
    }
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    path: String,
    version: Option<i32>,
    #[serde(default)]
    recursive: bool,
}

pub async fn delete(
    State(c): State<Arc<Console>>,
    caller: HttpCaller,
    headers: axum::http::HeaderMap,
    q: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    c.writable()?;
    // No body, but the same rule as the other changes: only the page (or a deliberate
    // client) sends this header, never a cross-site form or link.
    let mime = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if !mime.is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))) {
        return Err(ApiError::unsupported_media("changes need `Content-Type: application/json`"));
    }
    let Query(q) = q?;
    let refused = |s: tonic::Status| ApiError::from_status(&s, caller.has_credentials());
    if !q.recursive {
        let r = c
            .nodes()
            .delete(caller.request(pb::DeleteRequest { path: q.path, version: q.version.filter(|v| *v != -1) }))
            .await
            .map_err(refused)?
            .into_inner();
        return Ok(Json(json!({"zxid": r.header.map(|h| h.zxid).unwrap_or_default(), "deleted": 1})));
    }
    if q.path == "/" {
        return Err(ApiError::bad_request("the root cannot be deleted; delete its children one by one"));
    }
    let subtree = subtree(&c, &caller, &q.path).await?;
    // Deepest first, in batches the size of a Multi: each batch is atomic, the whole is
    // not (as ZooKeeper's deleteall), so a node created meanwhile stops it with NOT_EMPTY.
    let mut deleted = 0;
    let mut zxid = 0;
    for batch in subtree.rchunks(c.node.config.max_multi_ops.max(1)) {
        let ops = batch
            .iter()
            .rev()
            .map(|p| pb::Op { op: Some(pb::op::Op::Delete(pb::DeleteRequest { path: p.clone(), version: None })) })
            .collect();
        let r = c.nodes().multi(caller.request(pb::MultiRequest { ops })).await.map_err(refused)?.into_inner();
        if !r.succeeded {
            let failed = r.results.iter().find(|o| o.code != pb::ErrorCode::Ok as i32);
            let (code, message) = failed
                .map(|o| (pb::ErrorCode::try_from(o.code).unwrap_or(pb::ErrorCode::Internal), o.message.clone()))
                .unwrap_or((pb::ErrorCode::Internal, "the delete failed".into()));
            return Err(ApiError::from_code(
                code,
                format!("{message} (after deleting {deleted} nodes)"),
                caller.has_credentials(),
            ));
        }
        deleted += batch.len();
        zxid = r.header.map(|h| h.zxid).unwrap_or_default();
    }
    Ok(Json(json!({"zxid": zxid, "deleted": deleted})))
}

/// `root` and its descendants, parents before children.
async fn subtree(c: &Console, caller: &HttpCaller, root: &str) -> Result<Vec<String>, ApiError> {
    let refused = |s: tonic::Status| ApiError::from_status(&s, caller.has_credentials());
    let mut out = vec![root.to_string()];
    let mut next = 0;
    while next < out.len() {
        let parent = out[next].clone();
        next += 1;
        let mut token = String::new();
        loop {
            let r = c
                .nodes()
                .get_children(caller.request(pb::GetChildrenRequest {
                    path: parent.clone(),
                    page_token: token,
                    consistency: pb::Consistency::Sequential as i32,
                    ..Default::default()
                }))
                .await
                .map_err(refused)?
                .into_inner();
            out.extend(r.names.iter().map(|n| crate::fsm::path::join(&parent, n)));
            if out.len() > MAX_RECURSIVE {
                return Err(ApiError::bad_request(format!(
                    "{root} has more than {MAX_RECURSIVE} nodes: delete it with `grove deleteall {root}`"
                )));
            }
            if r.next_page_token.is_empty() {
                break;
            }
            token = r.next_page_token;
        }
    }
    Ok(out)
}

fn data(b64: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(b64).map_err(|e| ApiError::bad_request(format!("data is not base64: {e}")))
}

pub fn stat_json(s: &pb::Stat) -> Value {
    let mode = pb::CreateMode::try_from(s.mode).unwrap_or(pb::CreateMode::Persistent);
    let mode = match mode {
        pb::CreateMode::Persistent => "persistent",
        pb::CreateMode::Ephemeral => "ephemeral",
        pb::CreateMode::PersistentSequential => "persistent_sequential",
        pb::CreateMode::EphemeralSequential => "ephemeral_sequential",
        pb::CreateMode::Container => "container",
        pb::CreateMode::PersistentWithTtl => "ttl",
        pb::CreateMode::PersistentSequentialWithTtl => "ttl_sequential",
    };
    json!({
        "czxid": s.czxid,
        "mzxid": s.mzxid,
        "pzxid": s.pzxid,
        "ctime": s.ctime,
        "mtime": s.mtime,
        "version": s.version,
        "cversion": s.cversion,
        "aversion": s.aversion,
        "ephemeral_owner": format!("0x{:x}", s.ephemeral_owner),
        "data_length": s.data_length,
        "num_children": s.num_children,
        "mode": mode,
        "ttl_ms": s.ttl_ms,
    })
}

fn acl_json(a: &pb::Acl) -> Value {
    // ZooKeeper's letters, in getAcl's order.
    let perms: String = [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')]
        .iter()
        .filter(|(bit, _)| a.perms & bit != 0)
        .map(|(_, l)| *l)
        .collect();
    json!({"perms": perms, "scheme": a.scheme, "id": a.id})
}

fn quota_json(q: &pb::Quota) -> Value {
    let limit = |v: i64| if v > 0 { json!(v) } else { Value::Null };
    let l = q.limits.unwrap_or_default();
    json!({
        "root": q.path,
        "max_nodes": limit(l.count_hard),
        "max_bytes": limit(l.bytes_hard),
        "soft_nodes": limit(l.count_soft),
        "soft_bytes": limit(l.bytes_soft),
        "nodes": q.count,
        "bytes": q.bytes,
    })
}
