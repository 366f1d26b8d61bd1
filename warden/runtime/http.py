"""The HTTP face of every service: /metrics, /healthz, /readyz, plus the service's own API."""
from __future__ import annotations

import contextlib
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from warden.contract.trace_context import TraceContext
from warden.runtime import tracing
from warden.runtime.database import TRANSIENT_ERRORS
from warden.runtime.unit_of_work import NotReady


def build_app(service: str, readiness: Callable[[], dict[str, bool]]) -> FastAPI:
    # FastAPI's own telemetry stays off even under a global OpenTelemetry provider: its spans record the
    # path and query values (identifiers, filters); TraceRequests records the route's template only.
    app = FastAPI(title=f"Warden {service}", version="1",
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.add_middleware(TraceRequests, service=service)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "not ready: see `checks`"}})
    async def readyz() -> JSONResponse:
        """Ready when the consumer group is joined and the database answers."""
        checks = readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    # Documented as text/plain (the Prometheus exposition format), as it is served.
    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def database_unavailable(request, exc):
        # The database away (stopped, restarting) is not a server bug: say so, and when to retry.
        return JSONResponse({"detail": "the database is unreachable; retry later"}, status_code=503,
                            headers={"Retry-After": "5"})

    for transient in (*TRANSIENT_ERRORS, NotReady):
        app.add_exception_handler(transient, database_unavailable)
    return app


# Scrapes and probes, every few seconds from every replica: no span, they would drown the traces.
UNTRACED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})


class TraceRequests:
    """Each HTTP request within the trace context its `traceparent`/`tracestate` headers carry: the events
    it emits carry it on, and its logs name it. When tracing is on, a server span named after the route's
    template (never the path itself: it may hold identifiers), whose parent that context is; none for
    the operations endpoints (UNTRACED_PATHS)."""

    def __init__(self, app, service: str):
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace = _trace_headers(scope)
        if not tracing.enabled() or scope["path"] in UNTRACED_PATHS:
            with tracing.within(trace):
                await self.app(scope, receive, send)
            return
        method = scope["method"]
        with tracing.within(trace, span=method, kind="SERVER", attributes={
                "http.request.method": method, "warden.service": self.service}) as traced:
            status = 500

            async def send_noting_status(message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    traced.span.update_name(f"{method} {route}")
                    traced.span.set_attribute("http.route", route)
                traced.span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    tracing.mark_failed(traced, f"HTTP {status}")


def _trace_headers(scope) -> TraceContext | None:
    traceparent = tracestate = None
    for name, value in scope.get("headers") or ():
        if name == b"traceparent":
            traceparent = value
        elif name == b"tracestate":
            tracestate = value
    return TraceContext.parse(traceparent, tracestate) if traceparent is not None else None


class _Server(uvicorn.Server):
    def capture_signals(self):  # the runner owns SIGTERM/SIGINT and stops us via should_exit
        return contextlib.nullcontext()


def build_server(app: FastAPI, host: str, port: int, trusted_proxies: list[str] = ()) -> uvicorn.Server:
    """The service's HTTP server. X-Forwarded-Proto/-For are believed only from `trusted_proxies` (IPs or
    CIDRs: the TLS-terminating ingress, so the consoles see https and set Secure cookies); with none, from
    nobody (uvicorn's own default would trust 127.0.0.1, and FORWARDED_ALLOW_IPS, which is not ours)."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
                            proxy_headers=bool(trusted_proxies), forwarded_allow_ips=list(trusted_proxies) or None)
    return _Server(config)
