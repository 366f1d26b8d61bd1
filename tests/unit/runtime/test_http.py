"""The operations endpoints and the shared answer to a database outage."""
import asyncpg
import httpx

from warden.runtime import metrics
from warden.runtime.http import build_app


async def call(app, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get(path)


async def test_readyz_answers_503_with_the_failing_check():
    app = build_app("svc", lambda: {"consumer_group_joined": True, "database": False})
    response = await call(app, "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"consumer_group_joined": True, "database": False}
    assert (await call(app, "/healthz")).status_code == 200


async def test_an_api_call_during_a_database_outage_gets_503_and_retry_after():
    app = build_app("svc", lambda: {})

    @app.get("/needs-db")
    async def needs_db():
        raise asyncpg.CannotConnectNowError("the database system is starting up")

    response = await call(app, "/needs-db")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "retry later" in response.json()["detail"]


async def test_metrics_are_prometheus_text():
    metrics.DLQ_EVENTS.labels("some.topic", "undecodable").inc()
    response = await call(build_app("svc", lambda: {}), "/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'warden_dlq_events_total{reason="undecodable",topic="some.topic"}' in response.text
