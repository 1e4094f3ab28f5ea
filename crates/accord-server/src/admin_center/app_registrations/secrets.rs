//! "Certificates & secrets": certificates with their expiry, client secrets (each value shown
//! once when it is added); federated credentials are listed here too (`federated_credentials`).

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
        let certificates = certificate_rows(&reg.app, accord_core::clock::now());
        let federated = federated_credentials::federated_rows(&reg.app);
        let ctx = context! { secrets => rows, certificates, federated };
        Ok(tab_page(&state, &portal, &reg, SECRETS, "admin/reg_secrets.html", ctx, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// The app's certificates with their thumbprints and how long each remains valid, so that a
/// rotation (a second certificate valid alongside the first) is planned before the first expires.
fn certificate_rows(app: &accord_core::directory::Application, now: time::OffsetDateTime) -> Vec<Value> {
    app.key_credentials
        .iter()
        .map(|k| {
            let thumbprint = crate::client_certificates::ClientCertificate::from_credential(k)
                .map(|c| c.thumbprint_hex())
                .unwrap_or_default();
            let days_left = (k.end - now).whole_days();
            let status = if now > k.end {
                "Expired".to_string()
            } else if now < k.start {
                "Not yet valid".to_string()
            } else if days_left == 0 {
                "Expires today".to_string()
            } else if days_left < 30 {
                format!("Expires in {days_left} day{}", if days_left == 1 { "" } else { "s" })
            } else {
                "Valid".to_string()
            };
            context! {
                name => k.display_name, thumbprint, id => k.key_id.to_string(),
                start => fmt_time(k.start), expires => fmt_time(k.end), status,
                warn => now > k.end || days_left < 30,
            }
        })
        .collect()
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

/// `POST …/certificates`: a certificate file uploaded (a .cer, binary DER or Base64; a .pem or
/// .crt) or its text pasted, registered through the same update as Graph's `keyCredentials`, so
/// the same checks and privileged-app rule apply.
pub async fn add_certificate_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let body = if content_type.starts_with("multipart/form-data") {
        match certificate_upload(content_type, &body) {
            Ok(form) => form,
            Err(why) => {
                return respond(&state, &portal, Err(Aadsts::invalid_parameter("certificate", &why).into())).await
            }
        }
    } else {
        body.to_vec()
    };
    let message = ("/secrets", "certificate_added");
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, message, |app, form| {
        let cert = crate::client_certificates::ClientCertificate::from_text(form.get("certificate"))
            .map_err(|why| Aadsts::invalid_parameter("certificate", &why))?;
        let name = match form.get("description").trim() {
            "" => "certificate",
            given => given,
        };
        app.key_credentials.push(cert.credential(Uuid::new_v4(), name));
        Ok(())
    })
    .await
}

/// The upload form as the urlencoded form the text field sends: a binary (DER) file becomes
/// its base64, a text file (PEM, Base64 .cer) stays text; a pasted text is used when no file is.
fn certificate_upload(content_type: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let parts = crate::web::forms::multipart(content_type, body)?;
    let text = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.bytes).into_owned())
            .unwrap_or_default()
    };
    let file =
        parts.iter().find(|p| p.name == "file" && !p.bytes.is_empty()).map(|p| match std::str::from_utf8(&p.bytes) {
            Ok(text)
                if text.trim_start().starts_with("-----BEGIN")
                    || text.trim().chars().all(|c| c.is_ascii_alphanumeric() || "+/=\r\n ".contains(c)) =>
            {
                text.to_string()
            }
            _ => base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &p.bytes),
        });
    let certificate = file.unwrap_or_else(|| text("certificate"));
    let mut form = form_urlencoded::Serializer::new(String::new());
    for name in ["csrf", "description"] {
        form.append_pair(name, &text(name));
    }
    form.append_pair("certificate", &certificate);
    Ok(form.finish().into_bytes())
}

pub async fn delete_certificate(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((app, key)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, SECRETS, &q, async |reg| {
        let id: Uuid = parse_id(&key)?;
        let k = reg.app.key_credentials.iter().find(|k| k.key_id == id).ok_or_else(not_found)?;
        let thumbprint = crate::client_certificates::ClientCertificate::from_credential(k)
            .map(|c| c.thumbprint_hex())
            .unwrap_or_default();
        Ok(Confirm {
            heading: "Delete certificate".into(),
            message: format!(
                "{} can no longer authenticate with this certificate's key. This cannot be undone.",
                reg.app.display_name
            ),
            details: vec![
                ("Description".into(), k.display_name.clone()),
                ("Thumbprint".into(), thumbprint),
                ("Expires".into(), fmt_time(k.end)),
            ],
            action: format!("{}/certificates/{id}/delete", reg.href()),
            button: "Delete",
            cancel: format!("{}/secrets", reg.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn delete_certificate_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, key)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/secrets", "certificate_deleted");
    edit_post(&state, &portal, &headers, &body, Destructive::Yes, &app, message, |app, _form| {
        let id: Uuid = parse_id(&key)?;
        remove_from(&mut app.key_credentials, |k| k.key_id == id)
    })
    .await
}
