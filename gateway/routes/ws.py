"""``GET /ws``: the WebSocket of user and agent apps (API.md, "WebSocket");
``GET /ws/locations``: the bulk feed's socket, for integration keys (issue 20).

The route only wires a :class:`~gateway.ws.session.Session` to this
process's ports (resolved when first used: they may be down); the protocol
lives in ``gateway.ws``.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from gateway.deps import get_entities, get_settings
from gateway.state import gateway_state
from gateway.ws.bulk import BulkDeps, BulkSocket
from gateway.ws.session import Session, SessionDeps

router = APIRouter(tags=["websocket"])


@router.websocket("/ws")
async def websocket(websocket: WebSocket) -> None:
    state = gateway_state(websocket)
    deps = SessionDeps(
        settings=get_settings(websocket),
        hub=state.ws_hub,
        sessions=state.ports.sessions,
        entities=lambda: get_entities(websocket),
        open_alerts=lambda: state.resync_reads,
        locations=state.locations,
        agent_sockets=state.agent_sockets,
        account_sockets=state.account_sockets,
        vetting=lambda: state.vetting_reads,
        approved_agents=state.approved_agents,
        setups=state.ws_setups,
        fleet_feed=state.fleet_feed,
        session_check=state.session_checks,
    )
    await Session(websocket, deps).run()


@router.websocket("/ws/locations")
async def bulk_locations(websocket: WebSocket) -> None:
    state = gateway_state(websocket)
    deps = BulkDeps(
        settings=get_settings(websocket),
        hub=state.ws_hub,
        sessions=state.ports.sessions,
        keys=state.ports.integration_keys,
        locations=state.locations,
        spread=state.bulk_spread,
        key_sockets=state.bulk_keys,
    )
    await BulkSocket(websocket, deps).run()
