"""The console's files as the gateway serves them (``gateway/console.py``):
hashed assets cached for a year, ``index.html`` never, the app's own routes
answered with ``index.html``, nothing outside the build, a clear 503 without
one, the map's settings, and the tile server in the CSP. In-process, on a
build made here (a fake one: three small files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ConsoleSettings, Settings
from gateway.app import create_app
from gateway.console import ASSETS_CACHE, PAGE_CACHE, resolve, tile_sources
from tests.fakes.readiness import healthy_backends
from tests.unit.gateway.support import running_app

INDEX = b"<!doctype html><title>console</title>"
SCRIPT = b"console.log('built')"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    built = tmp_path / "dist"
    (built / "assets").mkdir(parents=True)
    (built / "index.html").write_bytes(INDEX)
    (built / "assets" / "index-AbC123.js").write_bytes(SCRIPT)
    (tmp_path / "secret.txt").write_text("outside the build")
    return built


def console_settings(settings: Settings, **console: object) -> Settings:
    return settings.model_copy(update={"console": settings.console.model_copy(update=console)})


def test_resolve_keeps_to_the_build(dist: Path) -> None:
    assert resolve(dist, "assets/index-AbC123.js") == (
        (dist / "assets" / "index-AbC123.js").resolve(),
        ASSETS_CACHE,
    )
    assert resolve(dist, "") == (dist.resolve() / "index.html", PAGE_CACHE)
    assert resolve(dist, "zones") == (dist.resolve() / "index.html", PAGE_CACHE)
    assert resolve(dist, "assets/gone-123.js") is None
    assert resolve(dist, "../secret.txt") is None
    assert resolve(dist, "/etc/passwd") is None


def test_the_tile_servers_origin_only() -> None:
    assert tile_sources(ConsoleSettings()) == ["https://tile.openstreetmap.org"]
    assert tile_sources(ConsoleSettings(tile_url="")) == []
    custom = ConsoleSettings(tile_url="https://tiles.example.org:8443/osm/{z}/{x}/{y}.png")
    assert tile_sources(custom) == ["https://tiles.example.org:8443"]


async def test_the_gateway_serves_the_build_with_its_caching(
    settings: Settings, dist: Path
) -> None:
    app = create_app(console_settings(settings, dist_dir=dist), backends=healthy_backends())
    async with running_app(app) as client:
        page = await client.get("/console/")
        assert page.status_code == 200
        assert page.content == INDEX
        assert page.headers["cache-control"] == PAGE_CACHE
        assert "https://tile.openstreetmap.org" in page.headers["content-security-policy"]
        assert "script-src 'self';" in page.headers["content-security-policy"]

        asset = await client.get("/console/assets/index-AbC123.js")
        assert asset.status_code == 200
        assert asset.content == SCRIPT
        assert asset.headers["cache-control"] == ASSETS_CACHE

        route = await client.get("/console/responders")
        assert (route.status_code, route.content) == (200, INDEX)

        missing = await client.get("/console/assets/gone-123.js")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"

        for escape in ("/console/../secret.txt", "/console/%2e%2e/secret.txt"):
            answer = await client.get(escape)
            assert b"outside the build" not in answer.content

        bare = await client.get("/console")
        assert bare.status_code == 308
        assert bare.headers["location"] == "/console/"

        config = await client.get("/console/config.json")
        assert config.json() == {
            "tile_url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "tile_attribution": "© OpenStreetMap contributors",
            "max_zoom": 19,
            "emergency_number": "112",
        }


async def test_without_a_build_the_console_says_how_to_make_one(
    settings: Settings, tmp_path: Path
) -> None:
    app = create_app(
        console_settings(settings, dist_dir=tmp_path / "none", tile_url="", emergency_number="911"),
        backends=healthy_backends(),
    )
    async with running_app(app) as client:
        answer = await client.get("/console/")
        assert answer.status_code == 503
        assert "scripts/bootstrap" in answer.json()["detail"]
        config = await client.get("/console/config.json")
        assert config.json()["tile_url"] is None
        app_config = await client.get("/app/config.json")
        assert app_config.json()["emergency_number"] == "911"
        assert "tile.openstreetmap.org" not in answer.headers["content-security-policy"]


def test_the_built_console_holds_no_secret(settings: Settings) -> None:
    """The real build (scripts/bootstrap makes it) names none of the server's secrets."""
    built = settings.console.dist_dir
    assert (built / "index.html").is_file(), "no console build: run scripts/bootstrap"
    secrets = {
        settings.auth.jwt_secret.get_secret_value(),
        settings.webhook_secret.get_secret_value(),
        settings.postgres.password.get_secret_value(),
        settings.mongo.password.get_secret_value(),
        settings.totp.encryption_key.get_secret_value(),
        *(key.get_secret_value() for key in settings.media.master_keys.values()),
    }
    for file in built.rglob("*"):
        if file.is_file():
            text = file.read_bytes()
            for secret in secrets:
                assert secret.encode() not in text, f"{file} holds a server secret"


@pytest.mark.parametrize(
    ("prefix", "setting", "name"),
    [
        ("/app", "user_app_dist_dir", "user app"),
        ("/responder", "responder_app_dist_dir", "responder app"),
    ],
)
async def test_the_phone_apps_are_served_like_the_console(
    settings: Settings, dist: Path, tmp_path: Path, prefix: str, setting: str, name: str
) -> None:
    app = create_app(console_settings(settings, **{setting: dist}), backends=healthy_backends())
    async with running_app(app) as client:
        page = await client.get(f"{prefix}/")
        assert (page.status_code, page.content) == (200, INDEX)
        assert page.headers["cache-control"] == PAGE_CACHE
        asset = await client.get(f"{prefix}/assets/index-AbC123.js")
        assert asset.headers["cache-control"] == ASSETS_CACHE
        assert (await client.get(prefix)).headers["location"] == f"{prefix}/"
    missing = create_app(
        console_settings(settings, **{setting: tmp_path / "none"}), backends=healthy_backends()
    )
    async with running_app(missing) as client:
        answer = await client.get(f"{prefix}/")
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith(f"the {name} is not built")
