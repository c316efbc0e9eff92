"""The entity kinds, as the runtime sees them: one ``Behaviour`` each.

A behaviour binds a kind's pure functions (decide, snapshot decoding, timer
messages) and its policy, so the runtime stays generic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from actors import agent, alert, region, subject
from actors.alert_messages import AlertPolicy
from actors.effects import EntityId, EntityKind, Transition
from actors.errors import InvalidMessage, UnknownMessage

#: Messages whose answer may wait on another entity (the asker is parked with
#: ``Defer`` until it answers): an agent's ``TakeOffer`` waits for its alert.
#: Clients ask these alone, never batched with other asks.
DEFERRING: tuple[type, ...] = (agent.TakeOffer,)


@dataclass(frozen=True, slots=True)
class Behaviour:
    kind: EntityKind
    #: The typed id (UUID or H3 cell) from its stored string form.
    parse_id: Callable[[str], EntityId]
    #: The state of an entity never persisted (None: it must be created first).
    initial: Callable[[Any], Any]
    decide: Callable[[Any, Any, datetime], Transition[Any]]
    from_snapshot: Callable[[Mapping[str, Any]], Any]
    timer_message: Callable[[str, Mapping[str, Any]], object]
    #: The hot path's shortcut: the state ``decide`` would give a message when it
    #: gives that and no effect at all, or None when ``decide`` must run. It must
    #: agree with ``decide`` (each kind's tests check); None: always decide.
    shortcut: Callable[[Any, object], Any] | None = None


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError as exc:
        raise InvalidMessage(f"not an entity id: {value!r}") from exc


def _subject_key(value: str) -> str:
    subject.parse_subject_key(value)  # InvalidMessage if it is not one
    return value


def _no_timers(name: str, payload: Mapping[str, Any]) -> object:
    raise UnknownMessage("region", f"timer {name!r}")


def behaviours(
    alert_policy: AlertPolicy = alert.DEFAULT_POLICY,
    agent_policy: agent.AgentPolicy = agent.DEFAULT_POLICY,
    region_policy: region.RegionPolicy = region.DEFAULT_POLICY,
    zone_gone: Callable[[UUID], bool] = lambda _zone: False,
) -> dict[EntityKind, Behaviour]:
    """Every kind's behaviour; ``zone_gone`` tells a subject's dwell timer that
    its zone was deleted or deactivated (the shard's zone book)."""
    return {
        EntityKind.ALERT: Behaviour(
            kind=EntityKind.ALERT,
            parse_id=_uuid,
            initial=lambda _id: None,
            decide=partial(alert.decide, policy=alert_policy),
            from_snapshot=alert.AlertState.from_snapshot,
            timer_message=alert.timer_message,
        ),
        EntityKind.AGENT: Behaviour(
            kind=EntityKind.AGENT,
            parse_id=_uuid,
            initial=agent.AgentState.new,
            decide=partial(agent.decide, policy=agent_policy),
            from_snapshot=agent.AgentState.from_snapshot,
            timer_message=agent.timer_message,
        ),
        EntityKind.REGION: Behaviour(
            kind=EntityKind.REGION,
            parse_id=str,
            initial=region.RegionState.new,
            decide=partial(region.decide, policy=region_policy),
            from_snapshot=region.RegionState.from_snapshot,
            timer_message=_no_timers,
        ),
        EntityKind.SUBJECT: Behaviour(
            kind=EntityKind.SUBJECT,
            parse_id=_subject_key,
            initial=subject.SubjectState.new,
            decide=subject.decide,
            from_snapshot=subject.SubjectState.from_snapshot,
            timer_message=partial(subject.timer_message, zone_gone=zone_gone),
            shortcut=subject.shortcut,
        ),
    }
