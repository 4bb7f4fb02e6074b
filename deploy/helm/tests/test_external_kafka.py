"""Watching an existing Kafka (kafka.enabled=false): the chart installs no
broker, points the services at kafka.external, takes every credential from
a Secret, and opens egress to the external brokers only.

The scenarios are values/external-*.yaml; each is also linted, validated
against the schemas and checked by checkov with the others.
"""

from __future__ import annotations

import tomllib

import pytest

import rendering
from conftest import SERVICE_PORTS, Rendered, pod_labels, pod_spec, selects

HBONE = 15008
EXTERNAL = sorted(s for s in rendering.scenarios() if s.startswith("external-"))
CA_MOUNT = "/etc/meshflow-kafka/tls"


@pytest.fixture(scope="module", params=EXTERNAL)
def external(request) -> Rendered:
    return Rendered(request.param)


@pytest.fixture(scope="module")
def scram() -> Rendered:
    return Rendered("external-sasl-scram")


@pytest.fixture(scope="module")
def exporter_only() -> Rendered:
    return Rendered("external-exporter-only")


@pytest.fixture(scope="module")
def mtls() -> Rendered:
    return Rendered("external-mtls")


def ext_values(r: Rendered) -> dict:
    return r.values["kafka"]["external"]


def service_tomls(r: Rendered) -> dict[str, dict]:
    """component -> its parsed TOML (tomllib refuses anything that is not TOML)."""
    data = r.get("ConfigMap", "meshflow-config")["data"]
    return {name.removesuffix(".toml"): tomllib.loads(text) for name, text in data.items()}


def container(r: Rendered, component: str) -> dict:
    (c,) = pod_spec(r.get("Deployment", f"meshflow-{component}"))["containers"]
    return c


def mounted_file(r: Rendered, component: str, path: str) -> tuple[str, str]:
    """(Secret name, key) that a container sees at `path`, through its volume mounts."""
    d = r.get("Deployment", f"meshflow-{component}")
    volumes = {v["name"]: v for v in pod_spec(d)["volumes"]}
    for mount in container(r, component)["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        if not path.startswith(prefix):
            continue
        assert mount.get("readOnly") is True, mount
        rel = path[len(prefix):]
        volume = volumes[mount["name"]]
        sources = [s["secret"] for s in volume.get("projected", {}).get("sources", []) if "secret" in s]
        if "secret" in volume:
            sources.append(volume["secret"])
        for secret in sources:
            name = secret.get("secretName", secret.get("name"))
            items = secret.get("items")
            if items is None:
                return name, rel
            for item in items:
                if item["path"] == rel:
                    return name, item["key"]
    raise AssertionError(f"nothing mounted at {path} in meshflow-{component}")


# --- what is and is not rendered ----------------------------------------------


def test_no_kafka_is_installed(external):
    assert not external.of_kind("StatefulSet")
    assert not external.of_kind("PersistentVolumeClaim")
    names = {(d["kind"], d["metadata"]["name"]) for d in external.docs}
    for kind, name in [
        ("Service", "kafka-headless"),
        ("Service", "kafka"),
        ("ServiceAccount", "kafka"),
        ("PodDisruptionBudget", "kafka"),
        ("ConfigMap", "kafka-config"),
        ("ConfigMap", "kafka-scripts"),
        ("NetworkPolicy", "kafka"),
        ("AuthorizationPolicy", "kafka"),
    ]:
        assert (kind, name) not in names
    assert not [d for d in external.docs if d["metadata"]["name"].startswith("kafka")]


def test_exporter_only_renders_no_producer_or_consumer(exporter_only):
    deployments = {d["metadata"]["name"] for d in exporter_only.of_kind("Deployment")}
    assert deployments == {"meshflow-exporter"}
    assert exporter_only.workloads() == exporter_only.of_kind("Deployment")
    for doc in exporter_only.docs:
        name = doc["metadata"]["name"]
        assert name not in ("meshflow-producer", "meshflow-consumer"), f"{doc['kind']}/{name}"
    assert set(exporter_only.get("ConfigMap", "meshflow-config")["data"]) == {"exporter.toml"}
    # Monitoring, the rules and the dashboards stay.
    (monitor,) = [p for p in exporter_only.of_kind("PodMonitor") if p["metadata"]["name"] == "meshflow"]
    assert monitor["spec"]["selector"]["matchExpressions"][0]["values"] == ["meshflow-exporter"]
    assert exporter_only.of_kind("PrometheusRule")
    assert [c for c in exporter_only.of_kind("ConfigMap") if c["metadata"]["name"].startswith("meshflow-dashboard-")]


def test_consumer_without_producer(mtls):
    deployments = {d["metadata"]["name"] for d in mtls.of_kind("Deployment")}
    assert deployments == {"meshflow-consumer", "meshflow-exporter"}
    assert set(service_tomls(mtls)) == {"consumer", "exporter"}


def test_in_chart_kafka_admits_only_the_services_that_run():
    docs = render_with({"producer": {"enabled": False}})
    (policy,) = [d for d in docs if d["kind"] == "AuthorizationPolicy" and d["metadata"]["name"] == "kafka"]
    clients = policy["spec"]["rules"][0]["from"][0]["source"]["principals"]
    assert clients == [f"cluster.local/ns/meshflow/sa/meshflow-{c}" for c in ("consumer", "exporter")]
    assert "meshflow-producer" not in {d["metadata"]["name"] for d in docs}
    assert [d for d in docs if d["kind"] == "StatefulSet"]


# --- the services' configuration ----------------------------------------------


def test_every_service_uses_the_external_bootstrap(external):
    tomls = service_tomls(external)
    assert tomls
    for component, toml in tomls.items():
        assert toml["kafka"]["bootstrap_servers"] == ext_values(external)["bootstrapServers"], component
        assert "kafka-headless" not in external.get("ConfigMap", "meshflow-config")["data"][f"{component}.toml"]


@pytest.mark.parametrize(
    "tls, sasl, protocol",
    [(False, False, "plaintext"), (True, False, "ssl"), (False, True, "sasl_plaintext"), (True, True, "sasl_ssl")],
)
def test_security_protocol_follows_tls_and_sasl(tls, sasl, protocol):
    external = {
        "bootstrapServers": "k:9093",
        "tls": {"enabled": tls},
        "egress": [{"cidrs": ["10.0.0.0/8"], "ports": [9093]}],
    }
    if sasl:
        external["sasl"] = {"mechanism": "SCRAM-SHA-256", "username": "u", "passwordSecret": {"name": "s"}}
    docs = render_with({"kafka": {"enabled": False, "external": external}})
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "meshflow-config"]
    for component in SERVICE_PORTS:
        kafka = tomllib.loads(cm["data"][f"{component}.toml"])["kafka"]
        assert kafka["security_protocol"] == protocol
        assert ("ssl_ca_location" in kafka) is False, "no CA Secret given: the image's system CAs"


def test_scenarios_security_protocol(external):
    for toml in service_tomls(external).values():
        assert toml["kafka"]["security_protocol"] == "sasl_ssl"


def test_the_ca_path_is_where_the_ca_secret_is_mounted(external):
    ca = ext_values(external)["tls"]["ca"]
    for component, toml in service_tomls(external).items():
        path = toml["kafka"]["ssl_ca_location"]
        assert path.startswith(CA_MOUNT + "/")
        assert mounted_file(external, component, path) == (ca["secretName"], ca.get("key", "ca.crt"))


def test_mutual_tls_certificate_and_key_come_from_their_secret(mtls):
    client = ext_values(mtls)["tls"]["clientCert"]
    for component, toml in service_tomls(mtls).items():
        kafka = toml["kafka"]
        assert mounted_file(mtls, component, kafka["ssl_certificate_location"]) == (client["secretName"], "user.crt")
        assert mounted_file(mtls, component, kafka["ssl_key_location"]) == (client["secretName"], "user.key")


def test_no_client_certificate_without_one_configured(scram):
    for toml in service_tomls(scram).values():
        assert "ssl_certificate_location" not in toml["kafka"]
        assert "ssl_key_location" not in toml["kafka"]


def test_sasl_scram_settings(scram):
    for component, toml in service_tomls(scram).items():
        kafka = toml["kafka"]
        assert kafka["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kafka["sasl_username"] == "meshflow"
        assert "sasl_password" not in kafka
        env = {e["name"]: e for e in container(scram, component)["env"]}
        assert env["MESHFLOW__KAFKA__SASL_PASSWORD"] == {
            "name": "MESHFLOW__KAFKA__SASL_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "kafka-credentials", "key": "password"}},
        }
        assert "MESHFLOW__KAFKA__SASL_USERNAME" not in env


def test_username_from_a_secret(mtls):
    for component, toml in service_tomls(mtls).items():
        assert "sasl_username" not in toml["kafka"]
        env = {e["name"]: e for e in container(mtls, component)["env"]}
        assert env["MESHFLOW__KAFKA__SASL_USERNAME"]["valueFrom"] == {
            "secretKeyRef": {"name": "meshflow-kafka-login", "key": "username"}
        }
        assert env["MESHFLOW__KAFKA__SASL_PASSWORD"]["valueFrom"] == {
            "secretKeyRef": {"name": "meshflow-kafka-login", "key": "password"}
        }


def test_secrets_arrive_only_by_reference(external):
    """The password (and a user name taken from a Secret) reach the services
    through secretKeyRef only; no ConfigMap holds a credential, and the
    chart creates no Secret of its own."""
    for component in external.components:
        env = container(external, component)["env"]
        for e in env:
            if e["name"] in ("MESHFLOW__KAFKA__SASL_PASSWORD", "MESHFLOW__KAFKA__SASL_USERNAME") or "SECRET" in e["name"]:
                assert set(e) == {"name", "valueFrom"}, e
                assert set(e["valueFrom"]) == {"secretKeyRef"}, e
        mechanism = external.values["kafka"]["external"].get("sasl", {}).get("mechanism")
        names = {e["name"] for e in env}
        # A password for PLAIN and SCRAM; OAUTHBEARER has none.
        assert ("MESHFLOW__KAFKA__SASL_PASSWORD" in names) == (mechanism not in (None, "OAUTHBEARER")), names
    assert not external.of_kind("Secret")
    for cm in external.of_kind("ConfigMap"):
        for text in (cm.get("data") or {}).values():
            assert "sasl_password" not in text
            assert "password" not in text.lower() or cm["metadata"]["name"].startswith("meshflow-dashboard-")
            assert "client.secret" not in text
            assert "-----BEGIN" not in text


def test_the_password_value_never_reaches_a_configmap():
    """A password given where the chart would inline it is refused."""
    import helm_python as helm

    values = rendering.scenario_values("external-sasl-scram")
    values["kafka"]["external"]["librdkafka"] = {"sasl.oauthbearer.client.secret": "hunter2"}
    with helm.Chart.load(str(rendering.chart_path())) as chart:
        with pytest.raises(helm.HelmError) as refused:
            chart.render(values, name=rendering.RELEASE, namespace=rendering.NAMESPACE, is_install=True)
    assert "kafka.external.librdkafka" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_librdkafka_pass_through_table(exporter_only):
    wanted = ext_values(exporter_only)["librdkafka"]
    (toml,) = service_tomls(exporter_only).values()
    assert toml["kafka"]["librdkafka"] == wanted
    assert toml["kafka"]["sasl_mechanism"] == "OAUTHBEARER"
    assert toml["kafka"]["security_protocol"] == "sasl_ssl"
    assert "sasl_username" not in toml["kafka"]
    key_file = wanted["sasl.oauthbearer.assertion.private.key.file"]
    assert mounted_file(exporter_only, "exporter", key_file) == ("meshflow-exporter-oauth", "private-key.pem")


def test_pass_through_table_is_in_every_service():
    docs = render_with({
        "kafka": {"enabled": False, "external": {
            "bootstrapServers": "k:9092",
            "librdkafka": {"client.rack": "zone-a", "fetch.wait.max.ms": "100"},
            "egress": [{"cidrs": ["10.0.0.0/8"], "ports": [9092]}],
        }},
    })
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "meshflow-config"]
    for component in SERVICE_PORTS:
        toml = tomllib.loads(cm["data"][f"{component}.toml"])
        assert toml["kafka"]["librdkafka"] == {"client.rack": "zone-a", "fetch.wait.max.ms": "100"}
        assert toml["kafka"]["security_protocol"] == "plaintext"


def test_exporter_cluster_expectation(external):
    cluster = service_tomls(external)["exporter"]["exporter"]["cluster"]
    ext = ext_values(external)
    assert cluster == {"brokers": ext.get("brokers", 0), "min_insync_replicas": ext.get("minInsyncReplicas", 0)}


def test_unknown_cluster_is_zero(mtls):
    assert service_tomls(mtls)["exporter"]["exporter"]["cluster"] == {"brokers": 0, "min_insync_replicas": 0}


def test_exporter_discovery_renders_as_configured(scram, exporter_only):
    assert service_tomls(scram)["exporter"]["exporter"]["discovery"] == {
        "enabled": True,
        "allow_groups": "(payments|orders)-.*",
        "deny_groups": ".*-canary",
        "allow_topics": ".*",
        "deny_topics": "__.*|_schemas",
    }
    assert service_tomls(exporter_only)["exporter"]["exporter"]["discovery"] == {
        "enabled": True,
        "allow_groups": "payments-.*",
        "deny_groups": "",
        "allow_topics": "payments\\..*",
        "deny_topics": "__.*",
    }


def test_exporter_still_judges_one_group(external):
    groups = service_tomls(external)["exporter"]["exporter"]["groups"]
    assert groups == [external.values.get("consumer", {}).get("group", "meshflow")]


def test_discovery_off():
    docs = render_with({"exporter": {"discovery": {"enabled": False}}})
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "meshflow-config"]
    discovery = tomllib.loads(cm["data"]["exporter.toml"])["exporter"]["discovery"]
    assert discovery["enabled"] is False


def test_exporter_topics_render_as_a_list_with_their_bound_and_budget():
    docs = render_with(
        {"exporter": {"topics": ["orders", "^payments\\..*"], "maxTopics": 4, "memoryBudgetMib": 1200}}
    )
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "meshflow-config"]
    exporter = tomllib.loads(cm["data"]["exporter.toml"])["exporter"]
    assert exporter["topics"] == ["orders", "^payments\\..*"]
    assert (exporter["max_topics"], exporter["memory_budget_mib"]) == (4, 1200)


def test_default_exporter_config_judges_the_events_topic_alone(default):
    exporter = tomllib.loads(default.get("ConfigMap", "meshflow-config")["data"]["exporter.toml"])["exporter"]
    assert exporter["topics"] == ["meshflow.events"]
    assert "max_topics" not in exporter and "memory_budget_mib" not in exporter


def exporter_toml(values: dict) -> dict:
    docs = render_with(values)
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "meshflow-config"]
    return tomllib.loads(cm["data"]["exporter.toml"])["exporter"]


def test_the_probe_renders_only_when_enabled_with_every_key():
    probe = {"enabled": True, "topic": "ops.probe", "interval": "500ms", "partitionsPerBroker": 2, "replicationFactor": 3}
    assert exporter_toml({"exporter": {"probe": probe}})["probe"] == {
        "enabled": True,
        "topic": "ops.probe",
        "interval": "500ms",
        "partitions_per_broker": 2,
        "replication_factor": 3,
    }
    assert "probe" not in exporter_toml({})


def test_the_cluster_granularity_renders_in_the_cluster_table():
    assert exporter_toml({"exporter": {"clusterGranularity": "topic"}})["cluster"]["granularity"] == "topic"
    assert "granularity" not in exporter_toml({})["cluster"]
    assert "clusterGranularity" in refusal({"exporter": {"clusterGranularity": "broker"}})


def test_default_exporter_config_has_no_discovery_table(default):
    """The exporter's own defaults apply unless discovery is configured."""
    text = default.get("ConfigMap", "meshflow-config")["data"]["exporter.toml"]
    assert "[exporter.discovery]" not in text


# --- network policy -------------------------------------------------------------


def egress_rules(r: Rendered, workload: dict) -> list[dict]:
    labels = pod_labels(workload)
    return [
        rule
        for p in r.of_kind("NetworkPolicy")
        if selects(p["spec"]["podSelector"], labels)
        for rule in p["spec"].get("egress", [])
    ]


def allows(rules: list[dict], peer: dict, port: int) -> bool:
    return any(peer in rule["to"] and {"port": port, "protocol": "TCP"} in rule["ports"] for rule in rules)


def test_egress_to_the_external_kafka_is_allowed(external):
    for component in external.components:
        w = external.get("Deployment", f"meshflow-{component}")
        rules = egress_rules(external, w)
        for wanted in ext_values(external)["egress"]:
            peers = [{"ipBlock": {"cidr": c}} for c in wanted.get("cidrs", [])]
            if wanted.get("namespace"):
                peers.append({
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": wanted["namespace"]}},
                    "podSelector": {"matchLabels": wanted.get("podLabels", {})},
                })
            for peer in peers:
                for port in wanted["ports"]:
                    assert allows(rules, peer, port), (component, peer, port)


def test_egress_to_a_namespace_includes_hbone(mtls):
    w = mtls.get("Deployment", "meshflow-consumer")
    peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kafka"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kafka"}},
    }
    assert allows(egress_rules(mtls, w), peer, HBONE)


def test_external_egress_is_only_the_configured_peers(scram):
    w = scram.get("Deployment", "meshflow-producer")
    peers = {str(entry) for rule in egress_rules(scram, w) for entry in rule["to"]}
    dns = "{'namespaceSelector': {'matchLabels': {'kubernetes.io/metadata.name': 'kube-system'}}, 'podSelector': {'matchLabels': {'k8s-app': 'kube-dns'}}}"
    tracing = "{'namespaceSelector': {'matchLabels': {'kubernetes.io/metadata.name': 'istio-system'}}}"
    assert peers == {"{'ipBlock': {'cidr': '10.20.0.0/16'}}", dns, tracing}


def test_no_policy_selects_in_chart_kafka_pods(external):
    kafka_labels = {
        "app.kubernetes.io/name": "kafka",
        "app.kubernetes.io/instance": rendering.RELEASE,
        "app.kubernetes.io/component": "broker",
        "app.kubernetes.io/part-of": "meshflow",
    }
    for policy in external.of_kind("NetworkPolicy"):
        name = policy["metadata"]["name"]
        if name != "meshflow-default-deny":
            assert not selects(policy["spec"]["podSelector"], kafka_labels), name
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for entry in rule.get("from", []) + rule.get("to", []):
                if "namespaceSelector" in entry:
                    continue  # another namespace's pods, not this release's
                pods = entry.get("podSelector")
                if pods is not None:
                    assert not selects(pods, kafka_labels), (name, entry)
                    assert "meshflow.io/kafka-client" not in pods.get("matchLabels", {}), name
    for policy in external.of_kind("AuthorizationPolicy"):
        selector = (policy.get("spec") or {}).get("selector")
        if selector:
            assert not selects(selector, kafka_labels), policy["metadata"]["name"]


def test_policies_only_for_rendered_services(exporter_only):
    names = {p["metadata"]["name"] for p in exporter_only.of_kind("NetworkPolicy")}
    assert names == {"meshflow-default-deny", "meshflow-exporter"}
    names = {p["metadata"]["name"] for p in exporter_only.of_kind("AuthorizationPolicy")}
    assert names == {"default-deny", "meshflow-exporter"}


# --- refusals ---------------------------------------------------------------------


def render_with(values: dict) -> list[dict]:
    import yaml
    import helm_python as helm

    with helm.Chart.load(str(rendering.chart_path())) as chart:
        chart.validate_schema(values)
        text = chart.render(values, name=rendering.RELEASE, namespace=rendering.NAMESPACE, is_install=True)
    return [d for path, t in text.items() if not path.endswith("NOTES.txt") for d in yaml.safe_load_all(t) if d]


def refusal(values: dict) -> str:
    """The message that refuses these values, from the schema or a template."""
    import helm_python as helm

    with pytest.raises(helm.HelmError) as refused:
        render_with(values)
    return str(refused.value)


def test_disabled_without_bootstrap_is_refused():
    message = refusal({"kafka": {"enabled": False}})
    assert "kafka.external.bootstrapServers" in message


def test_bracketed_ipv6_bootstrap_is_accepted():
    docs = render_with({"kafka": {"enabled": False, "external": {
        "bootstrapServers": "[fd00::10]:9092,[fd00::11]:9092",
        "egress": [{"cidrs": ["fd00::/64"], "ports": [9092]}],
    }}})
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "meshflow-config"]
    toml = tomllib.loads(cm["data"]["exporter.toml"])
    assert toml["kafka"]["bootstrap_servers"] == "[fd00::10]:9092,[fd00::11]:9092"


@pytest.mark.parametrize(
    "external, key",
    [
        ({"bootstrapServers": "k:9093", "sasl": {"mechanism": "PLAIN", "username": "u"}},
         "kafka.external.sasl.passwordSecret.name"),
        ({"bootstrapServers": "k:9093", "sasl": {"mechanism": "PLAIN", "passwordSecret": {"name": "s"}}},
         "kafka.external.sasl.username"),
        ({"bootstrapServers": "k:9093", "tls": {"enabled": False, "ca": {"secretName": "ca"}}},
         "kafka.external.tls.enabled"),
        ({"bootstrapServers": "k:9093", "brokers": 1, "minInsyncReplicas": 2},
         "kafka.external.minInsyncReplicas"),
        ({"bootstrapServers": "k:9093", "librdkafka": {"bootstrap.servers": "x:1"}},
         "kafka.external.librdkafka"),
        ({"bootstrapServers": "k:9093", "librdkafka": {"ssl.key.password": "x"}},
         "kafka.external.librdkafka"),
        ({"bootstrapServers": "k:9093", "librdkafka": {"sasl.mechanism": "OAUTHBEARER"}},
         "kafka.external.librdkafka"),
        ({"bootstrapServers": "k:9093", "sasl": {"mechanism": "OAUTHBEARER", "passwordSecret": {"name": "s"}}},
         "kafka.external.sasl.mechanism"),
    ],
)
def test_inconsistent_external_settings_are_refused(external, key):
    values = {"kafka": {"enabled": False, "external": dict(external, egress=[{"cidrs": ["10.0.0.0/8"], "ports": [9093]}])}}
    assert key in refusal(values)


def test_network_policies_need_an_egress_rule():
    message = refusal({"kafka": {"enabled": False, "external": {"bootstrapServers": "k:9093"}}})
    assert "kafka.external.egress" in message
    docs = render_with({
        "kafka": {"enabled": False, "external": {"bootstrapServers": "k:9093"}},
        "networkPolicy": {"enabled": False},
    })
    assert not [d for d in docs if d["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize(
    "values",
    [
        {"kafka": {"external": {"sasl": {"mechanism": "GSSAPI"}}}},
        {"kafka": {"external": {"bootstrapServers": "kafka.example.net"}}},
        {"kafka": {"external": {"bootstrapServers": "a:9092;b:9092"}}},
        {"kafka": {"external": {"librdkafka": {"fetch.wait.max.ms": 100}}}},
        {"kafka": {"external": {"egress": [{"cidrs": ["10.0.0.0/8"]}]}}},
        {"kafka": {"external": {"egress": [{"ports": [9093]}]}}},
        {"kafka": {"external": {"tls": {"caSecret": "x"}}}},
        {"exporter": {"discovery": {"allow_groups": ".*"}}},
        {"producer": {"enabled": "no"}},
    ],
)
def test_values_schema_refuses_external_mistakes(values):
    import helm_python as helm

    with helm.Chart.load(str(rendering.chart_path())) as chart:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(values)


# --- the services accept what the chart renders -------------------------------------


@pytest.fixture(scope="module")
def pem_pair(tmp_path_factory) -> tuple[str, str]:
    """A throwaway self-signed certificate and its key, standing in for the
    files the Secrets would hold."""
    import shutil
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pem")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=meshflow-test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


@pytest.mark.parametrize("scenario", ["external-sasl-scram", "external-mtls"])
@pytest.mark.parametrize("component", sorted(SERVICE_PORTS))
def test_service_accepts_the_external_config(scenario, component, pem_pair, tmp_path):
    """Each built binary loads the rendered file with the environment the
    Deployment gives it (Secret values stood in for), and gets past its
    config checks: the brokers do not resolve here, which is not exit 2."""
    from test_service_config import built, run_service

    r = Rendered(scenario)
    if component not in r.components:
        pytest.skip(f"{scenario} runs no {component}")
    binary = built(component)
    cert, key = pem_pair
    text = r.get("ConfigMap", "meshflow-config")["data"][f"{component}.toml"]
    text = (text.replace(f"{CA_MOUNT}/ca.crt", cert)
            .replace(f"{CA_MOUNT}/client.crt", cert)
            .replace(f"{CA_MOUNT}/client.key", key))
    secrets = {
        e["name"]: "stand-in"
        for e in container(r, component)["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    code, output = run_service(binary, text, tmp_path, secrets)
    if code == 2 and "unknown field `discovery`" in output:
        pytest.skip(f"{binary} predates exporter.discovery: rebuild it")
    assert code != 2, f"{binary} refused the chart's config:\n{output}"


def test_two_further_clusters_render_as_exporter_clusters():
    """[[exporter.clusters]] from exporter.clusters, each with its own client
    settings, discovery and expectation; the home cluster named."""
    clusters = [
        {
            "name": "us",
            "bootstrapServers": "kafka.us.example:9093",
            "securityProtocol": "ssl",
            "sslCaLocation": "/etc/meshflow/us-ca.pem",
            "librdkafka": {"client.rack": "us-1a"},
            "brokers": 5,
            "minInsyncReplicas": 2,
            "granularity": "topic",
            "discovery": {"allowGroups": "orders-.*"},
        },
        {"name": "ap", "bootstrapServers": "kafka.ap.example:9092"},
    ]
    exporter = exporter_toml({"exporter": {"clusterName": "eu", "maxClusters": 3, "clusters": clusters}})
    assert exporter["cluster_name"] == "eu"
    assert exporter["max_clusters"] == 3
    us, ap = exporter["clusters"]
    assert us == {
        "name": "us",
        "kafka": {
            "bootstrap_servers": "kafka.us.example:9093",
            "security_protocol": "ssl",
            "ssl_ca_location": "/etc/meshflow/us-ca.pem",
            "librdkafka": {"client.rack": "us-1a"},
        },
        "cluster": {"brokers": 5, "min_insync_replicas": 2, "granularity": "topic"},
        "discovery": {
            "enabled": True,
            "allow_groups": "orders-.*",
            "deny_groups": "",
            "allow_topics": ".*",
            "deny_topics": "__.*",
        },
    }
    assert ap == {
        "name": "ap",
        "kafka": {"bootstrap_servers": "kafka.ap.example:9092", "security_protocol": "plaintext"},
        "cluster": {"brokers": 0, "min_insync_replicas": 0},
    }
    # The home cluster's own tables are untouched.
    assert "brokers" in exporter["cluster"]
    # Without the values: one cluster, named by the exporter's default.
    plain = exporter_toml({})
    assert "clusters" not in plain and "cluster_name" not in plain
    assert "name" in refusal({"exporter": {"clusters": [{"name": "a b", "bootstrapServers": "k:9092"}]}})
    assert "bootstrapServers" in refusal({"exporter": {"clusters": [{"name": "x"}]}})
