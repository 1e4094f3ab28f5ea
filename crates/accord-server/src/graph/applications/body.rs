//! Request bodies of the `applications` writes: which properties may be set, and each one read
//! and checked in Graph's terms (the service layer validates the whole registration again).

use super::*;

pub(in crate::graph) fn bad(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

pub(super) fn invalid_value(property: &str) -> GraphError {
    bad(format!("Invalid value specified for property '{property}' of resource 'Application'."))
}

pub(in crate::graph) fn string_field(m: &Map<String, Value>, name: &str) -> Result<Option<String>, GraphError> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_value(name)),
    }
}

pub(super) fn audience(m: &Map<String, Value>) -> Result<Option<SignInAudience>, GraphError> {
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
pub(super) fn platform_uris(m: &Map<String, Value>, platform: &str) -> Result<Option<Vec<String>>, GraphError> {
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
pub(super) async fn required_access(
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

pub(super) const WRITABLE: &[&str] = &[
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
pub(super) async fn apply_body(
    state: &AppState,
    mut app: Application,
    m: &Map<String, Value>,
) -> Result<Application, GraphError> {
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
pub(super) fn api_settings(app: &mut Application, v: &Value) -> Result<(), GraphError> {
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

pub(super) fn optional_claims_json(o: &OptionalClaims) -> Value {
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
pub(super) fn optional_claims(v: &Value) -> Result<OptionalClaims, GraphError> {
    const P: &str = "optionalClaims";
    let Value::Object(m) = v else {
        return if v.is_null() { Ok(OptionalClaims::default()) } else { Err(invalid_value(P)) };
    };
    let mut out = OptionalClaims::default();
    for (key, list) in m {
        let target = match key.as_str() {
            "idToken" => &mut out.id_token,
            "accessToken" => &mut out.access_token,
            // Accord issues no SAML tokens: an empty list (or null) is all it takes.
            "saml2Token" if list.is_null() || list.as_array().is_some_and(|l| l.is_empty()) => continue,
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

pub(super) fn key_credentials(app: &Application, v: &Value) -> Result<Vec<KeyCredential>, GraphError> {
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
                let mut credential = cert.credential(key_id.unwrap_or_else(Uuid::new_v4), name);
                // The same certificate sent again keeps the time it was first registered.
                if let Some(old) = app.key_credentials.iter().find(|c| c.certificate == credential.certificate) {
                    credential.added_at = old.added_at;
                }
                credential
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
