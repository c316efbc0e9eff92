"""Integration keys: the credential of the bulk location feed (pure, no I/O).

An administrator issues a key (``POST /admin/integrations``) to a fleet, a
telematics gateway or a Traccar server, which forwards many subjects'
location fixes with it. The key names an :class:`Integration`, a principal
of its own: it is not a JWT and has no ``actors.roles.Role``, so every route
that authenticates a session refuses it (401); only the location feed
accepts it (``gateway.deps.IntegrationPrincipal``).

Format: ``pak_<key id, 32 lowercase hex>_<secret>``, the secret being 43
characters of unpadded urlsafe base64 (32 random bytes, 256 bits), 80
characters in all. Only :func:`digest` of the secret is stored. The secret
is long and random, so one SHA-256 is enough (no salt, no slow hash: nothing
can be guessed from the digest) and checking a key costs microseconds.

Guarantees: :func:`parse_key` never raises and accepts exactly the texts
:func:`new_key` can produce; :func:`matches` compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID, uuid4

KEY_PREFIX: Final = "pak_"

#: Random bytes in a secret (``secrets.token_urlsafe``: 43 characters).
SECRET_BYTES: Final = 32
SECRET_CHARS: Final = 43

#: At most this many keys may be active (not revoked) at once.
MAX_ACTIVE_KEYS: Final = 100

#: ``last_used_at`` is refreshed at most this often per key (it is best effort).
TOUCH_INTERVAL: Final = timedelta(seconds=60)

_KEY = re.compile(
    re.escape(KEY_PREFIX) + rf"(?P<id>[0-9a-f]{{32}})_(?P<secret>[A-Za-z0-9_-]{{{SECRET_CHARS}}})"
)


@dataclass(frozen=True, slots=True)
class Integration:
    """The principal an active integration key authenticates: the key's id and name."""

    id: UUID
    name: str


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly made key: ``text`` is what its holder sends, shown once."""

    key_id: UUID
    secret: str
    text: str


def new_key() -> NewKey:
    """A new random key (id ``uuid4``, secret of :data:`SECRET_BYTES` random bytes)."""
    key_id = uuid4()
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return NewKey(key_id, secret, f"{KEY_PREFIX}{key_id.hex}_{secret}")


def parse_key(text: str) -> tuple[UUID, str] | None:
    """The key id and secret of a well-formed key text; None for anything else.

    Never raises (any value, any length)."""
    if not isinstance(text, str) or len(text) != len(KEY_PREFIX) + 32 + 1 + SECRET_CHARS:
        return None
    found = _KEY.fullmatch(text)
    if found is None:
        return None
    return UUID(hex=found["id"]), found["secret"]


def digest(secret: str) -> bytes:
    """What is stored of a secret: its SHA-256 (32 bytes)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def matches(stored_digest: bytes, secret: str) -> bool:
    """Whether ``secret`` is the one ``stored_digest`` was made from (constant time)."""
    return hmac.compare_digest(stored_digest, digest(secret))


def revocation_session(key_id: UUID) -> str:
    """The session id whose revocation channel (``Sessions.revocation_channel``)
    announces that the key was revoked: sockets fed by it close with 4401."""
    return f"integration:{key_id}"


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether a use at ``now`` should refresh ``last_used_at``: never touched, or
    :data:`TOUCH_INTERVAL` ago or longer (a time ahead of ``now`` counts as fresh)."""
    return last_used_at is None or now - last_used_at >= TOUCH_INTERVAL
