"""The chart's TOML files are accepted by the service binaries themselves.

The services refuse unknown keys and bad values with exit code 2 and a line
naming the key. When the binaries have been built (scripts/test builds them
before running scripts/test-k8s.sh), each one is started with the rendered
file for a few seconds: it must get past loading its config. The brokers
named in the file do not resolve here, which the services treat as Kafka
being unavailable, not as a config error.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

import rendering
from conftest import SERVICE_PORTS


def binary_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("MESHFLOW_BIN_DIR"):
        dirs.append(Path(os.environ["MESHFLOW_BIN_DIR"]))
    targets = []
    if os.environ.get("CARGO_TARGET_DIR"):
        targets.append(Path(os.environ["CARGO_TARGET_DIR"]))
    if shutil.which("cargo"):
        meta = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
            cwd=rendering.REPO_ROOT, capture_output=True, text=True,
        )
        if meta.returncode == 0:
            targets.append(Path(json.loads(meta.stdout)["target_directory"]))
    targets.append(Path.home() / ".cache" / "meshflow" / "target")
    dirs += [t / profile for t in targets for profile in ("debug", "release")]
    return dirs


def find_binary(name: str) -> Path | None:
    for d in binary_dirs():
        if (d / name).is_file() and os.access(d / name, os.X_OK):
            return d / name
    return None


def run_service(binary: Path, config_text: str, tmp_path: Path, extra_env: dict | None = None) -> tuple[int, str]:
    """Start a service for up to 3 s; its exit code (-9 if still running) and output."""
    config = tmp_path / "config.toml"
    config.write_text(config_text)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "MESHFLOW__HTTP__LISTEN": "127.0.0.1:0",
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [str(binary), "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, proc.stdout.read()


def built(component: str) -> Path:
    binary = find_binary(f"meshflow-{component}")
    if binary is None:
        pytest.skip(f"meshflow-{component} is not built (set MESHFLOW_BIN_DIR or build the workspace)")
    return binary


@pytest.mark.parametrize("component", sorted(SERVICE_PORTS))
def test_service_accepts_the_rendered_config(default, component, tmp_path):
    binary = built(component)
    text = default.get("ConfigMap", "meshflow-config")["data"][f"{component}.toml"]
    code, output = run_service(binary, text, tmp_path)
    assert code != 2, f"{binary} refused the chart's config:\n{output}"


@pytest.mark.parametrize("component", sorted(SERVICE_PORTS))
def test_a_bad_key_is_what_exit_code_2_means(component, tmp_path):
    binary = built(component)
    code, output = run_service(binary, f"[{component}]\nno_such_key = 1\n", tmp_path)
    assert code == 2, output


def test_the_exporter_accepts_the_rendered_probe_and_granularity(tmp_path):
    from test_external_kafka import render_with

    binary = built("exporter")
    docs = render_with(
        {"exporter": {"clusterGranularity": "topic", "probe": {
            "enabled": True, "topic": "ops.probe", "interval": "2s",
            "partitionsPerBroker": 1, "replicationFactor": 3,
        }}}
    )
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "meshflow-config"]
    code, output = run_service(binary, cm["data"]["exporter.toml"], tmp_path)
    assert code != 2, f"{binary} refused the chart's probe config:\n{output}"
    assert "probe starts" in output, output
