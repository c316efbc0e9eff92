"""This process's live agent sockets, announced to their agent entities.

Dispatch offers alerts only to agents with a live socket (``actors.agent``:
an agent is listed while available, with a position and at least one
socket). The gateway is where sockets live, so it tells each agent entity
when one of its sockets has authenticated (``SocketOpened``) and when it
closed (``SocketClosed``, whatever the reason: the peer left, a deadline, a
revocation, the process stopping).

Presence survives faults: the region index of available agents is soft
state, lost with a shard. A shard that (re)starts publishes on
``actors.effects.PRESENCE_CHANNEL``; every gateway listens there and
announces all its agent sockets again, so the index is rebuilt from the live
sockets at once rather than from each agent's next report. With each socket
it repeats the last fix that socket relayed: an agent entity restored from
its snapshot may have lost its newest position (positions are written
coalesced), and an entity ignores a fix no newer than the one it holds.

Each gateway process (``serve`` runs ``http.gateways`` of them on one port)
announces its own sockets and answers the shards' call on its own. A process
that is killed rather than stopped announces no ``SocketClosed``: its agents
go offline when their heartbeat runs out (``actors.heartbeat_timeout_s``),
or sooner when their apps reconnect to another process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from uuid import UUID

from actors.agent import LocationFix, SocketClosed, SocketOpened
from actors.effects import PRESENCE_CHANNEL, EntityKind
from actors.store_errors import ServiceUnavailable
from cluster.client import EntityClient
from gateway.ws.hub import PushHub

log = logging.getLogger(__name__)


class AgentSockets:
    """The registry of this process's authenticated agent sockets."""

    def __init__(self, hub: PushHub, entities: Callable[[], EntityClient | None]) -> None:
        self._hub = hub
        self._entities = entities
        self._sockets: dict[str, UUID] = {}
        #: The last fix each socket relayed (``recorded_at`` always set).
        self._fixes: dict[str, LocationFix] = {}
        self._listening = False
        #: How many times the gateways were asked to announce (for tests and metrics).
        self.reannounced = 0

    def __len__(self) -> int:
        return len(self._sockets)

    async def listen(self, retry_s: float = 1.0) -> None:
        """Listen for shards asking for presence, for the life of the process (a
        background task of the app): subscribe, retrying while Redis is down;
        the hub keeps the subscription across reconnects from then on."""
        while True:
            try:
                await self._hub.attach(PRESENCE_CHANNEL, self._reannounce)
            except ServiceUnavailable as exc:
                log.warning("presence: cannot listen yet (%s); retrying", exc)
                await asyncio.sleep(retry_s)
                continue
            self._listening = True
            return

    @property
    def listening(self) -> bool:
        return self._listening

    def opened(self, socket_id: str, agent_id: UUID) -> None:
        """``socket_id`` of ``agent_id`` authenticated: register and announce it."""
        self._sockets[socket_id] = agent_id
        self._tell(agent_id, SocketOpened(socket_id))

    def located(self, socket_id: str, fix: LocationFix) -> None:
        """``socket_id`` relayed ``fix`` (stamped) to its agent: kept for a re-announcement."""
        if socket_id in self._sockets:
            self._fixes[socket_id] = fix

    def closed(self, socket_id: str) -> None:
        """``socket_id`` closed: its agent hears of it (idempotent)."""
        self._fixes.pop(socket_id, None)
        agent_id = self._sockets.pop(socket_id, None)
        if agent_id is not None:
            self._tell(agent_id, SocketClosed(socket_id))

    def _reannounce(self, _text: str) -> None:
        """Hub sink: a shard started; announce every live agent socket again."""
        self.reannounced += 1
        log.info("presence asked for: announcing %d agent sockets", len(self._sockets))
        for socket_id, agent_id in list(self._sockets.items()):
            fix = self._fixes.get(socket_id)
            if fix is not None:
                self._tell(agent_id, fix)
            self._tell(agent_id, SocketOpened(socket_id))

    def _tell(self, agent_id: UUID, message: object) -> None:
        entities = self._entities()
        if entities is None:
            return
        try:
            entities.tell(EntityKind.AGENT, str(agent_id), message)
        except Exception as exc:
            # Fire-and-forget like heartbeats; the heartbeat expiry is the backstop.
            log.warning("cannot tell agent %s of its socket (%s)", agent_id, exc)
