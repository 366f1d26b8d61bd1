"""deploy/compose/docker-compose.yml: valid Compose, the services configured only by what they read."""
from __future__ import annotations

import copy
import json
import re

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from warden.cli.main import cli
from warden.contract.topics import TOPICS
from warden.runtime.runner import SERVICE_MODULES

from tests.unit.deploy._support import (DEPLOY, SCHEMAS, SERVICE_VARS, allowed_env, expected_acls,
                                       service_source_reads)

COMPOSE_DIR = DEPLOY / "compose"
SECRET_VARS = {"DATABASE_URL", "WARDEN_REVIEW_TOKENS", "WARDEN_DISCLOSURE_PRIVATE_KEY", "WARDEN_MODERATION_TOKENS",
               "KAFKA_SASL_PASSWORD", "WARDEN_DECISION_PRIVATE_KEY", "WARDEN_CONSOLE_SECRET"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def warden_services(compose: dict) -> dict[str, dict]:
    """Compose services that run a Warden service (`service NAME`)."""
    return {name: svc for name, svc in compose["services"].items()
            if svc.get("command", [None])[0] == "service"}


def test_compose_file_validates_against_the_compose_specification(compose, validator):
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_malformed_compose_file(compose, validator):
    broken = copy.deepcopy(compose)
    broken["services"]["intake"]["depends_on"]["postgres"]["condition"] = "service_started_maybe"
    broken["services"]["kafka"]["healthcheck"]["retries"] = "twelve"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_service_runs_from_the_image_with_health_checks(compose):
    services = warden_services(compose)
    assert set(services) == set(SERVICE_MODULES), "compose must run exactly the services the runner knows"
    for name, svc in services.items():
        assert svc["command"] == ["service", name]
        assert svc["image"] == compose["services"]["kafka-topics"]["image"]
        assert "/readyz" in " ".join(svc["healthcheck"]["test"])
        port = svc["environment"]["WARDEN_HTTP_PORT"]
        assert f":{port}/readyz" in " ".join(svc["healthcheck"]["test"])
        assert any(str(p).endswith(f":{port}") for p in svc["ports"])
        assert svc["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
    for name in ("kafka", "postgres", "prometheus", "alertmanager", "grafana"):
        assert "healthcheck" in compose["services"][name], f"{name} has no health check"


def test_services_are_configured_only_by_variables_they_read(compose):
    for name, svc in warden_services(compose).items():
        names = set(svc["environment"])
        unknown = names - allowed_env(name)
        assert not unknown, f"{name} is given {sorted(unknown)}, which neither Settings nor {name} reads"
        for var in names & SERVICE_VARS[name]:
            reads = service_source_reads(name, var)
            assert reads is not False, f"services/{name} does not read {var}, yet compose sets it"


def test_the_env_check_refuses_what_no_service_reads():
    assert "WARDEN_NOT_A_SETTING" not in allowed_env("intake")
    assert "WARDEN_REVIEW_TOKENS" not in allowed_env("intake"), "a service must not get another's secrets"
    assert {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "WARDEN_HTTP_PORT"} <= allowed_env("intake")


def test_secrets_come_from_the_environment_never_from_the_file(compose):
    for name, svc in warden_services(compose).items():
        for var, value in svc["environment"].items():
            if var in SECRET_VARS:
                assert re.search(r"\$\{[A-Z_]+:\?", str(value)), f"{name}.{var} must be `${{VAR:?...}}`, not a literal"
    example = (COMPOSE_DIR / ".env.example").read_text()
    for line in example.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert value == "", f".env.example must not carry a value for {key}"


def test_each_console_has_its_own_cookie_key_from_the_environment(compose):
    services = warden_services(compose)
    keys = {name: _secret_reference(services[name]["environment"]["WARDEN_CONSOLE_SECRET"])
            for name in ("legal-review", "moderation")}
    assert len(set(keys.values())) == 2, "the consoles share a cookie key"
    example = (COMPOSE_DIR / ".env.example").read_text()
    assert all(f"\n{key}=\n" in example for key in keys.values())
    for name in ("intake", "disclosure"):
        assert "WARDEN_CONSOLE_SECRET" not in services[name]["environment"]
    for name in ("legal-review", "moderation"):  # forwarded headers believed from the configured proxy only
        assert services[name]["environment"]["WARDEN_TRUSTED_PROXIES"] == "${WARDEN_TRUSTED_PROXIES:-}"
    assert "\nWARDEN_TRUSTED_PROXIES=\n" in example


def test_the_topic_job_creates_every_topic_and_dlq_with_its_settings(compose):
    job = compose["services"]["kafka-topics"]
    assert job["command"][:2] == ["topics", "create"]
    assert job["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert job["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    # what the job would create, without a broker: the same options given to `topics plan`
    result = CliRunner().invoke(cli, ["topics", "plan", *job["command"][2:]])
    assert result.exit_code == 0, result.output
    planned = {entry["name"]: entry for entry in map(json.loads, result.output.splitlines())}
    expected = set(TOPICS) | {f"{t.name}.dlq" for t in TOPICS.values() if t.consumers}
    assert set(planned) == expected
    for name, topic in TOPICS.items():
        entry = planned[name]
        assert entry["partitions"] == topic.partitions
        assert entry["configs"]["retention.ms"] == str(topic.retention_ms)
        assert (entry["configs"].get("cleanup.policy") == "compact") == topic.compacted
        assert entry["replication_factor"] == 1  # one broker in compose


def test_kafka_runs_in_kraft_mode_on_a_named_volume(compose):
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from the topic job only"
    assert "SASL_PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_images_are_pinned_and_state_lives_in_named_volumes(compose):
    for name, svc in compose["services"].items():
        image = re.sub(r"\$\{[A-Z_]+:-([^}]+)\}", r"\1", svc["image"])
        assert re.search(r":v?\d+\.\d+(\.\d+)?(-[a-z0-9]+)?$", image), f"{name}: image {image!r} is not pinned"
    declared = set(compose["volumes"])
    for name, path in {"kafka": "/var/lib/kafka/data", "postgres": "/var/lib/postgresql/data",
                       "prometheus": "/prometheus", "alertmanager": "/alertmanager",
                       "grafana": "/var/lib/grafana"}.items():
        mounts = {m.split(":")[1]: m.split(":")[0] for m in compose["services"][name]["volumes"]}
        assert mounts.get(path) in declared, f"{name} keeps {path} outside a named volume"


def test_bind_mounted_files_exist(compose):
    for name, svc in compose["services"].items():
        for mount in svc.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name} mounts {source}, which does not exist"


def test_prometheus_scrapes_every_service(compose):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "warden")
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    labelled = {group["labels"]["warden_service"] for group in job["static_configs"]}
    expected = {f"{name}:{svc['environment']['WARDEN_HTTP_PORT']}" for name, svc in warden_services(compose).items()}
    assert targets == expected
    assert labelled == set(SERVICE_MODULES)


def test_prometheus_sends_its_alerts_to_the_alertmanager_of_the_stack(compose):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for am in config["alerting"]["alertmanagers"] for group in am["static_configs"]
               for t in group["targets"]}
    alertmanager = compose["services"]["alertmanager"]
    listen = next((a.split("=", 1)[1] for a in alertmanager["command"] if a.startswith("--web.listen-address=")),
                  ":9093")
    assert targets == {f"alertmanager{listen}"}
    mounts = {m.split(":")[1]: m.split(":")[0] for m in alertmanager["volumes"]}
    config_file = next(a.split("=", 1)[1] for a in alertmanager["command"] if a.startswith("--config.file="))
    assert (COMPOSE_DIR / mounts[config_file]).resolve() == (DEPLOY / "alertmanager" / "alertmanager.yml").resolve()
    assert compose["services"]["prometheus"]["depends_on"]["alertmanager"]["condition"] == "service_healthy"


def test_alertmanager_config_is_valid_and_routes_what_the_rules_fire():
    import shutil
    import subprocess

    path = DEPLOY / "alertmanager" / "alertmanager.yml"
    config = yaml.safe_load(path.read_text())
    rules = [rule for f in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
             for group in yaml.safe_load(f.read_text())["groups"] for rule in group["rules"]]
    severities = {rule["labels"]["severity"] for rule in rules}
    routed = {m.split("=")[1].strip('"') for route in config["route"]["routes"] for m in route["matchers"]
              if m.startswith("severity=")}
    assert "critical" in routed and severities <= routed | {"warning"}  # warnings take the default route
    receivers = {r["name"] for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    assert all(route["receiver"] in receivers for route in config["route"]["routes"])
    assert "warden_service" in config["route"]["group_by"]
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed (Debian: apt-get install prometheus-alertmanager; .ci/run does)")
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_is_provisioned_with_the_datasource_and_dashboards(compose):
    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in grafana["volumes"]}
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "warden.yml").read_text())
    dashboards_in_container = provider["providers"][0]["options"]["path"]
    assert (COMPOSE_DIR / mounts[dashboards_in_container] / "warden.json").exists()
    assert (COMPOSE_DIR / mounts["/etc/grafana/provisioning"] / "datasources" / "prometheus.yml").exists()
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_in_container + "/")


# --- Kafka SCRAM users and ACLs, PostgreSQL roles -------------------------------------------------

def _secret_reference(value: str) -> str:
    match = re.fullmatch(r"\$\{([A-Z_]+):\?[^}]*\}", value)
    assert match, f"{value!r} is not a required variable from .env"
    return match.group(1)


def test_kafka_accepts_only_authenticated_clients_and_authorizes_by_acl(compose):
    env = compose["services"]["kafka"]["environment"]
    protocols = dict(entry.split(":") for entry in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = {entry.split("://")[0] for entry in env["KAFKA_LISTENERS"].split(",")}
    for listener in listeners - {env["KAFKA_CONTROLLER_LISTENER_NAMES"]}:
        assert protocols[listener] == "SASL_PLAINTEXT", f"listener {listener} lets clients in unauthenticated"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    controller_port = next(e.split(":")[-1] for e in env["KAFKA_LISTENERS"].split(",") if e.startswith("CONTROLLER"))
    assert not any(str(p).endswith(f":{controller_port}") for p in compose["services"]["kafka"]["ports"])
    assert compose["services"]["kafka"]["depends_on"]["kafka-format"]["condition"] == "service_completed_successfully"
    assert "--add-scram" in compose["services"]["kafka-format"]["command"][0]


def test_each_service_authenticates_as_its_own_kafka_user(compose):
    init_env = compose["services"]["kafka-init"]["environment"]
    passwords = {}
    for name, svc in warden_services(compose).items():
        env = svc["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT" and env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["KAFKA_SASL_USERNAME"] == name
        passwords[name] = _secret_reference(env["KAFKA_SASL_PASSWORD"])
        assert _secret_reference(init_env[passwords[name]]) == passwords[name], "kafka-init sets another password"
        assert svc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert len(set(passwords.values())) == len(passwords), "services share a Kafka password"
    job = compose["services"]["kafka-topics"]["environment"]
    assert job["KAFKA_SASL_USERNAME"] == "admin" and job["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"


def test_kafka_init_creates_every_user_with_the_acls_of_the_single_writer_map(compose, tmp_path):
    """Run the generated script with stand-ins for kafka-configs.sh and kafka-acls.sh that record their calls."""
    import importlib.util
    import os
    import shutil
    import subprocess

    spec = importlib.util.spec_from_file_location("compose_generate", COMPOSE_DIR / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for name, render in generate.GENERATED.items():
        assert (COMPOSE_DIR / name).read_text() == render(), \
            f"deploy/compose/{name} is stale: run .venv/bin/python deploy/compose/generate.py"
    if shutil.which("sh") is None:
        pytest.skip("no POSIX shell to run kafka-init.sh")
    log = tmp_path / "calls"
    for tool in ("kafka-configs.sh", "kafka-acls.sh"):
        stub = tmp_path / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        stub.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "KAFKA_BIN": str(tmp_path),
           **{var: f"pw-{var.lower()}" for var in compose["services"]["kafka-init"]["environment"]}}
    subprocess.run(["sh", str(COMPOSE_DIR / "kafka-init.sh")], env=env, check=True, capture_output=True)
    users: dict[str, str] = {}
    acls: dict[str, dict[tuple[str, str], set[str]]] = {}
    for line in log.read_text().splitlines():
        tool, *args = line.split()
        assert args[args.index("--bootstrap-server") + 1] == "kafka:9092" and "--command-config" in args
        if tool == "kafka-configs.sh":
            users[args[args.index("--entity-name") + 1]] = args[args.index("--add-config") + 1]
        else:
            principal = args[args.index("--allow-principal") + 1].removeprefix("User:")
            kind = "topic" if "--topic" in args else "group"
            name = args[args.index(f"--{kind}") + 1]
            ops = {args[i + 1] for i, a in enumerate(args) if a == "--operation"}
            acls.setdefault(principal, {}).setdefault((kind, name), set()).update(ops)
    expected = expected_acls()
    assert acls == expected
    assert set(users) == set(expected)
    for user, config in users.items():
        assert config == f"SCRAM-SHA-512=[password=pw-kafka_password_{user.replace('-', '_')}]"


def test_each_service_connects_to_postgres_as_its_own_role(compose):
    from warden.runtime.roles import SERVICE_SCHEMAS, role_of, url_variable

    roles_job = compose["services"]["postgres-roles"]
    assert roles_job["command"] == ["database", "roles"]
    assert roles_job["depends_on"]["postgres"]["condition"] == "service_healthy"
    superuser = compose["services"]["postgres"]["environment"]["POSTGRES_USER"]
    assert roles_job["environment"]["DATABASE_URL"].startswith(f"postgresql://{superuser}:")
    passwords = set()
    for name, svc in warden_services(compose).items():
        url = svc["environment"]["DATABASE_URL"]
        assert url == roles_job["environment"][url_variable(name)], f"{name}: not the role the job creates"
        user, _, rest = url.removeprefix("postgresql://").partition(":")
        assert user == role_of(name) and user != superuser
        passwords.add(_secret_reference(rest.split("@")[0]))
        assert svc["depends_on"]["postgres-roles"]["condition"] == "service_completed_successfully"
    assert len(passwords) == len(SERVICE_SCHEMAS), "services share a database password"
