"""The quarterly transparency report, per country, from the recorded cases and decisions."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone
from typing import Any

import asyncpg
from pydantic import BaseModel

_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$")
UNKNOWN_COUNTRY = "ZZ"  # the authority was unknown to legal review at receipt
NOTES = [
    "Counts cover requests received in the quarter (UTC), by the requesting authority's country, "
    "with each case's outcome as recorded now.",
    "approved counts disclosure and preservation approvals; disclosures_approved counts approved disclosures only.",
    "fulfilled (disclosed) and no_data are decided by the disclosure service after approval and are not "
    "visible to legal review: disclosures_approved is the upper bound of fulfilled requests.",
    "users_affected counts distinct suspects (by their identifiers) of approved disclosures.",
]
COLUMNS = ["country", "received", "approved", "rejected", "pending_review", "disclosures_approved",
           "users_affected", "emergency", "preservation"]


class CountryCounts(BaseModel):
    country: str
    received: int
    approved: int
    rejected: int
    pending_review: int
    disclosures_approved: int
    users_affected: int
    emergency: int
    preservation: int


class TransparencyReport(BaseModel):
    quarter: str
    start: datetime
    end: datetime
    countries: list[CountryCounts]
    notes: list[str] = NOTES


def quarter_bounds(quarter: str) -> tuple[str, datetime, datetime]:
    """'2024Q3' -> ('2024Q3', 2024-07-01, 2024-10-01), UTC, end exclusive."""
    match = _QUARTER.match(quarter.strip().upper())
    if not match:
        raise ValueError("quarter must look like 2024Q3")
    year, q = int(match.group(1)), int(match.group(2))
    start = datetime(year, 3 * q - 2, 1, tzinfo=timezone.utc)
    end = datetime(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1, tzinfo=timezone.utc)
    return f"{year}Q{q}", start, end


async def build_report(conn: asyncpg.Connection, quarter: str, schema: str = "legal_review") -> TransparencyReport:
    name, start, end = quarter_bounds(quarter)
    rows = await conn.fetch(
        f"""SELECT coalesce(country, '{UNKNOWN_COUNTRY}') AS country,
                   count(*) AS received,
                   count(*) FILTER (WHERE status = 'approved') AS approved,
                   count(*) FILTER (WHERE status = 'rejected') AS rejected,
                   count(*) FILTER (WHERE status = 'pending_review') AS pending_review,
                   count(*) FILTER (WHERE status = 'approved' AND kind = 'disclosure') AS disclosures_approved,
                   count(DISTINCT suspect_key) FILTER (WHERE status = 'approved' AND kind = 'disclosure')
                       AS users_affected,
                   count(*) FILTER (WHERE emergency) AS emergency,
                   count(*) FILTER (WHERE kind = 'preservation') AS preservation
            FROM "{schema}".cases
            WHERE received_at >= $1 AND received_at < $2
            GROUP BY 1 ORDER BY 1""", start, end)
    return TransparencyReport(quarter=name, start=start, end=end,
                              countries=[CountryCounts(**dict(r)) for r in rows])


def report_json(report: TransparencyReport) -> dict[str, Any]:
    totals = {c: sum(getattr(row, c) for row in report.countries) for c in COLUMNS[1:] if c != "users_affected"}
    return {**report.model_dump(mode="json"), "totals": totals}


def report_csv(report: TransparencyReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["quarter", *COLUMNS])
    for row in report.countries:
        writer.writerow([report.quarter, *(getattr(row, c) for c in COLUMNS)])
    return out.getvalue()
