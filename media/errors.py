"""The errors of media, one root (``MediaError``); ``gateway.errors`` maps them."""

from __future__ import annotations


class MediaError(Exception):
    """Root of the package's errors; ``retriable`` as in ``actors.store_errors``."""

    retriable: bool = False


class NotMedia(MediaError):
    """The content is not one of the allow-listed image, audio or video types."""

    public_detail = (
        "The file is not an accepted image, audio or video type (judged by its content, "
        "not its name or Content-Type)."
    )


class TooLarge(MediaError):
    """A file, or an alert's files together, would pass a size limit."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.public_detail = f"{message[:1].upper()}{message[1:]} (the limit is {limit} bytes)."


class UnknownKey(MediaError):
    """An object's data key is wrapped by a master key id the settings lack."""


class Unreadable(MediaError):
    """Stored bytes failed to authenticate or are missing: never served."""


class UploadMoved(MediaError):
    """A resumable upload's offset is not the one the chunk was sent for (another
    chunk was committed first): the client asks the offset again (409)."""

    public_detail = "The upload's offset moved; ask it again with HEAD and resume from there."


class UploadGone(MediaError):
    """A resumable upload was terminated, expired or completed meanwhile (404)."""

    public_detail = "No such upload."
