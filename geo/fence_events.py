"""What a subject's fix can do to a zone: kept apart from ``geo.fences``, which is
compiled (``panic_alert.compiled``: a compiled module's classes lose their
docstrings, and this enum is in the API's schemas)."""

from __future__ import annotations

import enum


class FenceEvent(enum.StrEnum):
    ENTER = "enter"
    EXIT = "exit"
    DWELL = "dwell"
