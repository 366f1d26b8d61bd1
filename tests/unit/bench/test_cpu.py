"""CPU shares per process group: only what ran inside the window counts."""
import os
import subprocess
import sys

from bench.cpu import RunSampler, busiest_window, cpu_seconds, serves_from, share_of_core
from bench.report import cpu_drift


def test_share_is_cpu_seconds_per_window_second_in_percent_of_one_core():
    before = {"broker": {10: 5.0}, "postgres": {20: 1.0, 21: 2.0}}
    after = {"broker": {10: 8.0}, "postgres": {20: 1.5, 21: 3.0}}
    assert share_of_core(before, after, seconds=10) == {"broker": 30.0, "postgres": 15.0}


def test_a_process_that_appeared_or_vanished_inside_the_window_is_left_out():
    before = {"postgres": {20: 1.0, 99: 50.0}}  # 99 ended before the second sample
    after = {"postgres": {20: 2.0, 30: 40.0}}  # 30 started after the first one
    assert share_of_core(before, after, seconds=10) == {"postgres": 10.0}


def test_gone_pids_are_skipped_when_sampling():
    sampled = cpu_seconds({"me": [os.getpid()], "nobody": [2**22 + 12345]})
    assert os.getpid() in sampled["me"] and sampled["nobody"] == {}


def test_drift_lists_the_busiest_at_the_end_first():
    line = cpu_drift({"broker": 30.2, "intake": 25.0}, {"broker": 52.7, "intake": 21.9})
    assert line == "broker 30 → 53 · intake 25 → 22"


def samples_of(*points):
    """(time, {role: {pid: CPU seconds so far}}) from (time, {role: seconds}) with one pid per role."""
    return [(t, {role: {hash(role) % 1000: used} for role, used in roles.items()}) for t, roles in points]


def test_the_busiest_window_is_where_the_services_worked_not_where_the_bench_did():
    samples = samples_of((0, {"intake": 0, "bench": 0}), (10, {"intake": 1, "bench": 1}),
                         (20, {"intake": 9, "bench": 2}), (30, {"intake": 17, "bench": 3}),
                         (40, {"intake": 18, "bench": 19}))  # the drain: the bench reads every topic back
    cores = busiest_window(samples, 20, ["intake"])
    assert cores == {"intake": 0.8, "bench": 0.1}
    assert busiest_window(samples, 50, ["intake"]) is None  # the samples span 40 s


def test_a_process_missing_from_one_sample_loses_that_second_and_a_new_one_counts_from_its_first():
    samples = [(0, {"postgres": {1: 0.0}, "intake": {5: 0}}),
               (1, {"postgres": {1: 0.5, 2: 0.0}, "intake": {5: 1}}),  # backend 2 connects
               (2, {"postgres": {2: 0.5}, "intake": {5: 2}}),  # backend 1 not read this time
               (3, {"postgres": {1: 1.5, 2: 1.0}, "intake": {5: 3}}),
               (4, {"postgres": {1: 2.0, 2: 1.5}, "intake": {5: 4}})]
    cores = busiest_window(samples, 4, ["intake"])
    assert cores == {"postgres": round((0.5 + 0.5 + 0.5 + 1.0) / 4, 3), "intake": 1.0}


def test_a_postmaster_is_told_by_its_data_directory():
    line = "/x/bin/postgres -D /runs/1-after/work/postgres -h  -k /runs/1-after/work/postgres"
    assert serves_from("postgres", line, "/runs/1-after")
    assert not serves_from("postgres", line, "/runs/1-aft")  # another run's directory that shares a prefix
    assert not serves_from("postgres", line, "/runs/2-after")
    assert not serves_from("python", line, "/runs/1-after")


def test_a_run_is_sampled_by_role_from_outside():
    """A child that names itself a service is counted under that name, the run's own process as `bench` (the
    test session's other children, such as its broker, may be there too)."""
    burn = "import time\nend = time.process_time() + 1.2\nwhile time.process_time() < end: pass"
    with subprocess.Popen([sys.executable, "-c", burn, "service", "burner"]) as child:
        with RunSampler(os.getpid(), "/nowhere", every_s=0.1) as sampler:
            child.wait()
    cores = busiest_window(sampler.samples, 0.6, ["burner"])
    assert cores is not None and cores["burner"] >= 0.5 and "bench" in cores
    assert "postgres" not in cores  # no server's data directory lies under /nowhere
