"""Scraping, and the rules and dashboards taken from alerts/ and dashboards/.

The chart reads those directories through symlinks; these tests hold the
rendered objects against the files themselves, so that nothing in the chart
can drift from them, and fail when there is nothing to compare.
"""

from __future__ import annotations

import json

import pytest
import yaml

import rendering
from conftest import SERVICE_PORTS, pod_spec, selects


def rule_files() -> dict:
    files = sorted(rendering.source_dir("alerts").glob("*.rules.yml"))
    assert files, f"no *.rules.yml under {rendering.source_dir('alerts')}"
    return {f.name: f for f in files}


def dashboard_files() -> dict:
    files = sorted(rendering.source_dir("dashboards").glob("*.json"))
    assert files, f"no *.json under {rendering.source_dir('dashboards')}"
    return {f.name: f for f in files}


def assert_embedded(embedded: dict, files: dict, parse) -> None:
    """Each file is embedded under its name, byte for byte (bar the final
    newline) and with the same parsed content, and nothing else is."""
    assert set(embedded) == set(files)
    for name, path in files.items():
        text = path.read_text()
        assert embedded[name] == text.rstrip("\n"), f"{name} is not embedded byte for byte"
        assert parse(embedded[name]) == parse(text)


def test_there_are_rules_and_dashboards_to_ship():
    groups = [g for f in rule_files().values() for g in yaml.safe_load(f.read_text())["groups"]]
    assert groups and all(g.get("rules") for g in groups)
    for f in dashboard_files().values():
        assert json.loads(f.read_text()).get("panels") is not None, f.name


def test_prometheus_rules_equal_the_rule_files(default):
    by_source = {}
    for rule in default.of_kind("PrometheusRule"):
        source = rule["metadata"]["annotations"]["meshflow.io/source"]
        by_source[source.removeprefix("alerts/")] = rule
    files = rule_files()
    assert set(by_source) == set(files)
    for name, path in files.items():
        assert by_source[name]["spec"] == yaml.safe_load(path.read_text()), name
        assert by_source[name]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_rules_config_map_equals_the_rule_files(annotations_mode):
    assert not annotations_mode.of_kind("PrometheusRule")
    data = annotations_mode.get("ConfigMap", "meshflow-prometheus-rules")["data"]
    assert_embedded(data, rule_files(), yaml.safe_load)


def test_dashboard_config_maps_equal_the_dashboards(rendered):
    maps = [
        cm for cm in rendered.of_kind("ConfigMap")
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    files = dashboard_files()
    found = {}
    for cm in maps:
        (key,) = cm["data"]
        assert cm["metadata"]["annotations"]["meshflow.io/source"] == f"dashboards/{key}"
        found[key] = cm["data"][key]
    assert_embedded(found, files, json.loads)


def test_pod_monitor_sets_the_contract_job_names(default):
    (pm,) = [p for p in default.of_kind("PodMonitor") if p["metadata"]["name"] == "meshflow"]
    assert pm["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert pm["spec"]["podMetricsEndpoints"] == [{"port": "http-metrics", "path": "/metrics", "interval": "15s"}]
    scraped = {
        w["metadata"]["name"]
        for w in default.workloads()
        if selects(pm["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
    }
    assert scraped == {f"meshflow-{c}" for c in SERVICE_PORTS}
    for name in scraped:
        labels = default.get("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == name


def test_ztunnel_is_scraped_for_the_mesh_panels(default):
    pm = default.get("PodMonitor", "meshflow-ztunnel")
    assert pm["metadata"]["namespace"] == "istio-system"
    assert pm["spec"]["selector"] == {"matchLabels": {"app": "ztunnel"}}
    assert pm["spec"]["podMetricsEndpoints"] == [{"portNumber": 15020, "path": "/metrics", "interval": "15s"}]


def test_service_monitor_mode():
    from conftest import Rendered

    r = Rendered("service-monitor")
    assert [p["metadata"]["name"] for p in r.of_kind("PodMonitor")] == ["meshflow-ztunnel"]
    (sm,) = r.of_kind("ServiceMonitor")
    assert sm["spec"]["jobLabel"] == "app.kubernetes.io/name"
    services = [s for s in r.of_kind("Service") if selects(sm["spec"]["selector"], s["metadata"]["labels"])]
    assert {s["metadata"]["name"] for s in services} == {f"meshflow-{c}" for c in SERVICE_PORTS}
    for s in services:
        assert s["spec"]["ports"][0]["name"] == "http-metrics"


def test_annotation_mode(annotations_mode):
    assert not annotations_mode.of_kind("PodMonitor") and not annotations_mode.of_kind("ServiceMonitor")
    for component, port in SERVICE_PORTS.items():
        d = annotations_mode.get("Deployment", f"meshflow-{component}")
        ann = d["spec"]["template"]["metadata"]["annotations"]
        assert ann["prometheus.io/scrape"] == "true"
        assert ann["prometheus.io/port"] == str(port)
        assert ann["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("component", sorted(SERVICE_PORTS))
def test_no_scrape_annotations_under_the_operator(default, component):
    d = default.get("Deployment", f"meshflow-{component}")
    assert "prometheus.io/scrape" not in d["spec"]["template"]["metadata"]["annotations"]
    assert pod_spec(d)["containers"][0]["ports"][0]["containerPort"] == SERVICE_PORTS[component]
