"""`warden topics create|plan`: every contract topic and DLQ, with partitions and retention.

What the docker compose topic job runs; Kubernetes gets the same topics as
Strimzi `KafkaTopic` resources (deploy/k8s/base/kafka-topics.yaml).
"""
from __future__ import annotations

import json

import click

from warden.cli.common import bootstrap_option, bootstrap_servers, run
from warden.contract.topics import all_topic_names
from warden.runtime import kafka


def plan(replication_factor: int) -> list[dict]:
    """The topics `create` makes: name, partitions, replication factor and topic configs."""
    return [{"name": name, "partitions": kafka.partitions_of(name), "replication_factor": replication_factor,
             "configs": kafka.topic_configs(name)} for name in all_topic_names()]


replication_option = click.option("--replication-factor", default=1, show_default=True, type=click.IntRange(1),
                                  help="replicas of each partition (3 on a production cluster)")


@click.group()
def topics() -> None:
    """Create the contract's topics and DLQs on a Kafka cluster."""


@topics.command("plan")
@replication_option
def plan_command(replication_factor: int) -> None:
    """Print, one JSON object a line, the topics `create` would make (no broker needed)."""
    for entry in plan(replication_factor):
        click.echo(json.dumps(entry, sort_keys=True))


@topics.command("create")
@replication_option
@bootstrap_option
def create(replication_factor: int, bootstrap: str | None) -> None:
    """Create every missing topic and DLQ (existing ones are left as they are)."""
    created = run(kafka.create_topics(bootstrap_servers(bootstrap), replication_factor))
    for name in created:
        click.echo(f"created {name}")
    click.echo(f"{len(created)} created, {len(all_topic_names()) - len(created)} already there")
