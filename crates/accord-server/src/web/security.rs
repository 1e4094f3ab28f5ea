//! Headers every response carries: pages refuse framing (consent clickjacking), scripts are
//! limited to our one hashed inline script, and nothing is cached by intermediaries.

use super::templates::FORM_POST_SCRIPT;
use axum::extract::Request;
use axum::http::header::{self, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(FORM_POST_SCRIPT.as_bytes()));
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'sha256-{hash}'; \
         form-action *; frame-ancestors 'none'; base-uri 'none'"
    ))
    .expect("valid header")
});

pub async fn security_headers(secure: bool, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert_with(|| CSP.clone());
    if secure {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}
