"""Files that hold secrets or subscriber data: written whole or not at all, readable by their owner only."""
from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str, *, replace: bool = True) -> None:
    """Write `text` to `path`, mode 0600 from the start, whatever the umask.

    The content goes to a new file beside `path` and becomes `path` in one step, so a
    reader (another `warden` command, a script polling for stack.json) finds the old
    file or the new one, never a truncated one. `replace=False` creates `path` only if
    it does not exist (FileExistsError otherwise): two processes creating the same key
    both end up reading the one that was linked first.
    """
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(partial, path)
        else:
            os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
