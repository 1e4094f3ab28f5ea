//! Who is calling the Graph-compatible API: an Accord-issued access token for the Graph resource,
//! either delegated (a user, with the `scp` the user and app were granted) or app-only (the
//! application permissions in `roles`).

use super::errors::GraphError;
use crate::state::{AppState, SharedState};
use accord_core::ids::{AppId, TenantId, UserId};
use accord_core::well_known::GRAPH_APP_ID;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::Engine;
use serde_json::Value;
use uuid::Uuid;

pub use crate::protocol::bearer::{validate_bearer, BearerError};

/// What the token lets the caller act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user through a client app; `scopes` from `scp`.
    Delegated { user_id: UserId, scopes: Vec<String> },
    /// An application acting as itself; `roles` from `roles`.
    App { roles: Vec<String> },
}

/// A GUID claim as the id type it names.
fn claim_id<T: From<Uuid>>(claims: &Value, name: &str) -> Option<T> {
    claims.get(name).and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok()).map(T::from)
}

/// The authenticated caller of a Graph endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: TenantId,
    /// The client application (`azp`).
    pub client_app_id: Option<AppId>,
    pub principal: Principal,
    /// The mailbox concurrency slot this request holds, released when the request is done.
    pub slot: Option<MailboxSlot>,
}

/// A held slot of the per-mailbox concurrency limit (`throttle.rs`); callers compare equal
/// whatever slot they hold.
#[derive(Debug, Clone)]
pub struct MailboxSlot(#[allow(dead_code)] std::sync::Arc<crate::throttle::Slot>);

impl PartialEq for MailboxSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for MailboxSlot {}

impl Caller {
    /// Builds the caller from verified claims; `None` when they are not a Graph token.
    pub fn from_claims(claims: &Value) -> Result<Caller, &'static str> {
        let graph_aud = crate::protocol::bearer::is_for_graph(claims);
        if !graph_aud {
            return Err("Access token validation failure. Invalid audience.");
        }
        let tenant_id = claim_id(claims, "tid").ok_or("Access token validation failure. The token names no tenant.")?;
        let client_app_id = claim_id(claims, "azp").or_else(|| claim_id(claims, "appid"));
        let principal = match claims.get("idtyp").and_then(Value::as_str) {
            Some("app") => Principal::App {
                roles: claims
                    .get("roles")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default(),
            },
            _ => {
                let user_id =
                    claim_id(claims, "oid").ok_or("Access token validation failure. The token names no user.")?;
                let scopes = claims
                    .get("scp")
                    .and_then(Value::as_str)
                    .map(|s| s.split_whitespace().map(String::from).collect())
                    .unwrap_or_default();
                Principal::Delegated { user_id, scopes }
            }
        };
        Ok(Caller { tenant_id, client_app_id, principal, slot: None })
    }

    pub fn is_app(&self) -> bool {
        matches!(self.principal, Principal::App { .. })
    }

    /// The signed-in user of a delegated token.
    pub fn user_id(&self) -> Option<UserId> {
        match &self.principal {
            Principal::Delegated { user_id, .. } => Some(*user_id),
            Principal::App { .. } => None,
        }
    }

    /// True when the token carries `permission` (a delegated scope or an application role,
    /// whichever kind the token is), compared case-insensitively as Graph does.
    pub fn has(&self, permission: &str) -> bool {
        let held = match &self.principal {
            Principal::Delegated { scopes, .. } => scopes,
            Principal::App { roles } => roles,
        };
        held.iter().any(|p| p.eq_ignore_ascii_case(permission))
    }

    /// The first of `permissions` the token carries.
    pub fn first_of<'a>(&self, permissions: &[&'a str]) -> Option<&'a str> {
        permissions.iter().copied().find(|p| self.has(p))
    }
}

/// `WWW-Authenticate` of a Graph 401 (as Graph sends, pointing at this server).
pub fn www_authenticate(state: &AppState, error: Option<&str>) -> String {
    let mut v = format!(
        "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/v2.0/authorize\", client_id=\"{GRAPH_APP_ID}\"",
        state.settings.public_url
    );
    if let Some(error) = error {
        v.push_str(&format!(", error=\"{error}\""));
    }
    v
}

/// The mailbox a Graph path names: `/v1.0/me/…` (the caller) or `/v1.0/users/{id or UPN}/…`.
pub fn mailbox_of(path: &str, caller_user: Option<String>) -> Option<String> {
    let mut segments = path.trim_start_matches('/').split('/');
    if !segments.next().is_some_and(|v| v.eq_ignore_ascii_case("v1.0")) {
        return None;
    }
    match segments.next() {
        Some(s) if s.eq_ignore_ascii_case("me") => segments.next().and(caller_user),
        Some(s) if s.eq_ignore_ascii_case("users") => {
            let user = segments.next().filter(|u| !u.is_empty())?;
            // Only a user's own resources (events, calendar…) are mailbox data.
            segments.next().map(|_| user.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// Authenticates a Graph request.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let claims = validate_bearer(state, headers).map_err(|e| {
        let error = (e != BearerError::Missing).then_some("invalid_token");
        GraphError::unauthenticated(e.message(), &www_authenticate(state, error))
    })?;
    let caller = Caller::from_claims(&claims)
        .map_err(|m| GraphError::unauthenticated(m, &www_authenticate(state, Some("invalid_token"))))?;
    continuous_access(state, &claims, &caller).await?;
    Ok(caller)
}

/// Continuous access evaluation. A client that declared `cp1` holds a long-lived token, so
/// Graph re-checks it on every call: when the user's sign-ins were ended after it was issued
/// (revokeSignInSessions, a password reset, a disabled account), the user is gone, or the
/// app's consent no longer covers it, the answer is a claims challenge (401 with
/// `error="insufficient_claims"` and the `claims` a new token must satisfy), which MSAL and the
/// Graph SDKs answer by getting a new token. Other tokens live an hour and are not re-checked.
async fn continuous_access(state: &AppState, claims: &Value, caller: &Caller) -> Result<(), GraphError> {
    let cp1 = claims
        .get("xms_cc")
        .and_then(Value::as_array)
        .is_some_and(|values| values.iter().filter_map(Value::as_str).any(|v| v.eq_ignore_ascii_case("cp1")));
    let Some(user_id) = caller.user_id().filter(|_| cp1) else { return Ok(()) };
    let issued = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
    let now = accord_core::clock::now().unix_timestamp();
    let user = state.store.user(caller.tenant_id, user_id).await?;
    let reason = match &user {
        None => Some(("UserDeleted", now)),
        Some(u) if !u.enabled => Some(("UserDisabled", now)),
        Some(u) => {
            // Tokens issued within the second the sign-ins ended count as issued before it.
            let ended = u.sign_ins_valid_from.map(|t| t.unix_timestamp() + i64::from(t.nanosecond() > 0));
            ended.filter(|&e| issued < e).map(|e| ("TokenIssuedBeforeRevocationTimestamp", e))
        }
    };
    let reason = match (reason, &user) {
        (Some(r), _) => Some(r),
        (None, Some(u)) => {
            let scopes = claims.get("scp").and_then(Value::as_str).unwrap_or_default();
            (!crate::service::consent::still_granted(&*state.store, caller.tenant_id, caller.client_app_id, u, scopes)
                .await?)
                .then_some(("ConsentRevoked", now))
        }
        (None, None) => None,
    };
    let Some((code, not_before)) = reason else { return Ok(()) };
    tracing::info!(tenant = %caller.tenant_id, user = %user_id, code, "continuous access evaluation: claims challenge");
    let challenge = base64::engine::general_purpose::STANDARD
        .encode(accord_core::claims_request::ClaimsRequest::challenge(not_before));
    let header = format!(
        "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"{GRAPH_APP_ID}\", error=\"insufficient_claims\", claims=\"{challenge}\"",
        state.settings.public_url
    );
    Err(GraphError::unauthenticated(
        format!("Continuous access evaluation resulted in claims challenge with result: InteractionRequired and code: {code}"),
        &header,
    ))
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = GraphError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let mut caller = authenticate(state, &parts.headers).await?;
        let now = std::time::Instant::now();
        let refused = |t: crate::throttle::Throttled| {
            metrics::counter!("accord_graph_throttled_total", "limit" => t.limit.label()).increment(1);
            GraphError::throttled(t)
        };
        state.throttles.admit_tenant(caller.tenant_id, caller.client_app_id, now).map_err(refused)?;
        // Mailbox data is throttled per app and mailbox, as Outlook does.
        let user = caller.user_id().map(|u| u.to_string());
        if let Some(mailbox) = mailbox_of(parts.uri.path(), user) {
            let key = crate::throttle::MailboxKey { tenant: caller.tenant_id, app: caller.client_app_id, mailbox };
            let slot = state.throttles.admit_mailbox(key, now).map_err(refused)?;
            caller.slot = slot.map(|s| MailboxSlot(std::sync::Arc::new(s)));
        }
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_are_named_by_me_or_a_users_resources() {
        assert_eq!(mailbox_of("/v1.0/me/events", Some("u1".into())), Some("u1".into()));
        assert_eq!(mailbox_of("/v1.0/me", Some("u1".into())), None, "the profile is not mailbox data");
        assert_eq!(mailbox_of("/v1.0/users/Alice@Contoso.test/calendarView", None), Some("alice@contoso.test".into()));
        assert_eq!(mailbox_of("/v1.0/users/alice@contoso.test", None), None, "the user object is not mailbox data");
        assert_eq!(mailbox_of("/v1.0/groups", None), None);
        // Only users' resources: a group's or an app's members are no mailbox.
        assert_eq!(mailbox_of("/v1.0/groups/g1/members", Some("u1".into())), None);
        assert_eq!(mailbox_of("/v1.0/servicePrincipals/s1/appRoleAssignedTo", None), None);
        assert_eq!(mailbox_of("/openapi/x", None), None);
    }
    use serde_json::json;

    #[test]
    fn delegated_and_app_callers() {
        let tid = TenantId::random();
        let oid = UserId::random();
        let c = Caller::from_claims(&json!({
            "aud": "https://graph.microsoft.com", "tid": tid, "oid": oid, "idtyp": "user",
            "scp": "User.Read calendars.read"
        }))
        .unwrap();
        assert_eq!(c.user_id(), Some(oid));
        assert!(c.has("Calendars.Read") && c.has("User.Read") && !c.has("Calendars.ReadWrite"));
        assert_eq!(c.first_of(&["Calendars.ReadWrite", "Calendars.Read"]), Some("Calendars.Read"));

        let a = Caller::from_claims(&json!({
            "aud": GRAPH_APP_ID.to_string(), "tid": tid, "oid": oid, "idtyp": "app", "roles": ["Calendars.Read"]
        }))
        .unwrap();
        assert!(a.is_app() && a.has("Calendars.Read") && a.user_id().is_none());
        // Scopes never count as roles and the other way round.
        let a2 = Caller::from_claims(
            &json!({"aud": "https://graph.microsoft.com/", "tid": tid, "idtyp": "app", "scp": "Calendars.Read"}),
        )
        .unwrap();
        assert!(!a2.has("Calendars.Read"));
    }

    #[test]
    fn other_audiences_are_refused() {
        let tid = Uuid::new_v4();
        for aud in ["api://notes", "bbbbbbbb-0000-4000-8000-000000000001", ""] {
            assert!(Caller::from_claims(&json!({"aud": aud, "tid": tid, "oid": tid, "scp": "User.Read"})).is_err());
        }
        assert!(Caller::from_claims(&json!({"aud": "https://graph.microsoft.com", "tid": tid})).is_err());
    }
}
