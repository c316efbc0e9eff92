"""Every FastAPI dependency of the gateway, as ``Annotated`` aliases.

Route modules import these aliases and nothing else to reach settings,
ports and the caller's identity::

    async def get_alert(alert_id: UUID, principal: CurrentPrincipal, alerts: AlertsDep) -> ...

Ports come from the app's :class:`~gateway.state.GatewayState` (built by
the composition root, ``panic_alert.gateway_root``). A port whose service is
not connected makes its dependency raise ``ServiceUnavailable``, which
``gateway.errors`` renders as 503 problem details; routes never check
connectivity themselves.

Authentication: ``CurrentPrincipal`` accepts any valid, active session;
``UserPrincipal``, ``AgentPrincipal`` and ``AdminPrincipal`` also require the
role. Failures are 401 (missing, invalid, expired or revoked token; with
``WWW-Authenticate: Bearer``) or 403 (authenticated, wrong role), as problem
details. ``IntegrationPrincipal`` accepts only an active integration key
(``gateway.auth.integration_keys``) and nothing else, and no other alias
accepts a key (it is not a JWT): a key feeds locations and reaches nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException
from starlette.requests import HTTPConnection

from actors.store_errors import PersistenceError, ServiceUnavailable
from cluster.client import EntityClient
from cluster.errors import ClusterUnavailable
from config.settings import Settings
from gateway.alert_press import PressLocks
from gateway.auth.integration_keys import Integration, matches, needs_touch, parse_key
from gateway.auth.passwords import PasswordHasher
from gateway.auth.pins import PinChecker
from gateway.auth.principal import Principal, Role
from gateway.auth.tokens import InvalidToken, verify_access_token
from gateway.metrics import HttpMetrics
from gateway.ports import (
    Accounts,
    AdminTotp,
    AgentVetting,
    AgentWithdrawal,
    AlertNotifications,
    AlertReads,
    Analytics,
    Contacts,
    Devices,
    Fleet,
    GatewayPorts,
    GeofenceEvents,
    IntegrationKeys,
    LoginFailures,
    OpenAlerts,
    PinFailures,
    PressMutex,
    RateCounters,
    RefreshTokens,
    SessionCheck,
    Sessions,
    VapidKeys,
    Zones,
)
from gateway.problems import ProblemHTTPException, problem_type
from gateway.readiness import BackendSet
from gateway.state import gateway_state
from gateway.vetting import EntityWithdrawal
from media.ports import MediaRecords, MediaUploads
from media.vault import Vault

log = logging.getLogger(__name__)


def get_settings(connection: HTTPConnection) -> Settings:
    return gateway_state(connection).settings


def get_backends(connection: HTTPConnection) -> BackendSet:
    return gateway_state(connection).backends


def get_metrics(connection: HTTPConnection) -> HttpMetrics:
    return gateway_state(connection).metrics


def get_ports(connection: HTTPConnection) -> GatewayPorts:
    return gateway_state(connection).ports


def get_hasher(connection: HTTPConnection) -> PasswordHasher:
    return gateway_state(connection).hasher


def get_accounts(connection: HTTPConnection) -> Accounts:
    return get_ports(connection).accounts()


def get_pin_failures(connection: HTTPConnection) -> PinFailures:
    return get_ports(connection).pin_failures()


def get_pin_checker(connection: HTTPConnection) -> PinChecker:
    return gateway_state(connection).pins


def get_contacts(connection: HTTPConnection) -> Contacts:
    return get_ports(connection).contacts()


def get_refresh_tokens(connection: HTTPConnection) -> RefreshTokens:
    return get_ports(connection).refresh_tokens()


def get_alerts(connection: HTTPConnection) -> AlertReads:
    return get_ports(connection).alerts()


def get_zones(connection: HTTPConnection) -> Zones:
    return get_ports(connection).zones()


def get_geofence_events(connection: HTTPConnection) -> GeofenceEvents:
    return get_ports(connection).geofence_events()


def get_sessions(connection: HTTPConnection) -> Sessions:
    return get_ports(connection).sessions()


def get_rate_counters(connection: HTTPConnection) -> RateCounters:
    return get_ports(connection).rate_counters()


def get_press_mutex(connection: HTTPConnection) -> PressMutex | None:
    return get_ports(connection).press_mutex()


def get_login_failures(connection: HTTPConnection) -> LoginFailures:
    return get_ports(connection).login_failures()


def get_admin_totp(connection: HTTPConnection) -> AdminTotp:
    return get_ports(connection).admin_totp()


def get_agent_vetting(connection: HTTPConnection) -> AgentVetting:
    return get_ports(connection).agent_vetting()


def get_devices(connection: HTTPConnection) -> Devices:
    return get_ports(connection).devices()


def get_vapid_keys(connection: HTTPConnection) -> VapidKeys:
    return get_ports(connection).vapid_keys()


def get_integration_keys(connection: HTTPConnection) -> IntegrationKeys:
    return get_ports(connection).integration_keys()


def get_fleet(connection: HTTPConnection) -> Fleet:
    return get_ports(connection).fleet()


def get_agent_withdrawal(connection: HTTPConnection) -> AgentWithdrawal:
    return EntityWithdrawal(get_entities(connection), get_ports(connection).open_alerts())


def get_open_alerts(connection: HTTPConnection) -> OpenAlerts:
    return get_ports(connection).open_alerts()


def get_presses(connection: HTTPConnection) -> PressLocks:
    return gateway_state(connection).presses


def get_media_records(connection: HTTPConnection) -> MediaRecords:
    return gateway_state(connection).ports.media_records()


def get_media_uploads(connection: HTTPConnection) -> MediaUploads:
    return gateway_state(connection).ports.media_uploads()


def get_vault(connection: HTTPConnection) -> Vault:
    state = gateway_state(connection)
    keys = state.media_keys
    if keys is None:
        raise ServiceUnavailable("objects", "no media keys in this process")
    return Vault(state.ports.media_objects(), keys)


def get_analytics(connection: HTTPConnection) -> Analytics:
    return get_ports(connection).analytics()


def get_alert_notifications(connection: HTTPConnection) -> AlertNotifications:
    return get_ports(connection).alert_notifications()


def get_entities(connection: HTTPConnection) -> EntityClient:
    entities = gateway_state(connection).entities
    if entities is None:
        raise ClusterUnavailable("this process runs without the entity actors (no Ray)")
    return entities


T = TypeVar("T")


def inline(getter: Callable[[HTTPConnection], T]) -> Callable[[HTTPConnection], Awaitable[T]]:
    """``getter`` as an async dependency.

    FastAPI runs every plain ``def`` dependency in a worker thread; these
    getters only read app state, so the thread hop per dependency per request
    was pure overhead (several percent of the gateway's CPU under load).
    """

    async def dependency(connection: HTTPConnection) -> T:
        return getter(connection)

    dependency.__name__ = getter.__name__
    return dependency


SettingsDep = Annotated[Settings, Depends(inline(get_settings))]
BackendsDep = Annotated[BackendSet, Depends(inline(get_backends))]
MetricsDep = Annotated[HttpMetrics, Depends(inline(get_metrics))]
HasherDep = Annotated[PasswordHasher, Depends(inline(get_hasher))]
AccountsDep = Annotated[Accounts, Depends(inline(get_accounts))]
ContactsDep = Annotated[Contacts, Depends(inline(get_contacts))]
PinFailuresDep = Annotated[PinFailures, Depends(inline(get_pin_failures))]
PinCheckerDep = Annotated[PinChecker, Depends(inline(get_pin_checker))]
RefreshTokensDep = Annotated[RefreshTokens, Depends(inline(get_refresh_tokens))]
AlertsDep = Annotated[AlertReads, Depends(inline(get_alerts))]
ZonesDep = Annotated[Zones, Depends(inline(get_zones))]
GeofenceEventsDep = Annotated[GeofenceEvents, Depends(inline(get_geofence_events))]
SessionsDep = Annotated[Sessions, Depends(inline(get_sessions))]
RateCountersDep = Annotated[RateCounters, Depends(inline(get_rate_counters))]
PressMutexDep = Annotated[PressMutex | None, Depends(inline(get_press_mutex))]
LoginFailuresDep = Annotated[LoginFailures, Depends(inline(get_login_failures))]
AdminTotpDep = Annotated[AdminTotp, Depends(inline(get_admin_totp))]
AgentVettingDep = Annotated[AgentVetting, Depends(inline(get_agent_vetting))]
FleetDep = Annotated[Fleet, Depends(inline(get_fleet))]
AgentWithdrawalDep = Annotated[AgentWithdrawal, Depends(inline(get_agent_withdrawal))]
EntitiesDep = Annotated[EntityClient, Depends(inline(get_entities))]
OpenAlertsDep = Annotated[OpenAlerts, Depends(inline(get_open_alerts))]
PressLocksDep = Annotated[PressLocks, Depends(inline(get_presses))]
MediaRecordsDep = Annotated[MediaRecords, Depends(inline(get_media_records))]
VaultDep = Annotated[Vault, Depends(inline(get_vault))]
MediaUploadsDep = Annotated[MediaUploads, Depends(inline(get_media_uploads))]
AnalyticsDep = Annotated[Analytics, Depends(inline(get_analytics))]
AlertNotificationsDep = Annotated[AlertNotifications, Depends(inline(get_alert_notifications))]
DevicesDep = Annotated[Devices, Depends(inline(get_devices))]
VapidKeysDep = Annotated[VapidKeys, Depends(inline(get_vapid_keys))]
IntegrationKeysDep = Annotated[IntegrationKeys, Depends(inline(get_integration_keys))]


# --- authentication -----------------------------------------------------------------

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=_CHALLENGE)


async def authenticate(settings: Settings, sessions: Sessions, token: str) -> Principal:
    """The principal of an access token whose session is still active.

    Raises a 401 ``HTTPException``.
    """
    principal, _ = verify_token(settings, token)
    await require_active(sessions, principal)
    return principal


def verify_token(settings: Settings, token: str) -> tuple[Principal, datetime]:
    """The principal of a well-signed, unexpired access token, and its expiry
    (no I/O; the session may have ended: :func:`require_active`). Raises a 401."""
    try:
        return verify_access_token(settings.auth, token)
    except InvalidToken:
        raise unauthorized("invalid or expired token") from None


async def require_active(sessions: SessionCheck, principal: Principal) -> None:
    """Raises a 401 unless the principal's session is still active."""
    if not await sessions.is_active(principal.role.value, principal.id, principal.session_id):
        raise unauthorized("session has ended")


def bearer_token(connection: HTTPConnection) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("missing bearer token")
    return token.strip()


def enrolment_required() -> ProblemHTTPException:
    return ProblemHTTPException(
        403,
        title="Second factor required",
        detail=(
            "This administrator must enrol a second factor (POST /auth/totp/enrolment) "
            "before anything else."
        ),
        type_=problem_type("totp-enrolment-required"),
    )


async def session_principal(
    connection: HTTPConnection, settings: SettingsDep, sessions: SessionsDep
) -> Principal:
    return await authenticate(settings, sessions, bearer_token(connection))


#: Any active session, an enrolment-only one too (``/auth/totp/*``, ``/auth/me``, logout).
SessionPrincipal = Annotated[Principal, Depends(session_principal)]


async def current_principal(principal: SessionPrincipal) -> Principal:
    """An active session that may do more than enrol a second factor (403 otherwise)."""
    if principal.enrolment_only:
        raise enrolment_required()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(*roles: Role) -> object:
    """A dependency accepting only principals with one of ``roles`` (403 otherwise)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status_code=403, detail="not allowed for this role")
        return principal

    return Depends(check)


UserPrincipal = Annotated[Principal, require_role(Role.USER)]
AgentPrincipal = Annotated[Principal, require_role(Role.AGENT)]
AdminPrincipal = Annotated[Principal, require_role(Role.ADMIN)]


async def enrolling_admin(principal: SessionPrincipal) -> Principal:
    if principal.role is not Role.ADMIN:
        raise HTTPException(status_code=403, detail="not allowed for this role")
    return principal


#: An administrator, enrolment-only sessions included (``/auth/totp/*``).
EnrollingAdmin = Annotated[Principal, Depends(enrolling_admin)]


# --- the bulk location feed's principal (issue 20) ------------------------------------

_BAD_KEY = "invalid or revoked integration key"


async def authenticate_integration(keys: IntegrationKeys, token: str) -> Integration:
    """The integration an active key names.

    Raises a 401 (``WWW-Authenticate: Bearer``) for a malformed, unknown,
    wrong-secret or revoked key, all alike; a store outage propagates as the
    port's ``ServiceUnavailable`` (``gateway.errors``: 503 problem details). Refreshes
    the key's ``last_used_at`` at most once per ``TOUCH_INTERVAL``, best effort
    (a failed refresh is logged and the key still authenticates). One read
    per call: revocation takes effect on the next call.
    """
    parsed = parse_key(token)
    if parsed is None:
        raise unauthorized(_BAD_KEY)
    key_id, secret = parsed
    row = await keys.find(key_id)
    if row is None or row.revoked_at is not None or not matches(row.secret_sha256, secret):
        raise unauthorized(_BAD_KEY)
    if needs_touch(row.last_used_at, datetime.now(UTC)):
        try:
            await keys.touch(key_id)
        except PersistenceError as exc:
            log.warning("integration key %s: last_used_at not refreshed: %s", key_id, exc)
    return Integration(row.id, row.name)


async def integration_principal(
    connection: HTTPConnection, keys: IntegrationKeysDep
) -> Integration:
    return await authenticate_integration(keys, bearer_token(connection))


#: An active integration key (``Authorization: Bearer pak_…``); nothing else is accepted.
IntegrationPrincipal = Annotated[Integration, Depends(integration_principal)]
