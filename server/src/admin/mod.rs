//! The HTTP admin port: health, readiness, status, Prometheus metrics, the inspection
//! views (sessions, watches, connections, configuration) and the web console at /ui.

mod caller;
pub mod console;
pub(crate) mod http;
pub mod metrics;

pub use http::router;
