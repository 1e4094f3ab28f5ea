//! "Certificates & secrets": client secrets, each value shown once when it is added.

use super::*;

pub async fn secrets(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let list = administration::client_secrets(&*state.store, &portal.actor, &portal.tenant, reg.app.app_id).await?;
        let rows: Vec<Value> = list
            .iter()
            .map(|s| {
                context! {
                    id => s.id.to_string(), name => s.display_name, hint => s.hint, created => fmt_time(s.created_at),
                    expires => s.expires_at.map(fmt_time).unwrap_or_else(|| "Never".into()),
                }
            })
            .collect();
        Ok(tab_page(&state, &portal, &reg, SECRETS, "admin/reg_secrets.html", context! { secrets => rows }, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `POST …/secrets`: a new secret, whose value this response shows once (no redirect, so it
/// is in no URL and no later page; responses are `no-store`).
pub async fn add_secret_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let app_id = parse_id(&app)?;
        let days: u32 = form
            .get("days")
            .parse()
            .map_err(|_| Aadsts::invalid_parameter("days", "choose when the secret expires"))?;
        let (secret, value) = administration::add_client_secret(
            &*state.store,
            &state.keyring,
            &portal.actor,
            &portal.tenant,
            app_id,
            form.get("description"),
            days,
        )
        .await?;
        let reg = reg(state, portal, &app).await?;
        let ctx = context! {
            secret => context! {
                id => secret.id.to_string(), name => secret.display_name,
                expires => secret.expires_at.map(fmt_time).unwrap_or_else(|| "Never".into()),
            },
            secret_value => value,
        };
        let res = tab_page(state, portal, &reg, SECRETS, "admin/reg_secret_created.html", ctx, &HashMap::new()).await;
        Ok(res)
    })
    .await
}

pub async fn delete_secret(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((app, secret)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, SECRETS, &q, async |reg| {
        let id: Uuid = parse_id(&secret)?;
        let s = administration::client_secrets(&*state.store, &portal.actor, &portal.tenant, reg.app.app_id)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Delete client secret".into(),
            message: format!(
                "{} can no longer authenticate with this secret. This cannot be undone.",
                reg.app.display_name
            ),
            details: vec![
                ("Description".into(), s.display_name.clone()),
                ("Value".into(), format!("{}••••••••", s.hint)),
                ("Secret ID".into(), s.id.to_string()),
            ],
            action: format!("{}/secrets/{id}/delete", reg.href()),
            button: "Delete",
            cancel: format!("{}/secrets", reg.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn delete_secret_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, secret)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::Yes, |_form| async move {
        let (app_id, id) = (parse_id(&app)?, parse_id(&secret)?);
        administration::delete_client_secret(&*state.store, &portal.actor, &portal.tenant, app_id, id).await?;
        Ok(done(&format!("/admin/app-registrations/{app_id}/secrets"), "secret_deleted"))
    })
    .await
}
