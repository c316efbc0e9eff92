"""One validated configuration for every process of Panic Alert.

Read from the environment (prefix ``PANIC_``, nested groups joined by ``__``,
e.g. ``PANIC_POSTGRES__PORT=5433``) and validated once at start-up. Outside the
``dev`` and ``test`` profiles the built-in development secrets are refused, so
a production deployment cannot start with a password that is in this file.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Final, Literal, Self, get_origin
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development-only secrets. Anything outside the dev/test profiles that still
# carries one of these is refused at start-up.
_DEV_PG_PASSWORD = "panic-dev-password"  # noqa: S105
_DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"  # noqa: S105
_DEV_WEBHOOK_SECRET = "dev-only-webhook-secret"  # noqa: S105
_DEV_TOTP_KEY = "dev-only-totp-encryption-key-change-me"
_DEV_MEDIA_KEY = "dev-only-media-master-key-change-me"
_DEV_S3_SECRET = "dev-only-s3-secret-key-change-me"  # noqa: S105
DEV_SECRETS = frozenset(
    {
        _DEV_PG_PASSWORD,
        _DEV_JWT_SECRET,
        _DEV_WEBHOOK_SECRET,
        _DEV_TOTP_KEY,
        _DEV_MEDIA_KEY,
        _DEV_S3_SECRET,
    }
)

REPO_ROOT = Path(__file__).resolve().parent.parent


class Profile(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class PostgresSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(5432, ge=1, le=65535)
    user: str = "panic"
    password: SecretStr = SecretStr(_DEV_PG_PASSWORD)
    database: str = "panic_alert"
    #: Connections of one process's pool: each gateway process of ``serve``
    #: (``http.gateways``), each shard and the relay have their own, so a server
    #: may open ``pool_max`` times that many (mind PostgreSQL's ``max_connections``).
    pool_min: int = Field(2, ge=1)
    pool_max: int = Field(20, ge=1)
    command_timeout_s: float = Field(10.0, gt=0)

    def dsn(self, database: str | None = None) -> str:
        pw = quote(self.password.get_secret_value(), safe="")
        db = database or self.database
        return f"postgresql://{quote(self.user, safe='')}:{pw}@{self.host}:{self.port}/{db}"


class MongoSettings(BaseModel):
    """The MongoDB wire protocol endpoint (FerretDB here, MongoDB elsewhere)."""

    host: str = "127.0.0.1"
    port: int = Field(27017, ge=1, le=65535)
    database: str = "panic_alert"
    #: FerretDB authenticates against the PostgreSQL role it runs on.
    user: str = "panic"
    password: SecretStr = SecretStr(_DEV_PG_PASSWORD)
    server_selection_timeout_ms: int = Field(3000, ge=100)
    #: Retention of high-volume collections (location_events, system_logs).
    location_retention_days: int = Field(30, ge=1)
    log_retention_days: int = Field(90, ge=1)

    def uri(self) -> str:
        pw = quote(self.password.get_secret_value(), safe="")
        return (
            f"mongodb://{quote(self.user, safe='')}:{pw}@{self.host}:{self.port}/"
            f"?authMechanism=PLAIN&serverSelectionTimeoutMS={self.server_selection_timeout_ms}"
        )


class RedisSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(6379, ge=1, le=65535)
    db: int = Field(0, ge=0, le=15)
    password: SecretStr | None = None
    socket_timeout_s: float = Field(2.0, gt=0)
    #: Connections per client (process); more concurrent commands wait for one.
    max_connections: int = Field(200, ge=1, le=10_000)

    def url(self) -> str:
        auth = f":{quote(self.password.get_secret_value(), safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{self.db}"


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    #: Port of the KRaft controller listener of the local single-node broker.
    controller_port: int = Field(9093, ge=1, le=65535)
    partitions: int = Field(6, ge=1, le=1024)
    client_id: str = "panic-alert"
    #: CloudEvents ``source`` attribute of every event this deployment emits.
    source: str = "urn:panic-alert"
    request_timeout_ms: int = Field(5000, ge=100)
    #: Longest a publish waits for the broker's acknowledgements before it is
    #: reported as failed (the idempotent producer itself would retry forever).
    delivery_timeout_ms: int = Field(10_000, ge=100)


class RaySettings(BaseModel):
    #: Empty: start an embedded local Ray. Otherwise ``ray://`` or ``auto`` to join.
    address: str = ""
    namespace: str = "panic-alert"
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(8265, ge=1, le=65535)
    #: Address an embedded Ray binds its node to (loopback: nothing leaves the machine).
    node_ip_address: str = "127.0.0.1"
    #: Shard actors hosting the logical entities; 0 = one per two CPUs of the cluster.
    shards: int = Field(0, ge=0, le=1024)
    num_cpus: int | None = Field(None, ge=1)
    #: Echo Ray worker stdout/stderr into this process's (JSON) log stream.
    log_to_driver: bool = False
    #: How long ``serve`` waits for the embedded dashboard to answer at start-up.
    dashboard_wait_s: float = Field(30.0, ge=0)


AlertTypeName = Literal["panic", "medical", "fire", "security", "other"]


class EscalationStepSettings(BaseModel):
    """One escalation step (see actors.alert_messages.EscalationStep)."""

    model_config = ConfigDict(extra="forbid")

    #: Seconds after the alert was created; steps of one type must grow.
    after_s: float = Field(gt=0)
    rings: int | None = Field(None, ge=0, le=20)
    offer_to: int | None = Field(None, ge=1, le=500)
    escalate: bool = False


class ActorSettings(BaseModel):
    """The entity runtime (actors/) and its client (cluster/)."""

    offer_ttl_s: float = Field(30.0, gt=0)
    #: An offer the agent's device has not acknowledged (``offer.received``, or
    #: the gateway's write for apps that do not ack) by then moves on.
    offer_ack_timeout_s: float = Field(3.0, gt=0)
    #: Seconds an assigned agent has to report ``en_route`` before the admins are
    #: called in, per alert type (a type not listed: 120 s), e.g.
    #: PANIC_ACTORS__EN_ROUTE_S='{"medical": 60}'.
    en_route_s: dict[AlertTypeName, Annotated[float, Field(gt=0)]] = {}
    #: Dispatch (see actors.alert_messages.AlertPolicy): search radius in H3
    #: grid rings around the alert's cell, candidates asked for, offers held at
    #: once (1: the nearest agent only), and how often to search again while
    #: offers are still wanted.
    search_rings: int = Field(2, ge=0, le=10)
    search_max_rings: int = Field(4, ge=0, le=20)
    search_k: int = Field(10, ge=1, le=100)
    offer_to: int = Field(1, ge=1, le=100)
    search_again_s: float = Field(2.0, gt=0)
    #: Escalation steps per alert type (panic, medical, fire, security, other),
    #: e.g. PANIC_ACTORS__ESCALATION='{"medical": [{"after_s": 20, "rings": 4},
    #: {"after_s": 45, "escalate": true}]}'. A type not listed gets the default
    #: (actors.alert_messages.DEFAULT_ESCALATION); an empty list: no escalation.
    escalation: dict[AlertTypeName, list[EscalationStepSettings]] = {}
    #: The mode speed (m/s) a responder's arrival is estimated at (geo.eta;
    #: 8.3 m/s is about 30 km/h, urban driving): PANIC_ACTORS__ETA_SPEED_MPS.
    eta_speed_mps: float = Field(8.3, gt=0, le=1000)
    #: Chat messages one alert holds (alert.message); one more is refused (409).
    max_messages: int = Field(200, ge=1, le=10_000)

    @model_validator(mode="after")
    def _steps_in_order(self) -> Self:
        for name, steps in self.escalation.items():
            afters = [step.after_s for step in steps]
            if afters != sorted(set(afters)):
                raise ValueError(
                    f"escalation steps of {name!r} must be in order of growing after_s"
                )
        return self

    heartbeat_timeout_s: float = Field(90.0, gt=0)
    #: An available agent whose last socket closed is unlisted at once and goes
    #: offline ("disconnected") unless a socket of it opens again within this.
    disconnect_grace_s: float = Field(20.0, gt=0)
    #: H3 resolution of region cells (7: ~5 km² cells).
    region_resolution: int = Field(7, ge=0, le=15)
    presence_ttl_s: float = Field(180.0, gt=0)
    passivate_after_s: float = Field(300.0, gt=0)
    #: How often coalesced snapshots (positions, liveness) are written.
    flush_interval_s: float = Field(5.0, gt=0)
    ask_timeout_s: float = Field(5.0, gt=0)
    #: Micro-batching of ``tell``: linger and the most messages per call to a shard.
    batch_linger_ms: float = Field(2.0, ge=0)
    batch_max: int = Field(500, ge=1, le=100_000)
    #: How long signs of life (agents' heartbeats) may be gathered before they go
    #: to their shard together (``EntityClient.tell_lazily``): far below
    #: ``heartbeat_timeout_s``, and each alone was a Ray call on both sides.
    lazy_linger_ms: float = Field(1000.0, ge=0, le=10_000)
    #: Location fixes go from a gateway to each shard over a plain TCP stream
    #: (``cluster.fix_stream``: the shard listens on its node's address, a token
    #: from a Ray call admits a connection) rather than as Ray calls, which cost
    #: each side ~0.8 ms of CPU apiece; calls only while a stream is down.
    fix_stream: bool = True
    #: Each shard's zone book (actors.zone_book) follows zone writes by NOTIFY, and
    #: also reads the changes this often in case a notification was lost.
    zone_refresh_s: float = Field(5.0, gt=0)


class JwtAlgorithm(StrEnum):
    """The HMAC algorithms the token code signs and verifies with (one shared secret)."""

    HS256 = "HS256"
    HS384 = "HS384"
    HS512 = "HS512"

    @property
    def min_secret_length(self) -> int:
        """RFC 7518 3.2: the key is at least as long as the hash output."""
        return {"HS256": 32, "HS384": 48, "HS512": 64}[self.value]


class AuthSettings(BaseModel):
    jwt_secret: SecretStr = SecretStr(_DEV_JWT_SECRET)
    jwt_algorithm: JwtAlgorithm = JwtAlgorithm.HS256
    issuer: str = "panic-alert"
    audience: str = "panic-alert-api"
    access_ttl_s: int = Field(900, ge=30)
    refresh_ttl_s: int = Field(30 * 24 * 3600, ge=60)
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65536, ge=8)
    argon2_parallelism: int = Field(2, ge=1)


class RateRule(BaseModel):
    """At most ``limit`` requests per ``window_s`` seconds (fixed window)."""

    limit: int = Field(ge=1)
    window_s: int = Field(ge=1, le=86_400)


class RateLimitSettings(BaseModel):
    """Rate limits counted in Redis (``rate_limit:{identifier}``), see ``gateway.ratelimit``."""

    enabled: bool = True
    #: Prepended to every identifier; separates deployments (or test runs) sharing one Redis.
    key_prefix: str = Field("", max_length=64)
    login_per_ip: RateRule = RateRule(limit=30, window_s=60)
    register_per_ip: RateRule = RateRule(limit=20, window_s=3600)
    refresh_per_ip: RateRule = RateRule(limit=60, window_s=60)
    #: Default budget of an authenticated caller on one endpoint scope.
    per_principal: RateRule = RateRule(limit=120, window_s=60)
    #: ``POST /geofencing/location`` per subject: a fix a second, with room for bursts.
    location_per_principal: RateRule = RateRule(limit=600, window_s=60)

    # --- issue 16, floods: /alerts, zone and geofence-event reads -------------------
    #: ``PUT /alerts/{id}/status`` per caller (cancels, PIN guesses, agents' steps).
    alerts_status_per_principal: RateRule = RateRule(limit=20, window_s=60)
    #: Alerts one user may *create* per window. Never applies while the user has an
    #: open alert (a press then returns it, ``gateway.alert_press``), so it counts
    #: only alerts raised after the previous one was closed; keep it above
    #: ``alerts_status_per_principal`` with the same window, so a canceller (an
    #: abuser holding the phone) is stopped before the person pressing again is.
    alerts_create_per_principal: RateRule = RateRule(limit=30, window_s=60)
    #: Each read of ``/alerts`` (list, one, timeline) per caller, per endpoint.
    alerts_read_per_principal: RateRule = RateRule(limit=300, window_s=60)
    #: ``GET /geofencing/zones`` and ``GET /geofencing/events`` per caller, per endpoint.
    geofence_read_per_principal: RateRule = RateRule(limit=120, window_s=60)
    # --- issue 17, media ---------------------------------------------------------------
    #: Files one caller may start uploading (``POST /media/upload``, tus creation).
    media_upload_per_principal: RateRule = RateRule(limit=120, window_s=3600)
    #: Chunks of resumable uploads (tus ``PATCH``) per caller.
    media_chunk_per_principal: RateRule = RateRule(limit=1200, window_s=60)
    #: Reads of ``/media`` (files, metadata, listings) per caller, per endpoint.
    media_read_per_principal: RateRule = RateRule(limit=600, window_s=60)
    #: Deletes, holds and processing requests per caller.
    media_write_per_principal: RateRule = RateRule(limit=60, window_s=60)


# --- login throttling and admin TOTP (issue 16, items 5 and 7) ---------------------


class LoginThrottleSettings(BaseModel):
    """Failed logins slow down the address that fails, never the owner elsewhere
    (``gateway.auth.throttle``). Counted in Redis under ``rate_limit.key_prefix``;
    off when ``rate_limit.enabled`` is."""

    #: Failures of one email from one address before each further try waits.
    free_failures: int = Field(5, ge=1, le=1000)
    #: The first wait; each further failure doubles it, up to ``max_delay_s``.
    base_delay_s: int = Field(2, ge=1, le=3600)
    max_delay_s: int = Field(900, ge=1, le=86_400)
    #: An email+address pair's failures are forgotten this long after its last one.
    memory_s: int = Field(3600, ge=60, le=7 * 86_400)
    #: Failures on one email from every address together (a distributed guesser).
    per_email_ceiling: RateRule = RateRule(limit=100, window_s=3600)


class TotpSettings(BaseModel):
    """Second factor of administrators (``gateway.auth.totp``)."""

    #: None: required in the ``prod`` profile only. An administrator who must
    #: have one and has none may reach only ``/auth/totp/*`` (and ``/auth/me``, logout).
    required_for_admins: bool | None = None
    #: The issuer authenticator apps show beside the account.
    issuer: str = Field("Panic Alert", min_length=1, max_length=64)
    #: Encrypts the TOTP secrets at rest (AES-GCM; the key is its SHA-256).
    encryption_key: SecretStr = SecretStr(_DEV_TOTP_KEY)
    #: Single-use recovery codes issued at enrolment.
    recovery_codes: int = Field(10, ge=1, le=50)
    #: 30-second steps accepted either side of now (clock drift).
    valid_window: int = Field(1, ge=0, le=3)


# --- issue 16, duress and PINs ---------------------------------------------------------


class PinSettings(BaseModel):
    """Cancel and duress PINs (``gateway.auth.pins``; env ``PANIC_PINS__*``).

    ``max_failures`` refused PINs per user, and per alert, within ``window_s``;
    past that no PIN cancels: the alert is quietly escalated as possible
    coercion and the device told what a wrong PIN is told. ``workers``: the
    threads that run PIN checks (argon2), so guesses cannot take every core.
    """

    max_failures: int = Field(5, ge=1, le=100)
    window_s: int = Field(15 * 60, ge=60, le=7 * 86_400)
    workers: int = Field(2, ge=1, le=64)


class UsersSettings(BaseModel):
    #: Upper bound of emergency contacts per user (a 409 beyond it).
    max_emergency_contacts: int = Field(20, ge=1, le=1000)
    #: The soonest a check-in may be due, in seconds from its start (``POST /checkins``).
    checkin_min_due_s: int = Field(60, ge=1, le=86_400)


class MediaBackend(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class S3Settings(BaseModel):
    """An S3-compatible bucket (``scripts/services`` starts SeaweedFS's on 8333)."""

    endpoint: str = "http://127.0.0.1:8333"
    bucket: str = Field("panic-media", min_length=3, max_length=63)
    region: str = "us-east-1"
    access_key_id: str = "panic-dev"
    secret_access_key: SecretStr = SecretStr(_DEV_S3_SECRET)
    #: Plain HTTP is refused unless this is set (loopback development only).
    allow_http: bool = True


class MediaSettings(BaseModel):
    """Evidence uploads (``media``, ``gateway.routes.media``, ``persistence.media``)."""

    #: Where objects are stored: the filesystem under ``root``, or ``s3``.
    backend: MediaBackend = MediaBackend.LOCAL
    #: The local backend's folder (default: ``media`` under the data folder).
    root: Path | None = None
    s3: S3Settings = S3Settings()
    #: Largest file accepted (plaintext bytes); larger: 413.
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1)
    #: Largest total of one alert's files; past it: 413.
    max_alert_bytes: int = Field(500 * 1024 * 1024, ge=1)
    #: Master keys by key id: each wraps the data keys of the objects stored
    #: while it was active (the key is the SHA-256 of the value). Keep every id
    #: until ``panic-alert media rotate-key`` has rewrapped its objects.
    master_keys: dict[str, SecretStr] = {"dev-1": SecretStr(_DEV_MEDIA_KEY)}
    #: The key id new objects are wrapped with (and rotation rewraps to).
    active_key_id: str = "dev-1"
    #: A deleted file is kept this long (an admin may still hold it), then purged.
    retention_s: float = Field(7 * 24 * 3600.0, ge=0)
    #: A resumable (tus) upload not finished this long after creation expires.
    upload_expiry_s: float = Field(24 * 3600.0, gt=0)
    #: Render thumbnails, posters and re-encodings (``panic-alert serve`` with Ray).
    processing_enabled: bool = True
    #: CPUs each processing task may use (a Ray task's ``num_cpus``; ffmpeg's threads).
    processing_cpus: float = Field(1.0, gt=0, le=8)
    #: Seconds between purges of deleted files past their retention (the media worker).
    purge_interval_s: float = Field(300.0, gt=0)
    #: Processing of one file is abandoned after this long.
    processing_timeout_s: float = Field(600.0, gt=0)

    @model_validator(mode="after")
    def _active_key_is_known(self) -> Self:
        if self.active_key_id not in self.master_keys:
            raise ValueError(
                f"media.active_key_id {self.active_key_id!r} is not among media.master_keys "
                f"({', '.join(sorted(self.master_keys)) or 'none'})"
            )
        return self


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    #: Gateway processes ``serve`` runs on the one port (``SO_REUSEPORT``: the
    #: kernel spreads connections over them); 0: one per CPU core
    #: (``os.cpu_count()``). One process uses at most one core. ``serve
    #: --gateways N`` wins over it (``panic_alert.gateways``).
    gateways: int = Field(0, ge=0, le=64)
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    #: Budget of each dependency check of ``/readyz`` (they run concurrently).
    readiness_timeout_s: float = Field(2.0, gt=0, le=30)
    #: Budget of opening each dependency at start-up; a slow one is retried by ``/readyz``.
    startup_timeout_s: float = Field(10.0, gt=0)
    #: Seconds uvicorn waits for in-flight requests on shutdown.
    graceful_shutdown_s: float = Field(10.0, gt=0)
    #: WebSocket ``/ws``: the first frame must be ``auth`` within this (else close 4401).
    ws_auth_timeout_s: float = Field(5.0, gt=0, le=60)
    #: A socket that sends nothing (not even ``ping``) for this long is closed.
    ws_heartbeat_timeout_s: float = Field(60.0, gt=0)
    #: Largest client frame accepted once authenticated (larger: close 1009). The
    #: server (uvicorn ``ws_max_size``) reads no frame larger than this or
    #: ``ws_max_auth_frame_bytes``, whichever is larger.
    ws_max_frame_bytes: int = Field(64 * 1024, ge=1024, le=1024 * 1024)
    #: Frames queued for one slow socket before it is closed (it resyncs on reconnect).
    ws_send_queue: int = Field(256, ge=8, le=100_000)
    #: Sockets set up at once by one gateway process (from the ``auth`` frame to
    #: the resync sent); others wait their turn. A fleet reconnecting at once is
    #: then served in order instead of every socket slowly and past its timeout.
    #: Per process: ``gateways`` processes on one port set up that many each.
    ws_setup_concurrency: int = Field(64, ge=1, le=10_000)
    #: permessage-deflate on /ws. Off by default: frames are small JSON, and each
    #: compressed socket keeps zlib state (tens of KB) and spends CPU per frame.
    ws_per_message_deflate: bool = False
    #: The WebSocket implementation: ``auto``, the gateway's own reader over
    #: uvicorn's websockets-sansio (``gateway.ws.transport``: frames cut and
    #: location fixes taken as they are read, without a task switch each), or
    #: one of uvicorn's own, as uvicorn runs it (``websockets-sansio``,
    #: ``websockets``, ``wsproto``).
    ws_impl: Literal["auto", "websockets", "websockets-sansio", "wsproto"] = "auto"
    #: Protocol-level pings from the server to every socket, in seconds (0: none,
    #: the default). Liveness is the clients' own ``ping`` frames (closed after
    #: ``ws_heartbeat_timeout_s`` without any frame), which also keep NAT
    #: mappings open; server pings only added a frame per socket per interval,
    #: and 1,000 sockets that connected together were pinged together (a
    #: 100 ms burst in bench/gateway.py). Set it for clients behind proxies
    #: that drop quiet connections.
    ws_ping_interval_s: float = Field(0.0, ge=0)
    #: The listening socket's accept queue. Phones reconnect all at once after a
    #: network blip; a full queue drops their handshakes, which then wait out TCP's
    #: retransmission back-off (1 s, 3 s, 7 s...). The kernel caps it at
    #: net.core.somaxconn (4,096 by default).
    listen_backlog: int = Field(4096, ge=64, le=65_535)
    #: How long a last-known location reported over ``/ws`` stays in Redis.
    ws_location_ttl_s: int = Field(3600, ge=1)

    # --- issue 16, floods: WebSocket input bounds (gateway.ws.protocol.Limits) -----
    #: Largest frame before authentication (the ``auth`` frame; larger: close 1009).
    ws_max_auth_frame_bytes: int = Field(64 * 1024, ge=1024, le=64 * 1024)
    #: Client frames per second a socket may send on average (token bucket refill);
    #: past the bucket: an ``error`` frame ``rate_limited``, then close 1008.
    ws_frame_rate: float = Field(20.0, gt=0, le=10_000)
    #: Frames a socket may send at once after being quiet (the bucket's size).
    ws_frame_burst: int = Field(60, ge=1, le=100_000)
    #: A socket's location fixes refused as overload (the gateway's queue full), sent
    #: without an ``id``, are told in one ``unavailable`` frame (``refused``: how many)
    #: at most this often; the first at once, a fix sent with an ``id`` always at
    #: once; 0 answers every one. An overloaded gateway answering each fix spent
    #: the cores it needed to catch up on the answers (issue 20).
    ws_refusal_notice_s: float = Field(5.0, ge=0, le=300)
    #: Admin sockets get at most one ``fleet.agents`` frame per this many seconds
    #: (``gateway.ws.fleet_feed``: one poll per gateway per interval while an
    #: admin socket is open).
    ws_fleet_interval_s: float = Field(1.0, ge=0.05, le=60)
    # --- issue 20: the bulk feed's socket (``/ws/locations``, integration keys) ---------
    #: Largest ``locations`` frame (larger: close 1009). The server reads no frame
    #: larger than the largest of the three frame bounds, on any socket, before
    #: authentication too, so this bounds what an unauthenticated socket can make a
    #: gateway hold (512 KiB: about 3,000 fixes).
    ws_max_bulk_frame_bytes: int = Field(512 * 1024, ge=1024, le=1024 * 1024)
    #: Most ``/ws/locations`` sockets one integration key holds open at once on one
    #: gateway process: one more is closed with 1008, reason "too many bulk sockets
    #: for this integration key", before ``auth.ok`` (``gateway.ws.key_sockets``).
    #: Per process: with ``serve``'s N gateway processes a key holds at most N times it.
    ws_max_bulk_sockets_per_key: int = Field(64, ge=1, le=100_000)
    #: Most ``/ws`` sockets one account holds open at once on one gateway process.
    #: One more is not refused: the account's oldest socket is closed with 1008,
    #: reason "replaced by a newer socket of this account" (``gateway.ws.account_sockets``):
    #: the newest is the one its user holds, and a phone that reconnected may leave
    #: its old socket open until the heartbeat closes it. Per process, as above.
    ws_max_sockets_per_account: int = Field(16, ge=1, le=10_000)


class OutboxSettings(BaseModel):
    batch_size: int = Field(500, ge=1, le=10_000)
    poll_interval_s: float = Field(1.0, gt=0)
    #: A claimed-but-unsent row is retried after this long (relay crashed mid-batch).
    claim_timeout_s: float = Field(30.0, gt=0)
    #: Ceiling of the relay's exponential back-off while Kafka or MongoDB is down.
    max_backoff_s: float = Field(5.0, gt=0)
    #: Sent rows are deleted from the outbox after this long (0 keeps them forever).
    sent_retention_s: float = Field(7 * 24 * 3600, ge=0)
    #: Batches one relay keeps in flight (claimed and queued to Kafka, awaiting
    #: acknowledgements and the MongoDB write). Kafka order is kept across them.
    pipeline_depth: int = Field(4, ge=1, le=64)
    #: After a NOTIFY wakes an idle relay, wait this long before claiming, so
    #: that events committed together travel together. At 200 alerts/s (on 2
    #: cores, bench/gateway.py) 10 ms made batches of a few; 50 ms makes
    #: batches of ~10 and cut the relay from ~15 % to ~7 % of a core and
    #: FerretDB from ~6 % to under 1 % (its cost is per insert command), for
    #: up to 50 ms more commit-to-Kafka latency. Pushes to sockets do not go
    #: through the relay and do not wait for it.
    linger_s: float = Field(0.05, ge=0, le=1)


class NotifySettings(BaseModel):
    """Emergency-contact notifications (``notify/``): providers and retries.

    A channel whose provider is not configured dead-letters its requests
    (recorded, and shown in the alert's timeline), so a deployment sees at
    once which channel it forgot. Webhooks get every request, signed with
    ``webhook_secret``.
    """

    # Validation errors never repeat the input: it holds secrets (the VAPID key).
    model_config = ConfigDict(hide_input_in_errors=True)

    #: Run the planner and the delivery worker (``serve`` starts them in a Ray actor).
    enabled: bool = True
    smtp_host: str = ""
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_sender: str = "alerts@panic-alert.invalid"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    #: STARTTLS: unset (the default) upgrades whenever the server offers it;
    #: true requires it (no offer: the delivery fails); false never upgrades.
    smtp_start_tls: bool | None = None
    #: Twilio-style SMS API (form POST, basic auth).
    sms_url: str = ""
    sms_account: str = ""
    sms_token: SecretStr = SecretStr("")
    sms_sender: str = ""
    #: FCM/Expo-style push API (JSON, bearer key).
    push_url: str = ""
    push_key: SecretStr = SecretStr("")
    webhooks: list[str] = []
    max_attempts: int = Field(5, ge=1, le=20)
    base_delay_s: float = Field(1.0, gt=0)
    max_delay_s: float = Field(60.0, gt=0)
    #: Requests delivered at once by one worker.
    concurrency: int = Field(16, ge=1, le=256)

    # --- issue 16, text hygiene and notifier: the per-contact daily cap ---
    #: Messages one emergency contact may get in any 24 hours, all channels
    #: together (``notify/caps.py``); past it, a request is dead-lettered with
    #: the reason and not sent. Webhooks are not capped.
    max_per_contact_per_day: int = Field(20, ge=1, le=10_000)

    # --- issue 19, push registration: web push (VAPID) to the apps ---
    #: The VAPID private key (the raw 32-byte P-256 scalar, base64url, as
    #: ``vapid --gen`` or ``notify.vapid.generate_private_key`` makes it). Empty:
    #: one is generated once and kept in PostgreSQL (``system_config`` row
    #: ``webpush.vapid``), so restarts keep the browsers' subscriptions valid.
    vapid_private_key: SecretStr = SecretStr("")
    #: The contact the push services see in each VAPID token (``mailto:`` or ``https:``).
    vapid_subject: str = Field(
        "mailto:ops@panic-alert.invalid", pattern=r"^(mailto:[^\s@]+@[^\s@]+|https://\S+)$"
    )
    #: How long a push service keeps a web push for a device that is offline.
    webpush_ttl_s: int = Field(300, ge=0, le=86_400)
    #: Devices (push registrations) one account may hold; registering one more
    #: evicts the one seen least recently.
    max_devices_per_account: int = Field(10, ge=1, le=100)
    #: Accept ``http://`` push endpoints on a loopback host (tests' local push
    #: service); off in production, where every endpoint must be ``https://``.
    webpush_allow_loopback_http: bool = False

    @model_validator(mode="after")
    def _vapid_key_shape(self) -> Self:
        """A configured VAPID key must be 32 raw bytes in base64url (checked here,
        not at the first push: a bad one would dead-letter every push)."""
        key = self.vapid_private_key.get_secret_value().strip()
        if not key:
            return self
        try:
            raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32 or not re.fullmatch(r"[A-Za-z0-9_\-]+=*", key):
            # The value itself is never repeated: it is a secret.
            raise ValueError("notify.vapid_private_key must be 32 raw bytes, base64url")
        return self


class GeofenceSettings(BaseModel):
    """Location ingestion (``gateway.locations``) for geofencing.

    Fixes from REST and WebSocket are gathered for ``batch_linger_ms`` (or
    ``batch_max`` fixes) and then, in one go: the newest per subject to Redis
    ``location:{role}:{id}``, every fix to its subject entity, and one fix per
    subject every ``history_every_s`` to MongoDB ``location_events``.
    """

    #: Each flush costs the gateway and the shard about the same whatever its size
    #: (a Ray call, a Redis script, a turn of both loops). Issue 20, the phone
    #: path at 10,000 fixes/s over two gateways: 10 ms (batches of ~50) took
    #: 1.45-1.58 cores in all, 25 ms (~125) 1.26-1.39, for ~10 ms more at p50.
    batch_linger_ms: float = Field(25.0, gt=0, le=1000)
    #: Once a bulk feed's fix is queued, the flush comes at most this long after it
    #: (issue 20): a bulk frame is a batch already, and the 25 ms linger was half
    #: of the bulk feed's 50 ms latency target by itself. At 1,000 fixes/s on the
    #: bulk feed (2026-12-07, working checkout), 5 ms took the probes' p50 from
    #: 25-30 ms to 12-18 and their p99 from 49-98 ms to 27-72, for up to ~0.15
    #: cores more in all (more, smaller batches); at 40,000/s the CPU per fix was
    #: the same. Phones' fixes alone keep ``batch_linger_ms``.
    bulk_linger_ms: float = Field(5.0, gt=0, le=1000)
    #: A flush's most fixes, sent to each shard in calls of up to
    #: ``cluster.tracking.FIXES_PER_CALL`` (1,000: what Ray sends inline; not in
    #: calls of ``actors.batch_max``: a Ray call costs both sides about the same
    #: whatever its size, up to that).
    batch_max: int = Field(2000, ge=1, le=100_000)
    #: Fixes waiting in one gateway process (per process: ``serve``'s
    #: ``http.gateways`` processes queue that many each); beyond it a fix is refused (503 /
    #: an error frame) rather than memory, and every fix's wait, growing without
    #: bound (issue 20: 20,000 is half a second at 40,000 fixes/s; a fix that would
    #: wait longer is worth less than the sender's next one).
    queue_max: int = Field(20_000, ge=100)
    #: Batches of fixes sent to one shard and not yet answered; past it a flush waits
    #: (so a shard that falls behind fills this queue, which refuses, instead of
    #: queueing unseen in front of the shard).
    shard_batches_in_flight: int = Field(4, ge=1, le=1000)
    #: How long a flush waits for that room before going on (a shard that is away).
    shard_wait_s: float = Field(2.0, gt=0, le=60)
    # issue 16, floods: one subject's (so one socket's) share of ``queue_max``; its
    # fixes beyond it are refused like those beyond ``queue_max``.
    queue_max_per_subject: int = Field(50, ge=1, le=100_000)
    #: The share of ``queue_max`` the bulk feed's fixes may fill (issue 20): an
    #: integration sending more than the machine carries has its excess refused
    #: while the rest of the queue still takes phones' fixes (a person's fix is
    #: not refused because a fleet floods).
    bulk_queue_share: float = Field(0.5, gt=0, le=1)
    #: One fix per subject is kept in the history (MongoDB ``location_events``)
    #: in each period of this long, its first at once; each subject's periods are
    #: shifted by a phase of its own (``gateway.locations.next_sample_at``), so
    #: subjects that began together are not all written in one burst (and their
    #: first samples go 1,000 a second, or twice the steady rate:
    #: ``gateway.locations.history_write_max``). 0 keeps every fix.
    history_every_s: float = Field(30.0, ge=0)
    #: A subject's newest fix is written to Redis at most this often (issue 20), its
    #: first at once, each subject on its own clock so the writes stay spread over
    #: the flushes (the console's map reads them once a second). A fleet sending 4
    #: fixes a second per vehicle had each one written (with 1 s, Redis's CPU per fix
    #: of the bulk feed fell from 3.5 µs to 1.1, the gateways' from 23 to 21). 0
    #: writes every one. (One period for all, tried before, wrote in one burst per period
    #: and doubled the phone path's probe latency at 0.5 s.)
    latest_every_s: float = Field(1.0, ge=0, le=60)
    #: A fix recorded further in the future than this (device clock skew) is refused.
    max_future_s: float = Field(60.0, ge=0)
    #: A fix recorded longer ago than this is refused (a replay of an old track).
    max_age_s: float = Field(24 * 3600.0, gt=0)
    #: Most fixes in one batch of the bulk feed (``POST /geofencing/locations``, a
    #: ``locations`` frame of ``/ws/locations``); a larger batch is refused whole.
    bulk_max_fixes: int = Field(2000, ge=1, le=10_000)


# --- Secure deployment defaults (issue 16, item 6) ---------------------------

#: Fragments of placeholder or development values; a secret containing one
#: (any case) is refused outside dev/test. ``.env.example`` uses them, so an
#: operator who copies it without editing gets a clear error, not a weak key.
WEAK_SECRET_FRAGMENTS: tuple[str, ...] = (
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "placeholder",
    "dev-only",
    "panic-dev",
    "example",
    "password",
    "secret123",
)
#: Least estimated entropy (characters x Shannon bits per character) of a
#: password, and of a signing key.
MIN_PASSWORD_BITS = 64.0
MIN_KEY_BITS = 128.0
MIN_PASSWORD_LENGTH = 16
#: Shortest key (e.g. ``totp.encryption_key``) outside dev/test: 32 characters.
MIN_KEY_LENGTH = 32


def estimated_bits(value: str) -> float:
    """A rough entropy estimate: length times the Shannon entropy of its characters.

    Refuses repeats and short alphabets (``aaaa...``, ``abab...``); it cannot
    see a dictionary phrase, which the fragment denylist partly covers.
    """
    if not value:
        return 0.0
    counts = Counter(value)
    per_char = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return per_char * len(value)


def secret_weakness(value: str, *, min_length: int, min_bits: float) -> str | None:
    """Why ``value`` is too weak for production, or None if it is not."""
    if value in DEV_SECRETS:
        return "is a built-in development secret"
    lowered = value.lower()
    for fragment in WEAK_SECRET_FRAGMENTS:
        if fragment in lowered:
            return f"contains the placeholder {fragment!r}"
    if len(value) < min_length:
        return f"is shorter than {min_length} characters"
    if estimated_bits(value) < min_bits:
        return f"is too predictable (under {min_bits:.0f} bits of estimated entropy)"
    return None


class ConsoleSettings(BaseModel):
    """The browser apps the gateway serves (``gateway.console``): the dispatcher
    console at ``/console/``, the user app at ``/app/``, the responder app at
    ``/responder/``; and the map settings they share."""

    #: The built console (``scripts/bootstrap`` runs ``npm ci`` and the build
    #: in ``web/``); missing: ``/console/`` answers 503 saying so.
    dist_dir: Path = REPO_ROOT / "web" / "console" / "dist"
    #: The user app's build (``/app/``) and the responder app's (``/responder/``).
    user_app_dist_dir: Path = REPO_ROOT / "web" / "app" / "dist"
    responder_app_dist_dir: Path = REPO_ROOT / "web" / "responder" / "dist"
    #: Raster tile URL template of the map (``{z}/{x}/{y}``); empty: no tiles,
    #: only the bundled world outline. Its origin is added to the console's
    #: Content-Security-Policy. OpenStreetMap's servers by default: their usage
    #: policy asks heavy users to run their own.
    tile_url: Annotated[str, Field(pattern=r"^(https?://[^\s;,']+)?$")] = (
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    )
    #: Shown on the map, as the tile server's licence requires.
    tile_attribution: str = "© OpenStreetMap contributors"
    tile_max_zoom: int = Field(19, ge=0, le=24)
    #: The local emergency number the user app offers to call (a ``tel:``
    #: link) while an alert cannot be sent or was refused: 112 across Europe;
    #: set 911, 999, 000… where the apps are used.
    emergency_number: Annotated[str, Field(pattern=r"^\+?[0-9]{2,15}$")] = "112"


class SecuritySettings(BaseModel):
    """Who may set the client address, headers of every response, and who may
    read the API's documentation and metrics (``gateway.middleware``)."""

    #: Proxies (addresses or CIDR networks) whose ``X-Forwarded-For`` and
    #: ``X-Forwarded-Proto`` are believed. Empty (the default): none, not even
    #: loopback, so a client cannot pick its own rate-limit bucket; set it to
    #: the TLS proxy in front of the gateway, e.g. '["10.0.0.5/32"]'.
    trusted_proxies: list[IPvAnyNetwork] = []
    #: Networks that may read ``/docs``, ``/redoc`` and ``/openapi.json``.
    #: Unset: everyone; ``[]``: nobody (404).
    docs_allowed_networks: list[IPvAnyNetwork] | None = None
    #: Networks that may read ``/metrics``. Unset: everyone; ``[]``: nobody (404).
    metrics_allowed_networks: list[IPvAnyNetwork] | None = None
    #: ``Strict-Transport-Security`` max-age on responses served over TLS
    #: (scheme https, directly or from a trusted proxy); 0: no HSTS.
    hsts_max_age_s: int = Field(365 * 24 * 3600, ge=0)
    #: Further origins the console may fetch from and show images of, added to
    #: the Content-Security-Policy's ``connect-src`` and ``img-src`` (the map
    #: tile server, e.g. '["https://tiles.example.org"]').
    csp_extra_sources: list[Annotated[str, Field(pattern=r"^[^\s;,']+$")]] = []


#: The prefix of every setting's environment variable.
ENV_PREFIX: Final = "PANIC_"
#: What joins a group to its setting in a variable's name.
ENV_NESTING: Final = "__"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTING,
        extra="ignore",
        validate_default=True,
    )

    profile: Profile = Profile.DEV
    log_level: str = "INFO"
    data_dir: Path = REPO_ROOT / ".data"
    webhook_secret: SecretStr = SecretStr(_DEV_WEBHOOK_SECRET)

    postgres: PostgresSettings = PostgresSettings()
    mongo: MongoSettings = MongoSettings()
    notify: NotifySettings = NotifySettings()
    redis: RedisSettings = RedisSettings()
    kafka: KafkaSettings = KafkaSettings()
    ray: RaySettings = RaySettings()
    actors: ActorSettings = ActorSettings()
    auth: AuthSettings = AuthSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    login_throttle: LoginThrottleSettings = LoginThrottleSettings()
    totp: TotpSettings = TotpSettings()
    users: UsersSettings = UsersSettings()
    pins: PinSettings = PinSettings()
    media: MediaSettings = MediaSettings()
    http: HttpSettings = HttpSettings()
    outbox: OutboxSettings = OutboxSettings()
    geofence: GeofenceSettings = GeofenceSettings()
    security: SecuritySettings = SecuritySettings()
    console: ConsoleSettings = ConsoleSettings()

    @model_validator(mode="after")
    def _refuse_weak_secrets_outside_dev(self) -> Self:
        """Outside dev/test every secret must be set, and strong: not a
        development default or a placeholder, long enough, not predictable."""
        if self.profile in (Profile.DEV, Profile.TEST):
            return self
        checks = (
            ("postgres.password", self.postgres.password, MIN_PASSWORD_LENGTH, MIN_PASSWORD_BITS),
            ("mongo.password", self.mongo.password, MIN_PASSWORD_LENGTH, MIN_PASSWORD_BITS),
            (
                "auth.jwt_secret",
                self.auth.jwt_secret,
                self.auth.jwt_algorithm.min_secret_length,
                MIN_KEY_BITS,
            ),
            ("webhook_secret", self.webhook_secret, MIN_PASSWORD_LENGTH, MIN_PASSWORD_BITS),
            ("totp.encryption_key", self.totp.encryption_key, MIN_KEY_LENGTH, MIN_KEY_BITS),
            *(
                (f"media.master_keys.{key_id}", key, MIN_KEY_LENGTH, MIN_KEY_BITS)
                for key_id, key in self.media.master_keys.items()
            ),
            *(
                (
                    (
                        "media.s3.secret_access_key",
                        self.media.s3.secret_access_key,
                        MIN_PASSWORD_LENGTH,
                        MIN_PASSWORD_BITS,
                    ),
                )
                if self.media.backend is MediaBackend.S3
                else ()
            ),
        )
        defaults = [
            name for name, secret, _, _ in checks if secret.get_secret_value() in DEV_SECRETS
        ]
        if defaults:
            raise ValueError(
                f"profile {self.profile.value!r} refuses the built-in development secrets; "
                f"set {', '.join(defaults)} (env PANIC_<GROUP>__<NAME>)"
            )
        weak = [
            f"{name} {why}"
            for name, secret, length, bits in checks
            if (why := secret_weakness(secret.get_secret_value(), min_length=length, min_bits=bits))
        ]
        if weak:
            raise ValueError(
                f"profile {self.profile.value!r} refuses weak secrets: {'; '.join(weak)}. "
                "Generate each with e.g. `openssl rand -base64 48`."
            )
        return self

    @property
    def totp_required_for_admins(self) -> bool:
        """Whether an administrator must have a second factor (default: ``prod`` only)."""
        required = self.totp.required_for_admins
        return self.profile is Profile.PROD if required is None else required


def _env_names(model: type[BaseModel], prefix: str) -> Iterator[str]:
    """Every variable name that sets a field of ``model`` (upper case), groups included."""
    for name, field in model.model_fields.items():
        full = f"{prefix}{name.upper()}"
        yield full
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _env_names(field.annotation, full + ENV_NESTING)


def _names_a_setting(model: type[BaseModel], path: list[str]) -> bool:
    """Whether ``path`` (lower case, from the top) leads to a field of ``model``,
    or into a mapping field (whose keys are the user's)."""
    head, *rest = path
    field = model.model_fields.get(head)
    if field is None:
        return False
    if not rest:
        return True
    kind = field.annotation
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return _names_a_setting(kind, rest)
    return get_origin(kind) is dict or kind is dict


def unknown_settings(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """The ``PANIC_<GROUP>__<NAME>`` variables of ``environ`` that set nothing,
    sorted, each with the closest setting's variable when one is close (else
    None): a misspelt setting is otherwise ignored without a word. Variables
    without ``__`` are not judged: the scripts read some of their own
    (``PANIC_KAFKA_HEAP``)."""
    known = sorted(_env_names(Settings, ENV_PREFIX))
    found = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or ENV_NESTING not in upper:
            continue
        path = upper.removeprefix(ENV_PREFIX).lower().split(ENV_NESTING)
        if "" in path or not _names_a_setting(Settings, path):
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.8)
            found.append((name, close[0] if close else None))
    return sorted(found)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated on first use."""
    return Settings()
