"""How many bulk-feed sockets each integration key holds open on this process (issue 20).

A key is a trusted principal's, issued by an administrator, but a key leaked or
misused by a script could open sockets without end: each holds a gateway's memory,
and through the spread (``gateway.ports.BulkSpread``) enough of them would make a
gateway move other keys' sockets. :class:`KeySockets` caps a key's open sockets on
one gateway process (``http.ws_max_bulk_sockets_per_key``); ``gateway.ws.bulk``
closes one more with 1008 before ``auth.ok``. Per process, so ``serve``'s N
gateway processes let a key hold at most N times the cap; no state is shared.
Pure: no I/O, the caller takes and gives back.
"""

from __future__ import annotations

from collections import Counter
from uuid import UUID


class KeySockets:
    """Open bulk sockets by integration key, each at most ``cap``."""

    __slots__ = ("_held", "_refused")

    def __init__(self) -> None:
        self._held: Counter[UUID] = Counter()
        #: Keys refused since they last gave a socket back (see :meth:`first_refusal`).
        self._refused: set[UUID] = set()

    def take(self, key_id: UUID, cap: int) -> bool:
        """Count one more socket of ``key_id``, unless it holds ``cap`` already."""
        if self._held[key_id] >= cap:
            return False
        self._held[key_id] += 1
        return True

    def first_refusal(self, key_id: UUID) -> bool:
        """After :meth:`take` refused ``key_id``: whether this is its first refusal
        since it last gave a socket back (so a script retrying without end is
        logged once, not once per attempt)."""
        if key_id in self._refused:
            return False
        self._refused.add(key_id)
        return True

    def give_back(self, key_id: UUID) -> None:
        """One socket of ``key_id`` that :meth:`take` counted has closed."""
        self._refused.discard(key_id)
        left = self._held[key_id] - 1
        if left > 0:
            self._held[key_id] = left
        else:
            del self._held[key_id]

    def held(self, key_id: UUID) -> int:
        return self._held[key_id]

    def __len__(self) -> int:
        """Keys holding a socket (none kept for a key whose sockets all closed)."""
        return len(self._held)


__all__ = ["KeySockets"]
