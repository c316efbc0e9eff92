-- 0008_agent_vetting: agents are vetted before they may go on duty (issue 15).
--
-- agents.vetting: 'pending' (registered, may sign in and edit the profile,
-- may not go on duty), 'approved', or 'suspended' (may not sign in). A new
-- row is 'pending'; every agent that existed before this migration was
-- already trusted with alerts, so it becomes 'approved' (the column is
-- added with that default, then the default changes).
--
-- agent_invites: single-use registration codes an admin issues; an agent
-- registering with one is approved at once. Only the SHA-256 of the code is
-- stored. A code is spent by the conditional UPDATE that sets used_at, in the
-- registration's own transaction.

ALTER TABLE agents
    ADD COLUMN vetting        text NOT NULL DEFAULT 'approved',
    ADD COLUMN vetting_reason text,
    ADD COLUMN vetted_at      timestamptz,
    ADD COLUMN vetted_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD CONSTRAINT agents_vetting_check
        CHECK (vetting IN ('pending', 'approved', 'suspended'));
ALTER TABLE agents ALTER COLUMN vetting SET DEFAULT 'pending';

-- The admin roster: newest first, optionally one vetting status.
CREATE INDEX agents_vetting_created_idx ON agents (vetting, created_at DESC, id DESC);
CREATE INDEX agents_created_idx ON agents (created_at DESC, id DESC);

CREATE TABLE agent_invites (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code_hash  bytea NOT NULL,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_by    uuid REFERENCES agents (id) ON DELETE SET NULL,
    used_at    timestamptz,
    CONSTRAINT agent_invites_code_hash_key UNIQUE (code_hash),
    CONSTRAINT agent_invites_expiry CHECK (expires_at > created_at),
    -- used_by may be nulled by a deleted agent; used_at stays (the code stays spent).
    CONSTRAINT agent_invites_used CHECK (used_by IS NULL OR used_at IS NOT NULL)
);
