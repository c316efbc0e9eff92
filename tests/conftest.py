"""Fixtures shared by every tier.

Integration tests talk to the real local services that ``scripts/services up``
starts (PostgreSQL + PostGIS, Redis, Kafka, FerretDB); they fail, never skip,
when one is missing, so a green run means the real parts were exercised.
"""

from __future__ import annotations

import os
import uuid

# Ray's node-address detection picks the machine's outward interface; on Linux
# this switch (read when ray is imported) makes every local Ray node, driver
# and cluster_utils.Cluster use 127.0.0.1, so no test traffic leaves loopback.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import pytest

from panic_alert import compiled

# scripts/test runs the unit tier once more with the compiled modules' sources
# (the plain Python), built or not: before anything imports one of them.
if compiled.plain_requested(os.environ):
    compiled.prefer_sources()

from config.settings import Profile, Settings


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test a stale build of the compiled hot path: it would run code
    that is no longer in the tree (``panic_alert.compiled``)."""
    why = compiled.stale()
    if why is not None:
        pytest.exit(why, returncode=4)


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings for tests: the environment's, with the test profile, and rate-limit
    counters of this session's own (a dev server on the same Redis keeps its
    own: a test run had left `auth:register` of 127.0.0.1 over its hourly limit)."""
    configured = Settings(profile=Profile.TEST)
    limits = configured.rate_limit.model_copy(
        update={"key_prefix": f"test-session-{uuid.uuid4().hex[:12]}:"}
    )
    return configured.model_copy(update={"rate_limit": limits})
