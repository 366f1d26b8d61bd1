"""Service.consumers: which subscriptions a service's views consumer reads, apart from its effects'."""
from __future__ import annotations

from warden.runtime.service import Service, Subscription

PROGRESS, STATUS = "legal.requests.progress", "legal.requests.status"


async def handler(ctx, items) -> None:
    pass


def test_the_views_are_read_apart_from_the_effects():
    effect = Subscription(STATUS, handle_batch=handler)
    view = Subscription(PROGRESS, handle_batch=handler, read_every_s=0.25)
    service = Service("s", "s", [view, effect], [])
    effects, views = service.consumers()
    assert (effects.subscriptions, views.subscriptions) == ([effect], [view])
    assert (effects.name, views.name, effects.schema, views.schema) == ("s", "s", "s", "s")


def test_a_service_without_views_or_with_nothing_else_has_one_consumer():
    effect = Subscription(STATUS, handle_batch=handler)
    view = Subscription(PROGRESS, handle_batch=handler, read_every_s=0.25)
    alone = Service("s", "s", [effect], [])
    assert alone.consumers() == (alone, None)
    only_views = Service("s", "s", [view], [])
    assert only_views.consumers() == (only_views, None)
