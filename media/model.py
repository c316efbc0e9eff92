"""The values of media: what a stored object is, as the core sees it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from actors.roles import Role


class MediaKind(enum.StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"


class Processing(enum.StrEnum):
    """Where an original is in processing (``POST /media/{id}/process``)."""

    NONE = "none"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RenditionKind(enum.StrEnum):
    """Derived objects, each stored and encrypted like an original."""

    #: An image's small JPEG, EXIF stripped.
    THUMBNAIL = "thumbnail"
    #: An image re-encoded without EXIF (no location), to share.
    SHARED = "shared"
    #: A video's first frame worth showing, as JPEG.
    POSTER = "poster"
    #: A video as H.264/AAC MP4 (plays everywhere).
    MP4 = "mp4"
    #: An audio recording as Opus in Ogg.
    OPUS = "opus"


@dataclass(frozen=True, slots=True)
class Part:
    """One stored object of a media's bytes: ``segments`` whole records (the
    media's last part may end with a short one), under key ``<media id>/<name>``."""

    name: str
    segments: int


@dataclass(frozen=True, slots=True)
class Sealed:
    """How an object's bytes are encrypted and where they lie (``media.sealing``).

    ``parts`` in order: a direct upload has one; a resumable upload one per
    accepted chunk, each under a name of its own, so two racing chunks never
    write the same key (the loser's part is deleted, never referenced).
    """

    key_id: str
    wrapped_key: bytes
    segment_size: int
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class MediaRow:
    """One stored object: an original, or a rendition of one (``parent_id``)."""

    id: UUID
    alert_id: UUID
    uploader_id: UUID
    uploader_role: Role
    content_type: str
    kind: MediaKind
    size: int
    sha256: str
    created_at: datetime
    sealed: Sealed
    parent_id: UUID | None = None
    rendition: RenditionKind | None = None
    processing: Processing = Processing.NONE
    processing_error: str | None = None
    deleted_at: datetime | None = None
    purge_after: datetime | None = None
    #: Deleted by its user while the alert was under duress: shown deleted to
    #: the user, kept (never purged) for the responders and admins.
    hidden_from_user: bool = False
    legal_hold: bool = False
    purged_at: datetime | None = None
    renditions: tuple[MediaRow, ...] = field(default=())


def object_key(media_id: UUID, name: str) -> str:
    """The object-store key of the object ``name`` of ``media_id`` (a part, a tail)."""
    return f"{media_id}/{name}"


@dataclass(frozen=True, slots=True)
class Upload:
    """A resumable (tus) upload in progress (``media.resumable``).

    ``offset`` of ``length`` bytes arrived. ``sealed.parts`` hold the whole
    segments ``0..n-1``; the ``offset - n * segment_size`` bytes past them (less
    than a segment) are one record at index ``n`` in the object ``tail`` (None
    when there are none). ``content_type`` and ``kind`` stay None until the
    first bytes are sniffed, which is always before a whole segment is stored.
    The id becomes the media id when the last byte arrives.
    """

    id: UUID
    alert_id: UUID
    uploader_id: UUID
    uploader_role: Role
    length: int
    offset: int
    sealed: Sealed
    tail: str | None
    content_type: str | None
    kind: MediaKind | None
    created_at: datetime
    expires_at: datetime
