"""The blocking client: :class:`Client`, a thin shell over ``httpx.Client``.

Every method builds its request with :mod:`panic_alert_client._calls` (shared
with :class:`~panic_alert_client.AsyncClient`, whose methods it mirrors one
for one) and sends it; it runs no event loop. An
authenticated call answered 401 is retried once after a refresh; refreshes
are serialized, so concurrent 401s spend the single-use refresh token once
(presenting a spent one would revoke the whole session). A refresh refused
is :class:`~panic_alert_client.errors.SessionEnded`: sign in again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from panic_alert_client import _calls as calls
from panic_alert_client._calls import UNSET, Call, Id
from panic_alert_client._session import (
    DEFAULT_TIMEOUT_S,
    SessionState,
    TokenListener,
    outcome,
    retry_after_refresh,
    session_ended,
    transport_error,
)
from panic_alert_client.errors import Unauthorized
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


class Client:
    """One app session against one server: ``with Client(url) as api: ...``.

    ``tokens`` resumes a saved session; ``on_tokens`` is told every new pair
    (and None when the session ends), to persist the refresh token.
    """

    def __init__(
        self,
        base_url: str,
        *,
        tokens: Tokens | None = None,
        on_tokens: TokenListener | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        http: httpx.Client | None = None,
    ) -> None:
        self._state = SessionState(base_url, tokens, on_tokens)
        self._http = http or httpx.Client(base_url=self._state.base_url, timeout=timeout_s)
        self._refresh_lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- session ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._state.base_url

    @property
    def ws_url(self) -> str:
        return self._state.ws_url

    @property
    def tokens(self) -> Tokens | None:
        return self._state.tokens

    @property
    def access_token(self) -> str | None:
        return self._state.access_token

    def set_tokens(self, tokens: Tokens | None) -> None:
        self._state.set_tokens(tokens)

    def _send(self, call: Call[Any], access_token: str | None) -> httpx.Response:
        try:
            return self._http.request(
                call.method, call.path, **self._state.request_kwargs(call, access_token)
            )
        except httpx.TransportError as exc:
            raise transport_error(exc, call) from exc

    def _run(self, call: Call[T]) -> T:
        access = self._state.access_token
        response = self._send(call, access)
        if retry_after_refresh(call, response, access):
            self._refresh_after(access)
            response = self._send(call, self._state.access_token)
        result: T = outcome(call, response)
        return result

    def _refresh_after(self, failed_access: str | None) -> None:
        with self._refresh_lock:
            if self._state.access_token == failed_access:
                self._refresh_locked()
            # else: another call refreshed while this one waited; use its pair.

    def _refresh_locked(self) -> Tokens:
        tokens = self._state.tokens
        if tokens is None:
            raise session_ended(None, "not signed in")
        try:
            fresh = self._run(calls.refresh(tokens.refresh_token))
        except Unauthorized as exc:
            self._state.set_tokens(None)
            raise session_ended(exc, "the refresh token was refused") from exc
        self._state.set_tokens(fresh)
        return fresh

    # --- auth -------------------------------------------------------------------------

    def register_user(
        self, email: str, password: str, full_name: str, *, phone: str | None = None
    ) -> Account:
        return self._run(calls.register_user(email, password, full_name, phone))

    def register_agent(
        self,
        email: str,
        password: str,
        full_name: str,
        *,
        phone: str | None = None,
        badge_number: str | None = None,
        invite_code: str | None = None,
    ) -> Account:
        call = calls.register_agent(email, password, full_name, phone, badge_number, invite_code)
        return self._run(call)

    def login_user(
        self,
        email: str,
        password: str,
        *,
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> Tokens:
        """Sign in a user or an administrator (with its second factor when enrolled)."""
        tokens = self._run(calls.login("user", email, password, totp_code, recovery_code))
        self._state.set_tokens(tokens)
        return tokens

    def login_agent(self, email: str, password: str, *, totp_code: str | None = None) -> Tokens:
        tokens = self._run(calls.login("agent", email, password, totp_code, None))
        self._state.set_tokens(tokens)
        return tokens

    def refresh(self) -> Tokens:
        """A new pair for the current one (the old refresh token is spent).

        Raises :class:`SessionEnded` (and forgets the tokens) when refused.
        """
        with self._refresh_lock:
            return self._refresh_locked()

    def logout(self) -> None:
        """End the session on the server (its tokens and sockets stop working); the
        client forgets its tokens whatever the answer."""
        tokens = self._state.tokens
        try:
            if tokens is not None:
                self._run(calls.logout(tokens.refresh_token))
        finally:
            self._state.set_tokens(None)

    def me(self) -> Account:
        return self._run(calls.me())

    # --- users ------------------------------------------------------------------------

    def get_profile(self) -> Account:
        return self._run(calls.get_profile())

    def update_profile(
        self,
        full_name: str,
        *,
        phone: str | None = None,
        cancel_pin: str | None = UNSET,
        duress_pin: str | None = UNSET,
        password: str | None = UNSET,
    ) -> Account:
        """Replace the profile; PINs (both, or both None to clear) need ``password``."""
        call = calls.update_profile(full_name, phone, cancel_pin, duress_pin, password)
        return self._run(call)

    def list_contacts(self) -> tuple[Contact, ...]:
        return self._run(calls.list_contacts())

    def add_contact(
        self,
        name: str,
        *,
        phone: str | None = None,
        email: str | None = None,
        relationship: str | None = None,
        notify_via: Sequence[str] | None = None,
    ) -> Contact:
        """``notify_via`` defaults to ``sms`` with a phone and ``email`` with an email."""
        channels = notify_via if notify_via is not None else _channels(phone, email)
        return self._run(calls.add_contact(name, channels, phone, email, relationship))

    def get_contact(self, contact_id: Id) -> Contact:
        return self._run(calls.get_contact(contact_id))

    def update_contact(
        self,
        contact_id: Id,
        name: str,
        *,
        phone: str | None = None,
        email: str | None = None,
        relationship: str | None = None,
        notify_via: Sequence[str] | None = None,
    ) -> Contact:
        channels = notify_via if notify_via is not None else _channels(phone, email)
        call = calls.update_contact(contact_id, name, channels, phone, email, relationship)
        return self._run(call)

    def delete_contact(self, contact_id: Id) -> None:
        self._run(calls.delete_contact(contact_id))

    # --- alerts -----------------------------------------------------------------------

    def raise_alert(
        self,
        latitude: float,
        longitude: float,
        alert_type: str = "panic",
        *,
        accuracy_m: float | None = None,
        description: str | None = None,
        silent: bool = False,
        idempotency_key: str | None = None,
    ) -> RaisedAlert:
        """``POST /alerts``. Always sent with an ``Idempotency-Key`` (a fresh uuid4
        when none is given; it is in the answer): retrying with the same key and
        body returns the same alert, never a second one."""
        call = calls.raise_alert(
            latitude, longitude, alert_type, accuracy_m, description, silent, idempotency_key
        )
        return self._run(call)

    def alerts_page(
        self,
        *,
        status: str | None = None,
        alert_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Alert]:
        return self._run(calls.alerts_page(status, alert_type, since, until, limit, cursor))

    def list_alerts(
        self,
        *,
        status: str | None = None,
        alert_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[Alert]:
        """Every alert the caller may see, newest first, a page read at a time."""

        def page(cursor: str | None) -> Page[Alert]:
            return self.alerts_page(
                status=status,
                alert_type=alert_type,
                since=since,
                until=until,
                limit=page_size,
                cursor=cursor,
            )

        return _walk(page)

    def get_alert(self, alert_id: Id) -> Alert:
        return self._run(calls.get_alert(alert_id))

    def set_status(
        self, alert_id: Id, status: str, *, note: str | None = None, pin: str | None = None
    ) -> Alert:
        """Move the alert (409 :class:`Conflict` on a transition the graph forbids)."""
        return self._run(calls.set_status(alert_id, status, note, pin))

    def assign(self, alert_id: Id, agent_id: Id) -> Alert:
        """Admins: give the alert to ``agent_id`` (reassigning it if another holds it)."""
        return self._run(calls.assign(alert_id, agent_id))

    def timeline(self, alert_id: Id) -> tuple[TimelineItem, ...]:
        return self._run(calls.timeline(alert_id))

    def messages(self, alert_id: Id) -> tuple[ChatMessage, ...]:
        """The alert's chat, oldest first (a silent alert's user: only their own)."""
        return self._run(calls.messages(alert_id))

    def post_message(self, alert_id: Id, text: str) -> ChatMessage:
        """Write to the alert's chat: its user, its assigned agent, or an admin (403
        :class:`Forbidden` otherwise or once it is over; 422 for a text that is not
        1-500 characters; 409 :class:`Conflict` past the alert's most messages)."""
        return self._run(calls.post_message(alert_id, text))

    # --- geofencing -------------------------------------------------------------------

    def post_location(
        self,
        latitude: float,
        longitude: float,
        *,
        accuracy_m: float | None = None,
        heading: float | None = None,
        speed_mps: float | None = None,
        recorded_at: datetime | None = None,
    ) -> LocationAccepted:
        call = calls.post_location(latitude, longitude, accuracy_m, heading, speed_mps, recorded_at)
        return self._run(call)

    def zones_page(
        self,
        *,
        kind: str | None = None,
        active: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Zone]:
        return self._run(calls.zones_page(kind, active, limit, cursor))

    def list_zones(
        self, *, kind: str | None = None, active: bool | None = None, page_size: int | None = None
    ) -> Iterator[Zone]:
        return _walk(
            lambda cursor: self.zones_page(kind=kind, active=active, limit=page_size, cursor=cursor)
        )

    def create_zone(
        self,
        name: str,
        kind: str,
        geometry: Mapping[str, Any],
        *,
        radius_m: float | None = None,
        rules: Mapping[str, Any] | None = None,
        active: bool = True,
    ) -> Zone:
        """Admins: a zone; ``geometry`` is a GeoJSON Polygon, MultiPolygon or Point (+ radius)."""
        return self._run(calls.create_zone(name, kind, geometry, radius_m, rules, active))

    # --- admin ------------------------------------------------------------------------

    def agents_page(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[RosterAgent]:
        return self._run(calls.agents_page(status, limit, cursor))

    def list_agents(
        self, *, status: str | None = None, page_size: int | None = None
    ) -> Iterator[RosterAgent]:
        """Admins: the agents' roster, newest first (``status``: a vetting state)."""
        return _walk(lambda cursor: self.agents_page(status=status, limit=page_size, cursor=cursor))

    def approve_agent(self, agent_id: Id, *, reason: str | None = None) -> VettingResult:
        return self._run(calls.approve_agent(agent_id, reason))

    def suspend_agent(self, agent_id: Id, reason: str) -> VettingResult:
        return self._run(calls.suspend_agent(agent_id, reason))

    def create_invite(self, *, expires_in_s: int | None = None) -> Invite:
        return self._run(calls.create_invite(expires_in_s))


def _channels(phone: str | None, email: str | None) -> list[str]:
    return [name for name, value in (("sms", phone), ("email", email)) if value is not None]


def _walk(page: Callable[[str | None], Page[T]]) -> Iterator[T]:
    cursor: str | None = None
    while True:
        current = page(cursor)
        yield from current.items
        if current.next_cursor is None or not current.items:
            return
        cursor = current.next_cursor
