//! The console API's errors: JSON `{"error", "code"}` with an HTTP status derived from the
//! gRPC status the services answered (their one error map is `api/errors.rs`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
    /// Extra fields of the answer (a conflict's current node).
    extra: Option<(&'static str, Value)>,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.to_string(), message: message.into(), extra: None }
    }

    pub fn not_found(message: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BAD_ARGUMENTS", message)
    }

    pub fn forbidden(message: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "NO_AUTH", message)
    }

    pub fn too_many(message: &str) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message)
    }

    pub fn unsupported_media(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "BAD_ARGUMENTS", message)
    }

    pub fn read_only(reason: &str) -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "READ_ONLY", format!("the console is read-only: {reason}"))
    }

    /// A service's refusal. `has_credentials`: whether the caller logged in, which makes an
    /// ACL refusal "not enough" (403) rather than "log in" (401).
    pub fn from_status(s: &tonic::Status, has_credentials: bool) -> ApiError {
        use tonic::Code;
        let code = s
            .metadata()
            .get(grove_proto::metadata::ERROR_CODE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:?}", s.code()).to_ascii_uppercase());
        let status = match s.code() {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => StatusCode::CONFLICT,
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::PermissionDenied | Code::Unauthenticated if has_credentials => StatusCode::FORBIDDEN,
            Code::PermissionDenied | Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, &code, s.message())
    }

    /// A refusal decided here rather than by a service call.
    pub fn from_grove(e: &crate::error::GroveError, has_credentials: bool) -> ApiError {
        ApiError::from_status(&crate::api::errors::to_status(e), has_credentials)
    }

    /// A failed operation of a Multi, by its Grove code.
    pub fn from_code(code: grove_proto::v1::ErrorCode, message: String, has_credentials: bool) -> ApiError {
        use grove_proto::v1::ErrorCode as E;
        let status = match code {
            E::NoNode => StatusCode::NOT_FOUND,
            E::NoAuth | E::AuthFailed if has_credentials => StatusCode::FORBIDDEN,
            E::NoAuth | E::AuthFailed => StatusCode::UNAUTHORIZED,
            E::BadArguments | E::TooLarge => StatusCode::BAD_REQUEST,
            E::NoQuorum | E::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::CONFLICT,
        };
        ApiError::new(status, code.as_str_name(), message)
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn with(mut self, field: &'static str, value: Value) -> ApiError {
        self.extra = Some((field, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.message, "code": self.code});
        if let Some((k, v)) = self.extra {
            body[k] = v;
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> ApiError {
        // 415 for a missing application/json (the cross-site guard), 400/422 for bad bodies.
        ApiError::new(r.status(), "BAD_ARGUMENTS", r.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BAD_ARGUMENTS", r.body_text())
    }
}
