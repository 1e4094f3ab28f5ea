//! # accord-connect: the vendor side of Microsoft 365 consent
//!
//! A SaaS vendor whose product reads Office 365 calendars needs, per customer organisation:
//!
//! 1. **Admin-consent links** for the customer's administrator (pre-authorization), with a
//!    `state` bound to the customer instance — [`ConnectClient::admin_consent_link`].
//! 2. **The admin-consent redirect** — [`ConnectClient::handle_admin_consent_callback`]: the
//!    state is verified and consumed, errors become [`ConnectError`] variants with a
//!    [`ConnectError::human`] sentence, and the `tenant` is trusted only once an app-only token
//!    for it was obtained and its `tid` checked.
//! 3. **User sign-in** (code flow + PKCE S256 + nonce) — [`ConnectClient::begin_sign_in`] and
//!    [`ConnectClient::complete_sign_in`], which validates the id token against the tenant's
//!    JWKS (signature, issuer with the tenant substituted, audience, expiry, nonce).
//! 4. **Stored connections** — [`TokenStore`]; [`ConnectClient::access_token_for`] refreshes
//!    (rotating refresh tokens) and marks a connection [`ConnectionState::Revoked`] when the
//!    platform refuses for a consent reason. App-only tokens: [`ConnectClient::app_token`].
//! 5. **Calendars** — [`CalendarClient`]: events and calendar views, all pages, retrying on 429
//!    and 5xx with `Retry-After`.
//! 6. **Sync by push** — delta rounds ([`CalendarClient::calendar_delta`]), change-notification
//!    subscriptions with the validation handshake ([`validation_token`]) and `clientState`
//!    checks ([`parse_notifications`]), lifecycle events, and `$batch` fan-out
//!    ([`CalendarClient::batch_get`]).
//!
//! The kit speaks only the public protocol, so the same code runs against an
//! Accord server in CI and against `https://login.microsoftonline.com`
//! in production; only [`Config`] differs ([`Config::accord`], [`Config::microsoft_cloud`]).
//! See `docs/integrate-your-saas-app.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), accord_connect::ConnectError> {
//! use accord_connect::*;
//! let config = Config::microsoft_cloud(
//!     "3bcad3f8-39bc-495b-b118-04d692e0bb31",
//!     std::env::var("CLIENT_SECRET").unwrap(),
//!     "https://app.vendor.example/auth/callback",
//!     "https://app.vendor.example/onboarding/consent-callback",
//! )
//! .with_scopes(vec![
//!     ScopePurpose::delegated("Calendars.Read", "Show your upcoming meetings"),
//!     ScopePurpose::application("Calendars.Read", "Sync meetings of everyone in your organisation"),
//! ]);
//! let kit = ConnectClient::new(config)?;
//! let link = kit.admin_consent_link("customer-42", &TenantHint::Organizations, &ScopeChoice::StaticDefault).await?;
//! println!("Ask your administrator to open {link}");
//! // … later, on the redirect:
//! match kit.handle_admin_consent_callback("admin_consent=True&tenant=…&state=…").await {
//!     Ok(tenant) => println!("connected to {} with {:?}", tenant.tenant_id, tenant.roles),
//!     Err(e) => println!("{}", e.human()),
//! }
//! # Ok(()) }
//! ```

mod calendar;
mod client;
mod config;
mod credentials;
mod error;
mod http;
mod jwt;
mod metadata;
mod retry;
mod state;
mod sync;
mod tokens;
mod webhooks;

pub use calendar::{
    Attendee, CalendarClient, CalendarUser, DateTimeTimeZone, EmailAddress, Event, Location, OnlineMeeting, Recipient,
    ResponseStatus,
};
pub use client::{
    AdminConsentOutcome, ConnectClient, ConsentedTenant, PendingSignIn, SignInOptions, SignedInUser, SIGN_IN_SCOPES,
};
pub use config::{
    Config, PermissionKind, RetryPolicy, ScopeChoice, ScopePurpose, TenantHint, GRAPH_DEFAULT_SCOPE,
    MICROSOFT_AUTHORITY, MICROSOFT_GRAPH,
};
pub use credentials::{CertificateCredential, ClientCredential};
pub use error::{ConnectError, OAuthErrorBody, RevocationReason};
pub use jwt::IdTokenClaims;
pub use metadata::Discovery;
pub use retry::parse_retry_after;
pub use state::{random_token, MemoryStateStore, StateStore};
pub use sync::{
    events_resource, parse_notifications, validation_token, BatchAnswer, DeltaRound, DeltaStart, Incoming,
    LifecycleEvent, Notifications, Subscription, SubscriptionRequest, EVENT_SUBSCRIPTION_LIFETIME,
};
pub use tokens::{AppToken, ConnectionState, MemoryTokenStore, TokenSet, TokenStore, UserConnection, UserKey};
pub use webhooks::{verify_consent_webhook, ConsentWebhookEvent, WEBHOOK_TOLERANCE_SECONDS};
