"""The hashed lock files in requirements/ agree with pyproject.toml, and every install uses them.

Out of date after a pin changed in pyproject.toml? `make lock` regenerates them (Makefile header).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

import pytest

from tests.unit.deploy._support import ROOT

LOCKS = ROOT / "requirements"
REGENERATE = "run `make lock` to regenerate requirements/*.txt"


@dataclass(frozen=True)
class Locked:
    version: str
    hashes: frozenset[str]


def normalise(name: str) -> str:
    """PEP 503: names compare lowercased, with runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(name: str) -> dict[str, Locked]:
    """A pip-compile/uv lock file: `name==version [; marker] \\` then `--hash=sha256:...` lines."""
    text = (LOCKS / name).read_text().replace("\\\n", " ")
    locked: dict[str, Locked] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)", line)
        assert match, f"{name}: not an exact pin: {line[:80]}"
        locked[normalise(match.group(1))] = Locked(match.group(3), frozenset(re.findall(r"--hash=(sha256:[0-9a-f]{64})", line)))
    return locked


def pins(requirements: list[str]) -> dict[str, str]:
    found = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", requirement.strip())
        assert match, f"pyproject.toml: {requirement!r} is not pinned exactly"
        found[normalise(match.group(1))] = match.group(2)
    return found


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def runtime() -> dict[str, Locked]:
    return read_lock("runtime.txt")


@pytest.fixture(scope="module")
def test_lock() -> dict[str, Locked]:
    return read_lock("test.txt")


def assert_locked(lock_name: str, lock: dict[str, Locked], wanted: dict[str, str]) -> None:
    missing = sorted(name for name in wanted if name not in lock)
    assert not missing, f"{lock_name} lacks {missing}: {REGENERATE}"
    differ = {name: (version, lock[name].version) for name, version in wanted.items()
              if lock[name].version != version}
    assert not differ, f"{lock_name} pins other versions (pyproject, lock): {differ}: {REGENERATE}"


@pytest.mark.parametrize("name", ["build.txt", "runtime.txt", "test.txt", "sbom.txt"])
def test_every_locked_package_is_an_exact_pin_with_hashes(name):
    lock = read_lock(name)
    assert lock, f"{name} is empty"
    unhashed = sorted(package for package, locked in lock.items() if not locked.hashes)
    assert not unhashed, f"{name}: no hash for {unhashed}: {REGENERATE}"


def test_the_runtime_lock_holds_every_direct_pin_and_nothing_embedded(project, runtime):
    assert_locked("runtime.txt", runtime, pins(project["project"]["dependencies"]))
    embedded = pins(project["project"]["optional-dependencies"]["embedded"])
    test_only = pins(project["project"]["optional-dependencies"]["test"])
    assert not set(embedded) & set(runtime), "the production image must not carry the embedded broker or PostgreSQL"
    assert not set(test_only) & set(runtime), "the production image must not carry the test tools"


def test_the_test_lock_holds_the_runtime_the_embedded_extra_and_the_test_tools(project, test_lock):
    extras = project["project"]["optional-dependencies"]
    assert_locked("test.txt", test_lock, {**pins(project["project"]["dependencies"]), **pins(extras["embedded"]),
                                          **pins(extras["test"])})


def test_the_image_runs_exactly_what_the_tests_ran(runtime, test_lock):
    """Every package of the runtime lock is in the test lock, same version, same files."""
    differ = sorted(name for name, locked in runtime.items() if test_lock.get(name) != locked)
    assert not differ, f"runtime.txt and test.txt disagree on {differ}: {REGENERATE}"


def test_the_build_lock_pins_the_build_backend(project):
    build = read_lock("build.txt")
    assert_locked("build.txt", build, pins(project["build-system"]["requires"]))
    assert "pip" in build


def test_the_sbom_lock_pins_what_sbom_in_asks_for():
    wanted = pins([line for line in (LOCKS / "sbom.in").read_text().splitlines()
                   if line.strip() and not line.startswith("#")])
    assert_locked("sbom.txt", read_lock("sbom.txt"), wanted)


def test_make_installs_from_the_locks_with_hashes_then_the_project_without_dependencies():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    installs = [line.strip() for line in recipe.splitlines() if "pip install" in line]
    assert installs[:2] == ["$(BIN)/pip install --quiet --require-hashes -r requirements/build.txt",
                            "$(BIN)/pip install --quiet --require-hashes -r requirements/test.txt"]
    assert installs[2:] == ["$(BIN)/pip install --quiet --no-deps --no-build-isolation -e ."]
    assert "requirements/test.txt" in recipe.splitlines()[0], "a changed lock must reinstall"
    assert "\nlock:" in makefile and "make lock" in makefile.split("\n\n", 1)[0], \
        "the Makefile header names the command that regenerates the locks"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "pip install" not in ci, "CI installs through make, from the locks"
