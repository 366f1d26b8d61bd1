"""Legal review's decision key: every approval and rejection it emits is signed with it.

Disclosure acts on a decision only with a valid signature by a configured legal-review
key (warden/provenance.py). The key comes from `WARDEN_DECISION_PRIVATE_KEY`, never
from the database: whoever can write the database or Kafka cannot decide a case.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

import orjson

from warden.contract.events import RequestApproved, RequestRejected, type_of
from warden.runtime.outbox import OutboxRow, Verbatim, event_row
from warden.provenance import sign_decision
from warden.runtime.service import ConfigurationError
from warden.signing import decode_key

from legal_review.settings import DecisionKeySettings


def require_decision_key(_runtime_settings=None) -> None:
    """Startup check."""
    settings = DecisionKeySettings()
    if settings.decision_private_key is None:
        raise ConfigurationError("WARDEN_DECISION_PRIVATE_KEY is not set: legal review signs every decision "
                                 "with it (docs/deployment.md, 'Keys'); `warden up` sets a development key")
    try:
        decode_key(settings.decision_private_key.get_secret_value())
    except ValueError as exc:
        raise ConfigurationError(f"WARDEN_DECISION_PRIVATE_KEY: {exc}") from None


@cache
def _private_key() -> str:
    require_decision_key()
    return DecisionKeySettings().decision_private_key.get_secret_value().strip()


Decision = TypeVar("Decision", RequestApproved, RequestRejected)


@dataclass(frozen=True)
class SignedDecision(Generic[Decision]):
    """A signed decision: the model, and its data exactly as signed, which is what its event carries and
    what the decisions table keeps (no second serialisation of the model that could differ)."""

    event: Decision
    data: dict[str, Any]

    def row(self, service: str) -> OutboxRow:
        return event_row(service, Verbatim(type_of(self.event), self.data))

    def json(self) -> str:
        return orjson.dumps(self.data).decode()


def signed(decision: Decision) -> SignedDecision[Decision]:
    """The decision with `decision_key_id` and `decision_signature` set: the signature covers exactly the
    data its event will carry (the model's JSON form without `decision_signature`)."""
    data = sign_decision(decision.model_dump(mode="json"), _private_key())
    return SignedDecision(decision.model_copy(update={"decision_key_id": data["decision_key_id"],
                                                      "decision_signature": data["decision_signature"]}), data)
