-- 0003_alert_duress: whether the alert's user "cancelled" it with the duress PIN.
--
-- The alerts projection keeps the true status; listings shown to the alert's
-- own user present such an alert as cancelled (persistence/stores/alerts.py).

ALTER TABLE alerts ADD COLUMN duress boolean NOT NULL DEFAULT false;
