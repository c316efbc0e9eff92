"""Every REST call of the API as a pure description: what to send, how to read
the answer. :class:`~panic_alert_client.AsyncClient` and
:class:`~panic_alert_client.Client` are thin shells that send a :class:`Call`
with their own httpx client and decode the answer with it, so both speak
exactly the same API (websockets' "pure core, thin I/O shells").
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import httpx

from panic_alert_client.errors import ApiError, ProtocolError, api_error
from panic_alert_client.models import (
    Account,
    Alert,
    ChatMessage,
    Contact,
    Invite,
    LocationAccepted,
    Page,
    RaisedAlert,
    RosterAgent,
    TimelineItem,
    Tokens,
    VettingResult,
    Zone,
)

T = TypeVar("T")
Id = UUID | str

#: Unset keyword arguments (distinct from an explicit None, which the API may read as "clear").
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and the reader of its successful answer."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    #: Sent with the bearer token (and retried once after a refresh on 401).
    auth: bool = True


def body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ProtocolError(f"{response.status_code} answer is not JSON") from exc


def error_of(response: httpx.Response) -> ApiError:
    """The :class:`ApiError` of an error answer (its body read as problem details)."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    return api_error(response.status_code, problem, response.headers.get("Retry-After"))


def _reader(model: Callable[[object], T]) -> Callable[[httpx.Response], T]:
    return lambda response: model(body(response))


def _page(item: Callable[[object], T]) -> Callable[[httpx.Response], Page[T]]:
    return lambda response: Page.read(body(response), item)


def _items(item: Callable[[object], T]) -> Callable[[httpx.Response], tuple[T, ...]]:
    return lambda response: Page.read(body(response), item).items


def _nothing(response: httpx.Response) -> None:
    return None


def _query(**values: object) -> dict[str, str]:
    """Query parameters, None left out, times as RFC 3339, booleans as JSON does."""
    query = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            query[key] = value.isoformat()
        elif isinstance(value, bool):
            query[key] = "true" if value else "false"
        else:
            query[key] = str(value)
    return query


def _given(**values: object) -> dict[str, object]:
    """A JSON body of the arguments the caller gave (UNSET left out; None kept)."""
    return {k: v for k, v in values.items() if v is not UNSET}


def _optional(**values: object) -> dict[str, object]:
    """A JSON body without the None members."""
    return {k: v for k, v in values.items() if v is not None}


# --- auth ---------------------------------------------------------------------------


def register_user(email: str, password: str, full_name: str, phone: str | None) -> Call[Account]:
    payload = _optional(email=email, password=password, full_name=full_name, phone=phone)
    return Call("POST", "/auth/register/user", _reader(Account.from_json), payload, auth=False)


def register_agent(
    email: str,
    password: str,
    full_name: str,
    phone: str | None,
    badge_number: str | None,
    invite_code: str | None,
) -> Call[Account]:
    payload = _optional(
        email=email,
        password=password,
        full_name=full_name,
        phone=phone,
        badge_number=badge_number,
        invite_code=invite_code,
    )
    return Call("POST", "/auth/register/agent", _reader(Account.from_json), payload, auth=False)


def login(
    role: str, email: str, password: str, totp_code: str | None, recovery_code: str | None
) -> Call[Tokens]:
    """``role`` ``user`` (users and admins) or ``agent``."""
    payload = _optional(
        email=email, password=password, totp_code=totp_code, recovery_code=recovery_code
    )
    return Call("POST", f"/auth/login/{role}", _reader(Tokens.from_json), payload, auth=False)


def refresh(refresh_token: str) -> Call[Tokens]:
    payload = {"refresh_token": refresh_token}
    return Call("POST", "/auth/refresh", _reader(Tokens.from_json), payload, auth=False)


def logout(refresh_token: str | None) -> Call[None]:
    return Call("POST", "/auth/logout", _nothing, _optional(refresh_token=refresh_token))


def me() -> Call[Account]:
    return Call("GET", "/auth/me", _reader(Account.from_json))


# --- users --------------------------------------------------------------------------


def get_profile() -> Call[Account]:
    return Call("GET", "/users/profile", _reader(Account.from_json))


def update_profile(
    full_name: str, phone: str | None, cancel_pin: Any, duress_pin: Any, password: Any
) -> Call[Account]:
    payload = _given(
        full_name=full_name,
        phone=phone,
        cancel_pin=cancel_pin,
        duress_pin=duress_pin,
        password=password,
    )
    return Call("PUT", "/users/profile", _reader(Account.from_json), payload)


def _contact(
    name: str,
    notify_via: Sequence[str],
    phone: str | None,
    email: str | None,
    relationship: str | None,
) -> dict[str, object]:
    return {
        "name": name,
        "notify_via": list(notify_via),
        "phone": phone,
        "email": email,
        "relationship": relationship,
    }


def list_contacts() -> Call[tuple[Contact, ...]]:
    return Call("GET", "/users/emergency-contacts", _items(Contact.from_json))


def add_contact(
    name: str,
    notify_via: Sequence[str],
    phone: str | None,
    email: str | None,
    relationship: str | None,
) -> Call[Contact]:
    payload = _contact(name, notify_via, phone, email, relationship)
    return Call("POST", "/users/emergency-contacts", _reader(Contact.from_json), payload)


def get_contact(contact_id: Id) -> Call[Contact]:
    return Call("GET", f"/users/emergency-contacts/{contact_id}", _reader(Contact.from_json))


def update_contact(
    contact_id: Id,
    name: str,
    notify_via: Sequence[str],
    phone: str | None,
    email: str | None,
    relationship: str | None,
) -> Call[Contact]:
    payload = _contact(name, notify_via, phone, email, relationship)
    path = f"/users/emergency-contacts/{contact_id}"
    return Call("PUT", path, _reader(Contact.from_json), payload)


def delete_contact(contact_id: Id) -> Call[None]:
    return Call("DELETE", f"/users/emergency-contacts/{contact_id}", _nothing)


# --- alerts -------------------------------------------------------------------------


def raise_alert(
    latitude: float,
    longitude: float,
    alert_type: str,
    accuracy_m: float | None,
    description: str | None,
    silent: bool,
    idempotency_key: str | None,
) -> Call[RaisedAlert]:
    """``POST /alerts`` with an ``Idempotency-Key`` always (a fresh uuid4 when none
    is given), so sending the same :class:`Call` again is safe: the server
    answers with the same alert."""
    key = idempotency_key or str(_uuid.uuid4())
    payload = _optional(
        latitude=latitude,
        longitude=longitude,
        alert_type=alert_type,
        accuracy_m=accuracy_m,
        description=description,
    )
    payload["silent"] = silent

    def decode(response: httpx.Response) -> RaisedAlert:
        return RaisedAlert(
            Alert.from_json(body(response)),
            key,
            replayed=response.headers.get("Idempotent-Replayed") == "true",
            already_open=response.headers.get("Alert-Already-Open") == "true",
        )

    return Call("POST", "/alerts", decode, payload, headers={"Idempotency-Key": key})


def alerts_page(
    status: str | None,
    alert_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    cursor: str | None,
) -> Call[Page[Alert]]:
    query = _query(
        status=status, alert_type=alert_type, since=since, until=until, limit=limit, cursor=cursor
    )
    return Call("GET", "/alerts", _page(Alert.from_json), params=query)


def get_alert(alert_id: Id) -> Call[Alert]:
    return Call("GET", f"/alerts/{alert_id}", _reader(Alert.from_json))


def set_status(alert_id: Id, status: str, note: str | None, pin: str | None) -> Call[Alert]:
    payload = _optional(status=status, note=note, pin=pin)
    return Call("PUT", f"/alerts/{alert_id}/status", _reader(Alert.from_json), payload)


def assign(alert_id: Id, agent_id: Id) -> Call[Alert]:
    payload = {"agent_id": str(agent_id)}
    return Call("POST", f"/alerts/{alert_id}/assign", _reader(Alert.from_json), payload)


def timeline(alert_id: Id) -> Call[tuple[TimelineItem, ...]]:
    return Call("GET", f"/alerts/{alert_id}/timeline", _items(TimelineItem.from_json))


def messages(alert_id: Id) -> Call[tuple[ChatMessage, ...]]:
    return Call("GET", f"/alerts/{alert_id}/messages", _items(ChatMessage.from_json))


def post_message(alert_id: Id, text: str) -> Call[ChatMessage]:
    payload = {"text": text}
    return Call("POST", f"/alerts/{alert_id}/messages", _reader(ChatMessage.from_json), payload)


# --- geofencing ---------------------------------------------------------------------


def post_location(
    latitude: float,
    longitude: float,
    accuracy_m: float | None,
    heading: float | None,
    speed_mps: float | None,
    recorded_at: datetime | None,
) -> Call[LocationAccepted]:
    payload = _optional(
        latitude=latitude,
        longitude=longitude,
        accuracy_m=accuracy_m,
        heading=heading,
        speed_mps=speed_mps,
        recorded_at=recorded_at.isoformat() if recorded_at is not None else None,
    )
    return Call("POST", "/geofencing/location", _reader(LocationAccepted.from_json), payload)


def zones_page(
    kind: str | None, active: bool | None, limit: int | None, cursor: str | None
) -> Call[Page[Zone]]:
    query = _query(kind=kind, active=active, limit=limit, cursor=cursor)
    return Call("GET", "/geofencing/zones", _page(Zone.from_json), params=query)


def create_zone(
    name: str,
    kind: str,
    geometry: Mapping[str, Any],
    radius_m: float | None,
    rules: Mapping[str, Any] | None,
    active: bool,
) -> Call[Zone]:
    payload = _optional(
        name=name,
        kind=kind,
        geometry=dict(geometry),
        radius_m=radius_m,
        rules=dict(rules) if rules is not None else None,
    )
    payload["active"] = active
    return Call("POST", "/geofencing/zones", _reader(Zone.from_json), payload)


# --- admin --------------------------------------------------------------------------


def agents_page(
    status: str | None, limit: int | None, cursor: str | None
) -> Call[Page[RosterAgent]]:
    query = _query(status=status, limit=limit, cursor=cursor)
    return Call("GET", "/admin/agents", _page(RosterAgent.from_json), params=query)


def approve_agent(agent_id: Id, reason: str | None) -> Call[VettingResult]:
    path = f"/admin/agents/{agent_id}/approve"
    return Call("POST", path, _reader(VettingResult.from_json), _optional(reason=reason))


def suspend_agent(agent_id: Id, reason: str) -> Call[VettingResult]:
    path = f"/admin/agents/{agent_id}/suspend"
    return Call("POST", path, _reader(VettingResult.from_json), {"reason": reason})


def create_invite(expires_in_s: int | None) -> Call[Invite]:
    payload = _optional(expires_in_s=expires_in_s)
    return Call("POST", "/admin/agent-invites", _reader(Invite.from_json), payload)
