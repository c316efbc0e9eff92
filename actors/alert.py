"""The alert state machine: ``decide(state, message, now) -> (state, effects)``.

Pure: no I/O, no clock, no randomness. The alert id arrives in
:class:`CreateAlert`; timer ids are derived from the alert's own data; event
ids are assigned by the runtime when it writes the outbox. The same state,
message and ``now`` always give the same result.

Rules every decision follows:

* A rejected message raises an :class:`~actors.errors.ActorError` and has no
  effects; the given state is untouched.
* A decision that changes the state bumps ``version`` by one per step and
  appends one :class:`TimelineEntry` per step (offers made to K agents at
  once are K steps), returns ``Persist`` first and at least one ``Emit``, and
  ends with ``Reply(new_state)``. (Media entries are the exception to the
  ``Emit``: their events are written by the media store with the change
  they record, ``persistence.stores.media``.)
* A duplicated or stale message (a retried accept, a timer that lost a race
  with a cancel, the answer to an older search) changes nothing and returns
  only ``Reply(state)``. The one exception is a new search (below): it
  changes only the soft ``search_tag`` and arms its timer, without
  ``Persist``.

Dispatch: creation starts a search for available agents (``Search``, see
``actors.search``) and arms the search-again timer. Its ``SearchResult``
becomes offers to the nearest agents not declined, not expired and not
already holding an offer, up to ``AlertPolicy.offer_to`` pending at once.
A decline or an expiry that leaves fewer pending offers searches again at
once; with nobody found, the timer searches again every
``AlertPolicy.search_again``. Leaving the offerable statuses disarms it.

Who hears what:

* Every status change emits ``alert.status_changed`` on
  ``alert-status-updates``; creation emits ``alert.created`` on
  ``panic-alerts``; offer steps emit ``alert.offered`` / ``alert.accepted`` /
  ``alert.declined`` / ``alert.offer_expired`` / ``alert.assigned`` on
  ``alert-responses``.
* On a status change the user gets ``alert.updated`` (but see the silent
  rule), the agent who just got the alert gets ``alert.assigned``, an agent
  already assigned gets ``alert.updated``, and every agent whose pending
  offer is withdrawn by the change gets ``offer.revoked``.
* Offer bookkeeping (made, declined, expired) is not a status change: only
  the agent concerned hears of it (``alert.offer``, ``offer.revoked``).
* Chat (``PostMessage``): the alert's user (while it is not over), its
  assigned agent (while it holds it) and admins write; the message is a
  ``message`` timeline entry, pushed as ``alert.message`` to the user (but
  see the silent rule), the assigned agent and every admin socket. No
  ``Emit`` (like media entries): the timeline is its record.
* Arrival (``AgentLocation`` of the assignee): every relayed fix is turned
  into an estimate (``geo.eta``), pushed as ``alert.eta`` to the assigned
  agent, the admins and the user (but see the silent rule); only the first
  of an assignment and the ones that moved enough
  (``geo.eta.worth_recording``) become ``eta`` timeline entries (persisted,
  no ``Emit``); the others change nothing.
* Admin sockets (the dispatcher console) hear ``alert.created`` for every new
  alert and ``alert.updated`` (``AlertState.admin_updated_frame``: the truth,
  duress included) after every change of what they are shown: a status move,
  an assignment or unassignment, a new offer (``offered_at``), an escalation
  step, a duress or PIN-lock mark. At most one such push per transition.

The silent rule: a silent alert was raised covertly, and anything its
user's app shows may be seen by the person the user fears. So the user's
sockets get no ``alert.updated`` while the alert is still open (assigned,
escalated, en route, on scene); they get it only for a terminal status
(resolved, cancelled), which the app needs to leave its covert mode. Kafka
events, the timeline and agents' frames are not affected; agents see
``silent: true`` in ``alert.offer`` and ``alert.assigned`` so they approach
quietly. Nor do they get anything a responder says or estimates
(``alert.message`` from others, ``alert.eta``, ``agent.location``), ever:
``actors.alert_view.quiet``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from actors import codec
from actors.agent import Assigned, OfferTaken, Released
from actors.alert_messages import (
    DEFAULT_POLICY,
    EN_ROUTE_TIMER,
    ESCALATION_TIMER,
    MAX_MESSAGE_CHARS,
    OFFER_ACK_TIMER,
    OFFER_EXPIRED_TIMER,
    SEARCH_AGAIN_TIMER,
    AcceptOffer,
    AgentLocation,
    AlertMessage,
    AlertPolicy,
    Assign,
    Cancel,
    CreateAlert,
    DeclineOffer,
    Duress,
    EnRouteDue,
    Escalate,
    EscalationDue,
    MediaAdded,
    MediaProcessed,
    NotificationOutcome,
    OfferAckMissed,
    OfferExpired,
    OfferMade,
    OfferReceived,
    OfferUnreachable,
    PinRefused,
    PostMessage,
    Replayed,
    SearchAgain,
    Unassign,
    UpdateStatus,
    UserLocation,
    WithdrawOffer,
    offer_ack_timer_id,
    offer_timer_id,
    timer_message,
)
from actors.alert_state import (
    ALLOWED_TRANSITIONS,
    OFFERABLE,
    TERMINAL,
    ActorRole,
    AlertState,
    AlertStatus,
    AlertType,
    Offer,
    TimelineEntry,
    TimelineType,
    can_move,
    check_may_cancel,
    check_may_set,
)
from actors.alert_view import DURESS_REASON, PIN_ATTEMPTS_REASON, quiet
from actors.effects import (
    Audience,
    CancelTimer,
    Effect,
    Emit,
    EntityKind,
    EventType,
    FrameType,
    Persist,
    Push,
    Reply,
    ScheduleTimer,
    Send,
    Topic,
    Transition,
    in_order,
    with_sends,
)
from actors.errors import (
    ActorError,
    AlreadyExists,
    ChatRefused,
    Conflict,
    EntityNotFound,
    InvalidMessage,
    InvalidTransition,
    NoPendingOffer,
    UnknownMessage,
)
from actors.search import Search, SearchResult
from actors.subject import Responding, SubjectRole, subject_key
from config.text import is_control
from geo.cells import is_valid_point
from geo.eta import Eta, estimate, worth_recording

__all__ = [
    "ALLOWED_TRANSITIONS",
    "DEFAULT_POLICY",
    "OFFERABLE",
    "OFFER_EXPIRED_TIMER",
    "TERMINAL",
    "AcceptOffer",
    "ActorRole",
    "AlertMessage",
    "AlertPolicy",
    "AlertState",
    "AlertStatus",
    "AlertType",
    "Assign",
    "Cancel",
    "CreateAlert",
    "DeclineOffer",
    "Duress",
    "EnRouteDue",
    "Escalate",
    "EscalationDue",
    "Offer",
    "OfferAckMissed",
    "OfferExpired",
    "OfferMade",
    "OfferReceived",
    "OfferUnreachable",
    "PinRefused",
    "PostMessage",
    "Replayed",
    "SearchAgain",
    "SearchResult",
    "TimelineEntry",
    "TimelineType",
    "Unassign",
    "UpdateStatus",
    "WithdrawOffer",
    "can_move",
    "decide",
    "offer_timer_id",
    "timer_message",
    "user_sees",
]


def user_sees(state: AlertState, status: AlertStatus) -> bool:
    """Whether the user's app is pushed ``alert.updated`` for a move to ``status``.

    Always for a normal alert; for a silent one only when ``status`` is
    terminal (see the module docstring); never after a duress "cancel" (the
    app was shown a cancelled alert, and must go on showing just that).
    """
    if state.duress:
        return False
    return not state.silent or status in TERMINAL


# --- decide -------------------------------------------------------------------


def decide(
    state: AlertState | None,
    msg: AlertMessage,
    now: datetime,
    policy: AlertPolicy = DEFAULT_POLICY,
) -> Transition[AlertState]:
    """Apply ``msg`` to ``state`` at ``now``; see the module docstring for the rules.

    ``state`` is None only before :class:`CreateAlert`; any other message for
    a missing alert raises :class:`EntityNotFound`. Whenever an agent starts or
    stops responding, the user's subject entity is told (``Responding``), so the
    user's fixes reach the agent through it.
    """
    if isinstance(msg, AcceptOffer) and msg.alert_id is not None:
        return _accept_for_agent(state, msg, now, policy)
    new, effects = _decide(state, msg, now, policy)
    active = responding(new)
    if active == (state is not None and responding(state)):
        return new, effects
    told = Send(EntityKind.SUBJECT, _user_subject(new), Responding(new.id, active))
    return new, with_sends(effects, (told,))


def _accept_for_agent(
    state: AlertState | None, msg: AcceptOffer, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    """An accept forwarded by the agent's entity: the outcome goes back to it
    (``OfferTaken``), durably with the assignment, or at once as a refusal."""
    assert msg.alert_id is not None
    try:
        new, effects = decide(state, replace(msg, alert_id=None), now, policy)
    except ActorError as exc:
        if isinstance(exc, EntityNotFound) and exc.entity_id is None:
            exc = EntityNotFound(exc.entity, str(msg.alert_id))
        refused = Send(EntityKind.AGENT, msg.agent_id, OfferTaken(msg.alert_id, refusal=exc))
        # A refusal changes nothing here (a missing alert stays missing).
        return cast("AlertState", state), (refused,)
    taken = Send(EntityKind.AGENT, msg.agent_id, OfferTaken(msg.alert_id, status=new.status))
    return new, with_sends(effects, (taken,))


def responding(state: AlertState) -> bool:
    """Whether an agent is on the way or there: live locations flow both ways."""
    return state.status in RESPONDING and state.assigned_agent_id is not None


def _user_subject(state: AlertState) -> str:
    return subject_key(SubjectRole.USER, state.user_id)


def _decide(
    state: AlertState | None,
    msg: AlertMessage,
    now: datetime,
    policy: AlertPolicy,
) -> Transition[AlertState]:
    codec.check_now(now)
    if isinstance(msg, CreateAlert):
        return _create(state, msg, now, policy)
    if state is None:
        raise EntityNotFound("alert")
    if isinstance(msg, SearchResult):
        return _found(state, msg, now, policy)
    if isinstance(msg, SearchAgain):
        return _search_again(state, now, policy)
    if isinstance(msg, EscalationDue):
        return _escalation_due(state, msg, now, policy)
    if isinstance(msg, OfferMade):
        return _offer(state, msg, now, policy)
    if isinstance(msg, AcceptOffer):
        return _accept(state, msg, now, policy)
    if isinstance(msg, DeclineOffer):
        return _decline(state, msg, now, policy)
    if isinstance(msg, OfferExpired):
        return _expire(state, msg, now, policy)
    if isinstance(msg, OfferReceived):
        return _received(state, msg, now)
    if isinstance(msg, OfferUnreachable):
        return _withdraw(state, msg.agent_id, now, policy, "unreachable")
    if isinstance(msg, OfferAckMissed):
        offer = state.offer_for(msg.agent_id)
        if offer is None or offer.received_at is not None:
            return _unchanged(state)  # acknowledged, answered or withdrawn meanwhile
        return _withdraw(state, msg.agent_id, now, policy, "unacknowledged")
    if isinstance(msg, WithdrawOffer):
        return _withdraw(state, msg.agent_id, now, policy, msg.reason)
    if isinstance(msg, Unassign):
        return _unassign(state, msg, now, policy)
    if isinstance(msg, EnRouteDue):
        return _en_route_due(state, msg, now)
    if isinstance(msg, UpdateStatus):
        return _update_status(state, msg, now)
    if isinstance(msg, Assign):
        return _assign(state, msg, now, policy)
    if isinstance(msg, Escalate):
        return _escalate(state, msg, now)
    if isinstance(msg, Duress):
        return _duress(state, msg, now)
    if isinstance(msg, PinRefused):
        return _pin_refused(state, msg, now)
    if isinstance(msg, UserLocation | AgentLocation):
        return _relay_location(state, msg, policy)
    if isinstance(msg, PostMessage):
        return _message(state, msg, now, policy)
    if isinstance(msg, NotificationOutcome):
        return _notified(state, msg, now)
    if isinstance(msg, MediaAdded | MediaProcessed):
        return _media(state, msg, now)
    if isinstance(msg, Cancel):
        check_may_cancel(state, msg.actor_id, msg.actor_role)
        return _move(
            state,
            AlertStatus.CANCELLED,
            now,
            actor_id=msg.actor_id,
            entry_type=TimelineType.CANCELLED,
            data={"note": msg.note},
        )
    raise UnknownMessage("alert", type(msg).__name__)


def _unchanged(state: AlertState) -> Transition[AlertState]:
    return state, (Reply(state),)


def _changed(
    old: AlertState,
    at: datetime,
    entry_type: TimelineType,
    actor_id: UUID | None,
    data: Mapping[str, Any],
    **changes: Any,
) -> AlertState:
    entry = TimelineEntry(at=at, type=entry_type.value, actor_id=actor_id, data=dict(data))
    return replace(
        old,
        **changes,
        updated_at=at,
        version=old.version + 1,
        timeline=(*old.timeline, entry),
    )


def _persist(state: AlertState) -> Persist:
    return Persist(EntityKind.ALERT, state.id, state.version, state.to_snapshot())


def _emit(state: AlertState, topic: Topic, type_: EventType, data: Mapping[str, Any]) -> Emit:
    key = str(state.id)
    return Emit(topic, type_, key, key, dict(data), state.updated_at)


def _admins_told(state: AlertState, previous: AlertStatus) -> Push:
    """The admins' ``alert.updated`` after a change of ``state`` from ``previous``."""
    return Push(Audience.admins(), FrameType.ALERT_UPDATED, state.admin_updated_frame(previous))


def _revoked(state: AlertState, agent_id: UUID, reason: str) -> Push:
    data = {"alert_id": str(state.id), "reason": reason}
    return Push(Audience.agent(agent_id), FrameType.OFFER_REVOKED, data)


def _create(
    state: AlertState | None, msg: CreateAlert, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    if state is not None:
        if msg.idempotency_key is not None and msg.idempotency_key == state.idempotency_key:
            # A client's retry: the key was committed with the alert.
            if msg.request_hash != state.request_hash:
                raise AlreadyExists("alert", str(msg.alert_id))
            return state, (Reply(Replayed(state)),)
        same = (
            state.id == msg.alert_id
            and state.user_id == msg.user_id
            and state.alert_type == msg.alert_type
            and state.latitude == msg.latitude
            and state.longitude == msg.longitude
            and state.accuracy_m == msg.accuracy_m
            and state.description == msg.description
            and state.silent == msg.silent
        )
        if same:
            return _unchanged(state)
        raise AlreadyExists("alert", str(msg.alert_id))
    if not is_valid_point(msg.latitude, msg.longitude):
        raise InvalidMessage(f"invalid alert location ({msg.latitude!r}, {msg.longitude!r})")
    if msg.accuracy_m is not None and not msg.accuracy_m >= 0:
        raise InvalidMessage(f"accuracy_m must be >= 0, got {msg.accuracy_m!r}")
    entry = TimelineEntry(
        at=now,
        type=TimelineType.CREATED.value,
        actor_id=msg.user_id,
        data={
            "status": AlertStatus.DISPATCHING.value,
            "alert_type": msg.alert_type.value,
            "silent": msg.silent,
        },
    )
    new = AlertState(
        id=msg.alert_id,
        user_id=msg.user_id,
        alert_type=msg.alert_type,
        status=AlertStatus.DISPATCHING,
        latitude=float(msg.latitude),
        longitude=float(msg.longitude),
        accuracy_m=None if msg.accuracy_m is None else float(msg.accuracy_m),
        description=msg.description,
        silent=msg.silent,
        created_at=now,
        updated_at=now,
        timeline=(entry,),
        version=1,
        idempotency_key=msg.idempotency_key,
        request_hash=msg.request_hash,
    )
    created = _emit(new, Topic.PANIC_ALERTS, EventType.ALERT_CREATED, new.view())
    new, again, search = _search(new, now, policy)
    escalation = _next_escalation(new, policy)
    told = Push(Audience.admins(), FrameType.ALERT_CREATED, new.admin_created_frame())
    return new, (_persist(new), created, *escalation, again, search, told, Reply(new))


# --- escalation: timed steps while nobody accepts -----------------------------------


def _next_escalation(state: AlertState, policy: AlertPolicy) -> tuple[Effect, ...]:
    """The timer of the alert type's next escalation step, if one is left."""
    steps = policy.steps(state.alert_type)
    if state.escalation_step >= len(steps):
        return ()
    due = state.created_at + steps[state.escalation_step].after
    payload = {"step": state.escalation_step}
    return (ScheduleTimer(ESCALATION_TIMER, ESCALATION_TIMER, due, payload),)


def _escalation_due(
    state: AlertState, msg: EscalationDue, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    """Run step ``msg.step``: widen the reach, escalate, and search again at once.

    A step that is not the next one (a repeated timer), or that comes once
    the alert is assigned or over, changes nothing.
    """
    steps = policy.steps(state.alert_type)
    if msg.step != state.escalation_step or msg.step >= len(steps):
        return _unchanged(state)
    if state.status not in OFFERABLE:
        return _unchanged(state)
    step = steps[msg.step]
    reach = replace(
        state,
        escalation_step=msg.step + 1,
        search_rings=step.rings if step.rings is not None else state.search_rings,
        offer_to=step.offer_to if step.offer_to is not None else state.offer_to,
    )
    data = {
        "step": msg.step + 1,
        "rings": reach.search_rings,
        "offer_to": reach.offer_to,
        "escalate": step.escalate,
    }
    if step.escalate and can_move(state.status, AlertStatus.ESCALATED):
        new, moved = _move(
            reach,
            AlertStatus.ESCALATED,
            now,
            actor_id=None,
            entry_type=TimelineType.ESCALATED,
            data={"reason": "no responder accepted in time", **data},
        )
        emits = [e for e in moved if isinstance(e, Emit)]
        pushes = [e for e in moved if isinstance(e, Push)]
    else:
        at = max(now, state.updated_at)
        new = _changed(reach, at, TimelineType.ESCALATION_STEP, None, data)
        step_data = {"alert_id": str(new.id), **data}
        emits = [_emit(new, Topic.ALERT_RESPONSES, EventType.ALERT_ESCALATION_STEP, step_data)]
        pushes = [_admins_told(new, new.status)]
    timers: list[Effect] = list(_next_escalation(new, policy))
    searches: list[Effect] = []
    if _wants_offers(new, policy):
        new, again, search = _search(new, now, policy)
        timers.append(again)
        searches.append(search)
    return new, (_persist(new), *emits, *timers, *searches, *pushes, Reply(new))


# --- dispatch: searches and the offers made from their results ----------------------


def _offer_to(state: AlertState, policy: AlertPolicy) -> int:
    """Offers held at once: the policy's, or what an escalation step raised it to."""
    return policy.offer_to if state.offer_to is None else state.offer_to


def _wants_offers(state: AlertState, policy: AlertPolicy) -> bool:
    return state.status in OFFERABLE and len(state.offered_to) < _offer_to(state, policy)


def _search(
    state: AlertState, now: datetime, policy: AlertPolicy
) -> tuple[AlertState, ScheduleTimer, Search]:
    """The alert's next search for agents, and the timer that searches again
    if no offer comes of it (a lost answer included)."""
    new = replace(state, search_tag=state.search_tag + 1)
    again = ScheduleTimer(SEARCH_AGAIN_TIMER, SEARCH_AGAIN_TIMER, now + policy.search_again, {})
    search = Search(
        tag=new.search_tag,
        latitude=new.latitude,
        longitude=new.longitude,
        rings=policy.search_rings if new.search_rings is None else new.search_rings,
        k=max(policy.search_k, _offer_to(new, policy)),
        exclude=new.not_to_offer(),
        want=_offer_to(new, policy) - len(new.offered_to),
        max_rings=policy.search_max_rings,
    )
    return new, again, search


def _found(
    state: AlertState, msg: SearchResult, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    """Offer the alert to the nearest candidates not to skip, up to ``offer_to`` pending.

    A result of an older search, or one that comes when no offer is wanted,
    changes nothing; so does an empty one (the search-again timer is armed).
    """
    if msg.tag != state.search_tag or not _wants_offers(state, policy):
        return _unchanged(state)
    skip = state.not_to_offer()
    room = _offer_to(state, policy) - len(state.offered_to)
    picks: list[UUID] = []
    distances: dict[UUID, float] = {}
    for candidate in msg.candidates:
        if candidate.agent_id not in skip and candidate.agent_id not in distances:
            picks.append(candidate.agent_id)
            distances[candidate.agent_id] = round(candidate.distance_m, 1)
    if not picks:
        return _unchanged(state)
    new = state
    emits: list[Effect] = []
    timers: list[Effect] = []
    pushes: list[Effect] = []
    for agent_id in picks[:room]:
        new, effects = _offer(new, OfferMade(agent_id, distances[agent_id]), now, policy)
        emits += [e for e in effects if isinstance(e, Emit)]
        timers += [e for e in effects if isinstance(e, ScheduleTimer | CancelTimer)]
        pushes += [e for e in effects if isinstance(e, Push) and e.audience != Audience.admins()]
    # One admin notice for the offers made together, with the state after all of them.
    pushes.append(_admins_told(new, new.status))
    return new, (_persist(new), *emits, *timers, *pushes, Reply(new))


def _search_again(state: AlertState, now: datetime, policy: AlertPolicy) -> Transition[AlertState]:
    """The search-again timer: a new search while offers are still wanted."""
    if not _wants_offers(state, policy):
        return _unchanged(state)
    new, again, search = _search(state, now, policy)
    return new, (again, search, Reply(new))


def _offer(
    state: AlertState, msg: OfferMade, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    if state.status not in OFFERABLE:
        raise Conflict(
            f"cannot offer alert {state.id}: it is {state.status.value!r}; "
            "offers are made only while dispatching or escalated"
        )
    if msg.agent_id in state.declined_by:
        raise Conflict(f"agent {msg.agent_id} already declined alert {state.id}")
    if state.offer_for(msg.agent_id) is not None:
        return _unchanged(state)  # a repeated offer: the first one stands
    ttl = policy.offer_ttl if msg.ttl is None else msg.ttl
    if ttl <= timedelta(0):
        raise InvalidMessage(f"offer ttl must be positive, got {ttl}")
    at = max(now, state.updated_at)
    offer = Offer(
        agent_id=msg.agent_id, offered_at=at, expires_at=at + ttl, distance_m=msg.distance_m
    )
    data = {
        "agent_id": str(offer.agent_id),
        "expires_at": codec.iso(offer.expires_at),
        "distance_m": offer.distance_m,
    }
    new = _changed(
        state, at, TimelineType.OFFERED, None, data, offered_to=(*state.offered_to, offer)
    )
    # Enough offers pending: no more searching until one is answered or expires.
    full = () if _wants_offers(new, policy) else (CancelTimer(SEARCH_AGAIN_TIMER),)
    return new, (
        _persist(new),
        _emit(
            new, Topic.ALERT_RESPONSES, EventType.ALERT_OFFERED, {"alert_id": str(new.id), **data}
        ),
        ScheduleTimer(
            offer_timer_id(offer.agent_id),
            OFFER_EXPIRED_TIMER,
            offer.expires_at,
            {"agent_id": str(offer.agent_id)},
        ),
        *_ack_timer(offer, policy),
        *full,
        Push(
            Audience.agent(offer.agent_id),
            FrameType.ALERT_OFFER,
            new.offer_frame(offer),
            undelivered=OfferUnreachable(offer.agent_id),
        ),
        _admins_told(new, new.status),
        Reply(new),
    )


def _ack_timer(offer: Offer, policy: AlertPolicy) -> tuple[Effect, ...]:
    """Not acknowledged by the agent's device in time, an offer moves on (no
    timer for an offer that expires sooner anyway)."""
    due = offer.offered_at + policy.offer_ack_timeout
    if due >= offer.expires_at:
        return ()
    payload = {"agent_id": str(offer.agent_id)}
    return (ScheduleTimer(offer_ack_timer_id(offer.agent_id), OFFER_ACK_TIMER, due, payload),)


def _accept(
    state: AlertState, msg: AcceptOffer, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    if state.assigned_agent_id == msg.agent_id and not state.is_terminal:
        return _unchanged(state)  # the winner's retried accept
    if state.status not in OFFERABLE:
        taken = state.assigned_agent_id is not None and not state.is_terminal
        reason = "the alert is already assigned to another agent" if taken else None
        raise InvalidTransition(state.status, AlertStatus.ASSIGNED, reason=reason)
    offer = state.offer_for(msg.agent_id)
    if offer is None or offer.expires_at <= now:
        # An expired offer whose timer has not been delivered yet is just as gone.
        raise NoPendingOffer(str(state.id), str(msg.agent_id))
    new, effects = _move(
        state,
        AlertStatus.ASSIGNED,
        now,
        actor_id=msg.agent_id,
        entry_type=TimelineType.ACCEPTED,
        data={"agent_id": str(msg.agent_id)},
        assignee=msg.agent_id,
        event=EventType.ALERT_ACCEPTED,
        policy=policy,
    )
    fix = msg.fix()
    if fix is None:
        return new, effects
    # The agent's last fix, carried by its accept: the user sees it coming with
    # an estimate at once (told, not recorded: the next fix records the first).
    _, _, pushes = _eta_pushes(new, fix, _location_frame(new, fix), policy)
    return new, (*effects[:-1], *pushes, effects[-1])


def _decline(
    state: AlertState, msg: DeclineOffer, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    offer = state.offer_for(msg.agent_id)
    if offer is None:
        if msg.agent_id in state.declined_by:
            return _unchanged(state)  # a retried decline
        raise NoPendingOffer(str(state.id), str(msg.agent_id))
    at = max(now, state.updated_at)
    data = {"agent_id": str(msg.agent_id), "reason": msg.reason}
    new = _changed(
        state,
        at,
        TimelineType.DECLINED,
        msg.agent_id,
        data,
        offered_to=tuple(o for o in state.offered_to if o.agent_id != msg.agent_id),
        declined_by=(*state.declined_by, msg.agent_id),
    )
    declined = _emit(
        new, Topic.ALERT_RESPONSES, EventType.ALERT_DECLINED, {"alert_id": str(new.id), **data}
    )
    next_search: tuple[Effect, ...] = ()
    if _wants_offers(new, policy):
        new, again, search = _search(new, at, policy)
        next_search = (again, search)
    return new, (
        _persist(new),
        declined,
        *_offer_timers_off(msg.agent_id),
        *next_search,
        Reply(new),
    )


def _expire(
    state: AlertState, msg: OfferExpired, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    offer = state.offer_for(msg.agent_id)
    if offer is None or now < offer.expires_at:
        return _unchanged(state)  # stale timer: answered, withdrawn or re-armed
    return _withdraw(state, msg.agent_id, now, policy, "expired")


def _offer_timers_off(agent_id: UUID) -> tuple[Effect, ...]:
    """Disarm both timers of ``agent_id``'s offer (its expiry and its acknowledgement)."""
    return (CancelTimer(offer_timer_id(agent_id)), CancelTimer(offer_ack_timer_id(agent_id)))


def _received(state: AlertState, msg: OfferReceived, now: datetime) -> Transition[AlertState]:
    """The agent's device has the offer: it now runs to its full ``expires_at``."""
    offer = state.offer_for(msg.agent_id)
    if offer is None or offer.received_at is not None:
        return _unchanged(state)  # a repeat, or an offer already answered or withdrawn
    at = max(now, state.updated_at)
    received = replace(offer, received_at=at)
    data = {"agent_id": str(msg.agent_id)}
    new = _changed(
        state,
        at,
        TimelineType.OFFER_RECEIVED,
        msg.agent_id,
        data,
        offered_to=tuple(received if o is offer else o for o in state.offered_to),
    )
    event = {"alert_id": str(new.id), **data, "at": codec.iso(at)}
    return new, (
        _persist(new),
        _emit(new, Topic.ALERT_RESPONSES, EventType.ALERT_OFFER_RECEIVED, event),
        CancelTimer(offer_ack_timer_id(msg.agent_id)),
        Reply(new),
    )


def _withdraw(
    state: AlertState, agent_id: UUID, now: datetime, policy: AlertPolicy, reason: str
) -> Transition[AlertState]:
    """``agent_id``'s pending offer ends unanswered and the dispatch moves on.

    ``reason``: "expired" (its time ran out: ``offer_expired``), or why else
    it was withdrawn (``offer_withdrawn``): "unreachable" (no socket heard
    its push), "unacknowledged" (no ``OfferReceived`` in time), a
    suspension. The agent is not offered the alert again and is told
    (``offer.revoked``); another search starts at once.
    """
    offer = state.offer_for(agent_id)
    if offer is None:
        return _unchanged(state)  # answered or withdrawn already
    at = max(now, state.updated_at)
    expired = reason == "expired"
    data: dict[str, Any] = {"agent_id": str(agent_id)}
    if expired:
        data["expires_at"] = codec.iso(offer.expires_at)
    else:
        data["reason"] = reason
    new = _changed(
        state,
        at,
        TimelineType.OFFER_EXPIRED if expired else TimelineType.OFFER_WITHDRAWN,
        None,
        data,
        offered_to=tuple(o for o in state.offered_to if o.agent_id != agent_id),
        expired_for=(*state.expired_for, agent_id),
    )
    event = EventType.ALERT_OFFER_EXPIRED if expired else EventType.ALERT_OFFER_WITHDRAWN
    told = _emit(new, Topic.ALERT_RESPONSES, event, {"alert_id": str(new.id), **data})
    next_search: tuple[Effect, ...] = ()
    if _wants_offers(new, policy):
        new, again, search = _search(new, at, policy)
        next_search = (again, search)
    return new, (
        _persist(new),
        told,
        *_offer_timers_off(agent_id),
        *next_search,
        _revoked(new, agent_id, reason),
        Reply(new),
    )


def _update_status(state: AlertState, msg: UpdateStatus, now: datetime) -> Transition[AlertState]:
    check_may_set(state, msg.status, msg.actor_id, msg.actor_role)
    if msg.status is AlertStatus.ASSIGNED and can_move(state.status, msg.status):
        raise InvalidTransition(
            state.status,
            msg.status,
            reason="an alert is assigned by accepting an offer or by an admin assignment",
        )
    if msg.status is AlertStatus.ESCALATED:
        return _escalate(
            state, Escalate(reason=msg.note or "requested", actor_id=msg.actor_id), now
        )
    entry_type = (
        TimelineType.CANCELLED
        if msg.status is AlertStatus.CANCELLED
        else TimelineType.STATUS_CHANGED
    )
    return _move(
        state,
        msg.status,
        now,
        actor_id=msg.actor_id,
        entry_type=entry_type,
        data={"note": msg.note},
    )


def _assign(
    state: AlertState, msg: Assign, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    """An admin's assignment; of an alert another agent holds, a reassignment:
    that agent is told (``assignment.revoked``) and freed, and the timeline
    records both steps (``unassigned``, then ``assigned``)."""
    if state.assigned_agent_id == msg.agent_id and not state.is_terminal:
        return _unchanged(state)  # a repeated assignment
    before: tuple[Effect, ...] = ()
    start = state
    if state.assigned_agent_id is not None and not state.is_terminal:
        start, released = _release_holder(
            state, now, reason="reassigned", actor_id=msg.by_admin_id, to=AlertStatus.DISPATCHING
        )
        # The new assignment arms its own en-route deadline.
        before = tuple(e for e in released if e != CancelTimer(EN_ROUTE_TIMER))
    new, effects = _move(
        start,
        AlertStatus.ASSIGNED,
        now,
        actor_id=msg.by_admin_id,
        entry_type=TimelineType.ASSIGNED,
        data={"agent_id": str(msg.agent_id), "by_admin_id": str(msg.by_admin_id)},
        assignee=msg.agent_id,
        event=EventType.ALERT_ASSIGNED,
        policy=policy,
    )
    return new, in_order((*before, *effects))


def _release_holder(
    state: AlertState, now: datetime, *, reason: str, actor_id: UUID | None, to: AlertStatus
) -> tuple[AlertState, tuple[Effect, ...]]:
    """The agent holding the alert lets go of it (status back to ``to``).

    The step's timeline entry (``unassigned``), its event, and what the agent
    hears (``assignment.revoked``, and ``Released`` for its entity); no
    ``Persist``/``Reply``: the caller's next step ends the transition.
    """
    holder = state.assigned_agent_id
    assert holder is not None
    at = max(now, state.updated_at)
    data = {
        "status": to.value,
        "previous_status": state.status.value,
        "agent_id": str(holder),
        "reason": reason,
    }
    new = _changed(
        state,
        at,
        TimelineType.UNASSIGNED,
        actor_id,
        data,
        status=to,
        assigned_agent_id=None,
        expired_for=(*state.expired_for, holder),
    )
    event = {
        "alert_id": str(new.id),
        "user_id": str(new.user_id),
        "actor_id": codec.str_or_none(actor_id),
        "at": codec.iso(at),
        **data,
    }
    revoked = {"alert_id": str(new.id), "reason": reason}
    return new, (
        _emit(new, Topic.ALERT_RESPONSES, EventType.ALERT_UNASSIGNED, event),
        CancelTimer(EN_ROUTE_TIMER),
        Send(EntityKind.AGENT, holder, Released(alert_id=new.id)),
        Push(Audience.agent(holder), FrameType.ASSIGNMENT_REVOKED, revoked),
    )


def _unassign(
    state: AlertState, msg: Unassign, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    """Take the alert from its (suspended) agent and dispatch it again at once."""
    if state.assigned_agent_id != msg.agent_id or state.is_terminal:
        return _unchanged(state)  # not (or no longer) this agent's
    back = AlertStatus.ESCALATED if state.duress else AlertStatus.DISPATCHING
    new, told = _release_holder(state, now, reason=msg.reason, actor_id=msg.actor_id, to=back)
    moved = {
        "alert_id": str(new.id),
        "user_id": str(new.user_id),
        "assigned_agent_id": None,
        "actor_id": codec.str_or_none(msg.actor_id),
        "at": codec.iso(new.updated_at),
        "status": back.value,
        "previous_status": state.status.value,
        "reason": msg.reason,
    }
    status = _emit(new, Topic.ALERT_STATUS_UPDATES, EventType.ALERT_STATUS_CHANGED, moved)
    user: list[Effect] = []
    if user_sees(new, back):
        user.append(
            Push(
                Audience.user(new.user_id), FrameType.ALERT_UPDATED, new.updated_frame(state.status)
            )
        )
    new, again, search = _search(new, now, policy)
    user.append(_admins_told(new, state.status))
    steps = (status, *told, *_next_escalation(new, policy), again, search, *user)
    return new, (_persist(new), *in_order(steps), Reply(new))


def _en_route_due(state: AlertState, msg: EnRouteDue, now: datetime) -> Transition[AlertState]:
    """The assigned agent is not on its way by its deadline: the admins are called in."""
    if state.status is not AlertStatus.ASSIGNED or state.assigned_agent_id != msg.agent_id:
        return _unchanged(state)  # on its way, reassigned or over: a stale timer
    at = max(now, state.updated_at)
    data = {"agent_id": str(msg.agent_id), "reason": "en_route_overdue"}
    new = _changed(state, at, TimelineType.EN_ROUTE_OVERDUE, None, data)
    notice = {"alert_id": str(new.id), **new.view(), "previous_status": state.status.value, **data}
    return new, (
        _persist(new),
        _emit(
            new,
            Topic.ALERT_STATUS_UPDATES,
            EventType.ALERT_EN_ROUTE_OVERDUE,
            {"alert_id": str(new.id), **data},
        ),
        Push(Audience.admins(), FrameType.ALERT_ESCALATED, notice),
        Reply(new),
    )


def _escalate(state: AlertState, msg: Escalate, now: datetime) -> Transition[AlertState]:
    return _move(
        state,
        AlertStatus.ESCALATED,
        now,
        actor_id=msg.actor_id,
        entry_type=TimelineType.ESCALATED,
        data={"reason": msg.reason},
    )


def _notified(state: AlertState, msg: NotificationOutcome, now: datetime) -> Transition[AlertState]:
    """Record a notification's outcome in the timeline, once per request.

    Also after the alert ended (the resolution's own notices come then).
    """
    request_id = str(msg.request_id)
    for entry in state.timeline:
        if entry.type == TimelineType.NOTIFIED and entry.data.get("request_id") == request_id:
            return _unchanged(state)
    data = {
        "request_id": request_id,
        "channel": msg.channel,
        "occasion": msg.occasion,
        "contact_id": codec.str_or_none(msg.contact_id),
        "status": msg.status,
        "attempts": msg.attempts,
    }
    new = _changed(state, max(now, state.updated_at), TimelineType.NOTIFIED, None, data)
    event = _emit(
        new, Topic.AUDIT_LOGS, EventType.ALERT_NOTIFIED, {"alert_id": str(new.id), **data}
    )
    return new, (_persist(new), event, Reply(new))


def _media_recorded(state: AlertState, entry_type: TimelineType, data: Mapping[str, Any]) -> bool:
    return any(
        entry.type == entry_type
        and all(entry.data.get(key) == data[key] for key in ("media_id", "status"))
        for entry in state.timeline
    )


def _media(
    state: AlertState, msg: MediaAdded | MediaProcessed, now: datetime
) -> Transition[AlertState]:
    """Record evidence in the timeline, once per file and outcome (a redelivered
    event changes nothing), also after the alert ended; the agent assigned now
    and the admins are told with ``media.added``. The user is not (their app
    sent the file; the timeline entries are responder-only, ``actors.alert_view``).
    """
    data: dict[str, Any]
    if isinstance(msg, MediaAdded):
        entry_type = TimelineType.MEDIA_ADDED
        data = {
            "media_id": str(msg.media_id),
            "status": "stored",
            "kind": msg.kind,
            "content_type": msg.content_type,
            "size": msg.size,
            "uploader_role": msg.uploader_role,
        }
    else:
        entry_type = TimelineType.MEDIA_PROCESSED
        data = {"media_id": str(msg.media_id), "status": msg.status}
        if msg.renditions:
            data["renditions"] = list(msg.renditions)
        if msg.error is not None:
            data["error"] = msg.error
    if _media_recorded(state, entry_type, data):
        return _unchanged(state)
    new = _changed(state, max(now, state.updated_at), entry_type, None, data)
    frame = {"alert_id": str(new.id), **data}
    told: list[Effect] = [Push(Audience.admins(), FrameType.MEDIA_ADDED, frame)]
    if new.assigned_agent_id is not None:
        told.append(Push(Audience.agent(new.assigned_agent_id), FrameType.MEDIA_ADDED, frame))
    return new, (_persist(new), *told, Reply(new))


#: Statuses in which an agent is on the way or there: live locations flow both ways.
RESPONDING: frozenset[AlertStatus] = frozenset(
    {AlertStatus.ASSIGNED, AlertStatus.EN_ROUTE, AlertStatus.ON_SCENE}
)


def _relay_location(
    state: AlertState, msg: UserLocation | AgentLocation, policy: AlertPolicy
) -> Transition[AlertState]:
    """Pass a live position to the other side while an agent is responding.

    Soft: positions are not persisted (they are kept by their own subjects).
    The user's position goes to the assigned agent and to every admin socket
    (``alert.location``; the user's fixes reach the alert only while an agent
    responds, ``actors.subject``); the assigned agent's to
    the user, unless the user must not be shown anything (silent, duress).
    An agent that is not the assignee, or a position outside a response,
    changes nothing. The assignee's position also gives its arrival estimate
    (:func:`_eta`).
    """
    agent_id = state.assigned_agent_id
    if not responding(state) or agent_id is None:
        if isinstance(msg, UserLocation):
            # A late or duplicated "responding" left the user relaying here: stop it.
            stop = Send(EntityKind.SUBJECT, _user_subject(state), Responding(state.id, False))
            return state, (stop, Reply(state))
        return _unchanged(state)
    data = _location_frame(state, msg)
    if isinstance(msg, UserLocation):
        # The admins' consoles follow the user too (the same frame the agent gets).
        to_agent = Push(Audience.agent(agent_id), FrameType.ALERT_LOCATION, data)
        to_admins = Push(Audience.admins(), FrameType.ALERT_LOCATION, data)
        return state, (to_agent, to_admins, Reply(state))
    if msg.agent_id != agent_id:
        return _unchanged(state)
    return _eta(state, msg, data, policy)


def _eta(
    state: AlertState, msg: AgentLocation, location: Mapping[str, Any], policy: AlertPolicy
) -> Transition[AlertState]:
    """The assignee's fix ``msg``: ``agent.location`` to the user and ``alert.eta``
    to the user, the agent and the admins (the user only when it follows the
    agent, ``_user_follows``). The estimate is recorded (an ``eta`` entry,
    ``eta_agent_id``/``eta_recorded_s``, persisted) when it is the first for
    this agent or ``geo.eta.worth_recording`` says it moved enough; otherwise
    nothing changes."""
    agent_id = msg.agent_id
    eta, data, pushes = _eta_pushes(state, msg, location, policy)
    first = state.eta_agent_id != agent_id
    if not first and not worth_recording(state.eta_recorded_s, eta.eta_s):
        return state, (*pushes, Reply(state))
    new = _changed(
        state,
        max(msg.at, state.updated_at),
        TimelineType.ETA,
        None,
        data,
        eta_agent_id=agent_id,
        eta_recorded_s=eta.eta_s,
    )
    return new, (_persist(new), *pushes, Reply(new))


def _eta_pushes(
    state: AlertState, msg: AgentLocation, location: Mapping[str, Any], policy: AlertPolicy
) -> tuple[Eta, dict[str, Any], list[Effect]]:
    """The estimate from the assignee's fix ``msg``, its timeline data, and the
    pushes that tell it (see :func:`_eta`)."""
    agent_id = msg.agent_id
    eta = estimate(
        from_lat=msg.latitude,
        from_lon=msg.longitude,
        to_lat=state.latitude,
        to_lon=state.longitude,
        mode_speed_mps=policy.eta_speed_mps,
        heading=msg.heading,
        speed_mps=msg.speed_mps,
    )
    data = {
        "agent_id": str(agent_id),
        "eta_s": eta.eta_s,
        "distance_m": eta.distance_m,
        "method": eta.method,
        "at": codec.iso(msg.at),
    }
    frame = {"alert_id": str(state.id), **data}
    pushes: list[Effect] = []
    if _user_follows(state, agent_id):
        pushes.append(Push(Audience.user(state.user_id), FrameType.AGENT_LOCATION, location))
        pushes.append(Push(Audience.user(state.user_id), FrameType.ALERT_ETA, frame))
    pushes.append(Push(Audience.agent(agent_id), FrameType.ALERT_ETA, frame))
    pushes.append(Push(Audience.admins(), FrameType.ALERT_ETA, frame))
    return eta, data, pushes


def _location_frame(state: AlertState, msg: UserLocation | AgentLocation) -> dict[str, Any]:
    """``alert.location`` / ``agent.location``'s data for the fix ``msg``."""
    return {
        "alert_id": str(state.id),
        "latitude": msg.latitude,
        "longitude": msg.longitude,
        "accuracy_m": msg.accuracy_m,
        "at": codec.iso(msg.at),
    }


def _message(
    state: AlertState, msg: PostMessage, now: datetime, policy: AlertPolicy
) -> Transition[AlertState]:
    """A chat message: recorded once per ``message_id`` (a retry changes nothing).

    Refused (``ChatRefused``) from anyone but the alert's user, its assigned
    agent and admins, and from everyone once the alert is over; its user is
    refused as over after a duress "cancel" too (what a real cancel would
    answer). Past ``policy.max_messages``: ``Conflict``.
    """
    sender = msg.sender_id
    if msg.sender_role is ActorRole.USER:
        party = sender == state.user_id
    elif msg.sender_role is ActorRole.AGENT:
        party = state.assigned_agent_id is not None and sender == state.assigned_agent_id
    else:
        party = True
    if not party:
        raise ChatRefused(f"only the alert's user or its assigned agent may write to {state.id}")
    message_id = str(msg.message_id)
    if any(
        entry.type == TimelineType.MESSAGE and entry.data.get("message_id") == message_id
        for entry in state.timeline
    ):
        return _unchanged(state)
    over = state.is_terminal or (msg.sender_role is ActorRole.USER and state.duress_at is not None)
    if over:
        raise ChatRefused(f"alert {state.id} is over")
    text = check_message_text(msg.text)
    if state.message_count() >= policy.max_messages:
        raise Conflict(f"alert {state.id} holds {policy.max_messages} messages, the most it may")
    at = max(now, state.updated_at)
    data = {
        "message_id": message_id,
        "sender_role": msg.sender_role.value,
        "sender_id": str(sender),
        "text": text,
        "at": codec.iso(at),
    }
    new = _changed(state, at, TimelineType.MESSAGE, sender, data)
    frame = {"alert_id": str(new.id), **data}
    told: list[Effect] = []
    if not quiet(new):
        told.append(Push(Audience.user(new.user_id), FrameType.ALERT_MESSAGE, frame))
    if new.assigned_agent_id is not None:
        told.append(Push(Audience.agent(new.assigned_agent_id), FrameType.ALERT_MESSAGE, frame))
    told.append(Push(Audience.admins(), FrameType.ALERT_MESSAGE, frame))
    return new, (_persist(new), *told, Reply(new))


def check_message_text(text: str) -> str:
    """``text`` trimmed, if it is a chat message: 1 to ``MAX_MESSAGE_CHARS``
    characters, no control, format or separator character but line feeds.
    Raises ``InvalidMessage``. The gateway checks the same (``gateway.fields``)."""
    trimmed = text.strip()
    if not 1 <= len(trimmed) <= MAX_MESSAGE_CHARS:
        raise InvalidMessage(f"a message is 1 to {MAX_MESSAGE_CHARS} characters once trimmed")
    if any(char != "\n" and is_control(char) for char in trimmed):
        raise InvalidMessage("a message holds no control characters but line feeds")
    return trimmed


def _user_follows(state: AlertState, agent_id: UUID) -> bool:
    """Whether the user's app is shown ``agent_id`` coming (``agent.location``).

    Never on a silent alert or after a duress "cancel" (the app shows a
    cancelled alert). After a PIN lock the app is shown the alert as it was,
    so its assignee keeps moving on the map as after any wrong PIN.
    """
    if state.silent or state.duress_at is not None:
        return False
    if state.coerced_at is None:
        return True
    return state.as_user_sees().assigned_agent_id == agent_id


def _duress(state: AlertState, msg: Duress, now: datetime) -> Transition[AlertState]:
    """A "cancel" with the duress PIN: the user sees cancelled, responders escalated.

    A dispatching alert moves to ``escalated``; one already escalated or on
    its way keeps its status. Either way the alert is marked (``duress_at``),
    the assigned agent is told (``duress: true``), and the user's sockets get
    one ``alert.updated`` saying ``cancelled`` (the frame a real cancel sends,
    built from ``actors.alert_view``), then nothing more.
    """
    check_may_cancel(state, msg.actor_id, ActorRole.USER)
    if state.duress_at is not None:
        return _unchanged(state)
    if state.is_terminal:
        raise InvalidTransition(state.status, AlertStatus.CANCELLED)
    at = max(now, state.updated_at)
    marked = replace(state, duress_at=at)
    new, effects = _coerce(marked, now, msg.actor_id, {"reason": DURESS_REASON, "note": msg.note})
    shown = new.as_user_sees()
    fake = Push(
        Audience.user(new.user_id),
        FrameType.ALERT_UPDATED,
        shown.updated_frame(state.status),
    )
    return new, (*effects[:-1], fake, effects[-1])


def _pin_refused(state: AlertState, msg: PinRefused, now: datetime) -> Transition[AlertState]:
    """Record a refused cancel PIN for responders; past the limit, escalate quietly once.

    The user hears nothing of either (``actors.alert_view`` hides both); an
    alert already over, or already under duress, only records the refusal.
    """
    check_may_cancel(state, msg.actor_id, ActorRole.USER)
    at = max(now, state.updated_at)
    data = {"over_limit": msg.over_limit}
    new = _changed(state, at, TimelineType.PIN_REFUSED, msg.actor_id, data)
    event = {"alert_id": str(new.id), "user_id": str(new.user_id), "at": codec.iso(at), **data}
    refused = _emit(new, Topic.AUDIT_LOGS, EventType.ALERT_PIN_REFUSED, event)
    if not msg.over_limit or state.duress or state.is_terminal:
        return new, (_persist(new), refused, Reply(new))
    marked = replace(new, coerced_at=at)
    coerced, effects = _coerce(marked, at, msg.actor_id, {"reason": PIN_ATTEMPTS_REASON})
    return coerced, (effects[0], refused, *effects[1:])


def _coerce(
    marked: AlertState, now: datetime, actor_id: UUID, data: Mapping[str, Any]
) -> Transition[AlertState]:
    """Escalate an alert its user may be forced to stop (already marked so).

    A dispatching alert moves to ``escalated``; one escalated or under way keeps
    its status and gets a ``duress`` entry, its event, the admins' notice and
    the assigned agent's ``alert.updated`` (``duress: true``). Ends with ``Reply``.
    """
    if can_move(marked.status, AlertStatus.ESCALATED):
        return _move(
            marked,
            AlertStatus.ESCALATED,
            now,
            actor_id=actor_id,
            entry_type=TimelineType.ESCALATED,
            data=data,
        )
    at = max(now, marked.updated_at)
    new = _changed(marked, at, TimelineType.DURESS, actor_id, data)
    event = {
        "alert_id": str(new.id),
        "user_id": str(new.user_id),
        "status": new.status.value,
        "actor_id": str(actor_id),
        "at": codec.iso(at),
        **data,
    }
    told: list[Effect] = []
    if new.assigned_agent_id is not None:
        frame = {**new.updated_frame(new.status), "duress": True}
        told.append(Push(Audience.agent(new.assigned_agent_id), FrameType.ALERT_UPDATED, frame))
    notice = {"alert_id": str(new.id), **new.view(), "previous_status": new.status.value, **data}
    told.append(Push(Audience.admins(), FrameType.ALERT_ESCALATED, notice))
    told.append(_admins_told(new, new.status))
    return new, (
        _persist(new),
        _emit(new, Topic.ALERT_STATUS_UPDATES, EventType.ALERT_DURESS, event),
        *told,
        Reply(new),
    )


# Why each withdrawn offer is withdrawn, as told in ``offer.revoked``.
_REVOKE_REASON = {AlertStatus.ASSIGNED: "taken", AlertStatus.CANCELLED: "cancelled"}


def _move(
    state: AlertState,
    to: AlertStatus,
    now: datetime,
    *,
    actor_id: UUID | None,
    entry_type: TimelineType,
    data: Mapping[str, Any],
    assignee: UUID | None = None,
    event: EventType | None = None,
    policy: AlertPolicy = DEFAULT_POLICY,
) -> Transition[AlertState]:
    """Every status change goes through here, so all of them follow the same rules.

    A move to ``assigned`` arms the en-route deadline of the alert type
    (``policy``); leaving ``assigned`` disarms it.
    """
    if not can_move(state.status, to):
        raise InvalidTransition(state.status, to)
    at = max(now, state.updated_at)
    withdrawn = state.offered_to if to not in OFFERABLE else ()
    entry_data = {"status": to.value, "previous_status": state.status.value, **data}
    new = _changed(
        state,
        at,
        entry_type,
        actor_id,
        entry_data,
        status=to,
        assigned_agent_id=assignee if assignee is not None else state.assigned_agent_id,
        offered_to=() if withdrawn else state.offered_to,
    )

    event_data = {
        "alert_id": str(new.id),
        "user_id": str(new.user_id),
        "assigned_agent_id": codec.str_or_none(new.assigned_agent_id),
        "actor_id": codec.str_or_none(actor_id),
        "at": codec.iso(at),
        **entry_data,
    }
    emits: list[Effect] = []
    if event is not None:
        emits.append(_emit(new, Topic.ALERT_RESPONSES, event, event_data))
    emits.append(_emit(new, Topic.ALERT_STATUS_UPDATES, EventType.ALERT_STATUS_CHANGED, event_data))

    timers: list[Effect] = [t for o in withdrawn for t in _offer_timers_off(o.agent_id)]
    if to not in OFFERABLE:
        timers += [CancelTimer(SEARCH_AGAIN_TIMER), CancelTimer(ESCALATION_TIMER)]
    if to is AlertStatus.ASSIGNED and assignee is not None:
        due = at + policy.en_route_deadline(new.alert_type)
        timers.append(
            ScheduleTimer(EN_ROUTE_TIMER, EN_ROUTE_TIMER, due, {"agent_id": str(assignee)})
        )
    elif state.status is AlertStatus.ASSIGNED:
        timers.append(CancelTimer(EN_ROUTE_TIMER))

    sends: list[Effect] = []
    if to is AlertStatus.ASSIGNED and assignee is not None:
        sends.append(Send(EntityKind.AGENT, assignee, Assigned(alert_id=new.id)))
    if to in TERMINAL and state.assigned_agent_id is not None:
        sends.append(Send(EntityKind.AGENT, state.assigned_agent_id, Released(alert_id=new.id)))

    updated = new.updated_frame(state.status)
    pushes: list[Effect] = [
        _revoked(new, o.agent_id, _REVOKE_REASON[to]) for o in withdrawn if o.agent_id != assignee
    ]
    if assignee is not None:
        pushes.append(
            Push(Audience.agent(assignee), FrameType.ALERT_ASSIGNED, new.assigned_frame())
        )
    elif new.assigned_agent_id is not None:
        told = {**updated, "duress": True} if new.duress else updated
        pushes.append(Push(Audience.agent(new.assigned_agent_id), FrameType.ALERT_UPDATED, told))
    if user_sees(new, to):
        pushes.append(Push(Audience.user(new.user_id), FrameType.ALERT_UPDATED, updated))
    pushes.append(_admins_told(new, state.status))

    if to is AlertStatus.ESCALATED:
        # The platform's call for human attention: every admin's portal hears of it.
        notice = {
            "alert_id": str(new.id),
            **new.view(),
            "previous_status": state.status.value,
            **data,
        }
        pushes.append(Push(Audience.admins(), FrameType.ALERT_ESCALATED, notice))
    return new, (_persist(new), *emits, *timers, *sends, *pushes, Reply(new))
