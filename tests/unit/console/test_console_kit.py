"""The shared console kit: signed session cookie, CSRF on every form, sign-in, safe redirects."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from fastapi import FastAPI, Form, Request
from fastapi.testclient import TestClient

from warden.console import SHARED_TEMPLATES, Console

from moderation.config import ModerationConfig
from moderation.console.routes import content_url, score_history


@dataclass(frozen=True)
class Person:
    name: str


def app_with(tokens: dict[str, Person], secret: str = "s" * 32) -> tuple[FastAPI, Console]:
    app = FastAPI()
    console = Console(title="Test", prefix="/console", cookie="test_session", templates=SHARED_TEMPLATES, tokens=tokens, display=lambda p: p.name, secret=secret)
    router = console.router()

    @router.get("/")
    async def home(request: Request):
        who, session = console.signed_in(request)
        return console.render(request, "error.html", session, heading="Home", message=f"hello {who.name}")

    @router.post("/act")
    async def act(request: Request, csrf_token: str = Form("")):
        who, session = console.signed_in(request)
        console.check_csrf(session, csrf_token)
        return console.redirect("/")

    console.install(app, router)
    return app, console


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def signed_in_client(tokens=None) -> tuple[TestClient, str]:
    app, _ = app_with(tokens or {"tok-1": Person("ann")})
    client = TestClient(app, follow_redirects=False)
    csrf = csrf_of(client.get("/console/signin").text)
    answer = client.post("/console/signin", data={"token": "tok-1", "csrf_token": csrf})
    assert answer.status_code == 303
    return client, csrf_of(client.get("/console/").text)


def test_pages_need_a_session_and_sign_in_sets_a_strict_httponly_cookie():
    app, _ = app_with({"tok-1": Person("ann")})
    client = TestClient(app, follow_redirects=False)
    first = client.get("/console/")
    assert first.status_code == 303 and first.headers["location"] == "/console/signin?next=/console/"
    form = client.get("/console/signin")
    answer = client.post("/console/signin", data={"token": "tok-1", "csrf_token": csrf_of(form.text),
                                                  "next": "/console/"})
    cookie = answer.headers["set-cookie"]
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "tok-1" not in cookie  # a digest of the token, never the token
    assert "hello ann" in client.get("/console/").text


def test_wrong_token_is_a_401_page_and_a_missing_csrf_token_a_403():
    app, _ = app_with({"tok-1": Person("ann")})
    client = TestClient(app, follow_redirects=False)
    csrf = csrf_of(client.get("/console/signin").text)
    wrong = client.post("/console/signin", data={"token": "tok-2", "csrf_token": csrf})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    assert client.post("/console/signin", data={"token": "tok-1"}).status_code == 403


def test_forms_need_the_sessions_csrf_token():
    client, csrf = signed_in_client()
    assert client.post("/console/act", data={}).status_code == 403
    assert client.post("/console/act", data={"csrf_token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}
                       ).status_code == 403
    assert client.post("/console/act", data={"csrf_token": csrf}).status_code == 303


def test_a_tampered_or_foreign_cookie_is_no_session():
    client, _ = signed_in_client()
    value = client.cookies.get("test_session")
    client.cookies.clear()
    client.cookies.set("test_session", value[:-2] + ("xx" if not value.endswith("xx") else "yy"), path="/console")
    assert client.get("/console/").status_code == 303
    other_app, _ = app_with({"tok-1": Person("ann")}, secret="t" * 32)
    foreign = TestClient(other_app, follow_redirects=False)
    foreign.cookies.set("test_session", value, path="/console")
    assert foreign.get("/console/").status_code == 303


def test_sign_out_needs_csrf_and_ends_the_session():
    client, csrf = signed_in_client()
    assert client.post("/console/signout", data={}).status_code == 403
    assert client.get("/console/").status_code == 200
    assert client.post("/console/signout", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/console/").status_code == 303


def test_sessions_end_when_their_token_is_removed():
    app, console = app_with({"tok-1": Person("ann")})
    client = TestClient(app, follow_redirects=False)
    client.post("/console/signin", data={"token": "tok-1", "csrf_token": csrf_of(client.get("/console/signin").text)})
    assert client.get("/console/").status_code == 200
    console.principals.clear()
    assert client.get("/console/").status_code == 303


def test_next_stays_inside_the_console():
    _, console = app_with({})
    assert console.safe_next("/console/cases/1") == "/console/cases/1"
    for bad in ("https://evil.example/console/", "//evil.example/", "/other", None, ""):
        assert console.safe_next(bad) == "/console/"


def test_content_urls_escape_ids_and_score_history_counts_each_reporter_once():
    assert content_url("chan/1 x") == "/content/chan%2F1%20x"
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [{"reporter_id": "a", "reason": "drugs", "contribution": 4.0, "reported_at": t0, "suspended": False},
            {"reporter_id": "a", "reason": "drugs", "contribution": 4.0, "reported_at": t0 + timedelta(hours=1),
             "suspended": False},
            {"reporter_id": "b", "reason": "scam", "contribution": 2.0, "reported_at": t0 + timedelta(hours=2),
             "suspended": False},
            {"reporter_id": "c", "reason": "spam", "contribution": 1.0, "reported_at": t0 + timedelta(hours=30),
             "suspended": False}]
    history = score_history(rows, None, ModerationConfig())
    assert [p["score"] for p in history] == [4.0, 4.0, 6.0, 1.0]  # repeat adds nothing; the window slides
    assert [p["contribution"] for p in history] == [4.0, 0.0, 2.0, 1.0]
    cleared = score_history(rows, t0 + timedelta(minutes=90), ModerationConfig())
    assert [p["score"] for p in cleared][2:] == [2.0, 1.0]  # reports before a human decision no longer count


def test_a_sign_in_on_one_replica_holds_on_another_that_shares_the_secret():
    tokens = {"tok-1": Person("ann")}
    first, _ = app_with(tokens, secret="shared-" + "x" * 32)
    second, _ = app_with(tokens, secret="shared-" + "x" * 32)
    elsewhere, _ = app_with(tokens, secret="other-" + "y" * 32)
    pod_a = TestClient(first, follow_redirects=False)
    csrf = csrf_of(pod_a.get("/console/signin").text)
    assert pod_a.post("/console/signin", data={"token": "tok-1", "csrf_token": csrf}).status_code == 303
    cookie = {"test_session": pod_a.cookies["test_session"]}

    pod_b = TestClient(second, follow_redirects=False, cookies=cookie)
    page = pod_b.get("/console/")
    assert page.status_code == 200 and "hello ann" in page.text
    assert pod_b.post("/console/act", data={"csrf_token": csrf_of(page.text)}).status_code == 303

    stranger = TestClient(elsewhere, follow_redirects=False, cookies=cookie)
    assert stranger.get("/console/").headers["location"].startswith("/console/signin")
