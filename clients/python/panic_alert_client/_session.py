"""What the async and sync clients share: the base URL, the login's tokens,
and how a request is made from a :class:`~panic_alert_client._calls.Call`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from panic_alert_client._calls import Call, error_of
from panic_alert_client.errors import ApiError, SessionEnded, TransportError
from panic_alert_client.models import Tokens

#: Called with the new tokens after every login and refresh, and None when the
#: session ends (logout, a spent refresh token): where an app persists them.
TokenListener = Callable[[Tokens | None], None]

DEFAULT_TIMEOUT_S = 20.0


class SessionState:
    """The base URL and the current tokens of one client (one login session)."""

    def __init__(
        self, base_url: str, tokens: Tokens | None, on_tokens: TokenListener | None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._on_tokens = on_tokens

    @property
    def tokens(self) -> Tokens | None:
        return self._tokens

    def set_tokens(self, tokens: Tokens | None) -> None:
        self._tokens = tokens
        if self._on_tokens is not None:
            self._on_tokens(tokens)

    @property
    def access_token(self) -> str | None:
        return self._tokens.access_token if self._tokens is not None else None

    def request_kwargs(self, call: Call[Any], access_token: str | None) -> dict[str, Any]:
        headers = dict(call.headers or {})
        if call.auth and access_token is not None:
            headers["Authorization"] = f"Bearer {access_token}"
        kwargs: dict[str, Any] = {"headers": headers}
        if call.json is not None:
            kwargs["json"] = call.json
        if call.params:
            kwargs["params"] = dict(call.params)
        return kwargs

    @property
    def ws_url(self) -> str:
        """``ws(s)://host[:port][/prefix]/ws`` for the base URL."""
        url = httpx.URL(self.base_url)
        scheme = "wss" if url.scheme == "https" else "ws"
        return str(url.copy_with(scheme=scheme, path=url.path.rstrip("/") + "/ws"))


def retry_after_refresh(
    call: Call[Any], response: httpx.Response, access_token: str | None
) -> bool:
    """A 401 to an authenticated call that carried a token: refresh once, then retry."""
    return response.status_code == 401 and call.auth and access_token is not None


def session_ended(cause: ApiError | None, message: str) -> SessionEnded:
    """The :class:`SessionEnded` of a refresh refused with ``cause`` (or of no refresh token)."""
    if cause is None:
        return SessionEnded(401, title="Session ended", detail=message)
    return SessionEnded(
        cause.status,
        type=cause.type,
        title=cause.title or "Session ended",
        detail=cause.detail or message,
        errors=cause.errors,
        body=cause.body,
    )


def transport_error(exc: httpx.TransportError, call: Call[Any]) -> TransportError:
    return TransportError(f"{call.method} {call.path}: {type(exc).__name__}: {exc}")


def outcome(call: Call[Any], response: httpx.Response) -> Any:
    """The decoded answer, or the :class:`ApiError` raised for an error status."""
    if response.is_error:
        raise error_of(response)
    return call.decode(response)
