-- Consent webhooks: what changed in a customer's consent for an app, and where the vendor
-- wants to hear of it.

-- Every consent change, numbered in commit order (written by the store in the change's own
-- transaction): grants given, changed and revoked, application permissions, assignments,
-- enterprise apps disabled or enabled, admin-consent requests filed and decided.
CREATE TABLE consent_events (
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  TEXT    NOT NULL,
    app_id     TEXT    NOT NULL, -- the client app the event is about
    type       TEXT    NOT NULL,
    data       TEXT    NOT NULL, -- JSON
    at         BIGINT  NOT NULL
);
CREATE INDEX consent_events_app_idx ON consent_events (app_id, seq);

-- A vendor's endpoint for one of its apps' consent events, from every tenant.
CREATE TABLE consent_webhooks (
    id              TEXT    NOT NULL PRIMARY KEY,
    app_id          TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    sealed_secrets  TEXT    NOT NULL, -- JSON list of sealed whsec_ secrets, newest first
    created_at      BIGINT  NOT NULL,
    cursor          BIGINT  NOT NULL  -- the last consent event handed to the outbox
);
CREATE INDEX consent_webhooks_app_idx ON consent_webhooks (app_id);

-- Deliveries, kept as the delivery log (purged after 30 days).
CREATE TABLE webhook_deliveries (
    id               TEXT    NOT NULL PRIMARY KEY,
    webhook_id       TEXT    NOT NULL,
    event_seq        BIGINT  NOT NULL,
    type             TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    next_attempt_at  BIGINT,          -- NULL once delivered or given up
    attempts         BIGINT  NOT NULL,
    last_status      BIGINT,
    last_error       TEXT,
    delivered_at     BIGINT,
    CONSTRAINT webhook_deliveries_event_unique UNIQUE (webhook_id, event_seq)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at);
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (webhook_id, created_at);
