//! The peer measured beside Accord: panva's `oidc-provider` (npm, pinned in `peer/package.json`
//! and its lockfile, installed here by `npm ci` on first use) in two cluster workers issuing
//! RS256 JWT client-credentials tokens over HTTPS (`peer/server.mjs`). It serves Accord's own
//! development certificate, so the bench trusts both the same way.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const CLIENT_ID: &str = "bench-client";
pub const CLIENT_SECRET: &str = "bench-secret-0123456789";
pub const SCOPE: &str = "read";

pub struct Peer {
    child: Child,
    pub base: String,
}

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peer")
}

/// The installed oidc-provider version (from its package.json).
pub fn version() -> String {
    let file = peer_dir().join("node_modules/oidc-provider/package.json");
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

impl Peer {
    pub fn start(cert: &Path, key: &Path, workers: usize) -> anyhow::Result<Peer> {
        let dir = peer_dir();
        if !dir.join("node_modules/oidc-provider").exists() {
            eprintln!("installing the peer (npm ci in {})", dir.display());
            let ok = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status()?.success();
            if !ok {
                bail!("npm ci failed in {}", dir.display());
            }
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .args(["--port", &port.to_string(), "--workers", &workers.to_string()])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .env("NODE_ENV", "production")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting node (the peer)")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("peer listening") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        let mut peer = Peer { child, base: format!("https://localhost:{port}") };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = peer.child.kill();
            bail!("the peer did not start");
        }
        Ok(peer)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SIGTERM to the primary: its workers exit when it is gone.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}
