"""`warden request status AUTHORITY_ID REQUEST_ID`: a request's status history, as the authority sees it.

Read from `legal.requests.progress` from its beginning, keeping the records keyed by the authority
(the topic's key) that name the request: every stage writes its own step there (intake, legal
review, disclosure) in full (reason messages, deadlines, a reviewer's question; the shared
`legal.requests.status` carries ids, status and reason codes only), so the topic is the whole
history, with no service's database or the authority's key needed. It holds what the topic's retention keeps (7 days by default,
docs/deployment.md); older history is in intake's projection, which the authority reads through
the authority API.
"""
from __future__ import annotations

import json

import click

from warden.cli.common import bootstrap_option, bootstrap_servers, read_records, run

STATUS_TOPIC = "legal.requests.progress"
STATUS_TYPE = "warden.legal.request.progress.v1"


async def status_history(bootstrap: str, authority_id: str, request_id: str) -> list[dict]:
    """The request's statuses, oldest first: {at, status, case_id, reasons, deadline, reported_by}."""
    key = authority_id.encode()
    history = []
    for record in await read_records(bootstrap, STATUS_TOPIC, keep=lambda r: r.key == key):
        try:
            event = json.loads(record.value)
            data = event["data"]
        except (TypeError, ValueError, KeyError):
            continue
        if (event.get("type") != STATUS_TYPE or not isinstance(data, dict) or data.get("request_id") != request_id
                or data.get("authority_id") != authority_id):
            continue
        history.append({"at": data.get("at"), "status": data.get("status"), "case_id": data.get("case_id"),
                        "reasons": data.get("reasons") or [], "deadline": data.get("deadline"),
                        "question": (data.get("clarification") or {}).get("question"),
                        "reported_by": event.get("source")})
    return sorted(history, key=lambda s: str(s["at"]))


@click.group()
def request() -> None:
    """Follow legal requests (the operator's side)."""


@request.command("status")
@click.argument("authority_id")
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True, help="the history as one JSON object")
@bootstrap_option
def status(authority_id: str, request_id: str, as_json: bool, bootstrap: str | None) -> None:
    """Print the status history of the authority's request REQUEST_ID, oldest first, with reasons."""
    history = run(status_history(bootstrap_servers(bootstrap), authority_id, request_id))
    if as_json:
        click.echo(json.dumps({"authority_id": authority_id, "request_id": request_id,
                               "status": history[-1]["status"] if history else None, "history": history}))
        return
    if not history:
        raise click.ClickException(
            f"no status of request {request_id!r} from authority {authority_id!r} on {STATUS_TOPIC}: check both "
            "ids (the request id is the authority's own reference); a request older than the topic's retention "
            "is no longer there")
    case_id = next((s["case_id"] for s in history if s["case_id"]), None)
    click.echo(f"request {request_id} of {authority_id}" + (f", case {case_id}" if case_id else ""))
    for entry in history:
        deadline = f"  (deadline {entry['deadline']})" if entry["deadline"] else ""
        click.echo(f"  {entry['at']}  {entry['status']:<15} by {entry['reported_by']}{deadline}")
        if entry["question"]:
            click.echo(f"      question: {entry['question']}")
        for reason in entry["reasons"]:
            click.echo(f"      {reason.get('code')}: {reason.get('message', '')}")
