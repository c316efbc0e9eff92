"""Liveness and readiness probes.

* ``GET /healthz`` — the process is up and serving HTTP. Always 200; it
  checks nothing else, so an orchestrator never restarts a healthy process
  because a database is down.
* ``GET /readyz`` — every backend answers. 200 ``{"status": "ready",
  "checks": {...}}``, or 503 problem details whose ``detail`` names what is
  not ready and whose ``checks`` lists every backend. Checks run
  concurrently, each bounded by ``settings.http.readiness_timeout_s``; a
  backend that is down is reconnected by the check itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.deps import BackendsDep, SettingsDep
from gateway.problems import PROBLEM_JSON, instance_of, problem_response, problem_type
from gateway.readiness import CheckResult, CheckStatus

router = APIRouter(tags=["ops"])

NO_STORE = {"Cache-Control": "no-store"}

NOT_READY_TYPE = problem_type("not-ready")


def _problem_schema(example: dict[str, Any]) -> dict[str, Any]:
    return {"content": {PROBLEM_JSON: {"example": example}}}


@router.get("/healthz", summary="Liveness: the process serves HTTP")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


#: What to do about a check's status, where the operator can do it at once.
_HINTS = {CheckStatus.NOT_MIGRATED: " (run: panic-alert migrate)"}


def not_ready_detail(failed: list[CheckResult]) -> str:
    """``"not ready: redis unavailable"``; names every failed backend (and what
    to run, for a schema not migrated)."""
    return "not ready: " + ", ".join(
        f"{r.name} {r.status.value}{_HINTS.get(r.status, '')}" for r in failed
    )


@router.get(
    "/readyz",
    summary="Readiness: every backend answers",
    responses={
        503: {
            "description": "At least one backend is not ready",
            **_problem_schema(
                {
                    "type": NOT_READY_TYPE,
                    "title": "Service Unavailable",
                    "status": 503,
                    "detail": "not ready: redis unavailable",
                    "checks": {"postgres": "ok", "redis": "unavailable"},
                }
            ),
        }
    },
)
async def readyz(request: Request, backends: BackendsDep, settings: SettingsDep) -> Response:
    results = await backends.check_all(timeout_s=settings.http.readiness_timeout_s)
    checks = {r.name: r.status.value for r in results}
    failed = [r for r in results if not r.ok]
    if not failed:
        return JSONResponse({"status": "ready", "checks": checks}, headers=NO_STORE)
    return problem_response(
        503,
        detail=not_ready_detail(failed),
        type_=NOT_READY_TYPE,
        instance=instance_of(request.scope),
        headers=NO_STORE,
        extensions={"checks": checks},
    )
