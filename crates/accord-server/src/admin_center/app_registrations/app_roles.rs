//! "App roles": roles for users and groups, and application permissions.

use super::*;

pub async fn app_roles(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let roles: Vec<Value> = reg
            .app
            .app_roles
            .iter()
            .map(|r| {
                let members: Vec<&str> = r
                    .allowed_member_types
                    .iter()
                    .map(|m| match m {
                        AppRoleMemberType::User => "Users/Groups",
                        AppRoleMemberType::Application => "Applications",
                    })
                    .collect();
                context! {
                    id => r.id.to_string(), name => r.display_name, value => r.value,
                    description => r.description, members,
                }
            })
            .collect();
        Ok(tab_page(&state, &portal, &reg, ROLES, "admin/reg_app_roles.html", context! { roles }, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

pub async fn add_role_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, ("/app-roles", "role_added"), |app, form| {
        let mut members = Vec::new();
        for m in form.all("member") {
            members.push(match m {
                "User" => AppRoleMemberType::User,
                "Application" => AppRoleMemberType::Application,
                _ => return Err(Aadsts::invalid_parameter("member", "Users/Groups or Applications").into()),
            });
        }
        let value = form.get("value").trim().to_string();
        let display_name = match form.get("display_name").trim() {
            "" => value.clone(),
            n => n.to_string(),
        };
        app.app_roles.push(AppRole {
            id: Uuid::new_v4(),
            value,
            display_name,
            description: form.get("description").trim().to_string(),
            allowed_member_types: members,
        });
        Ok(())
    })
    .await
}

pub async fn remove_role(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((app, id)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, ROLES, &q, async |reg| {
        let id: Uuid = parse_id(&id)?;
        let r = reg.app.app_roles.iter().find(|r| r.id == id).ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Remove app role".into(),
            message: format!(
                "Users, groups and apps assigned {} lose it: it no longer appears in their tokens for {}.",
                r.value, reg.app.display_name
            ),
            details: vec![("Display name".into(), r.display_name.clone()), ("Value".into(), r.value.clone())],
            action: format!("{}/app-roles/{id}/remove", reg.href()),
            button: "Remove",
            cancel: format!("{}/app-roles", reg.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn remove_role_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, id)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/app-roles", "role_removed");
    edit_post(&state, &portal, &headers, &body, Destructive::Yes, &app, message, |app, _form| {
        let id: Uuid = parse_id(&id)?;
        remove_from(&mut app.app_roles, |r| r.id == id)
    })
    .await
}
