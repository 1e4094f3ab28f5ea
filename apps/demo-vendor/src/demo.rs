//! `demo-vendor demo`: the whole demo with one command. Starts `accord serve` with its built-in
//! demo world, waits until it is ready, serves Meeting Insights, and prints the URLs, the
//! accounts and the walk-through of both options of the guide. Ctrl-C stops both.

use crate::app::{self, AppConfig};
use crate::DemoArgs;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The demo world's accounts (README.md, "The demo world").
const ACCOUNTS: &[(&str, &str, &str)] = &[
    ("admin@contoso.test", "Passw0rd!contoso-admin", "Contoso, Global Administrator"),
    ("appadmin@contoso.test", "Passw0rd!contoso-appadmin", "Contoso, Cloud Application Administrator"),
    ("alice@contoso.test", "Passw0rd!contoso-alice", "Contoso user (also bob, carol, dave, erin)"),
    ("admin@fabrikam.test", "Passw0rd!fabrikam-admin", "Fabrikam, Global Administrator"),
    ("frank@fabrikam.test", "Passw0rd!fabrikam-frank", "Fabrikam user (also grace, heidi, ivan)"),
    ("admin@vendor.test", "Passw0rd!vendor-admin", "the vendor's own tenant, Global Administrator"),
];

pub async fn run(config: AppConfig, demo: DemoArgs) -> anyhow::Result<()> {
    let accord_url = url::Url::parse(&config.accord_url).context("--accord-url")?;
    if accord_url.scheme() != "https" || accord_url.host_str() != Some("localhost") {
        bail!("`demo` starts Accord itself: --accord-url must be https://localhost:PORT (got {accord_url})");
    }
    let accord_port = accord_url.port_or_known_default().unwrap_or(443);
    let bin = accord_binary(&demo)?;
    if demo.reset {
        reset(&demo.accord_data_dir, &config.data_dir)?;
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    let log_path = config.data_dir.join("accord.log");
    let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;

    // The loopback listener for Graph's notifications and Accord's consent webhooks, bound now:
    // the demo world names its URL as Meeting Insights' consent webhook.
    let mut config = config;
    let hooks = std::net::TcpListener::bind(config.webhook_listen.unwrap_or(([127, 0, 0, 1], 0).into()))
        .context("binding the webhook listener")?;
    let hooks_at = hooks.local_addr()?;
    config.webhook_listener = Some(std::sync::Arc::new(hooks));

    println!("Starting Accord ({}) with the demo world on {} …", bin.display(), config.accord_url);
    let mut child = tokio::process::Command::new(&bin)
        .arg("serve")
        .arg("--data-dir")
        .arg(&demo.accord_data_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{accord_port}"))
        .arg("--public-url")
        .arg(&config.accord_url)
        // The demo world registers Meeting Insights' redirect URIs under this app's URL.
        .arg("--var")
        .arg(format!("vendor_url={}", config.public_url.trim_end_matches('/')))
        // Meeting Insights receives change notifications and consent webhooks on a loopback
        // HTTP listener.
        .arg("--allow-http-notification-urls")
        .arg("--var")
        .arg(format!("vendor_webhook_url=http://{hooks_at}/webhooks/consent"))
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;

    let ca = config.accord_ca.clone().unwrap_or_else(|| demo.accord_data_dir.join("tls/ca.pem"));
    if let Err(e) = wait_ready(&config.accord_url, &ca, &mut child, &log_path).await {
        stop(&mut child).await;
        return Err(e);
    }
    let running = match app::start(config.clone()).await {
        Ok(r) => r,
        Err(e) => {
            stop(&mut child).await;
            return Err(e.context("starting Meeting Insights"));
        }
    };
    print_banner(&config, &ca, &running.ca_pem, &log_path);

    let app::Running { handle, mut task, .. } = running;
    let outcome = tokio::select! {
        _ = app::shutdown_signal() => Ok(()),
        status = child.wait() => {
            let status = status.map(|s| s.to_string()).unwrap_or_default();
            Err(anyhow::anyhow!("Accord stopped unexpectedly ({status}); see {}", log_path.display()))
        }
        r = &mut task => Err(anyhow::anyhow!("Meeting Insights stopped: {r:?}")),
    };
    println!("\nStopping Meeting Insights and Accord …");
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
    stop(&mut child).await;
    let _ = tokio::time::timeout(Duration::from_secs(6), task).await;
    println!("Stopped.");
    outcome
}

/// `--accord-bin`/`ACCORD_BIN`, else `accord` next to this executable, else `accord` on `PATH`.
/// When this executable is a build of the workspace (it lives in the workspace's target
/// directory, as with `cargo run -p demo-vendor -- demo`), `accord` is built first with the
/// same profile; a copy installed elsewhere never runs cargo.
fn accord_binary(demo: &DemoArgs) -> anyhow::Result<PathBuf> {
    if let Some(bin) = demo.accord_bin.as_ref().filter(|b| !b.as_os_str().is_empty()) {
        if !bin.exists() {
            bail!("the accord binary {} does not exist", bin.display());
        }
        return Ok(bin.clone());
    }
    let name = format!("accord{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().context("locating this executable")?;
    let dir = exe.parent().context("this executable has no directory")?.to_path_buf();
    let bin = dir.join(&name);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target_env = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    if !demo.no_build && built_in_workspace(&dir, &workspace, target_env.as_deref()) {
        build_accord(&workspace, &dir, &bin)?;
    }
    if bin.exists() {
        return Ok(bin);
    }
    if let Some(found) = find_on_path(&name, std::env::var_os("PATH").as_deref()) {
        return Ok(found);
    }
    bail!(
        "no accord binary beside {} or on PATH: install it (or run `cargo build -p accord-server`), or pass --accord-bin / ACCORD_BIN",
        exe.display()
    )
}

/// Whether `exe_dir` is a profile directory of the workspace's target directory
/// (`<target>/<profile>`), the only place a build may be refreshed with cargo.
fn built_in_workspace(exe_dir: &Path, workspace: &Path, target_env: Option<&Path>) -> bool {
    if !workspace.join("crates/accord-server/Cargo.toml").exists() {
        return false;
    }
    let target = match target_env {
        Some(t) if t.is_absolute() => t.to_path_buf(),
        Some(t) => workspace.join(t),
        None => workspace.join("target"),
    };
    match (exe_dir.parent().map(Path::canonicalize), target.canonicalize()) {
        (Some(Ok(parent)), Ok(target)) => parent == target,
        _ => false,
    }
}

/// `cargo build` of `accord` with the profile this executable was built with.
fn build_accord(workspace: &Path, exe_dir: &Path, bin: &Path) -> anyhow::Result<()> {
    let Some(target_dir) = exe_dir.parent() else { return Ok(()) };
    let profile = match exe_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(p) => p.to_string(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("Building Accord: cargo build -p accord-server --profile {profile} …");
    let status = std::process::Command::new(&cargo)
        .current_dir(workspace)
        .args(["build", "-p", "accord-server", "--bin", "accord", "--profile", &profile, "--target-dir"])
        .arg(target_dir)
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("building the accord binary failed ({s})"),
        Err(e) if bin.exists() => {
            eprintln!("warning: could not run cargo ({e}); using {}", bin.display());
            Ok(())
        }
        Err(e) => bail!("cannot run cargo to build accord ({e}); build it first or pass --accord-bin"),
    }
}

/// The first `name` in the directories of a `PATH` value.
fn find_on_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// Deletes the two SQLite databases (with their WAL files); keys and certificates stay.
fn reset(accord_data: &Path, vendor_data: &Path) -> anyhow::Result<()> {
    for (dir, name) in [(accord_data, "accord.db"), (vendor_data, "demo-vendor.db")] {
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.join(format!("{name}{suffix}"));
            match std::fs::remove_file(&path) {
                Ok(()) => println!("removed {}", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
            }
        }
    }
    Ok(())
}

/// Polls `{accord}/readyz` (trusting its CA once the server has written it) until it answers 200.
async fn wait_ready(accord_url: &str, ca: &Path, child: &mut tokio::process::Child, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = format!("{}/readyz", accord_url.trim_end_matches('/'));
    loop {
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "Accord exited ({status}) before it was ready. Is another server using {accord_url}? Its log ({}):\n{}",
                log.display(),
                tail.join("\n")
            );
        }
        if let Ok(pem) = std::fs::read(ca) {
            if let Ok(cert) = reqwest::Certificate::from_pem(&pem) {
                let client = reqwest::Client::builder()
                    .add_root_certificate(cert)
                    .timeout(Duration::from_secs(3))
                    .build()
                    .context("HTTP client")?;
                if let Ok(res) = client.get(&url).send().await {
                    if res.status().is_success() {
                        return Ok(());
                    }
                }
            }
        }
        if Instant::now() > deadline {
            bail!("Accord did not become ready at {url} within 2 minutes; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Asks Accord to stop (SIGTERM: it finishes requests in flight), then kills it after 10 s.
async fn stop(child: &mut tokio::process::Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    }
    #[cfg(not(unix))]
    let _ = child.start_kill();
    if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}

fn print_banner(config: &AppConfig, accord_ca: &Path, vendor_ca: &Path, log: &Path) {
    let a = &config.accord_url;
    let v = &config.public_url;
    let pw = &config.support_password;
    let mut out = String::new();
    let line = "=".repeat(96);
    out.push_str(&format!("\n{line}\n  The Accord demo is running\n{line}\n\n"));
    out.push_str(&format!("  Accord (the identity platform)   {a}\n"));
    out.push_str(&format!("    admin center                   {a}/admin\n"));
    out.push_str(&format!("    My Apps                        {a}/myapps\n"));
    out.push_str(&format!("  Meeting Insights (vendor app)    {v}\n"));
    out.push_str(&format!("    onboarding (administrators)    {v}/onboarding/contoso   {v}/onboarding/fabrikam\n"));
    out.push_str(&format!("    sign-in (users)                {v}/signin/contoso       {v}/signin/fabrikam\n"));
    out.push_str(&format!("    technical guide                {v}/technical-guide\n"));
    out.push_str(&format!("    vendor support                 {v}/support   (password: {pw})\n\n"));
    out.push_str("  Trust both development CAs in your browser (or accept the warnings):\n");
    out.push_str(&format!("    {}\n    {}\n", absolute(accord_ca), absolute(vendor_ca)));
    out.push_str(&format!("  Accord's log: {}\n\n", absolute(log)));
    out.push_str("  Accounts (every password is Passw0rd!<tenant>-<name before the @>):\n");
    for (upn, password, role) in ACCOUNTS {
        out.push_str(&format!("    {upn:<24} {password:<28} {role}\n"));
    }
    out.push_str(&format!(
        "\n  Option 1: pre-authorization by an administrator (Contoso)\n\
         \x20   1. Open {v}/onboarding/contoso and choose \"Grant access for all users\".\n\
         \x20   2. Sign in as admin@contoso.test and choose Accept on \"Permissions requested\".\n\
         \x20   3. Back on Meeting Insights: \"Connected\" to Contoso's tenant.\n\
         \x20   4. In a private window, open {v}/signin/contoso and sign in as alice@contoso.test:\n\
         \x20      no consent prompt; her upcoming meetings are on {v}/meetings/contoso.\n\
         \x20   5. Only some users? Follow \"Only some users or groups\" on the onboarding page\n\
         \x20      (Accord admin center > Enterprise applications > Meeting Insights > Users and groups).\n\
         \n  Option 2: user consent with approval requests (Contoso, before Option 1 or after --reset)\n\
         \x20   1. Open {v}/support (password above) and switch Contoso to \"User consent\".\n\
         \x20   2. In a private window, open {v}/signin/contoso, choose \"Connect my calendar\" and sign in\n\
         \x20      as bob@contoso.test: Accord shows \"Approval required\"; send the request.\n\
         \x20   3. As admin@contoso.test, approve it at {a}/admin/requests.\n\
         \x20   4. Back as bob on {v}/signin/contoso: \"Try again\" connects him without a new prompt.\n\
         \n  Fabrikam already gave admin consent: frank@fabrikam.test signs in at {v}/signin/fabrikam at once.\n\
         \n  Walk-through with every step: docs/demo.md.   Press Ctrl-C to stop both servers.\n{line}\n"
    ));
    println!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory of this test's own, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("demo-vendor-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn workspace_in(root: &Path) -> PathBuf {
        let ws = root.join("ws");
        std::fs::create_dir_all(ws.join("crates/accord-server")).unwrap();
        std::fs::write(ws.join("crates/accord-server/Cargo.toml"), "").unwrap();
        for profile in ["target/debug", "target/release", "elsewhere/bin", "custom-target/dev"] {
            std::fs::create_dir_all(ws.join(profile)).unwrap();
        }
        ws
    }

    #[test]
    fn only_a_build_in_the_workspace_target_dir_runs_cargo() {
        let scratch = Scratch::new("build");
        let ws = workspace_in(&scratch.0);
        assert!(built_in_workspace(&ws.join("target/debug"), &ws, None));
        assert!(built_in_workspace(&ws.join("target/release"), &ws, None));
        // A copy installed elsewhere (issue 18: `--profile bin` was tried) never builds.
        assert!(!built_in_workspace(&ws.join("elsewhere/bin"), &ws, None));
        assert!(!built_in_workspace(&scratch.0, &ws, None));
        // CARGO_TARGET_DIR, absolute or relative to the workspace.
        assert!(built_in_workspace(&ws.join("custom-target/dev"), &ws, Some(Path::new("custom-target"))));
        assert!(built_in_workspace(&ws.join("custom-target/dev"), &ws, Some(&ws.join("custom-target"))));
        assert!(!built_in_workspace(&ws.join("target/debug"), &ws, Some(Path::new("custom-target"))));
        // No workspace (the sources are gone): never.
        let gone = scratch.0.join("no-workspace");
        assert!(!built_in_workspace(&ws.join("target/debug"), &gone, None));
    }

    #[test]
    fn accord_is_found_on_path() {
        let scratch = Scratch::new("path");
        let (a, b) = (scratch.0.join("a"), scratch.0.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("accord"), "").unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(find_on_path("accord", Some(&path)), Some(b.join("accord")));
        assert_eq!(find_on_path("accord", Some(&std::env::join_paths([&a]).unwrap())), None);
        assert_eq!(find_on_path("accord", None), None);
    }
}
