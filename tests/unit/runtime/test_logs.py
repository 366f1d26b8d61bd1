import logging

from warden.runtime.logs import RepeatFilter


def record(name: str, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)


def test_a_repeated_client_error_passes_once_per_interval():
    repeats = RepeatFilter(interval_s=60)
    assert repeats.filter(record("aiokafka", "Unable connect to %s"))
    assert not repeats.filter(record("aiokafka", "Unable connect to %s"))
    assert repeats.filter(record("aiokafka", "another message"))
    assert repeats.filter(record("aiokafka.consumer", "Unable connect to %s"))


def test_warden_own_records_are_never_held_back():
    repeats = RepeatFilter(interval_s=60)
    assert all(repeats.filter(record("warden.runtime.consumer", "event dead-lettered")) for _ in range(3))


def test_it_passes_again_after_the_interval():
    repeats = RepeatFilter(interval_s=0)
    assert repeats.filter(record("kafka", "x")) and repeats.filter(record("kafka", "x"))
