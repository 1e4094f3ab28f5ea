//! The vendor app's own development TLS: a private CA and a certificate for `localhost` (and the
//! public URL's host), made on first start in `DATA_DIR/tls/`. Browsers and test clients trust
//! `ca.pem`; the CA's key stays in the data directory (mode 0600).

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Where the development certificate lives.
pub struct DevCert {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Returns the certificate files, generating them when one is missing or when `host` is not
/// among the names of the existing certificate (recorded next to it).
pub fn dev_cert(data_dir: &Path, host: &str) -> anyhow::Result<DevCert> {
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = DevCert { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server-key.pem") };
    let names_file = dir.join("names.txt");
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
    if !host.is_empty() && !names.contains(&host) {
        names.push(host);
    }
    let wanted = names.join("\n");
    let current = std::fs::read_to_string(&names_file).unwrap_or_default();
    if files.ca.exists() && files.cert.exists() && files.key.exists() && current == wanted {
        return Ok(files);
    }

    // Keep the CA across certificate renewals, so a browser that trusts it keeps trusting it.
    let ca_key_path = dir.join("ca-key.pem");
    let ca_key = match std::fs::read_to_string(&ca_key_path).ok().and_then(|pem| KeyPair::from_pem(&pem).ok()) {
        Some(k) if files.ca.exists() => k,
        _ => KeyPair::generate().context("generating the CA key")?,
    };
    let now = OffsetDateTime::now_utc();
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "Meeting Insights demo vendor development CA");
    ca.distinguished_name.push(DnType::OrganizationName, "Jiminny Demo Vendor (local development only)");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - Duration::days(1);
    ca.not_after = now + Duration::days(3650);
    // Re-signing the same parameters with the same key yields an equivalent CA certificate.
    let ca_cert = ca.self_signed(&ca_key)?;

    let dns: Vec<String> = names.iter().filter(|n| n.parse::<IpAddr>().is_err()).cloned().collect();
    let mut leaf = CertificateParams::new(dns)?;
    for ip in names.iter().filter_map(|n| n.parse::<IpAddr>().ok()) {
        leaf.subject_alt_names.push(SanType::IpAddress(ip));
    }
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf.not_before = now - Duration::days(1);
    leaf.not_after = now + Duration::days(390);
    let leaf_key = KeyPair::generate().context("generating the server key")?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;

    if !files.ca.exists() {
        std::fs::write(&files.ca, ca_cert.pem()).with_context(|| format!("writing {}", files.ca.display()))?;
        write_secret(&ca_key_path, ca_key.serialize_pem().as_bytes())?;
    }
    std::fs::write(&files.cert, leaf_cert.pem()).with_context(|| format!("writing {}", files.cert.display()))?;
    write_secret(&files.key, leaf_key.serialize_pem().as_bytes())?;
    std::fs::write(&names_file, wanted).with_context(|| format!("writing {}", names_file.display()))?;
    Ok(files)
}

/// Writes a file only its owner can read.
pub fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_made_once_and_renewed_for_a_new_host() {
        let dir = std::env::temp_dir().join(format!("demo-vendor-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = dev_cert(&dir, "localhost").unwrap();
        let ca = std::fs::read_to_string(&first.ca).unwrap();
        let cert = std::fs::read_to_string(&first.cert).unwrap();
        assert!(ca.contains("BEGIN CERTIFICATE") && cert.contains("BEGIN CERTIFICATE"));
        let again = dev_cert(&dir, "localhost").unwrap();
        assert_eq!(std::fs::read_to_string(&again.cert).unwrap(), cert, "not regenerated");
        let other = dev_cert(&dir, "vendor.internal").unwrap();
        assert_ne!(std::fs::read_to_string(&other.cert).unwrap(), cert, "renewed for the new name");
        assert_eq!(std::fs::read_to_string(&other.ca).unwrap(), ca, "the CA is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&other.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is private");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
