"""What the gateway needs from the backing services, as Protocols it declares.

``persistence`` implements them (``persistence.stores``, ``persistence.pushes``,
``persistence.drivers.reconnecting``); ``panic_alert.gateway_root`` builds the
adapters from the settings and hands them to ``gateway.app.create_app`` as a
:class:`GatewayPorts`; routes reach them only through ``gateway.deps``. Unit
tests pass fakes from ``tests/fakes``.

Values crossing a port are the domain's (``actors``, ``geo``) or declared
here: rows the gateway reads are Protocols (the adapters' records satisfy
them structurally), values it builds are dataclasses. Listing cursors are
opaque text both ways: a store encodes its own keyset and refuses a cursor it
did not issue with ``InvalidCursor``.

Errors: a port raises only the errors of ``actors.store_errors`` (the family
every storage port shares; ``PersistenceError`` at its root, with
``retriable``), never a driver's exception; ``gateway.errors`` maps them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Final, Protocol, TypeVar
from uuid import UUID

from actors.alert_state import ActorRole, AlertState, AlertStatus, AlertType
from actors.roles import Role
from actors.store_errors import ServiceUnavailable
from actors.subject import SubjectRole
from actors.zone_rules import ZoneKind, ZoneRow
from geo.fences import FenceEvent
from media.ports import MediaRecords, MediaUploads, ObjectStore

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class Page(Protocol[T_co]):
    """One page of a keyset listing; ``next_cursor`` is None on the last page."""

    @property
    def items(self) -> Sequence[T_co]: ...
    @property
    def next_cursor(self) -> str | None: ...


# --- accounts ----------------------------------------------------------------------

#: ``Accounts.set_pins``: leave this PIN as it is.
KEEP: Final = "keep"


class AccountRow(Protocol):
    """An account as its owner may see it (never the password hash)."""

    @property
    def id(self) -> UUID: ...
    @property
    def email(self) -> str: ...
    @property
    def full_name(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def has_cancel_pin(self) -> bool:
        """Whether PINs are set (a PIN is needed to cancel); never which ones."""
        ...


class CredentialsRow(Protocol):
    """What a login checks."""

    @property
    def id(self) -> UUID: ...
    @property
    def role(self) -> Role: ...
    @property
    def password_hash(self) -> str: ...
    @property
    def disabled(self) -> bool: ...
    @property
    def vetting(self) -> str | None:
        """An agent's :class:`Vetting` value; None for other roles."""
        ...


class PinHashesRow(Protocol):
    """The argon2 hashes of a user's cancel and duress PINs (None: not set)."""

    @property
    def cancel(self) -> str | None: ...
    @property
    def duress(self) -> str | None: ...


class Accounts(Protocol):
    """Accounts (``users``, and ``agents`` for agents). Emails are matched in any case."""

    async def create_account(
        self,
        *,
        email: str,
        password_hash: str,
        full_name: str,
        role: str,
        phone: str | None = None,
        badge_number: str | None = None,
    ) -> UUID:
        """Not idempotent: a taken email or badge raises a ``Conflict`` with a public detail."""
        ...

    async def find_credentials(self, email: str) -> CredentialsRow | None: ...

    async def replace_password_hash(self, account_id: UUID, old_hash: str, new_hash: str) -> bool:
        """Compare-and-set; False if the hash changed meanwhile. Safe to retry."""
        ...

    async def change_password(
        self, account_id: UUID, old_hash: str, new_hash: str, at: datetime
    ) -> bool:
        """A new password: compare-and-set like :meth:`replace_password_hash`, and
        in the same transaction every refresh-token family of the account is
        revoked. False (nothing changed) if the hash changed meanwhile."""
        ...

    async def get_account(self, account_id: UUID) -> AccountRow | None:
        """None if unknown or disabled."""
        ...

    async def update_profile(
        self, account_id: UUID, *, full_name: str, phone: str | None
    ) -> AccountRow | None: ...

    async def set_pins(self, account_id: UUID, *, cancel: str | None, duress: str | None) -> None:
        """Set (a hash), clear (None) or keep (:data:`KEEP`) each PIN hash."""
        ...

    async def pin_hashes(self, account_id: UUID) -> PinHashesRow: ...


# --- administrators' second factor -------------------------------------------------


class TotpRow(Protocol):
    """An administrator's TOTP enrolment (the secret only encrypted)."""

    @property
    def secret_ciphertext(self) -> bytes: ...
    @property
    def confirmed(self) -> bool:
        """False while the enrolment waits for its first code."""
        ...

    @property
    def recovery_codes_left(self) -> int: ...


class AdminTotp(Protocol):
    """Administrators' TOTP enrolments and recovery codes (``gateway.auth.totp``).
    Enrolling, disabling and using a recovery code each write an ``audit-logs``
    event in the same transaction as the change."""

    async def totp_of(self, account_id: UUID) -> TotpRow | None:
        """The enrolment, confirmed or not; None if there is none. Read-only."""
        ...

    async def start_enrolment(self, account_id: UUID, secret_ciphertext: bytes) -> bool:
        """Store a new unconfirmed secret (replacing an unconfirmed one); False,
        changing nothing, if a confirmed enrolment exists."""
        ...

    async def confirm_enrolment(
        self, account_id: UUID, *, step: int, recovery_code_hashes: Sequence[bytes], at: datetime
    ) -> bool:
        """Confirm the unconfirmed enrolment with the step of its first code, and
        replace the recovery codes; False if there is none to confirm."""
        ...

    async def accept_step(self, account_id: UUID, step: int) -> bool:
        """Record ``step`` as used if the enrolment is confirmed and ``step`` is
        later than the last one used; False otherwise (a replayed code). Atomic."""
        ...

    async def use_recovery_code(self, account_id: UUID, code_hash: bytes, at: datetime) -> bool:
        """Spend an unused recovery code of a confirmed enrolment; False if none
        matches. Atomic: a code is spent once."""
        ...

    async def disable(self, account_id: UUID, *, at: datetime) -> bool:
        """Remove the enrolment and its recovery codes; False if there was none."""
        ...


# --- agent vetting -----------------------------------------------------------------


class Vetting(StrEnum):
    """Whether an agent may be trusted with alerts (``agents.vetting``)."""

    #: Registered by itself: may sign in and edit its profile, not go on duty.
    PENDING = "pending"
    APPROVED = "approved"
    #: May not sign in.
    SUSPENDED = "suspended"


class VettingLookup(Protocol):
    async def vetting_of(self, agent_id: UUID) -> str | None:
        """The agent's :class:`Vetting` value now (None: no such agent). Read-only."""
        ...


class RosterRow(Protocol):
    """One agent of the admin roster."""

    @property
    def id(self) -> UUID: ...
    @property
    def email(self) -> str: ...
    @property
    def full_name(self) -> str: ...
    @property
    def badge_number(self) -> str | None: ...
    @property
    def vetting(self) -> str: ...
    @property
    def vetting_reason(self) -> str | None: ...
    @property
    def vetted_at(self) -> datetime | None: ...
    @property
    def availability(self) -> str: ...
    @property
    def latitude(self) -> float | None: ...
    @property
    def longitude(self) -> float | None: ...
    @property
    def accuracy_m(self) -> float | None: ...
    @property
    def last_seen_at(self) -> datetime | None: ...
    @property
    def current_alert_id(self) -> UUID | None: ...


class VettingRow(Protocol):
    """An agent's vetting after a decision (``changed``: False for a repeat)."""

    @property
    def agent_id(self) -> UUID: ...
    @property
    def vetting(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def vetted_at(self) -> datetime | None: ...
    @property
    def vetted_by(self) -> UUID | None: ...
    @property
    def changed(self) -> bool: ...


class InviteRow(Protocol):
    @property
    def id(self) -> UUID: ...
    @property
    def expires_at(self) -> datetime: ...


class AgentVetting(VettingLookup, Protocol):
    """Vetting decisions, the roster and invites. Every decision and invite
    issued or used writes an ``audit-logs`` event in its own transaction."""

    async def vettings_of(self, agent_ids: Sequence[UUID]) -> Sequence[str | None]:
        """:meth:`vetting_of` of each of ``agent_ids``, in that order, read at once."""
        ...

    def check_cursor(self, cursor: str) -> None:
        """Raise ``InvalidCursor`` unless the roster issued ``cursor`` (no I/O)."""
        ...

    async def list_agents(
        self, *, vetting: str | None, limit: int, cursor: str | None
    ) -> Page[RosterRow]:
        """Newest first; ``InvalidCursor`` for a cursor it did not issue."""
        ...

    async def set_vetting(
        self, agent_id: UUID, vetting: str, *, reason: str | None, admin_id: UUID, at: datetime
    ) -> VettingRow | None:
        """Approve or suspend (None: no such agent). Idempotent: a repeat changes
        nothing. Suspending also revokes the agent's refresh tokens."""
        ...

    async def issue_invite(
        self, code: str, *, admin_id: UUID, at: datetime, expires_at: datetime
    ) -> InviteRow:
        """Store a single-use code (only its hash). Not idempotent."""
        ...

    async def create_invited_agent(
        self,
        invite_code: str,
        *,
        email: str,
        password_hash: str,
        full_name: str,
        phone: str | None,
        badge_number: str | None,
        at: datetime,
    ) -> UUID | None:
        """An approved agent made with the code spent, in one transaction; None
        (nothing created) for a code unknown, spent or expired. A taken email or
        badge is the ``Conflict`` of ``Accounts.create_account``."""
        ...


# --- the fleet (the dispatcher console's live map) ---------------------------------


class FleetPosition(Protocol):
    """An agent's last known position as its device reported it (a value:
    compared by its fields)."""

    @property
    def latitude(self) -> float: ...
    @property
    def longitude(self) -> float: ...
    @property
    def heading(self) -> float | None: ...
    @property
    def speed_mps(self) -> float | None: ...
    @property
    def at(self) -> datetime | None:
        """The fix's time (the device's, else the server's receipt)."""
        ...


class FleetAgentRow(Protocol):
    """One approved agent: who, its duty status, and its freshest position."""

    @property
    def agent_id(self) -> UUID: ...
    @property
    def full_name(self) -> str: ...
    @property
    def badge_number(self) -> str | None: ...
    @property
    def vetting(self) -> str: ...
    @property
    def status(self) -> str:
        """``agents.status``: the duty status its entity last committed."""
        ...

    @property
    def position(self) -> FleetPosition | None:
        """The newest of the Redis location key and ``agents.last_location``."""
        ...

    @property
    def last_seen_at(self) -> datetime | None: ...


class FleetStatusRow(Protocol):
    @property
    def agent_id(self) -> UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def vetting(self) -> str: ...
    @property
    def changed_at(self) -> datetime:
        """``agents.updated_at`` (the committing transaction's start)."""
        ...


class Fleet(Protocol):
    """The agents' live picture, read-only. Positions come from Redis
    (``location:agent:{id}``, written within ``geofence.batch_linger_ms`` of
    the fix) and fall back to ``agents.last_location`` (written coalesced,
    every ``actors.flush_interval_s``); duty statuses from ``agents.status``
    (committed with each change)."""

    async def approved_agents(self) -> Sequence[FleetAgentRow]:
        """Every approved agent, with its freshest position (None: unknown)."""
        ...

    async def nearest(
        self, latitude: float, longitude: float, limit: int
    ) -> Sequence[FleetAgentRow]:
        """At least the ``limit`` approved agents nearest to the point by
        ``agents.last_location`` (PostGIS KNN; a few more to allow for moves
        since its last flush), with their freshest positions, in no set order."""
        ...

    async def statuses_since(self, since: datetime | None) -> Sequence[FleetStatusRow]:
        """Agents (of any vetting) changed at or after ``since`` (None: all)."""
        ...

    async def moves_since(
        self, since: int | None
    ) -> tuple[Mapping[UUID, FleetPosition], int | None]:
        """Agents whose Redis position was written at or after ``since`` (Redis ms;
        None: all) and their positions, and the watermark to pass next time
        (None: nothing seen yet). Inclusive, so nothing is missed; a repeat is
        the caller's to drop."""
        ...


class AgentWithdrawal(Protocol):
    async def withdraw_agent(self, agent_id: UUID, reason: str) -> None:
        """Take the agent off duty: withdraw its open offers and hand an alert it
        holds back to dispatching. Idempotent."""
        ...

    async def reinstate_agent(self, agent_id: UUID) -> None:
        """Lift a suspension: the agent may go on duty again. Idempotent."""
        ...


# --- emergency contacts ------------------------------------------------------------


class ContactRow(Protocol):
    @property
    def id(self) -> UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def relationship(self) -> str | None: ...
    @property
    def notify_via(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class ContactFields:
    name: str
    phone: str | None
    email: str | None
    relationship: str | None
    notify_via: tuple[str, ...]


class Contacts(Protocol):
    """One user's emergency contacts; another user's contact id reads as unknown."""

    async def list_contacts(self, user_id: UUID) -> Sequence[ContactRow]: ...
    async def get_contact(self, user_id: UUID, contact_id: UUID) -> ContactRow | None: ...
    async def create_contact(
        self, user_id: UUID, fields: ContactFields, *, limit: int
    ) -> ContactRow:
        """A ``Conflict`` (with a public detail) beyond ``limit`` contacts."""
        ...

    async def replace_contact(
        self, user_id: UUID, contact_id: UUID, fields: ContactFields
    ) -> ContactRow | None: ...
    async def delete_contact(self, user_id: UUID, contact_id: UUID) -> bool: ...


# --- refresh tokens ----------------------------------------------------------------


class RotationOutcome(Enum):
    ROTATED = "rotated"
    #: The token was already spent: its family is now revoked.
    REUSED = "reused"
    #: Unknown, expired, revoked, or its account is disabled.
    INVALID = "invalid"


class RotationRow(Protocol):
    """What a rotation did; the ids and role are set unless the outcome is invalid."""

    @property
    def outcome(self) -> Enum: ...
    @property
    def account_id(self) -> UUID | None: ...
    @property
    def role(self) -> str | None: ...
    @property
    def family_id(self) -> UUID | None: ...


class RefreshTokens(Protocol):
    """Refresh-token families (one per login session); tokens are stored hashed."""

    async def issue(
        self,
        *,
        account_id: UUID,
        family_id: UUID,
        token: str,
        issued_at: datetime,
        expires_at: datetime,
    ) -> None: ...

    async def rotate(
        self, *, token: str, successor: str, now: datetime, expires_at: datetime
    ) -> RotationRow:
        """Spend ``token``; a spent one revokes its family. Not safe to retry blindly."""
        ...

    async def revoke_family(self, *, account_id: UUID, family_id: UUID, now: datetime) -> int:
        """Idempotent; scoped by account."""
        ...

    async def family_revoked(self, family_id: UUID) -> bool:
        """Whether the family was revoked (its session ended)."""
        ...

    async def family_of(self, token: str) -> tuple[UUID, UUID] | None:
        """``(account_id, family_id)`` of a stored token, or None."""
        ...


# --- alerts ------------------------------------------------------------------------


class AlertReads(Protocol):
    """The committed alerts. Who may read which, and how much, is
    ``AlertState.access``: the gateway applies it to every alert these return."""

    def check_cursor(self, cursor: str) -> None:
        """Raise ``InvalidCursor`` unless this listing issued ``cursor`` (no I/O)."""
        ...

    async def list_alerts(
        self,
        viewer_id: UUID,
        viewer_role: ActorRole,
        *,
        status: AlertStatus | None,
        alert_type: AlertType | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> Page[AlertState]:
        """Newest first, at least every alert ``AlertState.access`` lets the viewer
        read (it may hold a few more: the caller checks each); ``InvalidCursor``
        for a cursor it did not issue."""
        ...

    async def load_alert(self, alert_id: UUID) -> AlertState | None:
        """The committed alert, or None when there is none (whoever asks)."""
        ...


class OpenAlerts(Protocol):
    """Snapshots of open alerts, for a socket's resync."""

    async def for_agent(self, agent_id: UUID) -> Sequence[Mapping[str, Any]]:
        """Snapshots of open alerts offered or assigned to ``agent_id`` (may hold others)."""
        ...

    async def for_agents(self, agent_ids: Sequence[UUID]) -> Sequence[Sequence[Mapping[str, Any]]]:
        """:meth:`for_agent` of each of ``agent_ids``, in that order, read at once."""
        ...

    async def for_user(self, user_id: UUID) -> Sequence[Mapping[str, Any]]:
        """Snapshots of the open alerts of ``user_id``."""
        ...


# --- zones -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZoneFields:
    """What a zone write gives: everything but the id, revision and times.

    ``rules`` is stored as given (JSON); its ``dwell_s`` is stored beside it.
    """

    name: str
    kind: ZoneKind
    geometry: Mapping[str, Any]
    radius_m: float | None
    rules: Mapping[str, Any]
    active: bool
    cells: tuple[str, ...]

    @property
    def dwell_s(self) -> int | None:
        value = self.rules.get("dwell_s")
        return None if value is None else int(value)


class Zones(Protocol):
    """Live zones; a deleted zone reads as unknown. Writes raise ``GeometryRejected``
    when the database refuses a geometry that passed validation."""

    def check_cursor(self, cursor: str) -> None:
        """Raise ``InvalidCursor`` unless this listing issued ``cursor`` (no I/O)."""
        ...

    async def list_zones(
        self, *, kind: ZoneKind | None, active: bool | None, limit: int, cursor: str | None
    ) -> Page[ZoneRow]:
        """Newest first; ``InvalidCursor`` for a cursor it did not issue."""
        ...

    async def get_zone(self, zone_id: UUID) -> ZoneRow | None: ...
    async def create_zone(
        self, zone_id: UUID, fields: ZoneFields, *, created_by: UUID | None
    ) -> ZoneRow: ...
    async def replace_zone(self, zone_id: UUID, fields: ZoneFields) -> ZoneRow | None: ...
    async def delete_zone(self, zone_id: UUID) -> bool: ...


# --- geofence events ---------------------------------------------------------------


class GeofenceEventRow(Protocol):
    @property
    def id(self) -> UUID: ...
    @property
    def zone_id(self) -> UUID: ...
    @property
    def subject_id(self) -> UUID: ...
    @property
    def event(self) -> FenceEvent: ...
    @property
    def at(self) -> datetime: ...
    @property
    def latitude(self) -> float: ...
    @property
    def longitude(self) -> float: ...
    @property
    def accuracy_m(self) -> float | None: ...
    @property
    def zone_kind(self) -> ZoneKind | None: ...
    @property
    def subject_role(self) -> SubjectRole | None: ...


class GeofenceEvents(Protocol):
    """The stored geofence events (read-only; no visibility rule: the caller narrows)."""

    def check_cursor(self, cursor: str) -> None:
        """Raise ``InvalidCursor`` unless this listing issued ``cursor`` (no I/O)."""
        ...

    async def list_events(
        self,
        *,
        zone_id: UUID | None,
        subject_id: UUID | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> Page[GeofenceEventRow]:
        """Oldest first; ``InvalidCursor`` for a cursor it did not issue."""
        ...


# --- Redis: sessions, rate limits, locations, pushes -------------------------------


class SessionCheck(Protocol):
    async def is_active(self, role: str, account_id: UUID, session_id: str) -> bool: ...


class Sessions(SessionCheck, Protocol):
    """Active login sessions per account; revocation is seen by every replica at once.

    Closing a session also announces it on the session's
    :meth:`revocation_channel` (a ``PushSubscription`` channel), after the
    session stops being active: a socket that subscribes there and then
    finds the session active hears of its end, whenever that comes.
    """

    def revocation_channel(self, session_id: str) -> str:
        """The pub/sub channel on which the end of ``session_id`` is announced (no I/O)."""
        ...

    async def open_session(
        self, role: str, account_id: UUID, session_id: str, ttl_s: int
    ) -> None: ...
    async def close_session(self, role: str, account_id: UUID, session_id: str) -> None:
        """End one session and announce it. Idempotent."""
        ...

    async def close_all_sessions(self, role: str, account_id: UUID) -> int:
        """End every session of the account and announce each; how many there were.
        Idempotent. (Refresh families are not revoked here: ``RefreshTokens``.)"""
        ...

    async def are_active(self, sessions: Sequence[tuple[str, UUID, str]]) -> Sequence[bool]:
        """:meth:`is_active` of each ``(role, account_id, session_id)``, in that order,
        read at once."""
        ...


class PressMutex(Protocol):
    """A lock per user shared by every gateway process (``gateway.alert_press``): a
    person's presses that reach two processes at once are taken one at a time."""

    async def acquire(self, user_id: UUID, ttl_s: float) -> str | None:
        """Take ``user_id``'s lock for at most ``ttl_s`` if it is free: the token to
        release it with, else None (someone holds it)."""
        ...

    async def release(self, user_id: UUID, token: str) -> None:
        """Give the lock back if ``token`` still holds it (not after it expired and
        another press took it)."""
        ...


class RateCounters(Protocol):
    """Fixed-window counters shared by every replica."""

    async def hit(self, identifier: str, window_s: int) -> tuple[int, int]:
        """Count one request; ``(count in the window, TTL seconds left)``. Not idempotent."""
        ...


class LoginFailureCounts(Protocol):
    """``gateway.auth.throttle.FailureCounts`` as a store reads it."""

    @property
    def pair(self) -> int: ...
    @property
    def pair_last_at(self) -> float | None: ...
    @property
    def email(self) -> int: ...
    @property
    def email_ttl_s(self) -> int: ...


class LoginFailures(Protocol):
    """Failed logins per email+address pair and per email (``gateway.auth.throttle``)."""

    async def counts(self, pair: str, email: str) -> LoginFailureCounts:
        """The failures recorded under both identifiers. Read-only."""
        ...

    async def record_failure(
        self, pair: str, email: str, *, at: float, pair_ttl_s: int, email_window_s: int
    ) -> None:
        """Count one failure on both; the pair is forgotten ``pair_ttl_s`` after
        its last failure, the email's window starts with its first. Not idempotent."""
        ...

    async def clear(self, pair: str) -> None:
        """Forget the pair's failures (a success). Idempotent."""
        ...


class PinFailures(Protocol):
    """Cancel-PIN attempts, counted per user and per alert over a window."""

    async def claim_attempt(
        self, user_id: UUID, alert_id: UUID, at: datetime, since: datetime
    ) -> tuple[int, int, int]:
        """Record one attempt at ``at`` before its PIN is checked; ``(its id, the
        user's attempts, the alert's attempts)`` at or after ``since``, this one
        and every one claimed before it included. Not idempotent."""
        ...

    async def release_attempt(self, attempt_id: int) -> None:
        """Forget a claimed attempt (its PIN was right). Idempotent."""
        ...


class LatestLocations(Protocol):
    """Subjects' last known positions."""

    async def store_latest(self, latest: Sequence[tuple[str, str, bytes]], ttl_s: int) -> None:
        """Set each ``(role, subject id as text, value)`` in one round trip, expiring
        after ``ttl_s``."""
        ...


class LocationHistory(Protocol):
    """The sampled location history (``location_events``)."""

    async def record(self, samples: Sequence[tuple[UUID, datetime, Mapping[str, Any]]]) -> None:
        """Store each ``(subject_id, recorded_at, data)`` as one event. Best effort."""
        ...


class PushSubscription(Protocol):
    """One pub/sub connection: confirmations and frames arrive as messages
    (``{"type": "subscribe"|"message"|..., "channel": ..., "data": ...}``)."""

    async def subscribe(self, *channels: str) -> None: ...
    async def unsubscribe(self, *channels: str) -> None: ...
    async def get_message(self, timeout: float | None = ...) -> dict[str, Any] | None: ...  # noqa: ASYNC109
    async def aclose(self) -> None: ...


# --- metrics -----------------------------------------------------------------------


class MetricsReads(Protocol):
    async def response_times(
        self, stages: Sequence[str], buckets: Sequence[int]
    ) -> tuple[float, ...] | None:
        """Per stage: the count, the sum and one cumulative count per bucket, all alerts."""
        ...


# --- the dispatcher console's reads (issue 18) -------------------------------------


class Bucket(StrEnum):
    """The width of a response-time bucket, truncated in UTC (``date_trunc``)."""

    HOUR = "hour"
    DAY = "day"
    #: ISO weeks: each starts on a Monday, 00:00 UTC.
    WEEK = "week"


#: ``ResponseTimeRow.alert_type`` of the row summing every type of its bucket.
ALL_TYPES: Final = "all"


class StageFigures(Protocol):
    """One response milestone over one bucket: how many alerts reached it, and
    the median and 90th percentile of their seconds from creation (null when
    none did), rounded to milliseconds."""

    @property
    def count(self) -> int: ...
    @property
    def p50_s(self) -> float | None: ...
    @property
    def p90_s(self) -> float | None: ...


class ResponseTimeRow(Protocol):
    """One bucket of one alert type (or :data:`ALL_TYPES`)."""

    @property
    def bucket_start(self) -> datetime: ...
    @property
    def alert_type(self) -> str:
        """An ``AlertType`` value, or :data:`ALL_TYPES`."""
        ...

    @property
    def count(self) -> int:
        """Alerts created in the bucket (every status)."""
        ...

    @property
    def offer(self) -> StageFigures: ...
    @property
    def accept(self) -> StageFigures: ...
    @property
    def on_scene(self) -> StageFigures: ...
    @property
    def resolve(self) -> StageFigures: ...


class Analytics(Protocol):
    """Figures over the committed alerts (the ``alerts`` projection). Read-only."""

    async def response_times(
        self,
        *,
        since: datetime,
        until: datetime,
        bucket: Bucket,
        alert_type: AlertType | None,
    ) -> Sequence[ResponseTimeRow]:
        """Alerts created in ``[since, until)``, grouped by ``bucket`` and type, with
        an :data:`ALL_TYPES` row per bucket; buckets with no alert are absent.
        Ordered by ``bucket_start``, then the all-types row, then the type."""
        ...


class DeliveryRow(Protocol):
    """One notification request's outcome (``notification_deliveries``), with the
    contact it went to as that contact is now (none for a webhook, or once deleted).

    The table keeps no address (personal data): ``contact_phone`` and
    ``contact_email`` are the contact's current ones, for the gateway to mask."""

    @property
    def request_id(self) -> UUID: ...
    @property
    def channel(self) -> str: ...
    @property
    def occasion(self) -> str: ...
    @property
    def contact_id(self) -> UUID | None: ...
    @property
    def contact_name(self) -> str | None: ...
    @property
    def contact_phone(self) -> str | None: ...
    @property
    def contact_email(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def finished_at(self) -> datetime: ...


class AlertNotifications(Protocol):
    """The emergency-contact deliveries of an alert. Read-only."""

    async def deliveries_of(self, alert_id: UUID) -> Sequence[DeliveryRow] | None:
        """Oldest first (then by request id); None when there is no such alert."""
        ...


# --- the set -----------------------------------------------------------------------

Provider = Callable[[], T]


def _missing(service: str) -> Callable[[], Any]:
    def provider() -> Any:
        raise ServiceUnavailable(service, "not configured in this process")  # type: ignore[arg-type]

    return provider


def _none() -> None:
    return None


# --- issue 19, push registration (``gateway.routes.devices``) ---


class DeviceRow(Protocol):
    """One push registration of an account (``user_devices``)."""

    @property
    def id(self) -> UUID: ...
    @property
    def platform(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def last_seen_at(self) -> datetime: ...


class Devices(Protocol):
    """One account's push registrations (users' and agents' alike); a device of
    another account reads as unknown."""

    async def register(
        self, account_id: UUID, platform: str, push_token: str, *, limit: int
    ) -> tuple[DeviceRow, bool]:
        """Register ``push_token`` (idempotent: the same token is the same row,
        ``last_seen_at`` bumped); whether the row is new. Keeps at most ``limit``
        devices, evicting those seen least recently; a token held by another
        account moves to this one."""
        ...

    async def list_devices(self, account_id: UUID) -> Sequence[DeviceRow]:
        """Most recently seen first."""
        ...

    async def delete_device(self, account_id: UUID, device_id: UUID) -> bool:
        """False when the account holds no such device."""
        ...


class VapidKeys(Protocol):
    async def public_key(self) -> str:
        """The VAPID application server key (65 bytes, unpadded base64url)."""
        ...


# --- issue 20, integration keys (``gateway.routes.integrations``) ---


class IntegrationKeyRow(Protocol):
    """One integration key as stored: never its secret, only the secret's SHA-256."""

    @property
    def id(self) -> UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def secret_sha256(self) -> bytes: ...
    @property
    def created_by(self) -> UUID: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def last_used_at(self) -> datetime | None: ...


class IntegrationKeys(Protocol):
    """The keys of the bulk location feed (``gateway.auth.integration_keys``).
    Creating and revoking one each write an ``audit-logs`` event in the same
    transaction (who, which key and its name; never the secret)."""

    async def add(
        self,
        key_id: UUID,
        name: str,
        secret_sha256: bytes,
        created_by: UUID,
        *,
        max_active: int,
    ) -> IntegrationKeyRow | None:
        """Store a new active key; None (nothing stored) when ``max_active`` keys
        are active already (checked under a lock: racing adds never exceed it).
        Not idempotent; a key id used before is a ``Conflict``."""
        ...

    async def list_keys(self) -> Sequence[IntegrationKeyRow]:
        """Every key, revoked ones too, newest first."""
        ...

    async def revoke(self, key_id: UUID, *, revoked_by: UUID) -> bool:
        """Revoke the key; True if it was active. Idempotent: revoking a revoked
        (or unknown) key changes nothing, records nothing and answers False."""
        ...

    async def find(self, key_id: UUID) -> IntegrationKeyRow | None:
        """The key (revoked or not), None if unknown. Read-only."""
        ...

    async def touch(self, key_id: UUID) -> None:
        """Set ``last_used_at`` to now (best effort; callers limit how often)."""
        ...


class BulkSpread(Protocol):
    """How many bulk-feed sockets this gateway process holds, beside the others of
    ``serve`` (``panic_alert.bulk_tally``): ``/ws/locations`` asks it before it
    answers ``auth.ok``, and sends a socket it refuses to connect again."""

    def admit(self) -> bool:
        """Count one more socket here, or False (not counted) when another gateway
        process holds fewer."""
        ...

    def surplus(self, now: float) -> bool:
        """Whether one of this process's sockets should go to another gateway
        process, which holds two or more fewer (at most once in a while; ``now``:
        ``time.monotonic()``). The socket whose frame asked is closed after its
        answer, and its client connects again."""
        ...

    def release(self) -> None:
        """A socket counted here closed."""
        ...


@dataclass(frozen=True)
class GatewayPorts:
    """Every port of one gateway process, each behind a provider.

    A provider answers the adapter bound to the live connection, or raises
    ``ServiceUnavailable`` while its service is disconnected (``/readyz``
    reconnects it); routes resolve them through ``gateway.deps``, so a
    request needing a service that is down is a 503 before any work. The
    defaults say "not configured in this process" (tests that need none).
    """

    accounts: Provider[Accounts] = field(default=_missing("postgres"))
    contacts: Provider[Contacts] = field(default=_missing("postgres"))
    refresh_tokens: Provider[RefreshTokens] = field(default=_missing("postgres"))
    alerts: Provider[AlertReads] = field(default=_missing("postgres"))
    open_alerts: Provider[OpenAlerts] = field(default=_missing("postgres"))
    zones: Provider[Zones] = field(default=_missing("postgres"))
    geofence_events: Provider[GeofenceEvents] = field(default=_missing("mongo"))
    agent_vetting: Provider[AgentVetting] = field(default=_missing("postgres"))
    #: The fleet's live picture (PostgreSQL and Redis).
    fleet: Provider[Fleet] = field(default=_missing("postgres"))
    admin_totp: Provider[AdminTotp] = field(default=_missing("postgres"))
    sessions: Provider[Sessions] = field(default=_missing("redis"))
    #: Ends every session of an account (a suspended agent's).
    #: Takes a suspended agent off its offers and alerts (the entities).
    rate_counters: Provider[RateCounters] = field(default=_missing("redis"))
    #: None: presses are serialized within the process only.
    press_mutex: Provider[PressMutex | None] = field(default=_none)
    login_failures: Provider[LoginFailures] = field(default=_missing("redis"))
    pin_failures: Provider[PinFailures] = field(default=_missing("postgres"))
    latest_locations: Provider[LatestLocations] = field(default=_missing("redis"))
    #: None while the event store is not connected (the history is best effort).
    location_history: Provider[LocationHistory | None] = field(default=_none)
    #: Opens the process's pub/sub connection for ``/ws`` pushes (``gateway.ws.hub``).
    push_subscriptions: Provider[PushSubscription] = field(default=_missing("redis"))
    #: None while PostgreSQL is not connected (``/metrics`` answers anyway).
    metrics: Provider[MetricsReads | None] = field(default=_none)
    #: Media rows (``media.ports``) and the object store holding their sealed bytes.
    media_records: Provider[MediaRecords] = field(default=_missing("postgres"))
    media_objects: Provider[ObjectStore] = field(default=_missing("objects"))
    #: Resumable (tus) uploads in progress (``media.resumable``).
    media_uploads: Provider[MediaUploads] = field(default=_missing("postgres"))
    #: Response-time figures for the console (issue 18).
    analytics: Provider[Analytics] = field(default=_missing("postgres"))
    #: Emergency-contact delivery outcomes per alert (issue 18).
    alert_notifications: Provider[AlertNotifications] = field(default=_missing("postgres"))
    #: Push registrations and the VAPID public key (issue 19).
    devices: Provider[Devices] = field(default=_missing("postgres"))
    vapid_keys: Provider[VapidKeys] = field(default=_missing("postgres"))
    #: The bulk location feed's keys (issue 20).
    integration_keys: Provider[IntegrationKeys] = field(default=_missing("postgres"))


#: A coroutine factory run for the app's lifetime.
Background = Callable[[], Awaitable[None]]
