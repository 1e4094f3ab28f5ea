//! "Consent webhooks" (an Accord extension): the endpoints that hear of this app's consent
//! changes in every tenant, and their delivery log; registering (the secret shown once),
//! rotating and removing, as Graph's `/applications/{id}/accord.consentWebhooks` does, through
//! the same service (`service::consent_webhooks`).

use super::*;
use crate::service::consent_webhooks;

pub async fn webhooks(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let mut hooks = Vec::new();
        for w in state.store.consent_webhooks_of(reg.app.app_id).await? {
            let deliveries: Vec<Value> = state
                .store
                .webhook_deliveries(w.id, 50)
                .await?
                .iter()
                .map(|d| {
                    let outcome = match (d.delivered_at, d.next_attempt_at, d.last_status) {
                        (Some(_), _, _) => "delivered".to_string(),
                        (None, Some(_), _) if d.attempts == 0 => "queued".to_string(),
                        (None, Some(_), _) => "retrying".to_string(),
                        (None, None, Some(410)) => "refused (410)".to_string(),
                        (None, None, _) => "given up".to_string(),
                    };
                    context! {
                        event => d.kind, created => crate::admin_center::layout::fmt_time(d.created_at), attempts => d.attempts,
                        status => d.last_status, error => d.last_error, outcome,
                    }
                })
                .collect();
            hooks.push(context! { id => w.id.to_string(), url => w.url, created => crate::admin_center::layout::fmt_time(w.created_at), deliveries });
        }
        let ctx = context! { hooks };
        Ok(tab_page(&state, &portal, &reg, WEBHOOKS, "admin/reg_webhooks.html", ctx, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `POST …/webhooks`: registers an endpoint (the rules of `service::consent_webhooks`); its
/// signing secret is shown this once.
pub async fn add_webhook_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        need(portal, Operation::ManageAppRegistrations)?;
        let owned = own(state, portal, &app).await?;
        let registered = consent_webhooks::register(state, &owned, form.get("url").trim()).await?;
        secret_page(state, portal, &app, &registered).await
    })
    .await
}

/// `POST …/webhooks/{id}/rotate`: a new secret, shown this once; the previous one keeps signing
/// beside it until the next rotation.
pub async fn rotate_webhook_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, webhook)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |_form| async move {
        need(portal, Operation::ManageAppRegistrations)?;
        let hook = owned_webhook(state, portal, &app, &webhook).await?;
        let rotated = consent_webhooks::rotate_secret(state, &hook).await?;
        secret_page(state, portal, &app, &rotated).await
    })
    .await
}

pub async fn remove_webhook(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path((app, webhook)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    confirm_change(&state, &portal, &app, WEBHOOKS, &q, async |reg| {
        let hook = owned_webhook(&state, &portal, &app, &webhook).await?;
        Ok(Confirm {
            heading: "Remove consent webhook".into(),
            message: format!(
                "{} stops pushing consent changes to this endpoint; events not yet delivered to it are dropped \
                 with its delivery log.",
                reg.app.display_name
            ),
            details: vec![
                ("Endpoint".into(), hook.url.clone()),
                ("Webhook ID".into(), hook.id.to_string()),
                ("Registered".into(), crate::admin_center::layout::fmt_time(hook.created_at)),
            ],
            action: format!("{}/webhooks/{}/remove", reg.href(), hook.id),
            button: "Remove",
            cancel: format!("{}/webhooks", reg.href()),
            hidden: vec![],
        })
    })
    .await
}

pub async fn remove_webhook_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    Path((app, webhook)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::Yes, |_form| async move {
        need(portal, Operation::ManageAppRegistrations)?;
        let hook = owned_webhook(state, portal, &app, &webhook).await?;
        consent_webhooks::remove(state, &hook).await?;
        Ok(done(&format!("/admin/app-registrations/{}/webhooks", hook.app_id), "webhook_removed"))
    })
    .await
}

/// A webhook of one of this organisation's own registrations, or "not found".
async fn owned_webhook(
    state: &AppState,
    portal: &PortalUser,
    app: &str,
    webhook: &str,
) -> Result<accord_store::ConsentWebhook, ServiceError> {
    let owned = own(state, portal, app).await?;
    let id: uuid::Uuid = parse_id(webhook)?;
    match state.store.consent_webhook(id).await? {
        Some(w) if w.app_id == owned.app_id => Ok(w),
        _ => Err(not_found()),
    }
}

/// The webhook with its secret, shown once (the page is not cached: admin pages never are).
async fn secret_page(
    state: &AppState,
    portal: &PortalUser,
    app: &str,
    registered: &consent_webhooks::Registered,
) -> Result<Response, ServiceError> {
    let reg = reg(state, portal, app).await?;
    let w = &registered.webhook;
    let ctx = context! {
        hook => context! { id => w.id.to_string(), url => w.url, created => crate::admin_center::layout::fmt_time(w.created_at) },
        secret_value => registered.secret,
        rotated => w.sealed_secrets.len() > 1,
    };
    Ok(tab_page(state, portal, &reg, WEBHOOKS, "admin/reg_webhook_secret.html", ctx, &HashMap::new()).await)
}
