"""The event envelope and where each event is stored. Pure: no I/O.

Every Kafka message and every MongoDB event document is a CloudEvents 1.0
event in JSON structured mode (``datacontenttype: application/json``). Its
``id`` is a UUID string and is the deduplication key everywhere: the MongoDB
``_id``, the outbox ``event_id``, and what consumers remember to drop
redeliveries (delivery is at-least-once).

``topic -> collection`` routing (``collection_for_topic``):

=====================================================  ==================
Kafka topic                                            MongoDB collection
=====================================================  ==================
panic-alerts, alert-responses, alert-status-updates,   alert_events
push-notifications, sms-notifications,
email-notifications
location-updates                                       location_events
geofence-events                                        geofence_events
media-uploads, media-processing (``media-*``)          media_events
user-events, agent-events, system-events, audit-logs   system_logs
=====================================================  ==================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from actors.effects import Topic
from persistence.errors import EncodingError

ALERT_EVENTS = "alert_events"
LOCATION_EVENTS = "location_events"
MEDIA_EVENTS = "media_events"
GEOFENCE_EVENTS = "geofence_events"
SYSTEM_LOGS = "system_logs"

#: Every collection of the event store, in the seed's names.
COLLECTIONS: tuple[str, ...] = (
    ALERT_EVENTS,
    LOCATION_EVENTS,
    MEDIA_EVENTS,
    GEOFENCE_EVENTS,
    SYSTEM_LOGS,
)

_EXACT_ROUTES: dict[str, str] = {
    Topic.PANIC_ALERTS: ALERT_EVENTS,
    Topic.ALERT_RESPONSES: ALERT_EVENTS,
    Topic.ALERT_STATUS_UPDATES: ALERT_EVENTS,
    # Notifications are about an alert; keeping them with it makes the
    # alert timeline one query.
    Topic.PUSH_NOTIFICATIONS: ALERT_EVENTS,
    Topic.SMS_NOTIFICATIONS: ALERT_EVENTS,
    Topic.EMAIL_NOTIFICATIONS: ALERT_EVENTS,
    Topic.LOCATION_UPDATES: LOCATION_EVENTS,
    Topic.GEOFENCE_EVENTS: GEOFENCE_EVENTS,
    Topic.USER_EVENTS: SYSTEM_LOGS,
    Topic.AGENT_EVENTS: SYSTEM_LOGS,
    Topic.SYSTEM_EVENTS: SYSTEM_LOGS,
    Topic.AUDIT_LOGS: SYSTEM_LOGS,
}
_PREFIX_ROUTES: tuple[tuple[str, str], ...] = (("media-", MEDIA_EVENTS),)


def _build_routes() -> Mapping[str, str]:
    routes = dict(_EXACT_ROUTES)
    for topic in Topic:
        if topic in routes:
            continue
        for prefix, collection in _PREFIX_ROUTES:
            if topic.startswith(prefix):
                routes[topic] = collection
                break
    return MappingProxyType(routes)


#: The complete routing of the seed topics (every ``actors.effects.Topic``).
TOPIC_COLLECTIONS: Mapping[str, str] = _build_routes()


def collection_for_topic(topic: str, extra: Mapping[str, str] | None = None) -> str:
    """The MongoDB collection that stores events published to ``topic``.

    ``extra`` adds routes for topics outside the seed's list (benchmarks, tests).
    Raises ``KeyError`` for a topic with no route: an unrouted event must fail
    loudly rather than land in a catch-all collection.
    """
    if extra and topic in extra:
        return extra[topic]
    route = TOPIC_COLLECTIONS.get(topic)
    if route is not None:
        return route
    for prefix, collection in _PREFIX_ROUTES:
        if topic.startswith(prefix):
            return collection
    raise KeyError(f"no event-store collection for Kafka topic {topic!r}")


def normalize_time(value: datetime) -> datetime:
    """UTC, truncated to milliseconds.

    One canonical zone so times compare and sort as text too; milliseconds
    because BSON dates (MongoDB) and Kafka timestamps hold no more, and an
    event must read back from every store equal to what was written.
    """
    utc = value.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event, JSON structured mode.

    ``partitionkey`` is the CloudEvents *partitioning* extension; the Kafka
    binding maps it to the message key. When absent, the key is ``subject``,
    then ``id`` (see ``kafka_key``). Unknown extension attributes are ignored
    on decode. Instances are immutable.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=False)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    partitionkey: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("time")
    @classmethod
    def _utc_millis(cls, value: datetime) -> datetime:
        return normalize_time(value)

    @property
    def kafka_key(self) -> str:
        """The entity id the message is keyed by (same key, same partition, same order)."""
        return self.partitionkey or self.subject or self.id

    def to_bytes(self) -> bytes:
        """UTF-8 JSON; optional attributes that are unset are omitted, as the spec asks."""
        return self.model_dump_json(exclude_none=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> Self:
        """Decode one structured-mode event; ``EncodingError`` if it is not one."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise EncodingError(f"not a CloudEvents 1.0 JSON event: {exc}") from exc

    def to_document(self, topic: str) -> dict[str, Any]:
        """The MongoDB document: the event's attributes with ``_id`` = event id.

        ``time`` stays a datetime (a BSON date) so it can be range-queried and
        expired; the topic is kept for replay.
        """
        doc: dict[str, Any] = {
            "_id": self.id,
            "specversion": self.specversion,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "datacontenttype": self.datacontenttype,
            "topic": topic,
            "data": self.data,
        }
        if self.subject is not None:
            doc["subject"] = self.subject
        if self.partitionkey is not None:
            doc["partitionkey"] = self.partitionkey
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Self:
        """Inverse of ``to_document`` (BSON dates come back naive UTC)."""
        fields = {k: v for k, v in doc.items() if k not in ("_id", "topic")}
        fields["id"] = str(doc["_id"])
        when = fields.get("time")
        if isinstance(when, datetime) and when.tzinfo is None:
            fields["time"] = when.replace(tzinfo=UTC)
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise EncodingError(f"stored event {doc.get('_id')!r} is malformed: {exc}") from exc
