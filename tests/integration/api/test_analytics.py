"""The dispatcher console's reads over real HTTP, PostgreSQL and the entity
actors (issue 18): response-time percentiles per bucket and type, as JSON
and CSV, and an alert's emergency-contact delivery outcomes.

The alerts of the response-time tests are written as the entity runtime
writes them (``PostgresEntityStore.commit``: snapshot and ``alerts``
projection in one statement), with known milestone seconds, in March 2003,
a window no other test of this package writes to. The deliveries are
recorded by the notifier's own adapter (``PostgresDeliveries``)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from actors.effects import EntityKind, Persist
from actors.ports import CommitBatch
from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from persistence.notifications import PostgresDeliveries
from persistence.stores.contacts import ContactFields, create_contact
from persistence.stores.entities import PostgresEntityStore
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.test_agent_vetting import is_problem
from tests.integration.api.test_ws import create_alert

pytestmark = pytest.mark.integration

PATH = "/analytics/response-times"
FROM, TO = "2003-03-03T00:00:00Z", "2003-03-10T00:00:00Z"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def snapshot(
    user_id: UUID, alert_type: str, created: str, status: str, **response_s: float
) -> Persist:
    """An alert's snapshot as the entity commits it; ``response_s`` is what
    ``AlertState.response_times`` derives from its timeline."""
    alert_id = uuid4()
    data: dict[str, Any] = {
        "schema": 1,
        "kind": "alert",
        "id": str(alert_id),
        "user_id": str(user_id),
        "alert_type": alert_type,
        "status": status,
        "latitude": -33.92,
        "longitude": 18.42,
        "accuracy_m": None,
        "description": None,
        "silent": False,
        "created_at": at(created).isoformat(),
        "updated_at": at(created).isoformat(),
        "assigned_agent_id": None,
        "version": 1,
        "response_s": response_s,
    }
    return Persist(EntityKind.ALERT, alert_id, 1, data)


@pytest.fixture(scope="module")
async def march_2003(api_pool: asyncpg.Pool, api_settings: Settings) -> None:
    """The alerts of the response-time tests (once per module)."""
    owner = await make_account(api_pool, api_settings, Role.USER)
    u = owner.id
    batch = CommitBatch(
        snapshots=[
            # Monday 3 March: two fires and a medical.
            snapshot(u, "fire", "2003-03-03T10:00:00", "resolved", **_all(10, 20, 100, 1000)),
            snapshot(u, "fire", "2003-03-03T11:00:00", "assigned", offer=20.0, accept=40.0),
            snapshot(u, "medical", "2003-03-03T12:00:00", "dispatching", offer=30.12345),
            # The last second of Tuesday (UTC) and the first of Wednesday.
            snapshot(u, "fire", "2003-03-04T23:59:59", "dispatching", offer=5.0),
            snapshot(u, "panic", "2003-03-05T00:00:00", "cancelled"),
            # Outside [from, to): the instant before `from`, and `to` itself.
            snapshot(u, "fire", "2003-03-02T23:59:59.999", "dispatching", offer=999.0),
            snapshot(u, "fire", "2003-03-10T00:00:00", "dispatching", offer=999.0),
        ]
    )
    await PostgresEntityStore(api_pool, source="test").commit(batch)


def _all(offer: float, accept: float, on_scene: float, resolve: float) -> dict[str, float]:
    return {"offer": offer, "accept": accept, "on_scene": on_scene, "resolve": resolve}


def stage(count: int, p50: float | None = None, p90: float | None = None) -> dict[str, Any]:
    return {"count": count, "p50_s": p50, "p90_s": p90}


NONE = stage(0)


def item(
    day: str,
    alert_type: str,
    count: int,
    offer: dict[str, Any] = NONE,
    accept: dict[str, Any] = NONE,
    on_scene: dict[str, Any] = NONE,
    resolve: dict[str, Any] = NONE,
) -> dict[str, Any]:
    return {
        "bucket_start": f"{day}Z",
        "alert_type": alert_type,
        "count": count,
        "offer": offer,
        "accept": accept,
        "on_scene": on_scene,
        "resolve": resolve,
    }


MONDAY_FIRES = item(
    "2003-03-03T00:00:00",
    "fire",
    2,
    offer=stage(2, 15.0, 19.0),
    accept=stage(2, 30.0, 38.0),
    on_scene=stage(1, 100.0, 100.0),
    resolve=stage(1, 1000.0, 1000.0),
)
MONDAY_MEDICAL = item("2003-03-03T00:00:00", "medical", 1, offer=stage(1, 30.123, 30.123))
TUESDAY_FIRE = item("2003-03-04T00:00:00", "fire", 1, offer=stage(1, 5.0, 5.0))


async def figures(http: httpx.AsyncClient, admin: Account, **params: str) -> dict[str, Any]:
    response = await http.get(PATH, params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.usefixtures("march_2003")
async def test_percentiles_per_day_and_type_with_an_all_types_row(
    http: httpx.AsyncClient, admin: Account
) -> None:
    body = await figures(http, admin, **{"from": FROM, "to": TO})
    assert (body["from"], body["to"], body["bucket"]) == ("2003-03-03T00:00:00Z", f"{TO}", "day")
    assert body["items"] == [
        # Offers of 10, 20 and 30.12345 s: the median 20, the 90th percentile
        # interpolated (20 + 0.8 * 10.12345 = 28.09876), both to the millisecond.
        item(
            "2003-03-03T00:00:00",
            "all",
            3,
            offer=stage(3, 20.0, 28.099),
            accept=stage(2, 30.0, 38.0),
            on_scene=stage(1, 100.0, 100.0),
            resolve=stage(1, 1000.0, 1000.0),
        ),
        MONDAY_FIRES,
        MONDAY_MEDICAL,
        {**TUESDAY_FIRE, "alert_type": "all"},
        TUESDAY_FIRE,
        item("2003-03-05T00:00:00", "all", 1),
        item("2003-03-05T00:00:00", "panic", 1),
    ]


@pytest.mark.usefixtures("march_2003")
async def test_weeks_and_hours_are_buckets_in_utc(http: httpx.AsyncClient, admin: Account) -> None:
    # The window given in another zone is the same window, answered in UTC.
    week = await figures(
        http, admin, **{"from": "2003-03-03T02:00:00+02:00", "to": TO, "bucket": "week"}
    )
    assert (week["from"], week["bucket"]) == ("2003-03-03T00:00:00Z", "week")
    rows = {row["alert_type"]: row for row in week["items"]}
    assert {row["bucket_start"] for row in week["items"]} == {"2003-03-03T00:00:00Z"}  # a Monday
    assert list(rows) == ["all", "fire", "medical", "panic"]
    assert rows["all"]["count"] == 5
    assert rows["all"]["offer"] == stage(4, 15.0, 27.086)  # 5, 10, 20, 30.12345
    assert rows["fire"]["offer"] == stage(3, 10.0, 18.0)

    hours = await figures(
        http,
        admin,
        **{"from": "2003-03-04T12:00:00Z", "to": "2003-03-05T12:00:00Z", "bucket": "hour"},
    )
    assert [(row["bucket_start"], row["alert_type"]) for row in hours["items"]] == [
        ("2003-03-04T23:00:00Z", "all"),
        ("2003-03-04T23:00:00Z", "fire"),
        ("2003-03-05T00:00:00Z", "all"),
        ("2003-03-05T00:00:00Z", "panic"),
    ]


@pytest.mark.usefixtures("march_2003")
async def test_one_type_only(http: httpx.AsyncClient, admin: Account) -> None:
    body = await figures(http, admin, **{"from": FROM, "to": TO, "alert_type": "fire"})
    assert body["items"] == [
        {**MONDAY_FIRES, "alert_type": "all"},
        MONDAY_FIRES,
        {**TUESDAY_FIRE, "alert_type": "all"},
        TUESDAY_FIRE,
    ]
    empty = await figures(http, admin, **{"from": FROM, "to": TO, "alert_type": "security"})
    assert empty["items"] == []


EXPECTED_CSV = (
    b"bucket_start,alert_type,count,offer_count,offer_p50_s,offer_p90_s,accept_count,"
    b"accept_p50_s,accept_p90_s,on_scene_count,on_scene_p50_s,on_scene_p90_s,resolve_count,"
    b"resolve_p50_s,resolve_p90_s\r\n"
    b"2003-03-03T00:00:00Z,all,1,1,30.123,30.123,0,,,0,,,0,,\r\n"
    b"2003-03-03T00:00:00Z,medical,1,1,30.123,30.123,0,,,0,,,0,,\r\n"
)


@pytest.mark.usefixtures("march_2003")
async def test_the_csv_export(http: httpx.AsyncClient, admin: Account) -> None:
    params = {"from": FROM, "to": TO, "alert_type": "medical"}
    by_param = await http.get(PATH, params={**params, "format": "csv"}, headers=admin.headers)
    by_accept = await http.get(PATH, params=params, headers={**admin.headers, "Accept": "text/csv"})
    for response in (by_param, by_accept):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"] == (
            'attachment; filename="response-times-20030303T000000Z-20030310T000000Z.csv"'
        )
        assert response.content == EXPECTED_CSV

    # Every JSON row is a CSV line, in the same order.
    body = await figures(http, admin, **{"from": FROM, "to": TO})
    export = await http.get(
        PATH, params={"from": FROM, "to": TO, "format": "csv"}, headers=admin.headers
    )
    lines = list(csv.DictReader(io.StringIO(export.text)))
    assert [(line["bucket_start"], line["alert_type"]) for line in lines] == [
        (row["bucket_start"], row["alert_type"]) for row in body["items"]
    ]
    assert lines[0]["offer_p90_s"] == "28.099"
    assert lines[-1]["offer_p50_s"] == ""
    # format=json wins over Accept.
    forced = await http.get(
        PATH,
        params={"from": FROM, "to": TO, "format": "json"},
        headers={**admin.headers, "Accept": "text/csv"},
    )
    assert forced.json() == body


async def test_the_default_window_is_the_last_30_days(
    http: httpx.AsyncClient, admin: Account
) -> None:
    body = await figures(http, admin)
    since, until = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert (until - since).days == 30
    assert abs((datetime.now(UTC) - until).total_seconds()) < 600
    assert body["bucket"] == "day"


async def test_only_admins_may_read_the_figures(
    http: httpx.AsyncClient, user: Account, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    is_problem(await http.get(PATH), 401)
    is_problem(await http.get(PATH, params={"format": "csv"}), 401)
    is_problem(await http.get(PATH, headers=user.headers), 403)
    agent = await make_account(api_pool, api_settings, Role.AGENT)
    is_problem(await http.get(PATH, headers=agent.headers), 403)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"from": "2003-03-03T00:00:00"}, "from"),  # no zone
        ({"to": "2003-03-10"}, "to"),  # a date alone
        ({"from": TO, "to": FROM}, "from"),  # not before `to`
        ({"from": FROM, "to": FROM}, "from"),
        ({"from": "2002-01-01T00:00:00Z", "to": TO}, "from"),  # over 400 days
        ({"bucket": "month"}, "bucket"),
        ({"alert_type": "flood"}, "alert_type"),
        ({"format": "xml"}, "format"),
    ],
)
async def test_a_bad_window_or_parameter_is_422_naming_it(
    http: httpx.AsyncClient, admin: Account, params: dict[str, str], loc: str
) -> None:
    body = is_problem(await http.get(PATH, params=params, headers=admin.headers), 422)
    assert [error["loc"] for error in body["errors"]] == [["query", loc]]
    assert body["errors"][0]["msg"]


# --- /alerts/{id}/notifications ---------------------------------------------------


async def test_an_alerts_deliveries_with_masked_addresses(
    http: httpx.AsyncClient,
    admin: Account,
    user: Account,
    api_pool: asyncpg.Pool,
    api_entities: EntityClient,
) -> None:
    fields = ContactFields("Mum", "+4915112345678", "mum@example.org", "mother", ("sms", "email"))
    contact = await create_contact(api_pool, user.id, fields, limit=10)
    alert = await create_alert(api_entities, user)
    path = f"/alerts/{alert.id}/notifications"
    empty = await http.get(path, headers=admin.headers)
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"items": []}

    deliveries = PostgresDeliveries(api_pool)
    sent = [
        ("email", contact.id, "delivered", 1, None),
        ("sms", contact.id, "dead_lettered", 3, "sms provider answered 500"),
        ("webhook", None, "delivered", 2, None),
    ]
    ids = []
    for channel, contact_id, status, attempts, error in sent:
        ids.append(uuid4())
        await deliveries.record(
            request_id=ids[-1],
            alert_id=alert.id,
            channel=channel,
            occasion="raised",
            contact_id=contact_id,
            status=status,
            attempts=attempts,
            error=error,
        )
    # Another alert's delivery is not this one's.
    await deliveries.record(
        request_id=uuid4(),
        alert_id=uuid4(),
        channel="email",
        occasion="raised",
        contact_id=contact.id,
        status="delivered",
        attempts=1,
        error=None,
    )

    response = await http.get(path, headers=admin.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["updated_at"] for i in items] == sorted(i["updated_at"] for i in items)
    by_channel = {i["channel"]: i for i in items}
    assert {i["id"] for i in items} == {str(i) for i in ids}
    assert set(by_channel["email"]) == {
        "id",
        "channel",
        "occasion",
        "contact_id",
        "contact_name",
        "destination_hint",
        "status",
        "attempts",
        "last_error",
        "updated_at",
    }
    email, sms, webhook = by_channel["email"], by_channel["sms"], by_channel["webhook"]
    assert (email["contact_name"], email["destination_hint"], email["status"]) == (
        "Mum",
        "m***@example.org",
        "delivered",
    )
    assert (email["attempts"], email["last_error"], email["occasion"]) == (1, None, "raised")
    assert email["contact_id"] == str(contact.id)
    assert (sms["destination_hint"], sms["status"], sms["attempts"]) == (
        "***5678",
        "dead_lettered",
        3,
    )
    assert sms["last_error"] == "sms provider answered 500"
    assert (webhook["contact_id"], webhook["contact_name"], webhook["destination_hint"]) == (
        None,
        None,
        None,
    )
    assert webhook["attempts"] == 2
    assert "+4915112345678" not in response.text
    assert "mum@example.org" not in response.text
    assert json.loads(response.text) == response.json()


async def test_deliveries_are_for_admins_and_known_alerts_only(
    http: httpx.AsyncClient, admin: Account, user: Account, api_entities: EntityClient
) -> None:
    alert = await create_alert(api_entities, user)
    path = f"/alerts/{alert.id}/notifications"
    is_problem(await http.get(path), 401)
    is_problem(await http.get(path, headers=user.headers), 403)  # its own user, too
    is_problem(await http.get(f"/alerts/{uuid4()}/notifications", headers=admin.headers), 404)
    body = is_problem(
        await http.get("/alerts/not-a-uuid/notifications", headers=admin.headers), 422
    )
    assert body["errors"][0]["loc"] == ["path", "alert_id"]
