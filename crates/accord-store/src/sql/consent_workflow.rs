//! What consent leaves behind besides grants: admin-consent requests, delegated permission
//! classifications, the audit log, the notification outbox and single-use values.
//!
//! The first four are tenant-owned (keyed by `(tenant_id, id)`, every tenant read filters by
//! `tenant_id`); the expiry job's and the delivery loop's reads go across tenants on purpose.
//! Writes arrive through [`Store::apply`](crate::Store::apply), in its transaction, except the
//! delivery bookkeeping ([`SqlStore::update_notification`]) and [`SqlStore::insert_once`].

use accord_core::consent_records::*;
use accord_core::ids::{AppId, ServicePrincipalId, TenantId};
use sqlx::AnyConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::codec::{self, id, micros, to_json, Cols};
use super::group_commit::{placeholders, Write};
use super::{db_err, write_err, SqlStore};
use crate::{AuditQuery, StoreError, StoreResult};

// --- consent requests ---

const REQUEST_COLUMNS: &str = "tenant_id, id, client_app_id, user_id, reason, permissions, status, result, \
     reviewed_by, review_justification, created_at, reviewed_at, completed_at, expires_at";

fn request_from(c: &Cols<'_>) -> StoreResult<ConsentRequest> {
    Ok(ConsentRequest {
        tenant_id: c.uuid("tenant_id")?,
        id: c.uuid("id")?,
        client_app_id: c.uuid("client_app_id")?,
        user_id: c.uuid("user_id")?,
        reason: c.text("reason")?,
        permissions: c.json("permissions")?,
        status: codec::request_status("status", &c.text("status")?)?,
        result: codec::review_result("result", &c.text("result")?)?,
        reviewed_by: c.opt_uuid("reviewed_by")?,
        review_justification: c.opt_text("review_justification")?,
        created_at: c.time("created_at")?,
        reviewed_at: c.opt_time("reviewed_at")?,
        completed_at: c.opt_time("completed_at")?,
        expires_at: c.time("expires_at")?,
    })
}

// --- permission classifications ---

const CLASSIFICATION_COLUMNS: &str = "tenant_id, id, resource_sp_id, permission_id, permission_value, classification";

fn classification_from(c: &Cols<'_>) -> StoreResult<PermissionClassification> {
    Ok(PermissionClassification {
        tenant_id: c.uuid("tenant_id")?,
        id: c.uuid("id")?,
        resource_sp_id: c.uuid("resource_sp_id")?,
        permission_id: c.uuid("permission_id")?,
        permission_value: c.text("permission_value")?,
        classification: c.text("classification")?,
    })
}

// --- audit ---

const AUDIT_COLUMNS: &str = "tenant_id, id, at, actor_id, actor, action, app_id, detail";

fn audit_from(c: &Cols<'_>) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        tenant_id: c.uuid("tenant_id")?,
        id: c.uuid("id")?,
        at: c.time("at")?,
        actor_id: c.opt_uuid("actor_id")?,
        actor: c.text("actor")?,
        action: c.text("action")?,
        app_id: c.opt_uuid("app_id")?,
        detail: c.json("detail")?,
    })
}

// --- notifications ---

const NOTIFICATION_COLUMNS: &str = "tenant_id, id, recipient_user_id, recipient_address, kind, subject, body, \
     created_at, sent_at, attempts, last_error";

fn notification_from(c: &Cols<'_>) -> StoreResult<Notification> {
    Ok(Notification {
        tenant_id: c.uuid("tenant_id")?,
        id: c.uuid("id")?,
        recipient_user_id: c.uuid("recipient_user_id")?,
        recipient_address: c.text("recipient_address")?,
        kind: c.text("kind")?,
        subject: c.text("subject")?,
        body: c.text("body")?,
        created_at: c.time("created_at")?,
        sent_at: c.opt_time("sent_at")?,
        attempts: c.u32("attempts")?,
        last_error: c.opt_text("last_error")?,
    })
}

/// Single-use markers, `VALUES {}` one or many: a key already there is left as it is.
const MARKER_INSERT: &str = "INSERT INTO used_once (key_hash, expires_at) VALUES {} ON CONFLICT (key_hash) DO NOTHING";

/// The one-row marker insert (the same text every time: prepared once a connection).
static MARKER_INSERT_ONE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| MARKER_INSERT.replace("{}", &placeholders(1, 2)));

/// The insert of `rows` markers that names the keys that went in (group commit).
pub(super) fn marker_insert_returning_sql(rows: usize) -> String {
    format!("{} RETURNING key_hash", MARKER_INSERT.replace("{}", &placeholders(rows, 2)))
}

impl SqlStore {
    // --- writes inside Store::apply's transaction ---

    pub(super) async fn put_consent_request(&self, c: &mut AnyConnection, r: &ConsentRequest) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO consent_requests (tenant_id, id, client_app_id, user_id, reason, permissions, status, \
             result, reviewed_by, review_justification, created_at, reviewed_at, completed_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET client_app_id = excluded.client_app_id, \
             user_id = excluded.user_id, reason = excluded.reason, permissions = excluded.permissions, \
             status = excluded.status, result = excluded.result, reviewed_by = excluded.reviewed_by, \
             review_justification = excluded.review_justification, created_at = excluded.created_at, \
             reviewed_at = excluded.reviewed_at, completed_at = excluded.completed_at, \
             expires_at = excluded.expires_at",
        )
        .bind(id(r.tenant_id))
        .bind(id(r.id))
        .bind(id(r.client_app_id))
        .bind(id(r.user_id))
        .bind(r.reason.as_str())
        .bind(to_json(&r.permissions)?)
        .bind(codec::request_status_str(r.status))
        .bind(codec::review_result_str(r.result))
        .bind(r.reviewed_by.map(id))
        .bind(r.review_justification.as_deref())
        .bind(micros(r.created_at))
        .bind(r.reviewed_at.map(micros))
        .bind(r.completed_at.map(micros))
        .bind(micros(r.expires_at));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        Ok(())
    }

    /// A decision, written only over an in-progress request (see `Change::DecideConsentRequest`).
    pub(super) async fn decide_consent_request(&self, c: &mut AnyConnection, r: &ConsentRequest) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE consent_requests SET status = $3, result = $4, reviewed_by = $5, review_justification = $6, \
             reviewed_at = $7, completed_at = $8 WHERE tenant_id = $1 AND id = $2 AND status = $9",
        )
        .bind(id(r.tenant_id))
        .bind(id(r.id))
        .bind(codec::request_status_str(r.status))
        .bind(codec::review_result_str(r.result))
        .bind(r.reviewed_by.map(id))
        .bind(r.review_justification.as_deref())
        .bind(r.reviewed_at.map(micros))
        .bind(r.completed_at.map(micros))
        .bind(codec::request_status_str(RequestStatus::InProgress));
        if self.execute(&mut *c, q).await.map_err(db_err)?.rows_affected() == 1 {
            return Ok(());
        }
        let q = sqlx::query("SELECT 1 AS one FROM consent_requests WHERE tenant_id = $1 AND id = $2")
            .bind(id(r.tenant_id))
            .bind(id(r.id));
        match self.fetch_optional(&mut *c, q).await.map_err(db_err)? {
            Some(_) => Err(StoreError::Stale(format!("consent request {} was decided by another write", r.id))),
            None => Err(StoreError::NotFound(format!("consent request {}", r.id))),
        }
    }

    /// Upsert by id; another id for the same (resource, permission) is a conflict.
    pub(super) async fn put_permission_classification(
        &self,
        c: &mut AnyConnection,
        p: &PermissionClassification,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO permission_classifications (tenant_id, id, resource_sp_id, permission_id, \
             permission_value, classification) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET resource_sp_id = excluded.resource_sp_id, \
             permission_id = excluded.permission_id, permission_value = excluded.permission_value, \
             classification = excluded.classification",
        )
        .bind(id(p.tenant_id))
        .bind(id(p.id))
        .bind(id(p.resource_sp_id))
        .bind(id(p.permission_id))
        .bind(p.permission_value.as_str())
        .bind(p.classification.as_str());
        self.execute(&mut *c, q).await.map_err(|e| {
            write_err(e, |_| {
                format!(
                    "permission {} ({}) of service principal {} is already classified in tenant {}",
                    p.permission_value, p.permission_id, p.resource_sp_id, p.tenant_id
                )
            })
        })?;
        Ok(())
    }

    pub(super) async fn delete_permission_classification(
        &self,
        c: &mut AnyConnection,
        tenant_id: TenantId,
        classification_id: Uuid,
    ) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM permission_classifications WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant_id))
            .bind(id(classification_id));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        Ok(())
    }

    /// Insert only: the log is never rewritten, so an id already present is a conflict.
    pub(super) async fn append_audit(&self, c: &mut AnyConnection, e: &AuditEvent) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO audit_events (tenant_id, id, at, actor_id, actor, action, app_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id(e.tenant_id))
        .bind(id(e.id))
        .bind(micros(e.at))
        .bind(e.actor_id.map(id))
        .bind(e.actor.as_str())
        .bind(e.action.as_str())
        .bind(e.app_id.map(id))
        .bind(to_json(&e.detail)?);
        self.execute(&mut *c, q).await.map_err(|err| {
            write_err(err, |_| {
                format!("audit event {} already exists in tenant {} (the audit log is append-only)", e.id, e.tenant_id)
            })
        })?;
        Ok(())
    }

    /// Insert only: an outbox entry is created once and then changed by delivery alone, so an
    /// id already queued is a conflict (re-queuing could reset a delivered message).
    pub(super) async fn enqueue_notification(&self, c: &mut AnyConnection, n: &Notification) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO notifications (tenant_id, id, recipient_user_id, recipient_address, kind, subject, body, \
             created_at, sent_at, attempts, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id(n.tenant_id))
        .bind(id(n.id))
        .bind(id(n.recipient_user_id))
        .bind(n.recipient_address.as_str())
        .bind(n.kind.as_str())
        .bind(n.subject.as_str())
        .bind(n.body.as_str())
        .bind(micros(n.created_at))
        .bind(n.sent_at.map(micros))
        .bind(i64::from(n.attempts))
        .bind(n.last_error.as_deref());
        self.execute(&mut *c, q).await.map_err(|e| {
            write_err(e, |_| format!("notification {} is already queued in tenant {}", n.id, n.tenant_id))
        })?;
        Ok(())
    }

    // --- consent requests ---

    pub(super) async fn get_consent_request(
        &self,
        tenant_id: TenantId,
        request_id: Uuid,
    ) -> StoreResult<Option<ConsentRequest>> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM consent_requests WHERE tenant_id = $1 AND id = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(id(request_id)), request_from).await
    }

    /// Newest first; ties (same `created_at`) by id.
    pub(super) async fn list_consent_requests(
        &self,
        tenant_id: TenantId,
        client_app_id: Option<AppId>,
    ) -> StoreResult<Vec<ConsentRequest>> {
        let filter = if client_app_id.is_some() { " AND client_app_id = $2" } else { "" };
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM consent_requests WHERE tenant_id = $1{filter} ORDER BY created_at DESC, id"
        );
        let mut q = sqlx::query(&sql).bind(id(tenant_id));
        if let Some(app) = client_app_id {
            q = q.bind(id(app));
        }
        self.read_all(q, request_from).await
    }

    /// Across tenants, soonest expiry first.
    pub(super) async fn list_expired_consent_requests(&self, now: OffsetDateTime) -> StoreResult<Vec<ConsentRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM consent_requests WHERE status = $1 AND expires_at <= $2 \
             ORDER BY expires_at, tenant_id, id"
        );
        let q = sqlx::query(&sql).bind(codec::request_status_str(RequestStatus::InProgress)).bind(micros(now));
        self.read_all(q, request_from).await
    }

    // --- permission classifications ---

    pub(super) async fn list_permission_classifications(
        &self,
        tenant_id: TenantId,
        resource_sp_id: ServicePrincipalId,
    ) -> StoreResult<Vec<PermissionClassification>> {
        let sql = format!(
            "SELECT {CLASSIFICATION_COLUMNS} FROM permission_classifications WHERE tenant_id = $1 \
             AND resource_sp_id = $2 ORDER BY permission_value, id"
        );
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)).bind(id(resource_sp_id)), classification_from).await
    }

    // --- audit ---

    /// Newest first (ties by id), narrowed in the query itself so that a page reads only its
    /// rows (the `(tenant_id, at)` and `(tenant_id, app_id, at)` indexes serve it).
    pub(super) async fn list_audit_events(
        &self,
        tenant_id: TenantId,
        query: &AuditQuery,
    ) -> StoreResult<Vec<AuditEvent>> {
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE tenant_id = $1");
        let mut n = 1;
        let mut param = |sql: &mut String, clause: &str| {
            n += 1;
            sql.push_str(&clause.replace('?', &format!("${n}")));
        };
        if query.app_id.is_some() {
            param(&mut sql, " AND app_id = ?");
        }
        if !query.action_prefix.is_empty() {
            // substr, not LIKE: `_` in a prefix (`app_permission.`) must not be a wildcard.
            let len = query.action_prefix.chars().count();
            param(&mut sql, &format!(" AND substr(action, 1, {len}) = ?"));
        }
        if query.from.is_some() {
            param(&mut sql, " AND at >= ?");
        }
        if query.until.is_some() {
            param(&mut sql, " AND at < ?");
        }
        if query.after.is_some() {
            param(&mut sql, " AND (at < ?");
            param(&mut sql, " OR (at = ?");
            param(&mut sql, " AND id > ?))");
        }
        param(&mut sql, " ORDER BY at DESC, id LIMIT ?");
        let mut q = sqlx::query(&sql).bind(id(tenant_id));
        if let Some(app) = query.app_id {
            q = q.bind(id(app));
        }
        if !query.action_prefix.is_empty() {
            q = q.bind(query.action_prefix.as_str());
        }
        for bound in [query.from, query.until].into_iter().flatten() {
            q = q.bind(micros(bound));
        }
        if let Some(after) = query.after {
            q = q.bind(micros(after.at)).bind(micros(after.at)).bind(id(after.id));
        }
        self.read_all(q.bind(i64::from(query.limit)), audit_from).await
    }

    pub(super) async fn read_audit_event(&self, tenant_id: TenantId, event: Uuid) -> StoreResult<Option<AuditEvent>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE tenant_id = $1 AND id = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(id(event)), audit_from).await
    }

    // --- notifications ---

    pub(super) async fn list_notifications(&self, tenant_id: TenantId) -> StoreResult<Vec<Notification>> {
        let sql =
            format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE tenant_id = $1 ORDER BY created_at, id");
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)), notification_from).await
    }

    /// Across tenants, not given up, oldest first, at most `limit`.
    pub(super) async fn list_unsent_notifications(
        &self,
        max_attempts: u32,
        limit: u32,
    ) -> StoreResult<Vec<Notification>> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE sent_at IS NULL AND attempts < $1 \
             ORDER BY created_at, tenant_id, id LIMIT $2"
        );
        let q = sqlx::query(&sql).bind(i64::from(max_attempts)).bind(i64::from(limit));
        self.read_all(q, notification_from).await
    }

    /// `sent_at` given: delivered (the attempt count and last error stay as they were).
    /// Otherwise a failed attempt: one more attempt, and `error` becomes the last error.
    pub(super) async fn update_notification(
        &self,
        tenant_id: TenantId,
        notification_id: Uuid,
        sent_at: Option<OffsetDateTime>,
        error: Option<&str>,
    ) -> StoreResult<()> {
        let q = match sent_at {
            Some(sent_at) => sqlx::query("UPDATE notifications SET sent_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(id(tenant_id))
                .bind(id(notification_id))
                .bind(micros(sent_at)),
            None => sqlx::query(
                "UPDATE notifications SET attempts = attempts + 1, last_error = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(id(tenant_id))
            .bind(id(notification_id))
            .bind(error),
        };
        let done = self.execute(self.pool(), q).await.map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("notification {notification_id} in tenant {tenant_id}")));
        }
        Ok(())
    }

    // --- single-use values ---

    /// One statement: the row goes in unless the key is already there (then nothing changes and
    /// the answer is false). Concurrent callers with one key: exactly one gets true.
    pub(super) async fn insert_once(&self, key_hash: &str, expires_at: OffsetDateTime) -> StoreResult<bool> {
        let write = Write::Once { key_hash: key_hash.to_string(), expires_at };
        match self.group_commit(write).await {
            Some(won) => won,
            None => self.insert_once_now(key_hash, expires_at).await,
        }
    }

    /// [`Self::insert_once`] as its own statement (see `sql/group_commit.rs`).
    pub(super) async fn insert_once_now(&self, key_hash: &str, expires_at: OffsetDateTime) -> StoreResult<bool> {
        let q = sqlx::query(MARKER_INSERT_ONE.as_str()).bind(key_hash).bind(micros(expires_at));
        match self.execute(self.pool(), q).await {
            Ok(done) => Ok(done.rows_affected() == 1),
            // Not expected with ON CONFLICT DO NOTHING, but a unique violation means the same.
            Err(e) => match write_err(e, |detail| detail.to_string()) {
                StoreError::Conflict(_) => Ok(false),
                other => Err(other),
            },
        }
    }
}
