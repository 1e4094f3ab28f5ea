//! Tests for scenario parsing and validation.
//!
//! Most tests build a small file in which the offending line carries a `#!` marker comment and
//! assert that exactly one diagnostic is reported, on that line, for the expected key.

use super::*;
use crate::ids::AppId;
use proptest::prelude::*;
use time::macros::datetime;

const FILE: &str = "contoso.toml";

/// The scenario.md example, made self-consistent: the user id is a real GUID, and the user
/// `seller@contoso.test` and the group `Sales Leads` it references are declared.
const SPEC_EXAMPLE_FIXED: &str = r#"
[[tenant]]
id = "6f1c2a4e-2b1d-4c8e-9a57-0d3e5b7c9f10"   # optional GUID; generated (and printed) if absent
display_name = "Contoso"
domains = ["contoso.test"]                    # verified domains; first one is the default
user_consent = "low"                          # "none" | "low" | "all" (see below)

[tenant.admin_consent_requests]               # the admin-consent request workflow (optional)
enabled = true
reviewers = ["admin@contoso.test"]            # UPNs, or "group:<display name>"
expire_after_days = 30
notify_reviewers = true

[[tenant.user]]
upn = "admin@contoso.test"
display_name = "Contoso Administrator"
password = "correct horse battery staple"      # stored hashed, never kept in clear
roles = ["Global Administrator"]               # Entra directory role display names
id = "0e5ad3a4-8a0b-4d4c-9d64-6a3b4f2f7c11"   # optional GUID (object id)

[[tenant.user]]
upn = "seller@contoso.test"
display_name = "Seller"
password = "pw"

[[tenant.group]]
display_name = "Sales Leads"

[[tenant.group]]
display_name = "Sales"
members = ["seller@contoso.test", "group:Sales Leads"]   # users by UPN, nested groups by "group:"

[[tenant.app]]                                 # an app registration homed in this tenant
app_id = "3bcad3f8-39bc-495b-b118-04d692e0bb31"
display_name = "Meeting Insights"
sign_in_audience = "multiple_orgs"             # "single_org" | "multiple_orgs"
redirect_uris = ["https://localhost:9443/auth/callback"]
public_client = false
secrets = ["<client secret>"]                  # stored hashed
verified_publisher = false
identifier_uri = "api://meeting-insights"      # only for apps that expose an API

  [[tenant.app.scope]]                         # delegated permission the app exposes
  value = "Notes.Read"
  admin_consent_required = false
  admin_consent_display_name = "Read notes"
  user_consent_display_name = "Read your notes"

  [[tenant.app.role]]                          # app role (application permission or user role)
  value = "Notes.Read.All"
  allowed_member_types = ["Application"]       # and/or "User"
  display_name = "Read all notes"

  [[tenant.app.required]]                      # what the app asks for (its static permissions)
  resource = "https://graph.microsoft.com"     # identifier URI or app id of the resource
  delegated = ["openid", "profile", "email", "offline_access", "User.Read", "Calendars.Read"]
  application = ["Calendars.Read", "User.Read.All"]

[[tenant.enterprise_app]]                      # this tenant's service principal for an app
app = "3bcad3f8-39bc-495b-b118-04d692e0bb31"
assignment_required = true
enabled = true

[[tenant.grant]]                               # consent that already exists in this tenant
app = "3bcad3f8-39bc-495b-b118-04d692e0bb31"
resource = "https://graph.microsoft.com"
delegated = ["User.Read", "Calendars.Read"]
for = "all"                                    # "all" (admin, on behalf of the organisation) or a UPN
application = []                               # app roles granted to the app itself

[[tenant.assignment]]                          # "Users and groups" of an enterprise app
app = "3bcad3f8-39bc-495b-b118-04d692e0bb31"
principal = "group:Sales"                      # a UPN or "group:<display name>"
role = ""                                      # optional app role value; empty = default access

[[tenant.event]]                               # Office 365 calendar content
owner = "seller@contoso.test"
subject = "Quarterly review"
start = "2026-12-01T09:00:00Z"
end = "2026-12-01T09:30:00Z"
attendees = ["admin@contoso.test"]
online_meeting_url = "https://meet.example/abc"
"#;

/// A small valid tenant; `extra` goes right after `domains` (tenant-level keys), `tail` at the
/// end (new tables, further tenants).
fn base(extra: &str, tail: &str) -> String {
    format!(
        r#"[[tenant]]
id = "6f1c2a4e-2b1d-4c8e-9a57-0d3e5b7c9f10"
display_name = "Contoso"
domains = ["contoso.test"]
{extra}

[[tenant.user]]
upn = "admin@contoso.test"
display_name = "Admin"
password = "pw"
roles = ["Global Administrator"]

[[tenant.user]]
upn = "bob@contoso.test"
display_name = "Bob"
password = "pw"

[[tenant.group]]
display_name = "Sales"
members = ["bob@contoso.test"]

[[tenant.app]]
app_id = "11111111-1111-4111-8111-111111111111"
display_name = "Notes API"
sign_in_audience = "multiple_orgs"
identifier_uri = "api://notes"

  [[tenant.app.scope]]
  value = "Notes.Read"

  [[tenant.app.role]]
  value = "Notes.Read.All"
  allowed_member_types = ["Application"]

  [[tenant.app.role]]
  value = "Notes.Admin"
  allowed_member_types = ["User"]

[[tenant.app]]
app_id = "22222222-2222-4222-8222-222222222222"
display_name = "Internal Tool"

{tail}
"#
    )
}

/// A second tenant, for cross-tenant rules.
const FABRIKAM: &str = r#"
[[tenant]]
id = "a4d8e2f1-7b3c-4e5a-9f60-1c2d3e4f5a6b"
display_name = "Fabrikam"
domains = ["fabrikam.test"]

[[tenant.user]]
upn = "frank@fabrikam.test"
display_name = "Frank"
password = "pw"
"#;

/// The 1-based line carrying the `#!` marker.
fn marker_line(text: &str) -> usize {
    text.lines().position(|l| l.contains("#!")).expect("test text has a #! marker") + 1
}

/// Parses `text` every way, split into its bulk entries (what every caller gets), in one TOML
/// read, and with the entries kept as text (`bulk_as_text`: in memory, and in a file read
/// again), and asserts that they agree, spans and lines included: every test of this file
/// checks the split readings (bulk.rs) against the whole one.
#[track_caller]
fn parse_checked(text: &str) -> Result<Scenario, ScenarioError> {
    let mut options = ParseOptions::now();
    let split = parse_owned(FILE, text.to_string(), &options);
    let whole = parse_whole(FILE, text.to_string(), &options);
    assert_eq!(split, whole, "the split read and the whole read disagree on:\n{text}");
    options.bulk_as_text = true;
    let in_memory = parse_owned(FILE, text.to_string(), &options).map(materialized);
    assert_eq!(in_memory, split, "the entries kept as text disagree on:\n{text}");
    let file = ScratchFile::with(text);
    let in_file = parse_file_text(FILE, text.to_string(), file.open(), &options).map(materialized);
    assert_eq!(in_file, split, "the entries kept in the file disagree on:\n{text}");
    split
}

/// `scenario` with the users and groups that `user_batches` and `group_batches` give put in
/// its tenants, as a scenario read without `bulk_as_text` holds them; the batches each hold
/// at most `BATCH`.
#[track_caller]
fn materialized(mut scenario: Scenario) -> Scenario {
    for t in 0..scenario.tenants.len() {
        let users: Vec<Vec<UserSpec>> = scenario.user_batches(t).map(|b| b.expect("the users read again")).collect();
        let groups: Vec<Vec<GroupSpec>> =
            scenario.group_batches(t).map(|b| b.expect("the groups read again")).collect();
        assert!(users.iter().all(|b| !b.is_empty() && b.len() <= BATCH));
        assert!(groups.iter().all(|b| !b.is_empty() && b.len() <= BATCH));
        let users: Vec<UserSpec> = users.into_iter().flatten().collect();
        assert_eq!(scenario.user_count(t), users.len());
        let groups: Vec<GroupSpec> = groups.into_iter().flatten().collect();
        let names: Vec<&str> = scenario.group_names(t).collect();
        assert_eq!(names, groups.iter().map(|g| g.display_name.as_str()).collect::<Vec<_>>());
        scenario.tenants[t].users = users;
        scenario.tenants[t].groups = groups;
    }
    scenario.bulk = None;
    scenario
}

/// A file of the test's own in the temporary directory, removed when dropped.
struct ScratchFile(std::path::PathBuf);

impl ScratchFile {
    fn with(text: &str) -> ScratchFile {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("accord-scenario-{}-{}.toml", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).expect("a scratch file");
        ScratchFile(path)
    }

    fn open(&self) -> std::fs::File {
        std::fs::File::open(&self.0).expect("the scratch file")
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn diagnostics(text: &str) -> Vec<Diagnostic> {
    match parse_checked(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics,
    }
}

/// Asserts exactly one diagnostic, on the `#!` line, for `key`, whose message contains `fragment`.
#[track_caller]
fn expect_one(text: &str, key: &str, fragment: &str) -> Diagnostic {
    let diags = diagnostics(text);
    assert_eq!(diags.len(), 1, "expected one diagnostic, got {diags:#?}\nin:\n{text}");
    let d = diags.into_iter().next().unwrap();
    assert_eq!(d.file, FILE);
    assert_eq!(d.line, marker_line(text), "wrong line for {d}");
    assert_eq!(d.key, key, "wrong key for {d}");
    assert!(d.message.contains(fragment), "message {:?} lacks {fragment:?}", d.message);
    d
}

#[track_caller]
fn expect_ok(text: &str) -> Scenario {
    match parse_checked(text) {
        Ok(s) => s,
        Err(e) => panic!("expected success, got:\n{e}\nin:\n{text}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Valid files
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_example_parses() {
    let s = expect_ok(SPEC_EXAMPLE_FIXED);
    assert_eq!(s.tenants.len(), 1);
    let t = &s.tenants[0];
    assert_eq!(t.id, Some(uuid::uuid!("6f1c2a4e-2b1d-4c8e-9a57-0d3e5b7c9f10").into()));
    assert_eq!(t.display_name, "Contoso");
    assert_eq!(t.default_domain(), "contoso.test");
    assert_eq!(t.user_consent, UserConsent::Low);
    assert_eq!(
        t.admin_consent_requests,
        AdminConsentRequestSpec {
            enabled: true,
            reviewers: vec![PrincipalRef::User("admin@contoso.test".into())],
            expire_after_days: 30,
            notify_reviewers: true,
        }
    );
    assert_eq!(
        t.users[0],
        UserSpec {
            id: Some(uuid::uuid!("0e5ad3a4-8a0b-4d4c-9d64-6a3b4f2f7c11").into()),
            upn: "admin@contoso.test".into(),
            display_name: "Contoso Administrator".into(),
            password: Some("correct horse battery staple".into()),
            roles: vec![DirectoryRole::GlobalAdministrator],
        }
    );
    assert_eq!(
        t.group("sales").unwrap().members,
        vec![PrincipalRef::User("seller@contoso.test".into()), PrincipalRef::Group("Sales Leads".into())]
    );
    let app = &t.apps[0];
    assert_eq!(app.app_id, uuid::uuid!("3bcad3f8-39bc-495b-b118-04d692e0bb31"));
    assert_eq!(app.sign_in_audience, SignInAudience::MultipleOrgs);
    assert_eq!(app.secrets, vec!["<client secret>".to_string()]);
    assert_eq!(app.identifier_uri.as_deref(), Some("api://meeting-insights"));
    assert_eq!(
        app.scopes,
        vec![ScopeSpec {
            id: None,
            value: "Notes.Read".into(),
            admin_consent_required: false,
            admin_consent_display_name: "Read notes".into(),
            admin_consent_description: String::new(),
            user_consent_display_name: "Read your notes".into(),
            user_consent_description: String::new(),
        }]
    );
    assert_eq!(
        app.roles,
        vec![RoleSpec {
            id: None,
            value: "Notes.Read.All".into(),
            allowed_member_types: vec![MemberType::Application],
            display_name: "Read all notes".into(),
            description: String::new(),
        }]
    );
    assert_eq!(app.required.len(), 1);
    assert_eq!(app.required[0].resource, ResourceRef::MicrosoftGraph);
    assert_eq!(app.required[0].delegated.len(), 6);
    assert_eq!(
        t.enterprise_apps,
        vec![EnterpriseAppSpec { app: app.app_id, assignment_required: true, enabled: true }]
    );
    assert_eq!(
        t.grants,
        vec![GrantSpec {
            app: app.app_id,
            resource: ResourceRef::MicrosoftGraph,
            delegated: vec!["User.Read".into(), "Calendars.Read".into()],
            consent_for: GrantFor::All,
            application: vec![],
            expires_at: None,
        }]
    );
    assert_eq!(
        t.assignments,
        vec![AssignmentSpec {
            app: app.app_id,
            principal: PrincipalRef::Group("Sales".into()),
            role: None,
            expires_at: None
        }]
    );
    assert_eq!(
        t.events,
        vec![EventSpec {
            owner: "seller@contoso.test".into(),
            subject: "Quarterly review".into(),
            start: datetime!(2026-12-01 09:00 UTC),
            relative_start: None,
            end: datetime!(2026-12-01 09:30 UTC),
            attendees: vec!["admin@contoso.test".into()],
            online_meeting_url: Some("https://meet.example/abc".into()),
        }]
    );
    assert_eq!(s.find_app(app.app_id).unwrap().0.display_name, "Contoso");
}

/// The example exactly as printed in scenario.md uses placeholders; all its problems are
/// reported at once.
#[test]
fn spec_example_verbatim_reports_every_placeholder() {
    let verbatim = SPEC_EXAMPLE_FIXED
        .replace("0e5ad3a4-8a0b-4d4c-9d64-6a3b4f2f7c11", "…")
        .replace("[[tenant.user]]\nupn = \"seller@contoso.test\"\ndisplay_name = \"Seller\"\npassword = \"pw\"\n", "")
        .replace("[[tenant.group]]\ndisplay_name = \"Sales Leads\"\n\n", "");
    let diags = diagnostics(&verbatim);
    let keys: Vec<_> = diags.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        ["tenant.user.id", "tenant.group.members", "tenant.group.members", "tenant.event.owner"],
        "{diags:#?}"
    );
    let err = parse(FILE, &verbatim).unwrap_err().to_string();
    assert_eq!(err.lines().count(), 4);
    assert!(err.contains(r#"there is no user "seller@contoso.test" in tenant "Contoso""#));
    assert!(err.contains(r#"there is no group "Sales Leads" in tenant "Contoso""#));
}

#[test]
fn defaults() {
    let s = expect_ok(&base(
        "",
        r#"
[[tenant.enterprise_app]]
app = "11111111-1111-4111-8111-111111111111"

[[tenant.grant]]
app = "11111111-1111-4111-8111-111111111111"
delegated = ["User.Read"]

[[tenant.assignment]]
app = "11111111-1111-4111-8111-111111111111"
principal = "BOB@contoso.test"
"#,
    ));
    let t = &s.tenants[0];
    assert_eq!(t.user_consent, UserConsent::All);
    assert_eq!(t.admin_consent_requests, AdminConsentRequestSpec::default());
    assert!(!t.admin_consent_requests.enabled);
    assert_eq!(t.admin_consent_requests.expire_after_days, 30);
    let tool = &t.apps[1];
    assert_eq!(tool.sign_in_audience, SignInAudience::SingleOrg);
    assert!(!tool.public_client && !tool.verified_publisher);
    assert!(tool.redirect_uris.is_empty() && tool.secrets.is_empty());
    assert_eq!(tool.identifier_uri, None);
    let scope = &t.apps[0].scopes[0];
    assert!(scope.admin_consent_required);
    assert_eq!(scope.admin_consent_display_name, "Notes.Read");
    assert_eq!(scope.user_consent_display_name, "Notes.Read");
    assert_eq!(t.apps[0].roles[0].display_name, "Notes.Read.All");
    assert_eq!(
        t.enterprise_apps[0],
        EnterpriseAppSpec {
            app: uuid::uuid!("11111111-1111-4111-8111-111111111111").into(),
            assignment_required: false,
            enabled: true,
        }
    );
    assert_eq!(t.grants[0].resource, ResourceRef::MicrosoftGraph);
    assert_eq!(t.grants[0].consent_for, GrantFor::All);
    // References are canonicalised to the declared spelling.
    assert_eq!(t.assignments[0].principal, PrincipalRef::User("bob@contoso.test".into()));
    assert_eq!(t.assignments[0].role, None);
}

#[test]
fn empty_file_is_an_empty_world() {
    assert_eq!(expect_ok("").tenants, vec![]);
    assert_eq!(expect_ok("# nothing yet\n").tenants, vec![]);
}

#[test]
fn resources_by_app_id_and_identifier_uri_and_extensions() {
    let s = expect_ok(&base(
        "",
        r#"
[[tenant.app]]
app_id = "33333333-3333-4333-8333-333333333333"
display_name = "Client"
public_client = true
redirect_uris = ["http://localhost:8400/", "http://127.0.0.1/cb"]

  [[tenant.app.scope]]
  id = "44444444-4444-4444-8444-444444444444"
  value = "Client.Own"
  admin_consent_description = "Lets the app act as you"

  [[tenant.app.required]]
  resource = "api://notes"
  delegated = ["Notes.Read"]
  application = ["Notes.Read.All"]

  [[tenant.app.required]]
  resource = "00000003-0000-0000-c000-000000000000"
  delegated = ["User.Read"]

[[tenant.app]]
app_id = "66666666-6666-4666-8666-666666666666"
display_name = "Trailing slash"

  [[tenant.app.required]]
  resource = "https://graph.microsoft.com/"
  delegated = ["User.Read"]

[[tenant.grant]]
app = "33333333-3333-4333-8333-333333333333"
resource = "11111111-1111-4111-8111-111111111111"
delegated = ["Notes.Read"]
for = "bob@contoso.test"

[[tenant.assignment]]
app = "11111111-1111-4111-8111-111111111111"
principal = "group:sales"
role = "Notes.Admin"

[[tenant.event]]
owner = "bob@contoso.test"
subject = "TOML date-times work too"
start = 2026-12-01T09:00:00+01:00
end = 2026-12-01T09:30:00+01:00
"#,
    ));
    let t = &s.tenants[0];
    let client = &t.apps[2];
    let api = AppId::from_uuid(uuid::uuid!("11111111-1111-4111-8111-111111111111"));
    assert_eq!(client.required[0].resource, ResourceRef::App(api));
    assert_eq!(client.required[1].resource, ResourceRef::MicrosoftGraph);
    assert_eq!(t.apps[3].required[0].resource, ResourceRef::MicrosoftGraph);
    assert_eq!(ResourceRef::MicrosoftGraph.app_id(), GRAPH_APP_ID);
    assert_eq!(client.scopes[0].id, Some(uuid::uuid!("44444444-4444-4444-8444-444444444444")));
    assert_eq!(client.scopes[0].user_consent_description, "Lets the app act as you");
    assert_eq!(t.grants[0].resource, ResourceRef::App(api));
    assert_eq!(t.grants[0].consent_for, GrantFor::User("bob@contoso.test".into()));
    assert_eq!(t.assignments[0].principal, PrincipalRef::Group("Sales".into()));
    assert_eq!(t.assignments[0].role.as_deref(), Some("Notes.Admin"));
    assert_eq!(t.events[0].start, datetime!(2026-12-01 08:00 UTC));
}

#[test]
fn multi_tenant_app_usable_from_other_tenants() {
    let s = expect_ok(&base(
        "",
        &format!(
            r#"{FABRIKAM}
[[tenant.enterprise_app]]
app = "11111111-1111-4111-8111-111111111111"
assignment_required = true

[[tenant.assignment]]
app = "11111111-1111-4111-8111-111111111111"
principal = "frank@fabrikam.test"

[[tenant.grant]]
app = "11111111-1111-4111-8111-111111111111"
delegated = ["openid", "Calendars.Read"]
application = ["Calendars.Read"]
"#
        ),
    ));
    assert_eq!(s.tenants[1].enterprise_apps.len(), 1);
    assert_eq!(s.tenants[1].grants[0].application, vec!["Calendars.Read"]);
}

#[test]
fn transitive_group_cycles_are_allowed() {
    let s = expect_ok(&base(
        "",
        r#"
[[tenant.group]]
display_name = "A"
members = ["group:B"]

[[tenant.group]]
display_name = "B"
members = ["group:A", "group:Sales"]
"#,
    ));
    assert_eq!(s.tenants[0].groups.len(), 3);
}

#[test]
fn demo_world_parses() {
    let text = include_str!("../../../accord-server/src/demo_world.toml");
    // Loaded on Thursday 3 December 2026: "this week" is Monday 30 November.
    let s = match parse_with("demo_world.toml", text, &ParseOptions::at(datetime!(2026-12-03 15:00 UTC))) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let names: Vec<_> = s.tenants.iter().map(|t| t.display_name.as_str()).collect();
    assert_eq!(names, ["Jiminny Demo Vendor", "Contoso", "Fabrikam"]);

    let app_id = AppId::from_uuid(uuid::uuid!("3bcad3f8-39bc-495b-b118-04d692e0bb31"));
    let (home, app) = s.find_app(app_id).unwrap();
    assert_eq!(home.default_domain(), "vendor.test");
    assert_eq!(app.display_name, "Meeting Insights");
    assert_eq!(app.sign_in_audience, SignInAudience::MultipleOrgs);
    assert_eq!(app.secrets, vec!["demo-vendor-secret-change-me".to_string()]);
    assert_eq!(
        app.redirect_uris,
        ["https://localhost:9443/auth/callback", "https://localhost:9443/admin-consent/callback"]
    );
    assert_eq!(app.required[0].resource, ResourceRef::MicrosoftGraph);
    assert_eq!(
        app.required[0].delegated,
        ["openid", "profile", "email", "offline_access", "User.Read", "Calendars.Read", "OnlineMeetings.Read"]
    );
    assert_eq!(app.required[0].application, ["Calendars.Read", "User.Read.All"]);

    let contoso = &s.tenants[1];
    assert_eq!(contoso.id, Some(uuid::uuid!("6f1c2a4e-2b1d-4c8e-9a57-0d3e5b7c9f10").into()));
    assert_eq!(contoso.user_consent, UserConsent::Low);
    assert!(contoso.admin_consent_requests.enabled);
    assert!(!contoso.admin_consent_requests.reviewers.is_empty());
    // Nothing is granted to Meeting Insights yet (the guide's story starts there); only
    // Contoso's own room-booking service holds its application permission.
    assert_eq!(contoso.grants.len(), 1);
    assert_eq!(contoso.grants[0].app, AppId::from(uuid::uuid!("5e7c1a9d-3f2b-4c6e-8a14-9b0d2e4f6a72")));
    assert_eq!(contoso.grants[0].application, ["Calendars.ReadWrite"]);
    let roles_of = |t: &TenantSpec, r: DirectoryRole| t.users.iter().filter(|u| u.roles.contains(&r)).count();
    assert_eq!(roles_of(contoso, DirectoryRole::GlobalAdministrator), 1);
    assert_eq!(roles_of(contoso, DirectoryRole::CloudApplicationAdministrator), 1);
    assert!(contoso.group("Sales").unwrap().members.contains(&PrincipalRef::Group("Sales Leads".into())));
    // "low": the sign-in permissions are classified low; Meeting Insights stays unverified and
    // homed elsewhere (the approval story), Contoso Expenses is homed in Contoso (self-consent).
    assert_eq!(
        contoso.classifications,
        [ClassificationSpec {
            resource: ResourceRef::MicrosoftGraph,
            low: ["openid", "profile", "email", "offline_access", "User.Read"].map(String::from).to_vec(),
        }]
    );
    assert!(!app.verified_publisher);
    let (expenses_home, expenses) = s.find_app(uuid::uuid!("5e7c1a9d-3f2b-4c6e-8a14-9b0d2e4f6a71").into()).unwrap();
    assert_eq!(expenses_home.display_name, "Contoso");
    assert_eq!(expenses.display_name, "Contoso Expenses");
    assert_eq!(expenses.sign_in_audience, SignInAudience::SingleOrg);
    assert_eq!(expenses.redirect_uris, ["https://localhost:9444/callback"]);
    assert_eq!(expenses.secrets.len(), 1);
    assert_eq!(expenses.required[0].resource, ResourceRef::MicrosoftGraph);
    let low = &contoso.classifications[0].low;
    assert!(expenses.required[0].delegated.iter().all(|p| low.contains(p)), "Expenses asks only for low permissions");
    assert!(
        app.required[0].delegated.iter().any(|p| !low.contains(p)),
        "Meeting Insights asks for more than the low permissions"
    );

    let fabrikam = &s.tenants[2];
    assert_eq!(fabrikam.user_consent, UserConsent::All);
    assert_ne!(fabrikam.id, contoso.id);
    assert_eq!(roles_of(fabrikam, DirectoryRole::GlobalAdministrator), 1);
    assert_eq!(fabrikam.grants.len(), 1);
    let g = &fabrikam.grants[0];
    assert_eq!((g.app, g.resource, &g.consent_for), (app_id, ResourceRef::MicrosoftGraph, &GrantFor::All));
    let mut granted = g.delegated.clone();
    granted.sort();
    assert_eq!(granted, ["Calendars.Read", "User.Read", "email", "offline_access", "openid", "profile"]);

    // A realistic working week in the present: 3-5 meetings this week for a few users, and their
    // recurring meetings again the next week; Fabrikam's on Berlin time.
    assert_eq!(s.relative_times, RelativeTimes::Move);
    let week_start = datetime!(2026-11-30 00:00 UTC) - time::Duration::hours(1);
    let next_week = datetime!(2026-12-07 00:00 UTC) - time::Duration::hours(1);
    let week_end = datetime!(2026-12-12 00:00 UTC);
    for t in [contoso, fabrikam] {
        assert!(t.events.iter().all(|e| e.start >= week_start && e.end <= week_end && e.relative_start.is_some()));
        assert!(t.events.iter().any(|e| e.online_meeting_url.is_some()));
        let mut owners: Vec<_> = t.events.iter().map(|e| e.owner.as_str()).collect();
        owners.dedup();
        assert!(owners.len() >= 3, "{owners:?}");
        for o in &owners {
            let this_week = t.events.iter().filter(|e| e.owner == *o && e.start < next_week).count();
            let later = t.events.iter().filter(|e| e.owner == *o && e.start >= next_week).count();
            assert!((3..=5).contains(&this_week), "{o} has {this_week} meetings this week");
            assert!(later >= 1, "{o} has no meeting next week");
        }
    }
    let kick_off = fabrikam.events.iter().find(|e| e.subject == "Monday kick-off").unwrap();
    assert_eq!(kick_off.start, datetime!(2026-11-30 09:00 +01:00));
    let alice_pipeline: Vec<_> =
        contoso.events.iter().filter(|e| e.subject == "Weekly sales pipeline review").map(|e| e.start).collect();
    assert_eq!(alice_pipeline, [datetime!(2026-11-30 09:00 UTC), datetime!(2026-12-07 09:00 UTC)]);
    // Meeting Insights' redirect URIs follow the vendor_url variable.
    let options = ParseOptions {
        variables: vec![("vendor_url".into(), "https://localhost:50123".into())],
        ..ParseOptions::at(datetime!(2026-12-03 15:00 UTC))
    };
    let moved = parse_with("demo_world.toml", text, &options).unwrap();
    assert_eq!(
        moved.find_app(app_id).unwrap().1.redirect_uris,
        ["https://localhost:50123/auth/callback", "https://localhost:50123/admin-consent/callback"]
    );
    // Every password follows the documented scheme.
    for t in &s.tenants {
        let tenant = t.default_domain().trim_end_matches(".test");
        for u in &t.users {
            let name = u.upn.split('@').next().unwrap();
            let password = u.password.as_deref().expect("every demo account has a password");
            assert_eq!(password, format!("Passw0rd!{tenant}-{name}"));
            assert!(text::line_of(text, text.find(password).unwrap()) < 40, "listed at the top");
        }
    }
}

/// The example in docs/scenarios.md parses.
#[test]
fn docs_example_parses() {
    let doc = include_str!("../../../../docs/scenarios.md");
    let start = doc.find("```toml\n").expect("docs have a toml example") + "```toml\n".len();
    let len = doc[start..].find("```").unwrap();
    let s = expect_ok(&doc[start..start + len]);
    assert_eq!(s.tenants[0].users.len(), 2);
    assert_eq!(s.tenants[0].assignments.len(), 1);
    assert_eq!(s.tenants[0].classifications[0].resource, ResourceRef::MicrosoftGraph);
    assert_eq!(s.tenants[0].classifications[0].low, ["openid", "profile", "offline_access", "User.Read"]);
    // The section's own example parses too.
    let section = doc.find("## `[[tenant.classification]]`").expect("docs describe classifications");
    let start = section + doc[section..].find("```toml\n").unwrap() + "```toml\n".len();
    let len = doc[start..].find("```").unwrap();
    let s = expect_ok(&base("user_consent = \"low\"", &doc[start..start + len]));
    assert_eq!(s.tenants[0].classifications[0].low.len(), 5);
}

// ---------------------------------------------------------------------------------------------
// Syntax, types and unknown keys
// ---------------------------------------------------------------------------------------------

#[test]
fn syntax_errors_report_a_line() {
    let text = "[[tenant]]\ndisplay_name = \"Contoso\ndomains = [\"contoso.test\"]\n";
    let diags = diagnostics(text);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].line, 2);
    assert_eq!(diags[0].key, "tenant.display_name");

    let text = "[[tenant]]\ndisplay_name = \"Contoso\"\ndisplay_name = \"Again\" #!\n";
    let d = expect_one(text, "tenant.display_name", "duplicate key");
    assert!(d.to_string().starts_with("contoso.toml:3: tenant.display_name: "));

    let text = "[[tenant]\n";
    assert_eq!(diagnostics(text)[0].line, 1);

    let text = base("", "[[tenant.group]]\ndisplay_name = \"X\"\nmembers = [\"a\",\n  3, #!\n]");
    expect_one(&text, "tenant.group.members", "expected a string");
}

#[test]
fn entries_and_an_inline_list_of_the_same_tenant_are_refused_both_ways() {
    let text = "[[tenant]]\ndisplay_name = \"Contoso\"\ndomains = [\"contoso.test\"]\n\
                user = [{ upn = \"a@contoso.test\", display_name = \"A\" }]\n\
                [[tenant.user]]\nupn = \"b@contoso.test\"\ndisplay_name = \"B\"\n";
    let options = ParseOptions::now();
    let whole = parse_whole(FILE, text.to_string(), &options).unwrap_err();
    assert_eq!(whole.diagnostics.len(), 1, "TOML itself refuses appending to an inline array: {whole}");
    let split = parse_owned(FILE, text.to_string(), &options).unwrap_err();
    assert_eq!(split.diagnostics.len(), 1, "{split}");
    let d = &split.diagnostics[0];
    assert_eq!((d.line, d.key.as_str()), (5, "tenant.user"), "{d}");
    assert!(d.message.contains("not both"), "{d}");
}

/// Users and groups named in another letter case than declared, in members, reviewers and
/// assignments.
const RESPELLED: &str = r#"
[[tenant]]
display_name = "Contoso"
domains = ["contoso.test"]

[tenant.admin_consent_requests]
enabled = true
reviewers = ["ALICE@contoso.test"]

[[tenant.user]]
upn = "Alice@Contoso.test"
display_name = "Alice"

[[tenant.user]]
upn = "bob@contoso.test"
display_name = "Bob"

[[tenant.group]]
display_name = "Managers"
members = ["alice@CONTOSO.test", "group:sales TEAM", "bob@contoso.test"]

[[tenant.group]]
display_name = "Sales Team"
members = ["Bob@Contoso.Test"]
"#;

#[test]
fn members_named_in_another_case_keep_the_declared_spelling_in_every_reading() {
    // parse_checked compares the readings: the entries read again from the text must take
    // the declared spelling from validation's notes, as the groups kept by a whole read do.
    let s = expect_ok(RESPELLED);
    let t = &s.tenants[0];
    assert_eq!(
        t.groups[0].members,
        vec![
            PrincipalRef::User("Alice@Contoso.test".into()),
            PrincipalRef::Group("Sales Team".into()),
            PrincipalRef::User("bob@contoso.test".into()),
        ]
    );
    assert_eq!(t.groups[1].members, vec![PrincipalRef::User("bob@contoso.test".into())]);
    assert_eq!(t.admin_consent_requests.reviewers, vec![PrincipalRef::User("Alice@Contoso.test".into())]);
}

#[test]
fn entries_kept_in_a_file_that_changes_are_refused_not_mixed() {
    let text = generate::tenant(generate::TenantSize { users: 600, passwords: false });
    let options = ParseOptions { bulk_as_text: true, ..ParseOptions::now() };
    let file = ScratchFile::with(&text);
    let scenario = parse_file_text(FILE, text.clone(), file.open(), &options).expect("valid");
    assert!(scenario.tenants[0].users.is_empty(), "kept in the file, not in the scenario");
    assert_eq!(scenario.user_count(0), 600);

    // Replaced by a new file under the same name: the open file still reads as it was.
    let replacement = ScratchFile::with(&text.replace("User 000123", "User 000124"));
    std::fs::rename(&replacement.0, &file.0).expect("renamed over");
    let users: Vec<UserSpec> = scenario.user_batches(0).flat_map(|b| b.expect("the old file")).collect();
    assert_eq!(users[125].display_name, "User 000123");

    // A file that no longer holds the text it was read from while it is checked: what it
    // holds now is read whole, never a mix.
    let now = text.replace("User 000123", "User 000124");
    let mixed = parse_file_text(FILE, text.clone(), file.open(), &options).expect("valid");
    assert_eq!(mixed, parse_owned(FILE, now.clone(), &ParseOptions::now()).expect("valid"));

    // Written over in place after the check, the same length: the batch that changed is
    // refused, the others read.
    let scenario = parse_file_text(FILE, now.clone(), file.open(), &options).expect("valid");
    std::fs::write(&file.0, now.replace("User 000300", "User 000301")).expect("written over");
    let batches: Vec<_> = scenario.user_batches(0).map(|b| b.is_ok()).collect();
    assert_eq!(batches.len(), 600usize.div_ceil(BATCH));
    assert_eq!(batches, [true, false, true], "the second batch holds user 300 (the third after two others)");
    let e = scenario.user_batches(0).nth(1).unwrap().unwrap_err();
    assert!(e.to_string().starts_with(&format!("{FILE}:1: the file changed while it was being loaded")), "{e}");
}

#[cfg(unix)]
#[test]
fn a_scenario_read_from_a_pipe_is_kept_as_text() {
    // `accord scenario check <(generate)`: the file cannot be read again, so its text is kept.
    let text = generate::tenant(generate::TenantSize { users: 300, passwords: false });
    let options = ParseOptions { bulk_as_text: true, ..ParseOptions::now() };
    let pipe = std::fs::File::open("/dev/null").expect("a file that is not a regular file");
    let scenario = parse_file_text(FILE, text.clone(), pipe, &options).expect("valid");
    assert_eq!(scenario.user_batches(0).map(|b| b.expect("kept").len()).sum::<usize>(), 300);
    assert_eq!(materialized(scenario), parse_owned(FILE, text, &ParseOptions::now()).expect("valid"));
}

#[test]
fn a_large_file_reads_the_same_split_as_whole() {
    // Many entries, several batches, two tenants, users and groups interleaved with other
    // tables: the split reading (bulk.rs) must give exactly the whole reading's scenario.
    let text = generate::tenant(generate::TenantSize { users: 1200, passwords: false });
    let text = format!(
        "{text}\n[[tenant]]\ndisplay_name = \"Second\"\ndomains = [\"second.test\"]\n\
         [[tenant.user]]\nupn = \"x@second.test\"\ndisplay_name = \"X\"\n\
         [[tenant.group]]\ndisplay_name = \"G\"\nmembers = [\"x@second.test\"]\n"
    );
    // The split reading is the one taken (were it to fall back to the whole read, the
    // comparison below would compare the whole read with itself): every entry found, all read.
    let entries = bulk::entries(&text).expect("the generated file is split");
    assert_eq!(entries.len(), 1200 + 120 + 2);
    assert_eq!(entries.iter().filter(|e| e.tenant == 1).count(), 2);
    let read = bulk::read_entries(&text, &entries).expect("every batch reads");
    assert_eq!((read[0].0.len(), read[0].1.len()), (1200, 120));
    let scenario = expect_ok(&text);
    assert_eq!(scenario.tenants.len(), 2);
    assert_eq!(scenario.tenants[0].users.len(), 1200);
    assert_eq!(scenario.tenants[0].groups.len(), 120);
    assert_eq!(scenario.tenants[1].groups[0].members.len(), 1);
}

#[test]
fn type_errors_name_the_key() {
    expect_one(&base("user_consent = 3 #!", ""), "tenant.user_consent", "invalid type");
    expect_one(
        &base("", "[[tenant.enterprise_app]]\napp = \"11111111-1111-4111-8111-111111111111\"\nenabled = \"yes\" #!"),
        "tenant.enterprise_app.enabled",
        "expected a boolean",
    );
    expect_one(
        &base("", "[[tenant.event]]\nowner = \"bob@contoso.test\"\nsubject = \"x\"\nstart = 5 #!\nend = \"2026-12-01T09:00:00Z\""),
        "tenant.event.start",
        "RFC 3339",
    );
}

#[test]
fn missing_required_keys_are_named() {
    let text = base("", "[[tenant.user]] #!\nupn = \"carol@contoso.test\"\npassword = \"pw\"");
    expect_one(&text, "tenant.user.display_name", "missing field `display_name`");
    let text = "[[tenant]] #!\ndisplay_name = \"Contoso\"\n";
    expect_one(text, "tenant.domains", "missing field `domains`");
}

#[test]
fn unknown_keys_are_rejected_at_every_level() {
    let cases: &[(&str, String)] = &[
        ("colour", "colour = \"red\" #!\n".to_string() + &base("", "")),
        ("tenant.colour", base("colour = \"red\" #!", "")),
        (
            "tenant.admin_consent_requests.colour",
            base("[tenant.admin_consent_requests]\nenabled = false\ncolour = 1 #!", ""),
        ),
        (
            "tenant.user.colour",
            base("", "[[tenant.user]]\nupn = \"c@contoso.test\"\ndisplay_name = \"C\"\npassword = \"pw\"\ncolour = 1 #!"),
        ),
        (
            "tenant.group.colour",
            base("", "[[tenant.group]]\ndisplay_name = \"G\"\ncolour = 1 #!"),
        ),
        (
            "tenant.app.colour",
            base("", "[[tenant.app]]\napp_id = \"33333333-3333-4333-8333-333333333333\"\ndisplay_name = \"X\"\ncolour = 1 #!"),
        ),
        ("tenant.app.scope.colour", base("", "[[tenant.app.scope]]\nvalue = \"X\"\ncolour = 1 #!")),
        (
            "tenant.app.role.colour",
            base("", "[[tenant.app.role]]\nvalue = \"X\"\nallowed_member_types = [\"User\"]\ncolour = 1 #!"),
        ),
        ("tenant.app.required.colour", base("", "[[tenant.app.required]]\ncolour = 1 #!")),
        (
            "tenant.enterprise_app.colour",
            base("", "[[tenant.enterprise_app]]\napp = \"11111111-1111-4111-8111-111111111111\"\ncolour = 1 #!"),
        ),
        (
            "tenant.grant.colour",
            base("", "[[tenant.grant]]\napp = \"11111111-1111-4111-8111-111111111111\"\ncolour = 1 #!"),
        ),
        (
            "tenant.assignment.colour",
            base("", "[[tenant.assignment]]\napp = \"11111111-1111-4111-8111-111111111111\"\nprincipal = \"bob@contoso.test\"\ncolour = 1 #!"),
        ),
        (
            "tenant.classification.colour",
            base("", "[[tenant.classification]]\nlow = []\ncolour = 1 #!"),
        ),
        (
            "tenant.event.colour",
            base("", "[[tenant.event]]\nowner = \"bob@contoso.test\"\nsubject = \"x\"\nstart = \"2026-12-01T09:00:00Z\"\nend = \"2026-12-01T09:30:00Z\"\ncolour = 1 #!"),
        ),
        (
            "tenant.user.colour",
            base("", "[[tenant.group]]\ndisplay_name = \"G\"\n\n[[tenant.user]]\nupn = \"c@contoso.test\"\ndisplay_name = \"C\"\npassword = \"pw\"\n# a comment with = and [brackets]\n\"colour\" = 1 #!"),
        ),
    ];
    for (key, text) in cases {
        let d = expect_one(text, key, "unknown field `colour`");
        assert!(d.message.contains("expected"), "{d}");
    }
    // In an inline table.
    let text = base("", "[[tenant.group]]\ndisplay_name = \"G\"\n\n[[tenant.event]]\nowner = \"bob@contoso.test\"\nsubject = \"x\"\nstart = \"2026-12-01T09:00:00Z\"\nend = \"2026-12-01T09:30:00Z\"\n[tenant.nested] #!\ninline = [{ a = 1 }, { b = 2 }]");
    expect_one(&text, "tenant.nested", "unknown field `nested`");
}

// ---------------------------------------------------------------------------------------------
// Tenants
// ---------------------------------------------------------------------------------------------

#[test]
fn tenant_id_must_be_a_guid() {
    let tail = FABRIKAM.replace("id = \"a4d8e2f1-7b3c-4e5a-9f60-1c2d3e4f5a6b\"", "id = \"fabrikam\" #!");
    expect_one(&base("", &tail), "tenant.id", "\"fabrikam\" is not a valid GUID");
}

#[test]
fn tenant_ids_are_unique() {
    let tail = FABRIKAM
        .replace("id = \"a4d8e2f1-7b3c-4e5a-9f60-1c2d3e4f5a6b\"", "id = \"6F1C2A4E-2B1D-4C8E-9A57-0D3E5B7C9F10\" #!");
    expect_one(&base("", &tail), "tenant.id", "used by more than one tenant (first on line 2)");
}

#[test]
fn tenant_display_name_not_empty() {
    let text = "[[tenant]]\ndisplay_name = \" \" #!\ndomains = [\"contoso.test\"]\n";
    expect_one(text, "tenant.display_name", "must not be empty");
}

#[test]
fn domains_not_empty() {
    let text = "[[tenant]]\ndisplay_name = \"X\"\ndomains = [] #!\n";
    expect_one(text, "tenant.domains", "at least one domain is required");
}

#[test]
fn domains_are_dns_names() {
    let text = "[[tenant]]\ndisplay_name = \"X\"\ndomains = [\"x.test\",\n  \"not a domain\", #!\n]\n";
    expect_one(text, "tenant.domains", "\"not a domain\" is not a valid domain name");
    let text = "[[tenant]]\ndisplay_name = \"X\"\ndomains = [\"localhost\"] #!\n";
    expect_one(text, "tenant.domains", "not a valid domain name");
}

#[test]
fn domains_unique_across_tenants() {
    let tail = FABRIKAM.replace("domains = [\"fabrikam.test\"]", "domains = [\"fabrikam.test\", \"Contoso.Test\"] #!");
    expect_one(
        &base("", &tail),
        "tenant.domains",
        "domain \"Contoso.Test\" already belongs to tenant \"Contoso\" (line 4)",
    );
}

#[test]
fn domains_unique_within_a_tenant() {
    let text = "[[tenant]]\ndisplay_name = \"X\"\ndomains = [\"x.test\", \"X.test\"] #!\n";
    expect_one(text, "tenant.domains", "\"X.test\" is listed twice (first on line 3)");
}

#[test]
fn user_consent_values() {
    expect_one(
        &base("user_consent = \"some\" #!", ""),
        "tenant.user_consent",
        "\"some\" is not a valid user consent setting (expected \"none\", \"low\" or \"all\")",
    );
    for v in ["none", "low", "all"] {
        let s = expect_ok(&base(&format!("user_consent = \"{v}\""), ""));
        assert_eq!(s.tenants[0].user_consent.as_str(), v);
    }
}

#[test]
fn admin_consent_request_reviewers_must_exist() {
    expect_one(
        &base("[tenant.admin_consent_requests]\nenabled = true\nreviewers = [\"admin@contoso.test\", \"ghost@contoso.test\"] #!", ""),
        "tenant.admin_consent_requests.reviewers",
        "there is no user \"ghost@contoso.test\" in tenant \"Contoso\"",
    );
    expect_one(
        &base("[tenant.admin_consent_requests]\nenabled = true\nreviewers = [\"group:Reviewers\"] #!", ""),
        "tenant.admin_consent_requests.reviewers",
        "there is no group \"Reviewers\" in tenant \"Contoso\"",
    );
    let s = expect_ok(&base(
        "[tenant.admin_consent_requests]\nenabled = true\nreviewers = [\"group:Sales\", \"Admin@Contoso.test\"]\nexpire_after_days = 7\nnotify_reviewers = false",
        "",
    ));
    assert_eq!(
        s.tenants[0].admin_consent_requests,
        AdminConsentRequestSpec {
            enabled: true,
            reviewers: vec![PrincipalRef::Group("Sales".into()), PrincipalRef::User("admin@contoso.test".into())],
            expire_after_days: 7,
            notify_reviewers: false,
        }
    );
}

#[test]
fn admin_consent_request_workflow_needs_reviewers() {
    expect_one(
        &base("[tenant.admin_consent_requests]\nenabled = true #!", ""),
        "tenant.admin_consent_requests.reviewers",
        "enabled but has no reviewers",
    );
}

#[test]
fn admin_consent_request_expiry_range() {
    expect_one(
        &base("[tenant.admin_consent_requests]\nexpire_after_days = 45 #!", ""),
        "tenant.admin_consent_requests.expire_after_days",
        "must be between 1 and 30 (got 45)",
    );
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

fn user(upn: &str, extra: &str) -> String {
    format!("[[tenant.user]]\nupn = \"{upn}\"\ndisplay_name = \"U\"\npassword = \"pw\"\n{extra}")
}

#[test]
fn upn_syntax() {
    let text = base("", &user("bob\" #!\n#", ""));
    let d = expect_one(&text, "tenant.user.upn", "");
    let line = marker_line(&text);
    assert_eq!(
        d.to_string(),
        format!(
            "contoso.toml:{line}: tenant.user.upn: \"bob\" is not a valid user principal name (expected name@domain)"
        )
    );
    expect_one(&base("", &user("bo b@contoso.test\" #!\n#", "")), "tenant.user.upn", "may contain only letters");
}

#[test]
fn upn_domain_belongs_to_the_tenant() {
    expect_one(
        &base("", &user("carol@fabrikam.test\" #!\n#", "")),
        "tenant.user.upn",
        "the domain of \"carol@fabrikam.test\" is not one of tenant \"Contoso\"'s domains (contoso.test)",
    );
}

#[test]
fn upns_unique_case_insensitively() {
    expect_one(
        &base("", &user("Bob@Contoso.test\" #!\n#", "")),
        "tenant.user.upn",
        "\"Bob@Contoso.test\" is already used by another user (line 14)",
    );
}

#[test]
fn user_ids_are_guids_and_unique() {
    expect_one(&base("", &user("c@contoso.test", "id = \"123\" #!")), "tenant.user.id", "\"123\" is not a valid GUID");
    let id = "id = \"0e5ad3a4-8a0b-4d4c-9d64-6a3b4f2f7c11\"";
    let text = base("", &format!("{}\n{}", user("c@contoso.test", id), user("d@contoso.test", &format!("{id} #!"))));
    expect_one(&text, "tenant.user.id", "used by more than one user");
}

#[test]
fn user_password_and_display_name_not_empty() {
    expect_one(
        &base("", "[[tenant.user]]\nupn = \"c@contoso.test\"\ndisplay_name = \"C\"\npassword = \"\" #!"),
        "tenant.user.password",
        "must not be empty",
    );
    expect_one(
        &base("", "[[tenant.user]]\nupn = \"c@contoso.test\"\ndisplay_name = \"\" #!\npassword = \"pw\""),
        "tenant.user.display_name",
        "must not be empty",
    );
}

#[test]
fn roles_must_be_known() {
    let d = expect_one(
        &base("", &user("c@contoso.test", "roles = [\"Global Admin\"] #!")),
        "tenant.user.roles",
        "\"Global Admin\" is not a known directory role",
    );
    assert!(d.message.contains("\"Cloud Application Administrator\""));
    let s = expect_ok(&base(
        "",
        &user(
            "c@contoso.test",
            "roles = [\"Privileged Role Administrator\", \"Cloud Application Administrator\", \"Application Administrator\"]",
        ),
    ));
    let roles = &s.tenants[0].users[2].roles;
    assert_eq!(roles.len(), 3);
    assert_eq!(roles[1].template_id(), uuid::uuid!("158c047a-c907-4556-b7ef-446551a6b5f7"));
    assert_eq!(
        DirectoryRole::from_template_id(uuid::uuid!("62e90394-69f5-4237-9190-012177145e10")),
        Some(DirectoryRole::GlobalAdministrator)
    );
    assert_eq!(
        DirectoryRole::PrivilegedRoleAdministrator.template_id(),
        uuid::uuid!("e8611ab8-c189-46e8-94e1-60213ab1f814")
    );
    assert_eq!(
        DirectoryRole::ApplicationAdministrator.template_id(),
        uuid::uuid!("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3")
    );
}

#[test]
fn roles_listed_once() {
    expect_one(
        &base("", &user("c@contoso.test", "roles = [\"Global Administrator\", \"Global Administrator\"] #!")),
        "tenant.user.roles",
        "is listed twice",
    );
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

#[test]
fn group_names_unique_per_tenant() {
    expect_one(
        &base("", "[[tenant.group]]\ndisplay_name = \"SALES\" #!"),
        "tenant.group.display_name",
        "group \"SALES\" is already declared in tenant \"Contoso\" (line 19)",
    );
    // Same name in another tenant is fine.
    expect_ok(&base("", &format!("{FABRIKAM}\n[[tenant.group]]\ndisplay_name = \"Sales\"")));
}

#[test]
fn group_members_must_exist_in_the_tenant() {
    expect_one(
        &base("", "[[tenant.group]]\ndisplay_name = \"G\"\nmembers = [\"ghost@contoso.test\"] #!"),
        "tenant.group.members",
        "there is no user \"ghost@contoso.test\" in tenant \"Contoso\"",
    );
    expect_one(
        &base("", &format!("{FABRIKAM}\n[[tenant.group]]\ndisplay_name = \"G\"\nmembers = [\"bob@contoso.test\"] #!")),
        "tenant.group.members",
        "there is no user \"bob@contoso.test\" in tenant \"Fabrikam\"",
    );
    expect_one(
        &base("", "[[tenant.group]]\ndisplay_name = \"G\"\nmembers = [\"group:Nobody\"] #!"),
        "tenant.group.members",
        "there is no group \"Nobody\" in tenant \"Contoso\"",
    );
    expect_one(
        &base("", "[[tenant.group]]\ndisplay_name = \"G\"\nmembers = [\"bob\"] #!"),
        "tenant.group.members",
        "neither a user principal name",
    );
    expect_one(
        &base("", "[[tenant.group]]\ndisplay_name = \"G\"\nmembers = [\"group:\"] #!"),
        "tenant.group.members",
        "\"group:\" must be followed by a group display name",
    );
}

#[test]
fn groups_cannot_contain_themselves() {
    expect_one(
        &base("", "[[tenant.group]]\ndisplay_name = \"G\"\nmembers = [\"group:g\"] #!"),
        "tenant.group.members",
        "group \"G\" cannot be a member of itself",
    );
}

#[test]
fn group_members_listed_once() {
    expect_one(
        &base("", "[[tenant.group]]\ndisplay_name = \"G\"\nmembers = [\"bob@contoso.test\", \"BOB@contoso.test\"] #!"),
        "tenant.group.members",
        "is listed twice",
    );
}

// ---------------------------------------------------------------------------------------------
// Apps
// ---------------------------------------------------------------------------------------------

fn app(app_id: &str, extra: &str) -> String {
    format!("[[tenant.app]]\napp_id = \"{app_id}\"\ndisplay_name = \"App\"\n{extra}")
}

const APP3: &str = "33333333-3333-4333-8333-333333333333";

#[test]
fn app_id_is_a_guid() {
    expect_one(
        &base("", "[[tenant.app]]\napp_id = \"my-app\" #!\ndisplay_name = \"X\""),
        "tenant.app.app_id",
        "\"my-app\" is not a valid GUID",
    );
}

#[test]
fn app_ids_unique_across_the_file() {
    let tail = format!(
        "{FABRIKAM}\n[[tenant.app]]\napp_id = \"11111111-1111-4111-8111-111111111111\" #!\ndisplay_name = \"X\""
    );
    expect_one(&base("", &tail), "tenant.app.app_id", "used by more than one app (first on line 23)");
}

#[test]
fn app_id_is_not_graph() {
    expect_one(
        &base("", "[[tenant.app]]\napp_id = \"00000003-0000-0000-c000-000000000000\" #!\ndisplay_name = \"X\""),
        "tenant.app.app_id",
        "Microsoft Graph's app id",
    );
}

#[test]
fn sign_in_audience_values() {
    expect_one(
        &base("", &app(APP3, "sign_in_audience = \"everyone\" #!")),
        "tenant.app.sign_in_audience",
        "\"everyone\" is not a valid sign-in audience",
    );
}

#[test]
fn redirect_uris_are_absolute_https() {
    expect_one(
        &base("", &app(APP3, "redirect_uris = [\"/callback\"] #!")),
        "tenant.app.redirect_uris",
        "\"/callback\" is not an absolute URL",
    );
    expect_one(
        &base("", &app(APP3, "redirect_uris = [\"http://app.example.com/cb\"] #!")),
        "tenant.app.redirect_uris",
        "allowed only for localhost and 127.0.0.1",
    );
    expect_one(
        &base("", &app(APP3, "redirect_uris = [\"https://app.example.com/cb#frag\"] #!")),
        "tenant.app.redirect_uris",
        "must not contain a fragment",
    );
    expect_one(
        &base("", &app(APP3, "redirect_uris = [\"myapp://auth\"] #!")),
        "tenant.app.redirect_uris",
        "uses the scheme \"myapp\"",
    );
    expect_one(
        &base("", &app(APP3, "redirect_uris = [\"https://a.test/cb\", \"https://a.test/cb\"] #!")),
        "tenant.app.redirect_uris",
        "is listed twice",
    );
}

#[test]
fn certificates_are_pem_and_only_for_confidential_clients() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    let s = expect_ok(&base("", &app(APP3, &format!("certificates = ['''{pem}''']"))));
    assert_eq!(s.tenants[0].apps.last().unwrap().certificates, [pem]);
    expect_one(
        &base("", &app(APP3, "certificates = [\"MIIB\"] #!")),
        "tenant.app.certificates",
        "expected one PEM certificate",
    );
    expect_one(
        &base("", &app(APP3, &format!("public_client = true\ncertificates = [\"{}\"] #!", pem.replace('\n', "\\n")))),
        "tenant.app.certificates",
        "is a public client and cannot have certificates",
    );
}

#[test]
fn spa_redirect_uris_follow_the_redirect_rules_on_their_own_platform() {
    let s = expect_ok(&base("", &app(APP3, "spa_redirect_uris = [\"http://localhost:5173/\"]")));
    assert_eq!(s.tenants[0].apps.last().unwrap().spa_redirect_uris, ["http://localhost:5173/"]);
    expect_one(
        &base("", &app(APP3, "spa_redirect_uris = [\"http://spa.example/\"] #!")),
        "tenant.app.spa_redirect_uris",
        "allowed only for localhost",
    );
    expect_one(
        &base("", &app(APP3, "redirect_uris = [\"https://a.test/\"]\nspa_redirect_uris = [\"https://a.test/\"] #!")),
        "tenant.app.spa_redirect_uris",
        "registered on one platform only",
    );
}

#[test]
fn federated_credentials_are_checked_field_by_field() {
    let fc = |body: &str| app(APP3, &format!("\n[[tenant.app.federated_credential]]\n{body}"));
    let ok = "name = \"github-main\"\nissuer = \"https://token.actions.githubusercontent.com\"\nsubject = \"repo:c/app:ref:refs/heads/main\"";
    let s = expect_ok(&base("", &fc(ok)));
    let spec = &s.tenants[0].apps.last().unwrap().federated_credentials[0];
    assert_eq!(spec.audiences, ["api://AzureADTokenExchange"], "the default audience");
    assert_eq!(spec.subject, "repo:c/app:ref:refs/heads/main");
    expect_one(
        &base("", &fc(&ok.replace("\"github-main\"", "\"-no\" #!"))),
        "tenant.app.federated_credential.name",
        "3 to 120",
    );
    expect_one(
        &base("", &fc(&ok.replace("\"https://token", "\"http://token").replace(".com\"", ".com\" #!"))),
        "tenant.app.federated_credential.issuer",
        "must use https",
    );
    expect_one(
        &base("", &fc(&format!("{ok}\naudiences = [\"a\", \"b\"] #!"))),
        "tenant.app.federated_credential.audiences",
        "exactly one audience",
    );
    expect_one(
        &base("", &fc(&format!("{ok}\njwks = \"{{}}\" #!"))),
        "tenant.app.federated_credential.jwks",
        "\"keys\" array",
    );
    let twice = format!("{}\n\n[[tenant.app.federated_credential]] #!\n{}", fc(ok), ok.replace("github-main", "other"));
    expect_one(&base("", &twice), "tenant.app.federated_credential.subject", "used twice");
}

#[test]
fn public_clients_have_no_secrets() {
    expect_one(
        &base("", &app(APP3, "public_client = true\nsecrets = [\"s3cret\"] #!")),
        "tenant.app.secrets",
        "is a public client and cannot have client secrets",
    );
    expect_one(&base("", &app(APP3, "secrets = [\"\"] #!")), "tenant.app.secrets", "must not be empty");
}

#[test]
fn identifier_uris_valid_and_unique() {
    expect_one(
        &base("", &app(APP3, "identifier_uri = \"notes\" #!")),
        "tenant.app.identifier_uri",
        "not an absolute URI",
    );
    expect_one(
        &base("", &app(APP3, "identifier_uri = \"api://notes\" #!")),
        "tenant.app.identifier_uri",
        "used by more than one app (first on line 26)",
    );
    expect_one(
        &base("", &app(APP3, "identifier_uri = \"https://graph.microsoft.com\" #!")),
        "tenant.app.identifier_uri",
        "Graph's identifier URI",
    );
}

#[test]
fn scope_values_valid_and_unique() {
    expect_one(&base("", "[[tenant.app.scope]]\nvalue = \"\" #!"), "tenant.app.scope.value", "must not be empty");
    expect_one(
        &base("", "[[tenant.app.scope]]\nvalue = \"Read all\" #!"),
        "tenant.app.scope.value",
        "\"Read all\" must not contain spaces",
    );
    expect_one(
        &base("", &app(APP3, "[[tenant.app.scope]]\nvalue = \"A\"\n[[tenant.app.scope]]\nvalue = \"A\" #!")),
        "tenant.app.scope.value",
        "scope \"A\" is declared twice in app \"App\"",
    );
    // The same value in another app is fine.
    expect_ok(&base("", &app(APP3, "[[tenant.app.scope]]\nvalue = \"Notes.Read\"")));
}

#[test]
fn role_values_valid_and_unique() {
    expect_one(
        &base("", "[[tenant.app.role]]\nvalue = \"Notes Admin\" #!\nallowed_member_types = [\"User\"]"),
        "tenant.app.role.value",
        "must not contain spaces",
    );
    let r = "[[tenant.app.role]]\nvalue = \"R\"\nallowed_member_types = [\"User\"]";
    expect_one(
        &base("", &app(APP3, &format!("{r}\n{}", r.replace("\"R\"", "\"R\" #!")))),
        "tenant.app.role.value",
        "app role \"R\" is declared twice",
    );
}

#[test]
fn scope_and_role_ids_are_guids_and_unique() {
    expect_one(
        &base("", "[[tenant.app.scope]]\nid = \"x\" #!\nvalue = \"S\""),
        "tenant.app.scope.id",
        "not a valid GUID",
    );
    let id = "55555555-5555-4555-8555-555555555555";
    expect_one(
        &base(
            "",
            &format!("[[tenant.app.scope]]\nid = \"{id}\"\nvalue = \"S\"\n[[tenant.app.role]]\nid = \"{id}\" #!\nvalue = \"R\"\nallowed_member_types = [\"User\"]"),
        ),
        "tenant.app.role.id",
        "used by more than one scope or role of this app",
    );
}

#[test]
fn allowed_member_types_values() {
    expect_one(
        &base("", "[[tenant.app.role]]\nvalue = \"R\"\nallowed_member_types = [\"Admin\"] #!"),
        "tenant.app.role.allowed_member_types",
        "\"Admin\" is not a valid member type (expected \"Application\" or \"User\")",
    );
    expect_one(
        &base("", "[[tenant.app.role]]\nvalue = \"R\"\nallowed_member_types = [] #!"),
        "tenant.app.role.allowed_member_types",
        "at least one member type is required",
    );
}

#[test]
fn required_resource_must_be_known() {
    expect_one(
        &base("", "[[tenant.app.required]]\nresource = \"api://nothing\" #!\ndelegated = [\"X\"]"),
        "tenant.app.required.resource",
        "\"api://nothing\" is not a known resource",
    );
    expect_one(
        &base("", "[[tenant.app.required]]\nresource = \"https://graph.microsoft.com\"\n[[tenant.app.required]] \nresource = \"00000003-0000-0000-c000-000000000000\" #!"),
        "tenant.app.required.resource",
        "lists this resource twice",
    );
}

#[test]
fn required_graph_permissions_must_exist() {
    expect_one(
        &base("", "[[tenant.app.required]]\ndelegated = [\"User.Read\",\n \"Mail.Read\", #!\n]"),
        "tenant.app.required.delegated",
        "\"Mail.Read\" is not a Microsoft Graph delegated permission",
    );
    expect_one(
        &base("", "[[tenant.app.required]]\napplication = [\"Calendars.ReadBasic\"] #!"),
        "tenant.app.required.application",
        "is a Microsoft Graph delegated permission, not an application one",
    );
    expect_one(
        &base("", "[[tenant.app.required]]\ndelegated = [\"OnlineMeetings.Read.All\"] #!"),
        "tenant.app.required.delegated",
        "is a Microsoft Graph application permission, not a delegated one",
    );
    expect_one(
        &base("", "[[tenant.app.required]]\ndelegated = [\"user.read\"] #!"),
        "tenant.app.required.delegated",
        "not a Microsoft Graph delegated permission",
    );
    expect_one(
        &base("", "[[tenant.app.required]]\ndelegated = [\"User.Read\", \"User.Read\"] #!"),
        "tenant.app.required.delegated",
        "is listed twice",
    );
}

#[test]
fn required_app_permissions_must_be_exposed() {
    let req = |body: &str| base("", &format!("[[tenant.app.required]]\nresource = \"api://notes\"\n{body} #!"));
    expect_one(
        &req("delegated = [\"Notes.Write\"]"),
        "tenant.app.required.delegated",
        "app \"Notes API\" exposes no delegated permission (scope) \"Notes.Write\"",
    );
    expect_one(
        &req("application = [\"Notes.Admin\"]"),
        "tenant.app.required.application",
        "app role \"Notes.Admin\" of app \"Notes API\" is not an application permission",
    );
    expect_one(
        &req("application = [\"Nope\"]"),
        "tenant.app.required.application",
        "app \"Notes API\" has no app role \"Nope\"",
    );
    expect_one(
        &req("application = [\"Notes.Read\"]"),
        "tenant.app.required.application",
        "is a delegated permission of app \"Notes API\"",
    );
    expect_one(
        &req("delegated = [\"Notes.Read.All\"]"),
        "tenant.app.required.delegated",
        "is an app role of app \"Notes API\"",
    );
}

/// A pluggable Graph catalogue replaces the built-in lists.
#[test]
fn graph_catalogue_is_pluggable() {
    struct MailToo;
    impl GraphCatalog for MailToo {
        fn delegated_scope_exists(&self, v: &str) -> bool {
            v == "Mail.Read" || graph_delegated_scope_exists(v)
        }
        fn app_role_exists(&self, v: &str) -> bool {
            graph_app_role_exists(v)
        }
    }
    let text = base("", "[[tenant.app.required]]\ndelegated = [\"Mail.Read\"]");
    assert!(parse(FILE, &text).is_err());
    assert!(parse_with_catalog(FILE, &text, &MailToo).is_ok());
    assert!(BuiltinGraphCatalog.delegated_scope_exists("OnlineMeetings.Read"));
    assert!(BuiltinGraphCatalog.app_role_exists("OnlineMeetings.Read.All"));
}

// ---------------------------------------------------------------------------------------------
// Enterprise apps, grants, assignments
// ---------------------------------------------------------------------------------------------

#[test]
fn enterprise_app_must_reference_an_app() {
    expect_one(
        &base("", &format!("[[tenant.enterprise_app]]\napp = \"{APP3}\" #!")),
        "tenant.enterprise_app.app",
        "no app with app_id 33333333-3333-4333-8333-333333333333 is declared in this file",
    );
    expect_one(
        &base("", "[[tenant.enterprise_app]]\napp = \"Notes API\" #!"),
        "tenant.enterprise_app.app",
        "not a valid GUID",
    );
    expect_one(
        &base("", "[[tenant.enterprise_app]]\napp = \"11111111-1111-4111-8111-111111111111\"\n[[tenant.enterprise_app]]\napp = \"11111111-1111-4111-8111-111111111111\" #!"),
        "tenant.enterprise_app.app",
        "already has an enterprise_app entry",
    );
}

#[test]
fn single_org_apps_only_in_their_home_tenant() {
    // "Internal Tool" (2222…) is single_org in Contoso.
    expect_ok(&base("", "[[tenant.enterprise_app]]\napp = \"22222222-2222-4222-8222-222222222222\""));
    for table in ["enterprise_app", "grant"] {
        let tail = format!("{FABRIKAM}\n[[tenant.{table}]]\napp = \"22222222-2222-4222-8222-222222222222\" #!");
        expect_one(
            &base("", &tail),
            &format!("tenant.{table}.app"),
            "app \"Internal Tool\" is single_org (homed in tenant \"Contoso\") and cannot be used in tenant \"Fabrikam\"",
        );
    }
    let tail = format!("{FABRIKAM}\n[[tenant.assignment]]\napp = \"22222222-2222-4222-8222-222222222222\" #!\nprincipal = \"frank@fabrikam.test\"");
    expect_one(&base("", &tail), "tenant.assignment.app", "is single_org");
}

fn grant(body: &str) -> String {
    base("", &format!("[[tenant.grant]]\napp = \"11111111-1111-4111-8111-111111111111\"\n{body}"))
}

#[test]
fn grant_for_is_all_or_a_user_of_the_tenant() {
    expect_one(
        &grant("for = \"everyone\" #!"),
        "tenant.grant.for",
        "\"everyone\" is neither \"all\" nor a user principal name",
    );
    expect_one(
        &grant("for = \"frank@fabrikam.test\" #!"),
        "tenant.grant.for",
        "there is no user \"frank@fabrikam.test\" in tenant \"Contoso\"",
    );
}

#[test]
fn grant_application_permissions_only_for_all() {
    expect_one(
        &grant("for = \"bob@contoso.test\"\napplication = [\"User.Read.All\"] #!"),
        "tenant.grant.application",
        "application permissions are granted to the app itself",
    );
}

#[test]
fn grant_permissions_must_exist() {
    expect_one(
        &grant("delegated = [\"Files.Read\"] #!"),
        "tenant.grant.delegated",
        "\"Files.Read\" is not a Microsoft Graph delegated permission",
    );
    expect_one(
        &grant("application = [\"User.Read\"] #!"),
        "tenant.grant.application",
        "is a Microsoft Graph delegated permission, not an application one",
    );
    expect_one(
        &grant("resource = \"api://notes\"\ndelegated = [\"Notes.Write\"] #!"),
        "tenant.grant.delegated",
        "exposes no delegated permission (scope) \"Notes.Write\"",
    );
    expect_one(&grant("resource = \"api://none\" #!"), "tenant.grant.resource", "is not a known resource");
}

#[test]
fn grants_not_duplicated() {
    let text = base(
        "",
        "[[tenant.grant]]\napp = \"11111111-1111-4111-8111-111111111111\"\ndelegated = [\"openid\"]\n[[tenant.grant]]\napp = \"11111111-1111-4111-8111-111111111111\" #!\nresource = \"https://graph.microsoft.com\"\nfor = \"all\"",
    );
    expect_one(&text, "tenant.grant.app", "a grant for this app, resource and principal already exists");
}

/// An assignment; the `#!` marker goes on the role line if a role is given, else on the
/// principal line.
fn assignment(principal: &str, role: &str) -> String {
    let (p_mark, r_mark) = if role.is_empty() { (" #!", "") } else { ("", " #!") };
    base(
        "",
        &format!("[[tenant.assignment]]\napp = \"11111111-1111-4111-8111-111111111111\"\nprincipal = \"{principal}\"{p_mark}\nrole = \"{role}\"{r_mark}"),
    )
}

#[test]
fn assignment_principal_must_exist() {
    expect_one(
        &assignment("ghost@contoso.test", ""),
        "tenant.assignment.principal",
        "there is no user \"ghost@contoso.test\"",
    );
    expect_one(&assignment("group:Nobody", ""), "tenant.assignment.principal", "there is no group \"Nobody\"");
}

#[test]
fn assignment_role_must_be_a_user_role_of_the_app() {
    expect_one(
        &assignment("bob@contoso.test", "Nope"),
        "tenant.assignment.role",
        "app \"Notes API\" has no app role \"Nope\"",
    );
    expect_one(
        &assignment("bob@contoso.test", "Notes.Read.All"),
        "tenant.assignment.role",
        "cannot be assigned to users and groups",
    );
    expect_ok(&assignment("bob@contoso.test", "Notes.Admin"));
}

#[test]
fn assignments_not_duplicated() {
    let a = "[[tenant.assignment]]\napp = \"11111111-1111-4111-8111-111111111111\"\nprincipal = \"bob@contoso.test\"";
    expect_one(
        &base("", &format!("{a}\n{a} #!")),
        "tenant.assignment.principal",
        "bob@contoso.test is already assigned to this app",
    );
}

// ---------------------------------------------------------------------------------------------
// Delegated permission classifications (an Accord extension)
// ---------------------------------------------------------------------------------------------

/// A classification entry in Contoso; `body` follows the header.
fn classification(body: &str) -> String {
    base("", &format!("[[tenant.classification]]\n{body}"))
}

/// An app of Contoso that exposes a scope users may consent to (`Expenses.Own`), one that only
/// admins may consent to (`Expenses.Audit`) and an app role.
const EXPENSES: &str = r#"
[[tenant.app]]
app_id = "77777777-7777-4777-8777-777777777777"
display_name = "Expenses"
identifier_uri = "api://expenses"

  [[tenant.app.scope]]
  value = "Expenses.Own"
  admin_consent_required = false

  [[tenant.app.scope]]
  value = "Expenses.Audit"

  [[tenant.app.role]]
  value = "Expenses.All"
  allowed_member_types = ["Application"]
"#;

#[test]
fn classifications_parse() {
    let multi = EXPENSES.replace("\"Expenses\"\n", "\"Expenses\"\nsign_in_audience = \"multiple_orgs\"\n");
    let s = expect_ok(&base(
        "user_consent = \"low\"",
        &format!(
            r#"{multi}
[[tenant.classification]]
low = ["openid", "profile", "email", "offline_access", "User.Read"]

[[tenant.classification]]
resource = "api://expenses"
low = ["Expenses.Own"]
{FABRIKAM}
[[tenant.classification]]
resource = "00000003-0000-0000-c000-000000000000"
low = []

[[tenant.classification]]
resource = "77777777-7777-4777-8777-777777777777"
low = ["Expenses.Own"]
"#
        ),
    ));
    let expenses = ResourceRef::App(uuid::uuid!("77777777-7777-4777-8777-777777777777").into());
    assert_eq!(
        s.tenants[0].classifications,
        vec![
            ClassificationSpec {
                resource: ResourceRef::MicrosoftGraph,
                low: vec![
                    "openid".into(),
                    "profile".into(),
                    "email".into(),
                    "offline_access".into(),
                    "User.Read".into()
                ],
            },
            ClassificationSpec { resource: expenses, low: vec!["Expenses.Own".into()] },
        ]
    );
    // Another tenant may classify the same resources; an empty list is allowed (it removes the
    // resource's classifications at load).
    assert_eq!(
        s.tenants[1].classifications,
        vec![
            ClassificationSpec { resource: ResourceRef::MicrosoftGraph, low: vec![] },
            ClassificationSpec { resource: expenses, low: vec!["Expenses.Own".into()] },
        ]
    );
    // No entries: no classifications.
    assert!(expect_ok(&base("", "")).tenants[0].classifications.is_empty());
}

#[test]
fn classification_resource_must_be_known() {
    expect_one(
        &classification("resource = \"api://nothing\" #!\nlow = [\"X\"]"),
        "tenant.classification.resource",
        "\"api://nothing\" is not a known resource",
    );
    expect_one(
        &classification(&format!("resource = \"{APP3}\" #!\nlow = []")),
        "tenant.classification.resource",
        "\"33333333-3333-4333-8333-333333333333\" is not a known resource",
    );
}

#[test]
fn classification_resource_must_expose_scopes() {
    // "Internal Tool" (2222…) exposes nothing.
    expect_one(
        &classification("resource = \"22222222-2222-4222-8222-222222222222\" #!\nlow = []"),
        "tenant.classification.resource",
        "app \"Internal Tool\" exposes no delegated permissions (scopes), so there is nothing to classify",
    );
}

#[test]
fn classification_resource_single_org_only_at_home() {
    let tail = format!(
        "{EXPENSES}{FABRIKAM}\n[[tenant.classification]]\nresource = \"api://expenses\" #!\nlow = [\"Expenses.Own\"]"
    );
    expect_one(
        &base("", &tail),
        "tenant.classification.resource",
        "app \"Expenses\" is single_org (homed in tenant \"Contoso\") and has no service principal in tenant \"Fabrikam\"",
    );
    // At home it is fine.
    expect_ok(&base(
        "",
        &format!("{EXPENSES}\n[[tenant.classification]]\nresource = \"api://expenses\"\nlow = [\"Expenses.Own\"]"),
    ));
}

#[test]
fn classification_values_are_graph_delegated_permissions() {
    expect_one(
        &classification("low = [\"openid\",\n  \"Mail.Read\", #!\n]"),
        "tenant.classification.low",
        "\"Mail.Read\" is not a Microsoft Graph delegated permission",
    );
    expect_one(
        &classification("low = [\"user.read\"] #!"),
        "tenant.classification.low",
        "\"user.read\" is not a Microsoft Graph delegated permission",
    );
    expect_one(
        &classification("low = [\"OnlineMeetings.Read.All\"] #!"),
        "tenant.classification.low",
        "\"OnlineMeetings.Read.All\" is a Microsoft Graph application permission; only delegated permissions (scopes) can be classified",
    );
    expect_one(
        &classification("resource = \"https://graph.microsoft.com/\"\nlow = [\"User.Read.All\"] #!"),
        "tenant.classification.low",
        "Microsoft Graph's \"User.Read.All\" requires admin consent; only delegated permissions that users can consent to",
    );
}

#[test]
fn classification_values_are_user_consentable_scopes_of_the_app() {
    let cls = |low: &str| {
        base("", &format!("{EXPENSES}\n[[tenant.classification]]\nresource = \"api://expenses\"\nlow = [{low}] #!"))
    };
    expect_ok(&cls("").replace(" #!", ""));
    expect_one(
        &cls("\"Expenses.All\""),
        "tenant.classification.low",
        "\"Expenses.All\" is an app role of app \"Expenses\"; only delegated permissions (scopes) can be classified",
    );
    expect_one(
        &cls("\"Expenses.Write\""),
        "tenant.classification.low",
        "app \"Expenses\" exposes no delegated permission (scope) \"Expenses.Write\"",
    );
    expect_one(
        &cls("\"Expenses.Audit\""),
        "tenant.classification.low",
        "scope \"Expenses.Audit\" of app \"Expenses\" requires admin consent (admin_consent_required defaults to true)",
    );
    // Notes.Read of "Notes API" takes the default admin_consent_required = true.
    expect_one(
        &classification("resource = \"api://notes\"\nlow = [\"Notes.Read\"] #!"),
        "tenant.classification.low",
        "scope \"Notes.Read\" of app \"Notes API\" requires admin consent",
    );
}

#[test]
fn classification_values_listed_once() {
    expect_one(
        &classification("low = [\"openid\", \"profile\", \"openid\"] #!"),
        "tenant.classification.low",
        "\"openid\" is listed twice",
    );
}

#[test]
fn one_classification_entry_per_resource_and_tenant() {
    // Graph by default, then by app id: reported on the second entry's resource line.
    expect_one(
        &classification(
            "low = [\"openid\"]\n\n[[tenant.classification]]\nresource = \"00000003-0000-0000-c000-000000000000\" #!\nlow = [\"profile\"]",
        ),
        "tenant.classification.resource",
        "tenant \"Contoso\" already classifies the permissions of this resource (first on line 43); merge the entries",
    );
    // Graph twice by default: reported on the second entry's header.
    expect_one(
        &classification("low = [\"openid\"]\n\n[[tenant.classification]] #!\nlow = [\"profile\"]"),
        "tenant.classification.resource",
        "already classifies the permissions of this resource (first on line 43)",
    );
    // An app by identifier URI, then by app id.
    let text = base(
        "",
        &format!("{EXPENSES}\n[[tenant.classification]]\nresource = \"api://expenses\"\nlow = []\n[[tenant.classification]]\nresource = \"77777777-7777-4777-8777-777777777777\" #!\nlow = [\"Expenses.Own\"]"),
    );
    expect_one(&text, "tenant.classification.resource", "already classifies the permissions of this resource");
}

#[test]
fn classification_keys() {
    expect_one(
        &classification("low = [\"openid\"]\nmedium = [\"User.Read\"] #!"),
        "tenant.classification.medium",
        "unknown field `medium`, expected `resource` or `low`",
    );
    let text = base("", "[[tenant.classification]] #!\nresource = \"https://graph.microsoft.com\"");
    expect_one(&text, "tenant.classification.low", "missing field `low`");
    expect_one(&classification("low = \"openid\" #!"), "tenant.classification.low", "invalid type");
    expect_one(&classification("resource = 3 #!\nlow = []"), "tenant.classification.resource", "invalid type");
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

fn event(owner: &str, start: &str, end: &str, extra: &str) -> String {
    base(
        "",
        &format!(
            "[[tenant.event]]\nowner = \"{owner}\"\nsubject = \"Sync\"\nstart = \"{start}\"\nend = \"{end}\"\n{extra}"
        ),
    )
}

const T9: &str = "2026-12-01T09:00:00Z";
const T930: &str = "2026-12-01T09:30:00Z";

#[test]
fn event_owner_must_be_a_user_of_the_tenant() {
    expect_one(
        &event("ghost@contoso.test\" #!\n#\"", T9, T930, ""),
        "tenant.event.owner",
        "there is no user \"ghost@contoso.test\" in tenant \"Contoso\"",
    );
}

#[test]
fn event_times_are_rfc3339() {
    expect_one(
        &event("bob@contoso.test", "2026-12-01 09:00\" #!\n#\"", T930, ""),
        "tenant.event.start",
        "\"2026-12-01 09:00\" is neither an RFC 3339 date-time",
    );
    expect_one(
        &base("", "[[tenant.event]]\nowner = \"bob@contoso.test\"\nsubject = \"x\"\nstart = 2026-12-01T09:00:00 #!\nend = \"2026-12-01T09:30:00Z\""),
        "tenant.event.start",
        "with a UTC offset",
    );
}

#[test]
fn event_end_after_start() {
    let text = base(
        "",
        &format!(
            "[[tenant.event]]\nowner = \"bob@contoso.test\"\nsubject = \"x\"\nstart = \"{T930}\"\nend = \"{T9}\" #!"
        ),
    );
    expect_one(&text, "tenant.event.end", "must be after the start");
    let text = base(
        "",
        &format!("[[tenant.event]]\nowner = \"bob@contoso.test\"\nsubject = \"x\"\nstart = \"{T9}\"\nend = \"2026-12-01T10:00:00+01:00\" #!"),
    );
    expect_one(&text, "tenant.event.end", "must be after the start");
}

#[test]
fn event_attendees_are_email_like() {
    expect_one(
        &event("bob@contoso.test", T9, T930, "attendees = [\"admin@contoso.test\", \"Bob Smith\"] #!"),
        "tenant.event.attendees",
        "\"Bob Smith\" is not an e-mail address",
    );
}

#[test]
fn event_subject_and_meeting_url() {
    expect_one(
        &base("", "[[tenant.event]]\nowner = \"bob@contoso.test\"\nsubject = \"\" #!\nstart = \"2026-12-01T09:00:00Z\"\nend = \"2026-12-01T09:30:00Z\""),
        "tenant.event.subject",
        "must not be empty",
    );
    expect_one(
        &event("bob@contoso.test", T9, T930, "online_meeting_url = \"meet me\" #!"),
        "tenant.event.online_meeting_url",
        "must not contain spaces",
    );
}

// ---------------------------------------------------------------------------------------------
// Collection of errors
// ---------------------------------------------------------------------------------------------

#[test]
fn all_semantic_errors_are_collected_in_line_order() {
    let text = base(
        "user_consent = \"maybe\"",
        "[[tenant.event]]\nowner = \"ghost@contoso.test\"\nsubject = \"x\"\nstart = \"2026-12-01T09:00:00Z\"\nend = \"2026-12-01T08:00:00Z\"\n\n[[tenant.user]]\nupn = \"bob\"\ndisplay_name = \"B\"\npassword = \"pw\"",
    );
    let err = parse(FILE, &text).unwrap_err();
    let summary: Vec<_> = err.diagnostics.iter().map(|d| (d.line, d.key.as_str())).collect();
    assert_eq!(
        summary,
        [(5, "tenant.user_consent"), (44, "tenant.event.owner"), (47, "tenant.event.end"), (50, "tenant.user.upn"),]
    );
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 4);
    assert!(shown.starts_with("contoso.toml:5: tenant.user_consent: \"maybe\""));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Renders a generated world as TOML.
#[derive(Debug, Clone)]
struct GenTenant {
    users: usize,
    groups: usize,
    apps: Vec<(bool, usize, usize)>, // (multi-tenant, scopes, roles)
    events: usize,
    consent: usize,
    /// A Graph classification with this many low values (of [`GEN_GRAPH_LOW`]), if any.
    graph_low: Option<usize>,
}

/// Graph permissions the generator classifies low, in order.
const GEN_GRAPH_LOW: &[&str] = &["openid", "profile", "email", "offline_access", "User.Read"];

fn gen_tenant() -> impl Strategy<Value = GenTenant> {
    (
        1usize..5,
        0usize..4,
        prop::collection::vec((any::<bool>(), 0usize..3, 0usize..3), 0..3),
        0usize..4,
        0usize..3,
        prop::option::of(0usize..=GEN_GRAPH_LOW.len()),
    )
        .prop_map(|(users, groups, apps, events, consent, graph_low)| GenTenant {
            users,
            groups,
            apps,
            events,
            consent,
            graph_low,
        })
}

/// How many classification entries [`render`] writes for each tenant: Graph's, plus one per app
/// with a user-consentable scope (`S1.Read`, so at least two scopes) that is homed in the tenant
/// or is a multi-tenant app of an earlier tenant.
fn expected_classifications(tenants: &[GenTenant]) -> Vec<usize> {
    let mut earlier_multi = 0;
    tenants
        .iter()
        .map(|t| {
            let own = t.apps.iter().filter(|(_, scopes, _)| *scopes >= 2).count();
            let n = usize::from(t.graph_low.is_some()) + own + earlier_multi;
            earlier_multi += t.apps.iter().filter(|(multi, scopes, _)| *multi && *scopes >= 2).count();
            n
        })
        .collect()
}

fn render(tenants: &[GenTenant], seed: u32, name: &str) -> String {
    let mut out = String::new();
    let mut app_no = 0u32;
    let mut multi: Vec<String> = Vec::new();
    // Multi-tenant apps exposing the user-consentable scope S1.Read, by identifier URI.
    let mut classifiable_multi: Vec<String> = Vec::new();
    for (ti, t) in tenants.iter().enumerate() {
        let mut classifiable = classifiable_multi.clone();
        let domain = format!("{name}{ti}.test");
        let consent = ["none", "low", "all"][t.consent];
        out += &format!(
            "[[tenant]]\nid = \"{}\"\ndisplay_name = \"{name} {ti}\"\ndomains = [\"{domain}\", \"alt-{domain}\"]\nuser_consent = \"{consent}\"\n\n",
            Uuid::from_u128(((seed as u128) << 32) | (ti as u128 + 1))
        );
        out += &format!(
            "[tenant.admin_consent_requests]\nenabled = true\nreviewers = [\"u0@{domain}\"]\nexpire_after_days = {}\n\n",
            1 + (seed % 30)
        );
        for u in 0..t.users {
            out += &format!(
                "[[tenant.user]]\nupn = \"u{u}@{domain}\"\ndisplay_name = \"User {u}\"\npassword = \"pw {seed}\"\nroles = [\"{}\"]\nid = \"{}\"\n\n",
                KNOWN_ROLES[u % KNOWN_ROLES.len()].display_name(),
                Uuid::from_u128(((seed as u128) << 64) | ((ti as u128) << 16) | (u as u128 + 1))
            );
        }
        for g in 0..t.groups {
            let nested = if g > 0 { format!(", \"group:Group {}\"", g - 1) } else { String::new() };
            out += &format!(
                "[[tenant.group]]\ndisplay_name = \"Group {g}\"\nmembers = [\"u{}@{domain}\"{nested}]\n\n",
                g % t.users
            );
        }
        for (multi_tenant, scopes, roles) in &t.apps {
            app_no += 1;
            let app_id = Uuid::from_u128(((seed as u128) << 96) | app_no as u128);
            out += &format!(
                "[[tenant.app]]\napp_id = \"{app_id}\"\ndisplay_name = \"App {app_no}\"\nsign_in_audience = \"{}\"\nredirect_uris = [\"https://app{app_no}.{domain}/cb\", \"http://localhost:{}/cb\"]\nsecrets = [\"s{seed}\"]\nidentifier_uri = \"api://{name}-app-{app_no}\"\n\n",
                if *multi_tenant { "multiple_orgs" } else { "single_org" },
                1000 + app_no
            );
            for s in 0..*scopes {
                out += &format!(
                    "  [[tenant.app.scope]]\n  value = \"S{s}.Read\"\n  admin_consent_required = {}\n\n",
                    s % 2 == 0
                );
            }
            for r in 0..*roles {
                out += &format!("  [[tenant.app.role]]\n  value = \"R{r}.All\"\n  allowed_member_types = [\"Application\", \"User\"]\n\n");
            }
            out += "  [[tenant.app.required]]\n  delegated = [\"openid\", \"User.Read\"]\n  application = [\"User.Read.All\"]\n\n";
            if *scopes > 0 || *roles > 0 {
                out += &format!("  [[tenant.app.required]]\n  resource = \"api://{name}-app-{app_no}\"\n  delegated = [{}]\n  application = [{}]\n\n",
                    (0..*scopes).map(|s| format!("\"S{s}.Read\"")).collect::<Vec<_>>().join(", "),
                    (0..*roles).map(|r| format!("\"R{r}.All\"")).collect::<Vec<_>>().join(", "));
            }
            out += &format!("[[tenant.enterprise_app]]\napp = \"{app_id}\"\nassignment_required = true\n\n");
            out += &format!(
                "[[tenant.assignment]]\napp = \"{app_id}\"\nprincipal = \"u0@{domain}\"\nrole = \"{}\"\n\n",
                if *roles > 0 { "R0.All" } else { "" }
            );
            if *multi_tenant {
                multi.push(app_id.to_string());
            }
            if *scopes >= 2 {
                classifiable.push(format!("api://{name}-app-{app_no}"));
                if *multi_tenant {
                    classifiable_multi.push(format!("api://{name}-app-{app_no}"));
                }
            }
        }
        // Multi-tenant apps declared so far can be consented to here.
        for app_id in &multi {
            out += &format!("[[tenant.grant]]\napp = \"{app_id}\"\ndelegated = [\"openid\", \"profile\"]\nfor = \"u0@{domain}\"\n\n");
        }
        if let Some(n) = t.graph_low {
            let low: Vec<String> = GEN_GRAPH_LOW[..n].iter().map(|v| format!("\"{v}\"")).collect();
            out += &format!("[[tenant.classification]]\nlow = [{}]\n\n", low.join(", "));
        }
        for resource in &classifiable {
            out += &format!("[[tenant.classification]]\nresource = \"{resource}\"\nlow = [\"S1.Read\"]\n\n");
        }
        for e in 0..t.events {
            out += &format!(
                "[[tenant.event]]\nowner = \"u{}@{domain}\"\nsubject = \"Meeting {e}\"\nstart = \"2026-12-0{}T09:00:00Z\"\nend = \"2026-12-0{}T09:{}:00+00:00\"\nattendees = [\"x{e}@example.com\"]\n\n",
                e % t.users,
                1 + e,
                1 + e,
                15 + e
            );
        }
    }
    out
}

/// The generator's classifications: Graph, own apps and other tenants' multi-tenant apps.
#[test]
fn generated_classifications() {
    let t = |multi: bool, graph_low| GenTenant {
        users: 1,
        groups: 0,
        apps: vec![(multi, 2, 0), (false, 1, 1)],
        events: 0,
        consent: 1,
        graph_low,
    };
    let tenants = [t(true, Some(2)), t(false, None), t(false, Some(0))];
    let s = expect_ok(&render(&tenants, 7, "gen"));
    assert_eq!(expected_classifications(&tenants), [2, 2, 3]);
    let counts: Vec<_> = s.tenants.iter().map(|t| t.classifications.len()).collect();
    assert_eq!(counts, [2, 2, 3]);
    assert_eq!(
        s.tenants[0].classifications[0],
        ClassificationSpec { resource: ResourceRef::MicrosoftGraph, low: vec!["openid".into(), "profile".into()] }
    );
    assert_eq!(s.tenants[2].classifications[0].low, Vec::<String>::new());
    assert!(s.tenants[1].classifications.iter().all(|c| c.low == ["S1.Read"]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(s in ".*") {
        let _ = parse("fuzz.toml", &s);
    }

    #[test]
    fn arbitrary_tomlish_text_never_panics(s in "[\\[\\]a-z_.=\"' \\n{},#0-9@:-]{0,200}") {
        let _ = parse("fuzz.toml", &s);
        let _ = parse("fuzz.toml", &format!("{}{s}", base("", "")));
    }

    #[test]
    fn damaged_demo_world_never_panics(start in 0usize..20_000, len in 0usize..200, insert in ".{0,8}") {
        let text = include_str!("../../../accord-server/src/demo_world.toml");
        let mut bytes = text.as_bytes().to_vec();
        let start = start.min(bytes.len());
        let end = (start + len).min(bytes.len());
        bytes.splice(start..end, insert.bytes());
        let damaged = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse("demo.toml", &damaged) {
            prop_assert!(!e.diagnostics.is_empty());
            for d in &e.diagnostics {
                prop_assert!(d.line >= 1 && d.line <= damaged.lines().count() + 1);
            }
        }
    }

    #[test]
    fn generated_valid_scenarios_parse(
        tenants in prop::collection::vec(gen_tenant(), 1..4),
        seed in 1u32..u32::MAX,
        name in "[a-z][a-z0-9]{0,10}",
    ) {
        let text = render(&tenants, seed, &name);
        let parsed = parse("gen.toml", &text);
        prop_assert!(parsed.is_ok(), "{}\n---\n{}", parsed.unwrap_err(), text);
        let s = parsed.unwrap();
        prop_assert_eq!(s.tenants.len(), tenants.len());
        for ((t, g), classifications) in s.tenants.iter().zip(&tenants).zip(expected_classifications(&tenants)) {
            prop_assert_eq!(t.classifications.len(), classifications);
            prop_assert_eq!(t.users.len(), g.users);
            prop_assert_eq!(t.groups.len(), g.groups);
            prop_assert_eq!(t.apps.len(), g.apps.len());
            prop_assert_eq!(t.events.len(), g.events);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Relative times, time zones and variables
// ---------------------------------------------------------------------------------------------

/// Thursday 3 December 2026.
const LOADED: time::OffsetDateTime = datetime!(2026-12-03 15:20 UTC);

fn parse_at(text: &str) -> Result<Scenario, ScenarioError> {
    parse_with(FILE, text, &ParseOptions::at(LOADED))
}

#[test]
fn relative_event_times_follow_the_load_time_and_the_zone() {
    let text = format!(
        "time_zone = \"Europe/Paris\"\nrelative_times = \"move\"\n{}",
        event("bob@contoso.test", "monday 09:00", "monday 09:30", "")
    );
    let s = parse_at(&text).unwrap_or_else(|e| panic!("{e}"));
    let e = &s.tenants[0].events[0];
    assert_eq!((e.start, e.end), (datetime!(2026-11-30 08:00 UTC), datetime!(2026-11-30 08:30 UTC)));
    assert_eq!(e.relative_start.as_deref(), Some("monday 09:00"));
    assert_eq!(s.relative_times, RelativeTimes::Move);
    // A tenant's own zone wins over the scenario's; a mix of relative and absolute is fine.
    let text = format!(
        "time_zone = \"Europe/Paris\"\n{}",
        base("time_zone = \"America/New_York\"", "[[tenant.event]]\nowner = \"bob@contoso.test\"\nsubject = \"x\"\nstart = \"today+1d 09:00\"\nend = \"2026-12-04T15:00:00Z\"")
    );
    let s = parse_at(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.tenants[0].events[0].start, datetime!(2026-12-04 09:00 -05:00));
    assert_eq!(s.relative_times, RelativeTimes::Keep, "keep is the default");
    // Absolute times carry no relative start.
    let s = parse_at(&event("bob@contoso.test", T9, T930, "")).unwrap();
    assert_eq!(s.tenants[0].events[0].relative_start, None);
}

#[test]
fn relative_time_mistakes_are_reported_where_they_are() {
    expect_one(
        &event("bob@contoso.test", "someday 09:00\" #!\n#\"", T930, ""),
        "tenant.event.start",
        "\"someday\" is not \"now\"",
    );
    // The end is checked after both are resolved.
    let text = base(
        "",
        "[[tenant.event]]\nowner = \"bob@contoso.test\"\nsubject = \"x\"\nstart = \"now+2h\"\nend = \"now+1h\" #!",
    );
    expect_one(&text, "tenant.event.end", "the end (now+1h) must be after the start (now+2h)");
    let text = format!("time_zone = \"Mars/Olympus\" #!\n{}", base("", ""));
    expect_one(&text, "time_zone", "\"Mars/Olympus\" is not a time zone");
    expect_one(&base("time_zone = \"CEST\" #!", ""), "tenant.time_zone", "\"CEST\" is not a time zone");
    let text = format!("relative_times = \"shift\" #!\n{}", base("", ""));
    expect_one(&text, "relative_times", "\"shift\" is not \"keep\" or \"move\"");
}

#[test]
fn variables_are_substituted_and_checked() {
    let text = format!(
        "[variables]\napp_url = \"https://localhost:9443\"\n\n{}",
        base("", "[[tenant.app]]\napp_id = \"33333333-3333-4333-8333-333333333333\"\ndisplay_name = \"Web\"\nredirect_uris = [\"${app_url}/cb\"]")
    );
    let s = parse_at(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.tenants[0].apps[2].redirect_uris, ["https://localhost:9443/cb"]);
    let options = ParseOptions {
        variables: vec![("app_url".into(), "https://localhost:41000".into())],
        ..ParseOptions::at(LOADED)
    };
    let s = parse_with(FILE, &text, &options).unwrap();
    assert_eq!(s.tenants[0].apps[2].redirect_uris, ["https://localhost:41000/cb"]);
    // A substituted value is validated like any other.
    let options = ParseOptions { variables: vec![("app_url".into(), "ftp://x".into())], ..ParseOptions::at(LOADED) };
    let err = parse_with(FILE, &text, &options).unwrap_err().to_string();
    assert!(err.contains("tenant.app.redirect_uris"), "{err}");
    // Undeclared references and overrides are refused; values must be strings.
    let err = parse_at(&base("", "[[tenant.group]]\ndisplay_name = \"${team}\"")).unwrap_err().to_string();
    assert!(err.contains("variables: ${team} is not declared in [variables]"), "{err}");
    let err = parse_at("[variables]\nport = 9443\n").unwrap_err().to_string();
    assert!(err.contains("variables.port") || err.contains("invalid type"), "{err}");
}

#[test]
fn throttling_limits_are_read_and_unknown_keys_refused() {
    let s = parse_at(&base("", "")).unwrap();
    assert_eq!(s.throttling, ThrottlingSpec::default(), "absent: every limit is the server's");
    let text = format!(
        "{}\n[throttling]\nmailbox_requests_per_10_minutes = 50\nmailbox_concurrent = 0\ntoken_requests_per_minute = 20\n",
        base("", "")
    );
    let s = parse_at(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.throttling,
        ThrottlingSpec {
            mailbox_requests_per_10_minutes: Some(50),
            mailbox_concurrent: Some(0),
            tenant_requests_per_10_seconds: None,
            token_requests_per_minute: Some(20),
        }
    );
    let text = format!("{}\n[throttling]\nrequests_per_second = 5\n", base("", ""));
    let e = parse_at(&text).unwrap_err().to_string();
    assert!(e.contains("requests_per_second"), "{e}");
    let text = format!("{}\n[throttling]\nmailbox_concurrent = -1\n", base("", ""));
    assert!(parse_at(&text).is_err(), "a negative limit");
}

#[test]
fn grants_may_end_at_an_instant_or_a_relative_time() {
    let grant = |expires: &str| {
        base(
            "",
            &format!(
                "[[tenant.grant]]\napp = \"11111111-1111-4111-8111-111111111111\"\ndelegated = [\"User.Read\"]\nexpires = \"{expires}\""
            ),
        )
    };
    let s = parse_at(&grant("2027-03-01T00:00:00Z")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.tenants[0].grants[0].expires_at, Some(datetime!(2027-03-01 00:00 UTC)));
    let s = parse_at(&grant("today+90d 00:00")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.tenants[0].grants[0].expires_at, Some(datetime!(2027-03-03 00:00 UTC)), "90 days after the load");
    let e = parse_at(&grant("soon")).unwrap_err().to_string();
    assert!(e.contains("tenant.grant.expires"), "{e}");
    let assigned = base(
        "",
        "[[tenant.assignment]]\napp = \"11111111-1111-4111-8111-111111111111\"\nprincipal = \"admin@contoso.test\"\nexpires = \"2027-06-01T00:00:00Z\"",
    );
    let s = parse_at(&assigned).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.tenants[0].assignments[0].expires_at, Some(datetime!(2027-06-01 00:00 UTC)));
}

#[test]
fn fault_rules_are_read_with_the_control_apis_schema_and_checked() {
    let text = format!(
        "{}\n[[fault]]\ntimes = 1\nmatch = {{ endpoint = \"token\", app = \"11111111-1111-4111-8111-111111111111\" }}\naction = {{ aadsts = 65001 }}\n\n[[fault]]\nmatch = {{ tenant = \"contoso.test\" }}\naction = {{ replicationLagSeconds = 20 }}\n",
        base("", "")
    );
    let s = parse_at(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.faults.len(), 2);
    assert_eq!((s.faults[0].times, s.faults[0].action.aadsts), (Some(1), Some(65001)));
    assert_eq!(s.faults[1].action.replication_lag_seconds, Some(20));
    assert!(parse_at(&base("", "")).unwrap().faults.is_empty());

    // The control API's checks, with the line.
    let bad = format!("{}\n[[fault]]\naction = {{ aadsts = 65001 }}\n", base("", ""));
    let diags = diagnostics(&bad);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].key, "fault");
    assert!(diags[0].message.contains("match.endpoint"), "{}", diags[0]);
    let unknown = format!("{}\n[[fault]]\nsometimes = 1\naction = {{ drop = true }}\n", base("", ""));
    let e = parse_at(&unknown).unwrap_err().to_string();
    assert!(e.contains("sometimes"), "{e}");
}

#[test]
fn webhooks_need_an_http_url_and_a_standard_webhooks_secret() {
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let hook = |url: &str, secret: &str| {
        base("", &app(APP3, &format!("\n[[tenant.app.webhook]]\nurl = \"{url}\"\nsecret = \"{secret}\" #!")))
    };
    let s = parse_at(&hook("https://vendor.example/hooks/consent", SECRET)).unwrap_or_else(|e| panic!("{e}"));
    let spec = s.tenants[0].apps.last().unwrap();
    assert_eq!(
        spec.webhooks,
        [WebhookSpec { url: "https://vendor.example/hooks/consent".into(), secret: SECRET.into() }]
    );
    expect_one(&hook("https://vendor.example/h", "whsec_c2hvcnQ="), "tenant.app.webhook.secret", "24 to 64");
    expect_one(
        &hook("https://vendor.example/h", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "tenant.app.webhook.secret",
        "whsec_",
    );
    let d = diagnostics(&hook("ftp://vendor.example/h", SECRET));
    assert_eq!((d.len(), d[0].key.as_str()), (1, "tenant.app.webhook.url"), "{d:#?}");
    let twice = base(
        "",
        &app(
            APP3,
            &format!("\n[[tenant.app.webhook]]\nurl = \"https://v.example/h\"\nsecret = \"{SECRET}\"\n[[tenant.app.webhook]]\nurl = \"https://v.example/h\"\nsecret = \"{SECRET}\""),
        ),
    );
    let d = diagnostics(&twice);
    assert!(d.len() == 1 && d[0].message.contains("used twice"), "{d:#?}");
}

#[test]
fn a_user_may_have_no_password_but_not_an_empty_one() {
    let text = base("", "").replace("display_name = \"Bob\"\npassword = \"pw\"\n", "display_name = \"Bob\"\n");
    let s = expect_ok(&text);
    let users = &s.tenants[0].users;
    assert_eq!(users[0].password.as_deref(), Some("pw"));
    assert_eq!(users[1].upn, "bob@contoso.test");
    assert_eq!(users[1].password, None, "Bob exists (in Sales) but cannot sign in with a password");
    let empty =
        base("", "").replace("display_name = \"Bob\"\npassword = \"pw\"", "display_name = \"Bob\"\npassword = \"\"");
    let err = parse(FILE, &empty).unwrap_err().to_string();
    assert!(err.contains("tenant.user.password") && err.contains("must not be empty"), "{err}");
}
