//! Enterprise applications > Consent and permissions: user consent settings, admin consent
//! (request) settings, and permission classifications.

use super::home::user_consent_label;
use super::layout::{self, crumbs, done, need, respond, Destructive, Page, Section};
use crate::portal::PortalUser;
use crate::service::administration::{self, Operation};
use crate::service::ServiceError;
use crate::state::{AppState, SharedState};
use accord_core::directory::{AdminConsentRequestPolicy, ReviewerRef, UserConsent};
use accord_core::Aadsts;
use axum::extract::{Query, RawForm, State};
use axum::http::HeaderMap;
use axum::response::Response;
use minijinja::{context, Value};
use std::collections::HashMap;
use uuid::Uuid;

type Params = Query<HashMap<String, String>>;

fn help(setting: UserConsent) -> &'static str {
    match setting {
        UserConsent::None => {
            "Users cannot consent to any app: an administrator grants consent for every app (or approves a request)."
        }
        UserConsent::Low => {
            "Users can consent to permissions classified low impact, for apps from verified publishers or \
             registered in this organisation. Everything else needs an administrator."
        }
        UserConsent::All => "Users can consent to any permission that does not require admin consent, for any app.",
    }
}

async fn settings_page(
    state: &AppState,
    portal: &PortalUser,
    (tab, label, href): (&str, &str, &str),
    template: &str,
    ctx: Value,
    q: &HashMap<String, String>,
) -> Response {
    let crumbs = crumbs([
        ("Enterprise applications", "/admin/enterprise-apps"),
        ("Consent and permissions", "/admin/consent"),
        (label, href),
    ]);
    let page = Page { section: Section::Consent, crumbs, template, ctx: context! { tab, ..ctx }, query: q };
    layout::page(state, portal, page).await
}

/// `GET /admin/consent`: User consent settings.
pub async fn user_consent(State(state): State<SharedState>, portal: PortalUser, Query(q): Params) -> Response {
    let result = async {
        need(&portal, Operation::ReadDirectory)?;
        let options: Vec<Value> = [UserConsent::None, UserConsent::Low, UserConsent::All]
            .into_iter()
            .map(|s| {
                context! {
                    value => s.as_str(), label => user_consent_label(s), help => help(s),
                    current => s == portal.tenant.user_consent,
                }
            })
            .collect();
        let tab = ("user", "User consent settings", "/admin/consent");
        Ok(settings_page(&state, &portal, tab, "admin/consent_user.html", context! { options }, &q).await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `POST /admin/consent/user-consent`
pub async fn user_consent_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let setting = UserConsent::parse(form.get("user_consent"))
            .ok_or_else(|| Aadsts::invalid_parameter("user_consent", "choose one of the three settings"))?;
        administration::set_user_consent(&*state.store, &portal.actor, &portal.tenant, setting).await?;
        Ok(done("/admin/consent", "user_consent"))
    })
    .await
}

/// `GET /admin/consent/classifications`: Microsoft Graph's delegated permissions users could
/// consent to, and which are classified low impact.
pub async fn classifications(State(state): State<SharedState>, portal: PortalUser, Query(q): Params) -> Response {
    let result = async {
        let (_, list) = administration::graph_classifications(&*state.store, &portal.actor, &portal.tenant).await?;
        let permissions: Vec<Value> = list
            .iter()
            .map(|(s, low)| context! { value => s.value, display_name => s.admin_consent_display_name, low => *low })
            .collect();
        let tab = ("classifications", "Permission classifications", "/admin/consent/classifications");
        Ok(settings_page(&state, &portal, tab, "admin/consent_classifications.html", context! { permissions }, &q)
            .await)
    }
    .await;
    respond(&state, &portal, result).await
}

/// `POST /admin/consent/classifications`: the ticked permissions are low impact, the others not.
pub async fn classifications_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        administration::authorize(&portal.actor, Operation::ManageClassifications)?;
        let store = &*state.store;
        let (graph_sp, list) = administration::graph_classifications(store, &portal.actor, &portal.tenant).await?;
        let wanted = form.all("low");
        for (scope, low) in &list {
            let want = wanted.iter().any(|w| w.eq_ignore_ascii_case(&scope.value));
            if want != *low {
                administration::classify(store, &portal.actor, &portal.tenant, graph_sp, &scope.value, want).await?;
            }
        }
        // Anything else ticked (a forged form): the service says why it cannot be classified.
        for w in wanted.iter().filter(|w| !list.iter().any(|(s, _)| s.value.eq_ignore_ascii_case(w))) {
            administration::classify(store, &portal.actor, &portal.tenant, graph_sp, w, true).await?;
        }
        Ok(done("/admin/consent/classifications", "classified"))
    })
    .await
}

/// The request-workflow form as filled in: from the saved policy, or as posted back by the
/// reviewer search (every choice kept, nothing saved yet).
struct PolicyDraft {
    enabled: bool,
    notify: bool,
    expire_days: String,
    reviewers: Vec<ReviewerRef>,
    q: String,
}

impl PolicyDraft {
    fn saved(policy: &AdminConsentRequestPolicy) -> Self {
        PolicyDraft {
            enabled: policy.enabled,
            notify: policy.notify_reviewers,
            expire_days: policy.expire_after_days.to_string(),
            reviewers: policy.reviewers.clone(),
            q: String::new(),
        }
    }

    fn posted(form: &layout::Form) -> Result<Self, ServiceError> {
        let bad_reviewer =
            || Aadsts::invalid_parameter("reviewers", "choose reviewers among the organisation's users and groups");
        let mut reviewers = Vec::new();
        if form.all("reviewer").len() > MAX_REVIEWERS {
            return Err(Aadsts::invalid_parameter("reviewers", "choose at most 100 users and groups").into());
        }
        for r in form.all("reviewer") {
            let (kind, id) = r.split_once(':').ok_or_else(bad_reviewer)?;
            let id = Uuid::parse_str(id).map_err(|_| bad_reviewer())?;
            reviewers.push(match kind {
                "User" => ReviewerRef::User(id.into()),
                "Group" => ReviewerRef::Group(id.into()),
                _ => return Err(bad_reviewer().into()),
            });
        }
        Ok(PolicyDraft {
            enabled: form.yes_no("enabled").unwrap_or(false),
            notify: form.checked("notify"),
            expire_days: form.get("expire_days").trim().to_string(),
            reviewers,
            q: form.get("q").to_string(),
        })
    }
}

fn reviewer_id(r: &ReviewerRef) -> Uuid {
    match r {
        ReviewerRef::User(u) => (*u).into(),
        ReviewerRef::Group(g) => (*g).into(),
    }
}

/// `GET /admin/consent/admin-consent-settings`: the request workflow.
pub async fn request_settings(State(state): State<SharedState>, portal: PortalUser, Query(q): Params) -> Response {
    let draft = PolicyDraft::saved(&portal.tenant.admin_consent_requests);
    let result = request_settings_page(&state, &portal, draft, false, &q).await;
    respond(&state, &portal, result).await
}

/// The most reviewers the form takes (each is looked up to show it).
const MAX_REVIEWERS: usize = 100;

/// The most search results the reviewer picker lists.
const PICKER_RESULTS: usize = 50;

async fn request_settings_page(
    state: &AppState,
    portal: &PortalUser,
    draft: PolicyDraft,
    unsaved: bool,
    q: &HashMap<String, String>,
) -> Result<Response, ServiceError> {
    let (store, actor, tenant) = (&*state.store, &portal.actor, &portal.tenant);
    let ids: Vec<Uuid> = draft.reviewers.iter().map(reviewer_id).collect();
    let chosen = administration::principals_by_ids(store, actor, tenant, &ids).await?;
    let found = if administration::may(actor, Operation::ManageRequestPolicy) {
        administration::find_principals(store, actor, tenant, &draft.q, true, PICKER_RESULTS + 1).await?
    } else {
        Vec::new()
    };
    let view = |p: &administration::PrincipalSummary| {
        context! { id => p.id.to_string(), name => p.display_name, upn => p.upn, kind => p.kind.as_str() }
    };
    let results: Vec<Value> = found.iter().take(PICKER_RESULTS).filter(|p| !ids.contains(&p.id)).map(view).collect();
    let reviewer_names: Vec<String> =
        chosen.iter().map(|p| format!("{} ({})", p.display_name, p.kind.as_str())).collect();
    let ctx = context! {
        chosen => chosen.iter().map(view).collect::<Vec<_>>(), results, more => found.len() > PICKER_RESULTS,
        unsaved, q => draft.q, reviewer_names,
        policy => context! { enabled => draft.enabled, notify => draft.notify, expire_days => draft.expire_days },
    };
    let tab = ("requests", "Admin consent settings", "/admin/consent/admin-consent-settings");
    Ok(settings_page(state, portal, tab, "admin/consent_requests_settings.html", ctx, q).await)
}

/// `POST /admin/consent/admin-consent-settings`: saves the policy, or ("Search") shows the
/// form again with the reviewer search's results.
pub async fn request_settings_post(
    State(state): State<SharedState>,
    portal: PortalUser,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let (state, portal) = (&state, &portal);
    layout::post(state, portal, &headers, &body, Destructive::No, |form| async move {
        let draft = PolicyDraft::posted(&form)?;
        if form.get("op") == "search" {
            return request_settings_page(state, portal, draft, true, &HashMap::new()).await;
        }
        let expire_after_days = draft
            .expire_days
            .parse::<u32>()
            .map_err(|_| Aadsts::invalid_parameter("expire_days", "a number of days between 1 and 30"))?;
        let policy = AdminConsentRequestPolicy {
            enabled: draft.enabled,
            reviewers: draft.reviewers,
            expire_after_days,
            notify_reviewers: draft.notify,
            version: portal.tenant.admin_consent_requests.version,
        };
        administration::set_request_policy(&*state.store, &portal.actor, &portal.tenant, policy).await?;
        Ok(done("/admin/consent/admin-consent-settings", "request_policy"))
    })
    .await
}
