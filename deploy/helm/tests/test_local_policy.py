"""The one-machine stack's door allows exactly whom the chart's Kafka policy allows.

deploy/local/mesh-policy.txt lists the service accounts HAProxy admits at the
local broker's Kafka port (deploy/local/stack turns them into its ACL and
deploy/local/mesh-pki issues their certificates); the chart's
AuthorizationPolicies admit principals on the brokers' client port 9092.
The two lists must be the same, so that trying the stack shows the policy
the cluster enforces.
"""

from __future__ import annotations

from pathlib import Path

from conftest import NAMESPACE
from test_mesh_policy import KAFKA, access_matrix, principal

LOCAL_POLICY = Path(__file__).resolve().parents[2] / "local" / "mesh-policy.txt"


def local_accounts() -> set[str]:
    lines = LOCAL_POLICY.read_text().splitlines()
    return {line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")}


def test_local_door_mirrors_the_chart_kafka_policy(default):
    chart = {p for (p, workload, port) in access_matrix(default) if workload == KAFKA and port == 9092}
    local = {principal(sa, NAMESPACE) for sa in local_accounts()}
    assert local == chart, f"only in deploy/local/mesh-policy.txt: {sorted(local - chart)}; only in the chart: {sorted(chart - local)}"
