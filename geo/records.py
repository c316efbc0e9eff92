"""Immutable records: frozen for the type checker, cheap to make.

Two forms, both immutable to ``mypy --strict`` (assigning a field is a type
error, which CI refuses) and neither guarded at run time in plain Python:

- **Hot records**, the ones a shard makes or reads for each of tens of thousands
  of fixes a second (issue 20): ``geo.fences``' ``Zone``, ``Fix``, ``Inside`` and
  ``Presence``, ``actors.subject_state``'s ``NearZone`` and ``SubjectState``,
  ``actors.subject_fences``' ``TrackFix``; and ``gateway.quick_fixes``'
  ``QuickReport``, made for each bulk fix. Each is written out as::

      @dataclass(slots=True, init=False, unsafe_hash=True)
      class Fix:
          latitude: Final[float]
          ...
          def __init__(self, latitude: float, ...) -> None:
              self.latitude = latitude
          def __reduce__(self): ...   # by position

  Those modules are compiled (``panic_alert.compiled``), and mypyc makes a
  class a native one only if its decorator is ``dataclass`` itself: then a
  field is read straight from the object's struct and the hand-written
  ``__init__`` is compiled too (a dataclass's generated one is not). As the
  :func:`record` classes they were until 2026-12-07, the compiled shard read
  every field through ``getattr`` and made each record through the
  interpreter: in ``bench/fix_path.py --instructions`` that was most of a
  quiet fix's cost. ``Final`` fields make assignment a type error (set only
  in ``__init__``); a compiled native class also refuses it at run time.
  ``dataclass`` still gives equality, the hash of the fields, ``repr``,
  ``fields`` and ``replace``. ``__reduce__`` is needed because a native
  class cannot be pickled by its slots (:func:`by_position`).
- **The rest**, made a few times a second at most: ``@record``, below.

About ``@record``: the generated ``__init__`` of a frozen dataclass sets each
field through ``object.__setattr__``; a plain slotted dataclass's stores each
field directly, in about half the time (0.24 against 0.43 µs for a
``SubjectState``, ``timeit``).
So a class decorated with :func:`record` is, to mypy, a frozen slotted
dataclass (``dataclass_transform``: assigning a field is a type error); at run
time it is a slotted dataclass with the same ``__eq__`` and the same
``__hash__`` (of its fields, as a frozen one's) whose fields are not guarded
against assignment. Nothing assigns them: every change is a new record
(``dataclasses.replace``, or the constructor).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True, slots=True)`` to the type checker; see the module."""
    return dataclass(slots=True, unsafe_hash=True)(cls)


def by_position(record: Any) -> tuple[Any, ...]:
    """A dataclass's values of the fields its ``__init__`` takes, in order: what a
    hot record's ``__reduce__`` makes it again from (its ``__init__`` takes them
    by position). A field its ``__init__`` computes (``field(init=False)``, as
    ``Zone``'s frame) is left out and made again."""
    return tuple(getattr(record, f.name) for f in fields(record) if f.init)
