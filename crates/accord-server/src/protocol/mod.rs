//! The Entra-compatible OAuth 2.0 / OpenID Connect surface.

pub mod auth_codes;
pub mod authorization_request;
pub mod authorize;
pub mod bearer;
pub mod consent_pages;
pub mod device_flow;
pub mod discovery;
pub mod errors;
pub mod portal_client;
pub mod session_end;
pub mod token;
