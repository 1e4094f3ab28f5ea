-- The device authorization grant (RFC 8628): a device's pending sign-in, found by the user code
-- a person types on the verification page and redeemed once by the device's polling.
CREATE TABLE device_authorizations (
    device_code_hash  TEXT    NOT NULL PRIMARY KEY,
    user_code_hash    TEXT    NOT NULL,
    tenant_segment    TEXT    NOT NULL, -- the authority the device used (a tenant, organizations, common)
    client_app_id     TEXT    NOT NULL,
    scope             TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    expires_at        BIGINT  NOT NULL,
    status            TEXT    NOT NULL, -- pending | approved | refused | redeemed
    tenant_id         TEXT,             -- set when approved
    user_id           TEXT,
    auth_time         BIGINT,
    family_id         TEXT    NOT NULL, -- the refresh family its redemption starts
    refusal           TEXT,             -- JSON {code, error, message} when refused
    CONSTRAINT device_authorizations_user_code_unique UNIQUE (user_code_hash)
);
CREATE INDEX device_authorizations_expires_idx ON device_authorizations (expires_at);
