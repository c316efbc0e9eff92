-- 0015_resync_indexes: the open alerts an agent's socket is told of on (re)connect.
--
-- persistence/stores/open_alerts.py finds the open alerts that hold an offer
-- to the agent or are assigned to it. Without these indexes that read
-- decoded the snapshot of every open alert, once per socket: in a reconnect
-- storm of 5,000 agents with 1,000 alerts open, PostgreSQL spent 28 CPU
-- seconds on it. Both indexes are partial on the open alerts, as the query is.

CREATE INDEX entity_snapshots_open_alert_offers_idx
    ON entity_snapshots USING gin ((state -> 'offered_to') jsonb_path_ops)
    WHERE kind = 'alert' AND open;

CREATE INDEX entity_snapshots_open_alert_assignee_idx
    ON entity_snapshots ((state ->> 'assigned_agent_id'))
    WHERE kind = 'alert' AND open;
