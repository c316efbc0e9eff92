"""The entity runtime with fake ports: mailboxes, commits, timers, sends, recovery.

Real asyncio, wall clock, short timers (tens of milliseconds); no Ray, no I/O.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from actors_kit import AGENT_A, AGENT_B, LAT, LON, USER

from actors.agent import (
    AgentPolicy,
    Availability,
    LocationFix,
    OfferTaken,
    SetStatus,
    SocketOpened,
    TakeOffer,
)
from actors.alert import AcceptOffer, AlertStatus, AlertType, CreateAlert, OfferMade
from actors.alert_messages import SEARCH_AGAIN_TIMER, AlertPolicy
from actors.effects import EntityKind, EventType
from actors.errors import (
    ActorError,
    AlreadyAssigned,
    EntityNotFound,
    InvalidMessage,
    NoPendingOffer,
)
from actors.kinds import behaviours
from actors.ports import MESSAGE_TIMER, CommitBatch
from actors.region import AgentPresence, QueryNearest
from actors.runtime import DEFER_LIMIT_S, FLUSH_CHUNK, EntityHost
from actors.search import Candidate, Search
from actors.subject import NearZone, TrackFix
from geo.cells import cell_of
from geo.fences import Fix, Zone
from tests.fakes.entities import FakeEntityStore, FakeLocalRouter, FakePushSink

ALERT = EntityKind.ALERT
AGENT = EntityKind.AGENT
REGION = EntityKind.REGION


def utcnow() -> datetime:
    return datetime.now(UTC)


class FakeSearcher:
    """Answers every search with fixed candidates (or fails); records the searches."""

    def __init__(self, *agents: UUID, fail: bool = False) -> None:
        self.agents = agents
        self.fail = fail
        self.searches: list[Search] = []

    async def search(self, query: Search) -> tuple[Candidate, ...]:
        self.searches.append(query)
        if self.fail:
            raise ConnectionError("fake searcher: regions away")
        now = utcnow()
        return tuple(
            Candidate(a, 100.0 * (i + 1), LAT, LON, now) for i, a in enumerate(self.agents)
        )


def make_host(
    store: FakeEntityStore | None = None,
    clock: Callable[[], datetime] = utcnow,
    searcher: FakeSearcher | None = None,
    search_again: timedelta = timedelta(seconds=10),
) -> tuple[EntityHost, FakeEntityStore]:
    store = store or FakeEntityStore()
    router = FakeLocalRouter()
    # Alerts without escalation steps: these tests count the timers they arm.
    policy = AlertPolicy(escalation={t: () for t in AlertType}, search_again=search_again)
    host = EntityHost(
        behaviours=behaviours(policy),
        store=store,
        pushes=FakePushSink(),
        router=router,
        clock=clock,
        searcher=searcher,
        flush_interval=3600,
    )
    router.host = host
    return host, store


def create(alert_id: UUID) -> CreateAlert:
    return CreateAlert(alert_id, USER, AlertType.PANIC, LAT, LON)


async def test_messages_to_one_entity_keep_their_order() -> None:
    host, store = make_host()
    await host.start()
    sequence = [Availability.AVAILABLE, Availability.ON_BREAK] * 45
    futures = []
    for status in sequence:  # two entities interleaved, no awaiting in between
        futures.append(host.enqueue(AGENT, str(AGENT_A), SetStatus(status)))
        futures.append(host.enqueue(AGENT, str(AGENT_B), SetStatus(status)))
    await asyncio.gather(*[f for f in futures if f])
    for agent_id in (AGENT_A, AGENT_B):
        seen = [
            e.data["status"]
            for e in store.events
            if e.type is EventType.AGENT_STATUS_CHANGED and e.key == str(agent_id)
        ]
        assert seen == [s.value for s in sequence]
    await host.stop()


async def test_create_commits_snapshot_and_event_together_before_replying() -> None:
    host, store = make_host()
    await host.start()
    alert_id = uuid4()
    state = await host.ask(ALERT, str(alert_id), create(alert_id))
    assert getattr(state, "status", None) is AlertStatus.DISPATCHING
    (commit,) = store.commits
    assert [p.entity_id for p in commit.snapshots] == [alert_id]
    assert [e.type for e in commit.events] == [EventType.ALERT_CREATED]
    await host.stop()


async def test_failed_commit_reaches_the_asker_and_leaves_state_unchanged() -> None:
    host, store = make_host()
    await host.start()
    alert_id = uuid4()
    await host.ask(ALERT, str(alert_id), create(alert_id))
    store.fail_commits = 1
    with pytest.raises(ConnectionError):
        await host.ask(ALERT, str(alert_id), OfferMade(AGENT_A))
    state = host.active_state(ALERT, str(alert_id))
    assert state.offered_to == ()
    after = await host.ask(ALERT, str(alert_id), OfferMade(AGENT_A))
    assert [o.agent_id for o in getattr(after, "offered_to", ())] == [AGENT_A]
    await host.stop()


async def test_rejections_and_unknown_entities_raise_domain_errors() -> None:
    host, _store = make_host()
    await host.start()
    missing = str(uuid4())
    with pytest.raises(EntityNotFound) as info:
        await host.ask(ALERT, missing, OfferMade(AGENT_A))
    assert info.value.entity_id == missing
    alert_id = uuid4()
    await host.ask(ALERT, str(alert_id), create(alert_id))
    with pytest.raises(NoPendingOffer):
        await host.ask(ALERT, str(alert_id), AcceptOffer(AGENT_A))  # never offered
    await host.stop()


async def test_offer_timer_fires_once_and_is_removed_with_its_effects() -> None:
    host, store = make_host()
    await host.start()
    alert_id = uuid4()
    await host.ask(ALERT, str(alert_id), create(alert_id))
    await host.ask(ALERT, str(alert_id), OfferMade(AGENT_A, ttl=timedelta(milliseconds=50)))
    assert len(store.timers) == 1
    await asyncio.sleep(0.3)
    expired = [e for e in store.events if e.type is EventType.ALERT_OFFER_EXPIRED]
    assert len(expired) == 1
    # The expiry's own timer is gone; what is left is the next search's.
    assert [t.name for t in store.timers.values()] == [SEARCH_AGAIN_TIMER]
    assert host.active_state(ALERT, str(alert_id)).offered_to == ()
    await host.stop()


async def test_accept_sends_assignment_durably_to_the_agent() -> None:
    host, store = make_host()
    await host.start()
    alert_id = uuid4()
    await host.ask(AGENT, str(AGENT_A), SetStatus(Availability.AVAILABLE))
    await host.ask(ALERT, str(alert_id), create(alert_id))
    await host.ask(ALERT, str(alert_id), OfferMade(AGENT_A))
    await host.ask(ALERT, str(alert_id), AcceptOffer(AGENT_A))
    stored_messages = [t for c in store.commits for t in c.timers if t.name == MESSAGE_TIMER]
    # The agent's assignment, and the user's subject told to relay the user's fixes.
    assert [t.payload["type"] for t in stored_messages] == ["Assigned", "Responding"]
    agent = host.active_state(AGENT, str(AGENT_A))
    assert agent.availability is Availability.BUSY
    assert agent.current_assignment == alert_id
    assert not [t for t in store.timers.values() if t.name == MESSAGE_TIMER]
    await host.stop()


async def test_taking_an_offer_is_one_ask_answered_once_the_alert_has_decided() -> None:
    """TakeOffer defers the agent's reply; the alert's OfferTaken answers it."""
    host, _store = make_host()
    await host.start()
    alert_id, other_id = uuid4(), uuid4()
    await host.ask(AGENT, str(AGENT_A), SetStatus(Availability.AVAILABLE))
    await host.ask(ALERT, str(alert_id), create(alert_id))
    await host.ask(ALERT, str(alert_id), OfferMade(AGENT_A))
    taken = await asyncio.wait_for(host.ask(AGENT, str(AGENT_A), TakeOffer(alert_id)), 5)
    assert taken == OfferTaken(alert_id, status=AlertStatus.ASSIGNED)
    assert host.active_state(ALERT, str(alert_id)).assigned_agent_id == AGENT_A
    await host.settle()
    assert host.active_state(AGENT, str(AGENT_A)).current_assignment == alert_id
    # A second alert is refused by the agent itself: it holds one.
    await host.ask(ALERT, str(other_id), create(other_id))
    await host.ask(ALERT, str(other_id), OfferMade(AGENT_A))
    with pytest.raises(AlreadyAssigned):
        await host.ask(AGENT, str(AGENT_A), TakeOffer(other_id))
    await host.stop()


async def test_an_alerts_refusal_reaches_the_asker_and_frees_the_agent() -> None:
    host, _store = make_host()
    await host.start()
    never_offered, missing = uuid4(), uuid4()
    await host.ask(AGENT, str(AGENT_A), SetStatus(Availability.AVAILABLE))
    await host.ask(ALERT, str(never_offered), create(never_offered))
    with pytest.raises(NoPendingOffer):
        await asyncio.wait_for(host.ask(AGENT, str(AGENT_A), TakeOffer(never_offered)), 5)
    assert host.active_state(AGENT, str(AGENT_A)).reserved_for is None
    with pytest.raises(EntityNotFound, match=str(missing)):
        await asyncio.wait_for(host.ask(AGENT, str(AGENT_A), TakeOffer(missing)), 5)
    await host.stop()


async def test_a_deferred_ask_with_no_answer_is_told_so_after_the_limit() -> None:
    host, _store = make_host()
    await host.start()
    await host.ask(AGENT, str(AGENT_A), SetStatus(Availability.AVAILABLE))
    # The alert's answer never comes (the tell to it is dropped here).
    router = cast(FakeLocalRouter, host._router)
    router.drop_tells = True
    waiting = asyncio.ensure_future(host.ask(AGENT, str(AGENT_A), TakeOffer(uuid4())))
    await host.settle()
    assert not waiting.done()
    host._expire_deferred(time.monotonic() + DEFER_LIMIT_S)
    with pytest.raises(ActorError, match="no answer in time"):
        await asyncio.wait_for(waiting, 5)
    await host.stop()


async def test_recovery_rearms_stored_timers_and_activates_open_alerts() -> None:
    host, store = make_host()
    await host.start()
    alert_id = uuid4()
    await host.ask(ALERT, str(alert_id), create(alert_id))
    await host.ask(ALERT, str(alert_id), OfferMade(AGENT_A, ttl=timedelta(milliseconds=150)))
    await host.stop()  # the "crash": nothing in memory survives

    revived, _ = make_host(store)
    report = await revived.start()
    assert (report.timers, report.alerts) == (1, 1)
    assert revived.active_state(ALERT, str(alert_id)).status is AlertStatus.DISPATCHING
    await asyncio.sleep(0.4)
    expired = [e for e in store.events if e.type is EventType.ALERT_OFFER_EXPIRED]
    assert len(expired) == 1
    await revived.stop()


async def test_positions_are_coalesced_then_flushed_and_survive_passivation() -> None:
    host, store = make_host()
    await host.start()
    await host.ask(AGENT, str(AGENT_A), SocketOpened("socket-1"))
    await host.ask(AGENT, str(AGENT_A), SetStatus(Availability.AVAILABLE))
    commits_before = len(store.commits)
    base = utcnow()
    for i in range(20):
        fix = LocationFix(LAT + i * 1e-4, LON, recorded_at=base + timedelta(milliseconds=i))
        await host.ask(AGENT, str(AGENT_A), fix)
    assert len(store.commits) == commits_before  # nothing written per fix
    # The agent and the region cell(s) its presence went to are all idle.
    await host.settle()
    active = host.stats()["active"]
    assert active >= 2
    assert await host.passivate_idle(now=float("inf")) == active
    assert host.stats()["active"] == 0
    assert host.active_state(AGENT, str(AGENT_A)) is None
    version, snapshot = store.snapshots[(AGENT, str(AGENT_A))]
    assert version == 22  # the socket, the status and 20 fixes
    assert snapshot["location"]["latitude"] == pytest.approx(LAT + 19e-4)
    state = await host.ask(AGENT, str(AGENT_A), SetStatus(Availability.ON_BREAK))
    assert getattr(state, "version", None) == 23
    await host.stop()


class FakeStoreFailingSecondCommit(FakeEntityStore):
    """A fake store whose second commit (from ``armed`` on) fails once."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.calls_since_armed = 0

    async def commit(self, batch: CommitBatch) -> None:
        if self.armed:
            self.calls_since_armed += 1
            if self.calls_since_armed == 2:
                raise ConnectionError("fake store: second commit failed")
        await super().commit(batch)


async def test_flush_writes_in_chunks_and_keeps_what_a_failed_chunk_held() -> None:
    store = FakeStoreFailingSecondCommit()
    host, _ = make_host(store)
    await host.start()
    agents = [uuid4() for _ in range(FLUSH_CHUNK * 2 + 50)]
    for agent in agents:
        await host.ask(AGENT, str(agent), SetStatus(Availability.AVAILABLE))
        await host.ask(AGENT, str(agent), LocationFix(LAT, LON, recorded_at=utcnow()))
    await host.settle()
    dirty = host.stats()["dirty"]
    assert dirty >= len(agents)  # positions are coalesced, not written yet
    commits_before = len(store.commits)
    store.armed = True
    with pytest.raises(ConnectionError):
        await host.flush()
    assert store.calls_since_armed == 2
    assert host.stats()["dirty"] == dirty - FLUSH_CHUNK  # the failed chunk and the rest
    assert await host.flush() == dirty - FLUSH_CHUNK
    assert host.stats()["dirty"] == 0
    sizes = [len(batch.snapshots) for batch in store.commits[commits_before:]]
    assert sum(sizes) == dirty
    assert max(sizes) <= FLUSH_CHUNK
    for agent in agents:  # every agent's latest position is stored
        _version, snapshot = store.snapshots[(AGENT, str(agent))]
        assert snapshot["location"]["latitude"] == pytest.approx(LAT)
    await host.stop()


async def test_a_timer_is_never_delivered_before_its_due_time() -> None:
    # A clock running at half speed: the event loop wakes "early" by its measure,
    # as uvloop's millisecond rounding does for real. The expiry must still come
    # exactly once, at or after the due time, never swallowed as a stale timer.
    started = utcnow()
    loop = asyncio.get_running_loop()
    origin = loop.time()

    def slow_clock() -> datetime:
        return started + timedelta(seconds=(loop.time() - origin) / 2)

    host, store = make_host(clock=slow_clock)
    await host.start()
    alert_id = uuid4()
    await host.ask(ALERT, str(alert_id), create(alert_id))
    await host.ask(ALERT, str(alert_id), OfferMade(AGENT_A, ttl=timedelta(milliseconds=40)))
    await asyncio.sleep(0.4)
    expired = [e for e in store.events if e.type is EventType.ALERT_OFFER_EXPIRED]
    assert len(expired) == 1
    assert expired[0].time >= datetime.fromisoformat(expired[0].data["expires_at"])
    assert [t.name for t in store.timers.values()] == [SEARCH_AGAIN_TIMER]
    await host.stop()


async def test_a_created_alert_searches_after_its_commit_and_offers_to_the_result() -> None:
    searcher = FakeSearcher(AGENT_B, AGENT_A)
    host, store = make_host(searcher=searcher)
    await host.start()
    alert_id = uuid4()
    await host.ask(ALERT, str(alert_id), create(alert_id))
    await host.settle()
    assert [(s.tag, s.latitude, s.longitude) for s in searcher.searches] == [(1, LAT, LON)]
    state = host.active_state(ALERT, str(alert_id))
    assert [o.agent_id for o in state.offered_to] == [AGENT_B]
    assert [e.type for e in store.events] == [EventType.ALERT_CREATED, EventType.ALERT_OFFERED]
    await host.stop()


async def test_a_failed_search_changes_nothing_and_the_timer_stays_armed() -> None:
    searcher = FakeSearcher(fail=True)
    host, store = make_host(searcher=searcher)
    await host.start()
    alert_id = uuid4()
    await host.ask(ALERT, str(alert_id), create(alert_id))
    await host.settle()
    assert len(searcher.searches) == 1
    assert host.active_state(ALERT, str(alert_id)).offered_to == ()
    assert [t.name for t in store.timers.values()] == [SEARCH_AGAIN_TIMER]
    await host.stop()


async def test_a_search_again_round_writes_nothing_and_its_stored_copy_survives() -> None:
    searcher = FakeSearcher()  # nobody around: the alert keeps searching
    again = timedelta(milliseconds=40)
    host, store = make_host(searcher=searcher, search_again=again)
    await host.start()
    alert_id = uuid4()
    await host.ask(ALERT, str(alert_id), create(alert_id))
    commits = len(store.commits)
    (stored,) = store.timers.values()
    await asyncio.sleep(0.3)
    assert len(searcher.searches) >= 4
    assert len(store.commits) == commits  # no write per round
    assert list(store.timers.values()) == [stored]  # the first copy, due earlier
    await host.stop()
    # After a crash the stored copy fires at once: one more search, nothing lost.
    revived_searcher = FakeSearcher()
    revived, _ = make_host(store, searcher=revived_searcher, search_again=again)
    await revived.start()
    await asyncio.sleep(0.1)
    assert revived_searcher.searches
    await revived.stop()


async def test_read_answers_queries_from_memory_without_activating_anything() -> None:
    host, _store = make_host()
    await host.start()
    cell = cell_of(LAT, LON, AgentPolicy().region_resolution)
    query = QueryNearest(LAT, LON, 5)
    # Not in memory: nothing, and nothing activated to say so.
    assert host.read(REGION, cell, query) is None
    assert host.stats()["active"] == 0
    await host.ask(AGENT, str(AGENT_A), SocketOpened("socket-1"))
    await host.ask(AGENT, str(AGENT_A), SetStatus(Availability.AVAILABLE))
    await host.ask(AGENT, str(AGENT_A), LocationFix(LAT, LON, recorded_at=utcnow()))
    await host.settle()
    (found,) = cast("tuple[Candidate, ...]", host.read(REGION, cell, query))
    assert found.agent_id == AGENT_A
    processed = host.stats()["processed"]
    with pytest.raises(InvalidMessage):
        host.read(REGION, cell, QueryNearest(LAT, LON, -1))
    # A message that changes the state is refused, and the state is kept.
    presence = AgentPresence(AGENT_B, LAT, LON, True, utcnow())
    with pytest.raises(ActorError, match="not a read-only query"):
        host.read(REGION, cell, presence)
    assert [c.agent_id for c in cast("tuple[Candidate, ...]", host.read(REGION, cell, query))] == [
        AGENT_A
    ]
    assert host.stats()["processed"] == processed
    await host.stop()


async def test_a_fix_that_changes_only_memory_is_handled_inline_and_an_entry_commits() -> None:
    host, store = make_host()
    await host.start()
    key = f"user:{USER}"
    zone = NearZone(
        Zone.from_geojson(uuid4(), {"type": "Point", "coordinates": [LON, LAT]}, radius_m=100),
        "safe",
    )
    base = utcnow()
    far = Fix(LAT, LON + 0.01, 5.0, base)  # ~700 m east: outside
    await host.ask(EntityKind.SUBJECT, key, TrackFix(far, (zone,)))  # loads, baseline outside
    await host.settle()
    commits, processed = len(store.commits), host.stats()["processed"]
    for i in range(1, 4):
        moved = Fix(LAT, LON + 0.01 - i * 1e-4, 5.0, base + timedelta(seconds=i))
        assert (
            host.enqueue(EntityKind.SUBJECT, key, TrackFix(moved, (zone,)), want_reply=False)
            is None
        )
        assert not host._tasks  # no mailbox task: decided inline
    state = host.active_state(EntityKind.SUBJECT, key)
    assert state.presence.last_fix_at == base + timedelta(seconds=3)
    assert host.stats()["processed"] == processed + 3
    assert len(store.commits) == commits  # nothing written
    inside = Fix(LAT, LON, 5.0, base + timedelta(seconds=4))
    host.enqueue(EntityKind.SUBJECT, key, TrackFix(inside, (zone,)), want_reply=False)
    await host.settle()
    assert len(store.commits) == commits + 1  # the entry and its event, committed
    assert [e.type for e in store.commits[-1].events] == [EventType.GEOFENCE_ENTER]
    assert zone.zone.id in host.active_state(EntityKind.SUBJECT, key).presence.inside
    await host.stop()


@pytest.mark.parametrize("deliver", ["enqueue", "tell_each"])
async def test_a_kinds_shortcut_answers_without_deciding_and_any_doubt_goes_to_decide(
    deliver: str,
) -> None:
    """``Behaviour.shortcut`` (the subject's: most fixes) takes an idle entity's
    message without ``decide``; when it says None, or fails, ``decide`` runs.
    The same one message at a time and in a batch (``tell_each``)."""
    kinds = behaviours()
    subject = kinds[EntityKind.SUBJECT]
    decided: list[object] = []
    answers: list[str] = []

    def decide(state: object, msg: object, now: datetime) -> object:
        decided.append(msg)
        return subject.decide(state, msg, now)

    def shortcut(state: object, msg: object) -> object:
        answer = answers.pop(0)
        if answer == "fail":
            raise RuntimeError("a bug in a shortcut")
        return subject.shortcut(state, msg) if answer == "real" else None  # type: ignore[misc]

    kinds[EntityKind.SUBJECT] = replace(subject, decide=decide, shortcut=shortcut)
    router = FakeLocalRouter()
    store = FakeEntityStore()
    host = EntityHost(
        behaviours=kinds, store=store, pushes=FakePushSink(), router=router, clock=utcnow
    )
    router.host = host
    await host.start()
    key = f"user:{USER}"
    base = utcnow()
    fixes = [TrackFix(Fix(LAT, LON + i * 1e-5, 5.0, base + timedelta(seconds=i))) for i in range(4)]
    await host.ask(EntityKind.SUBJECT, key, fixes[0])  # loads it: not idle yet, decided
    answers += ["real", "none", "fail"]
    if deliver == "enqueue":
        for msg in fixes[1:]:
            host.enqueue(EntityKind.SUBJECT, key, msg, want_reply=False)
    else:
        assert host.tell_each(EntityKind.SUBJECT, [(key, msg) for msg in fixes[1:]]) == 0
    await host.settle()
    assert decided == [fixes[0], fixes[2], fixes[3]]  # the shortcut took fixes[1]
    assert answers == []
    state = host.active_state(EntityKind.SUBJECT, key)
    assert state.presence.last_fix_at == base + timedelta(seconds=3)
    assert host.stats()["processed"] == 4
    await host.stop()


async def test_a_batch_told_loads_the_new_takes_the_idle_at_once_and_counts_the_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``tell_each``: an entity not yet active takes its messages behind its load;
    an idle active one takes its own at once (before the loop runs); a message
    that cannot be delivered is counted, and the rest still are."""
    host, _store = make_host()
    await host.start()
    base = utcnow()
    known, new, refused = (f"user:{uuid4()}" for _ in range(3))
    await host.ask(EntityKind.SUBJECT, known, TrackFix(Fix(LAT, LON, 5.0, base)))
    await host.settle()
    deliver = host._deliver

    def refusing(key: tuple[EntityKind, str], *args: Any) -> object:
        if key[1] == refused:
            raise ActorError("refused here")
        return deliver(key, *args)

    monkeypatch.setattr(host, "_deliver", refusing)
    batch = [
        (entity, TrackFix(Fix(LAT, LON + i * 1e-5, 5.0, base + timedelta(seconds=i))))
        for i in range(1, 4)
        for entity in (new, known, refused)
    ]
    assert host.tell_each(EntityKind.SUBJECT, batch) == 3
    assert host.active_state(EntityKind.SUBJECT, known).presence.last_fix_at == base + timedelta(
        seconds=3
    )
    await host.settle()
    assert host.active_state(EntityKind.SUBJECT, new).presence.last_fix_at == base + timedelta(
        seconds=3
    )
    assert host.active_state(EntityKind.SUBJECT, refused) is None
    with pytest.raises(ActorError, match="unknown entity kind"):
        host.tell_each(cast(EntityKind, "robot"), batch)
    await host.stop()
