-- 0011_admin_totp: a second factor for administrators (issue 16, item 7).
--
-- admin_totp: one row per administrator who started an enrolment. The TOTP
-- secret is stored only encrypted (AES-GCM under the deployment's
-- totp.encryption_key, bound to the account id; gateway.auth.totp), never in
-- clear. confirmed_at is NULL until a code from the authenticator has been
-- shown (POST /auth/totp/enrolment/confirm); only a confirmed row is a second
-- factor. last_step is the 30-second step of the last code accepted: a code
-- is accepted only for a later step, by one conditional UPDATE, so the same
-- code cannot be used twice, not even by two logins racing.
--
-- admin_recovery_codes: single-use codes issued at confirmation, stored as
-- their SHA-256 (random, 80 bits: nothing to guess from the hash). A code is
-- spent by the conditional UPDATE that sets used_at.

CREATE TABLE admin_totp (
    account_id   uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_ciphertext bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz,
    last_step    bigint
);

CREATE TABLE admin_recovery_codes (
    account_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz,
    PRIMARY KEY (account_id, code_hash)
);
