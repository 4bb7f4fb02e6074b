//! The one-machine stack as a user runs it, secured like the mesh:
//! `deploy/local/stack up` (mTLS through HAProxy, the broker in its own
//! network namespace as root), `attack` (four attackers, each refused and
//! counted in HAProxy's metrics, and refused as real Kafka clients too),
//! `kill-broker` and `kill-consumer 1` through the proxy, `status`, `bench`
//! (mTLS against plaintext throughput), `down`, and `up` again right after
//! `down`. The exporter's ledger must lose nothing throughout. Prints its
//! figures.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meshflow_tests::scrape;
use meshflow_tests::stack::{door_counts, DoorCounts, LocalStack};
use meshflow_tests::stack_checks::{
    commit_through_door, exporter, firing_alerts, kafka_client_answered, lags,
    mesh_panels_with_data, status_screen, total, wait,
};

/// Messages per second: enough that a stuck partition shows within seconds.
const RATE: &str = "50";
/// The consumers' group session timeout, auto-commit interval and receipt
/// flush interval (`consumer.*` defaults, which the stack keeps), an
/// allowance for a receipt's acknowledgement, and the exporter's poll
/// interval as this test sets it.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
const ACK_ALLOWANCE: Duration = Duration::from_millis(500);
const EXPORTER_POLL: Duration = Duration::from_secs(1);

#[test]
fn secured_stack_refuses_attackers_and_survives_kills() {
    let started = Instant::now();
    let root = meshflow_tests::is_root();
    let stack = LocalStack::new(
        "secured-stack",
        &[
            ("MESHFLOW_RATE", RATE),
            ("MESHFLOW_EXPORTER_GRACE", "5s"),
            ("MESHFLOW_EXPORTER_SLA", "10s"),
            ("MESHFLOW_EXPORTER_POLL", "1s"), // EXPORTER_POLL
            ("MESHFLOW_BENCH_MESSAGES", "2000"),
        ],
    );

    // up: every service ready through the door.
    let up = stack.run(&["up"], Duration::from_secs(180));
    assert!(up.ok, "stack up failed:\n{}", up.output);
    // up says what it is doing, with the time elapsed: the phases it runs
    // here (setup and builds are skipped: the test's binaries are built).
    let phases: Vec<&str> = up
        .output
        .lines()
        .filter_map(|l| l.strip_prefix("stack: ["))
        .filter_map(|l| l.split_once("] ").map(|(_, phase)| phase))
        .map(|phase| phase.split(" (").next().unwrap_or(phase))
        .collect();
    assert_eq!(
        phases,
        [
            "certificates",
            "starting the broker, HAProxy, producer, consumers, exporter and Prometheus",
            "waiting for readiness",
            "ready"
        ],
        "{}",
        up.output
    );
    let (addr, isolated) = stack.door();
    assert_eq!(
        isolated, root,
        "the broker is in its own namespace exactly when run as root"
    );
    assert_eq!(
        up.output.contains("NOT ENFORCED"),
        !root,
        "up says what it cannot enforce, and only then:\n{}",
        up.output
    );
    let metrics: SocketAddr = format!("{addr}:{}", stack.port("MESHFLOW_PROXY_METRICS_PORT"))
        .parse()
        .expect("door metrics address");
    let door = format!("{addr}:{}", stack.port("MESHFLOW_KAFKA_PORT"));
    let broker_port = format!(
        ":{}: Connection refused",
        stack.port("MESHFLOW_BROKER_PORT")
    );
    let pki = stack.home().join("pki");
    let ca = pki.join("ca/ca.pem").display().to_string();
    for key in [
        "ca/ca.key",
        "meshflow-producer/key.pem",
        "meshflow-consumer/key.pem",
        "meshflow-exporter/key.pem",
        "kafka/key.pem",
    ] {
        let mode = std::fs::metadata(pki.join(key))
            .expect("key file")
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600, "{key} is mode 0600");
    }
    let flowing = wait(
        "the exporter to see messages processed",
        Duration::from_secs(60),
        || {
            let s = exporter(&stack)?;
            (total(&s, "meshflow_messages_total", "processed") > 0.0).then_some(s)
        },
    );
    eprintln!(
        "up: ready in {:.1} s, door {door} ({}), {} messages processed",
        started.elapsed().as_secs_f64(),
        if isolated {
            "broker in its own network namespace"
        } else {
            "NO network namespace"
        },
        total(&flowing, "meshflow_messages_total", "processed")
    );

    // attack: each refused, each counted by the proxy.
    let before = wait("HAProxy's metrics", Duration::from_secs(20), || {
        door_counts(metrics)
    });
    let proxy_lines = |what: &dyn Fn(&str) -> bool| {
        stack
            .tail_log("proxy", 100_000)
            .lines()
            .filter(|l| what(l))
            .count()
    };
    let handshake_refusal = |l: &str| {
        l.contains(" refused ") && l.contains("policy=-") && !l.contains("tls=\"Success\"")
    };
    let without_certificate = |l: &str| l.contains(" no-valid-client-certificate ");
    let refusals_before = proxy_lines(&handshake_refusal);
    let without_certificate_before = proxy_lines(&without_certificate);
    let attack = stack.run(&["attack"], Duration::from_secs(60));
    eprintln!("{}", attack.output.trim_end());
    let line = |n: usize| {
        attack
            .output
            .lines()
            .find(|l| l.starts_with(&format!("attack {n}/4 ")))
            .unwrap_or_else(|| panic!("no line for attacker {n}:\n{}", attack.output))
            .to_string()
    };
    assert!(
        line(1).contains("refused: connection closed right after the TLS handshake")
            && line(1).contains("no client certificate"),
        "{}",
        line(1)
    );
    assert!(
        line(2).contains("refused: connection closed right after the TLS handshake")
            && line(2).contains("not issued by the local CA"),
        "{}",
        line(2)
    );
    assert!(
        line(3).contains("refused: connection closed right after the TLS handshake"),
        "{}",
        line(3)
    );
    if root {
        assert!(attack.ok, "attack found a way in:\n{}", attack.output);
        assert!(
            line(4).contains("refused:") && line(4).contains(&broker_port),
            "{}",
            line(4)
        );
    } else {
        assert!(attack.output.contains("NOT ENFORCED"), "{}", attack.output);
    }
    assert!(
        attack.output.contains("control: ") && attack.output.contains("-> answered"),
        "{}",
        attack.output
    );
    // Attackers 1 and 2 (no certificate, another CA) are connections
    // without mTLS, attacker 3 a valid identity denied by the policy: each
    // counted exactly, apart. Attacker 4's plaintext request at the proxy's
    // port fails the TLS handshake: HAProxy 2.6's exporter counts it only
    // among the connections that never became a session, so it is checked
    // there as at least one (a service's short-lived client dropped
    // mid-handshake can add one more), and in the proxy's log, which names
    // the TLS error.
    let counted = |a: &DoorCounts| {
        (
            a.without_mtls - before.without_mtls,
            a.denied - before.denied,
            a.failed_handshakes() - before.failed_handshakes(),
        )
    };
    let mut last = before;
    let deadline = Instant::now() + Duration::from_secs(10);
    while counted(&last).0 < 2.0 || counted(&last).1 < 1.0 {
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        last = door_counts(metrics).unwrap_or(last);
    }
    let (without_mtls, denied, without_handshake) = counted(&last);
    assert_eq!(
        without_mtls, 2.0,
        "connections without mTLS: before {before:?}, after {last:?}"
    );
    assert_eq!(
        denied, 1.0,
        "denied sessions: before {before:?}, after {last:?}"
    );
    assert!(
        without_handshake >= 1.0,
        "connections without a TLS handshake: before {before:?}, after {last:?}"
    );
    let certificate_refusals = proxy_lines(&without_certificate) - without_certificate_before;
    let refusals = proxy_lines(&handshake_refusal) - refusals_before;
    assert_eq!(
        certificate_refusals,
        2,
        "sessions without a valid client certificate in the proxy's log:\n{}",
        stack.tail_log("proxy", 30)
    );
    assert!(
        refusals >= 1,
        "handshake refusals in the proxy's log:\n{}",
        stack.tail_log("proxy", 30)
    );
    eprintln!(
        "attack: HAProxy counted {without_mtls} connections without mTLS, {denied} denied by policy and {without_handshake} connections without a TLS handshake; its log names {certificate_refusals} sessions without a valid client certificate and {refusals} refused handshakes"
    );

    // The same refusals for real Kafka clients (librdkafka, as the services).
    let cert = |dir: &str| {
        vec![
            (
                "ssl.certificate.location",
                pki.join(dir).join("cert.pem").display().to_string(),
            ),
            (
                "ssl.key.location",
                pki.join(dir).join("key.pem").display().to_string(),
            ),
        ]
    };
    let clients = [
        ("no certificate", vec![], false),
        ("another CA", cert("attack/foreign"), false),
        (
            "identity not allowed",
            cert("attack/meshflow-intruder"),
            false,
        ),
        ("meshflow-consumer", cert("meshflow-consumer"), true),
    ];
    std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .map(|(what, auth, allowed)| {
                let (door, ca) = (&door, &ca);
                s.spawn(move || (what, *allowed, kafka_client_answered(door, ca, auth)))
            })
            .collect();
        for h in handles {
            let (what, allowed, answered) = h.join().expect("client thread");
            assert_eq!(
                answered, allowed,
                "Kafka client with {what}: answered {answered}"
            );
        }
    });

    // A consumer group of the user's own, through the door with an allowed
    // identity: the exporter reports its lag with nothing configured.
    let group = "my-own-app";
    assert!(
        commit_through_door(
            &door,
            &ca,
            &cert("meshflow-consumer"),
            group,
            ("meshflow.events", 0, 0)
        ),
        "commit of a group of one's own"
    );
    let own = wait(
        "the exporter to report my-own-app",
        Duration::from_secs(30),
        || {
            let s = exporter(&stack)?;
            let key = format!(
            "meshflow_consumer_lag_messages{{kafka_cluster=\"default\",group=\"{group}\",topic=\"meshflow.events\",partition=\"0\"}}"
        );
            s.get(&key).copied().filter(|lag| *lag > 0.0)
        },
    );
    eprintln!("a group of one's own: {group} lags {own} messages on partition 0, watched without configuration");

    // Prometheus scrapes the door and the denial alert fires from it.
    let prometheus = stack.port("MESHFLOW_PROMETHEUS_PORT");
    for alert in ["MeshflowMeshConnectionsDenied", "MeshflowNonMtlsTraffic"] {
        let what = format!("{alert} to fire in the stack's Prometheus");
        wait(&what, Duration::from_secs(45), || {
            let (_, body) = scrape::get(prometheus, "/api/v1/alerts", None)?;
            body.contains(&format!("\"alertname\":\"{alert}\""))
                .then_some(())
        });
    }
    eprintln!(
        "attack: MeshflowMeshConnectionsDenied and MeshflowNonMtlsTraffic fired in the stack's Prometheus"
    );
    // The mesh dashboard's panels read HAProxy here as they read ztunnel on
    // Kubernetes: every panel query that names a haproxy_ metric has data in
    // the stack's Prometheus.
    let mesh_panels = mesh_panels_with_data(prometheus);
    eprintln!(
        "dashboard: {mesh_panels} cluster-mesh panel queries answered from HAProxy's metrics"
    );

    // kill-broker: Tansu restarts behind the proxy; messages flow again.
    let out = stack.run(&["kill-broker"], Duration::from_secs(10));
    assert!(out.ok, "{}", out.output);
    let broker_killed = Instant::now();
    let at_kill = exporter(&stack).expect("exporter metrics");
    let processed_at_kill = total(&at_kill, "meshflow_messages_total", "processed");
    wait(
        "messages processed after the broker kill",
        Duration::from_secs(60),
        || {
            let s = exporter(&stack)?;
            (total(&s, "meshflow_messages_total", "processed") >= processed_at_kill + 50.0)
                .then_some(())
        },
    );
    eprintln!(
        "kill-broker: 50 more messages processed {:.1} s after the kill",
        broker_killed.elapsed().as_secs_f64()
    );

    // kill-consumer 1: supervisord starts it again at once; the dead
    // member's session expires and every partition is consumed again, with
    // no operator step. A partition's committed lag in steady state is what
    // arrives between two commits, plus a receipt flush and its ack, plus
    // the exporter's poll: the bound below. A partition left with the dead
    // member passes it within seconds and grows without end.
    let out = stack.run(&["kill-consumer", "1"], Duration::from_secs(10));
    assert!(out.ok, "{}", out.output);
    let killed = Instant::now();
    let per_partition = RATE.parse::<f64>().expect("rate") / 6.0;
    let steady_lag = (per_partition
        * (COMMIT_INTERVAL + FLUSH_INTERVAL + ACK_ALLOWANCE + EXPORTER_POLL).as_secs_f64())
    .ceil();
    let window = Duration::from_secs(30);
    let mut last = Vec::new();
    let mut recovered = None;
    // Judged only after the session timeout, when the dead member has left.
    while killed.elapsed() < window {
        std::thread::sleep(Duration::from_millis(500));
        let Some(s) = exporter(&stack) else { continue };
        last = lags(&s);
        if killed.elapsed() > SESSION_TIMEOUT
            && last.len() == 6
            && last.iter().all(|(_, v)| *v <= steady_lag)
        {
            recovered = Some(killed.elapsed());
            break;
        }
    }
    let recovered = recovered.unwrap_or_else(|| {
        panic!(
            "kill-consumer 1: not every partition's lag at most {steady_lag} within {window:?} \
             of the kill (partition, lag): {last:?}\nbroker log:\n{}",
            stack.tail_log("broker", 40)
        )
    });
    eprintln!(
        "kill-consumer 1: every partition's lag at most {steady_lag} {:.1} s after the kill \
         (no operator step)",
        recovered.as_secs_f64()
    );

    // status and the ledger: nothing lost at either stage, everything the
    // log held at this point processed.
    let door_before = door_counts(metrics).expect("HAProxy's metrics");
    let alerts_before = firing_alerts(prometheus).expect("Prometheus' alerts");
    let exporter_before = exporter(&stack).expect("exporter metrics");
    let status = stack.run(&["status"], Duration::from_secs(30));
    let exporter_after = exporter(&stack).expect("exporter metrics");
    let alerts_after = firing_alerts(prometheus).expect("Prometheus' alerts");
    let door_after = door_counts(metrics).expect("HAProxy's metrics");
    assert!(status.ok, "{}", status.output);
    eprintln!("status:\n{}", status.output.trim_end());
    // One screen, with the figures the exporter, Prometheus and HAProxy
    // report at the same moment.
    let lines = status.output.lines().count();
    assert!(
        lines <= 40,
        "status takes {lines} lines:\n{}",
        status.output
    );
    let screen = status_screen(&status.output)
        .unwrap_or_else(|e| panic!("status screen: {e}\n{}", status.output));
    for (name, state, ready) in &screen.processes {
        assert_eq!(state, "RUNNING", "{name}: {}", status.output);
        match name.as_str() {
            "producer" | "exporter" => assert_eq!(ready, "ready", "{name}"),
            // A consumer left without partitions after the kill is alive
            // but not assigned: its own answer is shown, whichever it is.
            "consumer-1" | "consumer-2" => assert!(
                ready == "ready" || ready.starts_with("not ready"),
                "{name}: {ready}"
            ),
            _ => assert_eq!(ready, "-", "{name}"),
        }
    }
    for (stage, (seen, lost, duplicated)) in [("log", screen.log), ("processed", screen.processed)]
    {
        let within = |name: &str, shown: f64| {
            let (low, high) = (
                total(&exporter_before, name, stage),
                total(&exporter_after, name, stage),
            );
            assert!(
                low <= shown && shown <= high,
                "status shows {name} {shown} at {stage}, the exporter {low} before and {high} after"
            );
        };
        within("meshflow_messages_total", seen);
        within("meshflow_messages_lost_total", lost);
        within("meshflow_messages_duplicated_total", duplicated);
        assert!(seen > 0.0, "{stage}: no messages");
    }
    assert!(
        screen.worst_group.contains(" lag "),
        "{}",
        screen.worst_group
    );
    for name in &alerts_before {
        if alerts_after.contains(name) {
            assert!(
                screen.alerts.contains(name),
                "{name} fires but status shows {:?}",
                screen.alerts
            );
        }
    }
    for name in &screen.alerts {
        assert!(
            alerts_before.contains(name) || alerts_after.contains(name),
            "status shows {name} firing, Prometheus does not"
        );
    }
    if door_before == door_after {
        assert_eq!(
            (screen.without_mtls, screen.denied),
            (door_after.without_mtls, door_after.denied),
            "the door's refusals"
        );
    }
    assert!(
        screen.without_mtls >= 2.0 && screen.denied >= 1.0,
        "{screen:?}"
    );
    // The raw view keeps the series.
    let raw = stack.run(&["status", "--raw"], Duration::from_secs(30));
    assert!(raw.ok, "{}", raw.output);
    for series in [
        "proxy: connections",
        "meshflow_messages_lost_total{",
        "meshflow_consumer_lag_messages{",
        "meshflow_producer_messages_total{",
    ] {
        assert!(
            raw.output.contains(series),
            "status --raw lacks {series}:\n{}",
            raw.output
        );
    }
    let logged = total(
        &exporter(&stack).expect("exporter metrics"),
        "meshflow_messages_total",
        "log",
    );
    let end = wait(
        "the exporter to see every logged message processed",
        Duration::from_secs(60),
        || {
            let s = exporter(&stack)?;
            (total(&s, "meshflow_messages_total", "processed") >= logged).then_some(s)
        },
    );
    for stage in ["log", "processed"] {
        assert_eq!(
            total(&end, "meshflow_messages_lost_total", stage),
            0.0,
            "exporter reports loss at stage {stage}:\n{}",
            status.output
        );
    }
    eprintln!(
        "ledger: {logged} messages in the log, {} processed, lost 0 at both stages, duplicated {} (log) / {} (processed)",
        total(&end, "meshflow_messages_total", "processed"),
        total(&end, "meshflow_messages_duplicated_total", "log"),
        total(&end, "meshflow_messages_duplicated_total", "processed"),
    );

    // bench: the mTLS/plaintext ratio, printed by the stack itself.
    let bench = stack.run(&["bench"], Duration::from_secs(180));
    eprintln!("{}", bench.output.trim_end());
    assert!(bench.ok, "stack bench failed:\n{}", bench.output);
    let ratio: f64 = bench
        .output
        .lines()
        .find_map(|l| l.strip_prefix("bench: mTLS/plaintext throughput ratio "))
        .and_then(|r| r.trim().parse().ok())
        .expect("bench prints the ratio");
    assert!(ratio > 0.0, "ratio {ratio}");

    // down, and up again at once: the second supervisord must not find the
    // first one's socket or port still held.
    let down = stack.run(&["down"], Duration::from_secs(120));
    assert!(down.ok, "{}", down.output);
    let again = stack.run(&["up"], Duration::from_secs(180));
    assert!(
        again.ok,
        "stack up right after down failed:\n{}",
        again.output
    );
    assert!(
        !again
            .output
            .contains("Another program is already listening"),
        "{}",
        again.output
    );
    eprintln!(
        "secured stack test: {:.1} s in all (up after down: ok); producer log tail:\n{}",
        started.elapsed().as_secs_f64(),
        stack.tail_log("producer", 2)
    );
}
