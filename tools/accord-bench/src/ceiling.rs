//! The machine and its RSA-2048 signing ceiling (`openssl speed`), against which token
//! throughput is judged: every access or ID token costs one RSA-2048 signature.

use anyhow::{bail, Context};
use std::process::Command;

pub struct Machine {
    pub cores: usize,
    pub model: String,
}

pub fn machine() -> Machine {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine { cores, model }
}

/// RSA-2048 signatures per second from `openssl speed -seconds S -multi N rsa2048`.
pub fn rsa2048_signs_per_second(seconds: u64, processes: u32) -> anyhow::Result<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "-multi", &processes.to_string(), "rsa2048"])
        .output()
        .context("running openssl speed (is openssl installed?)")?;
    if !out.status.success() {
        bail!("openssl speed failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    parse_sign_rate(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("no RSA-2048 sign/s in openssl output:\n{}", String::from_utf8_lossy(&out.stdout)))
}

/// RSA-2048 PKCS#1 SHA-256 signatures per second with aws-lc-rs (the server's library), on
/// `threads` threads for `seconds`: the ceiling of the code the server actually runs, to set
/// beside `openssl speed`'s.
pub fn aws_lc_signs_per_second(seconds: u64, threads: u32) -> anyhow::Result<f64> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    let pair = std::sync::Arc::new(
        RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| anyhow::anyhow!("generating an RSA key: {e}"))?,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let message = b"eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoLm1pY3Jvc29mdC5jb20ifQ";
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let pair = pair.clone();
            std::thread::spawn(move || {
                let (rng, mut sig, mut n) = (SystemRandom::new(), vec![0; pair.public_modulus_len()], 0u64);
                while std::time::Instant::now() < deadline {
                    pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig).expect("signing works");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    Ok(total as f64 / seconds as f64)
}

/// Finds the `sign/s` column of the summary table, e.g.
/// ```text
///                   sign    verify    sign/s verify/s
/// rsa 2048 bits 0.000695s 0.000020s   1439.6  49373.8
/// ```
/// (newer OpenSSL versions add encrypt/decrypt columns; the header says where sign/s is).
fn parse_sign_rate(text: &str) -> Option<f64> {
    let header = text.lines().rev().find(|l| l.split_whitespace().any(|w| w == "sign/s"))?;
    let column = header.split_whitespace().position(|w| w == "sign/s")?;
    let row = text.lines().rev().find(|l| l.trim_start().starts_with("rsa") && l.contains("2048 bits"))?;
    let values = row.split_once("bits")?.1;
    values.split_whitespace().nth(column)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_sign_rate;

    #[test]
    fn parses_openssl_3_0_and_3_2_tables() {
        let v30 = "                  sign    verify    sign/s verify/s\nrsa 2048 bits 0.000695s 0.000020s   1439.6  49373.8\n";
        assert_eq!(parse_sign_rate(v30), Some(1439.6));
        let v32 = "                   sign    verify    encrypt   decrypt   sign/s verify/s  encr./s  decr./s\n\
                   rsa  2048 bits 0.000661s 0.000019s 0.000020s 0.000650s   1512.4  52341.0  50000.1   1538.5\n";
        assert_eq!(parse_sign_rate(v32), Some(1512.4));
        assert_eq!(parse_sign_rate("nothing here"), None);
    }
}
