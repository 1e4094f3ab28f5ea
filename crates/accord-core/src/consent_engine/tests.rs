//! Table tests over every combination of the inputs that matter, targeted tests for each
//! refusal and each `.default` / prompt rule, and property tests over arbitrary snapshots.
//! The expected decisions come from a small oracle written here from the rules, independent of
//! the engine's helpers.

use super::*;
use crate::aadsts::OAuthError;
use crate::directory::PreAuthorizedApplication;
use crate::directory::{
    AdminConsentRequestPolicy, AppRole, AppRoleMemberType, ConsentType, PermissionScope, PrincipalType,
    RequiredResourceAccess, UserConsent,
};
use crate::ids::{AppObjectId, TenantId, UserId};
use crate::microsoft_graph;
use crate::well_known::DEFAULT_ACCESS_ROLE_ID;
use proptest::prelude::*;
use time::OffsetDateTime;
use uuid::uuid;

const TENANT: TenantId = TenantId::from_uuid(uuid!("10000000-0000-0000-0000-000000000001"));
const VENDOR: TenantId = TenantId::from_uuid(uuid!("10000000-0000-0000-0000-000000000002"));
const CLIENT_APP: AppId = AppId::from_uuid(uuid!("20000000-0000-0000-0000-000000000001"));
const CLIENT_OBJ: AppObjectId = AppObjectId::from_uuid(uuid!("20000000-0000-0000-0000-0000000000a1"));
const CLIENT_SP: ServicePrincipalId = ServicePrincipalId::from_uuid(uuid!("30000000-0000-0000-0000-000000000001"));
const GRAPH_SP: ServicePrincipalId = ServicePrincipalId::from_uuid(uuid!("30000000-0000-0000-0000-000000000002"));
const API_APP: AppId = AppId::from_uuid(uuid!("20000000-0000-0000-0000-000000000003"));
const API_SP: ServicePrincipalId = ServicePrincipalId::from_uuid(uuid!("30000000-0000-0000-0000-000000000003"));
const OTHER_APP: AppId = AppId::from_uuid(uuid!("20000000-0000-0000-0000-000000000004"));
const OTHER_SP: ServicePrincipalId = ServicePrincipalId::from_uuid(uuid!("30000000-0000-0000-0000-000000000004"));
const ALICE: UserId = UserId::from_uuid(uuid!("40000000-0000-0000-0000-000000000001"));
const BOB: UserId = UserId::from_uuid(uuid!("40000000-0000-0000-0000-000000000002"));
const SALES: GroupId = GroupId::from_uuid(uuid!("50000000-0000-0000-0000-000000000001"));
const ALL_STAFF: GroupId = GroupId::from_uuid(uuid!("50000000-0000-0000-0000-000000000002"));
const OTHER_GROUP: GroupId = GroupId::from_uuid(uuid!("50000000-0000-0000-0000-000000000003"));
const NOTES_ADMIN_ROLE: Uuid = uuid!("60000000-0000-0000-0000-000000000001");
const PENDING: Uuid = uuid!("70000000-0000-0000-0000-000000000001");

const APP_NAME: &str = "Contoso Notes";

fn epoch() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
}

fn scope(id: u128, value: &str, admin: bool) -> PermissionScope {
    PermissionScope {
        id: Uuid::from_u128(id),
        value: value.into(),
        admin_consent_required: admin,
        admin_consent_display_name: format!("Admin: {value}"),
        admin_consent_description: format!("Allows the app to {value} for every user."),
        user_consent_display_name: format!("User: {value}"),
        user_consent_description: format!("Allows the app to {value} for you."),
    }
}

fn role(id: Uuid, value: &str, members: &[AppRoleMemberType]) -> AppRole {
    AppRole {
        id,
        value: value.into(),
        display_name: format!("Role {value}"),
        description: format!("Holds {value}."),
        allowed_member_types: members.to_vec(),
    }
}

fn app(app_id: AppId, name: &str, uri: &str) -> Application {
    Application {
        id: AppObjectId::from_uuid(Uuid::from_u128(app_id.as_uuid().as_u128() ^ 0xff)),
        app_id,
        home_tenant_id: VENDOR,
        display_name: name.into(),
        sign_in_audience: SignInAudience::MultipleOrgs,
        redirect_uris: vec!["https://app.test/cb".into()],
        public_client: false,
        verified_publisher: true,
        identifier_uri: Some(uri.into()),
        scopes: Vec::new(),
        app_roles: Vec::new(),
        required: Vec::new(),
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

/// A whole small world: the tenant Fabrikam, Alice (and Bob), the multi-tenant client
/// "Contoso Notes" from the vendor's tenant, Microsoft Graph, the "Notes API" the client lists
/// and an "Other API" it does not.
struct World {
    tenant: Tenant,
    client: Application,
    client_sp: Option<ServicePrincipal>,
    user: User,
    roles: Vec<DirectoryRole>,
    groups: Vec<GroupMembership<'static>>,
    assignments: Vec<AppRoleAssignment>,
    grants: Vec<DelegatedGrant>,
    app_grants: Vec<AppRoleAssignment>,
    graph: Application,
    api: Application,
    other: Application,
    graph_low: Vec<Uuid>,
    api_low: Vec<Uuid>,
    pending: Option<Uuid>,
    prompt: Prompt,
}

impl World {
    fn new() -> Self {
        let graph = microsoft_graph::application();
        let graph_low = ["User.Read", "openid", "profile", "email", "offline_access"]
            .iter()
            .map(|v| graph.scope(v).unwrap().id)
            .collect();
        let mut api = app(API_APP, "Notes API", "api://notes-api");
        api.scopes = vec![scope(0xa1, "Notes.Read", false), scope(0xa2, "Notes.ReadWrite.All", true)];
        api.app_roles = vec![
            role(Uuid::from_u128(0xa3), "Notes.Export", &[AppRoleMemberType::Application]),
            role(Uuid::from_u128(0xa4), "Notes.Reader", &[AppRoleMemberType::User]),
        ];
        let mut other = app(OTHER_APP, "Other API", "api://other");
        other.scopes = vec![scope(0xb1, "Other.Read", false)];
        let mut client = app(CLIENT_APP, APP_NAME, "api://contoso-notes");
        client.id = CLIENT_OBJ;
        client.app_roles = vec![
            role(NOTES_ADMIN_ROLE, "Notes.Admin", &[AppRoleMemberType::User]),
            role(Uuid::from_u128(0xc2), "Notes.Sync", &[AppRoleMemberType::Application]),
        ];
        client.required = vec![
            RequiredResourceAccess {
                resource_app_id: GRAPH_APP_ID,
                delegated: vec!["User.Read".into(), "Calendars.Read".into(), "User.Read.All".into()],
                application: vec!["Calendars.Read".into(), "OnlineMeetings.Read.All".into()],
            },
            RequiredResourceAccess {
                resource_app_id: API_APP,
                delegated: vec!["Notes.Read".into()],
                application: vec!["Notes.Export".into()],
            },
        ];
        World {
            tenant: Tenant {
                id: TENANT,
                display_name: "Fabrikam".into(),
                domains: vec!["fabrikam.test".into()],
                user_consent: UserConsent::All,
                admin_consent_requests: AdminConsentRequestPolicy::default(),
                revision: 0,
            },
            client,
            client_sp: Some(ServicePrincipal {
                tenant_id: TENANT,
                id: CLIENT_SP,
                app_id: CLIENT_APP,
                display_name: APP_NAME.into(),
                app_owner_tenant_id: VENDOR,
                enabled: true,
                assignment_required: false,
                created_at: epoch(),
            }),
            user: User {
                tenant_id: TENANT,
                id: ALICE,
                upn: "alice@fabrikam.test".into(),
                display_name: "Alice".into(),
                password_hash: None,
                enabled: true,
                failed_sign_ins: 0,
                locked_until: None,
                sign_ins_valid_from: None,
            },
            roles: Vec::new(),
            groups: vec![
                GroupMembership { id: SALES, display_name: "Sales", via: None },
                GroupMembership { id: ALL_STAFF, display_name: "All Staff", via: Some(SALES) },
            ],
            assignments: Vec::new(),
            grants: Vec::new(),
            app_grants: Vec::new(),
            graph,
            api,
            other,
            graph_low,
            api_low: vec![Uuid::from_u128(0xa1)],
            pending: None,
            prompt: Prompt::Default,
        }
    }

    fn run<R>(&self, scope: &str, f: impl FnOnce(&ConsentSnapshot<'_>) -> R) -> R {
        let request = ScopeRequest::parse(scope).expect("test scope parses");
        let views = [
            ResourceView { app: &self.graph, sp_id: GRAPH_SP, low_classified: &self.graph_low },
            ResourceView { app: &self.api, sp_id: API_SP, low_classified: &self.api_low },
            ResourceView { app: &self.other, sp_id: OTHER_SP, low_classified: &[] },
        ];
        let snapshot = ConsentSnapshot {
            tenant: &self.tenant,
            client: &self.client,
            client_sp: self.client_sp.as_ref(),
            user: &self.user,
            user_roles: &self.roles,
            user_groups: &self.groups,
            assignments_to_client: &self.assignments,
            delegated_grants: &self.grants,
            app_role_grants: &self.app_grants,
            resources: &views,
            pending_request: self.pending,
            request: &request,
            prompt: self.prompt,
        };
        f(&snapshot)
    }

    fn sign_in(&self, scope: &str) -> Outcome {
        let out = self.run(scope, decide_sign_in);
        check_rules(&out);
        out
    }

    fn admin(&self, scope: &str, static_default: bool) -> Outcome {
        let out = self.run(scope, |s| decide_admin_consent(s, static_default));
        check_rules(&out);
        out
    }

    fn grant(
        &mut self,
        consent_type: ConsentType,
        principal: Option<UserId>,
        resource_sp: ServicePrincipalId,
        scopes: &[&str],
    ) {
        self.grants.push(DelegatedGrant {
            tenant_id: TENANT,
            id: Uuid::from_u128(0x9000 + self.grants.len() as u128),
            client_sp_id: CLIENT_SP,
            resource_sp_id: resource_sp,
            consent_type,
            principal_id: principal,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            created_at: epoch(),
            expires_at: None,
        });
    }

    fn assign(&mut self, principal: impl Into<Uuid>, principal_type: PrincipalType, app_role_id: Uuid) {
        self.assignments.push(AppRoleAssignment {
            tenant_id: TENANT,
            id: Uuid::from_u128(0x8000 + self.assignments.len() as u128),
            principal_id: principal.into(),
            principal_type,
            resource_sp_id: CLIENT_SP,
            app_role_id,
            created_at: epoch(),
            expires_at: None,
        });
    }

    fn require_assignment(&mut self) {
        self.client_sp.as_mut().unwrap().assignment_required = true;
    }
}

/// Every outcome explains itself: at least one rule, the last one `outcome`, and the app named.
fn check_rules(out: &Outcome) {
    assert!(!out.rules.is_empty());
    assert_eq!(out.rules.last().unwrap().id, "outcome");
    assert!(out.rules.iter().all(|r| !r.text.is_empty()));
    assert!(out.rules.first().unwrap().text.contains(APP_NAME), "first rule names the app: {:?}", out.rules[0]);
    assert!(out.rules.last().unwrap().text.contains(APP_NAME), "outcome names the app");
}

fn refused(out: &Outcome) -> &Aadsts {
    match &out.decision {
        Decision::Refuse(e) => e,
        other => panic!("expected a refusal, got {other:?}\n{:#?}", out.rules),
    }
}

fn not_permitted(out: &Outcome) -> &Aadsts {
    match &out.decision {
        Decision::NotPermitted(e) => e,
        other => panic!("expected the actor to be refused, got {other:?}\n{:#?}", out.rules),
    }
}

fn values(perms: &[PermissionRef]) -> Vec<&str> {
    perms.iter().map(|p| p.value.as_str()).collect()
}

macro_rules! sv {
    ($($s:expr),* $(,)?) => { vec![$(String::from($s)),*] as Vec<String> };
}

fn prompted(out: &Outcome) -> (Vec<String>, bool, bool) {
    match &out.decision {
        Decision::PromptConsent { permissions, org_option, org_required } => {
            (permissions.iter().map(|p| p.value.clone()).collect(), *org_option, *org_required)
        }
        other => panic!("expected a consent prompt, got {other:?}\n{:#?}", out.rules),
    }
}

fn issued(out: &Outcome) -> (AppId, Vec<String>, Vec<String>) {
    match &out.decision {
        Decision::Issue { resource_app_id, scopes, roles } => (*resource_app_id, scopes.clone(), roles.clone()),
        other => panic!("expected Issue, got {other:?}\n{:#?}", out.rules),
    }
}

fn rule_text(out: &Outcome, id: &str) -> String {
    out.rules.iter().filter(|r| r.id == id).map(|r| r.text.as_str()).collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------------------------
// The exhaustive table.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LowClassified,
    Unclassified,
    AdminOnly,
    AppPermission,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::LowClassified, Kind::Unclassified, Kind::AdminOnly, Kind::AppPermission];
    fn value(self) -> &'static str {
        match self {
            Kind::LowClassified => "User.Read",
            Kind::Unclassified => "Calendars.Read",
            Kind::AdminOnly => "User.Read.All",
            Kind::AppPermission => "OnlineMeetings.Read.All",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleHeld {
    NoRole,
    Global,
    PrivilegedRole,
    CloudApp,
    AppAdmin,
}

impl RoleHeld {
    const ALL: [RoleHeld; 5] =
        [RoleHeld::NoRole, RoleHeld::Global, RoleHeld::PrivilegedRole, RoleHeld::CloudApp, RoleHeld::AppAdmin];
    fn roles(self) -> Vec<DirectoryRole> {
        match self {
            RoleHeld::NoRole => vec![],
            RoleHeld::Global => vec![DirectoryRole::GlobalAdministrator],
            RoleHeld::PrivilegedRole => vec![DirectoryRole::PrivilegedRoleAdministrator],
            RoleHeld::CloudApp => vec![DirectoryRole::CloudApplicationAdministrator],
            RoleHeld::AppAdmin => vec![DirectoryRole::ApplicationAdministrator],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Assignment {
    NotRequired,
    Direct,
    NestedGroup,
    NotAssigned,
}

impl Assignment {
    const ALL: [Assignment; 4] =
        [Assignment::NotRequired, Assignment::Direct, Assignment::NestedGroup, Assignment::NotAssigned];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExistingGrant {
    NoGrant,
    MineOnly,
    Everyone,
    AnotherUser,
}

impl ExistingGrant {
    const ALL: [ExistingGrant; 4] =
        [ExistingGrant::NoGrant, ExistingGrant::MineOnly, ExistingGrant::Everyone, ExistingGrant::AnotherUser];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publisher {
    Verified,
    SameTenant,
    Unverified,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Issue,
    Prompt { org_option: bool, org_required: bool },
    Approval(Option<Uuid>),
    NeedAdmin,
    Refuse(u32),
}

#[derive(Debug, Clone, Copy)]
struct Case {
    policy: UserConsent,
    kind: Kind,
    role: RoleHeld,
    assignment: Assignment,
    workflow: bool,
    pending: bool,
    grant: ExistingGrant,
    publisher: Publisher,
    prompt: Prompt,
}

/// The rules, written out plainly.
fn oracle(c: &Case) -> Expect {
    if c.assignment == Assignment::NotAssigned {
        return Expect::Refuse(50105);
    }
    if c.kind == Kind::AppPermission {
        return Expect::Refuse(70011);
    }
    let granted = matches!(c.grant, ExistingGrant::MineOnly | ExistingGrant::Everyone);
    let must_prompt = c.prompt == Prompt::Consent || !granted;
    if !must_prompt {
        return Expect::Issue;
    }
    if c.prompt == Prompt::None {
        return Expect::Refuse(65001);
    }
    let trusted_app = matches!(c.publisher, Publisher::Verified | Publisher::SameTenant);
    let user_may = c.kind != Kind::AdminOnly
        && c.assignment == Assignment::NotRequired
        && match c.policy {
            UserConsent::None => false,
            UserConsent::Low => c.kind == Kind::LowClassified && trusted_app,
            UserConsent::All => true,
        };
    // Every role may grant delegated permissions for the organisation.
    if c.role != RoleHeld::NoRole {
        return Expect::Prompt { org_option: true, org_required: !user_may };
    }
    if user_may {
        return Expect::Prompt { org_option: false, org_required: false };
    }
    if c.workflow {
        return Expect::Approval(if c.pending { Some(PENDING) } else { None });
    }
    Expect::NeedAdmin
}

fn world_for(c: &Case) -> World {
    let mut w = World::new();
    w.tenant.user_consent = c.policy;
    w.tenant.admin_consent_requests.enabled = c.workflow;
    w.pending = c.pending.then_some(PENDING);
    w.roles = c.role.roles();
    w.prompt = c.prompt;
    match c.publisher {
        Publisher::Verified => {}
        Publisher::SameTenant => {
            w.client.verified_publisher = false;
            w.client.home_tenant_id = TENANT;
        }
        Publisher::Unverified => w.client.verified_publisher = false,
    }
    match c.assignment {
        Assignment::NotRequired => {}
        Assignment::Direct => {
            w.require_assignment();
            w.assign(ALICE, PrincipalType::User, DEFAULT_ACCESS_ROLE_ID);
        }
        Assignment::NestedGroup => {
            w.require_assignment();
            w.assign(ALL_STAFF, PrincipalType::Group, DEFAULT_ACCESS_ROLE_ID);
        }
        Assignment::NotAssigned => {
            w.require_assignment();
            w.assign(BOB, PrincipalType::User, DEFAULT_ACCESS_ROLE_ID);
            w.assign(OTHER_GROUP, PrincipalType::Group, DEFAULT_ACCESS_ROLE_ID);
        }
    }
    let v = c.kind.value();
    match c.grant {
        ExistingGrant::NoGrant => {}
        ExistingGrant::MineOnly => w.grant(ConsentType::Principal, Some(ALICE), GRAPH_SP, &[v]),
        ExistingGrant::Everyone => w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &[v]),
        ExistingGrant::AnotherUser => w.grant(ConsentType::Principal, Some(BOB), GRAPH_SP, &[v]),
    }
    w
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for policy in [UserConsent::None, UserConsent::Low, UserConsent::All] {
        for kind in Kind::ALL {
            for role in RoleHeld::ALL {
                for assignment in Assignment::ALL {
                    for workflow in [false, true] {
                        for pending in [false, true] {
                            for grant in ExistingGrant::ALL {
                                for publisher in [Publisher::Verified, Publisher::SameTenant, Publisher::Unverified] {
                                    for prompt in [Prompt::Default, Prompt::Consent, Prompt::None] {
                                        cases.push(Case {
                                            policy,
                                            kind,
                                            role,
                                            assignment,
                                            workflow,
                                            pending,
                                            grant,
                                            publisher,
                                            prompt,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    cases
}

#[test]
fn table_every_combination_matches_the_oracle() {
    let cases = all_cases();
    assert_eq!(cases.len(), 3 * 4 * 5 * 4 * 2 * 2 * 4 * 3 * 3);
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for c in &cases {
        let w = world_for(c);
        let out = w.sign_in(c.kind.value());
        let expected = oracle(c);
        let ctx = || format!("{c:?}\nexpected {expected:?}, got {:?}\n{:#?}", out.decision, out.rules);
        let v = c.kind.value();
        match (&expected, &out.decision) {
            (Expect::Issue, Decision::Issue { resource_app_id, scopes, roles }) => {
                assert_eq!(*resource_app_id, GRAPH_APP_ID, "{}", ctx());
                assert_eq!(scopes, &vec![v.to_string()], "{}", ctx());
                assert!(roles.is_empty(), "{}", ctx());
            }
            (Expect::Prompt { org_option, org_required }, Decision::PromptConsent { permissions, .. }) => {
                assert_eq!(
                    (org_option, org_required),
                    match &out.decision {
                        Decision::PromptConsent { org_option, org_required, .. } => (org_option, org_required),
                        _ => unreachable!(),
                    },
                    "{}",
                    ctx()
                );
                assert_eq!(values(permissions), vec![v], "{}", ctx());
                assert!(permissions
                    .iter()
                    .all(|p| p.kind == PermissionKind::Delegated && p.resource_sp_id == GRAPH_SP));
                let graph_scope = w.graph.scope(v).unwrap();
                let expected_text = if *org_required {
                    &graph_scope.admin_consent_display_name
                } else {
                    &graph_scope.user_consent_display_name
                };
                assert_eq!(&permissions[0].display_name, expected_text, "{}", ctx());
            }
            (Expect::Approval(existing), Decision::ApprovalRequired { permissions, existing_request }) => {
                assert_eq!(existing, existing_request, "{}", ctx());
                assert_eq!(values(permissions), vec![v], "{}", ctx());
            }
            (Expect::NeedAdmin, Decision::NeedAdminApproval { permissions }) => {
                assert_eq!(values(permissions), vec![v], "{}", ctx());
            }
            (Expect::Refuse(code), Decision::Refuse(e)) => {
                assert_eq!(*code, e.code, "{}", ctx());
                match code {
                    50105 => {
                        assert!(e.message.contains(APP_NAME) && e.message.contains("alice@fabrikam.test"), "{}", ctx());
                        assert!(rule_text(&out, "client.assignment").contains("Alice"), "{}", ctx());
                    }
                    70011 => assert!(e.message.contains(v), "{}", ctx()),
                    65001 => {
                        assert_eq!(e.error, OAuthError::InteractionRequired);
                        assert_eq!(e.suberror, Some("consent_required"));
                    }
                    _ => unreachable!(),
                }
            }
            _ => panic!("mismatch: {}", ctx()),
        }
        // The assignment path is spelled out.
        match c.assignment {
            Assignment::NestedGroup => {
                let t = rule_text(&out, "client.assignment");
                assert!(t.contains("'All Staff'") && t.contains("'Sales'"), "{t}");
            }
            Assignment::Direct => assert!(rule_text(&out, "client.assignment").contains("directly")),
            _ => {}
        }
        *seen.entry(out.decision.kind().to_string()).or_default() += 1;
    }
    // Every decision the sign-in path can reach is reached by the table.
    for kind in ["issue", "prompt_consent", "approval_required", "need_admin_approval", "refuse"] {
        assert!(seen.get(kind).copied().unwrap_or(0) > 0, "{kind} never reached: {seen:?}");
    }
}

/// The same table for admin consent: role × request shape × what the client lists.
#[test]
fn table_admin_consent_roles_and_request_shapes() {
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Shape {
        V1Static,
        V2Default,
        DynamicDelegated,
        DynamicAppValue,
    }
    let mut n = 0;
    for role in RoleHeld::ALL {
        for shape in [Shape::V1Static, Shape::V2Default, Shape::DynamicDelegated, Shape::DynamicAppValue] {
            for graph_app_perms in [true, false] {
                let mut w = World::new();
                w.roles = role.roles();
                if !graph_app_perms {
                    w.client.required[0].application.clear();
                }
                let (scope, static_default) = match shape {
                    Shape::V1Static => ("", true),
                    Shape::V2Default => ("https://graph.microsoft.com/.default", false),
                    Shape::DynamicDelegated => ("User.Read Calendars.Read", false),
                    Shape::DynamicAppValue => ("OnlineMeetings.Read.All", false),
                };
                let out = w.admin(scope, static_default);
                let is_static = matches!(shape, Shape::V1Static | Shape::V2Default);
                let limited = matches!(role, RoleHeld::CloudApp | RoleHeld::AppAdmin);
                let expected: Result<(usize, usize), u32> = if role == RoleHeld::NoRole {
                    Err(90094)
                } else if shape == Shape::DynamicAppValue {
                    Err(70011)
                } else if is_static && graph_app_perms && limited {
                    Err(90094)
                } else if is_static {
                    Ok((4, if graph_app_perms { 3 } else { 1 }))
                } else {
                    Ok((2, 0))
                };
                match (&expected, &out.decision) {
                    // The actor's role is a refusal of its own kind; anything else refuses the request.
                    (Err(90094), Decision::NotPermitted(e)) => assert_eq!(e.code, 90094, "{role:?} {shape:?}"),
                    (Err(code), Decision::Refuse(e)) if *code != 90094 => {
                        assert_eq!(*code, e.code, "{role:?} {shape:?}")
                    }
                    (Ok((d, a)), Decision::PromptAdminConsent { delegated, application }) => {
                        assert_eq!((delegated.len(), application.len()), (*d, *a), "{role:?} {shape:?}");
                        assert!(delegated.iter().all(|p| p.display_name.starts_with("Admin:")
                            || p.resource_app_id == GRAPH_APP_ID && !p.display_name.contains("your")));
                    }
                    _ => panic!("{role:?} {shape:?} {graph_app_perms}: expected {expected:?}, got {:?}", out.decision),
                }
                n += 1;
            }
        }
    }
    assert_eq!(n, 40);
}

// ---------------------------------------------------------------------------------------------
// Refusals, one by one.

#[test]
fn single_org_app_from_another_tenant_is_700016_in_both_flows() {
    let mut w = World::new();
    w.client.sign_in_audience = SignInAudience::SingleOrg;
    let out = w.sign_in("User.Read");
    assert_eq!(refused(&out).code, 700016);
    assert_eq!(out.rules[0].id, "client.audience");
    assert_eq!(out.rules[0].verdict, Verdict::Fail);
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    assert_eq!(refused(&w.admin("", true)).code, 700016);
    // In its home tenant it works.
    w.client.home_tenant_id = TENANT;
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["User.Read"]);
    issued(&w.sign_in("User.Read"));
}

#[test]
fn user_outside_the_tenant_or_disabled_is_refused() {
    let mut w = World::new();
    w.user.tenant_id = VENDOR;
    assert_eq!(refused(&w.sign_in("User.Read")).code, 50020);
    let mut w = World::new();
    w.user.enabled = false;
    assert_eq!(refused(&w.sign_in("User.Read")).code, 50057);
}

#[test]
fn disabled_or_blocked_app_is_7000112_even_with_grants() {
    let mut w = World::new();
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["User.Read"]);
    w.client_sp.as_mut().unwrap().enabled = false;
    let out = w.sign_in("User.Read");
    assert_eq!(refused(&out).code, 7000112);
    assert!(rule_text(&out, "client.service_principal").contains("disabled"));
    // An administrator may still consent; the rule says it stays disabled.
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    let out = w.admin("", true);
    assert!(matches!(out.decision, Decision::PromptAdminConsent { .. }));
    assert!(rule_text(&out, "client.service_principal").contains("7000112"));
}

#[test]
fn unassigned_user_is_50105_naming_app_and_user_even_for_admins() {
    let mut w = World::new();
    w.require_assignment();
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["User.Read"]);
    let out = w.sign_in("User.Read");
    let e = refused(&out);
    assert_eq!(e.code, 50105);
    assert!(e.message.contains(APP_NAME) && e.message.contains("alice@fabrikam.test"));
    let t = rule_text(&out, "client.assignment");
    assert!(t.contains(APP_NAME) && t.contains("Alice"), "{t}");
}

#[test]
fn unknown_resource_is_500011_and_missing_graph_too() {
    let w = World::new();
    let out = w.sign_in("api://nowhere/Read");
    let e = refused(&out);
    assert_eq!(e.code, 500011);
    assert!(e.message.contains("api://nowhere"));
    // A snapshot without Graph cannot serve OIDC scopes.
    let out = w.run("openid", |s| {
        let only_api = [ResourceView { app: &w.api, sp_id: API_SP, low_classified: &[] }];
        decide_sign_in(&ConsentSnapshot { resources: &only_api, ..*s })
    });
    assert_eq!(refused(&out).code, 500011);
}

#[test]
fn unknown_or_application_permission_is_70011_naming_it() {
    let w = World::new();
    let e = refused(&w.sign_in("Mail.Send")).clone();
    assert_eq!((e.code, e.error), (70011, OAuthError::InvalidScope));
    assert!(e.message.contains("Mail.Send"));
    let out = w.sign_in("api://notes-api/Notes.Export");
    let e = refused(&out);
    assert_eq!(e.code, 70011);
    assert!(e.message.contains("Notes.Export") && e.message.contains("application permission"));
    // A value that is both a delegated scope and an app role is the delegated scope.
    assert!(matches!(w.sign_in("Calendars.Read").decision, Decision::PromptConsent { .. }));
}

#[test]
fn default_for_an_unlisted_resource_is_650057() {
    let mut w = World::new();
    let out = w.sign_in("api://other/.default");
    let e = refused(&out);
    assert_eq!((e.code, e.error), (650057, OAuthError::InvalidClient));
    assert!(e.message.contains("api://other") && e.message.contains(&CLIENT_APP.to_string()));
    // Named scopes of an unlisted resource are fine (dynamic consent).
    assert_eq!(prompted(&w.sign_in("api://other/Other.Read")).0, sv!["Other.Read"]);
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    assert_eq!(refused(&w.admin("api://other/.default", false)).code, 650057);
}

#[test]
fn empty_scope_is_900144() {
    let mut w = World::new();
    assert_eq!(refused(&w.sign_in("")).code, 900144);
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    assert_eq!(refused(&w.admin("", false)).code, 900144);
}

#[test]
fn same_resource_named_twice_cannot_mix_default_and_named_scopes() {
    // The parser refuses the plain spelling…
    assert_eq!(ScopeRequest::parse("https://graph.microsoft.com/.default User.Read").unwrap_err().code, 70011);
    // …and the engine the aliased one.
    let w = World::new();
    let out = w.sign_in("https://graph.microsoft.com/.default 00000003-0000-0000-c000-000000000000/User.Read");
    assert_eq!(refused(&out).code, 70011);
    // Aliases with named scopes merge into one resource.
    let out = w.sign_in("User.Read 00000003-0000-0000-c000-000000000000/Calendars.Read");
    assert_eq!(prompted(&out).0, sv!["User.Read", "Calendars.Read"]);
}

// ---------------------------------------------------------------------------------------------
// `.default`, incremental consent and prompt.

#[test]
fn default_prompts_for_the_static_list_only_without_any_grant() {
    let mut w = World::new();
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    let out = w.sign_in("https://graph.microsoft.com/.default");
    let (perms, org_option, org_required) = prompted(&out);
    assert_eq!(perms, vec!["User.Read", "Calendars.Read", "User.Read.All"]);
    assert!(org_option && org_required, "User.Read.All needs the organisation");

    // Any grant for the resource, even a partial one: no prompt, the token carries what exists.
    w.grant(ConsentType::Principal, Some(ALICE), GRAPH_SP, &["User.Read"]);
    let (res, scopes, _) = issued(&w.sign_in("https://graph.microsoft.com/.default"));
    assert_eq!((res, scopes), (GRAPH_APP_ID, sv!["User.Read"]));
    // Including the OIDC scopes next to it.
    issued(&w.sign_in("openid profile offline_access https://graph.microsoft.com/.default"));

    // prompt=consent asks again for the whole static list.
    w.prompt = Prompt::Consent;
    let (perms, ..) = prompted(&w.sign_in("https://graph.microsoft.com/.default"));
    assert_eq!(perms, vec!["User.Read", "Calendars.Read", "User.Read.All"]);
    let (perms, ..) = prompted(&w.sign_in("openid https://graph.microsoft.com/.default"));
    assert_eq!(perms, vec!["User.Read", "Calendars.Read", "User.Read.All", "openid"]);
}

#[test]
fn default_without_grant_includes_the_oidc_scopes() {
    let w = World::new();
    let out = w.sign_in("openid offline_access https://graph.microsoft.com/.default");
    assert_eq!(
        match &out.decision {
            Decision::NeedAdminApproval { permissions } => values(permissions),
            other => panic!("{other:?}"),
        },
        vec!["User.Read", "Calendars.Read", "User.Read.All", "openid", "offline_access"]
    );
}

#[test]
fn a_grant_for_another_resource_does_not_satisfy_default() {
    let mut w = World::new();
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["User.Read"]);
    let (perms, ..) = prompted(&w.sign_in("api://notes-api/.default"));
    assert_eq!(perms, vec!["Notes.Read"]);
    w.grant(ConsentType::Principal, Some(BOB), API_SP, &["Notes.Read"]);
    prompted(&w.sign_in("api://notes-api/.default"));
    w.grant(ConsentType::Principal, Some(ALICE), API_SP, &["Notes.Read"]);
    let (res, scopes, _) = issued(&w.sign_in("api://notes-api/.default"));
    assert_eq!((res, scopes), (API_APP, sv!["Notes.Read"]));
}

#[test]
fn own_app_default_is_an_id_token_only() {
    let mut w = World::new();
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["openid", "profile"]);
    w.assign(ALICE, PrincipalType::User, NOTES_ADMIN_ROLE);
    let (res, scopes, roles) = issued(&w.sign_in("openid profile api://contoso-notes/.default"));
    assert_eq!((res, scopes, roles), (CLIENT_APP, sv![], sv!["Notes.Admin"]));
    let (res, ..) = issued(&w.sign_in(&format!("openid {CLIENT_APP}/.default")));
    assert_eq!(res, CLIENT_APP);
    // The OIDC scopes still need consent.
    let out = w.sign_in("email api://contoso-notes/.default");
    assert_eq!(prompted(&out).0, sv!["email"]);
}

#[test]
fn a_token_for_itself_needs_a_graph_permission_90008() {
    let mut w = World::new();
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["openid", "profile"]);
    w.client.required.retain(|r| r.resource_app_id != GRAPH_APP_ID);
    let out = w.sign_in(&format!("openid {CLIENT_APP}/.default"));
    assert_eq!(refused(&out).code, 90008);
    assert!(rule_text(&out, "scope.own_app").contains("AADSTS90008"));
}

#[test]
fn no_resource_means_graph_and_oidc_scopes_need_consent() {
    let mut w = World::new();
    let (perms, ..) = prompted(&w.sign_in("openid profile"));
    assert_eq!(perms, vec!["profile", "openid"]);
    assert!(rule_text(&w.sign_in("openid"), "scope.resource").contains("Microsoft Graph"));
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["openid", "profile", "User.Read"]);
    let (res, scopes, _) = issued(&w.sign_in("openid profile"));
    assert_eq!((res, scopes), (GRAPH_APP_ID, sv!["openid", "profile", "User.Read"]));
    // OIDC scopes alongside another resource are checked against Graph.
    w.grant(ConsentType::AllPrincipals, None, API_SP, &["Notes.Read"]);
    let (res, scopes, _) = issued(&w.sign_in("openid api://notes-api/Notes.Read"));
    assert_eq!((res, scopes), (API_APP, sv!["Notes.Read"]));
    let (perms, ..) = prompted(&w.sign_in("offline_access api://notes-api/Notes.Read"));
    assert_eq!(perms, vec!["offline_access"]);
}

#[test]
fn incremental_consent_prompts_only_for_new_scopes_and_issues_everything_granted() {
    let mut w = World::new();
    w.grant(ConsentType::Principal, Some(ALICE), GRAPH_SP, &["openid", "User.Read"]);
    let out = w.sign_in("openid User.Read Calendars.Read");
    match &out.decision {
        Decision::PromptConsent { permissions, .. } => {
            assert_eq!(values(permissions), vec!["Calendars.Read"]);
            assert_eq!(permissions[0].display_name, "Read your calendars");
            assert_eq!(permissions[0].resource_display_name, "Microsoft Graph");
            assert!(!permissions[0].admin_consent_required);
        }
        other => panic!("{other:?}"),
    }
    assert!(rule_text(&out, "consent.missing").contains("Calendars.Read"));
    // The organisation grants Calendars.Read; the token carries the union, grant order.
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["Calendars.Read"]);
    let (_, scopes, _) = issued(&w.sign_in("openid User.Read Calendars.Read"));
    assert_eq!(scopes, vec!["Calendars.Read", "openid", "User.Read"]);
    // Asking for less still carries everything granted.
    let (_, scopes, _) = issued(&w.sign_in("User.Read"));
    assert_eq!(scopes.len(), 3);
    // prompt=consent re-asks for exactly what is requested.
    w.prompt = Prompt::Consent;
    assert_eq!(prompted(&w.sign_in("User.Read Calendars.Read")).0, sv!["User.Read", "Calendars.Read"]);
}

#[test]
fn several_resources_prompt_together_and_issue_for_the_first() {
    let mut w = World::new();
    let (perms, ..) = prompted(&w.sign_in("api://notes-api/Notes.Read User.Read offline_access"));
    assert_eq!(perms, vec!["Notes.Read", "User.Read", "offline_access"]);
    w.grant(ConsentType::Principal, Some(ALICE), API_SP, &["Notes.Read"]);
    w.grant(ConsentType::Principal, Some(ALICE), GRAPH_SP, &["User.Read", "offline_access"]);
    let (res, scopes, _) = issued(&w.sign_in("api://notes-api/Notes.Read User.Read offline_access"));
    assert_eq!((res, scopes), (API_APP, sv!["Notes.Read"]));
}

#[test]
fn an_api_pre_authorizes_its_client_for_some_scopes_and_no_more() {
    let mut w = World::new();
    w.api.pre_authorized =
        vec![PreAuthorizedApplication { app_id: CLIENT_APP, permission_ids: vec![Uuid::from_u128(0xa1)] }];
    // Notes.Read needs no consent, even with no grant and prompt=none.
    w.prompt = Prompt::None;
    let out = w.sign_in("api://notes-api/Notes.Read");
    assert_eq!(issued(&out), (API_APP, sv!["Notes.Read"], vec![]));
    assert!(rule_text(&out, "consent.preauthorized").contains("Notes.Read"));
    let (_, scopes, _) = issued(&w.sign_in("api://notes-api/.default"));
    assert_eq!(scopes, sv!["Notes.Read"], ".default carries what is pre-authorized");
    // Another scope of the API still needs consent; another client is not pre-authorized.
    assert_eq!(refused(&w.sign_in("api://notes-api/Notes.ReadWrite.All")).code, 65001);
    w.api.pre_authorized[0].app_id = OTHER_APP;
    assert_eq!(refused(&w.sign_in("api://notes-api/Notes.Read")).code, 65001);
}

#[test]
fn prompt_none_and_token_requests_get_65001_only_when_consent_is_missing() {
    let mut w = World::new();
    w.prompt = Prompt::None;
    let out = w.sign_in("User.Read Calendars.Read");
    let e = refused(&out);
    assert_eq!((e.code, e.error, e.suberror), (65001, OAuthError::InteractionRequired, Some("consent_required")));
    assert!(e.message.contains("User.Read Calendars.Read"));
    assert!(out.rules.iter().any(|r| r.id == "consent.prompt_none"));
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["User.Read", "Calendars.Read"]);
    issued(&w.sign_in("User.Read Calendars.Read"));
    // Revocation bites on the next refresh.
    w.grants.clear();
    assert_eq!(refused(&w.sign_in("User.Read Calendars.Read")).code, 65001);
    // Login and select_account behave as the default prompt.
    for p in [Prompt::Login, Prompt::SelectAccount, Prompt::Default] {
        w.prompt = p;
        prompted(&w.sign_in("User.Read"));
    }
}

#[test]
fn low_setting_needs_low_classification_and_a_verified_or_same_tenant_app() {
    let mut w = World::new();
    w.tenant.user_consent = UserConsent::Low;
    // Verified publisher, low-classified permission.
    assert_eq!(prompted(&w.sign_in("User.Read")), (sv!["User.Read"], false, false));
    assert!(rule_text(&w.sign_in("User.Read"), "consent.user_policy").contains("verified publisher"));
    // Not classified low.
    let out = w.sign_in("Calendars.Read");
    assert!(matches!(out.decision, Decision::NeedAdminApproval { .. }));
    assert!(rule_text(&out, "consent.permission").contains("Calendars.Read is not classified low impact."));
    // Unverified, from another tenant.
    w.client.verified_publisher = false;
    let out = w.sign_in("User.Read");
    assert!(matches!(out.decision, Decision::NeedAdminApproval { .. }));
    assert!(rule_text(&out, "consent.permission").contains("no verified publisher"));
    // Unverified, but registered in this tenant.
    w.client.home_tenant_id = TENANT;
    assert_eq!(prompted(&w.sign_in("User.Read")), (sv!["User.Read"], false, false));
    assert!(rule_text(&w.sign_in("User.Read"), "consent.user_policy").contains("registered in this organisation"));
    // Classification is per resource.
    w.api_low.clear();
    assert!(matches!(w.sign_in("api://notes-api/Notes.Read").decision, Decision::NeedAdminApproval { .. }));
}

#[test]
fn approval_required_shows_the_pending_request() {
    let mut w = World::new();
    w.tenant.user_consent = UserConsent::None;
    w.tenant.admin_consent_requests.enabled = true;
    let out = w.sign_in("Calendars.Read");
    assert_eq!(out.decision, {
        let Decision::ApprovalRequired { permissions, .. } = &out.decision else { panic!() };
        Decision::ApprovalRequired { permissions: permissions.clone(), existing_request: None }
    });
    assert!(rule_text(&out, "consent.workflow").contains("AADSTS90095"));
    w.pending = Some(PENDING);
    let out = w.sign_in("Calendars.Read");
    assert!(matches!(out.decision, Decision::ApprovalRequired { existing_request: Some(PENDING), .. }));
    assert!(rule_text(&out, "consent.workflow").contains(&PENDING.to_string()));
    w.tenant.admin_consent_requests.enabled = false;
    let out = w.sign_in("Calendars.Read");
    assert!(matches!(out.decision, Decision::NeedAdminApproval { .. }));
    assert!(rule_text(&out, "consent.workflow").contains("needs permission to access resources"));
}

#[test]
fn admins_see_the_org_option_and_admin_texts_when_only_org_consent_works() {
    let mut w = World::new();
    w.roles = vec![DirectoryRole::CloudApplicationAdministrator];
    let out = w.sign_in("User.Read.All");
    match &out.decision {
        Decision::PromptConsent { permissions, org_option: true, org_required: true } => {
            assert_eq!(permissions[0].display_name, "Read all users' full profiles");
            assert!(permissions[0].admin_consent_required);
        }
        other => panic!("{other:?}"),
    }
    assert!(rule_text(&out, "consent.admin_role").contains("Cloud Application Administrator"));
    let (_, org_option, org_required) = prompted(&w.sign_in("User.Read"));
    assert!(org_option && !org_required);
}

#[test]
fn service_principal_absent_means_nothing_granted_yet() {
    let mut w = World::new();
    w.client_sp = None;
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["User.Read"]); // stale rows are ignored
    let out = w.sign_in("User.Read");
    assert_eq!(prompted(&out), (sv!["User.Read"], false, false));
    assert!(rule_text(&out, "client.service_principal").contains("no enterprise application"));
    w.prompt = Prompt::None;
    assert_eq!(refused(&w.sign_in("User.Read")).code, 65001);
}

#[test]
fn roles_claim_comes_from_direct_and_group_assignments() {
    let mut w = World::new();
    w.require_assignment();
    w.assign(ALL_STAFF, PrincipalType::Group, NOTES_ADMIN_ROLE);
    w.assign(ALICE, PrincipalType::User, DEFAULT_ACCESS_ROLE_ID);
    w.assign(BOB, PrincipalType::User, NOTES_ADMIN_ROLE);
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["User.Read"]);
    let out = w.sign_in("User.Read");
    let (_, _, roles) = issued(&out);
    assert_eq!(roles, vec!["Notes.Admin"]);
    assert!(rule_text(&out, "client.assignment").contains("directly"));
}

#[test]
fn grants_naming_removed_scopes_are_not_issued() {
    let mut w = World::new();
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["user.read", "Legacy.Scope"]);
    let out = w.sign_in("User.Read");
    let (_, scopes, _) = issued(&out);
    assert_eq!(scopes, vec!["User.Read"]);
    assert!(rule_text(&out, "consent.grants").contains("Legacy.Scope"));
}

// ---------------------------------------------------------------------------------------------
// Admin consent.

#[test]
fn admin_consent_by_a_non_admin_is_refused_with_90094() {
    let w = World::new();
    let out = w.admin("", true);
    let e = not_permitted(&out);
    assert_eq!(e.code, 90094);
    assert!(e.message.contains("only an administrator can grant") && e.message.contains("alice@fabrikam.test"));
    assert_eq!(out.rules[0].id, "consent.admin_role");
}

#[test]
fn admin_consent_static_lists_everything_with_admin_texts() {
    let mut w = World::new();
    w.roles = vec![DirectoryRole::PrivilegedRoleAdministrator];
    for (scope, static_default) in
        [("", true), ("https://graph.microsoft.com/.default", false), ("api://contoso-notes/.default", false)]
    {
        let out = w.admin(scope, static_default);
        let Decision::PromptAdminConsent { delegated, application } = &out.decision else {
            panic!("{:?}", out.decision)
        };
        assert_eq!(values(delegated), vec!["User.Read", "Calendars.Read", "User.Read.All", "Notes.Read"]);
        assert_eq!(values(application), vec!["Calendars.Read", "OnlineMeetings.Read.All", "Notes.Export"]);
        assert_eq!(delegated[1].display_name, "Read user calendars");
        assert_eq!(delegated[3].display_name, "Admin: Notes.Read");
        assert!(application.iter().all(|p| p.kind == PermissionKind::Application && p.admin_consent_required));
        assert_eq!(application[0].id, uuid!("798ee544-9d2d-430c-a058-570e29e34338"));
    }
}

/// What admin consent's explanation says of the enterprise app and of the role (found by
/// mutation testing: the lines were never asserted): a disabled app is noted as staying
/// disabled, the role check for application permissions appears only when some are asked, and
/// "asks for no permission" only when none is.
#[test]
fn admin_consent_explains_the_app_state_and_the_role_check() {
    let mut w = World::new();
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    let out = w.admin("https://graph.microsoft.com/User.Read", false);
    assert!(rule_text(&out, "client.service_principal").contains("is enabled."), "{:#?}", out.rules);
    assert!(rule_text(&out, "consent.admin_role").find("covers every application permission").is_none());
    assert!(rule_text(&out, "consent.grants").find("asks for no permission").is_none(), "{:#?}", out.rules);
    let out = w.admin("", true);
    assert!(rule_text(&out, "consent.admin_role").contains("covers every application permission"), "{:#?}", out.rules);
    w.client_sp.as_mut().unwrap().enabled = false;
    let out = w.admin("https://graph.microsoft.com/User.Read", false);
    assert!(rule_text(&out, "client.service_principal").contains("is disabled; consent does not enable it"));
}

/// What the organisation already granted, as admin consent's explanation counts it: every
/// permission asked (delegated and application), or some, by name — an app role granted to the
/// app on another resource, or to another app, does not count.
#[test]
fn admin_consent_counts_what_is_already_granted() {
    let mut w = World::new();
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    let role = |value: &str| w.graph.app_role(value).unwrap().id;
    let (calendars, meetings) = (role("Calendars.Read"), role("OnlineMeetings.Read.All"));
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["User.Read", "Calendars.Read", "User.Read.All"]);
    w.app_grants.push(app_role_grant(GRAPH_SP, calendars));
    w.app_grants.push(app_role_grant(API_SP, meetings)); // the right role id, another resource
    let mut elsewhere = app_role_grant(GRAPH_SP, meetings);
    elsewhere.principal_id = Uuid::from_u128(0xe15e);
    w.app_grants.push(elsewhere); // the right role, another app
    let graph_default = "https://graph.microsoft.com/.default";
    let some = rule_text(&w.admin(graph_default, false), "consent.grants");
    assert!(
        some.contains("Already granted to 'Contoso Notes' for the organisation: User.Read, Calendars.Read, User.Read.All, Calendars.Read (application)."),
        "{some}"
    );
    w.app_grants.push(app_role_grant(GRAPH_SP, meetings));
    // `.default` asks for the whole static list, the Notes API's permissions too.
    w.grant(ConsentType::AllPrincipals, None, API_SP, &["Notes.Read"]);
    let export = w.api.app_role("Notes.Export").unwrap().id;
    w.app_grants.push(app_role_grant(API_SP, export));
    let all = rule_text(&w.admin(graph_default, false), "consent.grants");
    assert!(all.contains("Every one of these permissions is already granted"), "{all}");
}

#[test]
fn admin_consent_dynamic_scopes_grant_delegated_only() {
    let mut w = World::new();
    w.roles = vec![DirectoryRole::ApplicationAdministrator];
    let out = w.admin("openid profile User.Read api://notes-api/Notes.ReadWrite.All", false);
    let Decision::PromptAdminConsent { delegated, application } = &out.decision else { panic!("{:?}", out.decision) };
    assert_eq!(values(delegated), vec!["User.Read", "Notes.ReadWrite.All", "profile", "openid"]);
    assert!(application.is_empty());
    let e = refused(&w.admin("api://notes-api/Notes.Export", false)).clone();
    assert_eq!(e.code, 70011);
    assert!(e.message.contains("Notes.Export") && e.message.contains("/.default"));
    assert_eq!(refused(&w.admin("Nope.Nothing", false)).code, 70011);
    assert_eq!(refused(&w.admin("api://nowhere/X", false)).code, 500011);
}

#[test]
fn cloud_app_admin_cannot_grant_graph_app_roles_but_may_grant_other_app_roles() {
    for role in [DirectoryRole::CloudApplicationAdministrator, DirectoryRole::ApplicationAdministrator] {
        let mut w = World::new();
        w.roles = vec![role];
        let out = w.admin("", true);
        let e = not_permitted(&out);
        assert_eq!(e.code, 90094);
        assert!(e.message.contains(role.display_name()));
        assert!(e.message.contains("Calendars.Read (application)") && e.message.contains("OnlineMeetings.Read.All"));
        assert!(rule_text(&out, "consent.admin_role").contains("cannot grant Microsoft Graph application permissions"));
        // Without Graph app roles in the static list, the API's app role is fine.
        w.client.required[0].application.clear();
        let Decision::PromptAdminConsent { application, .. } = w.admin("", true).decision else { panic!() };
        assert_eq!(values(&application), vec!["Notes.Export"]);
        // Holding a stronger role as well lifts the limit.
        w.client.required[0].application.push("Calendars.Read".into());
        w.roles.push(DirectoryRole::GlobalAdministrator);
        assert!(matches!(w.admin("", true).decision, Decision::PromptAdminConsent { .. }));
    }
}

#[test]
fn admin_consent_notes_what_is_already_granted() {
    let mut w = World::new();
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["User.Read"]);
    w.grant(ConsentType::Principal, Some(ALICE), GRAPH_SP, &["Calendars.Read"]);
    w.app_grants.push(AppRoleAssignment {
        tenant_id: TENANT,
        id: Uuid::from_u128(0x7777),
        principal_id: CLIENT_SP.into(),
        principal_type: PrincipalType::ServicePrincipal,
        resource_sp_id: API_SP,
        app_role_id: Uuid::from_u128(0xa3),
        created_at: epoch(),
        expires_at: None,
    });
    let out = w.admin("", true);
    let t = rule_text(&out, "consent.grants");
    assert!(t.contains("User.Read,") && t.contains("Notes.Export of 'Notes API' (application)"), "{t}");
    assert!(!t.contains("Calendars.Read"), "a user's own grant is not the organisation's: {t}");
    let w2 = {
        let mut w2 = World::new();
        w2.roles = vec![DirectoryRole::GlobalAdministrator];
        w2.client.required.clear();
        w2
    };
    let out = w2.admin("", true);
    assert_eq!(out.decision, Decision::PromptAdminConsent { delegated: vec![], application: vec![] });
    assert!(rule_text(&out, "consent.grants").contains("asks for no permission"));
}

#[test]
fn admin_consent_requires_listed_resources_to_exist() {
    let mut w = World::new();
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    w.client.required.push(RequiredResourceAccess {
        resource_app_id: AppId::from_uuid(Uuid::from_u128(0xdead)),
        delegated: vec!["X".into()],
        application: vec![],
    });
    assert_eq!(refused(&w.admin("", true)).code, 500011);
    // Values a resource does not define are ignored, with a note.
    let mut w = World::new();
    w.roles = vec![DirectoryRole::GlobalAdministrator];
    w.client.required[1].delegated.push("Notes.Gone".into());
    w.client.required[1].application.push("Notes.Reader".into()); // a user-only role
    let out = w.admin("", true);
    assert!(matches!(out.decision, Decision::PromptAdminConsent { .. }));
    let t = rule_text(&out, "scope.default");
    assert!(t.contains("Notes.Gone") && t.contains("Notes.Reader (application)"), "{t}");
}

// ---------------------------------------------------------------------------------------------
// Helpers.

#[test]
fn can_grant_for_org_follows_the_role_table() {
    let w = World::new();
    let graph = ResourceView { app: &w.graph, sp_id: GRAPH_SP, low_classified: &[] };
    let api = ResourceView { app: &w.api, sp_id: API_SP, low_classified: &[] };
    let graph_app = PermissionRef::application(&graph, w.graph.app_role("User.Read.All").unwrap());
    let graph_del = PermissionRef::delegated(&graph, w.graph.scope("User.Read.All").unwrap(), Facing::Admin);
    let api_app = PermissionRef::application(&api, &w.api.app_roles[0]);
    use DirectoryRole::*;
    for (roles, expect) in [
        (vec![], [false, false, false]),
        (vec![GlobalAdministrator], [true, true, true]),
        (vec![PrivilegedRoleAdministrator], [true, true, true]),
        (vec![CloudApplicationAdministrator], [false, true, true]),
        (vec![ApplicationAdministrator], [false, true, true]),
        (vec![ApplicationAdministrator, PrivilegedRoleAdministrator], [true, true, true]),
    ] {
        let got = [graph_app.clone(), graph_del.clone(), api_app.clone()].map(|p| can_grant_for_org(&roles, &p));
        assert_eq!(got, expect, "{roles:?}");
    }
    assert!(graph_app.is_graph_application() && !api_app.is_graph_application() && !graph_del.is_graph_application());
}

/// A permission granted twice (for the organisation and by the user) is issued once, and the
/// explanation says which grants were read, that the OpenID scopes need consent, which app
/// roles the user holds, and which granted values the API no longer defines (found by
/// mutation testing: none of this was asserted).
#[test]
fn grants_are_read_once_each_and_the_explanation_says_so() {
    let mut w = World::new();
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["openid", "User.Read"]);
    w.grant(ConsentType::Principal, Some(ALICE), GRAPH_SP, &["User.Read", "Retired.Scope"]);
    // The same permission named twice (as an OpenID scope and by its full name) is asked once.
    let fresh = World::new();
    let (asked, ..) = prompted(&fresh.sign_in("openid https://graph.microsoft.com/openid User.Read"));
    assert_eq!(asked, sv!["openid", "User.Read"], "each once");
    let out = w.sign_in("openid User.Read");
    let (_, scopes, roles) = issued(&out);
    assert_eq!(scopes.iter().filter(|s| s.as_str() == "User.Read").count(), 1, "{scopes:?}");
    assert!(roles.is_empty());
    assert!(rule_text(&out, "scope.oidc").contains("The OpenID Connect scope openid is"), "{:#?}", out.rules);
    assert!(
        !rule_text(&out, "scope.resource").contains("No resource is named"),
        "User.Read names Graph: {:#?}",
        out.rules
    );
    assert!(rule_text(&out, "consent.grants").contains("no longer defines Retired.Scope"), "{:#?}", out.rules);
    assert!(rule_text(&out, "client.roles").is_empty(), "no app role, no line: {:#?}", out.rules);
    // Only OpenID scopes: they are named together, and the resource is Graph by default; an
    // app role held is named.
    w.assign(ALICE, PrincipalType::User, NOTES_ADMIN_ROLE);
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["profile"]);
    let out = w.sign_in("openid profile");
    let oidc = rule_text(&out, "scope.oidc");
    assert!(oidc.contains("The OpenID Connect scopes ") && oidc.contains(" are Microsoft Graph delegated"), "{oidc}");
    assert!(rule_text(&out, "scope.resource").contains("No resource is named"), "{:#?}", out.rules);
    assert!(rule_text(&out, "client.roles").contains("Notes.Admin"), "{:#?}", out.rules);
    // `/.default` at sign-in: a value the client lists that the API does not define is noted
    // and ignored; without one, no such note.
    let out = w.sign_in("api://notes-api/.default");
    assert!(rule_text(&out, "scope.default").find("does not define").is_none(), "{:#?}", out.rules);
    w.client.required[1].delegated.push("Notes.Gone".into());
    let out = w.sign_in("api://notes-api/.default");
    assert!(rule_text(&out, "scope.default").contains("lists Notes.Gone for"), "{:#?}", out.rules);
}

/// A permission's words: its kind's name, its fully qualified scope (the admin-consent
/// response's `scope`), and the user-facing text when the user consents for themselves (the
/// administrator's when the API gave no user text).
#[test]
fn a_permission_is_named_for_whom_it_faces() {
    let w = World::new();
    assert_eq!(
        (PermissionKind::Delegated.as_str(), PermissionKind::Application.as_str()),
        ("Delegated", "Application")
    );
    let graph = ResourceView { app: &w.graph, sp_id: GRAPH_SP, low_classified: &[] };
    let api = ResourceView { app: &w.api, sp_id: API_SP, low_classified: &[] };
    let scope = w.graph.scope("User.Read").unwrap();
    let user = PermissionRef::delegated(&graph, scope, Facing::User);
    let admin = PermissionRef::delegated(&graph, scope, Facing::Admin);
    assert_eq!(user.qualified_scope(), "https://graph.microsoft.com/User.Read");
    assert_eq!(user.display_name, scope.user_consent_display_name);
    assert_eq!(admin.display_name, scope.admin_consent_display_name);
    assert_ne!(user.display_name, admin.display_name, "the fixture's two texts differ");
    let own = &w.api.scopes[0];
    let api_ref = PermissionRef::delegated(&api, own, Facing::User);
    assert_eq!(api_ref.qualified_scope(), format!("{API_APP}/{}", own.value));
    let mut bare = scope.clone();
    bare.user_consent_display_name = String::new();
    let falls_back = PermissionRef::delegated(&graph, &bare, Facing::User);
    assert_eq!(falls_back.display_name, scope.admin_consent_display_name, "no user text: the administrator's");
}

/// The outcome rule — the last line of `accord explain` and of the decision journal — says
/// what was decided, naming the permissions, and passes only when the user goes on (a token,
/// or the administrator's prompt).
#[test]
fn the_outcome_rule_names_the_decision_and_its_permissions() {
    let w = World::new();
    let graph = ResourceView { app: &w.graph, sp_id: GRAPH_SP, low_classified: &[] };
    let read = PermissionRef::delegated(&graph, w.graph.scope("User.Read").unwrap(), Facing::User);
    let all = PermissionRef::application(&graph, w.graph.app_role("User.Read.All").unwrap());
    let issue = |scopes: &[&str], roles: &[&str]| Decision::Issue {
        resource_app_id: GRAPH_APP_ID,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
    };
    let cases = [
        (issue(&[], &[]), Verdict::Pass, "proceeds; the access token carries no delegated permission."),
        (
            issue(&["User.Read", "Mail.Read"], &["Notes.Admin"]),
            Verdict::Pass,
            "proceeds with: User.Read Mail.Read. Roles: Notes.Admin.",
        ),
        (
            Decision::PromptConsent { permissions: vec![read.clone()], org_option: true, org_required: false },
            Verdict::Fail,
            "for User.Read, with the option to consent on behalf of the organisation.",
        ),
        (
            Decision::ApprovalRequired { permissions: vec![read.clone()], existing_request: None },
            Verdict::Fail,
            "(User.Read): the user may request approval.",
        ),
        (Decision::NeedAdminApproval { permissions: vec![read.clone()] }, Verdict::Fail, "(User.Read), AADSTS90094."),
        (
            Decision::PromptAdminConsent { delegated: vec![read.clone()], application: vec![all] },
            Verdict::Pass,
            "for User.Read, User.Read.All (application).",
        ),
        (
            Decision::PromptAdminConsent { delegated: vec![], application: vec![] },
            Verdict::Pass,
            "it asks for no permission.",
        ),
        (Decision::Refuse(Aadsts::account_disabled()), Verdict::Fail, "AADSTS50057"),
        (Decision::NotPermitted(Aadsts::account_disabled()), Verdict::Fail, "to this user: AADSTS50057"),
    ];
    for (decision, verdict, says) in cases {
        let shown = format!("{decision:?}");
        let out = Rules::default().finish(&w.client, decision);
        let last = out.rules.last().unwrap();
        assert_eq!((last.id, last.verdict), ("outcome", verdict), "{shown}");
        assert!(last.text.contains(APP_NAME) && last.text.contains(says), "{shown}: {}", last.text);
    }
}

#[test]
fn user_consentable_reports_each_reason() {
    let mut w = World::new();
    let graph = ResourceView { app: &w.graph, sp_id: GRAPH_SP, low_classified: &[] };
    let read = PermissionRef::delegated(&graph, w.graph.scope("User.Read").unwrap(), Facing::User);
    let all = PermissionRef::delegated(&graph, w.graph.scope("User.Read.All").unwrap(), Facing::User);
    let app_perm = PermissionRef::application(&graph, w.graph.app_role("Calendars.Read").unwrap());
    let low = [read.id];
    let sp = w.client_sp.clone().unwrap();
    let check = |w: &World, sp: &ServicePrincipal, p: &PermissionRef, low: &[Uuid]| {
        user_consentable(&w.tenant, &w.client, Some(sp), low, p)
    };
    assert_eq!(check(&w, &sp, &app_perm, &low), Err(UserConsentBlock::ApplicationPermission));
    assert_eq!(check(&w, &sp, &all, &low), Err(UserConsentBlock::AdminConsentRequired));
    assert_eq!(check(&w, &sp, &read, &low), Ok(()));
    let mut assigned = sp.clone();
    assigned.assignment_required = true;
    assert_eq!(check(&w, &assigned, &read, &low), Err(UserConsentBlock::AssignmentRequired));
    w.tenant.user_consent = UserConsent::None;
    assert_eq!(check(&w, &sp, &read, &low), Err(UserConsentBlock::UserConsentDisabled));
    w.tenant.user_consent = UserConsent::Low;
    assert_eq!(check(&w, &sp, &read, &low), Ok(()));
    assert_eq!(check(&w, &sp, &read, &[]), Err(UserConsentBlock::NotLowImpact));
    w.client.verified_publisher = false;
    assert_eq!(check(&w, &sp, &read, &low), Err(UserConsentBlock::UnverifiedPublisher));
    assert_eq!(
        user_consentable(&w.tenant, &w.client, None, &low, &app_perm),
        Err(UserConsentBlock::ApplicationPermission)
    );
    for block in [
        UserConsentBlock::ApplicationPermission,
        UserConsentBlock::AdminConsentRequired,
        UserConsentBlock::AssignmentRequired,
        UserConsentBlock::UserConsentDisabled,
        UserConsentBlock::NotLowImpact,
        UserConsentBlock::UnverifiedPublisher,
    ] {
        assert!(block.describe(&read, &w.client).contains("User.Read"));
    }
}

#[test]
fn expand_default_resolves_the_static_list() {
    let mut w = World::new();
    w.client.required[0].delegated.push("Gone.Scope".into());
    w.client.required[0].delegated.push("user.read".into()); // duplicate, other case
    let graph = ResourceView { app: &w.graph, sp_id: GRAPH_SP, low_classified: &[] };
    let other = ResourceView { app: &w.other, sp_id: OTHER_SP, low_classified: &[] };
    let stat = expand_default(&w.client, &graph, Facing::User).unwrap();
    assert_eq!(values(&stat.delegated), vec!["User.Read", "Calendars.Read", "User.Read.All"]);
    assert_eq!(values(&stat.application), vec!["Calendars.Read", "OnlineMeetings.Read.All"]);
    assert_eq!(stat.unresolved_delegated, vec!["Gone.Scope"]);
    assert_eq!(stat.delegated[0].display_name, "Sign you in and read your profile");
    assert!(expand_default(&w.client, &other, Facing::User).is_none());
}

#[test]
fn granted_scopes_unions_org_then_own_and_ignores_others() {
    let mut w = World::new();
    w.grant(ConsentType::Principal, Some(ALICE), GRAPH_SP, &["Calendars.Read", "user.read"]);
    w.grant(ConsentType::AllPrincipals, None, GRAPH_SP, &["User.Read"]);
    w.grant(ConsentType::Principal, Some(BOB), GRAPH_SP, &["Mail.Read"]);
    w.grant(ConsentType::Principal, None, GRAPH_SP, &["Broken.Row"]);
    w.grant(ConsentType::AllPrincipals, None, API_SP, &["Notes.Read"]);
    assert_eq!(granted_scopes(&w.grants, CLIENT_SP, GRAPH_SP, ALICE), vec!["User.Read", "Calendars.Read"]);
    assert_eq!(granted_scopes(&w.grants, CLIENT_SP, GRAPH_SP, BOB), vec!["User.Read", "Mail.Read"]);
    assert!(granted_scopes(&w.grants, OTHER_SP, GRAPH_SP, ALICE).is_empty());
}

#[test]
fn is_assigned_prefers_direct_then_the_shortest_chain_and_survives_cycles() {
    let groups = [
        GroupMembership { id: SALES, display_name: "Sales", via: None },
        GroupMembership { id: ALL_STAFF, display_name: "All Staff", via: Some(SALES) },
        GroupMembership { id: OTHER_GROUP, display_name: "Everyone", via: Some(ALL_STAFF) },
    ];
    let mut w = World::new();
    w.assign(OTHER_GROUP, PrincipalType::Group, DEFAULT_ACCESS_ROLE_ID);
    let path = is_assigned(CLIENT_SP, ALICE, &groups, &w.assignments).unwrap();
    let text = path.describe("Alice", APP_NAME);
    assert_eq!(
        text,
        "Alice is assigned to 'Contoso Notes' through the group 'Everyone' (as a member of 'Sales', nested in 'All Staff', nested in 'Everyone')."
    );
    w.assign(SALES, PrincipalType::Group, DEFAULT_ACCESS_ROLE_ID);
    let path = is_assigned(CLIENT_SP, ALICE, &groups, &w.assignments).unwrap();
    assert!(path.describe("Alice", APP_NAME).contains("of which they are a direct member"));
    w.assign(ALICE, PrincipalType::User, DEFAULT_ACCESS_ROLE_ID);
    assert_eq!(is_assigned(CLIENT_SP, ALICE, &groups, &w.assignments), Some(AssignmentPath::Direct));
    // Assignments to another app or a group named like a user do not count.
    assert_eq!(is_assigned(OTHER_SP, ALICE, &groups, &w.assignments), None);
    let mut w = World::new();
    w.assign(ALICE, PrincipalType::Group, DEFAULT_ACCESS_ROLE_ID);
    assert_eq!(is_assigned(CLIENT_SP, ALICE, &groups, &w.assignments), None);
    // A cyclic snapshot terminates.
    let cyclic = [
        GroupMembership { id: SALES, display_name: "Sales", via: Some(ALL_STAFF) },
        GroupMembership { id: ALL_STAFF, display_name: "All Staff", via: Some(SALES) },
    ];
    let mut w = World::new();
    w.assign(SALES, PrincipalType::Group, DEFAULT_ACCESS_ROLE_ID);
    assert!(is_assigned(CLIENT_SP, ALICE, &cyclic, &w.assignments).is_some());
}

/// App roles come only from assignments to this app and to groups the user is in (found by
/// mutation testing): an assignment to a group she is not in, or to another app's service
/// principal under the same role id, gives her nothing. A cyclic snapshot names each group of
/// the way once; of two equally short ways, the first assignment's is named.
#[test]
fn app_roles_and_assignment_paths_come_only_from_the_users_own_groups_and_this_app() {
    let mut w = World::new();
    let roles = |w: &World| user_app_roles(&w.client, CLIENT_SP, ALICE, &w.groups, &w.assignments);
    w.assign(OTHER_GROUP, PrincipalType::Group, NOTES_ADMIN_ROLE);
    assert!(roles(&w).is_empty(), "not a member of Everyone");
    let mut elsewhere = w.assignments[0].clone();
    elsewhere.principal_id = ALICE.as_uuid();
    elsewhere.principal_type = PrincipalType::User;
    elsewhere.resource_sp_id = OTHER_SP;
    w.assignments.push(elsewhere);
    assert!(roles(&w).is_empty(), "the same role id on another app's service principal");
    w.assign(ALL_STAFF, PrincipalType::Group, NOTES_ADMIN_ROLE);
    assert_eq!(roles(&w), sv!["Notes.Admin"], "All Staff, through Sales");

    let cyclic = [
        GroupMembership { id: SALES, display_name: "Sales", via: Some(ALL_STAFF) },
        GroupMembership { id: ALL_STAFF, display_name: "All Staff", via: Some(SALES) },
    ];
    let mut w = World::new();
    w.assign(SALES, PrincipalType::Group, DEFAULT_ACCESS_ROLE_ID);
    let path = is_assigned(CLIENT_SP, ALICE, &cyclic, &w.assignments).unwrap();
    assert_eq!(
        path.describe("Alice", APP_NAME),
        "Alice is assigned to 'Contoso Notes' through the group 'Sales' (as a member of 'All Staff', nested in 'Sales')."
    );
    let two = [
        GroupMembership { id: SALES, display_name: "Sales", via: None },
        GroupMembership { id: OTHER_GROUP, display_name: "Everyone", via: None },
    ];
    let mut w = World::new();
    w.assign(OTHER_GROUP, PrincipalType::Group, DEFAULT_ACCESS_ROLE_ID);
    w.assign(SALES, PrincipalType::Group, DEFAULT_ACCESS_ROLE_ID);
    let path = is_assigned(CLIENT_SP, ALICE, &two, &w.assignments).unwrap();
    assert!(path.describe("Alice", APP_NAME).contains("through the group 'Everyone'"), "the first of two equal ways");
}

/// Scope ids are chosen by whoever registers an API, so two resources may share one: a request
/// naming both is prompted for both (found by mutation testing: the prompt's de-duplication
/// compared ids across resources once a mutant turned its resource check around).
#[test]
fn a_scope_id_shared_by_two_resources_is_prompted_for_each() {
    let mut w = World::new();
    let user_read = w.graph.scope("User.Read").unwrap().id;
    w.api.scopes[0].id = user_read;
    let notes = w.api.scopes[0].value.clone();
    let (asked, ..) = prompted(&w.sign_in(&format!("User.Read api://notes-api/{notes}")));
    assert_eq!(asked, sv!["User.Read", notes], "each resource's permission is asked");
}

/// An app-only token for one resource carries that resource's roles granted to the app, never
/// a grant on another resource that happens to use the same role id (an API registered by
/// anyone may copy Microsoft Graph's role ids); its outcome rule says what it carries.
#[test]
fn app_only_counts_only_grants_on_the_requested_resource() {
    let mut w = World::new();
    let mail = w.graph.app_role("Calendars.Read").unwrap().id;
    w.app_grants = vec![app_role_grant(API_SP, mail)];
    let out = app_only(&w, &w.graph, GRAPH_SP);
    assert_eq!(out.decision, Ok(vec![]), "a grant on the Notes API with a Graph role's id");
    assert!(out.rules.last().unwrap().text.ends_with("it carries no application permission."), "{:?}", out.rules);
    w.app_grants.push(app_role_grant(GRAPH_SP, mail));
    let out = app_only(&w, &w.graph, GRAPH_SP);
    assert_eq!(out.decision, Ok(sv!["Calendars.Read"]));
    assert!(out.rules.last().unwrap().text.ends_with("with: Calendars.Read."), "{:?}", out.rules);
}

#[test]
fn prompt_parses_the_v2_values() {
    assert_eq!(Prompt::parse("consent"), Some(Prompt::Consent));
    assert_eq!(Prompt::parse("none"), Some(Prompt::None));
    assert_eq!(Prompt::parse("select_account"), Some(Prompt::SelectAccount));
    assert_eq!(Prompt::parse("login"), Some(Prompt::Login));
    assert_eq!(Prompt::parse("admin_consent"), None);
    assert_eq!(Prompt::Consent.as_str(), "consent");
}

// ---------------------------------------------------------------------------------------------
// Properties over arbitrary snapshots.

const SCOPE_POOL: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "User.Read",
    "Calendars.Read",
    "User.Read.All",
    "OnlineMeetings.Read.All",
    "Bogus.Scope",
    "https://graph.microsoft.com/.default",
    "00000003-0000-0000-c000-000000000000/Calendars.Read",
    "api://notes-api/Notes.Read",
    "api://notes-api/Notes.ReadWrite.All",
    "api://notes-api/Notes.Export",
    "api://notes-api/.default",
    "api://contoso-notes/.default",
    "api://other/Other.Read",
    "api://other/.default",
    "api://unknown/X",
];

const GRANT_POOL: &[&str] =
    &["openid", "profile", "User.Read", "user.read", "Calendars.Read", "Notes.Read", "Gone.Scope"];

#[derive(Debug, Clone)]
struct Arbitrary {
    policy: u8,
    workflow: bool,
    pending: bool,
    verified: bool,
    same_tenant: bool,
    single_org: bool,
    sp_state: u8,
    roles: Vec<bool>,
    user_elsewhere: bool,
    user_disabled: bool,
    assignments: Vec<(u8, u8)>,
    grants: Vec<(bool, u8, u8, Vec<usize>)>,
    scopes: Vec<usize>,
    prompt: u8,
    static_default: bool,
}

fn arbitrary() -> impl Strategy<Value = Arbitrary> {
    (
        (0u8..3, any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), prop::bool::weighted(0.1)),
        (
            0u8..4,
            prop::collection::vec(prop::bool::weighted(0.2), 4),
            prop::bool::weighted(0.05),
            prop::bool::weighted(0.05),
        ),
        prop::collection::vec((0u8..4, 0u8..3), 0..4),
        prop::collection::vec((any::<bool>(), 0u8..3, 0u8..4, prop::collection::vec(0..GRANT_POOL.len(), 0..4)), 0..5),
        (prop::collection::vec(0..SCOPE_POOL.len(), 0..5), 0u8..5, any::<bool>()),
    )
        .prop_map(|(a, b, assignments, grants, (scopes, prompt, static_default))| Arbitrary {
            policy: a.0,
            workflow: a.1,
            pending: a.2,
            verified: a.3,
            same_tenant: a.4,
            single_org: a.5,
            sp_state: b.0,
            roles: b.1,
            user_elsewhere: b.2,
            user_disabled: b.3,
            assignments,
            grants,
            scopes,
            prompt,
            static_default,
        })
}

fn arbitrary_world(a: &Arbitrary) -> (World, String) {
    let mut w = World::new();
    w.tenant.user_consent = [UserConsent::None, UserConsent::Low, UserConsent::All][a.policy as usize];
    w.tenant.admin_consent_requests.enabled = a.workflow;
    w.pending = a.pending.then_some(PENDING);
    w.client.verified_publisher = a.verified;
    if a.same_tenant {
        w.client.home_tenant_id = TENANT;
    }
    if a.single_org {
        w.client.sign_in_audience = SignInAudience::SingleOrg;
    }
    match a.sp_state {
        0 => w.client_sp = None,
        1 => {}
        2 => w.client_sp.as_mut().unwrap().enabled = false,
        _ => w.require_assignment(),
    }
    w.roles = DirectoryRole::ALL.iter().zip(&a.roles).filter(|(_, on)| **on).map(|(r, _)| *r).collect();
    w.user.tenant_id = if a.user_elsewhere { VENDOR } else { TENANT };
    w.user.enabled = !a.user_disabled;
    for (who, what) in &a.assignments {
        let (principal, kind) = [
            (ALICE.as_uuid(), PrincipalType::User),
            (BOB.as_uuid(), PrincipalType::User),
            (ALL_STAFF.as_uuid(), PrincipalType::Group),
            (OTHER_GROUP.as_uuid(), PrincipalType::Group),
        ][*who as usize];
        let role = [DEFAULT_ACCESS_ROLE_ID, NOTES_ADMIN_ROLE, Uuid::from_u128(0xc2)][*what as usize];
        w.assign(principal, kind, role);
    }
    for (org, who, res, scopes) in &a.grants {
        let principal = [Some(ALICE), Some(BOB), None][*who as usize];
        let resource = [GRAPH_SP, API_SP, OTHER_SP, CLIENT_SP][*res as usize];
        let values: Vec<&str> = scopes.iter().map(|i| GRANT_POOL[*i]).collect();
        let ct = if *org { ConsentType::AllPrincipals } else { ConsentType::Principal };
        w.grant(ct, principal, resource, &values);
    }
    w.prompt =
        [Prompt::Default, Prompt::Login, Prompt::SelectAccount, Prompt::Consent, Prompt::None][a.prompt as usize];
    let scope = a.scopes.iter().map(|i| SCOPE_POOL[*i]).collect::<Vec<_>>().join(" ");
    (w, scope)
}

/// Granted values for (client, resource app, Alice), computed here without the engine.
fn granted_independently(w: &World, resource_app_id: AppId) -> Vec<String> {
    let sp = match resource_app_id {
        id if id == GRAPH_APP_ID => GRAPH_SP,
        id if id == API_APP => API_SP,
        id if id == OTHER_APP => OTHER_SP,
        _ => return Vec::new(),
    };
    if w.client_sp.is_none() {
        return Vec::new();
    }
    w.grants
        .iter()
        .filter(|g| g.client_sp_id == CLIENT_SP && g.resource_sp_id == sp)
        .filter(|g| g.consent_type == ConsentType::AllPrincipals || g.principal_id == Some(ALICE))
        .flat_map(|g| g.scopes.iter().map(|s| s.to_ascii_lowercase()))
        .collect()
}

/// Whom a sign-in refuses whatever is granted, worked out from the arbitrary world without the
/// engine, in Entra's order: an app registered for another organisation only (700016), a user
/// of another tenant (50020), a disabled user (50057), a disabled enterprise app (7000112), an
/// app that requires assignment when Alice is assigned neither directly nor through one of her
/// groups, Sales and All Staff (50105).
fn gate_refusal(a: &Arbitrary) -> Option<u32> {
    let alice_assigned = a.assignments.iter().any(|(who, _)| *who == 0 || *who == 2);
    if a.single_org && !a.same_tenant {
        Some(700016)
    } else if a.user_elsewhere {
        Some(50020)
    } else if a.user_disabled {
        Some(50057)
    } else if a.sp_state == 2 {
        Some(7000112)
    } else if a.sp_state == 3 && !alice_assigned {
        Some(50105)
    } else {
        None
    }
}

/// Who may grant an app's permissions for the organisation, from Entra's role table (not the
/// engine's `can_grant_for_org`): a Global or Privileged Role Administrator anything; an
/// Application or Cloud Application Administrator anything but Microsoft Graph's application
/// permissions.
fn may_grant_for_org(roles: &[DirectoryRole], p: &PermissionRef) -> bool {
    let graph_app_permission = p.resource_app_id == GRAPH_APP_ID && p.kind == PermissionKind::Application;
    roles.iter().any(|r| match r {
        DirectoryRole::GlobalAdministrator | DirectoryRole::PrivilegedRoleAdministrator => true,
        DirectoryRole::ApplicationAdministrator | DirectoryRole::CloudApplicationAdministrator => !graph_app_permission,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn sign_in_refuses_who_may_not_sign_in_whatever_is_granted(a in arbitrary()) {
        let (w, scope) = arbitrary_world(&a);
        if ScopeRequest::parse(&scope).is_err() {
            return Ok(());
        }
        let out = w.run(&scope, decide_sign_in);
        match (gate_refusal(&a), &out.decision) {
            (Some(code), Decision::Refuse(e) | Decision::NotPermitted(e)) => {
                prop_assert_eq!(e.code, code, "{}", e);
            }
            (Some(code), other) => prop_assert!(false, "AADSTS{} expected, the engine decided {:?}", code, other),
            (None, _) => {}
        }
    }

    #[test]
    fn sign_in_never_panics_and_issues_only_granted_scopes(a in arbitrary()) {
        let (w, scope) = arbitrary_world(&a);
        let Ok(request) = ScopeRequest::parse(&scope) else { return Ok(()) };
        let _ = request;
        let out = w.run(&scope, decide_sign_in);
        prop_assert!(!out.rules.is_empty());
        prop_assert_eq!(out.rules.last().unwrap().id, "outcome");
        match &out.decision {
            Decision::Issue { resource_app_id, scopes, roles } => {
                let granted = granted_independently(&w, *resource_app_id);
                for s in scopes {
                    prop_assert!(granted.contains(&s.to_ascii_lowercase()), "{} not granted: {:?}", s, granted);
                }
                if *resource_app_id == CLIENT_APP {
                    prop_assert!(scopes.is_empty());
                }
                prop_assert!(w.client_sp.as_ref().is_none_or(|sp| sp.enabled));
                prop_assert!(roles.iter().all(|r| r == "Notes.Admin"));
            }
            Decision::PromptConsent { permissions, org_option, org_required } => {
                prop_assert!(!permissions.is_empty());
                prop_assert!(w.prompt != Prompt::None);
                prop_assert!(permissions.iter().all(|p| p.kind == PermissionKind::Delegated));
                prop_assert!(!org_required || *org_option);
                prop_assert_eq!(*org_option, !w.roles.is_empty());
            }
            Decision::ApprovalRequired { permissions, existing_request } => {
                prop_assert!(!permissions.is_empty() && w.tenant.admin_consent_requests.enabled && w.roles.is_empty());
                prop_assert_eq!(*existing_request, w.pending);
            }
            Decision::NeedAdminApproval { permissions } => {
                prop_assert!(!permissions.is_empty() && !w.tenant.admin_consent_requests.enabled && w.roles.is_empty());
            }
            Decision::PromptAdminConsent { .. } => prop_assert!(false, "sign-in never prompts for admin consent"),
            Decision::Refuse(e) | Decision::NotPermitted(e) => prop_assert!(e.to_string().starts_with("AADSTS")),
        }
    }

    #[test]
    fn admin_consent_never_panics_and_needs_a_role(a in arbitrary()) {
        let (w, scope) = arbitrary_world(&a);
        if ScopeRequest::parse(&scope).is_err() {
            return Ok(());
        }
        let out = w.run(&scope, |s| decide_admin_consent(s, a.static_default));
        prop_assert!(!out.rules.is_empty());
        prop_assert_eq!(out.rules.last().unwrap().id, "outcome");
        match &out.decision {
            Decision::PromptAdminConsent { delegated, application } => {
                prop_assert!(!w.roles.is_empty());
                prop_assert!(delegated.iter().all(|p| p.kind == PermissionKind::Delegated));
                prop_assert!(application.iter().all(|p| may_grant_for_org(&w.roles, p)), "{:?} for {:?}", application, w.roles);
                if !a.static_default && !scope.contains(".default") {
                    prop_assert!(application.is_empty());
                }
            }
            Decision::Refuse(_) | Decision::NotPermitted(_) => {}
            other => prop_assert!(false, "admin consent cannot decide {:?}", other),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// App-only (client credentials)
// ---------------------------------------------------------------------------------------------

fn app_role_grant(resource_sp: ServicePrincipalId, role: Uuid) -> AppRoleAssignment {
    AppRoleAssignment {
        tenant_id: TENANT,
        id: Uuid::from_u128(role.as_u128() ^ resource_sp.as_uuid().as_u128()),
        principal_id: CLIENT_SP.into(),
        principal_type: PrincipalType::ServicePrincipal,
        resource_sp_id: resource_sp,
        app_role_id: role,
        created_at: epoch(),
        expires_at: None,
    }
}

fn app_only(w: &World, resource: &Application, resource_sp: ServicePrincipalId) -> AppOnlyOutcome {
    let out = decide_app_only(&AppOnlySnapshot {
        tenant: &w.tenant,
        client: &w.client,
        client_sp: w.client_sp.as_ref(),
        resource,
        resource_sp_id: resource_sp,
        app_role_grants: &w.app_grants,
    });
    assert_eq!(out.rules.last().map(|r| r.id), Some("outcome"), "{:?}", out.rules);
    out
}

#[test]
fn app_only_issues_exactly_the_granted_application_permissions_of_the_resource() {
    let mut w = World::new();
    let calendars = w.graph.app_role("Calendars.Read").unwrap().id;
    let export = w.api.app_role("Notes.Export").unwrap().id;
    w.app_grants = vec![
        app_role_grant(GRAPH_SP, calendars),
        app_role_grant(API_SP, export),
        // Default access and a role the resource no longer defines are never issued.
        app_role_grant(GRAPH_SP, DEFAULT_ACCESS_ROLE_ID),
        app_role_grant(GRAPH_SP, Uuid::from_u128(0xdead)),
    ];
    assert_eq!(app_only(&w, &w.graph, GRAPH_SP).decision, Ok(vec!["Calendars.Read".to_string()]));
    assert_eq!(app_only(&w, &w.api, API_SP).decision, Ok(vec!["Notes.Export".to_string()]));
    // Nothing granted on a resource: a token without roles, as Entra issues it.
    let other = app_only(&w, &w.other, OTHER_SP);
    assert_eq!(other.decision, Ok(vec![]));
    assert!(other
        .rules
        .iter()
        .any(|r| r.id == "consent.application" && r.text.contains("holds no application permission")));
}

#[test]
fn app_only_applies_the_audience_and_enterprise_app_rules() {
    // A single-tenant app of another organisation.
    let mut w = World::new();
    w.client.sign_in_audience = SignInAudience::SingleOrg;
    assert_eq!(app_only(&w, &w.graph, GRAPH_SP).decision.unwrap_err().code, 700016);
    // No enterprise app here: no administrator consented.
    let mut w = World::new();
    w.client_sp = None;
    let out = app_only(&w, &w.graph, GRAPH_SP);
    assert_eq!(out.decision.unwrap_err().code, 700016);
    assert!(out.rules.iter().any(|r| r.id == "client.service_principal" && r.verdict == Verdict::Fail));
    // Disabled or blocked by an administrator: refused even with permissions granted.
    let mut w = World::new();
    let calendars = w.graph.app_role("Calendars.Read").unwrap().id;
    w.app_grants = vec![app_role_grant(GRAPH_SP, calendars)];
    w.client_sp.as_mut().unwrap().enabled = false;
    assert_eq!(app_only(&w, &w.graph, GRAPH_SP).decision.unwrap_err().code, 7000112);
}
