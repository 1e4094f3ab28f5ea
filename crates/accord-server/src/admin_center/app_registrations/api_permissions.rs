//! "API permissions": what the app lists of Microsoft Graph and of other APIs (requiredResourceAccess).

use super::*;

/// Names of a required permission for lists: (resource name, display name, admin consent required).
async fn describe_required(
    state: &AppState,
    resource_app_id: AppId,
    value: &str,
    application: bool,
) -> Result<(String, String, bool), ServiceError> {
    let resource = state.store.application_by_app_id(resource_app_id).await?;
    let Some(r) = resource else { return Ok((resource_app_id.to_string(), String::new(), true)) };
    let (name, admin) = if application {
        (r.app_role(value).map(|x| x.display_name.clone()).unwrap_or_default(), true)
    } else {
        r.scope(value).map(|s| (s.admin_consent_display_name.clone(), s.admin_consent_required)).unwrap_or_default()
    };
    Ok((r.display_name, name, admin))
}

pub async fn api_permissions(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let mut required = Vec::new();
        for (r, req) in reg.app.required.iter().enumerate() {
            let lists = [("d", "Delegated", &req.delegated, false), ("a", "Application", &req.application, true)];
            for (k, kind, values, application) in lists {
                for (i, value) in values.iter().enumerate() {
                    let (resource, display_name, admin_only) =
                        describe_required(&state, req.resource_app_id, value, application).await?;
                    required.push(context! { r, k, i, kind, value, resource, display_name, admin_only });
                }
            }
        }
        let graph = state.store.application_by_app_id(GRAPH_APP_ID).await?.ok_or_else(not_found)?;
        let graph_delegated: Vec<Value> = graph
            .scopes
            .iter()
            .map(|s| {
                context! {
                    value => s.value, display_name => s.admin_consent_display_name,
                    admin_only => s.admin_consent_required,
                }
            })
            .collect();
        let graph_application: Vec<Value> = graph
            .app_roles
            .iter()
            .filter(|r| r.allowed_member_types.contains(&AppRoleMemberType::Application))
            .map(|r| context! { value => r.value, display_name => r.display_name })
            .collect();
        let ctx = context! { required, graph_delegated, graph_application };
        Ok(tab_page(&state, &portal, &reg, API, "admin/reg_api_permissions.html", ctx, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `POST …/api-permissions`: `permission=delegated:User.Read` or `application:User.Read.All`
/// on Microsoft Graph.
pub async fn add_permission_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/api-permissions", "permission_added");
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, message, |app, form| {
        let (kind, value) = form
            .get("permission")
            .split_once(':')
            .ok_or_else(|| Aadsts::invalid_parameter("permission", "choose a permission"))?;
        let index = match app.required.iter().position(|r| r.resource_app_id == GRAPH_APP_ID) {
            Some(i) => i,
            None => {
                app.required.push(RequiredResourceAccess {
                    resource_app_id: GRAPH_APP_ID,
                    delegated: Vec::new(),
                    application: Vec::new(),
                });
                app.required.len() - 1
            }
        };
        let entry = &mut app.required[index];
        let list = match kind {
            "delegated" => &mut entry.delegated,
            "application" => &mut entry.application,
            _ => {
                return Err(
                    Aadsts::invalid_parameter("permission", "choose a delegated or an application permission").into()
                )
            }
        };
        if !list.iter().any(|v| v.eq_ignore_ascii_case(value)) {
            list.push(value.to_string());
        }
        Ok(())
    })
    .await
}

pub async fn remove_permission(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, API, &q, async |reg| {
        let index = |k: &str| q.get(k).and_then(|v| v.parse::<usize>().ok());
        let req = index("r").and_then(|r| reg.app.required.get(r)).ok_or_else(not_found)?;
        let application = q.get("k").map(String::as_str) == Some("a");
        let list = if application { &req.application } else { &req.delegated };
        let value = index("i").and_then(|i| list.get(i)).cloned().ok_or_else(not_found)?;
        let (resource, display_name, _) = describe_required(&state, req.resource_app_id, &value, application).await?;
        Ok(Confirm {
            heading: "Remove permission".into(),
            message: format!(
                "{} will no longer ask for this permission. Consent already granted stays until it is \
                 revoked on the enterprise application.",
                reg.app.display_name
            ),
            details: vec![
                ("API".into(), resource),
                ("Permission".into(), format!("{value} — {display_name}")),
                ("Type".into(), if application { "Application" } else { "Delegated" }.into()),
            ],
            action: format!("{}/api-permissions/remove", reg.href()),
            button: "Remove",
            cancel: format!("{}/api-permissions", reg.href()),
            hidden: vec![
                ("resource", req.resource_app_id.to_string()),
                ("kind", if application { "application" } else { "delegated" }.to_string()),
                ("value", value),
            ],
        })
    })
    .await
}

pub async fn remove_permission_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/api-permissions", "permission_removed");
    edit_post(&state, &portal, &headers, &body, Destructive::Yes, &app, message, |app, form| {
        let resource = Uuid::parse_str(form.get("resource")).map_err(|_| not_found())?;
        let entry = app.required.iter_mut().find(|r| r.resource_app_id == resource).ok_or_else(not_found)?;
        let list = if form.get("kind") == "application" { &mut entry.application } else { &mut entry.delegated };
        remove_from(list, |v| v == form.get("value"))?;
        app.required.retain(|r| !(r.delegated.is_empty() && r.application.is_empty()));
        Ok(())
    })
    .await
}
