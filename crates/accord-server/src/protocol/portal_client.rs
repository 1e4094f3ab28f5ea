//! Accord's own pages (My Apps, the admin center) sign people in through the authorize flow
//! like any app; this is their stand-in client, which returns only to those pages.

use accord_core::directory::{Application, SignInAudience};
use accord_core::ids::{AppId, AppObjectId, TenantId};

/// The stand-in "client" shown on the sign-in page for Accord's own pages.
pub fn portal_application(return_to: &str) -> Application {
    Application {
        id: AppObjectId::NIL,
        app_id: AppId::NIL,
        home_tenant_id: TenantId::NIL,
        display_name: "Accord — My Apps and admin center".into(),
        sign_in_audience: SignInAudience::MultipleOrgs,
        redirect_uris: vec![return_to.to_string()],
        public_client: false,
        verified_publisher: true,
        identifier_uri: None,
        scopes: Vec::new(),
        app_roles: Vec::new(),
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

/// Only local paths under our pages are allowed as a return target (no open redirect).
pub fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p)
            if (p.starts_with("/admin") || p.starts_with("/myapps"))
                && !p.contains("//")
                && !p.contains('\\')
                // Control characters (CR, LF, NUL, DEL) cannot be sent in a Location header.
                && !p.chars().any(char::is_control) =>
        {
            p.to_string()
        }
        _ => "/myapps".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_pages_without_control_characters() {
        assert_eq!(safe_return_to(Some("/admin/users?q=a")), "/admin/users?q=a");
        assert_eq!(safe_return_to(Some("/myapps")), "/myapps");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/admin\\x",
            "/admin/\r\nSet-Cookie: a=b",
            "/admin\0",
            "/admin\u{7f}",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/myapps", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/myapps");
    }
}
