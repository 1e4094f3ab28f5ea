//! Token signing keys: RSA-2048 generated on first start, sealed at rest, rotated with overlap
//! (the previous key stays in the JWKS so tokens it signed keep verifying).

use crate::crypto::Keyring;
use accord_store::{KeyStatus, SigningKeyRecord, Store};
use anyhow::{anyhow, Context};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::{Arc, RwLock};

const SEAL_PURPOSE: &str = "signing-key";

pub struct SigningKey {
    pub kid: String,
    pair: RsaKeyPair,
    /// base64url of the JOSE header, computed once.
    header_b64: String,
    pub jwk: Value,
}

impl SigningKey {
    fn from_pkcs8(der: &[u8]) -> anyhow::Result<Self> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| anyhow!("stored signing key is not valid PKCS#8: {e}"))?;
        let public = pair.public_key();
        let n = B64URL.encode(public.modulus().big_endian_without_leading_zero());
        let e = B64URL.encode(public.exponent().big_endian_without_leading_zero());
        // RFC 7638 thumbprint as the key id: stable, derived, and unique per key.
        let thumbprint_input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = B64URL.encode(Sha256::digest(thumbprint_input.as_bytes()));
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": kid});
        // No `x5t`: it is a certificate thumbprint, and these keys have no certificate.
        let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
        Ok(SigningKey { header_b64: B64URL.encode(header.to_string()), kid, pair, jwk })
    }

    /// Signs `claims` as a compact RS256 JWT.
    pub fn sign(&self, claims: &Value) -> String {
        let payload = B64URL.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let signing_input = format!("{}.{}", self.header_b64, payload);
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut sig)
            .expect("RSA signing with a valid key cannot fail");
        format!("{signing_input}.{}", B64URL.encode(sig))
    }
}

#[derive(Default)]
struct KeySet {
    active: Option<Arc<SigningKey>>,
    published: Vec<Arc<SigningKey>>,
}

/// The keys in use, loaded from the store and refreshed so replicas see rotations.
pub struct Signer {
    keys: RwLock<KeySet>,
}

impl Signer {
    /// Loads the keys, generating the first one if the store has none.
    pub async fn load(store: &dyn Store, keyring: &Keyring) -> anyhow::Result<Self> {
        let signer = Signer { keys: RwLock::new(KeySet::default()) };
        if store.signing_keys().await?.iter().all(|k| k.status != KeyStatus::Active) {
            generate_and_store(store, keyring).await?;
        }
        signer.reload(store, keyring).await?;
        Ok(signer)
    }

    pub async fn reload(&self, store: &dyn Store, keyring: &Keyring) -> anyhow::Result<()> {
        let mut set = KeySet::default();
        for record in store.signing_keys().await? {
            if record.status == KeyStatus::Retired {
                continue;
            }
            let der = keyring.open(SEAL_PURPOSE, &record.sealed_private_key).with_context(|| {
                format!("signing key {} cannot be unsealed: is this the master key it was sealed with?", record.kid)
            })?;
            let key = Arc::new(SigningKey::from_pkcs8(&der)?);
            if record.status == KeyStatus::Active && set.active.is_none() {
                set.active = Some(key.clone());
            }
            set.published.push(key);
        }
        if set.active.is_none() {
            return Err(anyhow!("no active signing key in the store"));
        }
        *self.keys.write().expect("key lock") = set;
        Ok(())
    }

    pub fn active(&self) -> Arc<SigningKey> {
        self.keys.read().expect("key lock").active.clone().expect("loaded signer has an active key")
    }

    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.keys.read().expect("key lock").published.iter().map(|k| k.jwk.clone()).collect();
        json!({ "keys": keys })
    }
}

async fn generate_and_store(store: &dyn Store, keyring: &Keyring) -> anyhow::Result<SigningKeyRecord> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow!("RSA key generation failed"))?;
    let der = pair.as_der().map_err(|_| anyhow!("RSA key export failed"))?;
    let key = SigningKey::from_pkcs8(der.as_ref())?;
    let record = SigningKeyRecord {
        kid: key.kid.clone(),
        sealed_private_key: keyring.seal(SEAL_PURPOSE, der.as_ref()),
        status: KeyStatus::Active,
        created_at: accord_core::clock::now(),
    };
    store.insert_signing_key(&record).await?;
    Ok(record)
}

/// Rotation: a new active key; the old active key becomes `previous` (still published);
/// any older `previous` key is retired. Returns (new kid, previous kid).
pub async fn rotate(store: &dyn Store, keyring: &Keyring) -> anyhow::Result<(String, Option<String>)> {
    let existing = store.signing_keys().await?;
    let new = generate_and_store(store, keyring).await?;
    let mut previous = None;
    for old in existing {
        match old.status {
            KeyStatus::Active => {
                store.set_signing_key_status(&old.kid, KeyStatus::Previous).await?;
                previous = Some(old.kid);
            }
            KeyStatus::Previous => store.set_signing_key_status(&old.kid, KeyStatus::Retired).await?,
            KeyStatus::Retired => {}
        }
    }
    Ok((new.kid, previous))
}

impl SigningKey {
    fn verify_signature(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, self.pair.public_key().as_ref())
            .verify(signing_input, signature)
            .is_ok()
    }
}

impl Signer {
    /// Verifies a JWT we signed (any published key) and returns its claims. Expiry and
    /// audience are the caller's to check: this only proves the token is ours and intact.
    pub fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.splitn(3, '.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        let header: Value = serde_json::from_slice(&B64URL.decode(h).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "RS256" {
            return None;
        }
        let kid = header.get("kid")?.as_str()?;
        let key = self.keys.read().expect("key lock").published.iter().find(|k| k.kid == kid).cloned()?;
        let signature = B64URL.decode(s).ok()?;
        let signing_input_len = h.len() + 1 + p.len();
        if !key.verify_signature(&token.as_bytes()[..signing_input_len], &signature) {
            return None;
        }
        serde_json::from_slice(&B64URL.decode(p).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_store::SqlStore;

    /// A signer over a fresh store in a temporary file (removed when the test ends), with
    /// its first key.
    async fn signer() -> (Signer, SqlStore, Keyring, TempFile) {
        let path = std::env::temp_dir().join(format!("accord-signing-{}.db", uuid::Uuid::new_v4()));
        let store = SqlStore::connect_sqlite_file(&path).await.unwrap();
        let keyring = Keyring::from_master(&[7; 32]);
        let signer = Signer::load(&store, &keyring).await.unwrap();
        (signer, store, keyring, TempFile(path))
    }

    struct TempFile(std::path::PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    /// The signature part replaced by `f` of its bytes, still valid base64url: the RSA check
    /// itself must refuse it (not the decoder).
    fn with_signature(token: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut bytes = B64URL.decode(sig).unwrap();
        f(&mut bytes);
        format!("{input}.{}", B64URL.encode(bytes))
    }

    #[tokio::test]
    async fn only_intact_tokens_of_a_published_key_verify() {
        let (signer, store, keyring, _file) = signer().await;
        let claims = json!({"sub": "alice", "aud": "api", "n": 1});
        let token = signer.active().sign(&claims);
        assert_eq!(signer.verify(&token), Some(claims.clone()));

        // One bit of the signature, the last byte, or the whole signature of another token.
        assert_eq!(signer.verify(&with_signature(&token, |b| b[0] ^= 1)), None, "a flipped bit");
        assert_eq!(signer.verify(&with_signature(&token, |b| *b.last_mut().unwrap() ^= 0x80)), None);
        let other = signer.active().sign(&json!({"sub": "mallory"}));
        let (_, other_sig) = other.rsplit_once('.').unwrap();
        let (input, _) = token.rsplit_once('.').unwrap();
        assert_eq!(signer.verify(&format!("{input}.{other_sig}")), None, "a signature of other claims");
        // The claims changed under the signature (valid base64url and JSON).
        let (h, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = B64URL.encode(serde_json::to_vec(&json!({"sub": "alice", "aud": "api", "n": 2})).unwrap());
        assert_eq!(signer.verify(&format!("{h}.{forged}.{sig}")), None, "altered claims");
        // Another algorithm or an unknown key id in the header.
        let none = B64URL.encode(json!({"typ": "JWT", "alg": "none", "kid": signer.active().kid}).to_string());
        assert_eq!(signer.verify(&format!("{none}.{}.", rest.split_once('.').unwrap().0)), None, "alg none");
        let unknown = B64URL.encode(json!({"typ": "JWT", "alg": "RS256", "kid": "not-ours"}).to_string());
        assert_eq!(signer.verify(&format!("{unknown}.{rest}")), None, "an unknown kid");
        // Not a JWT at all.
        for junk in ["", "a.b", "a.b.c", "...", &token[..token.len() - 10]] {
            assert_eq!(signer.verify(junk), None, "{junk}");
        }

        // After a rotation the previous key still verifies what it signed; a key that was
        // never published does not.
        rotate(&store, &keyring).await.unwrap();
        signer.reload(&store, &keyring).await.unwrap();
        assert_eq!(signer.verify(&token), Some(claims), "the previous key stays published");
        let (stranger, _, _, _file2) = self::signer().await;
        assert_eq!(signer.verify(&stranger.active().sign(&json!({"sub": "alice"}))), None, "another server's key");
    }

    #[tokio::test]
    async fn a_restart_keeps_its_key_and_of_two_active_keys_the_newest_signs() {
        let (signer, store, keyring, _file) = signer().await;
        let kid = signer.active().kid.clone();
        // A second start on the same store signs with the same key and generates none.
        let again = Signer::load(&store, &keyring).await.unwrap();
        assert_eq!(again.active().kid, kid);
        assert_eq!(store.signing_keys().await.unwrap().len(), 1, "a start generated another key");
        // Mid-rotation (the new key stored, the old one not yet demoted) a replica reads two
        // active keys: the newer signs, and both are published.
        let newer = generate_and_store(&store, &keyring).await.unwrap();
        again.reload(&store, &keyring).await.unwrap();
        assert_eq!(again.active().kid, newer.kid, "the newest active key signs");
        let jwks = again.jwks();
        let published: Vec<&str> =
            jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(published.len(), 2);
        assert!(published.contains(&kid.as_str()) && published.contains(&newer.kid.as_str()));
    }
}
