-- 0004_alert_response_times: seconds from an alert's creation to each response
-- milestone (first offer, accept, on scene, resolved), NULL until reached.
-- Kept by the entity store's projection (persistence/stores/entities.py) from the
-- alert snapshot; read by the gateway's /metrics (alert_response_seconds).

ALTER TABLE alerts
    ADD COLUMN offer_s    double precision,
    ADD COLUMN accept_s   double precision,
    ADD COLUMN on_scene_s double precision,
    ADD COLUMN resolve_s  double precision;
