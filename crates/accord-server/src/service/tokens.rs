//! Minting tokens with the Entra v2 claim set (entra-reference.md §8). Claims are built here
//! and nowhere else, so every grant type issues the same shapes.

use super::ServiceError;
use crate::state::AppState;
use accord_core::directory::{
    Application, DirectoryRole, GroupMembershipClaims, PrincipalType, User, GROUPS_CLAIM_LIMIT,
};
use accord_core::ids::{AppId, GroupId, ServicePrincipalId, TenantId};
use accord_core::scope::OidcScopes;
use accord_core::well_known::GRAPH_APP_ID;
use accord_store::Store;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// The `aud` of tokens for a resource: Graph keeps its URI (as Entra's v1 Graph tokens do);
/// other APIs get their application id, as v2 tokens carry.
pub fn audience(resource: &Application) -> String {
    if resource.app_id == GRAPH_APP_ID {
        accord_core::well_known::GRAPH_RESOURCE_URI.to_string()
    } else {
        resource.app_id.to_string()
    }
}

/// Per-app subject: stable for a (user, app) pair, different across apps.
pub fn pairwise_subject(state: &AppState, object_id: Uuid, client_app_id: AppId) -> String {
    let h = state.keyring.secret_hash(&format!("sub:{object_id}:{client_app_id}"));
    B64URL.encode(&h.as_bytes()[..32])
}

fn base_claims(state: &AppState, tenant_id: TenantId, aud: &str, lifetime: i64) -> Map<String, Value> {
    let now = accord_core::clock::now().unix_timestamp();
    let mut c = Map::new();
    c.insert("aud".into(), json!(aud));
    c.insert("iss".into(), json!(state.settings.issuer(&tenant_id.to_string())));
    c.insert("iat".into(), json!(now));
    c.insert("nbf".into(), json!(now));
    c.insert("exp".into(), json!(now + lifetime));
    c.insert("tid".into(), json!(tenant_id));
    c.insert("uti".into(), json!(B64URL.encode(crate::crypto::random_bytes::<16>())));
    c.insert("ver".into(), json!("2.0"));
    c
}

/// What a token's `groups` claim says, as the app's `groupMembershipClaims` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupsClaim {
    /// The app asks for no groups.
    Omitted,
    Listed(Vec<GroupId>),
    /// More than [`GROUPS_CLAIM_LIMIT`]: the token points to where the list is served.
    Overage,
}

/// The groups of `user` that tokens built from `app`'s manifest list: every group the user
/// belongs to, directly or through nested groups — or, for `ApplicationGroup`, only those of
/// them assigned to the app in this tenant.
pub async fn groups_claim(
    store: &dyn Store,
    tenant_id: TenantId,
    user: &User,
    app: &Application,
) -> Result<GroupsClaim, ServiceError> {
    let setting = app.group_membership_claims;
    if !setting.lists_groups() {
        return Ok(GroupsClaim::Omitted);
    }
    let mut groups = store.transitive_groups_of(tenant_id, user.id.into()).await?;
    if setting == GroupMembershipClaims::ApplicationGroup {
        let assigned: Vec<Uuid> = match store.service_principal_by_app_id(tenant_id, app.app_id).await? {
            Some(sp) => store
                .app_role_assignments_to(tenant_id, sp.id)
                .await?
                .into_iter()
                .filter(|a| a.principal_type == PrincipalType::Group)
                .map(|a| a.principal_id)
                .collect(),
            None => Vec::new(),
        };
        groups.retain(|g| assigned.contains(&g.as_uuid()));
    }
    groups.sort();
    groups.dedup();
    Ok(if groups.len() > GROUPS_CLAIM_LIMIT { GroupsClaim::Overage } else { GroupsClaim::Listed(groups) })
}

/// Adds the groups claim (or its overage indicator) and the optional claims `names` asks for.
fn add_membership_and_optional_claims(
    state: &AppState,
    c: &mut Map<String, Value>,
    user: &User,
    roles: &[DirectoryRole],
    groups: &GroupsClaim,
    wids: bool,
    names: &[String],
) {
    match groups {
        GroupsClaim::Omitted => {}
        GroupsClaim::Listed(ids) => {
            c.insert("groups".into(), json!(ids));
        }
        GroupsClaim::Overage => {
            // Where the full list is: Accord's own Graph (Entra names an Azure AD Graph URL,
            // which clients are told to ignore and replace by Microsoft Graph's).
            let endpoint = format!("{}/v1.0/users/{}/getMemberObjects", state.settings.public_url, user.id);
            c.insert("_claim_names".into(), json!({"groups": "src1"}));
            c.insert("_claim_sources".into(), json!({"src1": {"endpoint": endpoint}}));
        }
    }
    if (wids || names.iter().any(|n| n == "wids")) && !roles.is_empty() {
        let ids: Vec<String> = roles.iter().map(|r| r.template_id().to_string()).collect();
        c.insert("wids".into(), json!(ids));
    }
    for name in names {
        match name.as_str() {
            "email" | "upn" | "login_hint" => {
                c.entry(name.clone()).or_insert_with(|| json!(user.upn));
            }
            _ => {}
        }
    }
}

pub struct UserTokenInput<'a> {
    pub tenant_id: TenantId,
    pub client: &'a Application,
    pub resource: &'a Application,
    pub user: &'a User,
    pub roles: &'a [DirectoryRole],
    /// Delegated permission values for `scp`.
    pub scopes: &'a [String],
    /// How the client authenticated (the `azpacr` claim).
    pub client_auth: ClientAuth,
    /// The client's app roles held by the user; carried when the token is for the client's own API.
    pub app_roles: &'a [String],
    /// The `groups` claim, as the resource's manifest asks.
    pub groups: &'a GroupsClaim,
    /// The client handles claims challenges and the resource evaluates access continuously:
    /// `xms_cc` is carried and the token lives [`Settings::cae_access_token_seconds`].
    pub continuous_access: bool,
}

/// Whether a token for `resource` is a continuous-access one: the client declared `cp1` and the
/// resource asks for `xms_cc` (Graph does; another API through its optional claims).
pub fn continuous_access(resource: &Application, client_declared_cp1: bool) -> bool {
    client_declared_cp1
        && (resource.app_id == GRAPH_APP_ID || resource.optional_claims.access_token.iter().any(|c| c == "xms_cc"))
}

/// Seconds an access token lives.
pub fn access_token_lifetime(state: &AppState, continuous_access: bool) -> i64 {
    if continuous_access {
        state.settings.cae_access_token_seconds
    } else {
        state.settings.access_token_seconds
    }
}

/// How a client proved itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A public client: no credential (`azpacr` 0).
    Public,
    /// A client secret (1).
    Secret,
    /// A certificate: a signed client assertion (2).
    Certificate,
    /// A federated credential: an external issuer's token as the client assertion (2, as for
    /// any signed assertion).
    Federated,
}

impl ClientAuth {
    /// The `azpacr` (v2) / `appidacr` (v1) value.
    pub fn acr(self) -> &'static str {
        match self {
            ClientAuth::Public => "0",
            ClientAuth::Secret => "1",
            ClientAuth::Certificate | ClientAuth::Federated => "2",
        }
    }
}

pub fn user_access_token(state: &AppState, t: &UserTokenInput) -> String {
    let lifetime = access_token_lifetime(state, t.continuous_access);
    let mut c = base_claims(state, t.tenant_id, &audience(t.resource), lifetime);
    if t.continuous_access {
        c.insert("xms_cc".into(), json!(["cp1"]));
    }
    c.insert("azp".into(), json!(t.client.app_id));
    c.insert("azpacr".into(), json!(t.client_auth.acr()));
    c.insert("oid".into(), json!(t.user.id));
    c.insert("sub".into(), json!(pairwise_subject(state, t.user.id.into(), t.client.app_id)));
    c.insert("name".into(), json!(t.user.display_name));
    c.insert("preferred_username".into(), json!(t.user.upn));
    c.insert("scp".into(), json!(t.scopes.join(" ")));
    // Access tokens carry the user's directory roles (Graph authorizes admin calls by them).
    let names = &t.resource.optional_claims.access_token;
    add_membership_and_optional_claims(state, &mut c, t.user, t.roles, t.groups, true, names);
    if t.resource.app_id == t.client.app_id && !t.app_roles.is_empty() {
        c.insert("roles".into(), json!(t.app_roles));
    }
    c.insert("idtyp".into(), json!("user"));
    v1_shape(state, &mut c, t.tenant_id, t.resource);
    state.signer.active().sign(&Value::Object(c))
}

/// An API that accepts v1 access tokens (`requestedAccessTokenVersion` 1) gets Entra's v1 claim
/// names: `appid`/`appidacr` for the client, `upn` and `unique_name` for the user, `ver` "1.0",
/// the v1 issuer (no `/v2.0`), and as audience its App ID URI when it has one. Graph's tokens
/// keep their shape.
fn v1_shape(state: &AppState, c: &mut Map<String, Value>, tenant_id: TenantId, resource: &Application) {
    if resource.access_token_version != 1 || resource.app_id == GRAPH_APP_ID {
        return;
    }
    for (v2, v1) in [("azp", "appid"), ("azpacr", "appidacr")] {
        if let Some(v) = c.remove(v2) {
            c.insert(v1.into(), v);
        }
    }
    if let Some(upn) = c.remove("preferred_username") {
        c.insert("upn".into(), upn.clone());
        c.insert("unique_name".into(), upn);
    }
    c.insert("ver".into(), json!("1.0"));
    c.insert("iss".into(), json!(state.settings.issuer_v1(&tenant_id.to_string())));
    if let Some(uri) = &resource.identifier_uri {
        c.insert("aud".into(), json!(uri));
    }
}

pub fn app_access_token(
    state: &AppState,
    tenant_id: TenantId,
    client: &Application,
    client_sp_id: ServicePrincipalId,
    resource: &Application,
    roles: &[String],
    client_auth: ClientAuth,
) -> String {
    let mut c = base_claims(state, tenant_id, &audience(resource), state.settings.access_token_seconds);
    c.insert("azp".into(), json!(client.app_id));
    c.insert("azpacr".into(), json!(client_auth.acr()));
    c.insert("oid".into(), json!(client_sp_id));
    c.insert("sub".into(), json!(client_sp_id));
    c.insert("idtyp".into(), json!("app"));
    if !roles.is_empty() {
        c.insert("roles".into(), json!(roles));
    }
    v1_shape(state, &mut c, tenant_id, resource);
    state.signer.active().sign(&Value::Object(c))
}

pub struct IdTokenInput<'a> {
    pub tenant_id: TenantId,
    pub client: &'a Application,
    pub user: &'a User,
    pub oidc: OidcScopes,
    pub nonce: Option<&'a str>,
    pub auth_time: OffsetDateTime,
    /// The client's app roles held by the user (`roles` claim).
    pub app_roles: &'a [String],
    /// The user's directory roles (`wids`, when the client's manifest asks).
    pub roles: &'a [DirectoryRole],
    /// The `groups` claim, as the client's manifest asks.
    pub groups: &'a GroupsClaim,
}

pub fn id_token(state: &AppState, t: &IdTokenInput) -> String {
    let mut c = base_claims(state, t.tenant_id, &t.client.app_id.to_string(), state.settings.access_token_seconds);
    c.insert("oid".into(), json!(t.user.id));
    c.insert("sub".into(), json!(pairwise_subject(state, t.user.id.into(), t.client.app_id)));
    c.insert("auth_time".into(), json!(t.auth_time.unix_timestamp()));
    if t.oidc.profile {
        c.insert("name".into(), json!(t.user.display_name));
    }
    // Entra sends preferred_username whenever it can; MSAL keys accounts on it.
    c.insert("preferred_username".into(), json!(t.user.upn));
    if t.oidc.email {
        c.insert("email".into(), json!(t.user.upn));
    }
    if !t.app_roles.is_empty() {
        c.insert("roles".into(), json!(t.app_roles));
    }
    let wids = t.client.group_membership_claims.lists_roles();
    add_membership_and_optional_claims(
        state,
        &mut c,
        t.user,
        t.roles,
        t.groups,
        wids,
        &t.client.optional_claims.id_token,
    );
    if let Some(nonce) = t.nonce {
        c.insert("nonce".into(), json!(nonce));
    }
    state.signer.active().sign(&Value::Object(c))
}

/// `client_info`: base64url of `{"uid","utid"}`; MSAL builds `home_account_id` from it.
pub fn client_info(user: &User) -> String {
    B64URL.encode(json!({"uid": user.id, "utid": user.tenant_id}).to_string())
}
