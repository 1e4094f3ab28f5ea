//! Calendar sync: the change journal behind delta queries, change-notification subscriptions and
//! their outbox.
//!
//! Every event write journals itself here, in the writer's transaction ([`SqlStore::journal_event`]):
//! one row per event with its latest change, numbered from one sequence. Numbers must become
//! visible in order, or a delta round could end past a change still uncommitted and miss it:
//! SQLite has one writer at a time; on PostgreSQL the writer first takes a transaction-scoped
//! advisory lock per tenant, so calendar writes within a tenant commit in number order.

use accord_core::directory::CalendarEvent;
use accord_core::ids::{AppId, TenantId, UserId};
use sqlx::AnyConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::codec::{corrupt, id, micros, Cols};
use super::directory::{event_from, EVENT_COLUMNS};
use super::{db_err, write_err, Backend, SqlStore};
use crate::{
    CalendarChange, GraphNotification, GraphNotificationKind, GraphSubscription, StoreResult, SubscriptionStatus,
    CALENDAR_CHANGE_RETENTION_DAYS,
};

/// The advisory-lock key of a tenant's calendar journal (PostgreSQL): the id's first 8 bytes.
fn journal_lock_key(tenant_id: TenantId) -> i64 {
    let bytes = Uuid::from(tenant_id).into_bytes();
    i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"))
}

const SUBSCRIPTION_COLUMNS: &str = "id, tenant_id, client_app_id, creator_id, mailbox_id, resource, change_types, \
     notification_url, lifecycle_url, sealed_client_state, tls_version, permissions, authorized_at, \
     access_expires_at, expires_at, status, noticed_at, created_at";

fn subscription_from(c: &Cols<'_>) -> StoreResult<GraphSubscription> {
    let status = c.text("status")?;
    Ok(GraphSubscription {
        id: c.uuid("id")?,
        tenant_id: c.uuid("tenant_id")?,
        client_app_id: c.uuid("client_app_id")?,
        creator_id: c.opt_text("creator_id")?.map(|s| parse_uuid("creator_id", &s)).transpose()?.map(UserId::from),
        mailbox_id: c.uuid("mailbox_id")?,
        resource: c.text("resource")?,
        change_types: c.text("change_types")?,
        notification_url: c.text("notification_url")?,
        lifecycle_url: c.opt_text("lifecycle_url")?,
        sealed_client_state: c.opt_text("sealed_client_state")?,
        tls_version: c.text("tls_version")?,
        permissions: c.text("permissions")?,
        authorized_at: c.time("authorized_at")?,
        access_expires_at: c.time("access_expires_at")?,
        expires_at: c.time("expires_at")?,
        status: SubscriptionStatus::parse(&status)
            .ok_or_else(|| corrupt("status", format!("unknown subscription status {status:?}")))?,
        noticed_at: c.opt_time("noticed_at")?,
        created_at: c.time("created_at")?,
    })
}

fn parse_uuid(column: &str, s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| corrupt(column, format!("{s:?} is not a UUID: {e}")))
}

const NOTIFICATION_COLUMNS: &str =
    "id, subscription_id, tenant_id, kind, payload, created_at, next_attempt_at, attempts, last_error";

fn notification_from(c: &Cols<'_>) -> StoreResult<GraphNotification> {
    let kind = match c.text("kind")?.as_str() {
        "change" => GraphNotificationKind::Change,
        "lifecycle" => GraphNotificationKind::Lifecycle,
        other => return Err(corrupt("kind", format!("unknown notification kind {other:?}"))),
    };
    Ok(GraphNotification {
        id: c.uuid("id")?,
        subscription_id: c.uuid("subscription_id")?,
        tenant_id: c.uuid("tenant_id")?,
        kind,
        payload: c.text("payload")?,
        created_at: c.time("created_at")?,
        next_attempt_at: c.time("next_attempt_at")?,
        attempts: c.u32("attempts")?,
        last_error: c.opt_text("last_error")?,
    })
}

impl SqlStore {
    // --- the journal (written inside `apply`) ---

    /// Records the latest change of an event: a put, or a delete (`deleted`) of an event that
    /// exists. Runs before the delete itself, which it reads the owner from.
    pub(super) async fn journal_event(
        &self,
        c: &mut AnyConnection,
        tenant_id: TenantId,
        event_id: Uuid,
        owner_id: Option<UserId>,
        deleted: bool,
    ) -> StoreResult<()> {
        if self.inner.backend == Backend::Postgres {
            let q = sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(journal_lock_key(tenant_id));
            self.execute(&mut *c, q).await.map_err(db_err)?;
        }
        let owner = match owner_id {
            Some(owner) => Some(id(owner)),
            None => {
                let q = sqlx::query("SELECT owner_id FROM calendar_events WHERE tenant_id = $1 AND id = $2")
                    .bind(id(tenant_id))
                    .bind(id(event_id));
                match self.fetch_optional(&mut *c, q).await.map_err(db_err)? {
                    Some(row) => Some(Cols(&row).text("owner_id")?),
                    None => None,
                }
            }
        };
        let Some(owner) = owner else { return Ok(()) };
        let q = sqlx::query("DELETE FROM calendar_changes WHERE tenant_id = $1 AND event_id = $2")
            .bind(id(tenant_id))
            .bind(id(event_id));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        let q = sqlx::query(
            "INSERT INTO calendar_changes (tenant_id, owner_id, event_id, deleted, changed_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id(tenant_id))
        .bind(owner)
        .bind(id(event_id))
        .bind(i64::from(deleted))
        .bind(micros(accord_core::clock::now()));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        Ok(())
    }

    // --- delta reads ---

    pub(super) async fn read_calendar_watermark(&self, tenant_id: TenantId, owner_id: UserId) -> StoreResult<i64> {
        let q = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) AS seq FROM calendar_changes WHERE tenant_id = $1 AND owner_id = $2",
        )
        .bind(id(tenant_id))
        .bind(id(owner_id));
        let row = self.fetch_optional(self.pool(), q).await.map_err(db_err)?;
        row.map(|r| Cols(&r).int("seq")).transpose().map(Option::unwrap_or_default)
    }

    pub(super) async fn read_events_page(
        &self,
        tenant_id: TenantId,
        owner_id: UserId,
        (from, to): (OffsetDateTime, OffsetDateTime),
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<CalendarEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM calendar_events WHERE tenant_id = $1 AND owner_id = $2 \
             AND end_at > $3 AND start_at < $4 AND id > $5 ORDER BY id LIMIT $6"
        );
        let q = sqlx::query(&sql)
            .bind(id(tenant_id))
            .bind(id(owner_id))
            .bind(micros(from))
            .bind(micros(to))
            .bind(after.map(id).unwrap_or_default())
            .bind(i64::from(limit));
        self.read_all(q, event_from).await
    }

    pub(super) async fn read_calendar_changes(
        &self,
        tenant_id: TenantId,
        owner_id: UserId,
        since: i64,
        until: i64,
        limit: u32,
    ) -> StoreResult<Vec<CalendarChange>> {
        let q = sqlx::query(
            "SELECT seq, event_id, deleted FROM calendar_changes WHERE tenant_id = $1 AND owner_id = $2 \
             AND seq > $3 AND seq <= $4 ORDER BY seq LIMIT $5",
        )
        .bind(id(tenant_id))
        .bind(id(owner_id))
        .bind(since)
        .bind(until)
        .bind(i64::from(limit));
        let rows: Vec<(i64, Uuid, bool)> =
            self.read_all(q, |c| Ok((c.int("seq")?, c.uuid("event_id")?, c.flag("deleted")?))).await?;
        let live: Vec<Uuid> = rows.iter().filter(|r| !r.2).map(|r| r.1).collect();
        let mut events = std::collections::HashMap::new();
        for chunk in live.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM calendar_events WHERE tenant_id = $1 AND id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(id(tenant_id));
            for e in chunk {
                q = q.bind(id(*e));
            }
            for ev in self.read_all(q, event_from).await? {
                events.insert(ev.id, ev);
            }
        }
        Ok(rows
            .into_iter()
            .map(|(seq, event_id, _)| CalendarChange { seq, event_id, event: events.remove(&event_id) })
            .collect())
    }

    // --- subscriptions ---

    pub(super) async fn put_subscription(&self, c: &mut AnyConnection, s: &GraphSubscription) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO graph_subscriptions (id, tenant_id, client_app_id, creator_id, mailbox_id, resource, \
             change_types, notification_url, lifecycle_url, sealed_client_state, tls_version, permissions, \
             authorized_at, access_expires_at, expires_at, status, noticed_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
             ON CONFLICT (id) DO UPDATE SET change_types = excluded.change_types, \
             notification_url = excluded.notification_url, tls_version = excluded.tls_version, \
             permissions = excluded.permissions, authorized_at = excluded.authorized_at, \
             access_expires_at = excluded.access_expires_at, expires_at = excluded.expires_at, \
             status = excluded.status, noticed_at = excluded.noticed_at \
             WHERE graph_subscriptions.tenant_id = excluded.tenant_id",
        )
        .bind(id(s.id))
        .bind(id(s.tenant_id))
        .bind(id(s.client_app_id))
        .bind(s.creator_id.map(id))
        .bind(id(s.mailbox_id))
        .bind(s.resource.as_str())
        .bind(s.change_types.as_str())
        .bind(s.notification_url.as_str())
        .bind(s.lifecycle_url.as_deref())
        .bind(s.sealed_client_state.as_deref())
        .bind(s.tls_version.as_str())
        .bind(s.permissions.as_str())
        .bind(micros(s.authorized_at))
        .bind(micros(s.access_expires_at))
        .bind(micros(s.expires_at))
        .bind(s.status.as_str())
        .bind(s.noticed_at.map(micros))
        .bind(micros(s.created_at));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn delete_subscription(
        &self,
        c: &mut AnyConnection,
        tenant_id: TenantId,
        subscription_id: Uuid,
    ) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM graph_notifications WHERE tenant_id = $1 AND subscription_id = $2")
            .bind(id(tenant_id))
            .bind(id(subscription_id));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        let q = sqlx::query("DELETE FROM graph_subscriptions WHERE tenant_id = $1 AND id = $2")
            .bind(id(tenant_id))
            .bind(id(subscription_id));
        self.execute(&mut *c, q).await.map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn enqueue_graph_notification(
        &self,
        c: &mut AnyConnection,
        n: &GraphNotification,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO graph_notifications (id, subscription_id, tenant_id, kind, payload, created_at, \
             next_attempt_at, attempts, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id(n.id))
        .bind(id(n.subscription_id))
        .bind(id(n.tenant_id))
        .bind(n.kind.as_str())
        .bind(n.payload.as_str())
        .bind(micros(n.created_at))
        .bind(micros(n.next_attempt_at))
        .bind(i64::from(n.attempts))
        .bind(n.last_error.as_deref());
        self.execute(&mut *c, q)
            .await
            .map_err(|e| write_err(e, |_| format!("notification {} is already queued", n.id)))?;
        Ok(())
    }

    pub(super) async fn get_subscription(
        &self,
        tenant_id: TenantId,
        sub: Uuid,
    ) -> StoreResult<Option<GraphSubscription>> {
        let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM graph_subscriptions WHERE tenant_id = $1 AND id = $2");
        self.read_one(sqlx::query(&sql).bind(id(tenant_id)).bind(id(sub)), subscription_from).await
    }

    pub(super) async fn list_subscriptions_of_mailbox(
        &self,
        tenant_id: TenantId,
        mailbox_id: UserId,
    ) -> StoreResult<Vec<GraphSubscription>> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM graph_subscriptions WHERE tenant_id = $1 AND mailbox_id = $2 \
             ORDER BY created_at, id"
        );
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)).bind(id(mailbox_id)), subscription_from).await
    }

    pub(super) async fn list_subscriptions_of_app(
        &self,
        tenant_id: TenantId,
        app: AppId,
    ) -> StoreResult<Vec<GraphSubscription>> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM graph_subscriptions WHERE tenant_id = $1 AND client_app_id = $2 \
             ORDER BY created_at, id"
        );
        self.read_all(sqlx::query(&sql).bind(id(tenant_id)).bind(id(app)), subscription_from).await
    }

    pub(super) async fn list_live_subscriptions(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<GraphSubscription>> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM graph_subscriptions WHERE status <> 'removed' AND id > $1 \
             ORDER BY id LIMIT $2"
        );
        let q = sqlx::query(&sql).bind(after.map(id).unwrap_or_default()).bind(i64::from(limit));
        self.read_all(q, subscription_from).await
    }

    // --- the outbox ---

    pub(super) async fn list_due_graph_notifications(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<GraphNotification>> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM graph_notifications WHERE next_attempt_at <= $1 \
             ORDER BY next_attempt_at, created_at LIMIT $2"
        );
        self.read_all(sqlx::query(&sql).bind(micros(now)).bind(i64::from(limit)), notification_from).await
    }

    pub(super) async fn claim_notification_attempt(
        &self,
        n: Uuid,
        seen: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool> {
        let q =
            sqlx::query("UPDATE graph_notifications SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3")
                .bind(micros(until))
                .bind(id(n))
                .bind(micros(seen));
        Ok(self.execute(self.pool(), q).await.map_err(db_err)?.rows_affected() == 1)
    }

    pub(super) async fn reschedule_notification(
        &self,
        n: Uuid,
        attempts: u32,
        next: OffsetDateTime,
        error: &str,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "UPDATE graph_notifications SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4",
        )
        .bind(i64::from(attempts))
        .bind(micros(next))
        .bind(error)
        .bind(id(n));
        self.execute(self.pool(), q).await.map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn delete_notification(&self, n: Uuid) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM graph_notifications WHERE id = $1").bind(id(n));
        self.execute(self.pool(), q).await.map_err(db_err)?;
        Ok(())
    }

    // --- housekeeping (with `purge_expired`) ---

    /// Tombstones past the delta tokens' retention; expired subscriptions, and removed ones
    /// whose outbox drained, with what is still queued for them.
    pub(super) async fn purge_calendar_sync(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let retention = time::Duration::days(CALENDAR_CHANGE_RETENTION_DAYS);
        let mut purged = 0;
        let q = sqlx::query("DELETE FROM calendar_changes WHERE deleted = 1 AND changed_at < $1")
            .bind(micros(now - retention));
        purged += self.execute(self.pool(), q).await.map_err(db_err)?.rows_affected();
        let q = sqlx::query(
            "DELETE FROM graph_notifications WHERE subscription_id IN \
             (SELECT id FROM graph_subscriptions WHERE expires_at <= $1)",
        )
        .bind(micros(now));
        purged += self.execute(self.pool(), q).await.map_err(db_err)?.rows_affected();
        let q = sqlx::query(
            "DELETE FROM graph_subscriptions WHERE expires_at <= $1 OR (status = 'removed' AND NOT EXISTS \
             (SELECT 1 FROM graph_notifications n WHERE n.subscription_id = graph_subscriptions.id))",
        )
        .bind(micros(now));
        purged += self.execute(self.pool(), q).await.map_err(db_err)?.rows_affected();
        Ok(purged)
    }
}
