//! RFC 9457 problem documents: every error the API returns, with a stable
//! machine `code`. Never a 500 for bad input, never an echo of a secret.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use eventsys_messages::{FieldError, report::Chain};
use eventsys_store::StoreError;
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub extra: Map<String, Value>,
    pub retry_after: Option<u32>,
    /// What went wrong on our side; logged when the answer leaves, never
    /// shown to the client.
    pub cause: Option<Box<StoreError>>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            extra: Map::new(),
            retry_after: None,
            cause: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// Input that parses but breaks a rule; each error names its field.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{} {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                detail,
            )
        }
    }

    /// One field with a bad value, answered 400 (query strings and headers).
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        Self {
            detail: format!("{} {}", error.field, error.message),
            errors: vec![error],
            ..Self::new(StatusCode::BAD_REQUEST, "validation_failed", "")
        }
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
        }
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        let problem = match &err {
            StoreError::BadCursor => {
                return Problem::bad_field("cursor", "is not a cursor this list gave out");
            }
            err if err.is_transient() => {
                Problem::unavailable("the store is unavailable; try again shortly")
            }
            _ => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "something went wrong on our side",
            ),
        };
        Self {
            cause: Some(Box::new(err)),
            ..problem
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        // The one place a failure on our side is logged, with its causes.
        if let Some(cause) = &self.cause {
            if self.status.is_server_error() && !cause.is_transient() {
                tracing::error!(status = self.status.as_u16(), error = %Chain(cause.as_ref()), "store failure");
            } else {
                tracing::warn!(status = self.status.as_u16(), error = %Chain(cause.as_ref()), "store unavailable");
            }
        }
        let mut body = json!({
            "type": format!("urn:eventsys:problem:{}", self.code),
            "title": self.title(),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if let Value::Object(fields) = &mut body {
            if !self.errors.is_empty() {
                fields.insert("errors".into(), json!(self.errors));
            }
            fields.extend(self.extra);
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
