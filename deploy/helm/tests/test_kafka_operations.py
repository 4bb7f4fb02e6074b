"""Kafka under day-2 operations: long uptimes, rolling restarts, lost volumes, scaling.

Each test reads the rendered chart (and, where the chart ships a script,
runs that script's functions in bash against stand-in Kafka tools), so that
what would only show on a cluster after weeks (a full log volume, a restart
that drops partitions below min.insync.replicas, a reformatted voter) fails
here first.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

import rendering
from conftest import containers, pod_labels, pod_spec

# Kubernetes quantities the chart uses (binary suffixes, and plain M/G as the JVM writes them).
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 2**10, "K": 2**10, "m": 2**20, "M": 2**20, "g": 2**30, "G": 2**30}


def quantity(text: str) -> int:
    """Bytes in a Kubernetes quantity (256Mi) or a JVM size (100M, 1g)."""
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", str(text))
    assert match, text
    number, unit = match.groups()
    return int(number) * UNITS.get(unit, 1)


def kafka(rendered) -> dict:
    return rendered.get("StatefulSet", "kafka")


def kafka_container(rendered) -> dict:
    (c,) = pod_spec(kafka(rendered))["containers"]
    return c


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def volume(rendered, name: str) -> dict:
    (v,) = [v for v in pod_spec(kafka(rendered))["volumes"] if v["name"] == name]
    return v


def mount_of(container: dict, path: str) -> str:
    """The volume mounted at the longest mount path that contains path."""
    mounts = [m for m in container["volumeMounts"] if path == m["mountPath"] or path.startswith(m["mountPath"] + "/")]
    assert mounts, path
    return max(mounts, key=lambda m: len(m["mountPath"]))["name"]


def kafka_files(rendered) -> dict:
    return rendered.get("ConfigMap", "kafka-config")["data"]


def kafka_scripts(rendered) -> dict:
    return rendered.get("ConfigMap", "kafka-scripts")["data"]


def server_properties(rendered) -> dict:
    props = {}
    for line in kafka_files(rendered)["server.properties"].splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def jvm_flags(options: str) -> dict:
    """-Xmx1g / -XX:MaxDirectMemorySize=256m / -Xss1m -> {"Xmx": "1g", ...}."""
    flags = {}
    for option in options.split():
        if match := re.fullmatch(r"-XX:(\w+)=(\S+)", option):
            flags[match.group(1)] = match.group(2)
        elif match := re.fullmatch(r"-X(mx|ms|ss)(\S+)", option):
            flags["X" + match.group(1)] = match.group(2)
    return flags


# --- also: memory, scheduling, labels, schema -------------------------------


def render_with(values: dict) -> list[dict]:
    import helm_python as helm

    with helm.Chart.load(str(rendering.chart_path())) as chart:
        chart.validate_schema(values)
        text = chart.render(values, name=rendering.RELEASE, namespace=rendering.NAMESPACE, is_install=False)
    return [d for path, t in text.items() if not path.endswith("NOTES.txt") for d in yaml.safe_load_all(t) if d]


def test_hard_anti_affinity_is_an_option():
    docs = render_with({"kafka": {"antiAffinity": "hard"}})
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    anti = pod_spec(sts)["affinity"]["podAntiAffinity"]
    (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in anti


def test_pod_templates_do_not_carry_the_chart_version(rendered):
    """A chart version bump alone must not restart every pod (Kafka included)."""
    for w in rendered.workloads():
        labels = pod_labels(w)
        assert "helm.sh/chart" not in labels, w["metadata"]["name"]
        assert not any("version" in key for key in labels), (w["metadata"]["name"], labels)


@pytest.mark.parametrize(
    "values",
    [
        {"kafka": {"minInsyncReplicas": 3, "defaultReplicationFactor": 3}},
        {"kafka": {"minInsyncReplicas": 2, "defaultReplicationFactor": 2}},
        {"topics": {"replicationFactor": 2}},
        {"kafka": {"defaultReplicationFactor": 4}},
        {"topics": {"replicationFactor": 4}},
        {"kafka": {"podDisruptionBudget": {"maxUnavailable": 2}}},
    ],
    ids=["minisr-eq-rf", "minisr-eq-rf-2", "topic-rf-eq-minisr", "rf-over-replicas", "topic-rf-over-replicas",
         "pdb-two-down"],
)
def test_values_schema_refuses_unsafe_replication(values):
    import helm_python as helm

    with helm.Chart.load(str(rendering.chart_path())) as chart:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(values)


@pytest.mark.parametrize(
    "values",
    [
        {"kafka": {"replicas": 5, "defaultReplicationFactor": 5, "minInsyncReplicas": 3},
         "topics": {"replicationFactor": 5}},
        {"kafka": {"replicas": 5, "defaultReplicationFactor": 3}},
    ],
)
def test_values_schema_accepts_safe_replication(values):
    import helm_python as helm

    with helm.Chart.load(str(rendering.chart_path())) as chart:
        chart.validate_schema(values)
