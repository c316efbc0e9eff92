"""``/media``: evidence attached to an alert (API.md, issue 17).

The files are streamed: an upload goes from the socket through the sealing
(``media.vault``) into the object store a segment at a time, and a read comes
back the same way, so the gateway holds a segment or two per transfer,
whatever the file's size. Who may do what is ``media.policy``; a caller who
may not read a file (or its alert) is told it does not exist (404).

Endpoints (API.md's, plus the additive ``/meta`` and ``/hold``):

* ``POST /media/upload``: ``multipart/form-data`` with ``file`` and
  ``alert_id``, or the file as the raw body with ``?alert_id=``. 201 with the
  metadata. The type is sniffed from the content (415 if not an allow-listed
  image, audio or video), sizes are limited per file and per alert (413).
* ``GET /media/{id}``: the bytes, with single ``Range`` requests (206/416).
* ``GET /media/{id}/meta``, ``GET /media/alert/{alert_id}``: metadata.
* ``DELETE /media/{id}``: soft delete (204), purged after the retention.
* ``PUT /media/{id}/hold``: an admin's legal hold, which blocks deletion.
* ``POST /media/{id}/process``: (re)queue processing (202).

Resumable uploads (tus 1.0) are ``gateway.routes.media_tus``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from actors.alert_state import AlertState
from actors.roles import Role
from gateway.auth.models import problem_responses
from gateway.auth.principal import Principal
from gateway.byte_ranges import UNSATISFIABLE, byte_range
from gateway.deps import (
    AdminPrincipal,
    AlertsDep,
    CurrentPrincipal,
    MediaRecordsDep,
    SettingsDep,
    VaultDep,
)
from gateway.fields import PLAIN_TEXT
from gateway.form_stream import FormError, FormStream, boundary_of
from gateway.ports import AlertReads
from gateway.problems import ProblemHTTPException
from gateway.ratelimit import rate_limit
from media.errors import TooLarge
from media.model import MediaRow, Processing
from media.policy import (
    DeleteOutcome,
    delete_verdict,
    may_read,
    may_read_alert_media,
    may_upload,
)
from media.ports import MediaRecords
from media.vault import Vault, Written

log = logging.getLogger(__name__)

router = APIRouter(prefix="/media", tags=["media"])
# File ids are matched as UUIDs in the path (``{media_id:uuid}``), so
# ``/media/upload`` and ``/media/uploads`` are never taken for a file id.

#: Rate limits of /media, shared with the resumable uploads (``media_tus``): a
#: tus creation counts as an upload, its HEAD as a read, its DELETE as a write.
upload_limit = Depends(
    rate_limit("media:upload", key="principal", rule="media_upload_per_principal")
)
read_limit = Depends(
    rate_limit("media:read", key="principal", rule="media_read_per_principal", per_route=True)
)
write_limit = Depends(rate_limit("media:write", key="principal", rule="media_write_per_principal"))

#: Bytes a form adds around its file (boundaries, headers, the alert id).
FORM_OVERHEAD: Final = 64 * 1024
#: Content types of a raw-body upload (the content is sniffed anyway).
RAW_TYPES: Final = ("image/", "audio/", "video/", "application/octet-stream")


_DESCRIPTIONS = {
    400: "Malformed form or headers.",
    401: "Missing, invalid or expired token.",
    403: "The caller may read the file but not do this to it.",
    404: "No such file or alert, or not one the caller may see.",
    409: "The file is under legal hold.",
    413: "Over the per-file or per-alert size limit.",
    415: "Not an accepted image, audio or video type (judged by content).",
    416: "The range starts past the end of the file (see Content-Range).",
    422: "Malformed id, query or body.",
    429: "Rate limited; retry after the `Retry-After` header's seconds.",
    503: "A backing service did not answer; see Retry-After.",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Problem-details responses with this module's descriptions."""
    documented = problem_responses(*statuses)
    return {
        status: {**entry, "description": _DESCRIPTIONS[int(status)]}
        for status, entry in documented.items()
    }


# --- bodies -------------------------------------------------------------------------


class RenditionOut(BaseModel):
    """A derived file (thumbnail, poster, re-encoding); read it at ``GET /media/{id}``."""

    id: UUID
    rendition: str = Field(description="thumbnail, shared, poster, mp4 or opus")
    content_type: str
    size: int
    sha256: str
    created_at: datetime


class MediaOut(BaseModel):
    """A file's metadata (API.md's fields, then additions). Never a location."""

    id: UUID
    alert_id: UUID
    content_type: str = Field(description="Sniffed from the content, not the upload's header.")
    size: int = Field(description="Bytes of the file as uploaded.")
    sha256: str = Field(description="SHA-256 of the file as uploaded, hex.")
    created_at: datetime
    kind: str = Field(description="image, audio or video")
    uploader_role: str = Field(description="user, agent or admin")
    processing: str = Field(description="none, queued, running, done or failed")
    processing_error: str | None = None
    renditions: list[RenditionOut] = Field(default_factory=list)
    deleted_at: datetime | None = Field(
        None, description="Set on a deleted file (only admins, and agents for kept evidence)."
    )
    legal_hold: bool | None = Field(None, description="Admins only: deletion is blocked.")

    @classmethod
    def of(cls, row: MediaRow, role: Role) -> MediaOut:
        admin = role is Role.ADMIN
        return cls(
            id=row.id,
            alert_id=row.alert_id,
            content_type=row.content_type,
            size=row.size,
            sha256=row.sha256,
            created_at=row.created_at,
            kind=row.kind.value,
            uploader_role=row.uploader_role.value,
            processing=row.processing.value,
            processing_error=row.processing_error if admin else None,
            renditions=[
                RenditionOut(
                    id=r.id,
                    rendition=r.rendition.value if r.rendition else "",
                    content_type=r.content_type,
                    size=r.size,
                    sha256=r.sha256,
                    created_at=r.created_at,
                )
                for r in row.renditions
            ],
            deleted_at=row.deleted_at if role is not Role.USER else None,
            legal_hold=row.legal_hold if admin else None,
        )


class MediaList(BaseModel):
    items: list[MediaOut]


class HoldIn(BaseModel):
    held: bool = Field(description="true places the legal hold, false releases it")
    reason: Annotated[str, PLAIN_TEXT] | None = Field(None, max_length=500)


# --- helpers ------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _not_found() -> ProblemHTTPException:
    return ProblemHTTPException(404, detail="media not found")


async def _alert_access(
    alerts: AlertReads, alert_id: UUID, principal: Principal
) -> tuple[AlertState, bool]:
    """The alert and whether the caller may read its evidence (``media.policy``)."""
    state = await alerts.load_alert(alert_id)
    if state is None:
        raise _not_found()
    return state, may_read_alert_media(state, principal.id, principal.role, _now())


async def _readable(
    records: MediaRecords, alerts: AlertReads, media_id: UUID, principal: Principal
) -> tuple[MediaRow, MediaRow, AlertState]:
    """``(row, original, alert)``: the file asked for (an original or a rendition),
    the original it belongs to, and its alert; 404 unless the caller may read it."""
    row = await records.get(media_id)
    if row is None:
        raise _not_found()
    original = row
    if row.parent_id is not None:
        original = await records.get(row.parent_id) or row
    state, readable = await _alert_access(alerts, row.alert_id, principal)
    if not may_read(original, readable, principal.role) or row.purged_at is not None:
        raise _not_found()
    return row, original, state


async def check_uploadable(alerts: AlertReads, alert_id: UUID, principal: Principal) -> AlertState:
    """The alert ``principal`` may add evidence to (``media.policy``), or 404;
    direct and resumable uploads (``media_tus``) both check with this."""
    state, readable = await _alert_access(alerts, alert_id, principal)
    if not readable or not may_upload(state, principal.id, principal.role):
        # Never confirm the alert exists to someone who may not add to it.
        raise ProblemHTTPException(404, detail="alert not found")
    return state


def _alert_id(value: str | None) -> UUID:
    if value is None:
        raise ProblemHTTPException(422, detail="alert_id is required (form field or query)")
    try:
        return UUID(value)
    except ValueError:
        raise ProblemHTTPException(422, detail="alert_id is not a UUID") from None


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body; a client that goes away ends it (the upload then fails)."""
    async for chunk in request.stream():
        if chunk:
            yield chunk


def _declared_too_large(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge("the file is too large", limit=limit)


async def store_original(
    *,
    vault: Vault,
    records: MediaRecords,
    media_id: UUID,
    alert_id: UUID,
    principal: Principal,
    written: Written,
    alert_limit: int,
) -> MediaRow:
    """Record a written file; its objects are removed if the record is refused."""
    row = MediaRow(
        id=media_id,
        alert_id=alert_id,
        uploader_id=principal.id,
        uploader_role=principal.role,
        content_type=written.sniffed.content_type,
        kind=written.sniffed.kind,
        size=written.size,
        sha256=written.sha256,
        created_at=_now(),
        sealed=written.sealed,
    )
    try:
        return await records.insert(row, alert_limit=alert_limit)
    except BaseException:
        await vault.remove(media_id)
        raise


# --- routes -------------------------------------------------------------------------

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "alert_id"],
                    "properties": {
                        "alert_id": {"type": "string", "format": "uuid"},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "A form with `file` and `alert_id`, or the file itself as the body "
        "(any image/*, audio/*, video/* or application/octet-stream type) with `?alert_id=`.",
    }
}


@router.post(
    "/upload",
    status_code=201,
    response_model=MediaOut,
    summary="Upload a photo, recording or video to an alert (streamed)",
    responses=_problems(400, 401, 404, 413, 415, 422, 429, 503),
    openapi_extra=_UPLOAD_BODY,
    dependencies=[upload_limit],
)
async def upload(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    alerts: AlertsDep,
    records: MediaRecordsDep,
    vault: VaultDep,
    settings: SettingsDep,
    alert_id: Annotated[str | None, Query(description="The alert (raw-body uploads)")] = None,
) -> MediaOut:
    """The alert's user, its assigned agent and admins may upload. The file is
    sealed and stored as it arrives; nothing is kept if it is refused."""
    limit = settings.media.max_upload_bytes
    content_type = request.headers.get("content-type", "")
    media_id = uuid4()
    checked: AlertState | None = None
    try:
        if content_type.startswith("multipart/"):
            _declared_too_large(request, limit + FORM_OVERHEAD)
            form = FormStream(_body(request), boundary_of(content_type), "file")
            if not await form.until_file():
                raise ProblemHTTPException(422, detail="the form has no file part")
            early = alert_id or form.fields.get("alert_id")
            if early is not None:
                checked = await check_uploadable(alerts, _alert_id(early), principal)
            written = await vault.write(media_id, form.file_chunks(), max_bytes=limit)
            target = _alert_id(alert_id or form.fields.get("alert_id"))
        elif content_type.startswith(RAW_TYPES):
            _declared_too_large(request, limit)
            target = _alert_id(alert_id)
            checked = await check_uploadable(alerts, target, principal)
            written = await vault.write(media_id, _body(request), max_bytes=limit)
        else:
            raise ProblemHTTPException(
                415, detail="send multipart/form-data, or the file with its media type"
            )
    except FormError as exc:
        raise ProblemHTTPException(400, detail=str(exc)) from None
    except ClientDisconnect:
        log.info("upload %s abandoned by the client", media_id)
        raise ProblemHTTPException(400, detail="the upload was interrupted") from None
    if checked is None or checked.id != target:
        try:
            await check_uploadable(alerts, target, principal)
        except BaseException:
            await vault.remove(media_id)
            raise
    row = await store_original(
        vault=vault,
        records=records,
        media_id=media_id,
        alert_id=target,
        principal=principal,
        written=written,
        alert_limit=settings.media.max_alert_bytes,
    )
    response.headers["Location"] = f"/media/{media_id}"
    return MediaOut.of(row, principal.role)


@router.get(
    "/alert/{alert_id}",
    response_model=MediaList,
    summary="The files of an alert, oldest first",
    responses=_problems(401, 404, 422, 429, 503),
    dependencies=[read_limit],
)
async def list_for_alert(
    alert_id: UUID, principal: CurrentPrincipal, alerts: AlertsDep, records: MediaRecordsDep
) -> MediaList:
    _state, readable = await _alert_access(alerts, alert_id, principal)
    if not readable:
        raise ProblemHTTPException(404, detail="alert not found")
    rows = await records.for_alert(alert_id)
    return MediaList(
        items=[MediaOut.of(r, principal.role) for r in rows if may_read(r, True, principal.role)]
    )


@router.get(
    "/{media_id:uuid}/meta",
    response_model=MediaOut,
    summary="A file's metadata, processing state and renditions",
    responses=_problems(401, 404, 422, 429, 503),
    dependencies=[read_limit],
)
async def get_meta(
    media_id: UUID, principal: CurrentPrincipal, alerts: AlertsDep, records: MediaRecordsDep
) -> MediaOut:
    row, _original, _state = await _readable(records, alerts, media_id, principal)
    return MediaOut.of(row, principal.role)


@router.get(
    "/{media_id:uuid}",
    summary="A file's bytes (single byte ranges supported)",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The whole file.", "content": {"application/octet-stream": {}}},
        206: {"description": "The range asked for.", "content": {"application/octet-stream": {}}},
        **_problems(401, 404, 416, 422, 429, 503),
    },
    dependencies=[read_limit],
)
async def get_file(
    media_id: UUID,
    request: Request,
    principal: CurrentPrincipal,
    alerts: AlertsDep,
    records: MediaRecordsDep,
    vault: VaultDep,
) -> Response:
    """Streams the file (opened segment by segment); ``Range: bytes=a-b`` gives 206."""
    row, _original, _state = await _readable(records, alerts, media_id, principal)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{row.sha256}"',
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="{row.id}"',
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    wanted = byte_range(request.headers.get("range"), row.size)
    if wanted is UNSATISFIABLE:
        raise ProblemHTTPException(
            416,
            detail="the range is past the end",
            headers={"Content-Range": f"bytes */{row.size}"},
        )
    if row.size == 0:
        return Response(b"", media_type=row.content_type, headers=headers)
    if wanted is None:
        start, end, status = 0, row.size, 200
    else:
        assert isinstance(wanted, tuple)
        start, end = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{row.size}"
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(
        vault.read(row, start, end),
        status_code=status,
        media_type=row.content_type,
        headers=headers,
    )


@router.delete(
    "/{media_id:uuid}",
    status_code=204,
    summary="Delete a file (soft: purged after the retention period)",
    responses=_problems(401, 403, 404, 409, 422, 429, 503),
    dependencies=[write_limit],
)
async def delete_file(
    media_id: UUID,
    principal: CurrentPrincipal,
    alerts: AlertsDep,
    records: MediaRecordsDep,
    settings: SettingsDep,
) -> Response:
    """The uploader or an admin; a held file is 409. Renditions go with their original."""
    row, original, state = await _readable(records, alerts, media_id, principal)
    if row.parent_id is not None:
        raise ProblemHTTPException(403, detail="delete the original; its renditions go with it")
    now = _now()
    verdict = delete_verdict(
        original, state, principal.id, principal.role, now, settings.media.retention_s
    )
    if verdict.outcome is DeleteOutcome.FORBIDDEN:
        raise ProblemHTTPException(403, detail="only the uploader or an admin may delete a file")
    if verdict.outcome is DeleteOutcome.HELD:
        raise ProblemHTTPException(409, detail="the file is under legal hold")
    done = await records.mark_deleted(original, now, verdict.purge_after, by=principal.id)
    if not done:  # held or deleted in between
        current = await records.get(original.id)
        if current is not None and current.legal_hold:
            raise ProblemHTTPException(409, detail="the file is under legal hold")
        raise _not_found()
    return Response(status_code=204)


@router.put(
    "/{media_id:uuid}/hold",
    response_model=MediaOut,
    summary="Place or release a legal hold (admins)",
    responses=_problems(401, 403, 404, 422, 429, 503),
    dependencies=[write_limit],
)
async def set_hold(
    media_id: UUID,
    body: HoldIn,
    principal: AdminPrincipal,
    alerts: AlertsDep,
    records: MediaRecordsDep,
) -> MediaOut:
    """A held file cannot be deleted nor purged; a deleted one is kept while held."""
    row, original, _state = await _readable(records, alerts, media_id, principal)
    if row.parent_id is not None:
        raise ProblemHTTPException(403, detail="hold the original; its renditions go with it")
    held = await records.set_hold(original, body.held, principal.id, _now(), body.reason)
    if held is None:
        raise _not_found()
    return MediaOut.of(held, principal.role)


@router.post(
    "/{media_id:uuid}/process",
    status_code=202,
    response_model=MediaOut,
    summary="Queue a file's processing (thumbnails, poster, re-encodings)",
    responses=_problems(401, 403, 404, 422, 429, 503),
    dependencies=[write_limit],
)
async def process(
    media_id: UUID, principal: CurrentPrincipal, alerts: AlertsDep, records: MediaRecordsDep
) -> MediaOut:
    """Idempotent while queued or running; processing runs off the request path
    (``media-processing`` topic, then a Ray task)."""
    row, original, _state = await _readable(records, alerts, media_id, principal)
    if row.parent_id is not None:
        raise ProblemHTTPException(403, detail="renditions are not processed")
    await records.set_processing(
        original,
        Processing.QUEUED,
        _now(),
        only_from=(Processing.NONE, Processing.DONE, Processing.FAILED),
    )
    current = await records.get(original.id)
    return MediaOut.of(current or original, principal.role)
