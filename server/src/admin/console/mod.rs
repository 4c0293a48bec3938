//! The web console at `/ui` on the admin port: a page (plain HTML, CSS and JavaScript
//! modules, embedded in the binary at build time, no CDN) and the JSON API it calls under
//! `/ui/api`. The API is a thin HTTP face over the gRPC services: every read and change
//! goes through the same service implementations, ACL checks and limits as a gRPC client's,
//! with the identities of the HTTP caller (see `caller.rs`).
//!
//! Guarding the changes:
//! - `--console read-only` (or `on` on a non-loopback admin port without `--super-digest`)
//!   refuses every change with 405 before it reaches the services;
//! - bodies must be `application/json`, which a cross-site form cannot send without a CORS
//!   preflight this server never answers; the API never asks the browser for credentials
//!   (no `WWW-Authenticate`), so none are cached for other sites to ride on.

mod coordination;
mod error;
mod live;
mod tree;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::admin::caller::HttpCaller;
use crate::api::cluster::ClusterService;
use crate::config::Console as Mode;
use crate::node::Node;
pub use error::ApiError;

/// What the console's handlers share.
pub struct Console {
    node: Arc<Node>,
    cluster: Arc<ClusterService>,
    /// Live views open now (`live.rs`), against `MAX_LIVE_STREAMS`.
    live_streams: Arc<std::sync::atomic::AtomicUsize>,
}

/// The API answers only requests that name the server by an address, as `localhost`, or
/// by one of its own advertised names: a page of another site whose name an attacker points
/// at 127.0.0.1 (DNS rebinding) would otherwise be same-origin with a console reached
/// through loopback (`groved` on a laptop, `kubectl port-forward`), with the victim's access.
async fn known_names_only(
    own: Arc<Vec<String>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // HTTP/2 carries the name in the URI's authority rather than a Host header.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => &host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
    let known = name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || own.iter().any(|o| o.trim_end_matches('.') == name);
    if !known {
        return ApiError::forbidden(&format!(
            "the console answers requests for this server's addresses, localhost or its advertised names, not {host:?}"
        ))
        .into_response();
    }
    next.run(req).await
}

impl Console {
    fn nodes(&self) -> crate::api::nodes::NodesService {
        crate::api::nodes::NodesService { node: self.node.clone() }
    }

    /// The caller's identities, as the services check them.
    fn identities(&self, caller: &HttpCaller) -> Result<crate::fsm::acl::Caller, ApiError> {
        crate::api::auth::identities(&caller.request(()), &self.node.config)
            .map_err(|e| ApiError::from_grove(&e, caller.has_credentials()))
    }

    /// Refuses a change when the console is read-only.
    fn writable(&self) -> Result<(), ApiError> {
        match &self.node.config.console {
            Mode::ReadOnly { reason } => Err(ApiError::read_only(reason)),
            _ => Ok(()),
        }
    }
}

/// The page's files, embedded at build time.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("assets/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("assets/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_bytes!("assets/api.js")),
    ("live.js", "text/javascript; charset=utf-8", include_bytes!("assets/live.js")),
    ("tree.js", "text/javascript; charset=utf-8", include_bytes!("assets/tree.js")),
    ("status.js", "text/javascript; charset=utf-8", include_bytes!("assets/status.js")),
    ("app.css", "text/css; charset=utf-8", include_bytes!("assets/app.css")),
];

pub fn router(node: Arc<Node>, cluster: Arc<ClusterService>) -> Router {
    match &node.config.console {
        Mode::Off { reason } => {
            tracing::info!("web console off: {reason}");
            return Router::new();
        }
        Mode::ReadOnly { reason } => tracing::info!("web console read-only: {reason}"),
        Mode::ReadWrite if !crate::config::is_loopback(&node.config.admin_listen) => tracing::warn!(
            "the web console takes changes on {}, reachable from other hosts (--console on): \
             anyone who reaches it may change every node whose ACL is open",
            node.config.admin_listen
        ),
        Mode::ReadWrite => {}
    }
    // Host names the API answers to besides addresses and localhost: this server's own.
    let own: Vec<String> = [&node.config.advertise, &node.config.advertise_peer]
        .into_iter()
        .flatten()
        .filter_map(|a| a.rsplit_once(':').map(|(h, _)| h.to_ascii_lowercase()))
        .collect();
    let own = Arc::new(own);
    let state = Arc::new(Console { node, cluster, live_streams: Arc::default() });
    let api = Router::new()
        .route("/info", get(coordination::info))
        .route("/node", get(tree::get_node).post(tree::create).put(tree::set).delete(tree::delete))
        .route("/children", get(tree::children))
        .route("/watch", get(live::watch))
        .route("/locks", get(coordination::locks))
        .route("/sessions", get(coordination::sessions))
        .route("/cluster", get(coordination::cluster))
        .fallback(|| async { ApiError::not_found("no such console API call") })
        .with_state(state)
        .layer(axum::middleware::from_fn(move |req, next| known_names_only(own.clone(), req, next)));
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { asset("index.html") }))
        .route("/ui/{file}", get(|axum::extract::Path(file): axum::extract::Path<String>| async move { asset(&file) }))
        .nest("/ui/api", api)
}

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, embedded)) => {
            // For work on the page itself: its files read from a folder at each request, so
            // an edit shows on reload without rebuilding groved. Only the embedded names.
            let body = match std::env::var_os("GROVE_CONSOLE_DEV_DIR") {
                Some(dir) => std::fs::read(std::path::Path::new(&dir).join(name)).unwrap_or_else(|_| embedded.to_vec()),
                None => embedded.to_vec(),
            };
            (
                [
                    (header::CONTENT_TYPE, *mime),
                    // The page talks only to its own origin and never runs inline script.
                    (
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
                    ),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
                .into_response()
        }
        None => ApiError::not_found(&format!("no console file {name}")).into_response(),
    }
}
