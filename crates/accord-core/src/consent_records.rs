//! What consent leaves behind besides grants: admin-consent requests (the workflow), delegated
//! permission classifications (for the "low" user-consent policy), the audit log and the
//! notification outbox. Plain data; the rules live in the consent engine and server services.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ids::{AppId, ServicePrincipalId, TenantId, UserId};

/// One permission by resource and value, e.g. (Graph, "Calendars.Read").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PermissionKey {
    pub resource_app_id: AppId,
    pub value: String,
}

/// Graph's `userConsentRequest.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStatus {
    InProgress,
    Completed,
    Expired,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::InProgress => "InProgress",
            RequestStatus::Completed => "Completed",
            RequestStatus::Expired => "Expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "InProgress" => Some(RequestStatus::InProgress),
            "Completed" => Some(RequestStatus::Completed),
            "Expired" => Some(RequestStatus::Expired),
            _ => None,
        }
    }
}

/// The reviewer's verdict (the approval stage's `reviewResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewResult {
    NotReviewed,
    Approved,
    Denied,
    /// Denied, and the app's service principal disabled so no new requests can be filed.
    Blocked,
}

impl ReviewResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewResult::NotReviewed => "NotReviewed",
            ReviewResult::Approved => "Approved",
            ReviewResult::Denied => "Denied",
            ReviewResult::Blocked => "Blocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "NotReviewed" => Some(ReviewResult::NotReviewed),
            "Approved" => Some(ReviewResult::Approved),
            "Denied" => Some(ReviewResult::Denied),
            "Blocked" => Some(ReviewResult::Blocked),
            _ => None,
        }
    }
}

/// One user's request that an administrator consent to an app (Graph's `userConsentRequest`;
/// the per-app `appConsentRequest` is derived by grouping these by `client_app_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRequest {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub client_app_id: AppId,
    pub user_id: UserId,
    /// The justification the user typed.
    pub reason: String,
    /// The permissions asked for, in request order.
    pub permissions: Vec<PermissionKey>,
    pub status: RequestStatus,
    pub result: ReviewResult,
    pub reviewed_by: Option<UserId>,
    pub review_justification: Option<String>,
    pub created_at: OffsetDateTime,
    pub reviewed_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
}

/// A delegated permission's classification in a tenant (`delegatedPermissionClassification`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionClassification {
    pub tenant_id: TenantId,
    pub id: Uuid,
    /// The resource's service principal in this tenant.
    pub resource_sp_id: ServicePrincipalId,
    pub permission_id: Uuid,
    pub permission_value: String,
    /// `low` (Entra also previews `medium` and `high`).
    pub classification: String,
}

/// One line of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub at: OffsetDateTime,
    /// Who acted: a user object id, or `None` for the system (expiry job, scenario load).
    pub actor_id: Option<Uuid>,
    /// Display text for the actor (UPN or "system"), kept so the log reads after deletions.
    pub actor: String,
    /// Dotted action name, e.g. `consent.user.granted`, `request.approved`, `assignment.added`.
    pub action: String,
    /// The client app concerned, if any.
    pub app_id: Option<AppId>,
    /// Free-form details (scopes, target user, justification) as JSON.
    pub detail: serde_json::Value,
}

/// A message waiting for delivery (the durable outbox). Always visible in the store; sent by
/// SMTP when configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub tenant_id: TenantId,
    pub id: Uuid,
    pub recipient_user_id: UserId,
    /// Copied at enqueue time so delivery needs no join.
    pub recipient_address: String,
    /// e.g. `request.new`, `request.expiring`, `request.approved`, `request.denied`, `request.expired`.
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub created_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
    pub attempts: u32,
    pub last_error: Option<String>,
}
