"""The policy file: complete, sourced, and replaceable by WARDEN_POLICY_FILE."""
from __future__ import annotations

import pytest
import yaml

from legal_review import policy as policy_module
from legal_review.policy import DEFAULT_POLICY_FILE, current_policy, parse_policy
from legal_review.rules import RULES, check_policy


def test_default_policy_lists_every_rule_with_a_cited_source():
    policy = current_policy()
    assert {r.id for r in policy.rules} == set(RULES)
    for spec in policy.rules:
        assert spec.description and spec.source
        assert any(word in spec.source for word in ("Regulation", "U.S.C.", "Platform policy")), spec.id


def test_a_policy_cannot_drop_a_rule():
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    raw["rules"] = [r for r in raw["rules"] if r["id"] != "instrument.judicial"]
    with pytest.raises(ValueError, match="missing rules.*instrument.judicial"):
        check_policy(parse_policy(yaml.safe_dump(raw)))


def test_unknown_keys_are_refused():
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    raw["period"]["max_month"] = 6
    with pytest.raises(ValueError):
        parse_policy(yaml.safe_dump(raw))


def test_policy_file_is_configurable(tmp_path, monkeypatch):
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    raw["version"] = "test-1"
    raw["period"]["max_months"] = 6
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("WARDEN_POLICY_FILE", str(path))
    policy = current_policy()
    assert (policy.version, policy.period.max_months) == ("test-1", 6)


def test_an_edited_policy_applies_once_the_file_is_looked_at_again(tmp_path, monkeypatch):
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    monkeypatch.setattr(policy_module, "RECHECK_S", 3600.0)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({**raw, "version": "before"}))
    monkeypatch.setenv("WARDEN_POLICY_FILE", str(path))
    assert current_policy().version == "before"
    path.write_text(yaml.safe_dump({**raw, "version": "after"}))
    import os
    os.utime(path, (2, 2))
    assert current_policy().version == "before"  # not looked at again within RECHECK_S
    monkeypatch.setattr(policy_module, "RECHECK_S", 0.0)
    assert current_policy().version == "after"


def test_a_broken_edit_keeps_the_last_good_policy(tmp_path, monkeypatch):
    monkeypatch.setattr(policy_module, "RECHECK_S", 0.0)  # every call looks at the file
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT_POLICY_FILE.read_text())
    monkeypatch.setenv("WARDEN_POLICY_FILE", str(path))
    good = current_policy()
    path.write_text("version: [broken")
    import os
    os.utime(path, (1, 1))  # a new mtime forces a re-read
    assert current_policy() == good


def test_a_broken_policy_at_startup_is_fatal(tmp_path, monkeypatch):
    path = tmp_path / "policy.yaml"
    path.write_text("version: '1'\nrules: []\n")
    monkeypatch.setenv("WARDEN_POLICY_FILE", str(path))
    with pytest.raises(ValueError):
        current_policy()
