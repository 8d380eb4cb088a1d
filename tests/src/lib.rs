//! The harness of the integration tests: it starts the real `eventsys`
//! binary as child processes, wired to the real RabbitMQ and the real
//! DynamoDB-compatible server, each test in its own RabbitMQ vhost and
//! under its own table prefix, and talks to it over HTTP and WebSocket
//! like any client would.
//!
//! `tests/scripts/test.sh` starts the services and sets `EVENTSYS_TEST_*`;
//! the defaults below match what it starts.

pub mod client;
pub mod load;
pub mod oracle;
pub mod overload;
pub mod receiver;
pub mod rush;
pub mod scenario;
pub mod scrape;
pub mod system;

pub use client::{Client, Live};
pub use system::{Setup, System};

/// Settings of the services under test.
pub struct Services {
    /// RabbitMQ URL without a vhost.
    pub amqp: String,
    pub dynamodb: String,
    /// Distinguishes this test run's vhosts and tables from any other's.
    pub run: String,
}

impl Services {
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Self {
            amqp: var(
                "EVENTSYS_TEST_AMQP_URL",
                "amqp://guest:guest@127.0.0.1:5672",
            ),
            dynamodb: var("EVENTSYS_TEST_DYNAMODB_ENDPOINT", "http://127.0.0.1:8700"),
            run: var("EVENTSYS_TEST_RUN", "local"),
        }
    }
}

/// Declares a behaviour once and runs it on both adapter sets: a test
/// `embedded` on the embedded store and queue, and a test `distributed` on
/// RabbitMQ and the DynamoDB-compatible server laid out as `$distributed`.
#[macro_export]
macro_rules! on_both {
    ($behaviour:ident, $distributed:expr) => {
        mod $behaviour {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() {
                super::$behaviour($crate::Setup::Embedded).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn distributed() {
                super::$behaviour($distributed).await;
            }
        }
    };
}

/// An HTTP client builder for the tests' own requests. The workspace's
/// HTTP clients carry rustls without a provider of their own (the binary
/// uses aws-lc, and so do the tests).
pub fn http_builder() -> reqwest::ClientBuilder {
    eventsys_webhooks::send::use_aws_lc_for_tls();
    reqwest::Client::builder()
}

/// A plain HTTP client for the tests' own requests.
pub fn http() -> reqwest::Client {
    http_builder().build().expect("an HTTP client")
}

/// A short random name part.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// Messages waiting in a queue of `system`'s vhost.
pub async fn queue_depth(system: &System, queue: &str) -> u32 {
    use lapin::{
        Connection, ConnectionProperties, options::QueueDeclareOptions, types::FieldTable,
    };
    let connection = Connection::connect(&system.amqp_url, ConnectionProperties::default())
        .await
        .expect("connecting to RabbitMQ");
    let channel = connection.create_channel().await.expect("a channel");
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let depth = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .expect("the queue exists")
        .message_count();
    let _ = connection.close(200, "done".into()).await;
    depth
}

/// Polls `probe` until it returns `want` or `within` passes; returns the last value.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, want: T, mut probe: F) -> T
where
    T: PartialEq,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        let value = probe().await;
        if value == want || std::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
