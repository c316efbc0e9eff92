"""``/media/uploads``: resumable uploads over tus 1.0 (core, creation,
termination, expiration), for evidence sent over a bad mobile connection.

* ``OPTIONS /media/uploads``: what the server supports (no token needed).
* ``POST /media/uploads``: create an upload. ``Upload-Length`` is required (no
  deferred length) and ``Upload-Metadata`` must carry ``alert_id``; who may
  upload is as for ``POST /media/upload`` (404 otherwise). 201 with
  ``Location: /media/uploads/{id}`` and ``Upload-Expires``.
* ``HEAD /media/uploads/{id}``: ``Upload-Offset`` and ``Upload-Length``.
* ``PATCH /media/uploads/{id}``: ``application/offset+octet-stream`` bytes at
  ``Upload-Offset`` (409 if it is not the upload's). 204 with the new
  ``Upload-Offset``; the chunk that brings the last byte turns the upload into
  the file ``{id}`` (``Media-Id`` header; ``GET /media/{id}`` serves it). A
  chunk cut short by the network keeps the bytes that arrived.
* ``DELETE /media/uploads/{id}``: termination (204); the stored bytes go.

Every answer carries ``Tus-Resumable: 1.0.0``; a request without it (but
``OPTIONS``) is 412. Only the uploader sees an upload: anyone else gets 404,
as for an expired one (tus allows 404 or 410; 404 says no more than needed).
Expired uploads are deleted by ``media.resumable.expire_uploads``. The sealing
and its guarantees are ``media.resumable``'s.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any, Final
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from gateway.auth.principal import Principal
from gateway.deps import AlertsDep, CurrentPrincipal, MediaUploadsDep, SettingsDep, VaultDep
from gateway.problems import ProblemHTTPException
from gateway.ratelimit import rate_limit
from gateway.routes.media import check_uploadable, read_limit, upload_limit, write_limit
from media import resumable
from media.errors import NotMedia, TooLarge, UploadGone, UploadMoved
from media.model import Upload
from media.ports import MediaUploads

log = logging.getLogger(__name__)

TUS_VERSION: Final = "1.0.0"
TUS_EXTENSIONS: Final = "creation,termination,expiration"
OFFSET_OCTET_STREAM: Final = "application/offset+octet-stream"
#: Request headers a browser client sends (CORS ``allow_headers``).
TUS_REQUEST_HEADERS: Final = ("Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata")
#: Response headers a browser client reads (CORS ``expose_headers``).
TUS_RESPONSE_HEADERS: Final = (
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Expires",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Media-Id",
)

_DIGITS = re.compile(r"[0-9]{1,19}")


class TusRoute(APIRoute):
    """A route whose every answer, problems included, carries ``Tus-Resumable``
    (stamped on the way out, after the exception handlers made their response)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Tus-Resumable"] = TUS_VERSION
            await send(message)

        await super().handle(scope, receive, stamped)


async def _tus_resumable(
    tus_resumable: Annotated[
        str | None, Header(description="The tus version of the client: 1.0.0")
    ] = None,
) -> None:
    if tus_resumable != TUS_VERSION:
        raise ProblemHTTPException(
            412,
            detail=f"send Tus-Resumable: {TUS_VERSION}",
            headers={"Tus-Version": TUS_VERSION},
        )


router = APIRouter(
    prefix="/media/uploads",
    tags=["media"],
    route_class=TusRoute,
)

_tus = Depends(_tus_resumable)
_chunk_limit = Depends(rate_limit("media:chunk", key="principal", rule="media_chunk_per_principal"))


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed or missing tus headers.",
        401: "Missing, invalid or expired token.",
        404: "No such upload (or alert), not the caller's, or expired.",
        409: "Upload-Offset is not the upload's offset; ask it with HEAD.",
        412: "Tus-Resumable: 1.0.0 is missing.",
        413: "Over the per-file or per-alert size limit, or past Upload-Length.",
        415: "Not application/offset+octet-stream, or the file is not an accepted "
        "image, audio or video type (judged by content).",
        422: "Malformed id.",
        429: "Rate limited; retry after the `Retry-After` header's seconds.",
        503: "A backing service did not answer; see Retry-After.",
    }
    return {status: {"description": descriptions[status]} for status in statuses}


# --- helpers ------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _http_date(at: datetime) -> str:
    return format_datetime(at.astimezone(UTC), usegmt=True)


def _count(value: str | None, name: str) -> int:
    if value is None:
        raise ProblemHTTPException(400, detail=f"the {name} header is required")
    if not _DIGITS.fullmatch(value.strip()):
        raise ProblemHTTPException(400, detail=f"{name} is not a non-negative integer")
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """``Upload-Metadata`` (``key base64value`` pairs, comma-separated; a key may
    have no value) as text; 400 when malformed."""
    found: dict[str, str] = {}
    if value is None or not value.strip():
        return found
    for pair in value.split(","):
        words = pair.strip().split(" ")
        if not words[0] or len(words) > 2 or words[0] in found:
            raise ProblemHTTPException(400, detail="Upload-Metadata is malformed")
        try:
            decoded = base64.b64decode(words[1], validate=True) if len(words) == 2 else b""
            found[words[0]] = decoded.decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ProblemHTTPException(
                400, detail=f"Upload-Metadata {words[0]!r} is not base64 of UTF-8 text"
            ) from None
    return found


def _tus_headers(upload: Upload) -> dict[str, str]:
    return {
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Upload-Expires": _http_date(upload.expires_at),
    }


def _no_upload() -> ProblemHTTPException:
    return ProblemHTTPException(404, detail="upload not found")


async def _own(uploads: MediaUploads, upload_id: UUID, principal: Principal) -> Upload:
    """The caller's upload, not expired; 404 otherwise (never saying which)."""
    upload = await uploads.get(upload_id)
    if upload is None or upload.uploader_id != principal.id or upload.expires_at <= _now():
        raise _no_upload()
    return upload


class _Body:
    """The request body; a client that goes away ends it early (``cut``)."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self.cut = False

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._request.stream():
                if chunk:
                    yield chunk
        except ClientDisconnect:
            self.cut = True


# --- routes -------------------------------------------------------------------------


@router.options(
    "",
    status_code=204,
    summary="The tus versions, extensions and largest size the server supports",
    response_class=Response,
)
async def options(settings: SettingsDep) -> Response:
    return Response(
        status_code=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(settings.media.max_upload_bytes),
        },
    )


@router.post(
    "",
    status_code=201,
    summary="Create a resumable upload to an alert (tus creation)",
    response_class=Response,
    responses={
        201: {"description": "Created; send the bytes to the `Location` with PATCH."},
        **_problems(400, 401, 404, 412, 413, 415, 429, 503),
    },
    dependencies=[_tus, upload_limit],
)
async def create(
    principal: CurrentPrincipal,
    alerts: AlertsDep,
    uploads: MediaUploadsDep,
    vault: VaultDep,
    settings: SettingsDep,
    upload_length: Annotated[str | None, Header(description="The file's size in bytes")] = None,
    upload_metadata: Annotated[
        str | None, Header(description="Must carry `alert_id` (base64, as tus says)")
    ] = None,
    upload_defer_length: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """The alert's user, its assigned agent and admins may upload."""
    if upload_defer_length is not None:
        raise ProblemHTTPException(400, detail="a deferred Upload-Length is not supported")
    length = _count(upload_length, "Upload-Length")
    limit = settings.media.max_upload_bytes
    if length > limit:
        raise TooLarge("the file is too large", limit=limit)
    if length == 0:
        raise NotMedia("an empty file is not an image, audio or video")
    raw_alert = parse_metadata(upload_metadata).get("alert_id")
    if raw_alert is None:
        raise ProblemHTTPException(400, detail="Upload-Metadata must carry alert_id")
    try:
        alert_id = UUID(raw_alert)
    except ValueError:
        raise ProblemHTTPException(400, detail="alert_id is not a UUID") from None
    await check_uploadable(alerts, alert_id, principal)
    upload = resumable.new_upload(
        vault.keys,
        upload_id=uuid4(),
        alert_id=alert_id,
        uploader_id=principal.id,
        uploader_role=principal.role,
        length=length,
        now=_now(),
        expiry_s=settings.media.upload_expiry_s,
    )
    await uploads.create(upload, alert_limit=settings.media.max_alert_bytes)
    return Response(
        status_code=201,
        headers={
            "Location": f"/media/uploads/{upload.id}",
            "Upload-Expires": _http_date(upload.expires_at),
        },
    )


@router.head(
    "/{upload_id}",
    summary="How many bytes of an upload arrived (tus core)",
    response_class=Response,
    responses={
        200: {"description": "`Upload-Offset` and `Upload-Length`."},
        **_problems(401, 404, 412, 422, 429, 503),
    },
    dependencies=[_tus, read_limit],
)
async def offset(
    upload_id: UUID, principal: CurrentPrincipal, uploads: MediaUploadsDep
) -> Response:
    upload = await _own(uploads, upload_id, principal)
    return Response(status_code=200, headers={**_tus_headers(upload), "Cache-Control": "no-store"})


_PATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {OFFSET_OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
        "description": "The bytes of the file from `Upload-Offset` on.",
    }
}


@router.patch(
    "/{upload_id}",
    status_code=204,
    summary="Send bytes of an upload from its offset (tus core)",
    response_class=Response,
    responses={
        204: {
            "description": "Stored; `Upload-Offset` is the new offset. The last chunk "
            "answers `Media-Id`: the file, now at `GET /media/{id}`."
        },
        **_problems(400, 401, 404, 409, 412, 413, 415, 422, 429, 503),
    },
    openapi_extra=_PATCH_BODY,
    dependencies=[_tus, _chunk_limit],
)
async def append(
    upload_id: UUID,
    request: Request,
    principal: CurrentPrincipal,
    uploads: MediaUploadsDep,
    vault: VaultDep,
    settings: SettingsDep,
    upload_offset: Annotated[str | None, Header(description="Where these bytes start")] = None,
) -> Response:
    """Bytes past the upload's length are refused (413) and nothing is kept of
    that request; a file that is not media (415) ends the upload."""
    upload = await _own(uploads, upload_id, principal)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != OFFSET_OCTET_STREAM:
        raise ProblemHTTPException(415, detail=f"send the bytes as {OFFSET_OCTET_STREAM}")
    at = _count(upload_offset, "Upload-Offset")
    if at != upload.offset:
        raise ProblemHTTPException(
            409,
            detail=f"the upload is at offset {upload.offset}, not {at}",
            headers={"Upload-Offset": str(upload.offset)},
        )
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isdigit()
        and upload.offset + int(declared) > upload.length
    ):
        raise TooLarge("the body goes past Upload-Length", limit=upload.length - upload.offset)
    body = _Body(request)
    try:
        done = await resumable.append(
            vault,
            uploads,
            upload,
            body.chunks(),
            now=_now(),
            alert_limit=settings.media.max_alert_bytes,
        )
    except UploadMoved as exc:
        raise ProblemHTTPException(409, detail=exc.public_detail) from None
    except UploadGone:
        raise _no_upload() from None
    if body.cut:
        log.info("upload %s: chunk cut at offset %s, kept", upload.id, done.upload.offset)
    headers = {
        "Upload-Offset": str(done.upload.offset),
        "Upload-Expires": _http_date(done.upload.expires_at),
    }
    if done.media is not None:
        headers["Media-Id"] = str(done.media.id)
        log.info("upload %s complete: %s bytes", upload.id, done.media.size)
    return Response(status_code=204, headers=headers)


@router.delete(
    "/{upload_id}",
    status_code=204,
    summary="Abandon an upload; what it stored is deleted (tus termination)",
    response_class=Response,
    responses=_problems(401, 404, 412, 422, 429, 503),
    dependencies=[_tus, write_limit],
)
async def terminate(
    upload_id: UUID, principal: CurrentPrincipal, uploads: MediaUploadsDep, vault: VaultDep
) -> Response:
    upload = await _own(uploads, upload_id, principal)
    if not await resumable.terminate(vault.objects, uploads, upload.id):
        raise _no_upload()
    return Response(status_code=204)
