"""``/users/devices``: the caller's push registrations, and the VAPID key.

Any signed-in account (user, agent or admin) registers the devices its app
runs on, to be told by web push (``notify.webpush``) of what its app would
have shown while the app is not open: offers to agents, status changes to
users. ``web`` tokens are PushSubscription JSON, checked and stored
canonical (``gateway.devices``); ``android`` and ``ios`` tokens are kept
for native apps (nothing sends to them yet).

Registration is idempotent: the same token again answers 200 with the same
id (201 the first time) and bumps ``last_seen_at``. An account keeps at most
``notify.max_devices_per_account`` devices: registering one more evicts the
one seen least recently (browsers renew subscriptions; a stale one must not
lock the account out). A device of another account reads as unknown (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, Field

from gateway.auth.models import RequestBody, problem_responses
from gateway.deps import CurrentPrincipal, DevicesDep, SettingsDep, VapidKeysDep
from gateway.devices import MAX_TOKEN_CHARS, push_token
from gateway.ports import DeviceRow
from gateway.problems import invalid
from gateway.ratelimit import rate_limit

_limit = Depends(rate_limit("devices", key="principal", rule="per_principal", per_route=True))

router = APIRouter(prefix="/users/devices", tags=["devices"], dependencies=[_limit])

_AUTH_ERRORS = (401, 403, 429)

Platform = Literal["web", "android", "ios"]


class DeviceIn(RequestBody):
    platform: Platform = Field(description="`web` (a PWA), `android` or `ios`")
    push_token: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_CHARS)] = Field(
        description=(
            "For `web`: the JSON text of the browser's PushSubscription "
            '(`JSON.stringify(subscription)`: `{"endpoint":"https://…",'
            '"keys":{"p256dh":"…","auth":"…"}}`); the endpoint must be https, '
            "`p256dh` 65 bytes and `auth` 16 bytes, base64url. For `android`/`ios`: "
            "the FCM or APNs token."
        )
    )


class DeviceOut(BaseModel):
    id: UUID
    platform: Platform
    created_at: datetime
    last_seen_at: datetime = Field(description="the last registration of this token")


class DeviceList(BaseModel):
    items: list[DeviceOut] = Field(description="most recently seen first")


class VapidPublicKey(BaseModel):
    public_key: str = Field(
        description=(
            "The VAPID application server key, unpadded base64url of the 65-byte P-256 "
            "point: decode it to bytes for `PushManager.subscribe({applicationServerKey})`."
        )
    )


def _out(device: DeviceRow) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        platform=device.platform,  # the table's CHECK keeps it one of Platform
        created_at=device.created_at,
        last_seen_at=device.last_seen_at,
    )


@router.get(
    "/vapid-public-key",
    responses=problem_responses(*_AUTH_ERRORS),
    summary="The VAPID application server key for PushManager.subscribe",
)
async def vapid_public_key(_principal: CurrentPrincipal, keys: VapidKeysDep) -> VapidPublicKey:
    return VapidPublicKey(public_key=await keys.public_key())


@router.post(
    "",
    status_code=201,
    responses={
        200: {"model": DeviceOut, "description": "The token was registered before: same id."},
        **problem_responses(*_AUTH_ERRORS, 422),
    },
    summary="Register this device for push (idempotent; the oldest evicted past the cap)",
)
async def register_device(
    principal: CurrentPrincipal,
    body: DeviceIn,
    devices: DevicesDep,
    settings: SettingsDep,
    response: Response,
) -> DeviceOut:
    cfg = settings.notify
    try:
        token = push_token(
            body.platform, body.push_token, allow_loopback_http=cfg.webpush_allow_loopback_http
        )
    except ValueError as exc:
        raise invalid(("body", "push_token"), str(exc)) from None
    device, created = await devices.register(
        principal.id, body.platform, token, limit=cfg.max_devices_per_account
    )
    if not created:
        response.status_code = 200
    return _out(device)


@router.get(
    "",
    responses=problem_responses(*_AUTH_ERRORS),
    summary="My registered devices, most recently seen first",
)
async def list_devices(principal: CurrentPrincipal, devices: DevicesDep) -> DeviceList:
    return DeviceList(items=[_out(d) for d in await devices.list_devices(principal.id)])


@router.delete(
    "/{device_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(*_AUTH_ERRORS, 404, 422),
    summary="Unregister one of my devices (404 for another account's)",
)
async def delete_device(
    principal: CurrentPrincipal, device_id: UUID, devices: DevicesDep
) -> Response:
    if not await devices.delete_device(principal.id, device_id):
        raise HTTPException(status_code=404, detail="no such device")
    return Response(status_code=204)
