"""The bench's table: the feed's ratio to echo and every store size against the first, each judged."""
from bench.report import markdown


def size(sessions: int, p50: float, p99: float) -> dict:
    return {"sessions": sessions, "load_rows_per_s": 80_000, "sessions_mb": sessions * 145 // 2**20,
            "build": {"p50_ms": p50, "p99_ms": p99}, "query": {"p99_ms": 1.0}}


def test_the_table_judges_ingest_against_echo_and_each_store_size_against_the_first():
    store = {"sizes": [size(1_000_000, 10.0, 20.0), size(10_000_000, 11.0, 25.0), size(100_000_000, 25.0, 30.0)]}
    store["sizes"][1].update(build_p50_ratio=1.1, build_p99_ratio=1.25)
    store["sizes"][2].update(build_p50_ratio=2.5, build_p99_ratio=1.5)
    results = {"machine": {}, "options": {}, "echo": {"events_per_s": 10_000.0},
               "ingest": {"events_per_s": 4_000.0, "ratio_to_echo": 0.4}, "store": store}
    table = markdown(results)
    assert "| ingest / echo | >= 0.5 | 0.4 ✗ |" in table
    assert "| package build ratio 10 M sessions / first, p50 | < 2 | 1.1 ✓ |" in table
    assert "| package build ratio 100 M sessions / first, p50 | < 2 | 2.5 ✗ |" in table
    assert "| package build, 100 M sessions: p50 / p99 ms |  | 25 / 30 |" in table
    assert "ratio 1 M sessions" not in table  # the first size is the reference, not compared with itself
