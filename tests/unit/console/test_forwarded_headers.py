"""Secure cookies behind a TLS-terminating ingress: X-Forwarded-Proto/-For believed from configured proxies only.

A real uvicorn server (the runtime's build_server) on loopback: the test client connects from 127.0.0.1, so
that address is a trusted proxy or not depending on WARDEN_TRUSTED_PROXIES.
"""
from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from fastapi import FastAPI, Request

from warden.console import SHARED_TEMPLATES, Console
from warden.runtime.http import build_server
from warden.runtime.settings import Settings, trusted_proxy_list

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def console_app() -> FastAPI:
    app = FastAPI()
    console = Console(title="Test", prefix="/console", cookie="test_session", templates=SHARED_TEMPLATES,
                      tokens={}, display=str, secret="s" * 32)
    console.install(app, console.router())

    @app.get("/client")
    async def client(request: Request) -> dict:
        return {"host": request.client.host, "scheme": request.url.scheme}

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def through_server(trusted: str, headers: dict[str, str]) -> tuple[httpx.Response, dict]:
    port = free_port()
    server = build_server(console_app(), "127.0.0.1", port, trusted_proxy_list(Settings(trusted_proxies=trusted)
                                                                                 .trusted_proxies))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            page = await http.get("/console/signin", headers=headers)
            client = (await http.get("/client", headers=headers)).json()
    finally:
        server.should_exit = True
        await serving
    return page, client


@pytest.fixture(autouse=True)
def no_forced_secure(monkeypatch):
    monkeypatch.delenv("WARDEN_CONSOLE_SECURE_COOKIE", raising=False)
    monkeypatch.delenv("WARDEN_TRUSTED_PROXIES", raising=False)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")  # uvicorn's own variable: never what decides


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8, 192.0.2.1"])
async def test_forwarded_https_from_an_untrusted_address_gets_no_secure_cookie(trusted):
    page, client = await through_server(trusted, FORWARDED)
    cookie = page.headers["set-cookie"]
    assert client == {"host": "127.0.0.1", "scheme": "http"}
    assert page.status_code == 200 and "test_session=" in cookie
    assert "secure" not in cookie.lower()


@pytest.mark.parametrize("trusted", ["127.0.0.1", "10.0.0.0/8,127.0.0.0/8"])
async def test_forwarded_https_from_a_trusted_proxy_gets_a_secure_cookie(trusted):
    page, client = await through_server(trusted, FORWARDED)
    assert "secure" in page.headers["set-cookie"].lower()
    assert client == {"host": "203.0.113.7", "scheme": "https"}
    plain, _ = await through_server(trusted, {})  # the proxy said nothing: plain http, as seen
    assert "secure" not in plain.headers["set-cookie"].lower()


def test_trusted_proxies_must_be_addresses():
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        Settings(trusted_proxies="ingress.example")
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        Settings(trusted_proxies="*")
    assert trusted_proxy_list(Settings(trusted_proxies=" 10.1.0.0/16 , ::1 ").trusted_proxies) == ["10.1.0.0/16",
                                                                                                      "::1"]
