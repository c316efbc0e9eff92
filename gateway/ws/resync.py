"""What a socket is sent right after ``auth.ok``: the state it may have missed.

Pushes are at-most-once, so on every (re)connect the app is told again:

* an agent: every pending offer it holds (``alert.offer``; open alerts still
  offering to it, offer not expired), built by ``AlertState.offer_frame`` as
  the live push is, so as coarse (no description, the position to ~500 m);
  and every open alert assigned to it (``alert.assigned``, exact);
* a user: each of their alerts open as they are shown it
  (``AlertState.as_user_sees``, so a duress "cancel" is over and a PIN lock
  changes nothing) as ``alert.updated``, except what the silent rule hides
  (``actors.alert.user_sees``: a silent alert's user hears only of terminal
  statuses, and a terminal alert is not open).

:func:`resync_frames` is pure; the snapshots come from an
:class:`OpenAlertSource` (the ``OpenAlerts`` port of ``gateway.ports``). Resync frames carry
``"resync": true`` in ``data``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from actors.alert_state import OFFERABLE, AlertState, AlertStatus
from actors.effects import Audience, AudienceKind, FrameType
from actors.errors import InvalidSnapshot
from gateway.ws.frames import ServerFrame

log = logging.getLogger(__name__)


class OpenAlertSource(Protocol):
    async def for_agent(self, agent_id: UUID) -> Sequence[Mapping[str, Any]]:
        """Snapshots of open alerts offered or assigned to ``agent_id`` (may hold others)."""
        ...

    async def for_user(self, user_id: UUID) -> Sequence[Mapping[str, Any]]:
        """Snapshots of the open alerts of ``user_id``."""
        ...


async def load_resync(
    source: OpenAlertSource, audience: Audience, now: datetime
) -> list[ServerFrame]:
    """Read the snapshots for ``audience`` and build its resync frames."""
    if audience.kind is AudienceKind.ADMINS:
        return []  # the portal reads open alerts over REST
    if audience.kind is AudienceKind.AGENT:
        snapshots = await source.for_agent(audience.id)
    else:
        snapshots = await source.for_user(audience.id)
    return resync_frames(audience, _decode(snapshots), now)


def resync_frames(
    audience: Audience, alerts: Iterable[AlertState], now: datetime
) -> list[ServerFrame]:
    """The frames ``audience`` must be sent now, oldest alert first. Pure."""
    frames: list[ServerFrame] = []
    for alert in alerts:
        if alert.is_terminal:
            continue
        if audience.kind is AudienceKind.AGENT:
            offer = alert.offer_for(audience.id)
            if offer is not None and alert.status in OFFERABLE and offer.expires_at > now:
                frames.append(_frame(FrameType.ALERT_OFFER, alert.offer_frame(offer)))
            if alert.assigned_agent_id == audience.id:
                frames.append(_frame(FrameType.ALERT_ASSIGNED, alert.assigned_frame()))
        elif alert.user_id == audience.id:
            # The alert as its user is shown it (actors.alert_view): a duress
            # "cancel" is over for them; a PIN lock shows it as it was.
            shown = alert.as_user_sees()
            if not shown.is_terminal and not shown.silent:  # the silent rule
                frames.append(
                    _frame(FrameType.ALERT_UPDATED, shown.updated_frame(_previous(shown)))
                )
    return frames


def _frame(frame_type: FrameType, data: Mapping[str, Any]) -> ServerFrame:
    return {"type": frame_type.value, "data": {**data, "resync": True}}


def _previous(alert: AlertState) -> AlertStatus:
    """The status before the last status change (the alert's own if it never moved)."""
    for entry in reversed(alert.timeline):
        previous = entry.data.get("previous_status")
        if isinstance(previous, str) and previous in AlertStatus.__members__.values():
            return AlertStatus(previous)
    return alert.status


def _decode(snapshots: Iterable[Mapping[str, Any]]) -> list[AlertState]:
    alerts = []
    for snapshot in snapshots:
        try:
            alerts.append(AlertState.from_snapshot(snapshot))
        except (InvalidSnapshot, ValueError):
            # One unreadable snapshot must not cost the socket the others.
            log.warning("resync: skipping unreadable alert snapshot %s", snapshot.get("id"))
    return alerts
