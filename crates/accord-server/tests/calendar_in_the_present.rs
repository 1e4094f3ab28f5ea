//! Worlds that never go out of date: the demo world's meetings are placed relative to the moment
//! it is loaded, so whatever the date — years from now, on a weekend, across daylight saving —
//! every demo user with a calendar has meetings in the next seven days. Reloads on another day
//! neither duplicate events nor (with `relative_times = "keep"`) move them.

use std::collections::BTreeSet;

use accord_core::ids::{TenantId, UserId};
use accord_core::scenario::{self, ParseOptions, Scenario};
use accord_server::crypto::Keyring;
use accord_server::serve::DEMO_WORLD;
use accord_server::service::scenario_loader;
use accord_store::{SqlStore, Store};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

async fn empty_store(name: &str) -> SqlStore {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "accord-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    SqlStore::connect_sqlite_file(&dir.join("accord.db")).await.unwrap()
}

fn demo_world_at(loaded_at: OffsetDateTime) -> Scenario {
    scenario::parse_with("demo_world.toml", DEMO_WORLD, &ParseOptions::at(loaded_at)).unwrap_or_else(|e| panic!("{e}"))
}

/// Every owner of events in `world`: (tenant id, user id, UPN).
async fn owners(store: &SqlStore, world: &Scenario) -> Vec<(TenantId, UserId, String)> {
    let mut out = Vec::new();
    for t in &world.tenants {
        let tenant_id = t.id.unwrap();
        let upns: BTreeSet<&str> = t.events.iter().map(|e| e.owner.as_str()).collect();
        for upn in upns {
            let user = store.user_by_upn(tenant_id, upn).await.unwrap().unwrap();
            out.push((tenant_id, user.id, upn.to_string()));
        }
    }
    out
}

/// Event ids per owner, and the number of events the store holds for the world's owners.
async fn all_event_ids(store: &SqlStore, owners: &[(TenantId, UserId, String)]) -> BTreeSet<Uuid> {
    let mut ids = BTreeSet::new();
    for (tenant_id, user_id, _) in owners {
        for e in store.events_of(*tenant_id, *user_id, None, None).await.unwrap() {
            assert!(ids.insert(e.id));
        }
    }
    ids
}

#[tokio::test]
async fn the_demo_world_has_meetings_in_the_next_seven_days_whatever_the_date() {
    let store = empty_store("present").await;
    let keyring = Keyring::from_master(&[9; 32]);
    // A Saturday evening five years on; then restarts on other days, years apart.
    let first = datetime!(2031-05-17 18:00 UTC);
    let world = demo_world_at(first);
    scenario_loader::load(&store, &keyring, &world).await.unwrap();
    let owners = owners(&store, &world).await;
    assert!(owners.len() >= 6, "{owners:?}");
    let expected_events: usize = world.tenants.iter().map(|t| t.events.len()).sum();
    let ids = all_event_ids(&store, &owners).await;
    assert_eq!(ids.len(), expected_events);

    let days = [
        first,
        datetime!(2040-01-01 00:00 UTC), // a Sunday at midnight
        datetime!(2035-03-30 23:30 UTC), // Friday night (already Saturday in Berlin)
        datetime!(2029-10-28 01:30 UTC), // the night Europe leaves summer time
        datetime!(2026-12-07 08:59 UTC), // a Monday morning, just before the first meeting
        datetime!(2052-02-29 12:00 UTC), // a leap day
    ];
    for now in days {
        // What a server started that day does with a store that already holds the world.
        let moved = scenario_loader::move_relative_events(&store, &keyring, &demo_world_at(now)).await.unwrap();
        assert_eq!(moved, expected_events, "{now}");
        assert_eq!(all_event_ids(&store, &owners).await, ids, "{now}: the same events, moved, none added");
        for (tenant_id, user_id, upn) in &owners {
            let next_week =
                store.events_of(*tenant_id, *user_id, Some(now), Some(now + Duration::days(7))).await.unwrap();
            assert!(!next_week.is_empty(), "{now}: {upn} has no meeting in the next seven days");
        }
        // Every meeting is in the loading day's week or the next one.
        for (tenant_id, user_id, upn) in &owners {
            for e in store.events_of(*tenant_id, *user_id, None, None).await.unwrap() {
                let from_now = e.start - now;
                assert!(
                    from_now > -Duration::days(7) && from_now < Duration::days(14),
                    "{now}: {upn}'s {:?} at {}",
                    e.subject,
                    e.start
                );
            }
        }
    }
}

const SMALL: &str = r#"
relative_times = "RELATIVE"

[[tenant]]
id = "7a0c5d3e-1f2b-4c6d-8e9f-0a1b2c3d4e5f"
display_name = "Tailspin"
domains = ["tailspin.test"]
time_zone = "Europe/Paris"

[[tenant.user]]
upn = "pat@tailspin.test"
display_name = "Pat"
password = "a long enough passphrase"

[[tenant.event]]
owner = "pat@tailspin.test"
subject = "Stand-up"
start = "monday 09:00"
end = "monday 09:15"

[[tenant.event]]
owner = "pat@tailspin.test"
subject = "Stand-up"
start = "tuesday 09:00"
end = "tuesday 09:15"

[[tenant.event]]
owner = "pat@tailspin.test"
subject = "Launch"
start = "2026-12-01T16:00:00Z"
end = "2026-12-01T17:00:00Z"
"#;

fn small(relative: &str, loaded_at: OffsetDateTime) -> Scenario {
    let text = SMALL.replace("RELATIVE", relative);
    scenario::parse_with("small.toml", &text, &ParseOptions::at(loaded_at)).unwrap_or_else(|e| panic!("{e}"))
}

async fn pat_events(store: &SqlStore) -> Vec<(String, OffsetDateTime, Uuid)> {
    let tenant: TenantId = "7a0c5d3e-1f2b-4c6d-8e9f-0a1b2c3d4e5f".parse().unwrap();
    let pat = store.user_by_upn(tenant, "pat@tailspin.test").await.unwrap().unwrap();
    let mut events: Vec<_> = store
        .events_of(tenant, pat.id, None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.subject, e.start, e.id))
        .collect();
    events.sort_by_key(|e| e.1);
    events
}

#[tokio::test]
async fn a_reload_on_another_day_keeps_or_moves_relative_events_and_never_duplicates_them() {
    let store = empty_store("reload").await;
    let keyring = Keyring::from_master(&[9; 32]);
    let thursday = datetime!(2026-12-03 12:00 UTC);
    let six_weeks_on = thursday + Duration::weeks(6);

    scenario_loader::load(&store, &keyring, &small("keep", thursday)).await.unwrap();
    let first = pat_events(&store).await;
    let starts: Vec<_> = first.iter().map(|e| e.1).collect();
    assert_eq!(
        starts,
        [datetime!(2026-11-30 08:00 UTC), datetime!(2026-12-01 08:00 UTC), datetime!(2026-12-01 16:00 UTC)]
    );

    // "keep": loaded again six weeks later, nothing moves and nothing is added.
    scenario_loader::load(&store, &keyring, &small("keep", six_weeks_on)).await.unwrap();
    assert_eq!(pat_events(&store).await, first);

    // "move": the same events (same ids) move to the week of the new load.
    scenario_loader::load(&store, &keyring, &small("move", six_weeks_on)).await.unwrap();
    let moved = pat_events(&store).await;
    let want: Vec<_> = vec![
        ("Launch".to_string(), datetime!(2026-12-01 16:00 UTC)),
        ("Stand-up".to_string(), datetime!(2027-01-11 08:00 UTC)),
        ("Stand-up".to_string(), datetime!(2027-01-12 08:00 UTC)),
    ];
    assert_eq!(moved.iter().map(|e| (e.0.clone(), e.1)).collect::<Vec<_>>(), want);
    let ids = |v: &[(String, OffsetDateTime, Uuid)]| v.iter().map(|e| e.2).collect::<BTreeSet<_>>();
    assert_eq!(ids(&moved), ids(&first));

    // Moving the calendar alone (a restart) touches only the relative events.
    let later = six_weeks_on + Duration::weeks(1);
    let n = scenario_loader::move_relative_events(&store, &keyring, &small("move", later)).await.unwrap();
    assert_eq!(n, 2);
    let again = pat_events(&store).await;
    assert_eq!(again[0].1, datetime!(2026-12-01 16:00 UTC));
    assert_eq!(again[1].1, datetime!(2027-01-18 08:00 UTC));
    assert_eq!(ids(&again), ids(&first));
}
