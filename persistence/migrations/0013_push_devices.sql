-- 0013_push_devices: push registrations of every kind of account (issue 19).
--
-- user_devices (0001) holds one row per device and account. An agent is a
-- users row too (agents.id REFERENCES users), so user_id already names
-- users' and agents' devices alike: one table, one store
-- (persistence/stores/devices.py), no owner kind needed.
--
-- For web, push_token is the PushSubscription JSON, stored canonical (sorted
-- keys, compact) so the same subscription registered twice is one row.
-- A token belongs to one device, so registering it under another account
-- moves it (the old account's row is deleted in the same transaction): the
-- lookup by token uses the md5 index (tokens may be long). The per-account
-- cap evicts the row seen least recently: the listing index.

CREATE INDEX user_devices_token_md5_idx ON user_devices (md5(push_token));
CREATE INDEX user_devices_user_seen_idx ON user_devices (user_id, last_seen_at DESC);
