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


def legal_step(**extra) -> dict:
    return {"target_per_s": 200.0, "held_per_s": 199.5, "sent": 100, "issued": 100, "p50_ms": 150.0,
            "p95_ms": 200.0, "p99_ms": 240.0, **extra}


def test_a_legal_step_shows_its_wal_per_request_by_table_or_why_it_has_none():
    wal = {"kb_per_item": 52.04, "items": 100, "by_table_kb_per_item": {"disclosure.outbox": 11.6, "intake.outbox": 4.2},
           "other_kb_per_item": 36.24}
    results = {"machine": {}, "options": {}, "legal": {"steps": [
        legal_step(wal=wal), legal_step(wal={"unavailable": "no WAL figures: permission denied"})]}}
    table = markdown(results)
    assert ("| legal @ 200/s: WAL KB per request, the tables that wrote most |  | "
            "52.0: disclosure.outbox 11.6 · intake.outbox 4.2 · other 36.2 |") in table
    assert "| no WAL figures: permission denied |" in table
    assert "WAL" not in markdown({"machine": {}, "options": {}, "legal": {"steps": [legal_step()]}})


def test_each_fetch_wait_shows_a_hops_latency_and_the_brokers_cpu():
    hop = {"fetch_wait_ms": 75, "sent": 4000, "received": 4000, "p50_ms": 21.04, "p95_ms": 38.0, "p99_ms": 42.1,
           "max_ms": 43.3, "samples": 4000, "broker_cpu_pct": 6.7}
    external = {**hop, "fetch_wait_ms": 25, "broker_cpu_pct": None}
    table = markdown({"machine": {}, "options": {}, "broker": {"hop_fetch_wait_75": hop,
                                                                "hop_fetch_wait_25": external,
                                                                "growth_skipped": "the broker is external"}})
    assert ("| one hop, 200 records/s, fetch wait 75 ms: p50 / p99 / max ms; broker CPU % of one core |  | "
            "21 / 42 / 43; 6.7 |") in table
    assert "fetch wait 25 ms: p50 / p99 / max ms; broker CPU % of one core |  | 21 / 42 / 43; – |" in table
