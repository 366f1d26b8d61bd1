"""The reference cases (services/legal-review/reference_cases.yaml) hold under the policy in force, and
`warden policy diff` names the decisions a candidate policy changes and the rules responsible."""
from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from warden.cli.main import cli

from legal_review.policy import DEFAULT_POLICY_FILE, current_policy, parse_policy
from legal_review.rules import assess
from legal_review.whatif import compare, load_reference_cases, not_passed, reference_facts

CASES = load_reference_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_policy_in_force_decides_each_reference_case_as_recorded(case):
    """Failing here: a policy change flipped this decision. If that is intended, update reference_cases.yaml."""
    assessment = assess(reference_facts(case), current_policy())
    assert (assessment.outcome, not_passed(assessment)) == (case.expected.outcome, case.expected.codes), case.says


def candidate_with_uk_through_mlat() -> dict:
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    raw["version"] = "candidate-1"
    raw["jurisdictions"]["countries"] = [j for j in raw["jurisdictions"]["countries"] if j["name"] != "UK"]
    return raw


def test_diff_names_the_changed_decisions_and_their_rules():
    candidate = parse_policy(yaml.safe_dump(candidate_with_uk_through_mlat()))
    changes = [change for c in CASES if (change := compare(c.id, reference_facts(c), current_policy(), candidate))]
    assert [c.case for c in changes] == ["uk-court-order"]
    [change] = changes
    assert (change.before, change.after) == ("approved", "rejected")
    assert {r.rule: (r.before, r.after) for r in change.rules} == {
        "authority.competent": ("passed:issuer_competent", "failed:issuer_not_competent"),
        "jurisdiction.route": ("passed:executive_agreement", "failed:mlat_required")}


def test_warden_policy_diff(tmp_path):
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(candidate_with_uk_through_mlat()))
    result = CliRunner().invoke(cli, ["policy", "diff", str(path)])
    assert result.exit_code == 0, result.output
    assert f"1 of {len(CASES)} decisions would change" in result.output
    assert "uk-court-order: approved -> rejected" in result.output
    assert "jurisdiction.route: passed:executive_agreement -> failed:mlat_required" in result.output

    same = tmp_path / "same.yaml"
    same.write_text(DEFAULT_POLICY_FILE.read_text())
    assert "0 of" in CliRunner().invoke(cli, ["policy", "diff", str(same)]).output
