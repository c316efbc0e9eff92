"""``gateway.ws.fleet_feed``: the diff of the fleet, once per poll, to every admin sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from gateway.fleet import changed
from gateway.ws.fleet_feed import FleetFeed
from tests.fakes.fleet import FakeFleet, Position, StatusRow

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B = UUID(int=1), UUID(int=2)


def feed(fleet: FakeFleet) -> tuple[FleetFeed, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    f = FleetFeed(lambda: fleet, interval_s=3600, clock=lambda: T0)  # type: ignore[arg-type,return-value]
    f._sinks.add(lambda text: sent.append(json.loads(text)))  # polled by hand, no task
    return f, sent


def agents(frame: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert frame["type"] == "fleet.agents"
    return {item["agent_id"]: item for item in frame["data"]["agents"]}


async def test_the_first_poll_learns_then_two_moves_between_polls_are_one_item() -> None:
    fleet = FakeFleet()
    fleet.rows = [StatusRow(A, "available", "approved", T0), StatusRow(B, "busy", "approved", T0)]
    fleet.moves = [(1, A, Position(1.0, 2.0)), (1, B, Position(3.0, 4.0))]
    f, sent = feed(fleet)
    await f.poll()
    assert sent == []  # the console loaded GET /admin/fleet
    fleet.moves += [(5, A, Position(1.1, 2.0)), (6, A, Position(1.2, 2.0, heading=90.0))]
    await f.poll()
    (frame,) = sent
    items = agents(frame)
    assert set(items) == {str(A)}
    assert (items[str(A)]["latitude"], items[str(A)]["heading"]) == (1.2, 90.0)
    assert items[str(A)]["available"] is True
    # Nothing changed: no frame (the watermark's own move is read again and dropped).
    await f.poll()
    assert len(sent) == 1


async def test_a_status_change_keeps_the_position_and_a_suspension_greys_the_agent_once() -> None:
    fleet = FakeFleet()
    fleet.rows = [StatusRow(A, "available", "approved", T0)]
    fleet.moves = [(1, A, Position(1.0, 2.0))]
    f, sent = feed(fleet)
    await f.poll()
    later = T0 + timedelta(seconds=5)
    fleet.rows = [StatusRow(A, "offline", "approved", later)]
    await f.poll()
    item = agents(sent[-1])[str(A)]
    assert (item["status"], item["available"], item["latitude"]) == ("offline", False, 1.0)
    fleet.rows = [StatusRow(A, "available", "suspended", later + timedelta(seconds=1))]
    await f.poll()
    assert agents(sent[-1])[str(A)]["status"] == "offline"
    frames = len(sent)
    fleet.moves.append((9, A, Position(5.0, 5.0)))
    await f.poll()
    assert len(sent) == frames  # not followed once suspended


def test_changed_leaves_out_agents_never_known_without_a_status() -> None:
    assert changed({}, {}, {A: Position(1.0, 1.0)}) == {}
    assert changed({}, {A: "busy"}, {}) == {A: ("busy", None)}
