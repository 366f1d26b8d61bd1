"""Legal review's consumer on a schema of its own, fed records by the tests (no broker)."""
from __future__ import annotations

import dataclasses
import uuid

import pytest

from warden.runtime.consumer import ConsumerLoop
from warden.runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate

from legal_review.service import SERVICE


@pytest.fixture
async def review_loop(database_url):
    """(loop, pool) of legal review on a schema of its own."""
    service = dataclasses.replace(SERVICE, schema=f"lr_loop_{uuid.uuid4().hex[:6]}")
    await migrate(database_url, service.schema, [RUNTIME_MIGRATIONS, *service.migrations])
    pool = await create_pool(database_url, service.schema, 2)
    yield ConsumerLoop(service, pool, consumer=None, batch_max_records=100, poll_timeout_ms=100,
                       retry_initial_s=0.1, retry_max_s=0.1), pool
    await pool.close()
