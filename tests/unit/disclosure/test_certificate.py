"""The certificate of authenticity: the platform's signed statement inside each package, checked when opened."""
from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from disclosure.package import certify, seal_for_authority
from warden.certificate import certificate_for
from warden.cli.disclosure import PackageRefused, describe_certificate, open_package
from warden.contract.events import Instrument
from warden.keys import key_id
from warden.signing import generate_keypair

PACKAGE = {
    "case_id": "c-1", "request_id": "REQ-1", "authority_id": "auth-1", "account_id": "acct-1",
    "period": {"start": "2025-01-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"},
    "generated_at": "2025-02-02T00:00:00Z",
    "nonce": base64.b64encode(bytes(range(32))).decode(),
    "ip_addresses": [{"ip": "203.0.113.9", "first_seen": "2025-01-03T10:00:00Z",
                      "last_seen": "2025-01-09T10:00:00Z", "count": 4}],
}
INSTRUMENT = Instrument(type="court_order", reference="RG 26/0042", issued_by="Juge d'instruction, Paris",
                        issued_at=datetime(2025, 1, 1, tzinfo=timezone.utc))


@pytest.fixture(scope="module")
def keys():
    return {"authority": generate_keypair(), "platform": generate_keypair(), "other": generate_keypair()}


def sealed_event(package, keys):
    sealed = seal_for_authority(package, keys["authority"]["public_key"], keys["platform"]["private_key"])
    return {"case_id": package["case_id"], "sealed": sealed.sealed, "sha256": sealed.sha256,
            "signature": sealed.signature}


def test_a_package_certifies_its_records_citing_the_instrument_and_the_case(keys):
    package = certify(PACKAGE, INSTRUMENT, keys["platform"]["private_key"])
    opened = open_package(sealed_event(package, keys), keys["authority"]["private_key"], keys["platform"]["public_key"])
    certificate = opened["certificate"]
    assert certificate["case_id"] == "c-1" and certificate["request_id"] == "REQ-1"
    assert certificate["instrument"]["reference"] == "RG 26/0042"
    assert certificate["records"] == ["ip_addresses"]
    assert certificate["key_id"] == key_id(keys["platform"]["public_key"])
    statement = certificate["statement"]
    assert "ordinary course" in statement and "c-1" in statement and "RG 26/0042" in statement
    assert "phone" not in statement  # only the records granted and produced
    assert statement in describe_certificate(opened)


def test_a_certificate_not_signed_by_the_platform_or_of_another_package_is_refused(keys):
    """Whoever builds a package with the platform key can only sign true certificates; these are built and
    sealed with the real platform key, so only the certificate's own checks can catch them."""
    forged = dict(certificate_for(PACKAGE, INSTRUMENT.model_dump(mode="json"), keys["other"]["private_key"]))
    other_case = certificate_for(dict(PACKAGE, case_id="c-2"), INSTRUMENT.model_dump(mode="json"),
                                 keys["platform"]["private_key"])
    edited = dict(certificate_for(PACKAGE, INSTRUMENT.model_dump(mode="json"), keys["platform"]["private_key"]),
                  records=["ip_addresses", "phone_numbers"])
    refusals = {}
    for name, certificate in {"forged": forged, "other case": other_case, "edited": edited}.items():
        event = sealed_event(dict(PACKAGE, certificate=certificate), keys)
        with pytest.raises(PackageRefused) as refused:
            open_package(event, keys["authority"]["private_key"], keys["platform"]["public_key"])
        refusals[name] = str(refused.value)
    assert refusals == {"forged": "the certificate's signature does not verify with the platform key",
                        "other case": "the certificate's case_id is not the package's",
                        "edited": "the certificate's signature does not verify with the platform key"}
