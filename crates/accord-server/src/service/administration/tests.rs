//! The administration services against a real store: roles, refusals and what they write.

use super::*;
use accord_core::consent_records::{ConsentRequest, PermissionKey, RequestStatus, ReviewResult};
use accord_core::ids::{AppId, ServicePrincipalId, TenantId};
use accord_core::well_known::GRAPH_APP_ID;
use accord_store::SqlStore;

fn prefixed(app_id: Option<AppId>, prefix: &str, limit: u32) -> AuditQuery {
    AuditQuery { action_prefix: prefix.into(), ..AuditQuery::latest(app_id, limit) }
}

const WORLD: &str = r#"
[[tenant]]
id = "12345678-0000-4000-8000-000000000001"
display_name = "Vendor"
domains = ["vendor.test"]

[[tenant.app]]
app_id = "12345678-0000-4000-8000-0000000000a1"
display_name = "Meeting Insights"
sign_in_audience = "multiple_orgs"
redirect_uris = ["https://vendor.example/cb"]

  [[tenant.app.role]]
  value = "Insights.Admin"
  allowed_member_types = ["User"]

[[tenant]]
id = "12345678-0000-4000-8000-000000000002"
display_name = "Contoso"
domains = ["contoso.test"]
user_consent = "none"

[tenant.admin_consent_requests]
enabled = true
reviewers = ["admin@contoso.test", "group:Reviewers"]

[[tenant.user]]
upn = "admin@contoso.test"
display_name = "Admin"
password = "admin-password"
roles = ["Global Administrator"]

[[tenant.user]]
upn = "rita@contoso.test"
display_name = "Rita"
password = "rita-password"

[[tenant.user]]
upn = "alice@contoso.test"
display_name = "Alice"
password = "alice-password"

[[tenant.group]]
display_name = "Reviewers"
members = ["rita@contoso.test"]

[[tenant.group]]
display_name = "Outer"
members = ["alice@contoso.test", "group:Inner"]

[[tenant.group]]
display_name = "Inner"
members = ["rita@contoso.test", "group:Outer"]

[[tenant.enterprise_app]]
app = "12345678-0000-4000-8000-0000000000a1"
assignment_required = true
"#;

const CONTOSO: TenantId = TenantId::from_uuid(uuid::uuid!("12345678-0000-4000-8000-000000000002"));
const INSIGHTS: AppId = AppId::from_uuid(uuid::uuid!("12345678-0000-4000-8000-0000000000a1"));

/// A SQLite store in a temporary file, loaded with a scenario; the file goes with it.
struct TempStore {
    store: SqlStore,
    path: std::path::PathBuf,
}

impl TempStore {
    async fn with(world: &str) -> TempStore {
        let path = std::env::temp_dir().join(format!("accord-service-test-{}.db", Uuid::new_v4().simple()));
        let store = SqlStore::connect_sqlite_file(&path).await.unwrap();
        let scenario = accord_core::scenario::parse("world.toml", world).unwrap();
        crate::service::scenario_loader::load(&store, &Keyring::from_master(&[9; 32]), &scenario).await.unwrap();
        TempStore { store, path }
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

struct World {
    store: SqlStore,
    _db: TempStore,
    tenant: Tenant,
    admin: Actor,
    rita: Actor,
    alice: Actor,
}

impl World {
    async fn new() -> World {
        let db = TempStore::with(WORLD).await;
        let store = db.store.clone();
        let tenant = store.tenant(CONTOSO).await.unwrap().unwrap();
        let actor = |upn: &'static str| {
            let store = store.clone();
            async move {
                let user = store.user_by_upn(CONTOSO, upn).await.unwrap().unwrap();
                Actor::user(&store, user).await.unwrap()
            }
        };
        World {
            _db: db,
            admin: actor("admin@contoso.test").await,
            rita: actor("rita@contoso.test").await,
            alice: actor("alice@contoso.test").await,
            store,
            tenant,
        }
    }

    fn user(actor: &Actor) -> &User {
        actor.user_ref().unwrap()
    }
}

fn is_forbidden(r: Result<impl std::fmt::Debug, ServiceError>) -> bool {
    matches!(r, Err(ServiceError::Forbidden(_)))
}

#[tokio::test]
async fn enterprise_apps_search_and_filter_for_directory_readers_only() {
    let w = World::new().await;
    let all = enterprise_apps(&w.store, &w.admin, &w.tenant, &EnterpriseAppFilter::default()).await.unwrap();
    let names: Vec<&str> = all.iter().map(|a| a.sp.display_name.as_str()).collect();
    assert_eq!(names, ["Meeting Insights", "Microsoft Graph"]);
    let publishers = publishers(&w.store, &all).await.unwrap();
    assert_eq!(publishers[0].name, "Vendor");
    assert_eq!(publishers[1].name, "Microsoft");
    assert!(publishers[1].verified && !publishers[0].verified);
    let by_id = EnterpriseAppFilter { search: "0000000000a1".into(), ..Default::default() };
    assert_eq!(enterprise_apps(&w.store, &w.admin, &w.tenant, &by_id).await.unwrap().len(), 1);
    let by_name =
        EnterpriseAppFilter { search: "GRAPH".into(), assignment_required: Some(false), ..Default::default() };
    assert_eq!(
        enterprise_apps(&w.store, &w.admin, &w.tenant, &by_name).await.unwrap()[0].sp.display_name,
        "Microsoft Graph"
    );
    let pending = EnterpriseAppFilter { has_pending_requests: Some(true), ..Default::default() };
    assert!(enterprise_apps(&w.store, &w.admin, &w.tenant, &pending).await.unwrap().is_empty());
    assert!(is_forbidden(enterprise_apps(&w.store, &w.alice, &w.tenant, &EnterpriseAppFilter::default()).await));
    assert!(is_forbidden(find_principals(&w.store, &w.rita, &w.tenant, "", true, 10).await));
    let found = find_principals(&w.store, &w.admin, &w.tenant, "r", true, 10).await.unwrap();
    let kinds: Vec<(&str, PrincipalType)> = found.iter().map(|p| (p.display_name.as_str(), p.kind)).collect();
    // Names and UPNs that start with the text (any case): users first.
    assert_eq!(kinds, [("Rita", PrincipalType::User), ("Reviewers", PrincipalType::Group)]);
    let found = find_principals(&w.store, &w.admin, &w.tenant, "", true, 3).await.unwrap();
    assert_eq!(found.len(), 3, "at most the limit");
}

#[tokio::test]
async fn group_details_walk_nested_groups_once_even_in_a_cycle() {
    let w = World::new().await;
    let outer = w.store.group_by_name(CONTOSO, "Outer").await.unwrap().unwrap();
    let d = group_details(&w.store, &w.admin, &w.tenant, outer.id).await.unwrap();
    assert_eq!(d.direct_count, 2);
    let page = |transitive, nested_users_only| MemberQuery { transitive, nested_users_only, after: None, limit: 10 };
    let (direct, next) = group_members_page(&w.store, &w.admin, &w.tenant, outer.id, page(false, false)).await.unwrap();
    let direct: Vec<&str> = direct.iter().map(|p| p.display_name.as_str()).collect();
    assert_eq!((direct, next), (vec!["Alice", "Inner"], None), "users first");
    let (nested, _) = group_members_page(&w.store, &w.admin, &w.tenant, outer.id, page(true, true)).await.unwrap();
    assert_eq!(nested.iter().map(|u| u.display_name.as_str()).collect::<Vec<_>>(), ["Rita"]);
    let through = through_groups(&w.store, &w.admin, &w.tenant, outer.id, &nested).await.unwrap();
    assert_eq!(through, ["Inner"], "the group below that has Rita as a direct member");
    // A page of one continues after the member its position names.
    let (first, next) =
        group_members_page(&w.store, &w.admin, &w.tenant, outer.id, MemberQuery { limit: 1, ..page(false, false) })
            .await
            .unwrap();
    let next = next.expect("a second page");
    assert_eq!(next, member_position(&w.store, &w.admin, &w.tenant, first[0].id, "after").await.unwrap());
    let (second, _) = group_members_page(
        &w.store,
        &w.admin,
        &w.tenant,
        outer.id,
        MemberQuery { limit: 1, after: Some(next), ..page(false, false) },
    )
    .await
    .unwrap();
    assert_eq!(second[0].display_name, "Inner");
    assert_eq!(d.member_of.iter().map(|g| g.display_name.as_str()).collect::<Vec<_>>(), ["Inner"]);
}

#[tokio::test]
async fn assignments_permissions_and_audit_reads() {
    let w = World::new().await;
    let sp = w.store.service_principal_by_app_id(CONTOSO, INSIGHTS).await.unwrap().unwrap();
    let app = w.store.application_by_app_id(INSIGHTS).await.unwrap().unwrap();
    let role = app.app_role("Insights.Admin").unwrap().id;
    let reviewers = w.store.group_by_name(CONTOSO, "Reviewers").await.unwrap().unwrap();
    add_assignment(&w.store, &w.admin, &w.tenant, sp.id, reviewers.id.into(), Some(role), None).await.unwrap();
    add_assignment(&w.store, &w.admin, &w.tenant, sp.id, World::user(&w.alice).id.into(), None, None).await.unwrap();
    let list = app_assignments(&w.store, &w.admin, &w.tenant, sp.id).await.unwrap();
    let rows: Vec<(&str, &str)> = list.iter().map(|a| (a.principal.display_name.as_str(), a.role.as_str())).collect();
    assert_eq!(rows, [("Alice", "Default Access"), ("Reviewers", "Insights.Admin")]);
    let graph = w.store.service_principal_by_app_id(CONTOSO, GRAPH_APP_ID).await.unwrap().unwrap();
    let org = NewGrant {
        client_sp_id: sp.id,
        resource_sp_id: graph.id,
        principal_id: None,
        scopes: "User.Read",
        expires_at: None,
    };
    create_grant(&w.store, &w.admin, &w.tenant, org).await.unwrap();
    create_grant(
        &w.store,
        &w.admin,
        &w.tenant,
        NewGrant {
            client_sp_id: sp.id,
            resource_sp_id: graph.id,
            principal_id: Some(World::user(&w.alice).id),
            scopes: "openid Calendars.Read",
            expires_at: None,
        },
    )
    .await
    .unwrap();
    let p = app_permissions(&w.store, &w.admin, &w.tenant, sp.id).await.unwrap();
    assert_eq!(p.admin_consented.len(), 1);
    assert_eq!(p.admin_consented[0].resource, "Microsoft Graph");
    assert_eq!(p.user_consented[0].principal.as_ref().unwrap().upn, "alice@contoso.test");
    assert_eq!(p.user_consented[0].grant.scopes, ["openid", "Calendars.Read"]);
    assert!(p.application.is_empty());
    let events = audit_log(&w.store, &w.admin, &w.tenant, &prefixed(Some(INSIGHTS), "assignment.", 10)).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.action == "assignment.added"));
    assert_eq!(audit_log(&w.store, &w.admin, &w.tenant, &prefixed(None, "consent.", 10)).await.unwrap().len(), 2);
    assert!(is_forbidden(audit_log(&w.store, &w.rita, &w.tenant, &AuditQuery::latest(None, 10)).await));
}

#[tokio::test]
async fn requests_are_grouped_per_app_for_reviewers_and_readers() {
    let w = World::new().await;
    let now = accord_core::clock::now();
    let request = ConsentRequest {
        reason: "for the sales calls".into(),
        permissions: vec![PermissionKey { resource_app_id: GRAPH_APP_ID, value: "Calendars.Read".into() }],
        expires_at: now + time::Duration::days(7),
        ..pending_request(&w)
    };
    w.store.apply(&[Change::PutConsentRequest(request.clone())]).await.unwrap();
    assert_eq!(
        request_access(&w.store, &w.rita, &w.tenant).await.unwrap(),
        RequestAccess { reviewer: true, read_directory: false }
    );
    assert!(!request_access(&w.store, &w.alice, &w.tenant).await.unwrap().may_view());
    assert!(is_forbidden(app_consent_requests(&w.store, &w.alice, &w.tenant, None).await));
    let groups = app_consent_requests(&w.store, &w.rita, &w.tenant, None).await.unwrap();
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!((g.display_name.as_str(), g.publisher.as_str()), ("Meeting Insights", "Vendor"));
    assert_eq!(g.pending().count(), 1);
    assert_eq!(g.requests[0].requester.upn, "alice@contoso.test");
    assert_eq!(g.permissions[0].display_name, "Read user calendars");
    assert_eq!(g.permissions[0].resource, "Microsoft Graph");
    // The workflow's rule: Rita reviews but holds no role that may grant; the admin may.
    let app = w.store.application_by_app_id(INSIGHTS).await.unwrap().unwrap();
    let refused =
        crate::service::admin_consent_requests::approval_preview(&w.store, &w.tenant, &app, World::user(&w.rita)).await;
    assert!(matches!(refused, Err(ServiceError::Forbidden(ref e)) if e.code == 90094), "{refused:?}");
    let granted =
        crate::service::admin_consent_requests::approval_preview(&w.store, &w.tenant, &app, World::user(&w.admin))
            .await
            .unwrap();
    assert_eq!(granted.iter().map(|p| p.value.as_str()).collect::<Vec<_>>(), ["Calendars.Read"]);
    let alice_refused =
        crate::service::admin_consent_requests::approval_preview(&w.store, &w.tenant, &app, World::user(&w.alice))
            .await;
    assert!(is_forbidden(alice_refused), "not a reviewer");
}

#[tokio::test]
async fn registrations_must_ask_for_real_permissions_and_roles_for_someone() {
    let w = World::new().await;
    let app = create_application(&w.store, &w.admin, &w.tenant, "Reports", SignInAudience::SingleOrg).await.unwrap();
    let invalid_field = |r: Result<Application, ServiceError>| match r {
        Err(ServiceError::Refused(e)) => e.message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let mut bad = app.clone();
    bad.required = vec![RequiredResourceAccess {
        resource_app_id: GRAPH_APP_ID,
        delegated: vec!["Nope.Read".into()],
        application: vec![],
    }];
    assert!(invalid_field(update_application(&w.store, &w.admin, &w.tenant, bad).await)
        .contains("'Nope.Read' is not a delegated permission"));
    let mut bad = app.clone();
    bad.required = vec![RequiredResourceAccess {
        resource_app_id: GRAPH_APP_ID,
        delegated: vec![],
        application: vec!["User.Read".into()],
    }];
    assert!(invalid_field(update_application(&w.store, &w.admin, &w.tenant, bad).await)
        .contains("not an application permission"));
    let mut bad = app.clone();
    bad.app_roles = vec![AppRole {
        id: Uuid::new_v4(),
        value: "X".into(),
        display_name: "X".into(),
        description: String::new(),
        allowed_member_types: vec![],
    }];
    assert!(invalid_field(update_application(&w.store, &w.admin, &w.tenant, bad).await).contains("must allow"));
    let mut good = app.clone();
    good.required = vec![RequiredResourceAccess {
        resource_app_id: GRAPH_APP_ID,
        delegated: vec!["User.Read".into()],
        application: vec!["User.Read.All".into()],
    }];
    update_application(&w.store, &w.admin, &w.tenant, good).await.unwrap();
    let regs = app_registrations(&w.store, &w.admin, &w.tenant).await.unwrap();
    assert_eq!(regs.iter().map(|(a, n)| (a.display_name.as_str(), *n)).collect::<Vec<_>>(), [("Reports", 0)]);
    assert!(client_secrets(&w.store, &w.admin, &w.tenant, INSIGHTS).await.is_err(), "another tenant's app");

    // Classifications: only what users could consent to.
    let (graph, list) = graph_classifications(&w.store, &w.admin, &w.tenant).await.unwrap();
    assert!(list.iter().all(|(s, low)| !s.admin_consent_required && !low));
    let refused = classify(&w.store, &w.admin, &w.tenant, graph, "User.Read.All", true).await;
    assert!(
        matches!(refused, Err(ServiceError::Refused(ref e)) if e.message.contains("requires admin consent")),
        "{refused:?}"
    );
    classify(&w.store, &w.admin, &w.tenant, graph, "User.Read", true).await.unwrap();
    let (_, list) = graph_classifications(&w.store, &w.admin, &w.tenant).await.unwrap();
    assert!(list.iter().any(|(s, low)| s.value == "User.Read" && *low));
}

#[tokio::test]
async fn microsoft_graph_cannot_be_disabled_or_restricted() {
    let w = World::new().await;
    let graph =
        w.store.service_principal_by_app_id(CONTOSO, accord_core::well_known::GRAPH_APP_ID).await.unwrap().unwrap();
    for (enabled, required) in [(Some(false), None), (None, Some(true))] {
        let err = set_service_principal(&w.store, &w.admin, &w.tenant, graph.id, enabled, required).await.unwrap_err();
        assert!(matches!(err, ServiceError::Refused(ref e) if e.message.contains("Microsoft Graph")), "{err:?}");
    }
    let sp = w.store.service_principal(CONTOSO, graph.id).await.unwrap().unwrap();
    assert!(sp.enabled && !sp.assignment_required);
}

/// A deleted reviewer leaves the admin-consent request policy (which names reviewers by id
/// and would otherwise keep a dangling one); nobody deletes themselves; Rita may not delete.
#[tokio::test]
async fn deleting_a_user_takes_them_off_the_reviewers() {
    let w = World::new().await;
    let admin_id = World::user(&w.admin).id;
    let refused = delete_user(&w.store, &w.admin, &w.tenant, admin_id).await;
    assert!(matches!(refused, Err(ServiceError::Refused(ref e)) if e.message.contains("own account")), "{refused:?}");
    assert!(is_forbidden(delete_user(&w.store, &w.rita, &w.tenant, World::user(&w.alice).id).await));
    let daemon = Actor::App {
        app_id: INSIGHTS,
        sp_id: ServicePrincipalId::random(),
        permissions: vec!["User.ReadWrite.All".into()],
    };
    // An administrator is deleted by no app (issue 12, finding 1); once an ordinary user, she is.
    assert!(is_forbidden(delete_user(&w.store, &daemon, &w.tenant, admin_id).await));
    w.store.apply(&[Change::SetUserRoles { tenant_id: CONTOSO, user_id: admin_id, roles: vec![] }]).await.unwrap();
    delete_user(&w.store, &daemon, &w.tenant, admin_id).await.unwrap();
    let tenant = w.store.tenant(CONTOSO).await.unwrap().unwrap();
    let policy = &tenant.admin_consent_requests;
    assert!(!policy.reviewers.contains(&ReviewerRef::User(admin_id)), "{policy:?}");
    assert_eq!(policy.reviewers.len(), 1, "the Reviewers group stays: {policy:?}");
    assert_eq!(policy.version, w.tenant.admin_consent_requests.version + 1);
    assert_eq!(w.store.user(CONTOSO, admin_id).await.unwrap(), None);
    let again = delete_user(&w.store, &daemon, &tenant, admin_id).await;
    assert!(matches!(again, Err(ServiceError::NotFound(_))), "{again:?}");
}

// ---------------------------------------------------------------------------------------------
// Concurrency (issue 12's suite): racing writers neither both win nor undo each other.
// ---------------------------------------------------------------------------------------------

fn pending_request(w: &World) -> ConsentRequest {
    let now = accord_core::clock::now();
    ConsentRequest {
        tenant_id: CONTOSO,
        id: Uuid::new_v4(),
        client_app_id: INSIGHTS,
        user_id: World::user(&w.alice).id,
        reason: "for my meetings".into(),
        permissions: vec![PermissionKey { resource_app_id: GRAPH_APP_ID, value: "User.Read".into() }],
        status: RequestStatus::InProgress,
        result: ReviewResult::NotReviewed,
        reviewed_by: None,
        review_justification: None,
        created_at: now,
        reviewed_at: None,
        completed_at: None,
        expires_at: now + time::Duration::days(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_reviews_decide_a_request_once() {
    use crate::service::admin_consent_requests::{approve, deny};
    for round in 0..3 {
        let w = World::new().await;
        let request = pending_request(&w);
        w.store.apply(&[Change::PutConsentRequest(request.clone())]).await.unwrap();
        let admin = World::user(&w.admin).clone();
        let reviews = (0..6).map(|n| {
            let (store, tenant, admin, id) = (w.store.clone(), w.tenant.clone(), admin.clone(), request.id);
            tokio::spawn(async move {
                // Approvals and denials interleaved, all at once.
                if (n + round) % 2 == 0 {
                    approve(&store, &tenant, id, &admin).await.map(|_| ReviewResult::Approved)
                } else {
                    deny(&store, &tenant, id, &admin, "not now").await.map(|_| ReviewResult::Denied)
                }
            })
        });
        let mut winners = Vec::new();
        for r in futures_join(reviews.collect()).await {
            match r {
                Ok(result) => winners.push(result),
                Err(ServiceError::Conflict(_)) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let stored = w.store.consent_request(CONTOSO, request.id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.result), (RequestStatus::Completed, winners[0]));
        // The grant exists exactly when the approval won.
        let sp = w.store.service_principal_by_app_id(CONTOSO, INSIGHTS).await.unwrap().unwrap();
        let grants = w.store.delegated_grants_of_client(CONTOSO, sp.id).await.unwrap();
        assert_eq!(grants.len(), usize::from(winners[0] == ReviewResult::Approved), "round {round}: {grants:?}");
        let decided = w.store.audit_events(CONTOSO, &AuditQuery::latest(Some(INSIGHTS), 50)).await.unwrap();
        let decisions =
            decided.iter().filter(|e| e.action == "request.approved" || e.action == "request.denied").count();
        assert_eq!(decisions, 1, "round {round}: one decision in the audit log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_edits_of_tenant_settings_all_land() {
    let w = World::new().await;
    let reviewers = w.tenant.admin_consent_requests.reviewers.clone();
    // Ten writers, each from the same (soon stale) read of the tenant, each editing one setting.
    let edits = (0..10u32).map(|n| {
        let (store, tenant, admin, reviewers) = (w.store.clone(), w.tenant.clone(), w.admin.clone(), reviewers.clone());
        tokio::spawn(async move {
            if n % 2 == 0 {
                let setting = if n == 8 { UserConsent::Low } else { UserConsent::All };
                set_user_consent(&store, &admin, &tenant, setting).await.map(|_| ())
            } else {
                let policy = AdminConsentRequestPolicy {
                    enabled: true,
                    reviewers,
                    expire_after_days: n,
                    notify_reviewers: true,
                    version: 0,
                };
                set_request_policy(&store, &admin, &tenant, policy).await.map(|_| ())
            }
        })
    });
    for r in futures_join(edits.collect()).await {
        r.unwrap();
    }
    let t = w.store.tenant(CONTOSO).await.unwrap().unwrap();
    // Every write landed on the one before it: ten revisions, five policy versions.
    assert_eq!(t.revision, w.tenant.revision + 10, "{t:?}");
    assert_eq!(t.admin_consent_requests.version, w.tenant.admin_consent_requests.version + 5, "{t:?}");
    assert!([1, 3, 5, 7, 9].contains(&t.admin_consent_requests.expire_after_days));
    assert!(matches!(t.user_consent, UserConsent::Low | UserConsent::All));
    let audited = w.store.audit_events(CONTOSO, &AuditQuery::latest(None, 50)).await.unwrap();
    assert_eq!(audited.iter().filter(|e| e.action.starts_with("settings.")).count(), 10);
}

/// Awaits spawned tasks in order.
async fn futures_join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Finding 2: a multi-tenant app's credential works wherever it was consented, so privileged
/// application permissions granted in a *customer's* tenant make adding a credential a
/// Global Administrator's (or Privileged Role Administrator's) act in the app's home tenant.
#[tokio::test]
async fn credentials_for_apps_privileged_in_another_tenant_need_a_global_administrator() {
    const PRIVILEGED_ELSEWHERE: &str = r#"
[[tenant]]
id = "22222222-0000-4000-8000-000000000001"
display_name = "Vendor"
domains = ["vendor.test"]

[[tenant.user]]
upn = "cloud@vendor.test"
display_name = "Cloud"
password = "cloud-password"
roles = ["Cloud Application Administrator"]

[[tenant.user]]
upn = "ga@vendor.test"
display_name = "Global"
password = "ga-password"
roles = ["Global Administrator"]

[[tenant.app]]
app_id = "22222222-0000-4000-8000-0000000000a1"
display_name = "Directory Sync"
sign_in_audience = "multiple_orgs"
redirect_uris = ["https://sync.example/cb"]

  [[tenant.app.required]]
  application = ["User.ReadWrite.All"]

[[tenant.app]]
app_id = "22222222-0000-4000-8000-0000000000a2"
display_name = "Calendar Reader"
sign_in_audience = "multiple_orgs"
redirect_uris = ["https://reader.example/cb"]

[[tenant]]
id = "22222222-0000-4000-8000-000000000002"
display_name = "Customer"
domains = ["customer.test"]

[[tenant.grant]]
app = "22222222-0000-4000-8000-0000000000a1"
application = ["User.ReadWrite.All"]
"#;
    let db = TempStore::with(PRIVILEGED_ELSEWHERE).await;
    let (store, keyring) = (db.store.clone(), Keyring::from_master(&[9; 32]));
    let vendor = store.tenant("22222222-0000-4000-8000-000000000001".parse().unwrap()).await.unwrap().unwrap();
    let actor = |upn: &'static str| {
        let store = store.clone();
        let tenant = vendor.id;
        async move { Actor::user(&store, store.user_by_upn(tenant, upn).await.unwrap().unwrap()).await.unwrap() }
    };
    let (cloud, ga) = (actor("cloud@vendor.test").await, actor("ga@vendor.test").await);
    let sync: AppId = "22222222-0000-4000-8000-0000000000a1".parse().unwrap();
    let reader: AppId = "22222222-0000-4000-8000-0000000000a2".parse().unwrap();

    // Nothing privileged anywhere: the Cloud Application Administrator may add a secret.
    add_client_secret(&store, &keyring, &cloud, &vendor, reader, "ci", 30).await.unwrap();
    // Privileged in the customer's tenant: refused to her, naming where; allowed to the GA.
    let refused = add_client_secret(&store, &keyring, &cloud, &vendor, sync, "ci", 30).await;
    match refused {
        Err(ServiceError::Forbidden(e)) => assert!(e.message.contains("User.ReadWrite.All in Customer"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    add_client_secret(&store, &keyring, &ga, &vendor, sync, "ci", 30).await.unwrap();
}

/// Concurrent loads of one scenario (e.g. two replicas starting with `--scenario`): each is
/// one transaction, refused whole if another moved a tenant it read; none duplicates anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scenario_loads_never_half_apply_or_duplicate() {
    let w = World::new().await;
    let users_before = w.store.users(CONTOSO).await.unwrap().len();
    let groups_before = w.store.groups(CONTOSO).await.unwrap().len();
    let scenario = accord_core::scenario::parse("world.toml", WORLD).unwrap();
    let loads = (0..4).map(|_| {
        let (store, scenario) = (w.store.clone(), scenario.clone());
        tokio::spawn(async move {
            crate::service::scenario_loader::load(&store, &Keyring::from_master(&[9; 32]), &scenario).await
        })
    });
    let mut loaded = 0;
    for r in futures_join(loads.collect()).await {
        match r {
            Ok(_) => loaded += 1,
            Err(e) => assert!(format!("{e:#}").contains("nothing was loaded"), "{e:#}"),
        }
    }
    assert!(loaded >= 1, "every concurrent load failed");
    assert_eq!(w.store.users(CONTOSO).await.unwrap().len(), users_before);
    assert_eq!(w.store.groups(CONTOSO).await.unwrap().len(), groups_before);
    let t = w.store.tenant(CONTOSO).await.unwrap().unwrap();
    assert_eq!(t.revision, w.tenant.revision + loaded as u64, "one revision per load that landed");
}

/// Admin consent and revocation racing for one app: each lands whole or is refused whole; the
/// grant ends either gone or complete, never with part of its scopes, and nothing fails as ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_consent_racing_revocation_ends_whole() {
    const CONSENTED: &str = r#"
[[tenant]]
id = "33333333-0000-4000-8000-000000000001"
display_name = "Vendor"
domains = ["vendor.test"]

[[tenant.app]]
app_id = "33333333-0000-4000-8000-0000000000a1"
display_name = "Planner"
sign_in_audience = "multiple_orgs"
redirect_uris = ["https://planner.example/cb"]

  [[tenant.app.required]]
  delegated = ["User.Read", "Calendars.Read", "Calendars.ReadWrite"]

[[tenant]]
id = "33333333-0000-4000-8000-000000000002"
display_name = "Customer"
domains = ["customer.test"]

[[tenant.user]]
upn = "ga@customer.test"
display_name = "Global"
password = "ga-password"
roles = ["Global Administrator"]
"#;
    let db = TempStore::with(CONSENTED).await;
    let store = db.store.clone();
    let customer = store.tenant("33333333-0000-4000-8000-000000000002".parse().unwrap()).await.unwrap().unwrap();
    let ga =
        Actor::user(&store, store.user_by_upn(customer.id, "ga@customer.test").await.unwrap().unwrap()).await.unwrap();
    let app =
        store.application_by_app_id("33333333-0000-4000-8000-0000000000a1".parse().unwrap()).await.unwrap().unwrap();
    let full = ["User.Read", "Calendars.Read", "Calendars.ReadWrite"];
    for round in 0..8 {
        grant_admin_consent(&store, &ga, &customer, &app, None).await.unwrap();
        let sp = store.service_principal_by_app_id(customer.id, app.app_id).await.unwrap().unwrap();
        let grant = store.delegated_grants_of_client(customer.id, sp.id).await.unwrap().remove(0);
        let revoke = {
            let (store, ga, customer) = (store.clone(), ga.clone(), customer.clone());
            tokio::spawn(async move { revoke_grant(&store, &ga, &customer, grant.id).await })
        };
        let consent = {
            let (store, ga, customer, app) = (store.clone(), ga.clone(), customer.clone(), app.clone());
            tokio::spawn(async move { grant_admin_consent(&store, &ga, &customer, &app, None).await })
        };
        for r in [revoke.await.unwrap(), consent.await.unwrap()] {
            match r {
                Ok(()) | Err(ServiceError::NotFound(_)) | Err(ServiceError::Conflict(_)) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        let grants = store.delegated_grants_of_client(customer.id, sp.id).await.unwrap();
        match grants.as_slice() {
            [] => {}
            [g] => assert_eq!(g.scopes, full, "round {round}: a partial grant"),
            more => panic!("round {round}: {} grants for one app and consent type", more.len()),
        }
    }
}
