"""The chart lints, renders and validates, in every scenario."""

from __future__ import annotations

import subprocess

import kubernetes_validate
import pytest
import yaml

import crd_schemas
import rendering
from conftest import NAMESPACE


def test_scenarios_exist():
    assert {"default", "annotations", "service-monitor"} <= set(rendering.scenarios())


def test_lint_is_clean(rendered):
    assert rendering.lint(rendered.scenario) == []


class _UniqueKeyLoader(yaml.SafeLoader):
    """A loader that refuses duplicate mapping keys (the API server does too)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        duplicates = {k for k in keys if keys.count(k) > 1}
        if duplicates:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate keys {sorted(map(str, duplicates))}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


def test_no_duplicate_keys(rendered):
    for path, text in rendered.text.items():
        if not path.endswith("NOTES.txt"):
            list(yaml.load_all(text, Loader=_UniqueKeyLoader))


def test_everything_is_in_the_release_namespace(rendered):
    wanted = rendered.values.get("monitoring", {}).get("grafanaDashboards", {}).get("namespace")
    for doc in rendered.docs:
        ns = doc["metadata"].get("namespace")
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("meshflow-dashboard-"):
            assert ns == (wanted or NAMESPACE)
        elif doc["kind"] == "PodMonitor" and doc["metadata"]["name"] == "meshflow-ztunnel":
            assert ns == "istio-system"
        else:
            assert ns == NAMESPACE, f"{doc['kind']}/{doc['metadata']['name']}"


def test_names_are_unique_per_kind(rendered):
    seen = [(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in rendered.docs]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("kube", rendering.KUBE_VERSIONS)
def test_core_objects_validate_strictly(rendered, kube):
    core = [d for d in rendered.docs if not rendering.is_crd_kind(d)]
    assert core
    for doc in core:
        # Raises on a schema violation, an unknown field or an unknown kind.
        kubernetes_validate.validate(doc, kube, strict=True)


def test_custom_resources_match_their_crds(rendered):
    crds = [d for d in rendered.docs if rendering.is_crd_kind(d)]
    assert crds
    problems = {f"{d['kind']}/{d['metadata']['name']}": crd_schemas.problems(d) for d in crds}
    assert {k: v for k, v in problems.items() if v} == {}


def test_crd_check_catches_a_misspelt_policy_field():
    doc = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "typo", "namespace": NAMESPACE},
        "spec": {"rules": [{"to": [{"operation": {"port": ["9092"]}}]}]},
    }
    assert crd_schemas.problems(doc) == ["unknown field spec.rules[0].to[0].operation.port"]


@pytest.mark.parametrize("name", ["kafka-lib.sh", "start.sh", "broker-ready.sh"])
def test_kafka_scripts_are_valid_bash(default, name):
    script = default.get("ConfigMap", "kafka-scripts")["data"][name]
    assert script == (rendering.CHART_DIR / "files" / "kafka" / name).read_text()
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


@pytest.mark.parametrize(
    "values",
    [
        {"kafka": {"replicaz": 3}},
        {"kafka": {"replicas": 1}},
        {"monitoring": {"mode": "scrapeEverything"}},
        {"exporter": {"replicas": 2}},
        {"kafka": {"clusterId": "not a uuid"}},
        {"producer": {"messageTimeout": 300}},
    ],
)
def test_values_schema_refuses_mistakes(values):
    import helm_python as helm

    with helm.Chart.load(str(rendering.chart_path())) as chart:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(values)


def test_notes_name_the_verify_script(default):
    notes = default.text["meshflow/templates/NOTES.txt"]
    assert "deploy/helm/verify.sh --namespace meshflow" in notes
    assert "kubectl label namespace meshflow istio.io/dataplane-mode=ambient" in notes


def test_checkov_skips_are_justified():
    skips = yaml.safe_load((rendering.TESTS_DIR / "checkov-skips.yaml").read_text())
    for skip in skips:
        assert set(skip) == {"check", "title", "resources", "scenarios", "reason"}
        assert len(skip["reason"].split()) >= 20, skip["check"]
        assert set(skip["scenarios"]) <= set(rendering.scenarios())
