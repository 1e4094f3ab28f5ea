//! The browser's SSO session and its CSRF secret, read from and set in cookies.

use crate::crypto::random_token;
use crate::state::AppState;
use crate::web::cookies;
use accord_core::directory::User;
use accord_store::{SessionRecord, StoreError};
use axum::http::{HeaderMap, HeaderValue};

/// The signed-in person of this browser, if its session cookie names a live session of an
/// enabled user.
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(SessionRecord, User)>, StoreError> {
    let Some(token) = cookies::get(headers, cookies::SESSION, state.settings.secure_cookies) else {
        return Ok(None);
    };
    let hash = state.keyring.secret_hash(&token);
    let Some(session) = state.store.session(&hash).await? else { return Ok(None) };
    if session.expires_at <= accord_core::clock::now() {
        return Ok(None);
    }
    let user = state.store.user(session.tenant_id, session.user_id).await?;
    Ok(user.filter(|u| u.enabled).map(|u| (session, u)))
}

/// This browser's CSRF secret, and the `Set-Cookie` header to send when it had none.
pub fn csrf_cookie(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookies::get(headers, cookies::CSRF, state.settings.secure_cookies) {
        Some(v) => (v, None),
        None => {
            let v = random_token();
            let header = cookies::set(cookies::CSRF, &v, 60 * 60 * 24, state.settings.secure_cookies);
            (v, Some(header))
        }
    }
}
