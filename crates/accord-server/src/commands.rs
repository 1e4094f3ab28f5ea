//! CLI commands that act on the store directly: the admin-consent request workflow for
//! reviewers and scripts, and `explain`. They call the same services as the pages.

use crate::service::admin_consent_requests;
use crate::service::administration::{self, AppConsentRequests, RequestSummary};
use crate::service::consent::ConsentWorld;
use crate::service::ServiceError;
use accord_core::consent_engine::Prompt;
use accord_core::consent_records::RequestStatus;
use accord_core::directory::{Tenant, User};
use accord_core::ids::{AppId, TenantId};
use accord_core::scope::ScopeRequest;
use accord_store::Store;
use anyhow::{anyhow, bail, Context};
use std::fmt::Write;
use uuid::Uuid;

/// A tenant by GUID or verified domain.
pub async fn tenant(store: &dyn Store, name: &str) -> anyhow::Result<Tenant> {
    let found = match name.parse::<TenantId>() {
        Ok(id) => store.tenant(id).await?,
        Err(_) => store.tenant_by_domain(&name.to_ascii_lowercase()).await?,
    };
    found.ok_or_else(|| anyhow!("no tenant '{name}' (give its id or one of its domains)"))
}

pub async fn user(store: &dyn Store, tenant: &Tenant, upn: &str) -> anyhow::Result<User> {
    store.user_by_upn(tenant.id, upn).await?.ok_or_else(|| anyhow!("no user '{upn}' in {}", tenant.display_name))
}

/// A service's refusal as the CLI prints it.
pub fn failure(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Internal(d) => anyhow!("internal error: {d}"),
        refusal => anyhow!("{refusal}"),
    }
}

/// The tenant's requests, one line each, newest first (pending only unless `all`).
pub async fn list_requests(store: &dyn Store, tenant: &Tenant, all: bool) -> anyhow::Result<String> {
    let mut rows: Vec<(&AppConsentRequests, &RequestSummary)> = Vec::new();
    let groups = administration::consent_requests_for_operator(store, tenant).await.map_err(failure)?;
    for g in &groups {
        rows.extend(g.requests.iter().filter(|r| all || r.request.status == RequestStatus::InProgress).map(|r| (g, r)));
    }
    rows.sort_by_key(|(_, r)| std::cmp::Reverse(r.request.created_at));
    let mut out = String::new();
    writeln!(out, "{:<36}  {:<10}  {:<11}  {:<28}  {:<28}  created", "id", "status", "result", "app", "requested by")?;
    for (app, r) in rows {
        writeln!(
            out,
            "{:<36}  {:<10}  {:<11}  {:<28}  {:<28}  {}",
            r.request.id,
            r.request.status.as_str(),
            r.request.result.as_str(),
            truncate(&app.display_name, 28),
            truncate(&r.requester.upn, 28),
            r.request.created_at.date()
        )?;
    }
    Ok(out)
}

/// `accord credentials`: the tenant's certificates and secrets by expiry, flagging those expired
/// or expiring within `within_days` (so a rotation is planned while both can overlap).
pub async fn list_credentials(
    store: &dyn Store,
    tenant: &Tenant,
    within_days: i64,
    now: time::OffsetDateTime,
) -> anyhow::Result<String> {
    let list = administration::credentials_for_operator(store, tenant).await.map_err(failure)?;
    let mut out = String::new();
    writeln!(out, "{:<28}  {:<11}  {:<24}  {:<36}  {:<20}  status", "app", "kind", "description", "id", "expires")?;
    for c in list {
        let status = match c.expires {
            None => "never expires".to_string(),
            Some(end) if end < now => "EXPIRED".to_string(),
            Some(end) if (end - now).whole_days() < within_days => {
                format!("EXPIRES in {}", accord_core::wording::count((end - now).whole_days(), "day"))
            }
            Some(_) => "ok".to_string(),
        };
        let expires = c.expires.map(|e| e.date().to_string()).unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:<28}  {:<11}  {:<24}  {:<36}  {:<20}  {status}",
            truncate(&c.app_name, 28),
            c.kind,
            truncate(&c.name, 24),
            c.id,
            expires
        )?;
    }
    Ok(out)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

pub async fn show_request(store: &dyn Store, tenant: &Tenant, id: Uuid) -> anyhow::Result<String> {
    let groups = administration::consent_requests_for_operator(store, tenant).await.map_err(failure)?;
    let (app, summary) = groups
        .iter()
        .find_map(|g| g.requests.iter().find(|r| r.request.id == id).map(|r| (g, r)))
        .ok_or_else(|| anyhow!("no request {id} in {}", tenant.display_name))?;
    let r = &summary.request;
    let by = &summary.requester;
    let mut out = String::new();
    writeln!(out, "request        {}", r.id)?;
    writeln!(out, "app            {} ({})", app.display_name, r.client_app_id)?;
    match by.upn.as_str() {
        "" => writeln!(out, "requested by   {}", by.display_name)?,
        upn => writeln!(out, "requested by   {} <{upn}>", by.display_name)?,
    }
    writeln!(out, "justification  {}", r.reason)?;
    writeln!(out, "permissions    {}", r.permissions.iter().map(|p| p.value.clone()).collect::<Vec<_>>().join(", "))?;
    writeln!(out, "status         {} ({})", r.status.as_str(), r.result.as_str())?;
    writeln!(out, "created        {}", r.created_at)?;
    writeln!(out, "expires        {}", r.expires_at)?;
    if let Some(j) = &r.review_justification {
        writeln!(out, "review note    {j}")?;
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
pub enum Review {
    Approve,
    Deny,
    Block,
}

pub async fn review(
    store: &dyn Store,
    tenant: &Tenant,
    id: Uuid,
    reviewer_upn: &str,
    review: Review,
    justification: Option<&str>,
) -> anyhow::Result<String> {
    let reviewer = user(store, tenant, reviewer_upn).await?;
    match review {
        Review::Approve => admin_consent_requests::approve(store, tenant, id, &reviewer).await.map_err(failure)?,
        Review::Deny | Review::Block => {
            let Some(j) = justification.filter(|j| !j.trim().is_empty()) else {
                bail!("--justification is required to deny or block a request");
            };
            if matches!(review, Review::Deny) {
                admin_consent_requests::deny(store, tenant, id, &reviewer, j).await.map_err(failure)?
            } else {
                admin_consent_requests::block(store, tenant, id, &reviewer, j).await.map_err(failure)?
            }
        }
    }
    Ok(format!("request {id}: {review:?} by {}", reviewer.upn).to_lowercase())
}

/// `accord explain`: the engine's decision and every rule, without changing anything.
pub async fn explain(
    store: &dyn Store,
    tenant: &Tenant,
    upn: &str,
    app_id: &str,
    scope: &str,
) -> anyhow::Result<String> {
    let user = user(store, tenant, upn).await?;
    let app_id: AppId = app_id.parse().context("--app must be an application (client) id")?;
    let client = store.application_by_app_id(app_id).await?.ok_or_else(|| anyhow!("no app {app_id}"))?;
    let request = ScopeRequest::parse(scope).map_err(|e| anyhow!("{e}"))?;
    let world = ConsentWorld::load(store, tenant, &client, &user, &request).await.map_err(failure)?;
    let outcome = world.decide_sign_in(&request, Prompt::Default);
    let mut out = String::new();
    writeln!(
        out,
        "{} signing in to '{}' in {} asking for \"{scope}\":",
        user.upn, client.display_name, tenant.display_name
    )?;
    for (i, rule) in outcome.rules.iter().enumerate() {
        writeln!(out, "  {:>2}. [{:?}] {}", i + 1, rule.verdict, rule.text)?;
    }
    writeln!(out, "decision: {}", describe(&outcome.decision))?;
    if !matches!(outcome.decision, accord_core::consent_engine::Decision::Issue { .. }) {
        ended_grants(store, tenant, &client, &user, &mut out).await?;
    }
    Ok(out)
}

/// Time-bound grants and assignments of the app that ended (the audit log's
/// `consent.expired` / `assignment.expired`): often why consent is missing now.
async fn ended_grants(
    store: &dyn Store,
    tenant: &Tenant,
    client: &accord_core::directory::Application,
    user: &accord_core::directory::User,
    out: &mut String,
) -> anyhow::Result<()> {
    let events = store.audit_events(tenant.id, &accord_store::AuditQuery::latest(Some(client.app_id), 500)).await?;
    let ended: Vec<_> = events
        .iter()
        .filter(|e| match e.action.as_str() {
            "consent.expired" => true,
            // An assignment: this user's (or a group's, which may have been the user's way in).
            "assignment.expired" => {
                e.detail["principalId"].as_str().is_none_or(|p| p == user.id.to_string())
                    || e.detail["principalType"] == "Group"
            }
            _ => false,
        })
        .take(5)
        .collect();
    for e in ended {
        let when = e.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let what = match e.action.as_str() {
            "consent.expired" => format!("the time-bound consent to \"{}\"", e.detail["scope"].as_str().unwrap_or("")),
            _ => "a time-bound assignment".to_string(),
        };
        writeln!(out, "note: {what} ended at {when} ({}); grant it again to restore it", e.action)?;
    }
    Ok(())
}

fn describe(d: &accord_core::consent_engine::Decision) -> String {
    use accord_core::consent_engine::Decision::*;
    let labels =
        |ps: &[accord_core::consent_engine::PermissionRef]| ps.iter().map(|p| p.label()).collect::<Vec<_>>().join(", ");
    match d {
        Issue { scopes, roles, .. } => format!(
            "issue tokens with scp \"{}\"{}",
            scopes.join(" "),
            if roles.is_empty() { String::new() } else { format!(" and roles {}", roles.join(", ")) }
        ),
        PromptConsent { permissions, org_option, org_required } => format!(
            "prompt for consent to {}{}",
            labels(permissions),
            if *org_required {
                " (organisation consent required)"
            } else if *org_option {
                " (organisation option shown)"
            } else {
                ""
            }
        ),
        ApprovalRequired { permissions, existing_request } => match existing_request {
            Some(id) => format!("approval required; request {id} is pending"),
            None => format!("approval required for {}", labels(permissions)),
        },
        NeedAdminApproval { permissions } => format!("need admin approval (AADSTS90094) for {}", labels(permissions)),
        PromptAdminConsent { delegated, application } => {
            format!("admin consent prompt: {} / {}", labels(delegated), labels(application))
        }
        NotPermitted(e) => format!("refuse this user: {e}"),
        Refuse(e) => format!("refuse: {e}"),
    }
}

/// The formats `accord import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// By the file's extension: `.csv` is CSV, anything else (and standard input) JSON Lines.
    Auto,
    /// One JSON object a line.
    Jsonl,
    /// A header row, then a user a row (see [`read_csv`]).
    Csv,
}

/// The users of an import file, each with the line it starts on, and every problem found
/// (`line: what`), so that a bad file is reported whole.
type ReadImport = (Vec<(usize, crate::service::administration::ImportedUser)>, Vec<(usize, String)>);

fn read_jsonl(text: &str) -> ReadImport {
    let (mut users, mut problems) = (Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(u) => users.push((n + 1, u)),
            Err(e) => problems.push((n + 1, e.to_string())),
        }
    }
    (users, problems)
}

/// A CSV export: a header row naming the columns — `userPrincipalName`, `displayName`, and
/// optionally `password` and `groups` (display names separated by `;`) — in any order and case,
/// or written as Entra's bulk-create template writes them (`User name [userPrincipalName]
/// Required`: the name in brackets counts, and the template's `version:v1.0` first line is
/// skipped). Other columns are refused by name, so that nothing is silently dropped.
fn read_csv(text: &str) -> ReadImport {
    let (mut users, mut problems) = (Vec::new(), Vec::new());
    // Entra's template starts with a version line before the header.
    let (skipped, body) = match text.split_once('\n') {
        Some((first, rest)) if first.trim().to_ascii_lowercase().starts_with("version:") => (1, rest),
        _ => (0, text),
    };
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(body.as_bytes());
    let header_line = skipped + 1;
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return (users, vec![(header_line, e.to_string())]),
    };
    let mut columns: Vec<(&str, usize)> = Vec::new();
    for (index, h) in headers.iter().enumerate() {
        let name = match (h.find('['), h.rfind(']')) {
            (Some(open), Some(close)) if open < close => &h[open + 1..close],
            _ => h,
        };
        let column = match name.trim().to_ascii_lowercase().as_str() {
            "userprincipalname" => "userPrincipalName",
            "displayname" => "displayName",
            "password" | "passwordprofile" => "password",
            "groups" => "groups",
            _ => {
                problems.push((
                    header_line,
                    format!(
                        "unknown column \"{h}\" (the columns are userPrincipalName, displayName, password, groups)"
                    ),
                ));
                continue;
            }
        };
        if columns.iter().any(|(c, _)| *c == column) {
            problems.push((header_line, format!("column {column} is given twice")));
        }
        columns.push((column, index));
    }
    for required in ["userPrincipalName", "displayName"] {
        if !columns.iter().any(|(c, _)| *c == required) {
            problems.push((header_line, format!("the header has no {required} column")));
        }
    }
    if !problems.is_empty() {
        return (users, problems);
    }
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize + skipped);
                problems.push((line, e.to_string()));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize + skipped);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let mut user = serde_json::Map::new();
        for (column, index) in &columns {
            let value = record.get(*index).unwrap_or_default().trim();
            let value = match *column {
                "groups" => {
                    serde_json::json!(value.split(';').map(str::trim).filter(|g| !g.is_empty()).collect::<Vec<_>>())
                }
                "password" if value.is_empty() => continue,
                _ => serde_json::json!(value),
            };
            user.insert((*column).to_string(), value);
        }
        match serde_json::from_value(serde_json::Value::Object(user)) {
            Ok(u) => users.push((line, u)),
            Err(e) => problems.push((line, e.to_string())),
        }
    }
    (users, problems)
}

/// `accord import`: reads JSON Lines or CSV (reporting every bad line with its number, and
/// writing nothing then), imports in batches with progress on standard error, and sums up.
pub async fn import_users(
    store: &dyn Store,
    tenant: &Tenant,
    admin_upn: &str,
    file: &std::path::Path,
    format: ImportFormat,
) -> anyhow::Result<String> {
    use crate::service::administration::{self, Actor};
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).map_err(|e| anyhow!("{}: {e}", file.display()))?
    };
    let csv = match format {
        ImportFormat::Csv => true,
        ImportFormat::Jsonl => false,
        ImportFormat::Auto => file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    let (read, found) = if csv { read_csv(&text) } else { read_jsonl(&text) };
    let mut problems: Vec<String> =
        found.into_iter().map(|(line, problem)| format!("{}:{line}: {problem}", file.display())).collect();
    let (lines, users): (Vec<usize>, Vec<_>) = read.into_iter().unzip();
    for (i, problem) in administration::check_import(tenant, &users) {
        problems.push(format!("{}:{}: {problem}", file.display(), lines[i]));
    }
    if !problems.is_empty() {
        let n = accord_core::wording::count(problems.len() as i64, "problem");
        bail!("nothing was imported; {n}:\n{}", problems.join("\n"));
    }
    let actor = Actor::user(store, user(store, tenant, admin_upn).await?).await.map_err(failure)?;
    let mut progress = |done: usize, total: usize| eprintln!("imported {done} of {total} users");
    let s = administration::import_users(store, &actor, tenant, &users, &mut progress).await.map_err(failure)?;
    let count = |n: usize, noun: &str| accord_core::wording::count(n as i64, noun);
    Ok(format!(
        "{} imported into {}: {} created, {} updated; {} created, {} added\n",
        count(users.len(), "user"),
        tenant.display_name,
        s.created,
        s.updated,
        count(s.groups_created, "group"),
        count(s.memberships_added, "membership"),
    ))
}
