//! The admin center's frame: its own template set (autoescaped — app, user and group names are
//! chosen by others), the page layout (navigation, breadcrumbs, the signed-in person and their
//! organisation), messages after POST-redirect-GET, form parsing with the CSRF check, and the
//! failure page (403 for a role that may not act, 400 for a refused form, …).

use crate::portal::PortalUser;
use crate::service::administration::{self, Actor, Operation};
use crate::service::ServiceError;
use crate::state::AppState;
use crate::web::forms::found;
use accord_core::Aadsts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, Environment, Value};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::LazyLock;
use time::OffsetDateTime;
use uuid::Uuid;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_filter("count", accord_core::wording::count);
    for (name, source) in templates!(
        "admin/layout.html",
        "admin/error.html",
        "admin/confirm.html",
        "admin/home.html",
        "admin/enterprise_apps.html",
        "admin/app_tabs.html",
        "admin/app_overview.html",
        "admin/app_properties.html",
        "admin/app_users.html",
        "admin/app_add_assignment.html",
        "admin/app_permissions.html",
        "admin/app_admin_consent.html",
        "admin/ends_field.html",
        "admin/audit_table.html",
        "admin/app_activity.html",
        "admin/consent_tabs.html",
        "admin/consent_user.html",
        "admin/consent_classifications.html",
        "admin/consent_requests_settings.html",
        "admin/requests.html",
        "admin/request.html",
        "admin/users.html",
        "admin/user_new.html",
        "admin/user.html",
        "admin/groups.html",
        "admin/group.html",
        "admin/app_registrations.html",
        "admin/app_registration_new.html",
        "admin/reg_tabs.html",
        "admin/reg_overview.html",
        "admin/reg_secrets.html",
        "admin/reg_secret_created.html",
        "admin/reg_api_permissions.html",
        "admin/reg_expose_api.html",
        "admin/reg_app_roles.html",
        "admin/reg_token_configuration.html",
        "admin/reg_webhooks.html",
        "admin/reg_coverage.html",
        "admin/reg_webhook_secret.html",
        "admin/audit.html",
        "admin/audit_event.html",
        "admin/pager.html",
    ) {
        env.add_template(name, source).expect("built-in admin template parses");
    }
    env
});

pub const STYLESHEET: &str = include_str!("../../templates/admin/admin.css");

/// `GET /admin/static/admin.css`
pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
}

/// Renders an admin template; a failure is a bug in our templates, logged, never shown.
pub fn render_template(name: &str, ctx: Value) -> String {
    match ENV.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(template = name, error = %e, "admin template rendering failed");
            "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_string()
        }
    }
}

/// The left navigation's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    EnterpriseApps,
    AppRegistrations,
    Users,
    Groups,
    Consent,
    Requests,
    Audit,
}

/// What the signed-in person may do, for templates deciding which controls to offer. The
/// service checks again on every POST.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Caps {
    pub read_directory: bool,
    pub manage_users: bool,
    pub manage_roles: bool,
    pub manage_groups: bool,
    pub manage_enterprise_apps: bool,
    pub manage_app_registrations: bool,
    pub manage_grants: bool,
    pub manage_assignments: bool,
    pub manage_user_consent: bool,
    pub manage_classifications: bool,
    pub manage_request_policy: bool,
    pub read_audit: bool,
    pub reviewer: bool,
}

impl Caps {
    pub async fn of(state: &AppState, portal: &PortalUser) -> Caps {
        let a: &Actor = &portal.actor;
        let access = administration::request_access(&*state.store, a, &portal.tenant).await.unwrap_or_default();
        Caps {
            read_directory: administration::may(a, Operation::ReadDirectory),
            manage_users: administration::may(a, Operation::ManageUsers),
            manage_roles: administration::may(a, Operation::ManageRoles),
            manage_groups: administration::may(a, Operation::ManageGroups),
            manage_enterprise_apps: administration::may(a, Operation::ManageEnterpriseApps),
            manage_app_registrations: administration::may(a, Operation::ManageAppRegistrations),
            manage_grants: administration::may(a, Operation::ManageGrants),
            manage_assignments: administration::may(a, Operation::ManageAssignments),
            manage_user_consent: administration::may(a, Operation::ManageUserConsentSetting),
            manage_classifications: administration::may(a, Operation::ManageClassifications),
            manage_request_policy: administration::may(a, Operation::ManageRequestPolicy),
            read_audit: administration::may(a, Operation::ReadAudit),
            reviewer: access.reviewer,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Crumb {
    pub label: String,
    pub href: String,
}

/// Breadcrumbs from (label, href) pairs; the last one is the current page.
pub fn crumbs<L: Into<String>, H: Into<String>>(items: impl IntoIterator<Item = (L, H)>) -> Vec<Crumb> {
    let mut out = vec![Crumb { label: "Home".into(), href: "/admin".into() }];
    out.extend(items.into_iter().map(|(l, h)| Crumb { label: l.into(), href: h.into() }));
    out
}

/// Fixed texts for `?done=` after a successful POST (the code itself is never shown).
const DONE: &[(&str, &str)] = &[
    ("saved", "Your changes were saved."),
    ("assigned", "The user or group was assigned to the application."),
    ("assigned_many", "The users and groups were assigned to the application."),
    ("unassigned", "The assignment was removed."),
    ("app_deleted", "The enterprise application was deleted with its permissions and assignments."),
    ("webhook_removed", "The consent webhook was removed."),
    ("consented", "Admin consent was granted for your organisation. Users can now use the app without being asked."),
    ("revoked", "The permission grant was revoked. The app loses these permissions at its next token refresh."),
    ("app_permission_removed", "The application permission was removed."),
    ("approved", "The request was approved and admin consent granted. Every pending request for this app is complete."),
    ("denied", "The request was denied. Users may ask again."),
    ("blocked", "The request was denied and the application blocked: it is disabled in your organisation."),
    ("user_created", "The user was created."),
    ("user_enabled", "The account was enabled."),
    ("user_disabled", "The account was disabled. The user can no longer sign in."),
    ("user_deleted", "The user was deleted."),
    ("password_reset", "The password was reset. Give the new password to the user over a safe channel."),
    ("roles_saved", "The directory roles were saved."),
    ("group_created", "The group was created."),
    ("member_added", "The member was added to the group."),
    ("member_removed", "The member was removed from the group."),
    ("app_created", "The app registration was created, with its enterprise application in your organisation."),
    ("secret_deleted", "The client secret was deleted. Apps using it can no longer authenticate with it."),
    ("certificate_added", "The certificate was added. The app can sign its client assertions with its key."),
    ("certificate_deleted", "The certificate was deleted. Assertions signed with its key are refused."),
    (
        "federated_added",
        "The federated credential was added. Tokens its issuer signs for its subject now authenticate the app.",
    ),
    ("federated_deleted", "The federated credential was deleted. Its issuer's tokens are refused."),
    ("tokens_saved", "The token configuration was saved. New tokens carry it."),
    ("client_authorized", "The client application is authorized: it uses those scopes without consent."),
    ("client_unauthorized", "The client application is no longer pre-authorized."),
    ("known_clients_saved", "The known client applications were saved: consenting to them consents to this API too."),
    ("redirect_added", "The redirect URI was added."),
    ("redirect_removed", "The redirect URI was removed."),
    ("permission_added", "The permission was added to the app's required permissions."),
    ("permission_removed", "The permission was removed from the app's required permissions."),
    ("scope_added", "The scope was added."),
    ("scope_removed", "The scope was removed."),
    ("role_added", "The app role was added."),
    ("role_removed", "The app role was removed."),
    ("classified", "The permission classifications were saved."),
    ("user_consent", "The user consent setting was saved."),
    ("request_policy", "The admin consent request settings were saved."),
];

pub fn done_text(code: Option<&str>) -> Option<&'static str> {
    let code = code?;
    DONE.iter().find(|(c, _)| *c == code).map(|(_, t)| *t)
}

/// Redirect after a successful POST: the page, with a message code.
pub fn done(path: &str, code: &str) -> Response {
    debug_assert!(DONE.iter().any(|(c, _)| *c == code), "unknown done code {code}");
    found(&format!("{path}?done={code}"))
}

/// A page of the admin center with its layout.
pub struct Page<'a> {
    pub section: Section,
    pub crumbs: Vec<Crumb>,
    pub template: &'a str,
    pub ctx: Value,
    pub query: &'a HashMap<String, String>,
}

fn nav(caps: &Caps, current: Section) -> Vec<Value> {
    let items = [
        (Section::Home, "Home", "/admin", true),
        (Section::EnterpriseApps, "Enterprise applications", "/admin/enterprise-apps", caps.read_directory),
        (Section::AppRegistrations, "App registrations", "/admin/app-registrations", caps.read_directory),
        (Section::Users, "Users", "/admin/users", caps.read_directory),
        (Section::Groups, "Groups", "/admin/groups", caps.read_directory),
        (Section::Consent, "Consent and permissions", "/admin/consent", caps.read_directory),
        (Section::Requests, "Admin consent requests", "/admin/requests", caps.read_directory || caps.reviewer),
        (Section::Audit, "Audit log", "/admin/audit", caps.read_audit),
    ];
    items
        .into_iter()
        .filter(|(_, _, _, show)| *show)
        .map(|(s, label, href, _)| context! { label, href, active => s == current })
        .collect()
}

fn base_context(portal: &PortalUser, caps: &Caps, section: Section, crumbs: &[Crumb]) -> Value {
    let title = crumbs.last().map(|c| c.label.clone()).unwrap_or_default();
    context! {
        title,
        crumbs,
        nav => nav(caps, section),
        can => caps,
        csrf => portal.csrf,
        me => context! { upn => portal.user.upn, name => portal.user.display_name },
        tenant => context! {
            name => portal.tenant.display_name, id => portal.tenant.id.to_string(),
            domain => portal.tenant.default_domain(),
        },
        sign_out => format!("/{}/oauth2/v2.0/logout", portal.tenant.id),
    }
}

fn with_cookie(mut res: Response, portal: &PortalUser) -> Response {
    if let Some(c) = &portal.set_csrf_cookie {
        res.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    res
}

/// Renders a page with the layout (status 200).
pub async fn page(state: &AppState, portal: &PortalUser, page: Page<'_>) -> Response {
    let caps = Caps::of(state, portal).await;
    let flash = done_text(page.query.get("done").map(String::as_str));
    let base = base_context(portal, &caps, page.section, &page.crumbs);
    let ctx = minijinja::value::merge_maps([base, page.ctx, context! { flash }]);
    with_cookie(Html(render_template(page.template, ctx)).into_response(), portal)
}

/// The page for a failed request: 403 when the signed-in person's role may not do it, 404 for
/// an unknown object, 409 for a conflict, 400 for a refused form (CSRF, validation), 503 for
/// our own trouble (logged with a trace id; no detail shown).
pub async fn failure(state: &AppState, portal: &PortalUser, failure: ServiceError) -> Response {
    let trace_id = Uuid::new_v4();
    let (status, heading) = match &failure {
        ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, "You don't have access"),
        ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        ServiceError::Conflict(_) => (StatusCode::CONFLICT, "The change conflicts with what exists"),
        ServiceError::Refused(a) if a.retry_after.is_some() => (StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
        ServiceError::Refused(_) => (StatusCode::BAD_REQUEST, "The request was not accepted"),
        ServiceError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable"),
        ServiceError::Internal(_) => (StatusCode::SERVICE_UNAVAILABLE, "Something went wrong"),
    };
    let e = crate::protocol::errors::Failure::from(failure).into_aadsts(trace_id);
    tracing::info!(%trace_id, code = e.code, status = status.as_u16(), "admin center request refused");
    let caps = Caps::of(state, portal).await;
    let crumbs = crumbs([(heading, "")]);
    let base = base_context(portal, &caps, Section::Home, &crumbs);
    let ctx = context! {
        heading, code => e.code, message => e.message, trace_id => trace_id.to_string(),
        timestamp => fmt_time(accord_core::clock::now()),
        ..base
    };
    let res = crate::protocol::errors::with_retry_after(
        (status, Html(render_template("admin/error.html", ctx))).into_response(),
        &e,
    );
    with_cookie(res, portal)
}

/// Turns a handler's result into its response.
pub async fn respond(state: &AppState, portal: &PortalUser, result: Result<Response, ServiceError>) -> Response {
    match result {
        Ok(res) => res,
        Err(e) => failure(state, portal, e).await,
    }
}

/// Whether a form's action destroys something and so needs `confirm=yes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destructive {
    Yes,
    No,
}

/// Every form POST of the admin center: parses the body, checks the CSRF token (and, for a
/// destructive action, the confirmation), runs `act`, and shows a failure as a page.
pub async fn post<F, Fut>(
    state: &AppState,
    portal: &PortalUser,
    headers: &HeaderMap,
    body: &[u8],
    destructive: Destructive,
    act: F,
) -> Response
where
    F: FnOnce(Form) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ServiceError>>,
{
    let form = Form::parse(body);
    let checked = form.check_csrf(state, portal, headers).and_then(|()| match destructive {
        Destructive::Yes => form.require_confirmation(),
        Destructive::No => Ok(()),
    });
    let result = match checked {
        Ok(()) => act(form).await,
        Err(e) => Err(e),
    };
    respond(state, portal, result).await
}

/// Refuses a page the signed-in person may not read.
pub fn need(portal: &PortalUser, op: Operation) -> Result<(), ServiceError> {
    administration::authorize(&portal.actor, op)
}

/// An object id from the path; anything else is "not found".
pub fn parse_id<T: From<Uuid>>(raw: &str) -> Result<T, ServiceError> {
    Uuid::parse_str(raw).map(T::from).map_err(|_| not_found())
}

/// 404: no such object in this organisation (or not one this page shows).
pub fn not_found() -> ServiceError {
    ServiceError::not_found("No such object was found in this organisation.")
}

/// `path` with the pairs that have a value as its query string (`path` alone when none has):
/// the links of filtered and paged lists.
pub fn link<'a>(path: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut url = form_urlencoded::Serializer::new(String::new());
    url.extend_pairs(pairs.into_iter().filter(|(_, v)| !v.is_empty()));
    let query = url.finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// Rows an admin-center list shows per page.
pub const PAGE_ROWS: usize = 50;

/// One page (`?page=N`, from 1) of a list held in memory — the lists that grow with the apps
/// and requests of a tenant, not with its users — and the pager's links, which keep the other
/// query parameters.
pub fn in_pages<T>(items: Vec<T>, path: &str, q: &HashMap<String, String>) -> Result<(Vec<T>, Value), ServiceError> {
    in_pages_as(items, path, q, "page")
}

/// [`in_pages`] with the page number in `param`, for a view with more than one paged list.
pub fn in_pages_as<T>(
    items: Vec<T>,
    path: &str,
    q: &HashMap<String, String>,
    param: &str,
) -> Result<(Vec<T>, Value), ServiceError> {
    let number = match q.get(param).map(|p| p.trim()).filter(|p| !p.is_empty()) {
        None => 1,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| Aadsts::invalid_parameter(param, "is not a page number (1, 2, …)"))?,
    };
    let pages = items.len().div_ceil(PAGE_ROWS).max(1);
    let keep = kept_params(q, param);
    let link = |n: usize| {
        let page = if n > 1 { n.to_string() } else { String::new() };
        link(path, keep.iter().copied().chain([(param, page.as_str())]))
    };
    let paging = context! {
        first => (number > 2).then(|| link(1)),
        prev => (number > 1).then(|| link((number - 1).min(pages))),
        next => (number < pages).then(|| link(number + 1)),
        label => format!("Page {} of {pages}", number.min(pages)),
    };
    let rows = items.into_iter().skip((number - 1).saturating_mul(PAGE_ROWS)).take(PAGE_ROWS).collect();
    Ok((rows, paging))
}

/// A list's query parameters that its pager links keep — all but its own position `param` and
/// the one-time `done` message — in a stable order.
pub fn kept_params<'q>(q: &'q HashMap<String, String>, param: &str) -> Vec<(&'q str, &'q str)> {
    let mut keep: Vec<(&str, &str)> = q
        .iter()
        .filter(|(k, _)| k.as_str() != param && k.as_str() != "done")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    keep.sort();
    keep
}

/// `2026-01-02 13:45 UTC`
pub fn fmt_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// A submitted form: every pair in order (checkbox lists repeat names).
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form { pairs: form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect() }
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// A checkbox: present and not "off".
    pub fn checked(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, v)| k == name && v != "off" && !v.is_empty())
    }

    /// A yes/no radio group: `None` when absent.
    pub fn yes_no(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        }
    }

    /// Checks the CSRF token against the browser's cookie (400 when it does not match).
    pub fn check_csrf(&self, state: &AppState, portal: &PortalUser, headers: &HeaderMap) -> Result<(), ServiceError> {
        let mut map = HashMap::new();
        for (k, v) in &self.pairs {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Ok(portal.check_csrf(state, headers, &map)?)
    }

    /// Destructive actions post `confirm=yes` from their confirmation page or checkbox.
    pub fn require_confirmation(&self) -> Result<(), ServiceError> {
        if self.get("confirm") == "yes" {
            Ok(())
        } else {
            Err(accord_core::Aadsts::invalid_parameter(
                "confirm",
                "confirm the action by ticking the box or using the confirmation page",
            )
            .into())
        }
    }
}

/// The generic confirmation page for a destructive action.
pub struct Confirm<'a> {
    pub heading: String,
    pub message: String,
    /// (label, value) lines describing what goes.
    pub details: Vec<(String, String)>,
    pub action: String,
    pub button: &'a str,
    pub cancel: String,
    /// Hidden fields the confirmed form posts (what exactly goes).
    pub hidden: Vec<(&'a str, String)>,
}

impl Confirm<'_> {
    /// The page asking for this confirmation: the crumbs of the page it was reached from, then
    /// the action's heading.
    pub async fn page(
        self,
        state: &AppState,
        portal: &PortalUser,
        section: Section,
        mut crumbs: Vec<Crumb>,
        query: &HashMap<String, String>,
    ) -> Response {
        crumbs.push(Crumb { label: self.heading.clone(), href: String::new() });
        page(state, portal, Page { section, crumbs, template: "admin/confirm.html", ctx: self.into_ctx(), query }).await
    }

    fn into_ctx(self) -> Value {
        let details: Vec<Value> = self.details.into_iter().map(|(label, value)| context! { label, value }).collect();
        let hidden: Vec<Value> = self.hidden.into_iter().map(|(name, value)| context! { name, value }).collect();
        context! {
            heading => self.heading, message => self.message, details, hidden, action => self.action,
            button => self.button, cancel => self.cancel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_in_memory_are_paged_with_links_that_keep_the_filters() {
        let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let items: Vec<u32> = (0..120).collect();
        let (rows, paging) = in_pages(items.clone(), "/admin/x", &q(&[("q", "a b"), ("done", "saved")])).unwrap();
        assert_eq!(rows, (0..50).collect::<Vec<_>>());
        assert_eq!(paging.get_attr("next").unwrap().to_string(), "/admin/x?q=a+b&page=2");
        assert!(paging.get_attr("prev").unwrap().is_none());
        assert_eq!(paging.get_attr("label").unwrap().to_string(), "Page 1 of 3");
        let (rows, paging) = in_pages(items.clone(), "/admin/x", &q(&[("page", "3"), ("q", "a")])).unwrap();
        assert_eq!(rows, (100..120).collect::<Vec<_>>());
        assert!(paging.get_attr("next").unwrap().is_none());
        assert_eq!(paging.get_attr("prev").unwrap().to_string(), "/admin/x?q=a&page=2");
        assert_eq!(paging.get_attr("first").unwrap().to_string(), "/admin/x?q=a");
        let (rows, paging) = in_pages(items.clone(), "/admin/x", &q(&[("page", "9")])).unwrap();
        assert!(rows.is_empty(), "past the end: nothing, not an error");
        assert_eq!(paging.get_attr("prev").unwrap().to_string(), "/admin/x?page=3", "back to the last page");
        for bad in ["0", "-1", "two", "1.5"] {
            assert!(in_pages(items.clone(), "/admin/x", &q(&[("page", bad)])).is_err(), "{bad}");
        }
        let (rows, paging) = in_pages(vec![1, 2], "/admin/x", &q(&[])).unwrap();
        assert_eq!(rows, [1, 2]);
        assert!(paging.get_attr("next").unwrap().is_none() && paging.get_attr("first").unwrap().is_none());
    }

    #[test]
    fn done_codes_map_to_fixed_texts_only() {
        assert!(done_text(Some("saved")).is_some());
        assert_eq!(done_text(Some("<script>alert(1)</script>")), None);
        assert_eq!(done_text(None), None);
    }

    #[test]
    fn forms_keep_repeated_names_and_read_checkboxes() {
        let f = Form::parse(b"csrf=t&low=openid&low=User.Read&enabled=yes&flag=on&confirm=yes");
        assert_eq!(f.all("low"), vec!["openid", "User.Read"]);
        assert_eq!(f.yes_no("enabled"), Some(true));
        assert_eq!(f.yes_no("missing"), None);
        assert!(f.checked("flag") && !f.checked("nope"));
        assert!(f.require_confirmation().is_ok());
        assert!(Form::parse(b"confirm=no").require_confirmation().is_err());
    }

    #[test]
    fn every_admin_template_parses_and_the_frame_escapes() {
        LazyLock::force(&ENV);
        let crumbs = crumbs([("<b>App</b>", "/x")]);
        let ctx = context! {
            title => "t", crumbs, nav => Vec::<Value>::new(), can => Caps::default(), csrf => "c",
            me => context! { upn => "<i>u</i>", name => "n" },
            tenant => context! { name => "<script>alert(1)</script>", id => "1" },
            sign_out => "/1/oauth2/v2.0/logout", heading => "h", code => 1, message => "<u>m</u>", trace_id => "x",
            timestamp => "now",
        };
        let html = render_template("admin/error.html", ctx);
        assert!(html.contains("&lt;script&gt;alert(1)") && !html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>App") && !html.contains("<u>m") && !html.contains("<i>u"));
    }
}
