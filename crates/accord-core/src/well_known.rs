//! Identifiers that are the same in every Entra-compatible deployment.

use uuid::{uuid, Uuid};

use crate::ids::{AppId, TenantId};

/// Microsoft Graph's application (client) id.
pub const GRAPH_APP_ID: AppId = AppId::from_uuid(uuid!("00000003-0000-0000-c000-000000000000"));
/// Microsoft Graph's identifier URI: unprefixed scopes belong to it.
pub const GRAPH_RESOURCE_URI: &str = "https://graph.microsoft.com";
/// The tenant that owns Microsoft's first-party apps (Graph's `appOwnerOrganizationId`).
pub const MICROSOFT_SERVICES_TENANT_ID: TenantId = TenantId::from_uuid(uuid!("f8cdef31-a31e-4b4a-93e4-5f571e91255a"));
/// `appRoleId` of an assignment that grants default access (no specific role).
pub const DEFAULT_ACCESS_ROLE_ID: Uuid = Uuid::nil();
