"""The ``media.ports.ObjectStore`` over ``obstore``: a directory or an S3 bucket.

One adapter for both backends (``object_store`` picks by
``MediaSettings.backend``): obstore gives the local filesystem and S3 the same
calls, so what differs is only how the store is built and, for a directory,
tightening the modes of what it wrote.

Guarantees, both backends:

- ``put`` streams: the chunks are consumed as they are uploaded, in parts of
  :data:`PART_SIZE` (S3 multipart; a staged file renamed into place locally),
  so at most about ``PART_SIZE * (PUT_CONCURRENCY + 1)`` bytes are held, never
  the object. An object is visible only once whole; a failed ``put`` leaves
  the previous object (or none), never a part. An object shorter than one
  part is written in one request.
- Reads never return another object's bytes and never fail on a range past
  the end: ``get_range``/``stream`` answer the part of ``[start, end)`` that
  exists (empty when ``start`` is at or past the end).
- Errors are ``actors.store_errors``': ``NotFound`` for a missing key on read,
  ``ServiceUnavailable("objects")`` (retriable) when the store cannot be
  reached or failed, ``ConfigurationError`` when it refuses our credentials.
  An exception raised by the caller's ``chunks`` passes through unchanged.
- ``delete`` of an absent key succeeds; every call is safe to retry (a
  ``put`` with a fresh iterable).

Local modes: obstore creates files and directories with the process umask
and has no option for modes, so the adapter creates the root itself with
0700 (nothing under it is reachable by another user from the first byte)
and, after each ``put``, sets the file to 0600 and the directories between
it and the root to 0700.
"""

from __future__ import annotations

import atexit
import functools
import os
import time
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    InvalidPathError,
    NotModifiedError,
    NotSupportedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
    UnknownConfigurationKeyError,
)
from obstore.store import LocalStore, S3Store

from config.settings import MediaBackend, MediaSettings, S3Settings
from persistence.drivers.edge import DriverEdge
from persistence.errors import (
    ConfigurationError,
    NotFound,
    PersistenceError,
    ServiceUnavailable,
)

if TYPE_CHECKING:
    from obstore import GetResult

#: Bytes per uploaded part (S3's smallest part but the last is 5 MiB).
PART_SIZE = 5 * 1024 * 1024
#: Parts uploaded at once by one ``put``.
PUT_CONCURRENCY = 2
#: Smallest chunk ``stream`` yields (but the last): a few sealed records.
STREAM_CHUNK = 256 * 1024

# A down endpoint fails in seconds, not obstore's default 3 minutes of
# retries; a stalled transfer fails after READ_TIMEOUT without data, while a
# long one (a large range streamed to a slow client) may take REQUEST_TIMEOUT.
CONNECT_TIMEOUT = timedelta(seconds=5)
READ_TIMEOUT = timedelta(seconds=30)
REQUEST_TIMEOUT = timedelta(minutes=10)
MAX_RETRIES = 3
RETRY_TIMEOUT = timedelta(seconds=15)

FILE_MODE = 0o600
DIR_MODE = 0o700


def _detail(exc: BaseException) -> str:
    # obstore appends a multi-line "Debug source:" dump; the first line says it.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def translate_error(exc: BaseException) -> PersistenceError:
    """Map an obstore exception to the package's errors (use with ``from exc``)."""
    detail = _detail(exc)
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"objects: {detail}")
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError | UnknownConfigurationKeyError):
        return ConfigurationError(f"the object store refused us: {detail}")
    if isinstance(
        exc,
        InvalidPathError
        | AlreadyExistsError
        | PreconditionError
        | NotModifiedError
        | NotSupportedError,
    ):
        return PersistenceError(f"objects: {detail}")
    # GenericError (connection refused, 5xx after retries, a local I/O error)
    # and JoinError: the store failed, the same call may succeed later.
    return ServiceUnavailable("objects", detail)


#: What obstore raises (it emits the builtin FileNotFoundError for a missing key).
DRIVER_ERRORS: tuple[type[BaseException], ...] = (BaseError, FileNotFoundError)

#: Maps every obstore error leaving a block (``with EDGE: ...``).
EDGE = DriverEdge(DRIVER_ERRORS, translate_error)


#: How long the interpreter waits at exit for obstore's threads (see below).
EXIT_SETTLE_S = 0.05


@functools.cache
def _settle_at_exit() -> None:
    """Let obstore's runtime threads finish handing back results before exit.

    obstore resolves an awaited call from one of its (tokio) threads, which
    wakes the event loop and then takes the GIL back to return. When that was
    the process's last call, the main thread may reach interpreter finalization
    first; Python before 3.14 then ends the thread with ``pthread_exit``, whose
    unwinding through Rust frames aborts the whole process (SIGABRT, exit 134,
    nothing printed: about one exit in five here, CLIs and test runs alike).
    ``atexit`` handlers run before finalization starts, so a short sleep there
    (the GIL released) lets the thread return normally.
    """
    atexit.register(time.sleep, EXIT_SETTLE_S)


class ObstoreObjects:
    """``media.ports.ObjectStore`` on one obstore store (see the module doc)."""

    def __init__(self, store: LocalStore | S3Store, *, local_root: Path | None = None) -> None:
        _settle_at_exit()
        self._store = store
        #: The directory of a local store, whose files' modes ``put`` tightens.
        self._root = local_root

    @classmethod
    def local(cls, root: Path) -> ObstoreObjects:
        """Objects as files under ``root`` (created 0700 if missing)."""
        root = root.resolve()
        root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        root.chmod(DIR_MODE)
        # automatic_cleanup: deleting an object's last part removes its
        # (media-id) directory, so purged media leave no empty directories.
        return cls(LocalStore(prefix=root, mkdir=True, automatic_cleanup=True), local_root=root)

    @classmethod
    def s3(cls, settings: S3Settings) -> ObstoreObjects:
        """Objects in ``settings.bucket`` (path-style requests to ``endpoint``)."""
        store = S3Store(
            settings.bucket,
            endpoint=settings.endpoint,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key.get_secret_value(),
            region=settings.region,
            virtual_hosted_style_request=False,
            client_options={
                "allow_http": settings.allow_http,
                "connect_timeout": CONNECT_TIMEOUT,
                "read_timeout": READ_TIMEOUT,
                "timeout": REQUEST_TIMEOUT,
            },
            retry_config={"max_retries": MAX_RETRIES, "retry_timeout": RETRY_TIMEOUT},
        )
        return cls(store)

    @property
    def backend(self) -> MediaBackend:
        return MediaBackend.LOCAL if isinstance(self._store, LocalStore) else MediaBackend.S3

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the concatenated ``chunks`` under ``key`` (replacing it); the
        bytes written. Streams in parts; visible only once whole."""
        source = aiter(chunks)
        head = bytearray()
        async for chunk in source:
            head += chunk
            if len(head) >= PART_SIZE:
                break
        else:
            # Shorter than a part: one request, no multipart bookkeeping.
            with EDGE:
                await obstore.put_async(self._store, key, bytes(head), use_multipart=False)
            self._tighten(key)
            return len(head)

        written = len(head)

        async def counted() -> AsyncIterator[bytes]:
            nonlocal written
            yield bytes(head)
            head.clear()
            async for more in source:
                written += len(more)
                yield more

        with EDGE:
            await obstore.put_async(
                self._store,
                key,
                counted(),
                use_multipart=True,
                chunk_size=PART_SIZE,
                max_concurrency=PUT_CONCURRENCY,
            )
        self._tighten(key)
        return written

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object (fewer if it is shorter);
        ``NotFound`` if ``key`` is absent."""
        result = await self._open(key, start, end)
        if result is None:
            return b""
        with EDGE:
            return bytes(await result.bytes_async())

    async def stream(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of the object, in chunks of at least
        :data:`STREAM_CHUNK` (but the last) as they arrive; ``NotFound`` (before
        the first chunk) if ``key`` is absent."""
        result = await self._open(key, start, end)
        if result is None:
            return
        with EDGE:
            async for chunk in result.stream(min_chunk_size=STREAM_CHUNK):
                yield bytes(chunk)

    async def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is absent."""
        try:
            with EDGE:
                await obstore.delete_async(self._store, key)
        except NotFound:
            pass  # the local store says so; S3 answers a delete of nothing with 204

    async def list(self, prefix: str) -> AsyncIterator[str]:
        """Every key under ``prefix``, in no set order. The prefix is whole path
        segments: ``a/b`` lists ``a/b/c``, not ``a/bc``."""
        with EDGE:
            async for batch in obstore.list(self._store, prefix or None, chunk_size=500):
                for meta in batch:
                    yield meta["path"]

    async def _open(self, key: str, start: int, end: int) -> GetResult | None:
        """The response for ``[start, end)``; None when the range is empty or
        starts at or past the end of the object."""
        if start < 0 or end < start:
            raise ValueError(f"bad range [{start}, {end}) of {key!r}")
        if start == end:
            return None
        try:
            with EDGE:
                return await obstore.get_async(self._store, key, options={"range": (start, end)})
        except ServiceUnavailable:
            # A range starting at or past the end (of an empty object too) is
            # refused (obstore's "range was invalid", S3's 416), not answered
            # empty: ask for the size.
            with EDGE:
                size = (await obstore.head_async(self._store, key))["size"]
            if start >= size:
                return None
            raise

    def _tighten(self, key: str) -> None:
        """0600 for a local object's file, 0700 for its directories below the root."""
        if self._root is None:
            return
        path = self._root / key
        os.chmod(path, FILE_MODE)
        for parent in path.parents:
            if parent == self._root:
                break
            os.chmod(parent, DIR_MODE)


def object_store(settings: MediaSettings, data_dir: Path) -> ObstoreObjects:
    """The object store ``settings.backend`` names (nothing is contacted yet); the
    local one under ``settings.root``, or ``media`` in ``data_dir``."""
    if settings.backend is MediaBackend.S3:
        return ObstoreObjects.s3(settings.s3)
    return ObstoreObjects.local(settings.root or data_dir / "media")
