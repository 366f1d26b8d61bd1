"""Where deploy/citus/disclosure.sql places each table of the `disclosure` schema, read from the script."""
from __future__ import annotations

import re
from pathlib import Path

PLAN = Path(__file__).resolve().parents[2] / "deploy" / "citus" / "disclosure.sql"
CALL = re.compile(r"SELECT (create_distributed_table|create_reference_table|citus_add_local_table_to_metadata)"
                  r"\('disclosure\.(\w+)'(?:, '(\w+)')?(?:, colocate_with => '(?:disclosure\.)?(\w+)')?\);")


def plan() -> dict[str, tuple[str, str | None, str | None]]:
    """table -> (kind, distribution column, co-located with: a table or 'none'), as the deployment script says."""
    out: dict[str, tuple[str, str | None, str | None]] = {}
    for call, table, column, colocated in CALL.findall(PLAN.read_text()):
        assert table not in out, f"{table} is named twice"
        kind = {"create_distributed_table": "distributed", "create_reference_table": "reference"}.get(call, "local")
        out[table] = (kind, column or None, colocated or None)
    return out


def colocation_group(placed: dict[str, tuple[str, str | None, str | None]], table: str) -> str:
    """The table whose shards a distributed table's are placed with (itself when it starts a group)."""
    _, _, colocated = placed[table]
    return table if colocated in (None, "none") else colocation_group(placed, colocated)
