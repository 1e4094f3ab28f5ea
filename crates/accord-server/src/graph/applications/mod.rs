//! App registrations as Graph `application` objects: `GET /v1.0/applications` (with OData),
//! `GET /v1.0/applications/{id}` and `applications(appId='…')`, `POST` (create), `PATCH`, and
//! the `addPassword` / `removePassword` / `addKey` / `removeKey` actions; request bodies are
//! read in `body.rs`. Only the caller's tenant's own registrations exist here (an app homed
//! elsewhere is a service principal of this tenant, not an application). Every rule is the
//! administration service layer's; this module translates Graph's shapes.

mod body;

use body::*;
pub(super) use body::{bad, string_field};

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
pub(in crate::graph) async fn one_app(
    state: &AppState,
    caller: &Caller,
    key: AppKey,
) -> Result<(DirectoryApplication, Value), GraphError> {
    // Find the registration first: the Graph JSON (a store read per required resource) is
    // built for that one app, not for every app of the tenant.
    let d = administration::directory_applications(state.store.as_ref(), caller.tenant_id)
        .await?
        .into_iter()
        .find(|d| key.matches(&d.app))
        .ok_or_else(|| GraphError::resource_not_found(&key.text()))?;
    let tenant = tenant(state, caller).await?;
    let v = app_json(state, &d, tenant.default_domain()).await?;
    Ok((d, v))
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
    headers: axum::http::HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, READ_DELEGATED, READ_APP, "Application.Read.All")?;
    let opts = QueryOptions::parse(uri.query(), &APP_SPEC)?;
    super::directory::require_advanced_count(opts.count, &headers)?;
    let items: Vec<Value> = match opts.key_lookup(&["appId", "id"]) {
        // One registration by its key: the Graph JSON is built for that one alone.
        Some((key, value)) => match value.trim().parse::<uuid::Uuid>() {
            Ok(uuid) => {
                let key = if key == "appId" { AppKey::AppId(uuid.into()) } else { AppKey::ObjectId(uuid.into()) };
                match one_app(&state, &caller, key).await {
                    Ok((_, v)) => vec![v],
                    Err(e) if e.status == StatusCode::NOT_FOUND => Vec::new(),
                    Err(e) => return Err(e),
                }
            }
            Err(_) => Vec::new(),
        },
        None => all_apps(&state, &caller).await?.into_iter().map(|(_, v)| v).collect(),
    };
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
    save(state, &caller, app).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Saves a changed registration through the service layer, which validates it whole (every
/// `PATCH`, and the federated credentials' writes).
pub(super) async fn save(state: &AppState, caller: &Caller, app: Application) -> Result<(), GraphError> {
    let tenant = tenant(state, caller).await?;
    let actor = actor(state, caller, &tenant).await?;
    administration::update_application(state.store.as_ref(), &actor, &tenant, app).await?;
    Ok(())
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
    let days = valid_days(&credential, accord_core::clock::now())?;
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
