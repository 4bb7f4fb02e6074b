"""NetworkPolicies (when enabled): default deny, HBONE and kubelet probes let through."""

from __future__ import annotations

import pytest

from conftest import SERVICE_PORTS, pod_labels, selects

HBONE = 15008
PROBE_CIDR = "169.254.7.127/32"


@pytest.fixture(scope="module", params=["default", "annotations"])
def with_policies(request):
    from conftest import Rendered

    r = Rendered(request.param)
    assert r.of_kind("NetworkPolicy"), "NetworkPolicies are on in this scenario"
    return r


def policies_for(r, workload) -> list[dict]:
    labels = pod_labels(workload)
    return [p for p in r.of_kind("NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]


def peer(entry: dict) -> tuple:
    """A hashable description of one from/to entry."""
    if "ipBlock" in entry:
        return ("cidr", entry["ipBlock"]["cidr"])
    pods = tuple(sorted((entry.get("podSelector") or {}).get("matchLabels", {}).items()))
    ns = (entry.get("namespaceSelector") or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
    return ("peer", ns, pods)


def rules(r, workload, direction: str) -> set[tuple]:
    """(peer, port, protocol) triples a direction allows for a workload."""
    key, peers_key = ("ingress", "from") if direction == "ingress" else ("egress", "to")
    out = set()
    for policy in policies_for(r, workload):
        for rule in policy["spec"].get(key, []):
            assert rule.get(peers_key), f"{policy['metadata']['name']}: a rule without peers allows everyone"
            assert rule.get("ports"), f"{policy['metadata']['name']}: a rule without ports allows every port"
            for entry in rule[peers_key]:
                for port in rule["ports"]:
                    out.add((peer(entry), port["port"], port.get("protocol", "TCP")))
    return out


def probe_ports(workload) -> set[int]:
    """Ports the kubelet connects to for this workload's probes."""
    ports = {}
    for c in workload["spec"]["template"]["spec"]["containers"]:
        for p in c.get("ports", []):
            ports[p["name"]] = p["containerPort"]
    found = set()
    for c in workload["spec"]["template"]["spec"]["containers"]:
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = c.get(kind) or {}
            for action in ("httpGet", "tcpSocket", "grpc"):
                if action in probe:
                    port = probe[action]["port"]
                    found.add(ports.get(port, port))
    return found


def test_every_workload_is_default_denied(with_policies):
    for w in with_policies.workloads():
        types = [set(p["spec"]["policyTypes"]) for p in policies_for(with_policies, w)]
        assert {"Ingress", "Egress"} in types, w["metadata"]["name"]


def test_hbone_and_kubelet_probes_are_allowed(with_policies):
    for w in with_policies.workloads():
        ingress = rules(with_policies, w, "ingress")
        assert any(port == HBONE for _, port, _ in ingress), w["metadata"]["name"]
        for port in probe_ports(w):
            assert (("cidr", PROBE_CIDR), port, "TCP") in ingress, (w["metadata"]["name"], port)


def test_dns_egress(with_policies):
    for w in with_policies.workloads():
        egress = rules(with_policies, w, "egress")
        dns = {proto for _, port, proto in egress if port == 53}
        assert dns == {"UDP", "TCP"}, w["metadata"]["name"]


def test_no_policy_opens_to_the_world(with_policies):
    for policy in with_policies.of_kind("NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for entry in rule.get("from", []) + rule.get("to", []):
                assert entry.get("ipBlock", {}).get("cidr") not in ("0.0.0.0/0", "::/0")


def test_kafka_ports(with_policies):
    kafka = with_policies.get("StatefulSet", "kafka")
    ingress = rules(with_policies, kafka, "ingress")
    kafka_pods = ("peer", None, tuple(sorted(kafka["spec"]["selector"]["matchLabels"].items())))
    clients = ("peer", None, (("meshflow.io/kafka-client", "true"),))
    assert {(p, port) for p, port, _ in ingress if port == 9093} == {(kafka_pods, 9093)}
    assert {p for p, port, _ in ingress if port == 9092} == {kafka_pods, clients, ("cidr", PROBE_CIDR)}
    assert {p for p, port, _ in ingress if port == HBONE} == {kafka_pods, clients}


def test_kafka_client_label_is_on_the_services_only(with_policies):
    carriers = {
        w["metadata"]["name"]
        for w in with_policies.workloads()
        if pod_labels(w).get("meshflow.io/kafka-client") == "true"
    }
    assert carriers == {f"meshflow-{c}" for c in SERVICE_PORTS}


def test_service_ingress_is_prometheus_and_probes_only(with_policies):
    prom_ns = with_policies.values.get("monitoring", {}).get("prometheus", {}).get("namespace", "monitoring")
    for component, port in SERVICE_PORTS.items():
        w = with_policies.get("Deployment", f"meshflow-{component}")
        ingress = rules(with_policies, w, "ingress")
        assert ingress == {
            (("peer", prom_ns, ()), port, "TCP"),
            (("peer", prom_ns, ()), HBONE, "TCP"),
            (("cidr", PROBE_CIDR), port, "TCP"),
        }


def test_service_egress_is_kafka_tracing_otlp_metrics_and_dns(with_policies):
    kafka = with_policies.get("StatefulSet", "kafka")
    kafka_pods = ("peer", None, tuple(sorted(kafka["spec"]["selector"]["matchLabels"].items())))
    tracing = with_policies.values.get("tracing", {}).get("enabled", True)
    metrics = with_policies.values.get("otlpMetrics", {})
    for component in SERVICE_PORTS:
        w = with_policies.get("Deployment", f"meshflow-{component}")
        egress = rules(with_policies, w, "egress")
        non_dns = {(p, port) for p, port, _ in egress if port != 53}
        expected = {(kafka_pods, 9092), (kafka_pods, HBONE)}
        if tracing:
            expected |= {(("peer", "istio-system", ()), 4317), (("peer", "istio-system", ()), HBONE)}
        if metrics.get("enabled", False):
            collector = ("peer", metrics["namespace"], ())
            expected |= {(collector, metrics["port"]), (collector, HBONE)}
        assert non_dns == expected, component
