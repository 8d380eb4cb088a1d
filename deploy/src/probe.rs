//! `eventsys probe URL`: a health check for container images that carry no
//! HTTP client. Succeeds when a plain-HTTP GET of URL answers 2xx.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

pub async fn probe(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs can be probed")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let exchange = async {
        let mut stream = TcpStream::connect(authority).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 32];
        let read = stream.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..read]).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .context("no answer within 3 s")?
        .with_context(|| format!("cannot reach {authority}"))?;
    // "HTTP/1.1 200 OK": the status is the second word.
    match head.split_whitespace().nth(1) {
        Some(status) if status.starts_with('2') => Ok(()),
        Some(status) => bail!("{url} answered {status}"),
        None => bail!("{url} did not answer HTTP"),
    }
}
