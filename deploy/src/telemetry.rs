//! How this process reports: log lines (text on a terminal, JSON
//! otherwise), spans exported over OTLP when an endpoint is configured (the
//! standard `OTEL_*` variables), and the Prometheus recorder behind
//! `/metrics`.

use std::io::IsTerminal;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing::Level;
use tracing_subscriber::{
    EnvFilter, Layer, filter::Targets, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::config::LogFormat;

/// What must be flushed before the process exits.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered; call once, at the end of `main`.
    pub async fn flush(self) {
        if let Some(traces) = self.traces {
            let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
        }
    }
}

/// Installs logging, and trace export when configured; `service` names
/// this process's spans unless `OTEL_SERVICE_NAME` does.
pub fn init(format: Option<LogFormat>, service: &str) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        Some(format) => format == LogFormat::Json,
        None => !std::io::stderr().is_terminal(),
    };
    // Every line carries the fields of the spans it was logged in: the
    // command, the user and the trace id.
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = if json {
        lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    } else {
        lines.boxed()
    };
    let traces = exporting().then(|| provider(service)).transpose()?;
    let logged = tracing_subscriber::registry().with(lines.with_filter(filter));
    // Spans are exported on a filter of their own: a quiet log (`RUST_LOG=
    // warn`) still traces every command, and no dependency's spans are sent.
    // Without export there is no layer at all: an absent (`None`) layer
    // would declare interest in every callsite, and the filter of the log
    // would then be asked about every debug event of every dependency.
    match &traces {
        Some(provider) => logged
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("eventsys"))
                    .with_filter(Targets::new().with_target("eventsys", Level::INFO)),
            )
            .init(),
        None => logged.init(),
    }
    Ok(Telemetry { traces })
}

/// Whether an OTLP endpoint is configured for traces.
fn exporting() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

fn provider(service: &str) -> anyhow::Result<SdkTracerProvider> {
    // Endpoint, protocol (`http/protobuf` or `http/json`), headers and
    // timeout come from the standard variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .context("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export traces")?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}
