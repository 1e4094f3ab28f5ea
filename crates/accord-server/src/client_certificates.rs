//! Client certificates (`keyCredentials`) and the client assertions signed with them
//! (`private_key_jwt`, RFC 7523): reading a certificate's thumbprints, validity and RSA key, and
//! checking an assertion's signature and claims the way Entra does and real clients need
//! (docs: entra-reference-wave2.md §1).
//!
//! What clients send differs: MSAL Python pads `x5t` and sends float `exp`/`iat` without `nbf`;
//! azure-identity's async credential pads every JWT segment; msal-node sends PS256 with an
//! unpadded `x5t#S256`. All are accepted. An assertion may be reused until it expires (MSAL
//! caches one for minutes), so its `jti` is not single-use.

use accord_core::directory::KeyCredential;
use accord_core::Aadsts;
use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use x509_cert::der::{Decode, DecodePem, Encode};

/// `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Tolerated clock difference between the client and Accord.
const CLOCK_SKEW: Duration = Duration::minutes(5);
/// rsaEncryption.
const RSA_OID: &str = "1.2.840.113549.1.1.1";

/// A parsed certificate: what checking an assertion needs.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    pub der: Vec<u8>,
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The RSA public key, PKCS#1 DER.
    rsa_key: Vec<u8>,
}

impl ClientCertificate {
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let cert = x509_cert::Certificate::from_pem(pem.trim().as_bytes())
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        Self::from_cert(&cert)
    }

    /// What a person pastes: a PEM certificate, or the bare base64 of a DER one (a "Base64
    /// .cer" without its armour).
    pub fn from_text(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            return Self::from_pem(text);
        }
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD.decode(compact).map_err(|_| "expected a PEM certificate or its base64 DER".to_string())?;
        Self::from_der(&der)
    }

    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| format!("not a DER certificate: {e}"))?;
        Self::from_cert(&cert)
    }

    fn from_cert(cert: &x509_cert::Certificate) -> Result<Self, String> {
        let der = cert.to_der().map_err(|e| format!("cannot encode the certificate: {e}"))?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        if spki.algorithm.oid.to_string() != RSA_OID {
            return Err("only RSA certificates are supported (as in Entra for client assertions)".into());
        }
        let rsa_key = spki.subject_public_key.raw_bytes().to_vec();
        let time = |t: x509_cert::time::Time| {
            OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64)
                .map_err(|e| format!("certificate time out of range: {e}"))
        };
        Ok(ClientCertificate {
            sha1: sha1::Sha1::digest(&der).into(),
            sha256: Sha256::digest(&der).into(),
            not_before: time(tbs.validity.not_before)?,
            not_after: time(tbs.validity.not_after)?,
            der,
            rsa_key,
        })
    }

    pub fn from_credential(k: &KeyCredential) -> Result<Self, String> {
        let der = STANDARD.decode(&k.certificate).map_err(|e| format!("stored certificate is not base64: {e}"))?;
        Self::from_der(&der)
    }

    /// The key credential that registers this certificate.
    pub fn credential(&self, key_id: Uuid, display_name: &str) -> KeyCredential {
        KeyCredential {
            key_id,
            display_name: display_name.to_string(),
            certificate: STANDARD.encode(&self.der),
            start: self.not_before,
            end: self.not_after,
            added_at: Some(accord_core::clock::now()),
        }
    }

    /// The SHA-1 thumbprint in upper-case hex, as the portal and Entra's errors show it.
    pub fn thumbprint_hex(&self) -> String {
        hex_upper(&self.sha1)
    }

    fn verifies(&self, alg: &str, message: &[u8], signature: &[u8]) -> bool {
        let scheme: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match alg {
            "RS256" => &RSA_PKCS1_2048_8192_SHA256,
            "PS256" => &RSA_PSS_2048_8192_SHA256,
            _ => return false,
        };
        UnparsedPublicKey::new(scheme, &self.rsa_key).verify(message, signature).is_ok()
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Decodes base64url with or without `=` padding (azure-identity pads every segment).
pub(crate) fn b64url(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()
}

/// A JWT-valued claim that may be an integer or a float (MSAL Python sends floats).
fn seconds(claims: &Value, name: &str) -> Option<i64> {
    claims.get(name).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f.floor() as i64)))
}

/// A JWT whose signature a registered certificate verified.
struct Signed {
    claims: Value,
}

/// Finds the registered certificate a JWT names (`x5t#S256` or `x5t`, and `x5c` when sent) and
/// checks its signature over the exact bytes received, and the certificate's validity.
fn signed_by_registered(
    jwt: &str,
    client_id: &str,
    credentials: &[KeyCredential],
    now: OffsetDateTime,
) -> Result<Signed, Aadsts> {
    let malformed = |why: &str| Aadsts::invalid_client_assertion(why);
    let parts: Vec<&str> = jwt.trim().split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts.as_slice() else {
        return Err(malformed("it is not a JWT (three dot-separated parts)"));
    };
    let header: Value = b64url(header_b64)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| malformed("its header is not base64url JSON"))?;
    let claims: Value = b64url(claims_b64)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| malformed("its payload is not base64url JSON"))?;
    let signature = b64url(signature_b64).ok_or_else(|| malformed("its signature is not base64url"))?;
    let alg = header["alg"].as_str().unwrap_or_default();
    if alg != "RS256" && alg != "PS256" {
        return Err(malformed("its alg must be RS256 or PS256"));
    }

    // Which registered certificate: by x5t#S256 (SHA-256) or x5t (SHA-1) thumbprint.
    let thumb = |name: &str| header[name].as_str().and_then(b64url);
    let (sha256, sha1) = (thumb("x5t#S256"), thumb("x5t"));
    if sha256.is_none() && sha1.is_none() {
        return Err(malformed("its header names no certificate (x5t or x5t#S256)"));
    }
    // Only the certificate the thumbprint names is parsed (hashing the others' DER is enough).
    let named = |der: &[u8]| {
        sha256.as_deref() == Some(&Sha256::digest(der)[..]) || sha1.as_deref() == Some(&sha1::Sha1::digest(der)[..])
    };
    let cert = credentials
        .iter()
        .filter_map(|k| STANDARD.decode(&k.certificate).ok())
        .find(|der| named(der))
        .and_then(|der| ClientCertificate::from_der(&der).ok())
        .ok_or_else(|| {
            let shown = sha1.as_deref().or(sha256.as_deref()).map(hex_upper).unwrap_or_default();
            Aadsts::assertion_key_not_registered(client_id, &shown)
        })?;
    // x5c, when sent, must start with this very certificate.
    if let Some(first) = header["x5c"].as_array().and_then(|c| c.first()).and_then(Value::as_str) {
        let compact: String = first.chars().filter(|c| !c.is_whitespace()).collect();
        if STANDARD.decode(compact).ok().as_deref() != Some(&cert.der[..]) {
            return Err(Aadsts::assertion_key_not_registered(client_id, &cert.thumbprint_hex()));
        }
    }
    // The signature over the exact bytes received.
    let signed = format!("{header_b64}.{claims_b64}");
    if !cert.verifies(alg, signed.as_bytes(), &signature) {
        return Err(Aadsts::assertion_signature_mismatch());
    }
    if now < cert.not_before || now > cert.not_after {
        return Err(Aadsts::assertion_certificate_expired(&cert.thumbprint_hex()));
    }
    Ok(Signed { claims })
}

/// Checks a client assertion for `client_id` against the app's registered certificates.
/// `audiences` are the token endpoint URLs the assertion may name (the one posted to, and the
/// one discovery advertises). Errors are Entra's, all `invalid_client`.
pub fn verify_assertion(
    assertion: &str,
    client_id: &str,
    credentials: &[KeyCredential],
    audiences: &[String],
    now: OffsetDateTime,
) -> Result<(), Aadsts> {
    let malformed = |why: &str| Aadsts::invalid_client_assertion(why);
    let Signed { claims, .. } = signed_by_registered(assertion, client_id, credentials, now)?;

    // Claims: iss = sub = client id; one audience, the token endpoint; a valid time range.
    let iss = claims["iss"].as_str().unwrap_or_default();
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !iss.eq_ignore_ascii_case(client_id) {
        return Err(malformed("its iss must be the client id"));
    }
    if !sub.eq_ignore_ascii_case(iss) {
        return Err(Aadsts::assertion_subject_mismatch());
    }
    let aud = match &claims["aud"] {
        Value::String(a) => a.clone(),
        Value::Array(list) if list.len() == 1 => list[0].as_str().unwrap_or_default().to_string(),
        Value::Array(list) => return Err(Aadsts::assertion_too_many_audiences(list.len())),
        _ => String::new(),
    };
    if !audiences.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(aud.trim_end_matches('/'))) {
        return Err(Aadsts::assertion_wrong_audience());
    }
    within_time_range(&claims, now)
}

pub(crate) fn within_time_range(claims: &Value, now: OffsetDateTime) -> Result<(), Aadsts> {
    let exp = seconds(claims, "exp").ok_or_else(|| Aadsts::invalid_client_assertion("it has no exp"))?;
    let nbf = seconds(claims, "nbf").unwrap_or(0);
    let (now_s, skew) = (now.unix_timestamp(), CLOCK_SKEW.whole_seconds());
    // Saturating: a client may send any number (1e300 saturates to i64::MAX).
    if now_s > exp.saturating_add(skew) || now_s.saturating_add(skew) < nbf {
        return Err(Aadsts::assertion_out_of_time_range(now_s, nbf, exp));
    }
    Ok(())
}

/// The audience of a proof of possession (Graph's `addKey`/`removeKey`): the old Azure AD Graph.
pub const PROOF_AUDIENCE: &str = "00000002-0000-0000-c000-000000000000";

/// Checks Graph's proof of possession for `addKey`/`removeKey`: a JWT signed by one of the
/// app's valid certificates, `aud` = [`PROOF_AUDIENCE`], `iss` = the application's *object* id,
/// in its time range (at most 10 minutes, as Graph asks), its header and payload unpadded.
/// Returns why it is refused, for Graph's error message.
pub fn verify_proof(
    proof: &str,
    app_object_id: &str,
    app_id: &str,
    credentials: &[KeyCredential],
    now: OffsetDateTime,
) -> Result<(), String> {
    let mut segments = proof.trim().split('.');
    if segments.by_ref().take(2).any(|s| s.contains('=')) {
        return Err("the proof's header and payload must be unpadded base64url".into());
    }
    let signed = signed_by_registered(proof, app_id, credentials, now).map_err(|e| e.message)?;
    let claims = &signed.claims;
    if claims["aud"].as_str() != Some(PROOF_AUDIENCE) {
        return Err(format!("the proof's aud must be {PROOF_AUDIENCE}"));
    }
    if !claims["iss"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(app_object_id)) {
        return Err("the proof's iss must be the application's object id".into());
    }
    let (nbf, exp) = (seconds(claims, "nbf"), seconds(claims, "exp"));
    if let (Some(nbf), Some(exp)) = (nbf, exp) {
        if exp - nbf > 600 {
            return Err("the proof may be valid for 10 minutes at most".into());
        }
    } else {
        return Err("the proof needs nbf and exp".into());
    }
    within_time_range(claims, now).map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_times_are_refused_not_overflowed() {
        // `exp` of 1e300 saturates to i64::MAX; adding the skew must not overflow (a panic in
        // debug builds, a wrapped "expired" in release).
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let far = serde_json::json!({"exp": 1e300, "nbf": -1e300});
        assert!(within_time_range(&far, now).is_ok(), "a far exp is a (silly) valid range");
        let late = serde_json::json!({"exp": 1e300, "nbf": 1e300});
        assert_eq!(within_time_range(&late, now).unwrap_err().code, 700024);
        let early = serde_json::json!({"exp": -1e300});
        assert_eq!(within_time_range(&early, now).unwrap_err().code, 700024);
    }

    #[test]
    fn pasted_text_is_pem_or_bare_base64() {
        assert!(ClientCertificate::from_text("not a certificate").is_err());
        assert!(ClientCertificate::from_text("bm90IGEgY2VydA==").unwrap_err().contains("DER"));
        assert!(ClientCertificate::from_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").is_err());
    }

    #[test]
    fn segments_decode_padded_or_not() {
        assert_eq!(b64url("e30"), Some(b"{}".to_vec()));
        assert_eq!(b64url("e30="), Some(b"{}".to_vec()));
        assert_eq!(b64url("!!"), None);
    }

    #[test]
    fn times_may_be_floats() {
        let c = serde_json::json!({"exp": 1717171717.9, "iat": 17, "nbf": "x"});
        assert_eq!(seconds(&c, "exp"), Some(1717171717));
        assert_eq!(seconds(&c, "iat"), Some(17));
        assert_eq!(seconds(&c, "nbf"), None);
    }

    #[test]
    fn non_jwts_are_refused_with_invalid_client() {
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.e30", "e30.e30.e30"] {
            let e = verify_assertion(bad, "x", &[], &[], OffsetDateTime::UNIX_EPOCH).unwrap_err();
            assert_eq!(e.error, accord_core::OAuthError::InvalidClient, "{bad}: {e}");
        }
    }
}
