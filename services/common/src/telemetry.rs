//! Logging and tracing set-up for a service process.
//!
//! An SDK tracer provider is always installed, so every produced message
//! carries a valid `traceparent` and receipts and log lines carry trace ids
//! even when nothing is exported. OTLP export is added only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-specific variable) is set;
//! the exporter itself honours the standard `OTEL_*` variables, and the
//! SDK reads `OTEL_TRACES_SAMPLER`/`_ARG` (default: parent-based always-on,
//! so a sampled producer trace stays sampled in the consumer) and
//! `OTEL_SERVICE_NAME`/`OTEL_RESOURCE_ATTRIBUTES`.

use opentelemetry::global;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Errors while installing telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from the `OTEL_*` settings.
    #[error("OTLP exporter: {0}")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` names a protocol this build lacks.
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL={0:?}: supported are grpc and http/protobuf")]
    Protocol(String),
    /// A global subscriber was already installed.
    #[error("log subscriber: {0}")]
    Subscriber(String),
}

/// Keeps the tracer provider alive; [`Telemetry::shutdown`] flushes spans.
pub struct Telemetry {
    provider: SdkTracerProvider,
    exporting: bool,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.exporting
    }

    /// Flushes and stops the tracer provider; call once, last.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "tracer provider shutdown");
        }
    }
}

/// Installs the log subscriber, the propagator and the tracer provider.
///
/// `service` is the default `service.name` (the OTEL variables win) and
/// `instance` the `service.instance.id`. Must run inside a tokio runtime
/// when OTLP over gRPC is used.
pub fn init(
    log: &LogConfig,
    service: &'static str,
    instance: &str,
    baggage: bool,
) -> Result<Telemetry, TelemetryError> {
    init_logs(log)?;
    crate::propagation::install(baggage);
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the built-in
    // values, as the specification asks.
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| service.to_string());
    let resource = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", instance.to_string()),
        ])
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_detector(Box::new(
            opentelemetry_sdk::resource::EnvResourceDetector::new(),
        ))
        .with_service_name(service_name)
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    let exporting = otlp_endpoint_set();
    if exporting {
        builder = builder.with_batch_exporter(otlp_exporter()?);
    }
    let provider = builder.build();
    global::set_tracer_provider(provider.clone());
    tracing::info!(
        service,
        instance,
        otlp_export = exporting,
        "telemetry ready"
    );
    Ok(Telemetry {
        provider,
        exporting,
    })
}

/// Whether the standard variables ask for OTLP export.
fn otlp_endpoint_set() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()))
}

/// The OTLP span exporter for `OTEL_EXPORTER_OTLP_PROTOCOL` (gRPC default).
fn otlp_exporter() -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    use opentelemetry_otlp::SpanExporter;
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|_| "grpc".to_string());
    match protocol.trim() {
        "grpc" => SpanExporter::builder().with_tonic().build(),
        "http/protobuf" => SpanExporter::builder().with_http().build(),
        other => return Err(TelemetryError::Protocol(other.to_string())),
    }
    .map_err(TelemetryError::Exporter)
}

/// One line per event, text or JSON.
fn init_logs(log: &LogConfig) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true);
    let result = if log.format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| TelemetryError::Subscriber(e.to_string()))
}
