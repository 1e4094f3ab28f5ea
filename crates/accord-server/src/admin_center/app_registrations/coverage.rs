//! "Consent coverage" (an Accord extension): for this multi-tenant app, in each organisation that
//! uses it, which of the permissions it asks for are granted, which are missing (never
//! consented, or added to the registration after the organisation consented), and an
//! admin-consent link asking for exactly what is missing, to send to that organisation's
//! administrator. The vendor sees only organisations where the app has an enterprise
//! application (someone there consented), and how many users and groups are assigned, never
//! who: the customers' directories stay theirs. `accord coverage` (the operator's) shows all.

use super::*;
use crate::service::coverage;

const COVERAGE: (&str, &str, &str) = ("coverage", "Consent coverage", "/coverage");

pub async fn coverage(
    State(state): State<SharedState>,
    portal: PortalUser,
    Path(app): Path<String>,
    Query(q): Params,
) -> Response {
    let result = async {
        let reg = reg(&state, &portal, &app).await?;
        let c = coverage::of_app(&*state.store, reg.app.app_id, &state.settings.public_url).await?;
        let tenants: Vec<Value> = c
            .tenants
            .iter()
            .filter(|t| t.consented)
            .map(|t| {
                let permissions: Vec<Value> = t
                    .permissions
                    .iter()
                    .map(|p| {
                        let granted = match (p.granted, p.users) {
                            ("all_users", _) => "for all users".to_string(),
                            ("granted", _) => "granted".to_string(),
                            ("some_users", n) => {
                                format!("only {} consented", accord_core::wording::count(n as i64, "user"))
                            }
                            ("not_in_consent", _) => "missing: not in the organisation's consent".to_string(),
                            _ => "missing".to_string(),
                        };
                        let ok = matches!(p.granted, "all_users" | "granted");
                        context! { resource => p.resource, permission => p.permission, kind => p.kind, granted, ok }
                    })
                    .collect();
                context! {
                    id => t.tenant_id.to_string(), name => t.display_name, enabled => t.enabled,
                    assignment_required => t.assignment_required, assigned => t.assigned.len(),
                    permissions, missing => t.missing, link => t.admin_consent_link,
                }
            })
            .collect();
        let ctx = context! { tenants };
        Ok(tab_page(&state, &portal, &reg, COVERAGE, "admin/reg_coverage.html", ctx, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}
