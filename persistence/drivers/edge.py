"""The one place a driver's exception becomes a ``persistence.errors`` error.

Every adapter method runs its driver calls inside its driver's edge::

    with postgres.EDGE:
        row = await pool.fetchrow(...)

An exception of the driver's family (``errors``) leaving the block is raised
again as ``translate(exc)``, chained (``from exc``); anything else (a
``PersistenceError`` the block raised itself, a bug) passes unchanged. Each
driver module defines its ``EDGE`` (``postgres``, ``redis``, ``mongo``,
``kafka``); a store with a finer mapping (a constraint that means a
duplicate email, a geometry PostGIS refused) builds its own edge with its own
``translate``, which falls back to the driver's.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from persistence.errors import PersistenceError

Translate = Callable[[BaseException], PersistenceError]


class DriverEdge:
    """A reusable, stateless context manager (sync or async code alike: it only
    looks at what leaves the block)."""

    __slots__ = ("_errors", "_translate")

    def __init__(self, errors: tuple[type[BaseException], ...], translate: Translate) -> None:
        self._errors = errors
        self._translate = translate

    def with_translate(self, translate: Translate) -> DriverEdge:
        """The same driver family mapped by ``translate``."""
        return DriverEdge(self._errors, translate)

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, self._errors):
            raise self._translate(exc) from exc
