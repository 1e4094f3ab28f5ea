//! Browser plumbing every page-serving surface shares: templates, cookies, the session and
//! CSRF secret, form parameters and redirects, security headers. Nothing here knows a surface
//! (`tests/architecture.rs` checks).

pub mod client_address;
pub mod cookies;
pub mod cors;
pub mod device;
pub mod forms;
pub mod security;
pub mod session;
pub mod templates;
