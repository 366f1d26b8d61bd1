"""The echo baseline is the mean of the runs before and after the sections compared with it."""
from bench.echo import bracketing
from bench.report import markdown


def run(events_per_s: float) -> dict:
    return {"events": 100_000, "seconds": 100_000 / events_per_s, "events_per_s": events_per_s}


def test_the_baseline_is_the_mean_of_the_runs_and_each_run_is_kept():
    echo = bracketing([run(40_000.0), run(60_000.0)])
    assert echo["events_per_s"] == 50_000.0
    assert [r["events_per_s"] for r in echo["runs"]] == [40_000.0, 60_000.0]


def test_the_table_shows_the_baseline_and_each_run():
    results = {"machine": {}, "options": {}, "echo": bracketing([run(40_000.0), run(60_000.0)]),
               "moderation": {"reports_per_s": 26_000.0, "ratio_to_echo": 0.52}}
    table = markdown(results)
    assert "| echo baseline, events/s |  | 50,000 |" in table
    assert "| echo runs, events/s (before · after the sections compared with it) |  | 40,000 · 60,000 |" in table
    assert "| moderation / echo | >= 0.5 | 0.52 ✓ |" in table
