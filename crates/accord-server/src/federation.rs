//! Workload identity federation: a client assertion signed by an external OpenID issuer (GitHub
//! Actions, Kubernetes, another cloud) stands in for the app's own credential when one of the
//! app's federated identity credentials names its issuer, subject and audience
//! (docs: entra-reference-wave2.md §2).
//!
//! Matching is exact and case-sensitive, as in Entra since 2025, and each mismatch has its own
//! error (AADSTS700211 issuer, 700212 audience, 700213 subject, 7002138 subject differing only in
//! case). The issuer's keys are a JWKS pinned on the credential (for CI without network) or come
//! from the issuer's discovery document; fetched keys are cached per issuer and fetched again
//! when a token names an unknown `kid` (at most once a minute, so a flood of tokens with made-up
//! `kid`s cannot turn Accord into a request amplifier). Only issuers an administrator registered
//! are ever fetched: the issuer is matched before any network request; and the fetches go only
//! where the server's egress policy lets them (`egress.rs`: public addresses by default), since
//! a token request is anonymous and the fetch's outcome is in its error.

use crate::client_certificates::{b64url, within_time_range};
use crate::egress::{failure_reason, Egress};
use accord_core::directory::{is_loopback_url, Application, FederatedCredential};
use accord_core::Aadsts;
use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Entra keeps the first 100 signing keys of an issuer.
const MAX_KEYS: usize = 100;
/// Largest discovery or JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Fetched keys are used this long before they are fetched again.
const KEYS_FRESH_FOR: Duration = Duration::from_secs(3600);
/// A token naming an unknown key fetches the issuer's keys again no sooner than this.
const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// One fetch (discovery, then keys) may take this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The parts of an external token needed before its signature is checked.
struct ExternalToken<'a> {
    signing_input: &'a str,
    signature: Vec<u8>,
    alg: String,
    kid: Option<String>,
    claims: Value,
}

impl<'a> ExternalToken<'a> {
    fn parse(jwt: &'a str) -> Result<Self, Aadsts> {
        let malformed = |why: &str| Aadsts::invalid_client_assertion(why);
        let jwt = jwt.trim();
        let (signing_input, signature_b64) =
            jwt.rsplit_once('.').ok_or_else(|| malformed("it is not a JWT (three dot-separated parts)"))?;
        let [header_b64, claims_b64] = signing_input.split('.').collect::<Vec<_>>()[..] else {
            return Err(malformed("it is not a JWT (three dot-separated parts)"));
        };
        let json = |s: &str| b64url(s).and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        let header = json(header_b64).ok_or_else(|| malformed("its header is not base64url JSON"))?;
        let claims = json(claims_b64).ok_or_else(|| malformed("its payload is not base64url JSON"))?;
        let signature = b64url(signature_b64).ok_or_else(|| malformed("its signature is not base64url"))?;
        Ok(ExternalToken {
            signing_input,
            signature,
            alg: header["alg"].as_str().unwrap_or_default().to_string(),
            kid: header["kid"].as_str().map(str::to_string),
            claims,
        })
    }

    fn claim(&self, name: &str) -> &str {
        self.claims[name].as_str().unwrap_or_default()
    }

    /// `aud` as a list (a string or an array of strings).
    fn audiences(&self) -> Vec<&str> {
        match &self.claims["aud"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// The `iss` of an assertion, unverified: tells a federated token (an external issuer) from the
/// app's own certificate assertion (`iss` = client id).
pub fn unverified_issuer(assertion: &str) -> Option<String> {
    let payload = assertion.trim().split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&b64url(payload)?).ok()?;
    claims["iss"].as_str().map(str::to_string)
}

/// The credential an external token matches, or Entra's error for the first part that does not.
fn matching_credential<'c>(
    credentials: &'c [FederatedCredential],
    token: &ExternalToken<'_>,
) -> Result<&'c FederatedCredential, Aadsts> {
    let (iss, sub) = (token.claim("iss"), token.claim("sub"));
    let by_issuer: Vec<&FederatedCredential> = credentials.iter().filter(|c| c.issuer == iss).collect();
    if by_issuer.is_empty() {
        return Err(Aadsts::federation_no_issuer(&shown(iss)));
    }
    let audiences = token.audiences();
    let by_audience: Vec<&FederatedCredential> =
        by_issuer.into_iter().filter(|c| c.audiences.iter().any(|a| audiences.contains(&a.as_str()))).collect();
    if by_audience.is_empty() {
        return Err(Aadsts::federation_no_audience(&shown(&audiences.join(", "))));
    }
    if let Some(c) = by_audience.iter().find(|c| c.subject == sub) {
        return Ok(c);
    }
    if by_audience.iter().any(|c| c.subject.eq_ignore_ascii_case(sub)) {
        return Err(Aadsts::federation_subject_case(&shown(sub)));
    }
    Err(Aadsts::federation_no_subject(&shown(sub)))
}

/// A claim value quoted in an error: printable, bounded.
fn shown(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// An RSA key from a JWKS.
#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// The RSA signing keys of a JWKS document (the first [`MAX_KEYS`]).
fn rsa_keys(jwks: &Value) -> Vec<Jwk> {
    let Some(keys) = jwks["keys"].as_array() else { return Vec::new() };
    keys.iter()
        .take(MAX_KEYS)
        .filter(|k| k["kty"] == "RSA" && k["use"].as_str().is_none_or(|u| u == "sig"))
        .filter_map(|k| {
            Some(Jwk {
                kid: k["kid"].as_str().map(str::to_string),
                n: b64url(k["n"].as_str()?)?,
                e: b64url(k["e"].as_str()?)?,
            })
        })
        .collect()
}

/// Which of `keys` verifies the token: the one its `kid` names, or any when it names none.
/// `None` when the token names a `kid` none of the keys has.
fn verify_with(keys: &[Jwk], token: &ExternalToken<'_>) -> Option<bool> {
    let candidates: Vec<&Jwk> = match &token.kid {
        Some(kid) => keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect(),
        None => keys.iter().collect(),
    };
    if candidates.is_empty() {
        return None;
    }
    Some(candidates.iter().any(|k| {
        RsaPublicKeyComponents { n: &k.n, e: &k.e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, token.signing_input.as_bytes(), &token.signature)
            .is_ok()
    }))
}

/// Keys fetched from issuers' discovery documents, per issuer, with the client that fetches
/// them (bound to the server's egress policy).
pub struct IssuerKeys {
    egress: Egress,
    cache: Mutex<HashMap<String, Fetched>>,
}

#[derive(Clone)]
struct Fetched {
    keys: Vec<Jwk>,
    at: Instant,
}

impl IssuerKeys {
    pub fn new(egress: Egress) -> IssuerKeys {
        IssuerKeys { egress, cache: Mutex::default() }
    }

    fn cached(&self, issuer: &str) -> Option<Fetched> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(issuer).cloned()
    }

    fn store(&self, issuer: &str, keys: Vec<Jwk>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(issuer.to_string(), Fetched { keys, at: Instant::now() });
    }

    /// The issuer's keys: cached while fresh; fetched when stale, or when `want_kid` is not
    /// among them and the last fetch is more than [`REFETCH_AFTER`] old.
    async fn keys(&self, issuer: &str, want_kid: Option<&str>) -> Result<Vec<Jwk>, String> {
        if let Some(f) = self.cached(issuer) {
            let has_kid = want_kid.is_none_or(|kid| f.keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
            let age = f.at.elapsed();
            if age < KEYS_FRESH_FOR && (has_kid || age < REFETCH_AFTER) {
                return Ok(f.keys);
            }
        }
        let keys = fetch_keys(&self.egress, issuer).await?;
        self.store(issuer, keys.clone());
        Ok(keys)
    }
}

/// Fetches `{issuer}/.well-known/openid-configuration`, then its `jwks_uri`.
async fn fetch_keys(egress: &Egress, issuer: &str) -> Result<Vec<Jwk>, String> {
    let discovery_url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let discovery = fetch_json(egress, &discovery_url).await?;
    let jwks_uri = discovery["jwks_uri"].as_str().ok_or("the issuer's discovery document has no jwks_uri")?;
    let parsed = url::Url::parse(jwks_uri).map_err(|_| "the issuer's jwks_uri is not a URL".to_string())?;
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && is_loopback_url(&parsed)) {
        return Err("the issuer's jwks_uri must use https".into());
    }
    Ok(rsa_keys(&fetch_json(egress, jwks_uri).await?))
}

async fn fetch_json(egress: &Egress, url: &str) -> Result<Value, String> {
    let request =
        egress.request(reqwest::Method::GET, url, FETCH_TIMEOUT).map_err(|why| format!("fetching {url}: {why}"))?;
    let mut res = request.send().await.map_err(|e| format!("fetching {url} failed: {}", failure_reason(&e)))?;
    if !res.status().is_success() {
        return Err(format!("fetching {url} answered HTTP {}", res.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| format!("reading {url} failed: {}", failure_reason(&e)))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("{url} is larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| format!("{url} is not JSON"))
}

/// Checks a federated client assertion for `app`: a credential matches its issuer, audience and
/// subject; the issuer's key signed it (RS256, as Entra supports); it is within its time range.
pub async fn verify_assertion(
    issuer_keys: &IssuerKeys,
    app: &Application,
    assertion: &str,
    now: OffsetDateTime,
) -> Result<(), Aadsts> {
    let token = ExternalToken::parse(assertion)?;
    let credential = matching_credential(&app.federated_credentials, &token)?;
    if token.alg != "RS256" {
        return Err(Aadsts::federation_signature("only RS256 issuers are supported"));
    }
    let verified = match &credential.jwks {
        Some(pinned) => {
            let jwks: Value = serde_json::from_str(pinned).unwrap_or_default();
            verify_with(&rsa_keys(&jwks), &token)
        }
        None => {
            let keys = issuer_keys.keys(&credential.issuer, token.kid.as_deref()).await.map_err(|why| {
                tracing::warn!(issuer = %credential.issuer, %why, "federated issuer keys unavailable");
                Aadsts::federation_signature(&format!("the issuer's signing keys could not be read: {why}"))
            })?;
            verify_with(&keys, &token)
        }
    };
    match verified {
        None => return Err(Aadsts::federation_signature("the key the token names (kid) is not the issuer's")),
        Some(false) => return Err(Aadsts::federation_signature("the signature did not verify with the issuer's key")),
        Some(true) => {}
    }
    within_time_range(&token.claims, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    fn credential(name: &str, issuer: &str, subject: &str) -> FederatedCredential {
        FederatedCredential {
            id: uuid::Uuid::nil(),
            name: name.into(),
            issuer: issuer.into(),
            subject: subject.into(),
            audiences: vec!["api://AzureADTokenExchange".into()],
            description: None,
            jwks: None,
        }
    }

    fn unsigned(claims: Value) -> String {
        let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", enc(json!({"alg": "RS256", "kid": "k1"})), enc(claims))
    }

    #[test]
    fn each_mismatch_has_its_own_error() {
        let creds = [
            credential("main", "https://token.actions.githubusercontent.com", "repo:contoso/app:ref:refs/heads/main"),
            credential("k8s", "https://oidc.example/abc", "system:serviceaccount:ns:sa"),
        ];
        let code = |claims: Value| {
            let jwt = unsigned(claims);
            matching_credential(&creds, &ExternalToken::parse(&jwt).unwrap())
                .map(|c| c.name.clone())
                .map_err(|e| e.code)
        };
        let gh = "https://token.actions.githubusercontent.com";
        let aud = "api://AzureADTokenExchange";
        assert_eq!(
            code(json!({"iss": gh, "aud": aud, "sub": "repo:contoso/app:ref:refs/heads/main"})),
            Ok("main".into())
        );
        assert_eq!(
            code(json!({"iss": gh, "aud": [aud, "x"], "sub": "repo:contoso/app:ref:refs/heads/main"})),
            Ok("main".into())
        );
        assert_eq!(code(json!({"iss": format!("{gh}/"), "aud": aud, "sub": "x"})), Err(700211), "issuer exact");
        assert_eq!(code(json!({"iss": gh.to_uppercase(), "aud": aud, "sub": "x"})), Err(700211));
        assert_eq!(code(json!({"iss": gh, "aud": "api://other", "sub": "x"})), Err(700212));
        assert_eq!(code(json!({"iss": gh, "aud": aud, "sub": "repo:contoso/app:ref:refs/heads/dev"})), Err(700213));
        assert_eq!(code(json!({"iss": gh, "aud": aud, "sub": "repo:Contoso/app:ref:refs/heads/main"})), Err(7002138));
        assert_eq!(code(json!({"iss": gh, "aud": aud})), Err(700213), "no subject");
    }

    #[test]
    fn jwks_keys_are_rsa_signing_keys_at_most_a_hundred() {
        let key =
            |kid: &str, kty: &str, usage: &str| json!({"kid": kid, "kty": kty, "use": usage, "n": "AQAB", "e": "AQAB"});
        let mut keys: Vec<Value> =
            vec![key("enc", "RSA", "enc"), key("ec", "EC", "sig"), json!({"kty": "RSA", "kid": "bad"})];
        keys.extend((0..150).map(|i| key(&format!("k{i}"), "RSA", "sig")));
        let parsed = rsa_keys(&json!({ "keys": keys }));
        assert_eq!(parsed.len(), MAX_KEYS - 3, "the first hundred entries, usable ones only");
        assert_eq!(parsed[0].kid.as_deref(), Some("k0"));
        assert!(rsa_keys(&json!({"keys": "nope"})).is_empty());
    }

    #[test]
    fn a_token_naming_an_unknown_kid_is_told_apart_from_a_bad_signature() {
        let jwt = unsigned(json!({"iss": "x"}));
        let token = ExternalToken::parse(&jwt).unwrap();
        let other = Jwk { kid: Some("k2".into()), n: vec![1; 256], e: vec![1, 0, 1] };
        assert_eq!(verify_with(std::slice::from_ref(&other), &token), None);
        let named = Jwk { kid: Some("k1".into()), ..other };
        assert_eq!(verify_with(&[named], &token), Some(false));
    }

    #[test]
    fn the_unverified_issuer_tells_federation_from_certificates() {
        assert_eq!(
            unverified_issuer(&unsigned(json!({"iss": "https://issuer.example"}))).as_deref(),
            Some("https://issuer.example")
        );
        assert_eq!(unverified_issuer("not.a-jwt"), None);
        assert_eq!(unverified_issuer(""), None);
    }
}
