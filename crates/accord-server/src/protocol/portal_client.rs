//! Accord's own pages (My Apps, the admin center) sign people in through the authorize flow
//! like any app; this is their stand-in client, which returns only to those pages.

use accord_core::directory::{Application, SignInAudience};
use uuid::Uuid;

/// The stand-in "client" shown on the sign-in page for Accord's own pages.
pub fn portal_application(return_to: &str) -> Application {
    Application {
        id: Uuid::nil(),
        app_id: Uuid::nil(),
        home_tenant_id: Uuid::nil(),
        display_name: "Accord — My Apps and admin center".into(),
        sign_in_audience: SignInAudience::MultipleOrgs,
        redirect_uris: vec![return_to.to_string()],
        public_client: false,
        verified_publisher: true,
        identifier_uri: None,
        scopes: Vec::new(),
        app_roles: Vec::new(),
        required: Vec::new(),
    }
}

/// Only local paths under our pages are allowed as a return target (no open redirect).
pub fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p) if (p.starts_with("/admin") || p.starts_with("/myapps")) && !p.contains("//") && !p.contains('\\') => {
            p.to_string()
        }
        _ => "/myapps".to_string(),
    }
}
