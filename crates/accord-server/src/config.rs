//! `accord serve` settings: command-line flags, `ACCORD_*` environment variables and an
//! optional TOML file, in that order of precedence, then built-in defaults.

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the flags, with underscores).
    #[arg(long, env = "ACCORD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Holds the SQLite database, the master key and the development TLS material.
    #[arg(long, env = "ACCORD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8443].
    #[arg(long, env = "ACCORD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Base of every URL the server emits (issuer, endpoints, links) [default: https://localhost:8443].
    /// Port 0 (with `--listen …:0`) stands for the port the kernel gives the listener.
    #[arg(long, env = "ACCORD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// PEM certificate chain to serve instead of the generated development certificate.
    #[arg(long, env = "ACCORD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "ACCORD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP (only behind a TLS-terminating proxy).
    #[arg(long, env = "ACCORD_HTTP")]
    pub http: bool,
    /// postgres://… to use PostgreSQL; SQLite in the data dir otherwise.
    #[arg(long, env = "ACCORD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Scenario file to load at start (see docs/scenarios.md).
    #[arg(long, env = "ACCORD_SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// A scenario variable, NAME=VALUE, overriding the default in the file's `[variables]`
    /// (repeatable). The demo world has `vendor_url` [default: https://localhost:9443].
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Refuse the resource owner password credentials grant (ROPC).
    #[arg(long, env = "ACCORD_DISABLE_ROPC")]
    pub disable_ropc: bool,
    /// Log format: text or json.
    #[arg(long, env = "ACCORD_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// SMTP server that delivers notifications, as smtp://host:port, smtps://user:pass@host:465 or
    /// smtp://host:587?tls=required; without it notifications are only kept in the store.
    #[arg(long, env = "ACCORD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of notification mails [default: Accord <noreply@host of the public URL>].
    #[arg(long, env = "ACCORD_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// In-memory directory cache: "off", or how many milliseconds may pass before writes made by
    /// another process on the same database (a replica, the CLI) are seen [default: 1000].
    #[arg(long, env = "ACCORD_DIRECTORY_CACHE")]
    pub directory_cache: Option<String>,
    /// Testing knob: milliseconds between runs of the notification outbox [default: 30000].
    #[arg(long, env = "ACCORD_OUTBOX_INTERVAL_MS", hide = true)]
    pub outbox_interval_ms: Option<u64>,
    /// Graph mailbox data: requests one app may make to one mailbox in ten minutes, as Outlook
    /// limits it (0: no limit) [default: the scenario's [throttling], else 10000]
    #[arg(long, env = "ACCORD_GRAPH_REQUESTS_PER_10_MINUTES")]
    pub graph_requests_per_10_minutes: Option<u32>,
    /// Graph mailbox data: requests one app may have in flight to one mailbox (0: no limit)
    /// [default: the scenario's [throttling], else 4]
    #[arg(long, env = "ACCORD_GRAPH_CONCURRENT_PER_MAILBOX")]
    pub graph_concurrent_per_mailbox: Option<u32>,
    /// Graph: requests one app may make to one tenant in ten seconds (0: no limit) [default: the
    /// scenario's [throttling], else 0]
    #[arg(long, env = "ACCORD_GRAPH_TENANT_REQUESTS_PER_10_SECONDS")]
    pub graph_tenant_requests_per_10_seconds: Option<u32>,
    /// Token endpoint: requests one client id may make from one network address in a minute
    /// (0: no limit) [default: the scenario's [throttling], else 6000]
    #[arg(long, env = "ACCORD_TOKEN_REQUESTS_PER_MINUTE")]
    pub token_requests_per_minute: Option<u32>,
    /// Accept Graph change-notification URLs on http://localhost, 127.0.0.1 or [::1] (for
    /// development and tests; https is required otherwise).
    #[arg(long, env = "ACCORD_ALLOW_HTTP_NOTIFICATION_URLS")]
    pub allow_http_notification_urls: bool,
    /// Let the server's own requests (Graph change notifications, consent webhooks, federated
    /// issuers' keys) reach loopback and private networks (10/8, 172.16/12, 192.168/16,
    /// 100.64/10, fc00::/7): for CI and a vendor's own network, never for a multi-tenant
    /// deployment. Implied by --test-mode; link-local addresses (cloud metadata) are never
    /// reached. Without it only public addresses are (loopback too with
    /// --allow-http-notification-urls).
    #[arg(long, env = "ACCORD_ALLOW_PRIVATE_NETWORK_CALLBACKS")]
    pub allow_private_network_callbacks: bool,
    /// Test mode: serve the control API at /_accord/test (reset to the scenario, load
    /// scenarios, advance the clock, read the decision journal). Never for a real deployment;
    /// refused on an address other than loopback unless --test-mode-on-any-address.
    #[arg(long, env = "ACCORD_TEST_MODE")]
    pub test_mode: bool,
    /// Allow --test-mode on a non-loopback listen address (a CI network, a container).
    #[arg(long, env = "ACCORD_TEST_MODE_ON_ANY_ADDRESS", requires = "test_mode")]
    pub test_mode_on_any_address: bool,
    /// Testing knob: seconds a Graph change notification is retried before it is dropped and
    /// `missed` is sent [default: 14400, Graph's four hours].
    #[arg(long, env = "ACCORD_NOTIFICATION_RETRY_SECONDS", hide = true)]
    pub notification_retry_seconds: Option<u64>,
    /// Testing knob: milliseconds between reviews of subscribers' access [default: 5000].
    #[arg(long, env = "ACCORD_SUBSCRIPTION_REVIEW_MS", hide = true)]
    pub subscription_review_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    http: Option<bool>,
    database_url: Option<String>,
    scenario: Option<PathBuf>,
    #[serde(default)]
    vars: std::collections::BTreeMap<String, String>,
    disable_ropc: Option<bool>,
    log_format: Option<String>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    directory_cache: Option<String>,
    outbox_interval_ms: Option<u64>,
    graph_requests_per_10_minutes: Option<u32>,
    graph_concurrent_per_mailbox: Option<u32>,
    graph_tenant_requests_per_10_seconds: Option<u32>,
    token_requests_per_minute: Option<u32>,
    allow_http_notification_urls: Option<bool>,
    allow_private_network_callbacks: Option<bool>,
    test_mode: Option<bool>,
    test_mode_on_any_address: Option<bool>,
    notification_retry_seconds: Option<u64>,
    subscription_review_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub enum TlsMode {
    Dev,
    Files { cert: PathBuf, key: PathBuf },
    Plain,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Without a trailing slash.
    pub public_url: String,
    pub tls: TlsMode,
    pub database_url: Option<String>,
    pub scenario: Option<PathBuf>,
    /// Scenario variable overrides (the file's `vars` table, then `--var` flags, which win).
    pub vars: Vec<(String, String)>,
    pub allow_ropc: bool,
    pub log_format: LogFormat,
    /// Where notifications are delivered; `None`: they stay in the store.
    pub smtp: Option<crate::service::notifications::SmtpSettings>,
    /// How often the notification outbox runs.
    pub outbox_interval: std::time::Duration,
    /// The store's directory cache (see accord-store's `sql/cache.rs`).
    pub directory_cache: accord_store::CacheSettings,
    /// The limits set by flag or configuration file; the scenario's `[throttling]` and the
    /// defaults fill in the rest ([`ServeConfig::limits`]).
    pub limits: accord_core::scenario::ThrottlingSpec,
    /// Graph change notifications.
    pub notifications: crate::state::NotificationSettings,
    /// Where the server's own requests may go (`egress.rs`).
    pub egress: crate::egress::EgressPolicy,
    /// `--test-mode`.
    pub test_mode: bool,
}

impl ServeConfig {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("{}: invalid configuration", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen = args.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8443".parse().expect("valid default"));
        let test_mode = test_mode(args, &file, listen)?;
        let public_url = args.public_url.clone().or(file.public_url).unwrap_or_else(|| "https://localhost:8443".into());
        let public_url = normalise_public_url(&public_url)?;
        let http = args.http || file.http.unwrap_or(false);
        let tls = match (args.tls_cert.clone().or(file.tls_cert), args.tls_key.clone().or(file.tls_key)) {
            _ if http => TlsMode::Plain,
            (Some(cert), Some(key)) => TlsMode::Files { cert, key },
            (None, None) => TlsMode::Dev,
            _ => bail!("tls_cert and tls_key must be given together"),
        };
        let log_format = match args.log_format.clone().or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("log_format must be 'text' or 'json', not '{other}'"),
        };
        let smtp = match args.smtp_url.clone().or(file.smtp_url) {
            Some(url) => Some(crate::service::notifications::SmtpSettings::parse(
                &url,
                args.smtp_from.clone().or(file.smtp_from).as_deref(),
                &public_url,
            )?),
            None => None,
        };
        let directory_cache = parse_directory_cache(args.directory_cache.clone().or(file.directory_cache).as_deref())?;
        let outbox_interval_ms = args.outbox_interval_ms.or(file.outbox_interval_ms).unwrap_or(30_000).max(10);
        let allow_http_loopback =
            args.allow_http_notification_urls || file.allow_http_notification_urls.unwrap_or(false);
        let private_callbacks =
            args.allow_private_network_callbacks || file.allow_private_network_callbacks.unwrap_or(false) || test_mode;
        let egress = crate::egress::EgressPolicy {
            loopback: private_callbacks || allow_http_loopback,
            private: private_callbacks,
        };
        Ok(ServeConfig {
            data_dir: args.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("accord-data")),
            listen,
            public_url,
            tls,
            database_url: args.database_url.clone().or(file.database_url),
            scenario: args.scenario.clone().or(file.scenario),
            vars: merge_vars(file.vars, &args.vars),
            allow_ropc: !(args.disable_ropc || file.disable_ropc.unwrap_or(false)),
            log_format,
            smtp,
            outbox_interval: std::time::Duration::from_millis(outbox_interval_ms),
            directory_cache,
            limits: accord_core::scenario::ThrottlingSpec {
                mailbox_requests_per_10_minutes: args
                    .graph_requests_per_10_minutes
                    .or(file.graph_requests_per_10_minutes),
                mailbox_concurrent: args.graph_concurrent_per_mailbox.or(file.graph_concurrent_per_mailbox),
                tenant_requests_per_10_seconds: args
                    .graph_tenant_requests_per_10_seconds
                    .or(file.graph_tenant_requests_per_10_seconds),
                token_requests_per_minute: args.token_requests_per_minute.or(file.token_requests_per_minute),
            },
            test_mode,
            egress,
            notifications: crate::state::NotificationSettings {
                allow_http_loopback,
                retry_window: time::Duration::seconds(
                    args.notification_retry_seconds
                        .or(file.notification_retry_seconds)
                        .unwrap_or(14_400)
                        .min(86_400 * 7) as i64,
                ),
                review_interval: std::time::Duration::from_millis(
                    args.subscription_review_ms.or(file.subscription_review_ms).unwrap_or(5_000).max(100),
                ),
            },
        })
    }

    /// The limits in force: a flag (or the configuration file) wins, then the scenario's
    /// `[throttling]`, then the defaults.
    pub fn limits(&self, scenario: &accord_core::scenario::ThrottlingSpec) -> crate::throttle::Limits {
        let d = crate::throttle::Limits::default();
        let (f, s) = (&self.limits, scenario);
        crate::throttle::Limits {
            mailbox_requests_per_10_minutes: f
                .mailbox_requests_per_10_minutes
                .or(s.mailbox_requests_per_10_minutes)
                .unwrap_or(d.mailbox_requests_per_10_minutes),
            mailbox_concurrent: f.mailbox_concurrent.or(s.mailbox_concurrent).unwrap_or(d.mailbox_concurrent),
            tenant_requests_per_10_seconds: f
                .tenant_requests_per_10_seconds
                .or(s.tenant_requests_per_10_seconds)
                .unwrap_or(d.tenant_requests_per_10_seconds),
            token_requests_per_minute: f
                .token_requests_per_minute
                .or(s.token_requests_per_minute)
                .unwrap_or(d.token_requests_per_minute),
        }
    }

    pub fn secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// `--test-mode`, refused on a non-loopback address unless explicitly allowed: the control
/// API resets the world and moves the clock, and has no authentication of its own.
fn test_mode(args: &ServeArgs, file: &FileConfig, listen: SocketAddr) -> anyhow::Result<bool> {
    let on = args.test_mode || file.test_mode.unwrap_or(false);
    let any_address = args.test_mode_on_any_address || file.test_mode_on_any_address.unwrap_or(false);
    if on && !listen.ip().is_loopback() && !any_address {
        bail!(
            "--test-mode serves an unauthenticated control API: listen on a loopback address (127.0.0.1, ::1), or add --test-mode-on-any-address if this network is a test's own (not {listen})"
        );
    }
    Ok(on)
}

/// `--var NAME=VALUE`.
pub fn parse_var(s: &str) -> Result<(String, String), String> {
    accord_core::scenario::parse_variable_assignment(s)
}

/// The configuration file's `vars`, overridden by flags of the same name.
fn merge_vars(file: std::collections::BTreeMap<String, String>, flags: &[(String, String)]) -> Vec<(String, String)> {
    let mut vars = file;
    for (name, value) in flags {
        vars.insert(name.clone(), value.clone());
    }
    vars.into_iter().collect()
}

fn parse_directory_cache(value: Option<&str>) -> anyhow::Result<accord_store::CacheSettings> {
    let default = accord_store::CacheSettings::default();
    match value.map(str::trim) {
        None => Ok(default),
        Some("off") => Ok(accord_store::CacheSettings { enabled: false, ..default }),
        Some(ms) => match ms.parse::<u64>() {
            Ok(ms) if ms <= 60_000 => {
                Ok(accord_store::CacheSettings { enabled: true, check_interval: std::time::Duration::from_millis(ms) })
            }
            _ => bail!("directory_cache must be 'off' or a number of milliseconds up to 60000, not '{ms}'"),
        },
    }
}

fn normalise_public_url(raw: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(raw).with_context(|| format!("public_url '{raw}' is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        bail!("public_url '{raw}' must be an http(s) URL with a host");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("public_url '{raw}' must not have a query or fragment");
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = ServeConfig::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(c.public_url, "https://localhost:8443");
        assert!(matches!(c.tls, TlsMode::Dev));
        assert!(c.allow_ropc);
        let bad = ServeArgs { public_url: Some("ftp://x".into()), ..Default::default() };
        assert!(ServeConfig::resolve(&bad).is_err());
        let slash = ServeArgs { public_url: Some("https://id.example.com/".into()), ..Default::default() };
        assert_eq!(ServeConfig::resolve(&slash).unwrap().public_url, "https://id.example.com");
    }

    #[test]
    fn directory_cache_setting() {
        let with = |v: &str| ServeArgs { directory_cache: Some(v.into()), ..Default::default() };
        let c = ServeConfig::resolve(&ServeArgs::default()).unwrap().directory_cache;
        assert!(c.enabled);
        assert_eq!(c.check_interval, std::time::Duration::from_secs(1));
        assert!(!ServeConfig::resolve(&with("off")).unwrap().directory_cache.enabled);
        let zero = ServeConfig::resolve(&with("0")).unwrap().directory_cache;
        assert!(zero.enabled && zero.check_interval.is_zero());
        for bad in ["-1", "1s", "60001", ""] {
            let e = ServeConfig::resolve(&with(bad)).unwrap_err().to_string();
            assert!(e.contains("directory_cache must be"), "{bad}: {e}");
        }
    }

    #[test]
    fn scenario_variables_from_the_file_and_flags() {
        let dir = std::env::temp_dir().join(format!("accord-config-vars-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("accord.toml");
        std::fs::write(&file, "[vars]\nvendor_url = \"https://localhost:1\"\nother = \"x\"\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            vars: vec![parse_var("vendor_url=https://localhost:2").unwrap()],
            ..Default::default()
        };
        let c = ServeConfig::resolve(&args).unwrap();
        assert_eq!(
            c.vars,
            [("other".to_string(), "x".to_string()), ("vendor_url".to_string(), "https://localhost:2".to_string())]
        );
        assert!(parse_var("no-equals").unwrap_err().contains("NAME=VALUE"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn smtp_settings_come_from_the_config_file_and_flags_win() {
        let path = std::env::temp_dir().join(format!("accord-smtp-config-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, "smtp_url = \"smtp://file.example:2525\"\nsmtp_from = \"File <file@accord.test>\"\n")
            .unwrap();
        let args = ServeArgs { config: Some(path.clone()), ..Default::default() };
        let c = ServeConfig::resolve(&args).unwrap();
        let smtp = c.smtp.expect("smtp from the file");
        assert_eq!(smtp.redacted_url(), "smtp://file.example:2525");
        assert_eq!(smtp.from().email.to_string(), "file@accord.test");
        assert_eq!(c.outbox_interval, std::time::Duration::from_secs(30));
        let args = ServeArgs {
            config: Some(path.clone()),
            smtp_url: Some("smtp://flag.example:25".into()),
            outbox_interval_ms: Some(250),
            ..Default::default()
        };
        let c = ServeConfig::resolve(&args).unwrap();
        assert_eq!(c.smtp.unwrap().redacted_url(), "smtp://flag.example:25");
        assert_eq!(c.outbox_interval, std::time::Duration::from_millis(250));
        assert!(ServeConfig::resolve(&ServeArgs::default()).unwrap().smtp.is_none());
        let _ = std::fs::remove_file(path);
    }
}
