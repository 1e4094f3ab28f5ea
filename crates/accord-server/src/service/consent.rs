//! Consent as the server applies it: gather the consent engine's snapshot from the store, ask
//! the engine, and write what a consent decision grants. Every caller — authorize, token,
//! refresh, admin consent, the request workflow, `accord explain` — goes through here, so a
//! rule lives in one place (the engine) and a grant is written in one way.

use crate::service::{replication, ServiceError};
use accord_core::consent_engine::{
    self, ConsentSnapshot, Decision, GroupMembership, Outcome, PermissionKind, PermissionRef, Prompt, ResourceView,
};
use accord_core::consent_records::AuditEvent;
use accord_core::consent_records::RequestStatus;
use accord_core::directory::*;
use accord_core::ids::{AppId, GroupId, ServicePrincipalId, TenantId, UserId};
use accord_core::scope::{OidcScopes, ScopeRequest};
use accord_core::well_known::GRAPH_APP_ID;
use accord_core::Aadsts;
use accord_store::{Change, Store};
use serde_json::json;
use uuid::Uuid;

/// A resource API as seen from one tenant.
#[derive(Debug, Clone)]
pub struct TenantResource {
    pub app: Application,
    pub sp: ServicePrincipal,
}

/// Finds an API by identifier URI or application id, and its service principal in the tenant.
pub async fn resolve_resource(
    store: &dyn Store,
    tenant_id: TenantId,
    name: &str,
) -> Result<TenantResource, ServiceError> {
    let app = match name.parse::<AppId>() {
        Ok(app_id) => store.application_by_app_id(app_id).await?,
        Err(_) => store.application_by_identifier_uri(name).await?,
    };
    let Some(app) = app else {
        return Err(Aadsts::resource_not_found(&crate::tenancy::sanitize(name)).into());
    };
    match store.service_principal_by_app_id(tenant_id, app.app_id).await? {
        Some(sp) => Ok(TenantResource { app, sp }),
        None => Err(Aadsts::resource_not_found(&app.display_name).into()),
    }
}

/// What an app-only token is issued with.
pub struct AppOnlyAccess {
    /// The client's enterprise app in the tenant (the token's `oid`).
    pub client_sp_id: ServicePrincipalId,
    pub resource: TenantResource,
    /// The application permissions granted on the resource (the token's `roles`).
    pub roles: Vec<String>,
}

/// The client credentials grant: the resource `{resource}/.default` names, then the engine's
/// app-only decision over the client's enterprise app and its application permissions.
pub async fn app_only_access(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    resource_name: &str,
) -> Result<AppOnlyAccess, ServiceError> {
    let resource = resolve_resource(store, tenant.id, resource_name).await?;
    let mut client_sp = store.service_principal_by_app_id(tenant.id, client.app_id).await?;
    let now = accord_core::clock::now();
    let mut grants: Vec<_> = match &client_sp {
        Some(sp) => store.app_role_assignments_of(tenant.id, sp.id.into()).await?,
        None => Vec::new(),
    }
    .into_iter()
    .filter(|a| a.in_force(now))
    .collect();
    if let Some((lag, events)) = replication::hidden_changes(store, tenant, client.app_id).await? {
        let parts = replication::ConsentParts {
            client_sp: &mut client_sp,
            delegated_grants: &mut Vec::new(),
            app_role_grants: &mut grants,
            assignments_to_client: &mut Vec::new(),
        };
        let undone = replication::rewind(parts, &lag, &events);
        if !undone.is_empty() {
            crate::replication_lag::record(
                &lag,
                &tenant.id.to_string(),
                client.app_id,
                None,
                &format!("app-only access to {resource_name}/.default"),
                format!("answered as the directory was {} s ago (not yet seen: {})", lag.seconds, undone.join(", ")),
            );
        }
    }
    let outcome = consent_engine::decide_app_only(&consent_engine::AppOnlySnapshot {
        tenant,
        client,
        client_sp: client_sp.as_ref(),
        resource: &resource.app,
        resource_sp_id: resource.sp.id,
        app_role_grants: &grants,
    });
    if crate::decision_journal::enabled() {
        let subject = crate::decision_journal::Subject {
            kind: "app_only",
            tenant_id: tenant.id.to_string(),
            client_app_id: client.app_id.to_string(),
            user: None,
            asked: format!("{resource_name}/.default"),
        };
        crate::decision_journal::record_app_only(subject, &outcome);
    }
    let roles = outcome.decision?;
    let client_sp_id = client_sp
        .map(|sp| sp.id)
        .ok_or_else(|| ServiceError::Internal("app-only access without a service principal".into()))?;
    Ok(AppOnlyAccess { client_sp_id, resource, roles })
}

/// Everything the engine needs about one user, one client and the resources involved, read
/// from the store. Owned, so callers can decide more than once (e.g. before and after a form).
pub struct ConsentWorld {
    pub tenant: Tenant,
    pub client: Application,
    pub client_sp: Option<ServicePrincipal>,
    pub user: User,
    pub roles: Vec<DirectoryRole>,
    groups: Vec<(GroupId, String, Option<GroupId>)>,
    assignments_to_client: Vec<AppRoleAssignment>,
    delegated_grants: Vec<DelegatedGrant>,
    app_role_grants: Vec<AppRoleAssignment>,
    resources: Vec<(Application, ServicePrincipalId, Vec<Uuid>)>,
    pub pending_request: Option<Uuid>,
}

impl ConsentWorld {
    pub async fn load(
        store: &dyn Store,
        tenant: &Tenant,
        client: &Application,
        user: &User,
        request: &ScopeRequest,
    ) -> Result<ConsentWorld, ServiceError> {
        Self::load_with(store, tenant, client, user, request, true).await
    }

    /// What the token endpoint decides on: it never shows a prompt, so the user's pending
    /// admin-consent request (which only words an "approval required" page) is not read — one
    /// statement less on every code redemption, refresh and Graph access check.
    pub async fn load_for_tokens(
        store: &dyn Store,
        tenant: &Tenant,
        client: &Application,
        user: &User,
        request: &ScopeRequest,
    ) -> Result<ConsentWorld, ServiceError> {
        Self::load_with(store, tenant, client, user, request, false).await
    }

    async fn load_with(
        store: &dyn Store,
        tenant: &Tenant,
        client: &Application,
        user: &User,
        request: &ScopeRequest,
        with_pending_request: bool,
    ) -> Result<ConsentWorld, ServiceError> {
        let client_sp = store.service_principal_by_app_id(tenant.id, client.app_id).await?;
        let roles = store.user_roles(tenant.id, user.id).await?;
        let groups = user_groups(store, tenant.id, user.id).await?;
        let now = accord_core::clock::now();
        let (mut assignments_to_client, mut delegated_grants, mut app_role_grants) = match &client_sp {
            Some(sp) => (
                store.app_role_assignments_to(tenant.id, sp.id).await?,
                store.delegated_grants_of_client(tenant.id, sp.id).await?,
                store.app_role_assignments_of(tenant.id, sp.id.into()).await?,
            ),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        // A time-bound grant or assignment past its end grants nothing, even before the sweep
        // deletes it.
        assignments_to_client.retain(|a| a.in_force(now));
        delegated_grants.retain(|g| g.in_force(now));
        app_role_grants.retain(|a| a.in_force(now));
        let pending_request = if with_pending_request && tenant.admin_consent_requests.enabled {
            store
                .consent_requests(tenant.id, Some(client.app_id))
                .await?
                .into_iter()
                .find(|r| r.user_id == user.id && r.status == RequestStatus::InProgress)
                .map(|r| r.id)
        } else {
            None
        };
        let resources = load_resources(store, tenant.id, client, request).await?;
        Ok(ConsentWorld {
            tenant: tenant.clone(),
            client: client.clone(),
            client_sp,
            user: user.clone(),
            roles,
            groups,
            assignments_to_client,
            delegated_grants,
            app_role_grants,
            resources,
            pending_request,
        })
    }

    fn with_snapshot<T>(&self, request: &ScopeRequest, prompt: Prompt, f: impl FnOnce(&ConsentSnapshot<'_>) -> T) -> T {
        let groups: Vec<GroupMembership<'_>> = self
            .groups
            .iter()
            .map(|(id, name, via)| GroupMembership { id: *id, display_name: name, via: *via })
            .collect();
        let resources: Vec<ResourceView<'_>> = self
            .resources
            .iter()
            .map(|(app, sp_id, low)| ResourceView { app, sp_id: *sp_id, low_classified: low })
            .collect();
        let snapshot = ConsentSnapshot {
            tenant: &self.tenant,
            client: &self.client,
            client_sp: self.client_sp.as_ref(),
            user: &self.user,
            user_roles: &self.roles,
            user_groups: &groups,
            assignments_to_client: &self.assignments_to_client,
            delegated_grants: &self.delegated_grants,
            app_role_grants: &self.app_role_grants,
            resources: &resources,
            pending_request: self.pending_request,
            request,
            prompt,
        };
        f(&snapshot)
    }

    pub fn decide_sign_in(&self, request: &ScopeRequest, prompt: Prompt) -> Outcome {
        let outcome = self.with_snapshot(request, prompt, consent_engine::decide_sign_in);
        self.journal("sign_in", request, &outcome);
        outcome
    }

    pub fn decide_admin_consent(&self, request: &ScopeRequest, static_default: bool) -> Outcome {
        let outcome =
            self.with_snapshot(request, Prompt::Default, |s| consent_engine::decide_admin_consent(s, static_default));
        self.journal("admin_consent", request, &outcome);
        outcome
    }

    /// Test mode's decision journal (a no-op otherwise).
    fn journal(&self, kind: &'static str, request: &ScopeRequest, outcome: &Outcome) {
        if crate::decision_journal::enabled() {
            crate::decision_journal::record(self.journal_subject(kind, request), outcome);
        }
    }

    /// The journal entry of an answer the engine's outcome led to (`refusal` when it was one).
    fn journal_answer(&self, kind: &'static str, request: &ScopeRequest, outcome: &Outcome, refusal: Option<&Aadsts>) {
        if crate::decision_journal::enabled() {
            crate::decision_journal::record_answer(self.journal_subject(kind, request), &outcome.rules, refusal);
        }
    }

    fn journal_subject(&self, kind: &'static str, request: &ScopeRequest) -> crate::decision_journal::Subject<'_> {
        crate::decision_journal::Subject {
            kind,
            tenant_id: self.tenant.id.to_string(),
            client_app_id: self.client.app_id.to_string(),
            user: Some(&self.user.upn),
            asked: asked(request),
        }
    }

    /// Test mode's replication lag: the world as a replica that has not yet seen the consent
    /// changes of the last seconds would show it (`service::replication`).
    async fn replicate_with_lag(&mut self, store: &dyn Store, request: &ScopeRequest) -> Result<(), ServiceError> {
        let Some((lag, events)) = replication::hidden_changes(store, &self.tenant, self.client.app_id).await? else {
            return Ok(());
        };
        let parts = replication::ConsentParts {
            client_sp: &mut self.client_sp,
            delegated_grants: &mut self.delegated_grants,
            app_role_grants: &mut self.app_role_grants,
            assignments_to_client: &mut self.assignments_to_client,
        };
        let undone = replication::rewind(parts, &lag, &events);
        if !undone.is_empty() {
            crate::replication_lag::record(
                &lag,
                &self.tenant.id.to_string(),
                self.client.app_id,
                Some(&self.user.upn),
                &format!("delegated access to {}", asked(request)),
                format!("answered as the directory was {} s ago (not yet seen: {})", lag.seconds, undone.join(", ")),
            );
        }
        Ok(())
    }

    pub fn resource(&self, app_id: AppId) -> Option<&Application> {
        self.resources.iter().map(|(app, _, _)| app).find(|a| a.app_id == app_id)
    }
}

/// The user's groups, transitively, with names and the way up through nested groups (`via`,
/// which only the assignment rule's wording uses): one read, whatever the nesting.
async fn user_groups(
    store: &dyn Store,
    tenant_id: TenantId,
    user_id: UserId,
) -> Result<Vec<(GroupId, String, Option<GroupId>)>, ServiceError> {
    let memberships = store.memberships_of(tenant_id, user_id.into()).await?;
    Ok(memberships.into_iter().map(|m| (m.group_id, m.group_name, m.via)).collect())
}

/// The resources a request may touch: those it names, those the client lists statically,
/// Microsoft Graph (OIDC scopes) and the client itself. Resources without a service principal
/// in the tenant are left out; the engine then refuses with AADSTS500011.
async fn load_resources(
    store: &dyn Store,
    tenant_id: TenantId,
    client: &Application,
    request: &ScopeRequest,
) -> Result<Vec<(Application, ServicePrincipalId, Vec<Uuid>)>, ServiceError> {
    let mut apps: Vec<Application> = Vec::new();
    let add = |app: Option<Application>, apps: &mut Vec<Application>| {
        if let Some(app) = app {
            if !apps.iter().any(|a| a.app_id == app.app_id) {
                apps.push(app);
            }
        }
    };
    for r in &request.resources {
        let app = match r.resource.parse::<AppId>() {
            Ok(id) if id == client.app_id => Some(client.clone()),
            Ok(id) => store.application_by_app_id(id).await?,
            Err(_) => store.application_by_identifier_uri(&r.resource).await?,
        };
        add(app, &mut apps);
    }
    for req in &client.required {
        let app = if req.resource_app_id == client.app_id {
            Some(client.clone())
        } else {
            store.application_by_app_id(req.resource_app_id).await?
        };
        add(app, &mut apps);
    }
    if !apps.iter().any(|a| a.app_id == GRAPH_APP_ID) {
        add(store.application_by_app_id(GRAPH_APP_ID).await?, &mut apps);
    }
    add(Some(client.clone()), &mut apps);
    let mut out = Vec::new();
    for app in apps {
        let Some(sp) = store.service_principal_by_app_id(tenant_id, app.app_id).await? else {
            if app.app_id == client.app_id {
                // The client's own scopes: its service principal may not exist yet; grants
                // point at it once consent creates it.
                out.push((app, ServicePrincipalId::NOT_YET_CREATED, Vec::new()));
            }
            continue;
        };
        let low = store
            .permission_classifications(tenant_id, sp.id)
            .await?
            .into_iter()
            .filter(|c| c.classification.eq_ignore_ascii_case("low"))
            .map(|c| c.permission_id)
            .collect();
        out.push((app, sp.id, low));
    }
    Ok(out)
}

/// What a user token may carry for one resource.
#[derive(Debug, Clone)]
pub struct DelegatedDecision {
    pub resource: Application,
    pub scopes: Vec<String>,
    /// The client's app roles held by the user (directly or through groups).
    pub roles: Vec<String>,
    pub oidc: OidcScopes,
}

/// For the token endpoint (code redemption, refresh, ROPC): tokens only for what is granted.
/// Anything that would need a prompt is AADSTS65001 with `consent_required`.
pub async fn delegated_access(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    user: &User,
    request: &ScopeRequest,
) -> Result<DelegatedDecision, ServiceError> {
    let mut world = ConsentWorld::load_for_tokens(store, tenant, client, user, request).await?;
    world.replicate_with_lag(store, request).await?;
    let outcome = world.with_snapshot(request, Prompt::Default, consent_engine::decide_sign_in);
    let result = match &outcome.decision {
        Decision::Issue { resource_app_id, scopes, roles } => {
            let resource = world.resource(*resource_app_id).cloned().ok_or_else(|| {
                ServiceError::Internal(format!("engine chose resource {resource_app_id} outside the snapshot"))
            })?;
            Ok(DelegatedDecision { resource, scopes: scopes.clone(), roles: roles.clone(), oidc: request.oidc })
        }
        Decision::Refuse(e) => Err(e.clone()),
        other => {
            let missing: Vec<String> = prompt_permissions(other).iter().map(|p| p.label()).collect();
            Err(Aadsts::consent_missing(
                &client.app_id.to_string(),
                &format!("Missing consent for: {}.", missing.join(", ")),
            ))
        }
    };
    // The journal says what the client was told: a prompt becomes AADSTS65001 here.
    world.journal_answer("token", request, &outcome, result.as_ref().err());
    result.map_err(Into::into)
}

/// Whether the consent engine still lets `client_app_id` act for `user` with the Graph
/// `scopes` a token carries (space-separated): continuous access evaluation asks this on each
/// Graph call of a long-lived token, so a revoked grant or assignment takes effect at once.
/// An unknown client or tenant is "no".
pub async fn still_granted(
    store: &dyn Store,
    tenant_id: TenantId,
    client_app_id: Option<AppId>,
    user: &User,
    scopes: &str,
) -> Result<bool, ServiceError> {
    let (Some(tenant), Some(client)) = (
        store.tenant(tenant_id).await?,
        match client_app_id {
            Some(id) => store.application_by_app_id(id).await?,
            None => None,
        },
    ) else {
        return Ok(false);
    };
    let graph: Vec<String> = scopes
        .split_whitespace()
        .filter(|s| !accord_core::microsoft_graph::is_oidc_scope(s))
        .map(|s| format!("{}/{s}", accord_core::well_known::GRAPH_RESOURCE_URI))
        .collect();
    if graph.is_empty() {
        return Ok(true);
    }
    let Ok(request) = ScopeRequest::parse(&graph.join(" ")) else { return Ok(false) };
    match delegated_access(store, &tenant, &client, user, &request).await {
        Ok(_) => Ok(true),
        Err(ServiceError::Unavailable(e)) => Err(ServiceError::Unavailable(e)),
        Err(ServiceError::Internal(e)) => Err(ServiceError::Internal(e)),
        Err(_) => Ok(false),
    }
}

/// An API whose consent rides along with its client's (the API lists the client in
/// `knownClientApplications`), and the delegated permissions of the API's own static list the
/// same consent grants it.
pub struct Companion {
    pub api: Application,
    pub permissions: Vec<PermissionRef>,
}

/// The APIs a consent to `client` also consents to: each API named in the client's static list
/// that lists the client as a known client application and is registered in the client's home
/// tenant, with the delegated permissions of its own static list that the same person could
/// grant — for the organisation (`org`, as an administrator would on the admin-consent page) or
/// for themselves. Each is decided by the consent engine as if the API were signing the user
/// in with `.default`; what the person may not grant is left out.
pub async fn companions(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    user: &User,
    org: bool,
) -> Result<Vec<Companion>, ServiceError> {
    let mut out = Vec::new();
    for r in &client.required {
        let Some(api) = store.application_by_app_id(r.resource_app_id).await? else { continue };
        if api.app_id == client.app_id
            || api.home_tenant_id != client.home_tenant_id
            || !api.known_client_applications.contains(&client.app_id)
        {
            continue;
        }
        let mut permissions: Vec<PermissionRef> = Vec::new();
        for needed in api.required.iter().filter(|q| !q.delegated.is_empty()) {
            let resource = if needed.resource_app_id == GRAPH_APP_ID {
                accord_core::well_known::GRAPH_RESOURCE_URI.to_string()
            } else {
                needed.resource_app_id.to_string()
            };
            let Ok(request) = ScopeRequest::parse(&format!("{resource}/.default")) else { continue };
            let world = ConsentWorld::load(store, tenant, &api, user, &request).await?;
            let granted_now = if org {
                match world.decide_admin_consent(&request, true).decision {
                    Decision::PromptAdminConsent { delegated, .. } => delegated,
                    _ => Vec::new(),
                }
            } else {
                match world.decide_sign_in(&request, Prompt::Consent).decision {
                    Decision::PromptConsent { permissions, org_required: false, .. } => permissions,
                    _ => Vec::new(),
                }
            };
            permissions.extend(granted_now.into_iter().filter(|p| p.kind == PermissionKind::Delegated));
        }
        if !permissions.is_empty() {
            out.push(Companion { api, permissions });
        }
    }
    Ok(out)
}

/// The permissions a prompting decision lists.
pub fn prompt_permissions(decision: &Decision) -> Vec<PermissionRef> {
    match decision {
        Decision::PromptConsent { permissions, .. }
        | Decision::ApprovalRequired { permissions, .. }
        | Decision::NeedAdminApproval { permissions } => permissions.clone(),
        Decision::PromptAdminConsent { delegated, application } => {
            delegated.iter().chain(application).cloned().collect()
        }
        _ => Vec::new(),
    }
}

/// Who gives consent, for the grant's type and the audit log.
#[derive(Clone, Copy)]
pub enum Grantee<'a> {
    /// The user consents for themselves: a `Principal` grant.
    User(&'a User),
    /// An administrator consents for the organisation: `AllPrincipals` grants and app roles,
    /// until an end when `until` is given (time-bound admin consent; an Accord extension).
    Organisation { admin: &'a User, until: Option<time::OffsetDateTime> },
}

/// Writes the grants for `permissions` (creating the client's service principal on first
/// consent), with an audit event, in one transaction. Existing grants are extended.
pub async fn grant(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    grantee: Grantee<'_>,
    permissions: &[PermissionRef],
    extra: Vec<Change>,
) -> Result<(), ServiceError> {
    let now = accord_core::clock::now();
    let mut changes = Vec::new();
    let client_sp = match store.service_principal_by_app_id(tenant.id, client.app_id).await? {
        Some(sp) => sp,
        None => {
            let sp = ServicePrincipal {
                tenant_id: tenant.id,
                id: ServicePrincipalId::random(),
                app_id: client.app_id,
                display_name: client.display_name.clone(),
                app_owner_tenant_id: client.home_tenant_id,
                enabled: true,
                assignment_required: false,
                created_at: now,
            };
            changes.push(Change::PutServicePrincipal(sp.clone()));
            sp
        }
    };
    let existing = store.delegated_grants_of_client(tenant.id, client_sp.id).await?;
    let held_roles = store.app_role_assignments_of(tenant.id, client_sp.id.into()).await?;
    let (consent_type, principal_id, actor) = match &grantee {
        Grantee::User(u) => (ConsentType::Principal, Some(u.id), *u),
        Grantee::Organisation { admin, .. } => (ConsentType::AllPrincipals, None, *admin),
    };
    // An organisation's consent for a time sets that end on what it writes; without one, an
    // end already set stays (a later prompt does not quietly make a time-bound grant permanent).
    let until = match grantee {
        Grantee::Organisation { until, .. } => until,
        Grantee::User(_) => None,
    };
    // One grant per resource: extend what exists, in permission order.
    let mut resources: Vec<ServicePrincipalId> = Vec::new();
    for p in permissions.iter().filter(|p| p.kind == PermissionKind::Delegated) {
        if !resources.contains(&p.resource_sp_id) {
            resources.push(p.resource_sp_id);
        }
    }
    for resource_sp_id in resources {
        // A grant on the client's own scopes points at the service principal just created.
        let resource_sp_id = if resource_sp_id.is_not_yet_created() { client_sp.id } else { resource_sp_id };
        let before = existing.iter().find(|g| {
            g.resource_sp_id == resource_sp_id && g.consent_type == consent_type && g.principal_id == principal_id
        });
        let mut grant = before.cloned().unwrap_or(DelegatedGrant {
            tenant_id: tenant.id,
            id: Uuid::new_v4(),
            client_sp_id: client_sp.id,
            resource_sp_id,
            consent_type,
            principal_id,
            scopes: Vec::new(),
            created_at: now,
            expires_at: None,
        });
        for p in permissions.iter().filter(|p| p.kind == PermissionKind::Delegated) {
            let sp = if p.resource_sp_id.is_not_yet_created() { client_sp.id } else { p.resource_sp_id };
            if sp == resource_sp_id && !grant.scopes.iter().any(|s| s.eq_ignore_ascii_case(&p.value)) {
                grant.scopes.push(p.value.clone());
            }
        }
        if until.is_some() {
            grant.expires_at = until;
        }
        // Consenting again to what is held changes nothing, and records nothing.
        if before != Some(&grant) {
            changes.push(Change::PutDelegatedGrant(grant));
        }
    }
    if matches!(grantee, Grantee::Organisation { .. }) {
        for p in permissions.iter().filter(|p| p.kind == PermissionKind::Application) {
            if let Some(held) =
                held_roles.iter().find(|a| a.resource_sp_id == p.resource_sp_id && a.app_role_id == p.id)
            {
                if until.is_some() && held.expires_at != until {
                    changes.push(Change::PutAppRoleAssignment(AppRoleAssignment { expires_at: until, ..held.clone() }));
                }
                continue;
            }
            changes.push(Change::PutAppRoleAssignment(AppRoleAssignment {
                tenant_id: tenant.id,
                id: Uuid::new_v4(),
                principal_id: client_sp.id.into(),
                principal_type: PrincipalType::ServicePrincipal,
                resource_sp_id: p.resource_sp_id,
                app_role_id: p.id,
                created_at: now,
                expires_at: until,
            }));
        }
    }
    if changes.is_empty() {
        // Everything asked for was granted already (a second Accept, Back then Accept): one
        // audit event and one webhook event per real change, so none here.
        if !extra.is_empty() {
            store.apply(&extra).await?;
        }
        return Ok(());
    }
    let action = match grantee {
        Grantee::User(_) => "consent.user.granted",
        Grantee::Organisation { .. } => "consent.admin.granted",
    };
    changes.push(audit(
        tenant.id,
        Some(actor),
        action,
        Some(client.app_id),
        match until {
            Some(end) => json!({
                "permissions": permissions.iter().map(|p| p.label()).collect::<Vec<_>>(),
                "until": end.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            }),
            None => json!({ "permissions": permissions.iter().map(|p| p.label()).collect::<Vec<_>>() }),
        },
    ));
    changes.extend(extra);
    store.apply(&changes).await?;
    tracing::info!(tenant = %tenant.id, client = %client.app_id, actor = %actor.id, action, count = permissions.len(), "consent granted");
    Ok(())
}

/// An audit-log change, to be applied with the change it records.
pub fn audit(
    tenant_id: TenantId,
    actor: Option<&User>,
    action: &str,
    app_id: Option<AppId>,
    detail: serde_json::Value,
) -> Change {
    Change::AppendAudit(AuditEvent {
        tenant_id,
        id: Uuid::new_v4(),
        at: accord_core::clock::now(),
        actor_id: actor.map(|u| u.id.into()),
        actor: actor.map(|u| u.upn.clone()).unwrap_or_else(|| "system".into()),
        action: action.to_string(),
        app_id,
        detail,
    })
}

/// A refused refresh, and whether the refresh-token family behind it must be revoked.
#[derive(Debug)]
pub struct RefreshRefusal {
    pub error: ServiceError,
    pub revoke_family: bool,
}

/// A refresh: the engine decides the requested scope again, so revocation bites. When it
/// refuses, the family is revoked only if the access behind the token is gone for good — the
/// user no longer assigned (50105), the app disabled (7000112), or the consent for the scope the
/// token was issued with withdrawn. A refresh that asks for more than was consented
/// (incremental consent, 65001) fails alone and the token stays usable, as in Entra.
pub async fn refresh_access(
    store: &dyn Store,
    tenant: &Tenant,
    client: &Application,
    user: &User,
    requested: &ScopeRequest,
    issued_scope: &str,
) -> Result<DelegatedDecision, RefreshRefusal> {
    let error = match delegated_access(store, tenant, client, user, requested).await {
        Ok(decision) => return Ok(decision),
        Err(e) => e,
    };
    let code = error.refusal().map(|a| a.code);
    let revoke_family = match code {
        Some(50105 | 7000112) => true,
        // Consent missing: gone for good only if the token's own scope is refused too.
        Some(65001) => match ScopeRequest::parse(issued_scope) {
            Ok(issued) if &issued == requested => true,
            Ok(issued) => delegated_access(store, tenant, client, user, &issued).await.is_err(),
            Err(_) => true,
        },
        _ => false,
    };
    Err(RefreshRefusal { error, revoke_family })
}

/// A scope request in words, for the decision journal: `openid profile https://graph.microsoft.com/User.Read`.
fn asked(request: &ScopeRequest) -> String {
    let o = &request.oidc;
    let mut parts: Vec<String> =
        [("openid", o.openid), ("profile", o.profile), ("email", o.email), ("offline_access", o.offline_access)]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| name.to_string())
            .collect();
    for r in &request.resources {
        if r.default {
            parts.push(format!("{}/.default", r.resource));
        }
        parts.extend(r.permissions.iter().map(|p| format!("{}/{p}", r.resource)));
    }
    parts.join(" ")
}
