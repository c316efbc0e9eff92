-- 0005_notification_deliveries: the outcome of each notification request
-- (notify/deliver.py). One row per request id: a request planned or
-- delivered twice (Kafka is at-least-once) is delivered once. No message
-- text or address is stored here (personal data); the channel and the
-- contact id say who was reached.

CREATE TABLE notification_deliveries (
    request_id   uuid PRIMARY KEY,
    alert_id     uuid NOT NULL,
    channel      text NOT NULL CHECK (channel IN ('email', 'sms', 'push', 'webhook')),
    occasion     text NOT NULL,
    contact_id   uuid,
    status       text NOT NULL CHECK (status IN ('delivered', 'dead_lettered')),
    attempts     integer NOT NULL CHECK (attempts >= 1),
    last_error   text,
    finished_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_deliveries_alert_idx ON notification_deliveries (alert_id);
