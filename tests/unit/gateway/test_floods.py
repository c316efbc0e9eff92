"""Issue 16, floods: the pure pieces that bound what one client may send.

The token bucket of a socket's frames (``gateway.ws.bucket``), the per-phase
frame bounds and the flood verdict of the protocol (``gateway.ws.protocol``),
a press of the panic button while an alert is open (``gateway.alert_press``),
and each subject's share of the location queue (``gateway.locations``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from actors.alert import Cancel, CreateAlert, Duress, decide
from actors.alert_state import ActorRole, AlertState, AlertType
from config.settings import GeofenceSettings, HttpSettings
from gateway.alert_press import (
    Press,
    PressLocks,
    decode_snapshots,
    needs_limit,
    open_alert,
    press_verdict,
)
from gateway.auth.principal import Principal, Role
from gateway.location_batches import receive
from gateway.locations import LocationIngest, sighting
from gateway.ws.bucket import TokenBucket
from gateway.ws.codes import CloseCode, ErrorCode
from gateway.ws.frames import LocationData
from gateway.ws.protocol import Authenticate, CloseSocket, Limits, Phase, SendFrame, SessionProtocol

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
USER = UUID(int=0x1001)

# --- the token bucket ---------------------------------------------------------------------


def test_a_full_bucket_gives_its_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_the_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    for _ in range(3):
        assert bucket.take(0.0)
    assert not bucket.take(0.4)  # 0.8 of a token
    assert bucket.take(0.5)  # 1.0: one token
    assert not bucket.take(0.5)
    # A long quiet spell refills no more than the burst.
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_a_steady_client_at_the_rate_is_never_refused() -> None:
    bucket = TokenBucket(rate=20.0, burst=1, now=0.0)
    assert all(bucket.take(n / 20) for n in range(1, 1000))


def test_a_clock_going_backwards_refills_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_bucket_that_could_never_give_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(rate=rate, burst=burst, now=0.0)


# --- the protocol's bounds ------------------------------------------------------------------

LIMITS = Limits(
    auth_timeout_s=5.0,
    heartbeat_timeout_s=30.0,
    max_frame_bytes=8192,
    max_auth_frame_bytes=2048,
    frame_rate=1.0,
    frame_burst=3,
    max_bulk_frame_bytes=4096,
)


def _auth(token: str = "tok") -> str:
    return json.dumps({"type": "auth", "data": {"token": token}})


def _ping(pad: str = "") -> str:
    return json.dumps({"type": "ping", "data": {"pad": pad} if pad else {}})


def _opened(limits: Limits = LIMITS) -> SessionProtocol:
    proto = SessionProtocol(limits, now=0.0)
    assert proto.receive_text(_auth(), 0.0) == [Authenticate("tok")]
    principal = Principal(id=USER, role=Role.USER, session_id="s", token_id="t")
    proto.auth_succeeded(principal, now=0.0, token_expires=1e9)
    assert proto.phase is Phase.OPEN
    return proto


def test_finding_frames_up_to_16_mib_are_buffered_before_auth() -> None:
    # The bound of the phase, not the larger one of an open socket.
    proto = SessionProtocol(LIMITS, now=0.0)
    token = "t" * (LIMITS.max_auth_frame_bytes + 1)
    assert proto.receive_text(_auth(token), 0.1) == [
        CloseSocket(CloseCode.TOO_BIG, "frame too big")
    ]
    proto = SessionProtocol(LIMITS, now=0.0)
    assert proto.receive_bytes(b"x" * (LIMITS.max_auth_frame_bytes + 1), 0.1) == [
        CloseSocket(CloseCode.TOO_BIG, "frame too big")
    ]


def test_an_open_socket_takes_frames_up_to_its_own_bound() -> None:
    proto = _opened()
    text = _ping("x" * (LIMITS.max_frame_bytes - 100))
    assert len(text) > LIMITS.max_auth_frame_bytes
    assert [type(a) for a in proto.receive_text(text, 0.0)] == [SendFrame]
    assert proto.receive_text(_ping("x" * LIMITS.max_frame_bytes), 0.0)[-1] == CloseSocket(
        CloseCode.TOO_BIG, "frame too big"
    )


def test_the_server_reads_no_frame_above_the_largest_bound() -> None:
    assert LIMITS.transport_max_bytes == 8192
    assert Limits(max_frame_bytes=1024, max_bulk_frame_bytes=5000).transport_max_bytes == 65536
    assert Limits(max_bulk_frame_bytes=100_000).transport_max_bytes == 100_000
    defaults = Limits.of(HttpSettings())
    assert defaults.max_auth_frame_bytes == 64 * 1024
    # The bulk feed's batches (/ws/locations) are the largest frames by default.
    assert defaults.transport_max_bytes == HttpSettings().ws_max_bulk_frame_bytes == 512 * 1024
    # A socket's bounds without settings are the settings' defaults, each one mapped.
    assert Limits() == defaults


def test_finding_a_socket_has_no_frame_rate_limit() -> None:
    proto = _opened()  # the auth frame took one of the 3 tokens
    assert [type(a) for a in proto.receive_text(_ping(), 0.0)] == [SendFrame]
    assert [type(a) for a in proto.receive_text(_ping(), 0.0)] == [SendFrame]
    flooded = proto.receive_text(_ping(), 0.0)
    assert len(flooded) == 2
    error, close = flooded
    assert isinstance(error, SendFrame)
    assert error.frame["type"] == "error"
    assert error.frame["data"]["code"] == ErrorCode.RATE_LIMITED.value
    assert close == CloseSocket(CloseCode.POLICY_VIOLATION, "too many frames")
    assert proto.phase is Phase.CLOSED
    assert proto.receive_text(_ping(), 10.0) == []


def test_binary_frames_count_against_the_bucket_too() -> None:
    proto = _opened()
    proto.receive_bytes(b"x", 0.0)
    proto.receive_bytes(b"x", 0.0)
    assert proto.receive_bytes(b"x", 0.0)[-1] == CloseSocket(
        CloseCode.POLICY_VIOLATION, "too many frames"
    )


def test_a_socket_at_its_rate_stays_open() -> None:
    proto = _opened()
    for n in range(1, 200):
        assert [type(a) for a in proto.receive_text(_ping(), float(n))] == [SendFrame]


def test_the_settings_reach_the_limits() -> None:
    http = HttpSettings(
        ws_frame_rate=5,
        ws_frame_burst=7,
        ws_max_frame_bytes=200_000,
        ws_max_bulk_frame_bytes=100_000,
    )
    limits = Limits.of(http)
    assert (limits.frame_rate, limits.frame_burst) == (5.0, 7)
    assert limits.transport_max_bytes == 200_000
    assert limits.max_bulk_frame_bytes == 100_000
    with pytest.raises(ValueError, match="ws_max_auth_frame_bytes"):
        HttpSettings(ws_max_auth_frame_bytes=64 * 1024 + 1)


# --- a press of the panic button --------------------------------------------------------------


def test_an_open_alert_is_shown_whatever_the_limit_says() -> None:
    assert not needs_limit(has_open=True)
    for within in (True, False, None):
        verdict = press_verdict(has_open=True, retry_of_open=False, within_limit=within)
        assert verdict is Press.SHOW_OPEN


def test_a_retry_of_the_open_alerts_key_goes_to_its_entity_and_is_never_refused() -> None:
    for within in (True, False, None):
        verdict = press_verdict(has_open=True, retry_of_open=True, within_limit=within)
        assert verdict is Press.CREATE


def test_with_no_open_alert_the_create_limit_decides() -> None:
    assert needs_limit(has_open=False)
    assert press_verdict(has_open=False, retry_of_open=False, within_limit=True) is Press.CREATE
    assert press_verdict(has_open=False, retry_of_open=False, within_limit=False) is Press.REFUSE
    # The limit could not be asked (Redis away): the press is never refused for it.
    assert press_verdict(has_open=False, retry_of_open=False, within_limit=None) is Press.CREATE


def _alert(created: datetime) -> AlertState:
    alert_id = uuid4()
    msg = CreateAlert(alert_id, USER, AlertType.PANIC, 52.5, 13.4, 10.0, None, False)
    state, _ = decide(None, msg, created)
    assert state is not None
    return state


def test_the_open_alert_is_the_newest_not_closed() -> None:
    old, new = _alert(T0), _alert(T0 + timedelta(minutes=1))
    assert open_alert([new, old]) == new
    cancel = Cancel(actor_id=USER, note=None, actor_role=ActorRole.USER)
    closed, _ = decide(new, cancel, T0 + timedelta(minutes=2))
    assert open_alert([closed, old]) == old
    assert open_alert([closed]) is None
    assert open_alert([]) is None


def test_an_alert_cancelled_under_duress_is_not_the_open_alert() -> None:
    # Its user is shown it cancelled; answering a press with it would give the duress away.
    state = _alert(T0)
    duressed, _ = decide(state, Duress(USER), T0 + timedelta(seconds=5))
    assert not duressed.is_terminal  # in truth it goes on, escalated
    assert open_alert([duressed]) is None


def test_unreadable_snapshots_are_skipped() -> None:
    state = _alert(T0)
    alerts = decode_snapshots([{"id": "nonsense"}, state.to_snapshot()])
    assert [a.id for a in alerts] == [state.id]


async def test_one_users_presses_are_taken_one_at_a_time_and_leave_nothing_behind() -> None:
    locks = PressLocks()
    inside: list[str] = []
    overlaps = 0

    async def press(name: str, user: UUID) -> None:
        nonlocal overlaps
        async with locks.held(user):
            overlaps += sum(1 for other in inside if other[0] == name[0])
            inside.append(name)
            await asyncio.sleep(0.01)
            inside.remove(name)

    other = uuid4()
    await asyncio.gather(*(press(f"a{n}", USER) for n in range(5)), press("b", other))
    assert overlaps == 0
    assert len(locks) == 0


# --- the location queue ------------------------------------------------------------------------


def portless_ingest(settings: GeofenceSettings) -> LocationIngest:
    """A location ingest whose queue is only filled (no port is ever reached)."""
    return LocationIngest(
        settings,
        latest=lambda: None,  # type: ignore[arg-type,return-value]
        entities=lambda: None,
        history=lambda: None,
        location_ttl_s=60,
    )


def test_finding_one_socket_can_fill_the_shared_location_queue() -> None:
    settings = GeofenceSettings(queue_max=1000, queue_max_per_subject=3)
    ingest = portless_ingest(settings)
    mine, other = uuid4(), uuid4()

    def fix(subject: UUID) -> bool:
        return ingest.submit(
            sighting(settings, "user", LocationData(latitude=1, longitude=2), T0, f"user:{subject}")
        )

    assert [fix(mine) for _ in range(5)] == [True, True, True, False, False]
    assert fix(other)
    assert (ingest.waiting, ingest.refused) == (4, 2)


def test_the_share_and_the_whole_queue_both_bound() -> None:
    settings = GeofenceSettings(queue_max=100, queue_max_per_subject=10)
    ingest = portless_ingest(settings)
    mine = f"user:{uuid4()}"

    def fix(key: str) -> bool:
        data = LocationData(latitude=1, longitude=2)
        return ingest.submit(sighting(settings, "user", data, T0, key))

    assert all(fix(mine) for _ in range(9))
    assert all(fix(f"user:{uuid4()}") for _ in range(90))
    assert fix(mine)  # 99 waiting, 9 of its subject: its 10th is taken
    assert ingest.waiting == 100
    assert not fix(f"user:{uuid4()}")  # the whole queue is full
    assert not fix(mine)


def test_an_integration_flooding_the_bulk_feed_leaves_room_for_phones() -> None:
    settings = GeofenceSettings(queue_max=100, queue_max_per_subject=10, bulk_queue_share=0.4)
    ingest = portless_ingest(settings)

    def fix(*, bulk: bool) -> bool:
        data = LocationData(latitude=1, longitude=2)
        return ingest.submit(sighting(settings, "user", data, T0, f"user:{uuid4()}"), bulk=bulk)

    # The bulk feed fills its 40 % of the queue, then is refused (by the caller, by index).
    assert [fix(bulk=True) for _ in range(45)] == [True] * 40 + [False] * 5
    assert not ingest.has_room(bulk=True)
    # A person's fix is still taken, up to the whole queue.
    assert ingest.has_room()
    assert [fix(bulk=False) for _ in range(62)] == [True] * 60 + [False] * 2
    assert not ingest.has_room()
    assert (ingest.waiting, ingest.refused) == (100, 7)


def test_a_bulk_batch_refused_whole_counts_each_of_its_fixes_refused() -> None:
    """The metrics' refused count (``LocationIngest.refused``) includes a bulk batch
    refused whole, unread, while the bulk feed's share of the queue is full."""
    settings = GeofenceSettings(queue_max=100, queue_max_per_subject=10, bulk_queue_share=0.5)
    ingest = portless_ingest(settings)
    data = LocationData(latitude=1, longitude=2)
    for _ in range(50):
        assert ingest.submit(sighting(settings, "user", data, T0, f"user:{uuid4()}"), bulk=True)
    outcome = receive({"fixes": ["not read"] * 30}, settings, ingest, T0)
    assert (outcome.accepted, outcome.refused) == (0, 30)
    assert (ingest.waiting, ingest.refused) == (50, 30)
