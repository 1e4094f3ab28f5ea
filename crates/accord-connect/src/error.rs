//! Typed errors, the mapping of the identity platform's error responses onto them, and the
//! sentences a customer's administrator or user can act on.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a user's connection was revoked (a refresh refused for a consent reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// The grant was removed or no longer covers the scopes (AADSTS65001, `consent_required`).
    ConsentRevoked,
    /// The app now requires assignment and the user is not assigned (AADSTS50105).
    NotAssigned,
    /// The enterprise application was disabled or blocked in the tenant (AADSTS7000112).
    AppDisabled,
    /// The refresh token itself was revoked: password reset, sessions revoked, reuse (AADSTS50173).
    GrantRevoked,
}

impl RevocationReason {
    pub fn human(self) -> &'static str {
        match self {
            RevocationReason::ConsentRevoked => {
                "Your organisation withdrew its consent for this app. Ask your administrator to grant it again, then reconnect."
            }
            RevocationReason::NotAssigned => {
                "Your administrator now allows only assigned users and groups to use this app, and you are not assigned. Ask your administrator to add you, then reconnect."
            }
            RevocationReason::AppDisabled => {
                "Your administrator disabled this app for your organisation. Ask your administrator to enable it, then reconnect."
            }
            RevocationReason::GrantRevoked => {
                "Your sign-in was revoked (for example after a password reset). Sign in again to reconnect."
            }
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        match code {
            65001 => Some(RevocationReason::ConsentRevoked),
            50105 => Some(RevocationReason::NotAssigned),
            7000112 => Some(RevocationReason::AppDisabled),
            50173 => Some(RevocationReason::GrantRevoked),
            _ => None,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevocationReason::ConsentRevoked => "consent revoked",
            RevocationReason::NotAssigned => "user not assigned",
            RevocationReason::AppDisabled => "app disabled",
            RevocationReason::GrantRevoked => "grant revoked",
        })
    }
}

/// Everything that can go wrong. `code` is the AADSTS number where the platform gave one;
/// [`ConnectError::human`] is a sentence for the person in front of the screen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The administrator or user pressed Cancel (AADSTS65004, `access_denied`).
    #[error("consent declined: {description}")]
    Declined { code: Option<u32>, description: String },
    /// An admin-consent link was opened by someone who holds no role that may consent for the
    /// organisation (AADSTS90094).
    #[error("not an administrator: {description}")]
    NotAdmin { code: Option<u32>, description: String },
    /// The administrator's role may not grant what was asked (a Cloud Application or Application
    /// Administrator and Microsoft Graph application permissions; AADSTS90094).
    #[error("role cannot grant these permissions: {description}")]
    RoleCannotGrant { code: Option<u32>, description: String },
    /// At user sign-in: only an administrator can grant the app's permissions and the
    /// organisation has no request workflow ("Need admin approval", AADSTS90094).
    #[error("admin consent required: {description}")]
    AdminConsentRequired { code: Option<u32>, description: String },
    /// At user sign-in: an approval request is needed or pending ("Approval required", AADSTS90095).
    #[error("approval required: {description}")]
    ApprovalRequired { code: Option<u32>, description: String },
    /// No consent for what was asked, and no prompt could be shown (AADSTS65001,
    /// `consent_required`, `interaction_required`).
    #[error("consent required: {description}")]
    ConsentRequired { code: Option<u32>, description: String },
    /// The app requires assignment and the user is not assigned (AADSTS50105).
    #[error("user not assigned: {description}")]
    NotAssigned { code: Option<u32>, description: String },
    /// The enterprise application is disabled in the tenant (AADSTS7000112).
    #[error("app disabled: {description}")]
    AppDisabled { code: Option<u32>, description: String },
    /// The `state` is unknown, expired, already used or does not match: a forged or replayed
    /// redirect, or one that took too long.
    #[error("state invalid")]
    StateInvalid,
    /// The admin-consent redirect named a tenant the app could not obtain an app-only token for,
    /// or the token was for another tenant.
    #[error("tenant {tenant} not confirmed: {reason}")]
    TenantNotConfirmed { tenant: String, reason: String, code: Option<u32> },
    /// An id token failed validation (signature, issuer, audience, lifetime, nonce).
    #[error("id token rejected: {0}")]
    IdTokenRejected(String),
    /// A refresh was refused for a consent reason; the connection is marked revoked.
    #[error("connection revoked ({reason}): {description}")]
    Revoked { reason: RevocationReason, code: Option<u32>, description: String },
    /// The refresh token is expired or unusable for a reason other than consent; the user must
    /// sign in again (AADSTS70008, 70000, …).
    #[error("sign-in required: {description}")]
    SignInRequired { code: Option<u32>, description: String },
    /// No stored connection for this user.
    #[error("not connected")]
    NotConnected,
    /// Any other OAuth error (`error`, AADSTS code, `error_description`).
    #[error("{error}: {description}")]
    Protocol { error: String, code: Option<u32>, description: String },
    /// A Graph error body `{"error":{"code","message"}}` (after retries, for 429/5xx).
    #[error("Graph {status} {code}: {message}")]
    Graph { status: u16, code: String, message: String },
    /// Paging did not end within the configured number of pages.
    #[error("more than {pages} pages of results")]
    TooManyPages { pages: u32 },
    /// Transport failure or an unexpected response.
    #[error("HTTP: {message}")]
    Http { status: Option<u16>, message: String },
    /// The vendor's state or token store failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The configuration is not usable.
    #[error("configuration: {0}")]
    Config(String),
    /// A consent webhook failed verification (signature, timestamp or shape): ignore it.
    #[error("webhook rejected: {0}")]
    WebhookRejected(String),
}

fn with_code(text: &str, code: Option<u32>) -> String {
    match code {
        Some(c) => format!("{text} (AADSTS{c})"),
        None => text.to_string(),
    }
}

impl ConnectError {
    /// The AADSTS code, where the platform gave one.
    pub fn code(&self) -> Option<u32> {
        use ConnectError::*;
        match self {
            Declined { code, .. }
            | NotAdmin { code, .. }
            | RoleCannotGrant { code, .. }
            | AdminConsentRequired { code, .. }
            | ApprovalRequired { code, .. }
            | ConsentRequired { code, .. }
            | NotAssigned { code, .. }
            | AppDisabled { code, .. }
            | TenantNotConfirmed { code, .. }
            | Revoked { code, .. }
            | SignInRequired { code, .. }
            | Protocol { code, .. } => *code,
            _ => None,
        }
    }

    /// A short stable name for logs and metrics (`declined`, `not_admin`, …).
    pub fn kind(&self) -> &'static str {
        use ConnectError::*;
        match self {
            Declined { .. } => "declined",
            NotAdmin { .. } => "not_admin",
            RoleCannotGrant { .. } => "role_cannot_grant",
            AdminConsentRequired { .. } => "admin_consent_required",
            ApprovalRequired { .. } => "approval_required",
            ConsentRequired { .. } => "consent_required",
            NotAssigned { .. } => "not_assigned",
            AppDisabled { .. } => "app_disabled",
            StateInvalid => "state_invalid",
            TenantNotConfirmed { .. } => "tenant_not_confirmed",
            IdTokenRejected(_) => "id_token_rejected",
            Revoked { .. } => "revoked",
            SignInRequired { .. } => "sign_in_required",
            NotConnected => "not_connected",
            Protocol { .. } => "protocol",
            Graph { .. } => "graph",
            TooManyPages { .. } => "too_many_pages",
            Http { .. } => "http",
            Storage(_) => "storage",
            Config(_) => "config",
            WebhookRejected(_) => "webhook_rejected",
        }
    }

    /// Graph no longer knows a delta token (`410 SyncStateNotFound`, or Graph's older
    /// `resyncRequired`): start a new round from the window.
    pub fn is_sync_reset(&self) -> bool {
        matches!(self, ConnectError::Graph { status: 410, .. })
            || matches!(self, ConnectError::Graph { code, .. } if code.eq_ignore_ascii_case("SyncStateNotFound") || code.eq_ignore_ascii_case("resyncRequired"))
    }

    /// Whether trying the same call later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            ConnectError::Http { status, .. } => status.is_none_or(|s| s == 429 || s >= 500),
            ConnectError::Graph { status, .. } => *status == 429 || *status >= 500,
            ConnectError::Protocol { error, .. } => error == "temporarily_unavailable" || error == "server_error",
            _ => false,
        }
    }

    /// A sentence the customer's administrator (or user) can act on, with the AADSTS code.
    pub fn human(&self) -> String {
        use ConnectError::*;
        let code = self.code();
        match self {
            Declined { .. } => with_code(
                "The consent prompt was cancelled, so nothing was granted. Open the link again and choose Accept when you are ready.",
                code,
            ),
            NotAdmin { .. } => with_code(
                "Only an administrator of your organisation can grant this consent: a Global Administrator, Privileged Role Administrator, Cloud Application Administrator or Application Administrator. Ask one of them to open the consent link.",
                code,
            ),
            RoleCannotGrant { .. } => with_code(
                "Your administrator role cannot grant Microsoft Graph application permissions. Ask a Global Administrator or Privileged Role Administrator to open the consent link, or use the link for delegated permissions only.",
                code,
            ),
            AdminConsentRequired { .. } => with_code(
                "This app needs permissions that only an administrator of your organisation can grant. Ask your administrator to pre-authorize it, then sign in again.",
                code,
            ),
            ApprovalRequired { .. } => with_code(
                "Your administrator has to approve this app first. A request has been sent (or is pending); we will connect you once it is approved.",
                code,
            ),
            ConsentRequired { .. } => with_code(
                "Permission to use this app has not been granted for you, or was withdrawn. Sign in again to review and accept the permissions.",
                code,
            ),
            NotAssigned { .. } => with_code(
                "Your administrator allows only assigned users and groups to use this app, and you are not assigned. Ask your administrator to add you under the app's Users and groups.",
                code,
            ),
            AppDisabled { .. } => with_code(
                "This app is disabled in your organisation. Ask your administrator to enable it.",
                code,
            ),
            StateInvalid => {
                "This sign-in or consent link expired or was already used. Start again from our onboarding page.".into()
            }
            TenantNotConfirmed { tenant, .. } => with_code(
                &format!("We could not confirm access to the organisation {tenant}. The consent may not have completed; try the consent link again, and contact us if it keeps failing."),
                code,
            ),
            IdTokenRejected(_) => {
                "We could not verify the sign-in response. Please sign in again; contact us if it keeps failing.".into()
            }
            Revoked { reason, .. } => with_code(reason.human(), code),
            SignInRequired { .. } => with_code("Your sign-in expired. Sign in again to reconnect.", code),
            NotConnected => "You have not connected your account yet. Sign in to connect it.".into(),
            Protocol { description, .. } => {
                let first = description.lines().next().unwrap_or_default();
                let text = strip_code_prefix(first);
                let text = if text.is_empty() { "The sign-in service returned an error." } else { text };
                with_code(&format!("The sign-in service refused the request: {text}"), code)
            }
            Graph { status, .. } if *status == 429 || *status >= 500 => {
                "The calendar service is busy or unavailable. We will try again later.".into()
            }
            Graph { status, message, .. } if *status == 403 => {
                format!("The app is not allowed to read this calendar: {message}")
            }
            Graph { message, .. } => format!("The calendar service refused the request: {message}"),
            TooManyPages { .. } => "There were too many calendar results to read at once.".into(),
            Http { .. } => "We could not reach the sign-in or calendar service. We will try again later.".into(),
            Storage(_) | Config(_) | WebhookRejected(_) => "Something went wrong on our side. Please try again later.".into(),
        }
    }
}

/// `AADSTS65004: The resource owner …` → `The resource owner …`.
fn strip_code_prefix(s: &str) -> &str {
    match s.strip_prefix("AADSTS") {
        Some(rest) => {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            rest[digits..].trim_start_matches(':').trim()
        }
        None => s.trim(),
    }
}

/// An OAuth error as the platform reports it: from a redirect's query or a token endpoint's
/// JSON body (entra-reference §9).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct OAuthErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u32>,
    #[serde(default)]
    pub suberror: Option<String>,
    /// `error_subcode` of redirects (`cancel`).
    #[serde(default)]
    pub error_subcode: Option<String>,
}

impl OAuthErrorBody {
    /// From a redirect's query pairs, if it carries `error`. `error_codes` may be `65004`,
    /// `65004,50105` or `[65004]`; without it the code is read from the description.
    pub fn from_query(pairs: &[(String, String)]) -> Option<Self> {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let error = get("error").filter(|e| !e.is_empty())?;
        let error_codes = get("error_codes")
            .map(|s| {
                s.trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .filter_map(|c| c.trim().parse::<u32>().ok())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Some(OAuthErrorBody {
            error,
            error_description: get("error_description"),
            error_codes,
            suberror: get("suberror"),
            error_subcode: get("error_subcode"),
        })
    }

    /// The first AADSTS code: from `error_codes`, else from `AADSTS<digits>` in the description.
    pub fn code(&self) -> Option<u32> {
        self.error_codes.first().copied().or_else(|| {
            let d = self.error_description.as_deref()?;
            let i = d.find("AADSTS")? + 6;
            let digits: String = d[i..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
    }

    pub fn has_code(&self, code: u32) -> bool {
        self.error_codes.contains(&code) || self.code() == Some(code)
    }

    pub fn description(&self) -> String {
        self.error_description.clone().unwrap_or_else(|| self.error.clone())
    }
}

/// Where an error came from; the same code means different things in different places.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorContext {
    /// The admin-consent redirect.
    AdminConsent,
    /// The sign-in redirect.
    SignIn,
    /// A token endpoint response (code redemption, refresh, client credentials).
    Token,
}

/// Maps a platform error onto the typed errors. Refresh-specific revocation is decided by
/// [`revocation_of`] before this.
pub(crate) fn map_oauth_error(e: &OAuthErrorBody, ctx: ErrorContext) -> ConnectError {
    let code = e.code();
    let description = e.description();
    let has = |c: u32| e.has_code(c);
    let declined = has(65004)
        || e.error_subcode.as_deref() == Some("cancel")
        || e.error == "permission_denied"
        || (e.error == "access_denied" && ctx != ErrorContext::Token && code.is_none());
    if declined {
        return ConnectError::Declined { code: if has(65004) { Some(65004) } else { code }, description };
    }
    if has(90094) {
        return match ctx {
            ErrorContext::AdminConsent if description.contains("cannot grant") => {
                ConnectError::RoleCannotGrant { code, description }
            }
            ErrorContext::AdminConsent => ConnectError::NotAdmin { code, description },
            _ => ConnectError::AdminConsentRequired { code, description },
        };
    }
    if has(90095) {
        return ConnectError::ApprovalRequired { code, description };
    }
    if has(50105) {
        return ConnectError::NotAssigned { code, description };
    }
    if has(7000112) {
        return ConnectError::AppDisabled { code, description };
    }
    if has(65001) || e.error == "consent_required" || e.suberror.as_deref() == Some("consent_required") {
        return ConnectError::ConsentRequired { code, description };
    }
    if ctx != ErrorContext::Token && e.error == "interaction_required" {
        return ConnectError::ConsentRequired { code, description };
    }
    ConnectError::Protocol { error: e.error.clone(), code, description }
}

/// A refresh refused for a consent reason: 400 `invalid_grant` (or `interaction_required`)
/// with suberror `consent_required` or AADSTS65001, 50105, 7000112, 50173.
pub(crate) fn revocation_of(e: &OAuthErrorBody) -> Option<(RevocationReason, Option<u32>)> {
    if !matches!(
        e.error.as_str(),
        "invalid_grant" | "interaction_required" | "unauthorized_client" | "consent_required"
    ) {
        return None;
    }
    for code in e.error_codes.iter().copied().chain(e.code()) {
        if let Some(r) = RevocationReason::from_code(code) {
            return Some((r, Some(code)));
        }
    }
    if e.suberror.as_deref() == Some("consent_required") || e.error == "consent_required" {
        return Some((RevocationReason::ConsentRevoked, e.code()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> OAuthErrorBody {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        OAuthErrorBody::from_query(&owned).unwrap()
    }

    #[test]
    fn admin_consent_errors_map_to_variants() {
        let cancel = q(&[
            ("error", "access_denied"),
            ("error_description", "AADSTS65004: User declined to consent to access the app.\r\nTrace ID: x"),
            ("error_codes", "65004"),
            ("error_subcode", "cancel"),
        ]);
        let e = map_oauth_error(&cancel, ErrorContext::AdminConsent);
        assert!(matches!(e, ConnectError::Declined { code: Some(65004), .. }), "{e:?}");
        assert!(e.human().contains("AADSTS65004"));

        // The documented Entra form: admin_consent=True&error=consent_required&error_description=AADSTS65004…
        let doc = q(&[
            ("admin_consent", "True"),
            ("error", "consent_required"),
            ("error_description", "AADSTS65004: The resource owner or authorization server denied the request."),
        ]);
        assert!(matches!(
            map_oauth_error(&doc, ErrorContext::AdminConsent),
            ConnectError::Declined { code: Some(65004), .. }
        ));
        // The other documented form, with no code.
        let denied = q(&[("error", "permission_denied"), ("error_description", "The admin canceled the request")]);
        assert!(matches!(
            map_oauth_error(&denied, ErrorContext::AdminConsent),
            ConnectError::Declined { code: None, .. }
        ));

        let not_admin = q(&[
            ("error", "access_denied"),
            ("error_description", "AADSTS90094: Granting consent … requires an administrator"),
        ]);
        let e = map_oauth_error(&not_admin, ErrorContext::AdminConsent);
        assert!(matches!(e, ConnectError::NotAdmin { code: Some(90094), .. }), "{e:?}");
        let role = q(&[
            ("error", "access_denied"),
            ("error_description", "AADSTS90094: The signed in user 'x' is a Cloud Application Administrator, which cannot grant Microsoft Graph application permissions."),
            ("error_codes", "90094"),
        ]);
        assert!(matches!(map_oauth_error(&role, ErrorContext::AdminConsent), ConnectError::RoleCannotGrant { .. }));
        let other = q(&[
            ("error", "invalid_scope"),
            ("error_description", "AADSTS70011: bad scope"),
            ("error_codes", "[70011]"),
        ]);
        let e = map_oauth_error(&other, ErrorContext::AdminConsent);
        assert!(
            matches!(&e, ConnectError::Protocol { error, code: Some(70011), .. } if error == "invalid_scope"),
            "{e:?}"
        );
        assert!(e.human().contains("bad scope") && e.human().contains("AADSTS70011"), "{}", e.human());
    }

    #[test]
    fn sign_in_errors_map_to_variants() {
        let cases: &[(&str, &str, &str)] = &[
            ("access_denied", "AADSTS90094: needs permission that only an admin can grant", "admin_consent_required"),
            ("access_denied", "AADSTS90095: Request approval from an admin", "approval_required"),
            ("invalid_grant", "AADSTS50105: not assigned", "not_assigned"),
            ("unauthorized_client", "AADSTS7000112: Application is disabled.", "app_disabled"),
            ("interaction_required", "AADSTS65001: The user or administrator has not consented", "consent_required"),
            ("consent_required", "no code here", "consent_required"),
            ("login_required", "AADSTS50058: no session", "protocol"),
            ("access_denied", "AADSTS65004: User declined", "declined"),
        ];
        for (error, desc, kind) in cases {
            let e = map_oauth_error(&q(&[("error", error), ("error_description", desc)]), ErrorContext::SignIn);
            assert_eq!(e.kind(), *kind, "{error} {desc}: {e:?}");
            assert!(!e.human().is_empty());
        }
    }

    #[test]
    fn refresh_refusals_for_consent_reasons_are_revocations() {
        let body: OAuthErrorBody = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"AADSTS65001: The user or administrator has not consented","error_codes":[65001],"suberror":"consent_required"}"#,
        )
        .unwrap();
        assert_eq!(revocation_of(&body), Some((RevocationReason::ConsentRevoked, Some(65001))));
        let sub_only: OAuthErrorBody =
            serde_json::from_str(r#"{"error":"invalid_grant","suberror":"consent_required"}"#).unwrap();
        assert_eq!(revocation_of(&sub_only), Some((RevocationReason::ConsentRevoked, None)));
        for (code, reason) in [
            (50105, RevocationReason::NotAssigned),
            (7000112, RevocationReason::AppDisabled),
            (50173, RevocationReason::GrantRevoked),
        ] {
            let body: OAuthErrorBody =
                serde_json::from_str(&format!(r#"{{"error":"invalid_grant","error_codes":[{code}]}}"#)).unwrap();
            assert_eq!(revocation_of(&body), Some((reason, Some(code))));
        }
        let expired: OAuthErrorBody = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"AADSTS70008: expired","error_codes":[70008]}"#,
        )
        .unwrap();
        assert_eq!(revocation_of(&expired), None);
        let throttled: OAuthErrorBody =
            serde_json::from_str(r#"{"error":"temporarily_unavailable","error_codes":[65001]}"#).unwrap();
        assert_eq!(revocation_of(&throttled), None);
    }

    #[test]
    fn codes_come_from_error_codes_or_the_description() {
        let b = q(&[("error", "x"), ("error_description", "AADSTS700016: Application not found")]);
        assert_eq!(b.code(), Some(700016));
        let b = q(&[("error", "x"), ("error_codes", "65004,50105")]);
        assert!(b.has_code(50105));
        assert_eq!(strip_code_prefix("AADSTS65004: User declined"), "User declined");
    }
}
