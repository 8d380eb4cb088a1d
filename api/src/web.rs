//! The web page for attendees, organizers and door staff: an HTML file, a
//! script and a style sheet compiled into the binary and served at `/`,
//! so that it needs nothing from elsewhere (it works offline, and in
//! embedded mode with the first command of the README). It is a client of
//! the public API like any other.
//!
//! Also the development sign-in, which mints a token for a user and roles
//! the caller names: on in embedded mode unless turned off, off in a
//! distributed deployment unless turned on (`EVENTSYS_DEV_SIGN_IN`).

use std::{sync::OnceLock, time::Duration};

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use eventsys_messages::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AppState,
    auth::Role,
    input::CommandRequest,
    problem::{NotJson, Problem, ProblemDocument, WriteProblems},
    routes::staff::user_id,
};

const INDEX: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const STYLE: &str = include_str!("web/app.css");

/// Only this server's own script, style, API and WebSocket; QR codes are
/// fetched with the token and shown from `blob:` URLs.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The most roles a development sign-in names: there are three to give.
pub(crate) const DEV_ROLES_MAX: usize = 3;

/// How long a development token lasts.
const DEV_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The page; it says whether the development sign-in is on. Both forms
/// are made once.
pub async fn index(State(state): State<AppState>) -> Response {
    static PAGES: OnceLock<[String; 2]> = OnceLock::new();
    let [off, on] =
        PAGES.get_or_init(|| ["false", "true"].map(|on| INDEX.replace("{{dev_sign_in}}", on)));
    let page = if state.dev_sign_in { on } else { off };
    asset("text/html; charset=utf-8", page.as_str())
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// The body of `POST /v1/dev/token`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "alice", "roles": ["attendee"]}))]
pub struct DevSignIn {
    /// Who to be: 1 to 128 bytes, no control characters.
    user_id: String,
    /// Any of `attendee`, `organizer`, `staff`; never `admin`.
    #[schema(max_items = 3)]
    roles: Vec<DevRole>,
}

#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum DevRole {
    Attendee,
    Organizer,
    Staff,
}

#[derive(Serialize, ToSchema)]
pub struct DevToken {
    /// A bearer token for 12 hours.
    token: String,
}

/// Sign in for development
///
/// Mints a token for the user and roles named: for trying eventsys on
/// one's own machine. Answers 404 unless the deployment turned it on
/// (embedded mode does by default).
#[utoipa::path(
    post,
    path = "/v1/dev/token",
    tag = "operations",
    security(()),
    request_body = DevSignIn,
    responses(
        (status = 201, description = "A token", body = DevToken),
        (status = 400, description = "`malformed_request`: the body is not JSON, or could not be read",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: development sign-in is off here",
            body = ProblemDocument, content_type = "application/problem+json"),
        NotJson,
        (status = 422, description = "`validation_failed`: a body that breaks the schema, or not a user id",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
pub async fn dev_token(
    State(state): State<AppState>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    // Off is indistinguishable from absent.
    if !state.dev_sign_in {
        return Err(Problem::not_found("resource"));
    }
    let asked = request.body::<DevSignIn>()?;
    if asked.roles.len() > DEV_ROLES_MAX {
        return Err(Problem::invalid(vec![FieldError::new(
            "roles",
            format!("names at most {} roles", DEV_ROLES_MAX),
        )]));
    }
    let user = user_id(&asked.user_id)?;
    let mut roles: Vec<Role> = Vec::new();
    for role in asked.roles {
        let role = match role {
            DevRole::Attendee => Role::Attendee,
            DevRole::Organizer => Role::Organizer,
            DevRole::Staff => Role::Staff,
        };
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    let token = state
        .auth
        .mint(&user, &roles, DEV_TOKEN_LIFETIME)
        .ok_or_else(|| Problem::not_found("resource"))?;
    Ok((StatusCode::CREATED, Json(DevToken { token })).into_response())
}
