//! `federatedIdentityCredentials` of an application (workload identity federation): list,
//! create (201), get, update (204) and delete (204), addressed by the application's object id or
//! `applications(appId='…')`, and each credential by its id or its name. Every rule — the
//! properties' limits, uniqueness, at most 20, the privileged-app credential guard, the audit —
//! is the administration service's (`update_application`); this file translates Graph's shapes.

use super::applications::{bad, one_app, path_key, save, string_field, AppKey};
use super::auth::Caller;
use super::errors::GraphError;
use super::request::{json_object, json_response, require, GraphPath};
use crate::state::{AppState, SharedState};
use accord_core::directory::{Application, FederatedCredential, TOKEN_EXCHANGE_AUDIENCE};
use accord_core::microsoft_graph::permissions::{APP_READ, APP_READ_APP, APP_WRITE, APP_WRITE_APP};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use uuid::Uuid;

const PROPERTIES: &[&str] = &["name", "issuer", "subject", "audiences", "description"];

fn credential_json(f: &FederatedCredential) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "issuer": f.issuer,
        "subject": f.subject,
        "audiences": f.audiences,
        "description": f.description,
    })
}

fn context(state: &AppState, app: &Application, suffix: &str) -> String {
    format!(
        "{}/v1.0/$metadata#applications('{}')/federatedIdentityCredentials{suffix}",
        state.settings.public_url, app.id
    )
}

/// A credential by id (a GUID) or by name (its alternate key).
fn find<'a>(app: &'a Application, key: &str) -> Result<&'a FederatedCredential, GraphError> {
    let by_id = key.parse::<Uuid>().ok();
    app.federated_credentials
        .iter()
        .find(|f| Some(f.id) == by_id || f.name == key)
        .ok_or_else(|| GraphError::resource_not_found(key))
}

/// Only the credential's own properties may be sent; each of the right JSON type.
fn body_fields(m: &Map<String, Value>) -> Result<(), GraphError> {
    if let Some(k) = m.keys().find(|k| !PROPERTIES.contains(&k.as_str()) && !k.starts_with("@odata.") && *k != "id") {
        return Err(bad(format!(
            "Property '{k}' does not exist on type 'microsoft.graph.federatedIdentityCredential'."
        )));
    }
    Ok(())
}

fn audiences(m: &Map<String, Value>) -> Result<Option<Vec<String>>, GraphError> {
    let invalid = || bad("Invalid value specified for property 'audiences': a list of one string is expected.");
    match m.get("audiences") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => {
            list.iter().map(|a| a.as_str().map(str::to_string).ok_or_else(invalid)).collect::<Result<_, _>>().map(Some)
        }
        Some(_) => Err(invalid()),
    }
}

fn description(m: &Map<String, Value>) -> Result<Option<Option<String>>, GraphError> {
    match m.get("description") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(bad("Invalid value specified for property 'description'.")),
    }
}

/// `GET …/federatedIdentityCredentials`
pub async fn list_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
) -> Result<Response, GraphError> {
    require(&caller, APP_READ, APP_READ_APP, "Application.Read.All")?;
    let (d, _) = one_app(state, &caller, key?).await?;
    let value: Vec<Value> = d.app.federated_credentials.iter().map(credential_json).collect();
    let body = json!({ "@odata.context": context(state, &d.app, ""), "value": value });
    Ok(json_response(StatusCode::OK, body, None))
}

/// `POST …/federatedIdentityCredentials`: 201 with the credential.
pub async fn create_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, APP_WRITE, APP_WRITE_APP, "Application.ReadWrite.All")?;
    let key = key?;
    let m = json_object(body)?;
    body_fields(&m)?;
    let required = |name: &str| -> Result<String, GraphError> {
        string_field(&m, name)?.ok_or_else(|| bad(format!("A value is required for property '{name}'.")))
    };
    let credential = FederatedCredential {
        id: Uuid::new_v4(),
        name: required("name")?,
        issuer: required("issuer")?,
        subject: required("subject")?,
        audiences: audiences(&m)?.unwrap_or_else(|| vec![TOKEN_EXCHANGE_AUDIENCE.to_string()]),
        description: description(&m)?.flatten(),
        jwks: None,
    };
    let (d, _) = one_app(state, &caller, key).await?;
    let mut app = d.app;
    if app.federated_credentials.iter().any(|f| f.name.eq_ignore_ascii_case(&credential.name)) {
        return Err(GraphError::new(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            format!("A federated identity credential named '{}' already exists on this application.", credential.name),
        ));
    }
    app.federated_credentials.push(credential.clone());
    let context = context(state, &app, "/$entity");
    save(state, &caller, app).await?;
    let mut body = credential_json(&credential);
    body["@odata.context"] = json!(context);
    Ok(json_response(StatusCode::CREATED, body, None))
}

/// `GET …/federatedIdentityCredentials/{id or name}`
pub async fn get_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
    credential: &str,
) -> Result<Response, GraphError> {
    require(&caller, APP_READ, APP_READ_APP, "Application.Read.All")?;
    let (d, _) = one_app(state, &caller, key?).await?;
    let mut body = credential_json(find(&d.app, credential)?);
    body["@odata.context"] = json!(context(state, &d.app, "/$entity"));
    Ok(json_response(StatusCode::OK, body, None))
}

/// `PATCH …/federatedIdentityCredentials/{id or name}`: issuer, subject, audiences and
/// description change; the name does not. 204.
pub async fn update_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
    credential: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, APP_WRITE, APP_WRITE_APP, "Application.ReadWrite.All")?;
    let key = key?;
    let m = json_object(body)?;
    body_fields(&m)?;
    let (d, _) = one_app(state, &caller, key).await?;
    let mut app = d.app;
    let current = find(&app, credential)?.clone();
    let mut changed = current.clone();
    if let Some(name) = string_field(&m, "name")? {
        if name != current.name {
            return Err(bad("Property 'name' cannot be changed: it is the credential's immutable key."));
        }
    }
    if let Some(issuer) = string_field(&m, "issuer")? {
        changed.issuer = issuer;
    }
    if let Some(subject) = string_field(&m, "subject")? {
        changed.subject = subject;
    }
    if let Some(audiences) = audiences(&m)? {
        changed.audiences = audiences;
    }
    if let Some(description) = description(&m)? {
        changed.description = description;
    }
    for f in app.federated_credentials.iter_mut().filter(|f| f.id == current.id) {
        *f = changed.clone();
    }
    save(state, &caller, app).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE …/federatedIdentityCredentials/{id or name}`: 204.
pub async fn delete_by(
    state: &AppState,
    caller: Caller,
    key: Result<AppKey, GraphError>,
    credential: &str,
) -> Result<Response, GraphError> {
    require(&caller, APP_WRITE, APP_WRITE_APP, "Application.ReadWrite.All")?;
    let (d, _) = one_app(state, &caller, key?).await?;
    let mut app = d.app;
    let id = find(&app, credential)?.id;
    app.federated_credentials.retain(|f| f.id != id);
    save(state, &caller, app).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// Routes by object id: `/v1.0/applications/{app}/federatedIdentityCredentials[/{credential}]`

fn credential_segment(path: &GraphPath) -> String {
    path.0.get("credential").cloned().unwrap_or_default()
}

pub async fn list(State(state): State<SharedState>, caller: Caller, path: GraphPath) -> Result<Response, GraphError> {
    list_by(&state, caller, path_key(&path)).await
}

pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    create_by(&state, caller, path_key(&path), body).await
}

pub async fn get(State(state): State<SharedState>, caller: Caller, path: GraphPath) -> Result<Response, GraphError> {
    get_by(&state, caller, path_key(&path), &credential_segment(&path)).await
}

pub async fn update(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    update_by(&state, caller, path_key(&path), &credential_segment(&path), body).await
}

pub async fn delete(State(state): State<SharedState>, caller: Caller, path: GraphPath) -> Result<Response, GraphError> {
    delete_by(&state, caller, path_key(&path), &credential_segment(&path)).await
}
