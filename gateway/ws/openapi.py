"""The ``/ws`` frames in the OpenAPI document.

OpenAPI has no WebSocket operations, so the frames go in as schemas
(``components.schemas.WsClient_<type>`` / ``WsServer_<type>``: each frame's
``data``) and an ``x-websocket`` extension naming them by frame type, from
the same models the gateway parses and checks frames with
(``gateway.ws.frames``): the document cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gateway.ws.frames import AGENT_ONLY, CLIENT_FRAMES, SERVER_FRAMES


def _name(side: str, frame_type: str) -> str:
    return f"Ws{side}_{frame_type.replace('.', '_')}"


def add_websocket_frames(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the frames of ``GET /ws`` added (in place; returned)."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})

    def register(side: str, frames: Mapping[str, type[BaseModel]]) -> dict[str, Any]:
        listed: dict[str, Any] = {}
        for frame_type, model in frames.items():
            name = _name(side, frame_type)
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for nested, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(nested, definition)
            schemas[name] = schema
            listed[frame_type] = {"data": {"$ref": f"#/components/schemas/{name}"}}
            if frame_type in AGENT_ONLY:
                listed[frame_type]["x-agents-only"] = True
        return listed

    document["x-websocket"] = {
        "path": "/ws",
        "frame": '{"type": str, "id"?: str, "data": {...}}',
        "client": register("Client", CLIENT_FRAMES),
        "server": register("Server", SERVER_FRAMES),
    }
    return document
