"""Issue 18: phone numbers with letters or an extension are refused, never guessed at (warden/identifiers.py)."""
from __future__ import annotations

from tests.support.kafka import produce_event, wait_for_events, wait_for_records
from tests.support.requests import new_authority, register_authority, request_data, signed
from tests.support.stack import running, service_settings, wait_for_authority

SUBMITTED = "warden.legal.request.submitted.v1"
REFUSED = {"letters": "+33 6 2222 2ABC", "extension": "+33 6 12 34 56 78 ext. 12"}


async def test_a_phone_number_with_letters_or_an_extension_is_refused_with_a_reason(bootstrap, database_url):
    authority = new_authority()
    await register_authority(bootstrap, authority)
    requests = {name: signed(request_data(authority, suspect={"phone_number": number}), authority["private_key"])
                for name, number in REFUSED.items()}
    async with running("intake", service_settings(bootstrap, database_url)):
        await wait_for_authority(database_url, "intake", authority["authority_id"])
        for data in requests.values():
            await produce_event(bootstrap, "legal.requests.submitted", SUBMITTED, data)
        # The reason's message is the authority's to read (legal.requests.progress, served by the authority API).
        statuses = {name: (await wait_for_events(bootstrap, "legal.requests.progress",
                                                 lambda e, d=data: e["data"]["request_id"] == d["request_id"]))[0]
                    for name, data in requests.items()}
        shared = {name: (await wait_for_events(bootstrap, "legal.requests.status",
                                               lambda e, d=data: e["data"]["request_id"] == d["request_id"]))[0]
                  for name, data in requests.items()}
        dead = {name: (await wait_for_records(bootstrap, "legal.requests.submitted.dlq",
                                              lambda r, d=data: d["request_id"].encode() in (r.value or b"")))[0]
                for name, data in requests.items()}

    assert {name: s["data"]["status"] for name, s in statuses.items()} == {"letters": "invalid", "extension": "invalid"}
    assert all(s["data"]["reasons"][0]["message"] == "" for s in shared.values())
    assert "letters" in statuses["letters"]["data"]["reasons"][0]["message"]
    assert "extension" in statuses["extension"]["data"]["reasons"][0]["message"]
    for name, number in REFUSED.items():
        said = statuses[name]["data"]["reasons"][0]["message"] + dead[name].headers.__repr__()
        assert number not in said and "2222" not in said and "ABC" not in said
