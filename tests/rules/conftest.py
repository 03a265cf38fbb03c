"""The rules tests' stores: each in-process test runs on LMDB and on Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.redis_process import RedisProcess


@pytest.fixture(params=["lmdb", "redis"])
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """`Config` fields for the store: an LMDB directory, or a real redis-server's URL."""
    if request.param == "redis":
        redis: RedisProcess = request.getfixturevalue("redis_server")
        return {"redis_url": redis.url}
    return {"data_dir": tmp_path}
