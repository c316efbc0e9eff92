"""Push tokens as ``POST /users/devices`` accepts them: pure validation.

A ``web`` token is the JSON of a browser's ``PushSubscription``
(``{"endpoint": "https://…", "keys": {"p256dh": "…", "auth": "…"}}``):

* the endpoint is an ``https://`` URL with a host name and no user info;
  an IP-literal host must be public (the notifier POSTs there, so a token
  must not aim it at the deployment's own network). ``http://`` on a
  loopback host only when the settings allow it (tests' local push service);
* ``p256dh`` is the subscription's P-256 public key, 65 bytes uncompressed,
  and ``auth`` its 16-byte secret, both base64url (padding optional).

It is stored canonical (:func:`web_token`: the endpoint and the keys only,
sorted, compact), so one subscription sent twice is one row. ``android`` and
``ios`` tokens are opaque (FCM registration tokens, APNs device tokens):
printable, without spaces. Every token is at most :data:`MAX_TOKEN_CHARS`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

MAX_TOKEN_CHARS: Final = 2048
MAX_ENDPOINT_CHARS: Final = 1024
_OPAQUE: Final = re.compile(r"[A-Za-z0-9_:.\-]{8,2048}")
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


def _b64url(value: Any, field: str, size: int) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+={0,2}", value):
        raise ValueError(f"keys.{field} must be base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"keys.{field} must be base64url") from None
    if len(raw) != size:
        raise ValueError(f"keys.{field} must be {size} bytes")
    if field == "p256dh":
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError("keys.p256dh must be an uncompressed P-256 point") from None
    return value.rstrip("=")


def _loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: Any, *, allow_loopback_http: bool) -> str:
    """``endpoint`` if a push service may be reached there; raises ``ValueError``."""
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_ENDPOINT_CHARS:
        raise ValueError(f"endpoint must be a URL of at most {MAX_ENDPOINT_CHARS} characters")
    if any(c.isspace() or not c.isprintable() for c in endpoint):
        # urlsplit would drop some of these silently; the URL stored is the one sent.
        raise ValueError("endpoint must be a URL without spaces or control characters")
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("endpoint must be a URL") from None
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise ValueError("endpoint must be a URL with a host, no user info and no fragment")
    if parts.scheme == "http" and allow_loopback_http and _loopback(host):
        return endpoint
    if parts.scheme != "https":
        raise ValueError("endpoint must be an https:// URL")
    if host in _LOOPBACK_NAMES:
        raise ValueError("endpoint must be a public host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return endpoint  # a host name
    if not address.is_global:
        raise ValueError("endpoint must be a public host")
    return endpoint


def web_token(token: str, *, allow_loopback_http: bool) -> str:
    """The canonical form of a PushSubscription JSON; raises ``ValueError``."""
    try:
        found = json.loads(token)
    except ValueError:
        raise ValueError("a web push_token must be the PushSubscription's JSON") from None
    if not isinstance(found, dict):
        raise ValueError("a web push_token must be a JSON object")
    keys = found.get("keys")
    if not isinstance(keys, dict):
        raise ValueError("a web push_token needs keys.p256dh and keys.auth")
    canonical = {
        "endpoint": check_endpoint(found.get("endpoint"), allow_loopback_http=allow_loopback_http),
        "keys": {
            "auth": _b64url(keys.get("auth"), "auth", 16),
            "p256dh": _b64url(keys.get("p256dh"), "p256dh", 65),
        },
    }
    return json.dumps(canonical, separators=(",", ":"), sort_keys=True)


def push_token(platform: str, token: str, *, allow_loopback_http: bool) -> str:
    """The token as stored for ``platform``; raises ``ValueError`` with the reason."""
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(f"push_token must be at most {MAX_TOKEN_CHARS} characters")
    if platform == "web":
        return web_token(token, allow_loopback_http=allow_loopback_http)
    if not _OPAQUE.fullmatch(token):
        raise ValueError(
            "an android or ios push_token is 8 or more letters, digits and '_', ':', '.', '-'"
        )
    return token
