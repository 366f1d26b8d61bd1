"""JSON logs: UTC timestamps with their zone, no terminal colour codes, whatever the host and the library."""
from __future__ import annotations

import json
import logging
import time

from warden.runtime.logs import configure_logging


def test_log_lines_carry_utc_time_and_no_ansi_escapes(capsys, monkeypatch):
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        configure_logging("intake")
        logging.getLogger("uvicorn.error").warning(
            "Started server process [%d]", 42, extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"})
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
        logging.getLogger().handlers[:] = []
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["time"].endswith("+00:00") and "T" in line["time"]
    assert "\x1b" not in json.dumps(line) and "color_message" not in line
    assert line["message"] == "Started server process [42]" and line["service"] == "intake"
