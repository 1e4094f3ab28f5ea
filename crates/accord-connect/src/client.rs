//! The kit's entry point: admin-consent links and their callback, user sign-in, stored
//! connections with refresh, and app-only tokens.

use crate::calendar::CalendarClient;
use crate::config::{Config, ScopeChoice, TenantHint};
use crate::error::{map_oauth_error, revocation_of, ConnectError, ErrorContext, OAuthErrorBody};
use crate::http::{build_client, post_token, TokenOutcome, TokenResponse};
use crate::jwt::{self, check_claims, constant_time_eq, Expectations, IdTokenClaims};
use crate::metadata::MetadataCache;
use crate::retry::backoff;
use crate::state::{random_token, MemoryStateStore, StateStore};
use crate::tokens::{AppToken, ConnectionState, MemoryTokenStore, TokenSet, TokenStore, UserConnection, UserKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use url::Url;
use uuid::Uuid;

/// Scopes every sign-in asks for: the id token, the user's name, and a refresh token.
pub const SIGN_IN_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// A customer tenant whose administrator consented, confirmed by an app-only token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentedTenant {
    /// The customer instance the consent link was made for (from the state).
    pub customer: String,
    /// The tenant id, confirmed: the `tid` of an app-only token obtained for it.
    pub tenant_id: Uuid,
    /// The application permissions the app-only token carries (`roles`); empty after a
    /// named-scopes (delegated only) consent.
    pub roles: Vec<String>,
    /// The delegated scopes the redirect reported (`scope`); informational, not verified.
    pub reported_scopes: Vec<String>,
}

/// The admin-consent callback with the customer it belongs to, when the state was valid.
#[derive(Debug)]
pub struct AdminConsentOutcome {
    /// `Some` whenever the state was valid, also when the consent itself failed.
    pub customer: Option<String>,
    pub result: Result<ConsentedTenant, ConnectError>,
}

/// What a sign-in must remember between the redirect to the platform and the callback: keep it
/// in the user's server-side session (or an encrypted cookie), never in the URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub state: String,
    pub nonce: String,
    /// The PKCE code verifier (the challenge sent is its S256 hash).
    pub verifier: String,
    pub tenant: TenantHint,
    /// The space-separated scopes asked for.
    pub scope: String,
    pub redirect_uri: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Optional authorize parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignInOptions {
    /// Pre-fills the account (`login_hint`).
    pub login_hint: Option<String>,
    /// `login`, `none`, `consent` or `select_account`.
    pub prompt: Option<String>,
    pub domain_hint: Option<String>,
}

/// A signed-in user whose id token validated; the connection is stored as `Connected`.
#[derive(Clone, Debug)]
pub struct SignedInUser {
    pub tenant_id: String,
    pub object_id: String,
    pub upn: Option<String>,
    pub name: Option<String>,
    pub claims: IdTokenClaims,
    pub tokens: TokenSet,
}

impl SignedInUser {
    pub fn key(&self) -> UserKey {
        UserKey::new(&self.tenant_id, &self.object_id)
    }
}

/// The vendor client kit. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct ConnectClient {
    config: Config,
    authority: Url,
    graph_base: Url,
    http: reqwest::Client,
    metadata: MetadataCache,
    states: Arc<dyn StateStore>,
    tokens: Arc<dyn TokenStore>,
    app_tokens: Mutex<HashMap<String, AppToken>>,
    refresh_locks: Mutex<HashMap<UserKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// The query of a callback: a full URL, `?a=b&…` or `a=b&…`.
pub(crate) fn callback_pairs(input: &str) -> Vec<(String, String)> {
    let input = input.trim();
    let query = if input.contains("://") {
        Url::parse(input).ok().and_then(|u| u.query().map(str::to_string)).unwrap_or_default()
    } else {
        input.trim_start_matches('?').to_string()
    };
    url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn expires_at(expires_in: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(expires_in)
}

impl ConnectClient {
    /// A client with in-memory state and token stores.
    pub fn new(config: Config) -> Result<Self, ConnectError> {
        Self::with_stores(config, Arc::new(MemoryStateStore::default()), Arc::new(MemoryTokenStore::new()))
    }

    /// A client over the vendor's own stores.
    pub fn with_stores(
        config: Config,
        states: Arc<dyn StateStore>,
        tokens: Arc<dyn TokenStore>,
    ) -> Result<Self, ConnectError> {
        let v = config.validate()?;
        let http = build_client(&config)?;
        Ok(ConnectClient {
            metadata: MetadataCache::new(config.metadata_ttl),
            authority: v.authority,
            graph_base: v.graph_base,
            config,
            http,
            states,
            tokens,
            app_tokens: Mutex::new(HashMap::new()),
            refresh_locks: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The HTTP client (rustls, the extra root CA, no redirects), for the vendor's own calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn state_store(&self) -> &Arc<dyn StateStore> {
        &self.states
    }

    pub fn token_store(&self) -> &Arc<dyn TokenStore> {
        &self.tokens
    }

    /// A Graph calendar client over the configured Graph base.
    pub fn calendar(&self) -> CalendarClient {
        CalendarClient::new(self.http.clone(), self.graph_base.clone(), self.config.graph_retry, self.config.max_pages)
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.authority.clone();
        url.path_segments_mut().expect("validated authority").clear().extend(segments);
        url
    }

    fn token_endpoint(&self, tenant: &str) -> String {
        self.endpoint(&[tenant, "oauth2", "v2.0", "token"]).to_string()
    }

    // ----------------------------------------------------------------- admin consent

    /// `{authority}/{tenant}/v2.0/adminconsent?client_id&scope&redirect_uri&state`. Use a state
    /// from [`StateStore::new_state`], or let [`ConnectClient::admin_consent_link`] make one.
    pub fn admin_consent_url(&self, tenant: &TenantHint, scopes: &ScopeChoice, state: &str) -> Url {
        let mut url = self.endpoint(&[&tenant.segment(), "v2.0", "adminconsent"]);
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair("scope", &scopes.scope_param())
            .append_pair("redirect_uri", &self.config.admin_consent_redirect_uri)
            .append_pair("state", state);
        url
    }

    /// An admin-consent link for `customer` with a fresh single-use state.
    pub async fn admin_consent_link(
        &self,
        customer: &str,
        tenant: &TenantHint,
        scopes: &ScopeChoice,
    ) -> Result<Url, ConnectError> {
        let state = self.states.new_state(customer).await?;
        Ok(self.admin_consent_url(tenant, scopes, &state))
    }

    /// The admin-consent redirect (its query, or the whole URL): verifies and consumes the
    /// state, maps errors, and confirms the `tenant` by obtaining an app-only token for it.
    pub async fn handle_admin_consent_callback(&self, query: &str) -> Result<ConsentedTenant, ConnectError> {
        self.process_admin_consent_callback(query).await.result
    }

    /// Like [`ConnectClient::handle_admin_consent_callback`], also telling which customer a
    /// failed consent belonged to (when the state was valid).
    pub async fn process_admin_consent_callback(&self, query: &str) -> AdminConsentOutcome {
        let pairs = callback_pairs(query);
        let customer = match get(&pairs, "state").filter(|s| !s.is_empty()) {
            None => None,
            Some(state) => match self.states.take_state(state).await {
                Ok(c) => c,
                Err(e) => return AdminConsentOutcome { customer: None, result: Err(e) },
            },
        };
        let Some(customer) = customer else {
            tracing::warn!("admin-consent callback with an unknown, used or expired state");
            return AdminConsentOutcome { customer: None, result: Err(ConnectError::StateInvalid) };
        };
        let result = self.finish_admin_consent(&customer, &pairs).await;
        match &result {
            Ok(t) => tracing::info!(customer, tenant = %t.tenant_id, roles = ?t.roles, "admin consent confirmed"),
            Err(e) => tracing::info!(customer, error = %e, "admin consent failed"),
        }
        AdminConsentOutcome { customer: Some(customer), result }
    }

    async fn finish_admin_consent(
        &self,
        customer: &str,
        pairs: &[(String, String)],
    ) -> Result<ConsentedTenant, ConnectError> {
        if let Some(e) = OAuthErrorBody::from_query(pairs) {
            return Err(map_oauth_error(&e, ErrorContext::AdminConsent));
        }
        if !get(pairs, "admin_consent").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(ConnectError::Protocol {
                error: "invalid_response".into(),
                code: None,
                description: "The admin-consent redirect carried neither admin_consent=True nor an error.".into(),
            });
        }
        let named = get(pairs, "tenant").unwrap_or_default();
        let tenant_id =
            Uuid::parse_str(named).ok().filter(|id| !id.is_nil() && named.len() == 36).ok_or_else(|| {
                ConnectError::TenantNotConfirmed {
                    tenant: named.chars().take(64).collect(),
                    reason: "the redirect did not name a tenant id".into(),
                    code: None,
                }
            })?;
        let token = self.confirm_tenant(tenant_id).await?;
        let reported_scopes =
            get(pairs, "scope").unwrap_or_default().split_whitespace().map(str::to_string).collect::<Vec<_>>();
        Ok(ConsentedTenant { customer: customer.to_string(), tenant_id, roles: token.roles, reported_scopes })
    }

    /// Obtains an app-only token for `tenant_id` and checks its `tid`: the proof that the app
    /// is consented there. Retries while a new service principal propagates (AADSTS700016).
    pub async fn confirm_tenant(&self, tenant_id: Uuid) -> Result<AppToken, ConnectError> {
        let tenant = tenant_id.hyphenated().to_string();
        let policy = self.config.confirm_retry;
        let mut attempt = 1;
        loop {
            let last = attempt >= policy.max_attempts.max(1);
            match self.fetch_app_token(&tenant).await {
                Ok(Ok(token)) => {
                    return if token.tenant_id.eq_ignore_ascii_case(&tenant) {
                        self.app_tokens.lock().expect("app token lock").insert(tenant.clone(), token.clone());
                        Ok(token)
                    } else {
                        Err(ConnectError::TenantNotConfirmed {
                            tenant,
                            reason: format!("the app-only token is for tenant {:?}", token.tenant_id),
                            code: None,
                        })
                    };
                }
                Ok(Err(e)) if e.has_code(700016) && !last => {
                    tracing::debug!(tenant, attempt, "service principal not visible yet; retrying");
                }
                Ok(Err(e)) => {
                    return Err(ConnectError::TenantNotConfirmed {
                        tenant,
                        code: e.code(),
                        reason: e.description().lines().next().unwrap_or_default().to_string(),
                    })
                }
                Err(e) if e.is_transient() && !last => {
                    tracing::debug!(tenant, attempt, error = %e, "tenant confirmation failed; retrying");
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(backoff(&policy, attempt)).await;
            attempt += 1;
        }
    }

    /// POSTs `form` to a token endpoint with the app's credential added: its secret, or an
    /// assertion signed for that very endpoint.
    async fn post_authenticated(&self, endpoint: &str, form: &[(&str, &str)]) -> Result<TokenOutcome, ConnectError> {
        let auth = self.config.credential.form_fields(&self.config.client_id, endpoint);
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        post_token(&self.http, endpoint, &fields).await
    }

    // ----------------------------------------------------------------- app-only tokens

    async fn fetch_app_token(&self, tenant: &str) -> Result<Result<AppToken, OAuthErrorBody>, ConnectError> {
        let endpoint = self.token_endpoint(tenant);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("scope", crate::config::GRAPH_DEFAULT_SCOPE),
        ];
        match self.post_authenticated(&endpoint, &form).await? {
            TokenOutcome::Refused(e) => Ok(Err(e)),
            TokenOutcome::Ok(t) => {
                // Received directly from the token endpoint over TLS: its claims are read, not
                // verified (Graph access tokens are not meant to be verified by clients).
                let claims = jwt::unverified_claims(&t.access_token).unwrap_or(Value::Null);
                let tid = claims.get("tid").and_then(Value::as_str).unwrap_or_default().to_string();
                let roles = claims
                    .get("roles")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                Ok(Ok(AppToken {
                    tenant_id: tid,
                    access_token: t.access_token,
                    expires_at: expires_at(t.expires_in),
                    roles,
                }))
            }
        }
    }

    /// An app-only Graph token for a tenant (client credentials), cached until shortly before
    /// it expires. `tenant` is best the tenant id; a domain works too.
    pub async fn app_token(&self, tenant: &str) -> Result<AppToken, ConnectError> {
        let seg = tenant.parse::<TenantHint>()?;
        if seg == TenantHint::Organizations {
            return Err(ConnectError::Config("app-only tokens need a tenant id or domain, not organizations".into()));
        }
        let key = seg.segment();
        let margin = time::Duration::try_from(self.config.refresh_margin).unwrap_or(time::Duration::minutes(5));
        if let Some(t) = self.app_tokens.lock().expect("app token lock").get(&key) {
            if t.expires_at - margin > OffsetDateTime::now_utc() {
                return Ok(t.clone());
            }
        }
        match self.fetch_app_token(&key).await? {
            Ok(token) => {
                self.app_tokens.lock().expect("app token lock").insert(key, token.clone());
                Ok(token)
            }
            Err(e) => {
                self.app_tokens.lock().expect("app token lock").remove(&key);
                Err(map_oauth_error(&e, ErrorContext::Token))
            }
        }
    }

    /// Forgets a cached app-only token (e.g. after a 401 from Graph).
    pub fn forget_app_token(&self, tenant: &str) {
        if let Ok(seg) = tenant.parse::<TenantHint>() {
            self.app_tokens.lock().expect("app token lock").remove(&seg.segment());
        }
    }

    // ----------------------------------------------------------------- user sign-in

    /// The authorize URL of a sign-in (code flow, PKCE S256, nonce) and what to remember until
    /// the callback. `scopes` empty means the configured delegated scopes; `openid profile
    /// offline_access` are always added.
    pub fn begin_sign_in(&self, tenant: &TenantHint, scopes: &[String]) -> (Url, PendingSignIn) {
        self.begin_sign_in_with(tenant, scopes, &SignInOptions::default())
    }

    pub fn begin_sign_in_with(
        &self,
        tenant: &TenantHint,
        scopes: &[String],
        options: &SignInOptions,
    ) -> (Url, PendingSignIn) {
        let configured;
        let scopes = if scopes.is_empty() {
            configured = self.config.delegated_scopes();
            &configured
        } else {
            scopes
        };
        let mut all: Vec<String> = SIGN_IN_SCOPES.iter().map(|s| s.to_string()).collect();
        for s in scopes.iter().flat_map(|s| s.split_whitespace()) {
            if !all.iter().any(|a| a.eq_ignore_ascii_case(s)) {
                all.push(s.to_string());
            }
        }
        let pending = PendingSignIn {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
            tenant: tenant.clone(),
            scope: all.join(" "),
            redirect_uri: self.config.sign_in_redirect_uri.clone(),
            created_at: OffsetDateTime::now_utc(),
        };
        let mut url = self.endpoint(&[&tenant.segment(), "oauth2", "v2.0", "authorize"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.config.client_id)
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", &pending.redirect_uri)
                .append_pair("response_mode", "query")
                .append_pair("scope", &pending.scope)
                .append_pair("state", &pending.state)
                .append_pair("nonce", &pending.nonce)
                .append_pair("code_challenge", &pkce_challenge(&pending.verifier))
                .append_pair("code_challenge_method", "S256");
            if let Some(h) = &options.login_hint {
                q.append_pair("login_hint", h);
            }
            if let Some(p) = &options.prompt {
                q.append_pair("prompt", p);
            }
            if let Some(d) = &options.domain_hint {
                q.append_pair("domain_hint", d);
            }
        }
        (url, pending)
    }

    /// The sign-in callback: checks the state, maps errors, redeems the code with the PKCE
    /// verifier, validates the id token, and stores the connection.
    pub async fn complete_sign_in(
        &self,
        pending: &PendingSignIn,
        callback_query: &str,
    ) -> Result<SignedInUser, ConnectError> {
        let pairs = callback_pairs(callback_query);
        let state_ok = get(&pairs, "state").is_some_and(|s| constant_time_eq(s.as_bytes(), pending.state.as_bytes()));
        let fresh = pending.created_at
            + time::Duration::try_from(self.config.sign_in_ttl).unwrap_or(time::Duration::minutes(15))
            > OffsetDateTime::now_utc();
        if !state_ok || !fresh {
            return Err(ConnectError::StateInvalid);
        }
        if let Some(e) = OAuthErrorBody::from_query(&pairs) {
            return Err(map_oauth_error(&e, ErrorContext::SignIn));
        }
        let code = get(&pairs, "code").filter(|c| !c.is_empty()).ok_or_else(|| ConnectError::Protocol {
            error: "invalid_response".into(),
            code: None,
            description: "The sign-in redirect carried neither a code nor an error.".into(),
        })?;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", self.config.client_id.as_str()),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
            ("scope", pending.scope.as_str()),
        ];
        let t = match self.post_authenticated(&self.token_endpoint(&pending.tenant.segment()), &form).await? {
            TokenOutcome::Ok(t) => t,
            TokenOutcome::Refused(e) => return Err(map_oauth_error(&e, ErrorContext::Token)),
        };
        let id_token = t
            .id_token
            .clone()
            .ok_or_else(|| ConnectError::IdTokenRejected("the token response carried no id token".into()))?;
        let claims = self.validate_id_token(&id_token, Some(&pending.nonce), Some(&pending.tenant)).await?;
        let tokens = TokenSet {
            access_token: t.access_token,
            expires_at: expires_at(t.expires_in),
            refresh_token: t.refresh_token,
            requested_scope: pending.scope.clone(),
            granted_scope: t.scope,
            id_token: Some(id_token),
        };
        let user = SignedInUser {
            tenant_id: claims.tid.clone(),
            object_id: claims.oid.clone(),
            upn: claims.preferred_username.clone(),
            name: claims.name.clone(),
            claims,
            tokens,
        };
        self.tokens
            .save(&UserConnection {
                key: user.key(),
                upn: user.upn.clone(),
                name: user.name.clone(),
                tokens: user.tokens.clone(),
                state: ConnectionState::Connected,
                updated_at: OffsetDateTime::now_utc(),
            })
            .await?;
        tracing::info!(user = %user.key(), upn = ?user.upn, "user signed in and connected");
        Ok(user)
    }

    /// Validates an id token: RS256 signature with the header's `kid` from the JWKS of the
    /// token's tenant (found through that tenant's discovery document), issuer = the discovery
    /// issuer with `{tenantid}` replaced by `tid`, audience = the client id, expiry with the
    /// configured leeway, and the nonce when one is expected. A tenant-id `hint` must match `tid`.
    pub async fn validate_id_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
        hint: Option<&TenantHint>,
    ) -> Result<IdTokenClaims, ConnectError> {
        let reject = ConnectError::IdTokenRejected;
        let token = jwt::decode(id_token).map_err(reject)?;
        let tid = token.payload.get("tid").and_then(Value::as_str).unwrap_or_default();
        let tenant = Uuid::parse_str(tid)
            .ok()
            .filter(|t| !t.is_nil() && tid.len() == 36)
            .ok_or_else(|| reject("the token's tid is not a tenant id".into()))?;
        if let Some(expected) = hint.and_then(TenantHint::id) {
            if expected != tenant {
                return Err(reject(format!("the token is for tenant {tenant}, not {expected}")));
            }
        }
        let tenant = tenant.hyphenated().to_string();
        let discovery = self.metadata.discovery(&self.http, &self.authority, &tenant).await?;
        let issuer = discovery.issuer.replace("{tenantid}", tid);
        let kid = token.kid.clone().ok_or_else(|| reject("the token header has no kid".into()))?;
        let key = self
            .metadata
            .key(&self.http, &discovery.jwks_uri, &kid)
            .await?
            .ok_or_else(|| reject(format!("no signing key {kid:?} in the tenant's key set")))?;
        token.verify_rs256(&key).map_err(reject)?;
        let leeway = i64::try_from(self.config.clock_leeway.as_secs()).unwrap_or(120);
        let expectations = Expectations {
            issuer: &issuer,
            client_id: &self.config.client_id,
            nonce,
            now: OffsetDateTime::now_utc().unix_timestamp(),
            leeway,
        };
        check_claims(&token.payload, &expectations).map_err(reject)
    }

    // ----------------------------------------------------------------- stored connections

    pub async fn connection(&self, user: &UserKey) -> Result<Option<UserConnection>, ConnectError> {
        self.tokens.load(user).await
    }

    /// A delegated access token for `user`, refreshed when it is about to expire. A refresh
    /// refused for a consent reason marks the connection [`ConnectionState::Revoked`] and
    /// returns [`ConnectError::Revoked`]; a revoked connection is not retried.
    pub async fn access_token_for(&self, user: &UserKey) -> Result<String, ConnectError> {
        self.token_for(user, false).await
    }

    /// Refreshes now, whatever the access token's expiry (e.g. after a 401 from Graph, or to
    /// check that a connection is still consented).
    pub async fn refresh_now(&self, user: &UserKey) -> Result<String, ConnectError> {
        self.token_for(user, true).await
    }

    /// Forgets a user's connection.
    pub async fn disconnect(&self, user: &UserKey) -> Result<(), ConnectError> {
        self.tokens.remove(user).await
    }

    fn refresh_lock(&self, user: &UserKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refresh_locks.lock().expect("refresh lock map");
        locks.entry(user.clone()).or_default().clone()
    }

    async fn token_for(&self, user: &UserKey, force: bool) -> Result<String, ConnectError> {
        // Refresh tokens rotate: two concurrent refreshes of one user would present the same
        // token twice, which the platform may treat as theft. One at a time per user.
        let lock = self.refresh_lock(user);
        let _guard = lock.lock().await;
        let mut conn = self.tokens.load(user).await?.ok_or(ConnectError::NotConnected)?;
        match &conn.state {
            ConnectionState::Connected => {}
            ConnectionState::Revoked { reason, code, .. } => {
                return Err(ConnectError::Revoked {
                    reason: *reason,
                    code: *code,
                    description: "The connection was revoked earlier.".into(),
                })
            }
            ConnectionState::SignInRequired { code } => {
                return Err(ConnectError::SignInRequired {
                    code: *code,
                    description: "The connection needs a new sign-in.".into(),
                })
            }
        }
        let margin = time::Duration::try_from(self.config.refresh_margin).unwrap_or(time::Duration::minutes(5));
        if !force && conn.tokens.expires_at - margin > OffsetDateTime::now_utc() {
            return Ok(conn.tokens.access_token);
        }
        let Some(refresh_token) = conn.tokens.refresh_token.clone() else {
            conn.state = ConnectionState::SignInRequired { code: None };
            conn.updated_at = OffsetDateTime::now_utc();
            self.tokens.save(&conn).await?;
            return Err(ConnectError::SignInRequired {
                code: None,
                description: "No refresh token (offline_access was not granted).".into(),
            });
        };
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.config.client_id.as_str()),
            ("refresh_token", refresh_token.as_str()),
            ("scope", conn.tokens.requested_scope.as_str()),
        ];
        let outcome = self.post_authenticated(&self.token_endpoint(&user.tenant_id), &form).await?;
        let now = OffsetDateTime::now_utc();
        match outcome {
            TokenOutcome::Ok(TokenResponse { access_token, expires_in, refresh_token: next, scope, .. }) => {
                conn.tokens.access_token = access_token.clone();
                conn.tokens.expires_at = expires_at(expires_in);
                // Rotation: keep the new refresh token; the old one is spent.
                if next.is_some() {
                    conn.tokens.refresh_token = next;
                }
                if scope.is_some() {
                    conn.tokens.granted_scope = scope;
                }
                conn.updated_at = now;
                self.tokens.save(&conn).await?;
                tracing::debug!(%user, "access token refreshed");
                Ok(access_token)
            }
            TokenOutcome::Refused(e) => {
                let description = e.description();
                if let Some((reason, code)) = revocation_of(&e) {
                    tracing::info!(%user, %reason, ?code, "refresh refused: connection revoked");
                    conn.state = ConnectionState::Revoked { reason, code, at: now };
                    conn.updated_at = now;
                    self.tokens.save(&conn).await?;
                    return Err(ConnectError::Revoked { reason, code, description });
                }
                if e.error == "invalid_grant" {
                    let code = e.code();
                    tracing::info!(%user, ?code, "refresh refused: sign-in required");
                    conn.state = ConnectionState::SignInRequired { code };
                    conn.updated_at = now;
                    self.tokens.save(&conn).await?;
                    return Err(ConnectError::SignInRequired { code, description });
                }
                Err(map_oauth_error(&e, ErrorContext::Token))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScopePurpose;

    fn client() -> ConnectClient {
        let config = Config::microsoft_cloud(
            "11111111-2222-4333-8444-555555555555",
            "secret",
            "https://vendor.example/cb",
            "https://vendor.example/admin-consent",
        )
        .with_scopes(vec![
            ScopePurpose::delegated("User.Read", "Sign you in"),
            ScopePurpose::delegated("Calendars.Read", "Read your meetings"),
            ScopePurpose::application("Calendars.Read", "Sync everyone's meetings"),
        ]);
        ConnectClient::new(config).unwrap()
    }

    fn query(url: &Url) -> HashMap<String, String> {
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn admin_consent_urls() {
        let c = client();
        let t: TenantHint = "6F1C2A4E-2B1D-4C8E-9A57-0D3E5B7C9F10".parse().unwrap();
        let url = c.admin_consent_url(&t, &ScopeChoice::StaticDefault, "st/1");
        assert_eq!(url.path(), "/6f1c2a4e-2b1d-4c8e-9a57-0d3e5b7c9f10/v2.0/adminconsent");
        assert_eq!(url.host_str(), Some("login.microsoftonline.com"));
        let q = query(&url);
        assert_eq!(q["client_id"], "11111111-2222-4333-8444-555555555555");
        assert_eq!(q["scope"], "https://graph.microsoft.com/.default");
        assert_eq!(q["redirect_uri"], "https://vendor.example/admin-consent");
        assert_eq!(q["state"], "st/1");
        assert!(url.as_str().contains("state=st%2F1"), "{url}");

        let named = ScopeChoice::Named(c.config().delegated_scopes());
        let url = c.admin_consent_url(&TenantHint::Organizations, &named, "s");
        assert_eq!(url.path(), "/organizations/v2.0/adminconsent");
        assert_eq!(query(&url)["scope"], "User.Read Calendars.Read");
        let url = c.admin_consent_url(&"Contoso.COM".parse().unwrap(), &named, "s");
        assert_eq!(url.path(), "/contoso.com/v2.0/adminconsent");

        let accord = ConnectClient::new(Config::accord(
            "https://localhost:8443/",
            "app",
            "secret",
            "https://vendor.example/cb",
            "https://vendor.example/admin-consent",
        ))
        .unwrap();
        let url = accord.admin_consent_url(&TenantHint::Organizations, &ScopeChoice::StaticDefault, "s");
        assert!(url.as_str().starts_with("https://localhost:8443/organizations/v2.0/adminconsent?"), "{url}");
        assert_eq!(accord.graph_base.as_str(), "https://localhost:8443/v1.0");
    }

    #[test]
    fn tenant_hints() {
        assert!(matches!("organizations".parse::<TenantHint>(), Ok(TenantHint::Organizations)));
        assert!("common".parse::<TenantHint>().is_err());
        assert!("consumers".parse::<TenantHint>().is_err());
        assert!("not a domain".parse::<TenantHint>().is_err());
        assert!("localhost".parse::<TenantHint>().is_err());
        assert!("../x.com".parse::<TenantHint>().is_err());
        assert!("00000000-0000-0000-0000-000000000000".parse::<TenantHint>().is_err());
        assert_eq!("fabrikam.test".parse::<TenantHint>().unwrap().segment(), "fabrikam.test");
        let json = serde_json::to_string(&TenantHint::Organizations).unwrap();
        assert_eq!(json, "\"organizations\"");
        assert_eq!(serde_json::from_str::<TenantHint>(&json).unwrap(), TenantHint::Organizations);
    }

    #[test]
    fn sign_in_urls_carry_pkce_nonce_and_state() {
        let c = client();
        let (url, pending) = c.begin_sign_in_with(
            &"contoso.com".parse().unwrap(),
            &[],
            &SignInOptions { login_hint: Some("alice@contoso.com".into()), ..Default::default() },
        );
        assert_eq!(url.path(), "/contoso.com/oauth2/v2.0/authorize");
        let q = query(&url);
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "openid profile offline_access User.Read Calendars.Read");
        assert_eq!(q["state"], pending.state);
        assert_eq!(q["nonce"], pending.nonce);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], pkce_challenge(&pending.verifier));
        assert_eq!(q["login_hint"], "alice@contoso.com");
        assert_eq!(q["redirect_uri"], "https://vendor.example/cb");
        assert!(pending.verifier.len() >= 43 && pending.verifier.len() <= 128);
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let (_, again) = c.begin_sign_in(&TenantHint::Organizations, &["Calendars.Read openid".into()]);
        assert_ne!(again.state, pending.state);
        assert_eq!(again.scope, "openid profile offline_access Calendars.Read");
    }

    #[tokio::test]
    async fn sign_in_callbacks_with_a_wrong_state_or_an_error() {
        let c = client();
        let (_, pending) = c.begin_sign_in(&TenantHint::Organizations, &[]);
        let e = c.complete_sign_in(&pending, "code=abc&state=forged").await.unwrap_err();
        assert!(matches!(e, ConnectError::StateInvalid));
        let e = c.complete_sign_in(&pending, "code=abc").await.unwrap_err();
        assert!(matches!(e, ConnectError::StateInvalid));
        let q = format!(
            "https://vendor.example/cb?error=access_denied&error_description=AADSTS50105%3a+not+assigned&state={}",
            pending.state
        );
        let e = c.complete_sign_in(&pending, &q).await.unwrap_err();
        assert!(matches!(e, ConnectError::NotAssigned { code: Some(50105), .. }), "{e:?}");
        let mut old = pending.clone();
        old.created_at -= time::Duration::hours(1);
        let e = c.complete_sign_in(&old, &format!("?code=x&state={}", old.state)).await.unwrap_err();
        assert!(matches!(e, ConnectError::StateInvalid), "an old pending sign-in is refused");
    }

    #[tokio::test]
    async fn admin_consent_callback_checks_state_first() {
        let c = client();
        let e = c.handle_admin_consent_callback("admin_consent=True&tenant=x&state=forged").await.unwrap_err();
        assert!(matches!(e, ConnectError::StateInvalid));
        let state = c.state_store().new_state("cust-1").await.unwrap();
        let q =
            format!("error=access_denied&error_description=AADSTS65004%3a+declined&error_subcode=cancel&state={state}");
        let out = c.process_admin_consent_callback(&q).await;
        assert_eq!(out.customer.as_deref(), Some("cust-1"));
        assert!(matches!(out.result, Err(ConnectError::Declined { code: Some(65004), .. })));
        // The state was consumed by the failed attempt.
        let e = c.handle_admin_consent_callback(&q).await.unwrap_err();
        assert!(matches!(e, ConnectError::StateInvalid));
        // A tenant that is not a GUID is never used.
        let state = c.state_store().new_state("cust-2").await.unwrap();
        let e = c
            .handle_admin_consent_callback(&format!("admin_consent=True&tenant=../evil&state={state}"))
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::TenantNotConfirmed { .. }), "{e:?}");
    }

    #[test]
    fn config_is_validated() {
        let bad = Config::new("http://login.example", "https://g/v1.0", "id", "s", "https://a/cb", "https://a/ac");
        assert!(matches!(ConnectClient::new(bad), Err(ConnectError::Config(_))));
        let bad =
            Config::new("https://login.example/tenant", "https://g/v1.0", "id", "s", "https://a/cb", "https://a/ac");
        assert!(matches!(ConnectClient::new(bad), Err(ConnectError::Config(_))));
        let bad = Config::microsoft_cloud("id", "s", "https://a/cb", "https://a/ac").with_extra_root_ca("not pem");
        assert!(matches!(ConnectClient::new(bad), Err(ConnectError::Config(_))));
        let cfg = Config::microsoft_cloud("id", "super-secret", "https://a/cb", "https://a/ac");
        assert!(cfg.is_microsoft_cloud());
        assert!(!format!("{cfg:?}").contains("super-secret"));
    }
}
