"""What the reviewer and moderator consoles share: templates, the signed session cookie, CSRF, sign-in.

Each console is a set of server-rendered pages on its service's own app. A person
signs in with their bearer token once (form POST); the session is then a signed,
HttpOnly, SameSite=Strict cookie holding a digest of the token (never the token)
and the session's CSRF token. Every page re-resolves the digest against the
configured tokens, so removing a token ends its sessions. Every POST form carries
the CSRF token; a missing or wrong one is answered 403 before anything happens.

No personal data in URLs: pages are addressed by case ids, content ids, appeal ids.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from warden.runtime.settings import ConfigurationError

log = logging.getLogger(__name__)
# Signs the session cookies; every replica of a service must have the same, or a sign-in made on one pod
# is refused by the next. Required outside the embedded default (require_console_secret).
SECRET_ENV = "WARDEN_CONSOLE_SECRET"
SECRET_MIN_LENGTH = 32
SECURE_ENV = "WARDEN_CONSOLE_SECURE_COOKIE"  # "1": Secure cookies even when the app sees plain http (behind TLS)
SESSION_MAX_AGE_S = 8 * 3600
SHARED_TEMPLATES = Path(__file__).parent / "templates"
# Pages are not cached, not framed, and leak nothing in Referer headers.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    # Scripts only from the console's own files (the moderators' keyboard shortcuts): never inline, never eval.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

P = TypeVar("P")


def require_console_secret(settings) -> None:
    """Startup check of every service with a console: outside the embedded default the cookie-signing
    secret is configured, shared by the replicas, and long enough not to be guessed."""
    configured = os.environ.get(SECRET_ENV, "")
    if not configured and settings.embedded_defaults:
        return
    if not configured:
        raise ConfigurationError(
            f"{SECRET_ENV} is not set: the console's sign-in cookies are signed with it, and every replica "
            f"must share it (docs/deployment.md, 'Secrets'); `warden up` sets one")
    if len(configured) < SECRET_MIN_LENGTH:
        raise ConfigurationError(f"{SECRET_ENV} is shorter than {SECRET_MIN_LENGTH} characters: "
                                 "`openssl rand -base64 48` makes one")


def token_digest(token: str, key: bytes) -> str:
    """What the cookie holds instead of the token: keyed, so a leaked cookie cannot be brute-forced offline."""
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form."""


class CsrfRejected(Exception):
    """A POST without the session's CSRF token: answered 403, nothing done."""


@dataclass
class Session(Generic[P]):
    csrf: str
    digest: str | None
    who: P | None


class Console(Generic[P]):
    """One service's console: its templates, cookie and tokens.

    Pages go on `router()`; `install(app, router)` adds sign-in/out and mounts them.
    """

    def __init__(self, *, title: str, prefix: str, cookie: str, templates: Path,
                 tokens: Mapping[str, P], display: Callable[[P], str], secret: str | None = None):
        self.title, self.prefix, self.cookie = title, prefix.rstrip("/"), cookie
        self.display = display
        secret = secret or os.environ.get(SECRET_ENV)
        if not secret:  # the embedded default only (require_console_secret): sessions last as long as the process
            log.info("console secret not configured: using a random one for this process",
                     extra={"configure": SECRET_ENV})
            secret = secrets.token_urlsafe(32)
        self._signer = URLSafeTimedSerializer(secret, salt=f"warden-console:{cookie}")
        self._digest_key = hashlib.sha256(f"warden-console-token:{cookie}:{secret}".encode()).digest()
        self.principals: dict[str, P] = {token_digest(t, self._digest_key): who for t, who in tokens.items() if t}
        self.env = Environment(loader=ChoiceLoader([FileSystemLoader(templates), FileSystemLoader(SHARED_TEMPLATES)]),
                               autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else "—"

    # --- session -----------------------------------------------------------------------

    def session(self, request: Request) -> Session[P]:
        """The request's session; a fresh anonymous one (new CSRF token) when there is none or it is invalid."""
        raw = request.cookies.get(self.cookie)
        if raw:
            try:
                data = self._signer.loads(raw, max_age=SESSION_MAX_AGE_S)
                digest = data.get("d")
                return Session(csrf=data["c"], digest=digest, who=self.principals.get(digest) if digest else None)
            except (BadSignature, KeyError, TypeError, AttributeError):
                pass
        return Session(csrf=secrets.token_urlsafe(32), digest=None, who=None)

    def signed_in(self, request: Request) -> tuple[P, Session[P]]:
        session = self.session(request)
        if session.who is None:
            raise SignInRequired()
        return session.who, session

    def check_csrf(self, session: Session[P], presented: str | None) -> None:
        if not presented or not hmac.compare_digest(presented.encode(), session.csrf.encode()):
            raise CsrfRejected()

    def _set_cookie(self, response: Response, request: Request, session: Session[P]) -> None:
        value = self._signer.dumps({"c": session.csrf, "d": session.digest})
        secure = request.url.scheme == "https" or os.environ.get(SECURE_ENV) == "1"
        response.set_cookie(self.cookie, value, max_age=SESSION_MAX_AGE_S, path=self.prefix or "/",
                            httponly=True, samesite="strict", secure=secure)

    # --- responses ---------------------------------------------------------------------

    def render(self, request: Request, template: str, session: Session[P], status: int = 200,
               img_src: str | None = None, **context: Any) -> HTMLResponse:
        """The page; `img_src`: the one origin its images may come from (none by default)."""
        page = self.env.get_template(template).render(
            console=self, prefix=self.prefix, title=self.title, csrf_token=session.csrf,
            who=self.display(session.who) if session.who is not None else None, **context)
        headers = PAGE_HEADERS if img_src is None else {
            **PAGE_HEADERS, "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + f"; img-src {img_src}"}
        response = HTMLResponse(page, status_code=status, headers=headers)
        self._set_cookie(response, request, session)  # keeps the CSRF token of an anonymous session stable
        return response

    def redirect(self, path: str) -> RedirectResponse:
        return RedirectResponse(self.prefix + path, status_code=303, headers=PAGE_HEADERS)

    def safe_next(self, target: str | None) -> str:
        """Only a path inside this console (no open redirects after sign-in)."""
        if target and target.startswith(self.prefix + "/") and not target.startswith("//"):
            parts = urlsplit(target)
            if not parts.scheme and not parts.netloc:
                return target
        return self.prefix + "/"

    # --- mounting ----------------------------------------------------------------------

    def router(self) -> APIRouter:
        """A router for the console's pages whose routes answer session and CSRF failures with pages.

        (A route class rather than app exception handlers: moderation adds its routes after its
        server started, when the app's exception middleware is already built.)
        """
        console = self

        class ConsoleRoute(APIRoute):
            def get_route_handler(self):
                handle = super().get_route_handler()

                async def guarded(request: Request) -> Response:
                    try:
                        return await handle(request)
                    except SignInRequired:
                        return console._signin_again(request)
                    except CsrfRejected:
                        return console.refuse(request, 403, "Form expired or forged",
                                              "This form was not sent from a current console page. "
                                              "Nothing was changed. Reload the page and try again.")
                return guarded

        return APIRouter(prefix=self.prefix, include_in_schema=False, route_class=ConsoleRoute)

    def refuse(self, request: Request, status: int, heading: str, message: str) -> HTMLResponse:
        return self.render(request, "error.html", self.session(request), status=status, heading=heading,
                           message=message)

    def _signin_again(self, request: Request) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"{self.prefix}/signin?next={quote(request.url.path)}", status_code=303,
                                    headers=PAGE_HEADERS)
        return self.render(request, "signin.html", self.session(request), status=401,
                           error="Your session has ended. Sign in again.", next=self.prefix + "/")

    def install(self, app: FastAPI, router: APIRouter) -> None:
        """Add the sign-in/out routes to the console's router (from `router()`) and mount it."""
        self._signin_routes(router)
        app.include_router(router)

    def _signin_routes(self, router: APIRouter) -> None:
        @router.get("/signin", include_in_schema=False)
        async def signin_form(request: Request, next: str | None = None) -> Response:
            return self.render(request, "signin.html", self.session(request), next=self.safe_next(next))

        @router.post("/signin", include_in_schema=False)
        async def signin(request: Request, token: str = Form(""), csrf_token: str = Form(""),
                         next: str = Form("")) -> Response:
            session = self.session(request)
            self.check_csrf(session, csrf_token)
            digest = token_digest(token.strip(), self._digest_key) if token.strip() else None
            who = self.principals.get(digest) if digest else None
            if who is None:
                log.info("console sign-in refused", extra={"console": self.cookie})
                return self.render(request, "signin.html", session, status=401, next=self.safe_next(next),
                                   error="That token is not valid. Check it and try again.")
            # A new CSRF token on sign-in: a token planted before sign-in is worthless after it.
            fresh = Session(csrf=secrets.token_urlsafe(32), digest=digest, who=who)
            response = RedirectResponse(self.safe_next(next), status_code=303, headers=PAGE_HEADERS)
            self._set_cookie(response, request, fresh)
            log.info("console sign-in", extra={"console": self.cookie})
            return response

        @router.post("/signout", include_in_schema=False)
        async def signout(request: Request, csrf_token: str = Form("")) -> Response:
            self.check_csrf(self.session(request), csrf_token)
            response = self.redirect("/signin")
            response.delete_cookie(self.cookie, path=self.prefix or "/")
            return response
