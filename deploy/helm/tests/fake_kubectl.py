#!/usr/bin/env python3
"""A stand-in for kubectl that plays a healthy meshflow install for verify.sh.

It answers exactly the kubectl calls verify.sh makes, from a small state
directory ($FAKE_KUBE_STATE): port-forwards serve exporter and producer
metrics whose counters grow with time, deleted pods come back after a
moment, and `exec` into a probe pod runs the probe against a local server
that answers (the allowed pod) or resets (the others). FAKE_KUBE_LOSS=1
makes the exporter count lost messages once a broker was deleted;
`rollout restart` of the Kafka StatefulSet takes ROLLOUT_FOR seconds, and
FAKE_KUBE_NOT_ENOUGH_REPLICAS=1, FAKE_KUBE_UNDER_MIN_ISR=1 and
FAKE_KUBE_UNDER_REPLICATED=1 make it go wrong: the producer counts
NOT_ENOUGH_REPLICAS errors, partitions fall below min.insync.replicas
while it runs, partitions stay under-replicated after it.

It exists so that test_verify_script.py can run verify.sh's whole control
flow without a cluster; it knows nothing of Kubernetes beyond that.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

STATE = Path(os.environ["FAKE_KUBE_STATE"])
RATE = 20  # messages per second
GONE_FOR = 2.5  # seconds a deleted pod stays away
ROLLOUT_FOR = 3.0  # seconds a rolling restart of Kafka takes


def load() -> dict:
    try:
        return json.loads((STATE / "state.json").read_text())
    except FileNotFoundError:
        return {"start": time.time(), "deleted": {}, "pids": [], "restarted": None}


def save(state: dict) -> None:
    tmp = STATE / "state.json.tmp"
    tmp.write_text(json.dumps(state))
    tmp.replace(STATE / "state.json")


def since_deleted(state: dict, prefix: str) -> float | None:
    times = [t for name, t in state["deleted"].items() if name.startswith(prefix)]
    return time.time() - max(times) if times else None


def metrics(kind: str) -> str:
    state = load()
    logged = int((time.time() - state["start"]) * RATE) + 1000
    consumer_gap = since_deleted(state, "meshflow-consumer")
    lag = 60 if consumer_gap is not None and consumer_gap < GONE_FOR else 4
    lost = 3 if os.environ.get("FAKE_KUBE_LOSS") and since_deleted(state, "kafka") is not None else 0
    if kind == "producer":
        restarted = state.get("restarted") is not None
        not_enough = 4 if restarted and os.environ.get("FAKE_KUBE_NOT_ENOUGH_REPLICAS") else 0
        return "\n".join([
            "# TYPE meshflow_producer_messages_total counter",
            f'meshflow_producer_messages_total{{topic="meshflow.events",outcome="acked"}} {logged}',
            'meshflow_producer_messages_total{topic="meshflow.events",outcome="failed"} 0',
            "# TYPE meshflow_producer_errors_total counter",
            'meshflow_producer_errors_total{topic="meshflow.events",reason="queue_full"} 1',
            f'meshflow_producer_errors_total{{topic="meshflow.events",reason="not_enough_replicas"}} {not_enough}',
        ]) + "\n"
    lines = [
        f'meshflow_messages_total{{topic="meshflow.events",stage="log",group=""}} {logged}',
        f'meshflow_messages_total{{topic="meshflow.events",stage="processed",group="meshflow"}} {logged - lag}',
        f'meshflow_messages_lost_total{{topic="meshflow.events",stage="log",group=""}} {lost}',
        'meshflow_messages_lost_total{topic="meshflow.events",stage="processed",group="meshflow"} 0',
        'meshflow_messages_duplicated_total{topic="meshflow.events",stage="processed",group="meshflow"} 2',
    ]
    lines += [
        f'meshflow_consumer_lag_messages{{group="meshflow",topic="meshflow.events",partition="{p}"}} {lag if p == 0 else 0}'
        for p in range(6)
    ]
    lines += [f'meshflow_partition_under_replicated{{topic="meshflow.events",partition="{p}"}} 0' for p in range(6)]
    return "# TYPE meshflow_messages_total counter\n" + "\n".join(lines) + "\n"


def port_forward(target: str) -> int:
    kind = "producer" if "producer" in target else "exporter"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = metrics(kind).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = load()
    state["pids"].append(os.getpid())
    save(state)
    remote = target.rsplit(":", 1)[1]
    print(f"Forwarding from 127.0.0.1:{server.server_address[1]} -> {remote}", flush=True)
    server.serve_forever()
    return 0


def kafka_stand_in(answer: bool) -> int:
    sock = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            conn, _ = sock.accept()
            if answer:
                request = conn.recv(64)
                conn.sendall(struct.pack(">i", 6) + request[8:12] + b"\x00\x00")
                time.sleep(0.2)
            else:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock.getsockname()[1]


def pod(state: dict, name: str, jsonpath: str) -> int:
    gone = since_deleted(state, name)
    if gone is not None and (gone < GONE_FOR or name.startswith("meshflow-consumer")):
        print(f'Error from server (NotFound): pods "{name}" not found', file=sys.stderr)
        return 1
    uid = f"uid-{name}-{'new' if gone is not None else 'old'}"
    print(uid + (" True" if "conditions" in jsonpath else ""), end="")
    return 0


def main(argv: list[str]) -> int:
    args = argv[1:]
    if args[:1] == ["-n"]:
        args = args[2:]
    jsonpath = next((a.split("=", 1)[1] for a in args if a.startswith("jsonpath=")), "")
    if "-o" in args:
        jsonpath = args[args.index("-o") + 1].removeprefix("jsonpath=")
    state = load()
    save(state)
    verb = args[0]
    if verb == "config":
        print("fake-cluster")
    elif verb == "rollout" and args[1] == "restart":
        state["restarted"] = time.time()
        save(state)
    elif verb == "rollout" and args[1] == "status" and state.get("restarted"):
        if time.time() - state["restarted"] < ROLLOUT_FOR:
            print('Waiting for 1 pods to be ready...', file=sys.stderr)
            return 1
    elif verb in ("rollout", "wait", "apply"):
        if verb == "apply":
            sys.stdin.read()
    elif verb == "port-forward":
        return port_forward(args[1] + args[2])
    elif verb == "delete":
        for a in args[1:]:
            if not a.startswith("-") and a != "pod":
                state["deleted"][a.split("/")[-1]] = time.time()
        save(state)
    elif verb == "create":
        print("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: fake")
    elif verb == "get":
        kind, name = args[1], args[2] if len(args) > 2 and not args[2].startswith("-") else ""
        if kind == "namespace":
            print("ambient", end="")
        elif kind == "configmap":
            print('[exporter]\ngrace = "1s"\nsla = "1s"\n', end="")
        elif kind == "statefulset":
            print("3" if "replicas" in jsonpath else "apache/kafka:4.1.1", end="")
        elif kind == "pods":
            print("meshflow-consumer-7d9f-abcde", end="")
        elif kind == "deployment":
            gone = since_deleted(state, "meshflow-consumer")
            print("1/2" if gone is not None and gone < GONE_FOR else "2/2", end="")
        elif kind == "pod":
            return pod(state, name, jsonpath)
    elif verb == "exec":
        command = args[args.index("--") + 1:]
        if "--under-min-isr-partitions" in command:
            restarting = state.get("restarted") and time.time() - state["restarted"] < ROLLOUT_FOR
            if restarting and os.environ.get("FAKE_KUBE_UNDER_MIN_ISR"):
                print("\tTopic: meshflow.events\tPartition: 4\tLeader: 0\tReplicas: 0,1,2\tIsr: 0")
            return 0
        if "--under-replicated-partitions" in command:
            if os.environ.get("FAKE_KUBE_UNDER_REPLICATED"):
                print("\tTopic: meshflow.events\tPartition: 1\tLeader: 0\tReplicas: 0,1,2\tIsr: 0,1")
                print("\tTopic: meshflow.receipts\tPartition: 2\tLeader: 1\tReplicas: 1,2,0\tIsr: 1,0")
            return 0
        if "kafka-topics.sh" in " ".join(command):
            print("Topic: meshflow.events\tTopicId: x\tPartitionCount: 6\tReplicationFactor: 3")
            print("\tTopic: meshflow.events\tPartition: 0\tLeader: 2\tReplicas: 2,0,1\tIsr: 2,0,1")
            return 0
        port = kafka_stand_in(answer=args[1] == "mf-verify-allowed")
        command[-2] = f"127.0.0.1:{port}"
        return subprocess.run(command).returncode
    else:
        print(f"fake kubectl: unexpected call {args}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
