//! Protocol errors as the Microsoft identity platform reports them: an OAuth `error` value, an
//! AADSTS code, an optional `suberror`, and a human description that starts with the code.
//! The description is what a person reads; it must never carry internal detail.

use std::fmt;

/// OAuth 2.0 / OIDC `error` values used by Entra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidResource,
    AccessDenied,
    InteractionRequired,
    LoginRequired,
    ConsentRequired,
    ServerError,
    TemporarilyUnavailable,
    InvalidInstance,
    /// Device flow (RFC 8628): keep polling.
    AuthorizationPending,
    /// Device flow: the person said no.
    AuthorizationDeclined,
    /// Device flow: the code's time is up.
    ExpiredToken,
    /// Device flow: no such device code.
    BadVerificationCode,
}

impl OAuthError {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::UnsupportedResponseType => "unsupported_response_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::InvalidResource => "invalid_resource",
            OAuthError::AccessDenied => "access_denied",
            OAuthError::InteractionRequired => "interaction_required",
            OAuthError::LoginRequired => "login_required",
            OAuthError::ConsentRequired => "consent_required",
            OAuthError::ServerError => "server_error",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthError::InvalidInstance => "invalid_instance",
            OAuthError::AuthorizationPending => "authorization_pending",
            OAuthError::AuthorizationDeclined => "authorization_declined",
            OAuthError::ExpiredToken => "expired_token",
            OAuthError::BadVerificationCode => "bad_verification_code",
        }
    }

    /// The error named by its wire string (what `as_str` gives).
    pub fn parse(s: &str) -> Option<OAuthError> {
        use OAuthError::*;
        [
            InvalidRequest,
            InvalidClient,
            InvalidGrant,
            UnauthorizedClient,
            UnsupportedGrantType,
            UnsupportedResponseType,
            InvalidScope,
            InvalidResource,
            AccessDenied,
            InteractionRequired,
            LoginRequired,
            ConsentRequired,
            ServerError,
            TemporarilyUnavailable,
            InvalidInstance,
            AuthorizationPending,
            AuthorizationDeclined,
            ExpiredToken,
            BadVerificationCode,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

/// One protocol error. Build it with the named constructors so codes and wording stay uniform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aadsts {
    pub code: u32,
    pub error: OAuthError,
    pub suberror: Option<&'static str>,
    /// The message after "AADSTSnnnn: ".
    pub message: String,
    /// Seconds to wait before retrying (`Retry-After`), for a throttled request.
    pub retry_after: Option<u64>,
}

/// Entra's throttling error (`TenantThrottlingError`).
const THROTTLED: u32 = 90055;

impl fmt::Display for Aadsts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AADSTS{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Aadsts {}

impl Aadsts {
    pub fn new(code: u32, error: OAuthError, message: impl Into<String>) -> Self {
        Self { code, error, suberror: None, message: message.into(), retry_after: None }
    }

    pub fn with_suberror(mut self, suberror: &'static str) -> Self {
        self.suberror = Some(suberror);
        self
    }

    /// HTTP status for the token endpoint: 401 for client authentication failures, else 400.
    pub fn http_status(&self) -> u16 {
        if self.code == THROTTLED {
            return 429;
        }
        match self.error {
            OAuthError::InvalidClient => 401,
            OAuthError::ServerError => 500,
            OAuthError::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }

    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            900144,
            OAuthError::InvalidRequest,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    pub fn invalid_parameter(name: &str, why: &str) -> Self {
        Self::new(
            90014,
            OAuthError::InvalidRequest,
            format!("The value of the parameter '{name}' is not valid: {why}."),
        )
    }

    pub fn tenant_not_found(tenant: &str) -> Self {
        Self::new(
            90002,
            OAuthError::InvalidRequest,
            format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        )
    }

    pub fn not_allowed_on_common(grant: &str) -> Self {
        Self::new(
            9001023,
            OAuthError::InvalidRequest,
            format!("The grant type '{grant}' is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint."),
        )
    }

    pub fn unknown_client(client_id: &str) -> Self {
        Self::new(
            700016,
            OAuthError::UnauthorizedClient,
            format!("Application with identifier '{client_id}' was not found in the directory. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
        )
    }

    pub fn redirect_uri_mismatch(client_id: &str) -> Self {
        Self::new(
            50011,
            OAuthError::InvalidRequest,
            format!("The redirect URI specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application."),
        )
    }

    pub fn invalid_client_secret(client_id: &str) -> Self {
        Self::new(
            7000215,
            OAuthError::InvalidClient,
            format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
        )
    }

    /// The secret was right but its end date has passed (Entra tells this apart from a wrong one).
    pub fn client_secret_expired(client_id: &str) -> Self {
        Self::new(
            7000222,
            OAuthError::InvalidClient,
            format!("The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."),
        )
    }

    pub fn client_secret_required() -> Self {
        Self::new(
            7000218,
            OAuthError::InvalidClient,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    }

    pub fn public_client_sent_secret() -> Self {
        Self::new(
            700025,
            OAuthError::InvalidClient,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        )
    }

    pub fn unsupported_grant_type(grant: &str) -> Self {
        Self::new(
            70003,
            OAuthError::UnsupportedGrantType,
            format!("The app requested an unsupported grant type '{grant}'."),
        )
    }

    pub fn unsupported_response_type(rt: &str) -> Self {
        Self::new(
            70005,
            OAuthError::UnsupportedResponseType,
            format!("response_type '{rt}' is not enabled for the application."),
        )
    }

    pub fn invalid_scope(detail: &str) -> Self {
        Self::new(
            70011,
            OAuthError::InvalidScope,
            format!("The provided value for the input parameter 'scope' is not valid. {detail}"),
        )
    }

    pub fn multiple_resources() -> Self {
        Self::new(
            28000,
            OAuthError::InvalidScope,
            "Provided value for the input parameter scope is not valid because it contains more than one resource. Request one resource at a time.",
        )
    }

    pub fn resource_not_found(resource: &str) -> Self {
        Self::new(
            500011,
            OAuthError::InvalidResource,
            format!("The resource principal named {resource} was not found in the tenant. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
        )
    }

    pub fn code_invalid() -> Self {
        Self::new(
            70000,
            OAuthError::InvalidGrant,
            "Provided authorization code or refresh token is invalid, expired or was already redeemed.",
        )
    }

    pub fn code_already_redeemed() -> Self {
        Self::new(54005, OAuthError::InvalidGrant, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
    }

    pub fn code_wrong_tenant() -> Self {
        Self::new(
            700005,
            OAuthError::InvalidGrant,
            "Provided Authorization Code is intended to use against other tenant, thus rejected.",
        )
    }

    pub fn pkce_failed() -> Self {
        Self::new(
            501481,
            OAuthError::InvalidGrant,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        )
    }

    /// A `code_verifier` for a code whose authorization request carried no `code_challenge`.
    pub fn pkce_not_requested() -> Self {
        Self::new(
            501481,
            OAuthError::InvalidGrant,
            "A code_verifier was sent, but the authorization request had no code_challenge.",
        )
    }

    pub fn pkce_required() -> Self {
        Self::new(
            9002325,
            OAuthError::InvalidRequest,
            "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
        )
    }

    pub fn refresh_token_invalid() -> Self {
        Self::new(
            9002313,
            OAuthError::InvalidGrant,
            "Invalid request. Request is malformed or invalid. The refresh token is invalid.",
        )
    }

    pub fn refresh_token_expired() -> Self {
        Self::new(70008, OAuthError::InvalidGrant, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
    }

    pub fn refresh_token_revoked() -> Self {
        Self::new(50173, OAuthError::InvalidGrant, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.")
            .with_suberror("bad_token")
    }

    pub fn refresh_token_client_mismatch() -> Self {
        Self::new(70000, OAuthError::InvalidGrant, "The refresh token was issued to a different client.")
            .with_suberror("client_mismatch")
    }

    pub fn consent_missing(client_id: &str, detail: &str) -> Self {
        Self::new(
            65001,
            OAuthError::InvalidGrant,
            format!("The user or administrator has not consented to use the application with ID '{client_id}'. {detail} Send an interactive authorization request for this user and resource."),
        )
        .with_suberror("consent_required")
    }

    pub fn invalid_credentials() -> Self {
        Self::new(50126, OAuthError::InvalidGrant, "Error validating credentials due to invalid username or password.")
    }

    pub fn account_locked() -> Self {
        Self::new(50053, OAuthError::InvalidGrant, "Your account is locked because you've tried to sign in too many times with an incorrect user ID or password.")
    }

    pub fn account_disabled() -> Self {
        Self::new(50057, OAuthError::InvalidGrant, "The user account is disabled.")
    }

    pub fn user_not_in_tenant(upn: &str) -> Self {
        Self::new(
            50020,
            OAuthError::InvalidGrant,
            format!("User account '{upn}' from identity provider does not exist in tenant and cannot access the application in that tenant."),
        )
    }

    pub fn user_not_found() -> Self {
        Self::new(50034, OAuthError::InvalidGrant, "The user account does not exist in this directory.")
    }

    pub fn ropc_disabled() -> Self {
        Self::new(
            7000218,
            OAuthError::UnauthorizedClient,
            "The resource owner password credentials grant is disabled on this server.",
        )
    }

    pub fn login_required() -> Self {
        Self::new(50058, OAuthError::LoginRequired, "A silent sign-in request was sent but no user is signed in.")
    }

    pub fn interaction_required_consent(client_id: &str) -> Self {
        Self::new(
            65001,
            OAuthError::InteractionRequired,
            format!("The user or administrator has not consented to use the application with ID '{client_id}'."),
        )
        .with_suberror("consent_required")
    }

    /// Entra's wording: the id, then the name in parentheses.
    pub fn app_disabled(client_id: &str, display_name: &str) -> Self {
        Self::new(
            7000112,
            OAuthError::UnauthorizedClient,
            format!("Application '{client_id}'({display_name}) is disabled."),
        )
    }

    pub fn single_tenant_app(client_id: &str) -> Self {
        Self::new(
            700016,
            OAuthError::UnauthorizedClient,
            format!("Application with identifier '{client_id}' was not found in the directory. The app is registered for its home organization only."),
        )
    }

    pub fn client_credentials_scope() -> Self {
        Self::new(1002012, OAuthError::InvalidScope, "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
    }

    pub fn nonce_required() -> Self {
        Self::new(
            90014,
            OAuthError::InvalidRequest,
            "The request must contain a 'nonce' parameter when an id_token is requested.",
        )
    }

    pub fn implicit_id_token_disabled() -> Self {
        Self::new(
            700054,
            OAuthError::UnsupportedResponseType,
            "response_type 'id_token' is not enabled for the application.",
        )
    }

    pub fn instance_unknown() -> Self {
        Self::new(50049, OAuthError::InvalidInstance, "Unknown or invalid instance.")
    }

    /// 65001 for a request that may not show UI (`prompt=none`, token and refresh calls).
    pub fn interaction_required_consent_for(client_id: &str, missing: &str) -> Self {
        Self::new(
            65001,
            OAuthError::InteractionRequired,
            format!("The user or administrator has not consented to use the application with ID '{client_id}'. Missing consent for: {missing}. Send an interactive authorization request for this user and resource."),
        )
        .with_suberror("consent_required")
    }

    pub fn user_not_assigned(app_display_name: &str, client_id: &str, upn: &str) -> Self {
        Self::new(
            50105,
            OAuthError::InvalidGrant,
            format!("Your administrator has configured the application {app_display_name} ('{client_id}') to block users unless they are specifically granted ('assigned') access to the application. The signed in user '{upn}' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator. Please contact your administrator to assign access to this application."),
        )
    }

    /// `{resource}/.default` for a resource the client does not list in `requiredResourceAccess`.
    pub fn resource_not_in_required(
        client_id: &str,
        client_display_name: &str,
        resource: &str,
        resource_app_id: &str,
        valid_resources: &str,
    ) -> Self {
        Self::new(
            650057,
            OAuthError::InvalidClient,
            format!("Invalid resource. The client has requested access to a resource which is not listed in the requested permissions in the client's application registration. Client app ID: {client_id}({client_display_name}). Resource value from request: {resource}. Resource app ID: {resource_app_id}. List of valid resources from app registration: {valid_resources}."),
        )
    }

    /// The "Need admin approval" page (the admin consent request workflow is off).
    pub fn admin_consent_required(app_display_name: &str) -> Self {
        Self::new(
            90094,
            OAuthError::AccessDenied,
            format!("{app_display_name} needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it."),
        )
    }

    /// The "Approval required" page (the admin consent request workflow is on).
    pub fn admin_consent_request_required(app_display_name: &str) -> Self {
        Self::new(
            90095,
            OAuthError::AccessDenied,
            format!("{app_display_name} needs permission to access resources in your organization that only an admin can grant. Request approval from an admin to use this app."),
        )
    }

    /// Admin consent attempted by a user who holds no consent-granting directory role.
    pub fn not_a_consent_administrator(app_display_name: &str, upn: &str) -> Self {
        Self::new(
            90094,
            OAuthError::AccessDenied,
            format!("Granting consent to {app_display_name} on behalf of the organization requires an administrator, and only an administrator can grant it. The signed in user '{upn}' is not a Global Administrator, Privileged Role Administrator, Cloud Application Administrator or Application Administrator."),
        )
    }

    /// Admin consent to permissions the administrator's role cannot grant (entra-reference §7).
    pub fn role_cannot_grant(app_display_name: &str, upn: &str, role: &str, permissions: &str) -> Self {
        Self::new(
            90094,
            OAuthError::AccessDenied,
            format!("The signed in user '{upn}' is a {role}, which cannot grant Microsoft Graph application permissions. {app_display_name} asks for: {permissions}. Ask a Privileged Role Administrator or Global Administrator to grant admin consent."),
        )
    }
}

/// Errors of the consent pages and the admin-consent endpoint.
impl Aadsts {
    /// Cancel on a consent prompt: `error=access_denied`, `error_subcode=cancel`.
    pub fn user_declined_consent() -> Self {
        Self::new(65004, OAuthError::AccessDenied, "User declined to consent to access the app.")
            .with_suberror("cancel")
    }

    /// A consent or approval form that cannot be honoured (expired, forged, replayed).
    /// Too much work of this kind is under way (password checks are bounded): come back after
    /// `retry_after` seconds. HTTP 429.
    pub fn throttled(retry_after_seconds: u64) -> Self {
        let mut e = Self::new(
            THROTTLED,
            OAuthError::TemporarilyUnavailable,
            format!("There are too many incoming requests. Please try again in {retry_after_seconds} seconds."),
        );
        e.retry_after = Some(retry_after_seconds);
        e
    }

    /// The store cannot be reached for a moment (the database is away): retry after
    /// `retry_after_seconds`. HTTP 503.
    pub fn store_unavailable(retry_after_seconds: u64) -> Self {
        let mut e = Self::transient_failure();
        e.retry_after = Some(retry_after_seconds);
        e
    }

    /// Our own failure, shown without detail (which goes to the log).
    pub fn transient_failure() -> Self {
        Self::new(90033, OAuthError::TemporarilyUnavailable, "A transient error has occurred. Please try again.")
    }

    /// A malformed request to an endpoint other than authorize and token (instance discovery).
    pub fn malformed_request(why: &str) -> Self {
        Self::new(50050, OAuthError::InvalidRequest, format!("The request is malformed: {why}"))
    }

    /// Client authentication that cannot be read or is given twice; `error` says which.
    pub fn bad_client_authentication(error: OAuthError, why: &str) -> Self {
        Self::new(900023, error, why.to_string())
    }

    /// A `client_assertion` (certificate credential), which this server does not accept yet.
    /// A client assertion that is not a well-formed JWT of the expected kind (AADSTS50027).
    pub fn invalid_client_assertion(why: &str) -> Self {
        Self::new(
            50027,
            OAuthError::InvalidClient,
            format!("Invalid JWT token. The client assertion is not valid: {why}."),
        )
    }

    /// The assertion names a certificate the app does not have (AADSTS700027).
    pub fn assertion_key_not_registered(client_id: &str, thumbprint: &str) -> Self {
        Self::new(
            700027,
            OAuthError::InvalidClient,
            format!("Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"),
        )
    }

    pub fn assertion_signature_mismatch() -> Self {
        Self::new(
            700027,
            OAuthError::InvalidClient,
            "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]",
        )
    }

    /// The signing certificate is registered but not valid now.
    pub fn assertion_certificate_expired(thumbprint: &str) -> Self {
        Self::new(
            700027,
            OAuthError::InvalidClient,
            format!("Client assertion failed signature validation. [Reason - The certificate with thumbprint '{thumbprint}' is expired or not yet valid.]"),
        )
    }

    pub fn assertion_subject_mismatch() -> Self {
        Self::new(50048, OAuthError::InvalidClient, "Subject mismatches Issuer claim in the client assertion.")
    }

    pub fn assertion_too_many_audiences(count: usize) -> Self {
        Self::new(
            5002741,
            OAuthError::InvalidClient,
            format!("Number of audience values in the provided client credential exceed maximum allowed. {count} audience values provided, maximum allowed is 1."),
        )
    }

    pub fn assertion_wrong_audience() -> Self {
        Self::new(
            700023,
            OAuthError::InvalidClient,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        )
    }

    /// Times in Unix seconds; `nbf` 0 when the assertion had none (as Entra reports 1970).
    pub fn assertion_out_of_time_range(now: i64, nbf: i64, exp: i64) -> Self {
        let at = |s: i64| {
            time::OffsetDateTime::from_unix_timestamp(s)
                .map(|t| {
                    format!(
                        "{}.0000000Z",
                        t.format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                            .trim_end_matches('Z')
                    )
                })
                .unwrap_or_else(|_| s.to_string())
        };
        Self::new(
            700024,
            OAuthError::InvalidClient,
            format!("Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .", at(now), at(nbf), at(exp)),
        )
    }

    /// A cross-origin (browser) token request for a code, token or grant that was not issued to
    /// a single-page app.
    pub fn cross_origin_not_spa(origin: &str) -> Self {
        Self::new(
            9002326,
            OAuthError::InvalidRequest,
            format!("Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '{origin}'."),
        )
    }

    /// A code or refresh token issued to a single-page app, redeemed without an `Origin`.
    pub fn spa_redemption_not_cross_origin() -> Self {
        Self::new(
            9002327,
            OAuthError::InvalidRequest,
            "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
        )
    }

    /// An authorization request for a single-page-app redirect URI without PKCE.
    pub fn spa_requires_pkce() -> Self {
        Self::new(
            9002325,
            OAuthError::InvalidRequest,
            "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
        )
    }

    /// A client secret or assertion in a browser (cross-origin) request.
    pub fn credentials_in_cross_origin_request() -> Self {
        Self::new(
            700025,
            OAuthError::InvalidClient,
            "Client credentials (client_secret or client_assertion) must not be sent in a cross-origin request: a browser cannot keep them secret.",
        )
    }

    /// A single-page app's refresh token past its fixed 24-hour lifetime.
    pub fn spa_refresh_token_expired(issued: &str) -> Self {
        Self::new(
            700084,
            OAuthError::InvalidGrant,
            format!("The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which can't be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on {issued}."),
        )
    }

    /// No federated credential of the app names the assertion's issuer.
    pub fn federation_no_issuer(issuer: &str) -> Self {
        Self::new(
            700211,
            OAuthError::InvalidClient,
            format!("No matching federated identity record found for presented assertion issuer '{issuer}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"),
        )
    }

    /// The issuer matched, but no credential for it names the assertion's audience.
    pub fn federation_no_audience(audience: &str) -> Self {
        Self::new(
            700212,
            OAuthError::InvalidClient,
            format!("No matching federated identity record found for presented assertion audience '{audience}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"),
        )
    }

    /// Issuer and audience matched, the subject did not.
    pub fn federation_no_subject(subject: &str) -> Self {
        Self::new(
            700213,
            OAuthError::InvalidClient,
            format!("No matching federated identity record found for presented assertion subject '{subject}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"),
        )
    }

    /// The subject matches a credential only when case is ignored.
    pub fn federation_subject_case(subject: &str) -> Self {
        Self::new(
            7002138,
            OAuthError::InvalidClient,
            format!("No matching federated identity record found for presented assertion subject '{subject}'. The subject matches with case-insensitive comparison, but not with case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"),
        )
    }

    /// The external token's signature could not be checked or did not verify.
    pub fn federation_signature(why: &str) -> Self {
        Self::new(
            700027,
            OAuthError::InvalidClient,
            format!("Client assertion failed signature validation. [Reason - {why}]"),
        )
    }

    /// An Entra-issued (here: Accord-issued) user token presented as a federated credential.
    pub fn federation_forbidden_token_type() -> Self {
        Self::new(
            700229,
            OAuthError::InvalidClient,
            "ForbiddenTokenType- Only app-only tokens can be used as Federated Identity Credentials for Microsoft Entra issuer.",
        )
    }

    /// Device flow: nobody has answered yet; the device polls again after `interval`.
    pub fn device_authorization_pending() -> Self {
        Self::new(
            70016,
            OAuthError::AuthorizationPending,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    }

    /// Device flow: the person declined on the verification page or the consent prompt.
    pub fn device_authorization_declined() -> Self {
        Self::new(70000, OAuthError::AuthorizationDeclined, "The end user declined the authorization request.")
    }

    /// Device flow: the device code's time is up.
    pub fn device_code_expired() -> Self {
        Self::new(70019, OAuthError::ExpiredToken, "Verification code expired.")
    }

    /// Device flow: the device code is not one Accord issued.
    pub fn device_code_unknown() -> Self {
        Self::new(70018, OAuthError::BadVerificationCode, "Invalid verification code entered.")
    }

    /// Device flow: the device code was redeemed already (its tokens are revoked: a replay).
    pub fn device_code_already_redeemed() -> Self {
        Self::new(
            90120,
            OAuthError::InvalidGrant,
            "InvalidDeviceFlowRequest - The request was already authorized or declined.",
        )
    }

    /// Device flow: the code typed on the verification page is not a pending one.
    pub fn user_code_invalid() -> Self {
        Self::new(
            90119,
            OAuthError::InvalidRequest,
            "That code didn't work. Check the code and try again: it is shown on the device you are signing in to.",
        )
    }

    /// A claims challenge (`access_token.nbf`) asks for a sign-in newer than the grant presented.
    pub fn claims_challenge_needs_sign_in() -> Self {
        Self::new(
            50133,
            OAuthError::InteractionRequired,
            "Session is invalid due to expiration or recent password change: the claims challenge requires a sign-in after the user's access was revoked. Sign in again.",
        )
    }

    /// On-behalf-of: the assertion was issued for another audience than the calling API.
    pub fn obo_wrong_audience(aud: &str, app_id: &str, app_name: &str) -> Self {
        Self::new(
            500131,
            OAuthError::InvalidGrant,
            format!("Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '{aud}' and the expected audience is '{app_id}' or one of the Application Uris of this application with App ID '{app_id}'({app_name}). The downstream client must request a token for the expected audience (the application that made the OBO request) and this application should use that token as the assertion."),
        )
    }

    /// On-behalf-of: the assertion is not a valid token of this platform, or not a user's.
    pub fn obo_assertion_invalid(reason: &str) -> Self {
        Self::new(
            50013,
            OAuthError::InvalidGrant,
            format!("Assertion failed signature validation. [Reason - {reason}]"),
        )
    }

    /// On-behalf-of: the assertion has expired.
    pub fn obo_assertion_expired() -> Self {
        Self::new(500133, OAuthError::InvalidGrant, "Assertion isn't within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token.")
    }

    /// A code redeemed with another `redirect_uri` than the authorization request named.
    pub fn redirect_uri_mismatch_at_redemption() -> Self {
        Self::new(
            70002,
            OAuthError::InvalidGrant,
            "The redirect_uri does not match the one used in the authorization request.",
        )
    }

    /// The client credentials grant from a public client.
    pub fn public_client_credentials() -> Self {
        Self::new(7000218, OAuthError::UnauthorizedClient, "Public clients cannot use the client credentials grant.")
    }

    /// A decision on an admin-consent request that was already decided.
    pub fn request_already_decided(status: &str, result: &str) -> Self {
        Self::new(90014, OAuthError::InvalidRequest, format!("This request is already {status} ({result})."))
    }

    /// The actor lacks a directory role or permission for an administrative operation.
    pub fn not_permitted(message: impl Into<String>) -> Self {
        Self::new(90093, OAuthError::AccessDenied, message)
    }

    /// No such object in the organisation.
    pub fn object_not_found(message: impl Into<String>) -> Self {
        Self::new(90015, OAuthError::InvalidRequest, message)
    }

    /// The change conflicts with an existing object.
    pub fn object_conflict(message: impl Into<String>) -> Self {
        Self::new(90016, OAuthError::InvalidRequest, message)
    }

    pub fn form_expired(why: &str) -> Self {
        Self::new(90014, OAuthError::InvalidRequest, format!("{why} Go back to the application and sign in again."))
    }

    /// `{own app id}/.default` from an app that lists no Graph permission (sign-in at least).
    pub fn token_for_itself_requires_graph(client_id: &str) -> Self {
        Self::new(
            90008,
            OAuthError::InvalidGrant,
            format!("The user or administrator has not consented to use the application with ID '{client_id}'. At the minimum, the application requires access to Microsoft Graph by specifying the sign-in and read user profile permission (User.Read)."),
        )
    }

    pub fn admin_consent_not_on_common() -> Self {
        Self::new(
            90130,
            OAuthError::InvalidRequest,
            "Admin consent is not supported on the /common or /consumers endpoints. Use the organisation's tenant ID, one of its domains, or /organizations.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_starts_with_the_code() {
        let e = Aadsts::tenant_not_found("x");
        assert!(e.to_string().starts_with("AADSTS90002: Tenant 'x' not found"));
        assert_eq!(e.error.as_str(), "invalid_request");
        assert_eq!(Aadsts::invalid_client_secret("a").http_status(), 401);
        assert_eq!(Aadsts::consent_missing("a", "").suberror, Some("consent_required"));
    }
}
