"""Stopping a child process the one way Warden does: SIGTERM, a grace period, then SIGKILL."""
from __future__ import annotations

import signal
import subprocess


def stop_process(process: subprocess.Popen | None, timeout: float) -> int | None:
    """Ask nicely (SIGTERM, so services drain and commit), kill after `timeout` s; the exit code."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
