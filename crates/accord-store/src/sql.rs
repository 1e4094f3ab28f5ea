//! [`SqlStore`]: the one [`Store`] implementation, over SQLite or PostgreSQL through sqlx's
//! `Any` driver.
//!
//! Conventions shared by both migration sets (see `migrations/*/0001_initial.sql`): UUIDs are
//! lower-case hyphenated TEXT, timestamps are BIGINT unix microseconds, booleans are BIGINT 0/1,
//! document-like lists are JSON TEXT. Every statement goes through one of the counting helpers
//! below, so [`Store::statements_executed`] sees all of them (including BEGIN/COMMIT/ROLLBACK,
//! but not the per-connection PRAGMAs or migrations).

mod cache;
mod calendar_sync;
mod codec;
mod consent_webhooks;
mod consent_workflow;
mod device_authorizations;
mod directory;
mod group_commit;
mod protocol_state;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use accord_core::consent_records::*;
use accord_core::directory::*;
use accord_core::ids::{AppId, AppObjectId, GroupId, ServicePrincipalId, TenantId, UserId};
use async_trait::async_trait;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyQueryResult, AnyRow};
use sqlx::error::ErrorKind;
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use self::cache::{CacheKey, DirectoryCache};
pub use self::cache::{CacheScope, CacheSettings};
pub(crate) use self::codec::fold;
use self::codec::Cols;
use crate::{
    AuditQuery, CalendarChange, Change, DeviceAuthorizationRecord, DeviceRedemption, DeviceStatus, GraphNotification,
    GraphSubscription, KeyStatus, RefreshTokenRecord, RotateOutcome, SessionRecord, SigningKeyRecord, Store,
    StoreError, StoreResult,
};
use crate::{ConsentEvent, ConsentWebhook, DirectoryObject, MemberQuery, Membership, NameQuery, WebhookDelivery};

tokio::task_local! {
    /// The statements of the work [`count_statements`] runs.
    static REQUEST_STATEMENTS: Arc<AtomicU64>;
}

/// Runs `work`, counting the statements the store runs for it (on its task, not in tasks it
/// spawns): a request's own reads and writes, apart from the background jobs that share the
/// store. Test mode reports it per response; the scale test compares it across tenant sizes.
pub async fn count_statements<F: std::future::Future>(work: F) -> (u64, F::Output) {
    let counter = Arc::new(AtomicU64::new(0));
    let out = REQUEST_STATEMENTS.scope(counter.clone(), work).await;
    (counter.load(Ordering::Relaxed), out)
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

const SQLITE_POOL_SIZE: u32 = 4;
const POSTGRES_POOL_SIZE: u32 = 10;
/// How long a request waits for a database connection before it fails as `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A pooled connection idle at least this long is checked (pinged) before it is handed out;
/// one used more recently is not. sqlx's default checks every connection on every acquire, and
/// it also pings every connection as it goes back to the pool: a statement cost three round
/// trips to SQLite's worker thread or to PostgreSQL instead of two. A connection that was just
/// returned was just pinged, and one the database dropped since fails its statement, which
/// answers as `Unavailable` (retryable) and closes that connection.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The SQL store. Cheap to clone: clones share the pool and the statement counter.
#[derive(Clone)]
pub struct SqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    statements: AtomicU64,
    cache: DirectoryCache,
    /// Dropped with the store: stops the directory-notification listener (PostgreSQL).
    _stop_listening: Option<tokio::sync::oneshot::Sender<()>>,
    /// The PostgreSQL channel of this schema's directory writes ([`directory_channel`]).
    channel: String,
    /// Single-use markers and refresh tokens waiting for the writer (`sql/group_commit.rs`).
    writes: group_commit::Queue,
    /// The writes the writer committed, and in how many batches.
    grouped_writes: AtomicU64,
    write_batches: AtomicU64,
    /// Pooled connections checked before use (idle at least [`CHECK_AFTER_IDLE`]).
    connection_checks: Arc<AtomicU64>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("backend", &self.inner.backend).finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connects to `sqlite://path?mode=rwc` (or any `sqlite:` URL) or `postgres://…` /
    /// `postgresql://…`, and brings the schema up to date.
    pub async fn connect(url: &str) -> StoreResult<SqlStore> {
        SqlStore::connect_with(url, CacheSettings::default()).await
    }

    /// [`SqlStore::connect`] with explicit directory-cache settings.
    pub async fn connect_with(url: &str, cache: CacheSettings) -> StoreResult<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::Database(format!(
                "unsupported database URL scheme {scheme:?} (expected sqlite: or postgres:)"
            )));
        };

        let options = match backend {
            Backend::Sqlite => AnyPoolOptions::new().max_connections(SQLITE_POOL_SIZE).after_connect(|conn, _meta| {
                Box::pin(async move {
                    // journal_mode first: it is the one that needs the database to itself.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    Ok(())
                })
            }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(POSTGRES_POOL_SIZE),
        };
        let connection_checks = Arc::new(AtomicU64::new(0));
        let checks = connection_checks.clone();
        let pool = options
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                // Decided before the future: a busy pool's acquires cost no shared counter.
                if meta.idle_for < CHECK_AFTER_IDLE {
                    return Box::pin(std::future::ready(Ok(true)));
                }
                checks.fetch_add(1, Ordering::Relaxed);
                // An error closes the connection and the pool takes or opens another.
                Box::pin(async move { sqlx::Connection::ping(conn).await.map(|()| true) })
            })
            // While the database is away a request waits at most this long, then fails as
            // `Unavailable` rather than hanging; the pool reconnects by itself when it is back.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // Connections a burst opened close once idle (each SQLite connection holds its own
            // page cache): memory returns to the idle figure instead of staying at the peak's.
            .idle_timeout(IDLE_TIMEOUT)
            .connect(url)
            .await
            .map_err(|e| StoreError::Database(format!("cannot connect to the database: {e}")))?;

        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(|e| StoreError::Database(format!("database migration failed: {e}")))?;
        repair_name_keys(&pool).await?;

        // Like the migrations, this read is not counted: it is part of opening the store.
        let generation = read_generation(&pool).await?;
        let cache = DirectoryCache::new(cache, generation);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let listening = backend == Backend::Postgres && cache.enabled();
        let channel = match backend {
            Backend::Postgres => {
                let row =
                    sqlx::query("SELECT CAST(current_schema() AS TEXT) AS s").fetch_one(&pool).await.map_err(db_err)?;
                directory_channel(&Cols(&row).text("s")?)
            }
            Backend::Sqlite => String::new(),
        };
        let (writes, queued) = group_commit::queue();
        let inner = Arc::new(Inner {
            pool,
            backend,
            statements: AtomicU64::new(0),
            cache,
            _stop_listening: listening.then_some(stop),
            channel: channel.clone(),
            writes,
            grouped_writes: AtomicU64::new(0),
            write_batches: AtomicU64::new(0),
            connection_checks,
        });
        tokio::spawn(group_commit::run(Arc::downgrade(&inner), queued));
        if listening {
            listen_for_directory_writes(url, &channel, Arc::downgrade(&inner), stopped).await;
        }
        Ok(SqlStore { inner })
    }

    /// Opens (creating if needed) the SQLite database file at `path`.
    pub async fn connect_sqlite_file(path: &Path) -> StoreResult<SqlStore> {
        SqlStore::connect_sqlite_file_with(path, CacheSettings::default()).await
    }

    /// [`SqlStore::connect_sqlite_file`] with explicit directory-cache settings.
    pub async fn connect_sqlite_file_with(path: &Path, cache: CacheSettings) -> StoreResult<SqlStore> {
        let path = path
            .to_str()
            .ok_or_else(|| StoreError::Database(format!("the database path {} is not valid UTF-8", path.display())))?;
        // sqlx percent-decodes the path part of the URL: escape what would otherwise be read as
        // an escape, the query or the fragment.
        let mut escaped = String::with_capacity(path.len());
        for c in path.chars() {
            match c {
                '%' => escaped.push_str("%25"),
                '?' => escaped.push_str("%3F"),
                '#' => escaped.push_str("%23"),
                ' ' => escaped.push_str("%20"),
                c => escaped.push(c),
            }
        }
        Self::connect_with(&format!("sqlite://{escaped}?mode=rwc"), cache).await
    }

    /// Which database this store talks to: `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.inner.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Closes the pool, waiting for connections to be returned (for tests and shutdown).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    fn directory_cache(&self) -> &DirectoryCache {
        &self.inner.cache
    }

    /// The groups whose memberships make a group's members: the group alone, or (`transitive`)
    /// it and every group below it — walked once and cached, not once a page.
    async fn closure_of(
        &self,
        tenant_id: TenantId,
        group_id: GroupId,
        transitive: bool,
    ) -> StoreResult<Arc<[GroupId]>> {
        if !transitive {
            return Ok(Arc::from([group_id]));
        }
        self.cached(CacheKey::GroupClosure(tenant_id, group_id), self.list_groups_below(tenant_id, group_id)).await
    }

    /// A directory read through the cache (see `sql/cache.rs`): checks the database's write
    /// generation when due, then serves the cached value or runs `load` and keeps its result.
    async fn cached<T, F>(&self, key: CacheKey, load: F) -> StoreResult<T>
    where
        T: cache::Weigh + Clone + Send + Sync + 'static,
        F: std::future::Future<Output = StoreResult<T>>,
    {
        let cache = &self.inner.cache;
        if !cache.enabled() {
            return load.await;
        }
        if cache.claim_generation_check() {
            self.count();
            cache.observe_generation(read_generation(self.pool()).await?);
        }
        cache.get_or_load(key, load).await
    }

    // --- the counting helpers: every statement the store runs goes through one of these ---

    fn count(&self) {
        self.inner.statements.fetch_add(1, Ordering::Relaxed);
        self.count_for_request();
    }

    /// Counts a statement for the request on this task only (the store's total is counted where
    /// the statement runs).
    fn count_for_request(&self) {
        let _ = REQUEST_STATEMENTS.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
    }

    fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    async fn execute<'c, E>(&self, executor: E, query: Query<'_>) -> Result<AnyQueryResult, sqlx::Error>
    where
        E: Executor<'c, Database = Any>,
    {
        self.count();
        query.execute(executor).await
    }

    async fn fetch_optional<'c, E>(&self, executor: E, query: Query<'_>) -> Result<Option<AnyRow>, sqlx::Error>
    where
        E: Executor<'c, Database = Any>,
    {
        self.count();
        query.fetch_optional(executor).await
    }

    async fn fetch_all<'c, E>(&self, executor: E, query: Query<'_>) -> Result<Vec<AnyRow>, sqlx::Error>
    where
        E: Executor<'c, Database = Any>,
    {
        self.count();
        query.fetch_all(executor).await
    }

    /// Reads at most one row from the pool and decodes it with `decode`.
    async fn read_one<T>(
        &self,
        query: Query<'_>,
        decode: impl Fn(&Cols<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let row = self.fetch_optional(self.pool(), query).await.map_err(db_err)?;
        row.map(|r| decode(&Cols(&r))).transpose()
    }

    /// Reads a `COUNT(*) AS n`.
    async fn read_count(&self, query: Query<'_>) -> StoreResult<u64> {
        let n = self.read_one(query, |c| c.int("n")).await?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Reads every row from the pool and decodes each with `decode` as it arrives: a whole
    /// tenant's rows (100,000 users at the scenario loader's start) are never held as rows and
    /// as values at once.
    async fn read_all<T>(&self, query: Query<'_>, decode: impl Fn(&Cols<'_>) -> StoreResult<T>) -> StoreResult<Vec<T>> {
        use futures_util::TryStreamExt;
        self.count();
        let mut rows = query.fetch(self.pool());
        let mut values = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(db_err)? {
            values.push(decode(&Cols(&row))?);
        }
        Ok(values)
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so the write lock is taken
    /// (waiting up to the busy timeout) up front instead of failing on a read-to-write upgrade.
    async fn begin(&self) -> StoreResult<Transaction<'static, Any>> {
        self.count();
        let tx = match self.inner.backend {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool().begin().await,
        };
        tx.map_err(db_err)
    }

    async fn commit(&self, tx: Transaction<'static, Any>) -> StoreResult<()> {
        self.count();
        // Deferred foreign keys are checked here.
        tx.commit().await.map_err(|e| write_err(e, |detail| format!("conflict on commit: {detail}")))
    }

    async fn rollback(&self, tx: Transaction<'static, Any>) {
        self.count();
        if let Err(e) = tx.rollback().await {
            tracing::warn!(error = %e, "rollback failed");
        }
    }
}

/// The connection inside a transaction, as an executor.
fn conn<'t>(tx: &'t mut Transaction<'static, Any>) -> &'t mut AnyConnection {
    tx
}

/// The PostgreSQL channel on which writers announce directory changes (`sql/cache.rs`): one per
/// schema, since notifications go to the whole database and stores in other schemas (other
/// deployments, or tests) number their writes on their own.
fn directory_channel(schema: &str) -> String {
    // FNV-1a: short, stable, within a channel name's 63 bytes whatever the schema is called.
    let hash = schema.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("accord_directory_{hash:016x}")
}

/// Listens on `channel` until the store is dropped (`stopped`), emptying what
/// other replicas' writes changed. A lost connection empties everything (notifications may have
/// been missed meanwhile) and is retried every second; until it is back the periodic generation
/// check covers. Returns once the first LISTEN is in place (or failed), so a store that returns
/// from `connect` already hears the writes committed after it.
async fn listen_for_directory_writes(
    url: &str,
    channel: &str,
    store: std::sync::Weak<Inner>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    use sqlx::postgres::PgListener;
    async fn connect(url: &str, channel: &str) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(channel).await?;
        Ok(listener)
    }
    let mut listener = match connect(url, channel).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "directory notifications unavailable; replicas see writes by the periodic check");
            None
        }
    };
    let (url, channel) = (url.to_string(), channel.to_string());
    let forget_everything = |store: &std::sync::Weak<Inner>| {
        if let Some(inner) = store.upgrade() {
            inner.cache.clear_all();
        }
    };
    tokio::spawn(async move {
        loop {
            let Some(l) = listener.as_mut() else {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
                listener = connect(&url, &channel).await.ok();
                if listener.is_some() {
                    forget_everything(&store);
                }
                continue;
            };
            let received = tokio::select! {
                _ = &mut stopped => return,
                r = l.try_recv() => r,
            };
            match received {
                Ok(Some(n)) => {
                    let Some(inner) = store.upgrade() else { return };
                    match cache::parse_notification(n.payload()) {
                        Some((generation, scopes)) => inner.cache.after_remote_write(generation, &scopes),
                        None => inner.cache.clear_all(),
                    }
                }
                // The connection was lost and is re-established by the next `try_recv`: what was
                // sent meanwhile is gone.
                Ok(None) => forget_everything(&store),
                Err(e) => {
                    tracing::warn!(error = %e, "directory notifications interrupted; reconnecting");
                    listener = None;
                    forget_everything(&store);
                }
            }
        }
    });
}

/// The database's write generation: bumped by every `apply` that touches a cached table.
/// The `name_keys_v1` repair (migration 0020): every user's and group's `name_key` made the
/// store's own fold of the display name, once, in one transaction; a store opened again finds
/// it done. Rows written since 0016 already agree and are left alone.
async fn repair_name_keys(pool: &AnyPool) -> StoreResult<()> {
    const REPAIR: &str = "name_keys_v1";
    let mut tx = pool.begin().await.map_err(db_err)?;
    let done = sqlx::query("SELECT name FROM store_repairs WHERE name = $1")
        .bind(REPAIR)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    if done.is_some() {
        return Ok(());
    }
    for table in ["users", "directory_groups"] {
        let rows = sqlx::query(&format!("SELECT tenant_id, id, display_name, name_key FROM {table}"))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        for row in &rows {
            let c = Cols(row);
            let (name, key) = (c.text("display_name")?, c.text("name_key")?);
            let folded = fold(&name);
            if folded != key {
                let sql = format!("UPDATE {table} SET name_key = $1 WHERE tenant_id = $2 AND id = $3");
                sqlx::query(&sql)
                    .bind(folded)
                    .bind(c.text("tenant_id")?)
                    .bind(c.text("id")?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
    }
    // Two replicas opening one new database may both repair (the same result): one records it.
    sqlx::query("INSERT INTO store_repairs (name, done_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(REPAIR)
        .bind(codec::micros(accord_core::clock::now()))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)
}

async fn read_generation<'c, E>(executor: E) -> StoreResult<u64>
where
    E: Executor<'c, Database = Any>,
{
    let row = sqlx::query("SELECT generation FROM store_generation WHERE id = 1")
        .fetch_one(executor)
        .await
        .map_err(db_err)?;
    Ok(Cols(&row).int("generation")? as u64)
}

/// Maps a database error from a read (or a write with no better context).
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    write_err(e, |detail| detail.to_string())
}

/// Maps a database error from a write: a unique violation becomes `Conflict` with the text
/// `on_unique` builds from the database's detail (the constraint name and message, which name
/// the violated columns on both backends); a foreign-key violation becomes `NotFound`.
pub(crate) fn write_err(e: sqlx::Error, on_unique: impl FnOnce(&str) -> String) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        match db.kind() {
            ErrorKind::UniqueViolation => {
                let detail = match db.constraint() {
                    Some(c) => format!("{c}: {}", db.message()),
                    None => db.message().to_string(),
                };
                return StoreError::Conflict(on_unique(&detail));
            }
            ErrorKind::ForeignKeyViolation => {
                return StoreError::NotFound(format!(
                    "a change refers to a row that does not exist ({})",
                    db.message()
                ));
            }
            _ => {}
        }
    }
    if matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_)) {
        tracing::warn!(error = %e, "database unavailable");
        return StoreError::Unavailable(e.to_string());
    }
    tracing::warn!(error = %e, "database error");
    StoreError::Database(e.to_string())
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        self.count();
        sqlx::query("SELECT 1").fetch_one(self.pool()).await.map_err(db_err)?;
        Ok(())
    }

    async fn apply(&self, changes: &[Change]) -> StoreResult<()> {
        self.apply_changes(changes).await
    }

    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.cached(CacheKey::Tenant(id), self.get_tenant(id)).await
    }

    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<Tenant>> {
        self.cached(CacheKey::TenantByDomain(codec::fold(domain)), self.get_tenant_by_domain(domain)).await
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.list_tenants().await
    }

    async fn user(&self, tenant_id: TenantId, id: UserId) -> StoreResult<Option<User>> {
        self.cached(CacheKey::User(tenant_id, id), self.get_user(tenant_id, id)).await
    }

    async fn user_by_upn(&self, tenant_id: TenantId, upn: &str) -> StoreResult<Option<User>> {
        self.get_user_by_upn(tenant_id, upn).await
    }

    async fn users(&self, tenant_id: TenantId) -> StoreResult<Vec<User>> {
        self.list_users(tenant_id).await
    }

    async fn users_page(&self, tenant_id: TenantId, query: &NameQuery) -> StoreResult<Vec<User>> {
        self.page_by_name(&directory::USERS_BY_NAME, tenant_id, query, directory::user_from).await
    }

    async fn count_users(&self, tenant_id: TenantId, query: &NameQuery) -> StoreResult<u64> {
        self.count_by_name(&directory::USERS_BY_NAME, tenant_id, query).await
    }

    async fn groups_page(&self, tenant_id: TenantId, query: &NameQuery) -> StoreResult<Vec<Group>> {
        self.page_by_name(&directory::GROUPS_BY_NAME, tenant_id, query, directory::group_from).await
    }

    async fn count_groups(&self, tenant_id: TenantId, query: &NameQuery) -> StoreResult<u64> {
        self.count_by_name(&directory::GROUPS_BY_NAME, tenant_id, query).await
    }

    async fn user_roles(&self, tenant_id: TenantId, user_id: UserId) -> StoreResult<Vec<DirectoryRole>> {
        self.cached(CacheKey::UserRoles(tenant_id, user_id), self.list_user_roles(tenant_id, user_id)).await
    }

    async fn role_holders(&self, tenant_id: TenantId, role: DirectoryRole) -> StoreResult<Vec<UserId>> {
        self.list_role_holders(tenant_id, role).await
    }

    async fn record_failed_sign_in(&self, tenant_id: TenantId, user_id: UserId) -> StoreResult<u32> {
        self.increment_failed_sign_ins(tenant_id, user_id).await
    }

    async fn set_locked_until(
        &self,
        tenant_id: TenantId,
        user_id: UserId,
        until: Option<OffsetDateTime>,
    ) -> StoreResult<()> {
        self.update_locked_until(tenant_id, user_id, until).await
    }

    async fn clear_failed_sign_ins(&self, tenant_id: TenantId, user_id: UserId) -> StoreResult<()> {
        self.reset_failed_sign_ins(tenant_id, user_id).await
    }

    async fn group(&self, tenant_id: TenantId, id: GroupId) -> StoreResult<Option<Group>> {
        self.cached(CacheKey::Group(tenant_id, id), self.get_group(tenant_id, id)).await
    }

    async fn group_by_name(&self, tenant_id: TenantId, display_name: &str) -> StoreResult<Option<Group>> {
        self.get_group_by_name(tenant_id, display_name).await
    }

    async fn groups(&self, tenant_id: TenantId) -> StoreResult<Vec<Group>> {
        self.list_groups(tenant_id).await
    }

    async fn group_members(&self, tenant_id: TenantId, group_id: GroupId) -> StoreResult<Vec<GroupMember>> {
        self.cached(CacheKey::GroupMembers(tenant_id, group_id), self.list_group_members(tenant_id, group_id)).await
    }

    async fn roles_of_users(
        &self,
        tenant_id: TenantId,
        user_ids: &[UserId],
    ) -> StoreResult<std::collections::HashMap<UserId, Vec<DirectoryRole>>> {
        self.list_roles_of_users(tenant_id, user_ids).await
    }

    async fn member_counts(
        &self,
        tenant_id: TenantId,
        group_ids: &[GroupId],
    ) -> StoreResult<std::collections::HashMap<GroupId, u64>> {
        self.count_members(tenant_id, group_ids).await
    }

    async fn scenario_passwords(
        &self,
        tenant_id: TenantId,
        user_ids: &[UserId],
    ) -> StoreResult<std::collections::HashMap<UserId, String>> {
        self.list_scenario_passwords(tenant_id, user_ids).await
    }

    async fn users_with_upns(&self, tenant_id: TenantId, upns: &[&str]) -> StoreResult<Vec<User>> {
        self.list_users_with_upns(tenant_id, upns).await
    }

    async fn members_of_groups(
        &self,
        tenant_id: TenantId,
        group_ids: &[GroupId],
    ) -> StoreResult<std::collections::HashMap<GroupId, Vec<GroupMember>>> {
        self.list_members_of_groups(tenant_id, group_ids).await
    }

    async fn group_closure(
        &self,
        tenant_id: TenantId,
        group_id: GroupId,
        transitive: bool,
    ) -> StoreResult<(Vec<User>, Vec<Group>)> {
        let closure = self.closure_of(tenant_id, group_id, transitive).await?;
        self.list_group_closure(tenant_id, group_id, &closure).await
    }

    async fn group_members_page(
        &self,
        tenant_id: TenantId,
        group_id: GroupId,
        query: &MemberQuery,
    ) -> StoreResult<Vec<DirectoryObject>> {
        let closure = self.closure_of(tenant_id, group_id, query.transitive).await?;
        self.list_group_members_page(tenant_id, group_id, query, &closure).await
    }

    async fn memberships_of(&self, tenant_id: TenantId, member_id: Uuid) -> StoreResult<Vec<Membership>> {
        let load = self.list_memberships(tenant_id, member_id);
        self.cached(CacheKey::Memberships(tenant_id, member_id), load).await
    }

    async fn transitive_groups_of(&self, tenant_id: TenantId, member_id: Uuid) -> StoreResult<Vec<GroupId>> {
        // The same walk as `memberships_of` (and its cache entry), without the names.
        Ok(self.memberships_of(tenant_id, member_id).await?.into_iter().map(|m| m.group_id).collect())
    }

    async fn application_by_app_id(&self, app_id: AppId) -> StoreResult<Option<Application>> {
        self.cached(CacheKey::ApplicationByAppId(app_id), self.get_application_by_app_id(app_id)).await
    }

    async fn application_by_identifier_uri(&self, uri: &str) -> StoreResult<Option<Application>> {
        let key = CacheKey::ApplicationByIdentifierUri(codec::identifier_uri_key(uri));
        self.cached(key, self.get_application_by_identifier_uri(uri)).await
    }

    async fn spa_origin_registered(&self, origin: &str) -> StoreResult<bool> {
        self.get_spa_origin_registered(origin).await
    }

    async fn applications_homed_in(&self, tenant_id: TenantId) -> StoreResult<Vec<Application>> {
        self.list_applications_homed_in(tenant_id).await
    }

    async fn client_secrets(&self, app_object_id: AppObjectId) -> StoreResult<Vec<ClientSecret>> {
        self.cached(CacheKey::ClientSecrets(app_object_id), self.list_client_secrets(app_object_id)).await
    }

    async fn service_principal(
        &self,
        tenant_id: TenantId,
        id: ServicePrincipalId,
    ) -> StoreResult<Option<ServicePrincipal>> {
        self.cached(CacheKey::ServicePrincipal(tenant_id, id), self.get_service_principal(tenant_id, id)).await
    }

    async fn service_principal_by_app_id(
        &self,
        tenant_id: TenantId,
        app_id: AppId,
    ) -> StoreResult<Option<ServicePrincipal>> {
        let key = CacheKey::ServicePrincipalByAppId(tenant_id, app_id);
        self.cached(key, self.get_service_principal_by_app_id(tenant_id, app_id)).await
    }

    async fn service_principals(&self, tenant_id: TenantId) -> StoreResult<Vec<ServicePrincipal>> {
        self.list_service_principals(tenant_id).await
    }

    async fn delegated_grant(&self, tenant_id: TenantId, id: Uuid) -> StoreResult<Option<DelegatedGrant>> {
        self.get_delegated_grant(tenant_id, id).await
    }

    async fn delegated_grants(&self, tenant_id: TenantId) -> StoreResult<Vec<DelegatedGrant>> {
        self.list_delegated_grants(tenant_id).await
    }

    async fn delegated_grants_of_client(
        &self,
        tenant_id: TenantId,
        client_sp_id: ServicePrincipalId,
    ) -> StoreResult<Vec<DelegatedGrant>> {
        let key = CacheKey::DelegatedGrantsOfClient(tenant_id, client_sp_id);
        self.cached(key, self.list_delegated_grants_of_client(tenant_id, client_sp_id)).await
    }

    async fn app_role_assignments_to(
        &self,
        tenant_id: TenantId,
        resource_sp_id: ServicePrincipalId,
    ) -> StoreResult<Vec<AppRoleAssignment>> {
        let key = CacheKey::AppRoleAssignmentsTo(tenant_id, resource_sp_id);
        self.cached(key, self.list_app_role_assignments_to(tenant_id, resource_sp_id)).await
    }

    async fn app_role_assignments_of(
        &self,
        tenant_id: TenantId,
        principal_id: Uuid,
    ) -> StoreResult<Vec<AppRoleAssignment>> {
        let key = CacheKey::AppRoleAssignmentsOf(tenant_id, principal_id);
        self.cached(key, self.list_app_role_assignments_of(tenant_id, principal_id)).await
    }

    async fn event(&self, tenant_id: TenantId, id: Uuid) -> StoreResult<Option<CalendarEvent>> {
        self.get_event(tenant_id, id).await
    }

    async fn events_of(
        &self,
        tenant_id: TenantId,
        owner_id: UserId,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> StoreResult<Vec<CalendarEvent>> {
        self.list_events_of(tenant_id, owner_id, from, to).await
    }

    async fn expired_grants(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<(Vec<DelegatedGrant>, Vec<AppRoleAssignment>)> {
        self.list_expired_grants(now, limit).await
    }

    async fn calendar_watermark(&self, tenant_id: TenantId, owner_id: UserId) -> StoreResult<i64> {
        self.read_calendar_watermark(tenant_id, owner_id).await
    }

    async fn events_page(
        &self,
        tenant_id: TenantId,
        owner_id: UserId,
        window: (OffsetDateTime, OffsetDateTime),
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<CalendarEvent>> {
        self.read_events_page(tenant_id, owner_id, window, after, limit).await
    }

    async fn calendar_changes(
        &self,
        tenant_id: TenantId,
        owner_id: UserId,
        since: i64,
        until: i64,
        limit: u32,
    ) -> StoreResult<Vec<CalendarChange>> {
        self.read_calendar_changes(tenant_id, owner_id, since, until, limit).await
    }

    async fn subscription(&self, tenant_id: TenantId, id: Uuid) -> StoreResult<Option<GraphSubscription>> {
        self.get_subscription(tenant_id, id).await
    }

    async fn subscriptions_of_mailbox(
        &self,
        tenant_id: TenantId,
        mailbox_id: UserId,
    ) -> StoreResult<Vec<GraphSubscription>> {
        self.list_subscriptions_of_mailbox(tenant_id, mailbox_id).await
    }

    async fn subscriptions_of_app(
        &self,
        tenant_id: TenantId,
        client_app_id: AppId,
    ) -> StoreResult<Vec<GraphSubscription>> {
        self.list_subscriptions_of_app(tenant_id, client_app_id).await
    }

    async fn live_subscriptions(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<GraphSubscription>> {
        self.list_live_subscriptions(after, limit).await
    }

    async fn due_graph_notifications(&self, now: OffsetDateTime, limit: u32) -> StoreResult<Vec<GraphNotification>> {
        self.list_due_graph_notifications(now, limit).await
    }

    async fn claim_graph_notification(
        &self,
        id: Uuid,
        seen: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.claim_notification_attempt(id, seen, until).await
    }

    async fn retry_graph_notification(
        &self,
        id: Uuid,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> StoreResult<()> {
        self.reschedule_notification(id, attempts, next_attempt_at, error).await
    }

    async fn finish_graph_notification(&self, id: Uuid) -> StoreResult<()> {
        self.delete_notification(id).await
    }

    async fn consent_event_watermark(&self) -> StoreResult<i64> {
        self.read_consent_event_watermark().await
    }

    async fn consent_events_after(&self, app_id: AppId, after: i64, limit: u32) -> StoreResult<Vec<ConsentEvent>> {
        self.read_consent_events_after(app_id, after, limit).await
    }

    async fn consent_events_since(
        &self,
        tenant_id: TenantId,
        app_id: AppId,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<ConsentEvent>> {
        self.read_consent_events_since(tenant_id, app_id, since, limit).await
    }

    async fn consent_webhook(&self, id: Uuid) -> StoreResult<Option<ConsentWebhook>> {
        self.read_consent_webhook(id).await
    }

    async fn consent_webhooks_of(&self, app_id: AppId) -> StoreResult<Vec<ConsentWebhook>> {
        self.read_consent_webhooks(Some(app_id)).await
    }

    async fn consent_webhooks(&self) -> StoreResult<Vec<ConsentWebhook>> {
        self.read_consent_webhooks(None).await
    }

    async fn due_webhook_deliveries(&self, now: OffsetDateTime, limit: u32) -> StoreResult<Vec<WebhookDelivery>> {
        self.read_due_webhook_deliveries(now, limit).await
    }

    async fn claim_webhook_delivery(&self, id: Uuid, seen: OffsetDateTime, until: OffsetDateTime) -> StoreResult<bool> {
        self.claim_delivery(id, seen, until).await
    }

    async fn record_webhook_attempt(&self, delivery: &WebhookDelivery) -> StoreResult<()> {
        self.write_webhook_attempt(delivery).await
    }

    async fn webhook_deliveries(&self, webhook_id: Uuid, limit: u32) -> StoreResult<Vec<WebhookDelivery>> {
        self.read_webhook_deliveries(webhook_id, limit).await
    }

    async fn consent_request(&self, tenant_id: TenantId, id: Uuid) -> StoreResult<Option<ConsentRequest>> {
        self.get_consent_request(tenant_id, id).await
    }

    async fn consent_requests(
        &self,
        tenant_id: TenantId,
        client_app_id: Option<AppId>,
    ) -> StoreResult<Vec<ConsentRequest>> {
        self.list_consent_requests(tenant_id, client_app_id).await
    }

    async fn expired_consent_requests(&self, now: OffsetDateTime) -> StoreResult<Vec<ConsentRequest>> {
        self.list_expired_consent_requests(now).await
    }

    async fn permission_classifications(
        &self,
        tenant_id: TenantId,
        resource_sp_id: ServicePrincipalId,
    ) -> StoreResult<Vec<PermissionClassification>> {
        let key = CacheKey::PermissionClassifications(tenant_id, resource_sp_id);
        self.cached(key, self.list_permission_classifications(tenant_id, resource_sp_id)).await
    }

    async fn audit_events(&self, tenant_id: TenantId, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        self.list_audit_events(tenant_id, query).await
    }

    async fn audit_event(&self, tenant_id: TenantId, id: Uuid) -> StoreResult<Option<AuditEvent>> {
        self.read_audit_event(tenant_id, id).await
    }

    async fn notifications(&self, tenant_id: TenantId) -> StoreResult<Vec<Notification>> {
        self.list_notifications(tenant_id).await
    }

    async fn unsent_notifications(&self, max_attempts: u32, limit: u32) -> StoreResult<Vec<Notification>> {
        self.list_unsent_notifications(max_attempts, limit).await
    }

    async fn mark_notification(
        &self,
        tenant_id: TenantId,
        id: Uuid,
        sent_at: Option<OffsetDateTime>,
        error: Option<&str>,
    ) -> StoreResult<()> {
        self.update_notification(tenant_id, id, sent_at, error).await
    }

    async fn consume_once(&self, key_hash: &str, expires_at: OffsetDateTime) -> StoreResult<bool> {
        self.insert_once(key_hash, expires_at).await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        self.insert_key(key).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.list_keys().await
    }

    async fn set_signing_key_status(&self, kid: &str, status: KeyStatus) -> StoreResult<()> {
        self.update_key_status(kid, status).await
    }

    async fn put_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.upsert_session(session).await
    }

    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        self.get_session(id_hash).await
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        self.remove_session(id_hash).await
    }

    async fn put_device_authorization(&self, record: &DeviceAuthorizationRecord) -> StoreResult<()> {
        self.insert_device_authorization(record).await
    }

    async fn device_authorization_by_user_code(
        &self,
        user_code_hash: &str,
    ) -> StoreResult<Option<DeviceAuthorizationRecord>> {
        self.get_device_authorization_by_user_code(user_code_hash).await
    }

    async fn decide_device_authorization(
        &self,
        device_code_hash: &str,
        decision: &DeviceStatus,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.decide_device(device_code_hash, decision, now).await
    }

    async fn redeem_device_authorization(
        &self,
        device_code_hash: &str,
        client_app_id: AppId,
        now: OffsetDateTime,
    ) -> StoreResult<DeviceRedemption> {
        self.redeem_device(device_code_hash, client_app_id, now).await
    }

    async fn put_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
        self.upsert_refresh_token(token).await
    }

    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        self.get_refresh_token(token_hash).await
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: OffsetDateTime,
    ) -> StoreResult<RotateOutcome> {
        self.rotate_token(old_hash, new, now).await
    }

    async fn revoke_refresh_family(&self, family_id: Uuid) -> StoreResult<()> {
        self.revoke_family(family_id).await
    }

    async fn wipe_world(&self) -> StoreResult<()> {
        self.wipe().await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.purge(now).await
    }

    fn statements_executed(&self) -> u64 {
        self.inner.statements.load(Ordering::Relaxed)
    }

    fn directory_cache_counts(&self) -> (u64, u64) {
        self.inner.cache.counts()
    }

    fn group_commit_counts(&self) -> (u64, u64) {
        (self.inner.grouped_writes.load(Ordering::Relaxed), self.inner.write_batches.load(Ordering::Relaxed))
    }

    fn connection_checks(&self) -> u64 {
        self.inner.connection_checks.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;

    async fn pragma(store: &SqlStore, name: &str) -> String {
        let row = sqlx::query(&format!("PRAGMA {name}")).fetch_one(store.pool()).await.unwrap();
        match row.try_get::<String, _>(0) {
            Ok(s) => s,
            Err(_) => row.try_get::<i64, _>(0).unwrap().to_string(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_connections_are_configured() {
        // A directory name that needs escaping in the URL.
        let dir = std::env::temp_dir().join(format!("accord store #1 ?x=%41 {}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("accord.db");
        let store = SqlStore::connect_sqlite_file(&path).await.unwrap();
        assert!(path.exists(), "the file is created where asked");
        assert_eq!(store.backend_name(), "sqlite");
        assert_eq!(pragma(&store, "journal_mode").await, "wal");
        assert_eq!(pragma(&store, "synchronous").await, "1", "NORMAL");
        assert_eq!(pragma(&store, "foreign_keys").await, "1");
        assert_eq!(pragma(&store, "busy_timeout").await, "5000");
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// SQLite's query plan for `sql` (its `detail` lines), with two id binds.
    async fn plan(store: &SqlStore, sql: &str) -> Vec<String> {
        let text = format!("EXPLAIN QUERY PLAN {sql}");
        let q = sqlx::query(&text).bind(Uuid::nil().to_string()).bind(Uuid::nil().to_string());
        let rows = q.fetch_all(store.pool()).await.unwrap();
        rows.iter().map(|r| r.try_get::<String, _>("detail").unwrap()).collect()
    }

    /// The walks up and down nested groups read each step's memberships by the group or the
    /// member, never by the tenant alone: without statistics SQLite's planner once chose a
    /// covering index on the tenant for the walk down, and the transitive members of the root
    /// of 10,000 nested groups (100,000 users) read every membership of the tenant for each
    /// group below — it did not finish in ten minutes. Statement counts cannot see a plan.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn membership_walks_read_memberships_by_key() {
        let path = std::env::temp_dir().join(format!("accord-plans-{}.db", Uuid::new_v4().simple()));
        let store = SqlStore::connect_sqlite_file(&path).await.unwrap();
        let mut pages = Vec::new();
        for (transitive, nested_users_only) in [(false, false), (true, false), (true, true)] {
            let query = MemberQuery { transitive, nested_users_only, after: None, limit: 10 };
            for (kind, dense) in [(MemberKind::User, false), (MemberKind::User, true), (MemberKind::Group, false)] {
                let sql = directory::members_page_sql(Backend::Sqlite, kind, &query, dense)
                    .replace("$4", "10")
                    .replace("$3", "'[]'");
                if dense {
                    // Walking the users in name order, each user's memberships are read by the
                    // member, not by probing every group of the closure for that user.
                    let plan = plan(&store, &sql).await;
                    let check = plan.iter().find(|d| d.starts_with("SEARCH m ")).expect("a membership check");
                    assert!(check.contains("member_id=?") && !check.contains("group_id=?"), "{plan:#?}");
                }
                pages.push(sql);
            }
        }
        for sql in [directory::MEMBERSHIPS_SQL].into_iter().chain(pages.iter().map(String::as_str)) {
            let plan = plan(&store, sql).await;
            let reads: Vec<&String> =
                plan.iter().filter(|d| d.contains(" m ") || d.contains("group_members")).collect();
            assert!(!reads.is_empty(), "the plan reads group_members: {plan:#?}");
            for read in reads {
                let keyed = read.starts_with("SEARCH")
                    && (read.contains("group_id=?") || read.contains("member_id=?"))
                    && !read.ends_with("(tenant_id=?)");
                assert!(keyed, "a membership read by the tenant alone (or a scan): {read}\nplan: {plan:#?}\n{sql}");
            }
        }
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// sqlx's own check on every acquire stays off: [`CHECK_AFTER_IDLE`] decides instead (the
    /// conformance case `connections_are_checked_only_after_idling` shows the decision).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_idle_connections_are_checked_before_use() {
        let path = std::env::temp_dir().join(format!("accord-checks-{}.db", Uuid::new_v4().simple()));
        let store = SqlStore::connect_sqlite_file(&path).await.unwrap();
        assert!(!store.pool().options().get_test_before_acquire());
        store.close().await;
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn unknown_url_schemes_are_refused() {
        let err = SqlStore::connect("mysql://localhost/db").await.unwrap_err();
        assert!(matches!(err, StoreError::Database(ref m) if m.contains("mysql")), "{err}");
    }

    #[test]
    fn timestamps_keep_microseconds_and_floor() {
        use time::macros::datetime;
        let t = datetime!(2024-03-01 12:00:00.123456789 UTC);
        assert_eq!(codec::from_micros("t", codec::micros(t)).unwrap(), datetime!(2024-03-01 12:00:00.123456 UTC));
        let before_epoch = datetime!(1969-12-31 23:59:59.5 UTC);
        assert_eq!(codec::micros(before_epoch), -500_000);
        assert_eq!(codec::from_micros("t", -500_000).unwrap(), before_epoch);
        assert!(codec::from_micros("t", i64::MAX).is_err());
    }
}
