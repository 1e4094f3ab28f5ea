//! Directory objects: [`Store::apply`](crate::Store::apply) and the tenant-scoped reads.
//!
//! Tenant-owned tables are keyed by `(tenant_id, id)` and every read filters by `tenant_id`, so
//! an id from one tenant never reaches a row of another. Applications and their client secrets
//! are global, as are tenants and their domains.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use accord_core::directory::*;
use accord_core::ids::{AppId, AppObjectId, GroupId, ServicePrincipalId, TenantId, UserId};
use sqlx::AnyConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::codec::{self, flag, fold, id, identifier_uri_key, micros, to_json, Cols};
use super::{conn, db_err, write_err, Backend, SqlStore};
use crate::{Change, DirectoryObject, MemberQuery, Membership, NameField, NameQuery, StoreError, StoreResult};

// --- tenants ---

const TENANT_SELECT: &str =
    "SELECT t.id, t.display_name, t.user_consent, t.admin_consent_requests, t.revision, d.domain \
     FROM tenants t LEFT JOIN tenant_domains d ON d.tenant_id = t.id";

/// Inserts a tenant, or updates it when the stored row still has the revision the writer read
/// (`$5`); an update bumps the revision. No row affected means the row moved on.
const TENANT_UPSERT: &str = "INSERT INTO tenants (id, display_name, user_consent, admin_consent_requests, revision) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, \
     user_consent = excluded.user_consent, admin_consent_requests = excluded.admin_consent_requests, \
     revision = tenants.revision + 1 WHERE tenants.revision = excluded.revision";

/// Folds the rows of [`TENANT_SELECT`] (one per domain, a tenant's rows adjacent and in domain
/// order) into tenants.
fn tenants_from_rows(rows: &[sqlx::any::AnyRow]) -> StoreResult<Vec<Tenant>> {
    let mut tenants: Vec<Tenant> = Vec::new();
    for row in rows {
        let c = Cols(row);
        let tenant_id = c.uuid("id")?;
        let domain = c.opt_text("domain")?;
        match tenants.last_mut() {
            Some(t) if t.id == tenant_id => t.domains.extend(domain),
            _ => tenants.push(Tenant {
                id: tenant_id,
                display_name: c.text("display_name")?,
                domains: domain.into_iter().collect(),
                user_consent: codec::user_consent("user_consent", &c.text("user_consent")?)?,
                admin_consent_requests: c.json("admin_consent_requests")?,
                revision: c.int("revision")? as u64,
            }),
        }
    }
    Ok(tenants)
}

// --- users ---

const USER_COLUMNS: &str =
    "tenant_id, id, upn, display_name, password_hash, enabled, failed_sign_ins, locked_until, sign_ins_valid_from";

pub(super) fn user_from(c: &Cols<'_>) -> StoreResult<User> {
    Ok(User {
        tenant_id: c.uuid("tenant_id")?,
        id: c.uuid("id")?,
        upn: c.text("upn")?,
        display_name: c.text("display_name")?,
        password_hash: c.opt_text("password_hash")?,
        enabled: c.flag("enabled")?,
        failed_sign_ins: c.u32("failed_sign_ins")?,
        locked_until: c.opt_time("locked_until")?,
        sign_ins_valid_from: c.opt_time("sign_ins_valid_from")?,
    })
}

// --- groups ---

const GROUP_COLUMNS: &str = "tenant_id, id, display_name";

pub(super) fn group_from(c: &Cols<'_>) -> StoreResult<Group> {
    Ok(Group { tenant_id: c.uuid("tenant_id")?, id: c.uuid("id")?, display_name: c.text("display_name")? })
}

// --- applications ---

const APPLICATION_COLUMNS: &str = "id, app_id, home_tenant_id, display_name, sign_in_audience, redirect_uris, \
     public_client, verified_publisher, identifier_uri, scopes, app_roles, required_resource_access, key_credentials, \
     spa_redirect_uris, federated_credentials, group_membership_claims, optional_claims, pre_authorized, \
     access_token_version, known_client_applications";

fn application_from(c: &Cols<'_>) -> StoreResult<Application> {
    Ok(Application {
        id: c.uuid("id")?,
        app_id: c.uuid("app_id")?,
        home_tenant_id: c.uuid("home_tenant_id")?,
        display_name: c.text("display_name")?,
        sign_in_audience: codec::sign_in_audience("sign_in_audience", &c.text("sign_in_audience")?)?,
        redirect_uris: c.json("redirect_uris")?,
        public_client: c.flag("public_client")?,
        verified_publisher: c.flag("verified_publisher")?,
        identifier_uri: c.opt_text("identifier_uri")?,
        scopes: c.json("scopes")?,
        app_roles: c.json("app_roles")?,
        required: c.json("required_resource_access")?,
        key_credentials: c.json("key_credentials")?,
        spa_redirect_uris: c.json("spa_redirect_uris")?,
        federated_credentials: c.json("federated_credentials")?,
        group_membership_claims: c.json("group_membership_claims")?,
        optional_claims: c.json("optional_claims")?,
        pre_authorized: c.json("pre_authorized")?,
        access_token_version: u8::try_from(c.int("access_token_version")?).unwrap_or(2),
        known_client_applications: c.json("known_client_applications")?,
    })
}

const CLIENT_SECRET_COLUMNS: &str = "app_object_id, id, display_name, hint, hash, created_at, expires_at";

fn client_secret_from(c: &Cols<'_>) -> StoreResult<ClientSecret> {
    Ok(ClientSecret {
        id: c.uuid("id")?,
        app_object_id: c.uuid("app_object_id")?,
        display_name: c.text("display_name")?,
        hint: c.text("hint")?,
        hash: c.text("hash")?,
        created_at: c.time("created_at")?,
        expires_at: c.opt_time("expires_at")?,
    })
}

// --- service principals, grants, assignments ---

const SERVICE_PRINCIPAL_COLUMNS: &str =
    "tenant_id, id, app_id, display_name, app_owner_tenant_id, enabled, assignment_required, created_at";

fn service_principal_from(c: &Cols<'_>) -> StoreResult<ServicePrincipal> {
    Ok(ServicePrincipal {
        tenant_id: c.uuid("tenant_id")?,
        id: c.uuid("id")?,
        app_id: c.uuid("app_id")?,
        display_name: c.text("display_name")?,
        app_owner_tenant_id: c.uuid("app_owner_tenant_id")?,
        enabled: c.flag("enabled")?,
        assignment_required: c.flag("assignment_required")?,
        created_at: c.time("created_at")?,
    })
}

const GRANT_COLUMNS: &str =
    "tenant_id, id, client_sp_id, resource_sp_id, consent_type, principal_id, scopes, created_at, expires_at";

fn grant_from(c: &Cols<'_>) -> StoreResult<DelegatedGrant> {
    Ok(DelegatedGrant {
        tenant_id: c.uuid("tenant_id")?,
        id: c.uuid("id")?,
        client_sp_id: c.uuid("client_sp_id")?,
        resource_sp_id: c.uuid("resource_sp_id")?,
        consent_type: codec::consent_type("consent_type", &c.text("consent_type")?)?,
        principal_id: c.opt_uuid("principal_id")?,
        scopes: c.json("scopes")?,
        created_at: c.time("created_at")?,
        expires_at: c.opt_time("expires_at")?,
    })
}

const ASSIGNMENT_COLUMNS: &str =
    "tenant_id, id, principal_id, principal_type, resource_sp_id, app_role_id, created_at, expires_at";

fn assignment_from(c: &Cols<'_>) -> StoreResult<AppRoleAssignment> {
    Ok(AppRoleAssignment {
        tenant_id: c.uuid("tenant_id")?,
        id: c.uuid("id")?,
        principal_id: c.uuid("principal_id")?,
        principal_type: codec::principal_type("principal_type", &c.text("principal_type")?)?,
        resource_sp_id: c.uuid("resource_sp_id")?,
        app_role_id: c.uuid("app_role_id")?,
        created_at: c.time("created_at")?,
        expires_at: c.opt_time("expires_at")?,
    })
}

// --- events ---

pub(super) const EVENT_COLUMNS: &str =
    "tenant_id, id, owner_id, subject, body, location, start_at, end_at, attendees, \
     online_meeting_url, created_at, modified_at";

pub(super) fn event_from(c: &Cols<'_>) -> StoreResult<CalendarEvent> {
    Ok(CalendarEvent {
        tenant_id: c.uuid("tenant_id")?,
        id: c.uuid("id")?,
        owner_id: c.uuid("owner_id")?,
        subject: c.text("subject")?,
        body: c.text("body")?,
        location: c.text("location")?,
        start: c.time("start_at")?,
        end: c.time("end_at")?,
        attendees: c.json("attendees")?,
        online_meeting_url: c.opt_text("online_meeting_url")?,
        created_at: c.time("created_at")?,
        modified_at: c.time("modified_at")?,
    })
}

impl SqlStore {
    pub(super) async fn apply_changes(&self, changes: &[Change]) -> StoreResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for change in changes {
            if let Err(e) = self.apply_one(conn(&mut tx), change).await {
                self.rollback(tx).await;
                return Err(e);
            }
        }
        let scopes = super::cache::scopes_of(changes);
        if scopes.is_empty() {
            return self.commit(tx).await;
        }
        let generation = match self.bump_generation(conn(&mut tx), &scopes).await {
            Ok(generation) => generation,
            Err(e) => {
                self.rollback(tx).await;
                return Err(e);
            }
        };
        self.commit(tx).await?;
        self.directory_cache().after_local_write(generation, &scopes);
        Ok(())
    }

    /// See [`Store::wipe_world`](crate::Store::wipe_world). Children first, in one transaction.
    pub(super) async fn wipe(&self) -> StoreResult<()> {
        const TABLES: &[&str] = &[
            "webhook_deliveries",
            "consent_webhooks",
            "consent_events",
            "graph_notifications",
            "graph_subscriptions",
            "calendar_changes",
            "device_authorizations",
            "spa_origins",
            "used_once",
            "notifications",
            "audit_events",
            "permission_classifications",
            "consent_requests",
            "refresh_tokens",
            "refresh_token_families",
            "sessions",
            "calendar_events",
            "app_role_assignments",
            "delegated_grants",
            "service_principals",
            "client_secrets",
            "applications",
            "group_members",
            "directory_groups",
            "user_roles",
            "users",
            "tenant_domains",
            "tenants",
        ];
        let mut tx = self.begin().await?;
        for table in TABLES {
            let sql = format!("DELETE FROM {table}");
            if let Err(e) = self.execute(conn(&mut tx), sqlx::query(&sql)).await {
                self.rollback(tx).await;
                return Err(db_err(e));
            }
        }
        let everything = [super::cache::CacheScope::All];
        let generation = match self.bump_generation(conn(&mut tx), &everything).await {
            Ok(g) => g,
            Err(e) => {
                self.rollback(tx).await;
                return Err(e);
            }
        };
        self.commit(tx).await?;
        self.directory_cache().after_local_write(generation, &everything);
        Ok(())
    }

    /// Tells every process on this database that cached directory rows changed (sql/cache.rs):
    /// the generation for those that check it, and on PostgreSQL a notification with the
    /// scopes, delivered to the listening replicas when the transaction commits.
    async fn bump_generation(&self, c: &mut AnyConnection, scopes: &[super::cache::CacheScope]) -> StoreResult<u64> {
        let q =
            sqlx::query("UPDATE store_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation");
        let row = self.fetch_optional(&mut *c, q).await.map_err(db_err)?;
        let row = row.ok_or_else(|| StoreError::Database("the store_generation row is missing".into()))?;
        let generation = Cols(&row).int("generation")? as u64;
        if self.inner.backend == Backend::Postgres {
            let payload = super::cache::notification_payload(generation, scopes);
            let q = sqlx::query("SELECT pg_notify($1, $2)").bind(self.inner.channel.as_str()).bind(payload);
            self.execute(&mut *c, q).await.map_err(db_err)?;
        }
        Ok(generation)
    }

    async fn apply_one(&self, c: &mut AnyConnection, change: &Change) -> StoreResult<()> {
        match change {
            Change::PutTenant(t) => {
                let mut seen = HashSet::new();
                for d in &t.domains {
                    if !seen.insert(fold(d)) {
                        return Err(StoreError::Conflict(format!(
                            "domain {d} is listed more than once for tenant {}",
                            t.id
                        )));
                    }
                }
                let q = sqlx::query(TENANT_UPSERT)
                    .bind(id(t.id))
                    .bind(t.display_name.as_str())
                    .bind(codec::user_consent_str(t.user_consent))
                    .bind(to_json(&t.admin_consent_requests)?)
                    .bind(t.revision as i64);
                if self.execute(&mut *c, q).await.map_err(db_err)?.rows_affected() == 0 {
                    return Err(StoreError::Stale(format!(
                        "tenant {} was changed by another write since revision {} was read",
                        t.id, t.revision
                    )));
                }
                let q = sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = $1").bind(id(t.id));
                self.execute(&mut *c, q).await.map_err(db_err)?;
                for (position, domain) in t.domains.iter().enumerate() {
                    let q = sqlx::query(
                        "INSERT INTO tenant_domains (tenant_id, position, domain, domain_key) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(id(t.id))
                    .bind(position as i64)
                    .bind(domain.as_str())
                    .bind(fold(domain));
                    self.execute(&mut *c, q).await.map_err(|e| {
                        write_err(e, |_| format!("domain {domain} is already verified by another tenant"))
                    })?;
                }
            }
            Change::PutUser(u) => {
                let q = sqlx::query(
                    "INSERT INTO users (tenant_id, id, upn, upn_key, display_name, password_hash, enabled, \
                     failed_sign_ins, locked_until, name_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET upn = excluded.upn, upn_key = excluded.upn_key, \
                     display_name = excluded.display_name, name_key = excluded.name_key, \
                     password_hash = excluded.password_hash, \
                     enabled = excluded.enabled, failed_sign_ins = excluded.failed_sign_ins, \
                     locked_until = excluded.locked_until",
                )
                .bind(id(u.tenant_id))
                .bind(id(u.id))
                .bind(u.upn.as_str())
                .bind(fold(&u.upn))
                .bind(u.display_name.as_str())
                .bind(u.password_hash.as_deref())
                .bind(flag(u.enabled))
                .bind(i64::from(u.failed_sign_ins))
                .bind(u.locked_until.map(micros))
                .bind(fold(&u.display_name));
                self.execute(&mut *c, q).await.map_err(|e| {
                    write_err(e, |_| {
                        format!("user principal name {} is already taken in tenant {}", u.upn, u.tenant_id)
                    })
                })?;
            }
            Change::SetUserRoles { tenant_id, user_id, roles } => {
                let q = sqlx::query("DELETE FROM user_roles WHERE tenant_id = $1 AND user_id = $2")
                    .bind(id(*tenant_id))
                    .bind(id(*user_id));
                self.execute(&mut *c, q).await.map_err(db_err)?;
                let mut seen = HashSet::new();
                for role in roles.iter().filter(|r| seen.insert(**r)) {
                    let q = sqlx::query(
                        "INSERT INTO user_roles (tenant_id, user_id, role_template_id) VALUES ($1, $2, $3)",
                    )
                    .bind(id(*tenant_id))
                    .bind(id(*user_id))
                    .bind(id(role.template_id()));
                    self.execute(&mut *c, q).await.map_err(db_err)?;
                }
            }
            Change::PutGroup(g) => {
                let q = sqlx::query(
                    "INSERT INTO directory_groups (tenant_id, id, display_name, name_key) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET display_name = excluded.display_name, \
                     name_key = excluded.name_key",
                )
                .bind(id(g.tenant_id))
                .bind(id(g.id))
                .bind(g.display_name.as_str())
                .bind(fold(&g.display_name));
                self.execute(&mut *c, q).await.map_err(|e| {
                    write_err(e, |_| {
                        format!("group display name {} is already used in tenant {}", g.display_name, g.tenant_id)
                    })
                })?;
            }
            Change::SetGroupMembers { tenant_id, group_id, members } => {
                if let Some(m) = members.iter().find(|m| m.group_id != *group_id) {
                    return Err(StoreError::Conflict(format!(
                        "member {} names group {} but is being set on group {group_id}",
                        m.member_id, m.group_id
                    )));
                }
                let q = sqlx::query("DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2")
                    .bind(id(*tenant_id))
                    .bind(id(*group_id));
                self.execute(&mut *c, q).await.map_err(db_err)?;
                let mut seen = HashSet::new();
                for (position, m) in members.iter().filter(|m| seen.insert(m.member_id)).enumerate() {
                    let q = sqlx::query(
                        "INSERT INTO group_members (tenant_id, group_id, member_id, member_kind, position) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id(*tenant_id))
                    .bind(id(*group_id))
                    .bind(id(m.member_id))
                    .bind(codec::member_kind_str(m.kind))
                    .bind(position as i64);
                    self.execute(&mut *c, q).await.map_err(db_err)?;
                }
            }
            Change::PutApplication(a) => {
                self.journal_app_put(c, a).await?;
                self.put_application(c, a).await?
            }
            Change::PutClientSecret(s) => {
                let q = sqlx::query(
                    "INSERT INTO client_secrets (app_object_id, id, display_name, hint, hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (app_object_id, id) DO UPDATE SET display_name = excluded.display_name, \
                     hint = excluded.hint, hash = excluded.hash, created_at = excluded.created_at, \
                     expires_at = excluded.expires_at",
                )
                .bind(id(s.app_object_id))
                .bind(id(s.id))
                .bind(s.display_name.as_str())
                .bind(s.hint.as_str())
                .bind(s.hash.as_str())
                .bind(micros(s.created_at))
                .bind(s.expires_at.map(micros));
                self.execute(&mut *c, q).await.map_err(db_err)?;
            }
            Change::DeleteApplication { app_object_id } => self.delete_application(c, *app_object_id).await?,
            Change::DeleteServicePrincipal { tenant_id, sp_id } => {
                self.delete_service_principal(c, *tenant_id, *sp_id).await?
            }
            Change::DeleteUser { tenant_id, user_id } => self.delete_user(c, *tenant_id, *user_id).await?,
            Change::PutScenarioPassword { tenant_id, user_id, fingerprint } => {
                let q = sqlx::query(
                    "INSERT INTO scenario_passwords (tenant_id, user_id, fingerprint) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id, user_id) DO UPDATE SET fingerprint = excluded.fingerprint",
                )
                .bind(id(*tenant_id))
                .bind(id(*user_id))
                .bind(fingerprint.as_str());
                self.execute(&mut *c, q).await.map_err(db_err)?;
            }
            Change::EndSignIns { tenant_id, user_id, at } => self.end_sign_ins(c, *tenant_id, *user_id, *at).await?,
            Change::DeleteClientSecret { app_object_id, secret_id } => {
                let q = sqlx::query("DELETE FROM client_secrets WHERE app_object_id = $1 AND id = $2")
                    .bind(id(*app_object_id))
                    .bind(id(*secret_id));
                self.execute(&mut *c, q).await.map_err(db_err)?;
            }
            Change::PutServicePrincipal(sp) => {
                self.journal_sp_put(c, sp).await?;
                let q = sqlx::query(
                    "INSERT INTO service_principals (tenant_id, id, app_id, display_name, app_owner_tenant_id, \
                     enabled, assignment_required, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET app_id = excluded.app_id, \
                     display_name = excluded.display_name, app_owner_tenant_id = excluded.app_owner_tenant_id, \
                     enabled = excluded.enabled, assignment_required = excluded.assignment_required, \
                     created_at = excluded.created_at",
                )
                .bind(id(sp.tenant_id))
                .bind(id(sp.id))
                .bind(id(sp.app_id))
                .bind(sp.display_name.as_str())
                .bind(id(sp.app_owner_tenant_id))
                .bind(flag(sp.enabled))
                .bind(flag(sp.assignment_required))
                .bind(micros(sp.created_at));
                self.execute(&mut *c, q).await.map_err(|e| {
                    write_err(e, |_| {
                        format!("tenant {} already has a service principal for app {}", sp.tenant_id, sp.app_id)
                    })
                })?;
            }
            Change::PutDelegatedGrant(g) => {
                self.journal_grant_put(c, g).await?;
                let q = sqlx::query(
                    "INSERT INTO delegated_grants (tenant_id, id, client_sp_id, resource_sp_id, consent_type, \
                     principal_id, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET client_sp_id = excluded.client_sp_id, \
                     resource_sp_id = excluded.resource_sp_id, consent_type = excluded.consent_type, \
                     principal_id = excluded.principal_id, scopes = excluded.scopes, \
                     created_at = excluded.created_at, expires_at = excluded.expires_at",
                )
                .bind(id(g.tenant_id))
                .bind(id(g.id))
                .bind(id(g.client_sp_id))
                .bind(id(g.resource_sp_id))
                .bind(codec::consent_type_str(g.consent_type))
                .bind(g.principal_id.map(id))
                .bind(to_json(&g.scopes)?)
                .bind(micros(g.created_at))
                .bind(g.expires_at.map(micros));
                self.execute(&mut *c, q).await.map_err(db_err)?;
            }
            Change::DeleteDelegatedGrant { tenant_id, grant_id } => {
                self.journal_grant_delete(c, *tenant_id, *grant_id).await?;
                let q = sqlx::query("DELETE FROM delegated_grants WHERE tenant_id = $1 AND id = $2")
                    .bind(id(*tenant_id))
                    .bind(id(*grant_id));
                self.execute(&mut *c, q).await.map_err(db_err)?;
            }
            Change::PutAppRoleAssignment(a) => {
                self.journal_assignment_put(c, a).await?;
                let q = sqlx::query(
                    "INSERT INTO app_role_assignments (tenant_id, id, principal_id, principal_type, resource_sp_id, \
                     app_role_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET principal_id = excluded.principal_id, \
                     principal_type = excluded.principal_type, resource_sp_id = excluded.resource_sp_id, \
                     app_role_id = excluded.app_role_id, created_at = excluded.created_at, \
                     expires_at = excluded.expires_at",
                )
                .bind(id(a.tenant_id))
                .bind(id(a.id))
                .bind(id(a.principal_id))
                .bind(codec::principal_type_str(a.principal_type))
                .bind(id(a.resource_sp_id))
                .bind(id(a.app_role_id))
                .bind(micros(a.created_at))
                .bind(a.expires_at.map(micros));
                self.execute(&mut *c, q).await.map_err(db_err)?;
            }
            Change::DeleteAppRoleAssignment { tenant_id, assignment_id } => {
                self.journal_assignment_delete(c, *tenant_id, *assignment_id).await?;
                let q = sqlx::query("DELETE FROM app_role_assignments WHERE tenant_id = $1 AND id = $2")
                    .bind(id(*tenant_id))
                    .bind(id(*assignment_id));
                self.execute(&mut *c, q).await.map_err(db_err)?;
            }
            Change::PutEvent(e) => {
                let q = sqlx::query(
                    "INSERT INTO calendar_events (tenant_id, id, owner_id, subject, body, location, start_at, end_at, \
                     attendees, online_meeting_url, created_at, modified_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET owner_id = excluded.owner_id, \
                     subject = excluded.subject, body = excluded.body, location = excluded.location, \
                     start_at = excluded.start_at, end_at = excluded.end_at, attendees = excluded.attendees, \
                     online_meeting_url = excluded.online_meeting_url, created_at = excluded.created_at, \
                     modified_at = excluded.modified_at",
                )
                .bind(id(e.tenant_id))
                .bind(id(e.id))
                .bind(id(e.owner_id))
                .bind(e.subject.as_str())
                .bind(e.body.as_str())
                .bind(e.location.as_str())
                .bind(micros(e.start))
                .bind(micros(e.end))
                .bind(to_json(&e.attendees)?)
                .bind(e.online_meeting_url.as_deref())
                .bind(micros(e.created_at))
                .bind(micros(e.modified_at));
                self.execute(&mut *c, q).await.map_err(db_err)?;
                self.journal_event(c, e.tenant_id, e.id, Some(e.owner_id), false).await?;
            }
            Change::DeleteEvent { tenant_id, event_id } => {
                self.journal_event(c, *tenant_id, *event_id, None, true).await?;
                let q = sqlx::query("DELETE FROM calendar_events WHERE tenant_id = $1 AND id = $2")
                    .bind(id(*tenant_id))
                    .bind(id(*event_id));
                self.execute(&mut *c, q).await.map_err(db_err)?;
            }
            Change::PutConsentRequest(r) => {
                self.journal_consent_request(c, r, false).await?;
                self.put_consent_request(c, r).await?
            }
            Change::DecideConsentRequest(r) => {
                self.decide_consent_request(c, r).await?;
                self.journal_consent_request(c, r, true).await?
            }
            Change::PutPermissionClassification(p) => self.put_permission_classification(c, p).await?,
            Change::DeletePermissionClassification { tenant_id, classification_id } => {
                self.delete_permission_classification(c, *tenant_id, *classification_id).await?
            }
            Change::AppendAudit(e) => self.append_audit(c, e).await?,
            Change::EnqueueNotification(n) => self.enqueue_notification(c, n).await?,
            Change::PutSubscription(sub) => self.put_subscription(c, sub).await?,
            Change::DeleteSubscription { tenant_id, subscription_id } => {
                self.delete_subscription(c, *tenant_id, *subscription_id).await?
            }
            Change::EnqueueGraphNotification(n) => self.enqueue_graph_notification(c, n).await?,
            Change::PutConsentWebhook(w) => self.put_consent_webhook(c, w).await?,
            Change::DeleteConsentWebhook { app_id, webhook_id } => {
                self.delete_consent_webhook(c, *app_id, *webhook_id).await?
            }
            Change::EnqueueWebhookDeliveries { webhook_id, from, to, deliveries } => {
                self.enqueue_webhook_deliveries(c, *webhook_id, *from, *to, deliveries).await?
            }
        }
        Ok(())
    }

    /// See [`Change::DeleteUser`]. Roles and events follow by cascade; the rest name the user
    /// without a foreign key (a principal may be a user, a group or an app; protocol state is
    /// keyed by hashes).
    async fn delete_user(&self, c: &mut AnyConnection, tenant_id: TenantId, user_id: UserId) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2").bind(id(tenant_id)).bind(id(user_id));
        if self.execute(&mut *c, q).await.map_err(db_err)?.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {user_id} in tenant {tenant_id}")));
        }
        let statements = [
            "DELETE FROM group_members WHERE tenant_id = $1 AND member_id = $2",
            "DELETE FROM delegated_grants WHERE tenant_id = $1 AND principal_id = $2",
            "DELETE FROM app_role_assignments WHERE tenant_id = $1 AND principal_id = $2 AND principal_type = 'User'",
            "DELETE FROM consent_requests WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM calendar_changes WHERE tenant_id = $1 AND owner_id = $2",
        ];
        for sql in statements {
            self.execute(&mut *c, sqlx::query(sql).bind(id(tenant_id)).bind(id(user_id))).await.map_err(db_err)?;
        }
        Ok(())
    }

    /// See [`Change::EndSignIns`].
    async fn end_sign_ins(
        &self,
        c: &mut AnyConnection,
        tenant_id: TenantId,
        user_id: UserId,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let q = sqlx::query("UPDATE users SET sign_ins_valid_from = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant_id))
            .bind(id(user_id))
            .bind(micros(at));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        let statements = [
            "INSERT INTO refresh_token_families (family_id, revoked) SELECT DISTINCT family_id, 1 \
             FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2 \
             ON CONFLICT (family_id) DO UPDATE SET revoked = 1",
            "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
        ];
        for sql in statements {
            self.execute(&mut *c, sqlx::query(sql).bind(id(tenant_id)).bind(id(user_id))).await.map_err(db_err)?;
        }
        Ok(())
    }

    /// See [`Change::DeleteApplication`]. The service principals go last but one: grants, role
    /// assignments to them and classifications follow by cascade, and so do the secrets with
    /// the registration.
    async fn delete_application(&self, c: &mut AnyConnection, app_object_id: AppObjectId) -> StoreResult<()> {
        let q = sqlx::query("SELECT app_id FROM applications WHERE id = $1").bind(id(app_object_id));
        let Some(row) = self.fetch_optional(&mut *c, q).await.map_err(db_err)? else {
            return Err(StoreError::NotFound(format!("application {app_object_id}")));
        };
        let app_id: AppId = Cols(&row).uuid("app_id")?;
        let statements = [
            // App permissions its service principals hold (no foreign key: the principal may be a
            // user, a group or a service principal).
            "DELETE FROM app_role_assignments WHERE principal_type = 'ServicePrincipal' AND EXISTS \
             (SELECT 1 FROM service_principals sp WHERE sp.tenant_id = app_role_assignments.tenant_id \
             AND sp.id = app_role_assignments.principal_id AND sp.app_id = $1)",
            "DELETE FROM consent_requests WHERE client_app_id = $1",
            "DELETE FROM refresh_tokens WHERE client_app_id = $1",
            "DELETE FROM service_principals WHERE app_id = $1",
        ];
        for sql in statements {
            self.execute(&mut *c, sqlx::query(sql).bind(id(app_id))).await.map_err(db_err)?;
        }
        let q = sqlx::query("DELETE FROM spa_origins WHERE app_object_id = $1").bind(id(app_object_id));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        let q = sqlx::query("DELETE FROM applications WHERE id = $1").bind(id(app_object_id));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        Ok(())
    }

    /// See [`Change::DeleteServicePrincipal`]. Grants, assignments to it and classifications
    /// follow by cascade.
    async fn delete_service_principal(
        &self,
        c: &mut AnyConnection,
        tenant_id: TenantId,
        sp_id: ServicePrincipalId,
    ) -> StoreResult<()> {
        let q = sqlx::query("SELECT app_id FROM service_principals WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant_id))
            .bind(id(sp_id));
        let Some(row) = self.fetch_optional(&mut *c, q).await.map_err(db_err)? else {
            return Err(StoreError::NotFound(format!("service principal {sp_id}")));
        };
        let app_id: AppId = Cols(&row).uuid("app_id")?;
        self.journal_sp_delete(c, tenant_id, app_id, sp_id).await?;
        let q = sqlx::query(
            "DELETE FROM app_role_assignments WHERE tenant_id = $1 AND principal_type = 'ServicePrincipal' \
             AND principal_id = $2",
        )
        .bind(id(tenant_id))
        .bind(id(sp_id));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        let q = sqlx::query("DELETE FROM refresh_tokens WHERE tenant_id = $1 AND client_app_id = $2")
            .bind(id(tenant_id))
            .bind(id(app_id));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        let q = sqlx::query("DELETE FROM service_principals WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant_id))
            .bind(id(sp_id));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        Ok(())
    }

    /// Upserts by app id. The object id of an existing registration does not change: a put that
    /// pairs a known app id with another object id is refused (the `WHERE` skips the update and
    /// no row is affected), as is an object id or identifier URI already used by another app.
    async fn put_application(&self, c: &mut AnyConnection, a: &Application) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO applications (id, app_id, home_tenant_id, display_name, sign_in_audience, redirect_uris, \
             public_client, verified_publisher, identifier_uri, identifier_uri_key, scopes, app_roles, \
             required_resource_access, key_credentials, spa_redirect_uris, federated_credentials, \
             group_membership_claims, optional_claims, pre_authorized, access_token_version, known_client_applications) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
             ON CONFLICT (app_id) DO UPDATE SET home_tenant_id = excluded.home_tenant_id, \
             display_name = excluded.display_name, sign_in_audience = excluded.sign_in_audience, \
             redirect_uris = excluded.redirect_uris, public_client = excluded.public_client, \
             verified_publisher = excluded.verified_publisher, identifier_uri = excluded.identifier_uri, \
             identifier_uri_key = excluded.identifier_uri_key, scopes = excluded.scopes, \
             app_roles = excluded.app_roles, required_resource_access = excluded.required_resource_access, \
             key_credentials = excluded.key_credentials, spa_redirect_uris = excluded.spa_redirect_uris, \
             federated_credentials = excluded.federated_credentials, \
             group_membership_claims = excluded.group_membership_claims, optional_claims = excluded.optional_claims, \
             pre_authorized = excluded.pre_authorized, access_token_version = excluded.access_token_version, \
             known_client_applications = excluded.known_client_applications \
             WHERE applications.id = excluded.id",
        )
        .bind(id(a.id))
        .bind(id(a.app_id))
        .bind(id(a.home_tenant_id))
        .bind(a.display_name.as_str())
        .bind(codec::sign_in_audience_str(a.sign_in_audience))
        .bind(to_json(&a.redirect_uris)?)
        .bind(flag(a.public_client))
        .bind(flag(a.verified_publisher))
        .bind(a.identifier_uri.as_deref())
        .bind(a.identifier_uri.as_deref().map(identifier_uri_key))
        .bind(to_json(&a.scopes)?)
        .bind(to_json(&a.app_roles)?)
        .bind(to_json(&a.required)?)
        .bind(to_json(&a.key_credentials)?)
        .bind(to_json(&a.spa_redirect_uris)?)
        .bind(to_json(&a.federated_credentials)?)
        .bind(to_json(&a.group_membership_claims)?)
        .bind(to_json(&a.optional_claims)?)
        .bind(to_json(&a.pre_authorized)?)
        .bind(i64::from(a.access_token_version))
        .bind(to_json(&a.known_client_applications)?);
        let done = self.execute(&mut *c, q).await.map_err(|e| {
            write_err(e, |detail| {
                if detail.contains("identifier_uri") {
                    let uri = a.identifier_uri.as_deref().unwrap_or_default();
                    format!("identifier URI {uri} is already used by another application")
                } else {
                    format!("application object id {} is already used by another application", a.id)
                }
            })
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "app id {} is already registered by another application (object id differs from {})",
                a.app_id, a.id
            )));
        }
        self.put_spa_origins(c, a).await
    }

    /// Keeps `spa_origins` in step with the app's SPA redirect URIs.
    async fn put_spa_origins(&self, c: &mut AnyConnection, a: &Application) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM spa_origins WHERE app_object_id = $1").bind(id(a.id));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        for origin in a.spa_origins() {
            let q = sqlx::query("INSERT INTO spa_origins (origin, app_object_id) VALUES ($1, $2)")
                .bind(origin)
                .bind(id(a.id));
            self.execute(&mut *c, q).await.map_err(db_err)?;
        }
        Ok(())
    }

    // --- tenants ---

    pub(super) async fn get_tenant(&self, tenant_id: TenantId) -> StoreResult<Option<Tenant>> {
        let sql = format!("{TENANT_SELECT} WHERE t.id = $1 ORDER BY d.position");
        let rows = self.fetch_all(self.pool(), sqlx::query(&sql).bind(id(tenant_id))).await.map_err(db_err)?;
        Ok(tenants_from_rows(&rows)?.pop())
    }

    pub(super) async fn get_tenant_by_domain(&self, domain: &str) -> StoreResult<Option<Tenant>> {
        let sql = format!(
            "{TENANT_SELECT} WHERE t.id = (SELECT tenant_id FROM tenant_domains WHERE domain_key = $1) \
             ORDER BY d.position"
        );
        let rows = self.fetch_all(self.pool(), sqlx::query(&sql).bind(fold(domain))).await.map_err(db_err)?;
        Ok(tenants_from_rows(&rows)?.pop())
    }

    pub(super) async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let sql = format!("{TENANT_SELECT} ORDER BY t.display_name, t.id, d.position");
        let rows = self.fetch_all(self.pool(), sqlx::query(&sql)).await.map_err(db_err)?;
        tenants_from_rows(&rows)
    }

    // --- users and roles ---

    pub(super) async fn get_user(&self, tenant_id: TenantId, user_id: UserId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(id(user_id)), user_from).await
    }

    pub(super) async fn get_user_by_upn(&self, tenant_id: TenantId, upn: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND upn_key = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(fold(upn)), user_from).await
    }

    pub(super) async fn list_users(&self, tenant_id: TenantId) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY upn_key, id");
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)), user_from).await
    }

    /// A page of users or groups in display-name order (ties by id): see [`NameQuery`].
    pub(super) async fn page_by_name<T>(
        &self,
        list: &NameList,
        tenant_id: TenantId,
        query: &NameQuery,
        decode: impl Fn(&Cols<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let (filter, binds) = name_filter(query, list.with_upn);
        let sql = format!(
            "SELECT {} FROM {} WHERE tenant_id = $1{filter} ORDER BY name_key, id LIMIT ${}",
            list.columns,
            list.table,
            binds.len() + 2
        );
        let q = binds.into_iter().fold(sqlx::query(&sql).bind(id(tenant_id)), |q, b| q.bind(b));
        self.read_all(q.bind(i64::from(query.limit)), decode).await
    }

    /// How many users or groups the query's prefix matches (its position and limit aside).
    pub(super) async fn count_by_name(
        &self,
        list: &NameList,
        tenant_id: TenantId,
        query: &NameQuery,
    ) -> StoreResult<u64> {
        let (filter, binds) = name_filter(&NameQuery { after: None, ..query.clone() }, list.with_upn);
        let sql = format!("SELECT COUNT(*) AS n FROM {} WHERE tenant_id = $1{filter}", list.table);
        let q = binds.into_iter().fold(sqlx::query(&sql).bind(id(tenant_id)), |q, b| q.bind(b));
        self.read_count(q).await
    }

    pub(super) async fn list_user_roles(
        &self,
        tenant_id: TenantId,
        user_id: UserId,
    ) -> StoreResult<Vec<DirectoryRole>> {
        let q = sqlx::query("SELECT role_template_id FROM user_roles WHERE tenant_id = $1 AND user_id = $2")
            .bind(id(tenant_id))
            .bind(id(user_id));
        let mut roles =
            self.read_all(q, |c| codec::directory_role("role_template_id", &c.text("role_template_id")?)).await?;
        roles.sort();
        Ok(roles)
    }

    pub(super) async fn list_role_holders(&self, tenant_id: TenantId, role: DirectoryRole) -> StoreResult<Vec<UserId>> {
        let q = sqlx::query(
            "SELECT user_id FROM user_roles WHERE tenant_id = $1 AND role_template_id = $2 ORDER BY user_id",
        )
        .bind(id(tenant_id))
        .bind(id(role.template_id()));
        self.read_all(q, |c| c.uuid("user_id")).await
    }

    pub(super) async fn increment_failed_sign_ins(&self, tenant_id: TenantId, user_id: UserId) -> StoreResult<u32> {
        let q = sqlx::query(
            "UPDATE users SET failed_sign_ins = failed_sign_ins + 1 WHERE tenant_id = $1 AND id = $2 \
             RETURNING failed_sign_ins",
        )
        .bind(id(tenant_id))
        .bind(id(user_id));
        self.write_sign_in_counters(q, tenant_id, user_id).await
    }

    pub(super) async fn update_locked_until(
        &self,
        tenant_id: TenantId,
        user_id: UserId,
        until: Option<OffsetDateTime>,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE users SET locked_until = $3, failed_sign_ins = 0 WHERE tenant_id = $1 AND id = $2 \
             RETURNING failed_sign_ins",
        )
        .bind(id(tenant_id))
        .bind(id(user_id))
        .bind(until.map(micros));
        self.write_sign_in_counters(q, tenant_id, user_id).await.map(drop)
    }

    pub(super) async fn reset_failed_sign_ins(&self, tenant_id: TenantId, user_id: UserId) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE users SET failed_sign_ins = 0 WHERE tenant_id = $1 AND id = $2 RETURNING failed_sign_ins",
        )
        .bind(id(tenant_id))
        .bind(id(user_id));
        self.write_sign_in_counters(q, tenant_id, user_id).await.map(drop)
    }

    /// Runs an update of a user's lockout columns (`q`, returning `failed_sign_ins`). The user
    /// row is in the directory cache, so like `apply` it bumps the write generation in the same transaction: this process and the
    /// other replicas drop the tenant's entries, and a cached copy never writes an old count
    /// back. These writes happen only when a password is wrong or a lock ends.
    async fn write_sign_in_counters(
        &self,
        q: super::Query<'_>,
        tenant_id: TenantId,
        user_id: UserId,
    ) -> StoreResult<u32> {
        let scopes = [super::cache::CacheScope::Tenant(tenant_id)];
        let mut tx = self.begin().await?;
        let result = async {
            let row = self.fetch_optional(conn(&mut tx), q).await.map_err(db_err)?;
            let row = row.ok_or_else(|| StoreError::NotFound(format!("user {user_id} in tenant {tenant_id}")))?;
            let count = Cols(&row).u32("failed_sign_ins")?;
            let generation = self.bump_generation(conn(&mut tx), &scopes).await?;
            Ok::<_, StoreError>((count, generation))
        }
        .await;
        match result {
            Ok((count, generation)) => {
                self.commit(tx).await?;
                self.directory_cache().after_local_write(generation, &scopes);
                Ok(count)
            }
            Err(e) => {
                self.rollback(tx).await;
                Err(e)
            }
        }
    }

    // --- groups ---

    pub(super) async fn get_group(&self, tenant_id: TenantId, group_id: GroupId) -> StoreResult<Option<Group>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM directory_groups WHERE tenant_id = $1 AND id = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(id(group_id)), group_from).await
    }

    pub(super) async fn get_group_by_name(
        &self,
        tenant_id: TenantId,
        display_name: &str,
    ) -> StoreResult<Option<Group>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM directory_groups WHERE tenant_id = $1 AND name_key = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(fold(display_name)), group_from).await
    }

    pub(super) async fn list_groups(&self, tenant_id: TenantId) -> StoreResult<Vec<Group>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM directory_groups WHERE tenant_id = $1 ORDER BY name_key, id");
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)), group_from).await
    }

    pub(super) async fn list_group_members(
        &self,
        tenant_id: TenantId,
        group_id: GroupId,
    ) -> StoreResult<Vec<GroupMember>> {
        let q = sqlx::query(
            "SELECT group_id, member_id, member_kind FROM group_members WHERE tenant_id = $1 AND group_id = $2 \
             ORDER BY position",
        )
        .bind(id(tenant_id))
        .bind(id(group_id));
        self.read_all(q, |c| {
            Ok(GroupMember {
                group_id: c.uuid("group_id")?,
                member_id: c.uuid("member_id")?,
                kind: codec::member_kind("member_kind", &c.text("member_kind")?)?,
            })
        })
        .await
    }

    /// A group's members — through `closure` (see [`SqlStore::list_groups_below`]), the group
    /// alone or it and every group below — as users and groups, each once, in display-name
    /// order (ties by id): two statements, whatever the size of the group or the depth of its
    /// nesting.
    pub(super) async fn list_group_closure(
        &self,
        tenant_id: TenantId,
        group_id: GroupId,
        closure: &[GroupId],
    ) -> StoreResult<(Vec<User>, Vec<Group>)> {
        // The member pages' queries without a bound: through the closure's memberships (the
        // closure, not `transitive`, decides which groups count).
        let transitive = closure.len() > 1;
        let everyone = MemberQuery { transitive, nested_users_only: false, after: None, limit: u32::MAX };
        let (mut users, mut groups) = (Vec::new(), Vec::new());
        for member in self.list_group_members_page(tenant_id, group_id, &everyone, closure).await? {
            match member {
                DirectoryObject::User(u) => users.push(u),
                DirectoryObject::Group(g) => groups.push(g),
            }
        }
        Ok((users, groups))
    }

    /// The group's closure: itself and every group below it, each once (one statement; cycles
    /// end). The store caches it per group, so that paging through the members of a group with
    /// thousands of groups below walks down once, not once a page.
    pub(super) async fn list_groups_below(
        &self,
        tenant_id: TenantId,
        group_id: GroupId,
    ) -> StoreResult<Arc<[GroupId]>> {
        let sql = format!("{CLOSURE_CTE} SELECT group_id FROM down");
        let q = sqlx::query(&sql).bind(id(tenant_id)).bind(id(group_id));
        Ok(self.read_all(q, |c| c.uuid::<GroupId>("group_id")).await?.into())
    }

    /// A page of a group's members whose closure is `closure` (the group alone, for direct
    /// members): how many groups it holds decides how the users are read (see
    /// [`members_page_sql`]), then the users after the position, then — when the users ran out
    /// within the page — the groups. Two statements at most.
    pub(super) async fn list_group_members_page(
        &self,
        tenant_id: TenantId,
        group_id: GroupId,
        query: &MemberQuery,
        closure: &[GroupId],
    ) -> StoreResult<Vec<DirectoryObject>> {
        let limit = query.limit.max(1) as usize;
        let closure_json = serde_json::to_string(&closure.iter().map(|g| id(*g)).collect::<Vec<_>>())
            .map_err(|e| StoreError::Database(format!("encoding a group closure: {e}")))?;
        let backend = self.inner.backend;
        let mut page = Vec::new();
        let users_done = matches!(&query.after, Some(p) if p.kind == MemberKind::Group);
        if !users_done {
            let dense = closure.len() as u64 > DENSE_CLOSURE_GROUPS;
            let after = query.after.as_ref();
            let sql = members_page_sql(backend, MemberKind::User, query, dense);
            let mut q = sqlx::query(&sql).bind(id(tenant_id)).bind(id(group_id)).bind(closure_json.as_str());
            if let Some(p) = after {
                q = q.bind(p.name_key.clone()).bind(id(p.id));
            }
            let users = self.read_all(q.bind(limit as i64), user_from).await?;
            page.extend(users.into_iter().map(DirectoryObject::User));
        }
        if page.len() < limit && !query.nested_users_only {
            let after = query.after.as_ref().filter(|p| p.kind == MemberKind::Group);
            let query = MemberQuery { after: after.cloned(), ..query.clone() };
            let sql = members_page_sql(backend, MemberKind::Group, &query, false);
            let mut q = sqlx::query(&sql).bind(id(tenant_id)).bind(id(group_id)).bind(closure_json.as_str());
            if let Some(p) = after {
                q = q.bind(p.name_key.clone()).bind(id(p.id));
            }
            let groups = self.read_all(q.bind((limit - page.len()) as i64), group_from).await?;
            page.extend(groups.into_iter().map(DirectoryObject::Group));
        }
        Ok(page)
    }

    pub(super) async fn list_scenario_passwords(
        &self,
        tenant_id: TenantId,
        user_ids: &[UserId],
    ) -> StoreResult<HashMap<UserId, String>> {
        let select = "SELECT user_id, fingerprint FROM scenario_passwords WHERE tenant_id = $1 AND user_id IN ({keys})";
        let rows = self
            .read_by_keys(
                tenant_id,
                select,
                user_ids,
                |u| id(*u),
                |c| Ok((c.uuid::<UserId>("user_id")?, c.text("fingerprint")?)),
            )
            .await?;
        Ok(rows.into_iter().collect())
    }

    pub(super) async fn list_users_with_upns(&self, tenant_id: TenantId, upns: &[&str]) -> StoreResult<Vec<User>> {
        let select = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND upn_key IN ({{keys}})");
        self.read_by_keys(tenant_id, &select, upns, |upn| fold(upn), user_from).await
    }

    pub(super) async fn list_members_of_groups(
        &self,
        tenant_id: TenantId,
        group_ids: &[GroupId],
    ) -> StoreResult<HashMap<GroupId, Vec<GroupMember>>> {
        let select = "SELECT group_id, member_id, member_kind FROM group_members WHERE tenant_id = $1 \
                      AND group_id IN ({keys}) ORDER BY group_id, position";
        let members = self
            .read_by_keys(
                tenant_id,
                select,
                group_ids,
                |g| id(*g),
                |c| {
                    Ok(GroupMember {
                        group_id: c.uuid("group_id")?,
                        member_id: c.uuid("member_id")?,
                        kind: codec::member_kind("member_kind", &c.text("member_kind")?)?,
                    })
                },
            )
            .await?;
        let mut out: HashMap<GroupId, Vec<GroupMember>> = HashMap::new();
        for m in members {
            out.entry(m.group_id).or_default().push(m);
        }
        Ok(out)
    }

    /// Ids as `$2, $3, …` placeholders (after the tenant's `$1`), for `IN (…)`.
    fn id_list(count: usize) -> String {
        (0..count).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ")
    }

    /// The rows of `select` for all of `keys`, 500 keys a statement: `select` names the
    /// tenant as `$1` and has `{keys}` where the list of keys goes (`… IN ({keys})`), each key
    /// bound as `bind` gives it.
    async fn read_by_keys<K, T>(
        &self,
        tenant_id: TenantId,
        select: &str,
        keys: &[K],
        bind: impl Fn(&K) -> String,
        decode: impl Fn(&Cols<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut rows = Vec::new();
        for chunk in keys.chunks(500) {
            let sql = select.replace("{keys}", &Self::id_list(chunk.len()));
            let q = chunk.iter().fold(sqlx::query(&sql).bind(id(tenant_id)), |q, k| q.bind(bind(k)));
            rows.extend(self.read_all(q, &decode).await?);
        }
        Ok(rows)
    }

    pub(super) async fn list_roles_of_users(
        &self,
        tenant_id: TenantId,
        user_ids: &[UserId],
    ) -> StoreResult<HashMap<UserId, Vec<DirectoryRole>>> {
        let select = "SELECT user_id, role_template_id FROM user_roles WHERE tenant_id = $1 AND user_id IN ({keys})";
        let rows = self
            .read_by_keys(
                tenant_id,
                select,
                user_ids,
                |u| id(*u),
                |c| {
                    let role = codec::directory_role("role_template_id", &c.text("role_template_id")?)?;
                    Ok((c.uuid::<UserId>("user_id")?, role))
                },
            )
            .await?;
        let mut out: HashMap<UserId, Vec<DirectoryRole>> = HashMap::new();
        for (user, role) in rows {
            out.entry(user).or_default().push(role);
        }
        out.values_mut().for_each(|roles| roles.sort());
        Ok(out)
    }

    pub(super) async fn count_members(
        &self,
        tenant_id: TenantId,
        group_ids: &[GroupId],
    ) -> StoreResult<HashMap<GroupId, u64>> {
        let select = "SELECT group_id, COUNT(*) AS n FROM group_members WHERE tenant_id = $1 AND group_id IN ({keys}) \
                      GROUP BY group_id";
        let rows = self
            .read_by_keys(
                tenant_id,
                select,
                group_ids,
                |g| id(*g),
                |c| Ok((c.uuid::<GroupId>("group_id")?, c.int("n")?)),
            )
            .await?;
        Ok(rows.into_iter().map(|(g, n)| (g, u64::try_from(n).unwrap_or(0))).collect())
    }

    /// The member's groups up the nesting in one recursive read with their names; `via` is
    /// the group below on the way (none for a direct membership, which wins when both exist).
    /// UNION (not UNION ALL) keeps each (group, via) pair once, and there are finitely many, so
    /// membership cycles end.
    pub(super) async fn list_memberships(&self, tenant_id: TenantId, member_id: Uuid) -> StoreResult<Vec<Membership>> {
        let q = sqlx::query(MEMBERSHIPS_SQL).bind(id(tenant_id)).bind(id(member_id));
        let rows = self
            .read_all(q, |c| {
                Ok(Membership {
                    group_id: c.uuid("group_id")?,
                    group_name: c.text("display_name")?,
                    via: c.opt_uuid("via")?,
                })
            })
            .await?;
        let mut out: Vec<Membership> = Vec::with_capacity(rows.len());
        for m in rows {
            match out.last_mut() {
                Some(last) if last.group_id == m.group_id => {
                    if m.via.is_none() {
                        last.via = None;
                    }
                }
                _ => out.push(m),
            }
        }
        Ok(out)
    }

    // --- applications ---

    pub(super) async fn get_application_by_app_id(&self, app_id: AppId) -> StoreResult<Option<Application>> {
        let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE app_id = $1");
        self.read_one(sqlx::query(&sql).bind(id(app_id)), application_from).await
    }

    pub(super) async fn get_spa_origin_registered(&self, origin: &str) -> StoreResult<bool> {
        let q = sqlx::query("SELECT 1 AS one FROM spa_origins WHERE origin = $1 LIMIT 1").bind(origin);
        Ok(self.read_one(q, |_| Ok(())).await?.is_some())
    }

    pub(super) async fn get_application_by_identifier_uri(&self, uri: &str) -> StoreResult<Option<Application>> {
        let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE identifier_uri_key = $1");
        self.read_one(sqlx::query(&sql).bind(identifier_uri_key(uri)), application_from).await
    }

    pub(super) async fn list_applications_homed_in(&self, tenant_id: TenantId) -> StoreResult<Vec<Application>> {
        let sql = format!(
            "SELECT {APPLICATION_COLUMNS} FROM applications WHERE home_tenant_id = $1 ORDER BY display_name, app_id"
        );
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)), application_from).await
    }

    pub(super) async fn list_client_secrets(&self, app_object_id: AppObjectId) -> StoreResult<Vec<ClientSecret>> {
        let sql = format!(
            "SELECT {CLIENT_SECRET_COLUMNS} FROM client_secrets WHERE app_object_id = $1 ORDER BY created_at, id"
        );
        self.read_all(sqlx::query(&sql).bind(id(app_object_id)), client_secret_from).await
    }

    // --- service principals, grants, assignments ---

    pub(super) async fn get_service_principal(
        &self,
        tenant_id: TenantId,
        sp_id: ServicePrincipalId,
    ) -> StoreResult<Option<ServicePrincipal>> {
        let sql =
            format!("SELECT {SERVICE_PRINCIPAL_COLUMNS} FROM service_principals WHERE tenant_id = $1 AND id = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(id(sp_id)), service_principal_from).await
    }

    pub(super) async fn get_service_principal_by_app_id(
        &self,
        tenant_id: TenantId,
        app_id: AppId,
    ) -> StoreResult<Option<ServicePrincipal>> {
        let sql =
            format!("SELECT {SERVICE_PRINCIPAL_COLUMNS} FROM service_principals WHERE tenant_id = $1 AND app_id = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(id(app_id)), service_principal_from).await
    }

    pub(super) async fn list_service_principals(&self, tenant_id: TenantId) -> StoreResult<Vec<ServicePrincipal>> {
        let sql = format!(
            "SELECT {SERVICE_PRINCIPAL_COLUMNS} FROM service_principals WHERE tenant_id = $1 ORDER BY display_name, id"
        );
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)), service_principal_from).await
    }

    pub(super) async fn get_delegated_grant(
        &self,
        tenant_id: TenantId,
        grant_id: Uuid,
    ) -> StoreResult<Option<DelegatedGrant>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM delegated_grants WHERE tenant_id = $1 AND id = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(id(grant_id)), grant_from).await
    }

    pub(super) async fn list_delegated_grants(&self, tenant_id: TenantId) -> StoreResult<Vec<DelegatedGrant>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM delegated_grants WHERE tenant_id = $1 ORDER BY created_at, id");
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)), grant_from).await
    }

    pub(super) async fn list_delegated_grants_of_client(
        &self,
        tenant_id: TenantId,
        client_sp_id: ServicePrincipalId,
    ) -> StoreResult<Vec<DelegatedGrant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM delegated_grants WHERE tenant_id = $1 AND client_sp_id = $2 \
             ORDER BY created_at, id"
        );
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)).bind(id(client_sp_id)), grant_from).await
    }

    pub(super) async fn list_app_role_assignments_to(
        &self,
        tenant_id: TenantId,
        resource_sp_id: ServicePrincipalId,
    ) -> StoreResult<Vec<AppRoleAssignment>> {
        let sql = format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM app_role_assignments WHERE tenant_id = $1 AND resource_sp_id = $2 \
             ORDER BY created_at, id"
        );
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)).bind(id(resource_sp_id)), assignment_from).await
    }

    pub(super) async fn list_app_role_assignments_of(
        &self,
        tenant_id: TenantId,
        principal_id: Uuid,
    ) -> StoreResult<Vec<AppRoleAssignment>> {
        let sql = format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM app_role_assignments WHERE tenant_id = $1 AND principal_id = $2 \
             ORDER BY created_at, id"
        );
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)).bind(id(principal_id)), assignment_from).await
    }

    pub(super) async fn list_expired_grants(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<(Vec<DelegatedGrant>, Vec<AppRoleAssignment>)> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM delegated_grants WHERE expires_at IS NOT NULL AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2"
        );
        let grants = self.read_all(sqlx::query(&sql).bind(micros(now)).bind(i64::from(limit)), grant_from).await?;
        let sql = format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM app_role_assignments WHERE expires_at IS NOT NULL AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2"
        );
        let assignments =
            self.read_all(sqlx::query(&sql).bind(micros(now)).bind(i64::from(limit)), assignment_from).await?;
        Ok((grants, assignments))
    }

    // --- events ---

    pub(super) async fn get_event(&self, tenant_id: TenantId, event_id: Uuid) -> StoreResult<Option<CalendarEvent>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM calendar_events WHERE tenant_id = $1 AND id = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(id(event_id)), event_from).await
    }

    /// Overlap with `[from, to)`: `start < to AND end > from`, each bound optional.
    pub(super) async fn list_events_of(
        &self,
        tenant_id: TenantId,
        owner_id: UserId,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> StoreResult<Vec<CalendarEvent>> {
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM calendar_events WHERE tenant_id = $1 AND owner_id = $2");
        let mut next = 3;
        if from.is_some() {
            sql.push_str(&format!(" AND end_at > ${next}"));
            next += 1;
        }
        if to.is_some() {
            sql.push_str(&format!(" AND start_at < ${next}"));
        }
        sql.push_str(" ORDER BY start_at, id");
        let mut q = sqlx::query(&sql).bind(id(tenant_id)).bind(id(owner_id));
        if let Some(from) = from {
            q = q.bind(micros(from));
        }
        if let Some(to) = to {
            q = q.bind(micros(to));
        }
        self.read_all(q, event_from).await
    }
}

/// A directory list read by name: its table, the columns its rows decode from, and whether
/// it has UPNs.
pub(super) struct NameList {
    table: &'static str,
    columns: &'static str,
    with_upn: bool,
}

pub(super) const USERS_BY_NAME: NameList = NameList { table: "users", columns: USER_COLUMNS, with_upn: true };
pub(super) const GROUPS_BY_NAME: NameList =
    NameList { table: "directory_groups", columns: GROUP_COLUMNS, with_upn: false };

/// A member's groups up the nesting, with names and the way up (`$1` tenant, `$2` member).
pub(super) const MEMBERSHIPS_SQL: &str = "WITH RECURSIVE up (group_id, via) AS ( \
         SELECT group_id, CAST(NULL AS TEXT) FROM group_members WHERE tenant_id = $1 AND member_id = $2 \
         UNION \
         SELECT m.group_id, u.group_id FROM up u CROSS JOIN group_members m \
         WHERE m.tenant_id = $1 AND m.member_id = u.group_id AND m.member_kind = 'group' \
     ) \
     SELECT u.group_id, g.display_name, u.via FROM up u \
     JOIN directory_groups g ON g.tenant_id = $1 AND g.id = u.group_id \
     WHERE u.group_id <> $2 ORDER BY u.group_id, u.via";

/// `down`: the group `$2` of tenant `$1` and every group below it, each once (UNION ends
/// cycles).
const CLOSURE_CTE: &str = "WITH RECURSIVE down (group_id) AS ( \
     SELECT CAST($2 AS TEXT) \
     UNION \
     SELECT m.member_id FROM down d CROSS JOIN group_members m \
     WHERE m.tenant_id = $1 AND m.group_id = d.group_id AND m.member_kind = 'group' \
 ) ";

/// `down`: the closure's group ids given as a JSON array in `$3` (read from the cache, not
/// walked again).
fn given_closure_cte(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "WITH down (group_id) AS (SELECT value FROM json_each($3)) ",
        Backend::Postgres => "WITH down (group_id) AS (SELECT json_array_elements_text(CAST($3 AS json))) ",
    }
}

/// Above this many groups in a closure its users are found by walking the tenant's users in
/// name order and keeping members (a page stops after `limit` of them: the members are dense
/// among the users); at or below it, by collecting the closure's memberships first (few).
/// A closure of many groups has many members — thirty a group in a real directory — so either
/// way a page reads a bounded number of rows.
pub(super) const DENSE_CLOSURE_GROUPS: u64 = 32;

/// A page of a group's users or groups (`$1` tenant, `$2` group, `$3` the closure's group ids as
/// a JSON array, then the position's `$4`, `$5` when there is one, then the limit). Users are read through the closure's memberships
/// (`IN`), or — `dense` — in name order through the users' name index, each checked for a
/// membership below the group (`EXISTS`, by the member-side index).
pub(super) fn members_page_sql(backend: Backend, kind: MemberKind, query: &MemberQuery, dense: bool) -> String {
    let (table, alias, columns, member_kind) = match kind {
        MemberKind::User => ("users", "u", USER_COLUMNS, "user"),
        MemberKind::Group => ("directory_groups", "g", GROUP_COLUMNS, "group"),
    };
    let columns: Vec<String> = columns.split(", ").map(|c| format!("{alias}.{c}")).collect();
    let mut sql = format!(
        "{} SELECT {} FROM {table} {alias} WHERE {alias}.tenant_id = $1 AND {alias}.id <> $2",
        given_closure_cte(backend),
        columns.join(", ")
    );
    if dense && kind == MemberKind::User {
        // `m.group_id || ''`: an expression, so that no index serves the IN and the planner
        // reads the user's few memberships by the member index instead of probing every group
        // of the closure for each user (0.4 s a page at the root of 10,000 groups, 20 ms so).
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM group_members m WHERE m.tenant_id = $1 AND m.member_id = {alias}.id \
               AND m.member_kind = 'user' AND m.group_id || '' IN (SELECT group_id FROM down))"
        ));
    } else {
        sql.push_str(&format!(
            " AND {alias}.id IN (SELECT m.member_id FROM down d CROSS JOIN group_members m \
               WHERE m.tenant_id = $1 AND m.group_id = d.group_id AND m.member_kind = '{member_kind}')"
        ));
    }
    if query.nested_users_only {
        sql.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM group_members x WHERE x.tenant_id = $1 AND x.group_id = $2 \
               AND x.member_kind = '{member_kind}' AND x.member_id = {alias}.id)"
        ));
    }
    let limit = if query.after.is_some() {
        sql.push_str(&format!(" AND ({alias}.name_key, {alias}.id) > ($4, $5)"));
        "$6"
    } else {
        "$4"
    };
    sql.push_str(&format!(" ORDER BY {alias}.name_key, {alias}.id LIMIT {limit}"));
    sql
}

/// The WHERE clauses (after the tenant's `$1`) and their values for a [`NameQuery`]: a prefix of
/// the folded display name (or of the UPN, for users) as a key range — so an index serves it —
/// or an exact object id; then the keyset position.
fn name_filter(query: &NameQuery, with_upn: bool) -> (String, Vec<String>) {
    fn param(binds: &mut Vec<String>, v: String) -> String {
        binds.push(v);
        format!("${}", binds.len() + 1)
    }
    fn range(binds: &mut Vec<String>, column: &str, low: &str) -> String {
        let from = param(binds, low.to_string());
        match prefix_end(low) {
            Some(end) => format!("({column} >= {from} AND {column} < {})", param(binds, end)),
            None => format!("{column} >= {from}"),
        }
    }
    let mut sql = String::new();
    let mut binds = Vec::new();
    let prefix = query.prefix.trim();
    let by_id = query.field == NameField::NameOrUpn;
    match Uuid::parse_str(prefix) {
        Ok(object_id) if by_id => sql.push_str(&format!(" AND id = {}", param(&mut binds, id(object_id)))),
        _ if prefix.is_empty() => {}
        _ => {
            let low = fold(prefix);
            let clause = match (query.field, with_upn) {
                (NameField::NameOrUpn, true) => {
                    let name = range(&mut binds, "name_key", &low);
                    format!("({name} OR {})", range(&mut binds, "upn_key", &low))
                }
                (NameField::Upn, true) => range(&mut binds, "upn_key", &low),
                // Groups have no UPN: a UPN prefix matches none.
                (NameField::Upn, false) => "1 = 0".to_string(),
                (_, _) => range(&mut binds, "name_key", &low),
            };
            sql.push_str(&format!(" AND {clause}"));
        }
    }
    if let Some(after) = &query.after {
        let (k, i) = (param(&mut binds, after.name_key.clone()), param(&mut binds, id(after.id)));
        sql.push_str(&format!(" AND (name_key, id) > ({k}, {i})"));
    }
    (sql, binds)
}

/// The least string after every string that starts with `prefix` (its last character
/// incremented); keys compare byte by byte, which for UTF-8 is code-point order.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}
