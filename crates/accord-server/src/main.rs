//! `accord`: the Accord identity platform.

use accord_server::config::{ServeArgs, ServeConfig};
use accord_server::{ops, scenario_loader, serve};
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
}

#[derive(Subcommand)]
enum ScenarioCommand {
    /// Validate a scenario file without starting a server.
    Check {
        /// The scenario file (TOML).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a new signing key; the previous one stays published until the next rotation.
    Rotate(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scenario { command: ScenarioCommand::Check { file } } => check_scenario(&file),
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(serve_command(args))),
        Command::Keys { command: KeysCommand::Rotate(args) } => {
            runtime().and_then(|rt| rt.block_on(rotate_command(args)))
        }
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
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn check_scenario(file: &std::path::Path) -> anyhow::Result<()> {
    let scenario = scenario_loader::parse_file(file)?;
    let users: usize = scenario.tenants.iter().map(|t| t.users.len()).sum();
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
