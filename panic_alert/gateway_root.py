"""The gateway's composition root: settings -> adapters -> ports -> app.

The only place a gateway process builds adapters. Each reconnecting backend
(``persistence.drivers.reconnecting``) owns one connection (PostgreSQL pool,
Redis client, MongoDB event store, Kafka publisher); the ports' providers
bind a store to the backend's live connection when a request needs it, and
raise ``ServiceUnavailable`` while it is down (``/readyz`` reconnects it).
Ray's readiness (``cluster.readiness``) joins the backends when the process
runs the entity actors.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import FastAPI

from cluster.client import EntityClient
from cluster.readiness import RayBackend
from config.settings import Settings
from gateway.app import create_app
from gateway.metrics import HttpMetrics
from gateway.ports import BulkSpread, GatewayPorts, LocationHistory, MetricsReads
from gateway.readiness import Backend
from persistence.drivers.reconnecting import (
    KafkaBackend,
    MongoBackend,
    PostgresBackend,
    RedisBackend,
)
from persistence.media.objects import object_store
from persistence.pushes import RedisPushSubscriptions
from persistence.stores.accounts import PostgresAccounts
from persistence.stores.admin_totp import PostgresAdminTotp
from persistence.stores.alerts import PostgresAlertReads
from persistence.stores.analytics import PostgresAnalytics
from persistence.stores.contacts import PostgresContacts
from persistence.stores.devices import PostgresDevices, PostgresVapidKeys
from persistence.stores.fleet import PostgresRedisFleet
from persistence.stores.geofence_events import MongoGeofenceEvents
from persistence.stores.integration_keys import PostgresIntegrationKeys
from persistence.stores.locations import MongoLocationHistory, RedisLatestLocations
from persistence.stores.media import PostgresMediaRecords
from persistence.stores.media_uploads import PostgresMediaUploads
from persistence.stores.metrics import PostgresMetricsReads
from persistence.stores.notification_deliveries import PostgresAlertNotifications
from persistence.stores.open_alerts import PostgresOpenAlerts
from persistence.stores.pin_failures import PostgresPinFailures
from persistence.stores.press_locks import RedisPressMutex
from persistence.stores.rate_limits import RedisLoginFailures, RedisRateCounters
from persistence.stores.refresh_tokens import PostgresRefreshTokens
from persistence.stores.sessions import RedisSessions
from persistence.stores.vetting import PostgresAgentVetting
from persistence.stores.zones import PostgresZones


def gateway_backends(
    settings: Settings,
) -> tuple[PostgresBackend, RedisBackend, MongoBackend, KafkaBackend]:
    """The production backends for ``settings`` (each connects lazily, reconnects on checks)."""
    return (
        PostgresBackend(settings.postgres, ping_timeout_s=settings.http.readiness_timeout_s),
        RedisBackend(settings.redis),
        MongoBackend(settings.mongo),
        KafkaBackend(settings.kafka),
    )


def gateway_ports(
    settings: Settings,
    postgres: PostgresBackend,
    redis: RedisBackend,
    mongo: MongoBackend,
) -> GatewayPorts:
    """The adapters behind every port, bound to the backends' live connections."""

    def history() -> LocationHistory | None:
        if not mongo.connected:
            return None
        return MongoLocationHistory(mongo.store, source=settings.kafka.source)

    objects = object_store(settings.media, settings.data_dir)
    # One per process, so the key is read (or generated) once and then kept.
    kept: list[PostgresVapidKeys] = []

    def vapid_keys() -> PostgresVapidKeys:
        if not kept or kept[0].pool is not postgres.pool:
            configured = settings.notify.vapid_private_key.get_secret_value()
            kept[:] = [PostgresVapidKeys(postgres.pool, configured)]
        return kept[0]

    def metrics() -> MetricsReads | None:
        return PostgresMetricsReads(postgres.pool) if postgres.connected else None

    return GatewayPorts(
        accounts=lambda: PostgresAccounts(postgres.pool),
        contacts=lambda: PostgresContacts(postgres.pool),
        refresh_tokens=lambda: PostgresRefreshTokens(postgres.pool),
        alerts=lambda: PostgresAlertReads(postgres.pool),
        open_alerts=lambda: PostgresOpenAlerts(postgres.pool),
        zones=lambda: PostgresZones(postgres.pool),
        geofence_events=lambda: MongoGeofenceEvents(mongo.store),
        agent_vetting=lambda: PostgresAgentVetting(postgres.pool, source=settings.kafka.source),
        fleet=lambda: PostgresRedisFleet(postgres.pool, redis.client),
        admin_totp=lambda: PostgresAdminTotp(postgres.pool, source=settings.kafka.source),
        sessions=lambda: RedisSessions(redis.client),
        rate_counters=lambda: RedisRateCounters(redis.client),
        press_mutex=lambda: RedisPressMutex(redis.client),
        login_failures=lambda: RedisLoginFailures(redis.client),
        pin_failures=lambda: PostgresPinFailures(postgres.pool),
        latest_locations=lambda: RedisLatestLocations(redis.client),
        location_history=history,
        push_subscriptions=RedisPushSubscriptions(settings.redis).open,
        metrics=metrics,
        media_records=lambda: PostgresMediaRecords(postgres.pool, source=settings.kafka.source),
        media_objects=lambda: objects,
        media_uploads=lambda: PostgresMediaUploads(postgres.pool, source=settings.kafka.source),
        analytics=lambda: PostgresAnalytics(postgres.pool),
        alert_notifications=lambda: PostgresAlertNotifications(postgres.pool),
        devices=lambda: PostgresDevices(postgres.pool),
        vapid_keys=vapid_keys,
        integration_keys=lambda: PostgresIntegrationKeys(
            postgres.pool, source=settings.kafka.source
        ),
    )


def build_gateway(
    settings: Settings,
    *,
    with_ray: bool = False,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    entities: EntityClient | None = None,
    freeze_heap: bool = False,
    metrics: HttpMetrics | None = None,
    bulk_spread: BulkSpread | None = None,
) -> FastAPI:
    """The gateway app of ``settings`` on the real services (Ray's readiness when
    ``with_ray``); the other arguments go to :func:`gateway.app.create_app`."""
    postgres, redis, mongo, kafka = gateway_backends(settings)
    backends: list[Backend] = [postgres, redis, mongo, kafka]
    if with_ray:
        backends.append(RayBackend(ping_timeout_s=settings.http.readiness_timeout_s))
    return create_app(
        settings,
        ports=gateway_ports(settings, postgres, redis, mongo),
        backends=backends,
        background=background,
        entities=entities,
        freeze_heap=freeze_heap,
        metrics=metrics,
        bulk_spread=bulk_spread,
    )
