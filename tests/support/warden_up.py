"""`warden up` as a user runs it: a subprocess in its own directory, stopped with Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


class WardenUp:
    def __init__(self, workdir: Path, extra_env: dict[str, str] | None = None):
        self.workdir = workdir
        self.home = workdir / ".warden"
        self.env = dict(os.environ, WARDEN_HOME=str(self.home), **(extra_env or {}))
        # As on a newcomer's machine: no broker, database or keys configured (`warden up` makes its own).
        for name in list(self.env):
            if name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL") or name.startswith(
                    ("WARDEN_REGISTRY_", "WARDEN_DECISION_", "WARDEN_AUDIT_")):
                self.env.pop(name)
        self.process: subprocess.Popen | None = None
        self.log = workdir / "warden-up.log"

    def start(self, timeout: float = 90) -> dict:
        self.process = subprocess.Popen([sys.executable, "-m", "warden.cli.main", "up"], cwd=self.workdir,
                                        env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"warden up exited early:\n{self.log.read_text()}"
            stack = self.stack()
            if stack and all(self._ready(s["url"]) for s in stack["services"].values()):
                return stack
            time.sleep(0.5)
        self.stop()  # never leave a half-started stack running behind a failed test
        raise AssertionError(f"stack not ready after {timeout}s:\n{self.log.read_text()}")

    def stack(self) -> dict | None:
        try:
            return json.loads((self.home / "stack.json").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def warden(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a `warden` command against this stack, as a user would in another terminal."""
        result = subprocess.run([sys.executable, "-m", "warden.cli.main", *args], cwd=self.workdir,
                                env=self.env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"warden {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def shell(self, command: str, exports: str = "") -> subprocess.CompletedProcess:
        """Run a command line as a user types it in the README's second terminal: bash, in the stack's
        directory, with the virtualenv's `warden` and `python` first on PATH (`. .venv/bin/activate`)."""
        env = dict(self.env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}")
        return subprocess.run(["bash", "-c", f"set -eo pipefail\n{exports}\n{command}"], cwd=self.workdir, env=env,
                              capture_output=True, text=True, timeout=120)

    def stop(self, timeout: float = 90) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    @staticmethod
    def _ready(url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False
