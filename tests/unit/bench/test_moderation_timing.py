"""How the moderation section times a burst: by the reports' sequence while it runs, counting rows only at the end."""
from pathlib import Path

import pytest

from bench import moderation


class Database:
    """The worker's progress as the bench's queries see it: reports inserted (the sequence) and committed."""

    def __init__(self, inserted: list[int], committed: list[int]):
        self.inserted, self.committed = inserted, committed
        self.queries: list[str] = []

    async def fetchval(self, sql: str, *args) -> int:
        kind = "sequence" if "reports_seq_seq" in sql else "count"
        self.queries.append(kind)
        values = self.inserted if kind == "sequence" else self.committed
        return values.pop(0) if len(values) > 1 else values[0]


class Service:
    log_path = Path("moderation.log")

    def __init__(self):
        self.profiled = 0

    def profile(self, out: Path, seconds: float) -> None:
        self.profiled += 1


@pytest.fixture(autouse=True)
def no_wait(monkeypatch):
    monkeypatch.setattr(moderation, "POLL_S", 0)


async def test_reports_are_counted_only_once_the_sequence_says_all_were_inserted():
    db = Database(inserted=[0, 0, 300, 700, 1000], committed=[400, 1000])
    first, last, spent = await moderation._time_reports(db, "bench-x-%", 1000, Service(), None)
    assert db.queries == ["sequence"] * 5 + ["count"] * 2  # no scan of the table while the burst runs
    assert first < last and spent >= 0


async def test_the_clock_starts_at_the_first_report_inserted_and_profiles_once():
    service = Service()
    db = Database(inserted=[0, 1, 500, 1000], committed=[1000])
    first, last, _ = await moderation._time_reports(db, "bench-x-%", 1000, service, Path("moderation.svg"))
    assert service.profiled == 1 and first <= last


async def test_a_worker_that_never_commits_them_all_is_an_error(monkeypatch):
    db = Database(inserted=[1000], committed=[999])
    clock = iter([0.0, 0.0, 1000.0])
    monkeypatch.setattr(moderation.time, "monotonic", lambda: next(clock, 1000.0))
    with pytest.raises(RuntimeError, match="999 of 1000"):
        await moderation._time_reports(db, "bench-x-%", 1000, Service(), None)
