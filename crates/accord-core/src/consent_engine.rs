//! The consent engine: given a snapshot of everything that matters about one user, one client
//! app and one request in one tenant, decide whether to issue a token, show a consent prompt,
//! send the user to the admin-approval pages, or refuse — and say why, rule by rule.
//!
//! It is pure: no I/O, no clock, no randomness. The server gathers a [`ConsentSnapshot`] from
//! the store and calls [`decide_sign_in`] from the authorize endpoint, the token endpoint (code
//! redemption and every refresh, so revocation bites) and the "explain" tools, and
//! [`decide_admin_consent`] from the `/adminconsent` endpoints and the admin center's
//! "Grant admin consent" button. References (§n) are to `docs/entra-reference.md`.
//!
//! # Rule order of [`decide_sign_in`]
//!
//! 1. `client.audience` — a single-organisation app used from another tenant: AADSTS700016.
//! 2. `user.account` — the user belongs to the tenant (50020) and is enabled (50057).
//! 3. `client.service_principal` — the enterprise app exists and is enabled (7000112).
//! 4. `client.assignment` — assignment required and the user is assigned neither directly nor
//!    through any (transitive) group: AADSTS50105.
//! 5. `scope.*` — the request is resolved: no scope at all is 900144; an unknown resource is
//!    500011; a named permission that is not a delegated scope of its resource is 70011;
//!    `{resource}/.default` for a resource the client does not list is 650057;
//!    `{own app id}/.default` asks for an ID token only; no resource means Microsoft Graph; the
//!    OIDC scopes are Graph delegated permissions and need consent like the others (§3).
//! 6. `consent.grants` — granted = the `AllPrincipals` grant ∪ the user's `Principal` grant for
//!    (client, resource). `.default` is satisfied by any grant unless `prompt=consent`; otherwise
//!    it requires the static list (plus the OIDC scopes requested). Named scopes: missing =
//!    requested − granted. `prompt=consent` re-asks for everything requested.
//! 7. nothing missing → [`Decision::Issue`].
//! 8. `consent.prompt_none` — `prompt=none` (and the token endpoint) cannot show UI: 65001.
//! 9. `consent.user_policy` / `consent.permission` — what the user may consent to themselves
//!    ([`user_consentable`]).
//! 10. `consent.admin_role` / `consent.workflow` — whether the user may grant for the whole
//!     organisation ([`can_grant_for_org`]); otherwise the approval workflow (on: "Approval
//!     required", off: "Need admin approval", AADSTS90094).
//!
//! The last rule of every [`Outcome`] has the id `outcome` and states the decision.
//!
//! # Rule order of [`decide_admin_consent`]
//!
//! 1. `consent.admin_role` — the signed-in user holds a consent-granting role (else 90094).
//! 2. `client.audience`, `user.account`, `client.service_principal` (a disabled app may still be
//!    consented to; the rule says it stays disabled).
//! 3. `scope.*` — `/.default` (or the v1 endpoint) means every permission the client lists,
//!    delegated and application, for every resource; dynamic scopes grant delegated
//!    permissions only (§2), so an application permission named dynamically is 70011.
//! 4. `consent.admin_role` — a Cloud Application / Application Administrator cannot grant
//!    Microsoft Graph application permissions (§7): refused, naming them and the role.
//! 5. [`Decision::PromptAdminConsent`] with admin-facing texts, and a note of what is already
//!    granted.
//!
//! # Deviations from Entra, on purpose
//!
//! - Assignment through nested groups counts. Entra honours only direct members of an assigned
//!   group; Accord's product story ("assign the Sales group") reads better with transitive
//!   membership, and the rule text names the whole path so it is never a surprise.
//! - Every role that may grant for the organisation sees the "Consent on behalf of your
//!   organization" checkbox, not only Global Administrators (§2): otherwise a Cloud Application
//!   Administrator could grant the same permissions in the admin center but not on the prompt.
//! - `prompt=none` and the token endpoint both get `interaction_required` with suberror
//!   `consent_required` (Entra sometimes sends `invalid_grant` from the token endpoint; MSAL
//!   treats both as "needs UI", §1/§9).
//! - Issued scopes are limited to values the resource still defines; a grant that names a
//!   scope the API has since removed does not put it in a token.

mod admin_consent;
mod app_only;
mod assignment;
mod permissions;
mod scope_resolution;
mod sign_in;

#[cfg(test)]
mod tests;

use crate::aadsts::Aadsts;
use crate::directory::{
    AppRoleAssignment, Application, DelegatedGrant, DirectoryRole, ServicePrincipal, SignInAudience, Tenant, User,
};
use crate::scope::ScopeRequest;
use crate::well_known::GRAPH_APP_ID;
use uuid::Uuid;

use crate::ids::{AppId, GroupId, ServicePrincipalId};

pub use admin_consent::decide_admin_consent;
pub use app_only::{decide_app_only, AppOnlyOutcome, AppOnlySnapshot};
pub use assignment::{is_assigned, user_app_roles, AssignmentPath};
pub use permissions::{
    can_grant_for_org, expand_default, granted_scopes, user_consentable, Facing, PermissionKind, PermissionRef,
    StaticPermissions, UserConsentBlock,
};
pub use sign_in::decide_sign_in;

/// The `prompt` parameter of the authorize endpoint. The token endpoint passes [`Prompt::None`]:
/// nothing can be shown there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prompt {
    #[default]
    Default,
    Login,
    SelectAccount,
    Consent,
    None,
}

impl Prompt {
    /// Parses the v2 values (`prompt=admin_consent` is v1 only, §2).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "login" => Some(Prompt::Login),
            "select_account" => Some(Prompt::SelectAccount),
            "consent" => Some(Prompt::Consent),
            "none" => Some(Prompt::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Prompt::Default => "",
            Prompt::Login => "login",
            Prompt::SelectAccount => "select_account",
            Prompt::Consent => "consent",
            Prompt::None => "none",
        }
    }
}

/// A resource API as seen from the tenant: its registration, its service principal there and
/// the delegated permissions the tenant classified "low" impact.
#[derive(Debug, Clone, Copy)]
pub struct ResourceView<'a> {
    pub app: &'a Application,
    pub sp_id: ServicePrincipalId,
    /// Permission ids classified `low` in this tenant (delegatedPermissionClassification).
    pub low_classified: &'a [Uuid],
}

/// One group the signed-in user belongs to, directly or through nesting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupMembership<'a> {
    pub id: GroupId,
    pub display_name: &'a str,
    /// The group through which the user belongs to this one; `None` for a direct membership.
    /// (A breadth-first walk from the user records it naturally.)
    pub via: Option<GroupId>,
}

/// Everything the engine looks at. The server reads it from the store; tests build it by hand.
#[derive(Debug, Clone, Copy)]
pub struct ConsentSnapshot<'a> {
    /// User-consent setting and admin-consent request workflow.
    pub tenant: &'a Tenant,
    /// The client app's registration (from its home tenant).
    pub client: &'a Application,
    /// The client's enterprise app in this tenant: `None` when no one here has consented yet;
    /// `enabled == false` when an administrator disabled or blocked it.
    pub client_sp: Option<&'a ServicePrincipal>,
    pub user: &'a User,
    pub user_roles: &'a [DirectoryRole],
    /// The user's groups, transitively.
    pub user_groups: &'a [GroupMembership<'a>],
    /// App role assignments made to the client's service principal (users and groups).
    pub assignments_to_client: &'a [AppRoleAssignment],
    /// The delegated grants held by the client's service principal.
    pub delegated_grants: &'a [DelegatedGrant],
    /// The app role assignments held by the client's service principal (application permissions).
    pub app_role_grants: &'a [AppRoleAssignment],
    /// Every resource the request or the client's static list may name (Microsoft Graph
    /// included). Include the client's own registration when it is asked for its own scopes.
    pub resources: &'a [ResourceView<'a>],
    /// The user's pending admin-consent request for this app, if any.
    pub pending_request: Option<Uuid>,
    pub request: &'a ScopeRequest,
    pub prompt: Prompt,
}

/// What to do, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    /// Every check made, in evaluation order; never empty; the last has the id `outcome`.
    pub rules: Vec<Rule>,
}

/// One check and what it found, in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable short id (`client.audience`, `consent.grants`, …), for filtering and tests.
    pub id: &'static str,
    pub verdict: Verdict,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The check passed.
    Pass,
    /// The check failed and decided the outcome (a refusal or a prompt).
    Fail,
    /// A fact noted along the way.
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Issue tokens. For `{own app id}/.default`, `resource_app_id` is the client's and `scopes`
    /// is empty (an ID token only).
    Issue {
        resource_app_id: AppId,
        /// Every delegated permission granted to the client for that resource on the user's
        /// behalf (the organisation's grant ∪ the user's own), in grant order.
        scopes: Vec<String>,
        /// Values of the client's app roles assigned to the user, directly or through groups
        /// (the ID token's `roles` claim).
        roles: Vec<String>,
    },
    /// Show the consent prompt for exactly these permissions.
    PromptConsent {
        permissions: Vec<PermissionRef>,
        /// Show "Consent on behalf of your organization".
        org_option: bool,
        /// Some permission is not user-consentable: only consent for the organisation works.
        org_required: bool,
    },
    /// Workflow on: the user may ask an administrator ("Approval required"), or sees their
    /// pending request.
    ApprovalRequired { permissions: Vec<PermissionRef>, existing_request: Option<Uuid> },
    /// Workflow off: "Need admin approval" (AADSTS90094).
    NeedAdminApproval { permissions: Vec<PermissionRef> },
    /// The admin-consent prompt: what the organisation consents to.
    PromptAdminConsent { delegated: Vec<PermissionRef>, application: Vec<PermissionRef> },
    /// The signed-in user may not grant this for the organisation: they hold no role that
    /// grants consent, or one that cannot grant what is asked (AADSTS90094). The request itself
    /// is valid; another administrator could grant it. Services report it as forbidden.
    NotPermitted(Aadsts),
    /// The request cannot be granted or served as asked (unknown scope, disabled app, …).
    Refuse(Aadsts),
}

impl Decision {
    /// A short name of the variant, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Issue { .. } => "issue",
            Decision::PromptConsent { .. } => "prompt_consent",
            Decision::ApprovalRequired { .. } => "approval_required",
            Decision::NeedAdminApproval { .. } => "need_admin_approval",
            Decision::PromptAdminConsent { .. } => "prompt_admin_consent",
            Decision::NotPermitted(_) => "not_permitted",
            Decision::Refuse(_) => "refuse",
        }
    }
}

/// The rules recorded while deciding.
#[derive(Debug, Default)]
struct Rules(Vec<Rule>);

impl Rules {
    fn push(&mut self, id: &'static str, verdict: Verdict, text: impl Into<String>) {
        self.0.push(Rule { id, verdict, text: text.into() });
    }
    fn pass(&mut self, id: &'static str, text: impl Into<String>) {
        self.push(id, Verdict::Pass, text);
    }
    fn fail(&mut self, id: &'static str, text: impl Into<String>) {
        self.push(id, Verdict::Fail, text);
    }
    fn info(&mut self, id: &'static str, text: impl Into<String>) {
        self.push(id, Verdict::Info, text);
    }

    /// Closes the log with the `outcome` rule.
    fn finish(mut self, client: &Application, decision: Decision) -> Outcome {
        let app = &client.display_name;
        let text = match &decision {
            Decision::Issue { scopes, roles, .. } => {
                let mut t = if scopes.is_empty() {
                    format!("Sign-in to '{app}' proceeds; the access token carries no delegated permission.")
                } else {
                    format!("Sign-in to '{app}' proceeds with: {}.", scopes.join(" "))
                };
                if !roles.is_empty() {
                    t.push_str(&format!(" Roles: {}.", roles.join(", ")));
                }
                t
            }
            Decision::PromptConsent { permissions, org_option, org_required } => format!(
                "Show the consent prompt of '{app}' for {}{}.",
                labels(permissions),
                match (org_option, org_required) {
                    (true, true) => ", to be accepted on behalf of the organisation",
                    (true, false) => ", with the option to consent on behalf of the organisation",
                    _ => "",
                }
            ),
            Decision::ApprovalRequired { permissions, existing_request: Some(id) } => {
                format!("Show 'Approval required' for '{app}' ({}) with the pending request {id}.", labels(permissions))
            }
            Decision::ApprovalRequired { permissions, existing_request: None } => {
                format!(
                    "Show 'Approval required' for '{app}' ({}): the user may request approval.",
                    labels(permissions)
                )
            }
            Decision::NeedAdminApproval { permissions } => {
                format!("Show 'Need admin approval' for '{app}' ({}), AADSTS90094.", labels(permissions))
            }
            Decision::PromptAdminConsent { delegated, application } => {
                let all: Vec<PermissionRef> = delegated.iter().chain(application).cloned().collect();
                if all.is_empty() {
                    format!("Show the admin consent prompt of '{app}'; it asks for no permission.")
                } else {
                    format!("Show the admin consent prompt of '{app}' for {}.", labels(&all))
                }
            }
            Decision::NotPermitted(e) => format!("Refuse '{app}' to this user: {e}"),
            Decision::Refuse(e) => format!("Refuse '{app}': {e}"),
        };
        let verdict = match decision {
            Decision::Issue { .. } | Decision::PromptAdminConsent { .. } => Verdict::Pass,
            _ => Verdict::Fail,
        };
        self.push("outcome", verdict, text);
        Outcome { decision, rules: self.0 }
    }
}

fn labels(permissions: &[PermissionRef]) -> String {
    permissions.iter().map(PermissionRef::label).collect::<Vec<_>>().join(", ")
}

/// Rule 1 of both entry points: a single-organisation app works only in its home tenant.
fn check_audience(client: &Application, in_tenant: &Tenant, r: &mut Rules) -> Result<(), Aadsts> {
    let app = &client.display_name;
    let tenant = &in_tenant.display_name;
    match client.sign_in_audience {
        SignInAudience::MultipleOrgs => {
            r.pass("client.audience", format!("The app '{app}' is registered for multiple organisations."));
            Ok(())
        }
        SignInAudience::SingleOrg if client.home_tenant_id == in_tenant.id => {
            r.pass("client.audience", format!("The app '{app}' is registered for its own organisation, '{tenant}'."));
            Ok(())
        }
        SignInAudience::SingleOrg => {
            r.fail(
                "client.audience",
                format!("The app '{app}' is registered for its home organisation only, and '{tenant}' is another organisation (AADSTS700016)."),
            );
            Err(Aadsts::single_tenant_app(&client.app_id.to_string()))
        }
    }
}

/// The signed-in user belongs to the tenant and may sign in (checked again on every refresh).
fn check_user(s: &ConsentSnapshot<'_>, r: &mut Rules) -> Result<(), Aadsts> {
    let u = s.user;
    let tenant = &s.tenant.display_name;
    if u.tenant_id != s.tenant.id {
        r.fail("user.account", format!("{} ({}) is not a member of '{tenant}' (AADSTS50020).", u.display_name, u.upn));
        return Err(Aadsts::user_not_in_tenant(&u.upn));
    }
    if !u.enabled {
        r.fail("user.account", format!("The account of {} ({}) is disabled (AADSTS50057).", u.display_name, u.upn));
        return Err(Aadsts::account_disabled());
    }
    r.pass("user.account", format!("{} ({}) is an enabled member of '{tenant}'.", u.display_name, u.upn));
    Ok(())
}

/// The resource a scope names: by identifier URI or application id.
fn find_resource<'a>(resources: &'a [ResourceView<'a>], name: &str) -> Option<&'a ResourceView<'a>> {
    resources.iter().find(|r| r.app.is_named_by(name))
}

fn find_by_app_id<'a>(resources: &'a [ResourceView<'a>], app_id: AppId) -> Option<&'a ResourceView<'a>> {
    resources.iter().find(|r| r.app.app_id == app_id)
}

fn find_graph<'a>(resources: &'a [ResourceView<'a>]) -> Option<&'a ResourceView<'a>> {
    find_by_app_id(resources, GRAPH_APP_ID)
}

/// The roles of `roles` that may grant consent for the organisation, de-duplicated, strongest first.
fn granting_roles(roles: &[DirectoryRole]) -> Vec<DirectoryRole> {
    let mut v: Vec<DirectoryRole> = roles.to_vec();
    v.sort();
    v.dedup();
    v
}

fn role_names(roles: &[DirectoryRole]) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.display_name()).collect();
    let text = match names.as_slice() {
        [] => return String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    let article = if text.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
    format!("{article} {text}")
}
