//! HTML pages and browser plumbing: templates, cookies, CSRF and security headers.

pub mod cookies;
pub mod portal;
pub mod security;
pub mod templates;
