"""Kafka under day-2 operations: long uptimes, rolling restarts, lost volumes
(scaling and the rest: test_kafka_scaling.py).

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

import pytest
import yaml

from kafka_chart import (  # scripts_dir is a fixture
    QUORUM_DOWN,
    QUORUM_UP,
    STORAGE,
    env_of,
    format_call,
    jvm_flags,
    kafka,
    kafka_container,
    kafka_files,
    kafka_scripts,
    mount_of,
    quantity,
    run_bash,
    scripts_dir,  # noqa: F401
    server_properties,
    volume,
)


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


def test_logs_volume_holds_everything_kafka_writes(with_kafka):
    """A full emptyDir gets the pod evicted without grace: bound what goes there."""
    c = kafka_container(with_kafka)
    env = env_of(c)
    log_dir = "/opt/kafka/logs"
    assert env.get("LOG_DIR") == log_dir
    # kafka-server-start.sh passes -loggc, which kafka-run-class.sh turns
    # into 10 x 100 MB GC files unless KAFKA_GC_LOG_OPTS is set; start.sh
    # sets it for the broker from BROKER_GC_LOG_OPTS.
    assert env.get("BROKER_GC_LOG_OPTS"), "the image's default GC log is 10 x 100 MB"
    assert 'KAFKA_GC_LOG_OPTS="$BROKER_GC_LOG_OPTS"' in kafka_scripts(with_kafka)["start.sh"]
    gc_path, gc_bytes = gc_log_bound(env["BROKER_GC_LOG_OPTS"], log_dir)
    assert mount_of(c, gc_path) == "logs"

    # log4j2: the broker logs to the console only (kubectl logs, the
    # cluster's log collector); a file appender would grow without bound.
    assert env.get("BROKER_LOG4J_OPTS") == "-Dlog4j2.configurationFile=/opt/meshflow/kafka-config/log4j2.yaml"
    log4j = yaml.safe_load(kafka_files(with_kafka)["log4j2.yaml"])
    appenders = log4j["Configuration"]["Appenders"]
    assert set(appenders) == {"Console"}, appenders
    assert appenders["Console"]["target"] in ("SYSTEM_OUT", "SYSTEM_ERR")

    limit = quantity(volume(with_kafka, "logs")["emptyDir"]["sizeLimit"])
    # Room for the JVM's hs_err file and a margin over the bound.
    assert gc_bytes * 1.5 <= limit, (gc_bytes, limit)


def test_tools_do_not_write_into_the_volumes(with_kafka):
    """Kafka's tools (the scripts', and those run with kubectl exec): console only, no GC log."""
    env = env_of(kafka_container(with_kafka))
    assert env["KAFKA_LOG4J_OPTS"] == "-Dlog4j2.configurationFile=/opt/meshflow/kafka-config/tools-log4j2.yaml"
    assert "KAFKA_GC_LOG_OPTS" not in env
    assert quantity(jvm_flags(env["KAFKA_HEAP_OPTS"])["Xmx"]) <= 128 * 2**20
    files = kafka_files(with_kafka)
    tools = yaml.safe_load(files["tools-log4j2.yaml"])
    assert set(tools["Configuration"]["Appenders"]) == {"Console"}
    assert tools["Configuration"]["Appenders"]["Console"]["target"] == "SYSTEM_ERR"
    lib = kafka_scripts(with_kafka)["kafka-lib.sh"]
    assert "-Dlog4j2.configurationFile=/opt/meshflow/kafka-config/tools-log4j2.yaml" in lib


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


def test_kafka_probe_runs_no_jvm(with_kafka):
    """The kubelet's probe reads the state a single checker loop keeps up to date."""
    c = kafka_container(with_kafka)
    probe = c["readinessProbe"]
    assert probe["exec"]["command"] == ["/bin/bash", "/opt/meshflow/kafka/broker-ready.sh"]
    script = kafka_scripts(with_kafka)["broker-ready.sh"]
    assert "/opt/kafka/bin" not in script and "kafka-run-class" not in script
    start = kafka_scripts(with_kafka)["start.sh"]
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


def test_quorum_is_dynamic(with_kafka):
    """KIP-853: voters are (id, directory id); a reformatted node is a new directory."""
    props = server_properties(with_kafka)
    replicas = kafka(with_kafka)["spec"]["replicas"]
    assert "controller.quorum.voters" not in props
    assert props["controller.quorum.bootstrap.servers"].split(",") == [
        f"kafka-{i}.kafka-headless.meshflow.svc.cluster.local:9093" for i in range(replicas)
    ]
    env = env_of(kafka_container(with_kafka))
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" not in env
    # The image's own start-up formats with --cluster-id only, which a
    # dynamic quorum refuses: the chart's start script formats instead.
    assert kafka_container(with_kafka)["command"] == ["/bin/bash", "/opt/meshflow/kafka/start.sh"]


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
