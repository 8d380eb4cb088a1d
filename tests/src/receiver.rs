//! A webhook receiver on loopback: it records every request it gets, and
//! answers with the statuses a test tells it to.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use eventsys_webhooks::signature::{self, Secret};
use serde_json::Value;
use tokio::task::JoinHandle;

/// One request as the receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
    /// What it was answered.
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn id(&self) -> &str {
        self.header("webhook-id")
    }

    pub fn sequence(&self) -> u64 {
        self.header("eventsys-sequence").parse().unwrap_or_default()
    }

    pub fn attempt(&self) -> u32 {
        self.header("eventsys-attempt").parse().unwrap_or_default()
    }

    pub fn payload(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }

    pub fn kind(&self) -> String {
        self.payload()["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Whether it verifies as a receiver holding `secret` checks it.
    pub fn verifies_with(&self, secret: &str) -> bool {
        let Ok(secret) = Secret::parse(secret) else {
            return false;
        };
        let Ok(timestamp) = self.header("webhook-timestamp").parse::<i64>() else {
            return false;
        };
        signature::verify(
            &secret,
            self.id(),
            timestamp,
            self.body.as_bytes(),
            self.header("webhook-signature"),
            jiff::Timestamp::now().as_second(),
        )
        .is_ok()
    }
}

#[derive(Default)]
struct Book {
    got: Vec<Received>,
    /// Answers to give first, in order; then 204.
    answers: VecDeque<u16>,
}

pub struct Receiver {
    pub url: String,
    book: Arc<Mutex<Book>>,
    server: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// On `port` of loopback; 0 for any.
    pub async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("a loopback port for the receiver");
        let port = listener.local_addr().expect("its address").port();
        let book = Arc::new(Mutex::new(Book::default()));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(book.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hooks"),
            book,
            server,
        }
    }

    /// The next requests are answered with `statuses`, in order.
    pub fn answer_first(&self, statuses: &[u16]) {
        lock(&self.book).answers.extend(statuses);
    }

    /// From now on every request is answered 204.
    pub fn mend(&self) {
        lock(&self.book).answers.clear();
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.book).got.clone()
    }

    /// Waits until `count` requests came in; fails with what did.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} of {count} requests: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn receive(
    State(book): State<Arc<Mutex<Book>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut book = lock(&book);
    let answered = book.answers.pop_front().unwrap_or(204);
    book.got.push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        answered,
    });
    StatusCode::from_u16(answered).unwrap_or(StatusCode::NO_CONTENT)
}
