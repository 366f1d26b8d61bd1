"""`python -m bench.legal_cost`: the bench's court orders through intake, legal review and disclosure's batch
processors, with no broker, each service handing the next what its transactions emitted."""
from __future__ import annotations

from bench.legal_cost import measure
from tests.support import keys


async def test_every_request_goes_through_the_three_services_and_each_one_s_cost_is_counted(postgres):
    figures = await measure(postgres.url, postgres.server.get_pid(), 30, 15, keys.REGISTRY["private_key"])

    assert [figures[s]["emitted"] for s in ("intake", "legal-review", "disclosure")] == [30, 30, 30]
    assert all(figures[s]["worker_cpu_us"] > 0 for s in ("intake", "legal-review", "disclosure"))
    assert figures["total_us"] >= sum(figures[s]["worker_cpu_us"] for s in ("intake", "legal-review", "disclosure"))


async def test_the_views_are_fed_what_the_three_services_emitted_and_their_cost_is_counted_apart(postgres):
    figures = await measure(postgres.url, postgres.server.get_pid(), 30, 15, keys.REGISTRY["private_key"])

    # Each request's package, and its three statuses (received, approved, disclosed): in full for intake's
    # authority view, as shared for legal review's record of outcomes.
    assert figures["intake views"]["events"] == figures["legal-review views"]["events"] == 30 * 4
    assert all(figures[f"{s} views"]["worker_cpu_us"] > 0 for s in ("intake", "legal-review"))
    assert "disclosure views" not in figures  # disclosure has none
