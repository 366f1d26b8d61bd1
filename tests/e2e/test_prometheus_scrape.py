"""A real Prometheus server scrapes `warden up` as the Prometheus Operator would, and every
dashboard query and alert finds the series it selects.

`warden up` runs the embedded broker, Postgres and the services as processes; the
authority and the requests go in through the CLI, as an operator and an authority
would send them, the platform's feeds and the reports straight onto Kafka. Prometheus
scrapes them with the scrape configuration the Operator generates from
deploy/k8s/base/servicemonitor.yaml (its own target labels `namespace`, `service`,
`pod`, `container`, `endpoint` and `job`, then the ServiceMonitor's relabelings; targets
stand in for Kubernetes discovery), and loads the alert rules of deploy/prometheus/rules
(what the PrometheusRule carries).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from warden.embedded import free_port

from tests.support.kafka import produce_event
from tests.support.requests import new_authority, request_data

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
K8S_BASE = ROOT / "deploy" / "k8s" / "base"
SERVICE_MONITOR = K8S_BASE / "servicemonitor.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "warden.json"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
SUBMITTED = "legal.requests.submitted"
NAMESPACE = "warden"
# Grafana's variables as a person looking at the last hour would have them.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$service": ".*"}


def http_json(url: str, timeout: float = 2) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(what: str, check, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.3)
    detail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{detail}")


def stop(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (graceful: `warden up` stops its services, broker and database), then SIGKILL
    what is left of the process group this test started."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


class Prometheus:
    def __init__(self, url: str):
        self.url = url

    def query(self, promql: str) -> list[dict]:
        answer = http_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def _label(name: str) -> str:
    """A Kubernetes label as Prometheus' discovery names it (app.kubernetes.io/name -> app_kubernetes_io_name)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def operator_scrape_config(stack: dict) -> dict:
    """The scrape job the Prometheus Operator generates from the ServiceMonitor, over the stack's services.

    Each service's target carries the `__meta_kubernetes_*` labels that Kubernetes discovery gives it:
    the name and labels of its Service in deploy/k8s/base/NAME.yaml, a pod's name, the endpoint's port
    name; relabelling then does what the Operator's does: keep the Services
    the selector matches and the endpoint's port, set namespace, service, pod, container, job
    (jobLabel) and endpoint, then apply the ServiceMonitor's own relabelings. honor_labels is off,
    as the Operator leaves it: a metric label named like a target label becomes exported_<name>.
    """
    monitor = yaml.safe_load(SERVICE_MONITOR.read_text())
    spec = monitor["spec"]
    (endpoint,) = spec["endpoints"]
    targets = []
    for name, svc in stack["services"].items():
        (service,) = [doc for doc in yaml.safe_load_all((K8S_BASE / f"{name}.yaml").read_text())
                      if doc and doc["kind"] == "Service"]
        meta = {f"__meta_kubernetes_service_label_{_label(k)}": v for k, v in service["metadata"]["labels"].items()}
        meta.update({"__meta_kubernetes_namespace": NAMESPACE,
                     "__meta_kubernetes_service_name": service["metadata"]["name"],
                     "__meta_kubernetes_pod_name": f"{service['metadata']['name']}-7d9f-0",
                     "__meta_kubernetes_pod_container_name": name,
                     "__meta_kubernetes_endpoint_port_name": endpoint["port"]})
        targets.append({"targets": [urllib.parse.urlsplit(svc["url"]).netloc], "labels": meta})
    selector = spec["selector"]["matchLabels"]
    relabel = [
        {"source_labels": [f"__meta_kubernetes_service_label_{_label(k)}" for k in selector],
         "regex": ";".join(selector.values()), "action": "keep"},
        {"source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": endpoint["port"], "action": "keep"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"},
        {"source_labels": [f"__meta_kubernetes_service_label_{_label(spec['jobLabel'])}"], "target_label": "job",
         "regex": "(.+)", "replacement": "${1}"},
        {"target_label": "endpoint", "replacement": endpoint["port"]},
    ]
    relabel += [{_snake(k): v for k, v in step.items()} for step in endpoint.get("relabelings", [])]
    return {"job_name": f"serviceMonitor/{NAMESPACE}/{monitor['metadata']['name']}/0", "honor_labels": False,
            "scrape_interval": "1s", "scrape_timeout": "1s", "metrics_path": endpoint["path"],
            "static_configs": targets, "relabel_configs": relabel}


def prometheus_config(stack: dict, rules_dir: Path) -> dict:
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_dir / "*.yml")],
            "scrape_configs": [operator_scrape_config(stack)]}


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((panel["title"], expr))
    return queries


@pytest.fixture(scope="module")
def warden_up(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("warden-up")
    home = tmp_path / ".warden"
    # Background jobs refresh their gauges every second, not every 15 or 30.
    env = dict(os.environ, WARDEN_HOME=str(home), WARDEN_LEGAL_SWEEP_INTERVAL_S="1", WARDEN_METRICS_INTERVAL_S="1")
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
        env.pop(var, None)  # the embedded broker and Postgres, not whatever the shell points at
    log = tmp_path / "warden-up.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "warden.cli.main", "up"], cwd=tmp_path, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        stack_file = home / "stack.json"
        stack = wait_until("stack.json", lambda: stack_file.exists() and json.loads(stack_file.read_text()),
                           60, process, log)
        wait_until("intake /readyz", lambda: ready(stack["services"]["intake"]["url"]), 90, process, log)
        yield {"env": env, "stack": stack, "cwd": tmp_path, "log": log}
    finally:
        stop(process, timeout=60)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory) -> str | None:
    """deploy/alertmanager/alertmanager.yml in a real Alertmanager; None when it is not installed."""
    binary = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
    if binary is None:
        yield None
        return
    tmp_path = tmp_path_factory.mktemp("alertmanager")
    port, log = free_port(), tmp_path / "alertmanager.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([binary, f"--config.file={ALERTMANAGER_CONFIG}", f"--storage.path={tmp_path}",
                                    f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until("alertmanager ready", lambda: _ok(url + "/-/ready"), 30, process, log)
        yield url
    finally:
        stop(process, timeout=15)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, warden_up, alertmanager):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus server is not installed (Debian: apt-get install prometheus; .ci/run installs it)")
    tmp_path = tmp_path_factory.mktemp("prometheus")
    config = prometheus_config(warden_up["stack"], PROMETHEUS_DIR / "rules")
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [
            {"targets": [urllib.parse.urlsplit(alertmanager).netloc]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                                    f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until("prometheus ready", lambda: _ok(url + "/-/ready"), 30, process, log)
        yield Prometheus(url)
    finally:
        stop(process, timeout=15)


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def cli(warden_up: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "warden.cli.main", *args], cwd=warden_up["cwd"],
                            env=warden_up["env"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"warden {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


async def feed_the_platform(bootstrap: str) -> None:
    """The suspect of request_data as the platform knows them, and a public channel whose title is in
    moderation's bank of known abuse (delisted as the platform describes it), then reported."""
    now, account_id = datetime.now(timezone.utc), f"acc-{uuid.uuid4().hex[:10]}"
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.account.updated.v1", {
        "account_id": account_id, "username": "dealer_42", "phone_number": "+33612345678", "country": "FR",
        "updated_at": (now - timedelta(days=80)).isoformat()})
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.session.observed.v1", {
        "account_id": account_id, "ip": "198.51.100.7", "observed_at": (now - timedelta(days=10)).isoformat()})
    channel = {"kind": "channel", "id": f"chan-{uuid.uuid4().hex[:10]}", "owner_account_id": f"acc-{uuid.uuid4().hex[:8]}",
               "title": "KNOWN-ABUSE-SAMPLE-0001", "text": None}
    await produce_event(bootstrap, "platform.content", "warden.platform.content.updated.v1", {
        "content_id": channel["id"], "kind": "channel", "owner_account_id": channel["owner_account_id"],
        "title": channel["title"], "text": None, "language": None, "public_in_search": True,
        "created_at": now.isoformat(), "updated_at": now.isoformat(), "media": []})
    await produce_event(bootstrap, "moderation.reports.submitted", "warden.moderation.report.submitted.v1", {
        "report_id": uuid.uuid4().hex, "reporter_id": f"reporter-{channel['id']}", "reported_at": now.isoformat(),
        "surface": "search", "content": channel, "reason": "child_abuse", "comment": None})


def test_an_operator_style_scrape_answers_every_dashboard_query(warden_up, prometheus, tmp_path):
    intake = 'warden_service="intake"'
    services = set(warden_up["stack"]["services"])
    # every service is scraped, named by the scrape: the Operator's own labels and warden_service
    wait_until("every service scraped", lambda: (prometheus.value('count(up{job="warden"} == 1)') or 0) == len(services),
               30)
    for target in prometheus.query('up{job="warden"}'):
        labels = target["metric"]
        assert labels["service"] == f"warden-{labels['warden_service']}" and labels["namespace"] == NAMESPACE
    groups = {g["name"] for g in http_json(prometheus.url + "/api/v1/rules")["data"]["groups"]}
    assert {"warden-availability", "warden-pipeline", "warden-legal", "warden-integrity"} <= groups

    authority, impostor = new_authority(), new_authority()
    cli(warden_up, "authority", "add", authority["authority_id"], "--country", "FR", "--kind", "court",
        "--public-key", authority["public_key"])
    asyncio.run(feed_the_platform(warden_up["stack"]["kafka_bootstrap_servers"]))
    wait_until("intake consumed the authority", lambda: (prometheus.value(
        f'sum(warden_events_consumed_total{{{intake}, topic="legal.authorities"}})') or 0) >= 1, 60)
    wait_until("disclosure stored the subscriber", lambda: (prometheus.value(
        'sum(warden_events_consumed_total{warden_service="disclosure", topic="platform.subscribers"})') or 0) >= 2, 60)

    (tmp_path / "authority.key").write_text(authority["private_key"])
    (tmp_path / "impostor.key").write_text(impostor["private_key"])
    for key in ("authority.key", "authority.key", "impostor.key"):  # two genuine requests, one forged
        request = tmp_path / "request.json"
        request.write_text(json.dumps(request_data(authority)))
        cli(warden_up, "submit", str(request), "--key", str(tmp_path / key))

    def consumed() -> dict[str, float]:
        result = prometheus.query(f'sum by (outcome) (warden_events_consumed_total{{{intake}, topic="{SUBMITTED}"}})')
        return {r["metric"]["outcome"]: float(r["value"][1]) for r in result}

    counts = wait_until("the three requests counted", lambda: (c := consumed()) and sum(c.values()) >= 3 and c, 60)
    assert counts == {"processed": 2.0, "dead_lettered": 1.0}
    assert prometheus.value(f'sum(warden_dlq_events_total{{{intake}, topic="{SUBMITTED}", reason="bad_signature"}})') == 1
    assert prometheus.value(f'sum(warden_forged_events_total{{{intake}, topic="{SUBMITTED}"}})') == 1
    emitted = prometheus.value(f'sum(warden_events_emitted_total{{{intake}, topic="legal.requests.received"}})')
    assert emitted == 2
    assert prometheus.value(f'warden_ready{{{intake}}}') == 1

    # Every panel of the dashboard shows something once the pipeline has run: nothing selects a label
    # the scrape renamed, no metric is missing.
    def empty_panels() -> list[str]:
        return [f"{title}: {expr}" for title, expr in dashboard_queries() if not prometheus.query(expr)]

    deadline = time.monotonic() + 120
    while (empty := empty_panels()) and time.monotonic() < deadline:
        time.sleep(1)
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
    assert not prometheus.query('{exported_service!=""}'), "a metric label clashed with the target's `service`"
    assert not prometheus.query('{__name__=~"warden_.+", service!~"warden-.+"}'), \
        "every Warden series carries the Operator's service label"


def test_a_dead_letter_reaches_alertmanager_with_its_runbook(warden_up, prometheus, alertmanager, tmp_path):
    if alertmanager is None:
        pytest.skip("Alertmanager is not installed (Debian: apt-get install prometheus-alertmanager; .ci/run does)")
    authority, impostor = new_authority(), new_authority()
    cli(warden_up, "authority", "add", authority["authority_id"], "--country", "FR", "--kind", "court",
        "--public-key", authority["public_key"])
    (tmp_path / "impostor.key").write_text(impostor["private_key"])
    (tmp_path / "request.json").write_text(json.dumps(request_data(authority)))
    cli(warden_up, "submit", str(tmp_path / "request.json"), "--key", str(tmp_path / "impostor.key"))

    def dead_letter_alerts() -> list[dict]:
        alerts = http_json(f"{alertmanager}/api/v2/alerts")
        return [a for a in alerts if a["labels"]["alertname"] == "WardenDeadLetters"]

    (alert,) = wait_until("WardenDeadLetters in Alertmanager", dead_letter_alerts, 90)
    assert alert["labels"]["warden_service"] == "intake" and alert["labels"]["topic"] == SUBMITTED
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["runbook_url"].endswith("/docs/runbooks.md#wardendeadletters")
    assert alert["receivers"] == [{"name": "warden-operators"}]  # a warning: not the on-call route
