"""What the gateway keeps on ``app.state``: one typed object instead of loose attributes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from cluster.client import EntityClient
from config.settings import Settings
from gateway.alert_press import PressLocks
from gateway.auth.passwords import PasswordHasher
from gateway.auth.pins import PinChecker
from gateway.locations import LocationIngest
from gateway.metrics import HttpMetrics
from gateway.ports import BulkSpread, GatewayPorts
from gateway.readiness import BackendSet
from gateway.vetting import ApprovedAgents
from gateway.ws.account_sockets import AccountSockets
from gateway.ws.fleet_feed import FleetFeed
from gateway.ws.hub import PushHub
from gateway.ws.key_sockets import KeySockets
from gateway.ws.presence import AgentSockets
from gateway.ws.reads import CoalescedOpenAlerts, CoalescedSessionCheck, CoalescedVetting
from media.vault import MasterKeys

if TYPE_CHECKING:
    from gateway.ws.session import Session


@dataclass(frozen=True, slots=True)
class GatewayState:
    settings: Settings
    backends: BackendSet
    metrics: HttpMetrics
    #: The process's one pub/sub connection for ``/ws`` pushes (``gateway.ws.hub``).
    ws_hub: PushHub
    #: This process's live agent sockets (``gateway.ws.presence``).
    agent_sockets: AgentSockets
    #: Subjects' location fixes from REST and /ws, batched (``gateway.locations``).
    locations: LocationIngest
    #: The adapters behind the gateway's ports (``gateway.ports``), built by the root.
    ports: GatewayPorts
    #: The app's password hasher (from ``settings.auth``; replicas in one process may differ).
    hasher: PasswordHasher
    #: Checks cancel PINs in its own bounded pool (``settings.pins.workers``).
    pins: PinChecker
    #: Sockets' resync reads of ``ports.open_alerts``, made together (``gateway.ws.reads``).
    resync_reads: CoalescedOpenAlerts
    #: Sockets' vetting reads of ``ports.agent_vetting``, made together (``gateway.ws.reads``).
    vetting_reads: CoalescedVetting
    #: Sockets' session checks of ``ports.sessions``, made together (``gateway.ws.reads``).
    session_checks: CoalescedSessionCheck
    #: ``fleet.agents`` to this process's admin sockets (``gateway.ws.fleet_feed``).
    fleet_feed: FleetFeed | None = None
    #: How routes reach the entity actors; None when the process runs without Ray.
    entities: EntityClient | None = None
    #: Agents read as approved lately (``gateway.vetting.ApprovedAgents``).
    approved_agents: ApprovedAgents = field(default_factory=ApprovedAgents)
    #: One user's presses of ``POST /alerts`` one at a time (``gateway.alert_press``).
    presses: PressLocks = field(default_factory=PressLocks)
    #: The media master keys (``settings.media``), derived once.
    media_keys: MasterKeys | None = None
    #: Sockets being set up at once (``http.ws_setup_concurrency``; ``gateway.ws.session``),
    #: per process: each of ``serve``'s gateway processes has its own.
    ws_setups: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(64))
    #: The bulk-feed sockets of this process beside the other gateways' (``serve``
    #: with several); None: the only gateway, every bulk socket is taken.
    bulk_spread: BulkSpread | None = None
    #: This process's open bulk-feed sockets by integration key, each at most
    #: ``http.ws_max_bulk_sockets_per_key`` (``gateway.ws.key_sockets``).
    bulk_keys: KeySockets = field(default_factory=KeySockets)
    #: This process's open ``/ws`` sockets by account, each at most
    #: ``http.ws_max_sockets_per_account``, the newest kept (``gateway.ws.account_sockets``).
    account_sockets: AccountSockets[Session] = field(default_factory=AccountSockets)


def gateway_state(connection: HTTPConnection) -> GatewayState:
    """The state of the app serving ``connection`` (an HTTP request or a WebSocket)."""
    state = connection.app.state.gateway
    assert isinstance(state, GatewayState)
    return state
