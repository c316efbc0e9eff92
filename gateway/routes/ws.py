"""``GET /ws``: the WebSocket of user and agent apps (API.md, "WebSocket").

The route only wires a :class:`~gateway.ws.session.Session` to this
process's backends; the protocol lives in ``gateway.ws``.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from gateway.deps import get_entities, get_pool, get_redis, get_settings
from gateway.state import gateway_state
from gateway.ws.session import Session, SessionDeps
from persistence.stores.open_alerts import PostgresOpenAlerts

router = APIRouter(tags=["websocket"])


@router.websocket("/ws")
async def websocket(websocket: WebSocket) -> None:
    deps = SessionDeps(
        settings=get_settings(websocket),
        hub=gateway_state(websocket).ws_hub,
        redis=lambda: get_redis(websocket),
        entities=lambda: get_entities(websocket),
        open_alerts=lambda: PostgresOpenAlerts(get_pool(websocket)),
        locations=gateway_state(websocket).locations,
        responding=gateway_state(websocket).responding.known,
    )
    await Session(websocket, deps).run()
