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
    pub redirect_uris: Vec<String>,
    pub public_client: bool,
    pub verified_publisher: bool,
    pub identifier_uri: Option<String>,
    pub scopes: Vec<PermissionScope>,
    pub app_roles: Vec<AppRole>,
    pub required: Vec<RequiredResourceAccess>,
    /// Certificates the app may authenticate with (`private_key_jwt`).
    #[serde(default)]
    pub key_credentials: Vec<KeyCredential>,
}

impl Application {
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
