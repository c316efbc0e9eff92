"""Immutable records made on the hot path: frozen for the type checker, cheap to make.

A shard makes a ``Fix``, a ``TrackFix``, a ``Presence`` and a ``SubjectState``
for each of tens of thousands of fixes a second (issue 20). The generated
``__init__`` of a frozen dataclass sets each field through
``object.__setattr__``; filling the slots through their descriptors instead
(the makers these classes had until 2026-12-07) still called one method per
field. A plain slotted dataclass's ``__init__`` stores each field directly:
making a ``SubjectState`` that way takes about half the time of the
descriptors (0.24 against 0.43 µs, ``timeit``), and needs no maker beside
the constructor.

So a class decorated with :func:`record` is, to mypy, a frozen slotted
dataclass (``dataclass_transform``: assigning a field is a type error, which
``mypy --strict`` refuses in CI); at run time it is a slotted dataclass with
the same ``__eq__`` and the same ``__hash__`` (of its fields, as a frozen one's)
whose fields are not guarded against assignment. Nothing assigns them: every
change is a new record (``dataclasses.replace``, or the constructor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True, slots=True)`` to the type checker; see the module."""
    return dataclass(slots=True, unsafe_hash=True)(cls)
