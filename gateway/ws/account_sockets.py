"""How many ``/ws`` sockets each account holds open on this process, the newest kept.

A phone that loses its network connects again while its old socket still looks
open to the gateway (until the heartbeat closes it, ``http.ws_heartbeat_timeout_s``),
and a script holding an account's token could open sockets without end, each
holding the gateway's memory. :class:`AccountSockets` keeps at most ``cap`` of one
account's sockets on one gateway process (``http.ws_max_sockets_per_account``).
One more is not refused: the account's **oldest** is the one to close
(``gateway.ws.session`` closes it with 1008, :data:`REPLACED_REASON`), because the
newest socket is the one a person in danger is holding, and an emergency app must
never lock its user out. Per process, as ``gateway.ws.key_sockets`` is for bulk
sockets. Pure: no I/O; the caller closes what :meth:`AccountSockets.opened` returns.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar
from uuid import UUID

S = TypeVar("S", bound=Hashable)

#: The close reason (1008) of an account's oldest socket once a newer one made the
#: account hold more than ``http.ws_max_sockets_per_account`` on one process.
REPLACED_REASON = "replaced by a newer socket of this account"


class AccountSockets(Generic[S]):
    """Open sockets by account, oldest first, each account at most ``cap``."""

    __slots__ = ("_open", "_told")

    def __init__(self) -> None:
        #: Each account's sockets in the order they opened (a dict keeps it).
        self._open: dict[UUID, dict[S, None]] = {}
        #: Accounts told to the log as at their cap since they were last under it.
        self._told: set[UUID] = set()

    def opened(self, account_id: UUID, socket: S, cap: int) -> list[S]:
        """Count ``socket`` as ``account_id``'s newest; returns the account's oldest
        sockets past ``cap`` (the caller closes them), oldest first; they are no
        longer counted."""
        held = self._open.setdefault(account_id, {})
        held[socket] = None
        over: list[S] = []
        while len(held) > cap:
            oldest = next(iter(held))
            del held[oldest]
            over.append(oldest)
        return over

    def first_over(self, account_id: UUID) -> bool:
        """After :meth:`opened` returned sockets to close: whether this is the first
        time since the account was last under its cap (so an account opening
        sockets without end is logged once, not once per socket)."""
        if account_id in self._told:
            return False
        self._told.add(account_id)
        return True

    def closed(self, account_id: UUID, socket: S) -> None:
        """``socket`` ended (however: a socket :meth:`opened` already returned is
        no longer counted, and closing it again changes nothing)."""
        held = self._open.get(account_id)
        if held is None or socket not in held:
            return
        del held[socket]
        self._told.discard(account_id)
        if not held:
            del self._open[account_id]

    def held(self, account_id: UUID) -> int:
        return len(self._open.get(account_id, ()))

    def __len__(self) -> int:
        """Accounts holding a socket (none kept for an account whose sockets all closed)."""
        return len(self._open)


__all__ = ["REPLACED_REASON", "AccountSockets"]
