//! The server's secrets: the master key (seals signing keys and flow state at rest), keyed
//! hashes for high-entropy secrets (client secrets, codes, refresh tokens, sessions), random
//! tokens, and argon2id for the low-entropy ones people choose (passwords).

use anyhow::{bail, Context};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// Keys derived from the master key, one per purpose so no two uses share a key.
pub struct Keyring {
    seal_key: LessSafeKey,
    hash_key: [u8; 32],
    csrf_key: [u8; 32],
}

impl Keyring {
    /// Loads `master.key` from the data dir (base64 of 32 bytes), or creates it (mode 0600).
    /// `ACCORD_MASTER_KEY` takes precedence so replicas over one database share a key.
    pub fn load_or_create(data_dir: &Path, from_env: Option<&str>) -> anyhow::Result<Self> {
        let master = match from_env {
            Some(text) => decode_master(text).context("ACCORD_MASTER_KEY is not base64 of 32 bytes")?,
            None => {
                let path = data_dir.join("master.key");
                if path.exists() {
                    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                    decode_master(&text).with_context(|| format!("{} is not base64 of 32 bytes", path.display()))?
                } else {
                    let key = random_bytes::<32>();
                    write_private(&path, B64.encode(key).as_bytes())?;
                    key
                }
            }
        };
        Ok(Self::from_master(&master))
    }

    pub fn from_master(master: &[u8; 32]) -> Self {
        let derive = |purpose: &str| -> [u8; 32] {
            let mut mac = HmacSha256::new_from_slice(master).expect("hmac takes any key length");
            mac.update(purpose.as_bytes());
            mac.finalize().into_bytes().into()
        };
        let seal = derive("accord/seal/v1");
        Keyring {
            seal_key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &seal).expect("32-byte AES key")),
            hash_key: derive("accord/hash/v1"),
            csrf_key: derive("accord/csrf/v1"),
        }
    }

    /// AES-256-GCM with a random nonce prefixed to the ciphertext. `purpose` is bound as AAD so
    /// a value sealed for one use cannot be replayed as another.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.seal_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(purpose.as_bytes()),
                &mut buf,
            )
            .expect("sealing cannot fail for in-memory buffers");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = body.to_vec();
        let plain = self.seal_key.open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buf).ok()?;
        Some(plain.to_vec())
    }

    /// Seals to a URL-safe string (for hidden form fields and cookies).
    pub fn seal_text(&self, purpose: &str, plaintext: &[u8]) -> String {
        B64URL.encode(self.seal(purpose, plaintext))
    }

    pub fn open_text(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        self.open(purpose, &B64URL.decode(sealed).ok()?)
    }

    /// Keyed hash (hex) for high-entropy secrets: fast, and useless without the master key.
    pub fn secret_hash(&self, secret: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.hash_key).expect("hmac key");
        mac.update(secret.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Constant-time comparison of a presented secret with a stored keyed hash.
    pub fn secret_matches(&self, secret: &str, stored_hex: &str) -> bool {
        let mut mac = HmacSha256::new_from_slice(&self.hash_key).expect("hmac key");
        mac.update(secret.as_bytes());
        match unhex(stored_hex) {
            Some(expected) => mac.verify_slice(&expected).is_ok(),
            None => false,
        }
    }

    /// CSRF token bound to a per-browser cookie value.
    pub fn csrf_token(&self, cookie_value: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.csrf_key).expect("hmac key");
        mac.update(cookie_value.as_bytes());
        B64URL.encode(mac.finalize().into_bytes())
    }

    pub fn csrf_valid(&self, cookie_value: &str, token: &str) -> bool {
        let Ok(presented) = B64URL.decode(token) else { return false };
        let mut mac = HmacSha256::new_from_slice(&self.csrf_key).expect("hmac key");
        mac.update(cookie_value.as_bytes());
        mac.verify_slice(&presented).is_ok()
    }
}

fn decode_master(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = B64.decode(text.trim())?;
    match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(k) => Ok(k),
        Err(_) => bail!("expected 32 bytes, got {}", bytes.len()),
    }
}

/// Writes a file readable by the owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// A URL-safe random token with 256 bits of entropy.
pub fn random_token() -> String {
    B64URL.encode(random_bytes::<32>())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// argon2id with the crate's defaults (19 MiB, t=2, p=1: OWASP's minimum).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16-byte salt encodes");
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 with default params").to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the account does not exist, so timing does not reveal it.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("accord-timing-equaliser"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_binds_purpose() {
        let k = Keyring::from_master(&[7; 32]);
        let sealed = k.seal("flow", b"hello");
        assert_eq!(k.open("flow", &sealed).unwrap(), b"hello");
        assert!(k.open("code", &sealed).is_none());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open("flow", &tampered).is_none());
        assert!(k.open("flow", b"short").is_none());
        assert!(k.open_text("flow", "not base64!").is_none());
        // An empty value seals to a nonce and a tag alone, and opens (a length check one byte
        // too strict refused it); one byte less is refused.
        let empty = k.seal("flow", b"");
        assert_eq!(k.open("flow", &empty), Some(Vec::new()));
        assert!(k.open("flow", &empty[..empty.len() - 1]).is_none());
    }

    #[test]
    fn keyed_hashes_verify_only_the_right_secret() {
        let k = Keyring::from_master(&[1; 32]);
        let h = k.secret_hash("s3cret");
        assert!(k.secret_matches("s3cret", &h));
        assert!(!k.secret_matches("s3cret2", &h));
        assert!(!k.secret_matches("s3cret", "zz"));
        assert!(!Keyring::from_master(&[2; 32]).secret_matches("s3cret", &h));
    }

    #[test]
    fn csrf_tokens_bind_to_cookie() {
        let k = Keyring::from_master(&[3; 32]);
        let t = k.csrf_token("cookie-a");
        assert!(k.csrf_valid("cookie-a", &t));
        assert!(!k.csrf_valid("cookie-b", &t));
        assert!(!k.csrf_valid("cookie-a", "garbage"));
    }

    #[test]
    fn passwords_use_argon2id() {
        let h = hash_password("pw");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("pw", &h));
        assert!(!verify_password("px", &h));
        assert!(!verify_password("pw", "not a phc string"));
    }

    #[test]
    fn the_unknown_account_hash_costs_what_a_real_one_does() {
        // Checked against when the account does not exist, so that the answer takes as long as
        // for a real account: it must be a real argon2id hash with the same parameters (an empty
        // or malformed one fails at once, and the timing tells which accounts exist).
        let dummy = PasswordHash::new(dummy_password_hash()).expect("the dummy hash is a PHC string");
        let real_text = hash_password("pw");
        let real = PasswordHash::new(&real_text).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        assert!(!verify_password("pw", dummy_password_hash()));
    }
}
