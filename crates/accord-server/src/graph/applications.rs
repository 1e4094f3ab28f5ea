//! App registrations as Graph `application` objects: `GET /v1.0/applications` (with OData),
//! `GET /v1.0/applications/{id}` and `applications(appId='…')`, `POST` (create), `PATCH`, and
//! the `addPassword` / `removePassword` actions. Only the caller's tenant's own registrations
//! exist here (an app homed elsewhere is a service principal of this tenant, not an application).
//! Every rule is the administration service layer's; this file translates Graph's shapes.

use super::auth::Caller;
use super::request::{actor, json_object, json_response, require, tenant, GraphPath};
use accord_core::ids::{AppId, AppObjectId};

use super::errors::GraphError;
use super::odata::{format_utc, parse_datetime, Prop, PropType, QueryOptions, ResourceSpec};
use accord_core::microsoft_graph::permissions::{
    APP_READ as READ_DELEGATED, APP_READ_APP as READ_APP, APP_WRITE as WRITE_DELEGATED, APP_WRITE_APP as WRITE_APP,
};

use crate::service::administration::{self, DirectoryApplication};
use crate::state::{AppState, SharedState};
use accord_core::directory::{
    AppRoleMemberType, Application, ClientSecret, GroupMembershipClaims, KeyCredential, OptionalClaims,
    PreAuthorizedApplication, RequiredResourceAccess, SignInAudience, SUPPORTED_OPTIONAL_CLAIMS,
};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

const APP_SELECT: &[&str] = &[
    "id",
    "api",
    "appId",
    "appRoles",
    "createdDateTime",
    "deletedDateTime",
    "description",
    "displayName",
    "groupMembershipClaims",
    "identifierUris",
    "isFallbackPublicClient",
    "keyCredentials",
    "optionalClaims",
    "passwordCredentials",
    "publicClient",
    "publisherDomain",
    "requiredResourceAccess",
    "signInAudience",
    "spa",
    "tags",
    "web",
];

const APP_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "appId", ty: PropType::String },
    Prop { path: "displayName", ty: PropType::String },
    Prop { path: "signInAudience", ty: PropType::String },
    Prop { path: "publisherDomain", ty: PropType::String },
    Prop { path: "identifierUris", ty: PropType::Strings },
    Prop { path: "createdDateTime", ty: PropType::DateTime },
];

const APP_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.application",
    select: APP_SELECT,
    filter: APP_FILTER,
    orderby: &["displayName", "createdDateTime"],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

/// How a request names an application: its object id (`/applications/{id}`) or its client id
/// (`/applications(appId='…')`).
#[derive(Debug, Clone, Copy)]
pub enum AppKey {
    ObjectId(AppObjectId),
    AppId(AppId),
}

impl AppKey {
    fn matches(self, app: &Application) -> bool {
        match self {
            AppKey::ObjectId(id) => app.id == id,
            AppKey::AppId(id) => app.app_id == id,
        }
    }

    fn text(self) -> String {
        match self {
            AppKey::ObjectId(id) => id.to_string(),
            AppKey::AppId(id) => id.to_string(),
        }
    }
}

fn secret_json(s: &ClientSecret, secret_text: Option<&str>) -> Value {
    json!({
        "customKeyIdentifier": null,
        "displayName": s.display_name,
        "endDateTime": s.expires_at.map(format_utc),
        "hint": s.hint,
        "keyId": s.id,
        "secretText": secret_text,
        "startDateTime": format_utc(s.created_at),
    })
}

/// A registered certificate as Graph shows it: `customKeyIdentifier` is the SHA-1 thumbprint
/// (base64, as Entra sets it by default), and the key itself is never returned.
fn key_json(k: &KeyCredential) -> Value {
    let thumbprint = crate::client_certificates::ClientCertificate::from_credential(k)
        .map(|c| base64::engine::general_purpose::STANDARD.encode(c.sha1))
        .ok();
    json!({
        "customKeyIdentifier": thumbprint,
        "displayName": k.display_name,
        "endDateTime": format_utc(k.end),
        "key": null,
        "keyId": k.key_id,
        "startDateTime": format_utc(k.start),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    })
}

fn member_types(types: &[AppRoleMemberType]) -> Vec<&'static str> {
    types
        .iter()
        .map(|t| match t {
            AppRoleMemberType::User => "User",
            AppRoleMemberType::Application => "Application",
        })
        .collect()
}

/// `requiredResourceAccess` with permission ids: the model keeps values, Graph shows ids, so each
/// value is looked up on its resource.
async fn required_json(state: &AppState, app: &Application) -> Result<Vec<Value>, GraphError> {
    let mut out = Vec::new();
    for req in &app.required {
        let resource = if req.resource_app_id == app.app_id {
            Some(app.clone())
        } else {
            state.store.application_by_app_id(req.resource_app_id).await?
        };
        let mut access = Vec::new();
        if let Some(resource) = &resource {
            access.extend(
                req.delegated.iter().filter_map(|v| resource.scope(v)).map(|s| json!({"id": s.id, "type": "Scope"})),
            );
            access.extend(
                req.application
                    .iter()
                    .filter_map(|v| resource.app_role(v))
                    .map(|r| json!({"id": r.id, "type": "Role"})),
            );
        }
        out.push(json!({"resourceAppId": req.resource_app_id, "resourceAccess": access}));
    }
    Ok(out)
}

async fn app_json(state: &AppState, d: &DirectoryApplication, publisher_domain: &str) -> Result<Value, GraphError> {
    let app = &d.app;
    let (web, public) = if app.public_client {
        (Vec::new(), app.redirect_uris.clone())
    } else {
        (app.redirect_uris.clone(), Vec::new())
    };
    let scopes: Vec<Value> = app
        .scopes
        .iter()
        .map(|s| {
            json!({
                "adminConsentDescription": s.admin_consent_description,
                "adminConsentDisplayName": s.admin_consent_display_name,
                "id": s.id,
                "isEnabled": true,
                "type": if s.admin_consent_required { "Admin" } else { "User" },
                "userConsentDescription": s.user_consent_description,
                "userConsentDisplayName": s.user_consent_display_name,
                "value": s.value,
            })
        })
        .collect();
    let roles: Vec<Value> = app
        .app_roles
        .iter()
        .map(|r| {
            json!({
                "allowedMemberTypes": member_types(&r.allowed_member_types),
                "description": r.description,
                "displayName": r.display_name,
                "id": r.id,
                "isEnabled": true,
                "origin": "Application",
                "value": r.value,
            })
        })
        .collect();
    Ok(json!({
        "id": app.id,
        "deletedDateTime": null,
        "appId": app.app_id,
        "createdDateTime": d.created_at.map(format_utc),
        "description": null,
        "displayName": app.display_name,
        "identifierUris": app.identifier_uri.iter().collect::<Vec<_>>(),
        "groupMembershipClaims": match app.group_membership_claims {
            GroupMembershipClaims::None => Value::Null,
            other => json!(other.as_str()),
        },
        "optionalClaims": optional_claims_json(&app.optional_claims),
        "isFallbackPublicClient": app.public_client,
        "publisherDomain": publisher_domain,
        "signInAudience": app.sign_in_audience.entra_value(),
        "tags": [],
        "api": {
            "acceptMappedClaims": null,
            "knownClientApplications": app.known_client_applications,
            "requestedAccessTokenVersion": app.access_token_version,
            "oauth2PermissionScopes": scopes,
            "preAuthorizedApplications": app.pre_authorized.iter().map(|p| json!({
                "appId": p.app_id, "delegatedPermissionIds": p.permission_ids,
            })).collect::<Vec<_>>(),
        },
        "appRoles": roles,
        "keyCredentials": app.key_credentials.iter().map(key_json).collect::<Vec<_>>(),
        "passwordCredentials": d.secrets.iter().map(|s| secret_json(s, None)).collect::<Vec<_>>(),
        "publicClient": {"redirectUris": public},
        "requiredResourceAccess": required_json(state, app).await?,
        "spa": {"redirectUris": app.spa_redirect_uris},
        "web": {
            "homePageUrl": null,
            "logoutUrl": null,
            "redirectUris": web,
            "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false},
        },
    }))
}

/// The tenant's own registrations, each with its Graph JSON.
async fn all_apps(state: &AppState, caller: &Caller) -> Result<Vec<(DirectoryApplication, Value)>, GraphError> {
    let tenant = tenant(state, caller).await?;
    let mut out = Vec::new();
    for d in administration::directory_applications(state.store.as_ref(), caller.tenant_id).await? {
        let v = app_json(state, &d, tenant.default_domain()).await?;
        out.push((d, v));
    }
    Ok(out)
}

/// One of the tenant's own registrations, or 404 (also for other tenants' apps).
pub(super) async fn one_app(
    state: &AppState,
    caller: &Caller,
    key: AppKey,
) -> Result<(DirectoryApplication, Value), GraphError> {
    all_apps(state, caller)
        .await?
        .into_iter()
        .find(|(d, _)| key.matches(&d.app))
        .ok_or_else(|| GraphError::resource_not_found(&key.text()))
}

fn entity_body(state: &AppState, opts: &QueryOptions, v: Value) -> Value {
    let mut body = opts.project(v);
    if let Value::Object(m) = &mut body {
        let context = format!("{}/$entity", opts.context(&state.settings.public_url, "applications"));
        m.insert("@odata.context".into(), json!(context));
    }
    body
}

/// The object id from `/applications/{app}`: 400 when it is not a GUID.
pub fn path_key(path: &GraphPath) -> Result<AppKey, GraphError> {
    super::directory::object_id(path, "app").map(AppKey::ObjectId)
}

// ---------------------------------------------------------------------------------------------
// Reads

/// `GET /v1.0/applications`
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, READ_DELEGATED, READ_APP, "Application.Read.All")?;
    let opts = QueryOptions::parse(uri.query(), &APP_SPEC)?;
    let items: Vec<Value> = all_apps(&state, &caller).await?.into_iter().map(|(_, v)| v).collect();
    let page = opts.apply(items);
    let value = page.items.iter().map(|v| opts.project(v.clone())).collect();
    let public_url = &state.settings.public_url;
    let body = opts.collection(opts.context(public_url, "applications"), &page, value, public_url, uri.path());
    Ok(json_response(StatusCode::OK, body, None))
}

/// `GET /v1.0/applications/{id}`
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    get_by(&state, caller, path_key(&path), &uri).await
}

/// `GET /v1.0/applications/{id}` or `applications(appId='…')`.
pub async fn get_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
    uri: &Uri,
) -> Result<Response, GraphError> {
    require(&caller, READ_DELEGATED, READ_APP, "Application.Read.All")?;
    let key = key?;
    let opts = QueryOptions::parse(uri.query(), &APP_SPEC)?;
    let (_, v) = one_app(state, &caller, key).await?;
    Ok(json_response(StatusCode::OK, entity_body(state, &opts, v), None))
}

// ---------------------------------------------------------------------------------------------
// Request bodies

pub(super) fn bad(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn invalid_value(property: &str) -> GraphError {
    bad(format!("Invalid value specified for property '{property}' of resource 'Application'."))
}

pub(super) fn string_field(m: &Map<String, Value>, name: &str) -> Result<Option<String>, GraphError> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_value(name)),
    }
}

fn audience(m: &Map<String, Value>) -> Result<Option<SignInAudience>, GraphError> {
    match string_field(m, "signInAudience")?.as_deref() {
        None => Ok(None),
        Some("AzureADMyOrg") => Ok(Some(SignInAudience::SingleOrg)),
        Some("AzureADMultipleOrgs") => Ok(Some(SignInAudience::MultipleOrgs)),
        Some(other) => Err(bad(format!(
            "Invalid value specified for property 'signInAudience' of resource 'Application': '{other}' is not supported (AzureADMyOrg or AzureADMultipleOrgs)."
        ))),
    }
}

/// `redirectUris` of one platform object (`web`, `publicClient`, `spa`): `None` when the
/// platform or its list is absent.
fn platform_uris(m: &Map<String, Value>, platform: &str) -> Result<Option<Vec<String>>, GraphError> {
    let property = format!("{platform}.redirectUris");
    let Some(p) = m.get(platform) else { return Ok(None) };
    let Value::Object(p) = p else { return Err(invalid_value(platform)) };
    for k in p.keys() {
        if k != "redirectUris" && !k.starts_with("@odata.") {
            return Err(bad(format!("Property '{platform}.{k}' cannot be set through this API (only {property}).")));
        }
    }
    let Some(list) = p.get("redirectUris") else { return Ok(None) };
    let Value::Array(list) = list else { return Err(invalid_value(&property)) };
    let uris: Vec<String> = list
        .iter()
        .map(|u| u.as_str().map(str::to_string).ok_or_else(|| invalid_value(&property)))
        .collect::<Result<_, _>>()?;
    for u in &uris {
        administration::valid_redirect_uri(u).map_err(|_| {
            bad(format!(
                "Invalid value specified for property '{property}' of resource 'Application': '{u}' must be an absolute https URL without a fragment (http only for localhost)."
            ))
        })?;
    }
    Ok(Some(uris))
}

/// `requiredResourceAccess` with ids, in the model's terms (permission values), each id checked
/// against its resource: a `Scope` must be a delegated permission, a `Role` an app role
/// applications may hold.
async fn required_access(
    state: &AppState,
    app: &Application,
    value: &Value,
) -> Result<Vec<RequiredResourceAccess>, GraphError> {
    const P: &str = "requiredResourceAccess";
    let Value::Array(items) = value else { return Err(invalid_value(P)) };
    let mut out: Vec<RequiredResourceAccess> = Vec::new();
    for item in items {
        let resource_app_id = item
            .get("resourceAppId")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<AppId>().ok())
            .ok_or_else(|| invalid_value("requiredResourceAccess.resourceAppId"))?;
        if out.iter().any(|r| r.resource_app_id == resource_app_id) {
            return Err(bad(format!("Property '{P}' lists the resource {resource_app_id} twice.")));
        }
        let resource = if resource_app_id == app.app_id {
            Some(app.clone())
        } else {
            state.store.application_by_app_id(resource_app_id).await?
        };
        let Some(resource) = resource else {
            return Err(bad(format!(
                "Invalid value specified for property '{P}': there is no resource with the application id {resource_app_id}."
            )));
        };
        let mut req = RequiredResourceAccess { resource_app_id, delegated: Vec::new(), application: Vec::new() };
        let access = item
            .get("resourceAccess")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid_value("requiredResourceAccess.resourceAccess"))?;
        for a in access {
            let id = a
                .get("id")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| invalid_value("requiredResourceAccess.resourceAccess.id"))?;
            match a.get("type").and_then(Value::as_str) {
                Some("Scope") => match resource.scopes.iter().find(|s| s.id == id) {
                    Some(s) => req.delegated.push(s.value.clone()),
                    None => {
                        return Err(bad(format!(
                            "Invalid value specified for property '{P}': {id} is not a delegated permission (Scope) of {}.",
                            resource.display_name
                        )))
                    }
                },
                Some("Role") => match resource
                    .app_role_by_id(id)
                    .filter(|r| r.allowed_member_types.contains(&AppRoleMemberType::Application))
                {
                    Some(r) => req.application.push(r.value.clone()),
                    None => {
                        return Err(bad(format!(
                            "Invalid value specified for property '{P}': {id} is not an application permission (Role) of {}.",
                            resource.display_name
                        )))
                    }
                },
                _ => return Err(invalid_value("requiredResourceAccess.resourceAccess.type")),
            }
        }
        out.push(req);
    }
    Ok(out)
}

const WRITABLE: &[&str] = &[
    "displayName",
    "signInAudience",
    "web",
    "publicClient",
    "spa",
    "isFallbackPublicClient",
    "requiredResourceAccess",
    "keyCredentials",
    "groupMembershipClaims",
    "optionalClaims",
    "api",
];

/// Applies a create/update body to `app` (validated; the service layer validates again).
async fn apply_body(state: &AppState, mut app: Application, m: &Map<String, Value>) -> Result<Application, GraphError> {
    if let Some(k) = m.keys().find(|k| !WRITABLE.contains(&k.as_str()) && !k.starts_with("@odata.")) {
        return Err(bad(format!("Property '{k}' cannot be set through this API (only {}).", WRITABLE.join(", "))));
    }
    if let Some(name) = string_field(m, "displayName")? {
        app.display_name = name;
    }
    if let Some(a) = audience(m)? {
        app.sign_in_audience = a;
    }
    match m.get("isFallbackPublicClient") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => app.public_client = *b,
        Some(_) => return Err(invalid_value("isFallbackPublicClient")),
    }
    // Accord keeps one list of web-or-native redirect URIs per app (a public client's are
    // `publicClient`'s, any other app's `web`'s) and one of single-page-app URIs.
    if let Some(uris) = platform_uris(m, "spa")? {
        app.spa_redirect_uris = uris;
    }
    let (own, other, other_name) = if app.public_client {
        (platform_uris(m, "publicClient")?, platform_uris(m, "web")?, "web.redirectUris")
    } else {
        (platform_uris(m, "web")?, platform_uris(m, "publicClient")?, "publicClient.redirectUris")
    };
    if other.as_ref().is_some_and(|u| !u.is_empty()) {
        let why =
            if app.public_client { "a public client (isFallbackPublicClient true)" } else { "not a public client" };
        return Err(bad(format!(
            "Invalid value specified for property '{other_name}': this application is {why}, so its redirect URIs are set through {}.",
            if app.public_client { "publicClient.redirectUris" } else { "web.redirectUris" }
        )));
    }
    if let Some(uris) = own {
        app.redirect_uris = uris;
    }
    if let Some(v) = m.get("requiredResourceAccess") {
        app.required = required_access(state, &app, v).await?;
    }
    if let Some(v) = m.get("keyCredentials") {
        app.key_credentials = key_credentials(&app, v)?;
    }
    match m.get("groupMembershipClaims") {
        None => {}
        Some(Value::Null) => app.group_membership_claims = GroupMembershipClaims::None,
        Some(Value::String(v)) => {
            app.group_membership_claims = GroupMembershipClaims::parse(v).ok_or_else(|| {
                bad("Invalid value specified for property 'groupMembershipClaims' of resource 'Application': expected None, SecurityGroup, DirectoryRole, ApplicationGroup or All.")
            })?
        }
        Some(_) => return Err(invalid_value("groupMembershipClaims")),
    }
    if let Some(v) = m.get("optionalClaims") {
        app.optional_claims = optional_claims(v)?;
    }
    if let Some(v) = m.get("api") {
        api_settings(&mut app, v)?;
    }
    Ok(app)
}

/// `keyCredentials` as PATCH sends it: the whole list. A certificate comes as `key` (base64
/// DER, `AsymmetricX509Cert`, usage `Verify`); an entry without `key` keeps the registered
/// certificate of its `keyId`, so a client may send back the list it read (keys are never read).
/// `api`: `requestedAccessTokenVersion` (1 or 2; null is 1, as in Entra) and
/// `preAuthorizedApplications` (`appId`, `delegatedPermissionIds` among this API's scopes).
fn api_settings(app: &mut Application, v: &Value) -> Result<(), GraphError> {
    let Value::Object(m) = v else { return Err(invalid_value("api")) };
    for (key, value) in m {
        match key.as_str() {
            "requestedAccessTokenVersion" => {
                app.access_token_version = match value {
                    Value::Null => 1,
                    v if v.as_u64() == Some(1) || v.as_u64() == Some(2) => v.as_u64().unwrap_or(2) as u8,
                    _ => return Err(bad("Invalid value specified for property 'api.requestedAccessTokenVersion': 1 or 2.")),
                }
            }
            "preAuthorizedApplications" => {
                let Value::Array(list) = value else { return Err(invalid_value("api.preAuthorizedApplications")) };
                let mut out = Vec::new();
                for entry in list {
                    let app_id = entry
                        .get("appId")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<AppId>().ok())
                        .ok_or_else(|| invalid_value("api.preAuthorizedApplications.appId"))?;
                    let ids = entry.get("delegatedPermissionIds").and_then(Value::as_array).cloned().unwrap_or_default();
                    let mut permission_ids = Vec::new();
                    for id in ids {
                        let id = id.as_str().and_then(|s| s.parse::<Uuid>().ok()).filter(|id| app.scopes.iter().any(|s| s.id == *id));
                        let id = id.ok_or_else(|| {
                            bad("Invalid value specified for property 'api.preAuthorizedApplications.delegatedPermissionIds': each must be the id of one of this application's oauth2PermissionScopes.")
                        })?;
                        permission_ids.push(id);
                    }
                    out.push(PreAuthorizedApplication { app_id, permission_ids });
                }
                app.pre_authorized = out;
            }
            "knownClientApplications" => {
                let Value::Array(list) = value else { return Err(invalid_value("api.knownClientApplications")) };
                app.known_client_applications = list
                    .iter()
                    .map(|v| v.as_str().and_then(|s| s.parse::<AppId>().ok()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("Invalid value specified for property 'api.knownClientApplications': application (client) ids are expected."))?;
            }
            other if other.starts_with("@odata.") => {}
            other => {
                return Err(bad(format!(
                    "Property 'api.{other}' cannot be set through this API (only api.requestedAccessTokenVersion, api.preAuthorizedApplications and api.knownClientApplications)."
                )))
            }
        }
    }
    Ok(())
}

fn optional_claims_json(o: &OptionalClaims) -> Value {
    if o.id_token.is_empty() && o.access_token.is_empty() {
        return Value::Null;
    }
    let list = |names: &[String]| -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"name": n, "source": null, "essential": false, "additionalProperties": []}))
            .collect()
    };
    json!({"idToken": list(&o.id_token), "accessToken": list(&o.access_token), "saml2Token": []})
}

/// `optionalClaims`: `idToken` and `accessToken` lists of `{name, …}` (SAML tokens are not
/// issued, so `saml2Token` must stay empty); only claims Accord can emit.
fn optional_claims(v: &Value) -> Result<OptionalClaims, GraphError> {
    const P: &str = "optionalClaims";
    let Value::Object(m) = v else {
        return if v.is_null() { Ok(OptionalClaims::default()) } else { Err(invalid_value(P)) };
    };
    let mut out = OptionalClaims::default();
    for (key, list) in m {
        let target = match key.as_str() {
            "idToken" => &mut out.id_token,
            "accessToken" => &mut out.access_token,
            "saml2Token" if list.as_array().is_none_or(|l| l.is_empty()) => continue,
            _ => {
                return Err(bad(format!(
                    "Property '{P}.{key}' is not supported: Accord issues idToken and accessToken claims."
                )))
            }
        };
        let Value::Array(entries) = list else { return Err(invalid_value(&format!("{P}.{key}"))) };
        for e in entries {
            let name =
                e.get("name").and_then(Value::as_str).ok_or_else(|| invalid_value(&format!("{P}.{key}.name")))?;
            if !SUPPORTED_OPTIONAL_CLAIMS.contains(&name) {
                return Err(bad(format!(
                    "Invalid value specified for property '{P}.{key}': '{name}' is not an optional claim Accord emits ({}).",
                    SUPPORTED_OPTIONAL_CLAIMS.join(", ")
                )));
            }
            target.push(name.to_string());
        }
    }
    Ok(out)
}

fn key_credentials(app: &Application, v: &Value) -> Result<Vec<KeyCredential>, GraphError> {
    const P: &str = "keyCredentials";
    let Value::Array(items) = v else { return Err(invalid_value(P)) };
    let mut out = Vec::new();
    for item in items {
        let Value::Object(k) = item else { return Err(invalid_value(P)) };
        let text = |name: &str| k.get(name).and_then(Value::as_str);
        if text("type").is_some_and(|t| t != "AsymmetricX509Cert") || text("usage").is_some_and(|u| u != "Verify") {
            return Err(bad(format!(
                "Invalid value specified for property '{P}': only certificates (type AsymmetricX509Cert, usage Verify) can be registered."
            )));
        }
        let key_id = match k.get("keyId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse::<Uuid>().map_err(|_| invalid_value("keyCredentials.keyId"))?),
            Some(_) => return Err(invalid_value("keyCredentials.keyId")),
        };
        let credential = match text("key") {
            Some(key) => {
                let compact: String = key.chars().filter(|c| !c.is_whitespace()).collect();
                let der = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| invalid_value("keyCredentials.key"))?;
                let cert = crate::client_certificates::ClientCertificate::from_der(&der)
                    .map_err(|why| bad(format!("Invalid value specified for property 'keyCredentials.key': {why}.")))?;
                let name = text("displayName").unwrap_or("certificate");
                cert.credential(key_id.unwrap_or_else(Uuid::new_v4), name)
            }
            None => {
                let id = key_id
                    .ok_or_else(|| bad(format!("Property '{P}' needs a key (or the keyId of a registered one).")))?;
                app.key_credentials
                    .iter()
                    .find(|c| c.key_id == id)
                    .cloned()
                    .ok_or_else(|| bad(format!("No certificate with keyId {id} is registered; send its key.")))?
            }
        };
        out.push(credential);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Writes

/// `POST /v1.0/applications`: a registration homed in the caller's tenant (with its service
/// principal there, as the portal does). 201 with the application.
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, WRITE_DELEGATED, WRITE_APP, "Application.ReadWrite.All")?;
    let m = json_object(body)?;
    let name = string_field(&m, "displayName")?
        .ok_or_else(|| bad("A value is required for property 'displayName' of resource 'Application'."))?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::authorize(&actor, administration::Operation::ManageAppRegistrations)?;
    // Everything is validated on a draft first, so a refused body creates nothing.
    let draft = Application {
        id: AppObjectId::NIL,
        app_id: AppId::NIL,
        home_tenant_id: tenant.id,
        display_name: name.clone(),
        sign_in_audience: SignInAudience::SingleOrg,
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
    let draft = apply_body(&state, draft, &m).await?;
    let created =
        administration::create_application(state.store.as_ref(), &actor, &tenant, &name, draft.sign_in_audience)
            .await?;
    if draft.redirect_uris != created.redirect_uris
        || draft.public_client != created.public_client
        || draft.required != created.required
    {
        let app = Application {
            redirect_uris: draft.redirect_uris,
            public_client: draft.public_client,
            required: draft.required,
            key_credentials: draft.key_credentials,
            ..created.clone()
        };
        administration::update_application(state.store.as_ref(), &actor, &tenant, app).await?;
    }
    let (_, v) = one_app(&state, &caller, AppKey::ObjectId(created.id)).await?;
    let opts = QueryOptions::parse(None, &APP_SPEC)?;
    Ok(json_response(StatusCode::CREATED, entity_body(&state, &opts, v), None))
}

/// `PATCH /v1.0/applications/{id}`. 204.
pub async fn update(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    update_by(&state, caller, path_key(&path), body).await
}

/// `PATCH` by object id or `applications(appId='…')`.
pub async fn update_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, WRITE_DELEGATED, WRITE_APP, "Application.ReadWrite.All")?;
    let key = key?;
    let m = json_object(body)?;
    let (d, _) = one_app(state, &caller, key).await?;
    let app = apply_body(state, d.app, &m).await?;
    let tenant = tenant(state, &caller).await?;
    let actor = actor(state, &caller, &tenant).await?;
    administration::update_application(state.store.as_ref(), &actor, &tenant, app).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1.0/applications/{id}/addPassword`
pub async fn add_password(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    add_password_by(&state, caller, path_key(&path), body).await
}

/// The lifetime a `passwordCredential` asks for, in whole days (the service layer's unit):
/// two years when it names no `endDateTime`, as Graph does.
fn valid_days(credential: &Map<String, Value>, now: OffsetDateTime) -> Result<u32, GraphError> {
    const P: &str = "passwordCredential.endDateTime";
    let end = match credential.get("endDateTime") {
        None | Some(Value::Null) => return Ok(730),
        Some(Value::String(s)) => parse_datetime(s).ok_or_else(|| invalid_value(P))?,
        Some(_) => return Err(invalid_value(P)),
    };
    let days = ((end - now).as_seconds_f64() / 86_400.0).round();
    if !(1.0..=730.0).contains(&days) {
        return Err(bad(format!(
            "Invalid value specified for property '{P}': a password credential is valid for 1 day to 2 years."
        )));
    }
    Ok(days as u32)
}

/// `addPassword` by object id or `applications(appId='…')`: the new `passwordCredential` with its
/// `secretText`, the only time the secret is ever shown.
pub async fn add_password_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, WRITE_DELEGATED, WRITE_APP, "Application.ReadWrite.All")?;
    let key = key?;
    let m = json_object(body)?;
    if let Some(k) = m.keys().find(|k| *k != "passwordCredential" && !k.starts_with("@odata.")) {
        return Err(bad(format!("Property '{k}' does not exist on the addPassword action (only passwordCredential).")));
    }
    let credential = match m.get("passwordCredential") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(_) => return Err(invalid_value("passwordCredential")),
    };
    let name = match credential.get("displayName") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(invalid_value("passwordCredential.displayName")),
    };
    let days = valid_days(&credential, OffsetDateTime::now_utc())?;
    let (d, _) = one_app(state, &caller, key).await?;
    let tenant = tenant(state, &caller).await?;
    let actor = actor(state, &caller, &tenant).await?;
    let (secret, value) = administration::add_client_secret(
        state.store.as_ref(),
        &state.keyring,
        &actor,
        &tenant,
        d.app.app_id,
        &name,
        days,
    )
    .await?;
    let mut body = secret_json(&secret, Some(&value));
    if let Value::Object(m) = &mut body {
        let context = format!("{}/v1.0/$metadata#microsoft.graph.passwordCredential", state.settings.public_url);
        m.insert("@odata.context".into(), json!(context));
    }
    Ok(json_response(StatusCode::OK, body, None))
}

/// `DELETE /v1.0/applications/{id}`
pub async fn delete(State(state): State<SharedState>, caller: Caller, path: GraphPath) -> Result<Response, GraphError> {
    delete_by(&state, caller, path_key(&path)).await
}

/// Deletes an app registration by object id or `applications(appId='…')`, with its enterprise
/// applications everywhere (`administration::delete_application`). 204.
pub async fn delete_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
) -> Result<Response, GraphError> {
    require(&caller, WRITE_DELEGATED, WRITE_APP, "Application.ReadWrite.All")?;
    let (d, _) = one_app(state, &caller, key?).await?;
    let tenant = tenant(state, &caller).await?;
    let actor = actor(state, &caller, &tenant).await?;
    administration::delete_application(state.store.as_ref(), &actor, &tenant, d.app.app_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1.0/applications/{id}/removePassword`
pub async fn remove_password(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    remove_password_by(&state, caller, path_key(&path), body).await
}

/// `POST /v1.0/applications/{id}/addKey`: `{"keyCredential": {type, usage, key}, "proof"}`.
/// Any token of the tenant will do: the proof (signed with one of the app's current
/// certificates) is what authorizes an app to roll its own keys, as in Graph. 200 with the
/// new keyCredential.
pub async fn add_key(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    add_key_by(&state, caller, path_key(&path), body).await
}

/// `addKey` by object id or `applications(appId='…')`.
pub async fn add_key_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    let m = json_object(body)?;
    if let Some(k) = m
        .keys()
        .find(|k| !["keyCredential", "passwordCredential", "proof"].contains(&k.as_str()) && !k.starts_with("@odata."))
    {
        return Err(bad(format!("Property '{k}' does not exist on the addKey action.")));
    }
    if !matches!(m.get("passwordCredential"), None | Some(Value::Null)) {
        return Err(bad("Only certificates (AsymmetricX509Cert) can be added: passwordCredential must be null."));
    }
    let proof = string_field(&m, "proof")?
        .ok_or_else(|| bad("A value is required for parameter 'proof' of the addKey action."))?;
    let (d, _) = one_app(state, &caller, key?).await?;
    let credential = match m.get("keyCredential") {
        Some(v @ Value::Object(_)) => key_credentials(&d.app, &Value::Array(vec![v.clone()]))?.remove(0),
        _ => return Err(bad("A value is required for parameter 'keyCredential' of the addKey action.")),
    };
    roll_keys(state, &caller, d.app.app_id, &proof, administration::KeyRoll::Add(credential.clone())).await?;
    Ok(json_response(StatusCode::OK, key_json(&credential), None))
}

/// The caller's tenant rolls the app's certificates, authorized by `proof`.
async fn roll_keys(
    state: &AppState,
    caller: &Caller,
    app_id: AppId,
    proof: &str,
    roll: administration::KeyRoll,
) -> Result<(), GraphError> {
    let tenant = tenant(state, caller).await?;
    let actor = actor(state, caller, &tenant).await?;
    administration::roll_certificates(state.store.as_ref(), &actor, &tenant, app_id, proof, roll).await?;
    Ok(())
}

/// `POST /v1.0/applications/{id}/removeKey`: `{"keyId", "proof"}`, authorized by the proof. 204.
pub async fn remove_key(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    remove_key_by(&state, caller, path_key(&path), body).await
}

/// `removeKey` by object id or `applications(appId='…')`.
pub async fn remove_key_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    let m = json_object(body)?;
    let proof = string_field(&m, "proof")?
        .ok_or_else(|| bad("A value is required for parameter 'proof' of the removeKey action."))?;
    let key_id = string_field(&m, "keyId")?
        .ok_or_else(|| bad("A value is required for parameter 'keyId' of the removeKey action."))?
        .parse::<Uuid>()
        .map_err(|_| bad("Invalid value for parameter 'keyId': a GUID is required."))?;
    let (d, _) = one_app(state, &caller, key?).await?;
    roll_keys(state, &caller, d.app.app_id, &proof, administration::KeyRoll::Remove(key_id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `removePassword` by object id or `applications(appId='…')`: `{"keyId"}`. 204.
pub async fn remove_password_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, WRITE_DELEGATED, WRITE_APP, "Application.ReadWrite.All")?;
    let key = key?;
    let m = json_object(body)?;
    let key_id = match m.get("keyId") {
        None | Some(Value::Null) => {
            return Err(bad("A value is required for parameter 'keyId' of the removePassword action."))
        }
        Some(Value::String(s)) => Uuid::parse_str(s)
            .map_err(|_| bad(format!("Invalid value '{s}' for parameter 'keyId': a GUID is required.")))?,
        Some(_) => return Err(bad("Invalid value for parameter 'keyId': a GUID is required.")),
    };
    let (d, _) = one_app(state, &caller, key).await?;
    let tenant = tenant(state, &caller).await?;
    let actor = actor(state, &caller, &tenant).await?;
    administration::delete_client_secret(state.store.as_ref(), &actor, &tenant, d.app.app_id, key_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
