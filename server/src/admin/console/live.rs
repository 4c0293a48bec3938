//! The live view: one Watch subscription per page, forwarded as server-sent events. The
//! page reads it with `fetch` (so it can send its credentials, which `EventSource` cannot)
//! and resumes by zxid: after a reconnect or a change of what it shows it passes the last
//! zxid it saw + 1 as `start_zxid`, and the hub replays what happened meanwhile from its
//! history, so no change is missed between two subscriptions.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use grove_proto::v1 as pb;
use serde_json::{Value, json};

use super::tree::stat_json;
use super::{ApiError, Console};
use crate::admin::caller::HttpCaller;

/// Children watches one page may hold (its expanded folders).
const MAX_FOLDERS: usize = 50;
/// Live views open at once on one server: each holds a watch stream of the hub, which
/// gRPC clients share (`--max-watches`), and the admin port has no connection limits.
const MAX_LIVE_STREAMS: usize = 64;

/// One open live view, counted while its stream lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub async fn watch(
    State(c): State<Arc<Console>>,
    caller: HttpCaller,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut node = None;
    let mut folders = Vec::new();
    let mut start_zxid = 0;
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*k {
            "node" => node = Some(v.into_owned()),
            "children" => folders.push(v.into_owned()),
            "start_zxid" => {
                start_zxid = v.parse().map_err(|_| ApiError::bad_request(format!("start_zxid {v:?} is not a zxid")))?
            }
            other => return Err(ApiError::bad_request(format!("unknown parameter {other:?}"))),
        }
    }
    if folders.len() > MAX_FOLDERS {
        return Err(ApiError::bad_request(format!("at most {MAX_FOLDERS} children watches per page")));
    }
    let mut paths = HashMap::new();
    let mut creates = Vec::new();
    let watches = node.into_iter().map(|p| (p, pb::WatchKind::Node));
    for (path, kind) in watches.chain(folders.into_iter().map(|p| (p, pb::WatchKind::Children))) {
        let watch_id = creates.len() as i64 + 1;
        paths.insert(watch_id, path.clone());
        creates.push(pb::WatchCreateRequest { watch_id, path, kind: kind as i32, start_zxid, ..Default::default() });
    }
    if creates.is_empty() {
        return Err(ApiError::bad_request("nothing to watch: pass node=PATH and/or children=PATH"));
    }
    let open = Open(c.live_streams.clone());
    if c.live_streams.fetch_add(1, Ordering::Relaxed) >= MAX_LIVE_STREAMS {
        return Err(ApiError::too_many(&format!("{MAX_LIVE_STREAMS} live views are open on this server already")));
    }
    let who = c.identities(&caller)?;
    let responses = crate::api::watch::subscribe(&c.node, who, creates).await;
    let mut forward = Forward { paths: paths.clone(), unanswered: paths.len(), ready_zxid: 0, ended: false };
    let events = responses
        .scan(open, move |_, r| futures::future::ready((!forward.ended).then(|| forward.events(r))))
        .flat_map(futures::stream::iter)
        .map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keepalive")))
}

/// Turns watch responses into the page's events.
struct Forward {
    paths: HashMap<i64, String>,
    /// Watches not yet created or refused: `ready` goes out once none is left.
    unanswered: usize,
    ready_zxid: u64,
    ended: bool,
}

impl Forward {
    fn events(&mut self, r: Result<pb::WatchResponse, tonic::Status>) -> Vec<Event> {
        let r = match r {
            Ok(r) => r,
            Err(s) => {
                // The hub ended the whole stream (a limit): nothing follows.
                self.ended = true;
                let code = crate::admin::console::ApiError::from_status(&s, false).code().to_string();
                return vec![event(
                    "canceled",
                    json!({"path": "", "code": code, "reason": s.message(), "compact_zxid": 0}),
                )];
            }
        };
        let zxid = r.header.as_ref().map(|h| h.zxid).unwrap_or_default();
        let mut out = Vec::new();
        if r.created || r.canceled {
            if r.canceled {
                let code = pb::ErrorCode::try_from(r.cancel_code).unwrap_or(pb::ErrorCode::Internal);
                out.push(event(
                    "canceled",
                    json!({
                        "path": self.paths.get(&r.watch_id).cloned().unwrap_or_default(),
                        "code": code.as_str_name(),
                        "reason": r.cancel_reason,
                        "compact_zxid": r.compact_zxid,
                    }),
                ));
            }
            if self.unanswered > 0 {
                self.ready_zxid = self.ready_zxid.max(zxid);
                self.unanswered -= 1;
                if self.unanswered == 0 {
                    out.push(event("ready", json!({"zxid": self.ready_zxid})));
                }
            }
        }
        if !r.events.is_empty() {
            let events: Vec<Value> = r
                .events
                .iter()
                .map(|e| {
                    let kind = pb::EventType::try_from(e.r#type).unwrap_or(pb::EventType::Unspecified);
                    json!({"type": kind.as_str_name(), "path": e.path, "stat": e.stat.as_ref().map(stat_json)})
                })
                .collect();
            out.push(event("change", json!({"zxid": zxid, "events": events})).id(zxid.to_string()));
        }
        out
    }
}

fn event(name: &str, data: Value) -> Event {
    Event::default().event(name).data(data.to_string())
}
