//! What `eventsys init` sets up through RabbitMQ's management API, on the
//! vhost of `EVENTSYS_AMQP_URL` (AMQP can do neither): a login per
//! principal with only the permissions its work needs
//! (`Principal::permissions`), and the policy that expires dead letters
//! after [`DEAD_LETTER_RETENTION`].

use std::time::Duration;

use anyhow::{Context, bail};
use eventsys_bus::DEAD_LETTER_RETENTION;
use eventsys_messages::topology::Principal;
use reqwest::Url;
use serde_json::{Value, json};

/// The policy's name, and the queues it applies to.
const DEAD_LETTER_POLICY: &str = "eventsys-dead-letters";
const DEAD_LETTER_QUEUES: &str = "^eventsys\\.[a-z]+\\.dead-letter$";

/// Creates (or updates) the login of each principal given a password, and
/// the dead letters' retention.
pub async fn set_up(
    management: &str,
    amqp_url: &str,
    passwords: &[(Principal, String)],
) -> anyhow::Result<()> {
    let mut base = Url::parse(management).context("EVENTSYS_RABBITMQ_MANAGEMENT_URL")?;
    if base.scheme() != "http" {
        bail!(
            "EVENTSYS_RABBITMQ_MANAGEMENT_URL must be http:// (reach the management API \
             on the cluster network, or through a TLS-terminating sidecar)"
        );
    }
    let user = base.username().to_owned();
    let password = base.password().map(str::to_owned);
    // Credentials travel in the header, never in a logged URL.
    let _ = base.set_username("");
    let _ = base.set_password(None);
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let vhost = eventsys_bus_rabbitmq::vhost(amqp_url).context("EVENTSYS_AMQP_URL")?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let put = |path: String, body: Value| {
        let request = client
            .put(base.join(&path).expect("a relative path"))
            .basic_auth(&user, password.as_deref())
            .json(&body);
        async move {
            let response = request
                .send()
                .await
                .context("cannot reach the RabbitMQ management API")?;
            let status = response.status();
            if !status.is_success() {
                bail!("the RabbitMQ management API answered {status} to PUT /{path}");
            }
            Ok(())
        }
    };
    for (principal, secret) in passwords {
        let login = principal.login();
        put(
            format!("api/users/{}", encoded(&login)),
            json!({ "password": secret, "tags": "" }),
        )
        .await?;
        let allowed = principal.permissions();
        put(
            format!("api/permissions/{}/{}", encoded(&vhost), encoded(&login)),
            json!({ "configure": allowed.configure, "write": allowed.write, "read": allowed.read }),
        )
        .await?;
        tracing::info!(%login, %vhost, "broker login in place");
    }
    // A policy, not queue arguments: it applies to queues that exist.
    let retention = u64::try_from(DEAD_LETTER_RETENTION.as_millis()).unwrap_or(u64::MAX);
    put(
        format!("api/policies/{}/{DEAD_LETTER_POLICY}", encoded(&vhost)),
        json!({
            "pattern": DEAD_LETTER_QUEUES,
            "definition": { "message-ttl": retention },
            "apply-to": "queues",
            "priority": 0,
        }),
    )
    .await?;
    tracing::info!(%vhost, days = DEAD_LETTER_RETENTION.as_secs() / 86_400, "dead letters expire");
    Ok(())
}

/// One path segment, percent-encoded.
fn encoded(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vhost_is_written_as_one_path_segment() {
        assert_eq!(encoded("/"), "%2F");
        assert_eq!(encoded("eventsys-api"), "eventsys-api");
    }
}
