//! The conformance suite: one set of cases over `&dyn Store`, run against SQLite (a fresh file
//! per test) and PostgreSQL (a fresh schema per test, when `ACCORD_TEST_DATABASE_URL` is set,
//! e.g. `postgres://postgres@127.0.0.1:5432/test`).
//!
//! `conformance!` expands every case into `sqlite::<case>` and `postgres::<case>` tests.

use std::future::Future;
use std::path::PathBuf;

use accord_store::SqlStore;
use sqlx::{Connection, Executor};

const PG_ENV: &str = "ACCORD_TEST_DATABASE_URL";

enum Cleanup {
    SqliteFile(PathBuf),
    PostgresSchema { base_url: String, schema: String },
}

struct TestDb {
    store: SqlStore,
    url: String,
    cleanup: Cleanup,
}

async fn sqlite_db() -> TestDb {
    let path = std::env::temp_dir().join(format!("accord-store-test-{}.db", uuid::Uuid::new_v4().simple()));
    let store = SqlStore::connect_sqlite_file(&path).await.expect("open the SQLite test database");
    assert_eq!(store.backend_name(), "sqlite");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    TestDb { store, url, cleanup: Cleanup::SqliteFile(path) }
}

/// A fresh schema in the configured PostgreSQL database. The tests that call it are ignored
/// unless the URL was set when they were built (`build.rs`); set, it must answer.
async fn postgres_db() -> TestDb {
    let base_url = std::env::var(PG_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| panic!("{PG_ENV} was set when these tests were built, and is not now"));
    sqlx::any::install_default_drivers();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(&base_url).await.expect("connect to ACCORD_TEST_DATABASE_URL");
    admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.expect("create the test schema");
    admin.close().await.ok();
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{separator}options=-c%20search_path%3D{schema}");
    let store = SqlStore::connect(&url).await.expect("open the PostgreSQL test schema");
    assert_eq!(store.backend_name(), "postgres");
    TestDb { store, url, cleanup: Cleanup::PostgresSchema { base_url, schema } }
}

/// Runs one case on its own task so that a failing assertion still lets us drop the schema or
/// delete the file, then re-raises the failure.
async fn run_case<F, Fut>(db: TestDb, case: F)
where
    F: FnOnce(SqlStore, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let result = tokio::spawn(case(db.store.clone(), db.url.clone())).await;
    db.store.close().await;
    match db.cleanup {
        Cleanup::SqliteFile(path) => {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
        Cleanup::PostgresSchema { base_url, schema } => {
            let mut admin = sqlx::AnyConnection::connect(&base_url).await.expect("reconnect to drop the schema");
            admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await.expect("drop the test schema");
            admin.close().await.ok();
        }
    }
    if let Err(e) = result {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

macro_rules! conformance {
    (store: [$($case:ident),* $(,)?], raw: [$($raw:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = super::sqlite_db().await;
                    super::run_case(db, |store, _url| async move { super::cases::$case(&store).await }).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $raw() {
                    let db = super::sqlite_db().await;
                    super::run_case(db, |store, url| async move { super::raw_cases::$raw(&store, &url).await }).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(accord_pg), ignore = "ACCORD_TEST_DATABASE_URL was not set at build time")]
                async fn $case() {
                    let db = super::postgres_db().await;
                    super::run_case(db, |store, _url| async move { super::cases::$case(&store).await }).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(accord_pg), ignore = "ACCORD_TEST_DATABASE_URL was not set at build time")]
                async fn $raw() {
                    let db = super::postgres_db().await;
                    super::run_case(db, |store, url| async move { super::raw_cases::$raw(&store, &url).await }).await;
                }
            )*
        }
    };
}

conformance! {
    store: [
        tenant_round_trip_and_upsert,
        tenant_writes_from_a_stale_read_are_refused,
        request_decisions_apply_once,
        tenant_by_domain_is_case_insensitive,
        user_round_trip_and_upsert,
        user_roles_replace_and_dedupe,
        groups_and_members,
        nested_groups_with_a_cycle,
        application_round_trip_and_lookups,
        spa_origins_follow_the_registration,
        client_secrets,
        application_delete_takes_what_hangs_on_it,
        user_delete_takes_what_hangs_on_it,
        ending_sign_ins_revokes_sessions_and_refresh_families,
        service_principals,
        delegated_grants,
        app_role_assignments,
        events_round_trip_and_overlap,
        calendar_journal_numbers_changes_in_order,
        concurrent_calendar_writes_keep_the_journal_ordered,
        subscriptions_and_their_outbox,
        wiping_the_world_keeps_the_signing_keys,
        consent_changes_are_journalled_for_webhooks,
        time_bound_grants_are_found_when_they_end,
        tenant_isolation,
        domain_conflict_rolls_back,
        upn_conflict_rolls_back,
        application_conflicts_roll_back,
        group_and_service_principal_conflicts,
        missing_references_are_not_found,
        batch_order_does_not_matter,
        failed_sign_ins_and_lock,
        concurrent_failed_sign_ins,
        sign_in_reads_are_cached_and_see_every_write,
        device_authorization_lifecycle,
        concurrent_device_decisions_and_polls,
        refresh_rotation_and_reuse_detection,
        refresh_family_revocation,
        concurrent_refresh_rotation,
        purge_expired,
        signing_keys,
        sessions,
        deletes_of_missing_rows_are_ok,
        statements_executed_counts,
        connections_are_checked_only_after_idling,
        directory_cache_sees_local_writes_at_once,
        consent_request_round_trip_and_upsert,
        consent_requests_by_app_newest_first,
        expired_consent_requests,
        permission_classifications,
        audit_round_trip_limit_and_filter,
        audit_is_append_only,
        audit_pages_by_prefix_time_and_position,
        directory_pages_by_name_prefix_and_position,
        batched_directory_reads,
        notification_lifecycle,
        consume_once_and_purge,
        concurrent_consume_once,
        concurrent_markers_and_tokens,
        a_bad_row_fails_only_its_own_write,
        consent_workflow_tenant_isolation,
    ],
    raw: [
        name_keys_from_before_are_repaired_once,
        unreadable_values_are_database_errors,
        unreadable_consent_workflow_values_are_database_errors,
        reconnecting_keeps_data,
        directory_cache_sees_other_processes_writes,
    ],
}

mod fixtures {
    use accord_core::consent_records::*;
    use accord_core::directory::*;
    use accord_store::*;
    use time::{Duration, OffsetDateTime};
    use uuid::Uuid;

    /// A fresh random id of whichever kind the context needs.
    pub fn fresh<T: From<Uuid>>() -> T {
        T::from(Uuid::new_v4())
    }

    /// A timestamp with a microsecond part, to check the precision kept.
    pub fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap() + Duration::microseconds(123_456)
    }

    pub fn at(minutes: i64) -> OffsetDateTime {
        t0() + Duration::minutes(minutes)
    }

    pub fn tenant(name: &str, domains: &[&str]) -> Tenant {
        Tenant {
            id: fresh(),
            display_name: name.to_string(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            user_consent: UserConsent::Low,
            admin_consent_requests: AdminConsentRequestPolicy::default(),
            revision: 0,
        }
    }

    pub fn user(tenant_id: TenantId, upn: &str) -> User {
        User {
            tenant_id,
            id: fresh(),
            upn: upn.to_string(),
            display_name: format!("User {upn}"),
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string()),
            enabled: true,
            failed_sign_ins: 0,
            locked_until: None,
            sign_ins_valid_from: None,
        }
    }

    pub fn group(tenant_id: TenantId, name: &str) -> Group {
        Group { tenant_id, id: fresh(), display_name: name.to_string() }
    }

    pub fn application(home_tenant_id: TenantId, name: &str, identifier_uri: Option<&str>) -> Application {
        Application {
            id: fresh(),
            app_id: fresh(),
            home_tenant_id,
            display_name: name.to_string(),
            sign_in_audience: SignInAudience::MultipleOrgs,
            redirect_uris: vec!["https://app.test/callback".into(), "http://localhost:8400/".into()],
            public_client: false,
            verified_publisher: true,
            identifier_uri: identifier_uri.map(str::to_string),
            scopes: vec![PermissionScope {
                id: fresh(),
                value: "Data.Read".into(),
                admin_consent_required: false,
                admin_consent_display_name: "Read data".into(),
                admin_consent_description: "Reads all the data".into(),
                user_consent_display_name: "Read your data".into(),
                user_consent_description: "Reads your data — ünïcödé".into(),
            }],
            app_roles: vec![AppRole {
                id: fresh(),
                value: "Data.ReadWrite.All".into(),
                display_name: "Read and write all data".into(),
                description: "Application permission".into(),
                allowed_member_types: vec![AppRoleMemberType::Application, AppRoleMemberType::User],
            }],
            required: vec![RequiredResourceAccess {
                resource_app_id: fresh(),
                delegated: vec!["User.Read".into(), "openid".into()],
                application: vec!["User.Read.All".into()],
            }],
            key_credentials: Vec::new(),
            spa_redirect_uris: Vec::new(),
            federated_credentials: Vec::new(),
            group_membership_claims: Default::default(),
            optional_claims: Default::default(),
            pre_authorized: Vec::new(),
            access_token_version: 2,
            known_client_applications: Vec::new(),
        }
    }

    pub fn service_principal(tenant_id: TenantId, app: &Application) -> ServicePrincipal {
        ServicePrincipal {
            tenant_id,
            id: fresh(),
            app_id: app.app_id,
            display_name: app.display_name.clone(),
            app_owner_tenant_id: app.home_tenant_id,
            enabled: true,
            assignment_required: false,
            created_at: t0(),
        }
    }

    pub fn grant(
        tenant_id: TenantId,
        client: ServicePrincipalId,
        resource: ServicePrincipalId,
        principal: Option<UserId>,
    ) -> DelegatedGrant {
        DelegatedGrant {
            tenant_id,
            id: fresh(),
            client_sp_id: client,
            resource_sp_id: resource,
            consent_type: if principal.is_some() { ConsentType::Principal } else { ConsentType::AllPrincipals },
            principal_id: principal,
            scopes: vec!["User.Read".into(), "openid".into(), "offline_access".into()],
            created_at: t0(),
            expires_at: None,
        }
    }

    pub fn assignment(
        tenant_id: TenantId,
        principal: impl Into<Uuid>,
        kind: PrincipalType,
        resource: ServicePrincipalId,
    ) -> AppRoleAssignment {
        AppRoleAssignment {
            tenant_id,
            id: fresh(),
            principal_id: principal.into(),
            principal_type: kind,
            resource_sp_id: resource,
            app_role_id: fresh(),
            created_at: t0(),
            expires_at: None,
        }
    }

    pub fn event(tenant_id: TenantId, owner_id: UserId, subject: &str, start: i64, end: i64) -> CalendarEvent {
        CalendarEvent {
            tenant_id,
            id: fresh(),
            owner_id,
            subject: subject.to_string(),
            body: format!("<p>{subject}</p>"),
            location: "Room 1".into(),
            start: at(start),
            end: at(end),
            attendees: vec!["bob@contoso.test".into(), "carol@contoso.test".into()],
            online_meeting_url: Some("https://meet.test/abc".into()),
            created_at: t0(),
            modified_at: at(1),
        }
    }

    pub fn refresh_token(family_id: Uuid, hash: &str) -> RefreshTokenRecord {
        RefreshTokenRecord {
            token_hash: hash.to_string(),
            family_id,
            tenant_id: fresh(),
            client_app_id: fresh(),
            user_id: fresh(),
            scope: "openid offline_access https://graph.microsoft.com/User.Read".into(),
            auth_time: t0(),
            created_at: at(1),
            expires_at: at(60 * 24),
            used_at: None,
            revoked: false,
            spa: false,
        }
    }

    pub fn consent_request(tenant_id: TenantId, client_app_id: AppId, user_id: UserId, created: i64) -> ConsentRequest {
        ConsentRequest {
            tenant_id,
            id: fresh(),
            client_app_id,
            user_id,
            reason: "I need this for the quarterly report — ünïcödé".into(),
            permissions: vec![
                PermissionKey { resource_app_id: fresh(), value: "User.Read".into() },
                PermissionKey { resource_app_id: fresh(), value: "Calendars.Read".into() },
                PermissionKey { resource_app_id: fresh(), value: "Mail.Send".into() },
            ],
            status: RequestStatus::InProgress,
            result: ReviewResult::NotReviewed,
            reviewed_by: None,
            review_justification: None,
            created_at: at(created),
            reviewed_at: None,
            completed_at: None,
            expires_at: at(created + 60 * 24 * 30),
        }
    }

    pub fn classification(
        tenant_id: TenantId,
        resource_sp_id: ServicePrincipalId,
        value: &str,
    ) -> PermissionClassification {
        PermissionClassification {
            tenant_id,
            id: fresh(),
            resource_sp_id,
            permission_id: fresh(),
            permission_value: value.to_string(),
            classification: "low".into(),
        }
    }

    pub fn audit_event(tenant_id: TenantId, minutes: i64, action: &str, app_id: Option<AppId>) -> AuditEvent {
        AuditEvent {
            tenant_id,
            id: fresh(),
            at: at(minutes),
            actor_id: Some(fresh()),
            actor: "alice@contoso.test".into(),
            action: action.to_string(),
            app_id,
            detail: serde_json::json!({
                "scopes": ["User.Read", "openid", "offline_access"],
                "target": { "user": "bob@contoso.test", "nested": [1, [2, 3], { "x": null }] },
                "count": 3,
                "ratio": 0.5,
                "admin": true,
                "justification": "ünïcödé ✓ \"quoted\"",
            }),
        }
    }

    pub fn notification(tenant_id: TenantId, created: i64) -> Notification {
        Notification {
            tenant_id,
            id: fresh(),
            recipient_user_id: fresh(),
            recipient_address: "reviewer@contoso.test".into(),
            kind: "request.new".into(),
            subject: "New admin consent request".into(),
            body: "Alice asks for access to App.\nReview it at https://accord.test/requests".into(),
            created_at: at(created),
            sent_at: None,
            attempts: 0,
            last_error: None,
        }
    }

    /// A tenant with one user, applied.
    pub async fn seed_tenant(s: &dyn Store, name: &str, domain: &str) -> (Tenant, User) {
        let t = tenant(name, &[domain]);
        let u = user(t.id, &format!("alice@{domain}"));
        s.apply(&[Change::PutTenant(t.clone()), Change::PutUser(u.clone())]).await.unwrap();
        (t, u)
    }
}

mod cases {
    use super::fixtures::*;
    use accord_core::consent_records::*;
    use accord_core::directory::*;
    use accord_store::*;
    use time::{Duration, OffsetDateTime};
    use uuid::Uuid;

    fn assert_conflict<T: std::fmt::Debug>(result: StoreResult<T>, needle: &str) {
        match result {
            Err(StoreError::Conflict(msg)) => assert!(
                msg.to_lowercase().contains(&needle.to_lowercase()),
                "conflict message {msg:?} should name {needle:?}"
            ),
            other => panic!("expected a conflict naming {needle:?}, got {other:?}"),
        }
    }

    fn assert_not_found<T: std::fmt::Debug>(result: StoreResult<T>) {
        assert!(matches!(result, Err(StoreError::NotFound(_))), "expected NotFound, got {result:?}");
    }

    pub async fn tenant_round_trip_and_upsert(s: &dyn Store) {
        let mut t = tenant("Contoso", &["contoso.test", "contoso.example"]);
        t.user_consent = UserConsent::None;
        t.admin_consent_requests = AdminConsentRequestPolicy {
            enabled: true,
            reviewers: vec![ReviewerRef::User(fresh()), ReviewerRef::Group(fresh())],
            expire_after_days: 7,
            notify_reviewers: false,
            version: 3,
        };
        let empty = tenant("Alpha (no domains)", &[]);
        s.apply(&[Change::PutTenant(t.clone()), Change::PutTenant(empty.clone())]).await.unwrap();

        assert_eq!(s.tenant(t.id).await.unwrap(), Some(t.clone()));
        assert_eq!(s.tenant(empty.id).await.unwrap(), Some(empty.clone()));
        assert_eq!(s.tenant(fresh()).await.unwrap(), None);
        assert_eq!(s.tenants().await.unwrap(), vec![empty.clone(), t.clone()], "ordered by display name");
        assert_eq!(s.tenant_by_domain("contoso.example").await.unwrap(), Some(t.clone()));

        // Upsert: the row is updated, the domain list replaced (order kept: first is default).
        let mut t2 = t.clone();
        t2.display_name = "Contoso Ltd".into();
        t2.domains = vec!["new.test".into(), "contoso.test".into()];
        t2.user_consent = UserConsent::All;
        t2.admin_consent_requests.version = 4;
        s.apply(&[Change::PutTenant(t2.clone())]).await.unwrap();
        t2.revision = 1; // each write of the row bumps it
        assert_eq!(s.tenant(t.id).await.unwrap(), Some(t2.clone()));
        assert_eq!(s.tenant(t.id).await.unwrap().unwrap().default_domain(), "new.test");
        assert_eq!(s.tenants().await.unwrap().len(), 2);
        assert_eq!(s.tenant_by_domain("contoso.example").await.unwrap(), None, "dropped domain");
        assert_eq!(s.tenant_by_domain("new.test").await.unwrap(), Some(t2.clone()));

        // A dropped domain is free for another tenant.
        let other = tenant("Other", &["contoso.example"]);
        s.apply(&[Change::PutTenant(other.clone())]).await.unwrap();
        assert_eq!(s.tenant_by_domain("contoso.example").await.unwrap(), Some(other));
    }

    pub async fn tenant_by_domain_is_case_insensitive(s: &dyn Store) {
        let t = tenant("Contoso", &["contoso.test"]);
        s.apply(&[Change::PutTenant(t.clone())]).await.unwrap();
        assert_eq!(s.tenant_by_domain("CONTOSO.Test").await.unwrap(), Some(t.clone()));
        assert_eq!(s.tenant_by_domain("contoso.test").await.unwrap(), Some(t));
        assert_eq!(s.tenant_by_domain("fabrikam.test").await.unwrap(), None);
        // Uniqueness ignores case too, including within one tenant's list.
        let dup = tenant("Dup", &["a.test", "A.TEST"]);
        assert_conflict(s.apply(&[Change::PutTenant(dup.clone())]).await, "a.test");
        assert_eq!(s.tenant(dup.id).await.unwrap(), None);
    }

    pub async fn user_round_trip_and_upsert(s: &dyn Store) {
        let t = tenant("Contoso", &["contoso.test"]);
        let mut alice = user(t.id, "alice@contoso.test");
        alice.enabled = false;
        alice.failed_sign_ins = 3;
        alice.locked_until = Some(at(15));
        let mut bob = user(t.id, "bob@contoso.test");
        bob.password_hash = None;
        s.apply(&[Change::PutTenant(t.clone()), Change::PutUser(bob.clone()), Change::PutUser(alice.clone())])
            .await
            .unwrap();

        assert_eq!(s.user(t.id, alice.id).await.unwrap(), Some(alice.clone()));
        assert_eq!(s.user(t.id, bob.id).await.unwrap(), Some(bob.clone()));
        assert_eq!(s.user(t.id, fresh()).await.unwrap(), None);
        assert_eq!(s.user_by_upn(t.id, "ALICE@Contoso.Test").await.unwrap(), Some(alice.clone()));
        assert_eq!(s.user_by_upn(t.id, "nobody@contoso.test").await.unwrap(), None);
        assert_eq!(s.users(t.id).await.unwrap(), vec![alice.clone(), bob.clone()], "ordered by UPN");

        let mut alice2 = alice.clone();
        alice2.upn = "alice.smith@contoso.test".into();
        alice2.display_name = "Alice Smith".into();
        alice2.enabled = true;
        alice2.failed_sign_ins = 0;
        alice2.locked_until = None;
        alice2.password_hash = None;
        s.apply(&[Change::PutUser(alice2.clone())]).await.unwrap();
        assert_eq!(s.user(t.id, alice.id).await.unwrap(), Some(alice2.clone()));
        assert_eq!(s.user_by_upn(t.id, "alice@contoso.test").await.unwrap(), None);
        assert_eq!(s.user_by_upn(t.id, "alice.smith@contoso.test").await.unwrap(), Some(alice2));
        assert_eq!(s.users(t.id).await.unwrap().len(), 2);

        // The old UPN is free again.
        let carol = user(t.id, "Alice@contoso.test");
        s.apply(&[Change::PutUser(carol.clone())]).await.unwrap();
        assert_eq!(s.user_by_upn(t.id, "alice@contoso.test").await.unwrap(), Some(carol));
    }

    pub async fn user_roles_replace_and_dedupe(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        assert_eq!(s.user_roles(t.id, u.id).await.unwrap(), vec![]);
        s.apply(&[Change::SetUserRoles {
            tenant_id: t.id,
            user_id: u.id,
            roles: vec![
                DirectoryRole::ApplicationAdministrator,
                DirectoryRole::GlobalAdministrator,
                DirectoryRole::ApplicationAdministrator,
            ],
        }])
        .await
        .unwrap();
        assert_eq!(
            s.user_roles(t.id, u.id).await.unwrap(),
            vec![DirectoryRole::GlobalAdministrator, DirectoryRole::ApplicationAdministrator]
        );
        s.apply(&[Change::SetUserRoles { tenant_id: t.id, user_id: u.id, roles: DirectoryRole::ALL.to_vec() }])
            .await
            .unwrap();
        assert_eq!(s.user_roles(t.id, u.id).await.unwrap(), DirectoryRole::ALL.to_vec());
        s.apply(&[Change::SetUserRoles { tenant_id: t.id, user_id: u.id, roles: vec![] }]).await.unwrap();
        assert_eq!(s.user_roles(t.id, u.id).await.unwrap(), vec![]);
    }

    pub async fn groups_and_members(s: &dyn Store) {
        let (t, alice) = seed_tenant(s, "Contoso", "contoso.test").await;
        let bob = user(t.id, "bob@contoso.test");
        let sales = group(t.id, "Sales");
        let all = group(t.id, "All Staff");
        s.apply(&[Change::PutUser(bob.clone()), Change::PutGroup(sales.clone()), Change::PutGroup(all.clone())])
            .await
            .unwrap();
        assert_eq!(s.group(t.id, sales.id).await.unwrap(), Some(sales.clone()));
        assert_eq!(s.group(t.id, fresh()).await.unwrap(), None);
        assert_eq!(s.group_by_name(t.id, "sales").await.unwrap(), Some(sales.clone()));
        assert_eq!(s.group_by_name(t.id, "Marketing").await.unwrap(), None);
        assert_eq!(s.groups(t.id).await.unwrap(), vec![all.clone(), sales.clone()]);

        let members = vec![
            GroupMember { group_id: all.id, member_id: bob.id.into(), kind: MemberKind::User },
            GroupMember { group_id: all.id, member_id: sales.id.into(), kind: MemberKind::Group },
            GroupMember { group_id: all.id, member_id: alice.id.into(), kind: MemberKind::User },
        ];
        s.apply(&[Change::SetGroupMembers { tenant_id: t.id, group_id: all.id, members: members.clone() }])
            .await
            .unwrap();
        assert_eq!(s.group_members(t.id, all.id).await.unwrap(), members, "kept in the order given");
        assert_eq!(s.group_members(t.id, sales.id).await.unwrap(), vec![]);

        // Replace, with a duplicate that collapses.
        let replaced = vec![GroupMember { group_id: all.id, member_id: alice.id.into(), kind: MemberKind::User }];
        let mut with_dup = replaced.clone();
        with_dup.push(replaced[0].clone());
        s.apply(&[Change::SetGroupMembers { tenant_id: t.id, group_id: all.id, members: with_dup }]).await.unwrap();
        assert_eq!(s.group_members(t.id, all.id).await.unwrap(), replaced);

        // Upsert renames.
        let mut renamed = sales.clone();
        renamed.display_name = "Sales EMEA".into();
        s.apply(&[Change::PutGroup(renamed.clone())]).await.unwrap();
        assert_eq!(s.group(t.id, sales.id).await.unwrap(), Some(renamed.clone()));
        assert_eq!(s.group_by_name(t.id, "Sales").await.unwrap(), None);
        assert_eq!(s.groups(t.id).await.unwrap().len(), 2);

        // A member naming another group than the one being set is refused.
        let wrong = vec![GroupMember { group_id: sales.id, member_id: bob.id.into(), kind: MemberKind::User }];
        let result = s.apply(&[Change::SetGroupMembers { tenant_id: t.id, group_id: all.id, members: wrong }]).await;
        assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
        assert_eq!(s.group_members(t.id, all.id).await.unwrap(), replaced);
    }

    pub async fn nested_groups_with_a_cycle(s: &dyn Store) {
        let (t, alice) = seed_tenant(s, "Contoso", "contoso.test").await;
        let g1 = group(t.id, "G1");
        let g2 = group(t.id, "G2");
        let g3 = group(t.id, "G3");
        let unrelated = group(t.id, "Unrelated");
        let member = |g: &Group, id: Uuid, kind: MemberKind| GroupMember { group_id: g.id, member_id: id, kind };
        s.apply(&[
            Change::PutGroup(g1.clone()),
            Change::PutGroup(g2.clone()),
            Change::PutGroup(g3.clone()),
            Change::PutGroup(unrelated.clone()),
            // alice ∈ g1 ∈ g2 ∈ g3 ∈ g1 (a cycle)
            Change::SetGroupMembers {
                tenant_id: t.id,
                group_id: g1.id,
                members: vec![
                    member(&g1, alice.id.into(), MemberKind::User),
                    member(&g1, g3.id.into(), MemberKind::Group),
                ],
            },
            Change::SetGroupMembers {
                tenant_id: t.id,
                group_id: g2.id,
                members: vec![member(&g2, g1.id.into(), MemberKind::Group)],
            },
            Change::SetGroupMembers {
                tenant_id: t.id,
                group_id: g3.id,
                members: vec![member(&g3, g2.id.into(), MemberKind::Group)],
            },
        ])
        .await
        .unwrap();

        let mut expected = vec![g1.id, g2.id, g3.id];
        expected.sort();
        let mut got = s.transitive_groups_of(t.id, alice.id.into()).await.unwrap();
        got.sort();
        assert_eq!(got, expected);

        let mut of_g1 = s.transitive_groups_of(t.id, g1.id.into()).await.unwrap();
        of_g1.sort();
        let mut expected_g1 = vec![g2.id, g3.id];
        expected_g1.sort();
        assert_eq!(of_g1, expected_g1, "a group is not reported as its own ancestor");

        assert!(s.transitive_groups_of(t.id, unrelated.id.into()).await.unwrap().is_empty());
        assert!(s.transitive_groups_of(t.id, fresh()).await.unwrap().is_empty());
    }

    pub async fn application_round_trip_and_lookups(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let api = application(t.id, "Contoso API", Some("api://contoso-api/"));
        let mut public = application(t.id, "Contoso CLI", None);
        public.public_client = true;
        public.verified_publisher = false;
        public.sign_in_audience = SignInAudience::SingleOrg;
        public.scopes = vec![];
        public.app_roles = vec![];
        public.required = vec![];
        public.redirect_uris = vec![];
        let mut other = application(fresh(), "Foreign", None);
        other.identifier_uri = None;
        s.apply(&[
            Change::PutApplication(api.clone()),
            Change::PutApplication(public.clone()),
            Change::PutApplication(other.clone()),
        ])
        .await
        .unwrap();

        assert_eq!(s.application_by_app_id(api.app_id).await.unwrap(), Some(api.clone()));
        assert_eq!(s.application_by_app_id(public.app_id).await.unwrap(), Some(public.clone()));
        assert_eq!(
            s.application_by_app_id(AppId::from_uuid(api.id.as_uuid())).await.unwrap(),
            None,
            "looked up by app id, not object id"
        );
        for uri in ["api://contoso-api", "API://Contoso-API/", "api://contoso-api//"] {
            assert_eq!(s.application_by_identifier_uri(uri).await.unwrap(), Some(api.clone()), "{uri}");
        }
        assert_eq!(s.application_by_identifier_uri("api://contoso-api/x").await.unwrap(), None);
        assert_eq!(s.applications_homed_in(t.id).await.unwrap(), vec![api.clone(), public.clone()]);
        assert_eq!(s.applications_homed_in(other.home_tenant_id).await.unwrap(), vec![other.clone()]);

        let mut api2 = api.clone();
        api2.display_name = "Contoso API v2".into();
        api2.identifier_uri = Some("https://contoso.test/api".into());
        api2.redirect_uris.push("https://app.test/other".into());
        api2.scopes[0].admin_consent_required = true;
        api2.home_tenant_id = fresh();
        s.apply(&[Change::PutApplication(api2.clone())]).await.unwrap();
        assert_eq!(s.application_by_app_id(api.app_id).await.unwrap(), Some(api2.clone()));
        assert_eq!(s.application_by_identifier_uri("api://contoso-api").await.unwrap(), None);
        assert_eq!(s.application_by_identifier_uri("https://contoso.test/api/").await.unwrap(), Some(api2.clone()));
        assert_eq!(s.applications_homed_in(t.id).await.unwrap(), vec![public]);
    }

    pub async fn spa_origins_follow_the_registration(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let mut spa = application(t.id, "Contoso SPA", None);
        spa.spa_redirect_uris = vec!["https://app.test/".into(), "http://localhost:3000/auth".into()];
        spa.federated_credentials = vec![accord_core::directory::FederatedCredential {
            id: fresh(),
            name: "github-main".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:contoso/app:ref:refs/heads/main".into(),
            audiences: vec!["api://AzureADTokenExchange".into()],
            description: Some("deploys".into()),
            jwks: None,
        }];
        s.apply(&[Change::PutApplication(spa.clone())]).await.unwrap();
        assert_eq!(s.application_by_app_id(spa.app_id).await.unwrap(), Some(spa.clone()), "round trip");
        for origin in ["https://app.test", "http://localhost:3000"] {
            assert!(s.spa_origin_registered(origin).await.unwrap(), "{origin}");
        }
        for origin in ["https://app.test/", "https://APP.test.evil", "http://localhost:3001", "https://app.tes%"] {
            assert!(!s.spa_origin_registered(origin).await.unwrap(), "{origin}");
        }

        spa.spa_redirect_uris = vec!["https://app.test/other".into()];
        s.apply(&[Change::PutApplication(spa.clone())]).await.unwrap();
        assert!(s.spa_origin_registered("https://app.test").await.unwrap());
        assert!(!s.spa_origin_registered("http://localhost:3000").await.unwrap(), "a removed URI's origin goes");

        s.apply(&[Change::DeleteApplication { app_object_id: spa.id }]).await.unwrap();
        assert!(!s.spa_origin_registered("https://app.test").await.unwrap(), "a deleted app's origins go");
    }

    pub async fn client_secrets(s: &dyn Store) {
        let app = application(fresh(), "App", None);
        let one = ClientSecret {
            id: fresh(),
            app_object_id: app.id,
            display_name: "ci".into(),
            hint: "abc".into(),
            hash: "00ff".repeat(16),
            created_at: at(5),
            expires_at: Some(at(60 * 24 * 365)),
        };
        let old = ClientSecret {
            id: fresh(),
            display_name: "legacy".into(),
            // Before 1970, with a sub-second part: the conversion floors correctly.
            created_at: time::OffsetDateTime::from_unix_timestamp(-86_400 * 365).unwrap()
                + Duration::microseconds(250_000),
            expires_at: None,
            ..one.clone()
        };
        s.apply(&[
            Change::PutApplication(app.clone()),
            Change::PutClientSecret(one.clone()),
            Change::PutClientSecret(old.clone()),
        ])
        .await
        .unwrap();
        assert_eq!(s.client_secrets(app.id).await.unwrap(), vec![old.clone(), one.clone()], "by creation time");
        assert_eq!(
            s.client_secrets(AppObjectId::from_uuid(app.app_id.as_uuid())).await.unwrap(),
            vec![],
            "keyed by the object id"
        );

        let mut renamed = one.clone();
        renamed.display_name = "ci (renamed)".into();
        renamed.expires_at = None;
        s.apply(&[Change::PutClientSecret(renamed.clone())]).await.unwrap();
        assert_eq!(s.client_secrets(app.id).await.unwrap(), vec![old.clone(), renamed]);

        s.apply(&[Change::DeleteClientSecret { app_object_id: app.id, secret_id: one.id }]).await.unwrap();
        assert_eq!(s.client_secrets(app.id).await.unwrap(), vec![old]);

        // A secret of an application that does not exist.
        let orphan = ClientSecret { app_object_id: fresh(), id: fresh(), ..one };
        assert_not_found(s.apply(&[Change::PutClientSecret(orphan)]).await);
    }

    pub async fn application_delete_takes_what_hangs_on_it(s: &dyn Store) {
        let (home, alice) = seed_tenant(s, "Vendor", "vendor.test").await;
        let (customer, bob) = seed_tenant(s, "Customer", "customer.test").await;
        let doomed = application(home.id, "Doomed", Some("api://doomed"));
        let kept = application(home.id, "Kept", None);
        let graph = application(fresh(), "Graph", None);
        let secret = ClientSecret {
            id: fresh(),
            app_object_id: doomed.id,
            display_name: "ci".into(),
            hint: "abc".into(),
            hash: "00ff".repeat(16),
            created_at: at(5),
            expires_at: None,
        };
        let sps =
            |t: TenantId| (service_principal(t, &doomed), service_principal(t, &kept), service_principal(t, &graph));
        let (d1, k1, g1) = sps(home.id);
        let (d2, k2, g2) = sps(customer.id);
        let mut changes = vec![
            Change::PutApplication(doomed.clone()),
            Change::PutApplication(kept.clone()),
            Change::PutApplication(graph.clone()),
            Change::PutClientSecret(secret),
        ];
        for sp in [&d1, &k1, &g1, &d2, &k2, &g2] {
            changes.push(Change::PutServicePrincipal(sp.clone()));
        }
        let kept_grant = grant(customer.id, k2.id, g2.id, None);
        let kept_permission = assignment(customer.id, k2.id, PrincipalType::ServicePrincipal, g2.id);
        let kept_access = assignment(customer.id, bob.id, PrincipalType::User, k2.id);
        changes.extend([
            Change::PutDelegatedGrant(grant(customer.id, d2.id, g2.id, None)),
            Change::PutDelegatedGrant(grant(home.id, d1.id, g1.id, Some(alice.id))),
            Change::PutDelegatedGrant(kept_grant.clone()),
            // The doomed app's permission on Graph, users' access to it, and the same for the kept app.
            Change::PutAppRoleAssignment(assignment(customer.id, d2.id, PrincipalType::ServicePrincipal, g2.id)),
            Change::PutAppRoleAssignment(assignment(customer.id, bob.id, PrincipalType::User, d2.id)),
            Change::PutAppRoleAssignment(kept_permission.clone()),
            Change::PutAppRoleAssignment(kept_access.clone()),
            Change::PutPermissionClassification(classification(home.id, d1.id, "Doomed.Read")),
            Change::PutConsentRequest(consent_request(customer.id, doomed.app_id, bob.id, 1)),
        ]);
        let kept_request = consent_request(customer.id, kept.app_id, bob.id, 2);
        changes.push(Change::PutConsentRequest(kept_request.clone()));
        s.apply(&changes).await.unwrap();
        let token = RefreshTokenRecord { client_app_id: doomed.app_id, ..refresh_token(fresh(), "doomed-rt") };
        s.put_refresh_token(&token).await.unwrap();
        let kept_token = RefreshTokenRecord { client_app_id: kept.app_id, ..refresh_token(fresh(), "kept-rt") };
        s.put_refresh_token(&kept_token).await.unwrap();

        s.apply(&[Change::DeleteApplication { app_object_id: doomed.id }]).await.unwrap();

        assert_eq!(s.application_by_app_id(doomed.app_id).await.unwrap(), None);
        assert_eq!(s.application_by_identifier_uri("api://doomed").await.unwrap(), None);
        assert_eq!(s.client_secrets(doomed.id).await.unwrap(), vec![]);
        for (t, kept_sp, graph_sp) in [(home.id, &k1, &g1), (customer.id, &k2, &g2)] {
            assert_eq!(s.service_principal_by_app_id(t, doomed.app_id).await.unwrap(), None, "in every tenant");
            let left: Vec<ServicePrincipalId> = s.service_principals(t).await.unwrap().iter().map(|sp| sp.id).collect();
            assert_eq!(left.len(), 2, "the others stay");
            assert!(left.contains(&kept_sp.id) && left.contains(&graph_sp.id));
        }
        assert_eq!(s.delegated_grants(home.id).await.unwrap(), vec![]);
        assert_eq!(s.delegated_grants(customer.id).await.unwrap(), vec![kept_grant]);
        assert_eq!(s.app_role_assignments_to(customer.id, g2.id).await.unwrap(), vec![kept_permission]);
        assert_eq!(s.app_role_assignments_of(customer.id, bob.id.into()).await.unwrap(), vec![kept_access]);
        assert_eq!(s.permission_classifications(home.id, d1.id).await.unwrap(), vec![]);
        assert_eq!(s.consent_requests(customer.id, None).await.unwrap(), vec![kept_request]);
        assert_eq!(s.refresh_token("doomed-rt").await.unwrap(), None);
        assert_eq!(s.refresh_token("kept-rt").await.unwrap(), Some(kept_token));
        assert!(s.application_by_app_id(kept.app_id).await.unwrap().is_some());

        assert_not_found(s.apply(&[Change::DeleteApplication { app_object_id: doomed.id }]).await);
    }

    pub async fn ending_sign_ins_revokes_sessions_and_refresh_families(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let other = user(t.id, "other@contoso.test");
        s.apply(&[Change::PutUser(other.clone())]).await.unwrap();
        for (who, tag) in [(u.id, "u"), (other.id, "o")] {
            let session = SessionRecord {
                id_hash: format!("{tag}-session"),
                tenant_id: t.id,
                user_id: who,
                auth_time: t0(),
                expires_at: at(60),
            };
            s.put_session(&session).await.unwrap();
            let token =
                RefreshTokenRecord { tenant_id: t.id, user_id: who, ..refresh_token(fresh(), &format!("{tag}-rt")) };
            s.put_refresh_token(&token).await.unwrap();
        }

        s.apply(&[Change::EndSignIns { tenant_id: t.id, user_id: u.id, at: at(7) }]).await.unwrap();

        assert_eq!(s.session("u-session").await.unwrap(), None);
        assert!(s.refresh_token("u-rt").await.unwrap().expect("kept, revoked").revoked);
        // The user stays, marked with when their sign-ins ended (continuous access evaluation
        // compares tokens with it); a later write of the user keeps the mark.
        let ended = s.user(t.id, u.id).await.unwrap().unwrap();
        assert_eq!(ended.sign_ins_valid_from, Some(at(7)));
        let renamed = User { display_name: "Renamed".into(), sign_ins_valid_from: None, ..ended };
        s.apply(&[Change::PutUser(renamed)]).await.unwrap();
        assert_eq!(s.user(t.id, u.id).await.unwrap().unwrap().sign_ins_valid_from, Some(at(7)));
        assert_eq!(s.user(t.id, other.id).await.unwrap().unwrap().sign_ins_valid_from, None);
        assert!(s.session("o-session").await.unwrap().is_some());
        assert!(!s.refresh_token("o-rt").await.unwrap().unwrap().revoked);
    }

    pub async fn user_delete_takes_what_hangs_on_it(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let other = user(t.id, "other@contoso.test");
        let g = group(t.id, "Sales");
        let client_app = application(t.id, "Client", None);
        let resource_app = application(fresh(), "Graph", None);
        let (client, resource) = (service_principal(t.id, &client_app), service_principal(t.id, &resource_app));
        let kept_grant = grant(t.id, client.id, resource.id, Some(other.id));
        let kept_access = assignment(t.id, other.id, PrincipalType::User, client.id);
        let kept_request = consent_request(t.id, client_app.app_id, other.id, 2);
        let members = |ids: &[Uuid]| {
            ids.iter().map(|m| GroupMember { group_id: g.id, member_id: *m, kind: MemberKind::User }).collect()
        };
        s.apply(&[
            Change::PutUser(other.clone()),
            Change::PutGroup(g.clone()),
            Change::SetGroupMembers {
                tenant_id: t.id,
                group_id: g.id,
                members: members(&[u.id.into(), other.id.into()]),
            },
            Change::SetUserRoles { tenant_id: t.id, user_id: u.id, roles: vec![DirectoryRole::GlobalAdministrator] },
            Change::PutServicePrincipal(client.clone()),
            Change::PutServicePrincipal(resource.clone()),
            Change::PutDelegatedGrant(grant(t.id, client.id, resource.id, Some(u.id))),
            Change::PutDelegatedGrant(kept_grant.clone()),
            Change::PutAppRoleAssignment(assignment(t.id, u.id, PrincipalType::User, client.id)),
            Change::PutAppRoleAssignment(kept_access.clone()),
            Change::PutEvent(event(t.id, u.id, "Standup", 0, 15)),
            Change::PutConsentRequest(consent_request(t.id, client_app.app_id, u.id, 1)),
            Change::PutConsentRequest(kept_request.clone()),
        ])
        .await
        .unwrap();
        let session = SessionRecord {
            id_hash: "u-session".into(),
            tenant_id: t.id,
            user_id: u.id,
            auth_time: t0(),
            expires_at: at(60),
        };
        s.put_session(&session).await.unwrap();
        let token = RefreshTokenRecord { tenant_id: t.id, user_id: u.id, ..refresh_token(fresh(), "u-rt") };
        s.put_refresh_token(&token).await.unwrap();

        s.apply(&[Change::DeleteUser { tenant_id: t.id, user_id: u.id }]).await.unwrap();

        assert_eq!(s.user(t.id, u.id).await.unwrap(), None);
        assert_eq!(s.user_roles(t.id, u.id).await.unwrap(), vec![]);
        let left: Vec<Uuid> = s.group_members(t.id, g.id).await.unwrap().iter().map(|m| m.member_id).collect();
        assert_eq!(left, vec![other.id]);
        assert_eq!(s.delegated_grants(t.id).await.unwrap(), vec![kept_grant]);
        assert_eq!(s.app_role_assignments_to(t.id, client.id).await.unwrap(), vec![kept_access]);
        assert_eq!(s.events_of(t.id, u.id, None, None).await.unwrap(), vec![]);
        assert_eq!(s.consent_requests(t.id, None).await.unwrap(), vec![kept_request]);
        assert_eq!(s.session("u-session").await.unwrap(), None);
        assert_eq!(s.refresh_token("u-rt").await.unwrap(), None);
        assert!(s.user(t.id, other.id).await.unwrap().is_some());

        assert_not_found(s.apply(&[Change::DeleteUser { tenant_id: t.id, user_id: u.id }]).await);
        // Not in another tenant either.
        let (t2, _) = seed_tenant(s, "Fabrikam", "fabrikam.test").await;
        assert_not_found(s.apply(&[Change::DeleteUser { tenant_id: t2.id, user_id: other.id }]).await);
        assert!(s.user(t.id, other.id).await.unwrap().is_some());
    }

    pub async fn service_principals(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let app = application(fresh(), "Graph", Some("https://graph.microsoft.com"));
        let other = application(t.id, "Another", None);
        let mut sp = service_principal(t.id, &app);
        sp.assignment_required = true;
        sp.enabled = false;
        let sp2 = service_principal(t.id, &other);
        s.apply(&[Change::PutServicePrincipal(sp.clone()), Change::PutServicePrincipal(sp2.clone())]).await.unwrap();
        assert_eq!(s.service_principal(t.id, sp.id).await.unwrap(), Some(sp.clone()));
        assert_eq!(s.service_principal(t.id, fresh()).await.unwrap(), None);
        assert_eq!(s.service_principal_by_app_id(t.id, app.app_id).await.unwrap(), Some(sp.clone()));
        assert_eq!(s.service_principal_by_app_id(t.id, fresh()).await.unwrap(), None);
        assert_eq!(s.service_principals(t.id).await.unwrap(), vec![sp2.clone(), sp.clone()], "by display name");

        let mut sp_updated = sp.clone();
        sp_updated.enabled = true;
        sp_updated.display_name = "Microsoft Graph".into();
        s.apply(&[Change::PutServicePrincipal(sp_updated.clone())]).await.unwrap();
        assert_eq!(s.service_principal(t.id, sp.id).await.unwrap(), Some(sp_updated));
        assert_eq!(s.service_principals(t.id).await.unwrap().len(), 2);
    }

    async fn two_service_principals(s: &dyn Store) -> (Tenant, User, ServicePrincipal, ServicePrincipal) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let client_app = application(t.id, "Client", None);
        let resource_app = application(fresh(), "Graph", None);
        let client = service_principal(t.id, &client_app);
        let resource = service_principal(t.id, &resource_app);
        s.apply(&[Change::PutServicePrincipal(client.clone()), Change::PutServicePrincipal(resource.clone())])
            .await
            .unwrap();
        (t, u, client, resource)
    }

    pub async fn delegated_grants(s: &dyn Store) {
        let (t, u, client, resource) = two_service_principals(s).await;
        let admin = grant(t.id, client.id, resource.id, None);
        let mut own = grant(t.id, client.id, resource.id, Some(u.id));
        own.scopes = vec!["Mail.Read".into()];
        own.created_at = at(2);
        let mut reverse = grant(t.id, resource.id, client.id, None);
        reverse.created_at = at(3);
        reverse.scopes = vec![];
        s.apply(&[
            Change::PutDelegatedGrant(reverse.clone()),
            Change::PutDelegatedGrant(own.clone()),
            Change::PutDelegatedGrant(admin.clone()),
        ])
        .await
        .unwrap();

        assert_eq!(s.delegated_grant(t.id, admin.id).await.unwrap(), Some(admin.clone()));
        assert_eq!(s.delegated_grant(t.id, own.id).await.unwrap(), Some(own.clone()));
        assert_eq!(s.delegated_grant(t.id, fresh()).await.unwrap(), None);
        assert_eq!(s.delegated_grants(t.id).await.unwrap(), vec![admin.clone(), own.clone(), reverse.clone()]);
        assert_eq!(s.delegated_grants_of_client(t.id, client.id).await.unwrap(), vec![admin.clone(), own.clone()]);
        assert_eq!(s.delegated_grants_of_client(t.id, resource.id).await.unwrap(), vec![reverse.clone()]);

        let mut widened = admin.clone();
        widened.scopes = vec!["User.Read".into(), "Mail.Send".into(), "openid".into()];
        s.apply(&[Change::PutDelegatedGrant(widened.clone())]).await.unwrap();
        assert_eq!(s.delegated_grant(t.id, admin.id).await.unwrap(), Some(widened.clone()));
        assert_eq!(s.delegated_grants(t.id).await.unwrap().len(), 3);

        s.apply(&[Change::DeleteDelegatedGrant { tenant_id: t.id, grant_id: own.id }]).await.unwrap();
        assert_eq!(s.delegated_grants_of_client(t.id, client.id).await.unwrap(), vec![widened]);
    }

    pub async fn app_role_assignments(s: &dyn Store) {
        let (t, u, client, resource) = two_service_principals(s).await;
        let g = group(t.id, "Readers");
        s.apply(&[Change::PutGroup(g.clone())]).await.unwrap();
        let app_perm = assignment(t.id, client.id, PrincipalType::ServicePrincipal, resource.id);
        let mut user_access = assignment(t.id, u.id, PrincipalType::User, client.id);
        user_access.created_at = at(1);
        let mut group_access = assignment(t.id, g.id, PrincipalType::Group, client.id);
        group_access.created_at = at(2);
        s.apply(&[
            Change::PutAppRoleAssignment(group_access.clone()),
            Change::PutAppRoleAssignment(user_access.clone()),
            Change::PutAppRoleAssignment(app_perm.clone()),
        ])
        .await
        .unwrap();

        assert_eq!(s.app_role_assignments_to(t.id, resource.id).await.unwrap(), vec![app_perm.clone()]);
        assert_eq!(
            s.app_role_assignments_to(t.id, client.id).await.unwrap(),
            vec![user_access.clone(), group_access.clone()]
        );
        assert_eq!(s.app_role_assignments_of(t.id, client.id.into()).await.unwrap(), vec![app_perm.clone()]);
        assert_eq!(s.app_role_assignments_of(t.id, u.id.into()).await.unwrap(), vec![user_access.clone()]);
        assert_eq!(s.app_role_assignments_of(t.id, g.id.into()).await.unwrap(), vec![group_access.clone()]);

        let mut changed = user_access.clone();
        changed.app_role_id = DEFAULT_ROLE;
        s.apply(&[Change::PutAppRoleAssignment(changed.clone())]).await.unwrap();
        assert_eq!(s.app_role_assignments_of(t.id, u.id.into()).await.unwrap(), vec![changed]);

        s.apply(&[Change::DeleteAppRoleAssignment { tenant_id: t.id, assignment_id: user_access.id }]).await.unwrap();
        assert_eq!(s.app_role_assignments_of(t.id, u.id.into()).await.unwrap(), vec![]);
        assert_eq!(s.app_role_assignments_to(t.id, client.id).await.unwrap(), vec![group_access]);
    }

    const DEFAULT_ROLE: Uuid = Uuid::nil();

    pub async fn events_round_trip_and_overlap(s: &dyn Store) {
        let (t, alice) = seed_tenant(s, "Contoso", "contoso.test").await;
        let bob = user(t.id, "bob@contoso.test");
        s.apply(&[Change::PutUser(bob.clone())]).await.unwrap();
        // Minutes from t0: a = [0, 60), b = [60, 120), c = [180, 240); bob's d = [0, 600).
        let a = event(t.id, alice.id, "A", 0, 60);
        let mut b = event(t.id, alice.id, "B", 60, 120);
        b.online_meeting_url = None;
        b.attendees = vec![];
        let c = event(t.id, alice.id, "C", 180, 240);
        let d = event(t.id, bob.id, "D", 0, 600);
        s.apply(&[
            Change::PutEvent(c.clone()),
            Change::PutEvent(a.clone()),
            Change::PutEvent(b.clone()),
            Change::PutEvent(d.clone()),
        ])
        .await
        .unwrap();

        assert_eq!(s.event(t.id, a.id).await.unwrap(), Some(a.clone()));
        assert_eq!(s.event(t.id, b.id).await.unwrap(), Some(b.clone()));
        assert_eq!(s.event(t.id, fresh()).await.unwrap(), None);

        let q = |from: Option<i64>, to: Option<i64>| {
            let (from, to) = (from.map(at), to.map(at));
            async move { s.events_of(t.id, alice.id, from, to).await.unwrap() }
        };
        assert_eq!(q(None, None).await, vec![a.clone(), b.clone(), c.clone()], "ordered by start");
        assert_eq!(q(Some(60), Some(180)).await, vec![b.clone()], "half-open: touching events excluded");
        assert_eq!(q(Some(59), Some(181)).await, vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(q(Some(90), Some(91)).await, vec![b.clone()], "an event spanning the window");
        assert_eq!(q(Some(120), None).await, vec![c.clone()]);
        assert_eq!(q(None, Some(60)).await, vec![a.clone()]);
        assert_eq!(q(Some(300), Some(400)).await, vec![]);
        assert_eq!(s.events_of(t.id, bob.id, None, None).await.unwrap(), vec![d.clone()]);

        let mut moved = c.clone();
        moved.start = at(-30);
        moved.end = at(-10);
        moved.subject = "C (moved)".into();
        moved.modified_at = at(2);
        s.apply(&[Change::PutEvent(moved.clone())]).await.unwrap();
        assert_eq!(q(None, None).await, vec![moved.clone(), a.clone(), b.clone()]);

        s.apply(&[Change::DeleteEvent { tenant_id: t.id, event_id: a.id }]).await.unwrap();
        assert_eq!(q(None, None).await, vec![moved, b]);

        // An event of a user who does not exist.
        let orphan = event(t.id, fresh(), "Orphan", 0, 1);
        assert_not_found(s.apply(&[Change::PutEvent(orphan)]).await);
    }

    /// The change journal behind delta queries: each event's latest change, numbered in order,
    /// per mailbox; deletions stay as tombstones; pages of a window ordered by id.
    pub async fn calendar_journal_numbers_changes_in_order(s: &dyn Store) {
        let (t, alice) = seed_tenant(s, "Contoso", "contoso.test").await;
        let bob = user(t.id, "bob@contoso.test");
        s.apply(&[Change::PutUser(bob.clone())]).await.unwrap();
        assert_eq!(s.calendar_watermark(t.id, alice.id).await.unwrap(), 0, "no change yet");
        let a = event(t.id, alice.id, "A", 0, 60);
        let b = event(t.id, alice.id, "B", 60, 120);
        let c = event(t.id, alice.id, "C", 180, 240);
        let d = event(t.id, bob.id, "D", 0, 600);
        s.apply(&[Change::PutEvent(a.clone()), Change::PutEvent(b.clone()), Change::PutEvent(d.clone())])
            .await
            .unwrap();
        let w1 = s.calendar_watermark(t.id, alice.id).await.unwrap();
        assert!(w1 > 0);
        let all = s.calendar_changes(t.id, alice.id, 0, w1, 10).await.unwrap();
        assert_eq!(
            all.iter().map(|c| c.event.clone().unwrap()).collect::<Vec<_>>(),
            vec![a.clone(), b.clone()],
            "bob's event is not alice's"
        );
        assert!(all[0].seq < all[1].seq);

        // Later: c is new, a changes, b goes. Only these come after w1, each once, in order.
        let mut a2 = a.clone();
        a2.subject = "A2".into();
        s.apply(&[Change::PutEvent(c.clone())]).await.unwrap();
        s.apply(&[Change::PutEvent(a2.clone())]).await.unwrap();
        s.apply(&[Change::DeleteEvent { tenant_id: t.id, event_id: b.id }]).await.unwrap();
        s.apply(&[Change::DeleteEvent { tenant_id: t.id, event_id: fresh() }]).await.unwrap();
        let w2 = s.calendar_watermark(t.id, alice.id).await.unwrap();
        let since = s.calendar_changes(t.id, alice.id, w1, w2, 10).await.unwrap();
        let shape: Vec<(Uuid, Option<String>)> =
            since.iter().map(|c| (c.event_id, c.event.as_ref().map(|e| e.subject.clone()))).collect();
        assert_eq!(shape, vec![(c.id, Some("C".into())), (a.id, Some("A2".into())), (b.id, None)]);
        assert_eq!(since.last().unwrap().seq, w2);
        let first_two = s.calendar_changes(t.id, alice.id, w1, w2, 2).await.unwrap();
        assert_eq!(first_two.len(), 2, "limit");
        let rest = s.calendar_changes(t.id, alice.id, first_two[1].seq, w2, 10).await.unwrap();
        assert_eq!(rest.iter().map(|c| c.event_id).collect::<Vec<_>>(), vec![b.id], "continues after a number");
        assert!(s.calendar_changes(t.id, alice.id, w2, w2, 10).await.unwrap().is_empty());
        let (other, _) = seed_tenant(s, "Other", "other.test").await;
        assert!(s.calendar_changes(other.id, alice.id, 0, i64::MAX, 10).await.unwrap().is_empty(), "tenant-bound");

        // Pages of a window by id.
        let window = (at(0), at(200));
        let mut expected = [a2.clone(), c.clone()];
        expected.sort_by_key(|e| e.id);
        let page = s.events_page(t.id, alice.id, window, None, 1).await.unwrap();
        assert_eq!(page, vec![expected[0].clone()]);
        let page = s.events_page(t.id, alice.id, window, Some(expected[0].id), 10).await.unwrap();
        assert_eq!(page, vec![expected[1].clone()]);
        assert!(s.events_page(t.id, alice.id, (at(300), at(400)), None, 10).await.unwrap().is_empty());

        // Tombstones outlive a purge within the retention and go after it; a deleted user's
        // journal goes with them.
        s.purge_expired(OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(s.calendar_changes(t.id, alice.id, w1, w2, 10).await.unwrap().len(), 3);
        s.purge_expired(OffsetDateTime::now_utc() + Duration::days(CALENDAR_CHANGE_RETENTION_DAYS + 1)).await.unwrap();
        let left = s.calendar_changes(t.id, alice.id, w1, w2, 10).await.unwrap();
        assert_eq!(left.iter().map(|c| c.event_id).collect::<Vec<_>>(), vec![c.id, a.id], "the tombstone went");
        s.apply(&[Change::DeleteUser { tenant_id: t.id, user_id: bob.id }]).await.unwrap();
        assert_eq!(s.calendar_watermark(t.id, bob.id).await.unwrap(), 0);
    }

    /// Writers in parallel: every change a reader sees below the watermark it read first is
    /// complete, so a delta round never skips a change that commits later.
    pub async fn concurrent_calendar_writes_keep_the_journal_ordered(s: &dyn Store) {
        let (t, alice) = seed_tenant(s, "Contoso", "contoso.test").await;
        let finished = std::sync::atomic::AtomicUsize::new(0);
        let writer = |w: i64| {
            let finished = &finished;
            async move {
                for i in 0..15 {
                    let ev = event(t.id, alice.id, &format!("w{w}-{i}"), i, i + 1);
                    s.apply(&[Change::PutEvent(ev)]).await.unwrap();
                }
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        };
        // Follow the journal as a delta client would, round after round.
        let reader = async {
            let mut seen = std::collections::HashSet::new();
            let mut since = 0;
            loop {
                let last = finished.load(std::sync::atomic::Ordering::SeqCst) == 4;
                let until = s.calendar_watermark(t.id, alice.id).await.unwrap();
                for c in s.calendar_changes(t.id, alice.id, since, until, 1000).await.unwrap() {
                    seen.insert(c.event_id);
                }
                since = until;
                if last {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        };
        let (_, _, _, _, seen) = tokio::join!(writer(0), writer(1), writer(2), writer(3), reader);
        assert_eq!(seen.len(), 60, "every change was seen by following the watermark");
    }

    /// Subscriptions by id, mailbox and app; the outbox's due list, claims, retries and
    /// finishing; deleting a subscription takes its queue; expiry purges.
    pub async fn subscriptions_and_their_outbox(s: &dyn Store) {
        let (t, alice) = seed_tenant(s, "Contoso", "contoso.test").await;
        let app: accord_core::ids::AppId = fresh();
        let sub = GraphSubscription {
            id: fresh(),
            tenant_id: t.id,
            client_app_id: app,
            creator_id: Some(alice.id),
            mailbox_id: alice.id,
            resource: "me/events".into(),
            change_types: "created,updated".into(),
            notification_url: "https://vendor.test/hook?x=1".into(),
            lifecycle_url: Some("https://vendor.test/life".into()),
            sealed_client_state: Some("sealed".into()),
            tls_version: "v1_2".into(),
            permissions: "Calendars.Read".into(),
            authorized_at: t0(),
            access_expires_at: at(60),
            expires_at: at(100_000),
            status: SubscriptionStatus::Active,
            noticed_at: None,
            created_at: t0(),
        };
        let note = |kind, minutes: i64| GraphNotification {
            id: fresh(),
            subscription_id: sub.id,
            tenant_id: t.id,
            kind,
            payload: "{}".into(),
            created_at: t0(),
            next_attempt_at: at(minutes),
            attempts: 0,
            last_error: None,
        };
        let n1 = note(GraphNotificationKind::Change, 0);
        let n2 = note(GraphNotificationKind::Lifecycle, 10);
        s.apply(&[
            Change::PutSubscription(sub.clone()),
            Change::EnqueueGraphNotification(n1.clone()),
            Change::EnqueueGraphNotification(n2.clone()),
        ])
        .await
        .unwrap();
        assert_eq!(s.subscription(t.id, sub.id).await.unwrap(), Some(sub.clone()));
        let (other, _) = seed_tenant(s, "Other", "other.test").await;
        assert_eq!(s.subscription(other.id, sub.id).await.unwrap(), None, "tenant-bound");
        assert_eq!(s.subscriptions_of_mailbox(t.id, alice.id).await.unwrap(), vec![sub.clone()]);
        assert_eq!(s.subscriptions_of_app(t.id, app).await.unwrap(), vec![sub.clone()]);
        assert!(s.subscriptions_of_app(t.id, fresh()).await.unwrap().is_empty());
        assert_eq!(s.live_subscriptions(None, 10).await.unwrap(), vec![sub.clone()]);
        assert!(s.live_subscriptions(Some(sub.id), 10).await.unwrap().is_empty());

        // An update keeps what cannot change (resource, lifecycle URL, creator).
        let mut renewed = sub.clone();
        renewed.status = SubscriptionStatus::ReauthorizationRequired;
        renewed.noticed_at = Some(at(5));
        renewed.resource = "changed".into();
        s.apply(&[Change::PutSubscription(renewed.clone())]).await.unwrap();
        let read = s.subscription(t.id, sub.id).await.unwrap().unwrap();
        assert_eq!(
            (read.status, read.noticed_at, read.resource.as_str()),
            (SubscriptionStatus::ReauthorizationRequired, Some(at(5)), "me/events")
        );

        // Due at minute 0: n1 only; a claim moves it out of the due list once.
        assert_eq!(s.due_graph_notifications(at(0), 10).await.unwrap(), vec![n1.clone()]);
        assert!(s.claim_graph_notification(n1.id, at(0), at(1)).await.unwrap());
        assert!(!s.claim_graph_notification(n1.id, at(0), at(1)).await.unwrap(), "claimed already");
        assert!(s.due_graph_notifications(at(0), 10).await.unwrap().is_empty());
        s.retry_graph_notification(n1.id, 1, at(3), "HTTP 500").await.unwrap();
        let due = s.due_graph_notifications(at(20), 10).await.unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!((due[0].id, due[0].attempts, due[0].last_error.as_deref()), (n1.id, 1, Some("HTTP 500")));
        s.finish_graph_notification(n1.id).await.unwrap();
        assert_eq!(s.due_graph_notifications(at(20), 10).await.unwrap(), vec![n2.clone()]);

        // Deleting the subscription takes its queue; an expired one is purged with its queue.
        s.apply(&[Change::DeleteSubscription { tenant_id: t.id, subscription_id: sub.id }]).await.unwrap();
        assert_eq!(s.subscription(t.id, sub.id).await.unwrap(), None);
        assert!(s.due_graph_notifications(at(20), 10).await.unwrap().is_empty());
        let old = GraphSubscription { id: fresh(), expires_at: at(1), ..sub.clone() };
        let queued = GraphNotification { subscription_id: old.id, ..note(GraphNotificationKind::Change, 0) };
        s.apply(&[Change::PutSubscription(old.clone()), Change::EnqueueGraphNotification(queued)]).await.unwrap();
        s.purge_expired(at(2)).await.unwrap();
        assert_eq!(s.subscription(t.id, old.id).await.unwrap(), None);
        assert!(s.due_graph_notifications(at(20), 10).await.unwrap().is_empty());
    }

    /// A test-mode reset: every tenant and everything in it goes (cached reads too); the signing
    /// keys stay, and the store takes a new world afterwards.
    pub async fn wiping_the_world_keeps_the_signing_keys(s: &dyn Store) {
        let (t, alice) = seed_tenant(s, "Contoso", "contoso.test").await;
        let app = application(t.id, "App", None);
        s.apply(&[Change::PutApplication(app.clone()), Change::PutEvent(event(t.id, alice.id, "A", 0, 60))])
            .await
            .unwrap();
        let key = SigningKeyRecord {
            kid: "k1".into(),
            sealed_private_key: vec![1, 2, 3],
            status: KeyStatus::Active,
            created_at: at(0),
        };
        s.insert_signing_key(&key).await.unwrap();
        assert!(s.tenant(t.id).await.unwrap().is_some(), "read once, so the cache holds it");
        s.wipe_world().await.unwrap();
        assert_eq!(s.tenant(t.id).await.unwrap(), None);
        assert!(s.tenants().await.unwrap().is_empty());
        assert_eq!(s.application_by_app_id(app.app_id).await.unwrap(), None);
        assert_eq!(s.user(t.id, alice.id).await.unwrap(), None);
        assert_eq!(s.calendar_watermark(t.id, alice.id).await.unwrap(), 0);
        assert_eq!(s.signing_keys().await.unwrap(), vec![key]);
        let (again, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        assert!(s.tenant(again.id).await.unwrap().is_some(), "a new world loads");
    }

    /// Every consent change journals itself, numbered, for the app it is about: grants given,
    /// changed, revoked; app permissions; assignments; an enterprise app disabled; requests
    /// filed and decided. A webhook's outbox moves its cursor once (a second mover is Stale).
    pub async fn consent_changes_are_journalled_for_webhooks(s: &dyn Store) {
        let (t, alice) = seed_tenant(s, "Contoso", "contoso.test").await;
        let client = application(t.id, "Client", None);
        let resource = application(t.id, "Resource", Some("api://resource"));
        let (client_sp, resource_sp) = (service_principal(t.id, &client), service_principal(t.id, &resource));
        s.apply(&[
            Change::PutApplication(client.clone()),
            Change::PutApplication(resource.clone()),
            Change::PutServicePrincipal(client_sp.clone()),
            Change::PutServicePrincipal(resource_sp.clone()),
        ])
        .await
        .unwrap();
        let start = s.consent_event_watermark().await.unwrap();
        let mut g = grant(t.id, client_sp.id, resource_sp.id, None);
        s.apply(&[Change::PutDelegatedGrant(g.clone())]).await.unwrap();
        s.apply(&[Change::PutDelegatedGrant(g.clone())]).await.unwrap(); // unchanged: no event
        g.scopes.push("Calendars.Read".into());
        s.apply(&[Change::PutDelegatedGrant(g.clone())]).await.unwrap();
        s.apply(&[Change::DeleteDelegatedGrant { tenant_id: t.id, grant_id: g.id }]).await.unwrap();
        let role = assignment(t.id, client_sp.id, PrincipalType::ServicePrincipal, resource_sp.id);
        let user = assignment(t.id, alice.id, PrincipalType::User, client_sp.id);
        s.apply(&[Change::PutAppRoleAssignment(role.clone()), Change::PutAppRoleAssignment(user.clone())])
            .await
            .unwrap();
        s.apply(&[Change::DeleteAppRoleAssignment { tenant_id: t.id, assignment_id: user.id }]).await.unwrap();
        let disabled = ServicePrincipal { enabled: false, ..client_sp.clone() };
        s.apply(&[Change::PutServicePrincipal(disabled)]).await.unwrap();
        let mut request = consent_request(t.id, client.app_id, alice.id, 0);
        s.apply(&[Change::PutConsentRequest(request.clone())]).await.unwrap();
        request.status = accord_core::consent_records::RequestStatus::Completed;
        request.result = accord_core::consent_records::ReviewResult::Denied;
        s.apply(&[Change::DecideConsentRequest(request.clone())]).await.unwrap();

        let events = s.consent_events_after(client.app_id, start, 100).await.unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "consent.granted",
                "consent.changed",
                "consent.revoked",
                "consent.granted",
                "assignment.added",
                "assignment.removed",
                "app.disabled",
                "consent_request.filed",
                "consent_request.denied",
            ]
        );
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(events.iter().all(|e| e.tenant_id == t.id && e.app_id == client.app_id));
        let changed: serde_json::Value = serde_json::from_str(&events[1].data).unwrap();
        assert_eq!(changed["previousScopes"].as_array().unwrap().len(), 3, "{changed}");
        assert!(s.consent_events_after(resource.app_id, start, 100).await.unwrap().is_empty(), "about the client only");
        assert_eq!(s.consent_event_watermark().await.unwrap(), events.last().unwrap().seq);

        // A webhook's outbox: the cursor moves once.
        let hook = ConsentWebhook {
            id: fresh(),
            app_id: client.app_id,
            url: "https://vendor.test/consent".into(),
            sealed_secrets: vec!["sealed".into()],
            created_at: t0(),
            cursor: start,
        };
        s.apply(&[Change::PutConsentWebhook(hook.clone())]).await.unwrap();
        let delivery = |e: &ConsentEvent| WebhookDelivery {
            id: fresh(),
            webhook_id: hook.id,
            event_seq: e.seq,
            kind: e.kind.clone(),
            payload: "{}".into(),
            created_at: at(0),
            next_attempt_at: Some(at(0)),
            attempts: 0,
            last_status: None,
            last_error: None,
            delivered_at: None,
        };
        let last = events.last().unwrap().seq;
        let enqueue = Change::EnqueueWebhookDeliveries {
            webhook_id: hook.id,
            from: start,
            to: last,
            deliveries: events.iter().map(delivery).collect(),
        };
        s.apply(std::slice::from_ref(&enqueue)).await.unwrap();
        assert!(matches!(s.apply(&[enqueue]).await, Err(StoreError::Stale(_))), "a second mover is refused");
        assert_eq!(s.consent_webhook(hook.id).await.unwrap().unwrap().cursor, last);
        let due = s.due_webhook_deliveries(at(1), 100).await.unwrap();
        assert_eq!(due.len(), 9);
        assert!(s.claim_webhook_delivery(due[0].id, at(0), at(5)).await.unwrap());
        assert!(!s.claim_webhook_delivery(due[0].id, at(0), at(5)).await.unwrap());
        let done = WebhookDelivery {
            next_attempt_at: None,
            delivered_at: Some(at(1)),
            attempts: 1,
            last_status: Some(204),
            ..due[0].clone()
        };
        s.record_webhook_attempt(&done).await.unwrap();
        assert_eq!(s.due_webhook_deliveries(at(10), 100).await.unwrap().len(), 8);
        assert!(s.webhook_deliveries(hook.id, 100).await.unwrap().iter().any(|d| d == &done));
        s.apply(&[Change::DeleteConsentWebhook { app_id: client.app_id, webhook_id: hook.id }]).await.unwrap();
        assert!(s.webhook_deliveries(hook.id, 100).await.unwrap().is_empty(), "the log goes with it");
    }

    /// Time-bound grants and assignments keep their end, and the sweep finds them at it.
    pub async fn time_bound_grants_are_found_when_they_end(s: &dyn Store) {
        let (t, alice) = seed_tenant(s, "Contoso", "contoso.test").await;
        let client = application(t.id, "Client", None);
        let resource = application(t.id, "Resource", Some("api://resource"));
        let (client_sp, resource_sp) = (service_principal(t.id, &client), service_principal(t.id, &resource));
        let g = DelegatedGrant { expires_at: Some(at(60)), ..grant(t.id, client_sp.id, resource_sp.id, None) };
        let forever = grant(t.id, client_sp.id, resource_sp.id, Some(alice.id));
        let a = AppRoleAssignment {
            expires_at: Some(at(90)),
            ..assignment(t.id, alice.id, PrincipalType::User, client_sp.id)
        };
        s.apply(&[
            Change::PutApplication(client.clone()),
            Change::PutApplication(resource.clone()),
            Change::PutServicePrincipal(client_sp.clone()),
            Change::PutServicePrincipal(resource_sp.clone()),
            Change::PutDelegatedGrant(g.clone()),
            Change::PutDelegatedGrant(forever.clone()),
            Change::PutAppRoleAssignment(a.clone()),
        ])
        .await
        .unwrap();
        assert_eq!(s.delegated_grant(t.id, g.id).await.unwrap(), Some(g.clone()), "the end is kept");
        assert!(g.in_force(at(59)) && !g.in_force(at(60)));
        let (grants, assignments) = s.expired_grants(at(59), 10).await.unwrap();
        assert!(grants.is_empty() && assignments.is_empty());
        let (grants, assignments) = s.expired_grants(at(60), 10).await.unwrap();
        assert_eq!((grants, assignments.len()), (vec![g.clone()], 0));
        let (grants, assignments) = s.expired_grants(at(100), 10).await.unwrap();
        assert_eq!((grants.len(), assignments), (1, vec![a.clone()]), "grants without an end never come");
    }

    pub async fn tenant_isolation(s: &dyn Store) {
        let (a, alice) = seed_tenant(s, "A", "a.test").await;
        let (b, _) = seed_tenant(s, "B", "b.test").await;
        let g = group(a.id, "Team");
        let app = application(a.id, "App", None);
        let sp = service_principal(a.id, &app);
        let res = service_principal(a.id, &application(fresh(), "Res", None));
        let gr = grant(a.id, sp.id, res.id, Some(alice.id));
        let asg = assignment(a.id, alice.id, PrincipalType::User, sp.id);
        let ev = event(a.id, alice.id, "Standup", 0, 15);
        s.apply(&[
            Change::PutGroup(g.clone()),
            Change::SetGroupMembers {
                tenant_id: a.id,
                group_id: g.id,
                members: vec![GroupMember { group_id: g.id, member_id: alice.id.into(), kind: MemberKind::User }],
            },
            Change::SetUserRoles {
                tenant_id: a.id,
                user_id: alice.id,
                roles: vec![DirectoryRole::GlobalAdministrator],
            },
            Change::PutApplication(app.clone()),
            Change::PutServicePrincipal(sp.clone()),
            Change::PutServicePrincipal(res.clone()),
            Change::PutDelegatedGrant(gr.clone()),
            Change::PutAppRoleAssignment(asg.clone()),
            Change::PutEvent(ev.clone()),
        ])
        .await
        .unwrap();

        // Visible through A...
        assert!(s.user(a.id, alice.id).await.unwrap().is_some());
        assert!(s.group(a.id, g.id).await.unwrap().is_some());
        assert!(s.event(a.id, ev.id).await.unwrap().is_some());
        // ...and not through B.
        let b = b.id;
        assert_eq!(s.user(b, alice.id).await.unwrap(), None);
        assert_eq!(s.user_by_upn(b, &alice.upn).await.unwrap(), None);
        assert_eq!(s.users(b).await.unwrap().len(), 1, "only B's own user");
        assert_eq!(s.user_roles(b, alice.id).await.unwrap(), vec![]);
        assert_eq!(s.group(b, g.id).await.unwrap(), None);
        assert_eq!(s.group_by_name(b, "Team").await.unwrap(), None);
        assert_eq!(s.groups(b).await.unwrap(), vec![]);
        assert_eq!(s.group_members(b, g.id).await.unwrap(), vec![]);
        assert!(s.transitive_groups_of(b, alice.id.into()).await.unwrap().is_empty());
        assert_eq!(s.service_principal(b, sp.id).await.unwrap(), None);
        assert_eq!(s.service_principal_by_app_id(b, app.app_id).await.unwrap(), None);
        assert_eq!(s.service_principals(b).await.unwrap(), vec![]);
        assert_eq!(s.delegated_grant(b, gr.id).await.unwrap(), None);
        assert_eq!(s.delegated_grants(b).await.unwrap(), vec![]);
        assert_eq!(s.delegated_grants_of_client(b, sp.id).await.unwrap(), vec![]);
        assert_eq!(s.app_role_assignments_to(b, sp.id).await.unwrap(), vec![]);
        assert_eq!(s.app_role_assignments_of(b, alice.id.into()).await.unwrap(), vec![]);
        assert_eq!(s.event(b, ev.id).await.unwrap(), None);
        assert_eq!(s.events_of(b, alice.id, None, None).await.unwrap(), vec![]);
        assert_not_found(s.record_failed_sign_in(b, alice.id).await);
        assert_not_found(s.set_locked_until(b, alice.id, Some(at(5))).await);
        assert_not_found(s.clear_failed_sign_ins(b, alice.id).await);
        assert_eq!(s.user(a.id, alice.id).await.unwrap(), Some(alice.clone()), "untouched by B's calls");

        // Deletes through B leave A's rows alone.
        s.apply(&[
            Change::DeleteDelegatedGrant { tenant_id: b, grant_id: gr.id },
            Change::DeleteAppRoleAssignment { tenant_id: b, assignment_id: asg.id },
            Change::DeleteEvent { tenant_id: b, event_id: ev.id },
        ])
        .await
        .unwrap();
        assert_eq!(s.delegated_grant(a.id, gr.id).await.unwrap(), Some(gr));
        assert_eq!(s.app_role_assignments_of(a.id, alice.id.into()).await.unwrap(), vec![asg]);
        assert_eq!(s.event(a.id, ev.id).await.unwrap(), Some(ev));

        // The same object id in another tenant is another row, not an overwrite.
        let mut twin = alice.clone();
        twin.tenant_id = b;
        twin.upn = "alice.twin@b.test".into();
        s.apply(&[Change::PutUser(twin.clone())]).await.unwrap();
        assert_eq!(s.user(a.id, alice.id).await.unwrap(), Some(alice));
        assert_eq!(s.user(b, twin.id).await.unwrap(), Some(twin));
    }

    pub async fn domain_conflict_rolls_back(s: &dyn Store) {
        let (a, _) = seed_tenant(s, "A", "contoso.test").await;
        let fresh = tenant("Fresh", &["fresh.test"]);
        let thief = tenant("Thief", &["thief.test", "CONTOSO.test"]);
        assert_conflict(
            s.apply(&[Change::PutTenant(fresh.clone()), Change::PutTenant(thief.clone())]).await,
            "contoso.test",
        );
        assert_eq!(s.tenant(fresh.id).await.unwrap(), None, "the whole batch is rolled back");
        assert_eq!(s.tenant(thief.id).await.unwrap(), None);
        assert_eq!(s.tenant_by_domain("fresh.test").await.unwrap(), None);
        assert_eq!(s.tenant_by_domain("contoso.test").await.unwrap(), Some(a.clone()));
        assert_eq!(s.tenants().await.unwrap(), vec![a.clone()]);

        // Re-putting a tenant with its own domains is not a conflict.
        s.apply(&[Change::PutTenant(a.clone())]).await.unwrap();
        // The store is still usable after the failed transaction.
        s.apply(&[Change::PutTenant(fresh.clone())]).await.unwrap();
        assert_eq!(s.tenant(fresh.id).await.unwrap(), Some(fresh));
    }

    pub async fn upn_conflict_rolls_back(s: &dyn Store) {
        let (t, alice) = seed_tenant(s, "Contoso", "contoso.test").await;
        let g = group(t.id, "Before");
        let impostor = user(t.id, "ALICE@contoso.test");
        assert_conflict(
            s.apply(&[Change::PutGroup(g.clone()), Change::PutUser(impostor.clone())]).await,
            "alice@contoso.test",
        );
        assert_eq!(s.group(t.id, g.id).await.unwrap(), None);
        assert_eq!(s.user(t.id, impostor.id).await.unwrap(), None);
        assert_eq!(s.user_by_upn(t.id, "alice@contoso.test").await.unwrap(), Some(alice.clone()));

        // The same UPN in another tenant is fine.
        let (other, _) = seed_tenant(s, "Other", "other.test").await;
        let twin = user(other.id, "alice@contoso.test");
        s.apply(&[Change::PutUser(twin.clone())]).await.unwrap();
        assert_eq!(s.user_by_upn(other.id, "alice@contoso.test").await.unwrap(), Some(twin));
    }

    pub async fn application_conflicts_roll_back(s: &dyn Store) {
        let home = tenant("Home", &["home.test"]);
        let app = application(home.id, "App", Some("api://app"));
        s.apply(&[Change::PutTenant(home.clone()), Change::PutApplication(app.clone())]).await.unwrap();

        // Another object claiming the app id.
        let fresh = tenant("Fresh", &["fresh.test"]);
        let mut claim = application(fresh.id, "Claimer", None);
        claim.app_id = app.app_id;
        assert_conflict(
            s.apply(&[Change::PutTenant(fresh.clone()), Change::PutApplication(claim.clone())]).await,
            &app.app_id.to_string(),
        );
        assert_eq!(s.tenant(fresh.id).await.unwrap(), None);
        assert_eq!(s.application_by_app_id(app.app_id).await.unwrap(), Some(app.clone()));

        // Another app with the same identifier URI (ignoring case and trailing slash).
        let uri_clash = application(home.id, "Clash", Some("API://app/"));
        assert_conflict(s.apply(&[Change::PutApplication(uri_clash.clone())]).await, "api://app");
        assert_eq!(s.application_by_app_id(uri_clash.app_id).await.unwrap(), None);

        // Another app id reusing the object id.
        let mut id_clash = application(home.id, "Id clash", None);
        id_clash.id = app.id;
        assert_conflict(s.apply(&[Change::PutApplication(id_clash.clone())]).await, &app.id.to_string());
        assert_eq!(s.application_by_app_id(id_clash.app_id).await.unwrap(), None);
        assert_eq!(s.application_by_app_id(app.app_id).await.unwrap(), Some(app));
    }

    pub async fn group_and_service_principal_conflicts(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let g = group(t.id, "Sales");
        let app = application(t.id, "App", None);
        let sp = service_principal(t.id, &app);
        s.apply(&[Change::PutGroup(g.clone()), Change::PutServicePrincipal(sp.clone())]).await.unwrap();

        let g2 = group(t.id, "SALES");
        assert_conflict(s.apply(&[Change::PutGroup(g2.clone())]).await, "sales");
        assert_eq!(s.group(t.id, g2.id).await.unwrap(), None);

        let sp2 = service_principal(t.id, &app);
        assert_conflict(s.apply(&[Change::PutServicePrincipal(sp2.clone())]).await, &app.app_id.to_string());
        assert_eq!(s.service_principal(t.id, sp2.id).await.unwrap(), None);
        assert_eq!(s.service_principal_by_app_id(t.id, app.app_id).await.unwrap(), Some(sp));

        // Another tenant may have both.
        let (other, _) = seed_tenant(s, "Other", "other.test").await;
        s.apply(&[
            Change::PutGroup(group(other.id, "Sales")),
            Change::PutServicePrincipal(service_principal(other.id, &app)),
        ])
        .await
        .unwrap();
    }

    pub async fn missing_references_are_not_found(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let g = group(t.id, "Before");
        let ghost = fresh();
        assert_not_found(
            s.apply(&[
                Change::PutGroup(g.clone()),
                Change::SetUserRoles {
                    tenant_id: t.id,
                    user_id: ghost,
                    roles: vec![DirectoryRole::GlobalAdministrator],
                },
            ])
            .await,
        );
        assert_eq!(s.group(t.id, g.id).await.unwrap(), None, "rolled back");
        assert_eq!(s.user_roles(t.id, ghost).await.unwrap(), vec![]);

        assert_not_found(
            s.apply(&[Change::SetGroupMembers {
                tenant_id: t.id,
                group_id: GroupId::from_uuid(ghost.as_uuid()),
                members: vec![GroupMember {
                    group_id: GroupId::from_uuid(ghost.as_uuid()),
                    member_id: fresh(),
                    kind: MemberKind::User,
                }],
            }])
            .await,
        );
        let orphan_grant = grant(t.id, fresh(), fresh(), None);
        assert_not_found(s.apply(&[Change::PutDelegatedGrant(orphan_grant)]).await);
        let orphan_user = user(fresh(), "x@nowhere.test");
        assert_not_found(s.apply(&[Change::PutUser(orphan_user)]).await);
        // And the store still works.
        s.apply(&[Change::PutGroup(g.clone())]).await.unwrap();
        assert_eq!(s.group(t.id, g.id).await.unwrap(), Some(g));
    }

    pub async fn batch_order_does_not_matter(s: &dyn Store) {
        // References are checked at commit: a batch may list children before parents.
        let t = tenant("Contoso", &["contoso.test"]);
        let u = user(t.id, "alice@contoso.test");
        let app = application(t.id, "App", None);
        let client = service_principal(t.id, &app);
        let resource = service_principal(t.id, &application(fresh(), "Res", None));
        let gr = grant(t.id, client.id, resource.id, Some(u.id));
        let secret = ClientSecret {
            id: fresh(),
            app_object_id: app.id,
            display_name: "s".into(),
            hint: "abc".into(),
            hash: "ff".into(),
            created_at: t0(),
            expires_at: None,
        };
        s.apply(&[
            Change::PutDelegatedGrant(gr.clone()),
            Change::PutClientSecret(secret.clone()),
            Change::SetUserRoles {
                tenant_id: t.id,
                user_id: u.id,
                roles: vec![DirectoryRole::ApplicationAdministrator],
            },
            Change::PutUser(u.clone()),
            Change::PutServicePrincipal(resource),
            Change::PutServicePrincipal(client),
            Change::PutApplication(app.clone()),
            Change::PutTenant(t.clone()),
        ])
        .await
        .unwrap();
        assert_eq!(s.user(t.id, u.id).await.unwrap(), Some(u.clone()));
        assert_eq!(s.user_roles(t.id, u.id).await.unwrap(), vec![DirectoryRole::ApplicationAdministrator]);
        assert_eq!(s.delegated_grant(t.id, gr.id).await.unwrap(), Some(gr));
        assert_eq!(s.client_secrets(app.id).await.unwrap(), vec![secret]);
        s.apply(&[]).await.unwrap();
    }

    pub async fn tenant_writes_from_a_stale_read_are_refused(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let read_by_a = s.tenant(t.id).await.unwrap().unwrap();
        let read_by_b = read_by_a.clone();
        // A writes first: the row moves to revision 1.
        let a = Tenant { user_consent: UserConsent::None, ..read_by_a };
        s.apply(&[Change::PutTenant(a)]).await.unwrap();
        // B's write, made from revision 0, is refused whole: nothing else of its apply lands.
        let b = Tenant { display_name: "Contoso B".into(), ..read_by_b };
        let renamed = User { display_name: "Renamed".into(), ..u.clone() };
        let err = s.apply(&[Change::PutUser(renamed), Change::PutTenant(b)]).await.unwrap_err();
        assert!(matches!(err, StoreError::Stale(_)), "{err:?}");
        let now = s.tenant(t.id).await.unwrap().unwrap();
        assert_eq!((now.user_consent, now.display_name.as_str(), now.revision), (UserConsent::None, "Contoso", 1));
        assert_eq!(s.user(t.id, u.id).await.unwrap().unwrap().display_name, u.display_name, "rolled back");
        // Read again, B's change lands on top of A's.
        let b = Tenant { display_name: "Contoso B".into(), ..now };
        s.apply(&[Change::PutTenant(b)]).await.unwrap();
        let now = s.tenant(t.id).await.unwrap().unwrap();
        assert_eq!((now.user_consent, now.display_name.as_str(), now.revision), (UserConsent::None, "Contoso B", 2));
    }

    pub async fn request_decisions_apply_once(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let r = consent_request(t.id, fresh(), u.id, 0);
        s.apply(&[Change::PutConsentRequest(r.clone())]).await.unwrap();
        let decided = |result: ReviewResult| ConsentRequest {
            status: RequestStatus::Completed,
            result,
            reviewed_by: Some(u.id),
            review_justification: Some("why".into()),
            reviewed_at: Some(at(5)),
            completed_at: Some(at(5)),
            ..r.clone()
        };
        // Two reviewers race: one decision lands; the other is refused with what came with it.
        let approve = [Change::DecideConsentRequest(decided(ReviewResult::Approved))];
        let deny = [
            Change::AppendAudit(audit_event(t.id, 5, "request.denied", None)),
            Change::DecideConsentRequest(decided(ReviewResult::Denied)),
        ];
        let (first, second) = tokio::join!(s.apply(&approve), s.apply(&deny));
        let outcomes = [first.is_ok(), second.is_ok()];
        assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{first:?} {second:?}");
        for e in [first, second].into_iter().filter_map(Result::err) {
            assert!(matches!(e, StoreError::Stale(_)), "{e:?}");
        }
        let stored = s.consent_request(t.id, r.id).await.unwrap().unwrap();
        let winner = if outcomes[0] { ReviewResult::Approved } else { ReviewResult::Denied };
        assert_eq!(stored, decided(winner));
        let denials = s
            .audit_events(t.id, &AuditQuery::latest(None, 10))
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "request.denied")
            .count();
        assert_eq!(denials, usize::from(winner == ReviewResult::Denied), "the losing apply left nothing");
        // A request that does not exist is not found, not stale.
        let ghost = ConsentRequest { id: fresh(), ..decided(ReviewResult::Approved) };
        assert!(matches!(s.apply(&[Change::DecideConsentRequest(ghost)]).await, Err(StoreError::NotFound(_))));
    }

    pub async fn failed_sign_ins_and_lock(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        assert_eq!(s.record_failed_sign_in(t.id, u.id).await.unwrap(), 1);
        assert_eq!(s.record_failed_sign_in(t.id, u.id).await.unwrap(), 2);
        assert_eq!(s.record_failed_sign_in(t.id, u.id).await.unwrap(), 3);
        assert_eq!(s.user(t.id, u.id).await.unwrap().unwrap().failed_sign_ins, 3);

        s.set_locked_until(t.id, u.id, Some(at(30))).await.unwrap();
        let locked = s.user(t.id, u.id).await.unwrap().unwrap();
        assert_eq!(locked.locked_until, Some(at(30)));
        assert_eq!(locked.failed_sign_ins, 0, "locking resets the count");

        assert_eq!(s.record_failed_sign_in(t.id, u.id).await.unwrap(), 1);
        s.clear_failed_sign_ins(t.id, u.id).await.unwrap();
        let cleared = s.user(t.id, u.id).await.unwrap().unwrap();
        assert_eq!(cleared.failed_sign_ins, 0);
        assert_eq!(cleared.locked_until, Some(at(30)), "clearing the count keeps the lock");

        s.set_locked_until(t.id, u.id, None).await.unwrap();
        let unlocked = s.user(t.id, u.id).await.unwrap().unwrap();
        assert_eq!(unlocked.locked_until, None);
        assert_eq!(unlocked, User { failed_sign_ins: 0, locked_until: None, ..u.clone() });

        assert_not_found(s.record_failed_sign_in(t.id, fresh()).await);
        assert_not_found(s.set_locked_until(t.id, fresh(), None).await);
        assert_not_found(s.clear_failed_sign_ins(t.id, fresh()).await);
    }

    pub async fn concurrent_failed_sign_ins(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let hit = || s.record_failed_sign_in(t.id, u.id);
        let (a, b, c, d, e, f) = tokio::join!(hit(), hit(), hit(), hit(), hit(), hit());
        let mut counts = vec![a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap(), e.unwrap(), f.unwrap()];
        counts.sort();
        assert_eq!(counts, vec![1, 2, 3, 4, 5, 6], "each increment sees its own value");
        assert_eq!(s.user(t.id, u.id).await.unwrap().unwrap().failed_sign_ins, 6);
    }

    /// The reads of a sign-in (the user, their roles, their groups and the groups' members) come
    /// from the directory cache, and every write that changes them is seen at once: the
    /// directory changes and the lockout counters alike.
    pub async fn sign_in_reads_are_cached_and_see_every_write(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let (sales, emea) = (group(t.id, "Sales"), group(t.id, "EMEA"));
        let member = |g: &Group, m: Uuid, kind| GroupMember { group_id: g.id, member_id: m, kind };
        s.apply(&[
            Change::PutGroup(sales.clone()),
            Change::PutGroup(emea.clone()),
            Change::SetGroupMembers {
                tenant_id: t.id,
                group_id: sales.id,
                members: vec![member(&sales, u.id.into(), MemberKind::User)],
            },
        ])
        .await
        .unwrap();
        let read = || async {
            (
                s.user(t.id, u.id).await.unwrap().unwrap(),
                s.user_roles(t.id, u.id).await.unwrap(),
                s.transitive_groups_of(t.id, u.id.into()).await.unwrap(),
                s.group(t.id, sales.id).await.unwrap().unwrap(),
                s.group_members(t.id, emea.id).await.unwrap(),
            )
        };
        let first = read().await;
        assert_eq!(first.2, vec![sales.id]);
        let before = s.statements_executed();
        assert_eq!(read().await, first);
        assert_eq!(s.statements_executed(), before, "a second sign-in reads nothing");

        // Lockout counters: written outside `apply`, seen at once.
        assert_eq!(s.record_failed_sign_in(t.id, u.id).await.unwrap(), 1);
        assert_eq!(read().await.0.failed_sign_ins, 1);
        s.set_locked_until(t.id, u.id, Some(at(30))).await.unwrap();
        assert_eq!(read().await.0.locked_until, Some(at(30)));
        s.set_locked_until(t.id, u.id, None).await.unwrap();
        s.record_failed_sign_in(t.id, u.id).await.unwrap();
        s.clear_failed_sign_ins(t.id, u.id).await.unwrap();
        let (user, ..) = read().await;
        assert_eq!((user.failed_sign_ins, user.locked_until), (0, None));

        // Directory changes.
        let renamed = User { display_name: "Renamed".into(), enabled: false, ..user };
        let emea_members = vec![member(&emea, sales.id.into(), MemberKind::Group)];
        s.apply(&[
            Change::PutUser(renamed),
            Change::SetUserRoles { tenant_id: t.id, user_id: u.id, roles: vec![DirectoryRole::GlobalAdministrator] },
            Change::SetGroupMembers { tenant_id: t.id, group_id: emea.id, members: emea_members.clone() },
            Change::PutGroup(Group { display_name: "Sales & Marketing".into(), ..sales.clone() }),
        ])
        .await
        .unwrap();
        let (user, roles, mut groups, g, members) = read().await;
        groups.sort();
        let mut expected = vec![sales.id, emea.id];
        expected.sort();
        assert_eq!((user.display_name.as_str(), user.enabled), ("Renamed", false));
        assert_eq!(roles, vec![DirectoryRole::GlobalAdministrator]);
        assert_eq!(groups, expected, "nested membership seen through the new parent");
        assert_eq!(g.display_name, "Sales & Marketing");
        assert_eq!(members, emea_members);

        s.apply(&[Change::EndSignIns { tenant_id: t.id, user_id: u.id, at: at(40) }]).await.unwrap();
        assert_eq!(read().await.0.sign_ins_valid_from, Some(at(40)));

        // Another tenant's writes leave this tenant's entries alone.
        let (other, _) = seed_tenant(s, "Fabrikam", "fabrikam.test").await;
        read().await;
        let before = s.statements_executed();
        s.apply(&[Change::PutGroup(group(other.id, "Elsewhere"))]).await.unwrap();
        let after_write = s.statements_executed();
        read().await;
        assert_eq!(s.statements_executed(), after_write, "still cached after {} statements", after_write - before);

        s.apply(&[Change::DeleteUser { tenant_id: t.id, user_id: u.id }]).await.unwrap();
        assert_eq!(s.user(t.id, u.id).await.unwrap(), None);
        assert_eq!(s.user_roles(t.id, u.id).await.unwrap(), vec![]);
        assert_eq!(s.transitive_groups_of(t.id, Uuid::from(u.id)).await.unwrap(), Vec::<GroupId>::new());
    }

    /// The client every test device authorization belongs to.
    pub const DEVICE_CLIENT: AppId = AppId::from_uuid(Uuid::from_u128(0xde71ce));

    pub fn device(tag: &str, expires: i64) -> DeviceAuthorizationRecord {
        DeviceAuthorizationRecord {
            device_code_hash: format!("{tag}-device"),
            user_code_hash: format!("{tag}-user"),
            tenant_segment: "organizations".into(),
            client_app_id: DEVICE_CLIENT,
            scope: "openid offline_access User.Read".into(),
            created_at: at(0),
            expires_at: at(expires),
            status: DeviceStatus::Pending,
            family_id: fresh(),
        }
    }

    pub async fn device_authorization_lifecycle(s: &dyn Store) {
        let client = DEVICE_CLIENT;
        let d = device("d1", 15);
        s.put_device_authorization(&d).await.unwrap();
        assert_eq!(s.device_authorization_by_user_code("d1-user").await.unwrap(), Some(d.clone()));
        assert_eq!(s.device_authorization_by_user_code("nope").await.unwrap(), None);
        assert!(s.put_device_authorization(&device("d1", 15)).await.is_err(), "codes are unique");
        assert_eq!(s.redeem_device_authorization("d1-device", client, at(1)).await.unwrap(), DeviceRedemption::Pending);
        assert_eq!(s.redeem_device_authorization("other", client, at(1)).await.unwrap(), DeviceRedemption::NotFound);
        // Another client learns nothing of this device code, whatever its state.
        let stranger = AppId::from_uuid(Uuid::from_u128(0x5742));
        assert_eq!(
            s.redeem_device_authorization("d1-device", stranger, at(1)).await.unwrap(),
            DeviceRedemption::NotFound
        );

        // Approved once; a second answer changes nothing.
        let approval = DeviceStatus::Approved { tenant_id: fresh(), user_id: fresh(), auth_time: at(2) };
        assert!(s.decide_device_authorization("d1-device", &approval, at(2)).await.unwrap());
        let refusal = DeviceStatus::Refused(DeviceRefusal {
            code: 70000,
            error: "authorization_declined".into(),
            message: "no".into(),
        });
        assert!(!s.decide_device_authorization("d1-device", &refusal, at(3)).await.unwrap());
        // Redeemed once, with what was approved; then a replay.
        match s.redeem_device_authorization("d1-device", client, at(4)).await.unwrap() {
            DeviceRedemption::Approved(r) => {
                assert_eq!(r.status, approval);
                assert_eq!(r.family_id, d.family_id);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.redeem_device_authorization("d1-device", client, at(5)).await.unwrap(),
            DeviceRedemption::AlreadyRedeemed(r) if r.family_id == d.family_id
        ));

        // Refused: the poll learns why.
        s.put_device_authorization(&device("d2", 15)).await.unwrap();
        assert!(s.decide_device_authorization("d2-device", &refusal, at(1)).await.unwrap());
        let DeviceStatus::Refused(why) = refusal else { unreachable!() };
        assert_eq!(
            s.redeem_device_authorization("d2-device", client, at(2)).await.unwrap(),
            DeviceRedemption::Refused(why)
        );

        // Expired: no answer is taken and the poll says so; an approved one expires as well.
        s.put_device_authorization(&device("d3", 15)).await.unwrap();
        assert!(!s.decide_device_authorization("d3-device", &approval, at(15)).await.unwrap());
        assert_eq!(
            s.redeem_device_authorization("d3-device", client, at(16)).await.unwrap(),
            DeviceRedemption::Expired
        );
        s.put_device_authorization(&device("d4", 15)).await.unwrap();
        assert!(s.decide_device_authorization("d4-device", &approval, at(10)).await.unwrap());
        assert_eq!(
            s.redeem_device_authorization("d4-device", client, at(15)).await.unwrap(),
            DeviceRedemption::Expired
        );

        // Only pending authorizations are written; purging removes the expired.
        assert!(s
            .put_device_authorization(&DeviceAuthorizationRecord { status: approval, ..device("d5", 15) })
            .await
            .is_err());
        assert!(s.purge_expired(at(20)).await.unwrap() >= 4);
        assert_eq!(s.device_authorization_by_user_code("d2-user").await.unwrap(), None);
    }

    pub async fn concurrent_device_decisions_and_polls(s: &dyn Store) {
        s.put_device_authorization(&device("c1", 15)).await.unwrap();
        let approval = DeviceStatus::Approved { tenant_id: fresh(), user_id: fresh(), auth_time: at(1) };
        let decide = || s.decide_device_authorization("c1-device", &approval, at(1));
        let (a, b, c, d, e) = tokio::join!(decide(), decide(), decide(), decide(), decide());
        let won = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap(), e.unwrap()];
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "one answer wins: {won:?}");
        let poll = || s.redeem_device_authorization("c1-device", DEVICE_CLIENT, at(2));
        let (a, b, c, d, e) = tokio::join!(poll(), poll(), poll(), poll(), poll());
        let polls = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap(), e.unwrap()];
        let redeemed = polls.iter().filter(|p| matches!(p, DeviceRedemption::Approved(_))).count();
        assert_eq!(redeemed, 1, "one poll redeems: {polls:?}");
    }

    pub async fn refresh_rotation_and_reuse_detection(s: &dyn Store) {
        let family = fresh();
        let t1 = refresh_token(family, "t1");
        s.put_refresh_token(&t1).await.unwrap();
        assert_eq!(s.refresh_token("t1").await.unwrap(), Some(t1.clone()));
        assert_eq!(s.refresh_token("nope").await.unwrap(), None);

        let mut t2 = refresh_token(family, "t2");
        t2.created_at = at(5);
        assert_eq!(s.rotate_refresh_token("t1", &t2, at(5)).await.unwrap(), RotateOutcome::Rotated);
        let used = s.refresh_token("t1").await.unwrap().unwrap();
        assert_eq!(used.used_at, Some(at(5)));
        assert!(!used.revoked);
        assert_eq!(s.refresh_token("t2").await.unwrap(), Some(t2.clone()));

        let t3 = refresh_token(family, "t3");
        assert_eq!(s.rotate_refresh_token("t2", &t3, at(6)).await.unwrap(), RotateOutcome::Rotated);
        assert_eq!(s.refresh_token("t3").await.unwrap(), Some(t3.clone()));

        // Replaying t1: the family goes, including the live t3; the would-be successor is not added.
        let t4 = refresh_token(family, "t4");
        assert_eq!(s.rotate_refresh_token("t1", &t4, at(7)).await.unwrap(), RotateOutcome::ReuseDetected);
        assert_eq!(s.refresh_token("t4").await.unwrap(), None);
        for hash in ["t1", "t2", "t3"] {
            assert!(s.refresh_token(hash).await.unwrap().unwrap().revoked, "{hash} revoked");
        }
        let t5 = refresh_token(family, "t5");
        assert_eq!(s.rotate_refresh_token("t3", &t5, at(8)).await.unwrap(), RotateOutcome::Revoked);
        assert_eq!(s.rotate_refresh_token("t1", &t5, at(8)).await.unwrap(), RotateOutcome::Revoked);
        assert_eq!(s.refresh_token("t5").await.unwrap(), None);
        assert_eq!(s.rotate_refresh_token("nope", &t5, at(8)).await.unwrap(), RotateOutcome::NotFound);

        // A single-page app's token keeps its mark through rotation.
        let spa = RefreshTokenRecord { spa: true, ..refresh_token(fresh(), "spa1") };
        s.put_refresh_token(&spa).await.unwrap();
        assert!(s.refresh_token("spa1").await.unwrap().unwrap().spa);
        let next = RefreshTokenRecord { spa: true, ..refresh_token(spa.family_id, "spa2") };
        assert_eq!(s.rotate_refresh_token("spa1", &next, at(9)).await.unwrap(), RotateOutcome::Rotated);
        assert!(s.refresh_token("spa2").await.unwrap().unwrap().spa);

        // The successor joins the old token's family.
        let other_family = fresh();
        s.put_refresh_token(&refresh_token(other_family, "o1")).await.unwrap();
        let stray = refresh_token(fresh(), "o2");
        assert_eq!(s.rotate_refresh_token("o1", &stray, at(9)).await.unwrap(), RotateOutcome::Rotated);
        assert_eq!(s.refresh_token("o2").await.unwrap().unwrap().family_id, other_family);
    }

    pub async fn refresh_family_revocation(s: &dyn Store) {
        let family = fresh();
        let keep = fresh();
        s.put_refresh_token(&refresh_token(family, "a")).await.unwrap();
        s.put_refresh_token(&refresh_token(family, "b")).await.unwrap();
        s.put_refresh_token(&refresh_token(keep, "k")).await.unwrap();
        s.revoke_refresh_family(family).await.unwrap();
        s.revoke_refresh_family(family).await.unwrap();
        assert!(s.refresh_token("a").await.unwrap().unwrap().revoked);
        assert!(s.refresh_token("b").await.unwrap().unwrap().revoked);
        assert!(!s.refresh_token("k").await.unwrap().unwrap().revoked, "other families untouched");
        let next = refresh_token(family, "c");
        assert_eq!(s.rotate_refresh_token("a", &next, at(1)).await.unwrap(), RotateOutcome::Revoked);
        assert_eq!(s.refresh_token("c").await.unwrap(), None);

        // Revocation is a property of the family: a token added later is revoked too.
        let early = fresh();
        s.revoke_refresh_family(early).await.unwrap();
        s.put_refresh_token(&refresh_token(early, "late")).await.unwrap();
        assert!(s.refresh_token("late").await.unwrap().unwrap().revoked);

        // A record put as revoked revokes its family; a later unrevoked put does not undo it.
        let f2 = fresh();
        s.put_refresh_token(&RefreshTokenRecord { revoked: true, ..refresh_token(f2, "r1") }).await.unwrap();
        s.put_refresh_token(&refresh_token(f2, "r2")).await.unwrap();
        assert!(s.refresh_token("r1").await.unwrap().unwrap().revoked);
        assert!(s.refresh_token("r2").await.unwrap().unwrap().revoked);

        // A used token put back keeps its used_at.
        let f3 = fresh();
        let used = RefreshTokenRecord { used_at: Some(at(3)), ..refresh_token(f3, "u1") };
        s.put_refresh_token(&used).await.unwrap();
        assert_eq!(s.refresh_token("u1").await.unwrap(), Some(used));
    }

    pub async fn concurrent_refresh_rotation(s: &dyn Store) {
        let family = fresh();
        s.put_refresh_token(&refresh_token(family, "v1")).await.unwrap();
        let (n1, n2) = (refresh_token(family, "v2"), refresh_token(family, "v3"));
        let (a, b) = tokio::join!(s.rotate_refresh_token("v1", &n1, at(1)), s.rotate_refresh_token("v1", &n2, at(1)));
        let mut outcomes = [a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(outcomes, [RotateOutcome::ReuseDetected, RotateOutcome::Rotated]);
        let survivors: Vec<_> = [s.refresh_token("v2").await.unwrap(), s.refresh_token("v3").await.unwrap()]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(survivors.len(), 1, "exactly one successor was added");
        assert!(survivors[0].revoked, "and the replay revoked it with its family");
    }

    pub async fn purge_expired(s: &dyn Store) {
        let now = at(100);
        let session = |hash: &str, expires: i64| SessionRecord {
            id_hash: hash.to_string(),
            tenant_id: fresh(),
            user_id: fresh(),
            auth_time: t0(),
            expires_at: at(expires),
        };
        s.put_session(&session("s-old", 99)).await.unwrap();
        s.put_session(&session("s-edge", 100)).await.unwrap();
        s.put_session(&session("s-live", 101)).await.unwrap();
        let f = fresh();
        s.put_refresh_token(&RefreshTokenRecord { expires_at: at(10), ..refresh_token(f, "r-old") }).await.unwrap();
        s.put_refresh_token(&RefreshTokenRecord { expires_at: at(1000), ..refresh_token(f, "r-live") }).await.unwrap();

        assert_eq!(s.purge_expired(now).await.unwrap(), 2);
        assert_eq!(s.session("s-old").await.unwrap(), None);
        assert_eq!(s.session("s-edge").await.unwrap(), None, "expires_at == now is expired");
        assert!(s.session("s-live").await.unwrap().is_some());
        // An expired refresh token is remembered a while (to be refused as expired)...
        assert!(s.refresh_token("r-old").await.unwrap().is_some());
        assert!(s.refresh_token("r-live").await.unwrap().is_some());
        assert_eq!(s.purge_expired(now).await.unwrap(), 0);

        // A revoked family survives the purge while it has tokens.
        s.revoke_refresh_family(f).await.unwrap();
        s.purge_expired(now).await.unwrap();
        assert!(s.refresh_token("r-live").await.unwrap().unwrap().revoked);

        // ...then goes, to the second.
        let memory = Duration::days(EXPIRED_REFRESH_TOKEN_MEMORY_DAYS);
        s.purge_expired(at(10) + memory - Duration::seconds(1)).await.unwrap();
        assert!(s.refresh_token("r-old").await.unwrap().is_some());
        s.purge_expired(at(10) + memory).await.unwrap();
        assert_eq!(s.refresh_token("r-old").await.unwrap(), None);
        assert!(s.refresh_token("r-live").await.unwrap().is_some(), "expired later, remembered later");
    }

    pub async fn signing_keys(s: &dyn Store) {
        assert_eq!(s.signing_keys().await.unwrap(), vec![]);
        let key = |kid: &str, minutes: i64, status: KeyStatus| SigningKeyRecord {
            kid: kid.to_string(),
            sealed_private_key: vec![0, 1, 2, 255, 0, 128, kid.len() as u8],
            status,
            created_at: at(minutes),
        };
        let k1 = key("k1", 0, KeyStatus::Retired);
        let k2 = key("k2", 10, KeyStatus::Previous);
        let k3 = key("k3", 20, KeyStatus::Active);
        s.insert_signing_key(&k2).await.unwrap();
        s.insert_signing_key(&k3).await.unwrap();
        s.insert_signing_key(&k1).await.unwrap();
        assert_eq!(s.signing_keys().await.unwrap(), vec![k3.clone(), k2.clone(), k1.clone()], "newest first");

        assert_conflict(s.insert_signing_key(&key("k1", 30, KeyStatus::Active)).await, "k1");

        s.set_signing_key_status("k3", KeyStatus::Previous).await.unwrap();
        s.set_signing_key_status("k2", KeyStatus::Retired).await.unwrap();
        let keys = s.signing_keys().await.unwrap();
        let statuses: Vec<_> = keys.iter().map(|k| (k.kid.as_str(), k.status)).collect();
        assert_eq!(statuses, vec![("k3", KeyStatus::Previous), ("k2", KeyStatus::Retired), ("k1", KeyStatus::Retired)]);
        assert_eq!(keys[0].sealed_private_key, k3.sealed_private_key);
        assert_not_found(s.set_signing_key_status("nope", KeyStatus::Active).await);
    }

    pub async fn sessions(s: &dyn Store) {
        let session = SessionRecord {
            id_hash: "sess".into(),
            tenant_id: fresh(),
            user_id: fresh(),
            auth_time: t0(),
            expires_at: at(60),
        };
        s.put_session(&session).await.unwrap();
        assert_eq!(s.session("sess").await.unwrap(), Some(session.clone()));
        assert_eq!(s.session("other").await.unwrap(), None);
        let extended = SessionRecord { expires_at: at(120), auth_time: at(1), ..session };
        s.put_session(&extended).await.unwrap();
        assert_eq!(s.session("sess").await.unwrap(), Some(extended));
        s.delete_session("sess").await.unwrap();
        assert_eq!(s.session("sess").await.unwrap(), None);
        s.delete_session("sess").await.unwrap();
    }

    pub async fn deletes_of_missing_rows_are_ok(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        s.apply(&[
            Change::DeleteClientSecret { app_object_id: fresh(), secret_id: fresh() },
            Change::DeleteDelegatedGrant { tenant_id: t.id, grant_id: fresh() },
            Change::DeleteAppRoleAssignment { tenant_id: t.id, assignment_id: fresh() },
            Change::DeleteEvent { tenant_id: fresh(), event_id: fresh() },
        ])
        .await
        .unwrap();
        s.delete_session("never-existed").await.unwrap();
        s.revoke_refresh_family(fresh()).await.unwrap();
    }

    /// A pooled connection is pinged before use only once it has idled a while (see
    /// `CHECK_AFTER_IDLE` in `sql.rs`): statements back to back take no check each (sqlx's
    /// default, a third round trip a statement), and a connection idle over a second is checked,
    /// so one the database dropped meanwhile is replaced before a request meets it.
    pub async fn connections_are_checked_only_after_idling(s: &dyn Store) {
        let before = s.connection_checks();
        for _ in 0..100 {
            s.ping().await.unwrap();
        }
        // At most one check per pooled connection, for any that idled before the loop.
        let busy = s.connection_checks() - before;
        assert!(busy <= 10, "{busy} checks over 100 statements back to back");
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        let before = s.connection_checks();
        s.ping().await.unwrap();
        assert!(s.connection_checks() > before, "a connection idle over a second is checked before use");
    }

    pub async fn statements_executed_counts(s: &dyn Store) {
        let start = s.statements_executed();
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let after_seed = s.statements_executed();
        assert!(after_seed > start, "apply runs statements");

        s.tenant(t.id).await.unwrap();
        assert_eq!(s.statements_executed(), after_seed + 1, "a tenant read is one statement");
        s.tenant(t.id).await.unwrap();
        assert_eq!(s.statements_executed(), after_seed + 1, "a second tenant read comes from the directory cache");
        s.user_by_upn(t.id, &u.upn).await.unwrap();
        assert_eq!(s.statements_executed(), after_seed + 2);
        // Issuing a refresh token is one statement: its family gets a row only if revoked.
        let token = RefreshTokenRecord { tenant_id: t.id, user_id: u.id, ..refresh_token(fresh(), "one-statement") };
        s.put_refresh_token(&token).await.unwrap();
        assert_eq!(s.statements_executed(), after_seed + 3);
        assert!(!s.refresh_token("one-statement").await.unwrap().unwrap().revoked);
        // A failed read still counts.
        let _ = s.refresh_token("nope").await;
        assert_eq!(s.statements_executed(), after_seed + 5);
    }

    /// Every read the directory cache serves (sql/cache.rs) reflects a write through the same
    /// store as soon as `apply` returns.
    pub async fn directory_cache_sees_local_writes_at_once(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let app = application(t.id, "Cached", Some("api://cached"));
        let sp = service_principal(t.id, &app);
        let secret = ClientSecret {
            id: fresh(),
            app_object_id: app.id,
            display_name: "ci".into(),
            hint: "abc".into(),
            hash: "00ff".repeat(16),
            created_at: at(5),
            expires_at: None,
        };
        s.apply(&[
            Change::PutApplication(app.clone()),
            Change::PutServicePrincipal(sp.clone()),
            Change::PutClientSecret(secret.clone()),
        ])
        .await
        .unwrap();
        let read_all = || async {
            (
                s.tenant(t.id).await.unwrap(),
                s.tenant_by_domain("CONTOSO.test").await.unwrap(),
                s.application_by_app_id(app.app_id).await.unwrap(),
                s.application_by_identifier_uri("api://cached/").await.unwrap(),
                s.client_secrets(app.id).await.unwrap(),
                s.service_principal(t.id, sp.id).await.unwrap(),
                s.service_principal_by_app_id(t.id, app.app_id).await.unwrap(),
                s.app_role_assignments_of(t.id, sp.id.into()).await.unwrap(),
                s.delegated_grants_of_client(t.id, sp.id).await.unwrap(),
                s.app_role_assignments_to(t.id, sp.id).await.unwrap(),
                s.permission_classifications(t.id, sp.id).await.unwrap(),
            )
        };
        let first = read_all().await;
        let before = s.statements_executed();
        assert_eq!(read_all().await, first);
        assert_eq!(s.statements_executed(), before, "repeated directory reads are served from the cache");
        assert_eq!(first.4, vec![secret.clone()]);

        let mut t2 = t.clone();
        t2.display_name = "Contoso Ltd".into();
        t2.domains.push("contoso2.test".into());
        let mut app2 = app.clone();
        app2.display_name = "Renamed".into();
        app2.identifier_uri = Some("api://renamed".into());
        let mut sp2 = sp.clone();
        sp2.enabled = false;
        let g = grant(t.id, sp.id, sp.id, Some(u.id));
        let a = assignment(t.id, sp.id, PrincipalType::ServicePrincipal, sp.id);
        let low = PermissionClassification {
            tenant_id: t.id,
            id: fresh(),
            resource_sp_id: sp.id,
            permission_id: app.scopes[0].id,
            permission_value: app.scopes[0].value.clone(),
            classification: "low".into(),
        };
        s.apply(&[
            Change::PutPermissionClassification(low.clone()),
            Change::PutTenant(t2),
            Change::PutApplication(app2),
            Change::PutServicePrincipal(sp2),
            Change::DeleteClientSecret { app_object_id: app.id, secret_id: secret.id },
            Change::PutDelegatedGrant(g.clone()),
            Change::PutAppRoleAssignment(a.clone()),
        ])
        .await
        .unwrap();
        assert_eq!(s.tenant(t.id).await.unwrap().unwrap().display_name, "Contoso Ltd");
        assert!(s.tenant_by_domain("contoso2.test").await.unwrap().is_some());
        assert_eq!(s.application_by_app_id(app.app_id).await.unwrap().unwrap().display_name, "Renamed");
        assert_eq!(s.application_by_identifier_uri("api://cached").await.unwrap(), None);
        assert!(s.application_by_identifier_uri("API://renamed/").await.unwrap().is_some());
        assert_eq!(s.client_secrets(app.id).await.unwrap(), vec![]);
        assert!(!s.service_principal(t.id, sp.id).await.unwrap().unwrap().enabled);
        assert!(!s.service_principal_by_app_id(t.id, app.app_id).await.unwrap().unwrap().enabled);
        assert_eq!(s.app_role_assignments_of(t.id, sp.id.into()).await.unwrap(), vec![a.clone()]);
        assert_eq!(s.app_role_assignments_to(t.id, sp.id).await.unwrap(), vec![a]);
        assert_eq!(s.permission_classifications(t.id, sp.id).await.unwrap(), vec![low]);
        assert_eq!(s.delegated_grants_of_client(t.id, sp.id).await.unwrap(), vec![g]);
    }

    // --- consent workflow, classifications, audit, outbox ---

    pub async fn consent_request_round_trip_and_upsert(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let app = fresh();
        let pending = consent_request(t.id, app, u.id, 0);
        // Every optional field set, and the other enum values.
        let reviewed = ConsentRequest {
            status: RequestStatus::Completed,
            result: ReviewResult::Approved,
            reviewed_by: Some(fresh()),
            review_justification: Some("Fine by security — ✓".into()),
            reviewed_at: Some(at(30)),
            completed_at: Some(at(31)),
            permissions: vec![PermissionKey { resource_app_id: fresh(), value: "Files.Read.All".into() }],
            ..consent_request(t.id, app, u.id, 1)
        };
        let empty = ConsentRequest {
            permissions: vec![],
            reason: String::new(),
            status: RequestStatus::Expired,
            result: ReviewResult::Blocked,
            ..consent_request(t.id, app, u.id, 2)
        };
        let denied = ConsentRequest { result: ReviewResult::Denied, ..consent_request(t.id, app, u.id, 3) };
        s.apply(&[
            Change::PutConsentRequest(pending.clone()),
            Change::PutConsentRequest(reviewed.clone()),
            Change::PutConsentRequest(empty.clone()),
            Change::PutConsentRequest(denied.clone()),
        ])
        .await
        .unwrap();

        for r in [&pending, &reviewed, &empty, &denied] {
            assert_eq!(s.consent_request(t.id, r.id).await.unwrap().as_ref(), Some(r));
        }
        let got = s.consent_request(t.id, pending.id).await.unwrap().unwrap();
        let values: Vec<_> = got.permissions.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(values, ["User.Read", "Calendars.Read", "Mail.Send"], "permissions keep request order");
        assert_eq!(s.consent_request(t.id, fresh()).await.unwrap(), None);

        // Upsert: the review fills the optional fields in; putting it back clears them again.
        let approved = ConsentRequest {
            status: RequestStatus::Completed,
            result: ReviewResult::Approved,
            reviewed_by: Some(u.id),
            review_justification: Some("ok".into()),
            reviewed_at: Some(at(40)),
            completed_at: Some(at(40)),
            ..pending.clone()
        };
        s.apply(&[Change::PutConsentRequest(approved.clone())]).await.unwrap();
        assert_eq!(s.consent_request(t.id, pending.id).await.unwrap(), Some(approved));
        s.apply(&[Change::PutConsentRequest(pending.clone())]).await.unwrap();
        assert_eq!(s.consent_request(t.id, pending.id).await.unwrap(), Some(pending));
        assert_eq!(s.consent_requests(t.id, None).await.unwrap().len(), 4);

        // A request in a tenant that does not exist.
        let orphan = consent_request(fresh(), app, u.id, 0);
        assert_not_found(s.apply(&[Change::PutConsentRequest(orphan.clone())]).await);
        assert_eq!(s.consent_request(orphan.tenant_id, orphan.id).await.unwrap(), None);
    }

    pub async fn consent_requests_by_app_newest_first(s: &dyn Store) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let (app1, app2) = (fresh(), fresh());
        let old = consent_request(t.id, app1, u.id, 0);
        let mid = consent_request(t.id, app2, u.id, 5);
        // Same creation time as `mid`: ties go by id.
        let mut twin = consent_request(t.id, app1, u.id, 5);
        twin.id = if mid.id < twin.id { twin.id } else { Uuid::from_u128(mid.id.as_u128() + 1) };
        let new = consent_request(t.id, app1, u.id, 10);
        s.apply(&[
            Change::PutConsentRequest(mid.clone()),
            Change::PutConsentRequest(old.clone()),
            Change::PutConsentRequest(new.clone()),
            Change::PutConsentRequest(twin.clone()),
        ])
        .await
        .unwrap();

        assert!(mid.id < twin.id);
        assert_eq!(
            s.consent_requests(t.id, None).await.unwrap(),
            vec![new.clone(), mid.clone(), twin.clone(), old.clone()],
            "newest first, ties by id"
        );
        assert_eq!(s.consent_requests(t.id, Some(app1)).await.unwrap(), vec![new, twin, old]);
        assert_eq!(s.consent_requests(t.id, Some(app2)).await.unwrap(), vec![mid]);
        assert_eq!(s.consent_requests(t.id, Some(fresh())).await.unwrap(), vec![]);
    }

    pub async fn expired_consent_requests(s: &dyn Store) {
        let (a, alice) = seed_tenant(s, "A", "a.test").await;
        let (b, bob) = seed_tenant(s, "B", "b.test").await;
        let app = fresh();
        let now = at(100);
        let req = |t: &Tenant, u: &User, expires: i64, status: RequestStatus| ConsentRequest {
            expires_at: at(expires),
            status,
            ..consent_request(t.id, app, u.id, 0)
        };
        let edge = req(&a, &alice, 100, RequestStatus::InProgress);
        let past = req(&b, &bob, 99, RequestStatus::InProgress);
        let long_past = req(&a, &alice, 10, RequestStatus::InProgress);
        let live = req(&a, &alice, 101, RequestStatus::InProgress);
        let completed = req(&a, &alice, 10, RequestStatus::Completed);
        let expired = req(&b, &bob, 10, RequestStatus::Expired);
        s.apply(&[
            Change::PutConsentRequest(edge.clone()),
            Change::PutConsentRequest(past.clone()),
            Change::PutConsentRequest(long_past.clone()),
            Change::PutConsentRequest(live.clone()),
            Change::PutConsentRequest(completed),
            Change::PutConsentRequest(expired),
        ])
        .await
        .unwrap();

        assert_eq!(
            s.expired_consent_requests(now).await.unwrap(),
            vec![long_past.clone(), past.clone(), edge.clone()],
            "in progress, expires_at <= now, across tenants, soonest expiry first"
        );
        assert_eq!(s.expired_consent_requests(at(9)).await.unwrap(), vec![]);

        // The expiry job marks them expired: they leave the list.
        let done = ConsentRequest { status: RequestStatus::Expired, completed_at: Some(now), ..past };
        s.apply(&[Change::PutConsentRequest(done)]).await.unwrap();
        assert_eq!(s.expired_consent_requests(now).await.unwrap(), vec![long_past, edge]);
        assert_eq!(s.expired_consent_requests(at(101)).await.unwrap().len(), 3, "live joins at its expiry");
    }

    pub async fn permission_classifications(s: &dyn Store) {
        let (t, _, client, resource) = two_service_principals(s).await;
        let read = classification(t.id, resource.id, "User.Read");
        let cal = classification(t.id, resource.id, "Calendars.Read");
        // The same permission id on another resource is another classification.
        let other = PermissionClassification { id: fresh(), resource_sp_id: client.id, ..read.clone() };
        s.apply(&[
            Change::PutPermissionClassification(read.clone()),
            Change::PutPermissionClassification(cal.clone()),
            Change::PutPermissionClassification(other.clone()),
        ])
        .await
        .unwrap();
        assert_eq!(s.permission_classifications(t.id, resource.id).await.unwrap(), vec![cal.clone(), read.clone()]);
        assert_eq!(s.permission_classifications(t.id, client.id).await.unwrap(), vec![other.clone()]);
        assert_eq!(s.permission_classifications(t.id, fresh()).await.unwrap(), vec![]);

        // Upsert by id.
        let medium = PermissionClassification { classification: "medium".into(), ..read.clone() };
        s.apply(&[Change::PutPermissionClassification(medium.clone())]).await.unwrap();
        assert_eq!(s.permission_classifications(t.id, resource.id).await.unwrap(), vec![cal.clone(), medium.clone()]);

        // One classification per (resource, permission): another id for it is a conflict, and
        // the whole batch goes.
        let g = group(t.id, "Before");
        let dup = PermissionClassification { id: fresh(), classification: "high".into(), ..read.clone() };
        assert_conflict(
            s.apply(&[Change::PutGroup(g.clone()), Change::PutPermissionClassification(dup)]).await,
            "User.Read",
        );
        assert_eq!(s.group(t.id, g.id).await.unwrap(), None, "rolled back");
        assert_eq!(s.permission_classifications(t.id, resource.id).await.unwrap(), vec![cal.clone(), medium.clone()]);

        // Delete (a missing id is fine); the permission may then be classified afresh.
        s.apply(&[
            Change::DeletePermissionClassification { tenant_id: t.id, classification_id: read.id },
            Change::DeletePermissionClassification { tenant_id: t.id, classification_id: fresh() },
        ])
        .await
        .unwrap();
        assert_eq!(s.permission_classifications(t.id, resource.id).await.unwrap(), vec![cal.clone()]);
        let again = PermissionClassification { id: fresh(), ..read.clone() };
        s.apply(&[Change::PutPermissionClassification(again.clone())]).await.unwrap();
        assert_eq!(s.permission_classifications(t.id, resource.id).await.unwrap(), vec![cal, again]);
        assert_eq!(s.permission_classifications(t.id, client.id).await.unwrap(), vec![other]);

        // The resource must be a service principal of the tenant (checked at commit, so a batch
        // may list the classification first).
        let orphan = classification(t.id, fresh(), "Mail.Read");
        assert_not_found(s.apply(&[Change::PutPermissionClassification(orphan)]).await);
        let new_sp = service_principal(t.id, &application(fresh(), "New resource", None));
        let first = classification(t.id, new_sp.id, "Mail.Read");
        s.apply(&[Change::PutPermissionClassification(first.clone()), Change::PutServicePrincipal(new_sp.clone())])
            .await
            .unwrap();
        assert_eq!(s.permission_classifications(t.id, new_sp.id).await.unwrap(), vec![first]);
    }

    pub async fn audit_round_trip_limit_and_filter(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let (app1, app2) = (fresh(), fresh());
        let e1 = audit_event(t.id, 1, "consent.user.granted", Some(app1));
        let e2 = AuditEvent {
            actor_id: None,
            actor: "system".into(),
            app_id: None,
            detail: serde_json::Value::Null,
            ..audit_event(t.id, 2, "scenario.loaded", None)
        };
        let e3 = AuditEvent {
            detail: serde_json::json!(["a", 1, 2.25, false]),
            ..audit_event(t.id, 3, "request.approved", Some(app2))
        };
        let e4 = AuditEvent { detail: serde_json::json!({}), ..audit_event(t.id, 4, "assignment.added", Some(app1)) };
        let e5 =
            AuditEvent { detail: serde_json::json!("just text"), ..audit_event(t.id, 5, "request.denied", Some(app1)) };
        s.apply(&[
            Change::AppendAudit(e3.clone()),
            Change::AppendAudit(e1.clone()),
            Change::AppendAudit(e5.clone()),
            Change::AppendAudit(e2.clone()),
            Change::AppendAudit(e4.clone()),
        ])
        .await
        .unwrap();

        let all = vec![e5.clone(), e4.clone(), e3.clone(), e2.clone(), e1.clone()];
        assert_eq!(
            s.audit_events(t.id, &AuditQuery::latest(None, 100)).await.unwrap(),
            all,
            "newest first, every field kept"
        );
        assert_eq!(s.audit_events(t.id, &AuditQuery::latest(None, 5)).await.unwrap(), all);
        assert_eq!(
            s.audit_events(t.id, &AuditQuery::latest(None, 2)).await.unwrap(),
            vec![e5.clone(), e4.clone()],
            "limit"
        );
        assert_eq!(s.audit_events(t.id, &AuditQuery::latest(None, 0)).await.unwrap(), vec![]);
        assert_eq!(
            s.audit_events(t.id, &AuditQuery::latest(Some(app1), 100)).await.unwrap(),
            vec![e5.clone(), e4.clone(), e1.clone()]
        );
        assert_eq!(s.audit_events(t.id, &AuditQuery::latest(Some(app1), 1)).await.unwrap(), vec![e5.clone()]);
        assert_eq!(s.audit_events(t.id, &AuditQuery::latest(Some(app2), 100)).await.unwrap(), vec![e3.clone()]);
        assert_eq!(s.audit_events(t.id, &AuditQuery::latest(Some(fresh()), 100)).await.unwrap(), vec![]);
        assert_eq!(s.audit_events(t.id, &AuditQuery::latest(None, u32::MAX)).await.unwrap().len(), 5);

        // The JSON detail comes back as the same value.
        let back = s.audit_events(t.id, &AuditQuery::latest(Some(app1), 100)).await.unwrap().pop().unwrap();
        assert_eq!(back.detail["target"]["nested"][1][1], 3);
        assert_eq!(back.detail["justification"], "ünïcödé ✓ \"quoted\"");
        assert_eq!(back.detail["ratio"], 0.5);

        // Same instant: ties by id.
        let mut tie = vec![audit_event(t.id, 6, "x.first", None), audit_event(t.id, 6, "x.second", None)];
        s.apply(&[Change::AppendAudit(tie[0].clone()), Change::AppendAudit(tie[1].clone())]).await.unwrap();
        tie.sort_by_key(|e| e.id);
        assert_eq!(s.audit_events(t.id, &AuditQuery::latest(None, 2)).await.unwrap(), tie);

        // An event in a tenant that does not exist.
        assert_not_found(s.apply(&[Change::AppendAudit(audit_event(fresh(), 1, "x", None))]).await);
    }

    pub async fn audit_pages_by_prefix_time_and_position(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let (other, _) = seed_tenant(s, "Fabrikam", "fabrikam.test").await;
        let app = fresh();
        // Minutes 1..=7; two events share minute 4 (ties go by id).
        let logged = [
            (1, "app_permission.revoked"),
            (2, "appXpermission.revoked"),
            (3, "consent.created"),
            (4, "consent.revoked"),
            (4, "consent.user.granted"),
            (5, "user.created"),
            (6, "consent.expired"),
        ];
        let mut events: Vec<AuditEvent> = logged
            .iter()
            .enumerate()
            .map(|(i, (minute, action))| audit_event(t.id, *minute, action, Some(app).filter(|_| i % 2 == 0)))
            .collect();
        let changes: Vec<Change> = events.iter().cloned().map(Change::AppendAudit).collect();
        s.apply(&changes).await.unwrap();
        s.apply(&[Change::AppendAudit(audit_event(other.id, 3, "consent.created", Some(app)))]).await.unwrap();
        events.sort_by(|a, b| b.at.cmp(&a.at).then(a.id.cmp(&b.id)));
        let query = |f: &dyn Fn(&mut AuditQuery)| {
            let mut q = AuditQuery::latest(None, 100);
            f(&mut q);
            q
        };
        let read = |q: AuditQuery| async move { s.audit_events(t.id, &q).await.unwrap() };
        let expect =
            |keep: &dyn Fn(&AuditEvent) -> bool| events.iter().filter(|e| keep(e)).cloned().collect::<Vec<_>>();

        assert_eq!(read(query(&|_| {})).await, events, "newest first, ties by id, one tenant only");
        // The prefix is exact text: `_` is no wildcard.
        assert_eq!(
            read(query(&|q| q.action_prefix = "app_permission.".into())).await,
            expect(&|e| e.action == "app_permission.revoked")
        );
        assert_eq!(
            read(query(&|q| q.action_prefix = "consent.".into())).await,
            expect(&|e| e.action.starts_with("consent."))
        );
        // From is inclusive, until exclusive.
        let range = read(query(&|q| {
            q.from = Some(at(2));
            q.until = Some(at(4));
        }))
        .await;
        assert_eq!(range, expect(&|e| e.at >= at(2) && e.at < at(4)));
        assert!(!range.is_empty());
        assert_eq!(
            read(query(&|q| {
                q.app_id = Some(app);
                q.action_prefix = "consent.".into();
            }))
            .await,
            expect(&|e| e.app_id == Some(app) && e.action.starts_with("consent."))
        );

        // Keyset pages of two walk every event once, in order, across the tie.
        let mut walked = Vec::new();
        let mut after = None;
        loop {
            let page = read(query(&|q| {
                q.limit = 2;
                q.after = after;
            }))
            .await;
            let Some(last) = page.last() else { break };
            after = Some(AuditPosition { at: last.at, id: last.id });
            walked.extend(page);
        }
        assert_eq!(walked, events);

        // One event by id, in its own tenant only.
        assert_eq!(s.audit_event(t.id, events[0].id).await.unwrap().as_ref(), Some(&events[0]));
        assert_eq!(s.audit_event(other.id, events[0].id).await.unwrap(), None);
        assert_eq!(s.audit_event(t.id, fresh()).await.unwrap(), None);
    }

    pub async fn directory_pages_by_name_prefix_and_position(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let (other, _) = seed_tenant(s, "Fabrikam", "fabrikam.test").await;
        let named = |upn: &str, name: &str| User { display_name: name.to_string(), ..user(t.id, upn) };
        let people = [
            named("zed@contoso.test", "alice Zimmer"),
            named("al@contoso.test", "Alan Turing"),
            named("bob@contoso.test", "Bob Brown"),
            named("carol@contoso.test", "Álvaro Core"),
            named("alz@contoso.test", "Zed Alz"),
            named("twin1@contoso.test", "Twin"),
            named("twin2@contoso.test", "Twin"),
        ];
        let mut changes: Vec<Change> = people.iter().cloned().map(Change::PutUser).collect();
        let elsewhere = User { display_name: "Alice Elsewhere".into(), ..user(other.id, "elsewhere@fabrikam.test") };
        changes.push(Change::PutUser(elsewhere));
        let groups = [group(t.id, "Sales"), group(t.id, "sales leads"), group(t.id, "Support"), group(t.id, "Alpha")];
        changes.extend(groups.iter().cloned().map(Change::PutGroup));
        s.apply(&changes).await.unwrap();

        let page = |prefix: &str, after: Option<NamePosition>, limit: u32| NameQuery {
            prefix: prefix.into(),
            after,
            limit,
            ..Default::default()
        };
        let names = |users: Vec<User>| users.into_iter().map(|u| u.upn).collect::<Vec<_>>();
        // Display-name order, case-folded; ties by id; one tenant (an oracle sorted here).
        let mut everyone = s.users(t.id).await.unwrap();
        everyone.sort_by_key(|u| (u.display_name.to_lowercase(), u.id));
        let expect = |keep: &dyn Fn(&User) -> bool| {
            everyone.iter().filter(|u| keep(u)).map(|u| u.upn.clone()).collect::<Vec<_>>()
        };
        let all = s.users_page(t.id, &page("", None, 100)).await.unwrap();
        assert_eq!(all, everyone);
        assert_eq!(all.len(), 8, "seven and the seeded one");
        assert_eq!(all[0].upn, "al@contoso.test");
        assert_eq!(s.count_users(t.id, &page("", None, 1)).await.unwrap(), 8);
        // A prefix of the name or of the UPN, any case.
        let starts =
            |p: &'static str| move |u: &User| u.display_name.to_lowercase().starts_with(p) || u.upn.starts_with(p);
        let al = s.users_page(t.id, &page("AL", None, 100)).await.unwrap();
        assert_eq!(names(al), expect(&starts("al")));
        assert_eq!(expect(&starts("al")).len(), 4);
        assert_eq!(s.count_users(t.id, &page("al", None, 1)).await.unwrap(), 4);
        assert_eq!(names(s.users_page(t.id, &page("álv", None, 100)).await.unwrap()), ["carol@contoso.test"]);
        assert_eq!(
            names(s.users_page(t.id, &page("twin", None, 1)).await.unwrap()),
            [expect(&starts("twin"))[0].clone()]
        );
        assert_eq!(names(s.users_page(t.id, &page("nobody", None, 100)).await.unwrap()), Vec::<String>::new());
        // Graph's startswith: the display name only, or the UPN only.
        let on = |prefix: &str, field: NameField| NameQuery { prefix: prefix.into(), field, limit: 100, after: None };
        let by_name = s.users_page(t.id, &on("al", NameField::DisplayName)).await.unwrap();
        assert_eq!(names(by_name), expect(&|u: &User| u.display_name.to_lowercase().starts_with("al")));
        let by_upn = s.users_page(t.id, &on("AL", NameField::Upn)).await.unwrap();
        assert_eq!(names(by_upn), expect(&|u: &User| u.upn.starts_with("al")));
        assert_eq!(s.count_users(t.id, &on("al", NameField::Upn)).await.unwrap(), 3);
        let id_text = people[2].id.to_string();
        assert!(s.users_page(t.id, &on(&id_text, NameField::DisplayName)).await.unwrap().is_empty(), "no id match");
        // An object id finds that object only.
        let by_id = s.users_page(t.id, &page(&people[2].id.to_string(), None, 100)).await.unwrap();
        assert_eq!(names(by_id), ["bob@contoso.test"]);
        assert_eq!(s.users_page(other.id, &page(&people[2].id.to_string(), None, 100)).await.unwrap(), vec![]);
        // Keyset pages of two walk everyone once, across the tie.
        let mut walked = Vec::new();
        let mut after = None;
        loop {
            let got = s.users_page(t.id, &page("", after.clone(), 2)).await.unwrap();
            let Some(last) = got.last() else { break };
            after = Some(NamePosition::of(&last.display_name, last.id));
            walked.extend(got);
        }
        assert_eq!(walked, all);
        // A rename moves the user in the order.
        let mut bob = people[2].clone();
        bob.display_name = "Aaron Bob".into();
        s.apply(&[Change::PutUser(bob)]).await.unwrap();
        assert_eq!(names(s.users_page(t.id, &page("", None, 1)).await.unwrap()), ["bob@contoso.test"]);

        // Groups: by name only.
        let found: Vec<String> =
            s.groups_page(t.id, &page("SAL", None, 100)).await.unwrap().into_iter().map(|g| g.display_name).collect();
        assert_eq!(found, ["Sales", "sales leads"]);
        assert_eq!(s.count_groups(t.id, &page("s", None, 1)).await.unwrap(), 3);
        let first = s.groups_page(t.id, &page("", None, 2)).await.unwrap();
        assert_eq!(first.iter().map(|g| g.display_name.as_str()).collect::<Vec<_>>(), ["Alpha", "Sales"]);
        let after = NamePosition::of(&first[1].display_name, first[1].id);
        let rest = s.groups_page(t.id, &page("", Some(after), 10)).await.unwrap();
        assert_eq!(rest.iter().map(|g| g.display_name.as_str()).collect::<Vec<_>>(), ["sales leads", "Support"]);
        assert_eq!(s.count_groups(other.id, &page("", None, 1)).await.unwrap(), 0);
    }

    pub async fn batched_directory_reads(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let (other, _) = seed_tenant(s, "Fabrikam", "fabrikam.test").await;
        let (ann, bob, cat) =
            (user(t.id, "ann@contoso.test"), user(t.id, "bob@contoso.test"), user(t.id, "cat@contoso.test"));
        let [top, mid, low, loop_a, loop_b, empty] =
            ["Top", "Mid", "Low", "Loop A", "Loop B", "Empty"].map(|n| group(t.id, n));
        let m = |g: &Group, id: Uuid, kind: MemberKind| GroupMember { group_id: g.id, member_id: id, kind };
        let set =
            |g: &Group, members: Vec<GroupMember>| Change::SetGroupMembers { tenant_id: t.id, group_id: g.id, members };
        let mut changes: Vec<Change> = [&ann, &bob, &cat].iter().map(|u| Change::PutUser((*u).clone())).collect();
        changes.extend([&top, &mid, &low, &loop_a, &loop_b, &empty].iter().map(|g| Change::PutGroup((*g).clone())));
        changes.extend([
            // ann is in Low directly, and in Mid both directly and through Low.
            set(&low, vec![m(&low, ann.id.into(), MemberKind::User)]),
            set(&mid, vec![m(&mid, low.id.into(), MemberKind::Group), m(&mid, ann.id.into(), MemberKind::User)]),
            set(&top, vec![m(&top, mid.id.into(), MemberKind::Group), m(&top, bob.id.into(), MemberKind::User)]),
            // A cycle with bob in it.
            set(
                &loop_a,
                vec![m(&loop_a, loop_b.id.into(), MemberKind::Group), m(&loop_a, bob.id.into(), MemberKind::User)],
            ),
            set(&loop_b, vec![m(&loop_b, loop_a.id.into(), MemberKind::Group)]),
            Change::SetUserRoles {
                tenant_id: t.id,
                user_id: ann.id,
                roles: vec![DirectoryRole::GlobalAdministrator, DirectoryRole::ApplicationAdministrator],
            },
            Change::SetUserRoles {
                tenant_id: t.id,
                user_id: cat.id,
                roles: vec![DirectoryRole::CloudApplicationAdministrator],
            },
        ]);
        s.apply(&changes).await.unwrap();

        // Memberships up the nesting, with names; a direct membership has no `via`.
        let mut expect = vec![
            Membership { group_id: low.id, group_name: "Low".into(), via: None },
            Membership { group_id: mid.id, group_name: "Mid".into(), via: None },
            Membership { group_id: top.id, group_name: "Top".into(), via: Some(mid.id) },
        ];
        expect.sort_by_key(|m| m.group_id);
        assert_eq!(s.memberships_of(t.id, ann.id.into()).await.unwrap(), expect);
        let ids: Vec<GroupId> = expect.iter().map(|m| m.group_id).collect();
        assert_eq!(s.transitive_groups_of(t.id, ann.id.into()).await.unwrap(), ids, "the same groups");
        // Through a cycle: it ends, and a group is never its own member.
        let mut bobs: Vec<(GroupId, Option<GroupId>)> =
            s.memberships_of(t.id, bob.id.into()).await.unwrap().into_iter().map(|m| (m.group_id, m.via)).collect();
        bobs.sort();
        let mut want = vec![(top.id, None), (loop_a.id, None), (loop_b.id, Some(loop_a.id))];
        want.sort();
        assert_eq!(bobs, want);
        let of_loop: Vec<GroupId> =
            s.memberships_of(t.id, loop_a.id.into()).await.unwrap().into_iter().map(|m| m.group_id).collect();
        assert_eq!(of_loop, vec![loop_b.id]);
        assert_eq!(s.memberships_of(other.id, ann.id.into()).await.unwrap(), vec![], "one tenant");

        // Roles of a page of users, and member counts of a page of groups, in one read each.
        let roles = s.roles_of_users(t.id, &[ann.id, bob.id, cat.id]).await.unwrap();
        assert_eq!(roles.len(), 2, "bob has none: {roles:?}");
        assert_eq!(roles[&ann.id], s.user_roles(t.id, ann.id).await.unwrap());
        assert_eq!(roles[&cat.id], vec![DirectoryRole::CloudApplicationAdministrator]);
        assert!(s.roles_of_users(other.id, &[ann.id]).await.unwrap().is_empty());
        assert!(s.roles_of_users(t.id, &[]).await.unwrap().is_empty());
        let counts = s.member_counts(t.id, &[top.id, mid.id, low.id, loop_b.id, empty.id]).await.unwrap();
        assert_eq!(counts[&top.id], 2);
        assert_eq!(counts[&mid.id], 2);
        assert_eq!(counts[&low.id], 1);
        assert_eq!(counts[&loop_b.id], 1);
        assert_eq!(counts.get(&empty.id), None, "no members: absent");
        assert!(s.member_counts(other.id, &[top.id]).await.unwrap().is_empty());

        // The direct members of a page of groups in one read, each group's in stored order.
        let all = [top.id, mid.id, low.id, loop_a.id, loop_b.id, empty.id];
        let members = s.members_of_groups(t.id, &all).await.unwrap();
        assert_eq!(members.len(), 5, "every group with members, not Empty: {:?}", members.keys());
        for g in [&top, &mid, &low, &loop_a, &loop_b] {
            assert_eq!(members[&g.id], s.group_members(t.id, g.id).await.unwrap(), "{}", g.display_name);
        }
        let some = s.members_of_groups(t.id, &[low.id, empty.id]).await.unwrap();
        assert_eq!(some.keys().collect::<Vec<_>>(), vec![&low.id], "only the groups asked for");
        assert!(s.members_of_groups(other.id, &all).await.unwrap().is_empty(), "one tenant");
        assert!(s.members_of_groups(t.id, &[]).await.unwrap().is_empty());

        // Users by UPN in one read, whatever the letter case; unknown UPNs left out.
        let upns = [ann.upn.to_uppercase(), "nobody@x.test".to_string(), bob.upn.clone()];
        let mut found = s.users_with_upns(t.id, &upns.iter().map(String::as_str).collect::<Vec<_>>()).await.unwrap();
        found.sort_by(|a, b| a.upn.cmp(&b.upn));
        assert_eq!(found, vec![ann.clone(), bob.clone()]);
        assert!(s.users_with_upns(other.id, &[ann.upn.as_str()]).await.unwrap().is_empty(), "one tenant");
        let many: Vec<String> = (0..1_200).map(|i| format!("u{i}@x.test")).chain([cat.upn.clone()]).collect();
        let found = s.users_with_upns(t.id, &many.iter().map(String::as_str).collect::<Vec<_>>()).await.unwrap();
        assert_eq!(found, vec![cat.clone()], "past the first statement's 500");

        // A group's members, direct or through nested groups; each once; never the group itself.
        let names = |(users, groups): (Vec<User>, Vec<Group>)| {
            (
                users.into_iter().map(|u| u.upn).collect::<Vec<_>>(),
                groups.into_iter().map(|g| g.display_name).collect::<Vec<_>>(),
            )
        };
        let direct = names(s.group_closure(t.id, top.id, false).await.unwrap());
        assert_eq!(direct, (vec!["bob@contoso.test".to_string()], vec!["Mid".to_string()]));
        let all = names(s.group_closure(t.id, top.id, true).await.unwrap());
        assert_eq!(
            all,
            (
                vec!["ann@contoso.test".to_string(), "bob@contoso.test".to_string()],
                vec!["Low".to_string(), "Mid".to_string()]
            )
        );
        let looped = names(s.group_closure(t.id, loop_a.id, true).await.unwrap());
        assert_eq!(looped, (vec!["bob@contoso.test".to_string()], vec!["Loop B".to_string()]), "the cycle ends");
        assert_eq!(names(s.group_closure(other.id, top.id, true).await.unwrap()), (vec![], vec![]), "one tenant");

        // The same members a page at a time: users, then groups, each by name; any page size
        // walks the same list; only nested users; one tenant.
        let label = |o: &DirectoryObject| match o {
            DirectoryObject::User(u) => u.upn.clone(),
            DirectoryObject::Group(g) => g.display_name.clone(),
        };
        let walk = |tenant: TenantId, group: GroupId, transitive: bool, nested_users_only: bool, limit: u32| async move {
            let (mut seen, mut after) = (Vec::new(), None);
            loop {
                let query = MemberQuery { transitive, nested_users_only, after: after.clone(), limit };
                let page = s.group_members_page(tenant, group, &query).await.unwrap();
                assert!(page.len() <= limit as usize, "{page:?}");
                let Some(last) = page.last() else { break };
                after = Some(last.position());
                let full = page.len() == limit as usize;
                seen.extend(page.iter().map(label));
                if !full {
                    break;
                }
                assert!(seen.len() < 100, "paging does not end");
            }
            seen
        };
        let everyone = ["ann@contoso.test", "bob@contoso.test", "Low", "Mid"];
        for limit in [1, 2, 3, 10] {
            assert_eq!(walk(t.id, top.id, true, false, limit).await, everyone, "pages of {limit}");
        }
        assert_eq!(walk(t.id, top.id, false, false, 1).await, ["bob@contoso.test", "Mid"], "direct");
        assert_eq!(walk(t.id, top.id, true, true, 1).await, ["ann@contoso.test"], "bob is a direct member");
        assert_eq!(walk(t.id, loop_a.id, true, false, 10).await, ["bob@contoso.test", "Loop B"], "the cycle ends");
        assert!(walk(other.id, top.id, true, false, 10).await.is_empty(), "one tenant");
        assert!(walk(t.id, empty.id, true, false, 10).await.is_empty());
        // A closure of many groups (more than DENSE_CLOSURE_GROUPS) is read the other way round,
        // through the users in name order: the same list.
        let chain: Vec<Group> = (0..40).map(|i| group(t.id, &format!("Chain {i:02}"))).collect();
        let linked: Vec<User> = (0..40).map(|i| user(t.id, &format!("chain{i:02}@contoso.test"))).collect();
        let mut changes: Vec<Change> = chain.iter().map(|g| Change::PutGroup(g.clone())).collect();
        changes.extend(linked.iter().map(|u| Change::PutUser(u.clone())));
        for (i, g) in chain.iter().enumerate() {
            let mut members = vec![m(g, linked[i].id.into(), MemberKind::User)];
            if let Some(below) = chain.get(i + 1) {
                members.push(m(g, below.id.into(), MemberKind::Group));
            }
            changes.push(Change::SetGroupMembers { tenant_id: t.id, group_id: g.id, members });
        }
        s.apply(&changes).await.unwrap();
        let (users, groups) = s.group_closure(t.id, chain[0].id, true).await.unwrap();
        let expect: Vec<String> =
            users.iter().map(|u| u.upn.clone()).chain(groups.iter().map(|g| g.display_name.clone())).collect();
        assert_eq!(expect.len(), 40 + 39);
        for limit in [7, 100] {
            assert_eq!(walk(t.id, chain[0].id, true, false, limit).await, expect, "pages of {limit}");
        }
        assert_eq!(walk(t.id, chain[0].id, true, true, 9).await, expect[1..40].to_vec(), "all but the direct one");
        // The closure is walked once and kept (the store's cache); cutting the chain halfway
        // must be seen by the next page all the same.
        let cut = vec![m(&chain[19], linked[19].id.into(), MemberKind::User)];
        s.apply(&[Change::SetGroupMembers { tenant_id: t.id, group_id: chain[19].id, members: cut }]).await.unwrap();
        let above_cut = |n: &&String| {
            (n.starts_with("chain") && n.as_str() < "chain20") || (n.starts_with("Chain") && n.as_str() < "Chain 20")
        };
        let upper: Vec<String> = expect.iter().filter(above_cut).cloned().collect();
        assert_eq!(upper.len(), 20 + 19);
        assert_eq!(walk(t.id, chain[0].id, true, false, 7).await, upper, "the cut chain's pages");
        let (users, groups) = s.group_closure(t.id, chain[0].id, true).await.unwrap();
        assert_eq!((users.len(), groups.len()), (20, 19), "the cut chain's closure");

        // Scenario password fingerprints: one per user, replaced, gone with the user.
        let mark = |user: &User, fingerprint: &str| Change::PutScenarioPassword {
            tenant_id: t.id,
            user_id: user.id,
            fingerprint: fingerprint.into(),
        };
        s.apply(&[mark(&ann, "a1"), mark(&bob, "b1")]).await.unwrap();
        s.apply(&[mark(&ann, "a2")]).await.unwrap();
        let both = [ann.id, bob.id, cat.id];
        let marks = s.scenario_passwords(t.id, &both).await.unwrap();
        assert_eq!((marks.len(), marks[&ann.id].as_str(), marks[&bob.id].as_str()), (2, "a2", "b1"));
        assert_eq!(s.scenario_passwords(t.id, &[bob.id]).await.unwrap().len(), 1, "only the users asked for");
        assert!(s.scenario_passwords(other.id, &both).await.unwrap().is_empty());
        s.apply(&[Change::DeleteUser { tenant_id: t.id, user_id: bob.id }]).await.unwrap();
        assert_eq!(s.scenario_passwords(t.id, &both).await.unwrap().len(), 1);
        let stranger = Change::PutScenarioPassword { tenant_id: t.id, user_id: fresh(), fingerprint: "x".into() };
        assert!(s.apply(&[stranger]).await.is_err(), "only for a user of the tenant");
    }

    pub async fn audit_is_append_only(s: &dyn Store) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let first = audit_event(t.id, 1, "consent.user.granted", None);
        s.apply(&[Change::AppendAudit(first.clone())]).await.unwrap();

        // The same id again (even with other content) is a conflict, and the batch leaves nothing.
        let rewrite = AuditEvent { action: "consent.user.revoked".into(), at: at(9), ..first.clone() };
        let g = group(t.id, "Before");
        let other = audit_event(t.id, 2, "request.created", None);
        assert_conflict(
            s.apply(&[Change::PutGroup(g.clone()), Change::AppendAudit(other.clone()), Change::AppendAudit(rewrite)])
                .await,
            &first.id.to_string(),
        );
        assert_eq!(
            s.audit_events(t.id, &AuditQuery::latest(None, 100)).await.unwrap(),
            vec![first.clone()],
            "nothing of the batch stays"
        );
        assert_eq!(s.group(t.id, g.id).await.unwrap(), None);

        // Twice in one batch, identical: still a conflict.
        let twice = audit_event(t.id, 3, "request.approved", None);
        assert_conflict(
            s.apply(&[Change::AppendAudit(twice.clone()), Change::AppendAudit(twice.clone())]).await,
            &twice.id.to_string(),
        );
        assert_eq!(s.audit_events(t.id, &AuditQuery::latest(None, 100)).await.unwrap(), vec![first.clone()]);

        // The store still works; the same id in another tenant is another row.
        s.apply(&[Change::AppendAudit(other.clone())]).await.unwrap();
        let (b, _) = seed_tenant(s, "B", "b.test").await;
        let twin = AuditEvent { tenant_id: b.id, ..first.clone() };
        s.apply(&[Change::AppendAudit(twin.clone())]).await.unwrap();
        assert_eq!(s.audit_events(t.id, &AuditQuery::latest(None, 100)).await.unwrap(), vec![other, first]);
        assert_eq!(s.audit_events(b.id, &AuditQuery::latest(None, 100)).await.unwrap(), vec![twin]);
    }

    pub async fn notification_lifecycle(s: &dyn Store) {
        let (a, _) = seed_tenant(s, "A", "a.test").await;
        let (b, _) = seed_tenant(s, "B", "b.test").await;
        let n1 = notification(a.id, 1);
        let n2 = Notification { kind: "request.expiring".into(), ..notification(a.id, 2) };
        let n0 = notification(b.id, 0);
        // Enqueued as already delivered, every field set: never unsent.
        let done = Notification {
            sent_at: Some(at(5)),
            attempts: 3,
            last_error: Some("421 try later".into()),
            ..notification(a.id, -10)
        };
        s.apply(&[
            Change::EnqueueNotification(n2.clone()),
            Change::EnqueueNotification(n1.clone()),
            Change::EnqueueNotification(n0.clone()),
            Change::EnqueueNotification(done.clone()),
        ])
        .await
        .unwrap();

        assert_eq!(s.notifications(a.id).await.unwrap(), vec![done.clone(), n1.clone(), n2.clone()], "oldest first");
        assert_eq!(s.notifications(b.id).await.unwrap(), vec![n0.clone()]);
        assert_eq!(s.unsent_notifications(10, 10).await.unwrap(), vec![n0.clone(), n1.clone(), n2.clone()]);
        assert_eq!(s.unsent_notifications(10, 2).await.unwrap(), vec![n0.clone(), n1.clone()], "limit");
        assert_eq!(s.unsent_notifications(10, 0).await.unwrap(), vec![]);

        // A failed attempt: counted, the error kept, still unsent.
        s.mark_notification(a.id, n1.id, None, Some("connection refused")).await.unwrap();
        let failed = Notification { attempts: 1, last_error: Some("connection refused".into()), ..n1.clone() };
        assert_eq!(s.notifications(a.id).await.unwrap()[1], failed);
        assert_eq!(s.unsent_notifications(10, 10).await.unwrap(), vec![n0.clone(), failed.clone(), n2.clone()]);
        s.mark_notification(a.id, n1.id, None, Some("550 mailbox unavailable")).await.unwrap();
        let failed = Notification { attempts: 2, last_error: Some("550 mailbox unavailable".into()), ..n1.clone() };
        assert_eq!(s.notifications(a.id).await.unwrap()[1], failed);
        // Given up after two attempts: no longer offered for sending, still on record.
        assert_eq!(s.unsent_notifications(2, 10).await.unwrap(), vec![n0.clone(), n2.clone()], "given up");
        assert_eq!(s.unsent_notifications(3, 10).await.unwrap(), vec![n0.clone(), failed.clone(), n2.clone()]);

        // Delivered: sent_at set, the history kept, no longer unsent.
        s.mark_notification(a.id, n1.id, Some(at(7)), None).await.unwrap();
        let sent = Notification { sent_at: Some(at(7)), ..failed };
        assert_eq!(s.notifications(a.id).await.unwrap(), vec![done.clone(), sent.clone(), n2.clone()]);
        assert_eq!(s.unsent_notifications(10, 10).await.unwrap(), vec![n0.clone(), n2.clone()]);

        // Missing rows (including another tenant's) are not found, and nothing changes.
        assert_not_found(s.mark_notification(a.id, fresh(), Some(at(8)), None).await);
        assert_not_found(s.mark_notification(b.id, n2.id, Some(at(8)), None).await);
        assert_not_found(s.mark_notification(b.id, n2.id, None, Some("x")).await);
        assert_eq!(s.unsent_notifications(10, 10).await.unwrap(), vec![n0.clone(), n2.clone()]);

        // Enqueuing an id already queued is a conflict (it would reset a delivered message).
        let requeue = Notification { sent_at: None, ..sent.clone() };
        assert_conflict(s.apply(&[Change::EnqueueNotification(requeue)]).await, &n1.id.to_string());
        assert_eq!(s.notifications(a.id).await.unwrap()[1], sent);

        // A notification in a tenant that does not exist.
        assert_not_found(s.apply(&[Change::EnqueueNotification(notification(fresh(), 0))]).await);
    }

    pub async fn consume_once_and_purge(s: &dyn Store) {
        let before = s.statements_executed();
        assert!(s.consume_once("form-1", at(10)).await.unwrap());
        assert_eq!(s.statements_executed(), before + 1, "one statement");
        assert!(!s.consume_once("form-1", at(10)).await.unwrap(), "seen before");
        assert_eq!(s.statements_executed(), before + 2, "one statement, also when already seen");
        assert!(!s.consume_once("form-1", at(99)).await.unwrap(), "whatever the new expiry");
        assert!(s.consume_once("form-2", at(20)).await.unwrap());

        // Not expired yet: kept.
        assert_eq!(s.purge_expired(at(9)).await.unwrap(), 0);
        assert!(!s.consume_once("form-1", at(10)).await.unwrap());
        // expires_at == now is expired: the row goes (and counts), and the value is new again.
        assert_eq!(s.purge_expired(at(10)).await.unwrap(), 1);
        assert!(s.consume_once("form-1", at(30)).await.unwrap());
        assert!(!s.consume_once("form-1", at(30)).await.unwrap());
        assert!(!s.consume_once("form-2", at(20)).await.unwrap(), "form-2 not expired at 10");
        assert_eq!(s.purge_expired(at(30)).await.unwrap(), 2);
        assert!(s.consume_once("form-2", at(40)).await.unwrap());
    }

    pub async fn concurrent_consume_once(s: &dyn Store) {
        let consume = || s.consume_once("race", at(10));
        let (a, b, c, d, e) = tokio::join!(consume(), consume(), consume(), consume(), consume());
        let outcomes = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap(), e.unwrap()];
        assert_eq!(outcomes.iter().filter(|o| **o).count(), 1, "{outcomes:?}");
    }

    /// Many single-use markers and refresh tokens at once (the writes the store commits as a
    /// group, see `sql/group_commit.rs`): each key still has exactly one winner, a repeat of a
    /// key loses whichever batch it lands in, and every token reads back as written — a token
    /// written twice in a row as its second version.
    pub async fn concurrent_markers_and_tokens(s: &dyn Store) {
        let (winners, tokens, changed) = write_markers_and_tokens_at_once(s).await;
        assert_eq!(winners, vec![1; 20], "one winner per key");
        for t in &tokens[..3] {
            assert_eq!(s.refresh_token(&t.token_hash).await.unwrap().as_ref(), Some(t));
        }
        assert_eq!(s.refresh_token("batch-3").await.unwrap(), Some(changed));
        for t in &tokens[4..] {
            assert_eq!(s.refresh_token(&t.token_hash).await.unwrap().as_ref(), Some(t));
        }
        // Already there: a later, lone claim loses too.
        assert!(!s.consume_once("key-7", at(10)).await.unwrap());
    }

    /// A write the database refuses fails alone even when it is committed with others: here a
    /// token whose scope holds a NUL character, which PostgreSQL's text refuses (SQLite keeps
    /// it, and then every write succeeds).
    pub async fn a_bad_row_fails_only_its_own_write(s: &dyn Store) {
        use futures_util::future::join_all;
        let mut tokens: Vec<RefreshTokenRecord> =
            (0..6).map(|i| refresh_token(fresh(), &format!("mixed-{i}"))).collect();
        tokens[2].scope = "openid\0evil".into();
        let written = join_all(tokens.iter().map(|t| s.put_refresh_token(t))).await;
        for (i, (t, w)) in tokens.iter().zip(&written).enumerate() {
            let stored = s.refresh_token(&t.token_hash).await.unwrap();
            if i == 2 {
                assert_eq!(w.is_ok(), stored.is_some(), "refused means not stored: {w:?}");
            } else {
                assert!(w.is_ok(), "{i}: {w:?}");
                assert_eq!(stored.as_ref(), Some(t));
            }
        }
    }

    /// Claims keys `key-0` … `key-19` twice each and writes 20 tokens (`batch-3` twice, the second
    /// time changed), all in one join; returns the winners per key, the tokens and `batch-3`'s
    /// second version.
    pub async fn write_markers_and_tokens_at_once(
        s: &dyn Store,
    ) -> (Vec<usize>, Vec<RefreshTokenRecord>, RefreshTokenRecord) {
        use futures_util::future::join_all;
        let keys: Vec<String> = (0..40).map(|i| format!("key-{}", i % 20)).collect();
        let tokens: Vec<RefreshTokenRecord> = (0..20).map(|i| refresh_token(fresh(), &format!("batch-{i}"))).collect();
        let changed = RefreshTokenRecord { scope: "openid changed".into(), ..tokens[3].clone() };
        let claims = join_all(keys.iter().map(|k| s.consume_once(k, at(10))));
        let puts = join_all(tokens.iter().chain([&changed]).map(|t| s.put_refresh_token(t)));
        let (claimed, put) = tokio::join!(claims, puts);
        assert!(put.iter().all(Result::is_ok), "{put:?}");
        let claimed: Vec<bool> = claimed.into_iter().map(Result::unwrap).collect();
        let winners = (0..20).map(|k| usize::from(claimed[k]) + usize::from(claimed[k + 20])).collect();
        (winners, tokens, changed)
    }

    pub async fn consent_workflow_tenant_isolation(s: &dyn Store) {
        let (a, alice, _, resource) = two_service_principals(s).await;
        let (b, _) = seed_tenant(s, "B", "b.test").await;
        let b = b.id;
        let app = fresh();
        let req = ConsentRequest { expires_at: at(1), ..consent_request(a.id, app, alice.id, 0) };
        let cls = classification(a.id, resource.id, "User.Read");
        let ev = audit_event(a.id, 1, "consent.user.granted", Some(app));
        let n = notification(a.id, 1);
        s.apply(&[
            Change::PutConsentRequest(req.clone()),
            Change::PutPermissionClassification(cls.clone()),
            Change::AppendAudit(ev.clone()),
            Change::EnqueueNotification(n.clone()),
        ])
        .await
        .unwrap();

        // Visible through A...
        assert_eq!(s.consent_request(a.id, req.id).await.unwrap(), Some(req.clone()));
        assert_eq!(s.consent_requests(a.id, None).await.unwrap(), vec![req.clone()]);
        assert_eq!(s.permission_classifications(a.id, resource.id).await.unwrap(), vec![cls.clone()]);
        assert_eq!(s.audit_events(a.id, &AuditQuery::latest(Some(app), 10)).await.unwrap(), vec![ev.clone()]);
        assert_eq!(s.notifications(a.id).await.unwrap(), vec![n.clone()]);
        // ...and not through B.
        assert_eq!(s.consent_request(b, req.id).await.unwrap(), None);
        assert_eq!(s.consent_requests(b, None).await.unwrap(), vec![]);
        assert_eq!(s.consent_requests(b, Some(app)).await.unwrap(), vec![]);
        assert_eq!(s.permission_classifications(b, resource.id).await.unwrap(), vec![]);
        assert_eq!(s.audit_events(b, &AuditQuery::latest(None, 100)).await.unwrap(), vec![]);
        assert_eq!(s.audit_events(b, &AuditQuery::latest(Some(app), 100)).await.unwrap(), vec![]);
        assert_eq!(s.notifications(b).await.unwrap(), vec![]);
        assert_not_found(s.mark_notification(b, n.id, Some(at(2)), None).await);
        assert_not_found(s.mark_notification(b, n.id, None, Some("boom")).await);

        // A delete through B leaves A's classification alone.
        s.apply(&[Change::DeletePermissionClassification { tenant_id: b, classification_id: cls.id }]).await.unwrap();
        assert_eq!(s.permission_classifications(a.id, resource.id).await.unwrap(), vec![cls]);
        assert_eq!(s.notifications(a.id).await.unwrap(), vec![n.clone()], "untouched by B's marks");

        // The cross-tenant reads are cross-tenant by design (expiry job, delivery loop).
        assert_eq!(s.expired_consent_requests(at(1)).await.unwrap(), vec![req]);
        assert_eq!(s.unsent_notifications(10, 10).await.unwrap(), vec![n]);
    }
}

mod raw_cases {
    use super::fixtures::*;
    use accord_core::consent_records::*;
    use accord_core::directory::*;
    use accord_store::*;
    use sqlx::{Connection, Executor};

    async fn raw(url: &str, sql: &str) {
        let mut conn = sqlx::AnyConnection::connect(url).await.expect("raw connection");
        conn.execute(sql).await.expect(sql);
        conn.close().await.ok();
    }

    fn assert_database_error<T: std::fmt::Debug>(result: StoreResult<T>) {
        assert!(matches!(result, Err(StoreError::Database(_))), "expected a database error, got {result:?}");
    }

    /// Name keys written by SQL's lower() before the store wrote them (migration 0016 folded
    /// only ASCII on SQLite) are made the store's own fold when it opens — once: the repair is
    /// recorded, and a key changed after it is not touched again.
    pub async fn name_keys_from_before_are_repaired_once(s: &SqlStore, url: &str) {
        let (t, _) = seed_tenant(s, "Contoso", "contoso.test").await;
        let mut u = user(t.id, "emile@contoso.test");
        u.display_name = "ÉMILE Zola".into();
        let g = group(t.id, "ÜBER Team");
        s.apply(&[Change::PutUser(u.clone()), Change::PutGroup(g.clone())]).await.unwrap();
        let query = |prefix: &str| NameQuery {
            prefix: prefix.into(),
            field: NameField::DisplayName,
            limit: 10,
            ..Default::default()
        };
        assert_eq!(s.users_page(t.id, &query("émile")).await.unwrap().len(), 1, "the store's own key");
        // As migration 0016 left them on SQLite: only ASCII folded.
        raw(url, &format!("UPDATE users SET name_key = 'Émile zola' WHERE id = '{}'", u.id)).await;
        raw(url, &format!("UPDATE directory_groups SET name_key = 'Über team' WHERE id = '{}'", g.id)).await;
        raw(url, "DELETE FROM store_repairs").await;
        let again = SqlStore::connect(url).await.unwrap();
        assert_eq!(again.users_page(t.id, &query("émile")).await.unwrap().len(), 1, "repaired");
        assert_eq!(again.groups_page(t.id, &query("über")).await.unwrap().len(), 1, "repaired");
        again.close().await;
        raw(url, &format!("UPDATE users SET name_key = 'left alone' WHERE id = '{}'", u.id)).await;
        let third = SqlStore::connect(url).await.unwrap();
        assert!(third.users_page(t.id, &query("émile")).await.unwrap().is_empty(), "the repair ran once");
        third.close().await;
    }

    /// Values the code does not know, written behind the store's back, are errors, not panics.
    pub async fn unreadable_values_are_database_errors(s: &SqlStore, url: &str) {
        let s: &dyn Store = s;
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let g = group(t.id, "G");
        let app = application(t.id, "App", None);
        let sp = service_principal(t.id, &app);
        let gr = grant(t.id, sp.id, sp.id, None);
        s.apply(&[
            Change::PutGroup(g.clone()),
            Change::SetGroupMembers {
                tenant_id: t.id,
                group_id: g.id,
                members: vec![GroupMember { group_id: g.id, member_id: u.id.into(), kind: MemberKind::User }],
            },
            Change::SetUserRoles { tenant_id: t.id, user_id: u.id, roles: vec![DirectoryRole::GlobalAdministrator] },
            Change::PutApplication(app.clone()),
            Change::PutServicePrincipal(sp.clone()),
            Change::PutDelegatedGrant(gr.clone()),
        ])
        .await
        .unwrap();
        s.insert_signing_key(&SigningKeyRecord {
            kid: "k".into(),
            sealed_private_key: vec![1],
            status: KeyStatus::Active,
            created_at: t0(),
        })
        .await
        .unwrap();

        raw(url, "UPDATE tenants SET user_consent = 'sometimes'").await;
        assert_database_error(s.tenant(t.id).await);
        assert_database_error(s.tenants().await);
        raw(url, "UPDATE users SET enabled = 7").await;
        assert_database_error(s.user(t.id, u.id).await);
        raw(url, "UPDATE users SET enabled = 1, failed_sign_ins = -1").await;
        assert_database_error(s.user(t.id, u.id).await);
        raw(url, "UPDATE group_members SET member_kind = 'robot'").await;
        assert_database_error(s.group_members(t.id, g.id).await);
        raw(url, "UPDATE user_roles SET role_template_id = '00000000-0000-0000-0000-000000000000'").await;
        assert_database_error(s.user_roles(t.id, u.id).await);
        raw(url, "UPDATE applications SET scopes = '{not json'").await;
        assert_database_error(s.application_by_app_id(app.app_id).await);
        raw(url, "UPDATE applications SET scopes = '[]', sign_in_audience = 'Everyone'").await;
        assert_database_error(s.application_by_app_id(app.app_id).await);
        raw(url, "UPDATE service_principals SET app_id = 'not-a-uuid'").await;
        assert_database_error(s.service_principals(t.id).await);
        raw(url, "UPDATE delegated_grants SET consent_type = 'Someone'").await;
        assert_database_error(s.delegated_grant(t.id, gr.id).await);
        raw(url, "UPDATE signing_keys SET status = 'lost'").await;
        assert_database_error(s.signing_keys().await);
        raw(url, "UPDATE signing_keys SET status = 'active', created_at = 9223372036854775807").await;
        assert_database_error(s.signing_keys().await);
    }

    /// The same for the consent workflow's tables.
    pub async fn unreadable_consent_workflow_values_are_database_errors(s: &SqlStore, url: &str) {
        let s: &dyn Store = s;
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let app = application(t.id, "App", None);
        let sp = service_principal(t.id, &app);
        let req = ConsentRequest { expires_at: at(1), ..consent_request(t.id, app.app_id, u.id, 0) };
        let cls = classification(t.id, sp.id, "User.Read");
        let ev = audit_event(t.id, 1, "consent.user.granted", Some(app.app_id));
        let n = notification(t.id, 1);
        s.apply(&[
            Change::PutServicePrincipal(sp.clone()),
            Change::PutConsentRequest(req.clone()),
            Change::PutPermissionClassification(cls),
            Change::AppendAudit(ev),
            Change::EnqueueNotification(n),
        ])
        .await
        .unwrap();

        raw(url, "UPDATE consent_requests SET result = 'Maybe'").await;
        assert_database_error(s.consent_request(t.id, req.id).await);
        assert_database_error(s.consent_requests(t.id, None).await);
        assert_database_error(s.expired_consent_requests(at(2)).await);
        raw(url, "UPDATE consent_requests SET result = 'NotReviewed', permissions = '[{\"value\": 1}]'").await;
        assert_database_error(s.consent_request(t.id, req.id).await);
        raw(url, "UPDATE consent_requests SET permissions = '[]', reviewed_by = 'someone'").await;
        assert_database_error(s.consent_request(t.id, req.id).await);
        raw(url, "UPDATE consent_requests SET reviewed_by = NULL, status = 'Pending'").await;
        assert_database_error(s.consent_request(t.id, req.id).await);
        raw(url, "UPDATE permission_classifications SET permission_id = 'not-a-uuid'").await;
        assert_database_error(s.permission_classifications(t.id, sp.id).await);
        raw(url, "UPDATE audit_events SET detail = '{not json'").await;
        assert_database_error(s.audit_events(t.id, &AuditQuery::latest(None, 10)).await);
        raw(url, "UPDATE audit_events SET detail = 'null', at = 9223372036854775807").await;
        assert_database_error(s.audit_events(t.id, &AuditQuery::latest(Some(app.app_id), 10)).await);
        raw(url, "UPDATE notifications SET attempts = -1").await;
        assert_database_error(s.notifications(t.id).await);
        assert_database_error(s.unsent_notifications(10, 10).await);
    }

    /// Connecting again runs the migrations as a no-op and sees the data.
    pub async fn reconnecting_keeps_data(s: &SqlStore, url: &str) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let again = SqlStore::connect(url).await.unwrap();
        assert_eq!(again.tenant(t.id).await.unwrap().map(|t| t.display_name), Some("Contoso".to_string()));
        assert_eq!(again.user(t.id, u.id).await.unwrap(), Some(u));
        assert_eq!(again.statements_executed(), 2, "each store counts its own statements");
        again.close().await;
    }

    /// Another process's writes (a second replica, the CLI) reach this process's directory cache
    /// at its next generation check: never within the check interval, always after it.
    pub async fn directory_cache_sees_other_processes_writes(s: &SqlStore, url: &str) {
        let (t, u) = seed_tenant(s, "Contoso", "contoso.test").await;
        let with_interval =
            |secs| CacheSettings { enabled: true, check_interval: std::time::Duration::from_secs(secs) };
        let lazy = SqlStore::connect_with(url, with_interval(3600)).await.unwrap();
        let eager = SqlStore::connect_with(url, with_interval(0)).await.unwrap();
        let name = |store: SqlStore| async move { store.tenant(t.id).await.unwrap().unwrap().display_name };
        assert_eq!(name(lazy.clone()).await, "Contoso");
        assert_eq!(name(eager.clone()).await, "Contoso");

        let mut renamed = t.clone();
        renamed.display_name = "Contoso Ltd".into();
        s.apply(&[Change::PutTenant(renamed)]).await.unwrap();
        assert_eq!(name(eager.clone()).await, "Contoso Ltd", "a zero interval checks the generation on every read");
        if s.backend_name() == "postgres" {
            // PostgreSQL pushes the write (NOTIFY at commit): seen within milliseconds, long
            // before the hour-long check.
            let at = std::time::Instant::now();
            while name(lazy.clone()).await != "Contoso Ltd" {
                assert!(at.elapsed() < std::time::Duration::from_secs(5), "the notification never arrived");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        } else {
            assert_eq!(name(lazy.clone()).await, "Contoso", "within the interval the write is not seen yet");
            // A write that touches no cached row leaves the cache alone; one that does empties it.
            lazy.apply(&[Change::AppendAudit(audit_event(t.id, 1, "test.noted", None))]).await.unwrap();
            assert_eq!(name(lazy.clone()).await, "Contoso");
            lazy.apply(&[Change::PutTenant(tenant("Fabrikam", &["fabrikam.test"]))]).await.unwrap();
            assert_eq!(name(lazy.clone()).await, "Contoso Ltd");
        }
        assert_eq!(lazy.user(t.id, u.id).await.unwrap(), Some(u));

        let off =
            SqlStore::connect_with(url, CacheSettings { enabled: false, ..CacheSettings::default() }).await.unwrap();
        let before = off.statements_executed();
        assert_eq!(name(off.clone()).await, "Contoso Ltd");
        assert_eq!(name(off.clone()).await, "Contoso Ltd");
        assert_eq!(off.statements_executed(), before + 2, "with the cache off every read is a statement");
        assert_eq!(name(lazy.clone()).await, "Contoso Ltd", "kept once read");
        let (hits, misses) = lazy.directory_cache_counts();
        assert!(hits >= 1 && misses >= 2, "hits {hits}, misses {misses}");
        for store in [lazy, eager, off] {
            store.close().await;
        }
    }
}

/// On one thread the writer runs only once the caller yields: the 40 claims and 21 token
/// writes queued in one join are written as one statement each kind. Would fail if every write
/// ran on its own again.
#[tokio::test(flavor = "current_thread")]
async fn queued_writes_are_committed_as_one_statement_a_kind() {
    use accord_store::Store;
    let db = sqlite_db().await;
    let store = db.store.clone();
    let before = store.statements_executed();
    let (winners, ..) = cases::write_markers_and_tokens_at_once(&store).await;
    assert_eq!(winners, vec![1; 20]);
    assert_eq!(store.statements_executed() - before, 2, "one statement for the markers, one for the tokens");
    assert_eq!(store.group_commit_counts(), (61, 1), "61 writes in one batch");
    run_case(db, |_, _| async {}).await;
}
