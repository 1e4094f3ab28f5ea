-- Accord schema, PostgreSQL flavour. Keep in step with migrations/sqlite/0001_initial.sql:
-- the two files differ only in the binary column type (BYTEA here, BLOB there).
--
-- Conventions (shared with PostgreSQL, dictated by what sqlx's Any driver can carry):
--   * ids are UUIDs as TEXT, hyphenated, lower case;
--   * timestamps are BIGINT unix MICROseconds (UTC);
--   * booleans are BIGINT 0/1;
--   * lists that are documents are JSON TEXT; lists that are queried are rows;
--   * *_key columns hold the case-folded value that uniqueness and look-ups use.
-- Foreign keys are DEFERRABLE INITIALLY DEFERRED so that one Store::apply batch may list its
-- changes in any order; they are checked at COMMIT.

CREATE TABLE tenants (
    id                      TEXT    NOT NULL PRIMARY KEY,
    display_name            TEXT    NOT NULL,
    user_consent            TEXT    NOT NULL, -- none | low | all
    admin_consent_requests  TEXT    NOT NULL -- JSON AdminConsentRequestPolicy
);

CREATE TABLE tenant_domains (
    tenant_id   TEXT    NOT NULL,
    position    BIGINT  NOT NULL, -- 0 is the default domain
    domain      TEXT    NOT NULL,
    domain_key  TEXT    NOT NULL,
    CONSTRAINT tenant_domains_pkey PRIMARY KEY (tenant_id, position),
    CONSTRAINT tenant_domains_domain_key_unique UNIQUE (domain_key),
    CONSTRAINT tenant_domains_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE users (
    tenant_id        TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    upn              TEXT    NOT NULL,
    upn_key          TEXT    NOT NULL,
    display_name     TEXT    NOT NULL,
    password_hash    TEXT,
    enabled          BIGINT  NOT NULL,
    failed_sign_ins  BIGINT  NOT NULL DEFAULT 0,
    locked_until     BIGINT,
    CONSTRAINT users_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT users_upn_key_unique UNIQUE (tenant_id, upn_key),
    CONSTRAINT users_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE user_roles (
    tenant_id         TEXT  NOT NULL,
    user_id           TEXT  NOT NULL,
    role_template_id  TEXT  NOT NULL,
    CONSTRAINT user_roles_pkey PRIMARY KEY (tenant_id, user_id, role_template_id),
    CONSTRAINT user_roles_user_fk FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE directory_groups (
    tenant_id     TEXT  NOT NULL,
    id            TEXT  NOT NULL,
    display_name  TEXT  NOT NULL,
    name_key      TEXT  NOT NULL,
    CONSTRAINT directory_groups_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT directory_groups_name_key_unique UNIQUE (tenant_id, name_key),
    CONSTRAINT directory_groups_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE group_members (
    tenant_id    TEXT    NOT NULL,
    group_id     TEXT    NOT NULL,
    member_id    TEXT    NOT NULL,
    member_kind  TEXT    NOT NULL, -- user | group
    position     BIGINT  NOT NULL,
    CONSTRAINT group_members_pkey PRIMARY KEY (tenant_id, group_id, member_id),
    CONSTRAINT group_members_group_fk FOREIGN KEY (tenant_id, group_id)
        REFERENCES directory_groups (tenant_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX group_members_member_idx ON group_members (tenant_id, member_id);

-- Global: an app registration is keyed by its app id and reachable from every tenant.
CREATE TABLE applications (
    id                        TEXT    NOT NULL PRIMARY KEY, -- object id
    app_id                    TEXT    NOT NULL,
    home_tenant_id            TEXT    NOT NULL,
    display_name              TEXT    NOT NULL,
    sign_in_audience          TEXT    NOT NULL, -- single_org | multiple_orgs
    redirect_uris             TEXT    NOT NULL, -- JSON [string]
    public_client             BIGINT  NOT NULL,
    verified_publisher        BIGINT  NOT NULL,
    identifier_uri            TEXT,
    identifier_uri_key        TEXT,             -- lower case, trailing '/' removed
    scopes                    TEXT    NOT NULL, -- JSON [PermissionScope]
    app_roles                 TEXT    NOT NULL, -- JSON [AppRole]
    required_resource_access  TEXT    NOT NULL, -- JSON [RequiredResourceAccess]
    CONSTRAINT applications_app_id_unique UNIQUE (app_id),
    CONSTRAINT applications_identifier_uri_key_unique UNIQUE (identifier_uri_key)
);
CREATE INDEX applications_home_tenant_idx ON applications (home_tenant_id);

CREATE TABLE client_secrets (
    app_object_id  TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    display_name   TEXT    NOT NULL,
    hint           TEXT    NOT NULL,
    hash           TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT,
    CONSTRAINT client_secrets_pkey PRIMARY KEY (app_object_id, id),
    CONSTRAINT client_secrets_application_fk FOREIGN KEY (app_object_id) REFERENCES applications (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE service_principals (
    tenant_id            TEXT    NOT NULL,
    id                   TEXT    NOT NULL,
    app_id               TEXT    NOT NULL,
    display_name         TEXT    NOT NULL,
    app_owner_tenant_id  TEXT    NOT NULL,
    enabled              BIGINT  NOT NULL,
    assignment_required  BIGINT  NOT NULL,
    created_at           BIGINT  NOT NULL,
    CONSTRAINT service_principals_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT service_principals_app_id_unique UNIQUE (tenant_id, app_id),
    CONSTRAINT service_principals_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE delegated_grants (
    tenant_id       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    client_sp_id    TEXT    NOT NULL,
    resource_sp_id  TEXT    NOT NULL,
    consent_type    TEXT    NOT NULL, -- AllPrincipals | Principal
    principal_id    TEXT,
    scopes          TEXT    NOT NULL, -- JSON [string], in grant order
    created_at      BIGINT  NOT NULL,
    CONSTRAINT delegated_grants_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT delegated_grants_client_fk FOREIGN KEY (tenant_id, client_sp_id)
        REFERENCES service_principals (tenant_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT delegated_grants_resource_fk FOREIGN KEY (tenant_id, resource_sp_id)
        REFERENCES service_principals (tenant_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX delegated_grants_client_idx ON delegated_grants (tenant_id, client_sp_id);
CREATE INDEX delegated_grants_resource_idx ON delegated_grants (tenant_id, resource_sp_id);

CREATE TABLE app_role_assignments (
    tenant_id       TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    principal_id    TEXT    NOT NULL,
    principal_type  TEXT    NOT NULL, -- User | Group | ServicePrincipal
    resource_sp_id  TEXT    NOT NULL,
    app_role_id     TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    CONSTRAINT app_role_assignments_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT app_role_assignments_resource_fk FOREIGN KEY (tenant_id, resource_sp_id)
        REFERENCES service_principals (tenant_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX app_role_assignments_resource_idx ON app_role_assignments (tenant_id, resource_sp_id);
CREATE INDEX app_role_assignments_principal_idx ON app_role_assignments (tenant_id, principal_id);

CREATE TABLE calendar_events (
    tenant_id           TEXT    NOT NULL,
    id                  TEXT    NOT NULL,
    owner_id            TEXT    NOT NULL,
    subject             TEXT    NOT NULL,
    body                TEXT    NOT NULL,
    location            TEXT    NOT NULL,
    start_at            BIGINT  NOT NULL,
    end_at              BIGINT  NOT NULL,
    attendees           TEXT    NOT NULL, -- JSON [string]
    online_meeting_url  TEXT,
    created_at          BIGINT  NOT NULL,
    modified_at         BIGINT  NOT NULL,
    CONSTRAINT calendar_events_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT calendar_events_owner_fk FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX calendar_events_owner_idx ON calendar_events (tenant_id, owner_id, start_at);

-- Protocol state (global, keyed by hashes).

CREATE TABLE signing_keys (
    kid                 TEXT    NOT NULL PRIMARY KEY,
    sealed_private_key  BYTEA   NOT NULL,
    status              TEXT    NOT NULL, -- active | previous | retired
    created_at          BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id_hash     TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    auth_time   BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE auth_codes (
    code_hash              TEXT    NOT NULL PRIMARY KEY,
    tenant_id              TEXT    NOT NULL,
    client_app_id          TEXT    NOT NULL,
    user_id                TEXT    NOT NULL,
    redirect_uri           TEXT    NOT NULL,
    scope                  TEXT    NOT NULL,
    nonce                  TEXT,
    code_challenge         TEXT,
    code_challenge_method  TEXT,
    auth_time              BIGINT  NOT NULL,
    expires_at             BIGINT  NOT NULL,
    family_id              TEXT    NOT NULL,
    redeemed_at            BIGINT
);
CREATE INDEX auth_codes_expires_idx ON auth_codes (expires_at);
CREATE INDEX auth_codes_family_idx ON auth_codes (family_id);

-- Revocation is a property of the family, so a token added to a revoked family is revoked too.
CREATE TABLE refresh_token_families (
    family_id  TEXT    NOT NULL PRIMARY KEY,
    revoked    BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE refresh_tokens (
    token_hash     TEXT    NOT NULL PRIMARY KEY,
    family_id      TEXT    NOT NULL,
    tenant_id      TEXT    NOT NULL,
    client_app_id  TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    scope          TEXT    NOT NULL,
    auth_time      BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    used_at        BIGINT
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
