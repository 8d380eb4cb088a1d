//! An HTTP and WebSocket client of the public API, with the few flows that
//! most tests need.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

pub struct Client {
    http: reqwest::Client,
    pub base: String,
    token: Option<String>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Reply {
    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field} in {} {}", self.status, self.body))
            .to_owned()
    }
}

/// A valid `POST /v1/events` body.
pub fn event_body(capacity: u32) -> Value {
    json!({
        "name": "Flash sale",
        "venue": "Hall 1",
        "starts_at": "2030-06-01T18:00:00Z",
        "ends_at": "2030-06-01T23:00:00Z",
        "capacity": capacity,
    })
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Self {
        Self {
            http: crate::http_builder()
                .pool_max_idle_per_host(64)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
            base: base.to_owned(),
            token,
        }
    }

    /// Another user on this client's connection pool.
    pub fn acting_as(&self, token: String) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            token: Some(token),
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        self.try_send(request).await.expect("the API answers")
    }

    /// `None` when the API did not answer at all (it was down or died).
    async fn try_send(&self, mut request: reqwest::RequestBuilder) -> Option<Reply> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.ok()?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Some(Reply {
            status,
            body,
            headers,
        })
    }

    /// A post that may find nobody answering.
    pub async fn try_post(&self, path: &str, body: &Value) -> Option<Reply> {
        self.try_post_with(path, body, &[]).await
    }

    /// Like [`Self::try_post`], with extra headers.
    pub async fn try_post_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Option<Reply> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.try_send(request).await
    }

    /// A get that may find nobody answering.
    pub async fn try_get(&self, path: &str) -> Option<Reply> {
        self.try_send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// What a path answers, as text (pages, scripts).
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the API answers")
            .text()
            .await
            .expect("a text body")
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_with(path, body, &[]).await
    }

    pub async fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
        self.post_raw(
            path,
            body.to_string().into_bytes(),
            "application/json",
            headers,
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Any method with a JSON body and extra headers.
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    pub async fn delete_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.http.delete(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Creates an event and waits until it exists; returns its id.
    pub async fn create_event(&self, body: &Value) -> String {
        let reply = self
            .post_with("/v1/events", body, &[("prefer", "wait=20")])
            .await;
        assert_eq!(reply.status, 200, "event not created: {:?}", reply.body);
        assert_eq!(reply.body["status"], "succeeded", "{:?}", reply.body);
        reply.str("event_id")
    }

    /// Grants `user` door staff at the event, and waits until it holds.
    pub async fn grant_staff(&self, event_id: &str, user: &str) {
        let reply = self
            .post_with(
                &format!("/v1/events/{event_id}/staff"),
                &json!({ "user_id": user }),
                &[("prefer", "wait=20")],
            )
            .await;
        assert_eq!(reply.body["status"], "succeeded", "{:?}", reply.body);
    }

    /// Orders `quantity` tickets of the event's only type; returns the 202.
    pub async fn order(&self, event_id: &str, quantity: u32) -> Reply {
        let reply = self
            .post(
                &format!("/v1/events/{event_id}/orders"),
                &json!({ "quantity": quantity }),
            )
            .await;
        assert_eq!(reply.status, 202, "order not accepted: {:?}", reply.body);
        reply
    }

    /// Polls a command until it is terminal.
    pub async fn wait_terminal(&self, command_id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let reply = self.get(&format!("/v1/commands/{command_id}")).await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            if matches!(
                reply.body["status"].as_str(),
                Some("succeeded" | "rejected" | "failed")
            ) {
                return reply.body;
            }
            assert!(
                Instant::now() < deadline,
                "command {command_id} still {} ",
                reply.body["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens the WebSocket with the bearer header.
    pub async fn live(&self) -> Live {
        self.try_live().await.expect("the WebSocket opens")
    }

    /// Opens the WebSocket, or the HTTP status it was refused with.
    pub async fn try_live(&self) -> Result<Live, u16> {
        let url = format!("{}/v1/ws", self.base.replacen("http://", "ws://", 1));
        let mut request =
            tungstenite::client::IntoClientRequest::into_client_request(url).expect("a ws request");
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}").parse().expect("a header value");
            request.headers_mut().insert("authorization", value);
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => Ok(Live { stream }),
            Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(err) => panic!("the WebSocket handshake failed: {err}"),
        }
    }
}

/// An open WebSocket.
pub struct Live {
    stream: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Live {
    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(tungstenite::Message::Text(frame.to_string().into()))
            .await
            .expect("sending a frame");
    }

    /// Sends one text message of any content.
    pub async fn send_text(&mut self, text: String) {
        self.stream
            .send(tungstenite::Message::Text(text.into()))
            .await
            .expect("sending a message");
    }

    /// Reads until the server ends the connection: `Some(close code)`
    /// (`0` when it closed without a close frame), or `None` if it is still
    /// open after `within`.
    pub async fn closed(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return None,
                Ok(None | Some(Err(_))) => return Some(0),
                Ok(Some(Ok(tungstenite::Message::Close(frame)))) => {
                    return Some(frame.map_or(0, |f| f.code.into()));
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next JSON frame, or `None` if none comes within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            if let tungstenite::Message::Text(text) = message {
                return serde_json::from_str(&text).ok();
            }
        }
    }

    /// Every frame that arrives within `within`.
    pub async fn collect(&mut self, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut frames = Vec::new();
        while let Some(frame) = self.next(deadline - tokio::time::Instant::now()).await {
            frames.push(frame);
        }
        frames
    }

    /// Every frame until those gathered satisfy `done` (or `within` passes).
    pub async fn gather(
        &mut self,
        within: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut frames = Vec::new();
        while !done(&frames) {
            match self.next(deadline - tokio::time::Instant::now()).await {
                Some(frame) => frames.push(frame),
                None => break,
            }
        }
        frames
    }

    /// Waits for the first frame `matches` accepts.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        while let Some(frame) = self.next(deadline - tokio::time::Instant::now()).await {
            if matches(&frame) {
                return Some(frame);
            }
        }
        None
    }
}
