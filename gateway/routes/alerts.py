"""``/alerts``: raise, list, read, progress and assign alerts (API.md, Alerts).

Writes go to the alert's entity (``AlertActor``) through the cluster client;
an ``ask`` returns only after the transition's snapshot, its ``alerts`` row
and its outbox events are committed, so a 201/200 here means durable.
Reads come from the committed snapshots and their ``alerts`` projection
(the ``AlertReads`` port, ``gateway.ports``).

Who may read which alert, and how much of it, is ``AlertState.access``
(``actors.alert_state``), applied to every alert shown: its user and admins
read it all, as does its assigned agent (now or once); an agent holding a
pending offer reads it as the offer tells it (coarse position, no description,
notes or user name); anyone else, an agent whose offer was declined, expired
or revoked among them, is answered 404 exactly as for a missing alert, so its
existence is never revealed. This is checked *before* any write is asked of
the entity.

Idempotency of ``POST /alerts``: with an ``Idempotency-Key`` header the alert
id is ``uuid5(IDEMPOTENCY_NAMESPACE, "<user id>/<key>")``, so every retry
reaches the same entity. The same key with the same body answers 201 with the
alert as it is now and ``Idempotent-Replayed: true`` (and does not dispatch
again); the same key with a different body is 409. Keys are per user.

One open alert per user (``gateway.alert_press``): a press while one is open
answers 201 with that alert and ``Alert-Already-Open: true``; the create rate
limit applies only when none is open. Reads and status changes are rate
limited per caller (``settings.rate_limit``; 429 with ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final
from uuid import UUID, uuid4, uuid5

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
)

from actors.alert import decide
from actors.alert_messages import (
    Assign,
    Cancel,
    CreateAlert,
    Duress,
    PinRefused,
    Replayed,
    UpdateStatus,
)
from actors.alert_state import (
    ActorRole,
    AlertAccess,
    AlertState,
    AlertStatus,
    AlertType,
    TimelineEntry,
)
from actors.effects import EntityKind
from actors.store_errors import InvalidCursor, PersistenceError
from cluster.client import EntityClient
from config.settings import PinSettings, Settings
from gateway.alert_press import (
    ALREADY_OPEN_HEADER,
    Press,
    decode_snapshots,
    needs_limit,
    open_alert,
    press_verdict,
)
from gateway.auth.pins import CancelVerdict, PinChecker, PinMatch, cancel_verdict
from gateway.auth.principal import Principal, Role
from gateway.deps import (
    AccountsDep,
    AdminPrincipal,
    AgentVettingDep,
    AlertsDep,
    CurrentPrincipal,
    EntitiesDep,
    FleetDep,
    OpenAlertsDep,
    PinCheckerDep,
    PinFailuresDep,
    PressLocksDep,
    PressMutexDep,
    RateCountersDep,
    SettingsDep,
    UserPrincipal,
)
from gateway.fields import PLAIN_TEXT, Latitude, Longitude, PlaceAccuracy
from gateway.fleet import ranked
from gateway.paging import CursorParam, Limit
from gateway.ports import Accounts, AlertReads, OpenAlerts, PinFailures, RateCounters, Vetting
from gateway.problems import ProblemHTTPException, invalid
from gateway.ratelimit import Decision, hit, identifier, rate_limit, too_many
from geo.coarse import COARSE_PRECISION_M

log = logging.getLogger(__name__)

router = APIRouter(prefix="/alerts", tags=["alerts"])

#: Per caller; reads per endpoint (issue 16: /alerts had no rate limit).
_read_limit = Depends(
    rate_limit("alerts:read", key="principal", rule="alerts_read_per_principal", per_route=True)
)
_status_limit = Depends(
    rate_limit("alerts:status", key="principal", rule="alerts_status_per_principal")
)
#: The create limit's scope; counted in ``create_alert`` (never while an alert is open).
_CREATE_SCOPE = "alerts:create"

#: Fixed namespace of idempotent alert ids; changing it breaks retries in flight.
IDEMPOTENCY_NAMESPACE: Final = UUID("5b0f3c8e-61a4-4d4e-9a57-2f8f0d1c7a11")
#: Idempotency keys: 1-128 characters of a URL- and log-safe set.
IDEMPOTENCY_KEY_PATTERN: Final = r"^[A-Za-z0-9_.:~-]{1,128}$"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
MAX_DESCRIPTION = 2000
MAX_NOTE = 1000


def alert_id_for(user_id: UUID, key: str) -> UUID:
    """The alert id an ``Idempotency-Key`` maps to; deterministic and per user."""
    return uuid5(IDEMPOTENCY_NAMESPACE, f"{user_id}/{key}")


# --- schemas ----------------------------------------------------------------------

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                },
            },
        },
    },
}

_DESCRIPTIONS = {
    401: "Missing, invalid or expired token.",
    403: "Authenticated, but the role may not do this.",
    404: "No such alert (or not one the caller may see); on assign, also no such agent.",
    409: "Invalid state transition, or an Idempotency-Key reused with another body.",
    422: "Malformed body, query, header or path; out-of-range value; unknown enum.",
    429: "Rate limited; retry after the `Retry-After` header's seconds. `POST /alerts` is "
    "never refused while the user has an open alert.",
    503: "A backing service or the entity actors did not answer; see Retry-After.",
}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}},
            **({"headers": _RETRY_AFTER} if status == 429 else {}),
        }
        for status in statuses
    }


class AlertCreate(BaseModel):
    """Body of ``POST /alerts``."""

    model_config = ConfigDict(extra="forbid")

    latitude: Latitude
    longitude: Longitude
    accuracy_m: PlaceAccuracy | None = None
    alert_type: AlertType
    description: Annotated[StrictStr, Field(max_length=MAX_DESCRIPTION), PLAIN_TEXT] | None = None
    silent: StrictBool = False


class AlertOut(BaseModel):
    """An alert as every ``/alerts`` answer shows it.

    An agent only offered the alert (not yet assigned) is shown it as the offer
    tells it: ``latitude``/``longitude`` coarse (``position_precision_m`` set),
    ``description`` and ``accuracy_m`` null, ``user_name`` null.
    """

    id: UUID
    status: AlertStatus
    alert_type: AlertType
    latitude: float = Field(
        description="Exact, or coarse when `position_precision_m` is set (an offered agent)."
    )
    longitude: float = Field(
        description="Exact, or coarse when `position_precision_m` is set (an offered agent)."
    )
    accuracy_m: float | None = Field(description="The fix's accuracy; null in a coarse view.")
    description: str | None = Field(
        description="The user's own words; null for an agent not (yet) assigned the alert."
    )
    silent: bool
    user_id: UUID
    created_at: datetime
    updated_at: datetime
    assigned_agent_id: UUID | None
    position_precision_m: float | None = Field(
        default=None,
        description="Set when the position is coarse (an agent holding an offer): the exact "
        "point lies within this many metres of `latitude`/`longitude`. Null when exact.",
    )
    user_name: str | None = Field(
        default=None,
        description="The user's full name: on `GET /alerts/{id}` for the alert's assigned "
        "agent and for admins; null otherwise.",
    )
    duress: bool | None = Field(
        default=None,
        description="Admins only (null for everyone else): the alert's user cancelled with "
        "the duress PIN, or ran past the PIN attempts; its user is shown a plain cancel.",
    )
    escalation_step: int | None = Field(
        default=None, description="Admins only: escalation steps run so far."
    )
    offered_at: datetime | None = Field(
        default=None,
        description="Admins only: when the latest offer was made (null: never offered).",
    )

    @classmethod
    def of(
        cls,
        alert: AlertState,
        *,
        position_precision_m: float | None = None,
        user_name: str | None = None,
        admin: bool = False,
    ) -> AlertOut:
        """``admin``: with the admins' fields (``AlertState.admin_view``)."""
        return cls(
            duress=alert.duress if admin else None,
            escalation_step=alert.escalation_step if admin else None,
            offered_at=alert.offered_at if admin else None,
            id=alert.id,
            status=alert.status,
            alert_type=alert.alert_type,
            latitude=alert.latitude,
            longitude=alert.longitude,
            accuracy_m=alert.accuracy_m,
            description=alert.description,
            silent=alert.silent,
            user_id=alert.user_id,
            created_at=alert.created_at,
            updated_at=alert.updated_at,
            assigned_agent_id=alert.assigned_agent_id,
            position_precision_m=position_precision_m,
            user_name=user_name,
        )


class AlertPageOut(BaseModel):
    items: list[AlertOut]
    #: Pass as ``cursor`` for the next page; null on the last page.
    next_cursor: str | None


PinText = Annotated[StrictStr, Field(min_length=1, max_length=64), PLAIN_TEXT]


class StatusUpdate(BaseModel):
    """Body of ``PUT /alerts/{id}/status``.

    ``pin`` matters when the alert's own user cancels: with PINs set in the
    profile it must be one (403 otherwise, also past the attempt limit); the
    duress PIN "cancels" under duress (see ``update_status``). Anyone else's
    ``pin`` is ignored.
    """

    model_config = ConfigDict(extra="forbid")

    status: AlertStatus
    note: Annotated[StrictStr, Field(max_length=MAX_NOTE), PLAIN_TEXT] | None = None
    pin: Annotated[StrictStr, Field(min_length=1, max_length=64), PLAIN_TEXT] | None = Field(
        default=None,
        description="The user's cancel (or duress) PIN, when they cancel their own alert "
        "and have PINs set. Wrong, missing, or past the attempt limit "
        "(`PANIC_PINS__MAX_FAILURES` per `PANIC_PINS__WINDOW_S`, per user and per alert): "
        "403, always alike; past the limit no PIN cancels and responders are alerted.",
    )


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: UUID


class TimelineItem(BaseModel):
    at: datetime
    type: str
    actor_id: UUID | None
    data: dict[str, Any]

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineItem:
        return cls(at=entry.at, type=entry.type, actor_id=entry.actor_id, data=dict(entry.data))


class TimelineOut(BaseModel):
    items: list[TimelineItem]


class CandidateOut(BaseModel):
    """A responder the alert could be assigned to, with its distance to the alert."""

    agent_id: UUID
    full_name: str
    badge_number: str | None
    status: str = Field(description="duty status: available, busy, on_break or offline")
    available: bool = Field(description="`status` is `available`")
    distance_m: float = Field(description="great-circle metres from the alert, to 0.1 m")
    latitude: float
    longitude: float
    last_seen_at: datetime | None = Field(
        description="the agent's newest sign of life: its last fix or heartbeat"
    )


class CandidatesOut(BaseModel):
    items: list[CandidateOut] = Field(description="nearest first")


#: ``GET /alerts/{id}/candidates``: how many by default, and at most.
CANDIDATES_DEFAULT = 10
CANDIDATES_MAX = 50


# --- helpers ----------------------------------------------------------------------


def _role(principal: Principal) -> ActorRole:
    return ActorRole(principal.role.value)


def _not_found() -> ProblemHTTPException:
    return ProblemHTTPException(404, detail="alert not found")


def _now() -> datetime:
    return datetime.now(UTC)


async def _readable(
    alerts: AlertReads, alert_id: UUID, principal: Principal
) -> tuple[AlertState, AlertAccess]:
    """The committed alert and how much of it the caller may read; 404 when
    nothing (never 403: the alert's existence is not confirmed)."""
    state = await alerts.load_alert(alert_id)
    if state is None:
        raise _not_found()
    access = state.access(principal.id, _role(principal), _now())
    if access is AlertAccess.NONE:
        raise _not_found()
    return state, access


async def _ask_alert(entities: EntityClient, alert_id: UUID, message: object) -> AlertState:
    reply = await entities.ask(EntityKind.ALERT, str(alert_id), message)
    if not isinstance(reply, AlertState):
        raise TypeError(f"alert {alert_id} replied with {type(reply).__name__}")
    return reply


def _is_owner(state: AlertState, principal: Principal) -> bool:
    return principal.role is Role.USER and principal.id == state.user_id


def _seen(state: AlertState, access: AlertAccess, principal: Principal) -> AlertState:
    """The alert as the caller is shown it: coarse for an agent only offered it;
    for its user, without a duress (its user never learns of one)."""
    if access is AlertAccess.OFFER:
        return state.as_offer_holder_sees()
    return state.as_user_sees() if _is_owner(state, principal) else state


def _out(
    state: AlertState, access: AlertAccess, principal: Principal, user_name: str | None = None
) -> AlertOut:
    coarse = access is AlertAccess.OFFER
    return AlertOut.of(
        _seen(state, access, principal),
        position_precision_m=COARSE_PRECISION_M if coarse else None,
        user_name=None if coarse else user_name,
        admin=principal.role is Role.ADMIN,
    )


def _shown(state: AlertState, principal: Principal) -> AlertOut:
    """An alert the caller just wrote, as it is shown to them."""
    access = state.access(principal.id, _role(principal), _now())
    if access is AlertAccess.NONE:
        raise _not_found()
    return _out(state, access, principal)


async def _user_name(
    accounts: Accounts, state: AlertState, access: AlertAccess, principal: Principal
) -> str | None:
    """The user's name, for the assigned agent (now or once) and admins only."""
    if access is not AlertAccess.FULL or principal.role is Role.USER:
        return None
    account = await accounts.get_account(state.user_id)
    return None if account is None else account.full_name


async def _pin_cancel(
    state: AlertState,
    principal: Principal,
    body: StatusUpdate,
    *,
    accounts: Accounts,
    pins: PinChecker,
    failures: PinFailures,
    settings: PinSettings,
    entities: EntityClient,
) -> Cancel | Duress:
    """The user's own cancel of an alert they are shown open: the message for the
    entity, or 403 (``gateway.auth.pins``: a wrong PIN, or any PIN past the limit,
    is recorded and told to the alert, then answered the same way)."""
    hashes = await accounts.pin_hashes(principal.id)
    cancel = Cancel(actor_id=principal.id, note=body.note, actor_role=ActorRole.USER)
    if hashes.cancel is None and hashes.duress is None:
        return cancel
    now = _now()
    since = now - timedelta(seconds=settings.window_s)
    # Claimed before the check, so concurrent guesses cannot all count below the limit.
    attempt, by_user, by_alert = await failures.claim_attempt(principal.id, state.id, now, since)
    match = await pins.match(hashes, body.pin)
    if match is PinMatch.WRONG and hashes.cancel is None:
        match = PinMatch.CANCEL  # only a duress PIN set (before both were set together)
    verdict = cancel_verdict(
        match,
        prior_failures=max(by_user, by_alert) - 1,
        max_failures=settings.max_failures,
        locked=state.coerced_at is not None,
    )
    if verdict in (CancelVerdict.CANCEL, CancelVerdict.DURESS):
        await failures.release_attempt(attempt)
        if verdict is CancelVerdict.DURESS:
            return Duress(actor_id=principal.id, note=body.note)
        return cancel
    refused = PinRefused(actor_id=principal.id, over_limit=verdict is CancelVerdict.LOCKED)
    await _ask_alert(entities, state.id, refused)
    raise ProblemHTTPException(403, detail="a valid PIN is needed to cancel this alert")


async def _open_alert_of(open_alerts: OpenAlerts, user_id: UUID) -> AlertState | None:
    """The user's open alert; None when there is none or it cannot be read (a
    press then goes on to create: it is never refused for want of this read)."""
    try:
        return open_alert(decode_snapshots(await open_alerts.for_user(user_id)))
    except (PersistenceError, OSError) as exc:
        log.warning("alerts: cannot read the open alerts of %s (%s)", user_id, exc)
        return None


async def _create_counted(
    settings: Settings, counters: RateCounters, user_id: UUID
) -> Decision | None:
    """Count one create against the user's limit; None when limits are off or the
    counters cannot be reached (a press is never refused for want of them)."""
    limits = settings.rate_limit
    if not limits.enabled:
        return None
    key = identifier(limits.key_prefix, _CREATE_SCOPE, "principal", str(user_id))
    try:
        return await hit(counters, key, limits.alerts_create_per_principal)
    except (PersistenceError, OSError) as exc:
        log.warning("alerts: create limit not checked for %s (%s)", user_id, exc)
        return None


def _answer_as_shown(shown: AlertState, message: Cancel | UpdateStatus) -> AlertState:
    """What the entity would answer ``message`` if the alert were as its user is
    shown it (a duress "cancel": a cancelled alert; ``actors.alert_view``):
    the same error, raised here. Pure; the entity is not asked."""
    new, _ = decide(shown, message, _now())
    return new


def _request_hash(body: AlertCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise invalid(("query", name), "out of range") from None


# --- routes -----------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=AlertOut,
    summary="Raise an alert",
    responses={
        201: {
            "description": "The alert raised; or, while the user has an open alert, that "
            f"alert (with `{ALREADY_OPEN_HEADER}: true`): one open alert per user.",
            "headers": {
                ALREADY_OPEN_HEADER: {
                    "description": "`true` when the answer is the user's open alert, "
                    "not a new one (the body's fields are then that alert's).",
                    "schema": {"type": "string", "enum": ["true"]},
                },
                REPLAYED_HEADER: {
                    "description": "`true` when the answer is a retry of the same "
                    "`Idempotency-Key` and body.",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            },
        },
        **_problems(401, 403, 409, 422, 429, 503),
    },
)
async def create_alert(
    body: AlertCreate,
    principal: UserPrincipal,
    entities: EntitiesDep,
    open_alerts: OpenAlertsDep,
    presses: PressLocksDep,
    press_mutex: PressMutexDep,
    settings: SettingsDep,
    counters: RateCountersDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Makes retries safe: the same key and body return the same alert "
            f"(with `{REPLAYED_HEADER}: true`); the same key with another body is 409.",
        ),
    ] = None,
) -> AlertOut:
    """Answers 201 only after the alert is committed; its entity starts the dispatch
    (a search for the nearest available agents) right after that commit.

    One open alert per user: while one is open, a press answers 201 with it
    (``Alert-Already-Open: true``) and is never refused; 429 only when none is
    open and the user created more than ``alerts_create_per_principal`` alerts
    in its window. A retry of the open alert's own ``Idempotency-Key`` is a replay."""
    alert_id = alert_id_for(principal.id, idempotency_key) if idempotency_key else uuid4()
    # One press of a user at a time, in this process and across processes: a
    # double tap's second press finds the alert the first one raised.
    async with presses.held(principal.id, press_mutex):
        shown = await _open_alert_of(open_alerts, principal.id)
        has_open = shown is not None
        limit = None
        if needs_limit(has_open=has_open):
            limit = await _create_counted(settings, counters, principal.id)
        verdict = press_verdict(
            has_open=has_open,
            retry_of_open=shown is not None and shown.id == alert_id,
            within_limit=None if limit is None else limit.allowed,
        )
        if verdict is Press.SHOW_OPEN and shown is not None:
            response.headers["Location"] = f"/alerts/{shown.id}"
            response.headers[ALREADY_OPEN_HEADER] = "true"
            return _shown(shown, principal)
        if verdict is Press.REFUSE and limit is not None:
            raise too_many(limit)
        # The key is claimed in the alert's create commit: a retry is answered Replayed.
        reply = await entities.ask(
            EntityKind.ALERT,
            str(alert_id),
            CreateAlert(
                alert_id=alert_id,
                user_id=principal.id,
                alert_type=body.alert_type,
                latitude=body.latitude,
                longitude=body.longitude,
                accuracy_m=body.accuracy_m,
                description=body.description,
                silent=body.silent,
                idempotency_key=idempotency_key,
                request_hash=None if idempotency_key is None else _request_hash(body),
            ),
        )
        response.headers["Location"] = f"/alerts/{alert_id}"
        if isinstance(reply, Replayed):
            response.headers[REPLAYED_HEADER] = "true"
            reply = reply.state
        if not isinstance(reply, AlertState):
            raise TypeError(f"alert {alert_id} replied with {type(reply).__name__}")
        return _shown(reply, principal)


@router.get(
    "",
    response_model=AlertPageOut,
    summary="List the alerts the caller may see, newest first",
    responses=_problems(401, 422, 429, 503),
    dependencies=[_read_limit],
)
async def list_visible_alerts(
    principal: CurrentPrincipal,
    alerts: AlertsDep,
    status: AlertStatus | None = None,
    alert_type: AlertType | None = None,
    since: Annotated[
        AwareDatetime | None, Query(description="created at or after (RFC 3339)")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="created before (RFC 3339)")] = None,
    limit: Limit = 20,
    cursor: CursorParam = None,
) -> AlertPageOut:
    """Users see their own alerts, agents those assigned to them (now or once, in full)
    and those they hold a pending offer of (coarse, as the offer), admins all."""
    if cursor is not None:
        try:
            alerts.check_cursor(cursor)
        except InvalidCursor:
            raise invalid(("query", "cursor"), "not a cursor this API issued") from None
    since_utc, until_utc = _utc(since, "since"), _utc(until, "until")
    page = await alerts.list_alerts(
        principal.id,
        _role(principal),
        status=status,
        alert_type=alert_type,
        since=since_utc,
        until=until_utc,
        limit=limit,
        cursor=cursor,
    )
    now = _now()
    items = []
    for state in page.items:
        access = state.access(principal.id, _role(principal), now)
        if access is not AlertAccess.NONE:  # e.g. an offer past its expiry, not yet expired
            items.append(_out(state, access, principal))
    return AlertPageOut(items=items, next_cursor=page.next_cursor)


@router.get(
    "/{alert_id}",
    response_model=AlertOut,
    summary="One alert",
    responses=_problems(401, 404, 422, 429, 503),
    dependencies=[_read_limit],
)
async def get_alert(
    alert_id: UUID, principal: CurrentPrincipal, alerts: AlertsDep, accounts: AccountsDep
) -> AlertOut:
    """An agent holding a pending offer is shown it coarse (as the offer); its
    assigned agent and admins in full, with the user's name."""
    state, access = await _readable(alerts, alert_id, principal)
    return _out(state, access, principal, await _user_name(accounts, state, access, principal))


@router.put(
    "/{alert_id}/status",
    response_model=AlertOut,
    summary="Move an alert along its status graph",
    responses=_problems(401, 403, 404, 409, 422, 429, 503),
    dependencies=[_status_limit],
)
async def update_status(
    alert_id: UUID,
    body: StatusUpdate,
    principal: CurrentPrincipal,
    alerts: AlertsDep,
    accounts: AccountsDep,
    entities: EntitiesDep,
    pins: PinCheckerDep,
    failures: PinFailuresDep,
    settings: SettingsDep,
) -> AlertOut:
    """The assigned agent reports ``en_route``, ``on_scene``, ``resolved``; the alert's
    user or an admin may set ``cancelled``; admins may ask for any edge of the graph.

    An edge the graph does not allow is 409 (its detail names from and to).

    The user's own cancel of an alert they are shown open: with PINs set,
    ``pin`` must be one (403 otherwise, the same answer every time: a wrong
    PIN, none, or any PIN past ``settings.pins.max_failures`` refusals per
    user or per alert in ``window_s``; past the limit the alert is quietly
    escalated as possible coercion, and its timeline records each refusal for
    responders). PINs are not checked for an alert shown over: it answers 409.
    With the duress PIN the answer, and everything the user is shown of the
    alert from then on, is what a real cancel shows (``actors.alert_view``); in
    truth it is escalated to responders, marked duress, and the user's app
    hears no more.
    """
    state, _ = await _readable(alerts, alert_id, principal)
    role = _role(principal)
    message: Cancel | UpdateStatus | Duress
    if body.status is AlertStatus.CANCELLED:
        message = Cancel(actor_id=principal.id, note=body.note, actor_role=role)
    else:
        message = UpdateStatus(
            status=body.status, actor_id=principal.id, actor_role=role, note=body.note
        )
    if _is_owner(state, principal):
        shown = state.as_user_sees()
        if isinstance(message, Cancel) and not shown.is_terminal:
            # PINs are checked (argon2) only for an alert its user is shown open.
            message = await _pin_cancel(
                state,
                principal,
                body,
                accounts=accounts,
                pins=pins,
                failures=failures,
                settings=settings.pins,
                entities=entities,
            )
        elif state.duress:
            # Its user is not shown the truth: answer as what they are shown would.
            return _shown(_answer_as_shown(shown, message), principal)
    return _shown(await _ask_alert(entities, alert_id, message), principal)


@router.post(
    "/{alert_id}/assign",
    response_model=AlertOut,
    summary="Assign or reassign an alert to an agent directly (admin)",
    responses=_problems(401, 403, 404, 409, 422, 503),
)
async def assign_alert(
    alert_id: UUID,
    body: AssignIn,
    principal: AdminPrincipal,
    alerts: AlertsDep,
    vetting: AgentVettingDep,
    entities: EntitiesDep,
) -> AlertOut:
    """Overrides the offer flow. An alert another agent holds is reassigned:
    that agent hears ``assignment.revoked`` and the timeline records both
    steps (``unassigned``, ``assigned``). An alert that is over is 409.
    An agent not approved (pending or suspended: ``gateway.vetting``) is 409.

    404 names what is missing: the alert, or the agent (``agent_id`` that is
    not an agent account).
    """
    await _readable(alerts, alert_id, principal)
    vetted = await vetting.vetting_of(body.agent_id)
    if vetted is None:
        raise ProblemHTTPException(404, detail="agent not found")
    if vetted != Vetting.APPROVED:
        raise ProblemHTTPException(409, detail=f"the agent is {vetted}, not approved")
    message = Assign(agent_id=body.agent_id, by_admin_id=principal.id)
    return _shown(await _ask_alert(entities, alert_id, message), principal)


@router.get(
    "/{alert_id}/timeline",
    response_model=TimelineOut,
    summary="Every step of an alert, oldest first",
    responses=_problems(401, 404, 422, 429, 503),
    dependencies=[_read_limit],
)
async def get_timeline(
    alert_id: UUID, principal: CurrentPrincipal, alerts: AlertsDep
) -> TimelineOut:
    """An agent holding a pending offer is shown it without notes or reasons."""
    state, access = await _readable(alerts, alert_id, principal)
    seen = _seen(state, access, principal)
    return TimelineOut(items=[TimelineItem.of(e) for e in seen.timeline])


@router.get(
    "/{alert_id}/candidates",
    response_model=CandidatesOut,
    summary="Responders ranked by distance to an alert, to assign it (admin)",
    responses=_problems(401, 403, 404, 422, 503),
)
async def list_candidates(
    alert_id: UUID,
    principal: AdminPrincipal,
    alerts: AlertsDep,
    fleet: FleetDep,
    limit: Annotated[int, Query(ge=1, le=CANDIDATES_MAX)] = CANDIDATES_DEFAULT,
) -> CandidatesOut:
    """Approved agents with a known position, nearest first, whatever their duty
    status (an admin may assign a busy agent). Preselected by PostGIS KNN on
    ``agents.last_location`` (written coalesced, every
    ``actors.flush_interval_s``), then ranked on the freshest position
    (``persistence.stores.fleet``: Redis). 404 for an unknown alert."""
    state, _ = await _readable(alerts, alert_id, principal)
    rows = await fleet.nearest(state.latitude, state.longitude, limit)
    items = []
    for row, position, distance in ranked(rows, state.latitude, state.longitude, limit):
        seen = [t for t in (position.at, row.last_seen_at) if t is not None]
        items.append(
            CandidateOut(
                agent_id=row.agent_id,
                full_name=row.full_name,
                badge_number=row.badge_number,
                status=row.status,
                available=row.status == "available",
                distance_m=round(distance, 1),
                latitude=position.latitude,
                longitude=position.longitude,
                last_seen_at=max(seen) if seen else None,
            )
        )
    return CandidatesOut(items=items)
