"""The ``/ws`` frames in the OpenAPI document.

OpenAPI has no WebSocket operations, so the frames go in as schemas
(``components.schemas.WsClient_<type>`` / ``WsServer_<type>``: each frame's
``data``) and an ``x-websocket`` extension naming them by frame type, from
the same models the gateway parses and checks frames with
(``gateway.ws.frames``): the document cannot drift from the code. Its
``limits`` are the deployment's own (``gateway.ws.protocol.Limits``, from
the settings): the frame sizes per phase and the frame rate, with the codes
a client sees past them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gateway.location_batches import BatchBody
from gateway.ws.account_sockets import REPLACED_REASON
from gateway.ws.bulk import (
    BULK_CLIENT_FRAMES,
    BULK_SERVER_FRAMES,
    KEY_CAP_REASON,
    SPREAD_REASON,
)
from gateway.ws.codes import CloseCode, ErrorCode
from gateway.ws.frames import ADMINS_ONLY, AGENT_ONLY, CLIENT_FRAMES, SERVER_FRAMES
from gateway.ws.protocol import Limits


def _name(side: str, frame_type: str, prefix: str = "Ws") -> str:
    return f"{prefix}{side}_{frame_type.replace('.', '_')}"


def describe_limits(limits: Limits) -> dict[str, Any]:
    """What one socket may send, as the document states it."""
    return {
        "description": "Bounds of one socket's input. A frame above the bound of its "
        "phase closes the socket with `too_big_close_code`; frames beyond the token "
        "bucket (`frame_burst` at once, refilled at `frame_rate_per_s`) are answered by "
        "an `error` frame with `rate_limited_error_code`, then the socket is closed with "
        "`rate_limited_close_code`. An account holds at most `max_sockets_per_account` "
        "open sockets on one gateway process: once one more is authenticated, the "
        "account's oldest socket there is closed with `replaced_close_code` and "
        "`replaced_reason` (the newest is kept: it is the one its user holds).",
        "max_frame_bytes_before_auth": limits.max_auth_frame_bytes,
        "max_frame_bytes": limits.max_frame_bytes,
        "too_big_close_code": int(CloseCode.TOO_BIG),
        "frame_rate_per_s": limits.frame_rate,
        "frame_burst": limits.frame_burst,
        "rate_limited_error_code": ErrorCode.RATE_LIMITED.value,
        "rate_limited_close_code": int(CloseCode.POLICY_VIOLATION),
        "auth_timeout_s": limits.auth_timeout_s,
        "heartbeat_timeout_s": limits.heartbeat_timeout_s,
        "max_sockets_per_account": limits.max_sockets_per_account,
        "replaced_close_code": int(CloseCode.POLICY_VIOLATION),
        "replaced_reason": REPLACED_REASON,
        # Location fixes refused as overload, sent without an ``id``, are told
        # together at most this often (``ErrorData.refused``).
        "refusal_notice_s": limits.refusal_notice_s,
    }


def add_websocket_frames(document: dict[str, Any], limits: Limits | None = None) -> dict[str, Any]:
    """``document`` with the frames of ``GET /ws`` added (in place; returned), and the
    limits of one socket (``limits``; the defaults when not given). Frames only
    admin sockets are sent (``alert.created``, ``fleet.agents``: the dispatcher
    console's feed) are marked ``x-admins-only``; ``alert.updated`` carries its
    admin-only fields as optional properties, each described so."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})

    def register(
        side: str, frames: Mapping[str, type[BaseModel]], prefix: str = "Ws"
    ) -> dict[str, Any]:
        listed: dict[str, Any] = {}
        for frame_type, model in frames.items():
            name = _name(side, frame_type, prefix)
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for nested, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(nested, definition)
            schemas[name] = schema
            listed[frame_type] = {"data": {"$ref": f"#/components/schemas/{name}"}}
            if frame_type in AGENT_ONLY:
                listed[frame_type]["x-agents-only"] = True
            if side == "Server" and frame_type in ADMINS_ONLY:
                listed[frame_type]["x-admins-only"] = True
        return listed

    document["x-websocket"] = {
        "path": "/ws",
        "frame": '{"type": str, "id"?: str, "data": {...}}',
        "client": register("Client", CLIENT_FRAMES),
        "server": register("Server", SERVER_FRAMES),
        "limits": describe_limits(limits or Limits()),
    }
    # The bulk feed (issue 20): the body of POST /geofencing/locations, and the
    # frames of /ws/locations.
    body = BatchBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for nested, definition in body.pop("$defs", {}).items():
        schemas.setdefault(nested, definition)
    schemas["BatchBody"] = body
    document["x-websocket-locations"] = {
        "path": "/ws/locations",
        "description": "The bulk feed's socket, for integration keys only: `auth` with the "
        "key first, then `locations` frames (a batch each, answered `locations.ok`) and "
        "`ping`. Frames are answered one at a time, in order. With several gateway "
        "processes a socket may be closed with `spread_close_code` and `spread_reason` "
        "instead of `auth.ok`: another process holds fewer bulk sockets; connect again "
        "at once (the kernel may hand the new connection to another process). An open "
        "socket may be closed the same way after a frame's answer, when its process holds "
        "two or more bulk sockets than another: connect again and send again any frame "
        "not answered. A key holding `limits.max_sockets_per_key` open sockets on one "
        "gateway process has one more closed with `key_cap_close_code` and "
        "`key_cap_reason` instead of `auth.ok`: close another first.",
        "frame": '{"type": str, "id"?: str, "data": {...}}',
        "spread_close_code": int(CloseCode.TRY_AGAIN_LATER),
        "spread_reason": SPREAD_REASON,
        "key_cap_close_code": int(CloseCode.POLICY_VIOLATION),
        "key_cap_reason": KEY_CAP_REASON,
        "client": register("Client", BULK_CLIENT_FRAMES, "WsLocations"),
        "server": register("Server", BULK_SERVER_FRAMES, "WsLocations"),
        "limits": {
            "max_frame_bytes": (limits or Limits()).max_bulk_frame_bytes,
            "too_big_close_code": int(CloseCode.TOO_BIG),
            "auth_timeout_s": (limits or Limits()).auth_timeout_s,
            "heartbeat_timeout_s": (limits or Limits()).heartbeat_timeout_s,
            "max_sockets_per_key": (limits or Limits()).max_bulk_sockets_per_key,
        },
    }
    return document
