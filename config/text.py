"""Plain text: the characters no name, note or description may hold.

One fact, two uses: the gateway refuses such text with a 422
(``gateway.fields.PLAIN_TEXT``), and the notifier flattens whatever older
or hand-written data still holds before it goes into a message
(``notify.plan``), so neither can drift from the other.
"""

from __future__ import annotations

import unicodedata
from typing import Final

#: Unicode general categories that are not plain text on one line: control
#: characters (Cc: NUL, tab, CR, LF, ESC, DEL, C1 controls), format characters
#: (Cf: bidi overrides, zero-width characters, the BOM, tags), and the line and
#: paragraph separators U+2028 and U+2029 (Zl, Zp), at which ``str.splitlines``
#: (and so the email package's header check) breaks a line.
CONTROL_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})


def is_control(char: str) -> bool:
    """Whether one character is outside plain text (:data:`CONTROL_CATEGORIES`)."""
    return unicodedata.category(char) in CONTROL_CATEGORIES


def first_control(text: str) -> str | None:
    """The first character of ``text`` outside plain text, or None."""
    return next((char for char in text if is_control(char)), None)


def one_line(text: str) -> str:
    """``text`` with each run of control characters and whitespace made one space, trimmed."""
    return " ".join("".join(" " if is_control(c) else c for c in text).split())
