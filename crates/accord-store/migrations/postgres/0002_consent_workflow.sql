-- Consent workflow, PostgreSQL flavour. Keep in step with migrations/sqlite/0002_consent_workflow.sql:
-- the two files are identical but for this header. Conventions as in 0001_initial.sql.

-- Consent requests (Graph's userConsentRequest). The requested permissions are a document (in
-- request order); the workflow queries by app and, for the expiry job, by status and expiry.
CREATE TABLE consent_requests (
    tenant_id             TEXT    NOT NULL,
    id                    TEXT    NOT NULL,
    client_app_id         TEXT    NOT NULL,
    user_id               TEXT    NOT NULL,
    reason                TEXT    NOT NULL,
    permissions           TEXT    NOT NULL, -- JSON [PermissionKey], in request order
    status                TEXT    NOT NULL, -- InProgress | Completed | Expired
    result                TEXT    NOT NULL, -- NotReviewed | Approved | Denied | Blocked
    reviewed_by           TEXT,
    review_justification  TEXT,
    created_at            BIGINT  NOT NULL,
    reviewed_at           BIGINT,
    completed_at          BIGINT,
    expires_at            BIGINT  NOT NULL,
    CONSTRAINT consent_requests_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT consent_requests_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX consent_requests_app_idx ON consent_requests (tenant_id, client_app_id);
CREATE INDEX consent_requests_expiry_idx ON consent_requests (status, expires_at);

-- Delegated permission classifications: one per (resource, permission) in a tenant.
CREATE TABLE permission_classifications (
    tenant_id         TEXT  NOT NULL,
    id                TEXT  NOT NULL,
    resource_sp_id    TEXT  NOT NULL,
    permission_id     TEXT  NOT NULL,
    permission_value  TEXT  NOT NULL,
    classification    TEXT  NOT NULL, -- low (medium | high in preview)
    CONSTRAINT permission_classifications_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT permission_classifications_permission_unique UNIQUE (tenant_id, resource_sp_id, permission_id),
    CONSTRAINT permission_classifications_resource_fk FOREIGN KEY (tenant_id, resource_sp_id)
        REFERENCES service_principals (tenant_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);

-- The audit log: rows are only ever inserted (the store has no update or delete for them).
CREATE TABLE audit_events (
    tenant_id  TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    actor_id   TEXT,             -- NULL for the system
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    app_id     TEXT,
    detail     TEXT    NOT NULL, -- JSON
    CONSTRAINT audit_events_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT audit_events_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX audit_events_at_idx ON audit_events (tenant_id, at);
CREATE INDEX audit_events_app_idx ON audit_events (tenant_id, app_id, at);

-- The notification outbox. The delivery loop reads the unsent ones, oldest first.
CREATE TABLE notifications (
    tenant_id          TEXT    NOT NULL,
    id                 TEXT    NOT NULL,
    recipient_user_id  TEXT    NOT NULL,
    recipient_address  TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    body               TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    sent_at            BIGINT,           -- NULL until delivered
    attempts           BIGINT  NOT NULL DEFAULT 0,
    last_error         TEXT,
    CONSTRAINT notifications_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT notifications_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX notifications_unsent_idx ON notifications (created_at, tenant_id, id) WHERE sent_at IS NULL;

-- Single-use values (global, keyed by a hash), removed by purge_expired after expires_at.
CREATE TABLE used_once (
    key_hash    TEXT    NOT NULL PRIMARY KEY,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX used_once_expires_idx ON used_once (expires_at);
