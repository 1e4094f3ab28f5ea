//! Authorization codes, sealed: the code the browser carries back is what it stands for (tenant,
//! client, user, redirect URI, scope, nonce, PKCE challenge, times), encrypted and authenticated
//! with a key derived from the master key. Minting one writes nothing; redeeming one writes a
//! single `used_once` row, keyed by the code's random id, that a second redemption finds. Any
//! replica sharing the master key redeems it.
//!
//! What a stored code got from being deleted, a sealed one gets from checks at redemption: the
//! user must still exist and be enabled, their sign-ins must not have been ended after the code
//! was issued (`sign_ins_valid_from`), and consent is evaluated again (a deleted enterprise app
//! has no grants left).

use crate::crypto::Keyring;
use accord_core::ids::{AppId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Bound to the ciphertext: a value sealed for another use never opens as a code.
const PURPOSE: &str = "accord/authorization-code/v1";

/// What a code stands for. Short field names keep the code short (it travels in a URL); times
/// are Unix microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    /// Random (`Uuid::new_v4`); the single-use marker is keyed by it, never by the code's text,
    /// whose base64 has more than one spelling for the same bytes.
    #[serde(rename = "j")]
    pub id: Uuid,
    #[serde(rename = "t")]
    pub tenant_id: TenantId,
    #[serde(rename = "c")]
    pub client_app_id: AppId,
    #[serde(rename = "u")]
    pub user_id: UserId,
    #[serde(rename = "r")]
    pub redirect_uri: String,
    /// The scope parameter as requested on /authorize (re-evaluated at redemption).
    #[serde(rename = "s")]
    pub scope: String,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(rename = "pc", default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(rename = "pm", default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
    #[serde(rename = "a", with = "time::serde::timestamp::microseconds")]
    pub auth_time: OffsetDateTime,
    #[serde(rename = "i", with = "time::serde::timestamp::microseconds")]
    pub issued_at: OffsetDateTime,
    #[serde(rename = "e", with = "time::serde::timestamp::microseconds")]
    pub expires_at: OffsetDateTime,
    /// The refresh-token family its redemption starts, so a replayed code can revoke it.
    #[serde(rename = "f")]
    pub family_id: Uuid,
}

impl CodeGrant {
    /// The code to hand to the browser.
    pub fn seal(&self, keyring: &Keyring) -> String {
        let json = serde_json::to_vec(self).expect("a code grant always serializes");
        keyring.seal_text(PURPOSE, &json)
    }

    /// The grant a code stands for; `None` for anything Accord did not seal as a code.
    pub fn open(keyring: &Keyring, code: &str) -> Option<CodeGrant> {
        let json = keyring.open_text(PURPOSE, code)?;
        serde_json::from_slice(&json).ok()
    }

    /// The key of this code's single-use marker.
    pub fn marker(&self, keyring: &Keyring) -> String {
        keyring.secret_hash(&format!("{PURPOSE}/{}", self.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn keyring(n: u8) -> Keyring {
        Keyring::from_master(&[n; 32])
    }

    fn grant() -> CodeGrant {
        CodeGrant {
            id: Uuid::new_v4(),
            tenant_id: TenantId::from(Uuid::from_u128(1)),
            client_app_id: AppId::from(Uuid::from_u128(2)),
            user_id: UserId::from(Uuid::from_u128(3)),
            redirect_uri: "https://app.example/callback".into(),
            scope: "openid User.Read".into(),
            nonce: Some("n-1".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            auth_time: datetime!(2026-12-05 10:00:00.123456 UTC),
            issued_at: datetime!(2026-12-05 10:01:00 UTC),
            expires_at: datetime!(2026-12-05 10:11:00 UTC),
            family_id: Uuid::new_v4(),
        }
    }

    #[test]
    fn a_sealed_code_opens_to_what_it_stands_for() {
        let g = grant();
        let code = g.seal(&keyring(1));
        let opened = CodeGrant::open(&keyring(1), &code).expect("opens");
        assert_eq!(opened, g);
        assert_eq!(opened.auth_time, datetime!(2026-12-05 10:00:00.123456 UTC), "microseconds kept");
        // Nothing of the grant is readable in the code.
        assert!(!code.contains("app.example") && !code.contains("User.Read"));
    }

    #[test]
    fn codes_are_unique_and_their_markers_differ() {
        let (a, b) = (grant(), grant());
        assert_ne!(a.id, b.id);
        assert_ne!(a.family_id, b.family_id);
        let k = keyring(1);
        assert_ne!(a.marker(&k), b.marker(&k));
        assert_ne!(a.seal(&k), a.seal(&k), "a fresh nonce every time");
    }

    #[test]
    fn a_tampered_or_foreign_code_does_not_open() {
        let code = grant().seal(&keyring(1));
        assert!(CodeGrant::open(&keyring(2), &code).is_none(), "another master key");
        let mut bytes = code.into_bytes();
        let mid = bytes.len() / 2;
        bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
        assert!(CodeGrant::open(&keyring(1), &String::from_utf8(bytes).unwrap()).is_none());
        // Sealed for another purpose (a form's state) with the same key: refused.
        let other = keyring(1).seal_text("accord/form/v1", &serde_json::to_vec(&grant()).unwrap());
        assert!(CodeGrant::open(&keyring(1), &other).is_none());
        assert!(CodeGrant::open(&keyring(1), "not-a-code").is_none());
    }
}
