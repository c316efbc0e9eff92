"""The query parameters every paged list shares (``GET /alerts``, zones, geofence events).

Pages are keyset pages: ``limit`` items and an opaque ``next_cursor`` to
pass back unchanged. A cursor is URL-safe base64 of at most
``MAX_CURSOR_CHARS`` characters; each listing's store decodes its own
(``InvalidCursor``) and the route answers 422 for one it did not issue.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Query

#: Longest cursor accepted; the stores' own bound (``persistence.stores.cursors``).
MAX_CURSOR_CHARS: Final = 200

Limit = Annotated[int, Query(ge=1, le=100, description="items per page")]
CursorParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR_CHARS,
        pattern=r"^[A-Za-z0-9_-]+$",
        description=(
            "Opaque: the `next_cursor` of the previous page of this same listing (same "
            "filters), passed back unchanged. Any other value, even one of this alphabet "
            "and length, is refused with 422."
        ),
    ),
]
