"""What a socket is sent after ``auth.ok`` (gateway.ws.resync), from alert states, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from actors.alert import AcceptOffer, CreateAlert, Duress, OfferMade, UpdateStatus, decide
from actors.alert_messages import PinRefused
from actors.alert_state import ActorRole, AlertState, AlertStatus, AlertType
from actors.effects import Audience
from gateway.ws.resync import load_resync, resync_frames

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USER = uuid4()
AGENT = uuid4()
OTHER_AGENT = uuid4()


def created(*, silent: bool = False, user: UUID = USER) -> AlertState:
    alert_id = uuid4()
    state, _ = decide(
        None, CreateAlert(alert_id, user, AlertType.FIRE, 1.0, 2.0, silent=silent), T0
    )
    return state


def offered(state: AlertState, agent: UUID, ttl_s: float = 30) -> AlertState:
    new, _ = decide(state, OfferMade(agent, 100.0, timedelta(seconds=ttl_s)), T0)
    return new


def accepted(state: AlertState, agent: UUID) -> AlertState:
    new, _ = decide(state, AcceptOffer(agent), T0 + timedelta(seconds=1))
    return new


def types(frames: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f["type"], f["data"]["alert_id"]) for f in frames]


def test_an_agent_gets_its_pending_offers_and_its_assignment() -> None:
    pending = offered(created(), AGENT)
    mine = accepted(offered(created(), AGENT), AGENT)
    frames = resync_frames(Audience.agent(AGENT), [pending, mine], T0 + timedelta(seconds=5))
    assert types(frames) == [
        ("alert.offer", str(pending.id)),
        ("alert.assigned", str(mine.id)),
    ]
    assert frames[0]["data"]["resync"] is True
    assert frames[0]["data"]["distance_m"] == 100.0
    assert frames[1]["data"]["status"] == "assigned"


def test_expired_offers_and_other_agents_offers_are_not_resent() -> None:
    expired = offered(created(), AGENT, ttl_s=10)
    someone_else = offered(created(), OTHER_AGENT)
    taken_by_other = accepted(offered(offered(created(), AGENT), OTHER_AGENT), OTHER_AGENT)
    frames = resync_frames(
        Audience.agent(AGENT), [expired, someone_else, taken_by_other], T0 + timedelta(seconds=10)
    )
    assert frames == []


def test_terminal_alerts_are_not_resent() -> None:
    mine = accepted(offered(created(), AGENT), AGENT)
    cancelled, _ = decide(
        mine, UpdateStatus(AlertStatus.CANCELLED, USER, ActorRole.USER), T0 + timedelta(seconds=2)
    )
    assert resync_frames(Audience.agent(AGENT), [cancelled], T0) == []
    assert resync_frames(Audience.user(USER), [cancelled], T0) == []


def test_a_user_gets_each_open_alert_but_not_silent_ones() -> None:
    loud = accepted(offered(created(), AGENT), AGENT)
    fresh = created()
    silent = accepted(offered(created(silent=True), AGENT), AGENT)
    frames = resync_frames(Audience.user(USER), [loud, fresh, silent], T0)
    assert types(frames) == [("alert.updated", str(loud.id)), ("alert.updated", str(fresh.id))]
    assert frames[0]["data"]["status"] == "assigned"
    assert frames[0]["data"]["previous_status"] == "dispatching"
    assert frames[0]["data"]["assigned_agent_id"] == str(AGENT)
    assert frames[1]["data"]["previous_status"] == "dispatching"  # never moved


def test_finding_a_user_resyncs_a_pin_locked_alert_as_before_and_a_duress_one_not_at_all() -> None:
    fresh = created()
    before = resync_frames(Audience.user(USER), [fresh], T0)
    locked, _ = decide(fresh, PinRefused(USER, over_limit=True), T0 + timedelta(seconds=2))
    assert locked.status is AlertStatus.ESCALATED
    assert resync_frames(Audience.user(USER), [locked], T0) == before
    duress, _ = decide(fresh, Duress(USER), T0 + timedelta(seconds=2))
    assert resync_frames(Audience.user(USER), [duress], T0) == []


def test_another_users_alert_is_never_sent() -> None:
    assert resync_frames(Audience.user(USER), [created(user=uuid4())], T0) == []


class FakeSource:
    def __init__(self, snapshots: Sequence[Mapping[str, Any]]) -> None:
        self.snapshots = snapshots
        self.asked: list[tuple[str, UUID]] = []

    async def for_agent(self, agent_id: UUID) -> Sequence[Mapping[str, Any]]:
        self.asked.append(("agent", agent_id))
        return self.snapshots

    async def for_user(self, user_id: UUID) -> Sequence[Mapping[str, Any]]:
        self.asked.append(("user", user_id))
        return self.snapshots


async def test_load_resync_decodes_snapshots_and_skips_unreadable_ones() -> None:
    pending = offered(created(), AGENT)
    source = FakeSource([{"kind": "nonsense"}, pending.to_snapshot()])
    frames = await load_resync(source, Audience.agent(AGENT), T0)
    assert types(frames) == [("alert.offer", str(pending.id))]
    assert source.asked == [("agent", AGENT)]
    await load_resync(source, Audience.user(USER), T0)
    assert source.asked[-1] == ("user", USER)


def test_a_resent_offer_is_the_live_offer_coarse_and_without_description() -> None:
    state, _ = decide(
        None, CreateAlert(uuid4(), USER, AlertType.FIRE, 1.0, 2.0, 5.0, "key under the mat"), T0
    )
    pending = offered(state, AGENT)
    frames = resync_frames(Audience.agent(AGENT), [pending], T0)
    live = pending.offer_frame(pending.offered_to[0])
    assert frames[0]["data"] == {**live, "resync": True}
    assert frames[0]["data"]["description"] is None
    assert (frames[0]["data"]["latitude"], frames[0]["data"]["longitude"]) != (1.0, 2.0)
