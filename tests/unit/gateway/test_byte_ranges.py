"""Range headers: one range served, others ignored, past-the-end unsatisfiable."""

from __future__ import annotations

import pytest

from gateway.byte_ranges import UNSATISFIABLE, byte_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", (0, 1)),
        ("bytes=0-99", (0, 100)),
        ("bytes=10-", (10, 100)),
        ("bytes=90-200", (90, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=-500", (0, 100)),
        ("bytes=100-", UNSATISFIABLE),
        ("bytes=-0", UNSATISFIABLE),
        ("bytes=5-1", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=abc", None),
        ("bytes=99999999999999999999-", None),
    ],
)
def test_byte_range(header: str | None, expected: object) -> None:
    assert byte_range(header, 100) == expected


def test_an_empty_file_has_no_satisfiable_range() -> None:
    assert byte_range("bytes=0-", 0) is UNSATISFIABLE
    assert byte_range("bytes=-5", 0) is UNSATISFIABLE
