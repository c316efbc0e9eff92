"""``GET /analytics/response-times``, the pure parts: the window, JSON or CSV,
the CSV bytes and file name; and the masked addresses of ``/alerts/{id}/notifications``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.analytics import (
    CSV_HEADER,
    MAX_SPAN,
    Window,
    WindowRefused,
    csv_filename,
    parse_instant,
    render_csv,
    wants_csv,
    window,
)
from gateway.masking import destination_hint, mask_email, mask_phone

NOW = datetime(2025, 6, 15, 12, 30, tzinfo=UTC)


# --- instants and the window ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31T00:00:00Z", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31t00:00:00z", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31 02:00:00+02:00", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-30T19:00:00.250-05:00", datetime(2025, 1, 31, 0, 0, 0, 250000, tzinfo=UTC)),
        ("2025-01-31T00:00:00.123456789Z", datetime(2025, 1, 31, 0, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_an_rfc3339_instant_is_read_in_utc(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-31T00:00:00",  # no zone
        "2025-01-31",  # a date alone
        "20250131T000000Z",  # ISO 8601 basic, not RFC 3339
        "2025-01-31T00:00Z",  # no seconds
        "2025-02-30T00:00:00Z",  # no such day
        "2025-01-31T24:00:00Z",
        "2025-01-31T00:00:00+24:00",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "1700000000",
        "",
        "2025-01-31T00:00:00Z ",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_instant(text)


def test_the_window_defaults_to_the_last_30_days() -> None:
    assert window(None, None, now=NOW) == Window(NOW - timedelta(days=30), NOW)
    to = datetime(2025, 3, 1, tzinfo=UTC)
    assert window(None, "2025-03-01T00:00:00Z", now=NOW) == Window(to - timedelta(days=30), to)
    since = datetime(2025, 6, 1, tzinfo=UTC)
    assert window("2025-06-01T00:00:00Z", None, now=NOW) == Window(since, NOW)


def test_a_window_given_in_other_zones_is_in_utc() -> None:
    got = window("2025-01-01T01:00:00+01:00", "2025-01-02T00:00:00-01:00", now=NOW)
    assert got == Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, 1, tzinfo=UTC))
    assert got.since.tzinfo is UTC
    assert window(None, None, now=NOW.astimezone(timezone(timedelta(hours=5)))).until.tzinfo is UTC


def _refusal(from_text: str | None, to_text: str | None) -> tuple[tuple[str, str], ...]:
    with pytest.raises(WindowRefused) as caught:
        window(from_text, to_text, now=NOW)
    return caught.value.errors


def test_from_must_be_before_to() -> None:
    same = "2025-01-01T00:00:00Z"
    assert _refusal(same, same) == (("from", "must be before `to`"),)
    assert _refusal("2025-01-02T00:00:00Z", same)[0][0] == "from"
    assert _refusal("2025-07-01T00:00:00Z", None)[0][0] == "from"  # after now, the default `to`


def test_the_window_is_at_most_400_days() -> None:
    until = datetime(2025, 1, 1, tzinfo=UTC)
    since = until - MAX_SPAN
    assert window(since.isoformat(), until.isoformat(), now=NOW) == Window(since, until)
    ((loc, msg),) = _refusal((since - timedelta(seconds=1)).isoformat(), until.isoformat())
    assert loc == "from"
    assert "400 days" in msg


def test_every_bad_parameter_is_named() -> None:
    errors = _refusal("yesterday", "2025-01-01")
    assert [loc for loc, _ in errors] == ["to", "from"]
    assert all("RFC 3339" in msg for _, msg in errors)


def test_a_default_from_before_year_1_is_refused_not_raised() -> None:
    ((loc, _),) = _refusal(None, "0001-01-02T00:00:00Z")
    assert loc == "to"


# --- JSON or CSV ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format_", "accept", "csv"),
    [
        (None, None, False),
        (None, "*/*", False),
        (None, "application/json", False),
        (None, "text/csv", True),
        (None, "TEXT/CSV; charset=utf-8", True),
        (None, "text/csv, application/json", True),
        (None, "application/json, text/csv;q=0.5", False),
        (None, "application/json;q=0.4, text/csv;q=0.5", True),
        (None, "text/csv;q=0", False),
        (None, "text/csv;q=nonsense", False),
        ("csv", "application/json", True),
        ("json", "text/csv", False),
    ],
)
def test_csv_is_chosen_by_format_then_accept(
    format_: str | None, accept: str | None, csv: bool
) -> None:
    assert wants_csv(format_, accept) is csv


# --- the CSV bytes ----------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    count: int
    p50_s: float | None
    p90_s: float | None


@dataclass(frozen=True)
class Row:
    bucket_start: datetime
    alert_type: str
    count: int
    offer: Stage
    accept: Stage
    on_scene: Stage
    resolve: Stage


NONE = Stage(0, None, None)


def test_the_csv_has_the_header_and_a_line_per_row_with_empty_cells_for_nulls() -> None:
    day = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        Row(
            day, "all", 3, Stage(3, 10.0, 18.4), Stage(2, 30.25, 31.5), NONE, Stage(1, 600.0, 600.0)
        ),
        Row(
            day,
            "fire",
            3,
            Stage(3, 10.0, 18.4),
            Stage(2, 30.25, 31.5),
            NONE,
            Stage(1, 600.0, 600.0),
        ),
    ]
    assert render_csv(rows) == (
        b"bucket_start,alert_type,count,offer_count,offer_p50_s,offer_p90_s,accept_count,"
        b"accept_p50_s,accept_p90_s,on_scene_count,on_scene_p50_s,on_scene_p90_s,"
        b"resolve_count,resolve_p50_s,resolve_p90_s\r\n"
        b"2025-01-01T00:00:00Z,all,3,3,10.0,18.4,2,30.25,31.5,0,,,1,600.0,600.0\r\n"
        b"2025-01-01T00:00:00Z,fire,3,3,10.0,18.4,2,30.25,31.5,0,,,1,600.0,600.0\r\n"
    )
    assert len(CSV_HEADER) == 15


def test_no_rows_is_the_header_alone() -> None:
    assert render_csv([]) == (",".join(CSV_HEADER) + "\r\n").encode()


def test_the_file_name_holds_the_window_in_utc() -> None:
    since = datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    until = datetime(2025, 1, 31, 12, 30, 5, 999, tzinfo=UTC)
    assert csv_filename(since, until) == "response-times-20250101T000000Z-20250131T123005Z.csv"


# --- masked addresses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "hint"),
    [("+4915112345678", "***5678"), ("+1 (555) 010-9999", "***9999"), ("+12345", "***")],
)
def test_a_phone_shows_its_last_four_digits_only(phone: str, hint: str) -> None:
    assert mask_phone(phone) == hint


@pytest.mark.parametrize(
    ("email", "hint"),
    [
        ("mum@example.org", "m***@example.org"),
        ("a@b.example", "a***@b.example"),
        ("@example.org", "***"),
        ("nobody", "***"),
        ("x@", "***"),
    ],
)
def test_an_email_shows_its_first_letter_and_domain_only(email: str, hint: str) -> None:
    assert mask_email(email) == hint


def test_the_hint_follows_the_channel() -> None:
    phone, email = "+4915112345678", "mum@example.org"
    assert destination_hint("sms", phone, email) == "***5678"
    assert destination_hint("email", phone, email) == "m***@example.org"
    assert destination_hint("push", phone, email) is None
    assert destination_hint("webhook", None, None) is None
    assert destination_hint("sms", None, email) is None
