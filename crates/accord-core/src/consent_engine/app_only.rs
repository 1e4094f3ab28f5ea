//! An application acting as itself (the client credentials grant): the same audience and
//! enterprise-app rules as a sign-in, then the application permissions an administrator
//! granted it on the resource. No user, so no assignment and no consent prompt: an app-only
//! token carries only what admin consent gave.

use super::{check_audience, Rule, Rules};
use crate::aadsts::Aadsts;
use crate::directory::{AppRoleAssignment, Application, ServicePrincipal, Tenant};
use crate::well_known::DEFAULT_ACCESS_ROLE_ID;

use crate::ids::ServicePrincipalId;

/// What an app-only request is decided on.
#[derive(Debug, Clone, Copy)]
pub struct AppOnlySnapshot<'a> {
    pub tenant: &'a Tenant,
    /// The client app's registration (from its home tenant).
    pub client: &'a Application,
    /// The client's enterprise app in this tenant, if any.
    pub client_sp: Option<&'a ServicePrincipal>,
    /// The resource named by `{resource}/.default`, and its service principal's id here.
    pub resource: &'a Application,
    pub resource_sp_id: ServicePrincipalId,
    /// The app role assignments held by the client's service principal.
    pub app_role_grants: &'a [AppRoleAssignment],
}

/// The application permissions to put in the token (`roles`), or the refusal; with every check
/// made, in order, the last with the id `outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppOnlyOutcome {
    pub decision: Result<Vec<String>, Aadsts>,
    pub rules: Vec<Rule>,
}

/// Decides an app-only token request.
pub fn decide_app_only(s: &AppOnlySnapshot<'_>) -> AppOnlyOutcome {
    let mut rules = Rules::default();
    let decision = app_only(s, &mut rules);
    let app = &s.client.display_name;
    let resource = &s.resource.display_name;
    match &decision {
        Ok(roles) if roles.is_empty() => rules.pass(
            "outcome",
            format!("An app-only token for '{resource}' is issued to '{app}'; it carries no application permission."),
        ),
        Ok(roles) => rules.pass(
            "outcome",
            format!("An app-only token for '{resource}' is issued to '{app}' with: {}.", roles.join(", ")),
        ),
        Err(e) => rules.fail("outcome", format!("Refused: AADSTS{} ({}).", e.code, e.error.as_str())),
    }
    AppOnlyOutcome { decision, rules: rules.0 }
}

fn app_only(s: &AppOnlySnapshot<'_>, r: &mut Rules) -> Result<Vec<String>, Aadsts> {
    check_audience(s.client, s.tenant, r)?;
    let app = &s.client.display_name;
    let tenant = &s.tenant.display_name;
    let Some(sp) = s.client_sp else {
        r.fail(
            "client.service_principal",
            format!("'{app}' has no enterprise application in '{tenant}': no administrator there has consented to it (AADSTS700016)."),
        );
        return Err(Aadsts::unknown_client(&s.client.app_id.to_string()));
    };
    if !sp.enabled {
        r.fail(
            "client.service_principal",
            format!("The enterprise application '{app}' is disabled in '{tenant}' (disabled or blocked by an administrator) (AADSTS7000112)."),
        );
        return Err(Aadsts::app_disabled(&s.client.app_id.to_string(), &s.client.display_name));
    }
    r.pass("client.service_principal", format!("The enterprise application '{app}' is enabled in '{tenant}'."));
    let roles: Vec<String> = s
        .app_role_grants
        .iter()
        .filter(|a| a.resource_sp_id == s.resource_sp_id && a.app_role_id != DEFAULT_ACCESS_ROLE_ID)
        .filter_map(|a| s.resource.app_role_by_id(a.app_role_id).map(|role| role.value.clone()))
        .collect();
    let resource = &s.resource.display_name;
    if roles.is_empty() {
        r.info(
            "consent.application",
            format!("'{app}' holds no application permission of '{resource}' in '{tenant}'."),
        );
    } else {
        r.pass(
            "consent.application",
            format!(
                "An administrator granted '{app}' these application permissions of '{resource}': {}.",
                roles.join(", ")
            ),
        );
    }
    Ok(roles)
}
