-- Calendar sync (Graph delta queries and change notifications).

-- The change journal behind `calendarView/delta`: one row per event holding its latest change
-- (a put or a delete), numbered from one ever-growing sequence. A delta round returns the rows
-- numbered after the previous round's end. Deleted events stay as tombstones for the delta
-- tokens' retention, then go.
CREATE TABLE calendar_changes (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    owner_id    TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    deleted     BIGINT  NOT NULL,
    changed_at  BIGINT  NOT NULL,
    CONSTRAINT calendar_changes_event_unique UNIQUE (tenant_id, event_id)
);
CREATE INDEX calendar_changes_mailbox_idx ON calendar_changes (tenant_id, owner_id, seq);

-- Change-notification subscriptions (`/subscriptions`) on a mailbox's events.
CREATE TABLE graph_subscriptions (
    id                   TEXT    NOT NULL PRIMARY KEY,
    tenant_id            TEXT    NOT NULL,
    client_app_id        TEXT    NOT NULL,
    creator_id           TEXT,             -- the signed-in user of a delegated subscription
    mailbox_id           TEXT    NOT NULL,
    resource             TEXT    NOT NULL, -- as the subscriber wrote it
    change_types         TEXT    NOT NULL, -- comma-separated: created,updated,deleted
    notification_url     TEXT    NOT NULL,
    lifecycle_url        TEXT,
    sealed_client_state  TEXT,             -- sealed with the master key
    tls_version          TEXT    NOT NULL,
    permissions          TEXT    NOT NULL, -- the authorizing token's scopes or roles, space-separated
    authorized_at        BIGINT  NOT NULL, -- when the authorizing token was issued
    access_expires_at    BIGINT  NOT NULL, -- when the authorizing token expires
    expires_at           BIGINT  NOT NULL,
    status               TEXT    NOT NULL, -- active | reauthorization_required | removed
    noticed_at           BIGINT,           -- the last reauthorizationRequired sent
    created_at           BIGINT  NOT NULL
);
CREATE INDEX graph_subscriptions_mailbox_idx ON graph_subscriptions (tenant_id, mailbox_id);
CREATE INDEX graph_subscriptions_app_idx ON graph_subscriptions (tenant_id, client_app_id);

-- The outbox of change and lifecycle notifications, delivered with retries; a row goes when it
-- is delivered or given up.
CREATE TABLE graph_notifications (
    id               TEXT    NOT NULL PRIMARY KEY,
    subscription_id  TEXT    NOT NULL,
    tenant_id        TEXT    NOT NULL,
    kind             TEXT    NOT NULL, -- change | lifecycle
    payload          TEXT    NOT NULL, -- JSON of one notification, without clientState
    created_at       BIGINT  NOT NULL,
    next_attempt_at  BIGINT  NOT NULL,
    attempts         BIGINT  NOT NULL,
    last_error       TEXT
);
CREATE INDEX graph_notifications_due_idx ON graph_notifications (next_attempt_at);
CREATE INDEX graph_notifications_subscription_idx ON graph_notifications (subscription_id);
