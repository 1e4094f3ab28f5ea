//! Permissions as the prompts show them, who may consent to what, and what is already granted.

use super::ResourceView;
use crate::directory::{
    AppRole, AppRoleMemberType, Application, ConsentType, DelegatedGrant, DirectoryRole, PermissionScope,
    ServicePrincipal, Tenant, UserConsent,
};
use crate::well_known::GRAPH_APP_ID;
use uuid::Uuid;

use crate::ids::{AppId, ServicePrincipalId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermissionKind {
    /// A delegated permission (`oauth2PermissionScopes`, `scp` claim).
    Delegated,
    /// An application permission (an app role `Application` may hold, `roles` claim).
    Application,
}

impl PermissionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionKind::Delegated => "Delegated",
            PermissionKind::Application => "Application",
        }
    }
}

/// Which of a delegated permission's two texts a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facing {
    /// "Read your calendars": the user consents for themselves.
    User,
    /// "Read user calendars": an administrator consents for everyone.
    Admin,
}

/// A permission as a consent or approval page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRef {
    pub resource_app_id: AppId,
    /// The resource's service principal in the tenant (what grants point at).
    pub resource_sp_id: ServicePrincipalId,
    pub resource_display_name: String,
    /// The scope's or app role's id.
    pub id: Uuid,
    pub value: String,
    pub kind: PermissionKind,
    /// Always true for application permissions.
    pub admin_consent_required: bool,
    pub display_name: String,
    pub description: String,
}

impl PermissionRef {
    /// The permission as a fully qualified scope: `https://graph.microsoft.com/Calendars.Read`
    /// for Microsoft Graph, `{resource app id}/{value}` for any other API — the form the
    /// admin-consent response's `scope` carries, and one that `ScopeRequest::parse` reads back.
    pub fn qualified_scope(&self) -> String {
        crate::scope::qualified_scope(self.resource_app_id, &self.value)
    }

    pub fn delegated(resource: &ResourceView<'_>, scope: &PermissionScope, facing: Facing) -> Self {
        let (name, description) = match facing {
            Facing::User if !scope.user_consent_display_name.is_empty() => {
                (&scope.user_consent_display_name, &scope.user_consent_description)
            }
            _ => (&scope.admin_consent_display_name, &scope.admin_consent_description),
        };
        PermissionRef {
            resource_app_id: resource.app.app_id,
            resource_sp_id: resource.sp_id,
            resource_display_name: resource.app.display_name.clone(),
            id: scope.id,
            value: scope.value.clone(),
            kind: PermissionKind::Delegated,
            admin_consent_required: scope.admin_consent_required,
            display_name: if name.is_empty() { scope.value.clone() } else { name.clone() },
            description: description.clone(),
        }
    }

    pub fn application(resource: &ResourceView<'_>, role: &AppRole) -> Self {
        PermissionRef {
            resource_app_id: resource.app.app_id,
            resource_sp_id: resource.sp_id,
            resource_display_name: resource.app.display_name.clone(),
            id: role.id,
            value: role.value.clone(),
            kind: PermissionKind::Application,
            admin_consent_required: true,
            display_name: if role.display_name.is_empty() { role.value.clone() } else { role.display_name.clone() },
            description: role.description.clone(),
        }
    }

    /// A Microsoft Graph app role: only Privileged Role and Global Administrators grant those.
    pub fn is_graph_application(&self) -> bool {
        self.kind == PermissionKind::Application && self.resource_app_id == GRAPH_APP_ID
    }

    /// `Calendars.Read` for delegated permissions, `Calendars.Read (application)` otherwise;
    /// prefixed with the resource unless it is Microsoft Graph.
    pub fn label(&self) -> String {
        match self.kind {
            PermissionKind::Application => format!("{} (application)", self.name()),
            _ => self.name(),
        }
    }

    /// The permission and, unless it is Microsoft Graph, its resource: `Calendars.Read`,
    /// `Expenses.Read of 'Expenses API'` (for lists already split by kind).
    pub fn name(&self) -> String {
        if self.resource_app_id == GRAPH_APP_ID {
            self.value.clone()
        } else {
            format!("{} of '{}'", self.value, self.resource_display_name)
        }
    }

    pub(super) fn same_permission(&self, other: &PermissionRef) -> bool {
        self.resource_sp_id == other.resource_sp_id && self.id == other.id && self.kind == other.kind
    }
}

/// Why a user may not consent to a permission themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserConsentBlock {
    /// Application permissions always need an administrator (§3).
    ApplicationPermission,
    /// The permission is admin-restricted (`adminConsentRequired`).
    AdminConsentRequired,
    /// Apps that require assignment always need admin consent (§4).
    AssignmentRequired,
    /// The tenant's user-consent setting is `none`.
    UserConsentDisabled,
    /// Setting `low`: the permission is not classified low impact.
    NotLowImpact,
    /// Setting `low`: the app is neither from a verified publisher nor registered in this tenant.
    UnverifiedPublisher,
}

impl UserConsentBlock {
    /// One sentence for the rule log.
    pub fn describe(self, permission: &PermissionRef, client: &Application) -> String {
        let p = permission.label();
        let app = &client.display_name;
        match self {
            UserConsentBlock::ApplicationPermission => {
                format!("{p} is an application permission; only an administrator can grant it.")
            }
            UserConsentBlock::AdminConsentRequired => format!("{p} requires admin consent."),
            UserConsentBlock::AssignmentRequired => {
                format!("'{app}' requires assignment, so users cannot consent to {p} themselves.")
            }
            UserConsentBlock::UserConsentDisabled => {
                format!("{p} cannot be consented to by users: user consent is off in this organisation.")
            }
            UserConsentBlock::NotLowImpact => format!("{p} is not classified low impact."),
            UserConsentBlock::UnverifiedPublisher => format!(
                "{p} is classified low impact, but '{app}' has no verified publisher and is registered in another organisation."
            ),
        }
    }
}

/// Whether the signed-in user may consent to `permission` for themselves (§3–§5):
/// not an application permission, not admin-restricted, the app does not require assignment,
/// and the tenant's setting allows it — `none`: never; `low`: permissions classified low, of
/// apps from a verified publisher or registered in this tenant; `all`: yes.
pub fn user_consentable(
    tenant: &Tenant,
    client: &Application,
    client_sp: Option<&ServicePrincipal>,
    low_classified: &[Uuid],
    permission: &PermissionRef,
) -> Result<(), UserConsentBlock> {
    if permission.kind == PermissionKind::Application {
        return Err(UserConsentBlock::ApplicationPermission);
    }
    if permission.admin_consent_required {
        return Err(UserConsentBlock::AdminConsentRequired);
    }
    if client_sp.is_some_and(|sp| sp.assignment_required) {
        return Err(UserConsentBlock::AssignmentRequired);
    }
    match tenant.user_consent {
        UserConsent::None => Err(UserConsentBlock::UserConsentDisabled),
        UserConsent::All => Ok(()),
        UserConsent::Low => {
            if !low_classified.contains(&permission.id) {
                Err(UserConsentBlock::NotLowImpact)
            } else if !(client.verified_publisher || client.home_tenant_id == tenant.id) {
                Err(UserConsentBlock::UnverifiedPublisher)
            } else {
                Ok(())
            }
        }
    }
}

/// Whether a user holding `roles` may grant `permission` on behalf of the organisation (§7):
/// Global and Privileged Role Administrators everything; Cloud Application and Application
/// Administrators everything except Microsoft Graph application permissions.
pub fn can_grant_for_org(roles: &[DirectoryRole], permission: &PermissionRef) -> bool {
    roles.iter().any(|role| match role {
        DirectoryRole::GlobalAdministrator | DirectoryRole::PrivilegedRoleAdministrator => true,
        DirectoryRole::CloudApplicationAdministrator | DirectoryRole::ApplicationAdministrator => {
            !permission.is_graph_application()
        }
    })
}

/// What a client lists statically for one resource (`requiredResourceAccess`), resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticPermissions {
    pub delegated: Vec<PermissionRef>,
    pub application: Vec<PermissionRef>,
    /// Listed delegated values the resource does not define; they are ignored.
    pub unresolved_delegated: Vec<String>,
    /// Listed application values that are not app roles applications may hold; ignored.
    pub unresolved_application: Vec<String>,
}

/// `{resource}/.default`: the client's static list for `resource`, or `None` when the client
/// does not list the resource at all (AADSTS650057).
pub fn expand_default(client: &Application, resource: &ResourceView<'_>, facing: Facing) -> Option<StaticPermissions> {
    let required = client.required_for(resource.app.app_id)?;
    let mut out = StaticPermissions::default();
    for value in &required.delegated {
        match resource.app.scope(value) {
            Some(scope) => {
                let p = PermissionRef::delegated(resource, scope, facing);
                if !out.delegated.iter().any(|q| q.same_permission(&p)) {
                    out.delegated.push(p);
                }
            }
            None => out.unresolved_delegated.push(value.clone()),
        }
    }
    for value in &required.application {
        match application_role(resource.app, value) {
            Some(role) => {
                let p = PermissionRef::application(resource, role);
                if !out.application.iter().any(|q| q.same_permission(&p)) {
                    out.application.push(p);
                }
            }
            None => out.unresolved_application.push(value.clone()),
        }
    }
    Some(out)
}

/// An app role that applications may hold, by value.
pub(super) fn application_role<'a>(app: &'a Application, value: &str) -> Option<&'a AppRole> {
    app.app_roles.iter().find(|r| {
        r.value.eq_ignore_ascii_case(value) && r.allowed_member_types.contains(&AppRoleMemberType::Application)
    })
}

/// The delegated permissions granted to a client for a resource on a user's behalf: the
/// organisation's `AllPrincipals` grant first, then the user's own `Principal` grant, without
/// duplicates (compared case-insensitively).
pub fn granted_scopes(
    grants: &[DelegatedGrant],
    client_sp_id: ServicePrincipalId,
    resource_sp_id: ServicePrincipalId,
    user_id: UserId,
) -> Vec<String> {
    let (org, own) = granted_split(grants, client_sp_id, resource_sp_id, user_id);
    let mut out: Vec<String> = Vec::new();
    for s in org.into_iter().chain(own) {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
            out.push(s.to_string());
        }
    }
    out
}

/// The organisation's and the user's own grants, separately, for the rule text.
pub(super) fn granted_split(
    grants: &[DelegatedGrant],
    client_sp_id: ServicePrincipalId,
    resource_sp_id: ServicePrincipalId,
    user_id: UserId,
) -> (Vec<&str>, Vec<&str>) {
    let mut org = Vec::new();
    let mut own = Vec::new();
    for g in grants.iter().filter(|g| g.client_sp_id == client_sp_id && g.resource_sp_id == resource_sp_id) {
        let into = match g.consent_type {
            ConsentType::AllPrincipals => &mut org,
            ConsentType::Principal if g.principal_id == Some(user_id) => &mut own,
            ConsentType::Principal => continue,
        };
        into.extend(g.scopes.iter().map(String::as_str));
    }
    (org, own)
}
