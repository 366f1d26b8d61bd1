"""deploy/k8s: both overlays build, every resource validates offline, every topic is declared."""
from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from warden.cli.topics import plan
from warden.contract.topics import TOPICS, all_topic_names
from warden.runtime.runner import SERVICE_MODULES

from tests.unit.deploy._support import DEPLOY, allowed_env, kustomize, load_crd_schema, service_source_reads

K8S_VERSION = "1.32.0"  # the kubectl on the machine image; kubernetes-validate carries its schemas
OVERLAYS = ("dev", "prod")
CRDS = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): ("strimzi-kafkatopic-crd.yaml", "v1"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("prometheus-operator-servicemonitor-crd.yaml", "v1"),
    ("monitoring.coreos.com/v1", "PrometheusRule"): ("prometheus-operator-prometheusrule-crd.yaml", "v1"),
}
EXPECTED_TOPIC_REPLICAS = {"dev": 1, "prod": 3}


@pytest.fixture(scope="module", params=OVERLAYS)
def built(request) -> tuple[str, list[dict]]:
    return request.param, kustomize(request.param)


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def unknown_fields(obj, schema: dict, path: str = "") -> list[str]:
    """Fields the schema does not declare (what `kubectl apply --validate=strict` rejects)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(obj, dict) and "properties" in schema:
        for key, value in obj.items():
            if key in schema["properties"]:
                found += unknown_fields(value, schema["properties"][key], f"{path}.{key}")
            elif not schema.get("additionalProperties"):
                found.append(f"{path}.{key}")
    elif isinstance(obj, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in obj.items():
            found += unknown_fields(value, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(obj, list) and "items" in schema:
        for i, item in enumerate(obj):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def crd_errors(doc: dict) -> list[str]:
    filename, version = CRDS[(doc["apiVersion"], doc["kind"])]
    schema = load_crd_schema(filename, version)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    errors += [f"{field}: unknown field" for field in unknown_fields(
        {k: v for k, v in doc.items() if k != "metadata"}, schema)]
    return errors


def validate(doc: dict) -> list[str]:
    if (doc["apiVersion"], doc["kind"]) in CRDS:
        return crd_errors(doc)
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []


def test_every_resource_validates_offline(built):
    overlay, docs = built
    problems = {f"{d['kind']}/{d['metadata']['name']}": errs for d in docs if (errs := validate(d))}
    assert not problems, f"{overlay}: {problems}"
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler",
            "NetworkPolicy", "KafkaTopic", "ServiceMonitor", "PrometheusRule", "Namespace"} <= kinds


def test_validation_rejects_broken_resources(built):
    _, docs = built
    deployment = copy.deepcopy(of_kind(docs, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = []  # a typo
    assert validate(deployment)
    topic = copy.deepcopy(of_kind(docs, "KafkaTopic")[0])
    topic["spec"]["partitions"] = 0
    assert validate(topic)
    topic = copy.deepcopy(of_kind(docs, "KafkaTopic")[0])
    topic["spec"]["partition"] = 4  # unknown field
    assert validate(topic)
    monitor = copy.deepcopy(of_kind(docs, "ServiceMonitor")[0])
    monitor["spec"]["endpoints"][0]["interval"] = "15 seconds"
    assert validate(monitor)


def test_no_secret_is_committed(built):
    _, docs = built
    assert not of_kind(docs, "Secret"), "Secrets are created out of band, never in deploy/"
    for path in DEPLOY.rglob("*.yaml"):
        assert "kind: Secret\n" not in path.read_text(), f"{path} declares a Secret"


def test_every_topic_and_dlq_is_a_kafka_topic(built):
    overlay, docs = built
    topics = {d["spec"]["topicName"]: d["spec"] for d in of_kind(docs, "KafkaTopic")}
    assert set(topics) == set(TOPICS) | {f"{t.name}.dlq" for t in TOPICS.values() if t.consumers}
    assert set(topics) == set(all_topic_names())
    for entry in plan(1):
        spec = topics[entry["name"]]
        assert spec["partitions"] == entry["partitions"]
        assert spec["replicas"] == EXPECTED_TOPIC_REPLICAS[overlay]
        assert spec["config"]["min.insync.replicas"] <= spec["replicas"]
        for key, value in entry["configs"].items():
            assert str(spec["config"][key]) == value, f"{entry['name']}: {key}"
    for name, topic in TOPICS.items():
        assert (topics[name]["config"].get("cleanup.policy") == "compact") == topic.compacted


def test_deployments_are_probed_limited_and_locked_down(built):
    overlay, docs = built
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    assert set(deployments) == {f"warden-{name}" for name in SERVICE_MODULES}
    for name in SERVICE_MODULES:
        pod = deployments[f"warden-{name}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["service", name]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        writable = {m["mountPath"] for m in container["volumeMounts"]}
        assert container["workingDir"] in writable, "the working directory must be writable (tmp files)"
        assert pod["automountServiceAccountToken"] is False
        if overlay == "prod":
            assert container["image"].startswith("registry.example.com/warden:")


def test_services_get_only_variables_they_read(built):
    _, docs = built
    config_maps = {d["metadata"]["name"]: d for d in of_kind(docs, "ConfigMap")}
    for deployment in of_kind(docs, "Deployment"):
        name = deployment["spec"]["template"]["spec"]["containers"][0]["args"][1]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        names = {e["name"] for e in container.get("env", [])}
        for source in container.get("envFrom", []):
            names |= set(config_maps[source["configMapRef"]["name"]]["data"])
        unknown = names - allowed_env(name)
        assert not unknown, f"{name} is given {sorted(unknown)}, which it does not read"
        assert "DATABASE_URL" in names and "KAFKA_BOOTSTRAP_SERVERS" in names
        for var in names - allowed_env("intake"):
            assert service_source_reads(name, var) is not False, f"services/{name} does not read {var}"
        for env in container.get("env", []):
            if "value" in env:
                assert not any(s in env["name"] for s in ("TOKEN", "KEY", "DATABASE_URL", "PASSWORD")), \
                    f"{name}: {env['name']} must come from a Secret"


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_services_pdbs_hpa_and_monitor_select_the_pods(built):
    _, docs = built
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in of_kind(docs, "Deployment")}
    services = of_kind(docs, "Service")
    for name, labels in pods.items():
        assert any(_selects({"matchLabels": s["spec"]["selector"]}, labels) for s in services), f"no Service for {name}"
        assert any(_selects(p["spec"]["selector"], labels) for p in of_kind(docs, "PodDisruptionBudget")), \
            f"no PodDisruptionBudget for {name}"
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "warden-moderation" and "warden-moderation" in pods
    (scaled,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "warden-moderation"]
    assert "replicas" not in scaled["spec"], "each `kubectl apply` would reset what the autoscaler decided"
    partitions = TOPICS["moderation.reports.submitted"].partitions
    assert hpa["spec"]["maxReplicas"] <= partitions, "replicas beyond the partitions would sit idle"
    (monitor,) = of_kind(docs, "ServiceMonitor")
    monitored = [s for s in services if _selects(monitor["spec"]["selector"], s["metadata"]["labels"])]
    assert len(monitored) == len(SERVICE_MODULES)
    for svc in monitored:
        assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}
        assert svc["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "warden", "alerts match job=\"warden\""


def test_only_warden_services_reach_kafka_and_postgres(built):
    _, docs = built
    policies = {d["metadata"]["name"]: d for d in of_kind(docs, "NetworkPolicy")}
    service_labels = next(iter(of_kind(docs, "Deployment")))["spec"]["template"]["metadata"]["labels"]
    for name, port in (("warden-kafka-clients-only", 9092), ("warden-postgres-clients-only", 5432)):
        policy = policies[name]["spec"]
        assert policy["policyTypes"] == ["Ingress"]
        client_rules = [r for r in policy["ingress"] if any(p["port"] == port for p in r.get("ports", []))]
        assert client_rules, f"{name} opens no port {port}"
        for rule in client_rules:
            for peer in rule["from"]:
                assert "namespaceSelector" not in peer and "ipBlock" not in peer
                assert _selects(peer["podSelector"], service_labels)
                assert peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "service"


def test_the_prometheus_rule_carries_the_alert_rules(built):
    _, docs = built
    (rule,) = of_kind(docs, "PrometheusRule")
    groups = []
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        groups += yaml.safe_load(path.read_text())["groups"]
    assert rule["spec"]["groups"] == groups


def test_generated_files_are_up_to_date():
    import importlib.util
    spec = importlib.util.spec_from_file_location("k8s_generate", DEPLOY / "k8s" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for name, render in generate.GENERATED.items():
        path: Path = DEPLOY / "k8s" / "base" / name
        assert path.read_text() == render(), f"{path} is stale: run .venv/bin/python deploy/k8s/generate.py"
