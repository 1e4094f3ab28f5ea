//! Applies a validated scenario to the store. Objects are matched by natural keys (tenant id
//! or domain, UPN, group name, app id, event owner+subject+start, classification resource +
//! permission) and updated, never duplicated; every change is computed first and applied in one
//! transaction.

use crate::client_certificates::ClientCertificate;
use crate::crypto::Keyring;
use crate::password_work;
use accord_core::consent_records::PermissionClassification;
use accord_core::directory::*;
use accord_core::ids::{AppId, AppObjectId, GroupId, ServicePrincipalId, TenantId, UserId};
use accord_core::microsoft_graph;
use accord_core::scenario::{self, GrantFor, ParseOptions, PrincipalRef, RelativeTimes, Scenario, TenantSpec};
use accord_core::well_known::{DEFAULT_ACCESS_ROLE_ID, GRAPH_APP_ID};
use accord_store::{Change, Store};
use anyhow::{anyhow, bail, Context};
use sha2::{Digest, Sha256};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadSummary {
    pub tenants: usize,
    pub users: usize,
    pub groups: usize,
    pub apps: usize,
    pub grants: usize,
    pub assignments: usize,
    pub events: usize,
    /// Delegated permissions classified low.
    pub classifications: usize,
    /// Tenants whose id was generated (the file gave none): name and id, to print.
    pub generated_tenant_ids: Vec<(String, TenantId)>,
}

/// Microsoft Graph's registration and its service principal in every tenant.
pub async fn ensure_builtins(store: &dyn Store) -> anyhow::Result<()> {
    let graph = microsoft_graph::application();
    let mut changes = Vec::new();
    if store.application_by_app_id(GRAPH_APP_ID).await?.as_ref() != Some(&graph) {
        changes.push(Change::PutApplication(graph.clone()));
    }
    for tenant in store.tenants().await? {
        if store.service_principal_by_app_id(tenant.id, GRAPH_APP_ID).await?.is_none() {
            changes.push(Change::PutServicePrincipal(new_service_principal(tenant.id, &graph)));
        }
    }
    if !changes.is_empty() {
        store.apply(&changes).await?;
    }
    Ok(())
}

fn new_service_principal(tenant_id: TenantId, app: &Application) -> ServicePrincipal {
    ServicePrincipal {
        tenant_id,
        id: ServicePrincipalId::random(),
        app_id: app.app_id,
        display_name: app.display_name.clone(),
        app_owner_tenant_id: app.home_tenant_id,
        enabled: true,
        assignment_required: false,
        created_at: accord_core::clock::now(),
    }
}

/// The built-in demo world (`accord serve` without `--scenario`).
pub const DEMO_WORLD: &str = include_str!("../demo_world.toml");
pub const DEMO_WORLD_NAME: &str = "built-in demo world";

/// Parses the world a server loads, relative times counted from now: its scenario file, or
/// the demo world. The name is for messages.
pub fn parse_source(source: &crate::state::WorldSource) -> anyhow::Result<(Scenario, String)> {
    let mut options = ParseOptions::now();
    options.variables = source.variables.clone();
    // A scenario file may hold 100,000 users: the loader reads them from its text a batch at a
    // time rather than holding them all.
    options.bulk_as_text = true;
    match &source.scenario {
        Some(path) => Ok((parse_file(path, &options)?, path.display().to_string())),
        None => {
            let demo = scenario::parse_with(DEMO_WORLD_NAME, DEMO_WORLD, &options).map_err(|e| anyhow!("{e}"))?;
            Ok((demo, DEMO_WORLD_NAME.to_string()))
        }
    }
}

/// Parses a scenario file; with `bulk_as_text` its users and groups stay in the file, read
/// again from it a batch at a time by the load.
pub fn parse_file(path: &std::path::Path, options: &ParseOptions<'_>) -> anyhow::Result<Scenario> {
    use std::io::Read;
    let reading = || format!("reading {}", path.display());
    let mut file = std::fs::File::open(path).with_context(reading)?;
    let mut text = String::new();
    file.read_to_string(&mut text).with_context(reading)?;
    scenario::parse_file_text(&path.display().to_string(), text, file, options).map_err(|e| anyhow!("{e}"))
}

/// Re-places the events of `scenario` whose times are relative, as a load with
/// `relative_times = "move"` would, and touches nothing else: a world that lives in the present
/// (the demo world) stays there across restarts without undoing what was changed at run time.
/// Tenants and owners that no longer exist are passed over. Returns how many events were placed.
pub async fn move_relative_events(store: &dyn Store, keyring: &Keyring, scenario: &Scenario) -> anyhow::Result<usize> {
    let mut plan = Planner::new(store, keyring, RelativeTimes::Move);
    for spec in &scenario.tenants {
        let Some(tenant_id) = spec.id else { continue };
        if store.tenant(tenant_id).await?.is_none() {
            continue;
        }
        let mut owners = UserIds::new();
        for ev in spec.events.iter().filter(|e| e.relative_start.is_some()) {
            if let Some(user) = store.user_by_upn(tenant_id, &ev.owner).await? {
                owners.insert(ev.owner.to_ascii_lowercase().into_boxed_str(), user.id);
            }
        }
        let moving = spec
            .events
            .iter()
            .filter(|e| e.relative_start.is_some() && owners.contains_key(e.owner.to_ascii_lowercase().as_str()));
        plan.events(tenant_id, &spec.display_name, moving, &owners).await?;
    }
    let Planner { changes, summary, .. } = plan;
    store.apply(&changes).await.context("moving the scenario's events")?;
    Ok(summary.events)
}

/// Plans and applies a scenario in one transaction.
pub async fn load(store: &dyn Store, keyring: &Keyring, scenario: &Scenario) -> anyhow::Result<LoadSummary> {
    ensure_builtins(store).await?;
    let mut plan = Planner::new(store, keyring, scenario.relative_times);
    plan.apps.insert(GRAPH_APP_ID, microsoft_graph::application());
    // Apps first (any tenant may reference any app), keyed by app id.
    let mut tenant_ids = Vec::new();
    for spec in &scenario.tenants {
        let tenant_id = plan.tenant_id(spec).await?;
        tenant_ids.push(tenant_id);
        for app in &spec.apps {
            plan.app(tenant_id, app).await?;
        }
    }
    for (index, tenant_id) in tenant_ids.into_iter().enumerate() {
        plan.tenant(scenario, index, tenant_id).await?;
    }
    let Planner { changes, summary, .. } = plan;
    store.apply(&changes).await.context("applying the scenario (nothing was loaded)")?;
    Ok(summary)
}

struct Planner<'a> {
    store: &'a dyn Store,
    keyring: &'a Keyring,
    changes: Vec<Change>,
    summary: LoadSummary,
    apps: HashMap<AppId, Application>,
    sps: HashMap<(TenantId, AppId), ServicePrincipal>,
    relative_times: RelativeTimes,
}

/// How many scenario users the load compares with the store at once (a few of the scenario's
/// batches): 2,048 users and their stored rows are about a megabyte.
const USERS_COMPARED_AT_ONCE: usize = 2_048;

/// The ids of a tenant's scenario users by case-folded UPN (boxed: 100,000 of them are held
/// while the load resolves references).
type UserIds = HashMap<Box<str>, UserId>;

/// A scenario user before the password work: its id, the stored user it updates, and the
/// stored fingerprint of its scenario password.
struct PlannedUser {
    id: UserId,
    existing: Option<Box<User>>,
    fingerprint: Option<String>,
}

/// What a scenario user's password needs before the user is written.
enum PasswordWork {
    /// No password in the file.
    None,
    /// The stored hash is the one this load stored for this password (its fingerprint).
    Keep(String),
    /// A hash stored otherwise (a reset, an older Accord): check the file's password against
    /// it, and hash the password when it does not match.
    CheckOrHash(String, String),
    /// A new user or one without a hash.
    Hash(String),
}

impl PasswordWork {
    /// The hash to store, running argon2 within the server's bound on password work.
    async fn resolve(self) -> anyhow::Result<Option<String>> {
        let busy = |_| anyhow!("password hashing is saturated; load the scenario again later");
        Ok(match self {
            PasswordWork::None => None,
            PasswordWork::Keep(h) => Some(h),
            PasswordWork::CheckOrHash(p, h) => {
                if password_work::verify(p.clone(), h.clone()).await.map_err(busy)? {
                    Some(h)
                } else {
                    Some(password_work::hash(p).await.map_err(busy)?)
                }
            }
            PasswordWork::Hash(p) => Some(password_work::hash(p).await.map_err(busy)?),
        })
    }
}

/// What the store holds of one batch of a scenario's users (three statements a batch, not
/// one a user, and never the whole tenant at once): what the load compares them with, so that
/// a restart with the same file writes almost nothing.
struct StoredUsers {
    /// Boxed so that the map and the planned users move a pointer each, not a whole user.
    by_upn: HashMap<String, Box<User>>,
    fingerprints: HashMap<UserId, String>,
    roles: HashMap<UserId, Vec<DirectoryRole>>,
}

/// Whether setting `members` would leave the stored list as it is: the store keeps each member
/// once, in the order first given.
fn same_members(stored: &[GroupMember], members: &[GroupMember]) -> bool {
    let mut seen = HashSet::new();
    let mut wanted = members.iter().filter(|m| seen.insert(m.member_id));
    stored.iter().all(|s| wanted.next() == Some(s)) && wanted.next().is_none()
}

/// The app's certificates from the scenario, each with a key id derived from its thumbprint,
/// so a reload finds the same credential — and keeps the time it was first registered.
fn key_credentials(spec: &scenario::AppSpec, existing: Option<&Application>) -> anyhow::Result<Vec<KeyCredential>> {
    spec.certificates
        .iter()
        .map(|pem| {
            let cert = ClientCertificate::from_pem(pem)
                .map_err(|e| anyhow!("app {}: a certificate cannot be read: {e}", spec.display_name))?;
            let mut id = [0u8; 16];
            id.copy_from_slice(&cert.sha256[..16]);
            let key_id = uuid::Builder::from_custom_bytes(id).into_uuid();
            let mut credential = cert.credential(key_id, &format!("scenario certificate {}", cert.thumbprint_hex()));
            if let Some(old) =
                existing.and_then(|a| a.key_credentials.iter().find(|k| k.certificate == credential.certificate))
            {
                credential.added_at = old.added_at;
            }
            Ok(credential)
        })
        .collect()
}

/// The app's federated credentials, each with an id derived from the app and the credential's
/// name, so a reload finds the same credential.
fn federated_credentials(spec: &scenario::AppSpec) -> Vec<FederatedCredential> {
    spec.federated_credentials
        .iter()
        .map(|f| {
            let digest = Sha256::digest(format!("{}/{}", spec.app_id, f.name));
            let mut id = [0u8; 16];
            id.copy_from_slice(&digest[..16]);
            f.credential(uuid::Builder::from_custom_bytes(id).into_uuid())
        })
        .collect()
}

/// The id of the `n`th event of `owner` with this subject and relative start as written: the
/// same on every load, whatever day it is.
fn relative_event_id(tenant_id: TenantId, owner_id: UserId, subject: &str, written_start: &str, n: u32) -> Uuid {
    let mut h = Sha256::new();
    for part in [
        tenant_id.as_uuid().as_bytes().as_slice(),
        owner_id.as_uuid().as_bytes(),
        subject.as_bytes(),
        written_start.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(n.to_be_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

impl<'a> Planner<'a> {
    fn new(store: &'a dyn Store, keyring: &'a Keyring, relative_times: RelativeTimes) -> Self {
        Planner {
            store,
            keyring,
            changes: Vec::new(),
            summary: LoadSummary::default(),
            apps: HashMap::new(),
            sps: HashMap::new(),
            relative_times,
        }
    }

    /// The fingerprint of the scenario password `password` of user `id` with the hash stored
    /// for it: keyed (useless without the master key), and only ever made of passwords that the
    /// scenario file holds in clear.
    fn password_fingerprint(&self, id: UserId, password: &str, hash: &str) -> String {
        self.keyring.secret_hash(&format!("accord/scenario-password/v1\0{id}\0{password}\0{hash}"))
    }

    /// What the store holds of these scenario users.
    async fn stored_users(&self, tenant_id: TenantId, batch: &[scenario::UserSpec]) -> anyhow::Result<StoredUsers> {
        let upns: Vec<&str> = batch.iter().map(|u| u.upn.as_str()).collect();
        let users = self.store.users_with_upns(tenant_id, &upns).await?;
        let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
        let fingerprints = self.store.scenario_passwords(tenant_id, &ids).await?;
        let roles = self.store.roles_of_users(tenant_id, &ids).await?;
        let by_upn = users.into_iter().map(|u| (u.upn.to_ascii_lowercase(), Box::new(u))).collect();
        Ok(StoredUsers { by_upn, fingerprints, roles })
    }

    async fn tenant_id(&mut self, spec: &TenantSpec) -> anyhow::Result<TenantId> {
        if let Some(id) = spec.id {
            return Ok(id);
        }
        if let Some(existing) = self.store.tenant_by_domain(spec.default_domain()).await? {
            return Ok(existing.id);
        }
        let id = TenantId::random();
        self.summary.generated_tenant_ids.push((spec.display_name.clone(), id));
        Ok(id)
    }

    async fn tenant(&mut self, scenario: &Scenario, index: usize, tenant_id: TenantId) -> anyhow::Result<()> {
        let spec = &scenario.tenants[index];
        let existing = self.store.tenant(tenant_id).await?;
        let mut tenant = Tenant {
            id: tenant_id,
            display_name: spec.display_name.clone(),
            domains: spec.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            user_consent: spec.user_consent,
            admin_consent_requests: existing.as_ref().map(|t| t.admin_consent_requests.clone()).unwrap_or_default(),
            // The load writes over what it read; a concurrent write makes it fail whole (`Stale`).
            revision: existing.as_ref().map_or(0, |t| t.revision),
        };
        // Written first (users and groups refer to it); its request policy names reviewers by
        // id, known only below, so this change is completed there rather than written twice.
        let tenant_change = self.changes.len();
        self.changes.push(Change::PutTenant(tenant.clone()));
        self.summary.tenants += 1;
        let graph = self.apps[&GRAPH_APP_ID].clone();
        self.service_principal(tenant_id, &graph).await?;

        let users = self.users(tenant_id, (scenario.user_count(index), scenario.user_batches(index))).await?;
        let groups = self.groups(tenant_id, scenario.group_names(index)).await?;
        let resolve = |p: &PrincipalRef| -> anyhow::Result<(Uuid, MemberKind)> {
            match p {
                // The keys are lower case: a UPN written so is looked up without a copy (300,000
                // members at 100,000 users).
                PrincipalRef::User(upn) => users
                    .get(upn.as_str())
                    .or_else(|| users.get(upn.to_ascii_lowercase().as_str()))
                    .map(|id| (id.as_uuid(), MemberKind::User)),
                PrincipalRef::Group(name) => {
                    groups.get(&name.to_lowercase()).map(|id| (id.as_uuid(), MemberKind::Group))
                }
            }
            .ok_or_else(|| anyhow!("{p} is not declared in tenant {}", spec.display_name))
        };
        // Members once every group has its id (a group may name one declared after it), a
        // batch of groups at a time against their stored members.
        for batch in scenario.group_batches(index) {
            let batch = batch.map_err(|e| anyhow!("{e}"))?;
            // Every group got its id from the names read with the same file's digests; a name
            // missing here is an error, never a panic.
            let ids = batch
                .iter()
                .map(|g| {
                    groups.get(&g.display_name.to_lowercase()).copied().ok_or_else(|| {
                        anyhow!("group {:?} of tenant {} was not read before", g.display_name, spec.display_name)
                    })
                })
                .collect::<anyhow::Result<Vec<GroupId>>>()?;
            let stored = self.store.members_of_groups(tenant_id, &ids).await?;
            for (g, group_id) in batch.iter().zip(ids) {
                let members = g
                    .members
                    .iter()
                    .map(|m| resolve(m).map(|(member_id, kind)| GroupMember { group_id, member_id, kind }))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                if !same_members(stored.get(&group_id).map(Vec::as_slice).unwrap_or_default(), &members) {
                    self.changes.push(Change::SetGroupMembers { tenant_id, group_id, members });
                }
            }
        }
        let acr = &spec.admin_consent_requests;
        tenant.admin_consent_requests = AdminConsentRequestPolicy {
            enabled: acr.enabled,
            reviewers: acr
                .reviewers
                .iter()
                .map(|r| {
                    resolve(r).map(|(id, kind)| match kind {
                        MemberKind::User => ReviewerRef::User(id.into()),
                        MemberKind::Group => ReviewerRef::Group(id.into()),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            expire_after_days: acr.expire_after_days,
            notify_reviewers: acr.notify_reviewers,
            version: tenant.admin_consent_requests.version,
        };
        self.changes[tenant_change] = Change::PutTenant(tenant);

        for e in &spec.enterprise_apps {
            let app = self.known_app(e.app)?;
            let mut sp = self.service_principal(tenant_id, &app).await?;
            sp.enabled = e.enabled;
            sp.assignment_required = e.assignment_required;
            self.changes.push(Change::PutServicePrincipal(sp.clone()));
            self.sps.insert((tenant_id, app.app_id), sp);
        }
        for g in &spec.grants {
            self.grant(tenant_id, g, &users).await?;
        }
        for c in &spec.classifications {
            self.classification(tenant_id, c).await?;
        }
        for a in &spec.assignments {
            let app = self.known_app(a.app)?;
            let sp = self.service_principal(tenant_id, &app).await?;
            let (principal_id, kind) = resolve(&a.principal)?;
            let role_id = match a.role.as_deref().filter(|r| !r.is_empty()) {
                Some(value) => app
                    .app_role(value)
                    .map(|r| r.id)
                    .ok_or_else(|| anyhow!("app {} has no role {value}", app.app_id))?,
                None => DEFAULT_ACCESS_ROLE_ID,
            };
            let principal_type = if kind == MemberKind::User { PrincipalType::User } else { PrincipalType::Group };
            self.role_assignment(tenant_id, principal_id, principal_type, sp.id, role_id, a.expires_at).await?;
            self.summary.assignments += 1;
        }
        self.events(tenant_id, &spec.display_name, &spec.events, &users).await
    }

    /// The tenant's calendar events. An event with an absolute start is found again by owner,
    /// subject and start; one placed by a relative time by an id derived from owner, subject and
    /// the start as written, so that a load on another day finds it although its start moved:
    /// `keep` leaves it where it is, `move` places it relative to this load.
    async fn events<'e>(
        &mut self,
        tenant_id: TenantId,
        tenant_name: &str,
        events: impl IntoIterator<Item = &'e scenario::EventSpec>,
        users: &UserIds,
    ) -> anyhow::Result<()> {
        let mut calendars: HashMap<UserId, Vec<CalendarEvent>> = HashMap::new();
        let mut occurrences: HashMap<(UserId, &str, &str), u32> = HashMap::new();
        let now = accord_core::clock::now();
        for ev in events {
            let owner_id = *users
                .get(ev.owner.to_ascii_lowercase().as_str())
                .ok_or_else(|| anyhow!("event owner {} is not a user of {tenant_name}", ev.owner))?;
            let existing = match calendars.entry(owner_id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => slot.insert(self.store.events_of(tenant_id, owner_id, None, None).await?),
            };
            let (found, id, start, end) = match &ev.relative_start {
                Some(written) => {
                    let n = occurrences.entry((owner_id, ev.subject.as_str(), written.as_str())).or_insert(0);
                    *n += 1;
                    let id = relative_event_id(tenant_id, owner_id, &ev.subject, written, *n);
                    let found = existing.iter().find(|x| x.id == id);
                    let (start, end) = match (found, self.relative_times) {
                        (Some(x), RelativeTimes::Keep) => (x.start, x.end),
                        _ => (ev.start, ev.end),
                    };
                    (found, id, start, end)
                }
                None => {
                    let found = existing.iter().find(|x| x.subject == ev.subject && x.start == ev.start);
                    (found, found.map(|x| x.id).unwrap_or_else(Uuid::new_v4), ev.start, ev.end)
                }
            };
            self.changes.push(Change::PutEvent(CalendarEvent {
                tenant_id,
                id,
                owner_id,
                subject: ev.subject.clone(),
                body: found.map(|x| x.body.clone()).unwrap_or_default(),
                location: found.map(|x| x.location.clone()).unwrap_or_default(),
                start,
                end,
                attendees: ev.attendees.clone(),
                online_meeting_url: ev.online_meeting_url.clone(),
                created_at: found.map(|x| x.created_at).unwrap_or(now),
                modified_at: now,
            }));
            self.summary.events += 1;
        }
        Ok(())
    }

    /// The tenant's users, a batch at a time: ids decided and, where the file's password is not
    /// the one stored (by its fingerprint), argon2 checks and hashes run several at a time — as
    /// many as the server's bound on password work lets run, so memory stays bounded too.
    /// Returns each user's id by case-folded UPN, for the references that follow.
    async fn users(
        &mut self,
        tenant_id: TenantId,
        (count, batches): (usize, impl Iterator<Item = Result<Vec<scenario::UserSpec>, scenario::ScenarioError>>),
    ) -> anyhow::Result<UserIds> {
        use futures_util::StreamExt;
        let parallel = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut ids = UserIds::with_capacity(count);
        let mut batches = batches.peekable();
        while batches.peek().is_some() {
            // Compared with the store a few batches at a time: fewer statements, still bounded.
            let mut chunk = Vec::with_capacity(USERS_COMPARED_AT_ONCE);
            while chunk.len() < USERS_COMPARED_AT_ONCE {
                match batches.next() {
                    Some(batch) => chunk.extend(batch.map_err(|e| anyhow!("{e}"))?),
                    None => break,
                }
            }
            let mut stored = self.stored_users(tenant_id, &chunk).await?;
            let (mut planned, mut work) = (Vec::with_capacity(chunk.len()), Vec::with_capacity(chunk.len()));
            for u in &chunk {
                let (plan, password) = self.plan_user(&mut stored, u)?;
                planned.push(plan);
                work.push(password);
            }
            let hashes: Vec<anyhow::Result<Option<String>>> =
                futures_util::stream::iter(work.into_iter().map(PasswordWork::resolve))
                    .buffered(parallel)
                    .collect()
                    .await;
            for ((u, plan), hash) in chunk.iter().zip(planned).zip(hashes) {
                let id = self.put_user(tenant_id, &stored, u, plan, hash?);
                ids.insert(u.upn.to_ascii_lowercase().into_boxed_str(), id);
            }
        }
        Ok(ids)
    }

    fn plan_user(
        &self,
        stored: &mut StoredUsers,
        u: &scenario::UserSpec,
    ) -> anyhow::Result<(PlannedUser, PasswordWork)> {
        // Taken, not cloned: each user is planned once (the file's UPNs are unique).
        let existing = stored.by_upn.remove(&u.upn.to_ascii_lowercase());
        let fingerprint = existing.as_ref().and_then(|e| stored.fingerprints.remove(&e.id));
        let id = match (&existing, u.id) {
            (Some(e), Some(id)) if e.id != id => {
                bail!("user {} already exists with object id {}, not {id}", u.upn, e.id)
            }
            (_, Some(id)) => id,
            (Some(e), None) => e.id,
            (None, None) => UserId::random(),
        };
        // Re-hash only when the password changed: argon2 is deliberately slow. A restart with
        // the same scenario recognises its own hash by the fingerprint and checks nothing; a
        // hash changed since (a reset) is checked against the file's password.
        let same = |p: &str, h: &str| fingerprint.as_deref() == Some(&self.password_fingerprint(id, p, h));
        let password = match (&u.password, existing.as_ref().and_then(|e| e.password_hash.clone())) {
            // No password in the file: the user cannot sign in with one.
            (None, _) => PasswordWork::None,
            (Some(p), Some(h)) if same(p, &h) => PasswordWork::Keep(h),
            (Some(p), Some(h)) => PasswordWork::CheckOrHash(p.clone(), h),
            (Some(p), None) => PasswordWork::Hash(p.clone()),
        };
        Ok((PlannedUser { id, existing, fingerprint }, password))
    }

    fn put_user(
        &mut self,
        tenant_id: TenantId,
        stored: &StoredUsers,
        u: &scenario::UserSpec,
        plan: PlannedUser,
        hash: Option<String>,
    ) -> UserId {
        let PlannedUser { id, existing, fingerprint: stored_fingerprint } = plan;
        if let (Some(p), Some(h)) = (&u.password, &hash) {
            let fingerprint = self.password_fingerprint(id, p, h);
            // Unchanged (a restart with the same file): nothing to write.
            if stored_fingerprint.as_ref() != Some(&fingerprint) {
                self.changes.push(Change::PutScenarioPassword { tenant_id, user_id: id, fingerprint });
            }
        }
        let user = User {
            tenant_id,
            id,
            upn: u.upn.to_ascii_lowercase(),
            display_name: u.display_name.clone(),
            password_hash: hash,
            enabled: existing.as_ref().map(|e| e.enabled).unwrap_or(true),
            failed_sign_ins: existing.as_ref().map(|e| e.failed_sign_ins).unwrap_or(0),
            locked_until: existing.as_ref().and_then(|e| e.locked_until),
            sign_ins_valid_from: existing.as_ref().and_then(|e| e.sign_ins_valid_from),
        };
        if existing.as_deref() != Some(&user) {
            self.changes.push(Change::PutUser(user));
        }
        let mut roles = u.roles.clone();
        roles.sort();
        roles.dedup();
        if stored.roles.get(&id).map(Vec::as_slice).unwrap_or_default() != roles.as_slice() {
            self.changes.push(Change::SetUserRoles { tenant_id, user_id: id, roles });
        }
        self.summary.users += 1;
        id
    }

    /// The tenant's groups (their members come after, see [`Planner::tenant`]), matched with
    /// the stored ones by case-folded name. Returns each group's id by that name.
    async fn groups(
        &mut self,
        tenant_id: TenantId,
        names: impl Iterator<Item = &str>,
    ) -> anyhow::Result<HashMap<String, GroupId>> {
        // The tenant's groups by case-folded name, read once (not a statement a group).
        let existing: HashMap<String, Group> =
            self.store.groups(tenant_id).await?.into_iter().map(|g| (g.display_name.to_lowercase(), g)).collect();
        let mut ids = HashMap::new();
        for name in names {
            let key = name.to_lowercase();
            let existing = existing.get(&key);
            let group = Group {
                tenant_id,
                id: existing.map(|e| e.id).unwrap_or_else(GroupId::random),
                display_name: name.to_string(),
            };
            ids.insert(key, group.id);
            if existing != Some(&group) {
                self.changes.push(Change::PutGroup(group));
            }
            self.summary.groups += 1;
        }
        Ok(ids)
    }

    async fn app(&mut self, home_tenant_id: TenantId, spec: &scenario::AppSpec) -> anyhow::Result<()> {
        let existing = self.store.application_by_app_id(spec.app_id).await?;
        let old_scope_id = |value: &str| existing.as_ref().and_then(|e| e.scope(value)).map(|s| s.id);
        let old_role_id = |value: &str| existing.as_ref().and_then(|e| e.app_role(value)).map(|r| r.id);
        let mut app = Application {
            id: existing.as_ref().map(|e| e.id).unwrap_or_else(AppObjectId::random),
            app_id: spec.app_id,
            home_tenant_id,
            display_name: spec.display_name.clone(),
            sign_in_audience: spec.sign_in_audience,
            redirect_uris: spec.redirect_uris.clone(),
            public_client: spec.public_client,
            verified_publisher: spec.verified_publisher,
            identifier_uri: spec.identifier_uri.clone(),
            scopes: spec
                .scopes
                .iter()
                .map(|s| PermissionScope {
                    id: s.id.or_else(|| old_scope_id(&s.value)).unwrap_or_else(Uuid::new_v4),
                    value: s.value.clone(),
                    admin_consent_required: s.admin_consent_required,
                    admin_consent_display_name: s.admin_consent_display_name.clone(),
                    admin_consent_description: s.admin_consent_description.clone(),
                    user_consent_display_name: s.user_consent_display_name.clone(),
                    user_consent_description: s.user_consent_description.clone(),
                })
                .collect(),
            app_roles: spec
                .roles
                .iter()
                .map(|r| AppRole {
                    id: r.id.or_else(|| old_role_id(&r.value)).unwrap_or_else(Uuid::new_v4),
                    value: r.value.clone(),
                    display_name: r.display_name.clone(),
                    description: r.description.clone(),
                    allowed_member_types: r
                        .allowed_member_types
                        .iter()
                        .map(|m| {
                            if m.as_str() == "User" {
                                AppRoleMemberType::User
                            } else {
                                AppRoleMemberType::Application
                            }
                        })
                        .collect(),
                })
                .collect(),
            required: spec
                .required
                .iter()
                .map(|r| RequiredResourceAccess {
                    resource_app_id: r.resource.app_id(),
                    delegated: r.delegated.clone(),
                    application: r.application.clone(),
                })
                .collect(),
            key_credentials: key_credentials(spec, existing.as_ref())?,
            spa_redirect_uris: spec.spa_redirect_uris.clone(),
            federated_credentials: federated_credentials(spec),
            group_membership_claims: spec.group_membership_claims,
            optional_claims: spec.optional_claims.clone(),
            pre_authorized: Vec::new(),
            access_token_version: spec.access_token_version,
            known_client_applications: spec.known_client_applications.clone(),
        };
        // Pre-authorized clients name scopes by value; the registration holds their ids.
        app.pre_authorized = spec
            .pre_authorized
            .iter()
            .map(|p| PreAuthorizedApplication {
                app_id: p.app_id,
                permission_ids: p.scopes.iter().filter_map(|v| app.scope(v).map(|s| s.id)).collect(),
            })
            .collect();
        self.changes.push(Change::PutApplication(app.clone()));
        let stored = match &existing {
            Some(e) => self.store.client_secrets(e.id).await?,
            None => Vec::new(),
        };
        for secret in &spec.secrets {
            if !stored.iter().any(|s| self.keyring.secret_matches(secret, &s.hash)) {
                self.changes.push(Change::PutClientSecret(ClientSecret {
                    id: Uuid::new_v4(),
                    app_object_id: app.id,
                    display_name: "scenario".into(),
                    hint: secret.chars().take(3).collect(),
                    hash: self.keyring.secret_hash(secret),
                    created_at: accord_core::clock::now(),
                    expires_at: None,
                }));
            }
        }
        self.apps.insert(app.app_id, app);
        self.summary.apps += 1;
        Ok(())
    }

    fn known_app(&self, app_id: AppId) -> anyhow::Result<Application> {
        self.apps.get(&app_id).cloned().ok_or_else(|| anyhow!("app {app_id} is not declared in the scenario"))
    }

    /// The tenant's service principal for an app, planned for creation when missing.
    async fn service_principal(&mut self, tenant_id: TenantId, app: &Application) -> anyhow::Result<ServicePrincipal> {
        if let Some(sp) = self.sps.get(&(tenant_id, app.app_id)) {
            return Ok(sp.clone());
        }
        let sp = match self.store.service_principal_by_app_id(tenant_id, app.app_id).await? {
            Some(sp) => sp,
            None => {
                let sp = new_service_principal(tenant_id, app);
                self.changes.push(Change::PutServicePrincipal(sp.clone()));
                sp
            }
        };
        self.sps.insert((tenant_id, app.app_id), sp.clone());
        Ok(sp)
    }

    async fn grant(&mut self, tenant_id: TenantId, g: &scenario::GrantSpec, users: &UserIds) -> anyhow::Result<()> {
        let client = self.known_app(g.app)?;
        let resource = self.known_app(g.resource.app_id())?;
        let client_sp = self.service_principal(tenant_id, &client).await?;
        let resource_sp = self.service_principal(tenant_id, &resource).await?;
        if !g.delegated.is_empty() {
            let (consent_type, principal_id) = match &g.consent_for {
                GrantFor::All => (ConsentType::AllPrincipals, None),
                GrantFor::User(upn) => (
                    ConsentType::Principal,
                    Some(
                        *users
                            .get(upn.to_ascii_lowercase().as_str())
                            .ok_or_else(|| anyhow!("grant for unknown user {upn}"))?,
                    ),
                ),
            };
            let existing = self.store.delegated_grants_of_client(tenant_id, client_sp.id).await?;
            let found = existing.iter().find(|x| {
                x.resource_sp_id == resource_sp.id && x.consent_type == consent_type && x.principal_id == principal_id
            });
            self.changes.push(Change::PutDelegatedGrant(DelegatedGrant {
                tenant_id,
                id: found.map(|x| x.id).unwrap_or_else(Uuid::new_v4),
                client_sp_id: client_sp.id,
                resource_sp_id: resource_sp.id,
                consent_type,
                principal_id,
                scopes: g.delegated.clone(),
                created_at: found.map(|x| x.created_at).unwrap_or_else(accord_core::clock::now),
                expires_at: g.expires_at,
            }));
            self.summary.grants += 1;
        }
        for value in &g.application {
            let role = resource
                .app_role(value)
                .ok_or_else(|| anyhow!("{} has no application permission {value}", resource.display_name))?;
            self.role_assignment(
                tenant_id,
                client_sp.id.into(),
                PrincipalType::ServicePrincipal,
                resource_sp.id,
                role.id,
                g.expires_at,
            )
            .await?;
            self.summary.grants += 1;
        }
        Ok(())
    }

    /// One resource's delegated permission classifications: exactly the file's, all `low`.
    /// Rows of the same (resource, permission) keep their id; the resource's other rows go.
    async fn classification(&mut self, tenant_id: TenantId, c: &scenario::ClassificationSpec) -> anyhow::Result<()> {
        let resource = self.known_app(c.resource.app_id())?;
        let sp = self.service_principal(tenant_id, &resource).await?;
        let existing = self.store.permission_classifications(tenant_id, sp.id).await?;
        let mut puts = Vec::new();
        for value in &c.low {
            // The exact spelling first: scope look-ups otherwise ignore letter case.
            let scope = resource
                .scopes
                .iter()
                .find(|s| s.value == *value)
                .or_else(|| resource.scope(value))
                .ok_or_else(|| anyhow!("{} has no delegated permission {value}", resource.display_name))?;
            if puts.iter().any(|p: &PermissionClassification| p.permission_id == scope.id) {
                continue;
            }
            let found = existing.iter().find(|x| x.permission_id == scope.id);
            puts.push(PermissionClassification {
                tenant_id,
                id: found.map(|x| x.id).unwrap_or_else(Uuid::new_v4),
                resource_sp_id: sp.id,
                permission_id: scope.id,
                permission_value: scope.value.clone(),
                classification: "low".into(),
            });
        }
        // Deletions first, so that the batch never holds two rows for one permission.
        for old in existing.iter().filter(|x| !puts.iter().any(|p| p.id == x.id)) {
            self.changes.push(Change::DeletePermissionClassification { tenant_id, classification_id: old.id });
        }
        self.summary.classifications += puts.len();
        self.changes.extend(puts.into_iter().map(Change::PutPermissionClassification));
        Ok(())
    }

    async fn role_assignment(
        &mut self,
        tenant_id: TenantId,
        principal_id: Uuid,
        principal_type: PrincipalType,
        resource_sp_id: ServicePrincipalId,
        app_role_id: Uuid,
        expires_at: Option<OffsetDateTime>,
    ) -> anyhow::Result<()> {
        let existing = self.store.app_role_assignments_of(tenant_id, principal_id).await?;
        if existing.iter().any(|a| a.resource_sp_id == resource_sp_id && a.app_role_id == app_role_id) {
            return Ok(());
        }
        self.changes.push(Change::PutAppRoleAssignment(AppRoleAssignment {
            tenant_id,
            id: Uuid::new_v4(),
            principal_id,
            principal_type,
            resource_sp_id,
            app_role_id,
            created_at: accord_core::clock::now(),
            expires_at,
        }));
        Ok(())
    }
}
