"""`warden policy diff --cases recorded`: the recorded cases replayed under a candidate policy."""
from __future__ import annotations

import asyncio

import yaml
from click.testing import CliRunner

from warden.cli.main import cli

from legal_review.policy import DEFAULT_POLICY_FILE

from tests.support.requests import new_authority
from tests.support.stack import running, service_settings
from tests.integration.legal_review.support import publish_received, received, registered, status_of


async def test_recorded_cases_replayed_under_a_candidate_policy(bootstrap, database_url, tmp_path):
    uk = new_authority("court", "GB")
    order = received(uk)
    async with running("legal-review", service_settings(bootstrap, database_url)):
        await registered(bootstrap, database_url, uk)
        await publish_received(bootstrap, order)
        await status_of(bootstrap, order["case_id"], "approved")
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    raw["version"] = "candidate-uk-mlat"
    raw["jurisdictions"]["countries"] = [j for j in raw["jurisdictions"]["countries"] if j["name"] != "UK"]
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(raw))

    result = await asyncio.to_thread(CliRunner().invoke, cli, [
        "policy", "diff", str(candidate), "--cases", "recorded", "--database-url", database_url])

    assert result.exit_code == 0, result.output
    assert f"{order['case_id']}: approved -> rejected" in result.output
    assert "jurisdiction.route: passed:executive_agreement -> failed:mlat_required" in result.output
