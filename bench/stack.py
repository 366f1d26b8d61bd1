"""Where the bench runs: the embedded broker and Postgres it starts itself, or external ones.

KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL, when set, point at an existing stack
(`warden up`, compose, Kubernetes); otherwise a Tansu broker and an embedded
PostgreSQL are started under the work directory and stopped at the end. Every
section gets its own database and consumer groups, so sections never see each
other's state.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from bench.cpu import with_children
from warden.keys import development_environment, development_keys
from warden.embedded import EmbeddedKafka, EmbeddedPostgres, free_port
from warden.processes import stop_process
from warden.runtime.kafka import create_topics

ROOT = Path(__file__).resolve().parent.parent


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def created_database(server_url: str, name: str) -> str:
    """The URL of a new database `name` on the server of `server_url` (the cost tools' own server)."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


class Stack:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.broker: EmbeddedKafka | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        self.database_url = os.environ.get("DATABASE_URL", "")
        self.run_id = uuid.uuid4().hex[:8]

    @property
    def embedded(self) -> bool:
        return self.broker is not None

    def start(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.bootstrap:
            self.broker = EmbeddedKafka(log_file=self.workdir / "kafka.log").start()
            self.bootstrap = self.broker.bootstrap
        if not self.database_url:
            data = self.workdir / "postgres"
            shutil.rmtree(data, ignore_errors=True)
            self.postgres = EmbeddedPostgres(data).start()
            self.database_url = self.postgres.url
        asyncio.run(create_topics(self.bootstrap))
        # Trust anchors as `warden up` makes them; the services inherit them with the environment.
        self.keys = development_keys(self.workdir / "keys")
        os.environ.update(development_environment(self.keys, os.environ))
        return self

    def fresh_broker(self) -> None:
        """Replace the embedded broker by an empty one (new port), with every contract topic."""
        self.broker.stop()
        self.broker = EmbeddedKafka(log_file=self.workdir / "kafka.log").start()
        self.bootstrap = self.broker.bootstrap
        asyncio.run(create_topics(self.bootstrap))

    def stop(self) -> None:
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.stop()
            shutil.rmtree(self.workdir / "postgres", ignore_errors=True)  # the 10 M store is 1.4 GB

    def server_pids(self) -> dict[str, list[int]]:
        """The embedded broker's and Postgres's processes (none for an external stack)."""
        out: dict[str, list[int]] = {}
        if self.broker and self.broker.process:
            out["broker"] = [self.broker.process.pid]
        if self.postgres and self.postgres.server:
            out["postgres"] = with_children(self.postgres.server.get_pid())
        return out

    def describe(self) -> dict:
        return {"kafka": "embedded Tansu" if self.broker else "external",
                "postgres": "embedded" if self.postgres else "external"}

    async def new_database(self, label: str) -> str:
        """A fresh database for one section (falls back to DATABASE_URL itself without CREATEDB)."""
        name = f"bench_{label}_{self.run_id}"
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.InsufficientPrivilegeError:
            return self.database_url
        finally:
            await conn.close()
        return with_database(self.database_url, name)

    async def drop_database(self, url: str) -> None:
        if url == self.database_url:
            return
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')
        finally:
            await conn.close()


class ServiceProcess:
    """`python -m warden.cli.main service NAME`, its readiness, its peak RSS, optionally py-spy."""

    def __init__(self, name: str, bootstrap: str, database_url: str, group_prefix: str, logs: Path,
                 extra_env: dict[str, str] | None = None):
        self.name = name
        self.port = free_port()
        self.env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, DATABASE_URL=database_url,
                        WARDEN_HTTP_PORT=str(self.port), WARDEN_HTTP_HOST="127.0.0.1",
                        WARDEN_GROUP_PREFIX=group_prefix, WARDEN_LOG_LEVEL="WARNING",
                        # bench databases are throwaway: disclosure may keep a generated key there
                        WARDEN_EMBEDDED_DEFAULTS=os.environ.get("WARDEN_EMBEDDED_DEFAULTS", "true"),
                        PYTHONPATH=str(ROOT), **(extra_env or {}))
        self.log_path = logs / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.peak_rss = 0
        self._sampling = False
        self._sampler: threading.Thread | None = None
        self.profiles: list[subprocess.Popen] = []

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "warden.cli.main", "service", self.name],
                                        env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        proc = psutil.Process(self.process.pid)
        while self._sampling:
            try:
                self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.2)

    def reset_peak(self) -> None:
        try:
            self.peak_rss = psutil.Process(self.process.pid).memory_info().rss
        except psutil.Error:
            pass

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.2)

    def profile(self, out: Path, seconds: float, rate: int = 100) -> None:
        """py-spy record in the background (needs py-spy on PATH or in the venv)."""
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(exe).exists():
            print(f"  (py-spy not installed: no profile of {self.name})", file=sys.stderr)
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        self.profiles.append(subprocess.Popen(
            [exe, "record", "--pid", str(self.process.pid), "--duration", str(max(int(seconds), 1)),
             "--rate", str(rate), "--format", {".json": "speedscope", ".txt": "raw"}.get(out.suffix, "flamegraph"),
             "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self, timeout: float = 30) -> None:
        for p in self.profiles:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        self._sampling = False
        stop_process(self.process, timeout)
