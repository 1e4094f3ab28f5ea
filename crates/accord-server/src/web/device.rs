//! The familiar-device cookie: a browser that signed in as a user before carries a sealed note
//! of it (a random device id and up to four users), so smart lockout can tell the owner's
//! browser from a guesser's (`lockout.rs`). It proves nothing by itself: the password is still
//! checked; it only decides which failure count an attempt joins.

use super::cookies;
use crate::lockout::FamiliarDevice;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue};

const PURPOSE: &str = "familiar-device";
/// Long enough to outlive many sessions, as a remembered device should.
const MAX_AGE_DAYS: i64 = 180;

/// The browser's familiar-device note, if it carries a valid one.
pub fn read(state: &AppState, headers: &HeaderMap) -> Option<FamiliarDevice> {
    let sealed = cookies::get(headers, cookies::DEVICE, state.settings.secure_cookies)?;
    let bytes = state.keyring.open_text(PURPOSE, &sealed)?;
    serde_json::from_slice(&bytes).ok()
}

/// The cookie that remembers `device` (after adding the user who just signed in to it).
pub fn cookie(state: &AppState, device: &FamiliarDevice) -> HeaderValue {
    let sealed = state.keyring.seal_text(PURPOSE, &serde_json::to_vec(device).expect("device note serialises"));
    cookies::set(cookies::DEVICE, &sealed, MAX_AGE_DAYS * 86_400, state.settings.secure_cookies)
}
