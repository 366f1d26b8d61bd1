"""What the deployment tests share: paths, the env var names services read, schema loading."""
from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from warden.contract.topics import TOPICS
from warden.runtime.runner import SERVICE_MODULES
from warden.runtime.settings import KafkaSecurity, Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
SCHEMAS = ROOT / "tests" / "schemas"

# Variables a service reads on top of Settings (and of its own settings model, if it
# has one: services/<name>/settings.py), as each service documents them.
# The consoles' settings are read by warden/console, for the services that have one.
CONSOLE_VARS = {"WARDEN_CONSOLE_SECRET", "WARDEN_CONSOLE_SECURE_COOKIE"}
SERVICE_VARS: dict[str, set[str]] = {
    "intake": set(),
    "legal-review": {"WARDEN_POLICY_FILE", "WARDEN_REVIEW_TOKENS", "WARDEN_REVIEW_TOKENS_FILE",
                     "WARDEN_LEGAL_SWEEP_INTERVAL_S", "WARDEN_DECISION_PRIVATE_KEY", *CONSOLE_VARS},
    "disclosure": {"WARDEN_DISCLOSURE_PRIVATE_KEY", "WARDEN_RETENTION_DAYS"},
    "moderation": {"WARDEN_MODERATION_TOKENS", *CONSOLE_VARS},
}


def model_env_names(model: type[BaseSettings]) -> set[str]:
    """Every environment variable a pydantic-settings model reads, derived from the model."""
    prefix = model.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def settings_env_names() -> set[str]:
    """What the runtime's Settings reads (every service), its Kafka security settings included."""
    return model_env_names(Settings) | model_env_names(KafkaSecurity)


def service_settings_models(service: str) -> list[type[BaseSettings]]:
    """Settings models a service declares in its own `settings` module, if it has one."""
    package = SERVICE_MODULES[service].rsplit(".", 1)[0]
    try:
        module = importlib.import_module(f"{package}.settings")
    except ModuleNotFoundError:
        return []
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, BaseSettings) and obj is not BaseSettings
            and obj.__module__ == module.__name__]


def service_source_reads(service: str, var: str) -> bool | None:
    """Whether the service's code mentions the variable (or its field name); None if not built yet."""
    package = ROOT / "services" / service
    if not (package / "service.py").exists():
        return None
    stem = var.removeprefix("WARDEN_")
    pattern = re.compile(re.escape(stem), re.IGNORECASE)
    if var in CONSOLE_VARS:  # read by the console kit the service mounts
        uses_console = any("from warden.console import" in path.read_text() for path in package.rglob("*.py"))
        return uses_console and bool(pattern.search((ROOT / "warden" / "console" / "__init__.py").read_text()))
    return any(pattern.search(path.read_text()) for path in package.rglob("*.py"))


def allowed_env(service: str) -> set[str]:
    names = settings_env_names() | SERVICE_VARS[service]
    for model in service_settings_models(service):
        names |= model_env_names(model)
    return names


def load_crd_schema(filename: str, version: str) -> dict:
    crd = yaml.safe_load((SCHEMAS / filename).read_text())
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version and entry.get("served", True):
            return entry["schema"]["openAPIV3Schema"]
    raise AssertionError(f"{filename} serves no version {version}")


def kustomize(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot run `kubectl kustomize` (install kubectl 1.32+)")
    result = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def expected_acls() -> dict[str, dict[tuple[str, str], set[str]]]:
    """Straight from the registry: a topic's producer(s) write it, its consumers read it and write
    its DLQ, each consuming service reads its effects' group, and its views' group when it reads some topics as
    views (the topic's viewers) beside others; external feeds belong to the platform except
    the authorities' requests (the gateway, and intake for its HTTP API), the authority registry to the
    operators; a topic's readers (operators, for the audit checkpoints and the status topic) read it, and
    operators read every DLQ."""
    acls: dict[str, dict[tuple[str, str], set[str]]] = {}

    def allow(principal: str, kind: str, name: str, *ops: str) -> None:
        acls.setdefault(principal, {}).setdefault((kind, name), set()).update(ops)

    for topic in TOPICS.values():
        if topic.producer == "external":
            writers = ["authority-gateway" if topic.name == "legal.requests.submitted" else "platform"]
            if topic.name == "legal.requests.submitted":
                writers.append("intake")  # the authority API publishes what authorities submit over HTTP
        else:
            writers = [w.strip() for w in topic.producer.split(",")]
        for writer in writers:
            allow(writer, "topic", topic.name, "Write", "Describe")
        for consumer in topic.consumers:
            allow(consumer, "topic", topic.name, "Read", "Describe")
            allow(consumer, "topic", f"{topic.name}.dlq", "Write", "Describe")
            allow(consumer, "group", f"warden-{consumer}", "Read")
            if consumer in topic.viewers and any(consumer in t.consumers and consumer not in t.viewers
                                                 for t in TOPICS.values()):
                allow(consumer, "group", f"warden-{consumer}-views", "Read")
            allow("operators", "topic", f"{topic.name}.dlq", "Read", "Describe")
        for reader in topic.readers:
            allow(reader, "topic", topic.name, "Read", "Describe")
    return acls
