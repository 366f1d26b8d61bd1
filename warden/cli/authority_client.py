"""`warden authority-client`: an authority's side of the authority API, every call signed with its key.

`AuthorityClient` is the whole client (the commands below and the integration
tests both use it): it signs each call (RFC 9421, warden/http_signatures.py) with
the authority's private key, a fresh `created` and nonce, so that no two calls
share a signature.
"""
from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import click
import httpx

from warden.cli.common import read_stack
from warden.cli.disclosure import PackageRefused, _key_argument, describe_certificate, open_package
from warden.cli.requests import read_private_key, sign_request
from warden.files import write_private
from warden.http_signatures import sign_request as sign_call
from warden.signing import decode_key

API = "/authority/v1"


class AuthorityClient:
    def __init__(self, url: str, authority_id: str, private_key: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.authority_id = authority_id
        self.private_key = private_key
        self.timeout = timeout

    def build(self, method: str, path: str, body: bytes | None = None, *,
              created: datetime | None = None) -> httpx.Request:
        """The signed call, not yet sent (tests send it twice, or change it after signing)."""
        url = self.url + path
        headers = sign_call(method, url, body, self.authority_id, self.private_key, created=created)
        if body:
            headers["Content-Type"] = "application/json"
        return httpx.Request(method, url, content=body or None, headers=headers)

    async def send(self, request: httpx.Request) -> httpx.Response:
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            return await http.send(request)

    async def call(self, method: str, path: str, body: bytes | None = None) -> httpx.Response:
        return await self.send(self.build(method, path, body))

    async def submit(self, request_data: dict[str, Any]) -> httpx.Response:
        """POST the signed request `data`, as it would be published on legal.requests.submitted."""
        return await self.call("POST", f"{API}/requests", json.dumps(request_data).encode())

    async def status(self, request_id: str) -> httpx.Response:
        return await self.call("GET", f"{API}/requests/{quote(request_id, safe='')}")

    async def list(self, limit: int = 50, cursor: str | None = None) -> httpx.Response:
        query = urlencode({"limit": limit, **({"cursor": cursor} if cursor else {})})
        return await self.call("GET", f"{API}/requests?{query}")

    async def disclosures(self, request_id: str) -> httpx.Response:
        return await self.call("GET", f"{API}/requests/{quote(request_id, safe='')}/disclosures")

    def amendment(self, request_id: str, clarification_id: str, answer: str, *,
                  data_categories: list[str] | None = None, period: dict[str, str] | None = None) -> dict[str, Any]:
        """The signed answer to a question (warden.legal.request.amended.v1), amending the request if asked to."""
        data: dict[str, Any] = {"request_id": request_id, "authority_id": self.authority_id,
                                "clarification_id": clarification_id, "answer": answer,
                                "amended_at": datetime.now(timezone.utc).isoformat()}
        if data_categories:
            data["data_categories"] = data_categories
        if period:
            data["period"] = period
        return sign_request(data, self.private_key)

    def withdrawal(self, request_id: str, reason: str | None = None) -> dict[str, Any]:
        """The signed withdrawal of a request (warden.legal.request.withdrawn.v1)."""
        return sign_request({"request_id": request_id, "authority_id": self.authority_id, "reason": reason,
                             "withdrawn_at": datetime.now(timezone.utc).isoformat()}, self.private_key)

    async def answer(self, request_id: str, amendment: dict[str, Any]) -> httpx.Response:
        """POST the signed amendment answering the request's open question."""
        return await self.call("POST", f"{API}/requests/{quote(request_id, safe='')}/clarification",
                               json.dumps(amendment).encode())

    async def withdraw(self, request_id: str, withdrawal: dict[str, Any]) -> httpx.Response:
        return await self.call("POST", f"{API}/requests/{quote(request_id, safe='')}/withdraw",
                               json.dumps(withdrawal).encode())


# --- the commands --------------------------------------------------------------------------

def _service_url(name: str) -> str | None:
    service = ((read_stack() or {}).get("services") or {}).get(name)
    return service["url"] if service else None


def _answer(response: httpx.Response) -> Any:
    """The JSON answer; a ClickException saying why when the API refused the call."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        if isinstance(body, dict) and "code" in body:
            raise click.ClickException(f"{response.status_code} {body['code']}: {body.get('detail', '')}")
        raise click.ClickException(f"{response.status_code}: {json.dumps(body) if body else response.text[:500]}")
    return body


def _run(coro):
    try:
        return asyncio.run(coro)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the authority API ({exc}); is intake running? (`make run`)"
                                   ) from None


@click.group("authority-client")
@click.option("--url", help="intake's URL (default: from .warden/stack.json, written by `warden up`)")
@click.option("--authority", "authority_id", required=True, envvar="WARDEN_AUTHORITY_ID",
              help="the authority's id, as registered ($WARDEN_AUTHORITY_ID)")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the authority's private key file (JSON from `warden keygen`, or base64)")
@click.option("--json", "as_json", is_flag=True, help="print the API's JSON answers")
@click.pass_context
def authority_client(ctx: click.Context, url: str | None, authority_id: str, key_file: Path, as_json: bool) -> None:
    """Act as an authority over the authority API (HTTP, every call signed with the authority's key)."""
    url = url or _service_url("intake")
    if not url:
        raise click.ClickException("no intake URL: pass --url, or start the stack with `make run`")
    try:
        private_key = read_private_key(key_file)
        decode_key(private_key)
    except (ValueError, KeyError) as exc:
        raise click.BadParameter(f"the key is not usable: {exc}", param_hint="--key") from None
    ctx.obj = {"client": AuthorityClient(url, authority_id, private_key), "json": as_json}


@authority_client.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def submit(obj: dict, file: Path) -> None:
    """Sign the request in FILE (its data, JSON) with the key and submit it."""
    client: AuthorityClient = obj["client"]
    try:
        request = json.loads(file.read_text())
    except ValueError as exc:
        raise click.BadParameter(f"{file} is not valid JSON: {exc}", param_hint="FILE") from None
    if not isinstance(request, dict):
        raise click.BadParameter(f"{file} must hold a JSON object (the request's data)", param_hint="FILE")
    request.setdefault("authority_id", client.authority_id)
    answer = _answer(_run(client.submit(sign_request(request, client.private_key))))
    if obj["json"]:
        click.echo(json.dumps(answer, indent=2))
    else:
        click.echo(f"accepted {answer['request_id']}: follow it with `warden authority-client status "
                   f"{answer['request_id']}` ({client.url}{answer['url']})")


@authority_client.command("status")
@click.argument("request_id")
@click.pass_obj
def status(obj: dict, request_id: str) -> None:
    """The request's status history, with reasons."""
    answer = _answer(_run(obj["client"].status(request_id)))
    if obj["json"]:
        click.echo(json.dumps(answer, indent=2))
        return
    click.echo(f"{answer['request_id']}  {answer['status']}  case {answer['case_id'] or '-'}")
    for entry in answer["history"]:
        deadline = f"  (answer due by {entry['deadline']})" if entry.get("deadline") else ""
        click.echo(f"  {entry['at']}  {entry['status']}{deadline}")
        for reason in entry["reasons"]:
            click.echo(f"      {reason['code']}: {reason['message']}")
    question = answer.get("clarification")
    if question:
        click.echo(f"\nThe reviewer asks ({question['asked_at']}):\n  {question['question']}\n"
                   f"Answer with `warden authority-client answer {answer['request_id']} \"YOUR ANSWER\"`.")


@authority_client.command("answer")
@click.argument("request_id")
@click.argument("answer_text", metavar="ANSWER")
@click.option("--categories", help="amend the data categories asked for (comma-separated)")
@click.option("--period-start", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
              help="amend the period's start (ISO date or date-time with zone; a date is UTC)")
@click.option("--period-end", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
              help="amend the period's end")
@click.pass_obj
def answer(obj: dict, request_id: str, answer_text: str, categories: str | None, period_start: datetime | None,
           period_end: datetime | None) -> None:
    """Answer the reviewer's open question on REQUEST_ID with a signed amendment (and amend the request)."""
    client: AuthorityClient = obj["client"]
    if (period_start is None) != (period_end is None):
        raise click.UsageError("give both --period-start and --period-end to amend the period")
    current = _answer(_run(client.status(request_id)))
    question = current.get("clarification")
    if not question:
        raise click.ClickException(f"{request_id} is {current['status']}: no question waits for an answer")
    period = ({"start": _utc(period_start).isoformat(), "end": _utc(period_end).isoformat()}
              if period_start and period_end else None)
    amendment = client.amendment(request_id, question["clarification_id"], answer_text,
                                 data_categories=[c.strip() for c in categories.split(",") if c.strip()]
                                 if categories else None, period=period)
    sent = _answer(_run(client.answer(request_id, amendment)))
    if obj["json"]:
        click.echo(json.dumps(sent, indent=2))
    else:
        click.echo(f"answer sent for {request_id}: the reviewers take the request up again "
                   f"(`warden authority-client status {request_id}`)")


@authority_client.command("withdraw")
@click.argument("request_id")
@click.option("--reason", help="why the authority withdraws the request (kept in the platform's audit log)")
@click.pass_obj
def withdraw(obj: dict, request_id: str, reason: str | None) -> None:
    """Withdraw REQUEST_ID (a signed withdrawal), until its package is built."""
    client: AuthorityClient = obj["client"]
    sent = _answer(_run(client.withdraw(request_id, client.withdrawal(request_id, reason))))
    if obj["json"]:
        click.echo(json.dumps(sent, indent=2))
    else:
        click.echo(f"withdrawal sent for {request_id}: no package will be built "
                   f"(`warden authority-client status {request_id}` shows it withdrawn)")


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@authority_client.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@click.option("--cursor", help="next_cursor of the previous page")
@click.pass_obj
def list_(obj: dict, limit: int, cursor: str | None) -> None:
    """The authority's requests, newest first."""
    answer = _answer(_run(obj["client"].list(limit, cursor)))
    if obj["json"]:
        click.echo(json.dumps(answer, indent=2))
        return
    for request in answer["requests"]:
        click.echo(f"{request['submitted_at']}  {request['request_id']:<40} {request['status']}")
    if answer["next_cursor"]:
        click.echo(f"more: --cursor {answer['next_cursor']}")


@authority_client.command("fetch")
@click.argument("request_id")
@click.option("--platform-key", help="the platform's disclosure public key: file or base64 "
                                     "(default: disclosure's /platform-key, from .warden/stack.json)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="write each opened package to DIR/<case_id>-<n>.json instead of printing it")
@click.pass_obj
def fetch(obj: dict, request_id: str, platform_key: str | None, out: Path | None) -> None:
    """Fetch the request's sealed packages and open them (seal, hash, platform signature, certificate: as
    `disclosure open`); print each one's certificate of authenticity and its records."""
    client: AuthorityClient = obj["client"]
    platform_public = (_key_argument(platform_key, "public_key", "--platform-key") if platform_key
                       else _platform_key_from_stack())
    sealed = _answer(_run(client.disclosures(request_id)))
    if not sealed:
        click.echo(f"no disclosure for {request_id} yet", err=True)
        return
    opened = []
    for n, event_data in enumerate(sealed):
        try:
            opened.append(open_package(event_data, client.private_key, platform_public))
        except PackageRefused as exc:
            raise click.ClickException(f"refused package {event_data.get('sha256', '')[:16]}: {exc}") from None
    if out:
        out.mkdir(parents=True, exist_ok=True)
        for n, package in enumerate(opened):
            path = out / f"{package['case_id']}-{n}.json"
            write_private(path, json.dumps(package, indent=2))  # subscriber data: the owner's alone
            click.echo(f"wrote {path}")
            if not obj["json"]:
                click.echo(describe_certificate(package))
    elif obj["json"]:
        click.echo(json.dumps(opened, indent=2))
    else:
        for package in opened:
            click.echo(describe_certificate(package))
            click.echo(json.dumps({k: v for k, v in package.items() if k != "certificate"}, indent=2))


def _platform_key_from_stack() -> str:
    url = _service_url("disclosure")
    if not url:
        raise click.ClickException("no --platform-key and no running disclosure service in .warden/stack.json")
    with urllib.request.urlopen(url + "/platform-key", timeout=5) as response:
        return json.loads(response.read())["public_key"]
