"""`warden up` (the whole system on the embedded default) and `warden service NAME`."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click

from warden.cli.common import KEYS_DIR, STACK_DIR, STACK_FILE
from warden.embedded import EmbeddedKafka, EmbeddedPostgres, NotInstalled, free_port
from warden.files import write_private
from warden.keys import development_environment, development_keys
from warden.processes import stop_process
from warden.runtime import kafka
from warden.runtime.backoff import Backoff
from warden.runtime.runner import SERVICE_MODULES, available_services, run_service
from warden.runtime.service import ConfigurationError


@click.command()
@click.argument("name", type=click.Choice(list(SERVICE_MODULES)))
def service(name: str) -> None:
    """Run one service in the foreground (what a container runs)."""
    if name not in available_services():
        raise click.ClickException(f"service {name!r} is not implemented in this build")
    try:
        run_service(name)
    except ConfigurationError as exc:
        raise click.ClickException(f"{name} cannot start: {exc}") from None


class ServiceProcess:
    def __init__(self, name: str, env: dict[str, str], log_dir: Path):
        self.name = name
        self.port = free_port()
        self.env = dict(env, WARDEN_HTTP_PORT=str(self.port), WARDEN_HTTP_HOST="127.0.0.1")
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self.started_at = 0.0
        self.restart_at: float | None = None  # monotonic time of the next start, once it exited
        # A crashing service is restarted after 0.5 s, 1 s, 2 s... up to 30 s, jittered; a life of a
        # minute or more starts the count again.
        self.backoff = Backoff(0.5, 30.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.started_at, self.restart_at = time.monotonic(), None
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "warden.cli.main", "service", self.name],
                                        env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def exited(self) -> None:
        """Schedule the next start (returns at once: `warden up` keeps watching the others)."""
        if time.monotonic() - self.started_at >= 60:
            self.backoff.reset()
        self.restart_at = time.monotonic() + self.backoff.next_wait_s()

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self, timeout: float = 20) -> None:
        stop_process(self.process, timeout)


@click.command()
@click.option("--only", multiple=True, type=click.Choice(list(SERVICE_MODULES)),
              help="start only these services (repeatable); default: every implemented one")
def up(only: tuple[str, ...]) -> None:
    """Start broker, database and every service in the foreground; Ctrl-C stops all."""
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    log_dir = STACK_DIR / "logs"
    log_dir.mkdir(exist_ok=True)
    broker = database = None
    stopping = False

    def request_stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    services: list[ServiceProcess] = []
    try:
        try:
            bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            if not bootstrap:
                broker = EmbeddedKafka(port=free_port(9092), log_file=log_dir / "kafka.log").start()
                bootstrap = broker.bootstrap
            database_url = os.environ.get("DATABASE_URL")
            if not database_url:
                database = EmbeddedPostgres(STACK_DIR / "postgres").start()
                database_url = database.url
        except NotInstalled as exc:
            raise click.ClickException(str(exc)) from None
        created = asyncio.run(kafka.create_topics(bootstrap))
        click.echo(f"kafka   {bootstrap} ({len(created)} topics created)")
        click.echo(f"postgres {database_url}")
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, DATABASE_URL=database_url)
        env.update(development_environment(development_keys(KEYS_DIR), env))
        click.echo(f"keys    {KEYS_DIR}/ (development registry, decision and audit keys)")
        if database is not None:  # its own workstation database: disclosure may keep a generated key there
            env["WARDEN_EMBEDDED_DEFAULTS"] = "true"
        tokens = _development_tokens(env)
        if not env.get("WARDEN_CONSOLE_SECRET"):  # the consoles' cookie key, shared by every process of the stack
            env["WARDEN_CONSOLE_SECRET"] = secrets.token_urlsafe(32)
        names = [n for n in available_services() if not only or n in only]
        services = [ServiceProcess(n, env, log_dir) for n in names]
        for svc in services:
            svc.start()
        _write_stack(bootstrap, database_url, services, tokens)
        _wait_ready(services, lambda: stopping)
        _print_consoles(services, tokens)
        click.echo(f"stack handle: {STACK_FILE}; logs: {log_dir}/; Ctrl-C stops everything")
        while not stopping:
            for svc in services:
                if svc.restart_at is None and svc.process.poll() is not None:
                    svc.exited()
                    click.echo(f"{svc.name} exited with {svc.process.returncode}; restarting in "
                               f"{svc.restart_at - time.monotonic():.1f}s (log: {svc.log_path})", err=True)
                elif svc.restart_at is not None and time.monotonic() >= svc.restart_at:
                    svc.restarts += 1
                    svc.start()
                    _write_stack(bootstrap, database_url, services, tokens)
            time.sleep(0.5)
    finally:
        click.echo("stopping...")
        for svc in services:
            if svc.process and svc.process.poll() is None:
                svc.process.send_signal(signal.SIGTERM)
        for svc in services:
            svc.stop()
        if broker:
            broker.stop()
        if database:
            database.stop()
        STACK_FILE.unlink(missing_ok=True)
        click.echo("stopped")


def _development_tokens(env: dict[str, str]) -> dict[str, dict]:
    """Sign-in tokens for the consoles and APIs when the operator configured none.

    Fresh random tokens every `warden up`, kept only in the environment of the
    services and in stack.json (mode 0600): the embedded stack is a workstation tool.
    """
    tokens: dict[str, dict] = {}
    if not (env.get("WARDEN_REVIEW_TOKENS") or env.get("WARDEN_REVIEW_TOKENS_FILE")):
        review = {secrets.token_urlsafe(18): {"reviewer": name, "role": role}
                  for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("carol", "supervisor"))}
        env["WARDEN_REVIEW_TOKENS"] = json.dumps(review)
        tokens["legal-review"] = review
    if not env.get("WARDEN_MODERATION_TOKENS"):
        moderation = {secrets.token_urlsafe(18): {"name": "maria", "roles": ["moderator", "appeals"]}}
        env["WARDEN_MODERATION_TOKENS"] = json.dumps(moderation)
        tokens["moderation"] = moderation
    return tokens


def _write_stack(bootstrap: str, database_url: str, services: list[ServiceProcess],
                 tokens: dict[str, dict]) -> None:
    write_private(STACK_FILE, json.dumps({  # it may hold development tokens
        "kafka_bootstrap_servers": bootstrap,
        "database_url": database_url,
        "services": {s.name: {"pid": s.process.pid, "url": s.url} for s in services},
        "development_tokens": tokens,
    }, indent=2))


def _print_consoles(services: list[ServiceProcess], tokens: dict[str, dict]) -> None:
    for svc in services:
        if svc.name in tokens:
            who = ", ".join(f"{(v.get('reviewer') or v.get('name'))}" for v in tokens[svc.name].values())
            click.echo(f"{svc.name} console: {svc.url}/console (sign-in tokens for {who} in {STACK_FILE})")


def _wait_ready(services: list[ServiceProcess], stopping, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    pending = {s.name: s for s in services}
    while pending and time.monotonic() < deadline and not stopping():
        for name, svc in list(pending.items()):
            if svc.ready():
                click.echo(f"{name:<13} ready  {svc.url}")
                del pending[name]
        time.sleep(0.3)
    for name, svc in pending.items():
        click.echo(f"{name:<13} NOT ready after {timeout:.0f}s; see {svc.log_path}", err=True)
