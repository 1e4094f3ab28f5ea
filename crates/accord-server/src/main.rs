//! `accord`: the Accord identity platform.

use accord_server::commands::{self, Review};
use accord_server::config::{ServeArgs, ServeConfig};
use accord_server::service::scenario_loader;
use accord_server::{ops, serve};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "accord", version, about = "Accord: an Entra-compatible identity platform with a consent framework")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTPS with a generated development certificate by default).
    Serve(ServeArgs),
    /// Work with scenario files.
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
    },
    /// Manage token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Review admin-consent requests (the same actions as the admin center).
    Requests {
        #[command(subcommand)]
        command: RequestsCommand,
    },
    /// Import users into a tenant from a JSON Lines file (one object a line:
    /// userPrincipalName, displayName, optional password and groups) or a CSV file with those
    /// columns (groups separated by `;`; Entra's bulk-create template is read too), with
    /// progress; existing users are updated, missing groups created.
    Import {
        #[command(flatten)]
        store: ServeArgs,
        /// Tenant id or verified domain.
        #[arg(long)]
        tenant: String,
        /// The administrator the import acts as (UPN): the audit log names them.
        #[arg(long = "as")]
        admin: String,
        /// The file (JSON Lines or CSV; `-` for standard input).
        file: PathBuf,
        /// The file's format: by its extension (`.csv`), or named.
        #[arg(long, value_enum, default_value = "auto")]
        format: commands::ImportFormat,
    },
    /// List the tenant's app certificates and client secrets by expiry, flagging those expired or
    /// expiring soon.
    Credentials {
        #[command(flatten)]
        store: ServeArgs,
        /// Tenant id or verified domain.
        #[arg(long)]
        tenant: String,
        /// Flag credentials that expire within this many days.
        #[arg(long, default_value_t = 30)]
        within_days: i64,
    },
    /// Drive a server running with --test-mode through its control API: the clock, resets,
    /// scenarios, the decision journal.
    Test {
        #[command(flatten)]
        target: TestTarget,
        #[command(subcommand)]
        command: TestCommand,
    },
    /// Consent coverage of an app in every tenant: what is granted, what is missing (with an
    /// admin-consent link for exactly that), who is assigned.
    Coverage {
        #[command(flatten)]
        store: ServeArgs,
        /// The app's application (client) id.
        #[arg(long)]
        app: String,
        /// text or json.
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Explain, rule by rule, what a user signing in to an app would get. Changes nothing.
    Explain {
        #[command(flatten)]
        store: ServeArgs,
        /// Tenant id or verified domain.
        #[arg(long)]
        tenant: String,
        /// The signing-in user's UPN.
        #[arg(long)]
        user: String,
        /// The app's application (client) id.
        #[arg(long)]
        app: String,
        /// The scope parameter, e.g. "openid User.Read Calendars.Read".
        #[arg(long, default_value = "openid profile offline_access User.Read")]
        scope: String,
    },
}

#[derive(Subcommand)]
enum RequestsCommand {
    /// List pending requests (all requests with --all).
    List {
        #[command(flatten)]
        store: ServeArgs,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        all: bool,
    },
    /// Show one request.
    Show {
        #[command(flatten)]
        store: ServeArgs,
        #[arg(long)]
        tenant: String,
        id: uuid::Uuid,
    },
    /// Approve: grants admin consent for what the app's pending requests ask.
    Approve {
        #[command(flatten)]
        store: ServeArgs,
        #[arg(long)]
        tenant: String,
        /// The reviewer acting (UPN); must be a reviewer with a role that may grant.
        #[arg(long = "as")]
        reviewer: String,
        id: uuid::Uuid,
    },
    /// Deny; the users may ask again.
    Deny {
        #[command(flatten)]
        store: ServeArgs,
        #[arg(long)]
        tenant: String,
        #[arg(long = "as")]
        reviewer: String,
        #[arg(long)]
        justification: String,
        id: uuid::Uuid,
    },
    /// Block: deny and disable the app in the tenant, so no new requests can be filed.
    Block {
        #[command(flatten)]
        store: ServeArgs,
        #[arg(long)]
        tenant: String,
        #[arg(long = "as")]
        reviewer: String,
        #[arg(long)]
        justification: String,
        id: uuid::Uuid,
    },
}

#[derive(Subcommand)]
enum ScenarioCommand {
    /// Validate a scenario file without starting a server.
    Check {
        /// The scenario file (TOML).
        file: PathBuf,
        /// A scenario variable, NAME=VALUE, overriding the file's default (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = accord_server::config::parse_var)]
        vars: Vec<(String, String)>,
    },
    /// Print a generated tenant of any size as a scenario (users in nested groups, apps, an app
    /// that signs in): a fixture for load and scale tests, without a checked-in file.
    Generate {
        /// How many users (one group per ten, one app per hundred).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(2..=1_000_000))]
        users: u32,
        /// Give every user a password (loading hashes each), not only the two that sign in.
        #[arg(long)]
        passwords: bool,
    },
}

#[derive(clap::Args)]
struct TestTarget {
    /// The server's public URL.
    #[arg(long, global = true, env = "ACCORD_URL", default_value = "https://localhost:8443")]
    url: String,
    /// The CA to trust for it (the development CA in its data dir by default).
    #[arg(long, global = true, env = "ACCORD_CA", default_value = "accord-data/tls/ca.pem")]
    ca: PathBuf,
}

#[derive(Subcommand)]
enum TestCommand {
    /// Show the server's clock.
    Clock,
    /// Move the clock forward (the amounts add up); what came due runs at once.
    Advance {
        #[arg(long, default_value_t = 0)]
        days: i64,
        #[arg(long, default_value_t = 0)]
        hours: i64,
        #[arg(long, default_value_t = 0)]
        minutes: i64,
        #[arg(long, default_value_t = 0)]
        seconds: i64,
    },
    /// Back to the world the server started with.
    Reset,
    /// Load a scenario file over the server's world.
    Load { file: PathBuf },
    /// Consent decisions: who asked for what, which rule decided, which AADSTS came out.
    Journal {
        /// Only the entries numbered after this one.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a new signing key; the previous one stays published until the next rotation.
    Rotate(ServeArgs),
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs before Rust's runtime starts (and so before its first allocation): see
/// `ops::tune_mimalloc`.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static TUNE_MIMALLOC: extern "C" fn() = {
    extern "C" fn tune() {
        accord_server::ops::tune_mimalloc();
    }
    tune
};

fn main() -> ExitCode {
    accord_server::ops::tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scenario { command: ScenarioCommand::Check { file, vars } } => check_scenario(&file, vars),
        Command::Scenario { command: ScenarioCommand::Generate { users, passwords } } => {
            let size = accord_core::scenario::generate::TenantSize { users: users as usize, passwords };
            print!("{}", accord_core::scenario::generate::tenant(size));
            Ok(())
        }
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(serve_command(args))),
        Command::Keys { command: KeysCommand::Rotate(args) } => {
            runtime().and_then(|rt| rt.block_on(rotate_command(args)))
        }
        Command::Requests { command } => runtime().and_then(|rt| rt.block_on(requests_command(command))),
        Command::Test { target, command } => runtime().and_then(|rt| rt.block_on(test_command(target, command))),
        Command::Import { store, tenant, admin, file, format } => runtime().and_then(|rt| {
            rt.block_on(async {
                let (store, _) = serve::open_store(&ServeConfig::resolve(&store)?).await?;
                let t = commands::tenant(&*store, &tenant).await?;
                print!("{}", commands::import_users(&*store, &t, &admin, &file, format).await?);
                Ok(())
            })
        }),
        Command::Credentials { store, tenant, within_days } => runtime().and_then(|rt| {
            rt.block_on(async {
                let (store, _) = serve::open_store(&ServeConfig::resolve(&store)?).await?;
                let t = commands::tenant(&*store, &tenant).await?;
                let now = accord_core::clock::now();
                print!("{}", commands::list_credentials(&*store, &t, within_days, now).await?);
                Ok(())
            })
        }),
        Command::Coverage { store, app, format } => runtime().and_then(|rt| {
            rt.block_on(async {
                use anyhow::Context;
                let config = ServeConfig::resolve(&store)?;
                let (store, _) = serve::open_store(&config).await?;
                let app = app.parse().context("--app must be an application (client) id")?;
                let coverage = accord_server::service::coverage::of_app(&*store, app, &config.public_url)
                    .await
                    .map_err(commands::failure)?;
                match format.as_str() {
                    "json" => println!("{}", serde_json::to_string_pretty(&coverage)?),
                    "text" => print!("{}", accord_server::service::coverage::render(&coverage)),
                    other => anyhow::bail!("--format must be text or json, not '{other}'"),
                }
                Ok(())
            })
        }),
        Command::Explain { store, tenant, user, app, scope } => runtime().and_then(|rt| {
            rt.block_on(async {
                let (store, _) = serve::open_store(&ServeConfig::resolve(&store)?).await?;
                let t = commands::tenant(&*store, &tenant).await?;
                print!("{}", commands::explain(&*store, &t, &user, &app, &scope).await?);
                Ok(())
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(accord_server::ops::collect_parked_thread)
        .build()?)
}

fn check_scenario(file: &std::path::Path, vars: Vec<(String, String)>) -> anyhow::Result<()> {
    let mut options = accord_core::scenario::ParseOptions::now();
    options.variables = vars;
    options.bulk_as_text = true;
    let scenario = scenario_loader::parse_file(file, &options)?;
    let users: usize = (0..scenario.tenants.len()).map(|t| scenario.user_count(t)).sum();
    let apps: usize = scenario.tenants.iter().map(|t| t.apps.len()).sum();
    println!("{}: valid ({} tenants, {users} users, {apps} apps)", file.display(), scenario.tenants.len());
    Ok(())
}

async fn serve_command(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::resolve(&args)?;
    ops::init_logging(config.log_format);
    serve::run(config).await
}

async fn rotate_command(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::resolve(&args)?;
    let (store, keyring) = serve::open_store(&config).await?;
    let (new, previous) = accord_server::signing::rotate(&*store, &keyring).await?;
    println!("new signing key: {new}");
    if let Some(p) = previous {
        println!("previous key {p} stays published until the next rotation");
    }
    println!("running servers pick the new key up within a minute");
    Ok(())
}

async fn requests_command(command: RequestsCommand) -> anyhow::Result<()> {
    let (args, tenant) = match &command {
        RequestsCommand::List { store, tenant, .. }
        | RequestsCommand::Show { store, tenant, .. }
        | RequestsCommand::Approve { store, tenant, .. }
        | RequestsCommand::Deny { store, tenant, .. }
        | RequestsCommand::Block { store, tenant, .. } => (store, tenant),
    };
    let (store, _) = serve::open_store(&ServeConfig::resolve(args)?).await?;
    let store = &*store;
    let t = commands::tenant(store, tenant).await?;
    let out = match &command {
        RequestsCommand::List { all, .. } => commands::list_requests(store, &t, *all).await?,
        RequestsCommand::Show { id, .. } => commands::show_request(store, &t, *id).await?,
        RequestsCommand::Approve { reviewer, id, .. } => {
            commands::review(store, &t, *id, reviewer, Review::Approve, None).await?
        }
        RequestsCommand::Deny { reviewer, justification, id, .. } => {
            commands::review(store, &t, *id, reviewer, Review::Deny, Some(justification)).await?
        }
        RequestsCommand::Block { reviewer, justification, id, .. } => {
            commands::review(store, &t, *id, reviewer, Review::Block, Some(justification)).await?
        }
    };
    println!("{}", out.trim_end());
    Ok(())
}

/// `accord test …`: one call of the control API; its JSON answer, pretty-printed.
async fn test_command(target: TestTarget, command: TestCommand) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
    if target.ca.exists() {
        let pem = std::fs::read(&target.ca).with_context(|| format!("reading {}", target.ca.display()))?;
        client =
            client.add_root_certificate(reqwest::Certificate::from_pem(&pem).context("--ca is not a PEM certificate")?);
    }
    let client = client.build()?;
    let url = |path: &str| format!("{}/_accord/test{path}", target.url.trim_end_matches('/'));
    let request = match command {
        TestCommand::Clock => client.get(url("/clock")),
        TestCommand::Advance { days, hours, minutes, seconds } => client
            .post(url("/clock/advance"))
            .json(&serde_json::json!({"days": days, "hours": hours, "minutes": minutes, "seconds": seconds})),
        TestCommand::Reset => client.post(url("/reset")),
        TestCommand::Load { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            client.post(url("/scenario")).body(text)
        }
        TestCommand::Journal { after } => client.get(url(&format!("/journal?after={after}"))),
    };
    let res = request.send().await.with_context(|| format!("calling {}", target.url))?;
    let status = res.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        anyhow::bail!("{} has no control API: is it running with --test-mode?", target.url);
    }
    let body: serde_json::Value = res.json().await.context("the answer is not JSON")?;
    if !status.is_success() {
        anyhow::bail!("{}", body["error"].as_str().unwrap_or("the control API refused the call"));
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}
