//! The HTTP server under the router: hyper, with the bounds `axum::serve`
//! lacks. A client has [`Limits::header_timeout`] to send a request's
//! headers, and as long again to start the next one on a kept-alive
//! connection; a replica holds at most [`Limits::connections`] open, and
//! the next waits in the listen backlog. Each request knows its peer's
//! address (`ConnectInfo`) for per-address limits.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo, http::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt;

/// How many header lines hyper reads before answering a bare 431; the
/// router refuses more than [`crate::limits::MAX_HEADERS`] with a problem
/// document, so clients see that one.
const HEADERS_READ: usize = 4 * crate::limits::MAX_HEADERS;

/// Serves `app` on `listener` until `stop` completes, then lets open
/// requests finish for at most `drain`: an orchestrator's SIGKILL comes
/// soon after, and a bounded drain is one that can be planned for.
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    limits: &crate::limits::Limits,
    stop: impl Future<Output = ()> + Send,
    drain: Duration,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(HEADERS_READ);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.connections.max(1)));
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, usually: give others time to close.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(request)
        });
        let (builder, watcher, wait) = (builder.clone(), graceful.watcher(), limits.header_timeout);
        tokio::spawn(async move {
            // hyper times the headers once they start; a client that
            // sends nothing at all is timed here.
            let mut first = [0; 1];
            if !matches!(
                tokio::time::timeout(wait, stream.peek(&mut first)).await,
                Ok(Ok(1))
            ) {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            // A failed connection is the client's business: it went away,
            // timed out or spoke something other than HTTP.
            if let Err(err) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %err, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    let open = graceful.count();
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open,
            drain_seconds = drain.as_secs(),
            "open requests did not finish within the drain; closing them"
        );
    }
}
