//! Consent webhooks: the journal of consent changes, written in the changing transaction by the
//! changes themselves (so every surface — Graph, the admin center, consent pages, the CLI,
//! scenario loads — is covered by one piece of code), the webhooks, and their outbox.
//!
//! Event numbers become visible in commit order as in the calendar journal: SQLite has one
//! writer, PostgreSQL writers take one advisory transaction lock before numbering an event.

use accord_core::consent_records::{ConsentRequest, RequestStatus, ReviewResult};
use accord_core::directory::{
    AppRoleAssignment, Application, ConsentType, DelegatedGrant, PrincipalType, RequiredResourceAccess,
    ServicePrincipal,
};
use accord_core::ids::{AppId, TenantId};
use serde_json::{json, Value};
use sqlx::AnyConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::codec::{corrupt, id, micros, to_json, Cols};
use super::{db_err, write_err, Backend, SqlStore};
use crate::{ConsentEvent, ConsentWebhook, StoreError, StoreResult, WebhookDelivery};

/// The advisory-lock key of the consent journal (PostgreSQL).
const JOURNAL_LOCK: i64 = 0x0c0a_5e17;

const WEBHOOK_COLUMNS: &str = "id, app_id, url, sealed_secrets, created_at, cursor";
const DELIVERY_COLUMNS: &str = "id, webhook_id, event_seq, type, payload, created_at, next_attempt_at, attempts, \
     last_status, last_error, delivered_at";

fn webhook_from(c: &Cols<'_>) -> StoreResult<ConsentWebhook> {
    let secrets = c.text("sealed_secrets")?;
    Ok(ConsentWebhook {
        id: c.uuid("id")?,
        app_id: c.uuid("app_id")?,
        url: c.text("url")?,
        sealed_secrets: serde_json::from_str(&secrets).map_err(|e| corrupt("sealed_secrets", e))?,
        created_at: c.time("created_at")?,
        cursor: c.int("cursor")?,
    })
}

fn delivery_from(c: &Cols<'_>) -> StoreResult<WebhookDelivery> {
    let status = c.opt_int("last_status")?;
    Ok(WebhookDelivery {
        id: c.uuid("id")?,
        webhook_id: c.uuid("webhook_id")?,
        event_seq: c.int("event_seq")?,
        kind: c.text("type")?,
        payload: c.text("payload")?,
        created_at: c.time("created_at")?,
        next_attempt_at: c.opt_time("next_attempt_at")?,
        attempts: c.u32("attempts")?,
        last_status: status.map(|s| u16::try_from(s).map_err(|_| corrupt("last_status", s))).transpose()?,
        last_error: c.opt_text("last_error")?,
        delivered_at: c.opt_time("delivered_at")?,
    })
}

fn event_from(c: &Cols<'_>) -> StoreResult<ConsentEvent> {
    Ok(ConsentEvent {
        seq: c.int("seq")?,
        tenant_id: c.uuid("tenant_id")?,
        app_id: c.uuid("app_id")?,
        kind: c.text("type")?,
        data: c.text("data")?,
        at: c.time("at")?,
    })
}

impl SqlStore {
    // --- the journal (inside `apply`) ---

    async fn journal_consent(
        &self,
        c: &mut AnyConnection,
        tenant_id: TenantId,
        app_id: &str,
        kind: &str,
        data: Value,
    ) -> StoreResult<()> {
        if self.inner.backend == Backend::Postgres {
            self.execute(&mut *c, sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(JOURNAL_LOCK))
                .await
                .map_err(db_err)?;
        }
        let q =
            sqlx::query("INSERT INTO consent_events (tenant_id, app_id, type, data, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id(tenant_id))
                .bind(app_id.to_string())
                .bind(kind.to_string())
                .bind(data.to_string())
                .bind(micros(accord_core::clock::now()));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        Ok(())
    }

    /// The app id of a service principal of the tenant.
    async fn app_of_sp(&self, c: &mut AnyConnection, tenant_id: TenantId, sp_id: Uuid) -> StoreResult<Option<String>> {
        let q = sqlx::query("SELECT app_id FROM service_principals WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant_id))
            .bind(id(sp_id));
        match self.fetch_optional(&mut *c, q).await.map_err(db_err)? {
            Some(row) => Ok(Some(Cols(&row).text("app_id")?)),
            None => Ok(None),
        }
    }

    /// Before a grant is written: `consent.granted` (new) or `consent.changed` (other scopes).
    pub(super) async fn journal_grant_put(&self, c: &mut AnyConnection, g: &DelegatedGrant) -> StoreResult<()> {
        let q = sqlx::query("SELECT scopes FROM delegated_grants WHERE tenant_id = $1 AND id = $2")
            .bind(id(g.tenant_id))
            .bind(id(g.id));
        let before: Option<Vec<String>> = match self.fetch_optional(&mut *c, q).await.map_err(db_err)? {
            Some(row) => {
                let text = Cols(&row).text("scopes")?;
                Some(serde_json::from_str(&text).map_err(|e| corrupt("scopes", e))?)
            }
            None => None,
        };
        if before.as_ref() == Some(&g.scopes) {
            return Ok(());
        }
        let Some(app) = self.app_of_sp(c, g.tenant_id, g.client_sp_id.into()).await? else { return Ok(()) };
        let kind = if before.is_some() { "consent.changed" } else { "consent.granted" };
        let data = json!({
            "grantId": g.id, "permissionType": "delegated",
            "consentType": match g.consent_type { ConsentType::AllPrincipals => "AllPrincipals", ConsentType::Principal => "Principal" },
            "principalId": g.principal_id, "resourceId": g.resource_sp_id, "scopes": g.scopes, "previousScopes": before,
            "expiresDateTime": g.expires_at.map(|t| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()),
        });
        self.journal_consent(c, g.tenant_id, &app, kind, data).await
    }

    /// Before a grant is deleted: `consent.revoked`.
    pub(super) async fn journal_grant_delete(
        &self,
        c: &mut AnyConnection,
        tenant_id: TenantId,
        grant_id: Uuid,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "SELECT client_sp_id, resource_sp_id, consent_type, principal_id, scopes FROM delegated_grants \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(id(tenant_id))
        .bind(id(grant_id));
        let Some(row) = self.fetch_optional(&mut *c, q).await.map_err(db_err)? else { return Ok(()) };
        let cols = Cols(&row);
        let client: Uuid = cols.uuid("client_sp_id")?;
        let scopes: Vec<String> = serde_json::from_str(&cols.text("scopes")?).map_err(|e| corrupt("scopes", e))?;
        let data = json!({
            "grantId": grant_id, "permissionType": "delegated", "consentType": cols.text("consent_type")?,
            "principalId": cols.opt_text("principal_id")?, "resourceId": cols.text("resource_sp_id")?, "scopes": scopes,
        });
        let Some(app) = self.app_of_sp(c, tenant_id, client).await? else { return Ok(()) };
        self.journal_consent(c, tenant_id, &app, "consent.revoked", data).await
    }

    /// Before an app role assignment is written: an application permission granted to an app
    /// (`consent.granted`), or a user or group assigned to one (`assignment.added`).
    pub(super) async fn journal_assignment_put(&self, c: &mut AnyConnection, a: &AppRoleAssignment) -> StoreResult<()> {
        let q = sqlx::query("SELECT 1 AS one FROM app_role_assignments WHERE tenant_id = $1 AND id = $2")
            .bind(id(a.tenant_id))
            .bind(id(a.id));
        if self.fetch_optional(&mut *c, q).await.map_err(db_err)?.is_some() {
            return Ok(());
        }
        self.journal_assignment(
            c,
            a.tenant_id,
            a.id,
            a.principal_id,
            a.principal_type,
            a.resource_sp_id.into(),
            a.app_role_id,
            true,
        )
        .await
    }

    /// Before an app role assignment is deleted: `consent.revoked` or `assignment.removed`.
    pub(super) async fn journal_assignment_delete(
        &self,
        c: &mut AnyConnection,
        tenant_id: TenantId,
        assignment_id: Uuid,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "SELECT principal_id, principal_type, resource_sp_id, app_role_id FROM app_role_assignments \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(id(tenant_id))
        .bind(id(assignment_id));
        let Some(row) = self.fetch_optional(&mut *c, q).await.map_err(db_err)? else { return Ok(()) };
        let cols = Cols(&row);
        let principal_type = super::codec::principal_type("principal_type", &cols.text("principal_type")?)?;
        let (principal, resource, role) =
            (cols.uuid("principal_id")?, cols.uuid("resource_sp_id")?, cols.uuid("app_role_id")?);
        self.journal_assignment(c, tenant_id, assignment_id, principal, principal_type, resource, role, false).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn journal_assignment(
        &self,
        c: &mut AnyConnection,
        tenant_id: TenantId,
        assignment_id: Uuid,
        principal_id: Uuid,
        principal_type: PrincipalType,
        resource_sp_id: Uuid,
        app_role_id: Uuid,
        added: bool,
    ) -> StoreResult<()> {
        let (subject_sp, kind) = match (principal_type, added) {
            (PrincipalType::ServicePrincipal, true) => (principal_id, "consent.granted"),
            (PrincipalType::ServicePrincipal, false) => (principal_id, "consent.revoked"),
            (_, true) => (resource_sp_id, "assignment.added"),
            (_, false) => (resource_sp_id, "assignment.removed"),
        };
        let Some(app) = self.app_of_sp(c, tenant_id, subject_sp).await? else { return Ok(()) };
        let data = match principal_type {
            PrincipalType::ServicePrincipal => json!({
                "assignmentId": assignment_id, "permissionType": "application", "resourceId": resource_sp_id, "appRoleId": app_role_id,
            }),
            PrincipalType::User | PrincipalType::Group => json!({
                "assignmentId": assignment_id, "principalId": principal_id,
                "principalType": if principal_type == PrincipalType::User { "User" } else { "Group" },
                "appRoleId": app_role_id,
            }),
        };
        self.journal_consent(c, tenant_id, &app, kind, data).await
    }

    /// Before an app registration is written: `app.permissions_changed` when the permissions it
    /// asks for (its static list) change — customers who consented before lack what was added
    /// (consent coverage). Told to the app's own webhooks, as an event of its home tenant.
    pub(super) async fn journal_app_put(&self, c: &mut AnyConnection, a: &Application) -> StoreResult<()> {
        let q = sqlx::query("SELECT required_resource_access FROM applications WHERE app_id = $1").bind(id(a.app_id));
        let Some(row) = self.fetch_optional(&mut *c, q).await.map_err(db_err)? else { return Ok(()) };
        let before: Vec<RequiredResourceAccess> = serde_json::from_str(&Cols(&row).text("required_resource_access")?)
            .map_err(|e| corrupt("required_resource_access", e))?;
        let listed = |list: &[RequiredResourceAccess]| -> Vec<String> {
            let mut out: Vec<String> = list
                .iter()
                .flat_map(|r| {
                    let d = r.delegated.iter().map(move |p| format!("{}/{p} (delegated)", r.resource_app_id));
                    let a = r.application.iter().map(move |p| format!("{}/{p} (application)", r.resource_app_id));
                    d.chain(a)
                })
                .collect();
            out.sort();
            out
        };
        let (old, new) = (listed(&before), listed(&a.required));
        if old == new {
            return Ok(());
        }
        let data = json!({
            "added": new.iter().filter(|p| !old.contains(p)).collect::<Vec<_>>(),
            "removed": old.iter().filter(|p| !new.contains(p)).collect::<Vec<_>>(),
            "requiredResourceAccess": a.required.iter().map(|r| json!({
                "resourceAppId": r.resource_app_id, "delegated": r.delegated, "application": r.application,
            })).collect::<Vec<_>>(),
        });
        self.journal_consent(c, a.home_tenant_id, &id(a.app_id), "app.permissions_changed", data).await
    }

    /// Before a service principal is written: `app.disabled` / `app.enabled` when that changes.
    pub(super) async fn journal_sp_put(&self, c: &mut AnyConnection, sp: &ServicePrincipal) -> StoreResult<()> {
        let q = sqlx::query("SELECT enabled FROM service_principals WHERE tenant_id = $1 AND id = $2")
            .bind(id(sp.tenant_id))
            .bind(id(sp.id));
        let Some(row) = self.fetch_optional(&mut *c, q).await.map_err(db_err)? else { return Ok(()) };
        if Cols(&row).flag("enabled")? == sp.enabled {
            return Ok(());
        }
        let kind = if sp.enabled { "app.enabled" } else { "app.disabled" };
        self.journal_consent(c, sp.tenant_id, &id(sp.app_id), kind, json!({"servicePrincipalId": sp.id})).await
    }

    /// Before a tenant's enterprise app is deleted: `app.deleted` (its grants and assignments go
    /// with it).
    pub(super) async fn journal_sp_delete(
        &self,
        c: &mut AnyConnection,
        tenant_id: TenantId,
        app_id: AppId,
        sp_id: accord_core::ids::ServicePrincipalId,
    ) -> StoreResult<()> {
        self.journal_consent(c, tenant_id, &id(app_id), "app.deleted", json!({"servicePrincipalId": sp_id})).await
    }

    /// Admin-consent requests: `consent_request.filed` for a new one (`decided` false), or its
    /// outcome once decided.
    pub(super) async fn journal_consent_request(
        &self,
        c: &mut AnyConnection,
        r: &ConsentRequest,
        decided: bool,
    ) -> StoreResult<()> {
        let kind = if decided {
            match (r.status, r.result) {
                (RequestStatus::Expired, _) => "consent_request.expired",
                (_, ReviewResult::Approved) => "consent_request.approved",
                (_, ReviewResult::Denied) => "consent_request.denied",
                (_, ReviewResult::Blocked) => "consent_request.blocked",
                _ => return Ok(()),
            }
        } else {
            let q = sqlx::query("SELECT 1 AS one FROM consent_requests WHERE tenant_id = $1 AND id = $2")
                .bind(id(r.tenant_id))
                .bind(id(r.id));
            if self.fetch_optional(&mut *c, q).await.map_err(db_err)?.is_some() {
                return Ok(());
            }
            "consent_request.filed"
        };
        let data = json!({"requestId": r.id, "userId": r.user_id, "reason": r.reason, "justification": r.review_justification});
        self.journal_consent(c, r.tenant_id, &id(r.client_app_id), kind, data).await
    }

    // --- webhooks (inside `apply`) ---

    pub(super) async fn put_consent_webhook(&self, c: &mut AnyConnection, w: &ConsentWebhook) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO consent_webhooks (id, app_id, url, sealed_secrets, created_at, cursor) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET url = excluded.url, \
             sealed_secrets = excluded.sealed_secrets WHERE consent_webhooks.app_id = excluded.app_id",
        )
        .bind(id(w.id))
        .bind(id(w.app_id))
        .bind(w.url.as_str())
        .bind(to_json(&w.sealed_secrets)?)
        .bind(micros(w.created_at))
        .bind(w.cursor);
        self.execute(&mut *c, q).await.map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn delete_consent_webhook(
        &self,
        c: &mut AnyConnection,
        app_id: AppId,
        webhook: Uuid,
    ) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM consent_webhooks WHERE id = $1 AND app_id = $2")
            .bind(id(webhook))
            .bind(id(app_id));
        if self.execute(&mut *c, q).await.map_err(db_err)?.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("webhook {webhook} of app {app_id}")));
        }
        let q = sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1").bind(id(webhook));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn enqueue_webhook_deliveries(
        &self,
        c: &mut AnyConnection,
        webhook: Uuid,
        from: i64,
        to: i64,
        deliveries: &[WebhookDelivery],
    ) -> StoreResult<()> {
        let q = sqlx::query("UPDATE consent_webhooks SET cursor = $1 WHERE id = $2 AND cursor = $3")
            .bind(to)
            .bind(id(webhook))
            .bind(from);
        if self.execute(&mut *c, q).await.map_err(db_err)?.rows_affected() == 0 {
            return Err(StoreError::Stale(format!("webhook {webhook}'s outbox moved past event {from}")));
        }
        let sql = format!(
            "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        for d in deliveries {
            let q = sqlx::query(&sql)
                .bind(id(d.id))
                .bind(id(d.webhook_id))
                .bind(d.event_seq)
                .bind(d.kind.as_str())
                .bind(d.payload.as_str())
                .bind(micros(d.created_at))
                .bind(d.next_attempt_at.map(micros))
                .bind(i64::from(d.attempts))
                .bind(d.last_status.map(i64::from))
                .bind(d.last_error.as_deref())
                .bind(d.delivered_at.map(micros));
            self.execute(&mut *c, q)
                .await
                .map_err(|e| write_err(e, |_| format!("event {} already queued", d.event_seq)))?;
        }
        Ok(())
    }

    // --- reads and the outbox's bookkeeping ---

    pub(super) async fn read_consent_event_watermark(&self) -> StoreResult<i64> {
        let q = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM consent_events");
        let row = self.fetch_optional(self.pool(), q).await.map_err(db_err)?;
        row.map(|r| Cols(&r).int("seq")).transpose().map(Option::unwrap_or_default)
    }

    pub(super) async fn read_consent_events_after(
        &self,
        app: AppId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<ConsentEvent>> {
        let q = sqlx::query(
            "SELECT seq, tenant_id, app_id, type, data, at FROM consent_events WHERE app_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(id(app))
        .bind(after)
        .bind(i64::from(limit));
        self.read_all(q, event_from).await
    }

    pub(super) async fn read_consent_events_since(
        &self,
        tenant_id: TenantId,
        app: AppId,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<ConsentEvent>> {
        let q = sqlx::query(
            "SELECT seq, tenant_id, app_id, type, data, at FROM consent_events \
             WHERE app_id = $1 AND tenant_id = $2 AND at > $3 ORDER BY seq LIMIT $4",
        )
        .bind(id(app))
        .bind(id(tenant_id))
        .bind(micros(since))
        .bind(i64::from(limit));
        self.read_all(q, event_from).await
    }

    pub(super) async fn read_consent_webhook(&self, webhook: Uuid) -> StoreResult<Option<ConsentWebhook>> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM consent_webhooks WHERE id = $1");
        self.read_one(sqlx::query(&sql).bind(id(webhook)), webhook_from).await
    }

    pub(super) async fn read_consent_webhooks(&self, app: Option<AppId>) -> StoreResult<Vec<ConsentWebhook>> {
        match app {
            Some(app) => {
                let sql =
                    format!("SELECT {WEBHOOK_COLUMNS} FROM consent_webhooks WHERE app_id = $1 ORDER BY created_at, id");
                self.read_all(sqlx::query(&sql).bind(id(app)), webhook_from).await
            }
            None => {
                let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM consent_webhooks ORDER BY created_at, id");
                self.read_all(sqlx::query(&sql), webhook_from).await
            }
        }
    }

    pub(super) async fn read_due_webhook_deliveries(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, event_seq LIMIT $2"
        );
        self.read_all(sqlx::query(&sql).bind(micros(now)).bind(i64::from(limit)), delivery_from).await
    }

    pub(super) async fn claim_delivery(
        &self,
        d: Uuid,
        seen: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool> {
        let q =
            sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3")
                .bind(micros(until))
                .bind(id(d))
                .bind(micros(seen));
        Ok(self.execute(self.pool(), q).await.map_err(db_err)?.rows_affected() == 1)
    }

    pub(super) async fn write_webhook_attempt(&self, d: &WebhookDelivery) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = $1, attempts = $2, last_status = $3, last_error = $4, \
             delivered_at = $5 WHERE id = $6",
        )
        .bind(d.next_attempt_at.map(micros))
        .bind(i64::from(d.attempts))
        .bind(d.last_status.map(i64::from))
        .bind(d.last_error.as_deref())
        .bind(d.delivered_at.map(micros))
        .bind(id(d.id));
        self.execute(self.pool(), q).await.map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn read_webhook_deliveries(&self, webhook: Uuid, limit: u32) -> StoreResult<Vec<WebhookDelivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, event_seq DESC LIMIT $2"
        );
        self.read_all(sqlx::query(&sql).bind(id(webhook)).bind(i64::from(limit)), delivery_from).await
    }

    /// Journal entries and deliveries older than 30 days.
    pub(super) async fn purge_consent_webhooks(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let before = micros(now - time::Duration::days(30));
        let mut purged = 0;
        let q = sqlx::query("DELETE FROM webhook_deliveries WHERE next_attempt_at IS NULL AND created_at < $1")
            .bind(before);
        purged += self.execute(self.pool(), q).await.map_err(db_err)?.rows_affected();
        let q = sqlx::query("DELETE FROM consent_events WHERE at < $1").bind(before);
        purged += self.execute(self.pool(), q).await.map_err(db_err)?.rows_affected();
        Ok(purged)
    }
}
