"""HTTP ``Range: bytes=...`` (RFC 9110 §14): which bytes of a representation to send.

Pure. One range is served as 206; a header this server does not serve
(several ranges, another unit, nonsense) is ignored and the whole
representation sent (200), as the RFC allows; a well-formed range that
starts past the end is :data:`UNSATISFIABLE` (416).
"""

from __future__ import annotations

import re
from typing import Final

_ONE_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


class _Unsatisfiable:
    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE: Final = _Unsatisfiable()


def byte_range(header: str | None, size: int) -> tuple[int, int] | _Unsatisfiable | None:
    """``(start, end)`` (end exclusive) of the one range asked for, None for the
    whole representation, or :data:`UNSATISFIABLE`."""
    if header is None:
        return None
    found = _ONE_RANGE.match(header.strip())
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        length = int(last)
        if length == 0:
            return UNSATISFIABLE
        return (max(0, size - length), size) if size else UNSATISFIABLE
    start = int(first)
    end = size if not last else int(last) + 1
    if last and end <= start:
        return None  # invalid: ignored
    if start >= size:
        return UNSATISFIABLE
    return start, min(end, size)
