"""Frozen, slotted dataclasses made on the hot path without their ``__init__``.

The generated ``__init__`` of a frozen dataclass sets each field through
``object.__setattr__``; filling the slots through their descriptors costs
about half as much (0.5 against 0.3 µs for a ``Fix``). A shard makes a
``Fix``, a ``TrackFix``, a ``Presence`` and a ``SubjectState`` for each of
tens of thousands of fixes a second (issue 20), so those have makers built
from :func:`slot_setters`; each maker's test holds it to the constructor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, Final

#: A bare instance of a class, its slots unset (``object.__new__``).
new_instance: Final = object.__new__


def slot_setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    """The setter of each field's slot, in field order (``dataclasses.fields``):
    a maker unpacks them into one name per field, so a field added or moved
    fails at import (the unpacking) or in the maker's test."""
    return tuple(vars(cls)[f.name].__set__ for f in fields(cls))
