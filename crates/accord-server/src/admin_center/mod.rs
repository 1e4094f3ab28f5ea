//! The admin center at `/admin`: server-rendered pages for administrators and reviewers,
//! following the Entra admin center's paths ("Enterprise applications > All applications >
//! app > Users and groups > Add user/group", "Admin consent requests"). Every change calls the
//! service layer (`administration`, `admin_consent_requests`), which checks the signed-in
//! person's role again; pages only decide which controls to offer. Every form posts with the
//! CSRF token; success is shown after POST-redirect-GET with a fixed message.

mod app_registrations;
mod audit;
mod consent_settings;
mod directory;
mod enterprise_apps;
mod home;
mod layout;
mod requests;

use crate::state::SharedState;
use axum::routing::{get, post};
use axum::Router;

/// The admin center's routes, merged into the application router.
pub fn routes() -> Router<SharedState> {
    use app_registrations as reg;
    use enterprise_apps as ea;
    Router::new()
        .route("/admin", get(home::home))
        .route("/admin/", get(home::home))
        .route("/admin/static/admin.css", get(layout::stylesheet))
        // Enterprise applications > All applications > app > …
        .route("/admin/enterprise-apps", get(ea::list))
        .route("/admin/enterprise-apps/{sp}", get(ea::overview))
        .route("/admin/enterprise-apps/{sp}/properties", get(ea::properties).post(ea::properties_post))
        .route("/admin/enterprise-apps/{sp}/delete", get(ea::delete_app).post(ea::delete_app_post))
        .route("/admin/enterprise-apps/{sp}/users-and-groups", get(ea::users_and_groups))
        .route(
            "/admin/enterprise-apps/{sp}/users-and-groups/add",
            get(ea::add_assignment).post(ea::add_assignment_post),
        )
        .route(
            "/admin/enterprise-apps/{sp}/users-and-groups/{assignment}/remove",
            get(ea::remove_assignment).post(ea::remove_assignment_post),
        )
        .route("/admin/enterprise-apps/{sp}/permissions", get(ea::permissions))
        .route(
            "/admin/enterprise-apps/{sp}/permissions/admin-consent",
            get(ea::admin_consent).post(ea::admin_consent_post),
        )
        .route(
            "/admin/enterprise-apps/{sp}/permissions/grants/{grant}/revoke",
            get(ea::revoke_grant).post(ea::revoke_grant_post),
        )
        .route(
            "/admin/enterprise-apps/{sp}/permissions/application/{assignment}/remove",
            get(ea::remove_app_permission).post(ea::remove_app_permission_post),
        )
        .route("/admin/enterprise-apps/{sp}/activity", get(ea::activity))
        // Consent and permissions
        .route("/admin/consent", get(consent_settings::user_consent))
        .route("/admin/consent/user-consent", post(consent_settings::user_consent_post))
        .route(
            "/admin/consent/classifications",
            get(consent_settings::classifications).post(consent_settings::classifications_post),
        )
        .route(
            "/admin/consent/admin-consent-settings",
            get(consent_settings::request_settings).post(consent_settings::request_settings_post),
        )
        // Admin consent requests
        .route("/admin/requests", get(requests::list))
        .route("/admin/requests/{app}", get(requests::show))
        .route("/admin/requests/{app}/approve", post(requests::approve_post))
        .route("/admin/requests/{app}/deny", post(requests::deny_post))
        .route("/admin/requests/{app}/block", post(requests::block_post))
        // Users and groups
        .route("/admin/users", get(directory::users))
        .route("/admin/users/new", get(directory::new_user).post(directory::new_user_post))
        .route("/admin/users/{user}", get(directory::user))
        .route("/admin/users/{user}/enabled", post(directory::user_enabled_post))
        .route("/admin/users/{user}/password", post(directory::password_post))
        .route("/admin/users/{user}/delete", get(directory::delete_user).post(directory::delete_user_post))
        .route("/admin/users/{user}/roles", post(directory::roles_post))
        .route("/admin/groups", get(directory::groups).post(directory::new_group_post))
        .route("/admin/groups/{group}", get(directory::group))
        .route("/admin/groups/{group}/members", post(directory::add_member_post))
        .route(
            "/admin/groups/{group}/members/{member}/remove",
            get(directory::remove_member).post(directory::remove_member_post),
        )
        // App registrations
        .route("/admin/app-registrations", get(reg::list))
        .route("/admin/app-registrations/new", get(reg::new).post(reg::new_post))
        .route("/admin/app-registrations/{app}", get(reg::overview))
        .route("/admin/app-registrations/{app}/redirect-uris", post(reg::add_redirect_post))
        .route(
            "/admin/app-registrations/{app}/redirect-uris/remove",
            get(reg::remove_redirect).post(reg::remove_redirect_post),
        )
        .route("/admin/app-registrations/{app}/secrets", get(reg::secrets).post(reg::add_secret_post))
        .route(
            "/admin/app-registrations/{app}/secrets/{secret}/delete",
            get(reg::delete_secret).post(reg::delete_secret_post),
        )
        .route("/admin/app-registrations/{app}/certificates", post(reg::add_certificate_post))
        .route(
            "/admin/app-registrations/{app}/certificates/{key}/delete",
            get(reg::delete_certificate).post(reg::delete_certificate_post),
        )
        .route("/admin/app-registrations/{app}/federated-credentials", post(reg::add_federated_post))
        .route(
            "/admin/app-registrations/{app}/federated-credentials/{credential}/delete",
            get(reg::delete_federated).post(reg::delete_federated_post),
        )
        .route(
            "/admin/app-registrations/{app}/api-permissions",
            get(reg::api_permissions).post(reg::add_permission_post),
        )
        .route(
            "/admin/app-registrations/{app}/api-permissions/remove",
            get(reg::remove_permission).post(reg::remove_permission_post),
        )
        .route("/admin/app-registrations/{app}/expose-api", get(reg::expose_api))
        .route("/admin/app-registrations/{app}/webhooks", get(reg::webhooks).post(reg::add_webhook_post))
        .route("/admin/app-registrations/{app}/webhooks/{webhook}/rotate", post(reg::rotate_webhook_post))
        .route(
            "/admin/app-registrations/{app}/webhooks/{webhook}/remove",
            get(reg::remove_webhook).post(reg::remove_webhook_post),
        )
        .route("/admin/app-registrations/{app}/coverage", get(reg::coverage))
        .route(
            "/admin/app-registrations/{app}/token-configuration",
            get(reg::token_configuration).post(reg::token_configuration_post),
        )
        .route("/admin/app-registrations/{app}/pre-authorized", post(reg::add_pre_authorized_post))
        .route("/admin/app-registrations/{app}/known-clients", post(reg::known_clients_post))
        .route(
            "/admin/app-registrations/{app}/pre-authorized/{client}/remove",
            get(reg::remove_pre_authorized).post(reg::remove_pre_authorized_post),
        )
        .route("/admin/app-registrations/{app}/scopes", post(reg::add_scope_post))
        .route("/admin/app-registrations/{app}/scopes/{id}/remove", get(reg::remove_scope).post(reg::remove_scope_post))
        .route("/admin/app-registrations/{app}/app-roles", get(reg::app_roles).post(reg::add_role_post))
        .route(
            "/admin/app-registrations/{app}/app-roles/{id}/remove",
            get(reg::remove_role).post(reg::remove_role_post),
        )
        // Audit log
        .route("/admin/audit", get(audit::log))
        .route("/admin/audit/export", get(audit::export))
        .route("/admin/audit/{event}", get(audit::event))
}
