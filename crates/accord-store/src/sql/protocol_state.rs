//! Protocol state: signing keys, sessions and refresh tokens (authorization codes are sealed,
//! not stored; their single use is a `used_once` row). These tables
//! are global and keyed by a hash (or the key id); the single-use and rotation rules are
//! enforced with conditional updates so that concurrent requests cannot both win.

use time::OffsetDateTime;
use uuid::Uuid;

use super::codec::{self, flag, id, micros, Cols};
use super::group_commit::{placeholders, Write};
use super::{conn, db_err, write_err, SqlStore};
use crate::{KeyStatus, RefreshTokenRecord, RotateOutcome, SessionRecord, SigningKeyRecord, StoreError, StoreResult};

fn key_from(c: &Cols<'_>) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: c.text("kid")?,
        sealed_private_key: c.blob("sealed_private_key")?,
        status: codec::key_status("status", &c.text("status")?)?,
        created_at: c.time("created_at")?,
    })
}

fn session_from(c: &Cols<'_>) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id_hash: c.text("id_hash")?,
        tenant_id: c.uuid("tenant_id")?,
        user_id: c.uuid("user_id")?,
        auth_time: c.time("auth_time")?,
        expires_at: c.time("expires_at")?,
    })
}

/// A token row by its hash, joined with its family's revocation flag.
const TOKEN_BY_HASH: &str = "SELECT t.token_hash, t.family_id, t.tenant_id, t.client_app_id, t.user_id, t.scope, \
     t.auth_time, t.created_at, t.expires_at, t.used_at, t.spa, COALESCE(f.revoked, 0) AS family_revoked \
     FROM refresh_tokens t LEFT JOIN refresh_token_families f ON f.family_id = t.family_id \
     WHERE t.token_hash = $1";

fn token_from(c: &Cols<'_>) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: c.text("token_hash")?,
        family_id: c.uuid("family_id")?,
        tenant_id: c.uuid("tenant_id")?,
        client_app_id: c.uuid("client_app_id")?,
        user_id: c.uuid("user_id")?,
        scope: c.text("scope")?,
        auth_time: c.time("auth_time")?,
        created_at: c.time("created_at")?,
        expires_at: c.time("expires_at")?,
        used_at: c.opt_time("used_at")?,
        revoked: c.flag("family_revoked")?,
        spa: c.flag("spa")?,
    })
}

/// The columns of a `refresh_tokens` row, in the order [`bind_token`] binds them.
pub(super) const TOKEN_COLUMNS: usize = 11;

/// Writes rows `VALUES {}` (one or many), each replacing any row with its hash.
const TOKEN_UPSERT: &str = "INSERT INTO refresh_tokens (token_hash, family_id, tenant_id, client_app_id, user_id, \
     scope, auth_time, created_at, expires_at, used_at, spa) VALUES {} \
     ON CONFLICT (token_hash) DO UPDATE SET family_id = excluded.family_id, tenant_id = excluded.tenant_id, \
     client_app_id = excluded.client_app_id, user_id = excluded.user_id, scope = excluded.scope, \
     auth_time = excluded.auth_time, created_at = excluded.created_at, expires_at = excluded.expires_at, \
     used_at = excluded.used_at, spa = excluded.spa";

/// Creates the family's row if needed; `revoked = 1` revokes it, `revoked = 0` never un-revokes
/// it. (Families are written only to be revoked; see `upsert_refresh_token`.)
const FAMILY_UPSERT: &str = "INSERT INTO refresh_token_families (family_id, revoked) VALUES ($1, $2) \
     ON CONFLICT (family_id) DO UPDATE SET revoked = \
     CASE WHEN excluded.revoked <> 0 THEN 1 ELSE refresh_token_families.revoked END";

pub(super) fn bind_token<'q>(q: super::Query<'q>, t: &'q RefreshTokenRecord, family_id: Uuid) -> super::Query<'q> {
    q.bind(t.token_hash.as_str())
        .bind(id(family_id))
        .bind(id(t.tenant_id))
        .bind(id(t.client_app_id))
        .bind(id(t.user_id))
        .bind(t.scope.as_str())
        .bind(micros(t.auth_time))
        .bind(micros(t.created_at))
        .bind(micros(t.expires_at))
        .bind(t.used_at.map(micros))
        .bind(flag(t.spa))
}

/// The one-row upsert (its statement text is the same every time: prepared once a connection).
static TOKEN_UPSERT_ONE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| TOKEN_UPSERT.replace("{}", &placeholders(1, TOKEN_COLUMNS)));

fn token_upsert(t: &RefreshTokenRecord, family_id: Uuid) -> super::Query<'_> {
    bind_token(sqlx::query(TOKEN_UPSERT_ONE.as_str()), t, family_id)
}

/// The upsert of `rows` tokens (group commit), to be bound with [`bind_token`].
pub(super) fn token_upsert_sql(rows: usize) -> String {
    TOKEN_UPSERT.replace("{}", &placeholders(rows, TOKEN_COLUMNS))
}

impl SqlStore {
    // --- signing keys ---

    pub(super) async fn insert_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO signing_keys (kid, sealed_private_key, status, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(key.kid.as_str())
        .bind(key.sealed_private_key.as_slice())
        .bind(key.status.as_str())
        .bind(micros(key.created_at));
        self.execute(self.pool(), q)
            .await
            .map_err(|e| write_err(e, |_| format!("signing key {} already exists", key.kid)))?;
        Ok(())
    }

    pub(super) async fn list_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let q = sqlx::query(
            "SELECT kid, sealed_private_key, status, created_at FROM signing_keys ORDER BY created_at DESC, kid DESC",
        );
        self.read_all(q, key_from).await
    }

    pub(super) async fn update_key_status(&self, kid: &str, status: KeyStatus) -> StoreResult<()> {
        let q = sqlx::query("UPDATE signing_keys SET status = $2 WHERE kid = $1").bind(kid).bind(status.as_str());
        let done = self.execute(self.pool(), q).await.map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("signing key {kid}")));
        }
        Ok(())
    }

    // --- sessions ---

    pub(super) async fn upsert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO sessions (id_hash, tenant_id, user_id, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id_hash) DO UPDATE SET tenant_id = excluded.tenant_id, user_id = excluded.user_id, \
             auth_time = excluded.auth_time, expires_at = excluded.expires_at",
        )
        .bind(s.id_hash.as_str())
        .bind(id(s.tenant_id))
        .bind(id(s.user_id))
        .bind(micros(s.auth_time))
        .bind(micros(s.expires_at));
        self.execute(self.pool(), q).await.map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn get_session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let q =
            sqlx::query("SELECT id_hash, tenant_id, user_id, auth_time, expires_at FROM sessions WHERE id_hash = $1")
                .bind(id_hash);
        self.read_one(q, session_from).await
    }

    pub(super) async fn remove_session(&self, id_hash: &str) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash);
        self.execute(self.pool(), q).await.map_err(db_err)?;
        Ok(())
    }

    // --- refresh tokens ---

    /// A family has a row only once it is revoked (a token without one is live): issuing a
    /// token is one statement.
    pub(super) async fn upsert_refresh_token(&self, t: &RefreshTokenRecord) -> StoreResult<()> {
        if !t.revoked {
            return match self.group_commit(Write::Token(Box::new(t.clone()))).await {
                Some(written) => written.map(|_| ()),
                None => self.upsert_live_token_now(t).await,
            };
        }
        let mut tx = self.begin().await?;
        let q = sqlx::query(FAMILY_UPSERT).bind(id(t.family_id)).bind(1_i64);
        let result = match self.execute(conn(&mut tx), q).await {
            Ok(_) => self.execute(conn(&mut tx), token_upsert(t, t.family_id)).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.rollback(tx).await;
            return Err(db_err(e));
        }
        self.commit(tx).await
    }

    /// A live token's row, written on its own (see `sql/group_commit.rs`).
    pub(super) async fn upsert_live_token_now(&self, t: &RefreshTokenRecord) -> StoreResult<()> {
        self.execute(self.pool(), token_upsert(t, t.family_id)).await.map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        self.read_one(sqlx::query(TOKEN_BY_HASH).bind(token_hash), token_from).await
    }

    /// One transaction: mark the old token used if it is live, then add its successor to the
    /// same family (the old token's family, whatever `new.family_id` says). A token already used
    /// is a replay: its whole family is revoked.
    pub(super) async fn rotate_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: OffsetDateTime,
    ) -> StoreResult<RotateOutcome> {
        let mut tx = self.begin().await?;
        match self.rotate_in(&mut tx, old_hash, new, now).await {
            Ok(outcome) => {
                self.commit(tx).await?;
                Ok(outcome)
            }
            Err(e) => {
                self.rollback(tx).await;
                Err(e)
            }
        }
    }

    async fn rotate_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: OffsetDateTime,
    ) -> StoreResult<RotateOutcome> {
        let q = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM refresh_token_families f \
                             WHERE f.family_id = refresh_tokens.family_id AND f.revoked <> 0) \
             RETURNING family_id",
        )
        .bind(old_hash)
        .bind(micros(now));
        let row = self.fetch_optional(conn(tx), q).await.map_err(db_err)?;
        if let Some(row) = row {
            let family_id = Cols(&row).uuid("family_id")?;
            let mut successor = new.clone();
            successor.used_at = None;
            self.execute(conn(tx), token_upsert(&successor, family_id))
                .await
                .map_err(|e| write_err(e, |_| "the new refresh token already exists".to_string()))?;
            return Ok(RotateOutcome::Rotated);
        }

        let Some(old) =
            self.fetch_optional(conn(tx), sqlx::query(TOKEN_BY_HASH).bind(old_hash)).await.map_err(db_err)?
        else {
            return Ok(RotateOutcome::NotFound);
        };
        let old = token_from(&Cols(&old))?;
        if old.revoked {
            return Ok(RotateOutcome::Revoked);
        }
        if old.used_at.is_some() {
            let q = sqlx::query(FAMILY_UPSERT).bind(id(old.family_id)).bind(1_i64);
            self.execute(conn(tx), q).await.map_err(db_err)?;
            return Ok(RotateOutcome::ReuseDetected);
        }
        // Live and unused, yet the update matched nothing: it changed under us (PostgreSQL, READ
        // COMMITTED). Refuse rather than guess; the caller can retry.
        Err(StoreError::Database("refresh token changed concurrently during rotation".to_string()))
    }

    pub(super) async fn revoke_family(&self, family_id: Uuid) -> StoreResult<()> {
        let q = sqlx::query(FAMILY_UPSERT).bind(id(family_id)).bind(1_i64);
        self.execute(self.pool(), q).await.map_err(db_err)?;
        Ok(())
    }

    // --- housekeeping ---

    /// Deletes sessions and single-use values (`used_once`, see
    /// [`Store::consume_once`](crate::Store::consume_once)) whose `expires_at` is at or before
    /// `now`, refresh tokens [`EXPIRED_REFRESH_TOKEN_MEMORY_DAYS`] after theirs, and then
    /// families no token or code refers to any more (not counted in the result).
    pub(super) async fn purge(&self, at: OffsetDateTime) -> StoreResult<u64> {
        let refresh_memory = time::Duration::days(crate::records::EXPIRED_REFRESH_TOKEN_MEMORY_DAYS);
        let mut purged = 0;
        for (table, before) in [
            ("sessions", at),
            ("refresh_tokens", at - refresh_memory),
            ("used_once", at),
            ("device_authorizations", at),
        ] {
            let sql = format!("DELETE FROM {table} WHERE expires_at <= $1");
            let q = sqlx::query(&sql).bind(micros(before));
            purged += self.execute(self.pool(), q).await.map_err(db_err)?.rows_affected();
        }
        let q = sqlx::query(
            "DELETE FROM refresh_token_families WHERE \
             NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_token_families.family_id) \
             AND NOT EXISTS (SELECT 1 FROM device_authorizations d WHERE d.family_id = refresh_token_families.family_id)",
        );
        self.execute(self.pool(), q).await.map_err(db_err)?;
        purged += self.purge_calendar_sync(at).await?;
        purged += self.purge_consent_webhooks(at).await?;
        Ok(purged)
    }
}
