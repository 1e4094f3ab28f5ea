//! "Certificates & secrets" → federated credentials: the external identities (a GitHub
//! Actions workflow, a Kubernetes service account) whose tokens the app may present instead of
//! a secret. Saved through `administration::update_application`, whose rules Graph shares.

use super::*;
use accord_core::directory::{FederatedCredential, TOKEN_EXCHANGE_AUDIENCE};

/// The rows of the federated credentials table.
pub(super) fn federated_rows(app: &Application) -> Vec<Value> {
    app.federated_credentials
        .iter()
        .map(|f| {
            context! {
                id => f.id.to_string(), name => f.name, issuer => f.issuer, subject => f.subject,
                audience => f.audiences.join(", "), description => f.description.clone().unwrap_or_default(),
                pinned => f.jwks.is_some(),
            }
        })
        .collect()
}

/// `POST …/federated-credentials`
pub async fn add_federated_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/secrets", "federated_added");
    edit_post(&state, &portal, &headers, &body, Destructive::No, &app, message, |app, form| {
        let audience = match form.get("audience").trim() {
            "" => TOKEN_EXCHANGE_AUDIENCE.to_string(),
            given => given.to_string(),
        };
        let description = Some(form.get("description").trim().to_string()).filter(|d| !d.is_empty());
        app.federated_credentials.push(FederatedCredential {
            id: Uuid::new_v4(),
            name: form.get("name").trim().to_string(),
            issuer: form.get("issuer").trim().to_string(),
            subject: form.get("subject").trim().to_string(),
            audiences: vec![audience],
            description,
            jwks: None,
        });
        Ok(())
    })
    .await
}

pub async fn delete_federated(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((app, credential)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, SECRETS, &q, async |reg| {
        let id: Uuid = parse_id(&credential)?;
        let f = reg.app.federated_credentials.iter().find(|f| f.id == id).ok_or_else(not_found)?;
        Ok(Confirm {
            heading: "Delete federated credential".into(),
            message: format!(
                "Tokens from this issuer for this subject will no longer authenticate {}.",
                reg.app.display_name
            ),
            details: vec![
                ("Name".into(), f.name.clone()),
                ("Issuer".into(), f.issuer.clone()),
                ("Subject".into(), f.subject.clone()),
            ],
            action: format!("{}/federated-credentials/{id}/delete", reg.href()),
            button: "Delete",
            cancel: format!("{}/secrets", reg.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn delete_federated_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, credential)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let message = ("/secrets", "federated_deleted");
    edit_post(&state, &portal, &headers, &body, Destructive::Yes, &app, message, |app, _form| {
        let id: Uuid = parse_id(&credential)?;
        remove_from(&mut app.federated_credentials, |f| f.id == id)
    })
    .await
}
