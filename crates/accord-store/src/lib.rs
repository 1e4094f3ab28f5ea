//! Accord's persistence: one [`Store`] trait, served by SQLite (embedded default) and
//! PostgreSQL (scale-out) through one SQL implementation, with a migration set per backend.
//!
//! Every read of tenant-owned rows takes the tenant id: a handler cannot reach another
//! tenant's rows by forgetting a filter. Every write goes through [`Store::apply`], which applies
//! a list of [`Change`]s in one transaction (scenario files load whole or not at all).

mod records;
mod sql;

pub use records::*;
pub use sql::{count_statements, CacheScope, CacheSettings, SqlStore};

use accord_core::consent_records::*;
use accord_core::directory::*;
use accord_core::ids::{AppId, AppObjectId, GroupId, ServicePrincipalId, TenantId, UserId};
use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. a UPN or domain already taken); the text names it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A change refers to a row that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The row changed since the writer read it (another write came first); nothing was
    /// written. Read again and redo the change. The text says what moved.
    #[error("stale: {0}")]
    Stale(String),
    /// The database cannot be reached (connection refused or lost, no connection free in time):
    /// nothing was read or written; worth retrying later. The detail is for logs.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database failed; the detail is for logs, not for clients.
    #[error("database error: {0}")]
    Database(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One write. `Put*` are upserts keyed by the object's id (tenants by id, applications by app id).
#[derive(Debug, Clone)]
pub enum Change {
    PutTenant(Tenant),
    PutUser(User),
    /// Deletes a user with what exists only through them: directory roles, group memberships,
    /// their own consent grants, app assignments, calendar, consent requests, sessions, codes
    /// and refresh tokens. Not found when there is no such user in the tenant.
    DeleteUser {
        tenant_id: TenantId,
        user_id: UserId,
    },
    /// Records the fingerprint of the password a scenario gave a user (see
    /// [`Store::scenario_passwords`]); replaces the previous one.
    PutScenarioPassword {
        tenant_id: TenantId,
        user_id: UserId,
        fingerprint: String,
    },
    /// Ends everything a user signed in with: their SSO sessions and unredeemed codes go, and
    /// every refresh-token family of theirs is revoked (a refresh answers AADSTS50173), as
    /// Entra does after a password reset, a disabled account or `revokeSignInSessions`.
    EndSignIns {
        tenant_id: TenantId,
        user_id: UserId,
        /// Recorded on the user (`sign_ins_valid_from`): tokens issued before it are revoked
        /// for clients that evaluate access continuously.
        at: OffsetDateTime,
    },
    /// Replaces the user's directory roles.
    SetUserRoles {
        tenant_id: TenantId,
        user_id: UserId,
        roles: Vec<DirectoryRole>,
    },
    PutGroup(Group),
    /// Replaces the group's direct members.
    SetGroupMembers {
        tenant_id: TenantId,
        group_id: GroupId,
        members: Vec<GroupMember>,
    },
    PutApplication(Application),
    PutClientSecret(ClientSecret),
    /// Deletes an app registration (by object id) with everything that exists only through it:
    /// its secrets, its service principal in every tenant (and so their grants, role
    /// assignments and classifications), the app permissions those service principals hold,
    /// consent requests for it, and its authorization codes and refresh tokens. Not found when
    /// there is no such registration.
    DeleteApplication {
        app_object_id: AppObjectId,
    },
    DeleteClientSecret {
        app_object_id: AppObjectId,
        secret_id: Uuid,
    },
    /// Deletes one tenant's enterprise app (service principal) with what exists only through
    /// it there: its grants, the assignments to it and the app permissions it holds, its
    /// classifications, the client's codes and refresh tokens in the tenant. Journalled as
    /// `app.deleted`. Not found when the tenant has no such service principal.
    DeleteServicePrincipal {
        tenant_id: TenantId,
        sp_id: ServicePrincipalId,
    },
    PutServicePrincipal(ServicePrincipal),
    PutDelegatedGrant(DelegatedGrant),
    DeleteDelegatedGrant {
        tenant_id: TenantId,
        grant_id: Uuid,
    },
    PutAppRoleAssignment(AppRoleAssignment),
    DeleteAppRoleAssignment {
        tenant_id: TenantId,
        assignment_id: Uuid,
    },
    PutEvent(CalendarEvent),
    DeleteEvent {
        tenant_id: TenantId,
        event_id: Uuid,
    },
    PutConsentRequest(ConsentRequest),
    /// Records a decision on a request (its status, result, reviewer, justification and times)
    /// only while the stored request is still in progress; otherwise the whole `apply` fails
    /// with `Stale`, so two reviewers (or a reviewer and the expiry job) cannot both decide it.
    DecideConsentRequest(ConsentRequest),
    PutPermissionClassification(PermissionClassification),
    DeletePermissionClassification {
        tenant_id: TenantId,
        classification_id: Uuid,
    },
    /// Audit events are only ever appended.
    AppendAudit(AuditEvent),
    EnqueueNotification(Notification),
    /// Upserts a change-notification subscription (by id).
    PutSubscription(GraphSubscription),
    /// Deletes a subscription and every notification still queued for it.
    DeleteSubscription {
        tenant_id: TenantId,
        subscription_id: Uuid,
    },
    EnqueueGraphNotification(GraphNotification),
    /// Upserts a consent webhook (url, secrets; the cursor is the outbox's to move).
    PutConsentWebhook(ConsentWebhook),
    /// Deletes a consent webhook with its delivery log.
    DeleteConsentWebhook {
        app_id: AppId,
        webhook_id: Uuid,
    },
    /// Hands events `(from, to]` to a webhook's outbox: its deliveries, and the cursor moved
    /// from `from` to `to` — only if the cursor is still at `from` (else `Stale`: another
    /// replica did it).
    EnqueueWebhookDeliveries {
        webhook_id: Uuid,
        from: i64,
        to: i64,
        deliveries: Vec<WebhookDelivery>,
    },
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies every change in one transaction: all of them, or none.
    async fn apply(&self, changes: &[Change]) -> StoreResult<()>;

    // --- tenants ---
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>>;
    /// Looks a tenant up by one of its verified domains (case-insensitive).
    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<Tenant>>;
    async fn tenants(&self) -> StoreResult<Vec<Tenant>>;

    // --- users, roles, groups ---
    async fn user(&self, tenant_id: TenantId, id: UserId) -> StoreResult<Option<User>>;
    /// Case-insensitive UPN look-up within one tenant.
    async fn user_by_upn(&self, tenant_id: TenantId, upn: &str) -> StoreResult<Option<User>>;
    async fn users(&self, tenant_id: TenantId) -> StoreResult<Vec<User>>;
    /// One page of the tenant's users (see [`NameQuery`]), read from the database.
    async fn users_page(&self, tenant_id: TenantId, query: &NameQuery) -> StoreResult<Vec<User>>;
    /// How many users the query's prefix matches (its position and limit aside).
    async fn count_users(&self, tenant_id: TenantId, query: &NameQuery) -> StoreResult<u64>;
    /// One page of the tenant's groups (see [`NameQuery`]; display names only).
    async fn groups_page(&self, tenant_id: TenantId, query: &NameQuery) -> StoreResult<Vec<Group>>;
    async fn count_groups(&self, tenant_id: TenantId, query: &NameQuery) -> StoreResult<u64>;
    async fn user_roles(&self, tenant_id: TenantId, user_id: UserId) -> StoreResult<Vec<DirectoryRole>>;
    /// The directory roles of several users in one read (a page of a user list); users
    /// without roles are absent.
    async fn roles_of_users(
        &self,
        tenant_id: TenantId,
        user_ids: &[UserId],
    ) -> StoreResult<std::collections::HashMap<UserId, Vec<DirectoryRole>>>;
    /// How many direct members each of these groups has, in one read.
    async fn member_counts(
        &self,
        tenant_id: TenantId,
        group_ids: &[GroupId],
    ) -> StoreResult<std::collections::HashMap<GroupId, u64>>;
    /// The fingerprints of the passwords the last scenario load gave these users of the tenant
    /// (keyed by the loader: a restart with the same scenario and an unchanged hash keeps the
    /// hash without argon2); users without one are absent. One statement for up to 500 users.
    async fn scenario_passwords(
        &self,
        tenant_id: TenantId,
        user_ids: &[UserId],
    ) -> StoreResult<std::collections::HashMap<UserId, String>>;
    /// The tenant's users with these UPNs (any letter case), in no particular order; UPNs
    /// without a user are left out. One statement for up to 500 UPNs.
    async fn users_with_upns(&self, tenant_id: TenantId, upns: &[&str]) -> StoreResult<Vec<User>>;
    /// The direct members of these groups of the tenant, each group's in their stored order;
    /// groups without members are absent. One statement for up to 500 groups.
    async fn members_of_groups(
        &self,
        tenant_id: TenantId,
        group_ids: &[GroupId],
    ) -> StoreResult<std::collections::HashMap<GroupId, Vec<GroupMember>>>;
    /// A group's members, direct or (`transitive`) through nested groups too: users and groups,
    /// each once, in display-name order (ties by id).
    async fn group_closure(
        &self,
        tenant_id: TenantId,
        group_id: GroupId,
        transitive: bool,
    ) -> StoreResult<(Vec<User>, Vec<Group>)>;
    /// One page of a group's members (see [`MemberQuery`]): a few statements, whatever the size.
    async fn group_members_page(
        &self,
        tenant_id: TenantId,
        group_id: GroupId,
        query: &MemberQuery,
    ) -> StoreResult<Vec<DirectoryObject>>;
    /// Every group `member_id` is in, directly or through nested groups, with names and the
    /// way up (one read, whatever the depth; cycles end). Sorted by group id.
    async fn memberships_of(&self, tenant_id: TenantId, member_id: Uuid) -> StoreResult<Vec<Membership>>;
    /// The users of the tenant who hold `role`.
    async fn role_holders(&self, tenant_id: TenantId, role: DirectoryRole) -> StoreResult<Vec<UserId>>;
    /// Atomically adds one to the user's failed sign-in count and returns the new count.
    async fn record_failed_sign_in(&self, tenant_id: TenantId, user_id: UserId) -> StoreResult<u32>;
    /// Sets the lock and clears the failure count (`None` unlocks).
    async fn set_locked_until(
        &self,
        tenant_id: TenantId,
        user_id: UserId,
        until: Option<OffsetDateTime>,
    ) -> StoreResult<()>;
    async fn clear_failed_sign_ins(&self, tenant_id: TenantId, user_id: UserId) -> StoreResult<()>;
    async fn group(&self, tenant_id: TenantId, id: GroupId) -> StoreResult<Option<Group>>;
    async fn group_by_name(&self, tenant_id: TenantId, display_name: &str) -> StoreResult<Option<Group>>;
    async fn groups(&self, tenant_id: TenantId) -> StoreResult<Vec<Group>>;
    async fn group_members(&self, tenant_id: TenantId, group_id: GroupId) -> StoreResult<Vec<GroupMember>>;
    /// Every group the member belongs to, directly or through nested groups (cycles are safe).
    async fn transitive_groups_of(&self, tenant_id: TenantId, member_id: Uuid) -> StoreResult<Vec<GroupId>>;

    // --- app registrations (global, keyed by app id) ---
    async fn application_by_app_id(&self, app_id: AppId) -> StoreResult<Option<Application>>;
    /// Matches the identifier URI exactly, ignoring case and a trailing slash.
    async fn application_by_identifier_uri(&self, uri: &str) -> StoreResult<Option<Application>>;
    async fn applications_homed_in(&self, tenant_id: TenantId) -> StoreResult<Vec<Application>>;
    /// Whether some app registers a single-page-app redirect URI with this browser origin
    /// (`scheme://host[:port]`): what a CORS preflight, which names no client, may be told.
    async fn spa_origin_registered(&self, origin: &str) -> StoreResult<bool>;
    async fn client_secrets(&self, app_object_id: AppObjectId) -> StoreResult<Vec<ClientSecret>>;

    // --- enterprise apps, grants, assignments ---
    async fn service_principal(
        &self,
        tenant_id: TenantId,
        id: ServicePrincipalId,
    ) -> StoreResult<Option<ServicePrincipal>>;
    async fn service_principal_by_app_id(
        &self,
        tenant_id: TenantId,
        app_id: AppId,
    ) -> StoreResult<Option<ServicePrincipal>>;
    async fn service_principals(&self, tenant_id: TenantId) -> StoreResult<Vec<ServicePrincipal>>;
    async fn delegated_grant(&self, tenant_id: TenantId, id: Uuid) -> StoreResult<Option<DelegatedGrant>>;
    async fn delegated_grants(&self, tenant_id: TenantId) -> StoreResult<Vec<DelegatedGrant>>;
    /// The grants held by one client service principal (all resources, all principals).
    async fn delegated_grants_of_client(
        &self,
        tenant_id: TenantId,
        client_sp_id: ServicePrincipalId,
    ) -> StoreResult<Vec<DelegatedGrant>>;
    /// Assignments whose resource is this service principal (`appRoleAssignedTo`).
    async fn app_role_assignments_to(
        &self,
        tenant_id: TenantId,
        resource_sp_id: ServicePrincipalId,
    ) -> StoreResult<Vec<AppRoleAssignment>>;
    /// Assignments held by this principal (`appRoleAssignments`).
    async fn app_role_assignments_of(
        &self,
        tenant_id: TenantId,
        principal_id: Uuid,
    ) -> StoreResult<Vec<AppRoleAssignment>>;

    /// Time-bound grants and assignments whose end is at or before `now`, across tenants (the
    /// expiry sweep); at most `limit` of each.
    async fn expired_grants(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<(Vec<DelegatedGrant>, Vec<AppRoleAssignment>)>;

    // --- calendars ---
    async fn event(&self, tenant_id: TenantId, id: Uuid) -> StoreResult<Option<CalendarEvent>>;
    /// The owner's events overlapping `[from, to)` when given, ordered by start.
    async fn events_of(
        &self,
        tenant_id: TenantId,
        owner_id: UserId,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> StoreResult<Vec<CalendarEvent>>;

    // --- calendar sync: the change journal, subscriptions and their outbox ---
    /// The number of the owner's latest calendar change (0 before any): where a delta round ends.
    async fn calendar_watermark(&self, tenant_id: TenantId, owner_id: UserId) -> StoreResult<i64>;
    /// The owner's events overlapping `[from, to)`, ordered by id, after `after` when given; at
    /// most `limit` (a delta round's first pages).
    async fn events_page(
        &self,
        tenant_id: TenantId,
        owner_id: UserId,
        window: (OffsetDateTime, OffsetDateTime),
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<CalendarEvent>>;
    /// The owner's calendar changes numbered in `(since, until]`, in order; at most `limit`.
    async fn calendar_changes(
        &self,
        tenant_id: TenantId,
        owner_id: UserId,
        since: i64,
        until: i64,
        limit: u32,
    ) -> StoreResult<Vec<CalendarChange>>;
    async fn subscription(&self, tenant_id: TenantId, id: Uuid) -> StoreResult<Option<GraphSubscription>>;
    /// Every subscription on the mailbox's events (any status).
    async fn subscriptions_of_mailbox(
        &self,
        tenant_id: TenantId,
        mailbox_id: UserId,
    ) -> StoreResult<Vec<GraphSubscription>>;
    /// Every subscription the client app holds in the tenant (any status), oldest first.
    async fn subscriptions_of_app(
        &self,
        tenant_id: TenantId,
        client_app_id: AppId,
    ) -> StoreResult<Vec<GraphSubscription>>;
    /// Subscriptions not removed, across tenants, ordered by id after `after`; at most `limit`.
    async fn live_subscriptions(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<GraphSubscription>>;
    /// Queued notifications whose next attempt is due at `now`, oldest first; at most `limit`.
    async fn due_graph_notifications(&self, now: OffsetDateTime, limit: u32) -> StoreResult<Vec<GraphNotification>>;
    /// Claims an attempt: moves the next attempt from `seen` to `until` if no one else did; false
    /// when another replica took it (or it is gone).
    async fn claim_graph_notification(
        &self,
        id: Uuid,
        seen: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// A failed attempt: counts it and schedules the next.
    async fn retry_graph_notification(
        &self,
        id: Uuid,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> StoreResult<()>;
    /// Delivered or given up: the row goes.
    async fn finish_graph_notification(&self, id: Uuid) -> StoreResult<()>;

    // --- consent webhooks ---
    /// The newest consent event's number (0 before any): where a new webhook starts.
    async fn consent_event_watermark(&self) -> StoreResult<i64>;
    /// The app's consent events numbered after `after`, in order; at most `limit`.
    async fn consent_events_after(&self, app_id: AppId, after: i64, limit: u32) -> StoreResult<Vec<ConsentEvent>>;
    /// The consent events of one tenant and app recorded after `since`, in order; at most
    /// `limit` (test mode's replication lag rewinds by them).
    async fn consent_events_since(
        &self,
        tenant_id: TenantId,
        app_id: AppId,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<ConsentEvent>>;
    async fn consent_webhook(&self, id: Uuid) -> StoreResult<Option<ConsentWebhook>>;
    /// The app's webhooks, oldest first.
    async fn consent_webhooks_of(&self, app_id: AppId) -> StoreResult<Vec<ConsentWebhook>>;
    /// Every webhook (the outbox worker).
    async fn consent_webhooks(&self) -> StoreResult<Vec<ConsentWebhook>>;
    /// Deliveries due at `now`, oldest first; at most `limit`.
    async fn due_webhook_deliveries(&self, now: OffsetDateTime, limit: u32) -> StoreResult<Vec<WebhookDelivery>>;
    /// Claims an attempt (moves its next attempt from `seen` to `until`); false if taken.
    async fn claim_webhook_delivery(&self, id: Uuid, seen: OffsetDateTime, until: OffsetDateTime) -> StoreResult<bool>;
    /// Records an attempt's outcome.
    async fn record_webhook_attempt(&self, delivery: &WebhookDelivery) -> StoreResult<()>;
    /// A webhook's deliveries, newest first; at most `limit`.
    async fn webhook_deliveries(&self, webhook_id: Uuid, limit: u32) -> StoreResult<Vec<WebhookDelivery>>;

    // --- consent workflow, classifications, audit, outbox ---
    async fn consent_request(&self, tenant_id: TenantId, id: Uuid) -> StoreResult<Option<ConsentRequest>>;
    /// Requests of the tenant, newest first; narrowed to one client app when given.
    async fn consent_requests(
        &self,
        tenant_id: TenantId,
        client_app_id: Option<AppId>,
    ) -> StoreResult<Vec<ConsentRequest>>;
    /// In-progress requests whose `expires_at` is at or before `now`, across tenants (expiry job).
    async fn expired_consent_requests(&self, now: OffsetDateTime) -> StoreResult<Vec<ConsentRequest>>;
    async fn permission_classifications(
        &self,
        tenant_id: TenantId,
        resource_sp_id: ServicePrincipalId,
    ) -> StoreResult<Vec<PermissionClassification>>;
    /// Newest first (ties by id), as the query narrows and pages them.
    async fn audit_events(&self, tenant_id: TenantId, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;
    async fn audit_event(&self, tenant_id: TenantId, id: Uuid) -> StoreResult<Option<AuditEvent>>;
    async fn notifications(&self, tenant_id: TenantId) -> StoreResult<Vec<Notification>>;
    /// Unsent notifications across tenants with fewer than `max_attempts` failed attempts (the
    /// rest were given up and stay only for the record), oldest first, at most `limit`.
    async fn unsent_notifications(&self, max_attempts: u32, limit: u32) -> StoreResult<Vec<Notification>>;
    async fn mark_notification(
        &self,
        tenant_id: TenantId,
        id: Uuid,
        sent_at: Option<OffsetDateTime>,
        error: Option<&str>,
    ) -> StoreResult<()>;
    /// Records a single-use value (e.g. a consent form's id); false if it was seen before.
    /// Rows go with `purge_expired` after `expires_at`.
    async fn consume_once(&self, key_hash: &str, expires_at: OffsetDateTime) -> StoreResult<bool>;

    // --- protocol state: keys, sessions, codes, refresh tokens ---
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// All keys, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    async fn set_signing_key_status(&self, kid: &str, status: KeyStatus) -> StoreResult<()>;
    async fn put_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    async fn put_device_authorization(&self, record: &DeviceAuthorizationRecord) -> StoreResult<()>;
    async fn device_authorization_by_user_code(
        &self,
        user_code_hash: &str,
    ) -> StoreResult<Option<DeviceAuthorizationRecord>>;
    /// Approves or refuses a pending, unexpired device authorization; `false` when it was not
    /// pending (answered already) or has expired.
    async fn decide_device_authorization(
        &self,
        device_code_hash: &str,
        decision: &DeviceStatus,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// The device's poll by `client_app_id`: an approved authorization is redeemed, once.
    /// Another client's device code is `NotFound`, whatever its state.
    async fn redeem_device_authorization(
        &self,
        device_code_hash: &str,
        client_app_id: AppId,
        now: OffsetDateTime,
    ) -> StoreResult<DeviceRedemption>;
    async fn put_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()>;
    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>>;
    /// Replaces `old_hash` by `new` if `old_hash` is live; a used token revokes its family.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: OffsetDateTime,
    ) -> StoreResult<RotateOutcome>;
    async fn revoke_refresh_family(&self, family_id: Uuid) -> StoreResult<()>;
    /// Deletes expired sessions, codes and device authorizations, and refresh tokens
    /// [`EXPIRED_REFRESH_TOKEN_MEMORY_DAYS`] after they expired; returns how many rows went.
    async fn purge_expired(&self, now: OffsetDateTime) -> StoreResult<u64>;
    /// Deletes every tenant with everything in it, every app registration, and all protocol
    /// state except the signing keys (tokens already issued keep verifying): the clean slate a
    /// test-mode reset loads its scenario into. Caches forget what they held.
    async fn wipe_world(&self) -> StoreResult<()>;
    /// Reaches the database itself (never the cache): for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Number of SQL statements this store has executed (for benchmarks: queries per flow).
    fn statements_executed(&self) -> u64;
    /// Reads served by the in-memory directory cache and reads it passed to the database.
    fn directory_cache_counts(&self) -> (u64, u64) {
        (0, 0)
    }
    /// Writes committed in groups (codes' single-use markers, new refresh tokens) and the
    /// batches they took: their ratio is how many requests shared a commit.
    fn group_commit_counts(&self) -> (u64, u64) {
        (0, 0)
    }
    /// Pooled database connections checked (pinged) before use: only those idle a while are.
    fn connection_checks(&self) -> u64 {
        0
    }
}
