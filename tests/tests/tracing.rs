//! One trace from producer to consumer through Kafka headers, exported over
//! OTLP/gRPC to a real receiver in the test process.

use std::collections::HashMap;
use std::time::Duration;

use meshflow_common::envelope::{now_ns, CREATED_NS, PRODUCER, SEQ, TRACEPARENT};
use meshflow_tests::bed::Bed;
use meshflow_tests::otlp::{hex, ReceivedSpan, Receiver};
use meshflow_tests::scenario::{consumer_with, producer_with, wait_ready};
use meshflow_tests::{scrape, unique, wait_for};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

const KIND_PRODUCER: i32 = 4;
const KIND_CONSUMER: i32 = 5;

/// Receipts keep every message's trace id (by default format 2 keeps a
/// sample).
const EVERY_TRACE_ID: (&str, &str) = ("MESHFLOW__CONSUMER__RECEIPT_TRACE_EVERY", "1");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_producer_broker_and_consumer() {
    let bed = Bed::new("tracing").await;
    let (dir, broker, names) = (bed.dir.path(), &bed.broker, &bed.names);
    let receipts = bed.reader(&names.receipts);
    let dlq = bed.reader(&names.dlq);
    let receiver = Receiver::start().await;
    let otel = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];
    // Every receipt keeps its trace id, so each message's can be checked.
    let consumer_env = [otel.as_slice(), &[EVERY_TRACE_ID]].concat();
    let mut consumer = consumer_with(dir, &broker.bootstrap, names, "consumer-a", &consumer_env);
    wait_ready(&[&consumer], Duration::from_secs(60)).await;

    // Messages with trace contexts of the test's own.
    let own_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let own_span = "00f067aa0ba902b7";
    let dlq_trace = "0af7651916cd43dd8448eb211c80319c";
    let third_party = unique("third-party");
    let test_producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .expect("test producer");
    let created = now_ns().to_string();
    let own_tp = format!("00-{own_trace}-{own_span}-01");
    let dlq_tp = format!("00-{dlq_trace}-b7ad6b7169203331-01");
    let publish: Vec<Vec<(&str, &[u8])>> = vec![
        vec![
            (PRODUCER, third_party.as_bytes()),
            (SEQ, b"0"),
            (CREATED_NS, created.as_bytes()),
            (TRACEPARENT, own_tp.as_bytes()),
        ],
        vec![
            (PRODUCER, third_party.as_bytes()),
            (SEQ, b"1"),
            (CREATED_NS, created.as_bytes()),
            (TRACEPARENT, b"00-garbage"),
        ],
        vec![
            (PRODUCER, third_party.as_bytes()),
            (SEQ, b"two"),
            (CREATED_NS, created.as_bytes()),
            (TRACEPARENT, dlq_tp.as_bytes()),
        ],
    ];
    for headers in &publish {
        let h = headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(*v),
            })
        });
        let rec = FutureRecord::<(), _>::to(&names.topic)
            .payload("x")
            .headers(h);
        test_producer
            .send(rec, Duration::from_secs(10))
            .await
            .expect("publish");
    }

    let n: u64 = 100;
    let mut producer = producer_with(dir, &broker.bootstrap, names, n, 100, &otel);
    let ledger = receipts.receipts_for(n + 2, Duration::from_secs(90)).await;
    assert!(
        producer.wait_exit(Duration::from_secs(60)).await.success(),
        "producer exit"
    );
    let port = consumer.port;
    let invalid_trace = wait_for("consumer metrics", Duration::from_secs(10), || async move {
        scrape::samples(port)
            .map(|s| scrape::sum(&s, "meshflow_consumer_trace_context_invalid_total", &[]))
    })
    .await;
    consumer.signal(15);
    assert_eq!(
        consumer.wait_exit(Duration::from_secs(30)).await.code(),
        Some(0)
    );

    let process_name = format!("process {}", names.topic);
    let send_name = format!("send {}", names.topic);
    let spans = wait_for(
        "spans of every message",
        Duration::from_secs(30),
        || async {
            let s = receiver.spans();
            let processed = s.iter().filter(|x| x.span.name == process_name).count() as u64;
            (processed >= n + 3).then_some(s)
        },
    )
    .await;
    let sends: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service == "meshflow-producer" && s.span.name == send_name)
        .collect();
    let processes: HashMap<String, &ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service == "meshflow-consumer" && s.span.name == process_name)
        .map(|s| (s.trace_id(), s))
        .collect();
    let receipt_sends: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| {
            s.service == "meshflow-consumer" && s.span.name == format!("send {}", names.receipts)
        })
        .collect();
    let receipt_trace: HashMap<(String, u64), String> =
        receipts.ledger().trace_ids.into_iter().collect();
    println!(
        "tracing: spans={} send={} process={} receipts={} invalid_traceparent={invalid_trace}",
        spans.len(),
        sends.len(),
        processes.len(),
        ledger.distinct()
    );
    assert_eq!(sends.len() as u64, n, "one send span per message");
    for send in &sends {
        assert_eq!(send.span.kind, KIND_PRODUCER);
        assert_eq!(send.attr("messaging.system").as_deref(), Some("kafka"));
        assert_eq!(
            send.attr("messaging.destination.name").as_deref(),
            Some(names.topic.as_str())
        );
        assert_eq!(
            send.attr("messaging.operation.type").as_deref(),
            Some("send")
        );
        assert!(
            send.attr("messaging.destination.partition.id").is_some(),
            "acknowledged partition"
        );
        assert!(
            send.attr("messaging.kafka.offset").is_some(),
            "acknowledged offset"
        );
        let seq: u64 = send
            .attr("messaging.kafka.message.key")
            .expect("key")
            .parse()
            .expect("seq key");
        let process = processes
            .get(&send.trace_id())
            .unwrap_or_else(|| panic!("no process span in trace {}", send.trace_id()));
        assert_eq!(process.span.kind, KIND_CONSUMER);
        assert_eq!(
            process.parent_span_id(),
            send.span_id(),
            "process is a child of send"
        );
        assert!(
            process
                .span
                .links
                .iter()
                .any(|l| hex(&l.trace_id) == send.trace_id() && hex(&l.span_id) == send.span_id()),
            "process links to send"
        );
        assert_eq!(process.attr("messaging.system").as_deref(), Some("kafka"));
        assert_eq!(
            process.attr("messaging.operation.type").as_deref(),
            Some("process")
        );
        assert_eq!(
            process.attr("messaging.consumer.group.name").as_deref(),
            Some(names.group.as_str())
        );
        assert!(process.attr("messaging.destination.partition.id").is_some());
        assert!(process.attr("messaging.kafka.offset").is_some());
        assert_eq!(
            receipt_trace.get(&(names.producer.clone(), seq)),
            Some(&send.trace_id()),
            "receipt of seq {seq} carries the trace id"
        );
        // The receipt went out in a batch: one span per receipt record,
        // linked to the process spans of the messages it reports on.
        let batch = receipt_sends
            .iter()
            .find(|s| {
                s.span.links.iter().any(|l| {
                    hex(&l.trace_id) == process.trace_id() && hex(&l.span_id) == process.span_id()
                })
            })
            .expect("a receipt batch span links to the process span");
        assert_eq!(batch.span.kind, KIND_PRODUCER);
        assert_eq!(batch.parent_span_id(), "", "a batch span is a root");
        assert_eq!(
            batch.attr("messaging.kafka.message.key").as_deref(),
            Some(names.producer.as_str()),
            "keyed by the producer instance"
        );
    }
    // Each batch counts its messages; together they count every receipt.
    let mut in_batches = 0;
    for batch in &receipt_sends {
        let count: usize = batch
            .attr("messaging.batch.message_count")
            .expect("messaging.batch.message_count")
            .parse()
            .expect("a count");
        assert!(
            count >= batch.span.links.len(),
            "no more links than messages"
        );
        in_batches += count;
    }
    assert!(
        in_batches >= ledger.entries,
        "batch spans count {in_batches} receipts of {}",
        ledger.entries
    );

    // A context of the test's own continues in the consumer.
    let own = processes
        .get(own_trace)
        .expect("process span continues the test's trace");
    assert_eq!(own.parent_span_id(), own_span);
    assert_eq!(
        receipt_trace
            .get(&(third_party.clone(), 0))
            .map(String::as_str),
        Some(own_trace)
    );
    // A malformed traceparent starts a new root trace, is counted, and the
    // message is processed.
    assert_eq!(invalid_trace, 1.0);
    let fresh = receipt_trace
        .get(&(third_party.clone(), 1))
        .expect("receipt for the malformed-trace message");
    let root = processes.get(fresh).expect("process span of the new trace");
    assert_eq!(root.parent_span_id(), "", "a new root");
    // The dead letter carries exactly one traceparent: its publish span's,
    // in the original trace.
    let dead = wait_for("dead letter", Duration::from_secs(10), || async {
        dlq.records().into_iter().next()
    })
    .await;
    let tps = dead.header(TRACEPARENT);
    assert_eq!(tps.len(), 1, "exactly one traceparent");
    let tp = String::from_utf8(tps[0].unwrap_or_default().to_vec()).expect("utf8");
    assert!(tp.starts_with(&format!("00-{dlq_trace}-")), "{tp}");
    assert_ne!(tp, dlq_tp, "replaced with the dead-letter publish span");
    let dlq_send = spans
        .iter()
        .find(|s| s.span.name == format!("send {}", names.dlq))
        .expect("dead-letter publish span");
    assert_eq!(dlq_send.trace_id(), dlq_trace);
    assert_eq!(
        dlq_send.attr("meshflow.dead_letter.reason").as_deref(),
        Some("not_a_number")
    );
    assert_eq!(
        dlq_send.attr("error.type"),
        None,
        "a dead letter written is no error"
    );
    assert_eq!(dlq_send.parent_span_id(), processes[dlq_trace].span_id());
    assert!(tp.contains(&dlq_send.span_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_exported_and_ids_still_flow() {
    let bed = Bed::new("tracing").await;
    let (dir, broker, names) = (bed.dir.path(), &bed.broker, &bed.names);
    let receipts = bed.reader(&names.receipts);
    let mut consumer = consumer_with(
        dir,
        &broker.bootstrap,
        names,
        "consumer-a",
        &[EVERY_TRACE_ID],
    );
    wait_ready(&[&consumer], Duration::from_secs(60)).await;
    let n = 50;
    let mut producer = producer_with(dir, &broker.bootstrap, names, n, 100, &[]);
    let ledger = receipts.receipts_for(n, Duration::from_secs(60)).await;
    assert!(producer.wait_exit(Duration::from_secs(30)).await.success());
    consumer.signal(15);
    assert_eq!(
        consumer.wait_exit(Duration::from_secs(30)).await.code(),
        Some(0)
    );
    for service in [&producer, &consumer] {
        let log = std::fs::read_to_string(&service.log).expect("log");
        assert!(
            log.contains("otlp_export=false"),
            "{}: telemetry line",
            service.name
        );
    }
    let ids: Vec<&String> = ledger.trace_ids.iter().map(|(_, t)| t).collect();
    assert_eq!(ids.len() as u64, n);
    assert!(ids.iter().all(|t| t.len() == 32
        && t.chars().all(|c| c.is_ascii_hexdigit())
        && t.chars().any(|c| c != '0')));
    let log = std::fs::read_to_string(&consumer.log).expect("consumer log");
    assert!(
        log.contains(&format!("trace_id={}", ids[0])),
        "log lines carry the trace id"
    );
}
