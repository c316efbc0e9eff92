"""Entity rejections (``actors.errors``) rendered by the one mapping in ``gateway.errors``."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter

from actors.errors import (
    ActorError,
    AlreadyAssigned,
    AlreadyExists,
    EntityNotFound,
    InvalidMessage,
    InvalidSnapshot,
    InvalidTransition,
    NoPendingOffer,
    NotPermitted,
    UnknownMessage,
)
from cluster.client import AskTimeout
from config.settings import Settings
from gateway.app import create_app
from gateway.errors import actor_detail, public_detail, status_for
from gateway.problems import PROBLEM_JSON
from tests.fakes.readiness import healthy_backends
from tests.unit.gateway.support import running_app

ERRORS: dict[str, Exception] = {
    "transition": InvalidTransition("resolved", "en_route"),
    "no-offer": NoPendingOffer("a1", "g1"),
    "assigned": AlreadyAssigned("g1", "a1", "a2"),
    "exists": AlreadyExists("alert", "a1"),
    "not-found": EntityNotFound("alert", "a1"),
    "not-permitted": NotPermitted("only the assigned agent may set alert a1 to 'en_route'"),
    "invalid": InvalidMessage("invalid alert location (91.0, 0.0) from 10.0.0.7"),
    "unknown": UnknownMessage("alert", "Frobnicate"),
    "snapshot": InvalidSnapshot("alert snapshot schema 9 at row 12 in db-3"),
    "timeout": AskTimeout("alert a1 did not answer in time"),
}

probe = APIRouter()


@probe.get("/actor/{kind}")
async def raise_actor_error(kind: str) -> None:
    raise ERRORS[kind]


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("transition", 409),
        ("no-offer", 409),
        ("assigned", 409),
        ("exists", 409),
        ("not-found", 404),
        ("not-permitted", 403),
        ("invalid", 422),
        ("unknown", 500),
        ("snapshot", 500),
        ("timeout", 503),
    ],
)
def test_each_actor_error_has_its_status(kind: str, status: int) -> None:
    assert status_for(ERRORS[kind]) == status


def test_an_unlisted_actor_error_is_a_500() -> None:
    class Novel(ActorError):
        pass

    assert status_for(Novel("x")) == 500


def test_the_invalid_transition_detail_names_from_and_to() -> None:
    assert actor_detail(InvalidTransition("dispatching", "on_scene")) == (
        "cannot move alert from 'dispatching' to 'on_scene'"
    )
    with_reason = InvalidTransition("assigned", "assigned", reason="already assigned")
    assert public_detail(with_reason, 409).endswith(": already assigned")


def test_details_never_echo_free_text_messages() -> None:
    for kind in ("invalid", "not-permitted", "snapshot", "unknown"):
        error = ERRORS[kind]
        detail = public_detail(error, status_for(error))
        assert str(error) not in detail
        assert "10.0.0.7" not in detail
        assert "db-3" not in detail


async def test_problems_over_http(settings: Settings) -> None:
    app = create_app(settings, backends=healthy_backends(), routers=[probe])
    async with running_app(app) as client:
        transition = await client.get("/actor/transition")
        timeout = await client.get("/actor/timeout")
        snapshot = await client.get("/actor/snapshot")

    assert_problem(transition, 409)
    assert transition.json()["type"] == "urn:panic-alert:problem:invalid-transition"
    assert transition.json()["detail"] == "cannot move alert from 'resolved' to 'en_route'"
    assert_problem(timeout, 503)
    assert timeout.headers["retry-after"] == "5"
    body = assert_problem(snapshot, 500)
    assert "db-3" not in snapshot.text
    assert body["detail"].startswith("An unexpected error occurred")


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, object] = response.json()
    assert body["status"] == status
    return body
