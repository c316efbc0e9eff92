-- 0009_pin_failures: what an alert's own user is shown, and refused cancel PINs (issue 16).
--
-- alerts.user_status: the status the alert's user is shown (a duress "cancel"
-- shows 'cancelled', a PIN lock the status of before; actors/alert_view.py),
-- written from each snapshot's derived "user_status", so a user's listing
-- filters on what they see. It replaces the listing's CASE over alerts.duress.
--
-- pin_failures: one row per refused cancel PIN (wrong, or any PIN past the
-- limit), counted per user and per alert over a window
-- (persistence/stores/pin_failures.py): each attempt is claimed as a row
-- before its PIN is checked, and the row deleted if the PIN was right. Rows
-- older than the window are deleted as new ones come.

ALTER TABLE alerts ADD COLUMN user_status text;
UPDATE alerts SET user_status = CASE WHEN duress THEN 'cancelled' ELSE status END;

CREATE TABLE pin_failures (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    alert_id uuid NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX pin_failures_user_at_idx ON pin_failures (user_id, at);
CREATE INDEX pin_failures_alert_at_idx ON pin_failures (alert_id, at);
