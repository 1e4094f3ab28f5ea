//! "Consent webhooks" (an Accord extension): the endpoints that hear of this app's consent
//! changes in every tenant, and their delivery log. Registering, rotating and removing are
//! Graph's (`/applications/{id}/accord.consentWebhooks`); this page shows what happened.

use super::*;

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
