//! The HTTP endpoint every service runs on its metrics port.
//!
//! - `/metrics`: OpenMetrics (with exemplars) when the scraper's `Accept`
//!   header asks for `application/openmetrics-text`, as Prometheus does with
//!   exemplar storage on; otherwise the Prometheus text format 0.0.4, which
//!   `promtool check metrics` can lint.
//! - `/healthz`: 200 while the process serves requests.
//! - `/readyz`: 200 when every readiness condition holds, else 503 naming
//!   the ones that do not.
//!
//! Anyone who can reach the port is a client, so the server bounds what a
//! client can hold: see [`Limits`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
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

/// Registers `meshflow_service_start_time_seconds` (with the registry's
/// prefix `meshflow`): when this process started, in Unix seconds. A
/// service that stops on a fatal error is restarted under the same scrape
/// target; the change of this value is what an alert can see.
pub fn register_start_time(registry: &mut Registry) {
    let started = Gauge::<i64>::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    started.set(now);
    registry.register(
        "service_start_time_seconds",
        "When this process started, in Unix seconds",
        started,
    );
}

/// Labels of `meshflow_service_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

/// Registers `meshflow_service_build_info{version,commit}`, always 1: the
/// two values `--version` prints ([`crate::build`]).
pub fn register_build_info(registry: &mut Registry) {
    let info = Family::<BuildLabels, Gauge>::default();
    info.get_or_create(&BuildLabels {
        version: crate::build::VERSION,
        commit: crate::build::COMMIT,
    })
    .set(1);
    registry.register(
        "service_build_info",
        "1, with the version and git commit this binary was built from, as --version prints them",
        info,
    );
}

/// What the HTTP endpoint serves.
pub struct Endpoint {
    /// The service's metrics.
    pub registry: Arc<Registry>,
    /// Its readiness conditions.
    pub readiness: Arc<Readiness>,
    /// Metric families (full names) to declare as OpenMetrics statesets.
    pub statesets: Vec<String>,
}

/// Limits that keep the endpoint answering whatever its clients do: a
/// client that sends half a request, sends nothing, keeps a connection idle,
/// never reads its response or opens connections by the hundred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request head must arrive within this long, counted from when the
    /// server starts waiting for it; so an idle keep-alive connection is
    /// closed after this long too.
    pub header_read_timeout: Duration,
    /// A connection is closed after this long whatever it is doing (after
    /// finishing a response in flight, for at most a second more).
    pub max_connection_age: Duration,
    /// Connections served at once. Beyond it the server stops accepting
    /// until one closes; new connections wait in the kernel's backlog, which
    /// the header timeout drains.
    pub max_connections: usize,
    /// Longest pause after a failed accept (out of file descriptors, say);
    /// the pause doubles from 10 ms up to this and resets on success.
    pub max_accept_backoff: Duration,
}

impl Default for Limits {
    /// Prometheus sends its request at once and scrapes every 15-60 s, so
    /// 5 s for a request head and a minute per connection cost it nothing;
    /// 1,024 connections keep the endpoint answering through hundreds of
    /// stalled ones at a few kilobytes each.
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(5),
            max_connection_age: Duration::from_secs(60),
            max_connections: 1024,
            max_accept_backoff: Duration::from_secs(1),
        }
    }
}

/// The pause after consecutive failed accepts.
#[derive(Debug)]
struct AcceptBackoff {
    next: Duration,
    max: Duration,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);

    fn new(max: Duration) -> Self {
        AcceptBackoff {
            next: Self::FIRST.min(max),
            max,
        }
    }

    /// The pause after one more failure.
    fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        pause
    }

    fn succeeded(&mut self) {
        self.next = Self::FIRST.min(self.max);
    }
}

/// Binds `addr` and serves with the default [`Limits`] until `shutdown`
/// fires. Binding happens before returning, so a port clash is reported at
/// start.
pub async fn serve(
    addr: SocketAddr,
    endpoint: Endpoint,
    shutdown: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "http endpoint listening");
    Ok(serve_on(listener, endpoint, Limits::default(), shutdown))
}

/// Serves on a bound listener with the given limits until `shutdown` fires.
pub fn serve_on(
    listener: TcpListener,
    endpoint: Endpoint,
    limits: Limits,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let endpoint = Arc::new(endpoint);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::spawn(async move {
        let mut backoff = AcceptBackoff::new(limits.max_accept_backoff);
        loop {
            let slot = tokio::select! {
                _ = shutdown.cancelled() => break,
                s = slots.clone().acquire_owned() => match s {
                    Ok(s) => s,
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            let stream = match accepted {
                Ok((stream, _)) => {
                    backoff.succeeded();
                    stream
                }
                Err(e) => {
                    let pause = backoff.failed();
                    tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "http accept failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    continue;
                }
            };
            let endpoint = endpoint.clone();
            let conn_shutdown = shutdown.clone();
            tokio::spawn(async move {
                serve_connection(stream, endpoint, limits, conn_shutdown).await;
                drop(slot);
            });
        }
    })
}

/// Serves one connection within the limits.
async fn serve_connection(
    stream: TcpStream,
    endpoint: Arc<Endpoint>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |req| {
        let endpoint = endpoint.clone();
        async move { Ok::<_, Infallible>(respond(&endpoint, &req)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep(limits.max_connection_age) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
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

#[cfg(test)]
mod tests;
