"""The browser apps' files (built from ``web/``): the dispatcher console at
``/console/``, the user app at ``/app/``, the responder app at ``/responder/``.

Caching: the build names every asset by its content hash (``assets/*``), so
those are cached for a year (``immutable``); ``index.html`` names the current
hashes and is never cached (``no-cache``), so a new build reaches browsers at
their next load. Any other path under ``/console/`` is the single-page app's
own route and gets ``index.html``. ``config.json`` is the apps' settings
(tile server and attribution, the local emergency number): public, no secret; the bundle holds none
either, and tokens are kept in the page's memory only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from config.settings import ConsoleSettings, Settings
from gateway.deps import SettingsDep
from gateway.problems import instance_of, problem_response

ASSETS_CACHE: Final = "public, max-age=31536000, immutable"
PAGE_CACHE: Final = "no-cache"

router = APIRouter(include_in_schema=False)


def tile_sources(settings: ConsoleSettings) -> list[str]:
    """The tile server's origin, for the Content-Security-Policy (none without tiles)."""
    if not settings.tile_url:
        return []
    parts = urlsplit(settings.tile_url)
    return [f"{parts.scheme}://{parts.netloc}"]


def resolve(dist: Path, path: str) -> tuple[Path, str] | None:
    """The file to answer ``/console/<path>`` with, and its Cache-Control; ``None``: 404.

    Never a file outside ``dist`` (``..``, absolute or symlinked out). A
    missing ``assets/`` file is a 404 (a stale page asking for an old hash
    must not get HTML as JavaScript); any other missing path is the app's.
    """
    root = dist.resolve()
    if path:
        candidate = (root / path).resolve()
        if not candidate.is_relative_to(root):
            return None
        if candidate.is_file():
            cache = ASSETS_CACHE if path.startswith("assets/") else PAGE_CACHE
            return candidate, cache
        if path.startswith("assets/"):
            return None
    return root / "index.html", PAGE_CACHE


def _config(settings: Settings) -> Response:
    console = settings.console
    return JSONResponse(
        {
            "tile_url": console.tile_url or None,
            "tile_attribution": console.tile_attribution,
            "max_zoom": console.tile_max_zoom,
            "emergency_number": console.emergency_number,
        },
        headers={"Cache-Control": PAGE_CACHE},
    )


def _serve(name: str, dist: Path, path: str, request: Request) -> Response:
    if not (dist / "index.html").is_file():
        return problem_response(
            503,
            detail=f"the {name} is not built: run scripts/bootstrap (npm ci and the build in web/)",
            instance=instance_of(request.scope),
        )
    found = resolve(dist, path)
    if found is None:
        return problem_response(
            404, detail=f"no such {name} file", instance=instance_of(request.scope)
        )
    file, cache = found
    return FileResponse(file, headers={"Cache-Control": cache})


def _add_app(prefix: str, name: str, dist_of: Callable[[ConsoleSettings], Path]) -> None:
    """``prefix`` (redirected to ``prefix/``), ``prefix/config.json`` and the build's files."""

    async def root() -> Response:
        return RedirectResponse(f"{prefix}/", status_code=308)

    async def config(settings: SettingsDep) -> Response:
        return _config(settings)

    async def file(path: str, request: Request, settings: SettingsDep) -> Response:
        return _serve(name, dist_of(settings.console), path, request)

    methods = ["GET", "HEAD"]
    router.add_api_route(prefix, root, methods=methods)
    router.add_api_route(f"{prefix}/config.json", config, methods=methods)
    router.add_api_route(prefix + "/{path:path}", file, methods=methods)


#: The browser apps (``web/``): the dispatcher console, the user app, the responder app.
APPS: Final = (
    ("/console", "console", lambda web: web.dist_dir),
    ("/app", "user app", lambda web: web.user_app_dist_dir),
    ("/responder", "responder app", lambda web: web.responder_app_dist_dir),
)
for _prefix, _name, _dist_of in APPS:
    _add_app(_prefix, _name, _dist_of)
