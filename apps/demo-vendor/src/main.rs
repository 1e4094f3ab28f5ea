//! Meeting Insights, the demo SaaS vendor app: the vendor side of the Office 365 consent guide,
//! built on the `accord-connect` kit, against Accord (or the Microsoft cloud).
//!
//! `demo-vendor` serves the app; `demo-vendor demo` starts Accord with its demo world and the
//! app together (docs/demo.md).

mod app;
mod consent_events;
mod db;
mod demo;
mod push;
mod session;
mod sync;
mod tls;
mod web;

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The demo world's registration of Meeting Insights (crates/accord-server/src/demo_world.toml).
pub const DEMO_CLIENT_ID: &str = "3bcad3f8-39bc-495b-b118-04d692e0bb31";
pub const DEMO_CLIENT_SECRET: &str = "demo-vendor-secret-change-me";
/// The signing secret of the demo world's consent webhook for Meeting Insights.
pub const DEMO_CONSENT_WEBHOOK_SECRET: &str = "whsec_ZGVtby12ZW5kb3ItY29uc2VudC13ZWJob29rLWNoYW5nZS1tZQ==";
/// The support password `demo` uses unless one is given.
pub const DEMO_SUPPORT_PASSWORD: &str = "Passw0rd!vendor-support";

#[derive(Parser, Debug)]
#[command(
    name = "demo-vendor",
    version,
    about = "Meeting Insights: the demo SaaS vendor app for Accord (admin consent, user consent, calendar sync)",
    long_about = "Meeting Insights: the demo SaaS vendor app for Accord.\n\n\
        Without a command it serves the app over HTTPS against an identity platform that already runs \
        (Accord, or the Microsoft cloud with --accord-url https://login.microsoftonline.com).\n\
        `demo-vendor demo` starts Accord with its demo world and the app together: see docs/demo.md.",
    args_conflicts_with_subcommands = false
)]
struct Cli {
    #[command(flatten)]
    app: AppArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the vendor app (the default)
    Serve,
    /// Start Accord with the demo world and this app together; print the URLs, accounts and walk-through
    Demo(DemoArgs),
}

#[derive(Args, Debug, Clone)]
struct AppArgs {
    /// Address the app listens on
    #[arg(long, global = true, env = "DEMO_VENDOR_LISTEN", default_value = "127.0.0.1:9443")]
    listen: SocketAddr,
    /// The app's URL as browsers see it; the redirect URIs are {public-url}/auth/callback and
    /// {public-url}/admin-consent/callback
    #[arg(long, global = true, env = "DEMO_VENDOR_PUBLIC_URL", default_value = "https://localhost:9443")]
    public_url: String,
    /// The app's own SQLite database, TLS certificate and keys
    #[arg(long, global = true, env = "DEMO_VENDOR_DATA_DIR", default_value = "demo-vendor-data")]
    data_dir: PathBuf,
    /// The identity platform: Accord's public URL (or https://login.microsoftonline.com)
    #[arg(long, global = true, env = "DEMO_VENDOR_ACCORD_URL", default_value = "https://localhost:8443")]
    accord_url: String,
    /// PEM certificate(s) to trust for the identity platform [default: accord-data/tls/ca.pem;
    /// with `demo`, ACCORD_DATA_DIR/tls/ca.pem; none for the Microsoft cloud]
    #[arg(long, global = true, env = "DEMO_VENDOR_ACCORD_CA")]
    accord_ca: Option<PathBuf>,
    /// Application (client) id of the app registration
    #[arg(long, global = true, env = "DEMO_VENDOR_CLIENT_ID", default_value = DEMO_CLIENT_ID)]
    client_id: String,
    /// Client secret of the app registration [default: the demo world's]
    #[arg(
        long,
        global = true,
        env = "DEMO_VENDOR_CLIENT_SECRET",
        default_value = DEMO_CLIENT_SECRET,
        hide_default_value = true,
        hide_env_values = true
    )]
    client_secret: String,
    /// PEM certificate registered on the app registration: authenticate with it (a signed
    /// client assertion) instead of the secret; needs --client-key
    #[arg(long, global = true, env = "DEMO_VENDOR_CLIENT_CERTIFICATE", requires = "client_key")]
    client_certificate: Option<PathBuf>,
    /// The certificate's private key (PEM, unencrypted PKCS#8 or PKCS#1 RSA)
    #[arg(long, global = true, env = "DEMO_VENDOR_CLIENT_KEY", requires = "client_certificate")]
    client_key: Option<PathBuf>,
    /// Password of the vendor support page [default: random, printed at start; with `demo`:
    /// Passw0rd!vendor-support]
    #[arg(long, global = true, env = "DEMO_VENDOR_SUPPORT_PASSWORD", hide_env_values = true)]
    support_password: Option<String>,
    /// Seconds between background calendar syncs (0: only on sign-in and "Sync now")
    #[arg(long, global = true, env = "DEMO_VENDOR_SYNC_INTERVAL", default_value_t = 60)]
    sync_interval: u64,
    /// Days ahead that are synced
    #[arg(
        long,
        global = true,
        env = "DEMO_VENDOR_SYNC_DAYS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..=366)
    )]
    sync_days: u32,
    /// Signing secret (whsec_…) of Accord's consent webhook for this app: consent changes are
    /// received at /webhooks/consent [default: the demo world's]
    #[arg(
        long,
        global = true,
        env = "DEMO_VENDOR_CONSENT_WEBHOOK_SECRET",
        default_value = DEMO_CONSENT_WEBHOOK_SECRET,
        hide_default_value = true,
        hide_env_values = true
    )]
    consent_webhook_secret: String,
    /// Loopback address of a plain-HTTP listener for Graph's change notifications (port 0: any
    /// free port) [default: none, notifications go to the public URL; with `demo`: 127.0.0.1:0]
    #[arg(long, global = true, env = "DEMO_VENDOR_WEBHOOK_LISTEN")]
    webhook_listen: Option<SocketAddr>,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// The accord binary [default: `accord` next to this executable, built first with
    /// `cargo build -p accord-server` when run from the workspace]
    #[arg(long, env = "ACCORD_BIN")]
    pub accord_bin: Option<PathBuf>,
    /// Accord's data directory (its SQLite database, signing keys and development CA)
    #[arg(long, env = "ACCORD_DATA_DIR", default_value = "accord-data")]
    pub accord_data_dir: PathBuf,
    /// Do not run `cargo build -p accord-server` before starting
    #[arg(long)]
    pub no_build: bool,
    /// Start from scratch: delete both SQLite databases (Accord reloads its demo world)
    #[arg(long)]
    pub reset: bool,
}

impl AppArgs {
    fn config(&self, accord_ca: Option<PathBuf>, support_password: String) -> app::AppConfig {
        app::AppConfig {
            listen: self.listen,
            public_url: self.public_url.trim_end_matches('/').to_string(),
            data_dir: self.data_dir.clone(),
            accord_url: self.accord_url.trim_end_matches('/').to_string(),
            accord_ca,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            client_certificate: self.client_certificate.clone().zip(self.client_key.clone()),
            support_password,
            sync_interval: self.sync_interval,
            sync_days: self.sync_days,
            webhook_listen: self.webhook_listen,
            webhook_listener: None,
            consent_webhook_secret: Some(self.consent_webhook_secret.clone()).filter(|s| !s.is_empty()),
        }
    }
}

fn is_microsoft_cloud(url: &str) -> bool {
    url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).is_some_and(|h| {
        matches!(h.as_str(), "login.microsoftonline.com" | "login.microsoft.com" | "login.windows.net")
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEMO_VENDOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            None | Some(Command::Serve) => {
                let ca = match &cli.app.accord_ca {
                    Some(p) => Some(p.clone()),
                    None if is_microsoft_cloud(&cli.app.accord_url) => None,
                    None => Some(PathBuf::from("accord-data/tls/ca.pem")),
                };
                let (password, generated) = match &cli.app.support_password {
                    Some(p) if !p.is_empty() => (p.clone(), false),
                    _ => (accord_connect::random_token()[..16].to_string(), true),
                };
                app::serve(cli.app.config(ca, password), generated).await
            }
            Some(Command::Demo(demo)) => {
                let password = cli.app.support_password.clone().unwrap_or_else(|| DEMO_SUPPORT_PASSWORD.to_string());
                let ca = cli.app.accord_ca.clone().unwrap_or_else(|| demo.accord_data_dir.join("tls/ca.pem"));
                let mut config = cli.app.config(Some(ca), password);
                config.webhook_listen =
                    config.webhook_listen.or_else(|| Some("127.0.0.1:0".parse().expect("a socket address")));
                demo::run(config, demo).await
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["demo-vendor", "demo", "--listen", "127.0.0.1:9555", "--no-build"]).unwrap();
        assert_eq!(cli.app.listen.port(), 9555);
        assert!(matches!(cli.command, Some(Command::Demo(DemoArgs { no_build: true, .. }))));
        let cli = Cli::try_parse_from(["demo-vendor", "--accord-url", "https://login.microsoftonline.com"]).unwrap();
        assert!(cli.command.is_none());
        assert!(is_microsoft_cloud(&cli.app.accord_url));
        assert_eq!(cli.app.client_id, DEMO_CLIENT_ID);
        assert_eq!(cli.app.public_url, "https://localhost:9443");
    }
}
