"""Kafka when the cluster changes shape: scaling the quorum, memory within
its limit, scheduling, labels that survive an upgrade, the values schema,
and the operations docs. See test_kafka_operations.py for the rest of the
day-2 operations; both read the chart through kafka_chart.py.
"""

from __future__ import annotations

import re

import pytest
import yaml

import rendering
from conftest import pod_labels, pod_spec
from kafka_chart import env_of, jvm_flags, kafka_container, kafka_scripts, quantity, run_bash
from kafka_chart import scripts_dir  # noqa: F401 (a fixture)


# --- 4. scaling -----------------------------------------------------------------


def test_new_or_reformatted_controller_joins_with_add_controller(scripts_dir, tmp_path):
    (tmp_path / "data" / "logs").mkdir(parents=True)
    (tmp_path / "data" / "logs" / "meta.properties").write_text("node.id=3\ndirectory.id=newdir3\n")
    quorum = 'if [[ "$*" == *describe* ]]; then echo \'CurrentVoters: [{"id": 0, "directoryId": "a"}]\'; fi'
    done, calls = run_bash(scripts_dir, "join_quorum_once", tmp_path,
                           {"kafka-metadata-quorum.sh": quorum}, {"KAFKA_NODE_ID": "3"})
    assert done.returncode == 1  # not a voter yet: the loop tries again
    add = [line for line in calls.splitlines() if "add-controller" in line]
    assert len(add) == 1 and "--command-config" in add[0], calls

    voter = 'echo \'CurrentVoters: [{"id": 3, "directoryId": "newdir3", "endpoints": []}]\''
    (tmp_path / "calls.log").unlink()
    done, calls = run_bash(scripts_dir, "join_quorum_once", tmp_path,
                           {"kafka-metadata-quorum.sh": voter}, {"KAFKA_NODE_ID": "3"})
    assert done.returncode == 0
    assert "add-controller" not in calls


def test_lost_volume_asks_for_the_old_voter_to_be_removed(scripts_dir, tmp_path):
    (tmp_path / "data" / "logs").mkdir(parents=True)
    (tmp_path / "data" / "logs" / "meta.properties").write_text("node.id=1\ndirectory.id=newdir1\n")
    quorum = """\
    if [[ "$*" == *describe* ]]; then echo 'CurrentVoters: [{"id": 1, "directoryId": "olddir1", "endpoints": []}]'
    else echo 'org.apache.kafka.common.errors.DuplicateVoterException: already a voter' >&2; exit 1; fi"""
    done, _ = run_bash(scripts_dir, "join_quorum_once", tmp_path,
                       {"kafka-metadata-quorum.sh": quorum}, {"KAFKA_NODE_ID": "1"})
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "remove-controller --controller-id 1 --controller-directory-id olddir1" in out


def render_with(values: dict) -> list[dict]:
    import helm_python as helm

    with helm.Chart.load(str(rendering.chart_path())) as chart:
        chart.validate_schema(values)
        text = chart.render(values, name=rendering.RELEASE, namespace=rendering.NAMESPACE, is_install=False)
    return [d for path, t in text.items() if not path.endswith("NOTES.txt") for d in yaml.safe_load_all(t) if d]


def test_scaling_to_five_adds_controllers_through_the_quorum():
    docs = render_with({"kafka": {"replicas": 5}})
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    assert sts["spec"]["replicas"] == 5
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "kafka-config"]
    assert "controller.quorum.voters" not in config["data"]["server.properties"]
    bootstrap = re.search(r"controller\.quorum\.bootstrap\.servers=(\S+)", config["data"]["server.properties"]).group(1)
    assert len(bootstrap.split(",")) == 5
    (scripts,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "kafka-scripts"]
    assert "join_loop &" in scripts["data"]["start.sh"]


def test_the_exporter_expects_the_cluster_it_is_scaled_to():
    import tomllib
    docs = render_with({
        "kafka": {"replicas": 5, "defaultReplicationFactor": 4, "minInsyncReplicas": 3},
        "topics": {"replicationFactor": 4},
    })
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "meshflow-config"]
    cluster = tomllib.loads(config["data"]["exporter.toml"])["exporter"]["cluster"]
    assert cluster == {"brokers": 5, "min_insync_replicas": 3}


# --- also: memory, scheduling, labels, schema -------------------------------


def test_kafka_memory_fits_its_limit(with_kafka):
    """Every JVM region the broker and the one readiness-check JVM can reach, inside the limit."""
    c = kafka_container(with_kafka)
    env = env_of(c)
    broker = jvm_flags(env["BROKER_HEAP_OPTS"] + " " + env["BROKER_JVM_PERFORMANCE_OPTS"])
    for flag in ("Xmx", "MaxDirectMemorySize", "MaxMetaspaceSize", "ReservedCodeCacheSize"):
        assert flag in broker, f"broker JVM without a {flag} bound"
    assert broker["Xms"] == broker["Xmx"]
    lib = kafka_scripts(with_kafka)["kafka-lib.sh"]
    tool = jvm_flags(" ".join(re.findall(r'^TOOLS_(?:HEAP|JVM)_OPTS="([^"]+)"', lib, re.M)))
    for flag in ("Xmx", "MaxMetaspaceSize", "ReservedCodeCacheSize"):
        assert flag in tool, f"tool JVM without a {flag} bound"
    # Threads (about 150 for a small broker at 1 MiB each), GC structures
    # and the JVM's own native memory: a fixed allowance per JVM.
    native_broker, native_tool = 256 * 2**20, 64 * 2**20
    broker_bytes = sum(quantity(broker[f]) for f in ("Xmx", "MaxDirectMemorySize", "MaxMetaspaceSize", "ReservedCodeCacheSize"))
    tool_bytes = sum(quantity(tool[f]) for f in ("Xmx", "MaxMetaspaceSize", "ReservedCodeCacheSize"))
    limit = quantity(c["resources"]["limits"]["memory"])
    assert broker_bytes + native_broker + tool_bytes + native_tool <= limit, (broker_bytes, tool_bytes, limit)
    # The requests reserve what the limit allows: no overcommit for Kafka.
    assert quantity(c["resources"]["requests"]["memory"]) == limit


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


# --- docs -------------------------------------------------------------------------

DOCS = rendering.REPO_ROOT / "docs" / "kubernetes.md"


def test_docs_do_not_credit_the_startup_probe_with_log_recovery():
    text = DOCS.read_text()
    assert "allows 10 minutes of log recovery" not in text


@pytest.mark.parametrize("topic", ["Upgrade", "Scale", "Lost volume", "Disk sizing"])
def test_docs_have_an_operations_section(topic):
    text = DOCS.read_text()
    assert "## Operations" in text
    ops = text.split("## Operations", 1)[1].split("\n## ", 1)[0]
    assert re.search(rf"^### {topic}", ops, re.M), topic
