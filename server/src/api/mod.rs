//! Thin tonic handlers: validate the request, call the node, convert the answer. Errors map
//! to statuses in one place, `errors`.

pub mod auth;
pub mod cluster;
pub mod convert;
pub mod errors;
pub mod locks;
pub mod nodes;
pub mod quotas;
pub mod sessions;
pub mod watch;

use std::future::Future;
use std::time::Instant;

use grove_proto::metadata;
use tonic::metadata::MetadataMap;
use tonic::{Response, Status};
use tracing::Instrument;

use crate::error::GroveError;
use crate::node::Node;

/// Runs a handler body in a request span, recording its outcome and latency per method and
/// code. The span's `session` field is filled in by `caller_session` once the caller is
/// known, so every log line a request causes names the session it came from.
pub(crate) async fn metered<T>(
    method: &'static str,
    body: impl Future<Output = Result<T, GroveError>>,
) -> Result<Response<T>, Status> {
    let span = tracing::info_span!("rpc", method, session = tracing::field::Empty, caller = tracing::field::Empty);
    let started = Instant::now();
    let result = body.instrument(span.clone()).await;
    let code = match &result {
        Ok(_) => "OK",
        Err(e) => errors::codes(e).1.as_str_name(),
    };
    span.in_scope(|| tracing::debug!(code, micros = started.elapsed().as_micros() as u64, "request done"));
    metrics::counter!("grove_requests_total", "method" => method, "code" => code).increment(1);
    metrics::histogram!("grove_request_duration_seconds", "method" => method).record(started.elapsed().as_secs_f64());
    result.map(Response::new).map_err(|e| errors::to_status(&e))
}

/// The session a request acts for (0: none), authenticated against the live sessions.
pub(crate) fn caller_session(md: &MetadataMap, node: &Node) -> Result<u64, GroveError> {
    let Some(raw) = md.get(metadata::SESSION_ID) else { return Ok(0) };
    let text = raw.to_str().map_err(|_| GroveError::bad_args("", format!("{} is not text", metadata::SESSION_ID)))?;
    let id = parse_session_id(text)?;
    let secret = match md.get(metadata::SESSION_SECRET) {
        Some(s) => decode_hex(s.to_str().unwrap_or_default())?,
        None => {
            return Err(GroveError::AuthFailed {
                message: format!("{} needs {}", metadata::SESSION_ID, metadata::SESSION_SECRET),
            });
        }
    };
    node.authenticate(id, &secret)?;
    record_session(id);
    node.request_rate.admit(id, Instant::now())?;
    Ok(id)
}

/// Names the session in the current request span (ZooKeeper's hex form, as `grove` prints it).
pub(crate) fn record_session(id: u64) {
    tracing::Span::current().record("session", tracing::field::display(format_args!("0x{id:x}")));
}

/// The request id a client gave a write (0: none).
pub(crate) fn request_id(md: &MetadataMap) -> Result<crate::fsm::command::RequestId, GroveError> {
    let Some(raw) = md.get(metadata::REQUEST_ID) else { return Ok(0) };
    let text = raw.to_str().unwrap_or_default();
    match u128::from_str_radix(text.trim(), 16) {
        Ok(id) if id != 0 && text.trim().len() == 32 => Ok(id),
        _ => Err(GroveError::bad_args("", format!("{} must be 32 hex digits, not {text:?}", metadata::REQUEST_ID))),
    }
}

/// Session ids are decimal, or hex with `0x` as ZooKeeper prints them.
pub fn parse_session_id(text: &str) -> Result<u64, GroveError> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    match parsed {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(GroveError::bad_args("", format!("invalid session id {t:?}"))),
    }
}

pub fn decode_hex(s: &str) -> Result<Vec<u8>, GroveError> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(GroveError::bad_args("", "session secret must be hex"));
    }
    Ok((0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_parse_in_decimal_and_hex() {
        assert_eq!(parse_session_id("42").unwrap(), 42);
        assert_eq!(parse_session_id("0x2a").unwrap(), 42);
        assert!(parse_session_id("0").is_err());
        assert!(parse_session_id("-1").is_err());
        assert!(parse_session_id("abc").is_err());
        assert_eq!(decode_hex("00ff10").unwrap(), vec![0, 255, 16]);
        assert!(decode_hex("0g").is_err());
        assert!(decode_hex("abc").is_err());
    }
}
