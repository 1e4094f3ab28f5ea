//! Calendar sync through the kit: tenant-wide with the application permission when an
//! administrator pre-authorized the app with `.default` (Option 1), otherwise per user with
//! each user's delegated token (Option 2, or a delegated-only admin consent).

use crate::db::{ConsentMode, Instance, InstanceUser, Meeting};
use crate::web::AppState;
use accord_connect::{CalendarUser, ConnectError, ConnectionState, Event, UserKey};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// What a sync did, for logs and the "Sync now" notice.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub users: usize,
    pub meetings: usize,
    pub failures: usize,
}

/// Syncs every instance that is connected to a tenant, every `interval`; also purges expired
/// sessions and consent states.
pub fn spawn_background(state: Arc<AppState>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = state.db.purge_expired().await {
                tracing::warn!(error = %e, "purging expired sessions failed");
            }
            let instances = match state.db.instances().await {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(error = %e, "listing instances failed");
                    continue;
                }
            };
            for inst in instances.iter().filter(|i| i.tenant_id.is_some()) {
                match sync_instance(&state, &inst.id, false).await {
                    Ok(r) => tracing::debug!(instance = %inst.id, ?r, "background sync"),
                    Err(e) => tracing::warn!(instance = %inst.id, error = %e, "background sync failed"),
                }
            }
        }
    });
}

fn window(state: &AppState) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - time::Duration::days(1), now + time::Duration::days(i64::from(state.settings.sync_days)))
}

/// Syncs one instance. `verify` refreshes every delegated connection first (the "Sync now"
/// button), so a withdrawn consent shows up as "revoked" at once rather than at the next expiry.
pub async fn sync_instance(state: &AppState, instance_id: &str, verify: bool) -> anyhow::Result<SyncReport> {
    let _one_at_a_time = state.sync_lock.lock().await;
    let Some(inst) = state.db.instance(instance_id).await? else {
        anyhow::bail!("no instance {instance_id}");
    };
    let Some(tenant) = inst.tenant_id.clone() else {
        return Ok(SyncReport::default());
    };
    let mut report = SyncReport::default();
    if inst.tenant_wide() {
        match state.kit.app_token(&tenant).await {
            Ok(app) => {
                tenant_wide(state, &inst, &tenant, &app.access_token, verify, &mut report).await?;
                state.db.set_tenant_sync(&inst.id, None).await?;
                return Ok(report);
            }
            Err(e) => {
                // Fall back to the users' own connections, and say why on the status page.
                tracing::warn!(instance = %inst.id, error = %e, "no app-only token; syncing per user");
                state.db.set_tenant_sync(&inst.id, Some(&e.human())).await?;
            }
        }
    }
    per_user(state, &inst, verify, &mut report).await?;
    if !inst.tenant_wide() {
        state.db.set_tenant_sync(&inst.id, None).await?;
    }
    Ok(report)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DirectoryUser {
    id: String,
    #[serde(default)]
    user_principal_name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

/// Application permission: the directory's users (`GET /users`, User.Read.All) when the server
/// offers the list, else the users the app knows of; each user's calendar by object id. A user
/// whose own sign-in connection was revoked (unassigned, consent withdrawn) is left out, so
/// "only some users or groups" holds for the tenant-wide sync too.
async fn tenant_wide(
    state: &AppState,
    inst: &Instance,
    tenant: &str,
    token: &str,
    verify: bool,
    report: &mut SyncReport,
) -> anyhow::Result<()> {
    let calendar = state.kit.calendar();
    let mut url = url::Url::parse(&format!("{}/users", state.kit.config().graph_base.trim_end_matches('/')))?;
    url.query_pairs_mut().append_pair("$select", "id,userPrincipalName,displayName");
    match calendar.get_all::<DirectoryUser>(token, url).await {
        Ok(listed) => {
            for u in listed {
                let key = UserKey::new(tenant, &u.id);
                state
                    .db
                    .upsert_user(&inst.id, &key, u.user_principal_name.as_deref(), u.display_name.as_deref(), false)
                    .await?;
            }
        }
        Err(e) => tracing::debug!(error = %e, "the directory cannot be listed; syncing the known users"),
    }
    let (start, end) = window(state);
    for user in state.db.users(&inst.id).await? {
        report.users += 1;
        if let Some(refused) = refused_connection(state, &user, verify).await? {
            report.failures += 1;
            state.db.user_sync_failed(&inst.id, &user.object_id, &refused, true).await?;
            continue;
        }
        let who = CalendarUser::UserId(user.object_id.clone());
        match calendar.calendar_view(token, &who, start, end).await {
            Ok(events) => {
                let meetings = to_meetings(&user.object_id, &events);
                report.meetings += meetings.len();
                state.db.replace_meetings(&inst.id, &user.object_id, "application", &meetings).await?;
                crate::push::ensure_subscription(state, inst, &user.object_id, "application", token).await;
            }
            Err(e) => {
                report.failures += 1;
                if matches!(e, ConnectError::Graph { status: 401, .. }) {
                    state.kit.forget_app_token(tenant);
                }
                state.db.user_sync_failed(&inst.id, &user.object_id, &e.human(), false).await?;
            }
        }
    }
    Ok(())
}

/// Why a user's own connection no longer works, if it does not: its stored state, or (with
/// `verify`) a refresh refused now.
async fn refused_connection(state: &AppState, user: &InstanceUser, verify: bool) -> anyhow::Result<Option<String>> {
    let key = UserKey::new(&user.tenant_id, &user.object_id);
    let Some(conn) = state.kit.connection(&key).await? else {
        return Ok(None);
    };
    if !conn.state.is_connected() {
        return Ok(Some(conn.state.human()));
    }
    if verify {
        if let Err(e @ (ConnectError::Revoked { .. } | ConnectError::SignInRequired { .. })) =
            state.kit.refresh_now(&key).await
        {
            return Ok(Some(e.human()));
        }
    }
    Ok(None)
}

/// Delegated permission: each known user with a stored connection, with their own token.
async fn per_user(state: &AppState, inst: &Instance, verify: bool, report: &mut SyncReport) -> anyhow::Result<()> {
    let calendar = state.kit.calendar();
    let (start, end) = window(state);
    for user in state.db.users(&inst.id).await? {
        let key = UserKey::new(&user.tenant_id, &user.object_id);
        let Some(conn) = state.kit.connection(&key).await? else {
            if user.sync_source.as_deref() == Some("application") {
                // Synced tenant-wide before the instance changed mode: no longer covered.
                state.db.clear_meetings(&inst.id, &user.object_id).await?;
            }
            continue;
        };
        report.users += 1;
        if !conn.state.is_connected() {
            state.db.user_sync_failed(&inst.id, &user.object_id, &conn.state.human(), true).await?;
            continue;
        }
        let token = if verify { state.kit.refresh_now(&key).await } else { state.kit.access_token_for(&key).await };
        let token = match token {
            Ok(t) => t,
            Err(e) => {
                report.failures += 1;
                let withdrawn = matches!(e, ConnectError::Revoked { .. } | ConnectError::SignInRequired { .. });
                state.db.user_sync_failed(&inst.id, &user.object_id, &e.human(), withdrawn).await?;
                continue;
            }
        };
        let mut token = token;
        let mut result = calendar.calendar_view(&token, &CalendarUser::Me, start, end).await;
        if matches!(result, Err(ConnectError::Graph { status: 401, .. })) {
            // The access token was refused: refresh once (this also detects a revoked consent).
            result = match state.kit.refresh_now(&key).await {
                Ok(t) => {
                    token = t;
                    calendar.calendar_view(&token, &CalendarUser::Me, start, end).await
                }
                Err(e) => Err(e),
            };
        }
        match result {
            Ok(events) => {
                let meetings = to_meetings(&user.object_id, &events);
                report.meetings += meetings.len();
                state.db.replace_meetings(&inst.id, &user.object_id, "delegated", &meetings).await?;
                crate::push::ensure_subscription(state, inst, &user.object_id, "delegated", &token).await;
            }
            Err(e) => {
                report.failures += 1;
                let withdrawn = matches!(e, ConnectError::Revoked { .. } | ConnectError::SignInRequired { .. });
                state.db.user_sync_failed(&inst.id, &user.object_id, &e.human(), withdrawn).await?;
            }
        }
    }
    Ok(())
}

fn to_meetings(object_id: &str, events: &[Event]) -> Vec<Meeting> {
    events
        .iter()
        .filter_map(|e| {
            let start = e.start.as_ref()?.to_utc()?.unix_timestamp();
            let end = e.end.as_ref()?.to_utc()?.unix_timestamp();
            let organizer =
                e.organizer.as_ref().and_then(|o| o.email_address.as_ref()).and_then(|a| match (&a.name, &a.address) {
                    (Some(n), Some(addr)) if n != addr => Some(format!("{n} <{addr}>")),
                    (Some(n), _) => Some(n.clone()),
                    (None, addr) => addr.clone(),
                });
            Some(Meeting {
                object_id: object_id.to_string(),
                event_id: e.id.clone(),
                subject: e.subject.clone().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "(no subject)".into()),
                start_at: start,
                end_at: end,
                organizer,
                location: e.location.as_ref().and_then(|l| l.display_name.clone()).filter(|l| !l.is_empty()),
                join_url: e.join_url().map(str::to_string),
                attendees: i64::try_from(e.attendees.len()).unwrap_or(0),
                source: String::new(),
            })
        })
        .collect()
}

/// One user's line on the status page.
#[derive(Debug, serde::Serialize)]
pub struct UserStatus {
    pub upn: String,
    pub name: Option<String>,
    pub object_id: String,
    /// `connected`, `revoked`, `sign_in_required`, `not_connected`, `error` or `tenant_wide`.
    pub state: &'static str,
    pub label: String,
    pub detail: Option<String>,
    pub last_sync_at: Option<i64>,
    pub source: Option<String>,
}

/// The status of every known user: their stored connection, and the last sync's outcome.
pub async fn user_statuses(state: &AppState, inst: &Instance) -> anyhow::Result<Vec<UserStatus>> {
    let mut out = Vec::new();
    for u in state.db.users(&inst.id).await? {
        let conn = state.kit.connection(&UserKey::new(&u.tenant_id, &u.object_id)).await?;
        out.push(status_of(inst, &u, conn.as_ref().map(|c| &c.state)));
    }
    Ok(out)
}

fn status_of(inst: &Instance, u: &InstanceUser, conn: Option<&ConnectionState>) -> UserStatus {
    let (state, label, mut detail) = match conn {
        Some(ConnectionState::Revoked { reason, .. }) => {
            ("revoked", format!("Revoked ({reason})"), Some(conn_human(conn)))
        }
        Some(ConnectionState::SignInRequired { .. }) => {
            ("sign_in_required", "Sign-in required".into(), Some(conn_human(conn)))
        }
        Some(ConnectionState::Connected) => ("connected", "Connected".into(), None),
        None if inst.tenant_wide() => ("tenant_wide", "Synced by the organisation's consent".into(), None),
        None => ("not_connected", "Not connected".into(), None),
    };
    let (state, label) = match (&u.last_error, state) {
        (Some(err), "connected" | "tenant_wide") => {
            detail = Some(err.clone());
            ("error", "Sync failed".to_string())
        }
        _ => (state, label),
    };
    UserStatus {
        upn: u.upn.clone().unwrap_or_else(|| u.object_id.clone()),
        name: u.name.clone(),
        object_id: u.object_id.clone(),
        state,
        label,
        detail,
        last_sync_at: u.last_sync_at,
        source: u.sync_source.clone(),
    }
}

fn conn_human(conn: Option<&ConnectionState>) -> String {
    conn.map(ConnectionState::human).unwrap_or_default()
}

/// The tenant's line on the status page.
#[derive(Debug, serde::Serialize)]
pub struct TenantStatus {
    /// `not_connected`, `admin_consent`, `delegated`, `error`.
    pub state: &'static str,
    pub label: String,
    pub detail: Option<String>,
}

pub fn tenant_status(inst: &Instance) -> TenantStatus {
    let Some(tenant) = &inst.tenant_id else {
        let detail = match inst.mode {
            ConsentMode::PreAuthorization => {
                "An administrator of the organisation grants access for everyone on the onboarding page."
            }
            ConsentMode::UserConsent => "Each user connects their own calendar when they sign in.",
        };
        return TenantStatus { state: "not_connected", label: "Not connected".into(), detail: Some(detail.into()) };
    };
    let name = match &inst.tenant_domain {
        Some(d) => format!("{d} (tenant {tenant})"),
        None => format!("tenant {tenant}"),
    };
    if let Some(err) = &inst.tenant_error {
        return TenantStatus {
            state: "error",
            label: format!("Connected to {name}, but the organisation-wide sync failed"),
            detail: Some(err.clone()),
        };
    }
    if inst.tenant_wide() {
        return TenantStatus {
            state: "admin_consent",
            label: format!("Connected to {name} by an administrator's consent"),
            detail: Some(format!(
                "Meetings of everyone are synced with the application permissions {}.",
                inst.app_roles.join(", ")
            )),
        };
    }
    let how = match (inst.connected_via.as_deref(), inst.mode) {
        (Some("admin_consent"), ConsentMode::PreAuthorization) => {
            "An administrator consented to delegated permissions only: \
             each user's meetings are synced once they sign in."
        }
        (_, ConsentMode::UserConsent) => {
            "User consent: each user's meetings are synced once they connect their calendar."
        }
        _ => "Each user's meetings are synced once they sign in.",
    };
    TenantStatus { state: "delegated", label: format!("Connected to {name}"), detail: Some(how.into()) }
}
