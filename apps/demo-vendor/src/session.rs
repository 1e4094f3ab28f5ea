//! Browser sessions of the vendor app: a random id in a `__Host-` cookie (HttpOnly, Secure,
//! SameSite=Lax), the data server-side in SQLite keyed by the id's SHA-256, a CSRF token per
//! session, and the id rotated whenever someone signs in.

use crate::db::{now, Db};
use accord_connect::{random_token, PendingSignIn};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

pub const COOKIE: &str = "__Host-mi_session";
const LIFETIME_SECS: i64 = 12 * 3600;

/// A sign-in in progress: what the kit must remember until the callback, and for which instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingEntry {
    pub instance: String,
    pub pending: PendingSignIn,
}

/// The person signed in to the vendor app.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionUser {
    pub instance: String,
    pub tenant_id: String,
    pub object_id: String,
    pub upn: Option<String>,
    pub name: Option<String>,
    /// An administrator of the customer's organisation (the ID token's `wids` names an admin
    /// role): sees every colleague's connection, not only their own.
    #[serde(default)]
    pub org_admin: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SessionData {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub pending: Option<PendingEntry>,
    #[serde(default)]
    pub user: Option<SessionUser>,
    /// Signed in to the vendor support page.
    #[serde(default)]
    pub staff: bool,
}

struct Inner {
    /// The cookie value, when the session exists in the database.
    id: Option<String>,
    data: SessionData,
    dirty: bool,
    rotate: bool,
}

/// One request's session; cheap to clone (shared with the middleware that persists it).
#[derive(Clone)]
pub struct Session(Arc<Mutex<Inner>>);

fn hash(id: &str) -> String {
    Sha256::digest(id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_string())
    })
}

/// Compares secrets without an early exit.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Session {
    /// The session of a request's cookie, or a new empty one (stored only once something is put in it).
    pub async fn load(db: &Db, headers: &HeaderMap) -> Session {
        let mut inner = Inner { id: None, data: SessionData::default(), dirty: false, rotate: false };
        if let Some(id) = cookie_value(headers, COOKIE) {
            match db.load_session(&hash(&id)).await {
                Ok(Some(json)) => {
                    if let Ok(data) = serde_json::from_str(&json) {
                        inner.id = Some(id);
                        inner.data = data;
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "loading a session failed"),
            }
        }
        Session(Arc::new(Mutex::new(inner)))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// The session's CSRF token (created, and the session stored, on first use).
    pub fn csrf(&self) -> String {
        self.with(|s| {
            if s.data.csrf.is_empty() {
                s.data.csrf = random_token();
                s.dirty = true;
            }
            s.data.csrf.clone()
        })
    }

    /// Whether a submitted form's token is this session's.
    pub fn csrf_ok(&self, submitted: &str) -> bool {
        self.with(|s| !s.data.csrf.is_empty() && same(&s.data.csrf, submitted))
    }

    pub fn user(&self) -> Option<SessionUser> {
        self.with(|s| s.data.user.clone())
    }

    pub fn is_staff(&self) -> bool {
        self.with(|s| s.data.staff)
    }

    pub fn pending(&self) -> Option<PendingEntry> {
        self.with(|s| s.data.pending.clone())
    }

    pub fn set_pending(&self, entry: PendingEntry) {
        self.with(|s| {
            s.data.pending = Some(entry);
            s.dirty = true;
        })
    }

    pub fn take_pending(&self) -> Option<PendingEntry> {
        self.with(|s| {
            let p = s.data.pending.take();
            if p.is_some() {
                s.dirty = true;
            }
            p
        })
    }

    /// Signs a user in, with a new session id (no fixation) and a new CSRF token.
    pub fn sign_in(&self, user: SessionUser) {
        self.with(|s| {
            s.data.user = Some(user);
            s.data.csrf = random_token();
            s.dirty = true;
            s.rotate = true;
        })
    }

    pub fn sign_out_user(&self) {
        self.with(|s| {
            s.data.user = None;
            s.data.csrf = random_token();
            s.dirty = true;
            s.rotate = true;
        })
    }

    pub fn set_staff(&self, staff: bool) {
        self.with(|s| {
            s.data.staff = staff;
            s.data.csrf = random_token();
            s.dirty = true;
            s.rotate = true;
        })
    }

    /// Stores the session if it changed, and sets the cookie on `res` when the id is new.
    pub async fn persist(&self, db: &Db, res: &mut Response) {
        enum Step {
            Nothing,
            Save { old: Option<String>, id: String, data: String, fresh: bool },
        }
        let step = self.with(|s| {
            if !s.dirty {
                return Step::Nothing;
            }
            s.dirty = false;
            let data = serde_json::to_string(&s.data).unwrap_or_default();
            if s.id.is_none() || s.rotate {
                s.rotate = false;
                let id = random_token();
                let old = s.id.replace(id.clone());
                Step::Save { old, id, data, fresh: true }
            } else {
                Step::Save { old: None, id: s.id.clone().unwrap_or_default(), data, fresh: false }
            }
        });
        match step {
            Step::Nothing => {}
            Step::Save { old, id, data, fresh } => {
                if let Some(old) = old {
                    if let Err(e) = db.delete_session(&hash(&old)).await {
                        tracing::error!(error = %e, "deleting a session failed");
                    }
                }
                if let Err(e) = db.save_session(&hash(&id), &data, now() + LIFETIME_SECS).await {
                    tracing::error!(error = %e, "saving a session failed");
                    return;
                }
                if fresh {
                    set_cookie(
                        res,
                        &format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={LIFETIME_SECS}"),
                    );
                }
            }
        }
    }
}

fn set_cookie(res: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_secrets() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; __Host-mi_session=abc; __Host-accord_session=x"));
        assert_eq!(cookie_value(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie_value(&h, "missing"), None);
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert_eq!(hash("x").len(), 64);
    }
}
