//! An administrator consents on behalf of the organisation: `/adminconsent` (v1 and v2) and the
//! admin center's "Grant admin consent" button.

use super::permissions::PermissionRef;
use super::scope_resolution::{default_not_listed, named_resource, named_scope, oidc_scopes};
use super::{
    can_grant_for_org, check_audience, check_user, expand_default, find_by_app_id, granting_roles, role_names,
    ConsentSnapshot, Decision, Facing, Outcome, PermissionKind, Rules,
};
use crate::aadsts::Aadsts;
use crate::directory::{ConsentType, DirectoryRole};

/// Decides an admin-consent request. `static_default` is true for the v1 endpoint and the
/// admin center's button (every statically listed permission); the v2 endpoint passes false
/// and the request's `scope` decides (`/.default` behaves like v1, §2).
pub fn decide_admin_consent(s: &ConsentSnapshot<'_>, static_default: bool) -> Outcome {
    let mut rules = Rules::default();
    let decision = admin_consent(s, static_default, &mut rules).unwrap_or_else(Decision::Refuse);
    rules.finish(s.client, decision)
}

fn admin_consent(s: &ConsentSnapshot<'_>, static_default: bool, r: &mut Rules) -> Result<Decision, Aadsts> {
    let app = &s.client.display_name;
    let user = &s.user.display_name;

    // 1. Only an administrator can consent for the organisation.
    let roles = granting_roles(s.user_roles);
    if roles.is_empty() {
        r.fail(
            "consent.admin_role",
            format!("{user} holds no role that can grant consent to '{app}' on behalf of the organisation; only an administrator can grant it (AADSTS90094)."),
        );
        return Ok(Decision::NotPermitted(Aadsts::not_a_consent_administrator(app, &s.user.upn)));
    }
    r.pass(
        "consent.admin_role",
        format!(
            "{user} is {} and may grant consent to '{app}' on behalf of the organisation{}.",
            role_names(&roles),
            if roles
                .iter()
                .any(|r| matches!(r, DirectoryRole::GlobalAdministrator | DirectoryRole::PrivilegedRoleAdministrator))
            {
                ""
            } else {
                ", except for Microsoft Graph application permissions"
            }
        ),
    );

    // 2. The app must be usable in this tenant at all.
    check_audience(s.client, s.tenant, r)?;
    check_user(s, r)?;
    match s.client_sp {
        None => r.info(
            "client.service_principal",
            format!("'{app}' has no enterprise application in '{}' yet; consent creates it.", s.tenant.display_name),
        ),
        Some(sp) if !sp.enabled => r.info(
            "client.service_principal",
            format!("The enterprise application '{app}' is disabled; consent does not enable it, and users stay refused (AADSTS7000112) until an administrator does."),
        ),
        Some(_) => r.pass("client.service_principal", format!("The enterprise application '{app}' is enabled.")),
    }

    // 3. What is being consented to.
    let (delegated, application) = resolve(s, static_default, r)?;

    // 4. Cloud Application and Application Administrators cannot grant Graph app roles (§7).
    let blocked: Vec<&PermissionRef> = application.iter().filter(|p| !can_grant_for_org(&roles, p)).collect();
    if !blocked.is_empty() {
        let labels: Vec<String> = blocked.iter().map(|p| p.label()).collect();
        let role = roles
            .iter()
            .find(|r| {
                matches!(r, DirectoryRole::CloudApplicationAdministrator | DirectoryRole::ApplicationAdministrator)
            })
            .copied()
            .unwrap_or(DirectoryRole::ApplicationAdministrator);
        r.fail(
            "consent.admin_role",
            format!(
                "{user} is {}, which cannot grant Microsoft Graph application permissions: {}. A Privileged Role Administrator or Global Administrator must grant them.",
                role_names(&roles),
                labels.join(", ")
            ),
        );
        return Ok(Decision::NotPermitted(Aadsts::role_cannot_grant(
            app,
            &s.user.upn,
            role.display_name(),
            &labels.join(", "),
        )));
    }
    if !application.is_empty() {
        r.pass("consent.admin_role", format!("{user}'s role covers every application permission requested."));
    }

    // 5. What the organisation already granted, for the record.
    note_already_granted(s, &delegated, &application, r);
    Ok(Decision::PromptAdminConsent { delegated, application })
}

type Resolved = (Vec<PermissionRef>, Vec<PermissionRef>);

fn resolve(s: &ConsentSnapshot<'_>, static_default: bool, r: &mut Rules) -> Result<Resolved, Aadsts> {
    let app = &s.client.display_name;
    let req = s.request;
    let oidc = req.oidc.values();
    if !static_default && req.resources.is_empty() && oidc.is_empty() {
        r.fail("scope.request", "The request names no scope at all (AADSTS900144).");
        return Err(Aadsts::missing_parameter("scope"));
    }
    let mut delegated: Vec<PermissionRef> = Vec::new();
    let mut application: Vec<PermissionRef> = Vec::new();
    let push = |list: &mut Vec<PermissionRef>, p: PermissionRef| {
        if !list.iter().any(|q| q.same_permission(&p)) {
            list.push(p);
        }
    };

    // Each `.default` must name the client itself or a resource it lists.
    for rr in req.resources.iter().filter(|rr| rr.default && !s.client.is_named_by(&rr.resource)) {
        let view = named_resource(s, &rr.resource, r)?;
        if s.client.required_for(view.app.app_id).is_none() {
            return Err(default_not_listed(s, &rr.resource, view, r));
        }
    }

    if static_default || req.resources.iter().any(|rr| rr.default) {
        r.info(
            "scope.default",
            format!("Admin consent to the static list: every permission '{app}' lists, delegated and application, for every resource."),
        );
        for required in &s.client.required {
            let Some(view) = find_by_app_id(s.resources, required.resource_app_id) else {
                r.fail(
                    "scope.resource",
                    format!(
                        "'{app}' lists permissions of the resource {}, which does not exist in '{}' (AADSTS500011).",
                        required.resource_app_id, s.tenant.display_name
                    ),
                );
                return Err(Aadsts::resource_not_found(&required.resource_app_id.to_string()));
            };
            let res = &view.app.display_name;
            let stat = expand_default(s.client, view, Facing::Admin).unwrap_or_default();
            let mut listed: Vec<String> = stat.delegated.iter().map(|p| p.value.clone()).collect();
            listed.extend(stat.application.iter().map(|p| format!("{} (application)", p.value)));
            r.pass(
                "scope.default",
                if listed.is_empty() {
                    format!("'{app}' lists nothing it can be granted on '{res}'.")
                } else {
                    format!("'{app}' lists on '{res}': {}.", listed.join(", "))
                },
            );
            let mut ignored = stat.unresolved_delegated.clone();
            ignored.extend(stat.unresolved_application.iter().map(|v| format!("{v} (application)")));
            if !ignored.is_empty() {
                r.info("scope.default", format!("'{res}' does not define {}; ignored.", ignored.join(", ")));
            }
            stat.delegated.into_iter().for_each(|p| push(&mut delegated, p));
            stat.application.into_iter().for_each(|p| push(&mut application, p));
        }
    }

    // Dynamic scopes: delegated permissions only (§2).
    for rr in req.resources.iter().filter(|rr| !rr.default) {
        let view = named_resource(s, &rr.resource, r)?;
        let res = &view.app.display_name;
        for value in &rr.permissions {
            let scope = named_scope(view, &rr.resource, value, r)?;
            push(&mut delegated, PermissionRef::delegated(view, scope, Facing::Admin));
        }
        r.pass("scope.resource", format!("Requested from '{res}': {}.", rr.permissions.join(", ")));
    }

    if !oidc.is_empty() {
        let (graph, scopes) = oidc_scopes(s, &oidc, r)?;
        for scope in scopes {
            push(&mut delegated, PermissionRef::delegated(graph, scope, Facing::Admin));
        }
        r.info(
            "scope.oidc",
            format!(
                "The OpenID Connect scopes requested ({}) are granted as Microsoft Graph delegated permissions.",
                oidc.join(" ")
            ),
        );
    }
    Ok((delegated, application))
}

fn note_already_granted(
    s: &ConsentSnapshot<'_>,
    delegated: &[PermissionRef],
    application: &[PermissionRef],
    r: &mut Rules,
) {
    let app = &s.client.display_name;
    if delegated.is_empty() && application.is_empty() {
        r.info(
            "consent.grants",
            format!("'{app}' asks for no permission; accepting only adds it to the organisation."),
        );
        return;
    }
    let Some(sp) = s.client_sp else {
        r.info("consent.grants", format!("Nothing has been granted to '{app}' in this organisation yet."));
        return;
    };
    let already: Vec<String> = delegated
        .iter()
        .filter(|p| {
            s.delegated_grants.iter().any(|g| {
                g.client_sp_id == sp.id
                    && g.resource_sp_id == p.resource_sp_id
                    && g.consent_type == ConsentType::AllPrincipals
                    && g.scopes.iter().any(|v| v.eq_ignore_ascii_case(&p.value))
            })
        })
        .chain(application.iter().filter(|p| {
            p.kind == PermissionKind::Application
                && s.app_role_grants
                    .iter()
                    .any(|a| a.principal_id == sp.id && a.resource_sp_id == p.resource_sp_id && a.app_role_id == p.id)
        }))
        .map(PermissionRef::label)
        .collect();
    let total = delegated.len() + application.len();
    if already.is_empty() {
        r.info(
            "consent.grants",
            format!("None of these permissions has been granted to '{app}' for the organisation yet."),
        );
    } else if already.len() == total {
        r.info(
            "consent.grants",
            format!("Every one of these permissions is already granted to '{app}' for the organisation."),
        );
    } else {
        r.info("consent.grants", format!("Already granted to '{app}' for the organisation: {}.", already.join(", ")));
    }
}
