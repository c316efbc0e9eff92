"""``/analytics``: response-time figures for the dispatcher console (administrators only).

``GET /analytics/response-times`` reads the alerts created in a window,
grouped by bucket (hour, day or ISO week, in UTC) and alert type, with one
all-types row per bucket: per milestone (first offer, accept, on scene,
resolved) how many reached it and the median and 90th percentile of the
seconds from creation, computed in SQL (``persistence.stores.analytics``).
The same figures come as JSON or, with ``format=csv`` or ``Accept:
text/csv``, as a CSV download (``gateway.analytics``). Read-only; rate
limited per caller and endpoint (``rate_limit.per_principal``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.requests import Request

from actors.alert_state import AlertType
from gateway.analytics import (
    CSV_HEADER,
    CSV_MEDIA_TYPE,
    DEFAULT_SPAN,
    MAX_SPAN,
    WindowRefused,
    csv_filename,
    render_csv,
    wants_csv,
    window,
)
from gateway.auth.models import problem_responses
from gateway.deps import AdminPrincipal, AnalyticsDep
from gateway.ports import ALL_TYPES, Bucket, ResponseTimeRow, StageFigures
from gateway.ratelimit import rate_limit

router = APIRouter(prefix="/analytics", tags=["analytics"])

_read_limit = Depends(
    rate_limit("analytics:read", key="principal", rule="per_principal", per_route=True)
)

_INSTANT_RULE = (
    "An RFC 3339 date-time with its time zone (`Z` or `±hh:mm`), e.g. "
    "`2025-01-31T00:00:00Z`; anything else (no zone, a date alone) is 422."
)


# --- bodies -----------------------------------------------------------------------


class StageOut(BaseModel):
    count: int = Field(description="alerts of the row that reached this milestone")
    p50_s: float | None = Field(
        description="median seconds from creation to the milestone, to the millisecond; "
        "null when no alert reached it"
    )
    p90_s: float | None = Field(
        description="90th percentile (interpolated) of the same; null when none reached it"
    )

    @classmethod
    def of(cls, figures: StageFigures) -> StageOut:
        return cls(count=figures.count, p50_s=figures.p50_s, p90_s=figures.p90_s)


class ResponseTimeItem(BaseModel):
    bucket_start: datetime = Field(description="the bucket's first instant, UTC")
    alert_type: AlertType | Literal["all"] = Field(
        description="the alerts' type, or `all` for the row of every type of the bucket"
    )
    count: int = Field(description="alerts created in the bucket (any status)")
    offer: StageOut = Field(description="to the first offer made to an agent")
    accept: StageOut = Field(description="to the first agent assigned (accepted or by an admin)")
    on_scene: StageOut = Field(description="to the responder on scene")
    resolve: StageOut = Field(description="to resolved")

    @classmethod
    def of(cls, row: ResponseTimeRow) -> ResponseTimeItem:
        kind: AlertType | Literal["all"] = (
            "all" if row.alert_type == ALL_TYPES else AlertType(row.alert_type)
        )
        return cls(
            bucket_start=row.bucket_start,
            alert_type=kind,
            count=row.count,
            offer=StageOut.of(row.offer),
            accept=StageOut.of(row.accept),
            on_scene=StageOut.of(row.on_scene),
            resolve=StageOut.of(row.resolve),
        )


class ResponseTimesOut(BaseModel):
    from_: datetime = Field(alias="from", description="the window's start (inclusive), UTC")
    to: datetime = Field(description="the window's end (exclusive), UTC")
    bucket: Bucket
    items: list[ResponseTimeItem] = Field(
        description="by `bucket_start`, then `all`, then type; buckets without alerts are absent"
    )


# --- the route --------------------------------------------------------------------

_CSV_EXAMPLE = (
    ",".join(CSV_HEADER) + "\r\n2025-01-01T00:00:00Z,all,2,2,12.5,14.1,1,30.0,30.0,0,,,0,,\r\n"
)

_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The figures: JSON, or CSV with `format=csv` or `Accept: text/csv` "
        "(the same rows; header `" + ",".join(CSV_HEADER) + "`; an unknown percentile is an "
        'empty cell; `Content-Disposition: attachment; filename="response-times-<from>-<to>.csv"`'
        ", each instant as `YYYYMMDDTHHMMSSZ`).",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": _CSV_EXAMPLE,
            }
        },
        "headers": {
            "Content-Disposition": {
                "description": "On a CSV answer: `attachment` with the file name.",
                "schema": {"type": "string"},
            }
        },
    }
}


@router.get(
    "/response-times",
    summary="Response-time percentiles per bucket and alert type, as JSON or CSV (admin)",
    description=(
        "Alerts created in `[from, to)`, grouped by `bucket` (`hour`, `day` or `week`, "
        "truncated in UTC; weeks start on Monday) and by alert type, plus one row of every "
        "type (`alert_type: all`) per bucket. For each milestone (`offer`, `accept`, "
        "`on_scene`, `resolve`): how many alerts reached it and the median and 90th "
        "percentile of the seconds from creation (interpolated, to the millisecond; null "
        "when none did). Buckets without alerts are absent; an edge bucket counts only the "
        f"alerts inside the window. `to` defaults to now, `from` to {DEFAULT_SPAN.days} days "
        f"before `to`; `from` must be before `to` and the window at most {MAX_SPAN.days} "
        "days (422 otherwise, naming the parameter in `errors`)."
    ),
    response_model=ResponseTimesOut,
    response_model_by_alias=True,
    responses={**_OK, **problem_responses(401, 403, 422, 429, 503)},
    dependencies=[_read_limit],
)
async def response_times(
    request: Request,
    _admin: AdminPrincipal,
    analytics: AnalyticsDep,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=64,
            description=f"The window's start (inclusive). {_INSTANT_RULE}",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(
            max_length=64,
            description=f"The window's end (exclusive); now by default. {_INSTANT_RULE}",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    bucket: Annotated[Bucket, Query(description="the bucket width, in UTC")] = Bucket.DAY,
    alert_type: Annotated[
        AlertType | None, Query(description="only alerts of this type (the `all` row too)")
    ] = None,
    format_: Annotated[
        Literal["json", "csv"] | None,
        Query(
            alias="format",
            description="`csv` for the CSV download; without it, `Accept: text/csv` asks "
            "for CSV too",
        ),
    ] = None,
) -> ResponseTimesOut | Response:
    try:
        span = window(from_, to, now=datetime.now(UTC))
    except WindowRefused as refused:
        raise RequestValidationError(
            [
                {"loc": ("query", loc), "msg": msg, "type": "value_error"}
                for loc, msg in refused.errors
            ]
        ) from None
    rows = await analytics.response_times(
        since=span.since, until=span.until, bucket=bucket, alert_type=alert_type
    )
    if wants_csv(format_, request.headers.get("accept")):
        filename = csv_filename(span.since, span.until)
        return Response(
            render_csv(rows),
            media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return ResponseTimesOut.model_validate(
        {
            "from": span.since,
            "to": span.until,
            "bucket": bucket,
            "items": [ResponseTimeItem.of(row) for row in rows],
        }
    )
