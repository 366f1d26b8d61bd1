"""Pydantic models of every event payload (`data`) in the contract.

Consumers ignore fields they do not know (producers may add fields, DESIGN.md),
so every model is lenient about extras; the listed fields are never renamed.
"""
from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

ShortText = Field(min_length=1, max_length=256)


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- legal requests -----------------------------------------------------------------

class InstrumentType(str, Enum):
    court_order = "court_order"
    search_warrant = "search_warrant"
    production_order = "production_order"
    subpoena = "subpoena"
    emergency_request = "emergency_request"
    preservation_request = "preservation_request"


class OffenseCategory(str, Enum):
    terrorism = "terrorism"
    child_sexual_abuse = "child_sexual_abuse"
    drug_trafficking = "drug_trafficking"
    human_trafficking = "human_trafficking"
    weapons_trafficking = "weapons_trafficking"
    fraud = "fraud"
    illegal_goods = "illegal_goods"
    cybercrime = "cybercrime"
    violent_crime = "violent_crime"
    extortion = "extortion"
    money_laundering = "money_laundering"
    hate_speech = "hate_speech"
    defamation = "defamation"
    extremism_speech = "extremism_speech"
    other = "other"


class Instrument(Payload):
    type: InstrumentType
    reference: str = ShortText
    issued_by: str = ShortText
    issued_at: AwareDatetime
    expires_at: AwareDatetime | None = None


class Suspect(Payload):
    account_id: str | None = Field(default=None, min_length=1, max_length=128)
    username: str | None = Field(default=None, min_length=1, max_length=64)
    phone_number: str | None = Field(default=None, min_length=3, max_length=32)

    @model_validator(mode="after")
    def _names_someone(self) -> Suspect:
        if not (self.account_id or self.username or self.phone_number):
            raise ValueError("suspect needs at least one of account_id, username, phone_number")
        return self


class Offense(Payload):
    category: OffenseCategory
    statute: str = Field(min_length=1, max_length=512)
    description: str = Field(min_length=1, max_length=4000)


class Period(Payload):
    start: AwareDatetime
    end: AwareDatetime


class LegalRequest(Payload):
    """`warden.legal.request.submitted.v1`: a request as the authority signed it."""

    request_id: str = Field(min_length=1, max_length=128)
    authority_id: str = Field(min_length=1, max_length=128)
    instrument: Instrument
    suspect: Suspect
    offense: Offense
    # Any string is accepted here; policy refuses what may not be granted, by name.
    data_categories: list[str] = Field(min_length=1, max_length=16)
    period: Period
    emergency: bool = False
    emergency_justification: str | None = Field(default=None, max_length=4000)
    nondisclosure_until: date | None = None
    signature: str = Field(min_length=1, max_length=200)
    # Names an earlier preservation request this one extends (LAW.md, Art. 11 / § 2703(f)).
    extends_request_id: str | None = Field(default=None, max_length=128)
    # A judicial order naming an earlier emergency request it confirms (Regulation (EU) 2023/1543 Art. 4(5), 48 h).
    confirms_request_id: str | None = Field(default=None, max_length=128)


# The authority's request exactly as submitted, signature included (warden/provenance.py).
SignedRequest = Annotated[dict[str, Any], Field(max_length=64)]


class RequestReceived(Payload):
    case_id: str
    received_at: AwareDatetime
    request: LegalRequest
    # v1.1: the request as the authority signed it, beside the normalised copy above.
    submitted: SignedRequest | None = None


class PolicyRuleResult(Payload):
    rule: str
    outcome: Literal["passed", "failed", "flagged"]
    message: str = ""


class UserNotice(Payload):
    """v1.1: who tells the person their data was disclosed, and from when (the policy's rule for the
    authority's jurisdiction). `by: platform`: disclosure schedules the notice, never before
    `not_before` nor `nondisclosure_until`; `by: authority`: the issuing authority informs the person
    and the platform sends none."""

    by: Literal["platform", "authority"]
    not_before: AwareDatetime | None = None
    rule: str = Field(max_length=64)
    source: str = Field(max_length=256)


class RequestApproved(Payload):
    case_id: str
    request_id: str
    authority_id: str
    suspect: Suspect
    kind: Literal["disclosure", "preservation"]
    data_categories: list[str]
    period: Period
    hold_until: AwareDatetime | None = None
    nondisclosure_until: date | None = None
    policy_rules: list[PolicyRuleResult]
    decided_by: list[str]
    # v1.1 provenance: the signed request the decision answers, the authority key that verified it
    # (the package is sealed to it), and legal review's signature over this event's data.
    signed_request: SignedRequest | None = None
    authority_key: str | None = Field(default=None, max_length=64)
    decided_at: AwareDatetime | None = None
    decision_key_id: str | None = Field(default=None, max_length=16)
    decision_signature: str | None = Field(default=None, max_length=200)
    # v1.1: the user notice rule of the authority's jurisdiction (absent: the platform notifies).
    user_notice: UserNotice | None = None


class RejectionReason(Payload):
    code: str
    rule: str
    message: str


class RequestRejected(Payload):
    case_id: str
    request_id: str
    authority_id: str
    reasons: list[RejectionReason]
    decided_by: list[str]
    decided_at: AwareDatetime | None = None
    decision_key_id: str | None = Field(default=None, max_length=16)
    decision_signature: str | None = Field(default=None, max_length=200)


class RequestStatusValue(str, Enum):
    received = "received"
    invalid = "invalid"
    pending_review = "pending_review"
    approved = "approved"
    rejected = "rejected"
    disclosed = "disclosed"
    no_data = "no_data"
    preserved = "preserved"
    cancelled = "cancelled"  # v1.1: closed without effect (e.g. the authority was revoked before disclosure)


class StatusReason(Payload):
    code: str
    message: str = ""


class RequestStatus(Payload):
    request_id: str
    authority_id: str
    case_id: str | None = None
    status: RequestStatusValue
    reasons: list[StatusReason] = []
    at: AwareDatetime
    # v1.1: when the platform owes the authority its next answer (pending_review: the review deadline).
    deadline: AwareDatetime | None = None


class RedactedView(Payload):
    """In clear, for operators: each number's country calling code only (`+33 ***`), the count of IP addresses."""

    phone_numbers: list[str] = []
    ip_address_count: int = 0


class DisclosureIssued(Payload):
    """`warden.legal.disclosure.issued.v1`: a package sealed to its authority.

    `sealed`, `sha256` and `signature` are of the same bytes: the package's RFC 8785
    form with its random `nonce` and its `padding`.
    """

    case_id: str
    request_id: str
    authority_id: str
    account_id: str
    period: Period
    generated_at: AwareDatetime
    redacted: RedactedView
    sealed: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str


class NoticeDue(Payload):
    case_id: str
    account_id: str
    due_at: AwareDatetime


class AuditCheckpoint(Payload):
    """The head of a service's audit chain, signed by the audit key (warden/audit.py says over what)."""

    service: Literal["legal-review", "disclosure"]
    chain_id: str = Field(min_length=1, max_length=64, description="the chain's id (its audit_chain row)")
    seq: int = Field(ge=1)
    head: str = Field(pattern=r"^[0-9a-f]{64}$", description="hash of entry `seq`")
    at: AwareDatetime
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    signature: str = Field(min_length=1, max_length=200)


# --- registry and subscriber feed ---------------------------------------------------

class AuthorityKind(str, Enum):
    court = "court"
    prosecutor = "prosecutor"
    police = "police"


class RecordSignature(Payload):
    """An operator's signature of a registry record (warden/authorities.py says over what)."""

    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    signature: str = Field(min_length=1, max_length=200)


class AuthorityRegistered(Payload):
    authority_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=256)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    kind: AuthorityKind
    public_key: str = Field(min_length=40, max_length=64)
    status: Literal["active", "revoked"]
    updated_at: AwareDatetime
    # v1.1: by operator registry keys, over the RFC 8785 form of the record without `signatures`.
    signatures: list[RecordSignature] = Field(default=[], max_length=5)


class SubscriberAccountUpdated(Payload):
    account_id: str = Field(min_length=1, max_length=128)
    username: str | None = Field(default=None, max_length=64)
    phone_number: str | None = Field(default=None, max_length=32)
    country: str | None = Field(default=None, max_length=2)
    updated_at: AwareDatetime


class SubscriberSessionObserved(Payload):
    account_id: str = Field(min_length=1, max_length=128)
    ip: str = Field(min_length=2, max_length=45)
    observed_at: AwareDatetime


# --- moderation ---------------------------------------------------------------------

class ReportReason(str, Enum):
    illegal_goods = "illegal_goods"
    drugs = "drugs"
    weapons = "weapons"
    child_abuse = "child_abuse"
    terrorism = "terrorism"
    scam = "scam"
    violence = "violence"
    spam = "spam"
    copyright = "copyright"
    other = "other"


class ReportedContent(Payload):
    kind: Literal["channel", "group", "bot", "message", "user"]
    id: str = Field(min_length=1, max_length=256)
    owner_account_id: str | None = Field(default=None, max_length=128)
    title: str | None = Field(default=None, max_length=512)
    text: str | None = Field(default=None, max_length=8000)


class ReportSubmitted(Payload):
    report_id: str = Field(min_length=1, max_length=128)
    reporter_id: str = Field(min_length=1, max_length=128)
    reported_at: AwareDatetime
    surface: Literal["search", "chat", "channel"]
    content: ReportedContent
    reason: ReportReason
    comment: str | None = Field(default=None, max_length=2000)


class AppealSubmitted(Payload):
    appeal_id: str = Field(min_length=1, max_length=128)
    content_id: str = Field(min_length=1, max_length=256)
    account_id: str = Field(min_length=1, max_length=128)
    statement: str = Field(max_length=4000)
    submitted_at: AwareDatetime


class ContentDelisted(Payload):
    content_id: str
    decision_id: str
    category: str
    delisted_at: AwareDatetime


class ContentRelisted(Payload):
    content_id: str
    decision_id: str
    relisted_at: AwareDatetime


class ModerationDecision(Payload):
    """A DSA Art. 17 statement of reasons, with the DSA Transparency Database's fields (v1.1).

    `action`: delist | relist | keep (a notice found unfounded) | uphold (an appeal rejected).
    `decision_visibility` is empty for a decision that restricts nothing (keep, relist, uphold of
    a delisting already in force names the delisting's restriction)."""

    decision_id: str
    content_id: str
    action: str
    ground: str
    category: str
    automated_detection: bool
    automated_decision: Literal["FULLY", "PARTIALLY", "NOT_AUTOMATED"]
    facts: str
    appealable_until: AwareDatetime
    territorial_scope: list[str] = []
    # v1.1: the Transparency Database's fields (DECISION_VISIBILITY_*, CONTENT_TYPE_*, SOURCE_*).
    decision_visibility: list[str] = []
    ground_explanation: str | None = None
    content_type: list[str] = []
    source_type: str | None = None
    content_date: date | None = None
    puid: str | None = Field(default=None, max_length=500, pattern=r"^[a-zA-Z0-9_-]+$")


class ViolationConfirmed(Payload):
    account_id: str
    content_id: str
    category: str
    decided_at: AwareDatetime


class ViolationWithdrawn(Payload):
    """v1.1: a confirmed violation taken back (an appeal or a review overturned the delisting)."""

    account_id: str
    content_id: str
    decision_id: str
    withdrawn_at: AwareDatetime


class ModerationNotice(Payload):
    """v1.1: what the platform must tell a person: a reporter the outcome of their notice (DSA Art. 16(5),
    `notice_outcome`), an appellant the outcome of their complaint (Art. 20(5), `appeal_outcome`), a
    reporter warned or suspended for misuse (Art. 23, `misuse_warning`, `misuse_suspension`)."""

    notice_id: str
    account_id: str
    kind: Literal["notice_outcome", "appeal_outcome", "misuse_warning", "misuse_suspension"]
    decision_id: str | None = None
    content_id: str | None = None
    text: str
    at: AwareDatetime


class ContentMedia(Payload):
    media_id: str = Field(min_length=1, max_length=128)
    pdq: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    quality: int = Field(ge=0, le=100)


class ContentUpdated(Payload):
    """v1.1, on platform.content: what a public channel, group or bot is and who owns it, as the platform says."""

    content_id: str = Field(min_length=1, max_length=256)
    kind: Literal["channel", "group", "bot"]
    owner_account_id: str | None = Field(max_length=128)
    title: str | None = Field(default=None, max_length=512)
    text: str | None = Field(default=None, max_length=16384)
    language: str | None = Field(default=None, max_length=16)
    public_in_search: bool
    created_at: AwareDatetime
    updated_at: AwareDatetime
    media: list[ContentMedia] = Field(default=[], max_length=64)


class ContentRemoved(Payload):
    """v1.1, on platform.content: the content no longer exists on the platform."""

    content_id: str = Field(min_length=1, max_length=256)
    removed_at: AwareDatetime


EVENT_MODELS: dict[str, type[Payload]] = {
    "warden.legal.request.submitted.v1": LegalRequest,
    "warden.legal.request.received.v1": RequestReceived,
    "warden.legal.request.approved.v1": RequestApproved,
    "warden.legal.request.rejected.v1": RequestRejected,
    "warden.legal.request.status.v1": RequestStatus,
    "warden.legal.disclosure.issued.v1": DisclosureIssued,
    "warden.legal.notice.due.v1": NoticeDue,
    "warden.legal.audit.checkpoint.v1": AuditCheckpoint,
    "warden.legal.authority.registered.v1": AuthorityRegistered,
    "warden.subscriber.account.updated.v1": SubscriberAccountUpdated,
    "warden.subscriber.session.observed.v1": SubscriberSessionObserved,
    "warden.moderation.report.submitted.v1": ReportSubmitted,
    "warden.moderation.appeal.submitted.v1": AppealSubmitted,
    "warden.search.content.delisted.v1": ContentDelisted,
    "warden.search.content.relisted.v1": ContentRelisted,
    "warden.moderation.decision.v1": ModerationDecision,
    "warden.moderation.violation.confirmed.v1": ViolationConfirmed,
    "warden.moderation.violation.withdrawn.v1": ViolationWithdrawn,
    "warden.moderation.notice.v1": ModerationNotice,
    "warden.platform.content.updated.v1": ContentUpdated,
    "warden.platform.content.removed.v1": ContentRemoved,
}


# Each model is the data of exactly one event type: emitting a model says which.
EVENT_TYPES: dict[type[Payload], str] = {model: name for name, model in EVENT_MODELS.items()}
assert len(EVENT_TYPES) == len(EVENT_MODELS), "a model serves two event types"


def model_for(event_type: str) -> type[Payload]:
    return EVENT_MODELS[event_type]


def type_of(event: Payload) -> str:
    """The CloudEvents type of an event's data; KeyError for a model outside the contract."""
    return EVENT_TYPES[type(event)]
