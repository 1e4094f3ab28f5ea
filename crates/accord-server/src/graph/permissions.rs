//! The Graph permissions each group of operations accepts: a token needs one of the delegated
//! ones in `scp`, or one of the application ones (`…_APP`, else the same list) in `roles`. The
//! handlers enforce these lists and the OpenAPI document (`openapi.rs`) publishes them, so the
//! two cannot disagree. Directory roles are checked on top, in `administration.rs`.

pub const ME: &[&str] = &[
    "User.Read",
    "User.ReadWrite",
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
pub const USER_READ_ANY: &[&str] = &[
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
pub const USER_READ_APP: &[&str] =
    &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
pub const USER_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"];
pub const USER_WRITE_APP: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
pub const GROUP_READ: &[&str] = &[
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
pub const GROUP_READ_APP: &[&str] =
    &["Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
pub const GROUP_WRITE: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"];
pub const GROUP_WRITE_APP: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
pub const ROLE_READ: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
pub const ROLE_READ_APP: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub const ROLE_WRITE: &[&str] = &["RoleManagement.ReadWrite.Directory"];
pub const APP_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
pub const APP_READ_APP: &[&str] =
    &["Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
pub const APP_WRITE: &[&str] = &["Application.ReadWrite.All", "Directory.AccessAsUser.All"];
pub const APP_WRITE_APP: &[&str] = &["Application.ReadWrite.All"];
pub const ASSIGNMENT_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
pub const ASSIGNMENT_READ_APP: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub const ASSIGNMENT_WRITE: &[&str] = &["AppRoleAssignment.ReadWrite.All"];
pub const GRANT_READ: &[&str] = &[
    "Directory.Read.All",
    "DelegatedPermissionGrant.Read.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
pub const GRANT_READ_APP: &[&str] = &[
    "Directory.Read.All",
    "DelegatedPermissionGrant.Read.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.ReadWrite.All",
];
pub const GRANT_WRITE: &[&str] = &["DelegatedPermissionGrant.ReadWrite.All"];
pub const AUTH_POLICY_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.Authorization"];
pub const AUTH_POLICY_READ_APP: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.Authorization"];
pub const AUTH_POLICY_WRITE: &[&str] = &["Policy.ReadWrite.Authorization"];
pub const REQUEST_POLICY_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.ConsentRequest"];
pub const REQUEST_POLICY_WRITE: &[&str] = &["Policy.ReadWrite.ConsentRequest"];
pub const REQUESTS_READ: &[&str] = &["ConsentRequest.Read.All", "ConsentRequest.ReadWrite.All"];
pub const REQUESTS_WRITE: &[&str] = &["ConsentRequest.ReadWrite.All"];
pub const CLASSIFICATION_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
    "Policy.ReadWrite.PermissionGrant",
];
pub const CLASSIFICATION_READ_APP: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Policy.ReadWrite.PermissionGrant",
];
pub const CLASSIFICATION_WRITE: &[&str] = &["Policy.ReadWrite.PermissionGrant"];

/// Calendars (the handler grades these into read-basic, read and read-write levels).
pub const CALENDAR_READ: &[&str] = &[
    "Calendars.ReadBasic",
    "Calendars.Read",
    "Calendars.Read.Shared",
    "Calendars.ReadWrite",
    "Calendars.ReadWrite.Shared",
];
pub const CALENDAR_READ_APP: &[&str] = &["Calendars.ReadBasic.All", "Calendars.Read", "Calendars.ReadWrite"];
pub const CALENDAR_WRITE: &[&str] = &["Calendars.ReadWrite", "Calendars.ReadWrite.Shared"];
pub const CALENDAR_WRITE_APP: &[&str] = &["Calendars.ReadWrite"];
