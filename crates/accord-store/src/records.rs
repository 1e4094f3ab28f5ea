//! Protocol state records: signing keys, browser sessions, authorization codes and refresh
//! tokens. Secrets never appear here in clear: codes, sessions and refresh tokens are stored by
//! a keyed hash, and private keys are sealed with the server's master key.

use accord_core::ids::{AppId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    /// Signs new tokens.
    Active,
    /// Still published in the JWKS so tokens it signed keep verifying.
    Previous,
    /// No longer published.
    Retired,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Previous => "previous",
            KeyStatus::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(KeyStatus::Active),
            "previous" => Some(KeyStatus::Previous),
            "retired" => Some(KeyStatus::Retired),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// PKCS#8 DER of the RSA private key, sealed (AES-256-GCM, nonce prefixed).
    pub sealed_private_key: Vec<u8>,
    pub status: KeyStatus,
    pub created_at: OffsetDateTime,
}

/// A browser's single sign-on session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub auth_time: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A device's pending sign-in (RFC 8628). Stored by the hashes of its device code (which the
/// device polls with) and its user code (which a person types on the verification page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorizationRecord {
    pub device_code_hash: String,
    pub user_code_hash: String,
    /// The authority segment the device asked at (a tenant, `organizations` or `common`).
    pub tenant_segment: String,
    pub client_app_id: AppId,
    pub scope: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub status: DeviceStatus,
    /// The refresh-token family its redemption starts (revoked if the code is replayed).
    pub family_id: Uuid,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceStatus {
    /// Nobody has answered yet.
    Pending,
    /// A user signed in and consent allows the sign-in.
    Approved { tenant_id: TenantId, user_id: UserId, auth_time: OffsetDateTime },
    /// The user declined, or the sign-in was refused (not assigned, consent required, …).
    Refused(DeviceRefusal),
    /// The device has its tokens.
    Redeemed,
}

/// Why a device authorization was refused: the protocol error the device's poll receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRefusal {
    pub code: u32,
    pub error: String,
    pub message: String,
}

/// What polling with a device code finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRedemption {
    /// Approved: now redeemed, once.
    Approved(DeviceAuthorizationRecord),
    Pending,
    Refused(DeviceRefusal),
    /// Redeemed before: a replay.
    AlreadyRedeemed(DeviceAuthorizationRecord),
    Expired,
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: Uuid,
    pub tenant_id: TenantId,
    pub client_app_id: AppId,
    pub user_id: UserId,
    /// The scope the family was granted (space-separated, full values).
    pub scope: String,
    pub auth_time: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Set when the token was exchanged for a successor.
    pub used_at: Option<OffsetDateTime>,
    /// Set when the whole family was revoked (reuse detected, sign-out, consent revoked).
    pub revoked: bool,
    /// Issued to a single-page app: redeemable only cross-origin, never extended.
    pub spa: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    Rotated,
    /// The old token had already been used: the family is now revoked.
    ReuseDetected,
    /// The family was revoked earlier.
    Revoked,
    NotFound,
}

/// One entry of a calendar's change journal (delta queries): the event's latest change, numbered
/// in the journal's sequence, with the event as it is now (`None` once deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarChange {
    pub seq: i64,
    pub event_id: Uuid,
    pub event: Option<accord_core::directory::CalendarEvent>,
}

/// How long an expired refresh token is still remembered: a client returning after its token
/// ran out is told it expired (AADSTS70008, as Entra says for a token it can still read), not
/// that it was never issued. Revoked or used ones are remembered as long (reuse detection).
pub const EXPIRED_REFRESH_TOKEN_MEMORY_DAYS: i64 = 30;

/// How long the calendar journal keeps a deleted event's tombstone, and so how long a delta
/// token stays usable: an older token may have missed a deletion and answers `SyncStateNotFound`.
pub const CALENDAR_CHANGE_RETENTION_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// Notifications flow.
    Active,
    /// The subscriber must reauthorize (its access changed or its token expired); notifications
    /// wait in the outbox until it does.
    ReauthorizationRequired,
    /// Ended by the platform (`subscriptionRemoved` was sent); kept until its outbox drains.
    Removed,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::ReauthorizationRequired => "reauthorization_required",
            SubscriptionStatus::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(SubscriptionStatus::Active),
            "reauthorization_required" => Some(SubscriptionStatus::ReauthorizationRequired),
            "removed" => Some(SubscriptionStatus::Removed),
            _ => None,
        }
    }
}

/// A Graph change-notification subscription on one mailbox's events.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSubscription {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub client_app_id: AppId,
    /// The signed-in user of a delegated subscription; `None` for an app-only one.
    pub creator_id: Option<UserId>,
    pub mailbox_id: UserId,
    /// The resource as the subscriber wrote it (`me/events`, `/users/{id}/events`, …).
    pub resource: String,
    /// Comma-separated, as Graph keeps it: `created,updated,deleted`.
    pub change_types: String,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    /// The subscriber's `clientState`, sealed with the master key.
    pub sealed_client_state: Option<String>,
    pub tls_version: String,
    /// The authorizing token's delegated scopes or app roles, space-separated.
    pub permissions: String,
    pub authorized_at: OffsetDateTime,
    pub access_expires_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub status: SubscriptionStatus,
    /// When the last `reauthorizationRequired` went out.
    pub noticed_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphNotificationKind {
    /// To the subscription's `notificationUrl`.
    Change,
    /// To its `lifecycleNotificationUrl`.
    Lifecycle,
}

impl GraphNotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GraphNotificationKind::Change => "change",
            GraphNotificationKind::Lifecycle => "lifecycle",
        }
    }
}

/// One queued change or lifecycle notification. The payload is the notification's JSON without
/// `clientState`, which is added from the subscription when it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphNotification {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub tenant_id: TenantId,
    pub kind: GraphNotificationKind,
    pub payload: String,
    pub created_at: OffsetDateTime,
    pub next_attempt_at: OffsetDateTime,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// One change of a customer's consent for an app (`consent_events`), as consent webhooks tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentEvent {
    pub seq: i64,
    pub tenant_id: TenantId,
    /// The client app the event is about.
    pub app_id: AppId,
    /// `consent.granted`, `consent.changed`, `consent.revoked`, `assignment.added`,
    /// `assignment.removed`, `app.disabled`, `app.enabled`, `consent_request.filed`,
    /// `consent_request.approved`, `consent_request.denied`, `consent_request.expired`, …
    pub kind: String,
    /// The event's details (JSON object).
    pub data: String,
    pub at: OffsetDateTime,
}

/// A vendor's endpoint for its app's consent events, from every tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentWebhook {
    pub id: Uuid,
    pub app_id: AppId,
    pub url: String,
    /// Signing secrets (`whsec_…`), sealed with the master key, newest first: the newest signs,
    /// and during a rotation the previous one signs too.
    pub sealed_secrets: Vec<String>,
    pub created_at: OffsetDateTime,
    /// The last consent event handed to the outbox.
    pub cursor: i64,
}

/// One delivery of one event to one webhook; the delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_seq: i64,
    pub kind: String,
    pub payload: String,
    pub created_at: OffsetDateTime,
    /// `None` once delivered or given up.
    pub next_attempt_at: Option<OffsetDateTime>,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<OffsetDateTime>,
}

/// Which audit events to read: newest first (ties by id), narrowed by client app, action prefix
/// and time range, continuing after the last event of the previous page (keyset paging: a page
/// costs the same however deep it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub app_id: Option<AppId>,
    /// Actions starting with this (`consent.`), compared exactly (no wildcards); empty: all.
    pub action_prefix: String,
    /// Events at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Events before this instant.
    pub until: Option<OffsetDateTime>,
    /// The last event of the previous page: the page continues with older events.
    pub after: Option<AuditPosition>,
    pub limit: u32,
}

impl AuditQuery {
    /// The newest `limit` events, of one app when given.
    pub fn latest(app_id: Option<AppId>, limit: u32) -> Self {
        AuditQuery { app_id, limit, ..Default::default() }
    }
}

/// Where an audit page ended: the time and id of its last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPosition {
    pub at: OffsetDateTime,
    pub id: Uuid,
}

/// A page of a tenant's users or groups: in display-name order (case-folded; ties by object
/// id), narrowed to those whose display name — or, for users, UPN — starts with `prefix` (any
/// case), or to the object whose id `prefix` is; continuing after the last one of the previous
/// page. Indexes serve it: a page costs the same at 100 and at 100,000 users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameQuery {
    pub prefix: String,
    /// Which text the prefix is compared with.
    pub field: NameField,
    pub after: Option<NamePosition>,
    pub limit: u32,
}

/// What a [`NameQuery`]'s prefix is compared with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameField {
    /// The display name or (users) the UPN, or an object id: the admin center's search.
    #[default]
    NameOrUpn,
    /// The display name only (Graph's `startswith(displayName, …)`).
    DisplayName,
    /// The UPN only (Graph's `startswith(userPrincipalName, …)`).
    Upn,
}

/// Where a page of users or groups ended: the last one's case-folded display name and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePosition {
    pub name_key: String,
    pub id: Uuid,
}

impl NamePosition {
    /// The position of an object with this display name and id.
    pub fn of(display_name: &str, id: impl Into<Uuid>) -> Self {
        NamePosition { name_key: crate::sql::fold(display_name), id: id.into() }
    }
}

/// One group a user (or group) is in, directly or through nested groups: the group's id and
/// name, and `via`, the group below it on the way (`None` for a direct membership).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub group_id: accord_core::ids::GroupId,
    pub group_name: String,
    pub via: Option<accord_core::ids::GroupId>,
}

/// A page of a group's members: users first, then groups, each in display-name order (ties
/// by id), continuing after `after`. Indexes serve it whatever the size of the group or the
/// depth of its nesting: a page of the root of 10,000 nested groups costs what a page of a
/// small group does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberQuery {
    /// Members of nested groups too (each once, however many ways; never the group itself).
    pub transitive: bool,
    /// Only users who are not direct members (the admin center's "through nested groups").
    pub nested_users_only: bool,
    pub after: Option<MemberPosition>,
    pub limit: u32,
}

/// Where a page of members ended: the last member's kind, folded display name and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPosition {
    pub kind: accord_core::directory::MemberKind,
    pub name_key: String,
    pub id: Uuid,
}

/// A user or a group, as a member list holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryObject {
    User(accord_core::directory::User),
    Group(accord_core::directory::Group),
}

impl DirectoryObject {
    /// This member's position in a member list.
    pub fn position(&self) -> MemberPosition {
        let (kind, name, id) = match self {
            DirectoryObject::User(u) => (accord_core::directory::MemberKind::User, &u.display_name, u.id.as_uuid()),
            DirectoryObject::Group(g) => (accord_core::directory::MemberKind::Group, &g.display_name, g.id.as_uuid()),
        };
        MemberPosition { kind, name_key: crate::sql::fold(name), id }
    }
}
