//! Sending one delivery to one endpoint: its address checked again (a
//! name may resolve elsewhere since it was registered), a connection
//! pinned to the addresses checked, the Standard Webhooks headers, no
//! redirects followed (a redirect could lead where a URL may not), and a
//! bounded wait for the answer.

use std::{net::SocketAddr, sync::Once, time::Duration};

use reqwest::{Client, redirect};

use crate::{
    destination::{self, Refusal},
    signature::{self, Secret},
};

/// How long an endpoint has to answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// One delivery, as it goes out.
pub struct Outgoing<'a> {
    pub url: &'a str,
    /// `webhook-id`: the same on every attempt and replay, so that a
    /// receiver handles an occurrence once.
    pub message_id: &'a str,
    pub body: &'a [u8],
    /// The secrets in force; each signs.
    pub secrets: &'a [Secret],
    /// The delivery's place in the endpoint's order.
    pub sequence: u64,
    /// 1 for the first attempt; more marks a retry.
    pub attempt: u32,
    /// `webhook-timestamp`, in seconds since the epoch.
    pub timestamp: i64,
}

/// What came of an attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx: delivered.
    Accepted(u16),
    /// Any other status: try again later.
    Refused(u16),
    /// No answer: refused address, no connection, timeout.
    Unreached(String),
}

/// Sends to one endpoint; keeps its pinned client while the endpoint's
/// URL and addresses stay the same.
pub struct Sender {
    allow_private: bool,
    pinned: Option<Pinned>,
}

struct Pinned {
    url: String,
    addresses: Vec<SocketAddr>,
    client: Client,
}

impl Sender {
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            pinned: None,
        }
    }

    pub async fn send(&mut self, outgoing: &Outgoing<'_>) -> Answer {
        let client = match self.client_for(outgoing.url).await {
            Ok(client) => client,
            Err(refusal) => return Answer::Unreached(format!("the endpoint {refusal}")),
        };
        let signature = signature::header(
            outgoing.secrets,
            outgoing.message_id,
            outgoing.timestamp,
            outgoing.body,
        );
        let sent = client
            .post(outgoing.url)
            .header("content-type", "application/json")
            .header("webhook-id", outgoing.message_id)
            .header("webhook-timestamp", outgoing.timestamp.to_string())
            .header("webhook-signature", signature)
            .header("eventsys-sequence", outgoing.sequence.to_string())
            .header("eventsys-attempt", outgoing.attempt.to_string())
            .body(outgoing.body.to_vec())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                Answer::Accepted(response.status().as_u16())
            }
            Ok(response) => Answer::Refused(response.status().as_u16()),
            Err(err) if err.is_timeout() => {
                Answer::Unreached(format!("no answer within {} s", ANSWER_WITHIN.as_secs()))
            }
            Err(err) if err.is_connect() => Answer::Unreached("cannot connect".into()),
            Err(err) => Answer::Unreached(format!("cannot deliver: {err}")),
        }
    }

    /// A client that can reach only the addresses `url` was just checked
    /// at.
    async fn client_for(&mut self, url: &str) -> Result<Client, Refusal> {
        let addresses = destination::resolve(url, self.allow_private).await?;
        if let Some(pinned) = &self.pinned
            && pinned.url == url
            && pinned.addresses == addresses
        {
            return Ok(pinned.client.clone());
        }
        let host = destination::parse(url)?
            .host_str()
            .ok_or(Refusal::NotAUrl)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let client = pinned_client(&host, &addresses).map_err(|_| Refusal::Unresolved)?;
        self.pinned = Some(Pinned {
            url: url.to_owned(),
            addresses,
            client: client.clone(),
        });
        Ok(client)
    }
}

/// Makes aws-lc the process's TLS provider, as the rest of the binary
/// uses; every HTTP client in the process needs one (reqwest carries
/// rustls without a provider of its own). Call it before any client is
/// built; calling it again changes nothing.
pub fn use_aws_lc_for_tls() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // Only fails when a provider is installed already, which is as good.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

fn pinned_client(host: &str, addresses: &[SocketAddr]) -> reqwest::Result<Client> {
    use_aws_lc_for_tls();
    Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(ANSWER_WITHIN)
        .user_agent(concat!("eventsys-webhooks/", env!("CARGO_PKG_VERSION")))
        .resolve_to_addrs(host, addresses)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_private_endpoint_is_not_even_connected_to() {
        let mut sender = Sender::new(false);
        let secret = Secret::generate().expect("a secret");
        let answer = sender
            .send(&Outgoing {
                url: "http://127.0.0.1:9/hook",
                message_id: "msg_1",
                body: b"{}",
                secrets: &[secret],
                sequence: 1,
                attempt: 1,
                timestamp: 0,
            })
            .await;
        assert!(
            matches!(&answer, Answer::Unreached(why) if why.contains("loopback")),
            "{answer:?}"
        );
    }
}
