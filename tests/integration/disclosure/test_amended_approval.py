"""An approval of an amended request: disclosure checks each amendment back to the authority's key.

An amendment may widen what the request asked (a period the authority corrects); the approval then
lies within the request as amended, which disclosure rebuilds from the signed request and the
signed amendments the approval carries. An amendment the authority did not sign widens nothing.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from warden.provenance import sign_decision

from tests.integration.intake.test_authority_api import subscriber_stored
from tests.integration.security.test_forgeries import FORGER, dead_letter_reasons
from tests.support import keys
from tests.support.kafka import produce_event, wait_for_events
from tests.support.requests import new_authority, register_authority, signed, signed_approval
from tests.support.stack import running, service_settings, wait_for_authority
from tests.support.waiting import until

NOW = datetime.now(timezone.utc)
APPROVED = "warden.legal.request.approved.v1"


def amended_approval(authority: dict, account_id: str, amendment_key: str) -> dict:
    """An approval granting a period wider than the signed request's, as an amendment of it asked."""
    approval = signed_approval(authority, {"account_id": account_id},
                               period={"start": NOW - timedelta(days=20), "end": NOW - timedelta(days=1)})
    request = approval["signed_request"]
    wider = {"start": (NOW - timedelta(days=40)).isoformat(), "end": request["period"]["end"]}
    amendment = signed({"request_id": request["request_id"], "authority_id": request["authority_id"],
                        "clarification_id": str(uuid.uuid4()), "answer": "The sales began a month earlier.",
                        "period": wider, "amended_at": NOW.isoformat()}, amendment_key)
    body = {k: v for k, v in approval.items() if k not in ("decision_signature", "decision_key_id")}
    return sign_decision(dict(body, period=wider, signed_amendments=[amendment]), keys.DECISION["private_key"])


async def test_an_approval_within_the_amended_request_acts_and_a_forged_amendment_widens_nothing(
        bootstrap, database_url):
    court = new_authority()
    await register_authority(bootstrap, court)
    account_id = f"acct-{uuid.uuid4().hex[:10]}"
    await produce_event(bootstrap, "platform.subscribers", "warden.subscriber.session.observed.v1", {
        "account_id": account_id, "ip": "198.51.100.44", "observed_at": (NOW - timedelta(days=30)).isoformat()})
    genuine = amended_approval(court, account_id, court["private_key"])
    forged = amended_approval(court, account_id, FORGER["private_key"])
    async with running("disclosure", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "disclosure", court["authority_id"])
        await until(lambda: subscriber_stored(database_url, account_id), 60)
        await produce_event(bootstrap, "legal.requests.decided", APPROVED, genuine, source="/warden/legal-review")
        forged_id = (await produce_event(bootstrap, "legal.requests.decided", APPROVED, forged,
                                         source="/warden/legal-review"))["id"]
        [issued] = await wait_for_events(bootstrap, "legal.disclosures.issued",
                                         lambda e: e["data"]["case_id"] == genuine["case_id"], timeout=30)
        reasons = await dead_letter_reasons(bootstrap, "legal.requests.decided", forged_id)

    # The only session lies before the signed request's period, inside the amended one.
    assert issued["data"]["redacted"]["ip_address_count"] == 1
    assert reasons == {"disclosure": "bad_amendment_signature"}
