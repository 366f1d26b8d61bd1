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
from warden.runtime.settings import Settings, trusted_proxy_list

from tests.unit.deploy._support import (DEPLOY, allowed_env, expected_acls, kustomize, load_crd_schema,
                                       service_source_reads)

K8S_VERSION = "1.32.0"  # the kubectl on the machine image; kubernetes-validate carries its schemas
OVERLAYS = ("dev", "prod")
CRDS = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): ("strimzi-kafkatopic-crd.yaml", "v1"),
    ("kafka.strimzi.io/v1", "KafkaUser"): ("strimzi-kafkauser-crd.yaml", "v1"),
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
            "NetworkPolicy", "KafkaTopic", "KafkaUser", "ServiceMonitor", "PrometheusRule", "Namespace"} <= kinds


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
    user = copy.deepcopy(of_kind(docs, "KafkaUser")[0])
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Publish"]
    assert validate(user)
    user = copy.deepcopy(of_kind(docs, "KafkaUser")[0])
    user["spec"]["authentication"]["type"] = "scram-sha-256"  # Strimzi offers only SCRAM-SHA-512
    assert validate(user)


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
                assert not any(s in env["name"] for s in ("TOKEN", "KEY", "DATABASE_URL", "PASSWORD", "SECRET")), \
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
                component = peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
                if port == 5432 and component == "database-admin":  # the job creating the services' roles
                    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/part-of"] == "warden"
                    continue
                assert _selects(peer["podSelector"], service_labels)
                assert component == "service"


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


# --- Kafka users and ACLs ------------------------------------------------------------------------

def test_kafka_users_follow_the_single_writer_map(built):
    _, docs = built
    users = {d["metadata"]["name"]: d for d in of_kind(docs, "KafkaUser")}
    expected = expected_acls()
    assert set(users) == set(expected)
    assert {"intake", "legal-review", "disclosure", "moderation", "platform", "operators",
            "authority-gateway"} <= set(users)
    for name, user in users.items():
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "warden"
        assert user["spec"]["authentication"]["type"] in ("scram-sha-512", "tls")
        assert user["spec"]["authorization"]["type"] == "simple"
        found: dict[tuple[str, str], set[str]] = {}
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl.get("type", "allow") == "allow" and acl["resource"].get("patternType") == "literal"
            key = (acl["resource"]["type"], acl["resource"]["name"])
            assert key not in found, f"{name}: {key} twice"
            found[key] = set(acl["operations"])
        assert found == expected[name], name
    # single writer: every topic is writable only by the principals the registry names
    for topic in TOPICS.values():
        writable_by = {n for n, u in users.items() for acl in u["spec"]["authorization"]["acls"]
                       if acl["resource"]["name"] == topic.name and "Write" in acl["operations"]}
        assert writable_by == {p for p, acls in expected.items() if "Write" in acls.get(("topic", topic.name), ())}
        also = 1 if topic.name == "legal.requests.submitted" else 0  # intake, for the authority API
        assert len(writable_by) == len([w for w in topic.producer.split(",")]) + also, topic.name


def test_services_authenticate_as_their_kafka_user_over_tls(built):
    _, docs = built
    config = {d["metadata"]["name"]: d for d in of_kind(docs, "ConfigMap")}
    users = {d["metadata"]["name"] for d in of_kind(docs, "KafkaUser")}
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        service = container["args"][1]
        env = {e["name"]: e for e in container["env"]}
        shared = {}
        for source in container["envFrom"]:
            shared.update(config[source["configMapRef"]["name"]]["data"])
        assert shared["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert shared["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["KAFKA_SASL_USERNAME"]["value"] == service and service in users
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": service, "key": "password"}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        ca_dir, ca_file = shared["KAFKA_SSL_CAFILE"].rsplit("/", 1)
        volume = next(v for v in pod["volumes"] if v["name"] == mounts[ca_dir])
        assert volume["secret"]["secretName"] == "warden-cluster-ca-cert"
        assert {"key": "ca.crt", "path": ca_file} in volume["secret"]["items"]


def test_each_service_connects_to_postgres_as_its_own_role(built):
    from warden.runtime.roles import SERVICE_SCHEMAS, url_variable

    _, docs = built
    (job,) = [d for d in of_kind(docs, "Job") if d["metadata"]["name"] == "warden-database-roles"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["database", "roles"]
    job_env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert job_env["DATABASE_URL"] == {"name": "warden-database-admin", "key": "database-url"}
    secrets = set()
    for deployment in of_kind(docs, "Deployment"):
        (svc,) = deployment["spec"]["template"]["spec"]["containers"]
        name = svc["args"][1]
        ref = next(e for e in svc["env"] if e["name"] == "DATABASE_URL")["valueFrom"]["secretKeyRef"]
        assert ref == job_env[url_variable(name)], f"{name} does not use the role the job creates"
        assert ref["name"] != "warden-database-admin"
        secrets.add(ref["name"])
    assert len(secrets) == len(SERVICE_SCHEMAS)
    labels = job["spec"]["template"]["metadata"]["labels"]
    postgres = next(d for d in of_kind(docs, "NetworkPolicy") if d["metadata"]["name"] == "warden-postgres-clients-only")
    assert any(_selects(peer["podSelector"], labels) for rule in postgres["spec"]["ingress"] for peer in rule["from"])


# --- what the cluster's Prometheus selects ------------------------------------------------------

# kube-prometheus-stack's Prometheus as its chart installs it by default (release name
# kube-prometheus-stack): it takes only ServiceMonitors and PrometheusRules with its release label.
KUBE_PROMETHEUS_STACK = {"serviceMonitorSelector": {"matchLabels": {"release": "kube-prometheus-stack"}},
                         "ruleSelector": {"matchLabels": {"release": "kube-prometheus-stack"}}}


def selector_labels() -> dict[str, str]:
    """The labels deploy/k8s/components/monitoring-selector adds (where an operator sets them)."""
    component = yaml.safe_load((DEPLOY / "k8s" / "components" / "monitoring-selector" / "kustomization.yaml").read_text())
    labels = {}
    for patch in component["patches"]:
        for op in yaml.safe_load(patch["patch"]):
            assert op["op"] == "add" and op["path"].startswith("/metadata/labels/")
            labels[op["path"].removeprefix("/metadata/labels/").replace("~1", "/")] = op["value"]
    return labels


def test_the_default_kube_prometheus_stack_selects_the_monitor_and_the_rules(built):
    overlay, docs = built
    (monitor,) = of_kind(docs, "ServiceMonitor")
    (rule,) = of_kind(docs, "PrometheusRule")
    assert _selects(KUBE_PROMETHEUS_STACK["serviceMonitorSelector"], monitor["metadata"]["labels"]), overlay
    assert _selects(KUBE_PROMETHEUS_STACK["ruleSelector"], rule["metadata"]["labels"]), overlay
    for doc in (monitor, rule):
        assert selector_labels().items() <= doc["metadata"]["labels"].items()
    other = {"matchLabels": {"release": "monitoring"}}  # another release name: set it in the component
    assert not _selects(other, monitor["metadata"]["labels"])


def test_a_console_sign_in_holds_on_every_replica(built):
    """The consoles' cookie key comes from one Secret for all replicas of a service (legal review runs
    two): a session signed by one pod is valid on the next. Their cookies are Secure behind the ingress."""
    overlay, docs = built
    deployments = {d["spec"]["template"]["spec"]["containers"][0]["args"][1]: d for d in of_kind(docs, "Deployment")}
    if overlay == "prod":
        assert deployments["legal-review"]["spec"]["replicas"] >= 2
    for name in ("legal-review", "moderation"):
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["WARDEN_CONSOLE_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": f"warden-{name}",
                                                                           "key": "console-secret"}
        assert env["WARDEN_CONSOLE_SECURE_COOKIE"]["value"] == "1"
        assert trusted_proxy_list(Settings(trusted_proxies=env["WARDEN_TRUSTED_PROXIES"]["value"]).trusted_proxies)
    for name in ("intake", "disclosure"):  # no console, no console secret
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert "WARDEN_CONSOLE_SECRET" not in {e["name"] for e in container["env"]}


def test_the_migrate_job_applies_each_schema_as_its_service_and_the_services_wait_for_it(built):
    from warden.runtime.roles import SERVICE_SCHEMAS, url_variable

    _, docs = built
    (job,) = [d for d in of_kind(docs, "Job") if d["metadata"]["name"] == "warden-migrate"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    job_env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert "DATABASE_URL" not in job_env, "migrations run as each service's role, never as the administrator"
    for deployment in of_kind(docs, "Deployment"):
        (svc,) = deployment["spec"]["template"]["spec"]["containers"]
        name = svc["args"][1]
        ref = next(e for e in svc["env"] if e["name"] == "DATABASE_URL")["valueFrom"]["secretKeyRef"]
        assert job_env[url_variable(name)] == ref, f"{name}'s schema would be migrated as another role"
    assert len(job_env) == len(SERVICE_SCHEMAS)
    assert job["spec"]["ttlSecondsAfterFinished"] > 0, "a finished Job must go, or the next release cannot apply"
    config = {d["metadata"]["name"]: d for d in of_kind(docs, "ConfigMap")}
    shared = [c["data"] for name, c in config.items() if name.startswith("warden-config")]
    assert shared and all(data.get("WARDEN_MIGRATE_ON_START") == "false" for data in shared)
    labels = job["spec"]["template"]["metadata"]["labels"]
    postgres = next(d for d in of_kind(docs, "NetworkPolicy") if d["metadata"]["name"] == "warden-postgres-clients-only")
    assert any(_selects(peer["podSelector"], labels) for rule in postgres["spec"]["ingress"] for peer in rule["from"])
