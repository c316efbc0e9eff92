"""``/alerts/{alert_id}/messages``: the chat of an alert (issue 19), the REST twin
of the ``alert.message`` frame.

Messages are ``message`` entries of the alert's timeline, written by its entity
(``actors.alert``, ``PostMessage``): a 201 here means committed, and the same
message was pushed as ``alert.message`` to the alert's user (not for a silent
alert or after a duress cancel), its assigned agent and every admin socket.

Who may read: as ``GET /alerts/{id}`` (``AlertState.access``): the alert's user,
its assigned agent (now or once) and admins; an agent only holding an offer is
403; anyone else (an agent whose offer was declined or expired among them) 404,
as if the alert did not exist. Its user is shown what ``actors.alert_view``
shows: on a silent alert only their own messages; after a duress cancel the
messages up to it, as a real cancel would have left them.

Who may write: the alert's user while it is not over, its assigned agent while
it holds it, and admins (the console) while it is not over; anyone else, or
once it is over, 403. More than ``actors.max_messages`` per alert: 409.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from actors.alert_messages import PostMessage
from actors.alert_state import ActorRole, AlertAccess, AlertState
from actors.effects import EntityKind
from gateway.auth.models import problem_responses
from gateway.auth.principal import Principal, Role
from gateway.deps import AlertsDep, CurrentPrincipal, EntitiesDep
from gateway.fields import ChatText
from gateway.ports import AlertReads
from gateway.problems import ProblemHTTPException
from gateway.ratelimit import rate_limit

router = APIRouter(prefix="/alerts", tags=["alerts"])

#: The scope and rule of every ``/alerts`` read (``gateway.routes.alerts``), per endpoint.
_read_limit = Depends(
    rate_limit("alerts:read", key="principal", rule="alerts_read_per_principal", per_route=True)
)
#: Writes count with the status changes' rule, in their own scope.
_write_limit = Depends(
    rate_limit("alerts:messages", key="principal", rule="alerts_status_per_principal")
)


class MessageIn(BaseModel):
    """Body of ``POST /alerts/{alert_id}/messages``."""

    model_config = ConfigDict(extra="forbid")

    text: ChatText


class MessageOut(BaseModel):
    """One chat message, as the ``alert.message`` frame's data."""

    alert_id: UUID
    message_id: UUID
    sender_role: str = Field(description="`user`, `agent` or `admin`")
    sender_id: UUID
    text: str = Field(description="Trimmed; may hold line feeds.")
    at: datetime = Field(description="When it was committed.")


class MessagesOut(BaseModel):
    items: list[MessageOut] = Field(description="oldest first")


def _role(principal: Principal) -> ActorRole:
    return ActorRole(principal.role.value)


async def _readable(alerts: AlertReads, alert_id: UUID, principal: Principal) -> AlertState:
    """The committed alert, if the caller reads it in full; 404 when it reads nothing
    (the alert's existence is not confirmed), 403 for an agent only holding an offer."""
    state = await alerts.load_alert(alert_id)
    if state is None:
        raise ProblemHTTPException(404, detail="alert not found")
    access = state.access(principal.id, _role(principal), datetime.now(UTC))
    if access is AlertAccess.NONE:
        raise ProblemHTTPException(404, detail="alert not found")
    if access is AlertAccess.OFFER:
        raise ProblemHTTPException(
            403, detail="only the alert's user, its assigned agent and admins read its messages"
        )
    return state


def _shown(state: AlertState, principal: Principal) -> list[dict[str, Any]]:
    if principal.role is Role.USER:
        return state.as_user_sees().messages()
    return state.messages()


@router.get(
    "/{alert_id}/messages",
    summary="The chat messages of an alert, oldest first",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
    dependencies=[_read_limit],
)
async def list_messages(
    alert_id: UUID, principal: CurrentPrincipal, alerts: AlertsDep
) -> MessagesOut:
    """For the alert's user, its assigned agent (now or once) and admins. The user of
    a silent alert is listed only their own messages; after a duress cancel, those
    up to it (what a real cancel would leave)."""
    state = await _readable(alerts, alert_id, principal)
    return MessagesOut(items=[MessageOut.model_validate(m) for m in _shown(state, principal)])


@router.post(
    "/{alert_id}/messages",
    status_code=201,
    summary="Write a chat message to an alert",
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
    dependencies=[_write_limit],
)
async def post_message(
    alert_id: UUID,
    body: MessageIn,
    principal: CurrentPrincipal,
    alerts: AlertsDep,
    entities: EntitiesDep,
) -> MessageOut:
    """Answers 201 once the message is committed (and pushed as ``alert.message``).
    403: not the alert's user, its assigned agent or an admin, or the alert is over;
    409: the alert holds ``PANIC_ACTORS__MAX_MESSAGES`` (200) messages already."""
    await _readable(alerts, alert_id, principal)
    message = PostMessage(
        message_id=uuid4(), sender_id=principal.id, sender_role=_role(principal), text=body.text
    )
    reply = await entities.ask(EntityKind.ALERT, str(alert_id), message)
    if not isinstance(reply, AlertState):
        raise TypeError(f"alert {alert_id} replied with {type(reply).__name__}")
    wanted = str(message.message_id)
    for item in reply.messages():
        if item["message_id"] == wanted:
            return MessageOut.model_validate(item)
    raise TypeError(f"alert {alert_id} did not record message {wanted}")
