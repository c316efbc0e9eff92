-- 0014_integration_keys: API keys for the bulk location feed (issue 20).
--
-- An administrator issues a key to a fleet, a telematics gateway or a
-- Traccar server, which then forwards many subjects' location fixes with it
-- (POST /geofencing/locations, the /ws/locations socket) and may do nothing
-- else. The key's text is "pak_<id as 32 hex>_<secret>"
-- (gateway/auth/integration_keys.py); only the SHA-256 of the secret is
-- stored (secret_sha256, 32 bytes): the secret is 256 random bits, so there
-- is nothing to guess from the hash and no slow hash is needed.
--
-- A key is revoked by setting revoked_at, never deleted, so the audit trail
-- (audit-logs events, persistence/stores/integration_keys.py) keeps naming
-- a row. last_used_at is best effort (refreshed at most about once a minute).

CREATE TABLE integration_keys (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    secret_sha256 bytea NOT NULL,
    created_by    uuid NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CONSTRAINT integration_keys_secret_sha256_length CHECK (octet_length(secret_sha256) = 32)
);

-- The admin listing, newest first; counting the active keys (at most 100).
CREATE INDEX integration_keys_created_idx ON integration_keys (created_at DESC, id DESC);
CREATE INDEX integration_keys_active_idx ON integration_keys (id) WHERE revoked_at IS NULL;
