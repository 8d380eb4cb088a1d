//! `eventsys watch`: a terminal's view of the WebSocket, for trying the API
//! with cURL and for operators. Prints every frame the server pushes as one
//! JSON line, after subscribing to the events asked for.

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

pub async fn watch(url: &str, token: &str, events: &[String]) -> anyhow::Result<()> {
    let mut request = url
        .into_client_request()
        .with_context(|| format!("{url} is not a WebSocket URL (ws://host:port/v1/ws)"))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the token has characters a header cannot carry")?;
    request.headers_mut().insert("authorization", bearer);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("cannot open {url}"))?;
    for event_id in events {
        let subscribe = json!({ "type": "subscribe", "event_id": event_id }).to_string();
        socket
            .send(Message::Text(subscribe.into()))
            .await
            .context("subscribing")?;
    }
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        match frame {
            Some(Ok(Message::Text(text))) => println!("{text}"),
            Some(Ok(Message::Close(reason))) => {
                let reason = reason.map(|r| format!("{} {}", u16::from(r.code), r.reason));
                bail!(
                    "the server closed the connection: {}",
                    reason.unwrap_or_default()
                )
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err).context("reading from the WebSocket"),
            None => return Ok(()),
        }
    }
}
