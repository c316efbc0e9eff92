-- 0001_initial: the seed's tables, the outbox, and their indexes.
--
-- Applied by persistence/migrations.py inside one transaction, under an
-- advisory lock. Never edit this file once released: its checksum is
-- recorded in schema_migrations and a change is refused. Add 0002_... instead.

-- PostGIS is not a trusted extension: on a database where it is missing this
-- needs a superuser (scripts/services installs it into template1).
CREATE EXTENSION IF NOT EXISTS postgis;
-- citext is trusted (PostgreSQL >= 13): the database owner may create it.
CREATE EXTENSION IF NOT EXISTS citext;

-- Keeps updated_at honest no matter which code path writes the row.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- ------------------------------------------------------------------ users
CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email           citext NOT NULL,
    password_hash   text NOT NULL,
    full_name       text NOT NULL,
    phone           text,
    role            text NOT NULL DEFAULT 'user'
                    CHECK (role IN ('user', 'agent', 'admin')),
    cancel_pin_hash text,
    duress_pin_hash text,
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_shape CHECK (position('@' IN email) > 1)
);
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------------ agents
CREATE TABLE agents (
    id              uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    badge_number    text UNIQUE,
    status          text NOT NULL DEFAULT 'offline'
                    CHECK (status IN ('available', 'busy', 'on_break', 'offline')),
    on_duty         boolean NOT NULL DEFAULT false,
    last_location   geography(Point, 4326),
    last_accuracy_m double precision CHECK (last_accuracy_m IS NULL OR last_accuracy_m >= 0),
    last_seen_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_last_location_gist ON agents USING gist (last_location);
CREATE INDEX agents_status_idx ON agents (status) WHERE on_duty;
CREATE TRIGGER agents_updated_at BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------------ alerts
CREATE TABLE alerts (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid NOT NULL REFERENCES users (id),
    alert_type        text NOT NULL
                      CHECK (alert_type IN ('panic', 'medical', 'fire', 'security', 'other')),
    status            text NOT NULL DEFAULT 'dispatching'
                      CHECK (status IN ('dispatching', 'assigned', 'en_route', 'on_scene',
                                        'resolved', 'escalated', 'cancelled')),
    latitude          double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude         double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    -- Derived, so it can never disagree with latitude/longitude.
    location          geography(Point, 4326)
                      GENERATED ALWAYS AS (
                          ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)::geography
                      ) STORED,
    accuracy_m        double precision CHECK (accuracy_m IS NULL OR accuracy_m >= 0),
    description       text,
    silent            boolean NOT NULL DEFAULT false,
    assigned_agent_id uuid REFERENCES agents (id),
    -- Idempotency-Key header and a hash of the request body it came with:
    -- same key + same hash returns the same alert, same key + other hash is 409.
    idempotency_key   text,
    request_hash      bytea,
    -- Snapshot version for optimistic concurrency of actor writes.
    version           bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    resolved_at       timestamptz,
    CONSTRAINT alerts_idempotency_key UNIQUE (user_id, idempotency_key),
    CONSTRAINT alerts_idempotency_pair
        CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);
CREATE INDEX alerts_user_created_idx ON alerts (user_id, created_at DESC, id DESC);
CREATE INDEX alerts_status_created_idx ON alerts (status, created_at DESC, id DESC);
CREATE INDEX alerts_created_idx ON alerts (created_at DESC, id DESC);
CREATE INDEX alerts_agent_created_idx ON alerts (assigned_agent_id, created_at DESC, id DESC)
    WHERE assigned_agent_id IS NOT NULL;
-- Open alerts are recovered (timers re-armed) when a shard starts.
CREATE INDEX alerts_open_idx ON alerts (created_at)
    WHERE status NOT IN ('resolved', 'cancelled');
CREATE INDEX alerts_location_gist ON alerts USING gist (location);
CREATE TRIGGER alerts_updated_at BEFORE UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------------ emergency_contacts
CREATE TABLE emergency_contacts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    phone        text,
    email        text,
    relationship text,
    notify_via   text[] NOT NULL DEFAULT '{}'
                 CHECK (notify_via <@ ARRAY['sms', 'email', 'push']::text[]),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX emergency_contacts_user_idx ON emergency_contacts (user_id, created_at);
CREATE TRIGGER emergency_contacts_updated_at BEFORE UPDATE ON emergency_contacts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------------ geofence_zones
CREATE TABLE geofence_zones (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('safe', 'danger', 'service_area')),
    geometry   geometry(Geometry, 4326) NOT NULL
               CHECK (GeometryType(geometry) IN ('POLYGON', 'MULTIPOLYGON', 'POINT')),
    radius_m   double precision CHECK (radius_m IS NULL OR radius_m > 0),
    rules      jsonb NOT NULL DEFAULT '{}'::jsonb,
    dwell_s    integer CHECK (dwell_s IS NULL OR dwell_s >= 0),
    active     boolean NOT NULL DEFAULT true,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- A point zone is a circle: it needs its radius.
    CONSTRAINT geofence_zones_point_radius
        CHECK (GeometryType(geometry) <> 'POINT' OR radius_m IS NOT NULL)
);
CREATE INDEX geofence_zones_geometry_gist ON geofence_zones USING gist (geometry);
CREATE INDEX geofence_zones_active_idx ON geofence_zones (kind) WHERE active;
CREATE TRIGGER geofence_zones_updated_at BEFORE UPDATE ON geofence_zones
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------------ user_devices
CREATE TABLE user_devices (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform     text NOT NULL CHECK (platform IN ('ios', 'android', 'web')),
    push_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_devices_user_token UNIQUE (user_id, push_token)
);

-- ------------------------------------------------------------------ system_config
CREATE TABLE system_config (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER system_config_updated_at BEFORE UPDATE ON system_config
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------------ refresh_tokens
-- Rotation: presenting a token spends it and issues its replacement in the
-- same family; presenting a spent token revokes the whole family.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    spent_at    timestamptz,
    revoked_at  timestamptz,
    replaced_by uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    CHECK (expires_at > issued_at)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- ------------------------------------------------------------------ outbox
-- Transactional outbox: rows are written in the same transaction as the state
-- change they describe, and relayed to Kafka and MongoDB by OutboxRelay.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    event_id   uuid NOT NULL UNIQUE,
    topic      text NOT NULL,
    key        text NOT NULL,
    type       text NOT NULL,
    source     text NOT NULL,
    subject    text,
    time       timestamptz NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_at timestamptz,
    sent_at    timestamptz,
    attempts   integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error text
);
-- The relay's work queue: only unsent rows, in id order.
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;
-- Purging old sent rows.
CREATE INDEX outbox_sent_at_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Wake relays on commit. Per statement, not per row: a 500-row INSERT sends
-- one notification, and PostgreSQL folds identical notifications of one
-- transaction into one.
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
