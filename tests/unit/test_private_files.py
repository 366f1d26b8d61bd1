"""stack.json, opened packages and development keys are written whole or not at all, readable by their owner only."""
from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from warden import files
from warden.files import write_private
from warden.keys import development_keys


def test_the_file_is_the_owners_alone_whatever_the_umask(tmp_path):
    path = tmp_path / "package.json"
    previous = os.umask(0o022)
    try:
        write_private(path, '{"phone_number": "+33612345678"}')
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"phone_number": "+33612345678"}


def test_a_failed_write_leaves_the_previous_file_whole_and_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "stack.json"
    write_private(path, json.dumps({"services": {"intake": {"url": "http://127.0.0.1:1"}}}))

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_private(path, json.dumps({"services": {}}))
    assert json.loads(path.read_text()) == {"services": {"intake": {"url": "http://127.0.0.1:1"}}}
    assert [p.name for p in tmp_path.iterdir()] == ["stack.json"]


def test_a_reader_polling_while_the_file_is_rewritten_always_reads_a_whole_document(tmp_path):
    path = tmp_path / "stack.json"
    document = json.dumps({"services": {f"service-{n}": {"url": "http://127.0.0.1:1"} for n in range(200)}})
    write_private(path, document)
    torn, done = [], threading.Event()

    def read_until_done():
        while not done.is_set():
            text = path.read_text()
            if text != document:
                torn.append(len(text))

    reader = threading.Thread(target=read_until_done)
    reader.start()
    try:
        for _ in range(300):
            write_private(path, document)
    finally:
        done.set()
        reader.join()
    assert torn == []


def test_created_only_if_absent_keeps_the_first_file(tmp_path):
    path = tmp_path / "registry.json"
    write_private(path, "first", replace=False)
    with pytest.raises(FileExistsError):
        write_private(path, "second", replace=False)
    assert path.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["registry.json"]


def test_development_keys_are_created_once_private_and_whole(tmp_path):
    first = development_keys(tmp_path / "keys")
    assert development_keys(tmp_path / "keys") == first
    for name in first:
        path = tmp_path / "keys" / f"{name}.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert json.loads(path.read_text())["public_key"] == first[name]["public_key"]
