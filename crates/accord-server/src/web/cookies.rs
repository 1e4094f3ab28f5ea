//! Cookies: the SSO session and the per-browser CSRF secret. With HTTPS they use the
//! `__Host-` prefix (Secure, Path=/, no Domain), so a sibling host cannot plant them.

use axum::http::{header, HeaderMap, HeaderValue};

pub const SESSION: &str = "accord_session";
pub const CSRF: &str = "accord_csrf";
/// The familiar-device note (`web/device.rs`).
pub const DEVICE: &str = "accord_device";

pub fn name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// Reads a cookie by (unprefixed) name.
pub fn get(headers: &HeaderMap, base: &str, secure: bool) -> Option<String> {
    let wanted = name(base, secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == wanted)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 512)
}

pub fn set(base: &str, value: &str, max_age_seconds: i64, secure: bool) -> HeaderValue {
    let secure_attr = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure_attr}",
        name(base, secure)
    ))
    .expect("cookie values are base64url")
}

pub fn clear(base: &str, secure: bool) -> HeaderValue {
    set(base, "", 0, secure)
}
