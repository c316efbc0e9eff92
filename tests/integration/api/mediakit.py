"""Shared pieces of the media API tests: test files and a gateway with small limits."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cluster.client import EntityClient
from config.settings import Settings
from tests.integration.api.accounts import Account
from tests.integration.api.authkit import isolated
from tests.integration.api.conftest import Gateway, serving

MAX_FILE = 3 * 1024 * 1024
MAX_ALERT = 5 * 1024 * 1024


def noise_png(width: int = 640, height: int = 480) -> bytes:
    """A PNG of random pixels (so it compresses to about its raw size)."""
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def media_settings(settings: Settings, root: Path, **media: Any) -> Settings:
    update = {
        "root": root,
        "max_upload_bytes": MAX_FILE,
        "max_alert_bytes": MAX_ALERT,
        "retention_s": 0.0,
        **media,
    }
    return isolated(settings).model_copy(update={"media": settings.media.model_copy(update=update)})


@asynccontextmanager
async def media_gateway(
    settings: Settings, entities: EntityClient, root: Path, **media: Any
) -> AsyncIterator[Gateway]:
    async with serving(media_settings(settings, root, **media), entities) as gateway:
        yield gateway


async def upload(
    http: httpx.AsyncClient,
    who: Account,
    alert_id: str,
    content: bytes,
    *,
    filename: str = "evidence.png",
    content_type: str = "image/png",
) -> httpx.Response:
    return await http.post(
        "/media/upload",
        files={"file": (filename, content, content_type)},
        data={"alert_id": alert_id},
        headers=who.headers,
    )


# --- fixtures: a test module imports these three for a gateway of its own -----------


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's media folder (the gateway's local object store)."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
async def media_api(
    api_settings: Settings, api_entities: EntityClient, media_root: Path
) -> AsyncIterator[Gateway]:
    """A gateway with small media limits storing under ``media_root``."""
    async with media_gateway(api_settings, api_entities, media_root) as gateway:
        yield gateway


@pytest.fixture
async def http(media_api: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=media_api.base_url, timeout=30) as client:
        yield client


def stored_files(root: Path, media_id: str) -> list[Path]:
    return sorted(p for p in (root / media_id).rglob("*") if p.is_file())


def stored_bytes(root: Path, media_id: str) -> bytes:
    """Everything stored for ``media_id``, concatenated."""
    return b"".join(path.read_bytes() for path in stored_files(root, media_id))


def entries(root: Path) -> set[Path]:
    """The media folders under ``root`` (one per stored file)."""
    return set(root.iterdir())
