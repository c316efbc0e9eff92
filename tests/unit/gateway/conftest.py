"""Fixtures for gateway unit tests: the real app factory, fake backends, no network.

``gateway_client`` builds an app with ``create_app`` (injecting fakes from
``tests/fakes`` and the probe routes of ``support.py``), runs its lifespan,
and talks to it in-process through httpx's ASGI transport.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from config.settings import Settings
from gateway.app import create_app
from gateway.readiness import Backend
from tests.fakes.readiness import healthy_backends
from tests.unit.gateway.support import ClientFactory, probe_router, running_app, with_http


@pytest.fixture
def gateway_client(settings: Settings) -> ClientFactory:
    """Factory: ``async with gateway_client(backends=[...], **http_settings) as client``."""

    def factory(
        backends: Sequence[Backend] | None = None, **http: Any
    ) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        app = create_app(
            with_http(settings, **http),
            backends=healthy_backends() if backends is None else backends,
            routers=[probe_router],
        )
        return running_app(app)

    return factory
