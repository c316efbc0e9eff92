-- 0012_media: evidence attached to alerts (issue 17).
--
-- media: one row per stored object, an original or a rendition of one
-- (parent_id, rendition). The bytes live in the object store (filesystem or
-- S3) under "<id>/<part>", encrypted (media.sealing): each object has its own
-- data key, stored here only wrapped by the master key named key_id, so a
-- master-key rotation rewrites wrapped_key and key_id and nothing else. parts
-- lists the stored parts in order, [[name, segments], ...]. No location is
-- stored.
--
-- Deletion is soft: deleted_at and purge_after are set, the objects are
-- removed after purge_after (purged_at), unless legal_hold is set.
-- hidden_from_user marks a delete by the alert's user while the alert was
-- under duress: the user is shown it deleted, the evidence is kept.
--
-- media_uploads: resumable (tus) uploads in progress. The upload's id becomes
-- the media id when its last byte arrives; the row is then deleted in the
-- same transaction that inserts the media row. The plaintext bytes past the
-- last whole segment are kept sealed in the object "<id>/<tail>". Each chunk
-- writes objects of new names and is committed by a conditional update of
-- "offset", so of two racing chunks one wins and the other's objects are
-- deleted.

CREATE TABLE media (
    id               uuid PRIMARY KEY,
    alert_id         uuid NOT NULL REFERENCES alerts (id),
    parent_id        uuid REFERENCES media (id) ON DELETE CASCADE,
    rendition        text CHECK (rendition IN ('thumbnail', 'shared', 'poster', 'mp4', 'opus')),
    uploader_id      uuid NOT NULL,
    uploader_role    text NOT NULL CHECK (uploader_role IN ('user', 'agent', 'admin')),
    content_type     text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('image', 'audio', 'video')),
    size             bigint NOT NULL CHECK (size >= 0),
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at       timestamptz NOT NULL,
    key_id           text NOT NULL,
    wrapped_key      bytea NOT NULL,
    segment_size     integer NOT NULL CHECK (segment_size > 0),
    parts            jsonb NOT NULL,
    processing       text NOT NULL DEFAULT 'none'
                     CHECK (processing IN ('none', 'queued', 'running', 'done', 'failed')),
    processing_error text,
    deleted_at       timestamptz,
    purge_after      timestamptz,
    hidden_from_user boolean NOT NULL DEFAULT false,
    legal_hold       boolean NOT NULL DEFAULT false,
    held_by          uuid,
    held_at          timestamptz,
    purged_at        timestamptz,
    CHECK ((parent_id IS NULL) = (rendition IS NULL))
);

CREATE INDEX media_by_alert ON media (alert_id, created_at) WHERE parent_id IS NULL;
CREATE INDEX media_by_parent ON media (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX media_to_purge ON media (purge_after)
    WHERE purge_after IS NOT NULL AND purged_at IS NULL;
CREATE INDEX media_by_key ON media (key_id);

CREATE TABLE media_uploads (
    id            uuid PRIMARY KEY,
    alert_id      uuid NOT NULL REFERENCES alerts (id),
    uploader_id   uuid NOT NULL,
    uploader_role text NOT NULL CHECK (uploader_role IN ('user', 'agent', 'admin')),
    length        bigint NOT NULL CHECK (length >= 0),
    "offset"      bigint NOT NULL DEFAULT 0 CHECK ("offset" >= 0 AND "offset" <= length),
    parts         jsonb NOT NULL DEFAULT '[]',
    tail          text,
    key_id        text NOT NULL,
    wrapped_key   bytea NOT NULL,
    segment_size  integer NOT NULL CHECK (segment_size > 0),
    content_type  text,
    kind          text CHECK (kind IN ('image', 'audio', 'video')),
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);

CREATE INDEX media_uploads_expiry ON media_uploads (expires_at);
CREATE INDEX media_uploads_by_alert ON media_uploads (alert_id);
