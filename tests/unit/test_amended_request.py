"""A request as amended: the signed request with each signed amendment's fields applied (warden/provenance.py)."""
from __future__ import annotations

import pytest

from warden.contract.envelope import EventRejected
from warden.provenance import amended_request
from warden.signing import generate_keypair

from tests.support.requests import new_authority, request_data, signed


def amendment(authority, request, private_key=None, **fields):
    return signed({"request_id": request["request_id"], "authority_id": request["authority_id"],
                   "clarification_id": "q-1", "answer": "the period was wrong", "amended_at": "2026-01-01T00:00:00Z",
                   **fields}, private_key or authority["private_key"])


def test_amendments_replace_the_period_and_categories_and_nothing_else():
    court = new_authority()
    request = signed(request_data(court), court["private_key"])
    period = {"start": "2025-06-01T00:00:00+00:00", "end": "2025-07-01T00:00:00+00:00"}
    first = amendment(court, request, period=period)
    second = amendment(court, request, data_categories=["ip_addresses"], suspect={"account_id": "someone-else"},
                       instrument={"reference": "forged"})
    amended = amended_request(request, [first, second], court["public_key"])
    assert amended["period"] == period and amended["data_categories"] == ["ip_addresses"]
    assert {k: v for k, v in amended.items() if k not in ("period", "data_categories")} == {
        k: v for k, v in request.items() if k not in ("period", "data_categories")}


def test_an_amendment_not_signed_with_the_requests_key_or_of_another_request_is_refused():
    court, other = new_authority(), new_authority()
    request = signed(request_data(court), court["private_key"])
    others = signed(request_data(court), court["private_key"])
    cases = {
        "other key": amendment(court, request, other["private_key"], data_categories=["ip_addresses"]),
        "another request": amendment(court, others),
        "changed after signing": dict(amendment(court, request), data_categories=["phone_number"]),
        "unsigned": {k: v for k, v in amendment(court, request).items() if k != "signature"},
    }
    reasons = {}
    for name, document in cases.items():
        with pytest.raises(EventRejected) as refused:
            amended_request(request, [document], court["public_key"])
        reasons[name] = refused.value.reason
    assert reasons == {"other key": "bad_amendment_signature", "another request": "amendment_mismatch",
                       "changed after signing": "bad_amendment_signature", "unsigned": "bad_amendment_signature"}
    assert amended_request(request, [], generate_keypair()["public_key"]) == request
