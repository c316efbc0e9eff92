"""Password hashing with argon2id (RFC 9106), parameters from ``settings.auth``.

One :class:`PasswordHasher` per process. Hashes are PHC strings
(``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) that carry their own
parameters, so raising the cost in settings does not break existing hashes:
:meth:`PasswordHasher.needs_rehash` tells the login code to upgrade one.

Hashing costs tens of milliseconds of CPU and ``memory_kib`` of memory by
design; async callers use :meth:`hash_async`/:meth:`verify_async`, which run
it in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher as _Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from config.settings import AuthSettings

#: Bounds checked before hashing: an empty password is never accepted, and a
#: huge one would only be a way to burn CPU.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


class WeakPasswordError(ValueError):
    """The password does not meet the length policy."""


def check_password_policy(password: str, *, min_length: int = MIN_PASSWORD_LENGTH) -> None:
    """Raise :class:`WeakPasswordError` unless ``min_length <= len(password) <= 1024``."""
    if len(password) < min_length:
        raise WeakPasswordError(f"password must be at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPasswordError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")


class PasswordHasher:
    """argon2id hashing and verification; thread-safe."""

    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = _Argon2Hasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        """A new salted argon2id hash of ``password`` (PHC string)."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True if ``password`` matches; False on mismatch or a malformed hash."""
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True if the hash was made with other parameters than the current settings."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify, password_hash, password)
