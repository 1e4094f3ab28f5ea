//! Id token validation: RS256 signature against a JWKS key, issuer, audience, lifetime, nonce.

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A JSON Web Key Set (`/{tenant}/discovery/v2.0/keys`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Jwks {
    #[serde(default)]
    pub keys: Vec<Jwk>,
}

/// One key of a JWKS; only RSA signing keys are used.
#[derive(Clone, Debug, Deserialize)]
pub struct Jwk {
    #[serde(default)]
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
}

impl Jwks {
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid) && k.kty == "RSA" && k.use_.as_deref().is_none_or(|u| u == "sig"))
    }
}

/// The claims of a v2 id token the kit reads; everything is in `raw`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    /// A string, or (rarely) an array with the client id.
    pub aud: Value,
    pub exp: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub iat: Option<i64>,
    pub tid: String,
    pub oid: String,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Every claim as sent.
    #[serde(skip)]
    pub raw: Value,
}

/// A JWT split into its parts. Nothing is verified yet.
pub(crate) struct Jwt {
    pub alg: String,
    pub kid: Option<String>,
    pub payload: Value,
    signing_input: String,
    signature: Vec<u8>,
}

pub(crate) fn decode(token: &str) -> Result<Jwt, String> {
    let mut parts = token.trim().split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("not a JWT (three dot-separated parts expected)".into());
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| "header is not base64url")?)
        .map_err(|_| "header is not JSON")?;
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).map_err(|_| "payload is not base64url")?)
        .map_err(|_| "payload is not JSON")?;
    if !payload.is_object() {
        return Err("payload is not a JSON object".into());
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| "signature is not base64url")?;
    Ok(Jwt {
        alg: header.get("alg").and_then(Value::as_str).unwrap_or_default().to_string(),
        kid: header.get("kid").and_then(Value::as_str).map(str::to_string),
        payload,
        signing_input: format!("{h}.{p}"),
        signature,
    })
}

/// The claims of a token received directly from the token endpoint over TLS (access tokens,
/// whose signature the client is not meant to check: Graph tokens are not verifiable by others).
pub(crate) fn unverified_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

impl Jwt {
    /// RS256 over `header.payload` with the key's modulus and exponent.
    pub fn verify_rs256(&self, key: &Jwk) -> Result<(), String> {
        if self.alg != "RS256" {
            return Err(format!("algorithm {:?} is not RS256", self.alg));
        }
        let (Some(n), Some(e)) = (&key.n, &key.e) else {
            return Err("the signing key has no modulus or exponent".into());
        };
        let n = URL_SAFE_NO_PAD.decode(n).map_err(|_| "the key's modulus is not base64url")?;
        let e = URL_SAFE_NO_PAD.decode(e).map_err(|_| "the key's exponent is not base64url")?;
        RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
            .verify(&RSA_PKCS1_2048_8192_SHA256, self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| "the signature does not verify".to_string())
    }
}

/// What an id token must say.
pub(crate) struct Expectations<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    pub now: i64,
    pub leeway: i64,
}

/// Checks the claims of a token whose signature verified.
pub(crate) fn check_claims(payload: &Value, x: &Expectations<'_>) -> Result<IdTokenClaims, String> {
    let mut claims: IdTokenClaims =
        serde_json::from_value(payload.clone()).map_err(|e| format!("claims missing or malformed: {e}"))?;
    claims.raw = payload.clone();
    if claims.iss != x.issuer {
        return Err(format!("issuer {:?} is not {:?}", claims.iss, x.issuer));
    }
    let aud_ok = match &claims.aud {
        Value::String(a) => a == x.client_id,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(x.client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(format!("audience {} is not this app ({})", claims.aud, x.client_id));
    }
    if claims.exp + x.leeway <= x.now {
        return Err("the token has expired".into());
    }
    if claims.nbf.is_some_and(|nbf| nbf > x.now + x.leeway) {
        return Err("the token is not valid yet (nbf)".into());
    }
    if claims.iat.is_some_and(|iat| iat > x.now + x.leeway) {
        return Err("the token was issued in the future (iat)".into());
    }
    match (x.nonce, claims.nonce.as_deref()) {
        (Some(want), Some(got)) if constant_time_eq(want.as_bytes(), got.as_bytes()) => {}
        (Some(_), Some(_)) => return Err("nonce does not match the sign-in request".into()),
        (Some(_), None) => return Err("nonce missing".into()),
        (None, _) => {}
    }
    Ok(claims)
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! A locally generated RSA key to sign test tokens.
    use super::*;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair, RSA_PKCS1_SHA256};

    pub struct TestKey {
        pair: RsaKeyPair,
        pub kid: String,
    }

    impl TestKey {
        pub fn new(kid: &str) -> Self {
            TestKey { pair: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(), kid: kid.into() }
        }

        pub fn jwk(&self) -> Jwk {
            let public = self.pair.public_key();
            let n = public.modulus().big_endian_without_leading_zero();
            let e = public.exponent().big_endian_without_leading_zero();
            Jwk {
                kty: "RSA".into(),
                kid: Some(self.kid.clone()),
                use_: Some("sig".into()),
                n: Some(URL_SAFE_NO_PAD.encode(n)),
                e: Some(URL_SAFE_NO_PAD.encode(e)),
            }
        }

        pub fn sign(&self, claims: &Value) -> String {
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let mut sig = vec![0u8; self.pair.public_modulus_len()];
            self.pair
                .sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), input.as_bytes(), &mut sig)
                .unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::TestKey;
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://login.example/aaaaaaaa-0000-4000-8000-000000000001/v2.0";

    fn claims(now: i64) -> Value {
        json!({"iss": ISS, "aud": "client-1", "exp": now + 3600, "nbf": now - 5, "iat": now - 5,
               "tid": "aaaaaaaa-0000-4000-8000-000000000001", "oid": "oid-1", "preferred_username": "alice@contoso.test",
               "name": "Alice", "nonce": "n-1"})
    }

    fn expect(now: i64) -> Expectations<'static> {
        Expectations { issuer: ISS, client_id: "client-1", nonce: Some("n-1"), now, leeway: 120 }
    }

    #[test]
    fn a_good_token_verifies_and_a_tampered_one_does_not() {
        let key = TestKey::new("k1");
        let now = 1_800_000_000;
        let token = key.sign(&claims(now));
        let jwt = decode(&token).unwrap();
        jwt.verify_rs256(&key.jwk()).unwrap();
        let c = check_claims(&jwt.payload, &expect(now)).unwrap();
        assert_eq!(c.preferred_username.as_deref(), Some("alice@contoso.test"));
        assert_eq!(c.raw["name"], "Alice");

        // Change one claim, keep the signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut forged = claims(now);
        forged["oid"] = json!("someone-else");
        parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
        let tampered = decode(&parts.join(".")).unwrap();
        assert!(tampered.verify_rs256(&key.jwk()).is_err());
        // Another key does not verify either.
        assert!(jwt.verify_rs256(&TestKey::new("k2").jwk()).is_err());
        // alg none is refused.
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), parts[1]);
        assert!(decode(&none).unwrap().verify_rs256(&key.jwk()).is_err());
    }

    #[test]
    fn claims_are_checked() {
        let now = 1_800_000_000;
        let ok = claims(now);
        assert!(check_claims(&ok, &expect(now)).is_ok());
        let bad = |f: &dyn Fn(&mut Value)| {
            let mut c = ok.clone();
            f(&mut c);
            check_claims(&c, &expect(now)).unwrap_err()
        };
        assert!(bad(&|c| c["iss"] = json!("https://evil/v2.0")).contains("issuer"));
        assert!(bad(&|c| c["aud"] = json!("other-client")).contains("audience"));
        assert!(bad(&|c| c["exp"] = json!(now - 121)).contains("expired"));
        assert!(bad(&|c| c["nbf"] = json!(now + 600)).contains("nbf"));
        assert!(bad(&|c| c["nonce"] = json!("n-2")).contains("nonce"));
        assert!(bad(&|c| {
            c.as_object_mut().unwrap().remove("nonce");
        })
        .contains("nonce"));
        assert!(bad(&|c| {
            c.as_object_mut().unwrap().remove("tid");
        })
        .contains("missing"));
        // Within the leeway, an expired token still passes.
        let mut c = ok.clone();
        c["exp"] = json!(now - 60);
        assert!(check_claims(&c, &expect(now)).is_ok());
        c["aud"] = json!(["client-1"]);
        assert!(check_claims(&c, &expect(now)).is_ok());
    }
}
