"""The agent (responder) state machine: availability, position, liveness, assignment.

``decide(state, message, now, policy) -> (state, effects)``, pure like
``actors.alert``. An agent entity always exists once activated: the runtime
starts an agent it has no snapshot for from :meth:`AgentState.new` (offline,
no position, version 0).

Invariants of :class:`AgentState`:

* ``current_assignment`` is at most one alert; while it is set,
  ``availability`` is ``busy``, or ``offline`` if the agent's heartbeat ran out
  mid-assignment (any sign of life then brings it back to ``busy``).
* ``location.recorded_at`` never decreases: a fix not newer than the last one
  is ignored, and a fix stamped in the future is taken as recorded ``now``.
* The heartbeat timer is armed whenever ``availability`` is not ``offline``,
  due ``policy.heartbeat_timeout`` after the last sign of life (a heartbeat,
  a location fix or a status change from the agent's app).
* The agent is *listed* (in the region index that dispatch ranks from)
  exactly when it is ``available`` with a known position and at least one
  live socket (``sockets``: the ids of its open sockets, as the gateways
  announce them with :class:`SocketOpened` / :class:`SocketClosed`). When
  its last socket closes, an available agent is unlisted at once, and goes
  ``offline`` ("disconnected") only if no socket opens again within
  ``AgentPolicy.disconnect_grace``: a phone that lost its connection for a
  moment is listed again as soon as its socket is back (its app then says
  its status again), and nothing durable is written for the blip.
  ``sockets`` is soft state (memory only, never in a
  snapshot): after a restart the gateways announce their live sockets again
  (``SocketOpened`` is idempotent), which also refreshes the agent's region
  entry, so a region index lost with a shard is rebuilt from the sockets.
  Each decision that changes the listing, or moves a listed agent, sends
  ``AgentPresence`` to the region cell it is now in and ``AgentLeft`` to the
  one it left; its signs of life refresh the entry every
  ``AgentPolicy.presence_refresh`` (regions drop entries not refreshed within
  ``RegionPolicy.presence_ttl``).
* A suspended agent (``suspended``: an admin's decision, see
  :class:`Suspend`) is offline, unlisted and cannot take or hold an alert
  until :class:`Reinstate`.
* ``version`` grows by one per change it persists; ``Persist.coalesce`` is
  True when only the position or liveness changed. A heartbeat that changes
  nothing but liveness persists nothing while the liveness last persisted
  (``liveness_saved_at``, soft) is under half ``heartbeat_timeout`` old: a
  restarted shard then still finds the agent alive for the gateways'
  re-announcement of its sockets, and 5,000 agents pinging cost a few
  writes a second, not a snapshot per ping.
* An agent holds at most one alert: accepting an offer (:class:`TakeOffer`,
  one action from the agent's socket) first *reserves* the agent for that
  alert (refused while it holds or is taking another), then asks the alert
  and keeps the asker waiting for the alert's :class:`OfferTaken`. The
  reservation is soft (in memory only, not in snapshots, no new version) and
  lapses after ``policy.reservation_ttl`` or when the alert's ``Assigned``
  arrives; a refusal gives it back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias
from uuid import UUID

from actors import codec
from actors.alert_messages import AcceptOffer, AgentLocation, Unassign
from actors.alert_state import AlertStatus
from actors.effects import (
    Answer,
    CancelTimer,
    Defer,
    Effect,
    Emit,
    EntityKind,
    EventType,
    Persist,
    Reply,
    ScheduleTimer,
    Send,
    Topic,
    Transition,
)
from actors.errors import (
    ActorError,
    AlreadyAssigned,
    InvalidMessage,
    InvalidTransition,
    NotPermitted,
    UnknownMessage,
)
from actors.region import AgentLeft, AgentPresence
from geo.cells import MAX_RESOLUTION, MIN_RESOLUTION, cell_of, is_valid_point


class Availability(enum.StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    ON_BREAK = "on_break"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class PositionReport:
    """One position report from the agent's device."""

    latitude: float
    longitude: float
    accuracy_m: float | None
    heading: float | None
    speed_mps: float | None
    recorded_at: datetime

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "latitude": self.latitude,
            "longitude": self.longitude,
            "accuracy_m": self.accuracy_m,
            "heading": self.heading,
            "speed_mps": self.speed_mps,
            "recorded_at": codec.iso(self.recorded_at),
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> PositionReport:
        f = codec.field
        return cls(
            latitude=f(data, "latitude", codec.parse_float),
            longitude=f(data, "longitude", codec.parse_float),
            accuracy_m=f(data, "accuracy_m", codec.parse_float_or_none),
            heading=f(data, "heading", codec.parse_float_or_none),
            speed_mps=f(data, "speed_mps", codec.parse_float_or_none),
            recorded_at=f(data, "recorded_at", codec.parse_dt),
        )


@dataclass(frozen=True, slots=True)
class AgentState:
    """Everything the agent actor knows about one responder. See the module invariants."""

    id: UUID
    availability: Availability = Availability.OFFLINE
    location: PositionReport | None = None
    last_heartbeat_at: datetime | None = None
    current_assignment: UUID | None = None
    updated_at: datetime | None = None
    version: int = 0
    reserved_for: UUID | None = None
    reserved_until: datetime | None = None
    #: Ids of the agent's live sockets (soft: never in a snapshot).
    sockets: frozenset[str] = frozenset()
    #: When its region entry was last sent (soft): signs of life refresh it
    #: only every ``AgentPolicy.presence_refresh``.
    presence_at: datetime | None = None
    suspended: bool = False
    #: When the snapshot last written (or queued) carried its liveness (soft).
    liveness_saved_at: datetime | None = None
    #: When the last socket of an available agent closed (soft): it goes offline
    #: ``AgentPolicy.disconnect_grace`` later unless a socket opens meanwhile.
    disconnected_at: datetime | None = None

    @classmethod
    def new(cls, agent_id: UUID) -> AgentState:
        """A never-seen agent: offline, no position, nothing persisted yet."""
        return cls(id=agent_id)

    @property
    def last_fix_at(self) -> datetime | None:
        return None if self.location is None else self.location.recorded_at

    @property
    def listed(self) -> bool:
        """Whether dispatch may find this agent in its region's index."""
        return (
            self.availability is Availability.AVAILABLE
            and self.location is not None
            and bool(self.sockets)
        )

    def to_snapshot(self) -> dict[str, Any]:
        """JSON-safe dict; ``AgentState.from_snapshot(s.to_snapshot()) == s``, but
        for the soft reservation and sockets, which are never written."""
        return {
            **codec.header("agent"),
            "id": str(self.id),
            "availability": self.availability.value,
            "location": None if self.location is None else self.location.to_snapshot(),
            "last_heartbeat_at": codec.iso_or_none(self.last_heartbeat_at),
            "current_assignment": codec.str_or_none(self.current_assignment),
            "updated_at": codec.iso_or_none(self.updated_at),
            "version": self.version,
            "suspended": self.suspended,
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> AgentState:
        codec.check_header(data, "agent")
        f = codec.field
        return cls(
            id=f(data, "id", codec.parse_uuid),
            availability=f(data, "availability", Availability),
            location=f(
                data, "location", lambda v: None if v is None else PositionReport.from_snapshot(v)
            ),
            last_heartbeat_at=f(data, "last_heartbeat_at", codec.parse_dt_or_none),
            current_assignment=f(data, "current_assignment", codec.parse_uuid_or_none),
            updated_at=f(data, "updated_at", codec.parse_dt_or_none),
            version=f(data, "version", codec.parse_int),
            suspended=codec.optional_field(data, "suspended", codec.parse_bool, False),
        )


# --- messages -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetStatus:
    """The agent's app sets its availability (``agent.status`` frame)."""

    status: Availability


@dataclass(frozen=True, slots=True)
class LocationFix:
    """A ``location`` frame; ``recorded_at`` is the device's time (None: now)."""

    latitude: float
    longitude: float
    accuracy_m: float | None = None
    heading: float | None = None
    speed_mps: float | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A sign of life without news (``ping``)."""


@dataclass(frozen=True, slots=True)
class HeartbeatExpired:
    """Timer message: no sign of life for ``heartbeat_timeout``."""


@dataclass(frozen=True, slots=True)
class Assigned:
    """Sent by an alert: this agent now holds ``alert_id``. Idempotent."""

    alert_id: UUID


@dataclass(frozen=True, slots=True)
class Released:
    """Sent by an alert that ended: the agent is free again. Idempotent."""

    alert_id: UUID


@dataclass(frozen=True, slots=True)
class TakeOffer:
    """The agent accepts its offer of ``alert_id`` (its socket's ``offer.accept``).

    One action, carried by the entities: the agent is reserved for the alert
    (refused with ``AlreadyAssigned`` while it holds or takes another), the
    alert is asked (``AcceptOffer`` with ``alert_id``), and the asker waits
    (``Defer``) for the alert's ``OfferTaken``, which answers it.
    """

    alert_id: UUID


@dataclass(frozen=True, slots=True)
class OfferTaken:
    """From an alert to the agent that asked to take it: ``status`` once taken
    (the asker's reply), or the alert's ``refusal`` (raised to the asker; the
    reservation is given back)."""

    alert_id: UUID
    status: AlertStatus | None = None
    refusal: ActorError | None = None


@dataclass(frozen=True, slots=True)
class SocketOpened:
    """A gateway holds a live, authenticated socket ``socket_id`` of this agent.

    Sent when the socket authenticates, and again for every live socket when
    a shard restarts (the region index is soft state). Idempotent; a sign of
    life; refreshes the agent's region entry when it is listed.
    """

    socket_id: str


@dataclass(frozen=True, slots=True)
class SocketClosed:
    """The gateway's socket ``socket_id`` of this agent closed. Idempotent."""

    socket_id: str


@dataclass(frozen=True, slots=True)
class Suspend:
    """An admin suspended the agent: offline and unlisted at once; it may not go
    on duty or take an alert until :class:`Reinstate`. Idempotent. (An alert it
    holds is handed back by the suspender: ``Unassign`` to the alert.)"""

    reason: str


@dataclass(frozen=True, slots=True)
class Reinstate:
    """An admin approved the agent again after a suspension. Idempotent."""


AgentMessage: TypeAlias = (
    SetStatus
    | LocationFix
    | Heartbeat
    | HeartbeatExpired
    | Assigned
    | Released
    | TakeOffer
    | OfferTaken
    | SocketOpened
    | SocketClosed
    | Suspend
    | Reinstate
)


@dataclass(frozen=True, slots=True)
class AgentPolicy:
    """Tunables: liveness timeout, the H3 resolution of region cells, and how
    long a reservation for an accept in progress lasts."""

    heartbeat_timeout: timedelta = timedelta(seconds=90)
    region_resolution: int = 7
    reservation_ttl: timedelta = timedelta(seconds=15)
    #: A listed agent's signs of life refresh its region entry at most this often
    #: (keep it well under ``RegionPolicy.presence_ttl``).
    presence_refresh: timedelta = timedelta(seconds=60)
    #: An available agent whose last socket closed is unlisted at once, and goes
    #: ``offline`` ("disconnected") if no socket opens again within this.
    disconnect_grace: timedelta = timedelta(seconds=20)

    def __post_init__(self) -> None:
        if self.heartbeat_timeout <= timedelta(0):
            raise ValueError("heartbeat_timeout must be positive")
        if not MIN_RESOLUTION <= self.region_resolution <= MAX_RESOLUTION:
            raise ValueError(f"region_resolution must be {MIN_RESOLUTION}..{MAX_RESOLUTION}")


DEFAULT_POLICY = AgentPolicy()

HEARTBEAT_TIMER_ID = "heartbeat"
#: Name of the liveness timer; its payload is empty.
HEARTBEAT_EXPIRED_TIMER = "heartbeat_expired"


def timer_message(name: str, payload: Mapping[str, Any]) -> AgentMessage:
    """Turn a due timer back into its message."""
    if name == HEARTBEAT_EXPIRED_TIMER:
        return HeartbeatExpired()
    raise UnknownMessage("agent", f"timer {name!r}")


# --- decide -------------------------------------------------------------------


def decide(
    state: AgentState,
    msg: AgentMessage,
    now: datetime,
    policy: AgentPolicy = DEFAULT_POLICY,
) -> Transition[AgentState]:
    """Apply ``msg`` to ``state`` at ``now``. Rejections raise and change nothing.

    Raises :class:`InvalidTransition` for a status the agent may not take
    while assigned, :class:`AlreadyAssigned` for a second assignment, and
    :class:`InvalidMessage` for a fix with bad coordinates.
    """
    codec.check_now(now)
    if isinstance(msg, SocketOpened | SocketClosed):
        return _socket(state, msg, now, policy)
    if isinstance(msg, Suspend):
        return _suspend(state, msg, now, policy)
    if isinstance(msg, Reinstate):
        if not state.suspended:
            return state, (Reply(state),)
        new = replace(state, suspended=False)
        return _finish(state, new, now, policy, reason="reinstated", refresh=False)
    if isinstance(msg, SetStatus):
        return _set_status(state, msg, now, policy)
    if isinstance(msg, LocationFix):
        return _location(state, msg, now, policy)
    if isinstance(msg, Heartbeat):
        return _heartbeat(state, now, policy)
    if isinstance(msg, HeartbeatExpired):
        return _expired(state, now, policy)
    if isinstance(msg, Assigned):
        return _assigned(state, msg, now, policy)
    if isinstance(msg, TakeOffer):
        return _take_offer(state, msg, now, policy)
    if isinstance(msg, OfferTaken):
        return _offer_taken(state, msg)
    if isinstance(msg, Released):
        if state.current_assignment != msg.alert_id:
            return state, (Reply(state),)  # duplicate or stale release
        availability = (
            Availability.AVAILABLE
            if state.availability is Availability.BUSY
            else state.availability
        )
        new = replace(state, current_assignment=None, availability=availability)
        return _finish(state, new, now, policy, reason="released", refresh=False)
    raise UnknownMessage("agent", type(msg).__name__)


def _socket(
    state: AgentState, msg: SocketOpened | SocketClosed, now: datetime, policy: AgentPolicy
) -> Transition[AgentState]:
    """A socket opened (a sign of life; lists an available agent again) or
    closed (the last one unlists it at once; ``offline`` after the grace)."""
    if isinstance(msg, SocketOpened):
        opened = replace(
            _alive(state, now), sockets=state.sockets | {msg.socket_id}, disconnected_at=None
        )
        # Always told to the region: after a restart this is how a lost region
        # index is refilled. Written only as a heartbeat would be: sockets are soft,
        # so a fleet reconnecting at once writes nothing but stale liveness.
        return _lively(state, opened, now, policy, reason="connected", refresh="force")
    if msg.socket_id not in state.sockets:
        return state, (Reply(state),)  # a repeat, or a socket from before a restart
    new = replace(state, sockets=state.sockets - {msg.socket_id})
    if new.sockets or state.availability is not Availability.AVAILABLE:
        return new, (Reply(new),)  # nothing durable changed (and it was not listed)
    # Its last socket: unlisted at once. Nothing is committed here, so the
    # region hears of it without waiting for a commit; the durable "offline"
    # comes from the liveness timer, due at the end of the grace.
    new = replace(new, disconnected_at=now)
    unlisted = _presence(state, new, now, policy, refresh=False)
    due = _offline_due(new, policy)
    assert due is not None  # available, so watched
    timer = ScheduleTimer(HEARTBEAT_TIMER_ID, HEARTBEAT_EXPIRED_TIMER, due, {})
    return new, (timer, *unlisted, Reply(new))


def _offline_due(state: AgentState, policy: AgentPolicy) -> datetime | None:
    """When the agent goes offline by itself: its heartbeat timeout, or sooner
    the end of the grace after its last socket closed (known only in memory:
    after a restart the gateways announce the sockets again first)."""
    dues = []
    if state.last_heartbeat_at is not None:
        dues.append(state.last_heartbeat_at + policy.heartbeat_timeout)
    if (
        state.disconnected_at is not None
        and not state.sockets
        and state.availability is Availability.AVAILABLE
    ):
        dues.append(state.disconnected_at + policy.disconnect_grace)
    return min(dues, default=None)


def _suspend(
    state: AgentState, msg: Suspend, now: datetime, policy: AgentPolicy
) -> Transition[AgentState]:
    """Offline and unlisted at once.

    The alert it holds is handed back by whoever suspends it (the gateway asks
    the alert to ``Unassign``): a durable send from here would wait for the
    alert, whose ``Released`` waits for this very mailbox.
    """
    if state.suspended:
        return state, (Reply(state),)
    new = replace(
        state,
        suspended=True,
        availability=Availability.OFFLINE,
        reserved_for=None,
        reserved_until=None,
    )
    return _finish(state, new, now, policy, reason="suspended", refresh=False)


def _alive(state: AgentState, now: datetime) -> AgentState:
    """A sign of life: refresh liveness; an assigned agent that timed out is busy again."""
    revived = state.availability is Availability.OFFLINE and state.current_assignment is not None
    return replace(
        state,
        last_heartbeat_at=now,
        availability=Availability.BUSY if revived else state.availability,
    )


def _set_status(
    state: AgentState, msg: SetStatus, now: datetime, policy: AgentPolicy
) -> Transition[AgentState]:
    if state.suspended and msg.status is not Availability.OFFLINE:
        raise NotPermitted("this agent is suspended; an administrator must approve it again")
    if state.current_assignment is not None and msg.status is not Availability.BUSY:
        raise InvalidTransition(
            state.availability,
            msg.status,
            entity="agent",
            reason=f"assigned to alert {state.current_assignment}; "
            "the alert must be resolved or cancelled first",
        )
    new = replace(_alive(state, now), availability=msg.status)
    if msg.status is state.availability:
        # What it already is (an app says so after every reconnect): a sign of life.
        return _lively(state, new, now, policy, reason="requested", refresh=True)
    return _finish(state, new, now, policy, reason="requested", refresh=True)


def _location(
    state: AgentState, msg: LocationFix, now: datetime, policy: AgentPolicy
) -> Transition[AgentState]:
    if not is_valid_point(msg.latitude, msg.longitude):
        raise InvalidMessage(f"invalid location ({msg.latitude!r}, {msg.longitude!r})")
    recorded_at = now if msg.recorded_at is None else msg.recorded_at
    if recorded_at.tzinfo is None:
        raise InvalidMessage("recorded_at must carry a UTC offset")
    # A device clock ahead of ours must not block every later fix.
    recorded_at = min(recorded_at, now)
    if state.location is not None and recorded_at <= state.location.recorded_at:
        return state, (Reply(state),)  # out of order or duplicate: the newer fix stands
    fix = PositionReport(
        latitude=float(msg.latitude),
        longitude=float(msg.longitude),
        accuracy_m=msg.accuracy_m,
        heading=msg.heading,
        speed_mps=msg.speed_mps,
        recorded_at=recorded_at,
    )
    new = replace(_alive(state, now), location=fix)
    new_state, effects = _finish(state, new, now, policy, reason="resumed", refresh=True)
    if state.current_assignment is None:
        return new_state, effects
    # Responding: the alert passes the position on to its user and estimates the
    # arrival from it, heading and speed included (best effort).
    relay = Send(
        EntityKind.ALERT,
        state.current_assignment,
        AgentLocation(
            state.id,
            fix.latitude,
            fix.longitude,
            fix.accuracy_m,
            fix.recorded_at,
            heading=fix.heading,
            speed_mps=fix.speed_mps,
        ),
    )
    return new_state, (*effects[:-1], relay, effects[-1])


def _heartbeat(state: AgentState, now: datetime, policy: AgentPolicy) -> Transition[AgentState]:
    """A sign of life; persisted only when the liveness on record grows old
    (see the module invariants) or the availability changed with it."""
    return _lively(state, _alive(state, now), now, policy, reason="resumed", refresh=True)


def _lively(
    state: AgentState,
    alive: AgentState,
    now: datetime,
    policy: AgentPolicy,
    *,
    reason: str,
    refresh: bool | Literal["force"],
) -> Transition[AgentState]:
    """``alive``, a change of ``state`` in soft fields and liveness only (a sign of
    life, a socket, the status it already has): like :func:`_finish`, but nothing
    is written while the liveness on record is under half ``heartbeat_timeout``
    old and the availability is unchanged."""
    saved = state.liveness_saved_at
    if (
        alive.availability is not state.availability
        or saved is None
        or now - saved >= policy.heartbeat_timeout / 2
    ):
        return _finish(state, alive, now, policy, reason=reason, refresh=refresh)
    effects: list[Effect] = [*_timers(state, alive, now, policy)]
    told = _presence(state, alive, now, policy, refresh=refresh)
    if any(isinstance(s.message, AgentPresence) for s in told if isinstance(s, Send)):
        alive = replace(alive, presence_at=now)
    effects.extend(told)
    effects.append(Reply(alive))
    return alive, tuple(effects)


def _expired(state: AgentState, now: datetime, policy: AgentPolicy) -> Transition[AgentState]:
    if state.availability is Availability.OFFLINE:
        return state, (Reply(state),)
    due = _offline_due(state, policy)
    if due is not None and now < due:
        # Early: a later sign of life moved the deadline. The in-memory timer was
        # replaced, but a stored copy restored after a restart can still fire
        # early, so re-arm the real deadline rather than trust another copy.
        return state, (
            ScheduleTimer(HEARTBEAT_TIMER_ID, HEARTBEAT_EXPIRED_TIMER, due, {}),
            Reply(state),
        )
    gone = state.disconnected_at is not None and not state.sockets
    new = replace(state, availability=Availability.OFFLINE, disconnected_at=None)
    reason = "disconnected" if gone else "heartbeat_expired"
    return _finish(state, new, now, policy, reason=reason, refresh=False)


def _assigned(
    state: AgentState, msg: Assigned, now: datetime, policy: AgentPolicy
) -> Transition[AgentState]:
    if state.current_assignment == msg.alert_id:
        return state, (Reply(state),)  # a repeated send
    if state.suspended:
        # An accept that crossed the suspension: the alert goes back to dispatching.
        # Nothing changes here, so the send is a plain tell: it does not wait for
        # the alert, which is waiting for this answer (the en-route deadline is
        # the backstop if it is lost).
        back = Unassign(agent_id=state.id, reason="agent suspended")
        return state, (Send(EntityKind.ALERT, msg.alert_id, back), Reply(state))
    if state.current_assignment is not None:
        raise AlreadyAssigned(str(state.id), str(state.current_assignment), str(msg.alert_id))
    new = replace(
        state,
        availability=Availability.BUSY,
        current_assignment=msg.alert_id,
        reserved_for=None,
        reserved_until=None,
    )
    return _finish(state, new, now, policy, reason="assigned", refresh=False)


def _reserve(state: AgentState, alert_id: UUID, now: datetime, policy: AgentPolicy) -> AgentState:
    """The agent held for ``alert_id`` while its accept is asked of the alert
    (soft: memory only); ``AlreadyAssigned`` while it holds or takes another."""
    if state.current_assignment == alert_id:
        return state  # accepting again what it already holds
    if state.current_assignment is not None:
        raise AlreadyAssigned(str(state.id), str(state.current_assignment), str(alert_id))
    taking = state.reserved_for
    if (
        taking is not None
        and taking != alert_id
        and state.reserved_until is not None
        and now < state.reserved_until
    ):
        raise AlreadyAssigned(str(state.id), str(taking), str(alert_id))
    return replace(state, reserved_for=alert_id, reserved_until=now + policy.reservation_ttl)


def _take_token(alert_id: UUID) -> str:
    return f"take:{alert_id}"


def _take_offer(
    state: AgentState, msg: TakeOffer, now: datetime, policy: AgentPolicy
) -> Transition[AgentState]:
    """Reserve the agent, ask the alert, and keep the asker waiting for its answer."""
    if state.suspended:
        raise NotPermitted("this agent is suspended and cannot take alerts")
    new = _reserve(state, msg.alert_id, now, policy)
    fix = state.location
    accept = AcceptOffer(state.id, alert_id=msg.alert_id)
    if fix is not None:
        accept = replace(
            accept,
            latitude=fix.latitude,
            longitude=fix.longitude,
            accuracy_m=fix.accuracy_m,
            heading=fix.heading,
            speed_mps=fix.speed_mps,
            fix_at=fix.recorded_at,
        )
    ask = Send(EntityKind.ALERT, msg.alert_id, accept)
    return new, (ask, Defer(_take_token(msg.alert_id)))


def _offer_taken(state: AgentState, msg: OfferTaken) -> Transition[AgentState]:
    """The alert's answer to a ``TakeOffer``: to the waiting asker; a refusal also
    gives the reservation back (the alert's ``Assigned`` settles a success)."""
    token = _take_token(msg.alert_id)
    if msg.refusal is None:
        return state, (Answer(token, msg), Reply(state))
    new = state
    if state.reserved_for == msg.alert_id:
        new = replace(state, reserved_for=None, reserved_until=None)
    return new, (Answer(token, msg.refusal), Reply(new))


def _cell(state: AgentState, policy: AgentPolicy) -> str | None:
    if not state.listed or state.location is None:
        return None
    return cell_of(state.location.latitude, state.location.longitude, policy.region_resolution)


def _presence(
    old: AgentState,
    new: AgentState,
    now: datetime,
    policy: AgentPolicy,
    refresh: bool | Literal["force"],
) -> list[Effect]:
    """What the region cells hear of the change: left the old cell, present in the
    new one (moved, newly listed, or a refresh). ``refresh``: False never, True
    once ``policy.presence_refresh`` has passed since the last, "force" always."""
    old_cell = _cell(old, policy)
    new_cell = _cell(new, policy)
    sends: list[Effect] = []
    if old_cell is not None and old_cell != new_cell:
        sends.append(Send(EntityKind.REGION, old_cell, AgentLeft(agent_id=new.id, at=now)))
    if new_cell is not None and new.location is not None:
        moved = new_cell != old_cell or new.location != old.location
        due = old.presence_at is None or now - old.presence_at >= policy.presence_refresh
        if moved or refresh == "force" or (refresh is True and due):
            presence = AgentPresence(
                agent_id=new.id,
                latitude=new.location.latitude,
                longitude=new.location.longitude,
                available=True,
                at=now,
            )
            sends.append(Send(EntityKind.REGION, new_cell, presence))
    return sends


def _timers(old: AgentState, new: AgentState, now: datetime, policy: AgentPolicy) -> list[Effect]:
    """Keep the heartbeat timer armed exactly while the agent is not offline."""
    watched_before = old.availability is not Availability.OFFLINE
    watched_now = new.availability is not Availability.OFFLINE
    if not watched_now:
        return [CancelTimer(HEARTBEAT_TIMER_ID)] if watched_before else []
    if new.last_heartbeat_at != old.last_heartbeat_at or not watched_before:
        # Assignment is not a sign of life: count from the last real one.
        due = _offline_due(new, policy) or now + policy.heartbeat_timeout
        return [ScheduleTimer(HEARTBEAT_TIMER_ID, HEARTBEAT_EXPIRED_TIMER, due, {})]
    return []


def _finish(
    old: AgentState,
    new: AgentState,
    now: datetime,
    policy: AgentPolicy,
    *,
    reason: str,
    refresh: bool | Literal["force"],
) -> Transition[AgentState]:
    """Stamp, persist and announce the change from ``old`` to ``new``.

    ``reason`` goes into ``agent.status_changed`` when availability or
    assignment changed ("resumed": a sign of life brought back a timed-out
    assigned agent).
    """
    status_changed = (
        new.availability is not old.availability
        or new.current_assignment != old.current_assignment
        or new.suspended != old.suspended
    )
    at = now if old.updated_at is None else max(now, old.updated_at)
    new = replace(new, updated_at=at, version=old.version + 1, liveness_saved_at=now)
    effects: list[Effect] = [
        Persist(
            EntityKind.AGENT, new.id, new.version, new.to_snapshot(), coalesce=not status_changed
        )
    ]
    if status_changed:
        data = {
            "agent_id": str(new.id),
            "status": new.availability.value,
            "previous_status": old.availability.value,
            "reason": reason,
            "current_assignment": codec.str_or_none(new.current_assignment),
            "at": codec.iso(at),
        }
        key = str(new.id)
        effects.append(Emit(Topic.AGENT_EVENTS, EventType.AGENT_STATUS_CHANGED, key, key, data, at))
    effects.extend(_timers(old, new, now, policy))
    told = _presence(old, new, now, policy, refresh)
    if any(isinstance(s.message, AgentPresence) for s in told if isinstance(s, Send)):
        new = replace(new, presence_at=now)
    effects.extend(told)
    effects.append(Reply(new))
    return new, tuple(effects)
