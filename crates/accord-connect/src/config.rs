//! What the kit needs to know about the vendor's app registration and the cloud it talks to.

use crate::credentials::{CertificateCredential, ClientCredential};
use crate::error::ConnectError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use url::Url;
use uuid::Uuid;

/// The Microsoft cloud's authority host.
pub const MICROSOFT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Microsoft Graph, version 1.0.
pub const MICROSOFT_GRAPH: &str = "https://graph.microsoft.com/v1.0";
/// Graph's resource identifier for `.default` (the app's static permission list). Accord uses
/// the same identifier, so scopes never change between the two.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Whether a permission is used on a signed-in user's behalf or by the app itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionKind {
    /// A delegated permission (`scp` claim): the app acts for a signed-in user.
    Delegated,
    /// An application permission (`roles` claim of an app-only token).
    Application,
}

/// One permission the app asks for and why: the vendor's "technical guide", shown to a
/// customer's administrator before they consent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopePurpose {
    /// The permission value (`Calendars.Read`), or a full scope (`https://graph.microsoft.com/Calendars.Read`).
    pub scope: String,
    /// Why the app needs it, in words an administrator can weigh.
    pub purpose: String,
    pub kind: PermissionKind,
}

impl ScopePurpose {
    pub fn delegated(scope: impl Into<String>, purpose: impl Into<String>) -> Self {
        ScopePurpose { scope: scope.into(), purpose: purpose.into(), kind: PermissionKind::Delegated }
    }

    pub fn application(scope: impl Into<String>, purpose: impl Into<String>) -> Self {
        ScopePurpose { scope: scope.into(), purpose: purpose.into(), kind: PermissionKind::Application }
    }
}

/// Retries of idempotent calls (Graph reads, the tenant confirmation after admin consent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the 2nd attempt when the server gives no `Retry-After`; doubled each time.
    pub base_delay: Duration,
    /// No single wait is longer, whatever `Retry-After` says.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

/// The kit's configuration. Everything that differs between Accord (CI, laptops) and the
/// Microsoft cloud (production) is here; the code paths are the same.
///
/// | | Accord | Microsoft cloud |
/// |---|---|---|
/// | `authority` | Accord's public URL, e.g. `https://localhost:8443` | `https://login.microsoftonline.com` |
/// | `graph_base` | `{authority}/v1.0` | `https://graph.microsoft.com/v1.0` |
/// | `extra_root_ca_pem` | Accord's dev CA (`accord-data/tls/ca.pem`) | `None` |
#[derive(Clone)]
pub struct Config {
    /// Scheme, host and port of the identity provider, without a tenant or path.
    pub authority: String,
    /// Graph base URL, including the version segment.
    pub graph_base: String,
    /// The Application (client) id of the vendor's multi-tenant app registration.
    pub client_id: String,
    /// How the app authenticates: a secret, or a certificate ([`Config::with_certificate`]).
    pub credential: ClientCredential,
    /// Redirect URI of user sign-in (registered on the app).
    pub sign_in_redirect_uri: String,
    /// Redirect URI of the admin-consent link (registered on the app).
    pub admin_consent_redirect_uri: String,
    /// Every permission the app uses, with its purpose.
    pub scopes: Vec<ScopePurpose>,
    /// An extra trusted root certificate (PEM), for a development server such as Accord's dev CA.
    pub extra_root_ca_pem: Option<Vec<u8>>,
    /// How long OpenID discovery documents and JWKS are cached per tenant.
    pub metadata_ttl: Duration,
    /// Clock skew tolerated on `exp`/`nbf`/`iat` of id tokens.
    pub clock_leeway: Duration,
    /// A cached access token is refreshed this long before it expires.
    pub refresh_margin: Duration,
    /// How long a pending sign-in (its state, nonce and PKCE verifier) stays usable.
    pub sign_in_ttl: Duration,
    /// Timeout of each HTTP request.
    pub http_timeout: Duration,
    /// Graph calls: retries on 429 and 5xx.
    pub graph_retry: RetryPolicy,
    /// The app-only token that confirms a tenant after admin consent. Entra may need a few
    /// seconds to replicate a new service principal (AADSTS700016 meanwhile), so this retries.
    pub confirm_retry: RetryPolicy,
    /// Pages of `@odata.nextLink` followed before giving up.
    pub max_pages: u32,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("authority", &self.authority)
            .field("graph_base", &self.graph_base)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("sign_in_redirect_uri", &self.sign_in_redirect_uri)
            .field("admin_consent_redirect_uri", &self.admin_consent_redirect_uri)
            .field("scopes", &self.scopes)
            .field("extra_root_ca_pem", &self.extra_root_ca_pem.as_ref().map(|p| p.len()))
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A configuration for any authority; see [`Config::microsoft_cloud`] and [`Config::accord`].
    pub fn new(
        authority: impl Into<String>,
        graph_base: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        sign_in_redirect_uri: impl Into<String>,
        admin_consent_redirect_uri: impl Into<String>,
    ) -> Config {
        Config {
            authority: authority.into(),
            graph_base: graph_base.into(),
            client_id: client_id.into(),
            credential: ClientCredential::Secret(client_secret.into()),
            sign_in_redirect_uri: sign_in_redirect_uri.into(),
            admin_consent_redirect_uri: admin_consent_redirect_uri.into(),
            scopes: Vec::new(),
            extra_root_ca_pem: None,
            metadata_ttl: Duration::from_secs(24 * 3600),
            clock_leeway: Duration::from_secs(120),
            refresh_margin: Duration::from_secs(300),
            sign_in_ttl: Duration::from_secs(15 * 60),
            http_timeout: Duration::from_secs(30),
            graph_retry: RetryPolicy::default(),
            confirm_retry: RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_secs(2),
                max_delay: Duration::from_secs(10),
            },
            max_pages: 100,
        }
    }

    /// Production: `https://login.microsoftonline.com` and `https://graph.microsoft.com/v1.0`.
    pub fn microsoft_cloud(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        sign_in_redirect_uri: impl Into<String>,
        admin_consent_redirect_uri: impl Into<String>,
    ) -> Config {
        Config::new(
            MICROSOFT_AUTHORITY,
            MICROSOFT_GRAPH,
            client_id,
            client_secret,
            sign_in_redirect_uri,
            admin_consent_redirect_uri,
        )
    }

    /// An Accord server at `base` (its public URL): the authority is `base`, Graph is `{base}/v1.0`.
    pub fn accord(
        base: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        sign_in_redirect_uri: impl Into<String>,
        admin_consent_redirect_uri: impl Into<String>,
    ) -> Config {
        let base = base.trim_end_matches('/');
        Config::new(
            base,
            format!("{base}/v1.0"),
            client_id,
            client_secret,
            sign_in_redirect_uri,
            admin_consent_redirect_uri,
        )
    }

    /// Authenticates with a certificate instead of the secret (Microsoft's recommendation for
    /// production; the same certificate works against Accord and the Microsoft cloud).
    pub fn with_certificate(mut self, certificate: CertificateCredential) -> Config {
        self.credential = ClientCredential::Certificate(std::sync::Arc::new(certificate));
        self
    }

    pub fn with_scopes(mut self, scopes: Vec<ScopePurpose>) -> Config {
        self.scopes = scopes;
        self
    }

    /// Trusts `pem` (one or more PEM certificates) in addition to the public roots.
    pub fn with_extra_root_ca(mut self, pem: impl Into<Vec<u8>>) -> Config {
        self.extra_root_ca_pem = Some(pem.into());
        self
    }

    /// The delegated permissions, in configuration order (for sign-in and named admin consent).
    pub fn delegated_scopes(&self) -> Vec<String> {
        self.scopes.iter().filter(|s| s.kind == PermissionKind::Delegated).map(|s| s.scope.clone()).collect()
    }

    /// The application permissions (granted only through `.default` admin consent).
    pub fn application_permissions(&self) -> Vec<String> {
        self.scopes.iter().filter(|s| s.kind == PermissionKind::Application).map(|s| s.scope.clone()).collect()
    }

    /// Whether the authority is the Microsoft cloud (any of its public aliases).
    pub fn is_microsoft_cloud(&self) -> bool {
        Url::parse(&self.authority).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).is_some_and(|h| {
            matches!(h.as_str(), "login.microsoftonline.com" | "login.microsoft.com" | "login.windows.net")
        })
    }

    pub(crate) fn validate(&self) -> Result<Validated, ConnectError> {
        let authority = Url::parse(self.authority.trim_end_matches('/'))
            .map_err(|e| ConnectError::Config(format!("authority {:?}: {e}", self.authority)))?;
        if authority.scheme() != "https" {
            return Err(ConnectError::Config(format!("authority {:?} must be https", self.authority)));
        }
        if authority.path() != "/" || authority.query().is_some() {
            return Err(ConnectError::Config(format!(
                "authority {:?} must be scheme, host and port only (no tenant, no path)",
                self.authority
            )));
        }
        let graph_base = Url::parse(self.graph_base.trim_end_matches('/'))
            .map_err(|e| ConnectError::Config(format!("graph base {:?}: {e}", self.graph_base)))?;
        if !matches!(graph_base.scheme(), "https" | "http") || graph_base.cannot_be_a_base() {
            return Err(ConnectError::Config(format!("graph base {:?} is not an http(s) URL", self.graph_base)));
        }
        for (name, uri) in [
            ("sign-in redirect URI", &self.sign_in_redirect_uri),
            ("admin-consent redirect URI", &self.admin_consent_redirect_uri),
        ] {
            Url::parse(uri).map_err(|e| ConnectError::Config(format!("{name} {uri:?}: {e}")))?;
        }
        if self.client_id.trim().is_empty() {
            return Err(ConnectError::Config("client id is empty".into()));
        }
        self.credential.validate()?;
        Ok(Validated { authority, graph_base })
    }
}

pub(crate) struct Validated {
    pub authority: Url,
    pub graph_base: Url,
}

/// The `{tenant}` of a URL: a tenant id, one of its verified domains, or `organizations`
/// (any work or school account; the tenant is the signed-in person's home tenant).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TenantHint {
    Id(Uuid),
    Domain(String),
    Organizations,
}

impl TenantHint {
    /// The path segment: the hyphenated GUID, the lower-cased domain, or `organizations`.
    pub fn segment(&self) -> String {
        match self {
            TenantHint::Id(id) => id.hyphenated().to_string(),
            TenantHint::Domain(d) => d.clone(),
            TenantHint::Organizations => "organizations".into(),
        }
    }

    pub fn id(&self) -> Option<Uuid> {
        match self {
            TenantHint::Id(id) => Some(*id),
            _ => None,
        }
    }
}

impl fmt::Display for TenantHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segment())
    }
}

impl FromStr for TenantHint {
    type Err = ConnectError;

    /// A GUID, a domain (`contoso.com`) or `organizations`. `common` and `consumers` are refused:
    /// admin consent does not work there and this kit serves work and school accounts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(id) = Uuid::parse_str(s) {
            if s.len() == 36 && !id.is_nil() {
                return Ok(TenantHint::Id(id));
            }
        }
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "organizations" => return Ok(TenantHint::Organizations),
            "common" | "consumers" => {
                return Err(ConnectError::Config(format!(
                    "tenant {s:?}: use a tenant id, a verified domain or \"organizations\""
                )))
            }
            _ => {}
        }
        let labels: Vec<&str> = lower.split('.').collect();
        let valid = labels.len() >= 2
            && lower.len() <= 253
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            Ok(TenantHint::Domain(lower))
        } else {
            Err(ConnectError::Config(format!("tenant {s:?} is not a tenant id, a domain or \"organizations\"")))
        }
    }
}

impl TryFrom<String> for TenantHint {
    type Error = ConnectError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TenantHint> for String {
    fn from(t: TenantHint) -> String {
        t.segment()
    }
}

impl From<Uuid> for TenantHint {
    fn from(id: Uuid) -> Self {
        TenantHint::Id(id)
    }
}

/// What an admin-consent link asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeChoice {
    /// `https://graph.microsoft.com/.default`: the app registration's static permission list,
    /// delegated **and application** permissions. The only way to get application permissions.
    StaticDefault,
    /// Named delegated permissions only (`openid profile User.Read Calendars.Read`).
    Named(Vec<String>),
}

impl ScopeChoice {
    pub fn scope_param(&self) -> String {
        match self {
            ScopeChoice::StaticDefault => GRAPH_DEFAULT_SCOPE.to_string(),
            ScopeChoice::Named(scopes) => scopes.join(" "),
        }
    }
}
