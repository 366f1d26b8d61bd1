"""A real Prometheus server scrapes `warden up` and PromQL counts the events this test sent.

`warden up` runs the embedded broker, Postgres and the services as processes; the
authority and the requests go in through the CLI, as an operator and an authority
would send them. Prometheus uses deploy/prometheus/prometheus.yml with the targets
taken from .warden/stack.json, and loads the alert rules from deploy/prometheus/rules.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from warden.embedded import free_port

from tests.support.requests import new_authority, request_data

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
SUBMITTED = "legal.requests.submitted"


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


def prometheus_config(stack: dict, rules_dir: Path) -> dict:
    """deploy/prometheus/prometheus.yml, scraping the stack's services every second."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules_dir / "*.yml")]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "warden")
    job["static_configs"] = [
        {"targets": [urllib.parse.urlsplit(svc["url"]).netloc], "labels": {"warden_service": name}}
        for name, svc in stack["services"].items()]
    config["scrape_configs"] = [job]
    return config


@pytest.fixture
def warden_up(tmp_path):
    home = tmp_path / ".warden"
    env = dict(os.environ, WARDEN_HOME=str(home))
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


@pytest.fixture
def prometheus(tmp_path, warden_up):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus server is not installed (Debian: apt-get install prometheus; .ci/run installs it)")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(warden_up["stack"], PROMETHEUS_DIR / "rules")))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                    f"--web.listen-address=127.0.0.1:{port}"],
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


def test_prometheus_counts_the_events_sent_through_the_pipeline(warden_up, prometheus, tmp_path):
    intake = 'service="intake"'
    # every service of the stack is scraped, and the alert rules loaded
    wait_until("intake scraped", lambda: prometheus.value('up{job="warden", warden_service="intake"}') == 1, 30)
    groups = {g["name"] for g in http_json(prometheus.url + "/api/v1/rules")["data"]["groups"]}
    assert {"warden-availability", "warden-pipeline", "warden-legal"} <= groups

    authority, impostor = new_authority(), new_authority()
    cli(warden_up, "authority", "add", authority["authority_id"], "--country", "FR", "--kind", "court",
        "--public-key", authority["public_key"])
    wait_until("intake consumed the authority", lambda: (prometheus.value(
        f'sum(warden_events_consumed_total{{{intake}, topic="legal.authorities"}})') or 0) >= 1, 60)

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
    emitted = prometheus.value(f'sum(warden_events_emitted_total{{{intake}, topic="legal.requests.received"}})')
    assert emitted == 2
    assert prometheus.value(f'warden_ready{{{intake}}}') == 1
