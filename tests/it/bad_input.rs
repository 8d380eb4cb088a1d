//! Invariant 6, at the door: bad input gets a clear 4xx problem document
//! naming what is wrong, and changes nothing.

use eventsys_api::auth::Role;
use eventsys_tests::{Setup, System, client::event_body, on_both};
use serde_json::{Value, json};

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    as_role: Option<Role>,
    body: Vec<u8>,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(what: &'static str, path: &str, body: Value, status: u16, code: &'static str) -> Case {
    Case {
        what,
        method: "POST",
        path: path.to_owned(),
        as_role: Some(Role::Organizer),
        body: body.to_string().into_bytes(),
        content_type: "application/json",
        headers: Vec::new(),
        status,
        code,
        field: None,
    }
}

impl Case {
    fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    fn role(mut self, role: Option<Role>) -> Self {
        self.as_role = role;
        self
    }

    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }

    fn get(self) -> Self {
        self.method("GET")
    }

    fn raw(mut self, body: &str, content_type: &'static str) -> Self {
        self.body = body.as_bytes().to_vec();
        self.content_type = content_type;
        self
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

fn with(field: &str, value: Value) -> Value {
    let mut body = event_body(10);
    body[field] = value;
    body
}

on_both!(
    bad_input_gets_a_problem_document_and_changes_nothing,
    Setup::Serve
);

async fn bad_input_gets_a_problem_document_and_changes_nothing(setup: Setup) {
    let mut system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let orders = format!("/v1/events/{event_id}/orders");
    let attendee = Some(Role::Attendee);
    let cases = vec![
        case(
            "no token",
            "/v1/events",
            event_body(10),
            401,
            "unauthorized",
        )
        .role(None),
        case("wrong role", "/v1/events", event_body(10), 403, "forbidden").role(attendee),
        case(
            "not JSON",
            "/v1/events",
            json!(null),
            400,
            "malformed_request",
        )
        .raw("{\"name\":", "application/json"),
        case(
            "not JSON at all",
            "/v1/events",
            json!(null),
            415,
            "unsupported_media_type",
        )
        .raw("name=x", "text/plain"),
        case(
            "zero capacity",
            "/v1/events",
            with("capacity", json!(0)),
            422,
            "validation_failed",
        )
        .field("capacity"),
        case(
            "negative capacity",
            "/v1/events",
            with("capacity", json!(-5)),
            422,
            "validation_failed",
        )
        .field("capacity"),
        case(
            "huge capacity",
            "/v1/events",
            with("capacity", json!(1_000_001)),
            422,
            "validation_failed",
        )
        .field("capacity"),
        case(
            "long name",
            "/v1/events",
            with("name", json!("n".repeat(201))),
            422,
            "validation_failed",
        )
        .field("name"),
        case(
            "ends first",
            "/v1/events",
            with("ends_at", json!("2030-06-01T17:00:00Z")),
            422,
            "validation_failed",
        )
        .field("ends_at"),
        case(
            "not a time",
            "/v1/events",
            with("starts_at", json!("tomorrow")),
            422,
            "validation_failed",
        )
        .field("starts_at"),
        case(
            "typo",
            "/v1/events",
            with("capcity", json!(3)),
            422,
            "validation_failed",
        ),
        case(
            "quota above capacity",
            "/v1/events",
            with(
                "ticket_types",
                json!([{ "name": "VIP", "price_minor": 100, "currency": "EUR", "quota": 11 }]),
            ),
            422,
            "validation_failed",
        )
        .field("ticket_types[0].quota"),
        case(
            "bad currency",
            "/v1/events",
            with(
                "ticket_types",
                json!([{ "name": "VIP", "price_minor": 100, "currency": "euro", "quota": 5 }]),
            ),
            422,
            "validation_failed",
        )
        .field("ticket_types[0].currency"),
        case(
            "too large",
            "/v1/events",
            with("description", json!("d".repeat(70_000))),
            413,
            "payload_too_large",
        ),
        case("no quantity", &orders, json!({}), 422, "validation_failed")
            .role(attendee)
            .field("quantity"),
        case(
            "zero tickets",
            &orders,
            json!({ "quantity": 0 }),
            422,
            "validation_failed",
        )
        .role(attendee)
        .field("quantity"),
        case(
            "above the per-order maximum",
            &orders,
            json!({ "quantity": 11 }),
            422,
            "validation_failed",
        )
        .role(attendee)
        .field("quantity"),
        case(
            "unknown ticket type",
            &orders,
            json!({ "quantity": 1, "ticket_type": "VIP" }),
            422,
            "validation_failed",
        )
        .role(attendee)
        .field("ticket_type"),
        case(
            "unknown event",
            &format!("/v1/events/{}/orders", uuid::Uuid::now_v7()),
            json!({ "quantity": 1 }),
            404,
            "not_found",
        )
        .role(attendee),
        case(
            "malformed event id",
            "/v1/events/nope/orders",
            json!({ "quantity": 1 }),
            404,
            "not_found",
        )
        .role(attendee),
        case(
            "long idempotency key",
            &orders,
            json!({ "quantity": 1 }),
            400,
            "validation_failed",
        )
        .role(attendee)
        .header("idempotency-key", "k".repeat(300))
        .field("Idempotency-Key"),
        case(
            "forged token",
            &orders,
            json!({ "quantity": 1 }),
            401,
            "unauthorized",
        )
        .role(None)
        .header("authorization", "Bearer not.a.token".into()),
        case(
            "limit zero",
            "/v1/events?limit=0",
            json!(null),
            400,
            "validation_failed",
        )
        .get()
        .field("limit"),
        case(
            "limit too big",
            "/v1/events?limit=201",
            json!(null),
            400,
            "validation_failed",
        )
        .get()
        .field("limit"),
        case(
            "limit not a number",
            "/v1/events?limit=ten",
            json!(null),
            400,
            "validation_failed",
        )
        .get()
        .field("limit"),
        case(
            "tampered cursor",
            "/v1/events?cursor=eyJ9.AAAA",
            json!(null),
            400,
            "validation_failed",
        )
        .get()
        .field("cursor"),
        case(
            "unknown command",
            "/v1/commands/not-an-id",
            json!(null),
            404,
            "not_found",
        )
        .get(),
        case(
            "unknown path",
            "/v1/nothing-here",
            json!(null),
            404,
            "not_found",
        )
        .get(),
        case(
            "wrong method",
            "/v1/events",
            json!(null),
            405,
            "method_not_allowed",
        )
        .method("DELETE"),
    ];
    let http = eventsys_tests::http();
    for case in cases {
        let method = case.method;
        let mut request = http
            .request(
                method.parse().expect("a method"),
                format!("{}{}", system.base_url, case.path),
            )
            .header("content-type", case.content_type);
        if method == "POST" {
            request = request.body(case.body.clone());
        }
        if let Some(role) = case.as_role {
            let token = system
                .client("someone", &[role])
                .token()
                .map(str::to_owned)
                .unwrap_or_default();
            request = request.bearer_auth(token);
        }
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: no answer: {e}", case.what));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, case.status, "{}: {body}", case.what);
        assert_eq!(content_type, "application/problem+json", "{}", case.what);
        assert_eq!(body["code"], case.code, "{}: {body}", case.what);
        assert_eq!(body["status"], status, "{}", case.what);
        for member in ["type", "title", "detail"] {
            assert!(
                body[member].is_string(),
                "{} lacks {member}: {body}",
                case.what
            );
        }
        if let Some(field) = case.field {
            assert_eq!(body["errors"][0]["field"], field, "{}: {body}", case.what);
        }
    }

    // Nothing but the setup's one event was ever recorded.
    let oracle = system.oracle().await;
    assert_eq!(oracle.all("commands").await, 1);
    assert_eq!(oracle.all("events").await, 1);
    assert_eq!(oracle.all("orders").await, 0);
}
