"""The entity kinds' policies from the settings: what a shard hosts them with.

Pure: ``ActorSettings`` in, ``actors.kinds`` behaviours out (offers, searches
and escalation steps of alerts, agents' heartbeats, regions' presence).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

from actors.agent import AgentPolicy
from actors.alert_messages import AlertPolicy, EscalationStep
from actors.alert_state import AlertType
from actors.kinds import behaviours
from actors.region import RegionPolicy
from config.settings import ActorSettings


def alert_policy(cfg: ActorSettings) -> AlertPolicy:
    """The alert machine's policy from the settings (offers, searches, escalation)."""
    return AlertPolicy(
        offer_ttl=timedelta(seconds=cfg.offer_ttl_s),
        offer_ack_timeout=timedelta(seconds=cfg.offer_ack_timeout_s),
        en_route={AlertType(name): timedelta(seconds=s) for name, s in cfg.en_route_s.items()},
        search_rings=cfg.search_rings,
        search_max_rings=cfg.search_max_rings,
        search_k=cfg.search_k,
        offer_to=cfg.offer_to,
        search_again=timedelta(seconds=cfg.search_again_s),
        eta_speed_mps=cfg.eta_speed_mps,
        max_messages=cfg.max_messages,
        escalation={
            AlertType(name): tuple(
                EscalationStep(
                    after=timedelta(seconds=step.after_s),
                    rings=step.rings,
                    offer_to=step.offer_to,
                    escalate=step.escalate,
                )
                for step in steps
            )
            for name, steps in cfg.escalation.items()
        },
    )


def behaviours_from(cfg: ActorSettings, zone_gone: Callable[[UUID], bool]) -> Any:
    """Every entity kind's behaviour with its policy from ``cfg``; ``zone_gone``
    is the hosting shard's word on a subject's dwell timer's zone."""
    return behaviours(
        alert_policy(cfg),
        AgentPolicy(
            heartbeat_timeout=timedelta(seconds=cfg.heartbeat_timeout_s),
            disconnect_grace=timedelta(seconds=cfg.disconnect_grace_s),
            region_resolution=cfg.region_resolution,
        ),
        RegionPolicy(presence_ttl=timedelta(seconds=cfg.presence_ttl_s)),
        zone_gone=zone_gone,
    )
