"""Intake's domain rules: pure functions, no I/O."""
from __future__ import annotations

import hashlib
from typing import Any

from warden.signing import canonical


def fingerprint(request_data: dict[str, Any]) -> str:
    """Identifies a request's content: the same request sent twice has the same fingerprint."""
    return hashlib.sha256(canonical(request_data)).hexdigest()
