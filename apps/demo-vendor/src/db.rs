//! The vendor app's own SQLite database: customer instances, their known users and synced
//! meetings, browser sessions, and the kit's two stores (admin-consent `state` values and user
//! connections, the latter sealed with AES-256-GCM because refresh tokens are credentials).

use accord_connect::{random_token, ConnectError, StateStore, TokenStore, UserConnection, UserKey};
use anyhow::Context;
use async_trait::async_trait;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    consent_mode TEXT NOT NULL DEFAULT 'pre_authorization',
    tenant_id TEXT,
    tenant_domain TEXT,
    connected_via TEXT,
    connected_at INTEGER,
    app_roles TEXT NOT NULL DEFAULT '',
    tenant_error TEXT,
    last_sync_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS instance_users (
    instance_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    upn TEXT,
    name TEXT,
    signed_in_at INTEGER,
    sync_source TEXT,
    last_sync_at INTEGER,
    last_error TEXT,
    PRIMARY KEY (instance_id, object_id)
);
CREATE TABLE IF NOT EXISTS meetings (
    instance_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    start_at INTEGER NOT NULL,
    end_at INTEGER NOT NULL,
    organizer TEXT,
    location TEXT,
    join_url TEXT,
    attendees INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    PRIMARY KEY (instance_id, object_id, event_id)
);
CREATE TABLE IF NOT EXISTS consent_states (
    state TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    tenant_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    sealed BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, object_id)
);
CREATE TABLE IF NOT EXISTS graph_subscriptions (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    client_state TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    UNIQUE (instance_id, object_id)
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
"#;

/// How a customer instance connects its users' calendars (the guide's two options).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMode {
    /// Option 1: an administrator pre-authorizes the app for all (or some) users.
    PreAuthorization,
    /// Option 2: each user consents, or requests approval, when connecting their calendar.
    UserConsent,
}

impl ConsentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentMode::PreAuthorization => "pre_authorization",
            ConsentMode::UserConsent => "user_consent",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ConsentMode::PreAuthorization => "Pre-authorization",
            ConsentMode::UserConsent => "User consent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pre_authorization" => Some(ConsentMode::PreAuthorization),
            "user_consent" => Some(ConsentMode::UserConsent),
            _ => None,
        }
    }
}

/// A customer organisation of the vendor.
#[derive(Clone, Debug, Serialize)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub mode: ConsentMode,
    /// The customer's tenant, once confirmed (admin consent) or learnt from a validated sign-in.
    pub tenant_id: Option<String>,
    /// A domain of the tenant, from the first signed-in user's name (for display).
    pub tenant_domain: Option<String>,
    /// `admin_consent` or `user_sign_in`.
    pub connected_via: Option<String>,
    pub connected_at: Option<i64>,
    /// Application permissions of the app-only token that confirmed the tenant.
    pub app_roles: Vec<String>,
    /// The last tenant-wide failure, in words.
    pub tenant_error: Option<String>,
    pub last_sync_at: Option<i64>,
}

impl Instance {
    /// Tenant-wide sync with the application permission: Option 1 with `.default`.
    pub fn tenant_wide(&self) -> bool {
        self.mode == ConsentMode::PreAuthorization
            && self.tenant_id.is_some()
            && self.app_roles.iter().any(|r| r == "Calendars.Read" || r == "Calendars.ReadWrite")
    }
}

/// A user of an instance the app knows of (signed in, or listed from the directory).
#[derive(Clone, Debug, Serialize)]
pub struct InstanceUser {
    pub tenant_id: String,
    pub object_id: String,
    pub upn: Option<String>,
    pub name: Option<String>,
    pub signed_in_at: Option<i64>,
    pub sync_source: Option<String>,
    pub last_sync_at: Option<i64>,
    pub last_error: Option<String>,
}

/// A Graph change-notification subscription on one user's calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSubscription {
    pub id: String,
    pub instance_id: String,
    pub tenant_id: String,
    pub object_id: String,
    /// `application` (the app's own token) or `delegated` (the user's).
    pub kind: String,
    pub client_state: String,
    pub expires_at: i64,
}

const SUBSCRIPTION_COLUMNS: &str = "id, instance_id, tenant_id, object_id, kind, client_state, expires_at";

fn subscription_from(r: &sqlx::sqlite::SqliteRow) -> anyhow::Result<PushSubscription> {
    Ok(PushSubscription {
        id: r.try_get("id")?,
        instance_id: r.try_get("instance_id")?,
        tenant_id: r.try_get("tenant_id")?,
        object_id: r.try_get("object_id")?,
        kind: r.try_get("kind")?,
        client_state: r.try_get("client_state")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// A synced meeting.
#[derive(Clone, Debug, Serialize)]
pub struct Meeting {
    pub object_id: String,
    pub event_id: String,
    pub subject: String,
    pub start_at: i64,
    pub end_at: i64,
    pub organizer: Option<String>,
    pub location: Option<String>,
    pub join_url: Option<String>,
    pub attendees: i64,
    pub source: String,
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[derive(Clone)]
pub struct Db {
    pub pool: SqlitePool,
}

impl Db {
    /// Opens (creating) `DATA_DIR/demo-vendor.db` and its schema; seeds the demo's two customer
    /// instances into an empty database.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Db> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let path = data_dir.join("demo-vendor.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await.context("creating the schema")?;
        let db = Db { pool };
        if db.instances().await?.is_empty() {
            db.create_instance("contoso", "Contoso").await?;
            db.create_instance("fabrikam", "Fabrikam").await?;
        }
        Ok(db)
    }

    // ------------------------------------------------------------------ instances

    pub async fn create_instance(&self, id: &str, name: &str) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO instances (id, name, consent_mode, created_at) VALUES (?, ?, 'pre_authorization', ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn instances(&self) -> anyhow::Result<Vec<Instance>> {
        let rows = sqlx::query("SELECT * FROM instances ORDER BY name, id").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(instance_of).collect())
    }

    pub async fn instance(&self, id: &str) -> anyhow::Result<Option<Instance>> {
        let row = sqlx::query("SELECT * FROM instances WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(instance_of))
    }

    pub async fn set_mode(&self, id: &str, mode: ConsentMode) -> anyhow::Result<bool> {
        let done = sqlx::query("UPDATE instances SET consent_mode = ? WHERE id = ?")
            .bind(mode.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the tenant an administrator's consent was confirmed for.
    pub async fn connect_by_admin_consent(&self, id: &str, tenant_id: &str, roles: &[String]) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE instances SET tenant_id = ?, connected_via = 'admin_consent', connected_at = ?, app_roles = ?, \
             tenant_error = NULL WHERE id = ?",
        )
        .bind(tenant_id)
        .bind(now())
        .bind(roles.join(" "))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Binds an instance that has no tenant yet to the tenant of a validated sign-in.
    pub async fn bind_tenant_by_sign_in(&self, id: &str, tenant_id: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE instances SET tenant_id = ?, connected_via = 'user_sign_in', connected_at = ? \
             WHERE id = ? AND tenant_id IS NULL",
        )
        .bind(tenant_id)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_tenant_domain(&self, id: &str, domain: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE instances SET tenant_domain = ? WHERE id = ? AND tenant_domain IS NULL")
            .bind(domain)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_tenant_sync(&self, id: &str, error: Option<&str>) -> anyhow::Result<()> {
        sqlx::query("UPDATE instances SET tenant_error = ?, last_sync_at = ? WHERE id = ?")
            .bind(error)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets an instance's tenant, users and meetings (the support page's "Disconnect").
    pub async fn disconnect(&self, id: &str) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE instances SET tenant_id = NULL, tenant_domain = NULL, connected_via = NULL, connected_at = NULL, \
             app_roles = '', tenant_error = NULL, last_sync_at = NULL WHERE id = ?",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM instance_users WHERE instance_id = ?").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM meetings WHERE instance_id = ?").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    // ------------------------------------------------------------------ users

    /// Adds or updates a user; `signed_in` records a sign-in now.
    pub async fn upsert_user(
        &self,
        instance: &str,
        key: &UserKey,
        upn: Option<&str>,
        name: Option<&str>,
        signed_in: bool,
    ) -> anyhow::Result<()> {
        let signed_in_at = signed_in.then(now);
        sqlx::query(
            "INSERT INTO instance_users (instance_id, tenant_id, object_id, upn, name, signed_in_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (instance_id, object_id) DO UPDATE SET tenant_id = excluded.tenant_id, \
             upn = COALESCE(excluded.upn, upn), name = COALESCE(excluded.name, name), \
             signed_in_at = COALESCE(excluded.signed_in_at, signed_in_at)",
        )
        .bind(instance)
        .bind(&key.tenant_id)
        .bind(&key.object_id)
        .bind(upn)
        .bind(name)
        .bind(signed_in_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn users(&self, instance: &str) -> anyhow::Result<Vec<InstanceUser>> {
        let rows = sqlx::query("SELECT * FROM instance_users WHERE instance_id = ? ORDER BY COALESCE(upn, object_id)")
            .bind(instance)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| InstanceUser {
                tenant_id: r.get("tenant_id"),
                object_id: r.get("object_id"),
                upn: r.get("upn"),
                name: r.get("name"),
                signed_in_at: r.get("signed_in_at"),
                sync_source: r.get("sync_source"),
                last_sync_at: r.get("last_sync_at"),
                last_error: r.get("last_error"),
            })
            .collect())
    }

    /// Replaces a user's meetings with a fresh sync and records its success.
    pub async fn replace_meetings(
        &self,
        instance: &str,
        object_id: &str,
        source: &str,
        meetings: &[Meeting],
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM meetings WHERE instance_id = ? AND object_id = ?")
            .bind(instance)
            .bind(object_id)
            .execute(&mut *tx)
            .await?;
        for m in meetings {
            sqlx::query(
                "INSERT OR REPLACE INTO meetings (instance_id, object_id, event_id, subject, start_at, end_at, \
                 organizer, location, join_url, attendees, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(instance)
            .bind(object_id)
            .bind(&m.event_id)
            .bind(&m.subject)
            .bind(m.start_at)
            .bind(m.end_at)
            .bind(&m.organizer)
            .bind(&m.location)
            .bind(&m.join_url)
            .bind(m.attendees)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE instance_users SET sync_source = ?, last_sync_at = ?, last_error = NULL \
             WHERE instance_id = ? AND object_id = ?",
        )
        .bind(source)
        .bind(now())
        .bind(instance)
        .bind(object_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed sync of one user; `drop_meetings` when access was withdrawn.
    pub async fn user_sync_failed(
        &self,
        instance: &str,
        object_id: &str,
        error: &str,
        drop_meetings: bool,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        if drop_meetings {
            sqlx::query("DELETE FROM meetings WHERE instance_id = ? AND object_id = ?")
                .bind(instance)
                .bind(object_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE instance_users SET last_error = ?, last_sync_at = ? WHERE instance_id = ? AND object_id = ?",
        )
        .bind(error)
        .bind(now())
        .bind(instance)
        .bind(object_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The push subscription on a user's calendar, if any.
    pub async fn subscription_of(&self, instance: &str, object_id: &str) -> anyhow::Result<Option<PushSubscription>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM graph_subscriptions WHERE instance_id = ? AND object_id = ?"
        ))
        .bind(instance)
        .bind(object_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| subscription_from(&r)).transpose()
    }

    /// Every push subscription (notifications are checked against their client states).
    pub async fn subscriptions(&self) -> anyhow::Result<Vec<PushSubscription>> {
        let rows = sqlx::query(&format!("SELECT {SUBSCRIPTION_COLUMNS} FROM graph_subscriptions"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(subscription_from).collect()
    }

    /// Records a subscription, replacing the user's previous one.
    pub async fn put_subscription(&self, s: &PushSubscription) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO graph_subscriptions (id, instance_id, tenant_id, object_id, kind, client_state, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (instance_id, object_id) DO UPDATE SET id = excluded.id, \
             tenant_id = excluded.tenant_id, kind = excluded.kind, client_state = excluded.client_state, \
             expires_at = excluded.expires_at",
        )
        .bind(&s.id)
        .bind(&s.instance_id)
        .bind(&s.tenant_id)
        .bind(&s.object_id)
        .bind(&s.kind)
        .bind(&s.client_state)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_subscription(&self, id: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM graph_subscriptions WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Forgets a user's meetings and how they were synced.
    pub async fn clear_meetings(&self, instance: &str, object_id: &str) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM meetings WHERE instance_id = ? AND object_id = ?")
            .bind(instance)
            .bind(object_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE instance_users SET sync_source = NULL WHERE instance_id = ? AND object_id = ?")
            .bind(instance)
            .bind(object_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Meetings ending after `after`, soonest first.
    pub async fn upcoming_meetings(&self, instance: &str, after: i64, limit: i64) -> anyhow::Result<Vec<Meeting>> {
        let rows = sqlx::query(
            "SELECT * FROM meetings WHERE instance_id = ? AND end_at > ? ORDER BY start_at, subject, object_id LIMIT ?",
        )
        .bind(instance)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Meeting {
                object_id: r.get("object_id"),
                event_id: r.get("event_id"),
                subject: r.get("subject"),
                start_at: r.get("start_at"),
                end_at: r.get("end_at"),
                organizer: r.get("organizer"),
                location: r.get("location"),
                join_url: r.get("join_url"),
                attendees: r.get("attendees"),
                source: r.get("source"),
            })
            .collect())
    }

    // ------------------------------------------------------------------ sessions

    pub async fn load_session(&self, id_hash: &str) -> anyhow::Result<Option<String>> {
        let row = sqlx::query("SELECT data FROM sessions WHERE id_hash = ? AND expires_at > ?")
            .bind(id_hash)
            .bind(now())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("data")))
    }

    pub async fn save_session(&self, id_hash: &str, data: &str, expires_at: i64) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, data, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        )
        .bind(id_hash)
        .bind(data)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?").bind(id_hash).execute(&self.pool).await?;
        Ok(())
    }

    /// Removes expired sessions and consent states.
    pub async fn purge_expired(&self) -> anyhow::Result<u64> {
        let t = now();
        let a = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?").bind(t).execute(&self.pool).await?;
        let b = sqlx::query("DELETE FROM consent_states WHERE expires_at <= ?").bind(t).execute(&self.pool).await?;
        Ok(a.rows_affected() + b.rows_affected())
    }
}

fn instance_of(r: &sqlx::sqlite::SqliteRow) -> Instance {
    let mode: String = r.get("consent_mode");
    let roles: String = r.get("app_roles");
    Instance {
        id: r.get("id"),
        name: r.get("name"),
        mode: ConsentMode::parse(&mode).unwrap_or(ConsentMode::PreAuthorization),
        tenant_id: r.get("tenant_id"),
        tenant_domain: r.get("tenant_domain"),
        connected_via: r.get("connected_via"),
        connected_at: r.get("connected_at"),
        app_roles: roles.split_whitespace().map(str::to_string).collect(),
        tenant_error: r.get("tenant_error"),
        last_sync_at: r.get("last_sync_at"),
    }
}

fn storage(e: impl std::fmt::Display) -> ConnectError {
    ConnectError::Storage(e.to_string())
}

// ---------------------------------------------------------------------- the kit's stores

/// Admin-consent `state` values: bound to an instance, single use (`DELETE … RETURNING`),
/// expiring after `ttl`.
pub struct SqlStateStore {
    pub db: Db,
    pub ttl: Duration,
}

#[async_trait]
impl StateStore for SqlStateStore {
    async fn new_state(&self, customer: &str) -> Result<String, ConnectError> {
        let state = random_token();
        let expires = now() + i64::try_from(self.ttl.as_secs()).unwrap_or(600);
        // Every onboarding page view makes links: sweep the expired ones as we go.
        sqlx::query("DELETE FROM consent_states WHERE expires_at <= ?")
            .bind(now())
            .execute(&self.db.pool)
            .await
            .map_err(storage)?;
        sqlx::query("INSERT INTO consent_states (state, customer, expires_at) VALUES (?, ?, ?)")
            .bind(&state)
            .bind(customer)
            .bind(expires)
            .execute(&self.db.pool)
            .await
            .map_err(storage)?;
        Ok(state)
    }

    async fn take_state(&self, state: &str) -> Result<Option<String>, ConnectError> {
        let row = sqlx::query("DELETE FROM consent_states WHERE state = ? RETURNING customer, expires_at")
            .bind(state)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(storage)?;
        Ok(row.and_then(|r| {
            let expires: i64 = r.get("expires_at");
            (expires > now()).then(|| r.get("customer"))
        }))
    }
}

/// User connections, one row per (tenant, user), the serialised connection sealed with a key
/// kept in `DATA_DIR/token.key`.
pub struct SqlTokenStore {
    db: Db,
    key: Arc<LessSafeKey>,
}

impl SqlTokenStore {
    pub fn open(db: Db, data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("token.key");
        let bytes = match std::fs::read(&path) {
            Ok(b) if b.len() == 32 => b,
            Ok(_) => anyhow::bail!("{} is not a 32-byte key", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = vec![0u8; 32];
                SystemRandom::new().fill(&mut b).map_err(|_| anyhow::anyhow!("no randomness"))?;
                crate::tls::write_secret(&path, &b)?;
                b
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| anyhow::anyhow!("bad token key"))?;
        Ok(SqlTokenStore { db, key: Arc::new(LessSafeKey::new(key)) })
    }

    fn aad(key: &UserKey) -> String {
        format!("{}/{}", key.tenant_id.to_ascii_lowercase(), key.object_id)
    }

    fn seal(&self, connection: &UserConnection) -> Result<Vec<u8>, ConnectError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| storage("no randomness"))?;
        let mut buf = serde_json::to_vec(connection).map_err(storage)?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(&connection.key).as_bytes()),
                &mut buf,
            )
            .map_err(|_| storage("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open_sealed(&self, key: &UserKey, sealed: &[u8]) -> Result<UserConnection, ConnectError> {
        if sealed.len() < NONCE_LEN {
            return Err(storage("sealed connection too short"));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| storage("bad nonce"))?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(Self::aad(key).as_bytes()), &mut buf)
            .map_err(|_| storage("a stored connection could not be opened (token.key changed?)"))?;
        serde_json::from_slice(plain).map_err(storage)
    }
}

#[async_trait]
impl TokenStore for SqlTokenStore {
    async fn load(&self, key: &UserKey) -> Result<Option<UserConnection>, ConnectError> {
        let row = sqlx::query("SELECT sealed FROM connections WHERE tenant_id = ? AND object_id = ?")
            .bind(key.tenant_id.to_ascii_lowercase())
            .bind(&key.object_id)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(storage)?;
        match row {
            None => Ok(None),
            Some(r) => self.open_sealed(key, &r.get::<Vec<u8>, _>("sealed")).map(Some),
        }
    }

    async fn save(&self, connection: &UserConnection) -> Result<(), ConnectError> {
        let sealed = self.seal(connection)?;
        sqlx::query(
            "INSERT INTO connections (tenant_id, object_id, sealed, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (tenant_id, object_id) \
             DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(connection.key.tenant_id.to_ascii_lowercase())
        .bind(&connection.key.object_id)
        .bind(sealed)
        .bind(now())
        .execute(&self.db.pool)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn list(&self, tenant_id: Option<&str>) -> Result<Vec<UserConnection>, ConnectError> {
        let rows = match tenant_id {
            Some(t) => {
                sqlx::query(
                    "SELECT tenant_id, object_id, sealed FROM connections WHERE tenant_id = ? ORDER BY object_id",
                )
                .bind(t.to_ascii_lowercase())
                .fetch_all(&self.db.pool)
                .await
            }
            None => {
                sqlx::query("SELECT tenant_id, object_id, sealed FROM connections ORDER BY tenant_id, object_id")
                    .fetch_all(&self.db.pool)
                    .await
            }
        }
        .map_err(storage)?;
        rows.iter()
            .map(|r| {
                let key = UserKey::new(r.get::<String, _>("tenant_id"), r.get::<String, _>("object_id"));
                self.open_sealed(&key, &r.get::<Vec<u8>, _>("sealed"))
            })
            .collect()
    }

    async fn remove(&self, key: &UserKey) -> Result<(), ConnectError> {
        sqlx::query("DELETE FROM connections WHERE tenant_id = ? AND object_id = ?")
            .bind(key.tenant_id.to_ascii_lowercase())
            .bind(&key.object_id)
            .execute(&self.db.pool)
            .await
            .map_err(storage)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_connect::{ConnectionState, TokenSet};

    async fn temp_db(name: &str) -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("demo-vendor-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Db::open(&dir).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn states_are_single_use_and_expire() {
        let (db, dir) = temp_db("states").await;
        let store = SqlStateStore { db: db.clone(), ttl: Duration::from_secs(600) };
        let s = store.new_state("contoso").await.unwrap();
        assert_eq!(store.take_state(&s).await.unwrap().as_deref(), Some("contoso"));
        assert_eq!(store.take_state(&s).await.unwrap(), None, "single use");
        assert_eq!(store.take_state("forged").await.unwrap(), None);
        let expired = SqlStateStore { db, ttl: Duration::ZERO };
        let s = expired.new_state("contoso").await.unwrap();
        assert_eq!(expired.take_state(&s).await.unwrap(), None, "expired");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn connections_are_sealed_at_rest() {
        let (db, dir) = temp_db("tokens").await;
        assert_eq!(db.instances().await.unwrap().len(), 2, "the demo instances are seeded");
        let store = SqlTokenStore::open(db.clone(), &dir).unwrap();
        let key = UserKey::new("6F1C2A4E-2B1D-4C8E-9A57-0D3E5B7C9F10", "oid-1");
        let conn = UserConnection {
            key: key.clone(),
            upn: Some("alice@contoso.test".into()),
            name: None,
            tokens: TokenSet {
                access_token: "access-secret".into(),
                expires_at: OffsetDateTime::now_utc(),
                refresh_token: Some("refresh-secret".into()),
                requested_scope: "openid".into(),
                granted_scope: None,
                id_token: None,
            },
            state: ConnectionState::Connected,
            updated_at: OffsetDateTime::now_utc(),
        };
        store.save(&conn).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap().unwrap(), conn);
        assert_eq!(store.list(Some("6f1c2a4e-2b1d-4c8e-9a57-0d3e5b7c9f10")).await.unwrap().len(), 1);
        let raw: Vec<u8> = sqlx::query("SELECT sealed FROM connections").fetch_one(&db.pool).await.unwrap().get(0);
        assert!(!String::from_utf8_lossy(&raw).contains("refresh-secret"));
        store.remove(&key).await.unwrap();
        assert!(store.load(&key).await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
