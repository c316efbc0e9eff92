"""``GET /analytics/response-times``: the pure parts (no I/O).

* :func:`window`: the ``from``/``to`` query parameters checked and defaulted.
  Both are RFC 3339 date-times with a time zone (``Z`` or ``±hh:mm``); ``to``
  defaults to now and ``from`` to 30 days before ``to``; ``from`` must be
  before ``to`` and the span at most :data:`MAX_SPAN`. Refusals are
  ``(field, message)`` pairs, every one found, for a 422.
* :func:`wants_csv`: JSON or CSV, from ``format`` or else the ``Accept`` header.
* :func:`render_csv` and :func:`csv_filename`: the CSV export, one line per
  row of the JSON ``items``, in the same order, with :data:`CSV_HEADER`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from actors.alert_state import ResponseStage
from gateway.ports import ResponseTimeRow, StageFigures

#: The longest window one request may ask for.
MAX_SPAN: Final = timedelta(days=400)
#: ``from`` when only ``to`` (or nothing) is given: this long before ``to``.
DEFAULT_SPAN: Final = timedelta(days=30)

#: RFC 3339 ``date-time`` (section 5.6): the offset is required. ``T`` may be
#: ``t`` or a space (as the RFC allows); any number of fractional digits.
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_FIELD_RULE: Final = "an RFC 3339 date-time with a time zone, e.g. 2025-01-31T00:00:00Z"

CSV_MEDIA_TYPE: Final = "text/csv"
_JSON_MEDIA_TYPE: Final = "application/json"

_FIGURES: Final = ("count", "p50_s", "p90_s")
#: The CSV export's columns: the JSON item flattened, milestones in
#: ``ResponseStage`` order (offer, accept, on_scene, resolve).
CSV_HEADER: Final = (
    "bucket_start",
    "alert_type",
    "count",
    *(
        f"{stage.value}_{figure}"
        for stage in ResponseStage
        for figure in ("count", "p50_s", "p90_s")
    ),
)


class WindowRefused(ValueError):
    """The window asked for cannot be served; ``errors`` says where and why."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{loc}: {msg}" for loc, msg in errors))
        self.errors = tuple(errors)


@dataclass(frozen=True, slots=True)
class Window:
    """``[since, until)`` in UTC, ``since < until``, at most :data:`MAX_SPAN` long."""

    since: datetime
    until: datetime


def parse_instant(text: str) -> datetime:
    """An RFC 3339 date-time with its offset, as a UTC datetime.

    Raises ``ValueError`` for anything else: no offset, a date alone, another
    ISO 8601 form, an impossible date or time, or an instant outside the
    years 1-9999 once in UTC.
    """
    if _RFC3339.fullmatch(text) is None:
        raise ValueError(f"not {_FIELD_RULE}")
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T").upper())
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"not a valid date-time ({_FIELD_RULE})") from None


def window(
    from_text: str | None,
    to_text: str | None,
    *,
    now: datetime,
    max_span: timedelta = MAX_SPAN,
    default_span: timedelta = DEFAULT_SPAN,
) -> Window:
    """The window of a request (see the module note); raises :class:`WindowRefused`."""
    errors: list[tuple[str, str]] = []
    since: datetime | None = None
    until: datetime | None = now.astimezone(UTC)
    if to_text is not None:
        try:
            until = parse_instant(to_text)
        except ValueError as exc:
            errors.append(("to", str(exc)))
            until = None
    if from_text is not None:
        try:
            since = parse_instant(from_text)
        except ValueError as exc:
            errors.append(("from", str(exc)))
    elif until is not None:
        try:
            since = until - default_span
        except OverflowError:
            errors.append(("to", "too early: the default `from` would be before year 1"))
    if errors:
        raise WindowRefused(errors)
    assert since is not None
    assert until is not None
    if since >= until:
        raise WindowRefused([("from", "must be before `to`")])
    if until - since > max_span:
        days = max_span.days
        raise WindowRefused([("from", f"the window from `from` to `to` is over {days} days")])
    return Window(since, until)


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0


def wants_csv(format_: str | None, accept: str | None) -> bool:
    """Whether to answer CSV: ``format`` decides when given (``csv`` or ``json``);
    otherwise CSV when ``Accept`` names ``text/csv`` (q > 0) at least as highly
    as ``application/json`` (wildcards count for neither)."""
    if format_ is not None:
        return format_ == "csv"
    if not accept:
        return False
    best = {CSV_MEDIA_TYPE: 0.0, _JSON_MEDIA_TYPE: -1.0}
    for item in accept.split(","):
        media_type, _, parameters = item.partition(";")
        name = media_type.strip().lower()
        if name in best:
            best[name] = max(best[name], _quality(parameters))
    return best[CSV_MEDIA_TYPE] > 0 and best[CSV_MEDIA_TYPE] >= best[_JSON_MEDIA_TYPE]


def utc_text(at: datetime) -> str:
    """``at`` in UTC as RFC 3339 with ``Z``, as the JSON answer writes it."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def csv_filename(since: datetime, until: datetime) -> str:
    """``response-times-<from>-<to>.csv``, each instant as ``YYYYMMDDTHHMMSSZ`` (UTC)."""

    def compact(at: datetime) -> str:
        return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    return f"response-times-{compact(since)}-{compact(until)}.csv"


def stages_of(row: ResponseTimeRow) -> tuple[StageFigures, ...]:
    """The row's milestones in ``ResponseStage`` order (that of :data:`CSV_HEADER`)."""
    return (row.offer, row.accept, row.on_scene, row.resolve)


def _cell(value: float | int | None) -> str:
    return "" if value is None else str(value)


def render_csv(rows: Iterable[ResponseTimeRow]) -> bytes:
    """The CSV export (RFC 4180: CRLF line ends, UTF-8): :data:`CSV_HEADER`, then
    one line per row; an unknown percentile is an empty cell. No cell holds
    caller-chosen text (times, types and numbers only), so none can be a
    spreadsheet formula."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        cells = [utc_text(row.bucket_start), row.alert_type, str(row.count)]
        for figures in stages_of(row):
            cells += [str(figures.count), _cell(figures.p50_s), _cell(figures.p90_s)]
        writer.writerow(cells)
    return out.getvalue().encode("utf-8")
