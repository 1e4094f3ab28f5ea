-- What a scenario's password for a user was, as a keyed fingerprint (HMAC with a key derived
-- from the master key) over the user, the password and the hash the load stored: a restart
-- with the same scenario sees the same password and the same hash and keeps it, instead of
-- checking the password with argon2 (as slow as hashing it, user after user). Only passwords
-- a scenario file holds in clear get one; a hash changed since (a reset) no longer matches.
CREATE TABLE scenario_passwords (
    tenant_id    TEXT  NOT NULL,
    user_id      TEXT  NOT NULL,
    fingerprint  TEXT  NOT NULL,
    CONSTRAINT scenario_passwords_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT scenario_passwords_user_fk FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
