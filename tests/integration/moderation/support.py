"""Running the moderation service (on the shared runtime, in-process) for a test, and building its events."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import datetime, timezone

import httpx

from moderation.config import ModerationConfig
from moderation.service import build_service
from tests.support.console import sign_in
from tests.support.kafka import produce_event
from warden.runtime.runner import Runtime

REPORT, APPEAL = "warden.moderation.report.submitted.v1", "warden.moderation.appeal.submitted.v1"
UPDATED, REMOVED = "warden.platform.content.updated.v1", "warden.platform.content.removed.v1"
TOKENS = {"mod-token": {"name": "maria", "roles": ["moderator"]},
          "appeal-token": {"name": "alex", "roles": ["moderator", "appeals"]},
          "viewer-token": {"name": "victor", "roles": []}}


def config(**overrides) -> ModerationConfig:
    values = dict(tokens=TOKENS, trusted_flaggers=["org-hotline"], unknown_content_sweep_seconds=0.5)
    values.update(overrides)
    return ModerationConfig(**values)


@contextlib.asynccontextmanager
async def running_moderation(settings, cfg: ModerationConfig, ready_timeout: float = 30, checks=None):
    runtime = Runtime(build_service(cfg, checks), settings)
    task = asyncio.create_task(runtime.run())
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10)
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            if task.done():
                task.result()
            try:
                if (await client.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("moderation not ready")
            await asyncio.sleep(0.1)
        yield client
    finally:
        await client.aclose()
        runtime.stopping.set()
        await asyncio.wait_for(task, timeout=60)


def content(**overrides) -> dict:
    item = {"kind": "channel", "id": f"chan-{uuid.uuid4().hex[:10]}", "owner_account_id": f"acc-{uuid.uuid4().hex[:8]}",
            "title": "Weekend hiking group", "text": None}
    item.update(overrides)
    return item


def facts(item: dict, **overrides) -> dict:
    """The platform's description of a reported item (platform.content), as the platform would publish it."""
    at = datetime.now(timezone.utc).isoformat()
    data = {"content_id": item["id"], "kind": item["kind"], "owner_account_id": item["owner_account_id"],
            "title": item["title"], "text": item["text"], "language": None, "public_in_search": True,
            "created_at": at, "updated_at": at, "media": []}
    data.update(overrides)
    return data


async def publish(bootstrap: str, item: dict, **overrides) -> dict:
    """The platform describes the item on platform.content (overrides: fields that differ from the report's)."""
    return await produce_event(bootstrap, "platform.content", UPDATED, facts(item, **overrides))


async def report(bootstrap: str, item: dict, reporter: str, reason: str = "drugs") -> dict:
    data = {"report_id": uuid.uuid4().hex, "reporter_id": reporter, "reported_at": datetime.now(timezone.utc).isoformat(),
            "surface": "search", "content": item, "reason": reason, "comment": None}
    return await produce_event(bootstrap, "moderation.reports.submitted", REPORT, data)


async def appeal(bootstrap: str, content_id: str, account_id: str, submitted_at: datetime | None = None) -> str:
    appeal_id = uuid.uuid4().hex
    await produce_event(bootstrap, "moderation.appeals.submitted", APPEAL, {
        "appeal_id": appeal_id, "content_id": content_id, "account_id": account_id, "statement": "It is a hiking club",
        "submitted_at": (submitted_at or datetime.now(timezone.utc)).isoformat()})
    return appeal_id


def about(content_id: str):
    return lambda e: e["data"].get("content_id") == content_id


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def console_page(api: httpx.AsyncClient, content_id: str) -> str:
    """The moderator console's page of an item, as maria sees it (signed in through the form)."""
    await sign_in(api, "mod-token")
    page = await api.get(f"/console/content/{content_id}")
    assert page.status_code == 200
    return page.text


def dumps(value) -> str:
    return json.dumps(value, default=str)
