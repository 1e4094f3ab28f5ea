//! Building the app (database, kit, templates, TLS) and serving it over HTTPS.

use crate::db::{Db, SqlStateStore, SqlTokenStore};
use crate::web::{AppState, Settings};
use accord_connect::{CertificateCredential, Config, ConnectClient, ScopePurpose};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the vendor app needs to run.
#[derive(Clone, Debug)]
pub struct AppConfig {
    pub listen: SocketAddr,
    /// Scheme, host and port the browser uses, without a trailing slash.
    pub public_url: String,
    pub data_dir: PathBuf,
    pub accord_url: String,
    /// PEM of the identity platform's CA to trust, if any.
    pub accord_ca: Option<PathBuf>,
    pub client_id: String,
    pub client_secret: String,
    /// A certificate and its key (PEM files): when set, the app authenticates with them instead
    /// of the secret.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
    pub support_password: String,
    /// Seconds between background syncs; 0 turns them off.
    pub sync_interval: u64,
    /// Days ahead that are synced.
    pub sync_days: u32,
    /// A loopback address for a plain-HTTP listener that receives Graph's change
    /// notifications (Accord accepts such URLs with `--allow-http-notification-urls`). Without
    /// it, notifications go to the public URL, which the platform must be able to reach over
    /// HTTPS with a certificate it trusts.
    pub webhook_listen: Option<SocketAddr>,
    /// That listener, already bound (`demo` binds it before Accord starts, to name its port in
    /// the world's consent webhook); wins over `webhook_listen`.
    pub webhook_listener: Option<Arc<std::net::TcpListener>>,
    /// The signing secret of Accord's consent webhook for this app (`POST /webhooks/consent`).
    pub consent_webhook_secret: Option<String>,
}

/// Every permission Meeting Insights asks for and why: the technical guide, and the kit's
/// configuration. Sign-in asks for the delegated ones the app uses ([`SIGN_IN_SCOPES`]);
/// `.default` consents to the app registration's whole static list.
pub fn scopes() -> Vec<ScopePurpose> {
    vec![
        ScopePurpose::delegated("openid", "Sign you in with your work account."),
        ScopePurpose::delegated("profile", "Show your name in Meeting Insights."),
        ScopePurpose::delegated("email", "Show your e-mail address next to your meetings."),
        ScopePurpose::delegated(
            "offline_access",
            "Keep your calendar in sync while you are not using Meeting Insights (a refresh token).",
        ),
        ScopePurpose::delegated("User.Read", "Read your basic profile, to know who you are."),
        ScopePurpose::delegated("Calendars.Read", "Show your upcoming meetings and prepare insights for them."),
        ScopePurpose::delegated("OnlineMeetings.Read", "Recognise online meetings and their join links."),
        ScopePurpose::application(
            "Calendars.Read",
            "Sync the meetings of everyone in your organisation, without each person having to connect.",
        ),
        ScopePurpose::application("User.Read.All", "List the people in your organisation whose meetings we sync."),
    ]
}

/// The delegated scopes a user's sign-in asks for (the kit adds openid, profile, offline_access).
pub const SIGN_IN_SCOPES: [&str; 2] = ["User.Read", "Calendars.Read"];

/// A running app: its address, how to stop it, and its task.
pub struct Running {
    pub local: SocketAddr,
    pub handle: axum_server::Handle,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub ca_pem: PathBuf,
}

pub async fn start(config: AppConfig) -> anyhow::Result<Running> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let public = url::Url::parse(&config.public_url).context("--public-url")?;
    if public.scheme() != "https" {
        anyhow::bail!("--public-url must be https (the app sets Secure cookies)");
    }
    let public_url = config.public_url.trim_end_matches('/').to_string();
    let db = Db::open(&config.data_dir).await?;

    let mut kit_config = Config::accord(
        &config.accord_url,
        &config.client_id,
        &config.client_secret,
        format!("{public_url}/auth/callback"),
        format!("{public_url}/admin-consent/callback"),
    );
    if kit_config.is_microsoft_cloud() {
        kit_config = Config::microsoft_cloud(
            &config.client_id,
            &config.client_secret,
            format!("{public_url}/auth/callback"),
            format!("{public_url}/admin-consent/callback"),
        );
    }
    kit_config = kit_config.with_scopes(scopes());
    if let Some((certificate, key)) = &config.client_certificate {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the client certificate file {}", path.display()))
        };
        let credential = CertificateCredential::from_pem(&read(key)?, &read(certificate)?)
            .context("--client-certificate / --client-key")?;
        tracing::info!(x5t_s256 = %credential.thumbprint_sha256(), "authenticating with a certificate");
        kit_config = kit_config.with_certificate(credential);
    }
    if let Some(ca) = &config.accord_ca {
        let pem = std::fs::read(ca).with_context(|| {
            format!("reading the identity platform's CA {} (start Accord first, or pass --accord-ca)", ca.display())
        })?;
        kit_config = kit_config.with_extra_root_ca(pem);
    }
    let states = Arc::new(SqlStateStore { db: db.clone(), ttl: Duration::from_secs(600) });
    let tokens = Arc::new(SqlTokenStore::open(db.clone(), &config.data_dir)?);
    let kit = ConnectClient::with_stores(kit_config, states, tokens).context("configuring accord-connect")?;

    let mut settings = Settings::new(
        &public_url,
        &config.accord_url,
        &config.client_id,
        &config.support_password,
        kit.config().is_microsoft_cloud(),
        config.sync_days,
    );
    settings.consent_webhook_secret = config.consent_webhook_secret.clone();
    let bound = match &config.webhook_listener {
        Some(l) => {
            let l = l.try_clone().context("the webhook listener")?;
            l.set_nonblocking(true)?;
            Some(tokio::net::TcpListener::from_std(l)?)
        }
        None => None,
    };
    let webhook = match (bound, config.webhook_listen) {
        (Some(listener), _) => {
            let local = listener.local_addr()?;
            settings.notification_base = Some(format!("http://{local}"));
            Some(listener)
        }
        (None, Some(addr)) if !addr.ip().is_loopback() => {
            anyhow::bail!("--webhook-listen must be a loopback address (plain HTTP), not {addr}")
        }
        (None, Some(addr)) => {
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
            let local = listener.local_addr()?;
            settings.notification_base = Some(format!("http://{local}"));
            Some(listener)
        }
        (None, None) => {
            settings.notification_base = Some(public_url.clone());
            None
        }
    };
    let state = Arc::new(AppState::new(db, kit, settings)?);
    if let Some(listener) = webhook {
        let routes = crate::push::routes(state.clone()).merge(crate::consent_events::routes(state.clone()));
        tracing::info!(listen = %listener.local_addr()?, "receiving Graph change notifications and consent webhooks over loopback HTTP");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, routes).await {
                tracing::error!(error = %e, "the notification listener stopped");
            }
        });
    }
    if config.sync_interval > 0 {
        crate::sync::spawn_background(state.clone(), Duration::from_secs(config.sync_interval));
    }

    let host = public.host_str().unwrap_or("localhost").to_string();
    let cert = crate::tls::dev_cert(&config.data_dir, &host)?;
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert.cert, &cert.key)
        .await
        .with_context(|| format!("loading {}", cert.cert.display()))?;
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let service = crate::web::router(state).into_make_service();
    let server = axum_server::from_tcp_rustls(listener, tls).handle(handle.clone());
    let task = tokio::spawn(async move { server.serve(service).await });
    tracing::info!(listen = %local, public_url, "demo-vendor is listening");
    Ok(Running { local, handle, task, ca_pem: cert.ca })
}

/// Resolves when Ctrl-C or SIGTERM arrives.
pub async fn shutdown_signal() {
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
}

/// `demo-vendor` (serve): the app alone, against an identity platform that already runs.
pub async fn serve(config: AppConfig, generated_password: bool) -> anyhow::Result<()> {
    let public_url = config.public_url.trim_end_matches('/').to_string();
    let support_password = config.support_password.clone();
    let running = start(config).await?;
    println!("demo-vendor listening on {} as {public_url}", running.local);
    println!("development CA certificate: {} (trust it in your browser)", running.ca_pem.display());
    if generated_password {
        println!("vendor support page: {public_url}/support (password for this run: {support_password})");
    } else {
        println!("vendor support page: {public_url}/support");
    }
    let Running { handle, mut task, .. } = running;
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
            let _ = task.await;
        }
        r = &mut task => { r??; }
    }
    Ok(())
}
