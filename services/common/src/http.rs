//! The HTTP endpoint every service runs on its metrics port.
//!
//! - `/metrics`: OpenMetrics (with exemplars) when the scraper's `Accept`
//!   header asks for `application/openmetrics-text`, as Prometheus does with
//!   exemplar storage on; otherwise the Prometheus text format 0.0.4, which
//!   `promtool check metrics` can lint.
//! - `/healthz`: 200 while the process serves requests.
//! - `/readyz`: 200 when every readiness condition holds, else 503 naming
//!   the ones that do not.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::exposition;

/// Named readiness conditions, all of which must hold for `/readyz`.
#[derive(Debug)]
pub struct Readiness {
    conditions: Vec<(&'static str, AtomicBool)>,
    gauge: Gauge,
}

impl Readiness {
    /// Conditions start false. Registers `meshflow_service_ready` (with the
    /// registry's prefix `meshflow`, as `service_ready`).
    pub fn new(names: &[&'static str], registry: &mut Registry) -> Arc<Self> {
        let gauge = Gauge::default();
        registry.register(
            "service_ready",
            "1 when every readiness condition of the service holds",
            gauge.clone(),
        );
        Arc::new(Readiness {
            conditions: names.iter().map(|n| (*n, AtomicBool::new(false))).collect(),
            gauge,
        })
    }

    /// Sets a condition; unknown names are ignored.
    pub fn set(&self, name: &str, value: bool) {
        for (n, flag) in &self.conditions {
            if *n == name {
                flag.store(value, Ordering::Relaxed);
            }
        }
        self.gauge.set(i64::from(self.failing().is_empty()));
    }

    /// The conditions that do not hold.
    pub fn failing(&self) -> Vec<&'static str> {
        self.conditions
            .iter()
            .filter(|(_, f)| !f.load(Ordering::Relaxed))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Whether every condition holds.
    pub fn is_ready(&self) -> bool {
        self.failing().is_empty()
    }
}

/// What the HTTP endpoint serves.
pub struct Endpoint {
    /// The service's metrics.
    pub registry: Registry,
    /// Its readiness conditions.
    pub readiness: Arc<Readiness>,
    /// Metric families (full names) to declare as OpenMetrics statesets.
    pub statesets: Vec<String>,
}

/// Binds `addr` and serves until `shutdown` fires. Binding happens before
/// returning, so a port clash is reported at start.
pub async fn serve(
    addr: SocketAddr,
    endpoint: Endpoint,
    shutdown: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "http endpoint listening");
    let endpoint = Arc::new(endpoint);
    Ok(tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            let (stream, _) = match accepted {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept");
                    continue;
                }
            };
            let endpoint = endpoint.clone();
            let conn_shutdown = shutdown.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let endpoint = endpoint.clone();
                    async move { Ok::<_, Infallible>(respond(&endpoint, &req)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    _ = conn_shutdown.cancelled() => {}
                }
            });
        }
    }))
}

/// Answers one request.
fn respond(endpoint: &Endpoint, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            let open_metrics = req
                .headers()
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("application/openmetrics-text"));
            let (body, content_type) = if open_metrics {
                (
                    exposition::open_metrics(&endpoint.registry, &endpoint.statesets),
                    exposition::OPENMETRICS_CONTENT_TYPE,
                )
            } else {
                (
                    exposition::prometheus_text(&endpoint.registry),
                    exposition::TEXT_CONTENT_TYPE,
                )
            };
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => {
            let failing = endpoint.readiness.failing();
            if failing.is_empty() {
                text(StatusCode::OK, "ready\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {}\n", failing.join(", ")),
                )
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// A plain-text response.
fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
