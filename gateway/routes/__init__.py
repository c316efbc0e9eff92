"""Resource route modules, one per bounded context (auth, users, alerts, ...).

Each module exposes ``router: APIRouter`` with its own prefix and tags, and
reaches settings and backends only through ``gateway.deps`` aliases. Add a
module's router to :func:`api_routers`; ``create_app`` includes them all.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.routes import (
    admin,
    alert_messages,
    alert_notifications,
    alerts,
    analytics,
    auth,
    checkins,
    devices,
    geofence_events,
    geofencing,
    integrations,
    media,
    media_tus,
    totp,
    users,
    ws,
    zones,
)


def api_routers() -> list[APIRouter]:
    """The resource routers of the public API, in inclusion order.

    The sockets' router comes first: a connection is matched against the
    routes in order, and a reconnect storm brings thousands at once.
    """
    return [
        ws.router,
        auth.router,
        totp.router,
        users.router,
        devices.router,
        alerts.router,
        alert_notifications.router,
        alert_messages.router,
        geofencing.router,
        zones.router,
        geofence_events.router,
        checkins.router,
        media.router,
        media_tus.router,
        admin.router,
        integrations.router,
        analytics.router,
    ]
