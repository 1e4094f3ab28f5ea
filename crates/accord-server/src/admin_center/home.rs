//! `GET /admin`: the organisation at a glance, and what the signed-in person may manage.

use super::layout::{self, Caps, Page, Section};
use crate::portal::PortalUser;
use crate::service::administration::{self, EnterpriseAppFilter};
use crate::service::ServiceError;
use crate::state::SharedState;
use accord_core::directory::UserConsent;
use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;
use std::collections::HashMap;

/// The user consent setting as the admin center names it.
pub fn user_consent_label(setting: UserConsent) -> &'static str {
    match setting {
        UserConsent::None => "Do not allow user consent",
        UserConsent::Low => "Allow user consent for apps from verified publishers, for selected permissions",
        UserConsent::All => "Allow user consent for apps",
    }
}

pub async fn home(
    State(state): State<SharedState>,
    portal: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let store = &*state.store;
        let (actor, tenant) = (&portal.actor, &portal.tenant);
        let caps = Caps::of(&state, &portal).await;
        let counts = if caps.read_directory {
            let (users, groups) = administration::directory_counts(store, actor, tenant).await?;
            context! {
                apps => administration::enterprise_apps(store, actor, tenant, &EnterpriseAppFilter::default())
                    .await?
                    .len(),
                registrations => administration::app_registration_count(store, actor, tenant).await?,
                users, groups,
                pending => pending_count(&portal, store).await?,
            }
        } else if caps.reviewer {
            context! { pending => pending_count(&portal, store).await? }
        } else {
            context! {}
        };
        let roles: Vec<&str> = portal.actor.roles().iter().map(|r| r.display_name()).collect();
        let ctx = context! {
            counts, roles,
            user_consent => user_consent_label(tenant.user_consent),
            requests_enabled => tenant.admin_consent_requests.enabled,
        };
        let crumbs = vec![layout::Crumb { label: "Home".into(), href: "/admin".into() }];
        let page = Page { section: Section::Home, crumbs, template: "admin/home.html", ctx, query: &q };
        Ok::<_, ServiceError>(layout::page(&state, &portal, page).await)
    }
    .await;
    layout::respond(&state, &portal, result).await
}

async fn pending_count(portal: &PortalUser, store: &dyn accord_store::Store) -> Result<usize, ServiceError> {
    let apps = administration::app_consent_requests(store, &portal.actor, &portal.tenant, None).await?;
    Ok(apps.iter().map(|a| a.pending().count()).sum())
}
