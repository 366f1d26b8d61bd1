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
    "with each case's outcome as recorded now; by_instrument splits them by instrument type.",
    "approved counts disclosure and preservation approvals; disclosures_approved counts approved disclosures only.",
    "accounts_specified counts distinct suspects as the requests name them (one account named by id, phone "
    "and username counts three times: nothing else is known before disclosure).",
    "requests_with_data and no_data are what the disclosure service reported for approved disclosures; "
    "approvals it has not answered yet count in neither.",
    "users_affected counts distinct accounts whose data was disclosed.",
]
COLUMNS = ["country", "received", "approved", "rejected", "pending_review", "disclosures_approved",
           "accounts_specified", "requests_with_data", "no_data", "users_affected", "emergency",
           "emergency_with_data", "preservation", "withdrawn"]
INSTRUMENT_COLUMNS = ["country", "instrument", *COLUMNS[1:]]
# Distinct counts: a total would count twice a person named in two countries or instruments.
NOT_SUMMED = {"accounts_specified", "users_affected"}


class CountryCounts(BaseModel):
    country: str
    received: int
    approved: int
    rejected: int
    pending_review: int
    disclosures_approved: int
    accounts_specified: int
    requests_with_data: int
    no_data: int
    users_affected: int
    emergency: int
    emergency_with_data: int
    preservation: int
    withdrawn: int = 0


class InstrumentCounts(CountryCounts):
    instrument: str


class TransparencyReport(BaseModel):
    quarter: str
    start: datetime
    end: datetime
    countries: list[CountryCounts]
    by_instrument: list[InstrumentCounts] = []
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


_COUNTS = """count(*) AS received,
       count(*) FILTER (WHERE c.status = 'approved') AS approved,
       count(*) FILTER (WHERE c.status = 'rejected') AS rejected,
       count(*) FILTER (WHERE c.status IN ('pending_review', 'needs_clarification')) AS pending_review,
       count(*) FILTER (WHERE c.status = 'approved' AND c.kind = 'disclosure') AS disclosures_approved,
       count(DISTINCT c.suspect_key) AS accounts_specified,
       count(*) FILTER (WHERE f.outcome = 'disclosed') AS requests_with_data,
       count(*) FILTER (WHERE f.outcome = 'no_data') AS no_data,
       count(DISTINCT f.account_id) FILTER (WHERE f.outcome = 'disclosed') AS users_affected,
       count(*) FILTER (WHERE c.emergency) AS emergency,
       count(*) FILTER (WHERE c.emergency AND f.outcome = 'disclosed') AS emergency_with_data,
       count(*) FILTER (WHERE c.kind = 'preservation') AS preservation,
       count(*) FILTER (WHERE c.status = 'withdrawn') AS withdrawn"""


async def build_report(conn: asyncpg.Connection, quarter: str, schema: str = "legal_review") -> TransparencyReport:
    name, start, end = quarter_bounds(quarter)
    source = f"""FROM "{schema}".cases c LEFT JOIN "{schema}".fulfilments f ON f.case_id = c.case_id
                 WHERE c.received_at >= $1 AND c.received_at < $2"""
    country = f"coalesce(c.country, '{UNKNOWN_COUNTRY}')"
    rows = await conn.fetch(f"SELECT {country} AS country, {_COUNTS} {source} GROUP BY 1 ORDER BY 1", start, end)
    by_instrument = await conn.fetch(
        f"SELECT {country} AS country, c.request->'instrument'->>'type' AS instrument, {_COUNTS} {source}"
        " GROUP BY 1, 2 ORDER BY 1, 2", start, end)
    return TransparencyReport(quarter=name, start=start, end=end,
                              countries=[CountryCounts(**dict(r)) for r in rows],
                              by_instrument=[InstrumentCounts(**dict(r)) for r in by_instrument])


def report_json(report: TransparencyReport) -> dict[str, Any]:
    totals = {c: sum(getattr(row, c) for row in report.countries) for c in COLUMNS[1:] if c not in NOT_SUMMED}
    return {**report.model_dump(mode="json"), "totals": totals}


def report_rows(report: TransparencyReport) -> list[list[Any]]:
    """Every row under INSTRUMENT_COLUMNS: each country (instrument `all`), then each country and instrument."""
    rows = [[row.country, "all", *(getattr(row, c) for c in COLUMNS[1:])] for row in report.countries]
    rows += [[getattr(row, c) for c in INSTRUMENT_COLUMNS] for row in report.by_instrument]
    return rows


def report_csv(report: TransparencyReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["quarter", *INSTRUMENT_COLUMNS])
    for row in report_rows(report):
        writer.writerow([report.quarter, *row])
    return out.getvalue()
