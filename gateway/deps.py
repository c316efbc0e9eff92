"""Every FastAPI dependency of the gateway, as ``Annotated`` aliases.

Route modules import these aliases and nothing else to reach settings and
backends::

    async def create_alert(body: AlertIn, pool: PoolDep) -> AlertOut: ...

A backend that is not connected makes its dependency raise
``ServiceUnavailable``, which ``gateway.errors`` renders as 503 problem
details; routes never check connectivity themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import asyncpg
import redis.asyncio as aioredis
from fastapi import Depends
from starlette.requests import HTTPConnection

from cluster.client import EntityClient
from cluster.errors import ClusterUnavailable
from config.settings import Settings
from gateway.backends import KafkaBackend, MongoBackend, PostgresBackend, RedisBackend
from gateway.metrics import HttpMetrics
from gateway.readiness import BackendSet
from gateway.state import gateway_state
from persistence.drivers.kafka import KafkaPublisher
from persistence.drivers.mongo import EventStore
from persistence.errors import Service, ServiceUnavailable


def get_settings(connection: HTTPConnection) -> Settings:
    return gateway_state(connection).settings


def get_backends(connection: HTTPConnection) -> BackendSet:
    return gateway_state(connection).backends


def get_metrics(connection: HTTPConnection) -> HttpMetrics:
    return gateway_state(connection).metrics


def _missing(service: Service) -> ServiceUnavailable:
    return ServiceUnavailable(service, "not configured in this process")


def get_pool(connection: HTTPConnection) -> asyncpg.Pool:
    backend = get_backends(connection).find(PostgresBackend)
    if backend is None:
        raise _missing("postgres")
    return backend.pool


def get_redis(connection: HTTPConnection) -> aioredis.Redis:
    backend = get_backends(connection).find(RedisBackend)
    if backend is None:
        raise _missing("redis")
    return backend.client


def get_event_store(connection: HTTPConnection) -> EventStore:
    backend = get_backends(connection).find(MongoBackend)
    if backend is None:
        raise _missing("mongo")
    return backend.store


def get_publisher(connection: HTTPConnection) -> KafkaPublisher:
    backend = get_backends(connection).find(KafkaBackend)
    if backend is None:
        raise _missing("kafka")
    return backend.publisher


def get_entities(connection: HTTPConnection) -> EntityClient:
    entities = gateway_state(connection).entities
    if entities is None:
        raise ClusterUnavailable("this process runs without the entity actors (no Ray)")
    return entities


T = TypeVar("T")


def inline(getter: Callable[[HTTPConnection], T]) -> Callable[[HTTPConnection], Awaitable[T]]:
    """``getter`` as an async dependency.

    FastAPI runs every plain ``def`` dependency in a worker thread; these
    getters only read app state, so the thread hop per dependency per request
    was pure overhead (several percent of the gateway's CPU under load).
    """

    async def dependency(connection: HTTPConnection) -> T:
        return getter(connection)

    dependency.__name__ = getter.__name__
    return dependency


SettingsDep = Annotated[Settings, Depends(inline(get_settings))]
BackendsDep = Annotated[BackendSet, Depends(inline(get_backends))]
MetricsDep = Annotated[HttpMetrics, Depends(inline(get_metrics))]
PoolDep = Annotated[asyncpg.Pool, Depends(inline(get_pool))]
RedisDep = Annotated[aioredis.Redis, Depends(inline(get_redis))]
EventStoreDep = Annotated[EventStore, Depends(inline(get_event_store))]
PublisherDep = Annotated[KafkaPublisher, Depends(inline(get_publisher))]
EntitiesDep = Annotated[EntityClient, Depends(inline(get_entities))]
