-- 0010_notification_contact_cap: the daily cap on messages to one emergency
-- contact (notify/caps.py) counts a contact's delivered requests of the last
-- 24 hours before each send; this index keeps that count a short range scan.
-- A request past the cap is recorded as 'dead_lettered' with its reason in
-- last_error, so the statuses stay as 0005 made them.

CREATE INDEX notification_deliveries_contact_delivered_idx
    ON notification_deliveries (contact_id, finished_at)
    WHERE status = 'delivered' AND contact_id IS NOT NULL;
