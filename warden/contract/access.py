"""Who may do what on Kafka: ACLs derived from the topic registry's single-writer map.

One principal per service (its name), plus the principals outside Warden that write
its inbound topics: `authority-gateway` (the authorities' requests), `platform` (every
other external feed: subscribers, content, reports, appeals) and `operators` (the
authority registry, signed by `warden authority`). Each principal may:
- Write and Describe the topics it produces, and the DLQs of the topics it consumes;
- Read and Describe the topics it consumes, and Read the consumer groups it joins (`groups_of`);
- Read and Describe the topics it is a `reader` of (operators: `warden audit verify` reads
  legal.audit.checkpoints and `warden request status` legal.requests.status by assignment, with no group);
- operators also Read and Describe every DLQ (`warden dlq list|show|replay`). A replay writes the
  source topic, which only its writers may: it runs with the credentials of one of them.
Nothing else: no other principal can write a topic, whatever it sends.

deploy/k8s/generate.py turns this into Strimzi `KafkaUser`s and deploy/compose into
`kafka-acls` calls; the deployment tests check both against it and against TOPICS.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from warden.contract.topics import TOPICS, Topic

SERVICES = ("intake", "legal-review", "disclosure", "moderation")
# The external writer of each inbound topic; an inbound topic not named here is the platform's.
EXTERNAL_WRITERS = {"legal.requests.submitted": "authority-gateway"}
PLATFORM = "platform"
OPERATORS = "operators"
_OPERATION_ORDER = ("Read", "Write", "Describe")


@dataclass(frozen=True)
class Grant:
    resource_type: str  # "topic" or "group"
    name: str
    operations: tuple[str, ...]


def writers_of(topic: Topic) -> tuple[str, ...]:
    """The principals that may write the topic (its `producer`, one or a comma-separated few)."""
    if topic.producer == "external":
        return (EXTERNAL_WRITERS.get(topic.name, PLATFORM), *topic.relayed_by)
    return tuple(part.strip() for part in topic.producer.split(","))


def principals() -> tuple[str, ...]:
    """Every principal the registry names, services first."""
    named = {w for t in TOPICS.values() for w in writers_of(t)} | {c for t in TOPICS.values() for c in t.consumers}
    others = sorted(named - set(SERVICES))
    return (*[s for s in SERVICES if s in named], *others)


def consumer_groups(group_prefix: str, service: str) -> tuple[str, str]:
    """The service's consumer groups: its effects' `<prefix>-<service>` and its views'
    `<prefix>-<service>-views` (warden/runtime/service.py, Service.consumers)."""
    return f"{group_prefix}-{service}", f"{group_prefix}-{service}-views"


def grants(group_prefix: str = "warden") -> dict[str, list[Grant]]:
    """Each principal's grants, topics in registry order then DLQs, then its consumer groups."""
    operations: dict[str, dict[str, set[str]]] = defaultdict(dict)

    def allow(principal: str, topic: str, *ops: str) -> None:
        operations[principal].setdefault(topic, set()).update(ops)

    for topic in TOPICS.values():
        for writer in writers_of(topic):
            allow(writer, topic.name, "Write", "Describe")
        for consumer in topic.consumers:
            allow(consumer, topic.name, "Read", "Describe")
        for reader in topic.readers:
            allow(reader, topic.name, "Read", "Describe")
    for topic in TOPICS.values():
        for consumer in topic.consumers:
            allow(consumer, topic.dlq, "Write", "Describe")
        if topic.consumers:
            allow(OPERATORS, topic.dlq, "Read", "Describe")
    result: dict[str, list[Grant]] = {}
    for principal in principals():
        result[principal] = [Grant("topic", name, tuple(op for op in _OPERATION_ORDER if op in ops))
                             for name, ops in operations[principal].items()]
        result[principal] += [Grant("group", group, ("Read",)) for group in groups_of(group_prefix, principal)]
    return result


def groups_of(group_prefix: str, service: str) -> tuple[str, ...]:
    """The consumer groups the service joins (Service.consumers): its effects' group, and its views' group
    when it reads some topics as views and others not (a service reading only views has one consumer,
    in the effects' group); nothing for a service that consumes nothing."""
    consumed = [t for t in TOPICS.values() if service in t.consumers]
    if not consumed:
        return ()
    viewed = [t for t in consumed if service in t.viewers]
    effects, views = consumer_groups(group_prefix, service)
    return (effects, views) if 0 < len(viewed) < len(consumed) else (effects,)
