"""The roles of the API: who an account, a token and a socket belong to.

Defined once here; accounts (``persistence.stores.accounts``), principals
(``gateway.auth.principal``), response bodies and frames all use this enum.
An alert message's actor (``actors.alert_state.ActorRole``) and a geofenced
subject (``SubjectRole``, below) take their values from it.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    USER = "user"
    AGENT = "agent"
    ADMIN = "admin"


class SubjectRole(enum.StrEnum):
    """Whose position a subject entity follows (API roles, ``actors.roles``)."""

    USER = Role.USER.value
    AGENT = Role.AGENT.value
