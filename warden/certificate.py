"""The certificate of authenticity each disclosure package carries (docs/disclosure.md, "Certificate").

As providers attach to productions (a business-records declaration, e.g. US Federal Rules of
Evidence 902(11) with 803(6)): the platform's signed statement that the records are copies of
records it made and kept in the ordinary course of business, citing the instrument the
production answers and the case. It sits inside the sealed package and is signed on its own by
the platform's disclosure key (over its RFC 8785 form without `signature`), so that it can be
filed apart from the data; the package's signature covers it as well. Disclosure writes it,
`warden disclosure open` and `warden authority-client fetch` check it.
"""
from __future__ import annotations

from typing import Any

from warden.keys import key_id, public_key_of
from warden.signing import canonical, sign, verify

RECORD_NAMES = {"ip_addresses": "IP addresses of sessions", "phone_numbers": "phone numbers held"}


def statement(case_id: str, instrument: dict[str, Any], records: list[str]) -> str:
    kinds = ", ".join(RECORD_NAMES.get(r, r) for r in records) or "none"
    return (f"The platform certifies that the records in this package ({kinds}) are true copies of records it "
            "made at or near the time of the events they record, from information transmitted by its systems, "
            "and kept in the ordinary course of its regularly conducted business, as a regular practice of that "
            f"business. They are produced for case {case_id} in answer to the {instrument['type'].replace('_', ' ')} "
            f"{instrument['reference']} issued by {instrument['issued_by']}.")


def certificate_for(package: dict[str, Any], instrument: dict[str, Any], platform_private_key: str
                    ) -> dict[str, Any]:
    """The signed certificate for a package (its ids, granted records and date), citing `instrument`."""
    records = [field for field in RECORD_NAMES if field in package]
    body = {
        "statement": statement(package["case_id"], instrument, records),
        "case_id": package["case_id"], "request_id": package["request_id"], "authority_id": package["authority_id"],
        "instrument": {"type": instrument["type"], "reference": instrument["reference"],
                       "issued_by": instrument["issued_by"]},
        "records": records, "certified_at": package["generated_at"],
        "key_id": key_id(public_key_of(platform_private_key)),
    }
    return dict(body, signature=sign(canonical(body), platform_private_key))


def certificate_problem(package: dict[str, Any], platform_public_key: str) -> str | None:
    """What is wrong with the package's certificate, or None: of this package and signed by the platform key.

    A package without one (built before packages carried it) has nothing wrong with it: the package's own
    signature says the platform issued it so; describe it as uncertified."""
    if "certificate" not in package:
        return None
    certificate = package["certificate"]
    if not isinstance(certificate, dict):
        return "the certificate of authenticity is not an object"
    for field in ("case_id", "request_id", "authority_id"):
        if certificate.get(field) != package.get(field):
            return f"the certificate's {field} is not the package's"
    body = {k: v for k, v in certificate.items() if k != "signature"}
    signature = certificate.get("signature")
    if not isinstance(signature, str) or not verify(canonical(body), signature, platform_public_key):
        return "the certificate's signature does not verify with the platform key"
    return None
