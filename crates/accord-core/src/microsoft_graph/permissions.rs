//! The Graph permissions each group of operations accepts: a token needs one of the delegated
//! ones in `scp`, or one of the application ones (`…_APP`, else the same list) in `roles`.
//! This is the one table: the Graph handlers enforce it, the OpenAPI document publishes it, and
//! the administration services check app-only actors against it (`Operation::app_permission`),
//! so none of the three can disagree. Directory roles are checked on top, in the services.

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
/// Groups and their members: `GroupMember.Read.All` is the least privilege Graph documents
/// for listing groups, reading one and its (transitive) members.
pub const GROUP_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
pub const GROUP_READ_APP: &[&str] =
    &["GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
pub const GROUP_WRITE: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"];
pub const GROUP_WRITE_APP: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
/// A user's group memberships (`transitiveMemberOf`, `getMemberObjects`) of another user; one's
/// own need only `ME`.
pub const MEMBERSHIP_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "User.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
pub const MEMBERSHIP_READ_APP: &[&str] =
    &["GroupMember.Read.All", "Group.Read.All", "User.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"];
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

/// Directory reads through the administration services (lists, details, requests).
pub const DIRECTORY_READ_APP: &[&str] =
    &["Directory.Read.All", "Directory.ReadWrite.All", "User.Read.All", "Application.Read.All"];
/// As in Entra: neither User.ReadWrite.All nor Directory.ReadWrite.All sets passwords.
pub const PASSWORD_RESET_APP: &[&str] = &["User-PasswordProfile.ReadWrite.All"];
pub const AUDIT_READ_APP: &[&str] = &["AuditLog.Read.All", "Directory.Read.All"];

/// Calendars (the handler grades these into read-basic, read and read-write levels).
pub const CALENDAR_READ: &[&str] = &[
    "Calendars.ReadBasic",
    "Calendars.Read",
    "Calendars.Read.Shared",
    "Calendars.ReadWrite",
    "Calendars.ReadWrite.Shared",
];
pub const CALENDAR_READ_APP: &[&str] = &["Calendars.ReadBasic.All", "Calendars.Read", "Calendars.ReadWrite"];
/// The grades the handler tells apart: basic (no body, attendees or meeting), full read, write.
pub const CALENDAR_BASIC: &[&str] = &["Calendars.ReadBasic"];
pub const CALENDAR_BASIC_APP: &[&str] = &["Calendars.ReadBasic.All"];
pub const CALENDAR_FULL_READ: &[&str] = &["Calendars.Read", "Calendars.Read.Shared"];
pub const CALENDAR_FULL_READ_APP: &[&str] = &["Calendars.Read"];
pub const CALENDAR_WRITE: &[&str] = &["Calendars.ReadWrite", "Calendars.ReadWrite.Shared"];
pub const CALENDAR_WRITE_APP: &[&str] = &["Calendars.ReadWrite"];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn set(lists: &[&[&str]]) -> BTreeSet<String> {
        lists.iter().flat_map(|l| l.iter().map(|p| p.to_string())).collect()
    }

    #[test]
    fn calendar_read_is_exactly_the_graded_permissions() {
        // The OpenAPI document publishes CALENDAR_READ; the handler grades by the finer lists.
        assert_eq!(set(&[CALENDAR_READ]), set(&[CALENDAR_BASIC, CALENDAR_FULL_READ, CALENDAR_WRITE]));
        assert_eq!(set(&[CALENDAR_READ_APP]), set(&[CALENDAR_BASIC_APP, CALENDAR_FULL_READ_APP, CALENDAR_WRITE_APP]));
    }

    #[test]
    fn application_lists_hold_no_delegated_only_permission() {
        // Directory.AccessAsUser.All and the *.Shared scopes exist only as delegated permissions.
        for list in
            [USER_READ_APP, USER_WRITE_APP, GROUP_READ_APP, APP_WRITE_APP, CALENDAR_READ_APP, DIRECTORY_READ_APP]
        {
            assert!(list.iter().all(|p| *p != "Directory.AccessAsUser.All" && !p.ends_with(".Shared")), "{list:?}");
        }
    }
}
