-- 0002_entities: durable state of the entity runtime (actors/runtime.py).
--
-- entity_snapshots holds the last committed state of every alert, agent and
-- region actor; `alerts` and `agents` are projections of it kept in the same
-- transaction. entity_timers holds pending timers and durable messages
-- between entities (a message is a timer due at once); a row is deleted in
-- the same transaction as the effects of its delivery, so it fires once.

CREATE TABLE entity_snapshots (
    kind       text NOT NULL CHECK (kind IN ('alert', 'agent', 'region')),
    entity_id  text NOT NULL,
    version    bigint NOT NULL CHECK (version >= 0),
    state      jsonb NOT NULL,
    -- Alerts not yet resolved or cancelled: recovered eagerly when a shard starts.
    open       boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, entity_id)
);
CREATE INDEX entity_snapshots_open_idx ON entity_snapshots (entity_id) WHERE open;

CREATE TABLE entity_timers (
    kind       text NOT NULL CHECK (kind IN ('alert', 'agent', 'region')),
    entity_id  text NOT NULL,
    timer_id   text NOT NULL,
    name       text NOT NULL,
    due_at     timestamptz NOT NULL,
    payload    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, entity_id, timer_id)
);
CREATE INDEX entity_timers_due_idx ON entity_timers (due_at);
