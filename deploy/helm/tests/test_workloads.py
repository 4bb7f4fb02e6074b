"""Workloads: probes, resources, hardening, Kafka's shape and the services' config."""

from __future__ import annotations

import re
import tomllib

import pytest

from conftest import SERVICE_PORTS, containers, pod_spec

# Config keys the services accept (docs/contracts.md); they refuse others.
CONTRACT_KEYS = {
    "kafka": {
        "bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username",
        "sasl_password", "ssl_ca_location", "ssl_certificate_location", "ssl_key_location",
        "librdkafka",
    },
    "http": {"listen"},
    "log": {"format", "level"},
    "producer": {
        "topic", "rate_per_sec", "payload_bytes", "max_messages", "instance_id",
        "create_topic", "partitions", "replication_factor", "message_timeout",
        "shutdown_flush_timeout",
    },
    "consumer": {
        "topic", "group", "receipts_topic", "dlq_topic", "instance_id", "work",
        "receipt_flush_interval", "receipt_batch_max", "session_timeout",
        "heartbeat_interval", "create_topics", "partitions", "replication_factor",
    },
    "exporter": {
        "topics", "max_topics", "memory_budget_mib", "receipts_topic", "groups", "grace", "sla",
        "poll_interval", "cluster", "discovery",
    },
}
BROKERS = [f"kafka-{i}.kafka-headless.meshflow.svc.cluster.local:9092" for i in range(3)]


def env_of(container: dict) -> dict:
    out = {}
    for e in container.get("env", []):
        out[e["name"]] = e.get("value", e.get("valueFrom"))
    return out


def test_every_container_has_probes_and_resources(rendered):
    for w in rendered.workloads():
        for c in containers(w):
            where = f"{w['metadata']['name']}/{c['name']}"
            assert c.get("livenessProbe") and c.get("readinessProbe"), where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"].get(kind, {})), (where, kind)


def test_every_container_is_hardened(rendered):
    for w in rendered.workloads():
        spec = pod_spec(w)
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
        assert spec.get("automountServiceAccountToken") is False
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key)
        for c in containers(w):
            where = f"{w['metadata']['name']}/{c['name']}"
            sc = c["securityContext"]
            assert sc.get("runAsNonRoot") is True, where
            assert sc.get("runAsUser", pod_sc.get("runAsUser")) not in (None, 0), where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("privileged", False) is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities") == {"drop": ["ALL"]}, where
            assert sc.get("seccompProfile", pod_sc.get("seccompProfile")) == {"type": "RuntimeDefault"}, where


def test_service_accounts_carry_no_token(rendered):
    for sa in rendered.of_kind("ServiceAccount"):
        assert sa.get("automountServiceAccountToken") is False


@pytest.mark.parametrize("component", sorted(SERVICE_PORTS))
def test_services(rendered, component):
    if component not in rendered.components:
        assert not [d for d in rendered.workloads() if d["metadata"]["name"] == f"meshflow-{component}"]
        return
    d = rendered.get("Deployment", f"meshflow-{component}")
    (c,) = pod_spec(d)["containers"]
    port = SERVICE_PORTS[component]
    assert c["ports"] == [{"name": "http-metrics", "containerPort": port, "protocol": "TCP"}]
    assert c["command"] == [f"/usr/local/bin/meshflow-{component}", "--config", f"/etc/meshflow/{component}.toml"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    assert pod_spec(d)["securityContext"]["runAsUser"] == 65532
    assert pod_spec(d)["serviceAccountName"] == f"meshflow-{component}"


def test_consumer_runs_at_least_two_replicas_with_a_budget(rendered):
    if "consumer" not in rendered.components:
        assert "meshflow-consumer" not in {p["metadata"]["name"] for p in rendered.of_kind("PodDisruptionBudget")}
        return
    d = rendered.get("Deployment", "meshflow-consumer")
    assert d["spec"]["replicas"] >= 2
    pdb = rendered.get("PodDisruptionBudget", "meshflow-consumer")
    assert pdb["spec"]["selector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]


def test_service_config_files(rendered):
    config = rendered.get("ConfigMap", "meshflow-config")["data"]
    assert set(config) == {f"{c}.toml" for c in rendered.components}
    parsed = {name.removesuffix(".toml"): tomllib.loads(text) for name, text in config.items()}
    for component, toml in parsed.items():
        for section, keys in toml.items():
            assert set(keys) <= CONTRACT_KEYS[section], (component, section)
        if rendered.kafka_in_chart:
            assert toml["kafka"]["bootstrap_servers"].split(",") == BROKERS
        else:
            assert toml["kafka"]["bootstrap_servers"] == rendered.values["kafka"]["external"]["bootstrapServers"]
        assert toml["log"]["format"] == "json"
    if not rendered.kafka_in_chart:
        return  # the external scenarios: test_external_kafka.py
    assert parsed["producer"]["producer"]["replication_factor"] == 3
    assert parsed["producer"]["producer"]["partitions"] == 6
    assert parsed["producer"]["producer"]["topic"] == "meshflow.events"
    assert parsed["consumer"]["consumer"]["replication_factor"] == 3
    assert parsed["consumer"]["consumer"]["receipts_topic"] == "meshflow.receipts"
    assert parsed["consumer"]["consumer"]["dlq_topic"] == "meshflow.events.dlq"
    assert parsed["exporter"]["exporter"]["groups"] == [parsed["consumer"]["consumer"]["group"]]
    assert parsed["exporter"]["exporter"]["topics"] == ["meshflow.events"]
    # The brokers alerts expect this chart's cluster, not a number in the rules.
    assert parsed["exporter"]["exporter"]["cluster"] == {"brokers": 3, "min_insync_replicas": 2}



def seconds(duration: str) -> float:
    """A humantime duration such as `20s`, `1m 30s` or `500ms`, in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)\b", duration):
        total += float(number) * units[unit]
    assert total > 0, f"cannot read duration {duration!r}"
    return total


def test_producer_flush_on_sigterm_ends_within_the_grace_period(rendered):
    if "producer" not in rendered.components:
        return
    config = rendered.get("ConfigMap", "meshflow-config")["data"]
    producer = tomllib.loads(config["producer.toml"])["producer"]
    assert "shutdown_flush_timeout" in producer, "the flush bound must be set explicitly"
    flush = seconds(producer["shutdown_flush_timeout"])
    grace = pod_spec(rendered.get("Deployment", "meshflow-producer"))[
        "terminationGracePeriodSeconds"
    ]
    # Room for stopping the send loop and exiting after the flush.
    assert flush + 5 <= grace, (flush, grace)


def test_tracing_goes_to_the_otlp_grpc_port(rendered):
    enabled = rendered.values.get("tracing", {}).get("enabled", True)
    for component in rendered.components:
        (c,) = pod_spec(rendered.get("Deployment", f"meshflow-{component}"))["containers"]
        env = env_of(c)
        assert env["OTEL_SERVICE_NAME"] == f"meshflow-{component}"
        if enabled:
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4317")
            assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
        else:
            assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env


def test_otlp_metrics_are_pushed_to_their_collector_only_when_enabled(rendered):
    metrics = rendered.values.get("otlpMetrics", {})
    enabled = metrics.get("enabled", False)
    policies = rendered.values.get("networkPolicy", {}).get("enabled", True)
    for component in rendered.components:
        (c,) = pod_spec(rendered.get("Deployment", f"meshflow-{component}"))["containers"]
        env = env_of(c)
        if not enabled:
            assert "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" not in env
            continue
        assert env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] == metrics["endpoint"]
        assert env["OTEL_METRIC_EXPORT_INTERVAL"] == str(metrics["intervalMs"])
        if policies:
            egress = rendered.get("NetworkPolicy", f"meshflow-{component}")["spec"]["egress"]
            to_collector = [
                rule
                for rule in egress
                if any(
                    peer.get("namespaceSelector", {}).get("matchLabels", {}).get(
                        "kubernetes.io/metadata.name"
                    )
                    == metrics["namespace"]
                    for peer in rule.get("to", [])
                )
                and {"port": metrics["port"], "protocol": "TCP"} in rule.get("ports", [])
            ]
            assert to_collector, f"meshflow-{component} may not reach the OTLP collector"


def test_kafka_is_three_kraft_nodes_with_volumes(with_kafka):
    sts = with_kafka.get("StatefulSet", "kafka")
    spec = sts["spec"]
    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["serviceName"] == "kafka-headless"
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    (c,) = pod_spec(sts)["containers"]
    assert {"name": "data", "mountPath": "/var/lib/kafka/data"} in c["volumeMounts"]
    if "@" in c["image"]:
        repository, digest = c["image"].split("@")
        assert digest.startswith("sha256:")
    else:
        repository, tag = c["image"].rsplit(":", 1)
        assert tag not in ("", "latest"), "the Kafka image is pinned by version"
    assert repository == "apache/kafka"

    env = env_of(c)
    assert env["KAFKA_NODE_ID"] == {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}
    assert env["CLUSTER_ID"]
    props = dict(
        line.split("=", 1)
        for line in with_kafka.get("ConfigMap", "kafka-config")["data"]["server.properties"].splitlines()
        if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    controllers = props["controller.quorum.bootstrap.servers"].split(",")
    assert controllers == [f"kafka-{i}.kafka-headless.meshflow.svc.cluster.local:9093" for i in range(3)]
    assert env["KAFKA_CONTROLLER_BOOTSTRAP"] == props["controller.quorum.bootstrap.servers"]
    assert props["default.replication.factor"] == "3"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["unclean.leader.election.enable"] == "false"
    assert pod_spec(sts)["enableServiceLinks"] is False


def test_kafka_readiness_reflects_broker_state(default):
    (c,) = pod_spec(default.get("StatefulSet", "kafka"))["containers"]
    probe = c["readinessProbe"]
    assert "exec" in probe, "a port check would call a fenced or recovering broker ready"
    lib = default.get("ConfigMap", "kafka-scripts")["data"]["kafka-lib.sh"]
    assert '--broker-list "$KAFKA_NODE_ID"' in lib
    assert probe["timeoutSeconds"] >= 2


def test_kafka_availability(with_kafka):
    sts = with_kafka.get("StatefulSet", "kafka")
    spec = pod_spec(sts)
    assert spec["terminationGracePeriodSeconds"] >= 60
    anti = spec["affinity"]["podAntiAffinity"]
    terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [
        t["podAffinityTerm"] for t in anti["preferredDuringSchedulingIgnoredDuringExecution"]
    ]
    assert terms[0]["topologyKey"] == "kubernetes.io/hostname"
    assert terms[0]["labelSelector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]
    pdb = with_kafka.get("PodDisruptionBudget", "kafka")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": sts["spec"]["selector"]["matchLabels"]}}
    headless = with_kafka.get("Service", "kafka-headless")["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["ports"]} == {9092, 9093}
