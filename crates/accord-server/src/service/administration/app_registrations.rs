//! App registrations homed in the tenant: their settings, redirect URIs, required access
//! and client secrets.

use super::*;
use crate::client_certificates::ClientCertificate;
use accord_core::directory::{FederatedCredential, KeyCredential};
use accord_core::ids::{AppId, AppObjectId, ServicePrincipalId};

pub async fn own_application(store: &dyn Store, tenant: &Tenant, app_id: AppId) -> Result<Application, ServiceError> {
    store
        .application_by_app_id(app_id)
        .await?
        .filter(|a| a.home_tenant_id == tenant.id)
        .ok_or_else(|| not_found("The app registration"))
}

pub async fn create_application(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    display_name: &str,
    audience: SignInAudience,
) -> Result<Application, ServiceError> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let app = Application {
        id: AppObjectId::random(),
        app_id: AppId::random(),
        home_tenant_id: tenant.id,
        display_name: valid_name("displayName", display_name)?,
        sign_in_audience: audience,
        redirect_uris: Vec::new(),
        public_client: false,
        verified_publisher: false,
        identifier_uri: None,
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
    };
    // The home tenant gets the app's service principal at once, as the portal does.
    let sp = ServicePrincipal {
        tenant_id: tenant.id,
        id: ServicePrincipalId::random(),
        app_id: app.app_id,
        display_name: app.display_name.clone(),
        app_owner_tenant_id: tenant.id,
        enabled: true,
        assignment_required: false,
        created_at: accord_core::clock::now(),
    };
    apply(
        store,
        vec![
            Change::PutApplication(app.clone()),
            Change::PutServicePrincipal(sp),
            actor.audit(tenant.id, "app.created", Some(app.app_id), json!({ "displayName": app.display_name })),
        ],
    )
    .await?;
    Ok(app)
}

/// Validates and saves changed registration fields (redirect URIs, scopes, roles, required).
pub async fn update_application(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app: Application,
) -> Result<Application, ServiceError> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let current = own_application(store, tenant, app.app_id).await?;
    if app.id != current.id || app.home_tenant_id != current.home_tenant_id {
        return Err(invalid("id", "the object id and home tenant cannot change"));
    }
    for uri in app.redirect_uris.iter().chain(&app.spa_redirect_uris) {
        valid_redirect_uri(uri)?;
    }
    if let Some(uri) = app.spa_redirect_uris.iter().find(|u| app.redirect_uris.contains(u)) {
        let why = format!("'{uri}' is registered as both a web and a single-page-app redirect URI: use one platform");
        return Err(invalid("spa.redirectUris", &why));
    }

    valid_required_access(store, &app).await?;
    let mut seen = std::collections::HashSet::new();
    for value in app.scopes.iter().map(|s| &s.value).chain(app.app_roles.iter().map(|r| &r.value)) {
        if value.is_empty() || value.contains(char::is_whitespace) {
            return Err(invalid("value", "permission values are non-empty and have no spaces"));
        }
        if !seen.insert(value.to_ascii_lowercase()) {
            return Err(invalid("value", &format!("'{value}' is used twice")));
        }
    }
    if let Some(r) = app.app_roles.iter().find(|r| r.allowed_member_types.is_empty()) {
        let why = format!("the app role '{}' must allow users/groups, applications or both", r.value);
        return Err(invalid("allowedMemberTypes", &why));
    }
    let app = Application { display_name: valid_name("displayName", &app.display_name)?, ..app };
    let mut changes = vec![
        Change::PutApplication(app.clone()),
        actor.audit(tenant.id, "app.updated", Some(app.app_id), json!({ "displayName": app.display_name })),
    ];
    changes.extend(certificate_changes(store, actor, tenant, &current, &app).await?);
    changes.extend(federated_credential_changes(store, actor, tenant, &current, &app).await?);
    apply(store, changes).await?;
    Ok(app)
}

/// A change Graph's `addKey`/`removeKey` makes to an app's certificates.
#[derive(Debug, Clone)]
pub enum KeyRoll {
    Add(KeyCredential),
    Remove(Uuid),
}

/// An app rolls its own certificates (`addKey`/`removeKey`), authorized not by a directory role
/// but by a proof of possession: a JWT signed with one of its current, valid certificates (so
/// whoever calls already holds a credential of the app, and nothing is escalated).
pub async fn roll_certificates(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: AppId,
    proof: &str,
    roll: KeyRoll,
) -> Result<Application, ServiceError> {
    let mut app = own_application(store, tenant, app_id).await?;
    let now = accord_core::clock::now();
    crate::client_certificates::verify_proof(
        proof,
        &app.id.to_string(),
        &app.app_id.to_string(),
        &app.key_credentials,
        now,
    )
    .map_err(|why| invalid("proof", &why))?;
    let (action, detail) = match roll {
        KeyRoll::Add(k) => {
            ClientCertificate::from_credential(&k).map_err(|e| invalid("keyCredential", &e))?;
            if app.key_credentials.iter().any(|c| c.key_id == k.key_id || c.certificate == k.certificate) {
                return Err(ServiceError::conflict(
                    "This certificate (or key id) is already registered on the application.",
                ));
            }
            let detail = json!({ "keyId": k.key_id, "displayName": k.display_name, "byProof": true });
            app.key_credentials.push(k);
            ("credential.certificate_added", detail)
        }
        KeyRoll::Remove(id) => {
            let before = app.key_credentials.len();
            app.key_credentials.retain(|c| c.key_id != id);
            if app.key_credentials.len() == before {
                return Err(not_found("The certificate"));
            }
            ("credential.certificate_removed", json!({ "keyId": id, "byProof": true }))
        }
    };
    apply(store, vec![Change::PutApplication(app.clone()), actor.audit(tenant.id, action, Some(app.app_id), detail)])
        .await?;
    Ok(app)
}

/// Certificates an update adds are credentials like secrets: readable RSA certificates, on a
/// confidential client, and for an app holding privileged permissions only a Global or
/// Privileged Role Administrator's to add (the same rule as secrets). Audited one by one.
async fn certificate_changes(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    current: &Application,
    app: &Application,
) -> Result<Vec<Change>, ServiceError> {
    let added: Vec<&KeyCredential> = app
        .key_credentials
        .iter()
        .filter(|k| !current.key_credentials.iter().any(|c| c.key_id == k.key_id && c.certificate == k.certificate))
        .collect();
    let mut ids = std::collections::HashSet::new();
    if let Some(dup) = app.key_credentials.iter().find(|k| !ids.insert(k.key_id)) {
        return Err(invalid("keyCredentials", &format!("the key id {} is used twice", dup.key_id)));
    }
    let removed: Vec<Change> = current
        .key_credentials
        .iter()
        .filter(|c| !app.key_credentials.iter().any(|k| k.key_id == c.key_id))
        .map(|c| {
            let detail = json!({ "keyId": c.key_id, "displayName": c.display_name });
            actor.audit(tenant.id, "credential.certificate_removed", Some(app.app_id), detail)
        })
        .collect();
    if added.is_empty() {
        return Ok(removed);
    }
    if app.public_client {
        return Err(invalid("keyCredentials", "a public client cannot have certificates"));
    }
    for k in &added {
        ClientCertificate::from_credential(k).map_err(|e| invalid("keyCredentials", &e))?;
    }
    let privileged = privileged_app_permissions(store, tenant, current).await?;
    guard_privileged_credentials(actor, current, &privileged)?;
    let added = added.iter().map(|k| {
        let detail = json!({ "keyId": k.key_id, "displayName": k.display_name, "privileged": !privileged.is_empty() });
        actor.audit(tenant.id, "credential.certificate_added", Some(app.app_id), detail)
    });
    Ok(added.chain(removed).collect())
}

/// Federated identity credentials are credentials too: valid by the directory's rules, on a
/// confidential client, and — added, or changed in whom they trust — for an app holding
/// privileged permissions only a Global or Privileged Role Administrator's to make.
async fn federated_credential_changes(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    current: &Application,
    app: &Application,
) -> Result<Vec<Change>, ServiceError> {
    for credential in &app.federated_credentials {
        if let Some((field, why)) = credential.problem() {
            return Err(invalid(field, &why));
        }
    }
    if let Some((field, why)) = accord_core::directory::federated_credentials_problem(&app.federated_credentials) {
        return Err(invalid(field, &why));
    }
    let trusts_the_same = |a: &FederatedCredential, b: &FederatedCredential| {
        a.id == b.id && a.issuer == b.issuer && a.subject == b.subject && a.audiences == b.audiences && a.jwks == b.jwks
    };
    let added: Vec<&FederatedCredential> = app
        .federated_credentials
        .iter()
        .filter(|f| !current.federated_credentials.iter().any(|c| trusts_the_same(c, f)))
        .collect();
    let audit = |action: &str, f: &FederatedCredential, privileged: bool| {
        let detail =
            json!({ "id": f.id, "name": f.name, "issuer": f.issuer, "subject": f.subject, "privileged": privileged });
        actor.audit(tenant.id, action, Some(app.app_id), detail)
    };
    let removed = current
        .federated_credentials
        .iter()
        .filter(|c| !app.federated_credentials.iter().any(|f| f.id == c.id))
        .map(|c| audit("credential.federated_removed", c, false));
    let mut changes: Vec<Change> = removed.collect();
    if added.is_empty() {
        return Ok(changes);
    }
    if app.public_client {
        return Err(invalid("federatedIdentityCredentials", "a public client cannot have credentials"));
    }
    let privileged = privileged_app_permissions(store, tenant, current).await?;
    guard_privileged_credentials(actor, current, &privileged)?;
    changes.extend(added.into_iter().map(|f| audit("credential.federated_added", f, !privileged.is_empty())));
    Ok(changes)
}

/// Every permission an app asks for (`requiredResourceAccess`) exists on its resource: a
/// delegated permission as a scope, an application permission as a role applications may hold.
async fn valid_required_access(store: &dyn Store, app: &Application) -> Result<(), ServiceError> {
    let mut seen = std::collections::HashSet::new();
    for req in &app.required {
        if !seen.insert(req.resource_app_id) {
            return Err(invalid("requiredResourceAccess", "each resource may be listed once"));
        }
        let resource = if req.resource_app_id == app.app_id {
            Some(app.clone())
        } else {
            store.application_by_app_id(req.resource_app_id).await?
        };
        let Some(resource) = resource else {
            return Err(invalid(
                "requiredResourceAccess",
                &format!("there is no resource with the application id {}", req.resource_app_id),
            ));
        };
        if let Some(v) = req.delegated.iter().find(|v| resource.scope(v).is_none()) {
            return Err(invalid(
                "requiredResourceAccess",
                &format!("'{v}' is not a delegated permission of {}", resource.display_name),
            ));
        }
        let is_app_permission = |v: &String| {
            resource.app_role(v).is_some_and(|r| r.allowed_member_types.contains(&AppRoleMemberType::Application))
        };
        if let Some(v) = req.application.iter().find(|v| !is_app_permission(v)) {
            return Err(invalid(
                "requiredResourceAccess",
                &format!("'{v}' is not an application permission of {}", resource.display_name),
            ));
        }
    }
    Ok(())
}
pub fn valid_redirect_uri(uri: &str) -> Result<(), ServiceError> {
    let parsed =
        url::Url::parse(uri).map_err(|_| invalid("redirectUris", &format!("'{uri}' is not an absolute URL")))?;
    let local = matches!(parsed.host_str(), Some("localhost") | Some("127.0.0.1") | Some("[::1]"));
    match parsed.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err(invalid("redirectUris", &format!("'{uri}' must use https (http only for localhost)"))),
    }
    if parsed.fragment().is_some() {
        return Err(invalid("redirectUris", &format!("'{uri}' must not contain a fragment")));
    }
    Ok(())
}

/// The privileged Graph application permissions (`microsoft_graph::PRIVILEGED_APP_PERMISSIONS`)
/// the app's service principals hold: in its home tenant, and — for a multi-tenant app, whose
/// credential works in every organisation that consented — in every other tenant too (named
/// after the permission). Adding a credential is rare, so visiting each tenant is affordable.
async fn privileged_app_permissions(
    store: &dyn Store,
    tenant: &Tenant,
    app: &Application,
) -> Result<Vec<String>, ServiceError> {
    let mut held = privileged_in(store, tenant.id, app).await?;
    if app.sign_in_audience != SignInAudience::SingleOrg {
        for other in store.tenants().await?.into_iter().filter(|t| t.id != tenant.id) {
            let found = privileged_in(store, other.id, app).await?;
            held.extend(found.into_iter().map(|v| format!("{v} in {}", other.display_name)));
        }
    }
    Ok(held)
}

async fn privileged_in(store: &dyn Store, tenant_id: TenantId, app: &Application) -> Result<Vec<String>, ServiceError> {
    let Some(sp) = store.service_principal_by_app_id(tenant_id, app.app_id).await? else {
        return Ok(Vec::new());
    };
    let graph = accord_core::microsoft_graph::application();
    let Some(graph_sp) = store.service_principal_by_app_id(tenant_id, graph.app_id).await? else {
        return Ok(Vec::new());
    };
    let held = store.app_role_assignments_of(tenant_id, sp.id.into()).await?;
    Ok(held
        .iter()
        .filter(|a| a.resource_sp_id == graph_sp.id)
        .filter_map(|a| graph.app_role_by_id(a.app_role_id))
        .map(|r| r.value.clone())
        .filter(|v| accord_core::microsoft_graph::PRIVILEGED_APP_PERMISSIONS.contains(&v.as_str()))
        .collect())
}

/// A new credential for an app holding privileged application permissions is those
/// permissions in the hands of whoever adds it: Entra lets an Application Administrator do it
/// (a known path to Global Administrator); Accord asks for a Global Administrator or
/// Privileged Role Administrator, and no app may.
fn guard_privileged_credentials(actor: &Actor, app: &Application, privileged: &[String]) -> Result<(), ServiceError> {
    if privileged.is_empty() {
        return Ok(());
    }
    let allowed = actor.roles().iter().any(|r| matches!(r, GlobalAdministrator | PrivilegedRoleAdministrator));
    if allowed {
        return Ok(());
    }
    Err(ServiceError::forbidden(format!(
        "{} holds privileged application permissions ({}); only a Global Administrator or Privileged Role \
         Administrator may add a credential to it.",
        app.display_name,
        privileged.join(", ")
    )))
}

/// Adds a client secret and returns its value: shown once, stored only as a keyed hash.
pub async fn add_client_secret(
    store: &dyn Store,
    keyring: &Keyring,
    actor: &Actor,
    tenant: &Tenant,
    app_id: AppId,
    description: &str,
    valid_days: u32,
) -> Result<(ClientSecret, String), ServiceError> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let app = own_application(store, tenant, app_id).await?;
    let privileged = privileged_app_permissions(store, tenant, &app).await?;
    guard_privileged_credentials(actor, &app, &privileged)?;
    if !(1..=730).contains(&valid_days) {
        return Err(invalid("endDateTime", "a secret is valid for 1 to 730 days"));
    }
    let value = format!("acc~{}", random_token());
    let now = accord_core::clock::now();
    let secret = ClientSecret {
        id: Uuid::new_v4(),
        app_object_id: app.id,
        display_name: valid_name("displayName", if description.trim().is_empty() { "secret" } else { description })?,
        hint: value.chars().take(3).collect(),
        hash: keyring.secret_hash(&value),
        created_at: now,
        expires_at: Some(now + time::Duration::days(i64::from(valid_days))),
    };
    apply(
        store,
        vec![
            Change::PutClientSecret(secret.clone()),
            actor.audit(
                tenant.id,
                "app.secret_added",
                Some(app.app_id),
                json!({ "secret": secret.id, "displayName": secret.display_name, "privileged": privileged }),
            ),
        ],
    )
    .await?;
    Ok((secret, value))
}

pub async fn delete_client_secret(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: AppId,
    secret_id: Uuid,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let app = own_application(store, tenant, app_id).await?;
    if !store.client_secrets(app.id).await?.iter().any(|s| s.id == secret_id) {
        return Err(not_found("The secret"));
    }
    apply(
        store,
        vec![
            Change::DeleteClientSecret { app_object_id: app.id, secret_id },
            actor.audit(tenant.id, "app.secret_deleted", Some(app.app_id), json!({ "secret": secret_id })),
        ],
    )
    .await
}

/// Deletes one of the tenant's own app registrations, as Graph's `DELETE /applications/{id}`:
/// its enterprise application goes in every tenant that has one, with the consent granted to
/// it, the assignments to it, its pending requests and its unredeemed codes and refresh tokens,
/// so nothing can sign in as it any more (AADSTS700016). The audit log keeps what went.
pub async fn delete_application(
    store: &dyn Store,
    actor: &Actor,
    tenant: &Tenant,
    app_id: AppId,
) -> Result<(), ServiceError> {
    authorize(actor, Operation::ManageAppRegistrations)?;
    let app = own_application(store, tenant, app_id).await?;
    let detail = json!({ "displayName": app.display_name, "objectId": app.id });
    apply(
        store,
        vec![
            Change::DeleteApplication { app_object_id: app.id },
            actor.audit(tenant.id, "app.deleted", Some(app.app_id), detail),
        ],
    )
    .await
}
