"""The live gateway of tests/integration/api, for the Python client's tests:
the same fixtures (a local Ray with the shards, a migrated scratch database,
the real app served by uvicorn on a free port), instantiated for this package."""

from __future__ import annotations

from tests.integration.api.conftest import (
    api_entities,
    api_pool,
    api_settings,
    gateway,
    start_gateway,
)

__all__ = ["api_entities", "api_pool", "api_settings", "gateway", "start_gateway"]
