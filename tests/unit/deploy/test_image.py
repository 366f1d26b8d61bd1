"""The Dockerfile: pinned slim base, two stages, non-root runtime without build tools, `warden` entrypoint."""
from __future__ import annotations

import fnmatch
import json
import re
import tomllib

import pytest

from warden.runtime.runner import SERVICE_MODULES

from tests.unit.deploy._support import ROOT

BUILD_TOOLS = ("build-essential", "gcc", "g++", "make ", "cc ", "libpq-dev", "python3-dev")


@pytest.fixture(scope="module")
def stages() -> list[list[str]]:
    """Dockerfile instructions (continuations joined) grouped by stage; [0] holds the global ARGs."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip() and not line.lstrip().startswith("#")]
    groups: list[list[str]] = [[]]
    for line in lines:
        if line.upper().startswith("FROM "):
            groups.append([])
        groups[-1].append(line.strip())
    return groups


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def base_image(stages) -> str:
    args = {m.group(1): m.group(2) for line in stages[0] if (m := re.match(r"ARG (\w+)=(\S+)", line))}
    image = stages[-1][0].split()[1]
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)


def test_base_is_a_pinned_slim_python_matching_the_project(stages, pyproject):
    image = base_image(stages)
    match = re.fullmatch(r"python:(3)\.(\d+)\.(\d+)-slim(-\w+)?", image)
    assert match, f"base image {image!r} must be python:X.Y.Z-slim (pinned)"
    assert f">={match.group(1)}.{match.group(2)}" in pyproject["project"]["requires-python"]
    assert all(stage[0].split()[1] == stages[-1][0].split()[1] for stage in stages[1:]), \
        "build and runtime stages must share the base (the venv's python symlink)"


def test_multi_stage_with_build_tools_only_in_the_build_stage(stages):
    assert len(stages) >= 3, "expected at least a build stage and a runtime stage"
    build, final = stages[1], stages[-1]
    assert " AS " in build[0].upper()
    assert any("pip install" in line for line in build)
    final_text = "\n".join(final)
    for tool in BUILD_TOOLS:
        assert tool not in final_text, f"the runtime stage installs {tool.strip()}"
    assert "apt-get install" not in final_text
    assert any(line.startswith("COPY --from=") for line in final), "the runtime stage must copy the built venv"


def test_runtime_runs_as_a_non_root_user(stages):
    users = [line.split()[1] for line in stages[-1] if line.startswith("USER ")]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), "the runtime stage runs as root"
    assert user.isdigit() and int(user) >= 1000, "use a numeric uid so Kubernetes can check runAsNonRoot"


def test_entrypoint_is_the_cli_and_defaults_to_a_real_service(stages, pyproject):
    final = stages[-1]
    entrypoint = json.loads(next(line for line in final if line.startswith("ENTRYPOINT ")).split(None, 1)[1])
    cmd = json.loads(next(line for line in final if line.startswith("CMD ")).split(None, 1)[1])
    assert entrypoint == ["warden"] and entrypoint[0] in pyproject["project"]["scripts"]
    assert cmd == ["service", "intake"] and cmd[1] in SERVICE_MODULES


def test_the_build_copies_every_package_folder_and_dockerignore_keeps_them(stages, pyproject):
    copied = {line.split()[1].rstrip("/") for line in stages[1] if line.startswith("COPY ") and "--from" not in line}
    folders = {path.split("/")[0] for path in pyproject["tool"]["setuptools"]["package-dir"].values()}
    assert "pyproject.toml" in copied
    assert folders <= copied, f"the build stage does not copy {sorted(folders - copied)}"
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for needed in [*folders, "pyproject.toml"]:
        assert not any(fnmatch.fnmatch(needed, pattern) for pattern in ignored), f".dockerignore drops {needed}"
    for heavy in (".git", ".venv", ".warden", "tests"):
        assert heavy in ignored, f".dockerignore must exclude {heavy}"


def pip_installs(stage: list[str]) -> list[str]:
    """Each `pip install ...` command of a stage's RUN lines."""
    return [part.strip() for line in stage if line.startswith("RUN ")
            for part in re.split(r"&&", line[4:]) if re.search(r"\bpip install\b", part)]


def test_every_dependency_is_installed_from_a_hashed_lock_and_the_project_without_dependencies(stages):
    build = stages[1]
    installs = pip_installs(build)
    locks = [i for i in installs if " -r " in i]
    assert [i.split()[-1] for i in locks] == ["requirements/build.txt", "requirements/runtime.txt"]
    assert all("--require-hashes" in i for i in locks), "a lock installed without --require-hashes"
    project = [i for i in installs if " -r " not in i]
    assert project == ["pip install --no-deps --no-build-isolation ."], \
        "the project itself goes in without resolving anything (its dependencies came from the lock)"
    copied = [line for line in build if line.startswith("COPY requirements/")]
    assert copied and "requirements/runtime.txt" in copied[0] and "test.txt" not in copied[0], \
        "the image installs the runtime lock: no embedded broker or PostgreSQL, no test tools"
    assert any("pip check" in line for line in build)
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert not any(fnmatch.fnmatch("requirements", p.strip()) for p in ignored if p.strip() and not p.startswith("#"))


def test_the_build_writes_a_cyclonedx_sbom_of_the_runtime_venv_that_the_image_carries(stages):
    [sbom] = [stage for stage in stages[1:] if stage[0].upper().endswith(" AS SBOM")]
    assert any(line == "COPY --from=build /opt/venv /opt/venv" for line in sbom), "the SBOM describes the built venv"
    installs = pip_installs(sbom)
    assert installs == ["/opt/sbom-tool/bin/pip install --require-hashes -r requirements/sbom.txt"], \
        "the SBOM tool comes from its own hashed lock, into its own venv (neither in the image nor in the SBOM)"
    run = " ".join(line for line in sbom if "cyclonedx-py" in line)
    assert re.search(r"cyclonedx-py environment .*--of JSON -o /sbom/warden\.cdx\.json /opt/venv$", run), run
    final = stages[-1]
    assert "COPY --from=sbom /sbom/warden.cdx.json /usr/share/doc/warden/sbom.cdx.json" in final
    assert not pip_installs(final), "the runtime stage installs nothing"
    assert not any("sbom-tool" in line for line in final)
