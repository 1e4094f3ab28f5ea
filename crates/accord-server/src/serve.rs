//! Starting the server: store, keys, world, TLS, listener, background jobs, shutdown.

use crate::config::{ServeConfig, TlsMode};
use crate::crypto::Keyring;
use crate::service::scenario_loader;
use crate::signing::Signer;
use crate::state::{AppState, Settings, WorldSource};
use accord_store::{SqlStore, Store};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;

/// The built-in demo world, loaded into an empty store when no scenario is given.
pub use crate::service::scenario_loader::DEMO_WORLD;

pub async fn open_store(config: &ServeConfig) -> anyhow::Result<(Arc<dyn Store>, Keyring)> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => {
            Arc::new(SqlStore::connect_with(url, config.directory_cache).await.context("connecting to the database")?)
        }
        None => Arc::new(
            SqlStore::connect_sqlite_file_with(&config.data_dir.join("accord.db"), config.directory_cache)
                .await
                .context("opening the SQLite store")?,
        ),
    };
    let master = std::env::var("ACCORD_MASTER_KEY").ok();
    let keyring = Keyring::load_or_create(&config.data_dir, master.as_deref())?;
    Ok((store, keyring))
}

pub async fn run(mut config: ServeConfig) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Bound first: with `--listen …:0` the port is known only now, and the public URL may name it.
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    config.public_url = public_url_on_port(&config.public_url, local.port());
    crate::ops::metrics_handle();
    // The password workers start now, so a machine that cannot give them threads fails at start,
    // not in the middle of a sign-in.
    crate::password_work::global();
    let (store, keyring) = open_store(&config).await?;
    scenario_loader::ensure_builtins(&*store).await?;
    let world = crate::state::WorldSource { scenario: config.scenario.clone(), variables: config.vars.clone() };
    let mut scenario = load_world(&world, &*store, &keyring).await?;
    let throttling = scenario.throttling;
    let signer = Signer::load(&*store, &keyring).await?;
    let mut settings = Settings::new(config.public_url.clone(), config.allow_ropc);
    settings.notifications = config.notifications.clone();
    let lockout = crate::lockout::Lockout::new(settings.lockout_threshold, settings.lockout_seconds);
    let egress = crate::egress::Egress::new(config.egress).map_err(anyhow::Error::msg)?;
    let state = Arc::new(AppState {
        store,
        keyring,
        signer,
        settings,
        lockout,
        issuer_keys: crate::federation::IssuerKeys::new(egress.clone()),
        egress,
        throttles: crate::throttle::Throttles::new(config.limits(&throttling)),
        graph_outbox: Default::default(),
        world,
        test_mode: config.test_mode,
    });
    crate::service::consent_webhooks::load_from_scenario(&state, &scenario).await?;
    let faults = std::mem::take(&mut scenario.faults);
    // The parsed file is in the store now; a tenant of 100,000 users is tens of megabytes that
    // the server would otherwise hold, and the allocator with it, for its whole life.
    drop(scenario);
    crate::ops::release_free_memory();
    if config.test_mode {
        let ids = crate::test_control::faults::FAULTS.install(faults).map_err(anyhow::Error::msg)?;
        if !ids.is_empty() {
            tracing::warn!(rules = ids.len(), "test mode: the scenario's fault rules are in force");
        }
    } else if !faults.is_empty() {
        tracing::warn!(rules = faults.len(), "the scenario's [[fault]] rules act only with --test-mode: ignored");
    }
    if config.test_mode {
        crate::decision_journal::enable();
        tracing::warn!("TEST MODE: the control API is served at /_accord/test (reset, scenario, clock, journal)");
        println!(
            "TEST MODE: the control API is served at {}/_accord/test — never expose this server",
            config.public_url
        );
    }
    spawn_background_jobs(state.clone());
    crate::ops::spawn_metrics_upkeep();
    crate::service::calendar_sync::spawn_worker(state.clone());
    crate::service::consent_webhooks::spawn_worker(state.clone());
    // The notification outbox runs on its own, shorter interval.
    crate::service::notifications::spawn_outbox(state.store.clone(), config.smtp.as_ref(), config.outbox_interval)?;
    let app = crate::app::router(state);

    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));
    // Each request knows its client address (smart lockout, per-address throttling).
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    match &config.tls {
        TlsMode::Plain => {
            announce(&config, local, None);
            let mut server = axum_server::from_tcp(listener).handle(handle);
            bound_slow_clients(&mut server);
            server.serve(service).await?;
        }
        mode => {
            let (cert, key, ca) = match mode {
                TlsMode::Files { cert, key } => (cert.clone(), key.clone(), None),
                _ => {
                    let host = url::Url::parse(&config.public_url).ok().and_then(|u| u.host_str().map(str::to_string));
                    let dev = crate::tls::ensure_dev_tls(&config.data_dir, host.as_deref())?;
                    (dev.cert_pem, dev.key_pem, Some(dev.ca_pem))
                }
            };
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .with_context(|| format!("loading TLS certificate {} and key {}", cert.display(), key.display()))?;
            announce(&config, local, ca.as_deref());
            let mut server = axum_server::from_tcp_rustls(listener, tls).handle(handle);
            bound_slow_clients(&mut server);
            server.serve(service).await?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long a client may take to send a request's headers. Without it a client that sends
/// headers a byte at a time holds its connection (and a file descriptor) for ever. The TLS
/// handshake has its own bound (axum-server's, 10 s); bodies are bounded in size (`app.rs`).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn bound_slow_clients<A>(server: &mut axum_server::Server<A>) {
    server.http_builder().http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
}

/// Loads `--scenario` at every start, and returns it (its `[throttling]`, fault rules and
/// webhooks are applied once the server's state exists). Without one, an empty
/// store gets the built-in demo world; a store that already holds it keeps everything changed
/// at run time, and only the demo world's calendar (relative times, `relative_times = "move"`)
/// moves to the present.
async fn load_world(
    source: &WorldSource,
    store: &dyn Store,
    keyring: &Keyring,
) -> anyhow::Result<accord_core::scenario::Scenario> {
    let (scenario, name) = scenario_loader::parse_source(source)?;
    if source.scenario.is_none() && !store.tenants().await?.is_empty() {
        let moved = scenario_loader::move_relative_events(store, keyring, &scenario).await?;
        tracing::info!(events = moved, "demo world's calendar moved to the current week");
        return Ok(scenario);
    }
    let summary = scenario_loader::load(store, keyring, &scenario).await?;
    for (name, id) in &summary.generated_tenant_ids {
        tracing::info!(tenant = %name, id = %id, "generated tenant id");
    }
    tracing::info!(
        source = name,
        tenants = summary.tenants,
        users = summary.users,
        groups = summary.groups,
        apps = summary.apps,
        grants = summary.grants,
        assignments = summary.assignments,
        events = summary.events,
        "scenario loaded"
    );
    Ok(scenario)
}

/// A public URL whose port is 0 ("https://localhost:0") takes the port the listener was given,
/// so tests and scripts can ask the kernel for a free port instead of guessing one that another
/// process may take before the server binds it.
fn public_url_on_port(public_url: &str, port: u16) -> String {
    match url::Url::parse(public_url) {
        Ok(mut url) if url.port() == Some(0) => {
            let _ = url.set_port(Some(port));
            url.as_str().trim_end_matches('/').to_string()
        }
        _ => public_url.to_string(),
    }
}

fn announce(config: &ServeConfig, local: std::net::SocketAddr, ca: Option<&std::path::Path>) {
    tracing::info!(listen = %local, public_url = %config.public_url, "accord is listening");
    // A plain line on stdout as well, for scripts and people.
    println!("accord listening on {local} as {}", config.public_url);
    if let Some(ca) = ca {
        println!("development CA certificate: {} (trust it in clients)", ca.display());
    }
    println!("OpenID configuration: {}/organizations/v2.0/.well-known/openid-configuration", config.public_url);
}

fn spawn_background_jobs(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            crate::service::maintenance::run_due(&state).await;
            // What a burst left in the allocator's free lists goes back to the system.
            crate::ops::release_free_memory();
        }
    });
}

async fn shutdown_on_signal(handle: axum_server::Handle) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
    handle.graceful_shutdown(Some(Duration::from_secs(10)));
}

#[cfg(test)]
mod tests {
    use super::public_url_on_port;

    #[test]
    fn port_zero_in_the_public_url_becomes_the_bound_port() {
        assert_eq!(public_url_on_port("https://localhost:0", 40123), "https://localhost:40123");
        assert_eq!(public_url_on_port("https://id.example/base:0", 40123), "https://id.example/base:0");
        assert_eq!(public_url_on_port("https://localhost:8443", 40123), "https://localhost:8443");
        assert_eq!(public_url_on_port("https://id.example", 40123), "https://id.example");
    }
}
