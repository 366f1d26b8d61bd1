"""The shipped examples stay true: docs/examples' request is what the contract's example carries, signed
by the example key, and valid; the README's walk-through uses it (tests/e2e/test_readme_walkthrough.py)."""
import json
from pathlib import Path

from warden.contract.events import LegalRequest
from warden.contract.examples import COURT_KEY, EXAMPLES
from warden.signing import signed_bytes, verify

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "docs" / "examples"


def test_the_example_request_is_the_signed_example_event():
    request = json.loads((EXAMPLES_DIR / "request.json").read_text())
    event = json.loads((EXAMPLES_DIR / "submitted-event.json").read_text())
    key = json.loads((EXAMPLES_DIR / "example-court-key.json").read_text())
    signed = event["data"]
    assert {k: v for k, v in signed.items() if k != "signature"} == request
    assert signed == EXAMPLES["warden.legal.request.submitted.v1"] and key["public_key"] == COURT_KEY
    assert verify(signed_bytes(request), signed["signature"], key["public_key"])
    LegalRequest.model_validate(signed)


def test_a_changed_example_no_longer_verifies():
    event = json.loads((EXAMPLES_DIR / "submitted-event.json").read_text())
    altered = dict(event["data"], data_categories=["ip_addresses", "phone_number", "messages"])
    assert not verify(signed_bytes({k: v for k, v in altered.items() if k != "signature"}), altered["signature"],
                      COURT_KEY)
