//! Consent settings as Graph shows them: `/v1.0/policies/adminConsentRequestPolicy` (the
//! admin-consent request workflow) and `/v1.0/servicePrincipals/{id}/delegatedPermissionClassifications`
//! (which delegated permissions are low impact). Who may read or change them, and which values
//! are valid, is the administration service layer's (`request_policy`, `set_request_policy`,
//! `classify`); this module checks the token's permission and translates shapes.

use super::auth::Caller;
use super::request::{actor, json_object, json_response, require, tenant, GraphPath};
use accord_core::ids::{ServicePrincipalId, TenantId};

use super::directory::object_id;
use super::errors::GraphError;
use super::odata::{Prop, PropType, QueryOptions, ResourceSpec};
use super::service_principals::one_sp;
use crate::service::administration;
use crate::state::SharedState;
use accord_core::consent_records::PermissionClassification;
use accord_core::directory::{AdminConsentRequestPolicy, ReviewerRef};
use accord_core::microsoft_graph::permissions::{
    CLASSIFICATION_READ as CLASSIFICATION_READ_DELEGATED, CLASSIFICATION_READ_APP, CLASSIFICATION_WRITE,
    REQUEST_POLICY_READ as POLICY_READ, REQUEST_POLICY_WRITE as POLICY_WRITE,
};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use uuid::Uuid;

// ------------------------------------------------------------------ adminConsentRequestPolicy

const POLICY_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.adminConsentRequestPolicy",
    select: &["isEnabled", "notifyReviewers", "remindersEnabled", "requestDurationInDays", "reviewers", "version"],
    filter: &[],
    orderby: &[],
    default_top: 1,
    max_top: 1,
    skiptoken_paging: false,
};

/// The reviewer queries Graph uses for a user and for a group's (transitive) user members.
fn reviewer_scope(r: &ReviewerRef) -> Value {
    let query = match r {
        ReviewerRef::User(id) => format!("/users/{id}"),
        ReviewerRef::Group(id) => format!("/groups/{id}/transitiveMembers/microsoft.graph.user"),
    };
    json!({"query": query, "queryType": "MicrosoftGraph", "queryRoot": null})
}

/// Graph's adminConsentRequestPolicy. Accord sends reminders exactly when it notifies reviewers,
/// so `remindersEnabled` is `notifyReviewers`.
fn policy_json(p: &AdminConsentRequestPolicy) -> Value {
    json!({
        "isEnabled": p.enabled,
        "notifyReviewers": p.notify_reviewers,
        "remindersEnabled": p.notify_reviewers,
        "requestDurationInDays": p.expire_after_days,
        "reviewers": p.reviewers.iter().map(reviewer_scope).collect::<Vec<_>>(),
        "version": p.version,
    })
}

/// `GET /v1.0/policies/adminConsentRequestPolicy`
pub async fn get_request_policy(
    State(state): State<SharedState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, POLICY_READ, POLICY_READ, "Policy.Read.All")?;
    let opts = QueryOptions::parse(uri.query(), &POLICY_SPEC)?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    let policy = administration::request_policy(&actor, &tenant)?;
    let mut body = opts.project(policy_json(&policy));
    if let Value::Object(m) = &mut body {
        let context = opts.context(&state.settings.public_url, "policies/adminConsentRequestPolicy");
        m.insert("@odata.context".into(), json!(format!("{context}/$entity")));
    }
    Ok(json_response(StatusCode::OK, body, None))
}

fn bad(message: String) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn bool_field(m: &Map<String, Value>, name: &str) -> Result<Option<bool>, GraphError> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(format!("Invalid value specified for property '{name}': a Boolean is required."))),
    }
}

/// A reviewer from Graph's `accessReviewReviewerScope`: `/users/{id}` or
/// `/groups/{id}/transitiveMembers[/microsoft.graph.user]` (with or without a `/v1.0` prefix).
pub fn parse_reviewer(index: usize, v: &Value) -> Result<ReviewerRef, GraphError> {
    let field = format!("reviewers[{index}]");
    let Value::Object(m) = v else {
        return Err(bad(format!(
            "Invalid value specified for property '{field}': an accessReviewReviewerScope object is required."
        )));
    };
    if let Some(k) =
        m.keys().find(|k| !["query", "queryType", "queryRoot"].contains(&k.as_str()) && !k.starts_with("@odata."))
    {
        return Err(bad(format!(
            "Property '{field}.{k}' does not exist on type 'microsoft.graph.accessReviewReviewerScope'."
        )));
    }
    match m.get("queryType") {
        Some(Value::String(t)) if t.eq_ignore_ascii_case("MicrosoftGraph") => {}
        _ => return Err(bad(format!("Property '{field}.queryType' must be 'MicrosoftGraph'."))),
    }
    if !matches!(m.get("queryRoot"), None | Some(Value::Null)) {
        return Err(bad(format!("Property '{field}.queryRoot' is not supported: reviewers are users or groups.")));
    }
    let Some(Value::String(query)) = m.get("query") else {
        return Err(bad(format!("Property '{field}.query' is required: '/users/{{id}}' or '/groups/{{id}}/transitiveMembers/microsoft.graph.user'.")));
    };
    let path = query.trim();
    let path = path.strip_prefix("/v1.0").or_else(|| path.strip_prefix("/beta")).unwrap_or(path);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = |s: &str| {
        Uuid::parse_str(s).map_err(|_| {
            bad(format!("Invalid value specified for property '{field}.query': '{s}' is not an object id."))
        })
    };
    match segments.as_slice() {
        ["users", u] => Ok(ReviewerRef::User(id(u)?.into())),
        ["groups", g, t] | ["groups", g, t, "microsoft.graph.user"] if t.eq_ignore_ascii_case("transitiveMembers") => {
            Ok(ReviewerRef::Group(id(g)?.into()))
        }
        _ => Err(bad(format!(
            "Unsupported reviewer query '{query}' in '{field}.query': Accord's reviewers are '/users/{{id}}' or '/groups/{{id}}/transitiveMembers/microsoft.graph.user'."
        ))),
    }
}

const POLICY_FIELDS: &[&str] =
    &["isEnabled", "notifyReviewers", "remindersEnabled", "requestDurationInDays", "reviewers", "version"];

/// The policy after applying the body's properties to `current`.
pub fn merged_policy(
    current: &AdminConsentRequestPolicy,
    m: &Map<String, Value>,
) -> Result<AdminConsentRequestPolicy, GraphError> {
    if let Some(k) = m.keys().find(|k| !POLICY_FIELDS.contains(&k.as_str()) && !k.starts_with("@odata.")) {
        return Err(bad(format!("Property '{k}' does not exist on type 'microsoft.graph.adminConsentRequestPolicy'.")));
    }
    let mut p = current.clone();
    if let Some(b) = bool_field(m, "isEnabled")? {
        p.enabled = b;
    }
    if let Some(b) = bool_field(m, "notifyReviewers")? {
        p.notify_reviewers = b;
    }
    // Reminders go out exactly when reviewers are notified; a different value cannot be kept.
    if let Some(b) = bool_field(m, "remindersEnabled")? {
        if b != p.notify_reviewers {
            return Err(bad(format!(
                "Property 'remindersEnabled' must equal 'notifyReviewers' ({}): Accord reminds reviewers exactly when it notifies them.",
                p.notify_reviewers
            )));
        }
    }
    match m.get("requestDurationInDays") {
        None => {}
        // Out-of-range numbers are passed on as 0 so the service layer's range check names them.
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            p.expire_after_days = n.as_u64().and_then(|d| u32::try_from(d).ok()).unwrap_or(0)
        }
        Some(_) => {
            return Err(bad(
                "Invalid value specified for property 'requestDurationInDays': an integer is required.".into()
            ))
        }
    }
    match m.get("reviewers") {
        None => {}
        Some(Value::Array(items)) => {
            p.reviewers = items.iter().enumerate().map(|(i, v)| parse_reviewer(i, v)).collect::<Result<_, _>>()?
        }
        Some(_) => {
            return Err(bad(
                "Invalid value specified for property 'reviewers': an array of accessReviewReviewerScope is required."
                    .into(),
            ))
        }
    }
    // `version` is read-only: clients that send the object back may include it; it is ignored.
    if !matches!(m.get("version"), None | Some(Value::Number(_))) {
        return Err(bad(
            "Invalid value specified for property 'version': an integer is required (it is read-only).".into()
        ));
    }
    Ok(p)
}

/// `PATCH` (and Graph's documented `PUT`) `/v1.0/policies/adminConsentRequestPolicy`: 204.
pub async fn update_request_policy(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, POLICY_WRITE, POLICY_WRITE, "Policy.ReadWrite.ConsentRequest")?;
    let m = json_object(body)?;
    let tenant = tenant(&state, &caller).await?;
    let policy = merged_policy(&tenant.admin_consent_requests, &m)?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::set_request_policy(state.store.as_ref(), &actor, &tenant, policy).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ------------------------------------------------------------------ delegatedPermissionClassifications

const CLASSIFICATION_FILTER: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "permissionId", ty: PropType::String },
    Prop { path: "permissionName", ty: PropType::String },
    Prop { path: "classification", ty: PropType::String },
];

const CLASSIFICATION_SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.delegatedPermissionClassification",
    select: &["id", "classification", "permissionId", "permissionName"],
    filter: CLASSIFICATION_FILTER,
    orderby: &["permissionName"],
    default_top: 100,
    max_top: 999,
    skiptoken_paging: true,
};

fn classification_json(c: &PermissionClassification) -> Value {
    json!({
        "id": c.id,
        "classification": c.classification,
        "permissionId": c.permission_id,
        "permissionName": c.permission_value,
    })
}

fn classifications_set(sp: ServicePrincipalId) -> String {
    format!("servicePrincipals('{sp}')/delegatedPermissionClassifications")
}

async fn classifications_of(
    state: &SharedState,
    tenant_id: TenantId,
    sp: ServicePrincipalId,
) -> Result<Vec<PermissionClassification>, GraphError> {
    let mut list = state.store.permission_classifications(tenant_id, sp).await?;
    list.sort_by(|a, b| {
        a.permission_value.to_lowercase().cmp(&b.permission_value.to_lowercase()).then(a.id.cmp(&b.id))
    });
    Ok(list)
}

/// `GET /v1.0/servicePrincipals/{id}/delegatedPermissionClassifications`
pub async fn list_classifications(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, GraphError> {
    require(&caller, CLASSIFICATION_READ_DELEGATED, CLASSIFICATION_READ_APP, "Application.Read.All")?;
    let sp_id = object_id(&path, "sp")?;
    let opts = QueryOptions::parse(uri.query(), &CLASSIFICATION_SPEC)?;
    let (sp, _) = one_sp(&state, &caller, sp_id).await?;
    let items = classifications_of(&state, caller.tenant_id, sp.id).await?.iter().map(classification_json).collect();
    let page = opts.apply(items);
    let value = page.items.iter().map(|v| opts.project(v.clone())).collect();
    let public_url = &state.settings.public_url;
    let body =
        opts.collection(opts.context(public_url, &classifications_set(sp.id)), &page, value, public_url, uri.path());
    Ok(json_response(StatusCode::OK, body, None))
}

fn string_field<'a>(m: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, GraphError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad(format!("Invalid value specified for property '{name}': a string is required."))),
    }
}

/// `POST /v1.0/servicePrincipals/{id}/delegatedPermissionClassifications`: `{"permissionId" or
/// "permissionName", "classification": "low"}`; 201 with the classification.
pub async fn create_classification(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GraphError> {
    require(&caller, CLASSIFICATION_WRITE, CLASSIFICATION_WRITE, "Policy.ReadWrite.PermissionGrant")?;
    let sp_id = object_id(&path, "sp")?;
    let m = json_object(body)?;
    if let Some(k) = m.keys().find(|k| !CLASSIFICATION_SPEC.select.contains(&k.as_str()) && !k.starts_with("@odata.")) {
        return Err(bad(format!(
            "Property '{k}' does not exist on type 'microsoft.graph.delegatedPermissionClassification'."
        )));
    }
    match string_field(&m, "classification")? {
        Some(c) if c.eq_ignore_ascii_case("low") => {}
        Some(c) => {
            return Err(bad(format!(
                "Invalid value '{c}' for property 'classification': Accord supports only 'low' (medium and high are preview in Graph)."
            )))
        }
        None => return Err(bad("Property 'classification' is required ('low').".into())),
    }
    let (sp, _) = one_sp(&state, &caller, sp_id).await?;
    let name = permission_name(&state, &sp, &m).await?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::classify(state.store.as_ref(), &actor, &tenant, sp.id, &name, true).await?;
    // Classifying again is no change in the service layer; either way the classification exists now.
    let created = classifications_of(&state, tenant.id, sp.id)
        .await?
        .into_iter()
        .find(|c| c.permission_value.eq_ignore_ascii_case(&name))
        .ok_or_else(|| GraphError::internal(format!("classification of {name} missing after classify")))?;
    let mut v = classification_json(&created);
    if let Value::Object(o) = &mut v {
        let context = format!("{}/v1.0/$metadata#{}/$entity", state.settings.public_url, classifications_set(sp.id));
        o.insert("@odata.context".into(), json!(context));
    }
    Ok(json_response(StatusCode::CREATED, v, None))
}

/// The permission value a body names by `permissionName` or by `permissionId` (the scope's id
/// on the resource); both must agree when both are given. Whether it may be classified is the
/// service layer's question.
async fn permission_name(
    state: &SharedState,
    sp: &accord_core::directory::ServicePrincipal,
    m: &Map<String, Value>,
) -> Result<String, GraphError> {
    let name = string_field(m, "permissionName")?;
    let Some(id) = string_field(m, "permissionId")? else {
        return name
            .map(String::from)
            .ok_or_else(|| bad("Property 'permissionId' or 'permissionName' is required.".into()));
    };
    let id = Uuid::parse_str(id)
        .map_err(|_| bad(format!("Invalid value specified for property 'permissionId': '{id}' is not a GUID.")))?;
    let resource = state.store.application_by_app_id(sp.app_id).await?;
    let scope = resource.as_ref().and_then(|r| r.scopes.iter().find(|s| s.id == id)).ok_or_else(|| {
        bad(format!(
            "Invalid value specified for property 'permissionId': '{id}' is not a delegated permission of {}.",
            sp.display_name
        ))
    })?;
    if name.is_some_and(|n| !n.eq_ignore_ascii_case(&scope.value)) {
        return Err(bad(format!(
            "Properties 'permissionId' and 'permissionName' disagree: '{id}' is '{}'.",
            scope.value
        )));
    }
    Ok(scope.value.clone())
}

/// `DELETE /v1.0/servicePrincipals/{id}/delegatedPermissionClassifications/{classificationId}`: 204.
pub async fn delete_classification(
    State(state): State<SharedState>,
    caller: Caller,
    path: GraphPath,
) -> Result<Response, GraphError> {
    require(&caller, CLASSIFICATION_WRITE, CLASSIFICATION_WRITE, "Policy.ReadWrite.PermissionGrant")?;
    let sp_id = object_id(&path, "sp")?;
    let id: Uuid = object_id(&path, "classification")?;
    let (sp, _) = one_sp(&state, &caller, sp_id).await?;
    let found = classifications_of(&state, caller.tenant_id, sp.id)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| GraphError::resource_not_found(&id.to_string()))?;
    let tenant = tenant(&state, &caller).await?;
    let actor = actor(&state, &caller, &tenant).await?;
    administration::classify(state.store.as_ref(), &actor, &tenant, sp.id, &found.permission_value, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviewer_queries() {
        let u = Uuid::new_v4();
        let q = |s: String| json!({"query": s, "queryType": "MicrosoftGraph"});
        assert_eq!(parse_reviewer(0, &q(format!("/users/{u}"))).unwrap(), ReviewerRef::User(u.into()));
        assert_eq!(parse_reviewer(0, &q(format!("/v1.0/users/{u}"))).unwrap(), ReviewerRef::User(u.into()));
        assert_eq!(
            parse_reviewer(0, &q(format!("/groups/{u}/transitiveMembers/microsoft.graph.user"))).unwrap(),
            ReviewerRef::Group(u.into())
        );
        assert_eq!(reviewer_scope(&ReviewerRef::User(u.into()))["query"], format!("/users/{u}"));
        assert!(parse_reviewer(0, &q("/users/not-a-guid".into())).is_err());
        assert!(parse_reviewer(0, &q("/beta/roleManagement/directory/roleAssignments".into())).is_err());
        assert!(parse_reviewer(1, &json!({"query": format!("/users/{u}"), "queryType": "Other"})).is_err());
        assert!(parse_reviewer(1, &json!("x")).is_err());
    }

    #[test]
    fn policy_merge_validates_each_field() {
        let current = AdminConsentRequestPolicy::default();
        let m = |v: Value| v.as_object().unwrap().clone();
        let p =
            merged_policy(&current, &m(json!({"isEnabled": true, "requestDurationInDays": 7, "version": 3}))).unwrap();
        assert!(p.enabled && p.expire_after_days == 7 && p.version == current.version);
        assert!(merged_policy(&current, &m(json!({"isEnabled": "yes"}))).is_err());
        assert!(merged_policy(&current, &m(json!({"requestDurationInDays": 1.5}))).is_err());
        assert_eq!(merged_policy(&current, &m(json!({"requestDurationInDays": -3}))).unwrap().expire_after_days, 0);
        assert!(merged_policy(&current, &m(json!({"unknown": 1}))).is_err());
        assert!(merged_policy(&current, &m(json!({"notifyReviewers": false, "remindersEnabled": true}))).is_err());
        assert!(merged_policy(&current, &m(json!({"notifyReviewers": false, "remindersEnabled": false}))).is_ok());
    }
}
