"""Each service declares what it consumes and emits; the runtime holds it to the topic registry."""
from __future__ import annotations

import dataclasses

import pytest

from warden.contract.access import grants
from warden.contract.events import ContentDelisted, RequestApproved, RequestStatus
from warden.runtime.outbox import event_row
from warden.runtime.runner import SERVICE_MODULES, load_service
from warden.runtime.service import ConfigurationError, Subscription
from warden.runtime.settings import Settings


@pytest.mark.parametrize("name", list(SERVICE_MODULES))
def test_every_service_matches_the_registry(name):
    load_service(name).check_contract()


def test_a_service_emitting_on_another_services_topic_does_not_start():
    intake = load_service("intake")
    rogue = dataclasses.replace(intake, emits=(*intake.emits, RequestApproved))
    with pytest.raises(ConfigurationError, match="emits warden.legal.request.approved.v1 on legal.requests.decided, "
                                                 "which only legal-review may write"):
        rogue.check_contract()


def test_a_service_reading_a_topic_it_is_not_a_consumer_of_does_not_start():
    disclosure = load_service("disclosure")
    rogue = dataclasses.replace(disclosure, subscriptions=[*disclosure.subscriptions,
                                                           Subscription("moderation.reports.submitted")])
    with pytest.raises(ConfigurationError, match="consumes moderation.reports.submitted, whose consumers are"):
        rogue.check_contract()


def test_emission_follows_the_model_and_the_single_writer_map():
    row = event_row("moderation", ContentDelisted(content_id="c1", decision_id="d1", category="drugs",
                                                  delisted_at="2026-12-01T00:00:00Z"))
    assert (row.topic, row.event_type, row.key) == ("search.delistings", "warden.search.content.delisted.v1", b"c1")
    status = RequestStatus(request_id="r", authority_id="a", status="received", at="2026-12-01T00:00:00Z")
    assert event_row("intake", status).topic == "legal.requests.status"  # one writer per stage
    with pytest.raises(ValueError, match="moderation may not write legal.requests.status"):
        event_row("moderation", status)


def test_a_topic_read_as_structs_whose_model_does_not_translate_does_not_start():
    legal_review = load_service("legal-review")
    rogue = dataclasses.replace(legal_review, subscriptions=[
        dataclasses.replace(s, structs=True) if s.topic == "legal.requests.received" else s
        for s in legal_review.subscriptions])
    with pytest.raises(ConfigurationError, match="legal.requests.received is read as structs, but Suspect has "
                                                 "validators"):
        rogue.check_contract()


@pytest.mark.parametrize("name, topic, read_every_s, message", [
    # A view's group is granted only to the registry's viewers: the service would join a group it may not read.
    ("disclosure", "legal.requests.withdrawn", 0.25,
     "reads legal.requests.withdrawn as a view, where the registry has disclosure read it as an effect"),
    ("intake", "legal.requests.progress", 0.0,
     "reads legal.requests.progress as an effect, where the registry has intake read it as a view"),
])
def test_a_service_reading_a_topic_otherwise_than_the_registry_says_does_not_start(name, topic, read_every_s, message):
    service = load_service(name)
    rogue = dataclasses.replace(service, subscriptions=[
        dataclasses.replace(s, read_every_s=read_every_s) if s.topic == topic else s for s in service.subscriptions])
    with pytest.raises(ConfigurationError, match=message):
        rogue.check_contract()


@pytest.mark.parametrize("name", list(SERVICE_MODULES))
def test_each_service_is_granted_exactly_the_consumer_groups_it_joins(name):
    service = load_service(name)
    effects, views = service.consumers()
    settings = Settings(group_prefix="acme")
    joined = {settings.group_id(name)} | ({settings.views_group_id(name)} if views is not None else set())
    granted = {g.name for g in grants("acme")[name] if g.resource_type == "group"}
    assert granted == joined
