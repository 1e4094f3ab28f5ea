//! Test mode (`accord serve --test-mode`): what a vendor's test suite does to the platform
//! between tests. Reset to the loaded world, load more of a world, make time pass. The surface
//! is `test_control.rs`; the CLI calls it over HTTPS.

use crate::service::consent_webhooks;
use crate::service::maintenance::{self, Report};
use crate::service::scenario_loader::{self, LoadSummary};
use crate::state::AppState;
use accord_core::fault_rules::RuleSpec;
use accord_core::scenario::{self, ParseOptions, Scenario};
use time::{Duration, OffsetDateTime};

/// The longest single advance (ten years): beyond, dates leave what the store keeps sensibly.
pub const MAX_ADVANCE_SECONDS: i64 = 10 * 366 * 86_400;

/// A world loaded: what it held, and its fault rules for the caller to put in force (the
/// rules live with the surface that injects them).
pub struct Loaded {
    pub summary: LoadSummary,
    pub faults: Vec<RuleSpec>,
}

/// Wipes every tenant, app and piece of protocol state (the signing keys stay) and loads the
/// server's world again; the decision journal starts empty.
pub async fn reset(state: &AppState) -> anyhow::Result<Loaded> {
    let (world, name) = scenario_loader::parse_source(&state.world)?;
    state.store.wipe_world().await?;
    crate::decision_journal::clear();
    let loaded = load(state, world).await?;
    tracing::warn!(world = name, tenants = loaded.summary.tenants, "test mode: the world was reset");
    Ok(loaded)
}

/// Loads a scenario (TOML text) over what exists, as `--scenario` does at start.
pub async fn load_scenario(state: &AppState, text: &str) -> anyhow::Result<Loaded> {
    let parsed = scenario::parse_with("scenario (control API)", text, &ParseOptions::now())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let loaded = load(state, parsed).await?;
    tracing::warn!(tenants = loaded.summary.tenants, "test mode: a scenario was loaded");
    Ok(loaded)
}

async fn load(state: &AppState, world: Scenario) -> anyhow::Result<Loaded> {
    let summary = scenario_loader::load(&*state.store, &state.keyring, &world).await?;
    consent_webhooks::load_from_scenario(state, &world).await?;
    Ok(Loaded { summary, faults: world.faults })
}

/// Moves the clock forward and runs what came due (request expiry, purges, subscription
/// reviews), so it has happened when the call returns.
pub async fn advance(state: &AppState, by: Duration) -> (OffsetDateTime, Report) {
    let now = accord_core::clock::advance(by);
    tracing::warn!(by_seconds = by.whole_seconds(), now = %now, "test mode: the clock was advanced");
    let report = maintenance::run_all_due(state).await;
    (now, report)
}
