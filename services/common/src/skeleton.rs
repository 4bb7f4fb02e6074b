//! The one way a meshflow service runs: configuration (exit 2 when bad),
//! telemetry, the HTTP endpoint with metrics and readiness, the work with a
//! shutdown token that SIGTERM/SIGINT cancel, then the endpoint and the
//! telemetry stopped, and an exit code (0, or 1 when the work failed).
//! Each binary's `main` is a [`Skeleton`] and two closures.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::reference::{KeyDoc, SHARED_KEYS};
use crate::config::{instance_id, load_from_args, HttpConfig, LogConfig, TraceConfig, Validate};
use crate::http::{self, Endpoint, Readiness};
use crate::messaging_metrics::MessagingMetrics;
use crate::otlp_metrics::{self, OtlpMetricsSettings};
use crate::{shutdown, telemetry};

/// What the skeleton needs from a service's configuration.
pub trait ServiceConfig: DeserializeOwned + Serialize + Validate {
    /// The shared sections the skeleton reads: logging, the HTTP endpoint
    /// and trace propagation.
    fn shared(&self) -> (&LogConfig, &HttpConfig, &TraceConfig);
    /// The configured instance id, if any (else one is made up).
    fn instance_id(&self) -> Option<&str> {
        None
    }
}

/// Defines a service's `Config`, everything its binary reads at start:
/// the sections every service shares (`kafka`, `http` on the service's own
/// port, `log`, `trace`) and its own section, with the [`ServiceConfig`]
/// impl the skeleton reads. The service implements `Validate` itself.
///
/// ```ignore
/// meshflow_common::service_config! {
///     /// Everything `meshflow-producer` reads at start.
///     port: meshflow_common::contract::port::PRODUCER,
///     /// What to send and how fast.
///     producer: ProducerSettings,
///     instance_id: |c| c.producer.instance_id.as_deref(),
/// }
/// ```
#[macro_export]
macro_rules! service_config {
    (
        $(#[$doc:meta])*
        port: $port:expr,
        $(#[$section_doc:meta])*
        $section:ident: $settings:ty,
        instance_id: |$config:ident| $instance_id:expr $(,)?
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct Config {
            /// Connection to Kafka.
            #[serde(default)]
            pub kafka: $crate::config::KafkaConfig,
            /// Metrics and health endpoint, on the service's own port.
            #[serde(default = "default_http")]
            pub http: $crate::config::HttpConfig,
            /// Log output.
            #[serde(default)]
            pub log: $crate::config::LogConfig,
            /// Trace propagation.
            #[serde(default)]
            pub trace: $crate::config::TraceConfig,
            $(#[$section_doc])*
            #[serde(default)]
            pub $section: $settings,
        }

        /// The service's own port, as fixed by the design.
        fn default_http() -> $crate::config::HttpConfig {
            $crate::config::HttpConfig::on_port($port)
        }

        impl $crate::skeleton::ServiceConfig for Config {
            fn shared(
                &self,
            ) -> (
                &$crate::config::LogConfig,
                &$crate::config::HttpConfig,
                &$crate::config::TraceConfig,
            ) {
                (&self.log, &self.http, &self.trace)
            }
            fn instance_id(&self) -> Option<&str> {
                let $config = self;
                $instance_id
            }
        }
    };
}

/// A service's fixed facts.
pub struct Skeleton {
    /// The binary's name (`meshflow-producer`): service name in telemetry,
    /// and in configuration errors.
    pub binary: &'static str,
    /// The role, the fallback of a made-up instance id.
    pub role: &'static str,
    /// Configuration keys that take comma-separated lists from the
    /// environment.
    pub list_keys: &'static [&'static str],
    /// The service's own keys (its section), documented; the shared ones
    /// are added in front.
    pub keys: &'static [KeyDoc],
    /// The readiness conditions `/readyz` reports.
    pub readiness: &'static [&'static str],
    /// Metric families to declare as OpenMetrics statesets.
    pub statesets: &'static [&'static str],
}

/// What the work gets: everything set up, and the token that says stop.
pub struct Started<C, M> {
    /// The validated configuration.
    pub config: C,
    /// This process's instance id.
    pub instance: String,
    /// The service's metrics, registered.
    pub metrics: M,
    /// Its readiness conditions, all unmet at start.
    pub readiness: Arc<Readiness>,
    /// Cancelled at SIGTERM/SIGINT; the work cancels it too when it ends.
    pub shutdown: CancellationToken,
}

/// An error of the work, shown as `error: <message>: <cause>...`.
pub type WorkError = Box<dyn std::error::Error + Send + Sync>;

impl Skeleton {
    /// Runs the service: `register` adds its metrics to the registry (the
    /// `meshflow` prefix) and takes what it needs of the OpenTelemetry
    /// messaging metrics (registered at the root), `work` does the rest
    /// until it returns.
    pub async fn run<C, M, W, Fut, E>(
        self,
        register: impl FnOnce(&C, &mut Registry, &MessagingMetrics) -> M,
        work: W,
    ) -> ExitCode
    where
        C: ServiceConfig,
        W: FnOnce(Started<C, M>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<WorkError>,
    {
        let config: C = load_from_args(self.binary, self.list_keys, &[SHARED_KEYS, self.keys]);
        let instance = config
            .instance_id()
            .map(str::to_string)
            .unwrap_or_else(|| instance_id(self.role));
        let (log, http, trace) = config.shared();
        let listen = http.listen;
        let telemetry = match telemetry::init(log, self.binary, &instance, trace.baggage) {
            Ok(t) => t,
            Err(e) => return failed(e.into()),
        };
        let shutdown = shutdown::on_signal();
        let mut root = Registry::default();
        let messaging = MessagingMetrics::register(&mut root);
        let registry = root.sub_registry_with_prefix("meshflow");
        let metrics = register(&config, registry, &messaging);
        http::register_start_time(registry);
        http::register_build_info(registry);
        let readiness = Readiness::new(self.readiness, registry);
        let registry = Arc::new(root);
        let otlp = OtlpMetricsSettings::from_env(|k| std::env::var(k).ok(), self.binary, &instance)
            .map(|settings| {
                tracing::info!(endpoint = %settings.endpoint, interval = ?settings.interval, "pushing metrics over OTLP");
                tokio::spawn(otlp_metrics::run(registry.clone(), settings, shutdown.clone()))
            });
        let endpoint = Endpoint {
            registry,
            readiness: readiness.clone(),
            statesets: self.statesets.iter().map(|s| s.to_string()).collect(),
        };
        let server = match http::serve(listen, endpoint, shutdown.clone()).await {
            Ok(server) => server,
            Err(e) => {
                telemetry.shutdown();
                return failed(format!("http.listen {listen}: {e}").into());
            }
        };
        let result = work(Started {
            config,
            instance,
            metrics,
            readiness,
            shutdown: shutdown.clone(),
        })
        .await;
        shutdown.cancel();
        let _ = server.await;
        if let Some(otlp) = otlp {
            let _ = otlp.await;
        }
        let code = match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failed(e.into()),
        };
        telemetry.shutdown();
        code
    }
}

/// Logs and prints `error` with its causes; exit code 1.
fn failed(error: WorkError) -> ExitCode {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    tracing::error!(error = %text, "stopped");
    eprintln!("error: {text}");
    ExitCode::FAILURE
}
