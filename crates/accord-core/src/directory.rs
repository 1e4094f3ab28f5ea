//! Directory objects: tenants, users, groups, roles, app registrations, service principals,
//! grants and assignments. These are plain data; rules live in the consent engine and services.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::{uuid, Uuid};

pub use crate::ids::{AppId, AppObjectId, GroupId, ServicePrincipalId, TenantId, UserId};

/// Who in a tenant may consent to apps on their own behalf (the tenant's authorizationPolicy).
/// The default is `All`, Entra's classic "Allow user consent for apps".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UserConsent {
    /// No self-consent: every app needs an administrator.
    None,
    /// `microsoft-user-default-low`: low-impact permissions, verified or same-tenant apps only.
    Low,
    /// `microsoft-user-default-legacy`: anything that does not require admin consent.
    #[default]
    All,
}

impl UserConsent {
    pub fn as_str(self) -> &'static str {
        match self {
            UserConsent::None => "none",
            UserConsent::Low => "low",
            UserConsent::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(UserConsent::None),
            "low" => Some(UserConsent::Low),
            "all" => Some(UserConsent::All),
            _ => None,
        }
    }

    /// The Microsoft app consent policy assigned for self-consent (`None` = consent disabled).
    pub fn permission_grant_policy(self) -> Option<&'static str> {
        match self {
            UserConsent::None => None,
            UserConsent::Low => Some("microsoft-user-default-low"),
            UserConsent::All => Some("microsoft-user-default-legacy"),
        }
    }
}

/// The tenant's admin-consent request workflow settings (adminConsentRequestPolicy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminConsentRequestPolicy {
    pub enabled: bool,
    /// Reviewers as user object ids or group object ids.
    pub reviewers: Vec<ReviewerRef>,
    pub expire_after_days: u32,
    pub notify_reviewers: bool,
    /// Increments on every update, as Graph's `version`.
    pub version: u32,
}

impl Default for AdminConsentRequestPolicy {
    fn default() -> Self {
        Self { enabled: false, reviewers: Vec::new(), expire_after_days: 30, notify_reviewers: true, version: 0 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum ReviewerRef {
    User(UserId),
    Group(GroupId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub display_name: String,
    /// Verified domains, lower case; the first is the default domain.
    pub domains: Vec<String>,
    pub user_consent: UserConsent,
    pub admin_consent_requests: AdminConsentRequestPolicy,
    /// How many times the row was written (0 for a new tenant). A write carries the revision it
    /// read and is refused when the row moved on meanwhile (`StoreError::Stale`).
    pub revision: u64,
}

impl Tenant {
    pub fn default_domain(&self) -> &str {
        self.domains.first().map(String::as_str).unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub tenant_id: TenantId,
    pub id: UserId,
    /// User principal name, stored lower case.
    pub upn: String,
    pub display_name: String,
    /// PHC string (argon2id); `None` for accounts that cannot sign in with a password.
    pub password_hash: Option<String>,
    pub enabled: bool,
    /// Consecutive failed sign-ins since the last success (drives lockout).
    pub failed_sign_ins: u32,
    pub locked_until: Option<OffsetDateTime>,
    /// When the user's sign-ins were last ended (revocation, password reset, disabling): tokens
    /// issued before it fail continuous access evaluation. Written only by `EndSignIns`.
    #[serde(default)]
    pub sign_ins_valid_from: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub tenant_id: TenantId,
    pub id: GroupId,
    pub display_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberKind {
    User,
    Group,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub group_id: GroupId,
    pub member_id: Uuid,
    pub kind: MemberKind,
}

/// Entra built-in directory roles that matter to consent (entra-reference.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum DirectoryRole {
    GlobalAdministrator,
    PrivilegedRoleAdministrator,
    CloudApplicationAdministrator,
    ApplicationAdministrator,
}

impl DirectoryRole {
    pub const ALL: [DirectoryRole; 4] = [
        DirectoryRole::GlobalAdministrator,
        DirectoryRole::PrivilegedRoleAdministrator,
        DirectoryRole::CloudApplicationAdministrator,
        DirectoryRole::ApplicationAdministrator,
    ];

    /// The role template id, as it appears in the `wids` claim.
    pub fn template_id(self) -> Uuid {
        match self {
            DirectoryRole::GlobalAdministrator => uuid!("62e90394-69f5-4237-9190-012177145e10"),
            DirectoryRole::PrivilegedRoleAdministrator => uuid!("e8611ab8-c189-46e8-94e1-60213ab1f814"),
            DirectoryRole::CloudApplicationAdministrator => uuid!("158c047a-c907-4556-b7ef-446551a6b5f7"),
            DirectoryRole::ApplicationAdministrator => uuid!("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"),
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            DirectoryRole::GlobalAdministrator => "Global Administrator",
            DirectoryRole::PrivilegedRoleAdministrator => "Privileged Role Administrator",
            DirectoryRole::CloudApplicationAdministrator => "Cloud Application Administrator",
            DirectoryRole::ApplicationAdministrator => "Application Administrator",
        }
    }

    pub fn from_display_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.display_name() == name)
    }

    pub fn from_template_id(id: Uuid) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.template_id() == id)
    }
}

impl std::fmt::Display for DirectoryRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.display_name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignInAudience {
    /// `AzureADMyOrg`: only the home tenant. The default.
    #[default]
    SingleOrg,
    /// `AzureADMultipleOrgs`: any tenant.
    MultipleOrgs,
}

impl SignInAudience {
    /// The scenario-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInAudience::SingleOrg => "single_org",
            SignInAudience::MultipleOrgs => "multiple_orgs",
        }
    }

    /// The Entra `signInAudience` value.
    pub fn entra_value(self) -> &'static str {
        match self {
            SignInAudience::SingleOrg => "AzureADMyOrg",
            SignInAudience::MultipleOrgs => "AzureADMultipleOrgs",
        }
    }
}

/// A delegated permission an API exposes (`oauth2PermissionScopes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionScope {
    pub id: Uuid,
    pub value: String,
    pub admin_consent_required: bool,
    pub admin_consent_display_name: String,
    pub admin_consent_description: String,
    pub user_consent_display_name: String,
    pub user_consent_description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppRoleMemberType {
    Application,
    User,
}

/// An app role (`appRoles`): an application permission when `Application` may hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRole {
    pub id: Uuid,
    pub value: String,
    pub display_name: String,
    pub description: String,
    pub allowed_member_types: Vec<AppRoleMemberType>,
}

/// What an app asks of one resource statically (`requiredResourceAccess`), by permission value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredResourceAccess {
    pub resource_app_id: AppId,
    pub delegated: Vec<String>,
    pub application: Vec<String>,
}

/// An app registration (the `application` object), living in its home tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Object id.
    pub id: AppObjectId,
    /// Application (client) id.
    pub app_id: AppId,
    pub home_tenant_id: TenantId,
    pub display_name: String,
    pub sign_in_audience: SignInAudience,
    /// Web (or, for a public client, mobile and desktop) redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Single-page-app redirect URIs (Graph `spa.redirectUris`): codes issued to them are
    /// redeemed only cross-origin, by the browser, without a client secret.
    #[serde(default)]
    pub spa_redirect_uris: Vec<String>,
    pub public_client: bool,
    pub verified_publisher: bool,
    pub identifier_uri: Option<String>,
    pub scopes: Vec<PermissionScope>,
    pub app_roles: Vec<AppRole>,
    pub required: Vec<RequiredResourceAccess>,
    /// Certificates the app may authenticate with (`private_key_jwt`).
    #[serde(default)]
    pub key_credentials: Vec<KeyCredential>,
    /// External identities the app may authenticate as (workload identity federation).
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
    /// Which groups the `groups` claim lists in tokens built from this app's manifest (its ID
    /// tokens; access tokens for it as a resource).
    #[serde(default)]
    pub group_membership_claims: GroupMembershipClaims,
    /// Optional claims added to its ID tokens and to access tokens for it.
    #[serde(default)]
    pub optional_claims: OptionalClaims,
    /// Client apps this API lets use some of its scopes without anyone consenting (Graph
    /// `api.preAuthorizedApplications`).
    #[serde(default)]
    pub pre_authorized: Vec<PreAuthorizedApplication>,
    /// The shape of access tokens for this API: 1 or 2 (Graph `api.requestedAccessTokenVersion`;
    /// Accord's registrations default to 2).
    #[serde(default = "default_token_version")]
    pub access_token_version: u8,
    /// Client apps (of the same home tenant) whose consent also consents to this API (Graph
    /// `api.knownClientApplications`): one prompt for a front end and its back end.
    #[serde(default)]
    pub known_client_applications: Vec<AppId>,
}

fn default_token_version() -> u8 {
    2
}

/// A client an API pre-authorizes, with the delegated permissions (scope ids) it may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreAuthorizedApplication {
    pub app_id: AppId,
    pub permission_ids: Vec<Uuid>,
}

/// Graph's `groupMembershipClaims`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GroupMembershipClaims {
    #[default]
    None,
    /// Security groups (every Accord group is one) and, in `wids`, directory roles.
    SecurityGroup,
    /// Directory roles only (`wids`).
    DirectoryRole,
    /// Only the groups assigned to the application.
    ApplicationGroup,
    /// Security groups, distribution lists and directory roles.
    All,
}

impl GroupMembershipClaims {
    pub const ALL: [GroupMembershipClaims; 5] = [
        GroupMembershipClaims::None,
        GroupMembershipClaims::SecurityGroup,
        GroupMembershipClaims::DirectoryRole,
        GroupMembershipClaims::ApplicationGroup,
        GroupMembershipClaims::All,
    ];

    /// The manifest / Graph value.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupMembershipClaims::None => "None",
            GroupMembershipClaims::SecurityGroup => "SecurityGroup",
            GroupMembershipClaims::DirectoryRole => "DirectoryRole",
            GroupMembershipClaims::ApplicationGroup => "ApplicationGroup",
            GroupMembershipClaims::All => "All",
        }
    }

    /// Case-insensitive, as Graph takes it.
    pub fn parse(s: &str) -> Option<GroupMembershipClaims> {
        Self::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether tokens list groups at all.
    pub fn lists_groups(self) -> bool {
        !matches!(self, GroupMembershipClaims::None | GroupMembershipClaims::DirectoryRole)
    }

    /// Whether tokens carry the user's directory roles (`wids`).
    pub fn lists_roles(self) -> bool {
        matches!(
            self,
            GroupMembershipClaims::SecurityGroup | GroupMembershipClaims::DirectoryRole | GroupMembershipClaims::All
        )
    }
}

/// Graph's `optionalClaims`, by the names of the claims each token type gets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OptionalClaims {
    #[serde(default)]
    pub id_token: Vec<String>,
    #[serde(default)]
    pub access_token: Vec<String>,
}

/// The optional claims Accord can emit (from what a user record holds).
pub const SUPPORTED_OPTIONAL_CLAIMS: &[&str] = &["email", "upn", "auth_time", "wids", "groups", "login_hint", "xms_cc"];

/// More groups than this in a JWT and the `groups` claim becomes an overage indicator
/// (`_claim_names`/`_claim_sources`), as in Entra.
pub const GROUPS_CLAIM_LIMIT: usize = 200;

impl Application {
    /// The scope values this API pre-authorizes `client` for.
    pub fn pre_authorized_scopes(&self, client: AppId) -> Vec<&str> {
        self.pre_authorized
            .iter()
            .filter(|p| p.app_id == client)
            .flat_map(|p| p.permission_ids.iter())
            .filter_map(|id| self.scopes.iter().find(|s| s.id == *id))
            .map(|s| s.value.as_str())
            .collect()
    }

    pub fn scope(&self, value: &str) -> Option<&PermissionScope> {
        self.scopes.iter().find(|s| s.value.eq_ignore_ascii_case(value))
    }

    pub fn app_role(&self, value: &str) -> Option<&AppRole> {
        self.app_roles.iter().find(|r| r.value.eq_ignore_ascii_case(value))
    }

    pub fn app_role_by_id(&self, id: Uuid) -> Option<&AppRole> {
        self.app_roles.iter().find(|r| r.id == id)
    }

    /// True when `resource` (an identifier URI or the app id as text) names this app.
    pub fn is_named_by(&self, resource: &str) -> bool {
        let resource = resource.trim_end_matches('/');
        resource.eq_ignore_ascii_case(&self.app_id.to_string())
            || self.identifier_uri.as_deref().is_some_and(|u| u.trim_end_matches('/').eq_ignore_ascii_case(resource))
    }

    pub fn required_for(&self, resource_app_id: AppId) -> Option<&RequiredResourceAccess> {
        self.required.iter().find(|r| r.resource_app_id == resource_app_id)
    }

    /// Whether `uri` is registered, on any platform (exact string match).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().chain(&self.spa_redirect_uris).any(|r| r == uri)
    }

    /// Whether `uri` is registered as a single-page-app redirect URI.
    pub fn is_spa_redirect_uri(&self, uri: &str) -> bool {
        self.spa_redirect_uris.iter().any(|r| r == uri)
    }

    /// The browser origins of the app's single-page-app redirect URIs: the only origins its
    /// cross-origin token requests are answered for.
    pub fn spa_origins(&self) -> Vec<String> {
        let mut out: Vec<String> = self.spa_redirect_uris.iter().filter_map(|u| origin_of(u)).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The serialized origin (`scheme://host[:port]`, RFC 6454) of an absolute http(s) URL, as a
/// browser sends it in `Origin`: lower-case scheme and host, the default port left out.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// A certificate registered on an app (Graph `keyCredentials`, `AsymmetricX509Cert`, usage
/// `Verify`): the app proves itself with a JWT signed by the certificate's private key
/// (`private_key_jwt`). Only the certificate is kept; its key never reaches Accord.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCredential {
    pub key_id: Uuid,
    pub display_name: String,
    /// The certificate, DER encoded, in standard base64 (Graph's `key`).
    pub certificate: String,
    /// The certificate's validity, as read from it.
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// When it was registered (none for certificates registered before Accord kept it):
    /// test mode's replication lag hides a certificate added moments ago.
    #[serde(default)]
    pub added_at: Option<OffsetDateTime>,
}

/// A federated identity credential (Graph `federatedIdentityCredential`): tokens an external
/// OIDC issuer signs for `subject`, with `audiences`, stand in for the app's own credential.
/// Matching is exact and case-sensitive, as in Entra.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedCredential {
    pub id: Uuid,
    /// Unique within the app, URL-friendly, immutable.
    pub name: String,
    pub issuer: String,
    pub subject: String,
    /// Exactly one value; `api://AzureADTokenExchange` by default.
    pub audiences: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The issuer's signing keys (a JWKS document), pinned for offline CI; when absent, the keys
    /// come from the issuer's discovery document.
    #[serde(default)]
    pub jwks: Option<String>,
}

/// The audience Entra expects on a federated token.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// At most this many federated credentials per application (as in Entra).
pub const MAX_FEDERATED_CREDENTIALS: usize = 20;

impl FederatedCredential {
    /// The first rule this credential breaks, as (field, why): Entra's limits on each property.
    /// Shared by scenario files, Graph and the admin center.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let name_ok = (3..=120).contains(&self.name.len())
            && self.name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Some(("name", "3 to 120 letters, digits, '-' or '_', starting with a letter or digit".into()));
        }
        if let Some(why) = issuer_problem(&self.issuer) {
            return Some(("issuer", why));
        }
        if self.subject.is_empty() || self.subject.len() > 600 || self.subject.trim() != self.subject {
            return Some(("subject", "1 to 600 characters, without leading or trailing spaces".into()));
        }
        match self.audiences.as_slice() {
            [a] if !a.is_empty() && a.len() <= 600 && a.trim() == a => {}
            _ => return Some(("audiences", "exactly one audience of 1 to 600 characters".into())),
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 600) {
            return Some(("description", "at most 600 characters".into()));
        }
        if let Some(jwks) = &self.jwks {
            let keys = serde_json::from_str::<serde_json::Value>(jwks).ok();
            if !keys.as_ref().is_some_and(|k| k["keys"].is_array()) {
                return Some(("jwks", "a JWKS document: a JSON object with a \"keys\" array".into()));
            }
        }
        None
    }
}

/// Whether `url` names the loopback host the way a developer writes it (`localhost`,
/// `127.0.0.1`, `[::1]`): the one place plain `http` is accepted for an issuer, a JWKS or (with
/// the server's switch) a notification URL. Where a request may actually go is the server's
/// egress policy.
pub fn is_loopback_url(url: &url::Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// Why `issuer` cannot be a federated credential's issuer: an absolute https URL (http only on
/// the loopback host), at most 600 characters, no spaces around it.
fn issuer_problem(issuer: &str) -> Option<String> {
    if issuer.is_empty() || issuer.len() > 600 || issuer.trim() != issuer {
        return Some("1 to 600 characters, without leading or trailing spaces".into());
    }
    let Ok(url) = url::Url::parse(issuer) else { return Some(format!("'{issuer}' is not an absolute URL")) };
    match url.scheme() {
        "https" => None,
        "http" if is_loopback_url(&url) => None,
        _ => Some(format!("'{issuer}' must use https (http only for localhost)")),
    }
}

/// The first rule a set of federated credentials breaks together: unique names, unique
/// issuer and subject pairs, at most [`MAX_FEDERATED_CREDENTIALS`].
pub fn federated_credentials_problem(list: &[FederatedCredential]) -> Option<(&'static str, String)> {
    if list.len() > MAX_FEDERATED_CREDENTIALS {
        return Some(("federatedIdentityCredentials", format!("at most {MAX_FEDERATED_CREDENTIALS} per application")));
    }
    for (i, a) in list.iter().enumerate() {
        for b in &list[..i] {
            if a.name.eq_ignore_ascii_case(&b.name) {
                return Some(("name", format!("'{}' is used twice", a.name)));
            }
            if a.issuer == b.issuer && a.subject == b.subject {
                return Some(("subject", format!("issuer '{}' and subject '{}' are used twice", a.issuer, a.subject)));
            }
        }
    }
    None
}

/// A client secret as stored: only a keyed hash of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSecret {
    pub id: Uuid,
    pub app_object_id: AppObjectId,
    pub display_name: String,
    /// The first three characters, shown in lists so people can tell secrets apart.
    pub hint: String,
    /// Hex of HMAC-SHA-256(server key, secret).
    pub hash: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

/// An app's instance in one tenant (enterprise application).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePrincipal {
    pub tenant_id: TenantId,
    pub id: ServicePrincipalId,
    pub app_id: AppId,
    pub display_name: String,
    pub app_owner_tenant_id: TenantId,
    pub enabled: bool,
    pub assignment_required: bool,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentType {
    /// Admin consent on behalf of every user of the tenant.
    AllPrincipals,
    /// One user's own consent.
    Principal,
}

impl ConsentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentType::AllPrincipals => "AllPrincipals",
            ConsentType::Principal => "Principal",
        }
    }
}

/// A delegated permission grant (oAuth2PermissionGrant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedGrant {
    pub tenant_id: TenantId,
    pub id: Uuid,
    /// Object id of the client's service principal.
    pub client_sp_id: ServicePrincipalId,
    /// Object id of the resource's service principal.
    pub resource_sp_id: ServicePrincipalId,
    pub consent_type: ConsentType,
    /// The user for `Principal` grants.
    pub principal_id: Option<UserId>,
    /// Scope values, in the order granted, no duplicates.
    pub scopes: Vec<String>,
    pub created_at: OffsetDateTime,
    /// A time-bound grant ends here (an Accord extension): from then on it grants nothing, and
    /// the next sweep deletes it as a revocation would.
    #[serde(default)]
    pub expires_at: Option<OffsetDateTime>,
}

impl DelegatedGrant {
    /// Whether the grant still grants at `now`.
    pub fn in_force(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrincipalType {
    User,
    Group,
    ServicePrincipal,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::User => "User",
            PrincipalType::Group => "Group",
            PrincipalType::ServicePrincipal => "ServicePrincipal",
        }
    }
}

/// An app role assignment: a user or group assigned to an enterprise app, or an application
/// permission granted to a client service principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRoleAssignment {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub principal_id: Uuid,
    pub principal_type: PrincipalType,
    /// The service principal of the app whose role is assigned.
    pub resource_sp_id: ServicePrincipalId,
    /// `DEFAULT_ACCESS_ROLE_ID` for default access.
    pub app_role_id: Uuid,
    pub created_at: OffsetDateTime,
    /// A time-bound assignment or application permission ends here (an Accord extension).
    #[serde(default)]
    pub expires_at: Option<OffsetDateTime>,
}

impl AppRoleAssignment {
    /// Whether the assignment still holds at `now`.
    pub fn in_force(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// An Office 365 calendar event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarEvent {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub owner_id: UserId,
    pub subject: String,
    pub body: String,
    pub location: String,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub attendees: Vec<String>,
    pub online_meeting_url: Option<String>,
    pub created_at: OffsetDateTime,
    pub modified_at: OffsetDateTime,
}
