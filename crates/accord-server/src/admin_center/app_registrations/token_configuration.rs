//! "Token configuration": what the app's tokens carry — the groups claim, optional claims and
//! the access token version of an API — and, on "Expose an API", the client applications the
//! API pre-authorizes. Saved through `administration::update_application` like every edit.

use super::*;
use accord_core::directory::{GroupMembershipClaims, PreAuthorizedApplication, SUPPORTED_OPTIONAL_CLAIMS};

pub async fn token_configuration(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let groups: Vec<Value> = GroupMembershipClaims::ALL
            .iter()
            .map(|g| context! { value => g.as_str(), label => groups_label(*g), checked => *g == reg.app.group_membership_claims })
            .collect();
        let optional: Vec<Value> = SUPPORTED_OPTIONAL_CLAIMS
            .iter()
            .map(|name| {
                context! {
                    name,
                    id_token => reg.app.optional_claims.id_token.iter().any(|n| n == name),
                    access_token => reg.app.optional_claims.access_token.iter().any(|n| n == name),
                }
            })
            .collect();
        let ctx = context! { groups, optional, version => reg.app.access_token_version };
        Ok(tab_page(&state, &portal, &reg, TOKENS, "admin/reg_token_configuration.html", ctx, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

fn groups_label(g: GroupMembershipClaims) -> &'static str {
    match g {
        GroupMembershipClaims::None => "None",
        GroupMembershipClaims::SecurityGroup => "Security groups (and directory roles, as wids)",
        GroupMembershipClaims::DirectoryRole => "Directory roles only (wids)",
        GroupMembershipClaims::ApplicationGroup => "Groups assigned to the application",
        GroupMembershipClaims::All => "All groups (and directory roles)",
    }
}

/// `POST …/token-configuration`: the whole form at once.
pub async fn token_configuration_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/token-configuration", "tokens_saved");
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, message, |app, form| {
        app.group_membership_claims = GroupMembershipClaims::parse(form.get("groups")).ok_or_else(|| {
            ServiceError::from(Aadsts::invalid_parameter("groups", "choose one of the listed settings"))
        })?;
        let pick = |field: &str| -> Result<Vec<String>, ServiceError> {
            form.all(field)
                .into_iter()
                .map(|n| match SUPPORTED_OPTIONAL_CLAIMS.contains(&n) {
                    true => Ok(n.to_string()),
                    false => {
                        Err(Aadsts::invalid_parameter(field, &format!("'{n}' is not an optional claim Accord emits"))
                            .into())
                    }
                })
                .collect()
        };
        app.optional_claims.id_token = pick("id_token")?;
        app.optional_claims.access_token = pick("access_token")?;
        app.access_token_version = match form.get("version") {
            "1" => 1,
            "2" => 2,
            _ => return Err(Aadsts::invalid_parameter("version", "1 or 2").into()),
        };
        Ok(())
    })
    .await
}

/// `POST …/pre-authorized`: a client application and the scopes it may use without consent.
pub async fn add_pre_authorized_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/expose-api", "client_authorized");
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, message, |app, form| {
        let client: AppId = form.get("client").trim().parse().map_err(|_| {
            ServiceError::from(Aadsts::invalid_parameter("client", "an application (client) id, a GUID"))
        })?;
        let mut ids = Vec::new();
        for raw in form.all("scope") {
            let id: Uuid = raw
                .parse()
                .map_err(|_| ServiceError::from(Aadsts::invalid_parameter("scope", "a scope of this API")))?;
            if !app.scopes.iter().any(|s| s.id == id) {
                return Err(Aadsts::invalid_parameter("scope", "a scope of this API").into());
            }
            ids.push(id);
        }
        if ids.is_empty() {
            return Err(Aadsts::invalid_parameter("scope", "choose at least one scope").into());
        }
        app.pre_authorized.retain(|p| p.app_id != client);
        app.pre_authorized.push(PreAuthorizedApplication { app_id: client, permission_ids: ids });
        Ok(())
    })
    .await
}

pub async fn remove_pre_authorized(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((app, client)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, EXPOSE, &q, async |reg| {
        let client: AppId = parse_id(&client)?;
        let entry = reg.app.pre_authorized.iter().find(|p| p.app_id == client).ok_or_else(not_found)?;
        let scopes: Vec<&str> = reg.app.pre_authorized_scopes(entry.app_id);
        Ok(Confirm {
            heading: "Remove authorized client".into(),
            message: format!("The client will need consent again for these scopes of {}.", reg.app.display_name),
            details: vec![("Client application".into(), client.to_string()), ("Scopes".into(), scopes.join(" "))],
            action: format!("{}/pre-authorized/{client}/remove", reg.href()),
            button: "Remove",
            cancel: format!("{}/expose-api", reg.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn remove_pre_authorized_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, client)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/expose-api", "client_unauthorized");
    edit_post(&state, &portal, &headers, &body, Destructive::Yes, &app, message, |app, _form| {
        let client: AppId = parse_id(&client)?;
        remove_from(&mut app.pre_authorized, |p| p.app_id == client)
    })
    .await
}

/// `POST …/known-clients`: the client applications whose consent also consents to this API,
/// as a list of client ids (spaces, commas or new lines between them).
pub async fn known_clients_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/expose-api", "known_clients_saved");
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, message, |app, form| {
        let mut ids: Vec<AppId> = Vec::new();
        for raw in form.get("clients").split(|c: char| c.is_whitespace() || c == ',').filter(|s| !s.is_empty()) {
            let id: AppId = raw.parse().map_err(|_| {
                ServiceError::from(Aadsts::invalid_parameter("clients", &format!("'{raw}' is not a client id")))
            })?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        app.known_client_applications = ids;
        Ok(())
    })
    .await
}
