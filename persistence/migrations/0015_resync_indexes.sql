-- 0015_resync_indexes: the open alerts an agent's socket is told of on (re)connect.
--
-- persistence/stores/open_alerts.py finds the alerts that hold an offer to
-- the agent or are open and assigned to it. Without these indexes that read
-- decoded the snapshot of every open alert, once per socket: in a reconnect
-- storm of 5,000 agents with 1,000 alerts open, PostgreSQL spent 28 CPU
-- seconds on it.
--
-- Neither index is partial on "open", and the read names neither "open" nor
-- the kind: with either in the query, a planner whose statistics predate the
-- alerts (autovacuum analyses a table about once a minute, and a thousand
-- alerts can come in less) walked an index of every open alert, or the
-- primary key, instead. Only an alert has a status, and only a dispatching or
-- escalated one holds offers (actors/alert_state.py), so no other snapshot's
-- write touches either index.

CREATE INDEX entity_snapshots_offers_idx
    ON entity_snapshots USING gin ((state -> 'offered_to') jsonb_path_ops)
    WHERE state ->> 'status' IN ('dispatching', 'escalated');

CREATE INDEX entity_snapshots_open_assignee_idx
    ON entity_snapshots ((state ->> 'assigned_agent_id'))
    WHERE state ->> 'status' NOT IN ('resolved', 'cancelled');
