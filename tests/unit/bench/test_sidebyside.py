"""The side-by-side comparison of two checkouts' legal pipeline: run order and the ratios it reports."""
import pytest

from bench.sidebyside import Run, by_role, compare, markdown, order, run_of


def result(p99: float, steps: int = 1, held_per_s: float = 200) -> dict:
    step = {"p50_ms": p99 / 2, "p99_ms": p99, "held_per_s": held_per_s}
    return {"started_at": "2026-12-03T08:00:00+00:00", "legal": {"steps": [step] * steps}}


def test_pairs_alternate_which_side_runs_first():
    assert order(3) == [(0, "before"), (0, "after"), (1, "after"), (1, "before"), (2, "before"), (2, "after")]


def test_a_run_is_read_from_the_bench_result_with_the_cores_of_each_role_per_request_held():
    run = run_of(result(250.0), "after", 2, {"broker": 0.3, "postgres": 0.25, "intake": 0.2})
    assert (run.side, run.pair, run.p99_ms, run.cpu_ms_per_request) == ("after", 2, 250.0, 3.75)
    assert run.cpu_by_role == {"broker": 1.5, "intake": 1.0, "postgres": 1.25}
    assert run_of(result(250.0), "after", 2, None).cpu_ms_per_request is None  # not measured
    with pytest.raises(ValueError):
        run_of(result(250.0, steps=2), "after", 0, {"broker": 0.3})  # two rates: not one figure


def run(side: str, pair: int, p99: float, cpu: float) -> Run:
    return Run(side=side, pair=pair, started_at="", p50_ms=0, p99_ms=p99, cpu_ms_per_request=cpu, held_per_s=200)


def test_ratios_are_after_over_before_per_pair_and_over_the_means():
    summary = compare([run("before", 0, 200, 7.0), run("after", 0, 220, 7.7),
                       run("after", 1, 330, 8.0), run("before", 1, 300, 8.0),
                       run("before", 2, 250, 7.5)])  # pair 2 never finished: left out
    assert [row["p99_ratio"] for row in summary["pairs"]] == [1.1, 1.1]
    assert summary["p99_mean_before"] == 250 and summary["p99_mean_after"] == 275
    assert summary["p99_ratio_of_means"] == 1.1
    assert summary["cpu_ratio_of_means"] == round(7.85 / 7.5, 3)
    assert summary["cpu_median_ratio"] == round((1.1 + 1.0) / 2, 3)
    assert summary["p99_ratio_interval"] == (1.1, 1.1)  # both pairs read 1.1: every draw does too
    assert "**1.1** (90 % bootstrap interval over the pairs 1.1–1.1)" in markdown(summary, "/a", "/b", 200, 60)


def test_no_complete_pair_is_an_error_not_a_ratio():
    with pytest.raises(ValueError):
        compare([run("before", 0, 200, 7.0)])


def test_a_side_whose_cpu_was_not_measured_compares_on_p99_alone():
    before = run_of({"started_at": "", "legal": {"steps": [{"p50_ms": 90, "p99_ms": 200, "held_per_s": 199.6}]}},
                    "before", 0, None)
    assert before.cpu_ms_per_request is None
    summary = compare([before, run("after", 0, 210, 7.0)])
    assert summary["p99_ratio_of_means"] == 1.05 and summary["pairs"][0]["cpu_ratio"] is None
    assert summary["cpu_ratio_of_means"] is None and summary["cpu_median_ratio"] is None
    report = markdown(summary, "/v1", "/b", 200, 60)
    assert "**1.05**" in report and "| n/a | 7.0 | n/a |" in report and "not measured on both sides" in report


def test_cpu_by_role_is_each_side_s_mean_and_a_role_one_side_lacks_costs_it_nothing():
    runs = [Run("before", 0, "", 0, 200, 3.0, 200, {"intake": 1.0, "postgres": 2.0}),
            Run("after", 0, "", 0, 220, 4.5, 200, {"intake": 1.5, "postgres": 2.0, "views": 1.0}),
            Run("after", 1, "", 0, 210, 5.5, 200, {"intake": 2.5, "postgres": 2.0, "views": 1.0}),
            Run("before", 1, "", 0, 200, 3.0, 200, {"intake": 1.0, "postgres": 2.0})]
    assert by_role(runs) == {"intake": {"before": 1.0, "after": 2.0}, "postgres": {"before": 2.0, "after": 2.0},
                             "views": {"after": 1.0}}
    report = markdown(compare(runs), "/a", "/b", 200, 60)
    assert "| intake | 1.0 | 2.0 | 1.0 |" in report and "| views | n/a | 1.0 | n/a |" in report


def test_the_report_says_what_other_load_the_runs_shared_the_machine_with():
    summary = compare([run("before", 0, 200, 7.0), run("after", 0, 220, 7.7)])
    assert "busy loops taking 1.2 of the machine's cores" in markdown(summary, "/a", "/b", 200, 60, busy=1.2)
    assert "other load" not in markdown(summary, "/a", "/b", 200, 60)
