//! The tracer provider the services run under, installed by the bench
//! instead of `telemetry::init` (which also installs a log subscriber, once
//! per process): the SDK provider every service has, with or without an
//! OTLP/gRPC batch exporter, and W3C trace-context propagation.

use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// Installs a fresh global tracer provider, exporting to `otlp` (an
/// `http://host:port` gRPC endpoint) when given. Shut it down after the run.
pub fn install(otlp: Option<&str>) -> anyhow::Result<SdkTracerProvider> {
    meshflow_common::propagation::install(false);
    let resource = Resource::builder_empty()
        .with_attributes([KeyValue::new("service.instance.id", "meshflow-bench")])
        .with_service_name("meshflow-bench")
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = otlp {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(provider)
}
