//! The end-to-end section: latency at 1,000 msg/s, meshflow's pipeline
//! next to a plain one running at the same time.

use crate::latency::{self, Percentiles, ReceiptCost};
use crate::producer::Load;
use crate::report::Row;
use crate::target::Target;

use super::{margin, Scale, PAYLOAD_BYTES};

/// End-to-end latency at 1,000 msg/s on `target`: meshflow without and
/// (with `otlp`) with span export, each run (on the mock cluster) at the
/// same time as a plain pipeline on a topic of its own, so that both see
/// the same machine (these
/// shared cores stall a process for tens of milliseconds now and then, which
/// would otherwise land on one side only). On Tansu the plain producer
/// carries headers of the envelope's sizes, since Tansu's cost is per header.
pub async fn latency(target: &Target, scale: Scale, otlp: bool) -> anyhow::Result<Vec<Row>> {
    let messages = scale.latency_secs * 1_000 + latency::WARM_UP;
    let load = |topic: String, plain_headers: bool| Load {
        bootstrap: target.bootstrap.clone(),
        topic,
        messages,
        rate: Some(1_000.0),
        payload_bytes: PAYLOAD_BYTES,
        plain_headers,
    };
    let fresh = |prefix: &str| meshflow_tests::unique(prefix);

    let mut variants: Vec<(&str, Option<String>)> = vec![("OTLP off", None)];
    let receiver = if otlp {
        Some(meshflow_tests::otlp::Receiver::start().await)
    } else {
        None
    };
    if let Some(r) = &receiver {
        variants.push(("OTLP on", Some(r.endpoint.clone())));
    }
    let mut rows = Vec::new();
    for (name, endpoint) in variants {
        let provider = crate::tracing::install(endpoint.as_deref())?;
        let plain_topic = fresh("bench-e2e-plain");
        let (topic, receipts) = (fresh("bench-e2e"), fresh("bench-e2e-receipts"));
        let dlq = format!("{topic}.dlq");
        target
            .create_topics(&[&plain_topic, &topic, &receipts, &dlq], 6)
            .await?;
        let plain_load = load(plain_topic, target.name == "tansu");
        let plain_group = fresh("bench-e2e-plain");
        let mesh_load = load(topic, false);
        let group = fresh("bench-e2e-meshflow");
        let (plain, got) = if target.name == "tansu" {
            // One Tansu broker does not keep up with two pipelines of
            // enveloped messages at once (it stores each header as a row):
            // one after the other there.
            let plain = latency::plain(&plain_load, &plain_group).await?;
            (
                plain,
                latency::meshflow(&mesh_load, &group, &receipts).await?,
            )
        } else {
            let plain =
                tokio::spawn(async move { latency::plain(&plain_load, &plain_group).await });
            let got =
                tokio::spawn(async move { latency::meshflow(&mesh_load, &group, &receipts).await });
            (plain.await??, got.await??)
        };
        let (got, cost) = got;
        let _ = provider.shutdown();
        eprintln!(
            "  end-to-end {} {name}: p99 plain {:.2} ms, meshflow {:.2} ms; \
             receipts {:.1} bytes a message",
            target.name, plain.p99_ms, got.p99_ms, cost.bytes_per_message
        );
        rows.extend(latency_rows(target.name, name, &plain, &got));
        if name == "OTLP off" {
            rows.push(receipt_row(target.name, cost));
        }
    }
    if let Some(r) = &receiver {
        eprintln!("  OTLP receiver got {} spans", r.spans().len());
    }
    crate::tracing::install(None)?;
    Ok(rows)
}

/// Receipt bytes (key, headers, body) per message at 1,000 msg/s, held
/// to the goal on the mock cluster.
fn receipt_row(target: &'static str, cost: ReceiptCost) -> Row {
    let row = Row::single(
        "end-to-end",
        target,
        "receipt bytes per message",
        cost.bytes_per_message,
    );
    if target == "mock" {
        row.goal(
            "receipts <= 8 bytes a message",
            cost.bytes_per_message,
            8.0,
            false,
            margin::RECEIPT_BYTES,
        )
    } else {
        row
    }
}

fn latency_rows(
    target: &'static str,
    variant: &str,
    plain: &Percentiles,
    got: &Percentiles,
) -> Vec<Row> {
    let added = got.p99_ms - plain.p99_ms;
    let goal = (target == "mock").then_some(());
    let mut p99 = Row::pair(
        "end-to-end",
        target,
        &format!("p99 ms, {variant}"),
        plain.p99_ms,
        got.p99_ms,
    );
    if goal.is_some() {
        p99 = p99.goal("added p99 <= 1 ms", added, 1.0, false, margin::ADDED_P99_MS);
        if variant == "OTLP on" {
            p99 = p99.ci_floor(margin::OTLP_ADDED_P99_CEILING_MS);
        }
    }
    vec![
        Row::pair(
            "end-to-end",
            target,
            &format!("p50 ms, {variant}"),
            plain.p50_ms,
            got.p50_ms,
        ),
        p99,
        Row::pair(
            "end-to-end",
            target,
            &format!("p99.9 ms, {variant}"),
            plain.p999_ms,
            got.p999_ms,
        ),
    ]
}
