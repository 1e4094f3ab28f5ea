//! The built-in Microsoft Graph resource: the permissions Accord's Graph-compatible API
//! enforces, with Microsoft's real permission ids and admin-consent flags (entra-reference §3).

use crate::directory::{AppRole, AppRoleMemberType, Application, PermissionScope, SignInAudience};
use crate::well_known::{GRAPH_APP_ID, GRAPH_RESOURCE_URI};
use uuid::{uuid, Uuid};

pub mod permissions;

struct Delegated {
    id: Uuid,
    value: &'static str,
    admin: bool,
    admin_text: &'static str,
    user_text: &'static str,
}

struct AppPermission {
    id: Uuid,
    value: &'static str,
    text: &'static str,
}

const DELEGATED: &[Delegated] = &[
    Delegated {
        id: uuid!("37f7f235-527c-4136-accd-4a02d197296e"),
        value: "openid",
        admin: false,
        admin_text: "Sign users in",
        user_text: "Sign you in",
    },
    Delegated {
        id: uuid!("14dad69e-099b-42c9-810b-d002981feec1"),
        value: "profile",
        admin: false,
        admin_text: "View users' basic profile",
        user_text: "View your basic profile",
    },
    Delegated {
        id: uuid!("64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0"),
        value: "email",
        admin: false,
        admin_text: "View users' email address",
        user_text: "View your email address",
    },
    Delegated {
        id: uuid!("7427e0e9-2fba-42fe-b0c0-848c9e6a8182"),
        value: "offline_access",
        admin: false,
        admin_text: "Maintain access to data you have given it access to",
        user_text: "Maintain access to data you have given it access to",
    },
    Delegated {
        id: uuid!("e1fe6dd8-ba31-4d61-89e7-88639da4683d"),
        value: "User.Read",
        admin: false,
        admin_text: "Sign in and read user profile",
        user_text: "Sign you in and read your profile",
    },
    Delegated {
        id: uuid!("b340eb25-3456-403f-be2f-af7a0d370277"),
        value: "User.ReadBasic.All",
        admin: false,
        admin_text: "Read all users' basic profiles",
        user_text: "Read all users' basic profiles",
    },
    Delegated {
        id: uuid!("a154be20-db9c-4678-8ab7-66f6cc099a59"),
        value: "User.Read.All",
        admin: true,
        admin_text: "Read all users' full profiles",
        user_text: "Read all users' full profiles",
    },
    Delegated {
        id: uuid!("465a38f9-76ea-45b9-9f34-9e8b0d4b0b42"),
        value: "Calendars.Read",
        admin: false,
        admin_text: "Read user calendars",
        user_text: "Read your calendars",
    },
    Delegated {
        id: uuid!("662d75ba-a364-42ad-adee-f5f880ea4878"),
        value: "Calendars.ReadBasic",
        admin: false,
        admin_text: "Read basic details of user calendars",
        user_text: "Read basic details of your calendars",
    },
    Delegated {
        id: uuid!("1ec239c2-d7c9-4623-a91a-a9775856bb36"),
        value: "Calendars.ReadWrite",
        admin: false,
        admin_text: "Have full access to user calendars",
        user_text: "Have full access to your calendars",
    },
    Delegated {
        id: uuid!("2b9c4092-424d-4249-948d-b43879977640"),
        value: "Calendars.Read.Shared",
        admin: false,
        admin_text: "Read user and shared calendars",
        user_text: "Read user and shared calendars",
    },
    Delegated {
        id: uuid!("12466101-c9b8-439a-8589-dd09ee67e8e9"),
        value: "Calendars.ReadWrite.Shared",
        admin: false,
        admin_text: "Read and write user and shared calendars",
        user_text: "Read and write user and shared calendars",
    },
    Delegated {
        id: uuid!("9be106e1-f4e3-4df5-bdff-e4bc531cbe43"),
        value: "OnlineMeetings.Read",
        admin: false,
        admin_text: "Read user's online meetings",
        user_text: "Read your online meetings",
    },
    Delegated {
        id: uuid!("30b87d18-ebb1-45db-97f8-82ccb1f0190c"),
        value: "OnlineMeetingTranscript.Read.All",
        admin: true,
        admin_text: "Read all transcripts of online meetings",
        user_text: "Read all transcripts of online meetings",
    },
    Delegated {
        id: uuid!("06da0dbc-49e2-44d2-8312-53f166ab848a"),
        value: "Directory.Read.All",
        admin: true,
        admin_text: "Read directory data",
        user_text: "Read directory data",
    },
    Delegated {
        id: uuid!("5f8c59db-677d-491f-a6b8-5f174b11ec1d"),
        value: "Group.Read.All",
        admin: true,
        admin_text: "Read all groups",
        user_text: "Read all groups",
    },
    Delegated {
        id: uuid!("bc024368-1153-4739-b217-4326f2e966d0"),
        value: "GroupMember.Read.All",
        admin: true,
        admin_text: "Read group memberships",
        user_text: "Read group memberships",
    },
    Delegated {
        id: uuid!("c79f8feb-a9db-4090-85f9-90d820caa0eb"),
        value: "Application.Read.All",
        admin: true,
        admin_text: "Read applications",
        user_text: "Read applications",
    },
    Delegated {
        id: uuid!("bdfbf15f-ee85-4955-8675-146e8e5296b5"),
        value: "Application.ReadWrite.All",
        admin: true,
        admin_text: "Read and write all applications",
        user_text: "Read and write all applications",
    },
    Delegated {
        id: uuid!("41ce6ca6-6826-4807-84f1-1c82854f7ee5"),
        value: "DelegatedPermissionGrant.ReadWrite.All",
        admin: true,
        admin_text: "Manage all delegated permission grants",
        user_text: "Manage all delegated permission grants",
    },
    Delegated {
        id: uuid!("84bccea3-f856-4a8a-967b-dbe0a3d53a64"),
        value: "AppRoleAssignment.ReadWrite.All",
        admin: true,
        admin_text: "Manage app permission grants and app role assignments",
        user_text: "Manage app permission grants and app role assignments",
    },
    Delegated {
        id: uuid!("572fea84-0151-49b2-9301-11cb16974376"),
        value: "Policy.Read.All",
        admin: true,
        admin_text: "Read your organization's policies",
        user_text: "Read your organization's policies",
    },
    Delegated {
        id: uuid!("edd3c878-b384-41fd-95ad-e7407dd775be"),
        value: "Policy.ReadWrite.Authorization",
        admin: true,
        admin_text: "Read and write your organization's authorization policy",
        user_text: "Read and write your organization's authorization policy",
    },
    Delegated {
        id: uuid!("4d135e65-66b8-41a8-9f8b-081452c91774"),
        value: "Policy.ReadWrite.ConsentRequest",
        admin: true,
        admin_text: "Read and write your organization's consent request policy",
        user_text: "Read and write your organization's consent request policy",
    },
    Delegated {
        id: uuid!("2672f8bb-fd5e-42e0-85e1-ec764dd2614e"),
        value: "Policy.ReadWrite.PermissionGrant",
        admin: true,
        admin_text: "Manage consent and permission grant policies",
        user_text: "Manage consent and permission grant policies",
    },
    Delegated {
        id: uuid!("f3bfad56-966e-4590-a536-82ecf548ac1e"),
        value: "ConsentRequest.Read.All",
        admin: true,
        admin_text: "Read consent requests",
        user_text: "Read consent requests",
    },
    Delegated {
        id: uuid!("497d9dfa-3bd1-481a-baab-90895e54568c"),
        value: "ConsentRequest.ReadWrite.All",
        admin: true,
        admin_text: "Read and write consent requests",
        user_text: "Read and write consent requests",
    },
    Delegated {
        id: uuid!("56760768-b641-451f-8906-e1b8ab31bca7"),
        value: "User-PasswordProfile.ReadWrite.All",
        admin: true,
        admin_text: "Read and write all password profiles and reset user passwords",
        user_text: "Read and write all password profiles and reset user passwords",
    },
    Delegated {
        id: uuid!("204e0828-b5ca-4ad8-b9f3-f32a958e7cc4"),
        value: "User.ReadWrite.All",
        admin: true,
        admin_text: "Read and write all users' full profiles",
        user_text: "Read and write all users' full profiles",
    },
    Delegated {
        id: uuid!("4e46008b-f24c-477d-8fff-7bb4ec7aafe0"),
        value: "Group.ReadWrite.All",
        admin: true,
        admin_text: "Read and write all groups",
        user_text: "Read and write all groups",
    },
    Delegated {
        id: uuid!("741c54c3-0c1e-44a1-818b-3f97ab4e8c83"),
        value: "RoleManagement.Read.Directory",
        admin: true,
        admin_text: "Read directory RBAC settings",
        user_text: "Read directory RBAC settings",
    },
    Delegated {
        id: uuid!("d01b97e9-cbc0-49fe-810a-750afd5527a3"),
        value: "RoleManagement.ReadWrite.Directory",
        admin: true,
        admin_text: "Read and write directory RBAC settings",
        user_text: "Read and write directory RBAC settings",
    },
];

const APPLICATION: &[AppPermission] = &[
    AppPermission {
        id: uuid!("798ee544-9d2d-430c-a058-570e29e34338"),
        value: "Calendars.Read",
        text: "Read calendars in all mailboxes",
    },
    AppPermission {
        id: uuid!("ef54d2bf-783f-4e0f-bca1-3210c0444d99"),
        value: "Calendars.ReadWrite",
        text: "Read and write calendars in all mailboxes",
    },
    AppPermission {
        id: uuid!("df021288-bdef-4463-88db-98f22de89214"),
        value: "User.Read.All",
        text: "Read all users' full profiles",
    },
    AppPermission {
        id: uuid!("6931bccd-447a-43d1-b442-00a195474933"),
        value: "OnlineMeetings.Read.All",
        text: "Read online meeting details",
    },
    AppPermission {
        id: uuid!("b8bb2037-6e08-44ac-a4ea-4674e010e2a4"),
        value: "OnlineMeetings.ReadWrite.All",
        text: "Read and create online meetings",
    },
    AppPermission {
        id: uuid!("7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
        value: "Directory.Read.All",
        text: "Read directory data",
    },
    AppPermission {
        id: uuid!("5b567255-7703-4780-807c-7be8301ae99b"),
        value: "Group.Read.All",
        text: "Read all groups",
    },
    AppPermission {
        id: uuid!("98830695-27a2-44f7-8c18-0c3ebc9698f6"),
        value: "GroupMember.Read.All",
        text: "Read all group memberships",
    },
    AppPermission {
        id: uuid!("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"),
        value: "Application.Read.All",
        text: "Read all applications",
    },
    AppPermission {
        id: uuid!("1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"),
        value: "Application.ReadWrite.All",
        text: "Read and write all applications",
    },
    AppPermission {
        id: uuid!("8e8e4742-1d95-4f68-9d56-6ee75648c72a"),
        value: "DelegatedPermissionGrant.ReadWrite.All",
        text: "Manage all delegated permission grants",
    },
    AppPermission {
        id: uuid!("06b708a9-e830-4db3-a914-8e69da51d44f"),
        value: "AppRoleAssignment.ReadWrite.All",
        text: "Manage app permission grants and app role assignments",
    },
    AppPermission {
        id: uuid!("246dd0d5-5bd0-4def-940b-0421030a5b68"),
        value: "Policy.Read.All",
        text: "Read your organization's policies",
    },
    AppPermission {
        id: uuid!("fb221be6-99f2-473f-bd32-01c6a0e9ca3b"),
        value: "Policy.ReadWrite.Authorization",
        text: "Read and write your organization's authorization policy",
    },
    AppPermission {
        id: uuid!("999f8c63-0a38-4f1b-91fd-ed1947bdd1a9"),
        value: "Policy.ReadWrite.ConsentRequest",
        text: "Read and write your organization's consent request policy",
    },
    AppPermission {
        id: uuid!("a402ca1c-2696-4531-972d-6e5ee4aa11ea"),
        value: "Policy.ReadWrite.PermissionGrant",
        text: "Manage consent and permission grant policies",
    },
    AppPermission {
        id: uuid!("1260ad83-98fb-4785-abbb-d6cc1806fd41"),
        value: "ConsentRequest.Read.All",
        text: "Read all consent requests",
    },
    AppPermission {
        id: uuid!("9f1b81a7-0223-4428-bfa4-0bcb5535f27d"),
        value: "ConsentRequest.ReadWrite.All",
        text: "Read and write all consent requests",
    },
    AppPermission {
        id: uuid!("cc117bb9-00cf-4eb8-b580-ea2a878fe8f7"),
        value: "User-PasswordProfile.ReadWrite.All",
        text: "Read and write all password profiles and reset user passwords",
    },
    AppPermission {
        id: uuid!("741f803b-c850-494e-b5df-cde7c675a1ca"),
        value: "User.ReadWrite.All",
        text: "Read and write all users' full profiles",
    },
    AppPermission {
        id: uuid!("62a82d76-70ea-41e2-9197-370581804d09"),
        value: "Group.ReadWrite.All",
        text: "Read and write all groups",
    },
    AppPermission {
        id: uuid!("483bed4a-2ad3-4361-a73b-c83ccdbdc53c"),
        value: "RoleManagement.Read.Directory",
        text: "Read all directory RBAC settings",
    },
    AppPermission {
        id: uuid!("9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8"),
        value: "RoleManagement.ReadWrite.Directory",
        text: "Read and write all directory RBAC settings",
    },
];

/// Scopes that govern the protocol itself (id token, refresh token) rather than an API.
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

pub fn is_oidc_scope(value: &str) -> bool {
    OIDC_SCOPES.iter().any(|s| s.eq_ignore_ascii_case(value))
}

/// Microsoft Graph as an application object, so it is resolved like any other resource.
pub fn application() -> Application {
    Application {
        id: crate::ids::AppObjectId::from_uuid(uuid!("00000003-0000-0000-c000-0000000000a0")),
        app_id: GRAPH_APP_ID,
        home_tenant_id: crate::well_known::MICROSOFT_SERVICES_TENANT_ID,
        display_name: "Microsoft Graph".into(),
        sign_in_audience: SignInAudience::MultipleOrgs,
        redirect_uris: Vec::new(),
        public_client: false,
        verified_publisher: true,
        identifier_uri: Some(GRAPH_RESOURCE_URI.into()),
        scopes: DELEGATED
            .iter()
            .map(|d| PermissionScope {
                id: d.id,
                value: d.value.into(),
                admin_consent_required: d.admin,
                admin_consent_display_name: d.admin_text.into(),
                admin_consent_description: format!("Allows the app to {}.", lower_first(d.admin_text)),
                user_consent_display_name: d.user_text.into(),
                user_consent_description: format!("Allows the app to {}.", lower_first(d.user_text)),
            })
            .collect(),
        app_roles: APPLICATION
            .iter()
            .map(|a| AppRole {
                id: a.id,
                value: a.value.into(),
                display_name: a.text.into(),
                description: format!("Allows the app to {} without a signed-in user.", lower_first(a.text)),
                allowed_member_types: vec![AppRoleMemberType::Application],
            })
            .collect(),
        required: Vec::new(),
        key_credentials: Vec::new(),
        spa_redirect_uris: Vec::new(),
        federated_credentials: Vec::new(),
        group_membership_claims: Default::default(),
        optional_claims: Default::default(),
        pre_authorized: Vec::new(),
        access_token_version: 2,
        known_client_applications: Vec::new(),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Graph application permissions that write users, directory roles, grants, role assignments
/// or applications: an app holding one can make itself (or anyone) more powerful, so a new
/// credential for such an app is a step towards Global Administrator (docs/security.md).
pub const PRIVILEGED_APP_PERMISSIONS: &[&str] = &[
    "Directory.ReadWrite.All",
    "User.ReadWrite.All",
    "User-PasswordProfile.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
    "AppRoleAssignment.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Application.ReadWrite.All",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_catalogue_has_the_documented_ids_and_flags() {
        let g = application();
        assert_eq!(g.scope("User.Read").unwrap().id, uuid!("e1fe6dd8-ba31-4d61-89e7-88639da4683d"));
        assert!(!g.scope("Calendars.Read").unwrap().admin_consent_required);
        assert!(g.scope("User.Read.All").unwrap().admin_consent_required);
        assert_eq!(g.app_role("Calendars.Read").unwrap().id, uuid!("798ee544-9d2d-430c-a058-570e29e34338"));
        assert_eq!(g.app_role("User.Read.All").unwrap().id, uuid!("df021288-bdef-4463-88db-98f22de89214"));
        for v in [
            "Directory.Read.All",
            "Group.Read.All",
            "GroupMember.Read.All",
            "Application.Read.All",
            "Application.ReadWrite.All",
            "DelegatedPermissionGrant.ReadWrite.All",
            "AppRoleAssignment.ReadWrite.All",
            "Policy.Read.All",
            "Policy.ReadWrite.Authorization",
            "Policy.ReadWrite.ConsentRequest",
            "Policy.ReadWrite.PermissionGrant",
            "ConsentRequest.Read.All",
            "ConsentRequest.ReadWrite.All",
        ] {
            assert!(g.scope(v).unwrap().admin_consent_required, "{v} needs an administrator");
        }
        assert_eq!(g.scope("Directory.Read.All").unwrap().id, uuid!("06da0dbc-49e2-44d2-8312-53f166ab848a"));
        assert_eq!(g.app_role("Directory.Read.All").unwrap().id, uuid!("7ab1d382-f21e-4acd-a863-ba3e13f7da61"));
        // Not Policy.ReadWrite.AuthenticationFlows (edb72de9-…), which is easy to mix up with it.
        assert_eq!(
            g.scope("Policy.ReadWrite.Authorization").unwrap().id,
            uuid!("edd3c878-b384-41fd-95ad-e7407dd775be")
        );
        assert_eq!(g.scope("ConsentRequest.ReadWrite.All").unwrap().id, uuid!("497d9dfa-3bd1-481a-baab-90895e54568c"));
        assert_eq!(g.app_role("ConsentRequest.Read.All").unwrap().id, uuid!("1260ad83-98fb-4785-abbb-d6cc1806fd41"));
        // Checked against Microsoft's permissions reference (delegated, application).
        for (v, delegated, application) in [
            ("Group.Read.All", "5f8c59db-677d-491f-a6b8-5f174b11ec1d", "5b567255-7703-4780-807c-7be8301ae99b"),
            ("GroupMember.Read.All", "bc024368-1153-4739-b217-4326f2e966d0", "98830695-27a2-44f7-8c18-0c3ebc9698f6"),
            ("Application.Read.All", "c79f8feb-a9db-4090-85f9-90d820caa0eb", "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"),
            (
                "DelegatedPermissionGrant.ReadWrite.All",
                "41ce6ca6-6826-4807-84f1-1c82854f7ee5",
                "8e8e4742-1d95-4f68-9d56-6ee75648c72a",
            ),
            (
                "AppRoleAssignment.ReadWrite.All",
                "84bccea3-f856-4a8a-967b-dbe0a3d53a64",
                "06b708a9-e830-4db3-a914-8e69da51d44f",
            ),
            ("User.ReadWrite.All", "204e0828-b5ca-4ad8-b9f3-f32a958e7cc4", "741f803b-c850-494e-b5df-cde7c675a1ca"),
            (
                "User-PasswordProfile.ReadWrite.All",
                "56760768-b641-451f-8906-e1b8ab31bca7",
                "cc117bb9-00cf-4eb8-b580-ea2a878fe8f7",
            ),
            ("Group.ReadWrite.All", "4e46008b-f24c-477d-8fff-7bb4ec7aafe0", "62a82d76-70ea-41e2-9197-370581804d09"),
            (
                "RoleManagement.Read.Directory",
                "741c54c3-0c1e-44a1-818b-3f97ab4e8c83",
                "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
            ),
            (
                "RoleManagement.ReadWrite.Directory",
                "d01b97e9-cbc0-49fe-810a-750afd5527a3",
                "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
            ),
        ] {
            assert_eq!(g.scope(v).unwrap().id, Uuid::parse_str(delegated).unwrap(), "{v} (delegated)");
            assert!(g.scope(v).unwrap().admin_consent_required, "{v} needs an administrator");
            assert_eq!(g.app_role(v).unwrap().id, Uuid::parse_str(application).unwrap(), "{v} (application)");
        }
        assert!(g.is_named_by("https://graph.microsoft.com/"));
        assert!(g.is_named_by("00000003-0000-0000-c000-000000000000"));
        let mut ids: Vec<_> = g.scopes.iter().map(|s| s.id).chain(g.app_roles.iter().map(|r| r.id)).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "permission ids are unique");
    }
}
