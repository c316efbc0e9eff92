"""``GET /alerts/{alert_id}/notifications``: what the alert's emergency contacts
(and the configured webhooks) were sent, and how it went (administrators only).

One item per notification request (a contact and channel, or a webhook, per
occasion: the alert raised, resolved or cancelled), once the notifier has
finished it: ``delivered``, or ``dead_lettered`` with the last error (retries
spent, the contact's daily cap reached). A request still being retried is not
listed yet. Addresses are never shown: ``destination_hint`` masks the
contact's current phone or email (``gateway.masking``); the delivery record
itself keeps none. Read-only; rate limited like the other ``/alerts`` reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from gateway.auth.models import problem_responses
from gateway.deps import AdminPrincipal, AlertNotificationsDep
from gateway.masking import destination_hint
from gateway.ports import DeliveryRow
from gateway.problems import ProblemHTTPException
from gateway.ratelimit import rate_limit

router = APIRouter(prefix="/alerts", tags=["alerts"])

#: The scope and rule of every ``/alerts`` read (``gateway.routes.alerts``), per endpoint.
_read_limit = Depends(
    rate_limit("alerts:read", key="principal", rule="alerts_read_per_principal", per_route=True)
)


class NotificationOut(BaseModel):
    """One notification request's outcome."""

    id: UUID = Field(description="the request's id (stable: derived from the event and recipient)")
    channel: Literal["email", "sms", "push", "webhook"]
    occasion: str = Field(
        description="what the message told: `raised`, `resolved` or `cancelled` (the alert's)"
    )
    contact_id: UUID | None = Field(description="the emergency contact; null for a webhook")
    contact_name: str | None = Field(
        description="the contact's name now; null for a webhook or a deleted contact"
    )
    destination_hint: str | None = Field(
        description="the contact's current address for the channel, masked: `***1234` (a "
        "phone's last four digits) or `m***@example.org`; null for a push, a webhook, or a "
        "contact without one"
    )
    status: Literal["delivered", "dead_lettered"]
    attempts: int = Field(description="sends tried (1 when the first one went through)")
    last_error: str | None = Field(description="why the last attempt failed, if it did")
    updated_at: datetime = Field(description="when the outcome was recorded")

    @classmethod
    def of(cls, row: DeliveryRow) -> NotificationOut:
        return cls.model_validate(
            {
                "id": row.request_id,
                "channel": row.channel,
                "occasion": row.occasion,
                "contact_id": row.contact_id,
                "contact_name": row.contact_name,
                "destination_hint": destination_hint(
                    row.channel, row.contact_phone, row.contact_email
                ),
                "status": row.status,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "updated_at": row.finished_at,
            }
        )


class NotificationsOut(BaseModel):
    items: list[NotificationOut] = Field(description="oldest first")


@router.get(
    "/{alert_id}/notifications",
    summary="The emergency-contact notifications of an alert and their outcomes (admin)",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
    dependencies=[_read_limit],
)
async def alert_notifications(
    alert_id: UUID, _admin: AdminPrincipal, notifications: AlertNotificationsDep
) -> NotificationsOut:
    rows = await notifications.deliveries_of(alert_id)
    if rows is None:
        raise ProblemHTTPException(404, detail="alert not found")
    return NotificationsOut(items=[NotificationOut.of(row) for row in rows])
