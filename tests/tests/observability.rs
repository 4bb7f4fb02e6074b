//! The dashboards and alert rules against live metrics: a real Prometheus
//! scrapes a running stack (Tansu, the producer, two consumers, the
//! exporter) every second, with `alerts/*.rules.yml` loaded, and then
//!
//! 0. every target is scraped without error;
//! 1. every PromQL expression of every dashboard panel (rows' nested panels
//!    included) parses and returns data (not only NaN), with the Grafana
//!    variables substituted three ways: the test's topic and group, a
//!    two-value multi-selection, and All; every `label_values` variable query answers
//!    and offers the test's topic and group. Only the expressions listed in
//!    [`ALLOWED_EMPTY`], each with its reason, may be empty; they must parse;
//!    An expression ending in `or vector(0)` is also run without it: then
//!    it has data, or each of its `meshflow_*` selectors does, so the
//!    fallback cannot hide a selector that matches nothing;
//! 2. every rule group of the rule files is loaded and every rule is healthy,
//!    with no evaluation error, after several evaluation cycles; every
//!    `meshflow_*` metric a panel or rule names is one the running services
//!    write on their `/metrics`, with the labels its matchers use (see
//!    [`meshflow_tests::emitted`]);
//! 3. a sequence gap injected by a made-up producer instance is counted as
//!    exactly 5 lost messages at stage `log`, and `MeshflowMessagesLost`,
//!    silent before, goes pending or firing within a bounded time.
//!
//! It prints one summary line with its figures.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use meshflow_tests::bed::{Bed, PARTITIONS};
use meshflow_tests::dashboard_check::{check_dashboards, AllowedEmpty};
use meshflow_tests::emitted::Exposed;
use meshflow_tests::exporter::{self, TestProducer};
use meshflow_tests::grafana::{substitute, Dashboard, Selection, Values, Variable};
use meshflow_tests::prometheus::Prometheus;
use meshflow_tests::rules::{
    active_alerts, alert_states, groups_of, loaded_groups, loaded_rules, unhealthy,
};
use meshflow_tests::scenario::{producer_with, wait_ready, Names};
use meshflow_tests::{repo_files, scrape, unique, wait_for};

/// The producer's rate, messages per second.
const RATE: u32 = 20;
/// The exporter's grace for sequence gaps (short, so the injected loss is
/// declared within seconds).
const GRACE_SECS: u64 = 3;
/// The gap the injected producer leaves: 5 sequence numbers of 0..60.
const GAP: std::ops::Range<u64> = 20..25;
const INJECTED: u64 = 60;

/// Dashboard queries that are empty unless something is wrong (or a part
/// the local stack does not have is present): (dashboard file, panel title,
/// refId or `var:<name>` for a variable query, why). They are checked to
/// parse only. An entry that matches nothing fails the test, so the list
/// cannot outlive the dashboards.
const ALLOWED_EMPTY: &[AllowedEmpty] = &[
    (
        "message-flow.json",
        "Producer send errors",
        "A",
        "producer_errors_total{reason} is created by the first send error",
    ),
    (
        "message-flow.json",
        "Dead letters and invalid messages",
        "B",
        "consumer_invalid_total{reason} is created by the first malformed envelope",
    ),
    (
        "message-flow.json",
        "Dead letters and invalid messages",
        "C",
        "messages_invalid_total{reason} is created by the first malformed envelope or receipt batch",
    ),
    (
        "cluster-mesh.json",
        "mTLS share of connections",
        "A",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "mTLS share over time",
        "A",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "mTLS share over time",
        "B",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "Connections opened by security policy",
        "A",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "Connections opened per workload pair",
        "A",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "Bytes per destination workload",
        "A",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "Bytes per destination workload",
        "B",
        "Istio ztunnel telemetry or HAProxy's door metrics: this stack has neither",
    ),
    (
        "cluster-mesh.json",
        "",
        "var:mesh_namespace",
        "Istio ztunnel telemetry: no mesh in the local stack",
    ),
    (
        "message-flow.json",
        "",
        "var:cluster",
        "a label Prometheus adds (external labels): this Prometheus adds none",
    ),
    (
        "message-flow.json",
        "",
        "var:namespace",
        "a label Prometheus adds (Kubernetes targets): this Prometheus scrapes no pods",
    ),
    (
        "consumer-lag.json",
        "",
        "var:cluster",
        "a label Prometheus adds (external labels): this Prometheus adds none",
    ),
    (
        "consumer-lag.json",
        "",
        "var:namespace",
        "a label Prometheus adds (Kubernetes targets): this Prometheus scrapes no pods",
    ),
    (
        "cluster-mesh.json",
        "",
        "var:cluster",
        "a label Prometheus adds (external labels): this Prometheus adds none",
    ),
    (
        "cluster-mesh.json",
        "",
        "var:namespace",
        "a label Prometheus adds (Kubernetes targets): this Prometheus scrapes no pods",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_work_against_live_metrics() {
    let started = Instant::now();
    let bed = Bed::new("observability").await;
    let (dir, broker, names) = (bed.dir.path(), &bed.broker, &bed.names);

    // The exporter first, reading every partition before any traffic.
    let grace = format!("{GRACE_SECS}s");
    // One broker here, as in the local stack: the brokers alerts compare
    // with what the exporter is told to expect, so they stay silent.
    // The built-in probe too, so its panels and alerts read live series.
    let probe_topic = format!("{}.probe", names.topic);
    let settings = [
        ("MESHFLOW__EXPORTER__GRACE", grace.as_str()),
        ("MESHFLOW__EXPORTER__CLUSTER__BROKERS", "1"),
        ("MESHFLOW__EXPORTER__CLUSTER__MIN_INSYNC_REPLICAS", "1"),
        ("MESHFLOW__EXPORTER__PROBE__ENABLED", "true"),
        ("MESHFLOW__EXPORTER__PROBE__TOPIC", probe_topic.as_str()),
    ];
    let exporter = bed
        .exporter("exporter", &unique("exporter"), &settings)
        .await;
    let [c1, c2] = bed.consumers(["consumer-1", "consumer-2"]).await;
    // Until stopped (max_messages 0).
    let producer = producer_with(dir, &broker.bootstrap, names, 0, RATE, &[]);
    wait_ready(&[&producer], Duration::from_secs(30)).await;

    let targets = [
        ("meshflow-producer", &producer),
        ("meshflow-consumer", &c1),
        ("meshflow-consumer", &c2),
        ("meshflow-exporter", &exporter),
    ]
    .map(|(job, service)| (job.to_string(), service.metrics_target()))
    .to_vec();
    let rule_files = repo_files("alerts", ".rules.yml");
    assert!(!rule_files.is_empty(), "no alerts/*.rules.yml");
    let prometheus = Prometheus::start_async(dir.to_path_buf(), targets, rule_files.clone()).await;
    let stack_ready = started.elapsed();

    // Traffic: every target up, and the group's processed messages flowing
    // through the scrapes.
    let processed = format!(
        "sum(meshflow_messages_total{{topic=\"{}\", stage=\"processed\", group=\"{}\"}})",
        names.topic, names.group
    );
    wait_for(
        "4 targets up and 200 processed messages in Prometheus",
        Duration::from_secs(60),
        || {
            let up = prometheus.sum("sum(up{job=~\"meshflow-.*\"})");
            let done = prometheus.sum(&processed);
            async move { (up == 4.0 && done >= 200.0).then_some(()) }
        },
    )
    .await;
    let scrape_errors = prometheus.scrape_errors();
    assert!(scrape_errors.is_empty(), "scrape errors: {scrape_errors:?}");

    // 1. Dashboards.
    let dashboard_files = repo_files("dashboards", ".json");
    assert!(!dashboard_files.is_empty(), "no dashboards/*.json");
    let dashboards: Vec<Dashboard> = dashboard_files.iter().map(|p| Dashboard::load(p)).collect();
    // Rates need a few scrapes of every series: give the expressions a
    // bounded while to fill, then judge strictly.
    let filling = Instant::now();
    let deadline = filling + Duration::from_secs(45);
    let figures = loop {
        let figures = check_dashboards(&prometheus, &dashboards, names, ALLOWED_EMPTY);
        if figures.failures.is_empty() || Instant::now() > deadline {
            break figures;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(
        figures.failures.is_empty(),
        "{} dashboard queries failed:\n  {}",
        figures.failures.len(),
        figures.failures.join("\n  ")
    );
    let filled_after = filling.elapsed();
    let per_consumer = prometheus.vector(&format!(
        "sum by (instance) (rate(meshflow_consumer_messages_total{{topic=\"{}\", group=\"{}\"}}[30s]))",
        names.topic, names.group
    ));
    assert_eq!(
        per_consumer.len(),
        2,
        "per-consumer series: {per_consumer:?}"
    );

    // 2. Rules: every group of the files loaded, every rule healthy after
    // several evaluation cycles.
    let expected = groups_of(&rule_files);
    wait_for("every rule evaluated", Duration::from_secs(30), || {
        let rules = loaded_rules(&prometheus);
        let all = !rules.is_empty() && rules.iter().all(|(_, _, r)| r["health"] != "unknown");
        async move { all.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rules = loaded_rules(&prometheus);
    let loaded = loaded_groups(&rules);
    assert_eq!(
        loaded, expected,
        "the rule groups Prometheus loaded differ from the files"
    );
    let unhealthy = unhealthy(&rules);
    assert!(
        unhealthy.is_empty(),
        "unhealthy rules:\n  {}",
        unhealthy.join("\n  ")
    );

    // 1b, 2b. What the dashboards and rules read is what the services
    // write: every meshflow_* metric named, and the labels of its matchers,
    // against the services' own /metrics (not only docs/contracts.md).
    let mut exposed = Exposed::default();
    for service in [&producer, &c1, &c2, &exporter] {
        let (_, body) = scrape::get(service.port, "/metrics", None).expect("/metrics answers");
        exposed.add(&body);
    }
    let mut unknown: Vec<String> = Vec::new();
    for dashboard in &dashboards {
        for query in dashboard.targets.iter().chain(&dashboard.variable_queries) {
            // Series created by their first event (ALLOWED_EMPTY, each
            // with its reason) are not written yet here.
            let created_later = ALLOWED_EMPTY
                .iter()
                .any(|(d, p, id, _)| *d == query.dashboard && *p == query.panel && *id == query.id);
            if created_later {
                continue;
            }
            let wrong = exposed.unknown_reads(&query.text);
            unknown.extend(wrong.into_iter().map(|w| format!("{}: {w}", query.name())));
        }
    }
    for (group, name, rule) in &rules {
        let wrong = exposed.unknown_reads(rule["query"].as_str().unwrap_or_default());
        unknown.extend(wrong.into_iter().map(|w| format!("{group:?} {name}: {w}")));
    }
    assert!(
        unknown.is_empty(),
        "dashboards and rules read what no service writes:\n  {}",
        unknown.join("\n  ")
    );
    let lost_for = rules
        .iter()
        .find(|(_, n, _)| n == "MeshflowMessagesLost")
        .map(|(_, _, r)| r["duration"].as_f64().unwrap_or(0.0))
        .expect("MeshflowMessagesLost is loaded");

    // 3. An injected loss. Nothing lost and no loss alert before.
    let lost_series = format!("meshflow_messages_lost_total{{topic=\"{}\"}}", names.topic);
    let before = alert_states(&prometheus, "MeshflowMessagesLost", &[]);
    let lost_before = prometheus.sum(&lost_series);
    let active_before = active_alerts(&prometheus);
    assert!(
        before.is_empty(),
        "MeshflowMessagesLost is {before:?} before any loss (lost counters: {lost_before})"
    );
    assert_eq!(lost_before, 0.0, "messages lost before the injection");
    let brokers_alerts: Vec<&String> = active_before
        .iter()
        .filter(|a| a.starts_with("MeshflowKafkaBroker"))
        .collect();
    assert!(
        brokers_alerts.is_empty(),
        "brokers alerts on a one-broker cluster the exporter expects: {brokers_alerts:?}"
    );

    let injected = TestProducer::new(&broker.bootstrap, &names.topic, &unique("injected"));
    injected
        .send_spread((0..INJECTED).filter(|s| !GAP.contains(s)), PARTITIONS)
        .await;
    let injected_at = Instant::now();
    let bound = Duration::from_secs_f64(lost_for) + Duration::from_secs(GRACE_SECS + 30);
    let labels = [("topic", names.topic.as_str()), ("stage", "log")];
    let (state, alert_after) = wait_for("MeshflowMessagesLost pending or firing", bound, || {
        let states = alert_states(&prometheus, "MeshflowMessagesLost", &labels);
        let state = states.into_iter().find(|s| s == "pending" || s == "firing");
        async move { state.map(|s| (s, injected_at.elapsed())) }
    })
    .await;

    // Exactly the gap, at stage log, and nothing else lost.
    let exporter_port = exporter.port;
    let gap = GAP.end - GAP.start;
    let log_lost = wait_for(
        "the exporter to count the gap",
        Duration::from_secs(20),
        || async move {
            let s = scrape::samples(exporter_port)?;
            let n = exporter::stage(&s, "meshflow_messages_lost_total", "log", "");
            (n >= gap as f64).then_some(n)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(GRACE_SECS + 2)).await;
    let later = scrape::samples(exporter_port).expect("exporter metrics");
    let log_lost_later = exporter::stage(&later, "meshflow_messages_lost_total", "log", "");
    let processed_lost = exporter::stage(
        &later,
        "meshflow_messages_lost_total",
        "processed",
        &names.group,
    );
    assert_eq!(
        (log_lost, log_lost_later, processed_lost),
        (gap as f64, gap as f64, 0.0),
        "lost at log (first seen, {}s later) and at processed",
        GRACE_SECS + 2
    );

    println!(
        "observability: stack up in {:.1}s, 4 targets scraped without error; dashboards: {} expressions checked x3 selections \
         (single, multi, All), {} with data (all of them {:.1}s after 200 messages), {} \
         allowed-empty (parsed){}; variables: {} queried, {} with values, {} allowed-empty; \
         rules: {} groups, {} rules ok; before the injection: lost=0, active alerts {:?}; \
         injected gap of {gap} (seqs {}..{}): exporter counted {log_lost} lost at log, 0 at \
         processed; MeshflowMessagesLost {state} {:.1}s after the injection (for: {lost_for}s, \
         bound {:.0}s); total {:.1}s",
        stack_ready.as_secs_f64(),
        figures.expressions,
        figures.with_data,
        filled_after.as_secs_f64(),
        figures.allowed_empty,
        if figures.allowed_but_data.is_empty() {
            String::new()
        } else {
            format!(
                ", allowed-empty but with data now: {:?}",
                figures.allowed_but_data
            )
        },
        figures.variables,
        figures.variables_with_values,
        figures.variables_allowed_empty,
        expected.len(),
        rules.len(),
        active_before,
        GAP.start,
        GAP.end - 1,
        alert_after.as_secs_f64(),
        bound.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}

/// Variables as Grafana substitutes them; the built-in ones from
/// `dashboards/schema-check/grafana-builtins.json`, as in the JavaScript checks.
#[test]
fn grafana_variables_are_substituted_as_grafana_does() {
    let names = Names::new();
    let values = Values { names: &names };
    let dashboard = Dashboard {
        targets: Vec::new(),
        variable_queries: Vec::new(),
        variables: HashMap::from([
            (
                "topic".to_string(),
                Variable {
                    multi: true,
                    all_value: Some(".*".to_string()),
                },
            ),
            (
                "group".to_string(),
                Variable {
                    multi: true,
                    all_value: None,
                },
            ),
            (
                "mesh_namespace".to_string(),
                Variable {
                    multi: false,
                    all_value: None,
                },
            ),
            (
                "cluster".to_string(),
                Variable {
                    multi: true,
                    all_value: Some(".*".to_string()),
                },
            ),
        ]),
    };
    // A target-label variable takes its All value whatever the selection.
    for selection in [Selection::Single, Selection::Multi, Selection::All] {
        assert_eq!(
            substitute(r#"m{cluster=~"$cluster"}"#, &dashboard, &values, selection),
            r#"m{cluster=~".*"}"#
        );
    }
    let query = r#"sum(rate(m{topic=~"$topic", group=~"(${group})?", ns=~"$mesh_namespace", g=~"${group:pipe}"}[$__rate_interval])) + x[[topic]] + y[5m:$__interval] + z[$__range]"#;
    let (t, r, g) = (&names.topic, &names.receipts, &names.group);
    let receipts = r.replace('.', r"\\.");
    assert_eq!(
        substitute(query, &dashboard, &values, Selection::Single),
        format!(
            r#"sum(rate(m{{topic=~"{t}", group=~"({g})?", ns=~"meshflow", g=~"{g}"}}[5m])) + x{t} + y[5m:1m] + z[1h]"#
        )
    );
    assert_eq!(
        substitute(query, &dashboard, &values, Selection::Multi),
        format!(
            r#"sum(rate(m{{topic=~"({t}|{receipts})", group=~"(({g}|other\\.group))?", ns=~"meshflow", g=~"{g}|other.group"}}[5m])) + x({t}|{receipts}) + y[5m:1m] + z[1h]"#
        )
    );
    assert_eq!(
        substitute(query, &dashboard, &values, Selection::All),
        r#"sum(rate(m{topic=~".*", group=~"(.*)?", ns=~"meshflow", g=~".*"}[5m])) + x.* + y[5m:1m] + z[1h]"#
    );
}
