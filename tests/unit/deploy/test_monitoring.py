"""deploy/prometheus alert rules (promtool) and deploy/grafana dashboard: valid, and about real metrics."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import REGISTRY

from warden.runtime import metrics  # noqa: F401  (registers the runtime's metrics)
from warden.runtime.runner import available_services

from tests.unit.deploy._support import DEPLOY

PROMETHEUS = DEPLOY / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "warden.json"
# Prometheus' own metric; everything else must be registered by the runtime or a service.
OTHER_METRICS = {"up"}
# Grafana's variables, replaced so that promtool can parse the queries.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$service": ".*"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)")
    return path


def exported_metric_names() -> set[str]:
    """Every sample name the runtime and the services register (importing them registers them)."""
    built = available_services()
    for name in ("legal-review", "disclosure"):  # the rules and the dashboard use their metrics
        assert name in built, f"{name} is not built, yet the alerts and dashboard query its metrics"
    return set(REGISTRY._names_to_collectors) | OTHER_METRICS


def alert_rules() -> list[dict]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def metric_names_in(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers and grouping clauses removed)."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    return set(re.findall(r"\b(warden_[a-z_]+|up)\b", expr))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules():
    result = run(promtool(), "check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules():
    result = run(promtool(), "test", "rules", str(PROMETHEUS / "tests" / "warden-alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_compose_prometheus_config():
    result = run(promtool(), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_cover_what_operators_must_know():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    for needed in ("consumer_lag", "dlq_events_total", "outbox_backlog", "legal_cases_overdue", 'up{job="warden"}'):
        assert any(needed in rule["expr"] for rule in rules.values()), f"no alert on {needed}"
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"].get("summary") and rule["annotations"].get("description"), name


def test_every_alert_has_a_firing_unit_test():
    tests = yaml.safe_load((PROMETHEUS / "tests" / "warden-alerts.test.yml").read_text())
    fired = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    assert {rule["alert"] for rule in alert_rules()} <= fired


def test_rules_and_dashboard_query_only_metrics_that_exist():
    known = exported_metric_names()
    for expr in [rule["expr"] for rule in alert_rules()] + dashboard_queries():
        names = metric_names_in(expr)
        assert names, f"found no metric in {expr!r}"
        assert names <= known, f"{expr!r} queries {sorted(names - known)}, which no service exports"


def test_dashboard_structure():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("pipeline", "deadline", "dead", "delisting", "time to action", "lag", "health"):
        assert topic in titles, f"the dashboard shows nothing about {topic}"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in variables
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"


def test_dashboard_queries_parse(tmp_path):
    tool = promtool()
    rules = []
    for i, expr in enumerate(dashboard_queries()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(tool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# Labels the Prometheus Operator (and Prometheus itself) set on every target: a metric label of
# the same name is renamed exported_<name> at the scrape, and every query selecting it finds nothing.
TARGET_LABELS = {"job", "instance", "namespace", "service", "pod", "container", "endpoint", "warden_service"}
RUNBOOKS = DEPLOY.parent / "docs" / "runbooks.md"


def test_no_metric_carries_a_label_the_scrape_sets():
    exported_metric_names()  # imports every service's metrics
    clashes = {collector._name: sorted(set(collector._labelnames) & TARGET_LABELS)
               for collector in set(REGISTRY._names_to_collectors.values())
               if set(getattr(collector, "_labelnames", ())) & TARGET_LABELS}
    assert not clashes, f"these metrics carry labels the scrape sets: {clashes}"


def test_rules_and_dashboard_tell_services_apart_by_the_target_label():
    for expr in [rule["expr"] for rule in alert_rules()] + dashboard_queries():
        assert not re.search(r"(?<![\w])service\s*(=|!=|=~|!~)", expr), f"{expr!r} selects a `service` label"
        for grouping in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr):
            assert "service" not in {label.strip() for label in grouping.split(",")}, expr
    for rule in alert_rules():
        assert "$labels.service " not in str(rule["annotations"]) + " ", rule["alert"]
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "service"]
    assert variable["definition"] == "label_values(warden_ready, warden_service)"


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the runbook's section headings."""
    return {re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
            for line in RUNBOOKS.read_text().splitlines() if line.startswith("## ")}


def test_every_alert_links_its_own_runbook_section():
    anchors = runbook_anchors()
    for rule in alert_rules():
        url = rule["annotations"].get("runbook_url", "")
        page, _, anchor = url.partition("#")
        assert page.endswith("/docs/runbooks.md"), f"{rule['alert']}: runbook_url {url!r}"
        assert anchor == rule["alert"].lower() and anchor in anchors, \
            f"{rule['alert']}: no section '## {rule['alert']}' in docs/runbooks.md"
    assert anchors == {rule["alert"].lower() for rule in alert_rules()}, "a runbook section for an alert that is gone"


def test_the_dashboard_shows_the_legal_latencies_and_forgeries():
    queries = " ".join(dashboard_queries())
    for metric in ("warden_legal_oldest_pending_case_age_seconds", "warden_legal_time_to_decision_seconds_bucket",
                   "warden_disclosure_approved_to_disclosed_seconds_bucket", "warden_forged_events_total"):
        assert metric in queries, f"no panel shows {metric}"
