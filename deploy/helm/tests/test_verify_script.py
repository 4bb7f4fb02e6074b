"""deploy/helm/verify.sh, as far as it can be exercised without a cluster.

Its Kafka probe runs here against local stand-in servers (one that answers
an ApiVersions request, one that resets, one that never answers), its metric
summing against a sample exposition, and its whole flow against
fake_kubectl.py, which plays a healthy install (and, once, one that loses
messages); both scripts pass shellcheck.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import rendering

VERIFY = rendering.TESTS_DIR.parent / "verify.sh"
VERIFY_LIB = rendering.TESTS_DIR.parent / "verify-lib.sh"
TEST_SCRIPT = rendering.REPO_ROOT / "scripts" / "test-k8s.sh"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"


def shell_definition(name: str) -> str:
    """The text of a function or single-quoted variable defined in verify.sh
    or the helpers it sources."""
    text = VERIFY.read_text() + "\n" + VERIFY_LIB.read_text()
    if match := re.search(rf"^{name}='\n(.*?)\n'$", text, re.S | re.M):
        return match.group(1)
    match = re.search(rf"^{name}\(\) \{{\n.*?\n\}}$", text, re.S | re.M)
    assert match, name
    return match.group(0)


def test_scripts_pass_shellcheck(tmp_path):
    probe = tmp_path / "probe.sh"
    probe.write_text("#!/bin/bash\n" + shell_definition("probe_script") + "\n")
    kafka = rendering.CHART_DIR / "files" / "kafka"
    scripts = [str(kafka / name) for name in ("kafka-lib.sh", "start.sh", "broker-ready.sh")]
    subprocess.run([SHELLCHECK, "-x", "-P", str(kafka), str(VERIFY), str(TEST_SCRIPT), str(probe), *scripts], check=True)


class StandIn:
    """A TCP server on 127.0.0.1 that answers, resets or ignores each client."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            conn, _ = self.sock.accept()
            if self.mode == "answer":
                request = conn.recv(64)
                correlation = request[8:12]
                conn.sendall(struct.pack(">i", 6) + correlation + b"\x00\x00")
                time.sleep(0.2)
                conn.close()
            elif self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:
                time.sleep(5)
                conn.close()


def probe(port: int, bound: int = 1) -> list[str]:
    done = subprocess.run(
        ["bash", "-c", shell_definition("probe_script"), "probe", f"127.0.0.1:{port}", str(bound)],
        capture_output=True, text=True, timeout=30,
    )
    return done.stdout.split()


@pytest.mark.parametrize(
    ("mode", "outcome", "how"),
    [("answer", "answered", "response"), ("reset", "no-answer", "closed-by-peer"), ("hang", "no-answer", "timeout")],
)
def test_kafka_probe(mode, outcome, how):
    got = probe(StandIn(mode).port)
    assert (got[0], got[2]) == (outcome, how)
    assert int(got[1]) < 3000


def test_kafka_probe_connection_refused():
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    got = probe(port)
    assert (got[0], got[2]) == ("no-answer", "connect-refused")


def test_metric_sum():
    exposition = "\n".join([
        "# TYPE meshflow_messages_total counter",
        'meshflow_messages_total{topic="meshflow.events",stage="log",group=""} 120',
        'meshflow_messages_total{topic="meshflow.events",stage="processed",group="meshflow"} 100',
        'meshflow_messages_total{topic="other",stage="processed",group="meshflow"} 7',
        'meshflow_messages_lost_total{topic="meshflow.events",stage="log",group=""} 0',
        "meshflow_brokers 3",
    ])
    script = shell_definition("sum") + '\nsum "$1" "${@:2}"'

    def total(*args):
        out = subprocess.run(["bash", "-c", script, "sum", exposition, *args], capture_output=True, text=True)
        return int(out.stdout)

    assert total("meshflow_messages_total") == 227
    assert total("meshflow_messages_total", 'stage="processed"') == 107
    assert total("meshflow_messages_total", 'stage="processed"', 'topic="meshflow.events"') == 100
    assert total("meshflow_messages_lost_total") == 0
    assert total("meshflow_brokers") == 3


def run_verify(tmp_path, *args, loss=False, faults=()):
    """verify.sh against fake_kubectl.py: a simulated healthy install.

    faults: FAKE_KUBE_* switches that make the simulated install misbehave.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(rendering.TESTS_DIR / "fake_kubectl.py")
    state = tmp_path / "state"
    state.mkdir()
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_KUBE_STATE=str(state))
    if loss:
        env["FAKE_KUBE_LOSS"] = "1"
    for fault in faults:
        env[fault] = "1"
    done = subprocess.run(
        ["bash", str(VERIFY), "--settle", "1", "--sample", "2", "--bound", "2", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )
    pids = json.loads((state / "state.json").read_text())["pids"]
    return done, pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_verify_passes_on_a_healthy_install(tmp_path):
    done, pids = run_verify(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "6 passed, 0 failed"
    assert any("PASS  broker failover (kafka-2)" in line and "lost 0" in line for line in lines)
    assert any("PASS  consumer failover" in line and "lag peak 60 messages" in line for line in lines)
    (rolling,) = [line for line in lines if "PASS  kafka rolling restart" in line]
    for says in ("lost 0", "NOT_ENOUGH_REPLICAS 0", "under min ISR during the rollout 0", "under-replicated partitions now 0"):
        assert says in rolling
    assert any("isolation: mf-verify-wrong-sa refused" in line and "closed-by-peer" in line for line in lines)
    # The port-forwards it started are gone with it.
    assert pids and not any(alive(p) for p in pids)


def test_verify_fails_when_the_exporter_counts_a_loss(tmp_path):
    done, _ = run_verify(tmp_path, "--only", "broker", loss=True)
    assert done.returncode == 1
    assert "FAIL  broker failover (kafka-2)" in done.stdout
    assert "lost 3" in done.stdout
    assert done.stdout.splitlines()[-1] == "0 passed, 1 failed"


FAULTS = {
    "FAKE_KUBE_NOT_ENOUGH_REPLICAS": "NOT_ENOUGH_REPLICAS 4",
    "FAKE_KUBE_UNDER_MIN_ISR": "under min ISR during the rollout 1",
    "FAKE_KUBE_UNDER_REPLICATED": "under-replicated partitions now 2",
}


def test_verify_rolling_restart_fails_on_each_replication_problem(tmp_path):
    """One simulated install per fault, run side by side (each mostly waits)."""
    runs = {}
    for fault in FAULTS:
        (tmp_path / fault).mkdir()
    with ThreadPoolExecutor(len(FAULTS)) as pool:
        for fault in FAULTS:
            runs[fault] = pool.submit(run_verify, tmp_path / fault, "--only", "rolling", faults=(fault,))
    for fault, says in FAULTS.items():
        done, _ = runs[fault].result()
        assert done.returncode == 1, (fault, done.stdout + done.stderr)
        (line,) = [line for line in done.stdout.splitlines() if "FAIL  kafka rolling restart" in line]
        assert says in line, (fault, line)
        assert done.stdout.splitlines()[-1] == "0 passed, 1 failed"
