//! A user signs in to a client (authorize), or the client redeems a code or refreshes a token.

use super::permissions::{granted_split, PermissionRef};
use super::scope_resolution::{default_not_listed, named_resource, named_scope, oidc_scopes};
use super::{
    can_grant_for_org, check_audience, check_user, expand_default, granting_roles, is_assigned, role_names,
    user_app_roles, user_consentable, ConsentSnapshot, Decision, Facing, Outcome, Prompt, ResourceView, Rules,
};
use crate::aadsts::Aadsts;
use crate::directory::{PermissionScope, UserConsent};

/// What the request asks of one resource, resolved against its registration.
struct Target<'a> {
    view: &'a ResourceView<'a>,
    /// `{resource}/.default`.
    default: bool,
    /// Named permissions (with the OIDC scopes for Graph), or the static list for `.default`.
    wanted: Vec<&'a PermissionScope>,
    /// OIDC scopes requested next to Microsoft Graph's `.default`.
    extra_oidc: Vec<&'a PermissionScope>,
}

/// Which resource a successful sign-in issues for: the first one the request names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IssueFor {
    /// `{own app id}/.default`: an ID token only.
    OwnApp,
    Target(usize),
}

/// Decides a sign-in, a code redemption or a refresh (see the module docs for the rule order).
pub fn decide_sign_in(s: &ConsentSnapshot<'_>) -> Outcome {
    let mut rules = Rules::default();
    let decision = sign_in(s, &mut rules).unwrap_or_else(Decision::Refuse);
    rules.finish(s.client, decision)
}

fn sign_in(s: &ConsentSnapshot<'_>, r: &mut Rules) -> Result<Decision, Aadsts> {
    check_audience(s.client, s.tenant, r)?;
    check_user(s, r)?;
    check_service_principal(s, r)?;
    check_assignment(s, r)?;
    let (targets, issue_for) = resolve_request(s, r)?;

    let user = &s.user.display_name;
    let app = &s.client.display_name;
    let roles = match s.client_sp {
        Some(sp) => user_app_roles(s.client, sp.id, s.user.id, s.user_groups, s.assignments_to_client),
        None => Vec::new(),
    };
    if !roles.is_empty() {
        r.info("client.roles", format!("{user} holds these app roles of '{app}': {}.", roles.join(", ")));
    }

    let mut to_prompt: Vec<(&ResourceView<'_>, &PermissionScope)> = Vec::new();
    let mut issue_scopes: Vec<String> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let granted = granted_on(s, t, r);
        for scope in needs_consent(s, t, &granted, r) {
            if !to_prompt.iter().any(|(v, p)| v.sp_id == t.view.sp_id && p.id == scope.id) {
                to_prompt.push((t.view, scope));
            }
        }
        if issue_for == IssueFor::Target(i) {
            issue_scopes = granted;
        }
    }

    if to_prompt.is_empty() {
        let resource_app_id = match issue_for {
            IssueFor::OwnApp => s.client.app_id,
            IssueFor::Target(i) => targets[i].view.app.app_id,
        };
        return Ok(Decision::Issue { resource_app_id, scopes: issue_scopes, roles });
    }

    let values: Vec<&str> = to_prompt.iter().map(|(_, p)| p.value.as_str()).collect();
    if s.prompt == Prompt::None {
        r.fail(
            "consent.prompt_none",
            format!(
                "The request cannot show a consent prompt (prompt=none, or a token request), and consent is missing for {} (AADSTS65001).",
                values.join(" ")
            ),
        );
        return Err(Aadsts::interaction_required_consent_for(&s.client.app_id.to_string(), &values.join(" ")));
    }

    // What may the user consent to themselves?
    r.info("consent.user_policy", policy_text(s));
    let refs: Vec<PermissionRef> =
        to_prompt.iter().map(|(v, scope)| PermissionRef::delegated(v, scope, Facing::User)).collect();
    let mut all_user_consentable = true;
    for ((view, _), p) in to_prompt.iter().zip(&refs) {
        match user_consentable(s.tenant, s.client, s.client_sp, view.low_classified, p) {
            Ok(()) => r.pass("consent.permission", format!("{user} may consent to {} themselves.", p.label())),
            Err(block) => {
                all_user_consentable = false;
                r.fail("consent.permission", block.describe(p, s.client));
            }
        }
    }

    // May they grant for the whole organisation?
    let roles_held = granting_roles(s.user_roles);
    let cannot: Vec<&PermissionRef> = refs.iter().filter(|p| !can_grant_for_org(&roles_held, p)).collect();
    if !roles_held.is_empty() && cannot.is_empty() {
        // Entra shows the checkbox to Global Administrators only (§2); Accord shows it to every
        // role that may grant these permissions for the organisation (see the module docs).
        r.pass(
            "consent.admin_role",
            format!(
                "{user} is {} and may grant these permissions on behalf of the organisation; the prompt offers 'Consent on behalf of your organization'{}.",
                role_names(&roles_held),
                if all_user_consentable { "" } else { ", the only way to accept it" }
            ),
        );
        let facing = if all_user_consentable { Facing::User } else { Facing::Admin };
        let permissions = to_prompt.iter().map(|(v, scope)| PermissionRef::delegated(v, scope, facing)).collect();
        return Ok(Decision::PromptConsent { permissions, org_option: true, org_required: !all_user_consentable });
    }
    if roles_held.is_empty() {
        r.info(
            "consent.admin_role",
            format!("{user} holds no role that can grant consent on behalf of the organisation."),
        );
    } else {
        let labels: Vec<String> = cannot.iter().map(|p| p.label()).collect();
        r.info(
            "consent.admin_role",
            format!(
                "{user} is {}, which cannot grant {} for the organisation.",
                role_names(&roles_held),
                labels.join(", ")
            ),
        );
    }
    if all_user_consentable {
        return Ok(Decision::PromptConsent { permissions: refs, org_option: false, org_required: false });
    }
    if s.tenant.admin_consent_requests.enabled {
        match s.pending_request {
            Some(id) => r.fail(
                "consent.workflow",
                format!("The admin consent request workflow is on, and {user} already has a pending request ({id}) for '{app}'."),
            ),
            None => r.fail(
                "consent.workflow",
                format!(
                    "The admin consent request workflow is on: {user} may ask an administrator for approval (AADSTS90095: {}).",
                    Aadsts::admin_consent_request_required(app).message
                ),
            ),
        }
        return Ok(Decision::ApprovalRequired { permissions: refs, existing_request: s.pending_request });
    }
    r.fail(
        "consent.workflow",
        format!(
            "The admin consent request workflow is off: {user} must ask an administrator (AADSTS90094: {})",
            Aadsts::admin_consent_required(app).message
        ),
    );
    Ok(Decision::NeedAdminApproval { permissions: refs })
}

fn check_service_principal(s: &ConsentSnapshot<'_>, r: &mut Rules) -> Result<(), Aadsts> {
    let app = &s.client.display_name;
    let tenant = &s.tenant.display_name;
    match s.client_sp {
        None => r.info(
            "client.service_principal",
            format!("'{app}' has no enterprise application in '{tenant}' yet: no one here has consented to it."),
        ),
        Some(sp) if !sp.enabled => {
            r.fail(
                "client.service_principal",
                format!("The enterprise application '{app}' is disabled in '{tenant}' (disabled or blocked by an administrator) (AADSTS7000112)."),
            );
            return Err(Aadsts::app_disabled(&s.client.app_id.to_string(), &s.client.display_name));
        }
        Some(_) => {
            r.pass("client.service_principal", format!("The enterprise application '{app}' is enabled in '{tenant}'."))
        }
    }
    Ok(())
}

fn check_assignment(s: &ConsentSnapshot<'_>, r: &mut Rules) -> Result<(), Aadsts> {
    let app = &s.client.display_name;
    let user = &s.user.display_name;
    let Some(sp) = s.client_sp.filter(|sp| sp.assignment_required) else {
        r.info(
            "client.assignment",
            format!("Assignment is not required for '{app}': every user of '{}' may sign in.", s.tenant.display_name),
        );
        return Ok(());
    };
    match is_assigned(sp.id, s.user.id, s.user_groups, s.assignments_to_client) {
        Some(path) => {
            r.pass("client.assignment", format!("Assignment is required; {}", path.describe(user, app)));
            Ok(())
        }
        None => {
            r.fail(
                "client.assignment",
                format!("Assignment is required for '{app}', and {user} is assigned neither directly nor through any of their groups (AADSTS50105)."),
            );
            Err(Aadsts::user_not_assigned(app, &s.client.app_id.to_string(), &s.user.upn))
        }
    }
}

/// Resolves every scope of the request against the resources' registrations.
fn resolve_request<'a>(s: &ConsentSnapshot<'a>, r: &mut Rules) -> Result<(Vec<Target<'a>>, IssueFor), Aadsts> {
    let app = &s.client.display_name;
    let req = s.request;
    let oidc = req.oidc.values();
    if req.resources.is_empty() && oidc.is_empty() {
        r.fail("scope.request", "The request names no scope at all (AADSTS900144).");
        return Err(Aadsts::missing_parameter("scope"));
    }
    let mut targets: Vec<Target<'a>> = Vec::new();
    let mut issue_for: Option<IssueFor> = None;
    for rr in &req.resources {
        if rr.default && s.client.is_named_by(&rr.resource) {
            // A token for itself still needs sign-in and profile access to Microsoft Graph.
            let lists_graph =
                s.client.required_for(crate::well_known::GRAPH_APP_ID).is_some_and(|g| !g.delegated.is_empty());
            if !lists_graph {
                r.fail(
                    "scope.own_app",
                    format!("'{app}' asks for a token for itself but lists no Microsoft Graph permission such as User.Read (AADSTS90008)."),
                );
                return Err(Aadsts::token_for_itself_requires_graph(&s.client.app_id.to_string()));
            }
            r.info(
                "scope.own_app",
                format!("'{}/.default' names '{app}' itself: it asks for an ID token only, with no access token permissions.", rr.resource),
            );
            issue_for.get_or_insert(IssueFor::OwnApp);
            continue;
        }
        let view = named_resource(s, &rr.resource, r)?;
        let res = &view.app.display_name;
        let mut wanted: Vec<&'a PermissionScope> = Vec::new();
        if rr.default {
            let Some(stat) = expand_default(s.client, view, Facing::User) else {
                return Err(default_not_listed(s, &rr.resource, view, r));
            };
            wanted.extend(stat.delegated.iter().filter_map(|p| view.app.scopes.iter().find(|sc| sc.id == p.id)));
            let values: Vec<&str> = wanted.iter().map(|p| p.value.as_str()).collect();
            r.pass(
                "scope.default",
                if values.is_empty() {
                    format!("'{}/.default' asks for the static list of '{app}' on '{res}', which has no delegated permission.", rr.resource)
                } else {
                    format!("'{}/.default' asks for the static list of '{app}' on '{res}': {}.", rr.resource, values.join(", "))
                },
            );
            if !stat.unresolved_delegated.is_empty() {
                r.info(
                    "scope.default",
                    format!(
                        "'{app}' lists {} for '{res}', which '{res}' does not define; ignored.",
                        stat.unresolved_delegated.join(", ")
                    ),
                );
            }
        } else {
            for value in &rr.permissions {
                let scope = named_scope(view, &rr.resource, value, r)?;
                if !wanted.iter().any(|w| w.id == scope.id) {
                    wanted.push(scope);
                }
            }
            let values: Vec<&str> = wanted.iter().map(|p| p.value.as_str()).collect();
            r.pass("scope.resource", format!("Requested from '{res}': {}.", values.join(", ")));
        }
        let idx = match targets.iter().position(|t| t.view.sp_id == view.sp_id) {
            // The same resource named twice (by URI and by app id).
            Some(i) => {
                if targets[i].default != rr.default {
                    r.fail(
                        "scope.request",
                        format!("'.default' for '{res}' is combined with other scopes (AADSTS70011)."),
                    );
                    return Err(Aadsts::invalid_scope(&format!(
                        "'.default' cannot be combined with other scopes for the resource '{}'.",
                        rr.resource
                    )));
                }
                for w in wanted {
                    if !targets[i].wanted.iter().any(|x| x.id == w.id) {
                        targets[i].wanted.push(w);
                    }
                }
                i
            }
            None => {
                targets.push(Target { view, default: rr.default, wanted, extra_oidc: Vec::new() });
                targets.len() - 1
            }
        };
        issue_for.get_or_insert(IssueFor::Target(idx));
    }

    if !oidc.is_empty() || issue_for.is_none() {
        let (graph, scopes) = oidc_scopes(s, &oidc, r)?;
        if issue_for.is_none() {
            r.info("scope.resource", "No resource is named, so the resource is Microsoft Graph.");
        }
        if !oidc.is_empty() {
            r.info(
                "scope.oidc",
                if oidc.len() == 1 {
                    format!("The OpenID Connect scope {} is a Microsoft Graph delegated permission and needs consent like any other.", oidc[0])
                } else {
                    format!("The OpenID Connect scopes {} are Microsoft Graph delegated permissions and need consent like any other.", oidc.join(" "))
                },
            );
        }
        let idx = match targets.iter().position(|t| t.view.sp_id == graph.sp_id) {
            Some(i) => {
                let t = &mut targets[i];
                for scope in scopes {
                    if !t.wanted.iter().chain(&t.extra_oidc).any(|w| w.id == scope.id) {
                        if t.default {
                            t.extra_oidc.push(scope);
                        } else {
                            t.wanted.push(scope);
                        }
                    }
                }
                i
            }
            None => {
                targets.push(Target { view: graph, default: false, wanted: scopes, extra_oidc: Vec::new() });
                targets.len() - 1
            }
        };
        issue_for.get_or_insert(IssueFor::Target(idx));
    }
    let issue_for = issue_for.unwrap_or(IssueFor::OwnApp);
    Ok((targets, issue_for))
}

/// The scope values granted to the client on `t`'s resource for the user — limited to values
/// the resource still defines, in the resource's spelling.
fn granted_on(s: &ConsentSnapshot<'_>, t: &Target<'_>, r: &mut Rules) -> Vec<String> {
    let app = &s.client.display_name;
    let res = &t.view.app.display_name;
    let user = &s.user.display_name;
    // The API itself may pre-authorize the client for some scopes: no consent needed for those.
    let pre: Vec<String> = t.view.app.pre_authorized_scopes(s.client.app_id).into_iter().map(String::from).collect();
    if !pre.is_empty() {
        r.info("consent.preauthorized", format!("'{res}' pre-authorizes '{app}' for: {}.", pre.join(" ")));
    }
    let Some(sp) = s.client_sp else {
        r.info(
            "consent.grants",
            format!("Nothing has been granted to '{app}' on '{res}': it has no enterprise application yet."),
        );
        return pre;
    };
    let (org, own) = granted_split(s.delegated_grants, sp.id, t.view.sp_id, s.user.id);
    let mut granted: Vec<String> = pre;
    let mut dropped: Vec<&str> = Vec::new();
    for value in org.iter().chain(&own) {
        match t.view.app.scope(value) {
            Some(scope) if !granted.contains(&scope.value) => granted.push(scope.value.clone()),
            Some(_) => {}
            None => dropped.push(value),
        }
    }
    let text = match (org.is_empty(), own.is_empty()) {
        (true, true) => format!("Nothing has been granted to '{app}' on '{res}' for {user}."),
        (false, true) => {
            format!("Granted to '{app}' on '{res}' for everyone in the organisation: {}.", org.join(" "))
        }
        (true, false) => format!("Granted to '{app}' on '{res}' by {user} for themselves: {}.", own.join(" ")),
        (false, false) => format!(
            "Granted to '{app}' on '{res}' for everyone in the organisation: {}; by {user} for themselves: {}.",
            org.join(" "),
            own.join(" ")
        ),
    };
    r.info("consent.grants", text);
    if !dropped.is_empty() {
        r.info(
            "consent.grants",
            format!("'{res}' no longer defines {}; tokens will not carry them.", dropped.join(", ")),
        );
    }
    granted
}

/// The permissions of `t` the consent prompt must show (rule 6).
fn needs_consent<'a>(
    s: &ConsentSnapshot<'_>,
    t: &Target<'a>,
    granted: &[String],
    r: &mut Rules,
) -> Vec<&'a PermissionScope> {
    let res = &t.view.app.display_name;
    let app = &s.client.display_name;
    let missing = |list: Vec<&'a PermissionScope>| -> Vec<&'a PermissionScope> {
        list.into_iter().filter(|p| !granted.iter().any(|g| g.eq_ignore_ascii_case(&p.value))).collect()
    };
    let out = if t.default {
        if !granted.is_empty() && s.prompt != Prompt::Consent {
            r.pass(
                "consent.default",
                format!("'.default' on '{res}': a grant already exists, so the token carries what was granted without a prompt."),
            );
            return Vec::new();
        }
        let mut required = t.wanted.clone();
        required.extend(t.extra_oidc.iter().copied());
        if s.prompt == Prompt::Consent {
            r.info(
                "consent.prompt",
                format!("prompt=consent: ask again for the whole static list of '{app}' on '{res}'."),
            );
            required
        } else {
            r.info(
                "consent.default",
                format!("'.default' on '{res}': nothing has been granted yet, so the static list needs consent."),
            );
            missing(required)
        }
    } else if s.prompt == Prompt::Consent {
        r.info("consent.prompt", format!("prompt=consent: ask again for everything requested from '{res}'."));
        t.wanted.clone()
    } else {
        missing(t.wanted.clone())
    };
    if out.is_empty() {
        r.pass("consent.missing", format!("Everything requested from '{res}' has been granted."));
    } else if s.prompt != Prompt::Consent {
        let values: Vec<&str> = out.iter().map(|p| p.value.as_str()).collect();
        r.fail("consent.missing", format!("Consent is missing on '{res}' for: {}.", values.join(", ")));
    }
    out
}

fn policy_text(s: &ConsentSnapshot<'_>) -> String {
    let app = &s.client.display_name;
    match s.tenant.user_consent {
        UserConsent::None => "User consent is set to 'none': users cannot consent to apps themselves.".to_string(),
        UserConsent::All => {
            "User consent is set to 'all': users may consent to any permission that does not require admin consent."
                .to_string()
        }
        UserConsent::Low => {
            let publisher = if s.client.home_tenant_id == s.tenant.id {
                format!("'{app}' is registered in this organisation")
            } else if s.client.verified_publisher {
                format!("'{app}' is from a verified publisher")
            } else {
                format!("'{app}' has no verified publisher and is registered in another organisation")
            };
            format!("User consent is set to 'low': only low-impact permissions of verified or same-tenant apps; {publisher}.")
        }
    }
}
