"""Signing in to a console over HTTP, as the sign-in form does (its CSRF token first)."""
from __future__ import annotations

import re

import httpx


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def sign_in(http: httpx.AsyncClient, token: str) -> None:
    form = (await http.get("/console/signin")).text
    await http.post("/console/signin", data={"token": token, "csrf_token": csrf_token(form)})
