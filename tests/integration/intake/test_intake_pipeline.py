"""Intake on the real broker and Postgres: the request's path from submitted to received."""
from __future__ import annotations

from tests.support.kafka import produce_event, wait_for_events, wait_for_records
from tests.support.requests import new_authority, register_authority, request_data, signed
from tests.support.stack import running, service_settings, wait_for_authority

SUBMITTED = "warden.legal.request.submitted.v1"


def status_of(request_id: str):
    return lambda e: e["data"]["request_id"] == request_id


async def test_signed_request_is_received_with_normalised_suspect(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority), authority["private_key"])
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        await produce_event(bootstrap, "legal.requests.submitted", SUBMITTED, data)
        [received] = await wait_for_events(bootstrap, "legal.requests.received",
                                           lambda e: e["data"]["request"]["request_id"] == data["request_id"])
        [status] = await wait_for_events(bootstrap, "legal.requests.status", status_of(data["request_id"]))
    assert received["type"] == "warden.legal.request.received.v1"
    assert received["data"]["request"]["suspect"] == {
        "account_id": None, "username": "dealer_42", "phone_number": "+33612345678"}
    assert status["data"]["status"] == "received"
    assert status["data"]["case_id"] == received["data"]["case_id"]


async def test_bad_signature_goes_to_dlq_and_invalid_status_only(bootstrap, database_url):
    authority, impostor = new_authority(), new_authority()
    await register_authority(bootstrap, authority)
    data = signed(request_data(authority), impostor["private_key"])
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        await produce_event(bootstrap, "legal.requests.submitted", SUBMITTED, data)
        [status] = await wait_for_events(bootstrap, "legal.requests.status", status_of(data["request_id"]))
        [dead] = await wait_for_records(bootstrap, "legal.requests.submitted.dlq",
                                        lambda r: data["request_id"].encode() in (r.value or b""))
    assert status["data"]["status"] == "invalid"
    assert status["data"]["reasons"][0]["code"] == "bad_signature"
    assert dict(dead.headers)["dlq.reason"] == b"bad_signature"
    received = await wait_for_events(bootstrap, "legal.requests.received", lambda e: True, count=0)
    assert not [e for e in received if e["data"]["request"]["request_id"] == data["request_id"]]
