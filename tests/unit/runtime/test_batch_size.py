"""A service may declare a larger consumer batch bound and more batches in flight; the operator's settings,
when set, still decide."""
import pytest
from pydantic import ValidationError

from warden.runtime.service import Service
from warden.runtime.settings import Settings


def service(batch_max_records=None) -> Service:
    return Service("svc", "svc", [], [], batch_max_records=batch_max_records)


def test_the_services_bound_applies_unless_the_operator_sets_one(monkeypatch):
    monkeypatch.delenv("WARDEN_BATCH_MAX_RECORDS", raising=False)
    assert service().batch_size(Settings()) == 500
    assert service(1000).batch_size(Settings()) == 1000
    monkeypatch.setenv("WARDEN_BATCH_MAX_RECORDS", "200")
    assert service(1000).batch_size(Settings()) == 200
    assert service().batch_size(Settings()) == 200


def test_moderation_takes_larger_batches(monkeypatch):
    from moderation.service import SERVICE
    monkeypatch.delenv("WARDEN_BATCH_MAX_RECORDS", raising=False)
    assert SERVICE.batch_size(Settings()) == 1000


def test_batches_in_flight_are_one_unless_the_service_or_the_operator_says(monkeypatch):
    from moderation.service import SERVICE
    monkeypatch.delenv("WARDEN_BATCHES_IN_FLIGHT", raising=False)
    assert Service("svc", "svc", [], []).in_flight(Settings()) == 1
    assert SERVICE.in_flight(Settings()) == 5
    monkeypatch.setenv("WARDEN_BATCHES_IN_FLIGHT", "1")
    assert SERVICE.in_flight(Settings()) == 1
    monkeypatch.setenv("WARDEN_BATCHES_IN_FLIGHT", "0")
    with pytest.raises(ValidationError):
        Settings()
