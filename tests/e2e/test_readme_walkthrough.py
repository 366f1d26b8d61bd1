"""The README's walk-through, its commands run as written against a running `warden up`.

Each `sh` block of the README's "Two commands" section after `make run` is run a line at a time
(continuations joined) in bash, from a directory holding the repository's docs/ (the README's
commands are typed at the repository's root), keeping the lines' `export`s. Between lines the
test waits where a person would: for intake to know the authority just added, and for the request
just submitted to be received. Blocks fenced as `shell` show commands that need a state the
walk-through does not reach (a reviewer's question, a second request): test_warden_up.py's
authority-API walk-through runs those.
"""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from tests.support.kafka import wait_for_events
from tests.support.stack import wait_for_authority
from tests.support.warden_up import WardenUp

ROOT = Path(__file__).resolve().parents[2]


def walkthrough_commands(readme: str) -> list[str]:
    """The command lines of the walk-through's shell blocks, in order."""
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        joined = re.sub(r"\\\n\s*", "", block)
        commands += [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [c for c in commands if not c.startswith("make ")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("readme")
    (workdir / "docs").symlink_to(ROOT / "docs")
    up = WardenUp(workdir)
    info = up.start()
    yield up, info
    up.stop()


def test_the_readme_walkthrough_runs_as_written(stack):
    up, info = stack
    commands = walkthrough_commands((ROOT / "README.md").read_text())
    assert any("submit docs/examples/request.json" in c for c in commands)
    request = json.loads((ROOT / "docs" / "examples" / "request.json").read_text())
    exports, outputs = "", {}
    for command in commands:
        result = up.shell(command, exports)
        assert result.returncode == 0, f"`{command}` failed:\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        outputs[command] = result.stdout
        if command.startswith("export "):
            exports += command + "\n"
        if command.startswith("warden authority add"):
            asyncio.run(wait_for_authority(info["database_url"], "intake", request["authority_id"]))
        if command.startswith("warden submit"):
            asyncio.run(wait_for_events(info["kafka_bootstrap_servers"], "legal.requests.received",
                                        lambda e: e["data"]["request"]["request_id"] == request["request_id"]))

    status = next(out for command, out in outputs.items() if command.startswith("warden request status")
                  and "--json" not in command)
    assert f"request {request['request_id']} of {request['authority_id']}" in status and "received" in status
    history = json.loads(next(out for command, out in outputs.items() if command.startswith("warden request status")
                              and "--json" in command))
    assert history["history"][0]["status"] == "received"
    tail = next(out for command, out in outputs.items() if command.startswith("warden events tail"))
    assert "warden.legal.request.status.v1" in tail
