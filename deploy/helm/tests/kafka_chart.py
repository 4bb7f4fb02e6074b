"""The Kafka part of the rendered chart, read for the Kafka operations tests,
and the chart's Kafka scripts run in bash against stand-in Kafka tools."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import pod_spec

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


# Stand-in bodies of kafka-metadata-quorum.sh and kafka-storage.sh.
QUORUM_UP = 'echo "ClusterId: x"; echo "LeaderId: 1"; echo \'CurrentVoters: [{"id": 0, "directoryId": "old0"}]\''
QUORUM_DOWN = "echo 'timed out' >&2; exit 1"
STORAGE = 'if [[ "$*" == *random-uuid* ]]; then echo newdir; fi'


def format_call(calls: str) -> str:
    lines = [line for line in calls.splitlines() if line.startswith("kafka-storage.sh format")]
    assert len(lines) == 1, calls
    return lines[0]


@pytest.fixture(scope="module")
def scripts_dir(tmp_path_factory, default) -> Path:
    """The chart's Kafka scripts written out, as the pod mounts them."""
    out = tmp_path_factory.mktemp("kafka-scripts")
    for name, text in kafka_scripts(default).items():
        (out / name).write_text(text)
    return out
