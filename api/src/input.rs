//! Reading requests: write requests and their JSON bodies, list paging,
//! path ids and the command headers (`Idempotency-Key`, `Prefer: wait=N`).
//! Every failure becomes a problem document that names what was wrong.

use std::{collections::HashMap, str::FromStr, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, FromRequestParts, Query, Request},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
};
use eventsys_messages::FieldError;
use futures::StreamExt;
use serde::de::DeserializeOwned;

use eventsys_store::PageRequest;
use utoipa::IntoParams;

use crate::{problem::Problem, signing::Cursors};

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;
/// How much of an oversized body is read (and dropped) before answering,
/// and for how long: a client still sending then reads its 413.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(10);
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;
/// `Prefer: wait=N` is honoured up to this many seconds.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
const IDEMPOTENCY_KEY_MAX: usize = 255;

/// A write request, read once: its command headers, what makes it "the
/// same request" again (method, path and body), and its body, parsed only
/// when the handler asks for it, after it has authorized the caller.
pub struct CommandRequest {
    /// Method, path and body, for `Idempotency-Key` replays.
    pub fingerprint: Vec<u8>,
    /// The `Idempotency-Key` header as sent; checked on submission.
    pub idempotency_key: Option<HeaderValue>,
    /// `Prefer: wait=N`, capped.
    pub wait: Option<Duration>,
    /// The caller's W3C trace context, if any.
    pub traceparent: Option<String>,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for CommandRequest {
    type Rejection = Problem;

    async fn from_request(req: Request, _: &S) -> Result<Self, Problem> {
        let (parts, body) = req.into_parts();
        let body = read_body(body).await?;
        let headers = &parts.headers;
        let fingerprint = [
            parts.method.as_str().as_bytes(),
            b" ",
            parts.uri.path().as_bytes(),
            b"\n",
            &body,
        ]
        .concat();
        Ok(Self {
            fingerprint,
            idempotency_key: headers.get("idempotency-key").cloned(),
            wait: preferred_wait(headers),
            traceparent: headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            content_type: headers.get(header::CONTENT_TYPE).cloned(),
            body,
        })
    }
}

pub fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request bodies are limited to {BODY_LIMIT} bytes"),
    )
}

/// The body, if it is within [`BODY_LIMIT`]; otherwise a 413, after
/// reading and dropping what follows (up to a bound) so that the client
/// gets to read the answer instead of a reset connection.
pub async fn read_body(body: Body) -> Result<Bytes, Problem> {
    let mut frames = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    loop {
        let frame = match tokio::time::timeout_at(deadline, frames.next()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(Problem::malformed("the body could not be read")),
            Err(_) if seen > BODY_LIMIT => return Err(too_large()),
            Err(_) => return Err(Problem::malformed("the body took too long to arrive")),
        };
        seen += frame.len();
        if seen <= BODY_LIMIT {
            kept.extend_from_slice(&frame);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > BODY_LIMIT {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}

impl CommandRequest {
    /// A command the API issues itself on behalf of a request (one scan of
    /// an uploaded batch): no body, no key, the request's trace.
    pub fn internal(traceparent: Option<String>) -> Self {
        Self {
            fingerprint: Vec::new(),
            idempotency_key: None,
            wait: None,
            traceparent,
            content_type: None,
            body: Bytes::new(),
        }
    }

    /// The JSON body, or the default when there is none at all (or it is
    /// `null`, as the API's document allows for an optional body).
    pub fn body_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, Problem> {
        if self.body.is_empty() {
            Ok(T::default())
        } else {
            Ok(self.body::<Option<T>>()?.unwrap_or_default())
        }
    }

    /// The JSON body, with errors that name the offending field.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        let content_type = self
            .content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        // Exactly JSON: `application/evil+json` is not a promise of JSON.
        if !(mime.eq_ignore_ascii_case("application/json")
            || mime.eq_ignore_ascii_case("application/merge-patch+json"))
        {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        parse(&self.body)
    }
}

fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let field = match err.path().to_string() {
            p if p == "." => "body".to_owned(),
            p => p,
        };
        let inner = err.into_inner();
        // serde_json appends " at line L column C"; the field says where.
        let message = inner.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        // A missing or unknown field is named inside the message.
        let named = ["missing field `", "unknown field `"]
            .iter()
            .find_map(|prefix| message.strip_prefix(prefix))
            .and_then(|rest| rest.split('`').next());
        let field = match (named, field.as_str()) {
            (Some(name), "body") => name.to_owned(),
            (Some(name), path) if !path.ends_with(name) => format!("{path}.{name}"),
            _ => field,
        };
        if inner.is_syntax() || inner.is_eof() {
            Problem::malformed(format!("the body is not valid JSON: {message}"))
        } else {
            Problem::invalid(vec![FieldError::new(field, message)])
        }
    })
}

/// `?limit=` and `?cursor=` of a list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Items per page, 1 to 200; 50 when left out.
    #[param(required = false, minimum = 1, maximum = 200, default = 50)]
    pub limit: u32,
    /// The `next_cursor` of the page before; left out (or empty), the first page.
    pub cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let Query(query) = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map_err(|_| Problem::malformed("the query string is not valid"))?;
        let limit = match query.get("limit") {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    Problem::bad_field(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_PAGE}"),
                    )
                })?,
        };
        Ok(Self {
            limit,
            cursor: query.get("cursor").filter(|c| !c.is_empty()).cloned(),
        })
    }
}

impl Paging {
    /// The store's request for this page of `list`; a cursor opens only for
    /// the list that sealed it.
    pub fn request(&self, cursors: &Cursors, list: &str) -> Result<PageRequest, Problem> {
        Ok(PageRequest {
            limit: self.limit,
            after: self
                .cursor
                .as_deref()
                .map(|c| cursors.open(list, c))
                .transpose()?,
        })
    }
}

/// The headers a write reads ([`CommandRequest`]), as the API description
/// shows them.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CommandHeaders {
    /// Makes retrying safe: within 24 hours, the same key (per user) with
    /// the same request answers with the first request's command instead
    /// of issuing another, and is refused with another request
    /// (`idempotency_key_reused`). 1 to 255 printable ASCII characters.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 255
    )]
    pub idempotency_key: Option<String>,
    /// `wait=N`: wait up to N seconds (at most 30) for the outcome, and
    /// answer with it if it comes in time.
    #[param(rename = "Prefer", nullable = false, example = "wait=5")]
    pub prefer: Option<String>,
}

/// An id from the path; one that cannot exist is simply not found.
pub fn path_id<T: FromStr>(raw: &str, what: &str) -> Result<T, Problem> {
    raw.parse().map_err(|_| Problem::not_found(what))
}

/// The `Idempotency-Key` header, if sent.
pub fn idempotency_key(value: Option<&HeaderValue>) -> Result<Option<String>, Problem> {
    let Some(value) = value else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("");
    let printable = key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if key.trim().is_empty() || key.len() > IDEMPOTENCY_KEY_MAX || !printable {
        return Err(Problem::bad_field(
            "Idempotency-Key",
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters"),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// How long the client prefers to wait for the outcome (`Prefer: wait=N`).
pub fn preferred_wait(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|pref| {
            let (name, value) = pref.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("wait")
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())?
        })
        .map(|seconds| Duration::from_secs(seconds).min(MAX_WAIT))
        .next()
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    #[test]
    fn an_optional_body_may_be_left_out_or_null_but_not_anything_else() {
        #[derive(Debug, Default, PartialEq, serde::Deserialize)]
        struct Choice {
            pick: Option<String>,
        }
        let with = |body: &'static str| CommandRequest {
            content_type: Some(HeaderValue::from_static("application/json")),
            body: Bytes::from_static(body.as_bytes()),
            ..CommandRequest::internal(None)
        };
        assert_eq!(
            with("").body_or_default::<Choice>().ok(),
            Some(Choice::default())
        );
        assert_eq!(
            with("null").body_or_default::<Choice>().ok(),
            Some(Choice::default())
        );
        let picked = with(r#"{"pick":"a"}"#).body_or_default::<Choice>().ok();
        assert_eq!(picked.and_then(|c| c.pick).as_deref(), Some("a"));
        assert_eq!(
            with("[]")
                .body_or_default::<Choice>()
                .map_err(|p| p.status)
                .err(),
            Some(StatusCode::UNPROCESSABLE_ENTITY)
        );
    }

    #[test]
    fn prefer_wait_is_read_and_capped() {
        let mut headers = HeaderMap::new();
        assert_eq!(preferred_wait(&headers), None);
        headers.insert("prefer", HeaderValue::from_static("respond-async, wait=5"));
        assert_eq!(preferred_wait(&headers), Some(Duration::from_secs(5)));
        headers.insert("prefer", HeaderValue::from_static("wait=3600"));
        assert_eq!(preferred_wait(&headers), Some(MAX_WAIT));
        headers.insert("prefer", HeaderValue::from_static("wait=soon"));
        assert_eq!(preferred_wait(&headers), None);
    }

    #[test]
    fn idempotency_keys_must_be_short_and_printable() {
        assert_eq!(idempotency_key(None).unwrap(), None);
        let key = HeaderValue::from_static("order-1");
        assert_eq!(
            idempotency_key(Some(&key)).unwrap().as_deref(),
            Some("order-1")
        );
        let long = HeaderValue::from_str(&"k".repeat(256)).unwrap();
        assert!(idempotency_key(Some(&long)).is_err());
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        capacity: u32,
    }

    #[test]
    fn body_errors_name_the_field_or_say_it_is_not_json() {
        let err = parse::<Sample>(br#"{"capacity": -1}"#).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.errors[0].field.as_str()),
            (422, "capacity")
        );
        let err = parse::<Sample>(br#"{"capcity": 1}"#).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.errors[0].field.as_str()),
            (422, "capcity")
        );
        let err = parse::<Sample>(b"{}").unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.errors[0].field.as_str()),
            (422, "capacity")
        );
        let err = parse::<Sample>(b"{nope").unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (400, "malformed_request"));
    }

    proptest::proptest! {
        #[test]
        fn any_body_is_read_or_refused_with_a_4xx(
            body in proptest::prop_oneof![
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                r#"\{"capacity": ?(-?[0-9]{1,25}(\.[0-9]+)?(e[0-9]+)?|"[^"]{0,5}"|null|true|\[\]|\{\}) ?(, ?"capacity": ?1)?\}"#
                    .prop_map(String::into_bytes),
            ],
        ) {
            if let Err(problem) = parse::<Sample>(&body) {
                proptest::prop_assert!(matches!(problem.status.as_u16(), 400 | 422));
                proptest::prop_assert!(!problem.detail.is_empty());
            }
        }

        #[test]
        fn prefer_wait_is_never_longer_than_the_cap(value in "\\PC{0,40}|wait=[0-9]{1,25}") {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert("prefer", value);
                proptest::prop_assert!(preferred_wait(&headers).is_none_or(|w| w <= MAX_WAIT));
            }
        }
    }
}
