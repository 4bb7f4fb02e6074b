"""Istio ambient policy: who may reach what, and nothing that needs a sidecar or a waypoint."""

from __future__ import annotations

import itertools

from conftest import NAMESPACE, pod_labels, pod_spec, selects

TRUST = "cluster.local"
KAFKA = "kafka"


def principal(sa: str, ns: str = NAMESPACE) -> str:
    return f"{TRUST}/ns/{ns}/sa/{sa}"


def prometheus_principal(r) -> str:
    prom = r.values.get("monitoring", {}).get("prometheus", {})
    return principal(
        prom.get("serviceAccount", "kube-prometheus-stack-prometheus"),
        prom.get("namespace", "monitoring"),
    )


# What each workload needs to reach: (destination workload, port).
NEEDS = {
    "meshflow-producer": {(KAFKA, 9092)},
    "meshflow-consumer": {(KAFKA, 9092)},
    "meshflow-exporter": {(KAFKA, 9092)},
    KAFKA: {(KAFKA, 9092), (KAFKA, 9093)},
}


def needs(r) -> dict[str, set]:
    """NEEDS for the workloads a scenario renders. With an external Kafka
    (kafka.enabled=false) the services reach nothing in the namespace: the
    brokers are outside it and their own policies decide."""
    out = {f"meshflow-{c}": NEEDS[f"meshflow-{c}"] if r.kafka_in_chart else set() for c in r.components}
    if r.kafka_in_chart:
        out[KAFKA] = NEEDS[KAFKA]
    return out

# Keys ztunnel evaluates at L4; anything else in a rule needs a waypoint.
L4_SOURCE_KEYS = {"principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks"}
L4_OPERATION_KEYS = {"ports", "notPorts"}
L4_CONDITION_KEYS = {
    "source.ip",
    "source.namespace",
    "source.principal",
    "destination.ip",
    "destination.port",
}


def authorization_policies(r) -> list[dict]:
    return r.of_kind("AuthorizationPolicy")


def access_matrix(r) -> set[tuple[str, str, int]]:
    """(principal, destination workload, port) triples some ALLOW rule admits.

    A rule without `from` or without `to` is recorded with "*" so that the
    exact comparison below fails on it.
    """
    allowed = set()
    for policy in authorization_policies(r):
        spec = policy.get("spec") or {}
        assert spec.get("action", "ALLOW") == "ALLOW", policy["metadata"]["name"]
        selector = spec.get("selector")
        targets = [w for w in r.workloads() if selector is None or selects(selector, pod_labels(w))]
        for rule in spec.get("rules") or []:
            principals = [p for f in rule.get("from", [{}]) for p in f.get("source", {}).get("principals", ["*"])]
            ports = [int(p) if p != "*" else p for t in rule.get("to", [{}]) for p in t.get("operation", {}).get("ports", ["*"])]
            for w, p, port in itertools.product(targets, principals, ports):
                allowed.add((p, w["metadata"]["name"], port))
    return allowed


def test_strict_mtls_for_the_whole_namespace(rendered):
    (pa,) = rendered.of_kind("PeerAuthentication")
    assert pa["metadata"]["namespace"] == NAMESPACE
    assert "selector" not in pa["spec"]
    assert pa["spec"] == {"mtls": {"mode": "STRICT"}}


def test_default_deny_policy(rendered):
    deny_all = [p for p in authorization_policies(rendered) if not p.get("spec")]
    assert len(deny_all) == 1, "an AuthorizationPolicy with an empty spec denies everything not allowed"


def test_only_allow_policies_bound_by_selector(rendered):
    for policy in authorization_policies(rendered):
        spec = policy.get("spec") or {}
        assert set(spec) <= {"selector", "action", "rules"}, policy["metadata"]["name"]
        assert spec.get("action", "ALLOW") == "ALLOW"


def test_no_l7_fields(rendered):
    for policy in authorization_policies(rendered):
        name = policy["metadata"]["name"]
        for rule in (policy.get("spec") or {}).get("rules") or []:
            assert set(rule) <= {"from", "to", "when"}, name
            for source in rule.get("from", []):
                assert set(source) == {"source"}, name
                assert set(source["source"]) <= L4_SOURCE_KEYS, (name, source)
            for to in rule.get("to", []):
                assert set(to) == {"operation"}, name
                assert set(to["operation"]) <= L4_OPERATION_KEYS, (name, to)
            for cond in rule.get("when", []):
                assert cond["key"] in L4_CONDITION_KEYS, (name, cond)


def test_principals_are_exact_and_exist(rendered):
    accounts = {sa["metadata"]["name"] for sa in rendered.of_kind("ServiceAccount")}
    for p, _, _ in access_matrix(rendered):
        assert "*" not in str(p), p
        ns, sa = p.split("/ns/")[1].split("/sa/")
        if ns == NAMESPACE:
            assert sa in accounts, p


def test_each_workload_has_its_own_service_account(rendered):
    accounts = {sa["metadata"]["name"] for sa in rendered.of_kind("ServiceAccount")}
    used = [pod_spec(w)["serviceAccountName"] for w in rendered.workloads()]
    assert len(used) == len(set(used))
    assert set(used) <= accounts
    assert {w["metadata"]["name"]: pod_spec(w)["serviceAccountName"] for w in rendered.workloads()} == {
        name: name for name in needs(rendered)
    }


def test_every_service_account_reaches_exactly_what_it_needs(rendered):
    matrix = access_matrix(rendered)
    for w in rendered.workloads():
        sa = pod_spec(w)["serviceAccountName"]
        reachable = {(dest, port) for p, dest, port in matrix if p == principal(sa)}
        assert reachable == needs(rendered)[w["metadata"]["name"]], w["metadata"]["name"]


def test_prometheus_reaches_only_the_metrics_ports(rendered):
    matrix = access_matrix(rendered)
    prom = prometheus_principal(rendered)
    reachable = {(dest, port) for p, dest, port in matrix if p == prom}
    assert reachable == {(f"meshflow-{c}", port) for c, port in rendered.components.items()}


def test_no_other_principal_is_allowed_anything(rendered):
    known = {principal(pod_spec(w)["serviceAccountName"]) for w in rendered.workloads()}
    known.add(prometheus_principal(rendered))
    assert {p for p, _, _ in access_matrix(rendered)} <= known


def test_every_workload_is_covered_by_an_allow_policy(rendered):
    selected = {dest for _, dest, _ in access_matrix(rendered)}
    assert selected == {w["metadata"]["name"] for w in rendered.workloads()}


def test_no_sidecar_injection_anywhere(rendered):
    assert not rendered.of_kind("Sidecar")
    for doc in rendered.docs:
        labels = doc["metadata"].get("labels") or {}
        annotations = doc["metadata"].get("annotations") or {}
        assert "istio-injection" not in labels
        assert "istio.io/rev" not in labels
        assert labels.get("sidecar.istio.io/inject", "false") == "false"
        assert annotations.get("sidecar.istio.io/inject", "false") == "false"
    for w in rendered.workloads():
        meta = w["spec"]["template"]["metadata"]
        assert meta["labels"].get("sidecar.istio.io/inject") == "false"
        assert (meta.get("annotations") or {}).get("sidecar.istio.io/inject", "false") == "false"
        assert "istio.io/rev" not in meta["labels"]
        names = {c["name"] for c in pod_spec(w)["containers"] + pod_spec(w).get("initContainers", [])}
        assert not names & {"istio-proxy", "istio-init", "istio-validation"}


def test_pods_are_enrolled_in_ambient(rendered):
    for w in rendered.workloads():
        assert pod_labels(w).get("istio.io/dataplane-mode") == "ambient", w["metadata"]["name"]


def test_no_waypoint_or_l7_istio_objects(rendered):
    for kind in ("Gateway", "VirtualService", "DestinationRule", "RequestAuthentication", "EnvoyFilter"):
        assert not rendered.of_kind(kind)
    for doc in rendered.docs:
        labels = doc["metadata"].get("labels") or {}
        assert "istio.io/use-waypoint" not in labels
