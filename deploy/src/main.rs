//! The one eventsys binary. Which role it plays is the subcommand; how it
//! reaches the broker and the store is the environment (see [`config`]).

mod config;
mod dlq;
mod management;
mod probe;
mod probes;
mod roles;
mod telemetry;
mod watch;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use eventsys_api::auth::{MAX_TOKEN_LIFETIME, Role as TokenClaimRole};
use eventsys_messages::UserId;
use tokio_util::sync::CancellationToken;

use crate::config::{Cli, Command, TokenRole};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before any HTTP client is built: the OTLP exporter's, the broker
    // management API's, the webhook senders'.
    eventsys_webhooks::send::use_aws_lc_for_tls();
    let cli = Cli::parse();
    let role = cli.command.role();
    let telemetry = telemetry::init(cli.settings.log_format, &format!("eventsys-{role}"))?;
    if cli.command.serves() {
        eventsys_telemetry::metrics::install(role).context("installing the metrics recorder")?;
    }
    let outcome = run(cli).await;
    telemetry.flush().await;
    outcome
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = &cli.settings;
    match cli.command {
        Command::Token { sub, roles, hours } => {
            let tokens = roles::tokens(settings)?;
            let user =
                UserId::parse(&sub).context("--sub must be 1 to 128 printable characters")?;
            let lifetime = Duration::from_secs(hours.saturating_mul(3600));
            anyhow::ensure!(
                lifetime <= MAX_TOKEN_LIFETIME,
                "--hours may be at most {}",
                MAX_TOKEN_LIFETIME.as_secs() / 3600
            );
            let roles: Vec<TokenClaimRole> = roles.into_iter().map(claim_role).collect();
            let token = tokens
                .mint(&user, &roles, lifetime)
                .context("minting a token needs EVENTSYS_JWT_SECRET")?;
            println!("{token}");
            Ok(())
        }
        Command::Init => roles::init(settings).await,
        Command::Serve => roles::serve(settings, on_signal()).await,
        Command::Api => roles::api(settings, on_signal()).await,
        Command::Worker { role } => roles::worker(settings, role, on_signal()).await,
        Command::Probe { url } => probe::probe(&url).await,
        Command::Watch { url, token, events } => watch::watch(&url, &token, &events).await,
        Command::Dlq { action } => dlq::dlq(settings, action).await,
    }
}

fn claim_role(role: TokenRole) -> TokenClaimRole {
    match role {
        TokenRole::Organizer => TokenClaimRole::Organizer,
        TokenRole::Attendee => TokenClaimRole::Attendee,
        TokenRole::Staff => TokenClaimRole::Staff,
        TokenRole::Admin => TokenClaimRole::Admin,
    }
}

/// Cancelled on SIGTERM or Ctrl-C: the process drains and exits 0.
fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(err) => {
                        tracing::error!(error = %err, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        cancel.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: draining");
        cancel.cancel();
    });
    token
}
