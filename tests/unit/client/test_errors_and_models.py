"""Problem details to ApiError, models tolerant of additions, the shells in step."""

from __future__ import annotations

import ast
import inspect
import sys
import uuid
from pathlib import Path

import pytest

import panic_alert_client
from panic_alert_client import (
    Alert,
    ApiError,
    AsyncClient,
    Client,
    Conflict,
    NotFound,
    RateLimited,
    ServerError,
    ValidationFailed,
)
from panic_alert_client.errors import api_error

PROBLEM = {
    "type": "urn:panic-alert:problem:validation",
    "title": "Unprocessable Content",
    "status": 422,
    "detail": "The request is invalid; see errors for each offending field.",
    "errors": [{"loc": ["body", "latitude"], "msg": "must be at most 90"}],
    "request_id": "r-1",
}


def test_a_422_carries_every_member_of_its_problem() -> None:
    error = api_error(422, PROBLEM)
    assert isinstance(error, ValidationFailed)
    assert (error.status, error.type, error.title) == (422, PROBLEM["type"], PROBLEM["title"])
    assert error.detail == PROBLEM["detail"]
    assert [(e.loc, e.msg) for e in error.errors] == [(("body", "latitude"), "must be at most 90")]
    assert error.request_id == "r-1"
    assert "body.latitude: must be at most 90" in str(error)
    assert not error.retriable


def test_statuses_map_to_their_classes_and_429_tells_when_to_retry() -> None:
    assert isinstance(api_error(404, {"title": "Not Found"}), NotFound)
    assert isinstance(api_error(409, {}), Conflict)
    limited = api_error(429, {"title": "Too Many Requests"}, retry_after="7")
    assert isinstance(limited, RateLimited)
    assert (limited.retry_after, limited.retriable) == (7.0, True)
    assert api_error(503, None).retriable
    assert isinstance(api_error(500, "oops"), ServerError)
    assert not api_error(500, None).retriable
    odd = api_error(418, {"title": "Teapot"})
    assert type(odd) is ApiError
    assert odd.title == "Teapot"


def test_an_alert_with_members_added_later_still_reads() -> None:
    alert_id, user_id = uuid.uuid4(), uuid.uuid4()
    alert = Alert.from_json(
        {
            "id": str(alert_id),
            "status": "dispatching",
            "alert_type": "panic",
            "latitude": 1.5,
            "longitude": 2,
            "user_id": str(user_id),
            "created_at": "2030-01-01T00:00:00+00:00",
            "assigned_agent_id": None,
            "eta_s": 240,
        }
    )
    assert (alert.id, alert.user_id, alert.longitude) == (alert_id, user_id, 2.0)
    assert alert.is_open
    assert alert.raw["eta_s"] == 240


def test_the_sync_and_async_clients_offer_the_same_methods_and_parameters() -> None:
    def public(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(member).parameters)
            for name, member in vars(cls).items()
            if inspect.isfunction(member) and not name.startswith("_")
        }

    sync, asynchronous = public(Client), public(AsyncClient)
    # Only the lifecycle (close/aclose) and the socket, which is asyncio-only, differ.
    assert set(asynchronous) - set(sync) == {"aclose", "socket"}
    assert set(sync) - set(asynchronous) == {"close"}
    for name, parameters in sync.items():
        if name != "close":
            assert asynchronous[name] == parameters, name


@pytest.mark.parametrize(
    "server_package",
    [
        "actors",
        "cluster",
        "config",
        "gateway",
        "geo",
        "media",
        "notify",
        "panic_alert",
        "persistence",
    ],
)
def test_the_client_imports_nothing_of_the_server(server_package: str) -> None:
    """It is what outside integrations install: httpx, websockets and the standard
    library only (import-linter cannot see it: it is not a package of the server)."""
    allowed = {"httpx", "websockets", "panic_alert_client", *sys.stdlib_module_names}
    folder = Path(panic_alert_client.__file__).parent
    imported: set[str] = set()
    for source in folder.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert server_package not in imported
    assert imported <= allowed, imported - allowed
