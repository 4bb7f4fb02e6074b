"""Fixtures: the chart rendered per scenario, and lookups into it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rendering  # noqa: E402

# The services and their contract ports (docs/contracts.md).
SERVICE_PORTS = {"producer": 9464, "consumer": 9465, "exporter": 9466}
NAMESPACE = rendering.NAMESPACE
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet"}


class Rendered:
    """The objects of one rendered scenario, with helpers to find them."""

    def __init__(self, scenario: str):
        self.scenario = scenario
        self.values = rendering.scenario_values(scenario)
        self.docs = list(rendering.render(scenario))
        self.text = rendering.render_text(scenario)

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def workloads(self) -> list[dict]:
        return [d for d in self.docs if d["kind"] in WORKLOAD_KINDS]

    @property
    def kafka_in_chart(self) -> bool:
        """Whether the scenario installs the chart's Kafka (kafka.enabled)."""
        return self.values.get("kafka", {}).get("enabled", True)

    @property
    def components(self) -> dict[str, int]:
        """The services this scenario runs, with their ports: the exporter
        always, the producer and consumer unless <name>.enabled is false."""
        return {
            c: port
            for c, port in SERVICE_PORTS.items()
            if c == "exporter" or self.values.get(c, {}).get("enabled", True)
        }


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"].get("labels", {})


def containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels/matchExpressions) matches labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        present = expr["key"] in labels
        value = labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


@pytest.fixture(scope="session", params=rendering.scenarios())
def rendered(request) -> Rendered:
    """Every scenario in values/ in turn."""
    return Rendered(request.param)


@pytest.fixture(scope="session", params=rendering.scenarios_with_kafka())
def with_kafka(request) -> Rendered:
    """Every scenario that installs the chart's own Kafka."""
    return Rendered(request.param)


@pytest.fixture(scope="session")
def default() -> Rendered:
    """The chart's default values, as `helm install` without -f uses them."""
    return Rendered("default")


@pytest.fixture(scope="session")
def annotations_mode() -> Rendered:
    return Rendered("annotations")
