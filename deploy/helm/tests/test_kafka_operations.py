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


# --- 1. the logs volume -------------------------------------------------------


def gc_log_bound(gc_opts: str, log_dir: str) -> tuple[str, int]:
    """Where the JVM's unified GC log goes and how many bytes it can keep.

    Unified logging keeps filecount rotated files beside the one being
    written: (filecount + 1) x filesize at most.
    """
    match = re.search(r"-Xlog:[^ ]*?:file=([^:]+):[^ ]*?filecount=(\d+),filesize=(\w+)", gc_opts)
    assert match, f"GC log to a file without a size bound: {gc_opts!r}"
    path, count, size = match.groups()
    assert path.startswith(log_dir + "/"), (path, log_dir)
    return path, (int(count) + 1) * quantity(size)


def test_logs_volume_holds_everything_kafka_writes(rendered):
    """A full emptyDir gets the pod evicted without grace: bound what goes there."""
    c = kafka_container(rendered)
    env = env_of(c)
    log_dir = "/opt/kafka/logs"
    assert env.get("LOG_DIR") == log_dir
    # kafka-server-start.sh passes -loggc, which kafka-run-class.sh turns
    # into 10 x 100 MB GC files unless KAFKA_GC_LOG_OPTS is set; start.sh
    # sets it for the broker from BROKER_GC_LOG_OPTS.
    assert env.get("BROKER_GC_LOG_OPTS"), "the image's default GC log is 10 x 100 MB"
    assert 'KAFKA_GC_LOG_OPTS="$BROKER_GC_LOG_OPTS"' in kafka_scripts(rendered)["start.sh"]
    gc_path, gc_bytes = gc_log_bound(env["BROKER_GC_LOG_OPTS"], log_dir)
    assert mount_of(c, gc_path) == "logs"

    # log4j2: the broker logs to the console only (kubectl logs, the
    # cluster's log collector); a file appender would grow without bound.
    assert env.get("BROKER_LOG4J_OPTS") == "-Dlog4j2.configurationFile=/opt/meshflow/kafka-config/log4j2.yaml"
    log4j = yaml.safe_load(kafka_files(rendered)["log4j2.yaml"])
    appenders = log4j["Configuration"]["Appenders"]
    assert set(appenders) == {"Console"}, appenders
    assert appenders["Console"]["target"] in ("SYSTEM_OUT", "SYSTEM_ERR")

    limit = quantity(volume(rendered, "logs")["emptyDir"]["sizeLimit"])
    # Room for the JVM's hs_err file and a margin over the bound.
    assert gc_bytes * 1.5 <= limit, (gc_bytes, limit)


def test_tools_do_not_write_into_the_volumes(rendered):
    """Kafka's tools (the scripts', and those run with kubectl exec): console only, no GC log."""
    env = env_of(kafka_container(rendered))
    assert env["KAFKA_LOG4J_OPTS"] == "-Dlog4j2.configurationFile=/opt/meshflow/kafka-config/tools-log4j2.yaml"
    assert "KAFKA_GC_LOG_OPTS" not in env
    assert quantity(jvm_flags(env["KAFKA_HEAP_OPTS"])["Xmx"]) <= 128 * 2**20
    files = kafka_files(rendered)
    tools = yaml.safe_load(files["tools-log4j2.yaml"])
    assert set(tools["Configuration"]["Appenders"]) == {"Console"}
    assert tools["Configuration"]["Appenders"]["Console"]["target"] == "SYSTEM_ERR"
    lib = kafka_scripts(rendered)["kafka-lib.sh"]
    assert "-Dlog4j2.configurationFile=/opt/meshflow/kafka-config/tools-log4j2.yaml" in lib


# --- stand-ins for Kafka's tools ---------------------------------------------


@pytest.fixture(scope="module")
def scripts_dir(tmp_path_factory, default) -> Path:
    """The chart's Kafka scripts written out, as the pod mounts them."""
    out = tmp_path_factory.mktemp("kafka-scripts")
    for name, text in kafka_scripts(default).items():
        (out / name).write_text(text)
    return out


def run_bash(scripts: Path, code: str, tmp_path: Path, tools: dict[str, str], env: dict | None = None):
    """Runs code after sourcing kafka-lib.sh, with fake tools in KAFKA_BIN.

    Each fake tool appends its arguments to calls.log and runs its body.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in tools.items():
        tool = bin_dir / name
        tool.write_text(f'#!/bin/bash\necho "{name} $*" >> "{tmp_path}/calls.log"\n{textwrap.dedent(body)}\n')
        tool.chmod(0o755)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    full_env = {
        **os.environ,
        "KAFKA_BIN": str(bin_dir),
        "KAFKA_DATA_DIR": str(data / "logs"),
        "KAFKA_NODE_ID": "0",
        "KAFKA_CONFIG": str(tmp_path / "server.properties"),
        "MESHFLOW_STATE_DIR": str(tmp_path),
        **(env or {}),
    }
    done = subprocess.run(
        ["bash", "-c", f'source "{scripts}/kafka-lib.sh"\n{code}'],
        env=full_env, capture_output=True, text=True, timeout=60,
    )
    calls = (tmp_path / "calls.log").read_text() if (tmp_path / "calls.log").exists() else ""
    return done, calls


# --- 2. readiness waits for the ISR -----------------------------------------

TOPICS_DESCRIBE = """\
\tTopic: meshflow.events\tTopicId: x\tPartition: 0\tLeader: 1\tReplicas: 1,2,0\tIsr: 1,2\tElr: \tLastKnownElr: 
\tTopic: meshflow.events\tTopicId: x\tPartition: 3\tLeader: 2\tReplicas: 2,0,1\tIsr: 2,1\tElr: \tLastKnownElr: 
\tTopic: meshflow.receipts\tTopicId: y\tPartition: 1\tLeader: 0\tReplicas: 0,1,2\tIsr: 0,1\tElr: \tLastKnownElr: 
"""


def test_lagging_partitions_are_those_missing_this_node(scripts_dir, tmp_path):
    done, _ = run_bash(scripts_dir, 'lagging_partitions 0 <<<"$SAMPLE"', tmp_path, {}, {"SAMPLE": TOPICS_DESCRIBE})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["meshflow.events-0", "meshflow.events-3"]
    done, _ = run_bash(scripts_dir, 'lagging_partitions 2 <<<"$SAMPLE"', tmp_path, {}, {"SAMPLE": TOPICS_DESCRIBE})
    assert done.stdout.split() == ["meshflow.receipts-1"]
    done, _ = run_bash(scripts_dir, 'lagging_partitions 1 <<<"$SAMPLE"', tmp_path, {}, {"SAMPLE": TOPICS_DESCRIBE})
    assert done.stdout.split() == []


LIVE_LOG_DIRS = 'echo \'{"brokers":[{"broker":0,"logDirs":[{"logDir":"/var/lib/kafka/data/logs","error":null,"partitions":[]}]}]}\''


@pytest.mark.parametrize(
    ("elapsed", "lagging", "expected"),
    [
        (10, True, "not-ready"),   # restarted, still catching up: hold the rollout
        (10, False, "ready"),      # caught up: the next broker may go
        (900, True, "ready"),      # a partition that never catches up cannot block forever
    ],
)
def test_readiness_waits_for_this_broker_in_every_isr(scripts_dir, tmp_path, elapsed, lagging, expected):
    topics = 'echo "$SAMPLE"' if lagging else "true"
    code = f"""
    readiness_started=$(( $(date +%s) - {elapsed} ))
    check_readiness
    cat "$MESHFLOW_STATE_DIR/readiness"
    """
    done, calls = run_bash(
        scripts_dir, code, tmp_path,
        {"kafka-log-dirs.sh": LIVE_LOG_DIRS, "kafka-topics.sh": topics},
        {"SAMPLE": TOPICS_DESCRIBE, "KAFKA_ISR_WAIT_SECONDS": "600"},
    )
    assert done.returncode == 0, done.stderr
    status = done.stdout.split()[0]
    assert status == expected, done.stdout
    assert "--under-replicated-partitions" in calls


def test_a_broker_that_caught_up_stays_ready(scripts_dir, tmp_path):
    """Once in sync, later ISR changes (another broker restarting) do not flap this pod."""
    code = """
    readiness_started=$(date +%s)
    readiness_caught_up=1
    check_readiness
    cat "$MESHFLOW_STATE_DIR/readiness"
    """
    done, _ = run_bash(
        scripts_dir, code, tmp_path,
        {"kafka-log-dirs.sh": LIVE_LOG_DIRS, "kafka-topics.sh": 'echo "$SAMPLE"'},
        {"SAMPLE": TOPICS_DESCRIBE},
    )
    assert done.stdout.split()[0] == "ready", done.stdout + done.stderr


def test_readiness_fails_for_a_fenced_broker(scripts_dir, tmp_path):
    done, calls = run_bash(
        scripts_dir, "readiness_started=$(date +%s)\ncheck_readiness\ncat \"$MESHFLOW_STATE_DIR/readiness\"",
        tmp_path, {"kafka-log-dirs.sh": "echo 'broker 0 is not live' >&2; exit 1", "kafka-topics.sh": "true"},
    )
    assert done.stdout.split()[0] == "not-ready"
    assert "kafka-topics.sh" not in calls


def test_kafka_probe_runs_no_jvm(rendered):
    """The kubelet's probe reads the state a single checker loop keeps up to date."""
    c = kafka_container(rendered)
    probe = c["readinessProbe"]
    assert probe["exec"]["command"] == ["/bin/bash", "/opt/meshflow/kafka/broker-ready.sh"]
    script = kafka_scripts(rendered)["broker-ready.sh"]
    assert "/opt/kafka/bin" not in script and "kafka-run-class" not in script
    start = kafka_scripts(rendered)["start.sh"]
    assert "readiness_loop &" in start


def test_probe_accepts_only_fresh_ready_state(scripts_dir, tmp_path):
    probe = scripts_dir / "broker-ready.sh"
    state = tmp_path / "readiness"

    def run(content):
        if content is None:
            state.unlink(missing_ok=True)
        else:
            state.write_text(content)
        env = dict(os.environ, MESHFLOW_STATE_DIR=str(tmp_path))
        return subprocess.run(["bash", str(probe)], env=env, capture_output=True, text=True).returncode

    import time
    now = int(time.time())
    assert run(f"ready {now} in sync\n") == 0
    assert run(f"not-ready {now} catching up: meshflow.events-0\n") == 1
    assert run(f"ready {now - 600} stale\n") == 1
    assert run(None) == 1


# --- 3. a lost volume ---------------------------------------------------------


def test_quorum_is_dynamic(rendered):
    """KIP-853: voters are (id, directory id); a reformatted node is a new directory."""
    props = server_properties(rendered)
    replicas = kafka(rendered)["spec"]["replicas"]
    assert "controller.quorum.voters" not in props
    assert props["controller.quorum.bootstrap.servers"].split(",") == [
        f"kafka-{i}.kafka-headless.meshflow.svc.cluster.local:9093" for i in range(replicas)
    ]
    env = env_of(kafka_container(rendered))
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" not in env
    # The image's own start-up formats with --cluster-id only, which a
    # dynamic quorum refuses: the chart's start script formats instead.
    assert kafka_container(rendered)["command"] == ["/bin/bash", "/opt/meshflow/kafka/start.sh"]


QUORUM_UP = 'echo "ClusterId: x"; echo "LeaderId: 1"; echo \'CurrentVoters: [{"id": 0, "directoryId": "old0"}]\''
QUORUM_DOWN = "echo 'timed out' >&2; exit 1"
STORAGE = 'if [[ "$*" == *random-uuid* ]]; then echo newdir; fi'


def format_call(calls: str) -> str:
    lines = [line for line in calls.splitlines() if line.startswith("kafka-storage.sh format")]
    assert len(lines) == 1, calls
    return lines[0]


def test_empty_volume_in_a_running_cluster_joins_as_an_observer(scripts_dir, tmp_path):
    done, calls = run_bash(
        scripts_dir, "format_storage", tmp_path,
        {"kafka-metadata-quorum.sh": QUORUM_UP, "kafka-storage.sh": STORAGE},
        {"KAFKA_NODE_ID": "0"},
    )
    assert done.returncode == 0, done.stderr
    call = format_call(calls)
    assert "--no-initial-controllers" in call
    assert "--standalone" not in call and "--initial-controllers " not in call
    assert "--cluster-id" in call


def test_first_node_bootstraps_only_when_no_peer_has_data(scripts_dir, tmp_path):
    code = "peer_answers() { return 1; }\nformat_storage"
    done, calls = run_bash(
        scripts_dir, code, tmp_path,
        {"kafka-metadata-quorum.sh": QUORUM_DOWN, "kafka-storage.sh": STORAGE},
        {"KAFKA_NODE_ID": "0", "KAFKA_BOOTSTRAP_WAIT_SECONDS": "2", "KAFKA_WAIT_STEP_SECONDS": "0.2"},
    )
    assert done.returncode == 0, done.stderr
    assert "--standalone" in format_call(calls)


@pytest.mark.parametrize(
    ("node", "peer"),
    [
        # A peer answering Kafka on 9093 has a formatted volume: the cluster
        # exists, and node 0 lost its volume.
        ("0", "return 0"),
        # Only node 0 ever bootstraps, peers or not.
        ("2", "return 1"),
    ],
    ids=["node-0-beside-a-peer-with-data", "other-node"],
)
def test_no_second_quorum_is_ever_bootstrapped(scripts_dir, tmp_path, node, peer):
    done, calls = run_bash(
        scripts_dir, f"peer_answers() {{ {peer}; }}\nformat_storage", tmp_path,
        {"kafka-metadata-quorum.sh": QUORUM_DOWN, "kafka-storage.sh": STORAGE},
        {"KAFKA_NODE_ID": node, "KAFKA_BOOTSTRAP_WAIT_SECONDS": "1", "KAFKA_WAIT_STEP_SECONDS": "0.2",
         "KAFKA_QUORUM_WAIT_LIMIT_SECONDS": "3"},
    )
    assert done.returncode != 0
    assert "kafka-storage.sh format" not in calls
    assert "no quorum after 3s" in done.stderr
    if node == "0":
        assert "lost its volume" in done.stderr


def test_formatted_volume_is_left_alone(scripts_dir, tmp_path):
    (tmp_path / "data" / "logs").mkdir(parents=True)
    (tmp_path / "data" / "logs" / "meta.properties").write_text("node.id=0\ndirectory.id=old0\n")
    done, calls = run_bash(scripts_dir, "format_storage", tmp_path,
                           {"kafka-metadata-quorum.sh": QUORUM_DOWN, "kafka-storage.sh": STORAGE})
    assert done.returncode == 0, done.stderr
    assert "kafka-storage.sh format" not in calls


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


# --- also: memory, scheduling, labels, schema -------------------------------


def test_kafka_memory_fits_its_limit(rendered):
    """Every JVM region the broker and the one readiness-check JVM can reach, inside the limit."""
    c = kafka_container(rendered)
    env = env_of(c)
    broker = jvm_flags(env["BROKER_HEAP_OPTS"] + " " + env["BROKER_JVM_PERFORMANCE_OPTS"])
    for flag in ("Xmx", "MaxDirectMemorySize", "MaxMetaspaceSize", "ReservedCodeCacheSize"):
        assert flag in broker, f"broker JVM without a {flag} bound"
    assert broker["Xms"] == broker["Xmx"]
    lib = kafka_scripts(rendered)["kafka-lib.sh"]
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
