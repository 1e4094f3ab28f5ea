//! "Expose an API": the delegated permissions (scopes) the app offers other apps, and the client
//! applications it pre-authorizes for them (`token_configuration.rs` handles those forms).

use super::*;

pub async fn expose_api(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let scopes: Vec<Value> = reg
            .app
            .scopes
            .iter()
            .map(|s| {
                context! {
                    id => s.id.to_string(), value => s.value, admin_only => s.admin_consent_required,
                    admin_name => s.admin_consent_display_name, user_name => s.user_consent_display_name,
                }
            })
            .collect();
        let authorized: Vec<Value> = reg
            .app
            .pre_authorized
            .iter()
            .map(|p| context! { client => p.app_id.to_string(), scopes => reg.app.pre_authorized_scopes(p.app_id).join(" ") })
            .collect();
        let known: Vec<String> = reg.app.known_client_applications.iter().map(ToString::to_string).collect();
        let ctx = context! { scopes, authorized, known => known.join("\n") };
        Ok(tab_page(&state, &portal, &reg, EXPOSE, "admin/reg_expose_api.html", ctx, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

pub async fn add_scope_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, ("/expose-api", "scope_added"), |app, form| {
        let admin_name = form.get("admin_name").trim().to_string();
        let admin_description = form.get("admin_description").trim().to_string();
        let user_name = match form.get("user_name").trim() {
            "" => admin_name.clone(),
            n => n.to_string(),
        };
        let user_description = match form.get("user_description").trim() {
            "" => admin_description.clone(),
            d => d.to_string(),
        };
        app.scopes.push(PermissionScope {
            id: Uuid::new_v4(),
            value: form.get("value").trim().to_string(),
            admin_consent_required: form.get("who") != "users",
            admin_consent_display_name: admin_name,
            admin_consent_description: admin_description,
            user_consent_display_name: user_name,
            user_consent_description: user_description,
        });
        Ok(())
    })
    .await
}

pub async fn remove_scope(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((app, id)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, EXPOSE, &q, async |reg| {
        let id: Uuid = parse_id(&id)?;
        let s = reg.app.scopes.iter().find(|s| s.id == id).ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Remove scope".into(),
            message: format!(
                "Apps can no longer ask for {} on {}; tokens stop carrying it.",
                s.value, reg.app.display_name
            ),
            details: vec![
                ("Scope".into(), s.value.clone()),
                ("Admin consent display name".into(), s.admin_consent_display_name.clone()),
            ],
            action: format!("{}/scopes/{id}/remove", reg.href()),
            button: "Remove",
            cancel: format!("{}/expose-api", reg.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn remove_scope_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, id)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/expose-api", "scope_removed");
    edit_post(&state, &portal, &headers, &body, Destructive::Yes, &app, message, |app, _form| {
        let id: Uuid = parse_id(&id)?;
        remove_from(&mut app.scopes, |s| s.id == id)
    })
    .await
}
