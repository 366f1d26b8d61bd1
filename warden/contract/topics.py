"""The topic registry: every topic of the contract, declared once.

Each topic has a single writer (the `producer`), a key taken from the event data,
and the event types it may carry. Inbound topics come from outside Warden and
also accept CloudEvents in Kafka binary mode.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

DLQ_SUFFIX = ".dlq"
# Dead letters are kept a month for investigation and replay (`warden dlq`), on one partition.
DLQ_PARTITIONS = 1
DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    key: str  # dotted path into the event data
    event_types: tuple[str, ...]
    producer: str  # "external", "operators" or a service name
    description: str
    partitions: int = 4
    compacted: bool = False
    retention_ms: int = 7 * 24 * 3600 * 1000
    consumers: tuple[str, ...] = field(default=())
    # Principals that read the topic by assignment, with no consumer group and no DLQ (a command).
    readers: tuple[str, ...] = field(default=())
    # Consumers that read the topic as a view (Subscription.read_every_s): a few batches a second, in
    # their views' consumer group, never gating an effect.
    viewers: tuple[str, ...] = field(default=())
    # Services that also write an inbound topic beside its external writers (intake relays what
    # authorities submit over its HTTP API, as a gateway would).
    relayed_by: tuple[str, ...] = field(default=())

    @cached_property
    def writers(self) -> tuple[str, ...]:
        """Who may write the topic: one service, or for the status topic each stage that reports (and a
        service relaying an inbound topic). Read for every event emitted: worked out once."""
        return (*(name.strip() for name in self.producer.split(",")), *self.relayed_by)

    @property
    def inbound(self) -> bool:
        return self.producer in ("external", "operators")

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX

    def key_of(self, data: dict[str, Any]) -> str | None:
        value: Any = data
        for part in self.key.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return None if value is None else str(value)


TOPICS: dict[str, Topic] = {
    t.name: t
    for t in [
        Topic("legal.requests.submitted", "authority_id", ("warden.legal.request.submitted.v1",),
              "external", "Signed legal requests published by authorities' gateways, and by intake for its "
              "authority API (HTTP).",
              consumers=("intake",), relayed_by=("intake",)),
        Topic("legal.authorities", "authority_id", ("warden.legal.authority.registered.v1",),
              "operators", "Registry of recognised authorities and their keys (compacted).",
              partitions=1, compacted=True, retention_ms=-1,
              consumers=("intake", "legal-review", "disclosure")),
        Topic("platform.subscribers", "account_id",
              ("warden.subscriber.account.updated.v1", "warden.subscriber.session.observed.v1"),
              "external", "The platform's subscriber feed: account updates and observed IP sessions.",
              consumers=("disclosure",)),
        Topic("platform.content", "content_id",
              ("warden.platform.content.updated.v1", "warden.platform.content.removed.v1"),
              "external", "The platform's feed of its public channels, groups and bots: what each is and who "
              "owns it (the only source moderation's automated matching and ownership use).",
              consumers=("moderation",)),
        Topic("moderation.reports.submitted", "content.id", ("warden.moderation.report.submitted.v1",),
              "external", "User reports of content found in search, chats and channels.",
              consumers=("moderation",)),
        Topic("moderation.appeals.submitted", "content_id", ("warden.moderation.appeal.submitted.v1",),
              "external", "Owners' appeals against moderation decisions.",
              consumers=("moderation",)),
        Topic("legal.requests.received", "case_id", ("warden.legal.request.received.v1",),
              "intake", "Verified requests with normalised suspect identifiers.",
              consumers=("legal-review",)),
        Topic("legal.requests.decided", "case_id",
              ("warden.legal.request.approved.v1", "warden.legal.request.rejected.v1"),
              "legal-review", "Approval and rejection decisions with the policy rules that fired.",
              consumers=("disclosure",)),
        Topic("legal.disclosures.issued", "authority_id", ("warden.legal.disclosure.issued.v1",),
              "disclosure", "Sealed, signed, hashed disclosure packages (redacted view in clear).",
              consumers=("intake", "legal-review"), viewers=("intake", "legal-review")),
        Topic("legal.requests.status", "authority_id", ("warden.legal.request.status.v1",),
              "intake, legal-review, disclosure",
              "Status of each request, shared by every authority: ids, status, time and reason codes only "
              "(reason messages, deadlines and questions are on legal.requests.progress, served by the "
              "authority API). Several writers by design: each stage reports its own step (received/invalid, "
              "pending_review/needs_clarification/approved/rejected/withdrawn, disclosed/no_data/preserved/"
              "cancelled), keyed by authority; a reader orders one request's statuses by `at`.",
              consumers=("legal-review",), viewers=("legal-review",)),
        Topic("legal.requests.progress", "authority_id", ("warden.legal.request.progress.v1",),
              "intake, legal-review, disclosure",
              "Each status of legal.requests.status in full (reason messages, review deadline, a reviewer's "
              "question): internal, read by intake, which serves each authority its own over HTTP, and by "
              "operators (`warden request status`).",
              consumers=("intake",), readers=("operators",), viewers=("intake",)),
        Topic("legal.requests.amended", "authority_id", ("warden.legal.request.amended.v1",),
              "intake", "Authorities' signed answers to reviewers' questions (amendments of a request), "
              "received over the authority API and verified by intake; verified again by legal review.",
              consumers=("legal-review",)),
        Topic("legal.requests.withdrawn", "authority_id", ("warden.legal.request.withdrawn.v1",),
              "intake", "Authorities' signed withdrawals of a request, received over the authority API and "
              "verified by intake; verified again by legal review (closes the case) and disclosure (builds "
              "no package).",
              consumers=("legal-review", "disclosure")),
        Topic("legal.audit.checkpoints", "service", ("warden.legal.audit.checkpoint.v1",),
              "legal-review, disclosure", "Signed heads of the audit chains; the latest per service "
              "is what `warden audit verify` holds each chain to (compacted, kept forever).",
              partitions=1, compacted=True, retention_ms=-1, readers=("operators",)),
        Topic("legal.notices.due", "account_id", ("warden.legal.notice.due.v1",),
              "disclosure", "User notices due after a disclosure, never before nondisclosure_until."),
        Topic("search.delistings", "content_id",
              ("warden.search.content.delisted.v1", "warden.search.content.relisted.v1"),
              "moderation", "Content taken out of, or put back into, public search."),
        Topic("moderation.decisions", "content_id", ("warden.moderation.decision.v1",),
              "moderation", "DSA Art. 17 statements of reasons for every restriction."),
        Topic("moderation.violations", "account_id",
              ("warden.moderation.violation.confirmed.v1", "warden.moderation.violation.withdrawn.v1"),
              "moderation", "Human-confirmed violations by an account, and their withdrawal when overturned.",
              consumers=("legal-review",)),
        Topic("moderation.notices", "account_id", ("warden.moderation.notice.v1",),
              "moderation", "What the platform must tell a person: reporters of their notice's outcome "
              "(DSA Art. 16(5)), appellants of theirs (Art. 20(5)), reporters warned or suspended (Art. 23)."),
    ]
}

INBOUND_TOPICS = tuple(t.name for t in TOPICS.values() if t.inbound)
# Each event type travels on exactly one topic: emitting an event says where.
TOPIC_OF_TYPE: dict[str, Topic] = {event_type: t for t in TOPICS.values() for event_type in t.event_types}


def topic_of(event_type: str) -> Topic:
    return TOPIC_OF_TYPE[event_type]


def declaration_problems(service: str, consumes: Sequence[str], emits: Sequence[str], views: Sequence[str] = ()
                         ) -> list[str]:
    """How a service's declared topics and emitted event types depart from the registry (empty: none).

    A service consumes only topics that list it as a consumer, reads as views (`views`, a part of
    `consumes`) exactly the topics that list it as a viewer (its consumer groups and their grants follow
    from that: warden/contract/access.py), and emits only event types of topics it may write (the
    single-writer map; `legal.requests.status` has a writer per stage).
    """
    problems = []
    for name in consumes:
        if name not in TOPICS:
            problems.append(f"consumes {name}, which is not in the topic registry")
        elif service not in TOPICS[name].consumers:
            problems.append(f"consumes {name}, whose consumers are {', '.join(TOPICS[name].consumers) or 'none'}")
        elif (name in views) != (service in TOPICS[name].viewers):
            problems.append(f"reads {name} as {'a view' if name in views else 'an effect'}, where the registry "
                            f"has {service} read it as {'an effect' if name in views else 'a view'}")
    for event_type in emits:
        if event_type not in TOPIC_OF_TYPE:
            problems.append(f"emits {event_type}, which no topic carries")
        elif service not in TOPIC_OF_TYPE[event_type].writers:
            topic = TOPIC_OF_TYPE[event_type]
            problems.append(f"emits {event_type} on {topic.name}, which only {topic.producer} may write")
    return problems


def topic(name: str) -> Topic:
    return TOPICS[name]


def all_topic_names() -> list[str]:
    """Every topic Warden needs, DLQs included (a DLQ per consumed topic)."""
    names = list(TOPICS)
    names += [t.dlq for t in TOPICS.values() if t.consumers]
    return names
