"""Streaming ``multipart/form-data``: the file part as chunks, never held whole.

Starlette's ``request.form()`` spools a file to a temporary file on disk,
which for evidence would leave plaintext behind; this parser (python-multipart's
low-level one) hands the ``file`` part on chunk by chunk as it arrives and
keeps only the small text fields (bounded) in memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Final

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

#: Largest text field kept (an ``alert_id`` needs 36 bytes).
MAX_FIELD_BYTES: Final = 1024
#: Text fields accepted beside the file.
MAX_FIELDS: Final = 16


class FormError(ValueError):
    """The body is not a well-formed form of one ``file`` and a few short fields."""


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` content type; :class:`FormError` if none."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise FormError("expected multipart/form-data with a boundary")
    return boundary


def _disposition_name(value: bytes) -> str | None:
    kind, params = parse_options_header(value)
    if kind != b"form-data":
        return None
    name = params.get(b"name")
    return None if name is None else name.decode("utf-8", "replace")


class FormStream:
    """One form body: ``await until_file()``, then ``file_chunks()``, then ``fields``.

    ``fields`` holds every text field seen so far: those before the file part
    after :meth:`until_file`, all of them once :meth:`file_chunks` is exhausted.
    """

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes, file_field: str) -> None:
        self._body = body
        self._file_field = file_field
        self.fields: dict[str, str] = {}
        self._events: deque[bytes | None] = deque()  # file data; None ends the file
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._part: str | None = None
        self._value = bytearray()
        self._files = 0
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
            },
        )

    # --- parser callbacks (synchronous) ---------------------------------------------

    def _on_part_begin(self) -> None:
        self._part = None
        self._value.clear()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if bytes(self._header_field).lower() == b"content-disposition":
            self._part = _disposition_name(bytes(self._header_value))
            if self._part is None:
                raise FormError("a part without a form-data name")
            if self._part == self._file_field:
                self._files += 1
                if self._files > 1:
                    raise FormError(f"more than one {self._file_field!r} part")
        self._header_field.clear()
        self._header_value.clear()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == self._file_field:
            self._events.append(bytes(data[start:end]))
            return
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD_BYTES:
            raise FormError(f"field {self._part!r} is over {MAX_FIELD_BYTES} bytes")

    def _on_part_end(self) -> None:
        if self._part == self._file_field:
            self._events.append(None)
        elif self._part is not None:
            if len(self.fields) >= MAX_FIELDS:
                raise FormError(f"more than {MAX_FIELDS} fields")
            self.fields[self._part] = self._value.decode("utf-8", "replace")
        self._part = None

    # --- driving ----------------------------------------------------------------

    async def _pump(self) -> bool:
        """Feed the next body chunk to the parser; False at the body's end."""
        if self._ended:
            return False
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            self._ended = True
            try:
                self._parser.finalize()
            except MultipartParseError as exc:
                raise FormError("the form ends early") from exc
            return False
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise FormError(f"malformed form: {exc}") from exc
        return True

    async def until_file(self) -> bool:
        """Read until the file part's data begins; False if the body has none."""
        while not self._events:
            if not await self._pump():
                return bool(self._events)
        return True

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The file part's bytes; the rest of the body is read (for later fields)
        once the file ends."""
        done = False
        while True:
            while self._events:
                event = self._events.popleft()
                if event is None:
                    done = True
                    break
                if event:
                    yield event
            if done:
                break
            if not await self._pump() and not self._events:
                raise FormError(f"the {self._file_field!r} part is missing or cut short")
        while await self._pump():
            self._events.clear()
