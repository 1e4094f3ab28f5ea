//! The `accord` process under test: started on a free loopback port in a temporary data dir,
//! watched for its readiness line, and killed (with its data dir removed) when dropped.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Server {
    child: Child,
    pub base: String,
    pub ca_pem: Vec<u8>,
    data_dir: PathBuf,
    /// Left in place when dropped (a restart on the same data dir follows).
    keep_data_dir: bool,
}

/// A fresh temporary data dir.
pub fn temp_data_dir() -> anyhow::Result<PathBuf> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let data_dir = std::env::temp_dir().join(format!("accord-bench-{nanos:x}-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir)?;
    Ok(data_dir)
}

impl Server {
    pub fn start(accord: &Path, scenario: &Path, database_url: Option<&str>) -> anyhow::Result<Server> {
        Server::start_in(accord, Some(scenario), database_url, temp_data_dir()?, false)
    }

    /// In `data_dir`, with `scenario` or (none) the built-in demo world; `keep_data_dir` leaves
    /// the directory for a restart.
    pub fn start_in(
        accord: &Path,
        scenario: Option<&Path>,
        database_url: Option<&str>,
        data_dir: PathBuf,
        keep_data_dir: bool,
    ) -> anyhow::Result<Server> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("https://localhost:{port}");
        let log = std::fs::File::create(data_dir.join("server.log"))?;
        let mut cmd = Command::new(accord);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--public-url")
            .arg(&base)
            // The benchmark measures capacity from one client on one address: the limits that
            // protect a real deployment from such a client are off.
            .args(["--token-requests-per-minute", "0", "--graph-requests-per-10-minutes", "0"])
            .args(["--graph-concurrent-per-mailbox", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(scenario) = scenario {
            cmd.arg("--scenario").arg(scenario);
        }
        if let Some(url) = database_url {
            cmd.arg("--database-url").arg(url);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {}", accord.display()))?;

        // Read stdout on a thread (so we can time out) and keep draining it afterwards.
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("accord listening") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        let mut server = Server { child, base, ca_pem: Vec::new(), data_dir, keep_data_dir };
        // Generous: loading a generated 100,000-user tenant on first start takes a while.
        if ready_rx.recv_timeout(Duration::from_secs(600)).is_err() {
            bail!("accord did not become ready; its log:\n{}", server.log());
        }
        server.ca_pem = std::fs::read(server.data_dir.join("tls/ca.pem")).context("reading the dev CA")?;
        Ok(server)
    }

    /// The development TLS certificate and key (for `localhost`) Accord made in its data dir.
    pub fn tls_files(&self) -> (PathBuf, PathBuf) {
        let dir = self.data_dir.join("tls");
        (dir.join("server.pem"), dir.join("server-key.pem"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// On Ctrl-C or SIGTERM, stops the server and removes its data dir before exiting (the
    /// normal path does this in `Drop`, which a signal would skip).
    pub fn stop_on_signal(&self, runtime: &tokio::runtime::Runtime) {
        let (pid, data_dir) = (self.child.id().to_string(), self.data_dir.clone());
        runtime.spawn(async move {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
            eprintln!("interrupted: stopping accord (pid {pid})");
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            let _ = std::fs::remove_dir_all(&data_dir);
            std::process::exit(130);
        });
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first: a restart on the same data dir wants a clean shutdown.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}
