//! The admin HTTP endpoint: `/health`, `/ready`, `/status` (JSON) and Prometheus `/metrics`.

mod http;
pub mod metrics;

pub use http::router;
