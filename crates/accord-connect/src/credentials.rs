//! How the app proves itself at the token endpoint: a client secret, or — as Microsoft
//! recommends for production — a certificate whose private key signs a short-lived client
//! assertion (`private_key_jwt`, RFC 7523). The same configuration works against Accord and
//! the Microsoft cloud: the assertion is built as MSAL builds it (PS256, `x5t#S256`, the token
//! endpoint as audience, ten minutes of validity).

use crate::error::ConnectError;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PSS_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use time::OffsetDateTime;

/// `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long an assertion is valid (as MSAL: ten minutes).
const ASSERTION_SECONDS: i64 = 600;

/// The app's credential.
#[derive(Clone)]
pub enum ClientCredential {
    /// A client secret (`client_secret_post`).
    Secret(String),
    /// A certificate registered on the app; its key signs each request's assertion.
    Certificate(Arc<CertificateCredential>),
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.write_str("Secret(<redacted>)"),
            ClientCredential::Certificate(c) => write!(f, "Certificate(x5t#S256={})", c.thumbprint_sha256()),
        }
    }
}

impl ClientCredential {
    /// The form fields that authenticate the app at `token_endpoint`.
    pub(crate) fn form_fields(&self, client_id: &str, token_endpoint: &str) -> Vec<(&'static str, String)> {
        match self {
            ClientCredential::Secret(s) => vec![("client_secret", s.clone())],
            ClientCredential::Certificate(c) => vec![
                ("client_assertion_type", JWT_BEARER.to_string()),
                ("client_assertion", c.assertion(client_id, token_endpoint, OffsetDateTime::now_utc())),
            ],
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConnectError> {
        match self {
            ClientCredential::Secret(s) if s.is_empty() => Err(ConnectError::Config("client secret is empty".into())),
            _ => Ok(()),
        }
    }
}

/// A certificate and its RSA private key.
pub struct CertificateCredential {
    key: RsaKeyPair,
    certificate_der: Vec<u8>,
    send_x5c: bool,
}

impl CertificateCredential {
    /// From PEM text: the private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`, not
    /// encrypted) and the certificate (`CERTIFICATE`); both may be in one file.
    pub fn from_pem(private_key_pem: &str, certificate_pem: &str) -> Result<Self, ConnectError> {
        let bad = |why: String| ConnectError::Config(format!("client certificate: {why}"));
        let key = if let Some(der) = pem_block(private_key_pem, "PRIVATE KEY") {
            RsaKeyPair::from_pkcs8(&der).map_err(|e| bad(format!("the PKCS#8 key is not an RSA key: {e}")))?
        } else if let Some(der) = pem_block(private_key_pem, "RSA PRIVATE KEY") {
            RsaKeyPair::from_der(&der).map_err(|e| bad(format!("the PKCS#1 key cannot be read: {e}")))?
        } else {
            return Err(bad("no unencrypted PRIVATE KEY or RSA PRIVATE KEY block".into()));
        };
        let certificate_der =
            pem_block(certificate_pem, "CERTIFICATE").ok_or_else(|| bad("no CERTIFICATE block".into()))?;
        Ok(CertificateCredential { key, certificate_der, send_x5c: false })
    }

    /// Also send the certificate itself (`x5c`), for subject-name-and-issuer authentication.
    pub fn with_x5c(mut self, send: bool) -> Self {
        self.send_x5c = send;
        self
    }

    /// The certificate's SHA-256 thumbprint, base64url (the `x5t#S256` header).
    pub fn thumbprint_sha256(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(&self.certificate_der))
    }

    /// A signed client assertion for `client_id` at `token_endpoint`, valid from `now`.
    pub fn assertion(&self, client_id: &str, token_endpoint: &str, now: OffsetDateTime) -> String {
        let mut header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint_sha256()});
        if self.send_x5c {
            header["x5c"] = json!([STANDARD.encode(&self.certificate_der)]);
        }
        let t = now.unix_timestamp();
        let claims = json!({
            "aud": token_endpoint, "iss": client_id, "sub": client_id, "jti": uuid::Uuid::new_v4(),
            "nbf": t, "iat": t, "exp": t + ASSERTION_SECONDS,
        });
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public_modulus_len()];
        // Signing with a valid RSA key into a buffer of its modulus size cannot fail.
        self.key
            .sign(&RSA_PSS_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature)
            .expect("RSA-PSS signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// The DER bytes of the first PEM block labelled `label`.
fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = pem[start..].find(&end)? + start;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_found_by_label() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_block(pem, "CERTIFICATE"), Some(vec![0, 1, 2, 3]));
        assert_eq!(pem_block(pem, "PRIVATE KEY"), None);
        // "RSA PRIVATE KEY" does not match "PRIVATE KEY"'s BEGIN line.
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----";
        assert_eq!(pem_block(rsa, "PRIVATE KEY"), None);
    }

    #[test]
    fn keys_that_are_not_rsa_or_not_keys_are_configuration_errors() {
        let cert = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----";
        let e = CertificateCredential::from_pem("nothing", cert).err().unwrap();
        assert!(e.to_string().contains("PRIVATE KEY"), "{e}");
        let junk_key = "-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----";
        assert!(CertificateCredential::from_pem(junk_key, cert).is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        assert_eq!(format!("{:?}", ClientCredential::Secret("hunter2".into())), "Secret(<redacted>)");
        assert!(ClientCredential::Secret(String::new()).validate().is_err());
    }
}
