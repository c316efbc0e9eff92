"""The I/O shell of a socket (gateway.ws.session) over a fake WebSocket, hub broker and ports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from starlette.websockets import WebSocketState

from actors.alert import CreateAlert, decide
from actors.alert_state import AlertType
from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from gateway.auth.tokens import issue_access_token, verify_access_token
from gateway.locations import Sighting
from gateway.ports import VettingLookup
from gateway.ws.account_sockets import REPLACED_REASON, AccountSockets
from gateway.ws.hub import PushHub
from gateway.ws.presence import AgentSockets
from gateway.ws.session import Session, SessionDeps
from gateway.ws.transport import TEXT_HANDLER
from persistence.errors import ServiceUnavailable
from tests.fakes.pubsub import FakeBroker
from tests.fakes.sessions import FakeSessions
from tests.unit.gateway.support import until

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeWebSocket:
    """What Session uses of Starlette's WebSocket; frames in through ``incoming``."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.application_state = WebSocketState.CONNECTING
        self.send_delay = 0.0
        self.new_frame = asyncio.Event()
        #: As a server without the gateway's fast reader gives it (Starlette's TestClient).
        self.scope: dict[str, Any] = {"type": "websocket", "extensions": {}}

    async def accept(self) -> None:
        self.application_state = WebSocketState.CONNECTED

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send_text(self, text: str) -> None:
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        self.sent.append(json.loads(text))
        self.new_frame.set()

    async def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)
        self.application_state = WebSocketState.DISCONNECTED

    def client_sends(self, frame: Mapping[str, Any]) -> None:
        self.incoming.put_nowait({"type": "websocket.receive", "text": json.dumps(frame)})

    def client_leaves(self) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})

    async def wait_for(self, frame_type: str, count: int = 1) -> list[dict[str, Any]]:
        async with asyncio.timeout(5):
            while True:
                found = [f for f in self.sent if f["type"] == frame_type]
                if len(found) >= count:
                    return found
                self.new_frame.clear()
                await self.new_frame.wait()


class SlowSource:
    """Open alerts for resync, answered only when ``release`` is set."""

    def __init__(self, snapshots: Sequence[Mapping[str, Any]]) -> None:
        self.snapshots = snapshots
        self.asked = asyncio.Event()
        self.release = asyncio.Event()

    async def for_agent(self, agent_id: UUID) -> Sequence[Mapping[str, Any]]:
        return await self._answer()

    async def for_user(self, user_id: UUID) -> Sequence[Mapping[str, Any]]:
        return await self._answer()

    async def _answer(self) -> Sequence[Mapping[str, Any]]:
        self.asked.set()
        await self.release.wait()
        return self.snapshots


def no_entities() -> EntityClient:
    raise AssertionError("no entity calls expected")


def no_vetting() -> VettingLookup:
    raise AssertionError("no vetting lookups expected")


class FakeLocations:
    """Takes fixes like ``LocationIngest.submit``, or refuses them all when ``full``."""

    def __init__(self) -> None:
        self.taken: list[Sighting] = []
        self.full = False

    def has_room(self, *, bulk: bool = False) -> bool:
        assert not bulk, "a socket's fixes are a phone's"
        return not self.full

    def submit(self, sighting: Sighting, *, bulk: bool = False) -> bool:
        assert not bulk, "a socket's fixes are a phone's"
        if self.full:
            return False
        self.taken.append(sighting)
        return True

    def refuse(self, count: int) -> None:
        raise AssertionError("a socket's fixes are offered one by one")


class Harness:
    def __init__(
        self,
        settings: Settings,
        hub: PushHub,
        sessions: Any,
        source: SlowSource,
        setups: asyncio.Semaphore | None = None,
        entities: Any = None,
        ws: FakeWebSocket | None = None,
        account_sockets: AccountSockets[Session] | None = None,
    ) -> None:
        self.ws = ws or FakeWebSocket()
        self.locations = FakeLocations()
        self.deps = SessionDeps(
            settings=settings,
            hub=hub,
            sessions=lambda: sessions,
            entities=no_entities if entities is None else (lambda: entities),
            open_alerts=lambda: source,
            locations=self.locations,
            # Without an entity client: sockets are registered, nobody is told.
            agent_sockets=AgentSockets(hub, lambda: None),
            account_sockets=AccountSockets() if account_sockets is None else account_sockets,
            vetting=no_vetting,
            clock=lambda: T0,
            setups=setups or asyncio.Semaphore(64),
        )
        self.task = asyncio.create_task(Session(self.ws, self.deps).run())  # type: ignore[arg-type]


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
async def hub(broker: FakeBroker) -> AsyncIterator[PushHub]:
    hub = PushHub(broker.open, subscribe_timeout_s=0.5, retry_delay_s=0.01)
    task = asyncio.create_task(hub.run())
    yield hub
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def token_for(sessions: FakeSessions, settings: Settings, role: Role) -> tuple[UUID, str]:
    """A signed token whose session is open in ``sessions`` (as a login leaves it)."""
    account = uuid4()
    session_id = uuid4().hex
    sessions.active.add((role.value, account, session_id))
    token, _ = issue_access_token(
        settings.auth, account_id=account, role=role, session_id=session_id
    )
    return account, token


async def test_pushes_during_resync_are_sent_after_the_resync_frames(
    settings: Settings, hub: PushHub, broker: FakeBroker
) -> None:
    sessions = FakeSessions()
    user_id, token = await token_for(sessions, settings, Role.USER)
    alert_id = uuid4()
    alert, _ = decide(None, CreateAlert(alert_id, user_id, AlertType.FIRE, 1.0, 2.0), T0)
    source = SlowSource([alert.to_snapshot()])
    h = Harness(settings, hub, sessions, source)
    h.ws.client_sends({"type": "auth", "data": {"token": token}})
    await asyncio.wait_for(source.asked.wait(), 5)
    # Published while the snapshots are being read: newer than (or as new as) them.
    assert broker.publish(f"ws:user:{user_id}", '{"type":"alert.updated","data":{"n":1}}') == 1
    await asyncio.sleep(0.05)
    source.release.set()
    await h.ws.wait_for("alert.updated", 2)
    assert [f["type"] for f in h.ws.sent] == ["auth.ok", "alert.updated", "alert.updated"]
    assert h.ws.sent[1]["data"]["resync"] is True
    assert h.ws.sent[2]["data"] == {"n": 1}
    h.ws.client_leaves()
    await asyncio.wait_for(h.task, 5)
    await asyncio.sleep(0.05)
    assert hub.channels == frozenset()  # the socket's channel is dropped with it


async def test_sockets_are_set_up_in_turn_and_a_turn_ends_with_the_resync(
    settings: Settings, hub: PushHub
) -> None:
    """With one setup at a time, a second socket's auth waits until the first
    socket's resync is sent, and not a moment longer (nothing waits on a client)."""
    sessions = FakeSessions()
    setups = asyncio.Semaphore(1)
    first_source, second_source = SlowSource([]), SlowSource([])
    first = Harness(settings, hub, sessions, first_source, setups)
    second = Harness(settings, hub, sessions, second_source, setups)
    first.ws.client_sends(
        {"type": "auth", "data": {"token": (await token_for(sessions, settings, Role.USER))[1]}}
    )
    await asyncio.wait_for(first_source.asked.wait(), 5)  # the first one's setup: its resync
    second.ws.client_sends(
        {"type": "auth", "data": {"token": (await token_for(sessions, settings, Role.USER))[1]}}
    )
    await asyncio.sleep(0.1)
    assert second.ws.sent == []  # its turn has not come
    assert not second_source.asked.is_set()
    first_source.release.set()
    second_source.release.set()
    await second.ws.wait_for("auth.ok")
    assert setups.locked() is False  # both turns given back
    for h in (first, second):
        h.ws.client_leaves()
        await asyncio.wait_for(h.task, 5)


async def test_a_socket_too_slow_for_its_pushes_is_closed_1013(
    settings: Settings, hub: PushHub, broker: FakeBroker
) -> None:
    small = settings.model_copy(
        update={"http": settings.http.model_copy(update={"ws_send_queue": 8})}
    )
    sessions = FakeSessions()
    agent_id, token = await token_for(sessions, small, Role.AGENT)
    source = SlowSource([])
    source.release.set()
    h = Harness(small, hub, sessions, source)
    h.ws.client_sends({"type": "auth", "data": {"token": token}})
    await h.ws.wait_for("auth.ok")
    h.ws.send_delay = 0.05
    for n in range(50):
        broker.publish(
            f"ws:agent:{agent_id}", json.dumps({"type": "offer.revoked", "data": {"n": n}})
        )
    await asyncio.wait_for(h.task, 5)
    assert h.ws.closed is not None
    assert h.ws.closed[0] == 1013
    assert len(h.ws.sent) < 50


async def test_an_account_past_its_socket_cap_loses_its_oldest_socket_not_its_newest(
    settings: Settings, hub: PushHub
) -> None:
    """A phone reconnecting over a bad network, or a script with the account's
    token, opens socket after socket: the account keeps its newest two here
    (cap 2), each newer one closing its oldest with 1008; other accounts are
    not touched."""
    capped = settings.model_copy(
        update={"http": settings.http.model_copy(update={"ws_max_sockets_per_account": 2})}
    )
    sessions = FakeSessions()
    account_id, token = await token_for(sessions, capped, Role.USER)
    _, other_token = await token_for(sessions, capped, Role.USER)
    held: AccountSockets[Session] = AccountSockets()
    source = SlowSource([])
    source.release.set()

    async def opened(token: str) -> Harness:
        h = Harness(capped, hub, sessions, source, account_sockets=held)
        h.ws.client_sends({"type": "auth", "data": {"token": token}})
        await h.ws.wait_for("auth.ok")
        return h

    other = await opened(other_token)
    sockets = [await opened(token) for _ in range(4)]
    for oldest in sockets[:2]:
        await asyncio.wait_for(oldest.task, 5)
        assert oldest.ws.closed == (1008, REPLACED_REASON)
    newest = sockets[2:]
    assert [h.ws.closed for h in (*newest, other)] == [None, None, None]
    assert (held.held(account_id), len(held)) == (2, 2)
    # The newest still work, and give their places back as they end.
    newest[1].ws.client_sends({"type": "ping", "id": "p"})
    await newest[1].ws.wait_for("pong")
    for h in (*newest, other):
        h.ws.client_leaves()
        await asyncio.wait_for(h.task, 5)
    assert len(held) == 0


async def test_redis_down_at_auth_closes_1013(settings: Settings, hub: PushHub) -> None:
    def down() -> Any:
        raise ServiceUnavailable("redis", "not connected")

    h = Harness(settings, hub, None, SlowSource([]))
    object.__setattr__(h.deps, "sessions", down)
    h.ws.client_sends({"type": "auth", "data": {"token": "whatever"}})
    await asyncio.wait_for(h.task, 5)
    assert h.ws.closed is not None
    assert h.ws.closed[0] == 1013


async def test_locations_go_to_the_ingest_and_a_full_or_stale_one_is_an_error_frame(
    settings: Settings, hub: PushHub
) -> None:
    sessions = FakeSessions()
    user_id, token = await token_for(sessions, settings, Role.USER)
    source = SlowSource([])
    source.release.set()
    h = Harness(settings, hub, sessions, source)
    h.ws.client_sends({"type": "auth", "data": {"token": token}})
    await h.ws.wait_for("auth.ok")
    h.ws.client_sends({"type": "location", "id": "l1", "data": {"latitude": 1, "longitude": 2}})
    h.ws.client_sends({"type": "ping", "id": "p"})
    await h.ws.wait_for("pong")
    [taken] = h.locations.taken
    assert (taken.role.value, taken.subject_id) == ("user", user_id)
    assert (taken.fix.latitude, taken.fix.longitude, taken.fix.recorded_at) == (1, 2, T0)
    assert taken.reported.latitude == 1
    h.locations.full = True
    h.ws.client_sends({"type": "location", "id": "l2", "data": {"latitude": 1, "longitude": 2}})
    [error] = await h.ws.wait_for("error")
    assert error["data"]["ref"] == "l2"
    assert error["data"]["code"] == "unavailable"
    assert error["data"]["retriable"] is True
    assert error["data"]["refused"] == 1
    # Without an id: the first refusal is told at once, the next ones together
    # once the notice period has passed (none here).
    for _ in range(3):
        h.ws.client_sends({"type": "location", "data": {"latitude": 1, "longitude": 2}})
    h.ws.client_sends({"type": "ping", "id": "p2"})
    await h.ws.wait_for("pong", count=2)
    told = [f["data"] for f in h.ws.sent if f["type"] == "error"]
    assert [(d.get("ref"), d["refused"]) for d in told] == [("l2", 1), (None, 1)]
    h.locations.full = False
    future = (T0 + timedelta(hours=1)).isoformat()
    h.ws.client_sends(
        {
            "type": "location",
            "id": "l3",
            "data": {"latitude": 1, "longitude": 2, "recorded_at": future},
        }
    )
    errors = await h.ws.wait_for("error", count=3)
    assert (errors[-1]["data"]["ref"], errors[-1]["data"]["code"]) == ("l3", "invalid_data")
    assert len(h.locations.taken) == 1
    h.ws.client_leaves()
    await asyncio.wait_for(h.task, 5)


# --- the server's text handler (gateway.ws.transport) ------------------------------------


class GatedEntities:
    """An entity client whose asks wait until ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.asked: list[object] = []

    async def ask(self, kind: object, entity_id: str, message: object) -> object:
        self.asked.append(message)
        await self.gate.wait()
        return object()


async def test_frames_handed_over_as_read_are_carried_out_in_order_with_the_readers(
    settings: Settings, hub: PushHub
) -> None:
    sessions = FakeSessions()
    _, token = await token_for(sessions, settings, Role.USER)
    source = SlowSource([])
    source.release.set()
    ws = FakeWebSocket()
    registered: list[Any] = []
    ws.scope["extensions"][TEXT_HANDLER] = registered.append
    entities = GatedEntities()
    h = Harness(settings, hub, sessions, source, entities=entities, ws=ws)
    fix = json.dumps({"type": "location", "data": {"latitude": 1, "longitude": 2}})
    await until(lambda: registered)
    [handler] = registered
    assert handler(fix) is False  # before auth: left to the reader
    ws.client_sends({"type": "auth", "data": {"token": token}})
    await ws.wait_for("auth.ok")
    await until(lambda: handler(fix))  # taken once the reader waits again
    assert len(h.locations.taken) == 1  # at once, without the reader
    # A frame that needs an await: taken, carried out by a task the reader waits for.
    message = {
        "type": "alert.message",
        "id": "m1",
        "data": {"alert_id": str(uuid4()), "text": "hi"},
    }
    assert handler(json.dumps(message)) is True
    assert handler(fix) is False  # busy: the next frame is queued behind it
    ws.client_sends(json.loads(fix))
    await until(lambda: entities.asked)
    await asyncio.sleep(0.05)
    assert len(h.locations.taken) == 1  # the queued fix waits for the ask
    entities.gate.set()
    [ack] = await ws.wait_for("ack")
    assert ack["data"]["ref"] == "m1"
    await until(lambda: len(h.locations.taken) == 2)
    ws.client_leaves()
    await asyncio.wait_for(h.task, 5)
    assert registered[-1] is None  # unregistered when the socket ends


# --- revocation -----------------------------------------------------------------------------


async def test_the_end_of_the_session_closes_the_socket_4401_and_drops_its_channels(
    settings: Settings, hub: PushHub, broker: FakeBroker
) -> None:
    sessions = FakeSessions(publish=broker.publish)
    user_id, token = await token_for(sessions, settings, Role.USER)
    [(_, _, session_id)] = sessions.active
    source = SlowSource([])
    source.release.set()
    h = Harness(settings, hub, sessions, source)
    h.ws.client_sends({"type": "auth", "data": {"token": token}})
    await h.ws.wait_for("auth.ok")
    # Listening to its session's end from before auth.ok.
    assert f"ws:session:{session_id}" in hub.subscribed
    await sessions.close_session("user", user_id, session_id)
    await asyncio.wait_for(h.task, 5)
    assert h.ws.closed == (4401, "session revoked")
    await asyncio.sleep(0.05)
    assert hub.channels == frozenset()


async def test_a_session_ended_before_the_socket_listens_is_refused_4401(
    settings: Settings, hub: PushHub, broker: FakeBroker
) -> None:
    sessions = FakeSessions(publish=broker.publish)
    user_id, token = await token_for(sessions, settings, Role.USER)
    [(_, _, session_id)] = sessions.active
    # Ended (and announced) after the token was issued, before the socket listened.
    await sessions.close_session("user", user_id, session_id)
    h = Harness(settings, hub, sessions, SlowSource([]))
    h.ws.client_sends({"type": "auth", "data": {"token": token}})
    await asyncio.wait_for(h.task, 5)
    assert h.ws.closed == (4401, "session has ended")
    assert not [f for f in h.ws.sent if f["type"] == "auth.ok"]
    await asyncio.sleep(0.05)
    assert hub.channels == frozenset()


async def test_the_socket_closes_4401_when_its_access_token_expires(
    settings: Settings, hub: PushHub, broker: FakeBroker
) -> None:
    sessions = FakeSessions()
    _, token = await token_for(sessions, settings, Role.USER)
    source = SlowSource([])
    source.release.set()
    h = Harness(settings, hub, sessions, source)
    # The clock says the token has 0.2 s left.
    _, expires = verify_access_token(settings.auth, token)
    object.__setattr__(h.deps, "clock", lambda: expires - timedelta(seconds=0.2))
    h.ws.client_sends({"type": "auth", "data": {"token": token}})
    await h.ws.wait_for("auth.ok")
    await asyncio.wait_for(h.task, 5)
    assert h.ws.closed == (4401, "token expired")
