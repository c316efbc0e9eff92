"""Fixtures shared by every tier.

Integration tests talk to the real local services that ``scripts/services up``
starts (PostgreSQL + PostGIS, Redis, Kafka, FerretDB); they fail, never skip,
when one is missing, so a green run means the real parts were exercised.
"""

from __future__ import annotations

import pytest

from panic_alert.settings import Profile, Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings for tests: the environment's, with the test profile."""
    return Settings(profile=Profile.TEST)
