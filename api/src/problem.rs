//! RFC 9457 problem documents: every error the API returns, with a stable
//! machine `code`. Never a 500 for bad input, never an echo of a secret.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use eventsys_messages::{FieldError, report::Chain};
use eventsys_store::StoreError;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{
    IntoResponses, ToSchema,
    openapi::{ObjectBuilder, Type},
};

use crate::docs::{self, Answers};

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
        let (status, retry_after) = (self.status, self.retry_after);
        let document = ProblemDocument {
            kind: format!("urn:eventsys:problem:{}", self.code),
            title: self.title(),
            status: status.as_u16(),
            detail: self.detail,
            code: self.code,
            errors: self.errors,
            extra: self.extra,
        };
        // A document of strings, numbers and JSON values always serializes.
        let body = serde_json::to_string(&document).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// An RFC 9457 problem document, as every error is answered
/// (`application/problem+json`). Some problems add members of their own
/// (an `already_checked_in` names the winning scan, a second registration
/// its `order_id`); clients ignore those they do not know.
#[derive(Serialize, ToSchema)]
pub struct ProblemDocument {
    /// `urn:eventsys:problem:` and the `code`.
    #[serde(rename = "type")]
    #[schema(pattern = "^urn:eventsys:problem:[a-z0-9_]+$")]
    pub kind: String,
    /// The reason phrase of the status.
    pub title: &'static str,
    /// The HTTP status of the answer.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// What went wrong, for programs: stable, e.g. `validation_failed`,
    /// `not_found`, `sold_out`.
    #[schema(pattern = "^[a-z0-9_]+$")]
    pub code: &'static str,
    /// One entry per offending field, for `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Problem answers by status: `(status, description, sends Retry-After)`.
fn problems(answers: &[(u16, &str, bool)]) -> Answers {
    let retry_after = || {
        let seconds = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1_u32));
        (
            "Retry-After",
            "Seconds to wait before trying again",
            seconds,
        )
    };
    answers
        .iter()
        .map(|&(status, description, retry)| {
            let header = retry.then(retry_after);
            let answer = docs::answer(
                description,
                "application/problem+json",
                "ProblemDocument",
                header,
            );
            (status.to_string(), answer)
        })
        .collect()
}

// Statuses many operations share, each meaning the same wherever it
// occurs; an operation lists what is particular to it next to these.
// They refer to `ProblemDocument`, which the operations' own problem
// answers bring into the document.

const TOO_MANY_HEADERS: (u16, &str, bool) = (
    431,
    "`too_many_headers`: more header lines than a request may carry",
    false,
);
const UNAUTHORIZED: (u16, &str, bool) = (
    401,
    "`unauthorized`: no bearer token where one is needed, or one that is not valid",
    false,
);

/// A read that needs a token: 401, 431, and the store failing (500, 503).
pub struct ReadProblems;

impl IntoResponses for ReadProblems {
    fn responses() -> Answers {
        problems(&[
            UNAUTHORIZED,
            TOO_MANY_HEADERS,
            (500, "`internal_error`: the store failed on our side", false),
            (
                503,
                "`unavailable`: the store cannot be reached; try again shortly",
                true,
            ),
        ])
    }
}

/// A read anyone may make without a token: [`ReadProblems`] but 401.
pub struct PublicReadProblems;

impl IntoResponses for PublicReadProblems {
    fn responses() -> Answers {
        let mut responses = ReadProblems::responses();
        responses.remove("401");
        responses
    }
}

/// A request only the router's limits refuse: 431.
pub struct RequestProblems;

impl IntoResponses for RequestProblems {
    fn responses() -> Answers {
        problems(&[TOO_MANY_HEADERS])
    }
}

/// A write: what refuses it before the handler looks (token, body size,
/// write rate, headers) and what fails under it (store, broker, load).
/// 400 and 422 are the operation's own, listed with it.
pub struct WriteProblems;

impl IntoResponses for WriteProblems {
    fn responses() -> Answers {
        problems(&[
            UNAUTHORIZED,
            (
                413,
                "`payload_too_large`: the body is larger than 64 KiB",
                false,
            ),
            (
                429,
                "`rate_limited`: this user or address sends writes too fast; or \
                 `too_many_waiting`: this user has too many commands waiting",
                true,
            ),
            TOO_MANY_HEADERS,
            (500, "`internal_error`: the store failed on our side", false),
            (
                503,
                "`unavailable`: the store or the broker cannot be reached; or `overloaded`: \
                 more is waiting than can be finished in time. Nothing was done; try again \
                 after Retry-After with the same Idempotency-Key",
                true,
            ),
        ])
    }
}

/// One problem answer shared by many operations, with the one meaning it
/// has wherever it is listed.
macro_rules! shared_problem {
    ($(#[$doc:meta])* $name:ident, $status:literal, $description:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> Answers {
                problems(&[($status, $description, false)])
            }
        }
    };
}

shared_problem!(
    /// The operation is an organizer's.
    NotAnOrganizer,
    403,
    "`forbidden`: the caller is not an organizer"
);

shared_problem!(
    /// The operation is an attendee's.
    NotAnAttendee,
    403,
    "`forbidden`: the caller is not an attendee"
);

shared_problem!(
    /// The operation is the event's organizer's or door staff's.
    NotAtTheDoor,
    403,
    "`forbidden`: the caller is neither an organizer nor door staff, or not of this event"
);

shared_problem!(
    /// A JSON body is required.
    NotJson,
    415,
    "`unsupported_media_type`: the body is not sent as JSON"
);

shared_problem!(
    /// The path names an event the caller may see.
    NoVisibleEvent,
    404,
    "`not_found`: no such event, or a draft of someone else's"
);

shared_problem!(
    /// The path names an event the caller runs.
    NotTheirEvent,
    404,
    "`not_found`: no such event of the caller's"
);

shared_problem!(
    /// The path names one of the caller's webhook endpoints.
    NotTheirWebhook,
    404,
    "`not_found`: no such endpoint of the caller's"
);

shared_problem!(
    /// A command with a JSON body.
    BadJsonCommand,
    400,
    "`malformed_request`: the body is not JSON, or could not be read; or `validation_failed`: a bad Idempotency-Key"
);

shared_problem!(
    /// A command without a body of its own.
    BadCommand,
    400,
    "`malformed_request`: the body could not be read; or `validation_failed`: a bad Idempotency-Key"
);

shared_problem!(
    /// A list read a page at a time.
    BadPage,
    400,
    "`validation_failed`: a `limit` out of range, or a `cursor` this list did not give out; or `malformed_request`: a query string that cannot be read"
);

shared_problem!(
    /// A command whose only 422 is a key used for another request.
    KeyReused,
    422,
    "`idempotency_key_reused`"
);

shared_problem!(
    /// A change to an event that must not be cancelled.
    EventCancelled,
    409,
    "`conflict`: the event is cancelled"
);
