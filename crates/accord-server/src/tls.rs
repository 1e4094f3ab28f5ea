//! Development TLS: on first start a private CA and a `localhost` certificate are generated in
//! `DATA_DIR/tls/`. Clients trust `ca.pem`; the CA key never leaves the data dir.

use crate::crypto::write_private;
use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

pub struct DevTls {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

/// Returns the dev CA and server certificate, creating them if missing. `extra_host` (the
/// public URL's host) is added to the certificate's names when it is not localhost.
pub fn ensure_dev_tls(data_dir: &Path, extra_host: Option<&str>) -> anyhow::Result<DevTls> {
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tls =
        DevTls { ca_pem: dir.join("ca.pem"), cert_pem: dir.join("server.pem"), key_pem: dir.join("server-key.pem") };
    if tls.ca_pem.exists() && tls.cert_pem.exists() && tls.key_pem.exists() {
        return Ok(tls);
    }
    let now = OffsetDateTime::now_utc();

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Accord development CA");
    ca.distinguished_name.push(DnType::OrganizationName, "Accord (local development only)");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = now - Duration::days(1);
    ca.not_after = now + Duration::days(3650);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut names = vec!["localhost".to_string()];
    if let Some(host) = extra_host.filter(|h| *h != "localhost" && h.parse::<IpAddr>().is_err()) {
        names.push(host.to_string());
    }
    let mut leaf = CertificateParams::new(names)?;
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf.subject_alt_names.push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    if let Some(ip) = extra_host.and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok()) {
        if !ip.is_loopback() {
            leaf.subject_alt_names.push(SanType::IpAddress(ip));
        }
    }
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf.not_before = now - Duration::days(1);
    leaf.not_after = now + Duration::days(397);
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;

    std::fs::write(&tls.ca_pem, ca_cert.pem()).with_context(|| format!("writing {}", tls.ca_pem.display()))?;
    write_private(&dir.join("ca-key.pem"), ca_key.serialize_pem().as_bytes())?;
    std::fs::write(&tls.cert_pem, leaf_cert.pem()).with_context(|| format!("writing {}", tls.cert_pem.display()))?;
    write_private(&tls.key_pem, leaf_key.serialize_pem().as_bytes())?;
    Ok(tls)
}
