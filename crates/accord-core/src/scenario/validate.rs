//! Semantic validation: turns the spanned raw file into the public structs, collecting every
//! problem with its line and key.
//!
//! Validation runs in two passes. The first checks each object on its own and indexes the
//! natural keys (tenant ids, domains, UPNs, group names, app ids, identifier URIs); the second
//! resolves references (group members, reviewers, required resources, enterprise apps, grants,
//! assignments, event owners). Nothing here recurses over group membership, so cyclic nesting
//! cannot hang validation.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::ids::{AppId, TenantId, UserId};

use super::bulk::BulkText;
use super::raw::*;
use super::relative_time::{self, Written};
use super::text;
use super::*;
use crate::time_zone::NamedZone;

/// Collects diagnostics.
struct Ctx<'a> {
    file: &'a str,
    lines: text::LineIndex,
    diags: Vec<Diagnostic>,
    /// A batch of entries read from the text was not valid TOML: the caller reads the file
    /// whole, which reports the file's first error as the TOML reader words it.
    unreadable: bool,
    /// What entries read from the text (not kept) leave for reading them again.
    notes: TextNotes,
}

impl Ctx<'_> {
    fn err(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            line: self.lines.line_of(span.start),
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn line(&self, span: Range<usize>) -> usize {
        self.lines.line_of(span.start)
    }

    /// A required string that must not be empty (or blank).
    fn non_empty(&mut self, v: &S<String>, key: &str) -> String {
        if v.get_ref().trim().is_empty() {
            self.err(v.span(), key, "must not be empty");
        }
        v.get_ref().clone()
    }

    /// An optional GUID.
    fn opt_guid<T: From<Uuid>>(&mut self, v: &Option<S<String>>, key: &str) -> Option<T> {
        let v = v.as_ref()?;
        self.guid(v, key)
    }

    /// A GUID, as whichever id type the key holds.
    fn guid<T: From<Uuid>>(&mut self, v: &S<String>, key: &str) -> Option<T> {
        match text::parse_guid(v.get_ref()) {
            Ok(id) => Some(T::from(id)),
            Err(msg) => {
                self.err(v.span(), key, msg);
                None
            }
        }
    }

    /// Reports list entries that appear more than once (by `norm`), keeping the first.
    fn no_duplicates(&mut self, list: &[S<String>], key: &str, norm: fn(&str) -> String) {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for v in list {
            let n = norm(v.get_ref());
            if let Some(&first) = seen.get(&n) {
                self.err(v.span(), key, format!("{:?} is listed twice (first on line {first})", v.get_ref()));
            } else {
                seen.insert(n, self.line(v.span()));
            }
        }
    }
}

fn exact(s: &str) -> String {
    s.to_string()
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// Where the tenants' users and groups are read from.
#[derive(Clone, Copy)]
pub(super) enum Entries<'b> {
    /// From the raw tenants (a whole read, or entries read and attached): the specs are kept.
    Raw,
    /// From the file's text, a batch at a time (`ParseOptions::bulk_as_text`): checked and
    /// indexed as they go by, not kept (`Scenario::user_batches` reads them again).
    Text(&'b BulkText),
}

impl Entries<'_> {
    fn kept(self) -> bool {
        matches!(self, Entries::Raw)
    }

    /// Each of tenant `ti`'s users, taken out of `t` or read from the text.
    fn users(self, cx: &mut Ctx, ti: usize, t: &mut RawTenant, mut each: impl FnMut(&mut Ctx, RawUser)) {
        match self {
            Entries::Raw => std::mem::take(&mut t.user).into_iter().for_each(|u| each(cx, u.into_inner())),
            Entries::Text(bulk) => {
                for batch in bulk.batches(ti, false) {
                    let Some(batch) = batch else { return cx.unreadable = true };
                    batch.user.into_iter().for_each(|u| each(cx, u.into_inner()));
                }
            }
        }
    }

    /// Each of tenant `ti`'s groups, taken out of `t` (`take`) or looked at in it, or read
    /// from the text.
    fn groups(self, cx: &mut Ctx, ti: usize, t: &mut RawTenant, take: bool, mut each: impl FnMut(&mut Ctx, &RawGroup)) {
        match self {
            Entries::Raw if take => std::mem::take(&mut t.group).into_iter().for_each(|g| each(cx, g.get_ref())),
            Entries::Raw => t.group.iter().for_each(|g| each(cx, g.get_ref())),
            Entries::Text(bulk) => {
                for batch in bulk.batches(ti, true) {
                    let Some(batch) = batch else { return cx.unreadable = true };
                    batch.group.iter().for_each(|g| each(cx, g.get_ref()));
                }
            }
        }
    }
}

/// What pass 1 learned about a tenant.
struct TenantIndex {
    name: String,
    domains: Vec<String>,
    /// Lowercase UPN -> where and how it was declared: a 100,000-user file's largest index,
    /// so one map serves both the duplicate check and the references.
    users: HashMap<Box<str>, IndexedUser>,
    /// lowercase group name -> name as declared
    groups: HashMap<String, String>,
}

/// A user as pass 1 indexed it by lowercase UPN.
struct IndexedUser {
    /// The line of its `upn`, for a duplicate's message.
    line: u32,
    /// The UPN as declared, where that is not the lowercase key itself.
    spelling: Option<Box<str>>,
}

impl TenantIndex {
    /// The declared spelling of the user whose lowercase UPN is `key`.
    fn user(&self, key: &str) -> Option<String> {
        self.users.get_key_value(key).map(|(k, u)| u.spelling.as_deref().unwrap_or(k).to_string())
    }

    fn domain_list(&self) -> String {
        self.domains.join(", ")
    }
}

/// What pass 1 learned about an app.
struct AppIndex {
    tenant: usize,
    display_name: String,
    audience: SignInAudience,
    identifier_uri: Option<String>,
    scopes: HashSet<String>,
    /// The scopes that require admin consent.
    admin_scopes: HashSet<String>,
    roles: HashMap<String, Vec<MemberType>>,
}

/// Why a file did not validate.
pub(super) enum Invalid {
    /// Its problems, each with its line and key.
    Problems(ScenarioError),
    /// A batch of entries read from the text is not valid TOML (read the file whole instead).
    Unreadable,
}

/// What validation notes of the users and groups it does not keep ([`Entries::Text`]), for
/// reading them again.
#[derive(Debug, Default, PartialEq)]
pub(super) struct TextNotes {
    /// Member references written in another letter case than the user or group they name, by
    /// the byte offset of the reference: where a group read again takes the declared spelling
    /// from, as a group kept by a whole read has it.
    pub respelled: HashMap<usize, String>,
    /// Each tenant's group names in file order (a loader gives every group its id before it
    /// reads members, which may name a group declared later).
    pub group_names: Vec<Vec<String>>,
}

pub(super) fn validate(
    file: &str,
    lines: text::LineIndex,
    mut raw: RawScenario,
    options: &ParseOptions<'_>,
    entries: Entries<'_>,
) -> Result<(Scenario, TextNotes), Invalid> {
    let mut cx = Ctx { file, lines, diags: Vec::new(), unreadable: false, notes: TextNotes::default() };
    let scenario_zone = zone(&mut cx, &raw.time_zone, "time_zone").unwrap_or_else(NamedZone::utc);
    let relative_times = relative_times(&mut cx, &raw.relative_times);

    // Pass 1: objects on their own, and the file-wide indexes.
    let mut keys = FileKeys::default();
    let mut tenants: Vec<TenantSpec> = Vec::new();
    let mut indexes: Vec<TenantIndex> = Vec::new();
    for (ti, t) in raw.tenant.iter_mut().enumerate() {
        let (spec, index) = tenant_objects(&mut cx, &mut keys, (ti, &indexes), t.get_mut(), entries);
        tenants.push(spec);
        indexes.push(index);
    }

    // Pass 2: references, resolved against those indexes.
    for (ti, t) in raw.tenant.iter_mut().enumerate() {
        let t = t.get_mut();
        let refs = Refs { graph: options.graph, apps: &keys.apps, indexes: &indexes, tenant: ti };
        let tenant_zone = zone(&mut cx, &t.time_zone, "tenant.time_zone").unwrap_or_else(|| scenario_zone.clone());
        let at = (options.loaded_at, &tenant_zone);
        tenant_references(&mut cx, &refs, t, &mut tenants[ti], at, entries);
    }
    if cx.unreadable {
        return Err(Invalid::Unreadable);
    }

    let faults = raw
        .fault
        .iter()
        .filter_map(|f| match f.get_ref().check() {
            Ok(()) => Some(f.get_ref().clone()),
            Err(why) => {
                cx.err(f.span(), "fault", why);
                None
            }
        })
        .collect();

    if cx.diags.is_empty() {
        let throttling = raw
            .throttling
            .as_ref()
            .map(|t| {
                let t = t.get_ref();
                ThrottlingSpec {
                    mailbox_requests_per_10_minutes: t.mailbox_requests_per_10_minutes,
                    mailbox_concurrent: t.mailbox_concurrent,
                    tenant_requests_per_10_seconds: t.tenant_requests_per_10_seconds,
                    token_requests_per_minute: t.token_requests_per_minute,
                }
            })
            .unwrap_or_default();
        Ok((Scenario { tenants, relative_times, throttling, faults, bulk: None }, cx.notes))
    } else {
        let mut diagnostics = cx.diags;
        diagnostics.sort_by_key(|d| d.line);
        Err(Invalid::Problems(ScenarioError { diagnostics }))
    }
}

fn relative_times(cx: &mut Ctx, v: &Option<S<String>>) -> RelativeTimes {
    match v {
        None => RelativeTimes::Keep,
        Some(v) => match v.get_ref().as_str() {
            "keep" => RelativeTimes::Keep,
            "move" => RelativeTimes::Move,
            other => {
                cx.err(v.span(), "relative_times", format!("{other:?} is not \"keep\" or \"move\""));
                RelativeTimes::Keep
            }
        },
    }
}

/// Natural keys that must be unique across the whole file, with the line that took each.
#[derive(Default)]
struct FileKeys {
    tenant_ids: HashMap<TenantId, usize>,
    domains: HashMap<String, (String, usize)>,
    user_ids: HashMap<UserId, usize>,
    apps: HashMap<AppId, AppIndex>,
    app_lines: HashMap<AppId, usize>,
    identifier_uris: HashMap<String, (AppId, usize)>,
}

/// What pass 2 resolves one tenant's references against.
struct Refs<'r> {
    graph: &'r dyn GraphCatalog,
    apps: &'r HashMap<AppId, AppIndex>,
    indexes: &'r [TenantIndex],
    tenant: usize,
}

impl Refs<'_> {
    fn own(&self) -> &TenantIndex {
        &self.indexes[self.tenant]
    }
}

/// Pass 1 for one tenant: its own fields, users, group names and apps, indexed.
/// Takes the tenant's users out of `t`: each raw user is dropped as its spec is made, so that a
/// large file's users are not held twice.
fn tenant_objects(
    cx: &mut Ctx,
    keys: &mut FileKeys,
    (ti, earlier): (usize, &[TenantIndex]),
    t: &mut RawTenant,
    entries: Entries<'_>,
) -> (TenantSpec, TenantIndex) {
    let display_name = cx.non_empty(&t.display_name, "tenant.display_name");
    let id = tenant_id(cx, keys, t);
    let domains = domains(cx, keys, t, &display_name);
    let user_consent = user_consent(cx, t);
    let mut index = TenantIndex {
        name: display_name.clone(),
        domains: domains.clone(),
        users: HashMap::new(),
        groups: HashMap::new(),
    };
    let mut users = Vec::new();
    entries.users(cx, ti, t, |cx, u| {
        let spec = user(cx, keys, (&mut index, earlier), u);
        if entries.kept() {
            users.push(spec);
        }
    });
    group_names(cx, &mut index, ti, t, entries);
    let apps = t
        .app
        .iter()
        .map(|a| check_app(cx, ti, a.get_ref(), &mut keys.apps, &mut keys.app_lines, &mut keys.identifier_uris))
        .collect();
    let spec = TenantSpec {
        id,
        display_name,
        domains,
        user_consent,
        admin_consent_requests: AdminConsentRequestSpec::default(),
        users,
        groups: Vec::new(),
        apps,
        enterprise_apps: Vec::new(),
        grants: Vec::new(),
        assignments: Vec::new(),
        events: Vec::new(),
        classifications: Vec::new(),
    };
    (spec, index)
}

fn tenant_id(cx: &mut Ctx, keys: &mut FileKeys, t: &RawTenant) -> Option<TenantId> {
    let id = cx.opt_guid(&t.id, "tenant.id");
    if let (Some(id), Some(span)) = (id, t.id.as_ref().map(|s| s.span())) {
        if let Some(&first) = keys.tenant_ids.get(&id) {
            cx.err(
                span,
                "tenant.id",
                format!("tenant id {id} is used by more than one tenant (first on line {first})"),
            );
        } else {
            keys.tenant_ids.insert(id, cx.line(span));
        }
    }
    id
}

fn domains(cx: &mut Ctx, keys: &mut FileKeys, t: &RawTenant, display_name: &str) -> Vec<String> {
    if t.domains.get_ref().is_empty() {
        cx.err(t.domains.span(), "tenant.domains", "at least one domain is required");
    }
    cx.no_duplicates(t.domains.get_ref(), "tenant.domains", lower);
    let mut domains = Vec::new();
    let mut own: HashSet<String> = HashSet::new();
    for d in t.domains.get_ref() {
        let name = d.get_ref();
        domains.push(name.clone());
        if !text::is_domain(name) {
            cx.err(
                d.span(),
                "tenant.domains",
                format!(
                    "{name:?} is not a valid domain name (expected dot-separated labels of \
                     letters, digits and hyphens, e.g. contoso.test)"
                ),
            );
            continue;
        }
        let key = name.to_lowercase();
        if !own.insert(key.clone()) {
            continue; // reported as a duplicate above
        }
        if let Some((owner, line)) = keys.domains.get(&key) {
            cx.err(
                d.span(),
                "tenant.domains",
                format!(
                    "domain {name:?} already belongs to tenant {owner:?} (line {line}); \
                     domains must be unique across tenants"
                ),
            );
        } else {
            keys.domains.insert(key, (display_name.to_string(), cx.line(d.span())));
        }
    }
    domains
}

fn user_consent(cx: &mut Ctx, t: &RawTenant) -> UserConsent {
    match &t.user_consent {
        None => UserConsent::default(),
        Some(v) => UserConsent::parse(v.get_ref()).unwrap_or_else(|| {
            cx.err(
                v.span(),
                "tenant.user_consent",
                format!(
                    "{:?} is not a valid user consent setting (expected \"none\", \"low\" or \"all\")",
                    v.get_ref()
                ),
            );
            UserConsent::default()
        }),
    }
}

/// One user, checked and indexed: UPN in a domain of the tenant and unique in the file (`earlier`
/// are the tenants before its own), object id unique, roles known.
fn user(
    cx: &mut Ctx,
    keys: &mut FileKeys,
    (index, earlier): (&mut TenantIndex, &[TenantIndex]),
    u: RawUser,
) -> UserSpec {
    let upn_span = u.upn.span();
    let upn = u.upn.get_ref();
    match text::upn_problem(upn) {
        Some(msg) => cx.err(upn_span.clone(), "tenant.user.upn", msg),
        None => {
            let domain = text::upn_domain(upn);
            if !index.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
                cx.err(
                    upn_span.clone(),
                    "tenant.user.upn",
                    format!(
                        "the domain of {upn:?} is not one of tenant {:?}'s domains ({})",
                        index.name,
                        index.domain_list()
                    ),
                );
            }
        }
    }
    let key = upn.to_lowercase();
    let first = index.users.get(key.as_str()).or_else(|| earlier.iter().find_map(|ix| ix.users.get(key.as_str())));
    if let Some(first) = first.map(|u| u.line) {
        cx.err(
            upn_span,
            "tenant.user.upn",
            format!(
                "{upn:?} is already used by another user (line {first}); UPNs are unique \
                 regardless of letter case"
            ),
        );
    } else {
        let line = u32::try_from(cx.line(upn_span)).unwrap_or(u32::MAX);
        let spelling = (*upn != key).then(|| upn.as_str().into());
        index.users.insert(key.into_boxed_str(), IndexedUser { line, spelling });
    }
    let id = cx.opt_guid(&u.id, "tenant.user.id");
    if let (Some(id), Some(span)) = (id, u.id.as_ref().map(|s| s.span())) {
        if let Some(&first) = keys.user_ids.get(&id) {
            cx.err(
                span,
                "tenant.user.id",
                format!("object id {id} is used by more than one user (first on line {first})"),
            );
        } else {
            keys.user_ids.insert(id, cx.line(span));
        }
    }
    cx.non_empty(&u.display_name, "tenant.user.display_name");
    if let Some(p) = u.password.as_ref().filter(|p| p.get_ref().is_empty()) {
        cx.err(
            p.span(),
            "tenant.user.password",
            "must not be empty (leave `password` out for a user who only needs to exist, in groups and lists)",
        );
    }
    cx.no_duplicates(&u.roles, "tenant.user.roles", exact);
    for r in u.roles.iter().filter(|r| DirectoryRole::from_display_name(r.get_ref()).is_none()) {
        let known = KNOWN_ROLES.iter().map(|r| format!("{:?}", r.display_name())).collect::<Vec<_>>().join(", ");
        cx.err(
            r.span(),
            "tenant.user.roles",
            format!("{:?} is not a known directory role (expected one of {known})", r.get_ref()),
        );
    }
    user_spec(u)
}

/// The spec of a user, checked by [`user`] or read again from the text of a file that
/// validated: what a problem leaves out is never kept.
pub(super) fn user_spec(u: RawUser) -> UserSpec {
    let mut roles = Vec::new();
    for role in u.roles.iter().filter_map(|r| DirectoryRole::from_display_name(r.get_ref())) {
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    UserSpec {
        id: u.id.and_then(|id| text::parse_guid(id.get_ref()).ok()).map(UserId::from),
        upn: u.upn.into_inner(),
        display_name: u.display_name.into_inner(),
        password: u.password.map(|p| p.into_inner()),
        roles,
    }
}

/// Group names, unique per tenant (members are resolved in pass 2).
fn group_names(cx: &mut Ctx, index: &mut TenantIndex, ti: usize, t: &mut RawTenant, entries: Entries<'_>) {
    let mut group_lines: HashMap<String, usize> = HashMap::new();
    let mut names = Vec::new();
    entries.groups(cx, ti, t, false, |cx, g| {
        let name = cx.non_empty(&g.display_name, "tenant.group.display_name");
        if !entries.kept() {
            names.push(name.clone());
        }
        let key = name.to_lowercase();
        if let Some(&first) = group_lines.get(&key) {
            cx.err(
                g.display_name.span(),
                "tenant.group.display_name",
                format!(
                    "group {name:?} is already declared in tenant {:?} (line \
                     {first}); group names are unique per tenant regardless of letter case",
                    index.name
                ),
            );
        } else {
            group_lines.insert(key.clone(), cx.line(g.display_name.span()));
            index.groups.insert(key, name);
        }
    });
    if !entries.kept() {
        cx.notes.group_names.resize_with(ti + 1, Vec::new);
        cx.notes.group_names[ti] = names;
    }
}

/// Pass 2 for one tenant: every reference it makes.
fn tenant_references(
    cx: &mut Ctx,
    refs: &Refs<'_>,
    t: &mut RawTenant,
    spec: &mut TenantSpec,
    (loaded_at, zone): (OffsetDateTime, &NamedZone),
    entries: Entries<'_>,
) {
    spec.groups = groups(cx, refs, t, entries);
    if let Some(acr) = &t.admin_consent_requests {
        spec.admin_consent_requests = admin_consent_requests(cx, refs.own(), acr);
    }
    for (app, raw) in spec.apps.iter_mut().zip(&t.app) {
        app.required = required(cx, refs, raw.get_ref());
    }
    spec.enterprise_apps = enterprise_apps(cx, refs, t);
    spec.grants = grants(cx, refs, t, loaded_at, zone);
    let mut seen = HashMap::new();
    spec.classifications = t
        .classification
        .iter()
        .filter_map(|c| {
            classification(cx, refs.graph, refs.apps, refs.indexes, refs.tenant, c.span(), c.get_ref(), &mut seen)
        })
        .collect();
    spec.assignments = assignments(cx, refs, t, loaded_at, zone);
    spec.events = events(cx, refs.own(), t, loaded_at, zone);
}

/// Groups and their members (no group is a member of itself). Takes the groups out of `t`:
/// each raw group (its members' text: 300,000 strings in a 100,000-user file) is dropped as its
/// spec is made. Groups read from the text are checked, not kept; a member written in another
/// letter case than its user or group is noted (`TextNotes::respelled`).
fn groups(cx: &mut Ctx, refs: &Refs<'_>, t: &mut RawTenant, entries: Entries<'_>) -> Vec<GroupSpec> {
    let ix = refs.own();
    let mut groups = Vec::with_capacity(t.group.len());
    entries.groups(cx, refs.tenant, t, true, |cx, g| {
        let own = g.display_name.get_ref();
        cx.no_duplicates(&g.members, "tenant.group.members", lower_principal);
        let mut members = Vec::new();
        for m in &g.members {
            if let Some(p) = principal(cx, ix, m, "tenant.group.members") {
                if let PrincipalRef::Group(name) = &p {
                    if name.to_lowercase() == own.to_lowercase() {
                        cx.err(m.span(), "tenant.group.members", format!("group {own:?} cannot be a member of itself"));
                        continue;
                    }
                }
                if !entries.kept() && p != principal_as_written(m.get_ref()) {
                    cx.notes.respelled.insert(m.span().start, p.name().to_string());
                }
                members.push(p);
            }
        }
        if entries.kept() {
            groups.push(GroupSpec { display_name: own.clone(), members });
        }
    });
    groups
}

/// A member reference as written (`upn` or `group:<name>`), without the declared spelling.
fn principal_as_written(s: &str) -> PrincipalRef {
    match s.strip_prefix("group:") {
        Some(name) => PrincipalRef::Group(name.trim().to_string()),
        None => PrincipalRef::User(s.to_string()),
    }
}

/// A group read again from the text of a file that validated: its members with their declared
/// spelling (`respelled`), as [`groups`] kept them from a whole read.
pub(super) fn group_spec(g: RawGroup, respelled: &HashMap<usize, String>) -> GroupSpec {
    let members = g
        .members
        .into_iter()
        .map(|m| {
            let p = principal_as_written(m.get_ref());
            match respelled.get(&m.span().start) {
                Some(declared) => p.with_name(declared.clone()),
                None => p,
            }
        })
        .collect();
    GroupSpec { display_name: g.display_name.into_inner(), members }
}

/// The admin consent request workflow.
fn admin_consent_requests(cx: &mut Ctx, ix: &TenantIndex, acr: &S<RawAdminConsentRequests>) -> AdminConsentRequestSpec {
    let span = acr.span();
    let acr = acr.get_ref();
    let mut spec = AdminConsentRequestSpec::default();
    if let Some(e) = &acr.enabled {
        spec.enabled = *e.get_ref();
    }
    if let Some(n) = &acr.notify_reviewers {
        spec.notify_reviewers = *n.get_ref();
    }
    if let Some(d) = &acr.expire_after_days {
        let days = *d.get_ref();
        if (1..=30).contains(&days) {
            spec.expire_after_days = days as u32;
        } else {
            cx.err(
                d.span(),
                "tenant.admin_consent_requests.expire_after_days",
                format!("must be between 1 and 30 (got {days})"),
            );
        }
    }
    cx.no_duplicates(&acr.reviewers, "tenant.admin_consent_requests.reviewers", lower_principal);
    for r in &acr.reviewers {
        if let Some(p) = principal(cx, ix, r, "tenant.admin_consent_requests.reviewers") {
            spec.reviewers.push(p);
        }
    }
    if spec.enabled && acr.reviewers.is_empty() {
        let at = acr.enabled.as_ref().map_or(span, |e| e.span());
        cx.err(
            at,
            "tenant.admin_consent_requests.reviewers",
            "the admin consent request workflow is enabled but has no reviewers \
             (add at least one UPN or \"group:<name>\")",
        );
    }
    spec
}

/// An app's required permissions, one entry per resource.
fn required(cx: &mut Ctx, refs: &Refs<'_>, a: &RawApp) -> Vec<RequiredSpec> {
    let app_name = a.display_name.get_ref();
    let mut seen: HashMap<ResourceRef, usize> = HashMap::new();
    let mut required = Vec::new();
    for r in &a.required {
        let span = r.span();
        let r = r.get_ref();
        let Some(resource) = resource(cx, refs.apps, &r.resource, "tenant.app.required.resource") else {
            continue;
        };
        let at = r.resource.as_ref().map_or(span.clone(), |s| s.span());
        if let Some(&first) = seen.get(&resource) {
            cx.err(
                at,
                "tenant.app.required.resource",
                format!(
                    "app {app_name:?} lists this resource twice in its required \
                     permissions (first on line {first}); merge the entries"
                ),
            );
        } else {
            seen.insert(resource, cx.line(at));
        }
        let (delegated, application) =
            permissions(cx, refs.graph, refs.apps, resource, &r.delegated, &r.application, "tenant.app.required");
        required.push(RequiredSpec { resource, delegated, application });
    }
    required
}

fn enterprise_apps(cx: &mut Ctx, refs: &Refs<'_>, t: &RawTenant) -> Vec<EnterpriseAppSpec> {
    let mut out = Vec::new();
    let mut seen_sp: HashMap<AppId, usize> = HashMap::new();
    for e in &t.enterprise_app {
        let e = e.get_ref();
        let Some(app) = app_ref(cx, refs.apps, refs.indexes, refs.tenant, &e.app, "tenant.enterprise_app.app") else {
            continue;
        };
        if let Some(&first) = seen_sp.get(&app) {
            cx.err(
                e.app.span(),
                "tenant.enterprise_app.app",
                format!("app {app} already has an enterprise_app entry in this tenant (line {first})"),
            );
        } else {
            seen_sp.insert(app, cx.line(e.app.span()));
        }
        out.push(EnterpriseAppSpec {
            app,
            assignment_required: e.assignment_required.as_ref().is_some_and(|v| *v.get_ref()),
            enabled: e.enabled.as_ref().is_none_or(|v| *v.get_ref()),
        });
    }
    out
}

fn grants(cx: &mut Ctx, refs: &Refs<'_>, t: &RawTenant, loaded_at: OffsetDateTime, zone: &NamedZone) -> Vec<GrantSpec> {
    let ix = refs.own();
    let mut out = Vec::new();
    let mut seen_grant: HashMap<(AppId, ResourceRef, GrantFor), usize> = HashMap::new();
    for g in &t.grant {
        let span = g.span();
        let g = g.get_ref();
        let app = app_ref(cx, refs.apps, refs.indexes, refs.tenant, &g.app, "tenant.grant.app");
        let res = resource(cx, refs.apps, &g.resource, "tenant.grant.resource");
        let consent_for = match &g.for_ {
            None => Some(GrantFor::All),
            Some(f) if f.get_ref() == "all" => Some(GrantFor::All),
            Some(f) => {
                let v = f.get_ref();
                if !v.contains('@') {
                    cx.err(f.span(), "tenant.grant.for", format!("{v:?} is neither \"all\" nor a user principal name"));
                    None
                } else if let Some(upn) = ix.user(&v.to_lowercase()) {
                    Some(GrantFor::User(upn))
                } else {
                    cx.err(f.span(), "tenant.grant.for", format!("there is no user {v:?} in tenant {:?}", ix.name));
                    None
                }
            }
        };
        if let (Some(GrantFor::User(_)), Some(first)) = (&consent_for, g.application.first()) {
            cx.err(
                first.span(),
                "tenant.grant.application",
                "application permissions are granted to the app itself, not on behalf of \
                 a user; list them in a grant with for = \"all\"",
            );
        }
        let (delegated, application) = match res {
            Some(r) => permissions(cx, refs.graph, refs.apps, r, &g.delegated, &g.application, "tenant.grant"),
            None => (Vec::new(), Vec::new()),
        };
        let expires_at = g
            .expires
            .as_ref()
            .and_then(|v| date_time(cx, v, "tenant.grant.expires", loaded_at, zone))
            .map(|w| w.instant());
        let (Some(app), Some(resource), Some(consent_for)) = (app, res, consent_for) else {
            continue;
        };
        let dup_key = (app, resource, consent_for.clone());
        let at = g.app.span();
        if let Some(&first) = seen_grant.get(&dup_key) {
            cx.err(
                at,
                "tenant.grant.app",
                format!(
                    "a grant for this app, resource and principal already exists in this \
                     tenant (line {first}); merge the entries"
                ),
            );
        } else {
            seen_grant.insert(dup_key, cx.line(span));
        }
        out.push(GrantSpec { app, resource, delegated, consent_for, application, expires_at });
    }
    out
}

fn assignments(
    cx: &mut Ctx,
    refs: &Refs<'_>,
    t: &RawTenant,
    loaded_at: OffsetDateTime,
    zone: &NamedZone,
) -> Vec<AssignmentSpec> {
    let mut out = Vec::new();
    let mut seen_assignment: HashMap<(AppId, PrincipalRef, Option<String>), usize> = HashMap::new();
    for a in &t.assignment {
        let a = a.get_ref();
        let app = app_ref(cx, refs.apps, refs.indexes, refs.tenant, &a.app, "tenant.assignment.app");
        let principal = principal(cx, refs.own(), &a.principal, "tenant.assignment.principal");
        let role = match &a.role {
            Some(r) if !r.get_ref().is_empty() => {
                let value = r.get_ref();
                if let Some(info) = app.and_then(|id| refs.apps.get(&id)) {
                    match info.roles.get(value) {
                        None => cx.err(
                            r.span(),
                            "tenant.assignment.role",
                            format!("app {:?} has no app role {value:?}", info.display_name),
                        ),
                        Some(types) if !types.contains(&MemberType::User) => cx.err(
                            r.span(),
                            "tenant.assignment.role",
                            format!(
                                "app role {value:?} of app {:?} cannot be assigned to users \
                                 and groups (its allowed_member_types lacks \"User\")",
                                info.display_name
                            ),
                        ),
                        Some(_) => {}
                    }
                }
                Some(value.clone())
            }
            _ => None,
        };
        let (Some(app), Some(principal)) = (app, principal) else {
            continue;
        };
        let dup_key = (app, principal.clone(), role.clone());
        if let Some(&first) = seen_assignment.get(&dup_key) {
            cx.err(
                a.principal.span(),
                "tenant.assignment.principal",
                format!("{principal} is already assigned to this app with the same role (line {first})"),
            );
        } else {
            seen_assignment.insert(dup_key, cx.line(a.principal.span()));
        }
        let expires_at = a
            .expires
            .as_ref()
            .and_then(|v| date_time(cx, v, "tenant.assignment.expires", loaded_at, zone))
            .map(|w| w.instant());
        out.push(AssignmentSpec { app, principal, role, expires_at });
    }
    out
}

/// Calendar events, their times read in the tenant's zone.
fn events(
    cx: &mut Ctx,
    ix: &TenantIndex,
    t: &RawTenant,
    loaded_at: OffsetDateTime,
    zone: &NamedZone,
) -> Vec<EventSpec> {
    let mut out = Vec::new();
    for e in &t.event {
        let e = e.get_ref();
        let owner_raw = e.owner.get_ref();
        let owner = match ix.user(&owner_raw.to_lowercase()) {
            Some(upn) => upn,
            None => {
                cx.err(
                    e.owner.span(),
                    "tenant.event.owner",
                    format!("there is no user {owner_raw:?} in tenant {:?}", ix.name),
                );
                owner_raw.clone()
            }
        };
        let subject = cx.non_empty(&e.subject, "tenant.event.subject");
        let start = date_time(cx, &e.start, "tenant.event.start", loaded_at, zone);
        let end = date_time(cx, &e.end, "tenant.event.end", loaded_at, zone);
        let relative_start = match start {
            Some(Written::Relative(_)) => Some(e.start.get_ref().0.trim().to_string()),
            _ => None,
        };
        let (start, end) = (start.map(Written::instant), end.map(Written::instant));
        if let (Some(s), Some(en)) = (start, end) {
            if en <= s {
                cx.err(
                    e.end.span(),
                    "tenant.event.end",
                    format!("the end ({}) must be after the start ({})", e.end.get_ref().0, e.start.get_ref().0),
                );
            }
        }
        cx.no_duplicates(&e.attendees, "tenant.event.attendees", lower);
        let mut attendees = Vec::new();
        for a in &e.attendees {
            if !text::is_email_like(a.get_ref()) {
                cx.err(
                    a.span(),
                    "tenant.event.attendees",
                    format!("{:?} is not an e-mail address (expected name@domain)", a.get_ref()),
                );
            }
            attendees.push(a.get_ref().clone());
        }
        let online_meeting_url = e.online_meeting_url.as_ref().map(|u| {
            if let Some(msg) = text::http_url_problem(u.get_ref()) {
                cx.err(u.span(), "tenant.event.online_meeting_url", msg);
            }
            u.get_ref().clone()
        });
        out.push(EventSpec {
            owner,
            subject,
            start: start.unwrap_or(OffsetDateTime::UNIX_EPOCH),
            relative_start,
            end: end.unwrap_or(OffsetDateTime::UNIX_EPOCH),
            attendees,
            online_meeting_url,
        });
    }
    out
}

fn lower_principal(s: &str) -> String {
    match s.strip_prefix("group:") {
        Some(name) => format!("group:{}", name.trim().to_lowercase()),
        None => s.to_lowercase(),
    }
}

/// Resolves `upn` or `group:<name>` within a tenant.
fn principal(cx: &mut Ctx, ix: &TenantIndex, v: &S<String>, key: &str) -> Option<PrincipalRef> {
    let s = v.get_ref();
    if let Some(name) = s.strip_prefix("group:") {
        let name = name.trim();
        if name.is_empty() {
            cx.err(v.span(), key, "\"group:\" must be followed by a group display name");
            return None;
        }
        match ix.groups.get(&name.to_lowercase()) {
            Some(canonical) => Some(PrincipalRef::Group(canonical.clone())),
            None => {
                cx.err(v.span(), key, format!("there is no group {name:?} in tenant {:?}", ix.name));
                None
            }
        }
    } else if !s.contains('@') {
        cx.err(
            v.span(),
            key,
            format!(
                "{s:?} is neither a user principal name (name@domain) nor a group reference \
                 (\"group:<display name>\")"
            ),
        );
        None
    } else {
        match ix.user(&s.to_lowercase()) {
            Some(canonical) => Some(PrincipalRef::User(canonical)),
            None => {
                cx.err(v.span(), key, format!("there is no user {s:?} in tenant {:?}", ix.name));
                None
            }
        }
    }
}

/// Resolves a resource reference (absent = Microsoft Graph).
fn resource(cx: &mut Ctx, apps: &HashMap<AppId, AppIndex>, v: &Option<S<String>>, key: &str) -> Option<ResourceRef> {
    let Some(v) = v else {
        return Some(ResourceRef::MicrosoftGraph);
    };
    let s = v.get_ref();
    if s == GRAPH_RESOURCE_URI || s.strip_suffix('/') == Some(GRAPH_RESOURCE_URI) {
        return Some(ResourceRef::MicrosoftGraph);
    }
    if let Ok(id) = Uuid::try_parse(s).map(AppId::from) {
        if s.len() == 36 {
            if id == GRAPH_APP_ID {
                return Some(ResourceRef::MicrosoftGraph);
            }
            if apps.contains_key(&id) {
                return Some(ResourceRef::App(id));
            }
        }
    }
    if let Some((id, _)) = apps.iter().find(|(_, a)| a.identifier_uri_matches(s)).map(|(id, a)| (*id, a)) {
        return Some(ResourceRef::App(id));
    }
    cx.err(
        v.span(),
        key,
        format!(
            "{s:?} is not a known resource (expected \"{GRAPH_RESOURCE_URI}\", Graph's app id \
             {GRAPH_APP_ID}, or the identifier_uri or app_id of an app in this file)"
        ),
    );
    None
}

impl AppIndex {
    fn identifier_uri_matches(&self, s: &str) -> bool {
        self.identifier_uri.as_deref() == Some(s)
    }
}

/// Resolves an app reference (`enterprise_app.app`, `grant.app`, `assignment.app`).
fn app_ref(
    cx: &mut Ctx,
    apps: &HashMap<AppId, AppIndex>,
    indexes: &[TenantIndex],
    tenant: usize,
    v: &S<String>,
    key: &str,
) -> Option<AppId> {
    let id = cx.guid(v, key)?;
    let Some(app) = apps.get(&id) else {
        cx.err(v.span(), key, format!("no app with app_id {id} is declared in this file"));
        return None;
    };
    if app.audience == SignInAudience::SingleOrg && app.tenant != tenant {
        cx.err(
            v.span(),
            key,
            format!(
                "app {:?} is single_org (homed in tenant {:?}) and cannot be used in tenant {:?}; \
                 set sign_in_audience = \"multiple_orgs\" on the app",
                app.display_name, indexes[app.tenant].name, indexes[tenant].name
            ),
        );
        return None;
    }
    Some(id)
}

/// Checks delegated and application permission values against a resource.
fn permissions(
    cx: &mut Ctx,
    graph: &dyn GraphCatalog,
    apps: &HashMap<AppId, AppIndex>,
    resource: ResourceRef,
    delegated: &[S<String>],
    application: &[S<String>],
    key_prefix: &str,
) -> (Vec<String>, Vec<String>) {
    let dkey = format!("{key_prefix}.delegated");
    let akey = format!("{key_prefix}.application");
    cx.no_duplicates(delegated, &dkey, exact);
    cx.no_duplicates(application, &akey, exact);
    for d in delegated {
        let v = d.get_ref();
        let problem = match resource {
            ResourceRef::MicrosoftGraph => {
                if graph.delegated_scope_exists(v) {
                    None
                } else if graph.app_role_exists(v) {
                    Some(format!(
                        "{v:?} is a Microsoft Graph application permission, not a delegated one \
                         (list it under application)"
                    ))
                } else {
                    Some(format!("{v:?} is not a Microsoft Graph delegated permission"))
                }
            }
            ResourceRef::App(id) => {
                let app = &apps[&id];
                if app.scopes.contains(v) {
                    None
                } else if app.roles.contains_key(v) {
                    Some(format!(
                        "{v:?} is an app role of app {:?}, not a delegated permission (list it \
                         under application)",
                        app.display_name
                    ))
                } else {
                    Some(format!("app {:?} exposes no delegated permission (scope) {v:?}", app.display_name))
                }
            }
        };
        if let Some(msg) = problem {
            cx.err(d.span(), &dkey, msg);
        }
    }
    for a in application {
        let v = a.get_ref();
        let problem = match resource {
            ResourceRef::MicrosoftGraph => {
                if graph.app_role_exists(v) {
                    None
                } else if graph.delegated_scope_exists(v) {
                    Some(format!(
                        "{v:?} is a Microsoft Graph delegated permission, not an application one \
                         (list it under delegated)"
                    ))
                } else {
                    Some(format!("{v:?} is not a Microsoft Graph application permission"))
                }
            }
            ResourceRef::App(id) => {
                let app = &apps[&id];
                match app.roles.get(v) {
                    Some(types) if types.contains(&MemberType::Application) => None,
                    Some(_) => Some(format!(
                        "app role {v:?} of app {:?} is not an application permission (its \
                         allowed_member_types lacks \"Application\")",
                        app.display_name
                    )),
                    None if app.scopes.contains(v) => Some(format!(
                        "{v:?} is a delegated permission of app {:?}, not an app role (list it \
                         under delegated)",
                        app.display_name
                    )),
                    None => Some(format!("app {:?} has no app role {v:?}", app.display_name)),
                }
            }
        };
        if let Some(msg) = problem {
            cx.err(a.span(), &akey, msg);
        }
    }
    (delegated.iter().map(|d| d.get_ref().clone()).collect(), application.iter().map(|a| a.get_ref().clone()).collect())
}

/// One `[[tenant.classification]]` entry of tenant `tenant`.
#[allow(clippy::too_many_arguments)]
fn classification(
    cx: &mut Ctx,
    graph: &dyn GraphCatalog,
    apps: &HashMap<AppId, AppIndex>,
    indexes: &[TenantIndex],
    tenant: usize,
    span: Range<usize>,
    c: &RawClassification,
    seen: &mut HashMap<ResourceRef, usize>,
) -> Option<ClassificationSpec> {
    const RESOURCE: &str = "tenant.classification.resource";
    const LOW: &str = "tenant.classification.low";
    let resource = resource(cx, apps, &c.resource, RESOURCE)?;
    // Problems with the resource itself are reported where it is named (or on the entry's
    // header when it defaults to Microsoft Graph).
    let at = c.resource.as_ref().map_or(span, |s| s.span());
    let tenant_name = &indexes[tenant].name;
    if let ResourceRef::App(id) = resource {
        let app = &apps[&id];
        if app.audience == SignInAudience::SingleOrg && app.tenant != tenant {
            cx.err(
                at,
                RESOURCE,
                format!(
                    "app {:?} is single_org (homed in tenant {:?}) and has no service principal in \
                     tenant {tenant_name:?}, so its permissions cannot be classified here; set \
                     sign_in_audience = \"multiple_orgs\" on the app",
                    app.display_name, indexes[app.tenant].name
                ),
            );
            return None;
        }
        if app.scopes.is_empty() {
            cx.err(
                at,
                RESOURCE,
                format!(
                    "app {:?} exposes no delegated permissions (scopes), so there is nothing to \
                     classify",
                    app.display_name
                ),
            );
            return None;
        }
    }
    if let Some(&first) = seen.get(&resource) {
        cx.err(
            at.clone(),
            RESOURCE,
            format!(
                "tenant {tenant_name:?} already classifies the permissions of this resource (first \
                 on line {first}); merge the entries"
            ),
        );
    } else {
        seen.insert(resource, cx.line(at));
    }
    let low = c.low.get_ref();
    cx.no_duplicates(low, LOW, exact);
    for v in low {
        let value = v.get_ref();
        let only = "only delegated permissions (scopes) can be classified";
        let admin = "only delegated permissions that users can consent to (admin_consent_required = \
                     false) can be classified";
        let problem = match resource {
            ResourceRef::MicrosoftGraph => {
                if graph.delegated_scope_exists(value) {
                    graph
                        .delegated_scope_requires_admin(value)
                        .then(|| format!("Microsoft Graph's {value:?} requires admin consent; {admin}"))
                } else if graph.app_role_exists(value) {
                    Some(format!("{value:?} is a Microsoft Graph application permission; {only}"))
                } else {
                    Some(format!("{value:?} is not a Microsoft Graph delegated permission"))
                }
            }
            ResourceRef::App(id) => {
                let app = &apps[&id];
                if app.admin_scopes.contains(value) {
                    Some(format!(
                        "scope {value:?} of app {:?} requires admin consent (admin_consent_required \
                         defaults to true); {admin}",
                        app.display_name
                    ))
                } else if app.scopes.contains(value) {
                    None
                } else if app.roles.contains_key(value) {
                    Some(format!("{value:?} is an app role of app {:?}; {only}", app.display_name))
                } else {
                    Some(format!("app {:?} exposes no delegated permission (scope) {value:?}", app.display_name))
                }
            }
        };
        if let Some(msg) = problem {
            cx.err(v.span(), LOW, msg);
        }
    }
    Some(ClassificationSpec { resource, low: low.iter().map(|v| v.get_ref().clone()).collect() })
}

fn date_time(
    cx: &mut Ctx,
    v: &S<RawDateTime>,
    key: &str,
    loaded_at: OffsetDateTime,
    zone: &NamedZone,
) -> Option<Written> {
    match relative_time::read(&v.get_ref().0, loaded_at, zone) {
        Ok(t) => Some(t),
        Err(message) => {
            cx.err(v.span(), key, message);
            None
        }
    }
}

/// A `time_zone` key: an IANA (`Europe/Paris`) or Windows (`W. Europe Standard Time`) zone name.
fn zone(cx: &mut Ctx, v: &Option<S<String>>, key: &str) -> Option<NamedZone> {
    let v = v.as_ref()?;
    let zone = NamedZone::resolve(v.get_ref());
    if zone.is_none() {
        cx.err(
            v.span(),
            key,
            format!("{:?} is not a time zone (expected an IANA name like Europe/Paris, or UTC)", v.get_ref()),
        );
    }
    zone
}

/// Pass 1 for one app registration: its own fields, scopes and roles; indexes it.
fn check_app(
    cx: &mut Ctx,
    tenant: usize,
    a: &RawApp,
    apps: &mut HashMap<AppId, AppIndex>,
    app_lines: &mut HashMap<AppId, usize>,
    identifier_uris: &mut HashMap<String, (AppId, usize)>,
) -> AppSpec {
    let display_name = cx.non_empty(&a.display_name, "tenant.app.display_name");
    let app_id = cx.guid(&a.app_id, "tenant.app.app_id");
    let mut unique_id = None;
    if let Some(id) = app_id {
        if id == GRAPH_APP_ID {
            cx.err(
                a.app_id.span(),
                "tenant.app.app_id",
                format!("{id} is Microsoft Graph's app id; Graph is built in and cannot be declared"),
            );
        } else if let Some(&first) = app_lines.get(&id) {
            cx.err(
                a.app_id.span(),
                "tenant.app.app_id",
                format!("app id {id} is used by more than one app (first on line {first})"),
            );
        } else {
            app_lines.insert(id, cx.line(a.app_id.span()));
            unique_id = Some(id);
        }
    }

    let sign_in_audience = match &a.sign_in_audience {
        None => SignInAudience::default(),
        Some(v) => match v.get_ref().as_str() {
            "single_org" => SignInAudience::SingleOrg,
            "multiple_orgs" => SignInAudience::MultipleOrgs,
            other => {
                cx.err(
                    v.span(),
                    "tenant.app.sign_in_audience",
                    format!("{other:?} is not a valid sign-in audience (expected \"single_org\" or \"multiple_orgs\")"),
                );
                SignInAudience::default()
            }
        },
    };

    cx.no_duplicates(&a.redirect_uris, "tenant.app.redirect_uris", exact);
    for r in &a.redirect_uris {
        if let Some(msg) = text::redirect_uri_problem(r.get_ref()) {
            cx.err(r.span(), "tenant.app.redirect_uris", msg);
        }
    }

    let public_client = a.public_client.as_ref().is_some_and(|v| *v.get_ref());
    let mut secrets = Vec::new();
    if let Some(list) = &a.secrets {
        if public_client && !list.get_ref().is_empty() {
            cx.err(
                list.span(),
                "tenant.app.secrets",
                format!("app {display_name:?} is a public client and cannot have client secrets"),
            );
        }
        for s in list.get_ref() {
            if s.get_ref().is_empty() {
                cx.err(s.span(), "tenant.app.secrets", "a client secret must not be empty");
            }
            secrets.push(s.get_ref().clone());
        }
    }

    let mut certificates = Vec::new();
    for c in &a.certificates {
        let pem = c.get_ref().trim();
        if public_client {
            let why = format!("app {display_name:?} is a public client and cannot have certificates");
            cx.err(c.span(), "tenant.app.certificates", why);
        } else if !(pem.starts_with("-----BEGIN CERTIFICATE-----") && pem.ends_with("-----END CERTIFICATE-----")) {
            let why = "expected one PEM certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)";
            cx.err(c.span(), "tenant.app.certificates", why);
        }
        certificates.push(pem.to_string());
    }

    cx.no_duplicates(&a.spa_redirect_uris, "tenant.app.spa_redirect_uris", exact);
    for r in &a.spa_redirect_uris {
        if let Some(msg) = text::redirect_uri_problem(r.get_ref()) {
            cx.err(r.span(), "tenant.app.spa_redirect_uris", msg);
        } else if a.redirect_uris.iter().any(|w| w.get_ref() == r.get_ref()) {
            let why = format!("{:?} is also in redirect_uris: a URI is registered on one platform only", r.get_ref());
            cx.err(r.span(), "tenant.app.spa_redirect_uris", why);
        }
    }
    let federated_credentials = federated_credentials(cx, a, public_client, &display_name);
    let webhooks = webhooks(cx, a);
    let group_membership_claims = match &a.group_membership_claims {
        None => crate::directory::GroupMembershipClaims::None,
        Some(v) => crate::directory::GroupMembershipClaims::parse(v.get_ref()).unwrap_or_else(|| {
            let why = format!(
                "{:?} is not a groups claim setting (expected None, SecurityGroup, DirectoryRole, ApplicationGroup or All)",
                v.get_ref()
            );
            cx.err(v.span(), "tenant.app.group_membership_claims", why);
            crate::directory::GroupMembershipClaims::None
        }),
    };
    let access_token_version = match &a.access_token_version {
        None => 2,
        Some(v) if matches!(v.get_ref(), 1 | 2) => *v.get_ref() as u8,
        Some(v) => {
            cx.err(
                v.span(),
                "tenant.app.access_token_version",
                format!("{} is not a token version (1 or 2)", v.get_ref()),
            );
            2
        }
    };
    let mut pre_authorized = Vec::new();
    for entry in &a.pre_authorized {
        let p = entry.get_ref();
        let app_id = match p.app.get_ref().parse::<AppId>() {
            Ok(id) => id,
            Err(_) => {
                cx.err(
                    p.app.span(),
                    "tenant.app.pre_authorized.app",
                    format!("{:?} is not a client id (a GUID)", p.app.get_ref()),
                );
                continue;
            }
        };
        let mut scopes = Vec::new();
        for v in p.scopes.get_ref() {
            if !a.scope.iter().any(|s| s.get_ref().value.get_ref() == v.get_ref()) {
                let why = format!("{:?} is not a scope this app exposes ([[tenant.app.scope]])", v.get_ref());
                cx.err(v.span(), "tenant.app.pre_authorized.scopes", why);
            }
            scopes.push(v.get_ref().clone());
        }
        pre_authorized.push(PreAuthorizedSpec { app_id, scopes });
    }
    let mut known_client_applications = Vec::new();
    for v in &a.known_client_applications {
        match v.get_ref().parse::<AppId>() {
            Ok(id) => known_client_applications.push(id),
            Err(_) => cx.err(
                v.span(),
                "tenant.app.known_client_applications",
                format!("{:?} is not a client id (a GUID)", v.get_ref()),
            ),
        }
    }
    let mut optional_claims = crate::directory::OptionalClaims::default();
    if let Some(oc) = &a.optional_claims {
        let oc = oc.get_ref();
        for (list, out, key) in [
            (&oc.id_token, &mut optional_claims.id_token, "tenant.app.optional_claims.id_token"),
            (&oc.access_token, &mut optional_claims.access_token, "tenant.app.optional_claims.access_token"),
        ] {
            for name in list {
                if !crate::directory::SUPPORTED_OPTIONAL_CLAIMS.contains(&name.get_ref().as_str()) {
                    let why = format!(
                        "{:?} is not an optional claim Accord emits (one of {})",
                        name.get_ref(),
                        crate::directory::SUPPORTED_OPTIONAL_CLAIMS.join(", ")
                    );
                    cx.err(name.span(), key, why);
                }
                out.push(name.get_ref().clone());
            }
        }
    }

    let identifier_uri = a.identifier_uri.as_ref().map(|u| {
        let s = u.get_ref();
        if let Some(msg) = text::identifier_uri_problem(s) {
            cx.err(u.span(), "tenant.app.identifier_uri", msg);
        } else if s == GRAPH_RESOURCE_URI || s.strip_suffix('/') == Some(GRAPH_RESOURCE_URI) {
            cx.err(u.span(), "tenant.app.identifier_uri", format!("{s:?} is Microsoft Graph's identifier URI"));
        } else if let Some((_, first)) = identifier_uris.get(s) {
            cx.err(
                u.span(),
                "tenant.app.identifier_uri",
                format!("identifier URI {s:?} is used by more than one app (first on line {first})"),
            );
        } else if let Some(id) = unique_id {
            identifier_uris.insert(s.clone(), (id, cx.line(u.span())));
        }
        s.clone()
    });

    // Scopes and roles; their values and ids are unique within the app.
    let mut ids: HashMap<Uuid, usize> = HashMap::new();
    let mut check_id = |cx: &mut Ctx, v: &Option<S<String>>, key: &str| -> Option<Uuid> {
        let id = cx.opt_guid(v, key)?;
        let span = v.as_ref().map(|s| s.span()).unwrap_or_default();
        if let Some(&first) = ids.get(&id) {
            cx.err(
                span,
                key,
                format!("id {id} is used by more than one scope or role of this app (first on line {first})"),
            );
        } else {
            ids.insert(id, cx.line(span));
        }
        Some(id)
    };
    let mut scope_values: HashMap<String, usize> = HashMap::new();
    let mut scopes = Vec::new();
    for s in &a.scope {
        let s = s.get_ref();
        let value = permission_value(cx, &s.value, "tenant.app.scope.value");
        if let Some(&first) = scope_values.get(&value) {
            cx.err(
                s.value.span(),
                "tenant.app.scope.value",
                format!("scope {value:?} is declared twice in app {display_name:?} (first on line {first})"),
            );
        } else {
            scope_values.insert(value.clone(), cx.line(s.value.span()));
        }
        let id = check_id(cx, &s.id, "tenant.app.scope.id");
        let opt = |v: &Option<S<String>>| v.as_ref().map(|v| v.get_ref().clone());
        let admin_name = opt(&s.admin_consent_display_name).unwrap_or_else(|| value.clone());
        let admin_desc = opt(&s.admin_consent_description).unwrap_or_default();
        scopes.push(ScopeSpec {
            id,
            admin_consent_required: s.admin_consent_required.as_ref().is_none_or(|v| *v.get_ref()),
            user_consent_display_name: opt(&s.user_consent_display_name).unwrap_or_else(|| admin_name.clone()),
            user_consent_description: opt(&s.user_consent_description).unwrap_or_else(|| admin_desc.clone()),
            admin_consent_display_name: admin_name,
            admin_consent_description: admin_desc,
            value,
        });
    }
    let mut role_values: HashMap<String, usize> = HashMap::new();
    let mut roles = Vec::new();
    for r in &a.role {
        let r = r.get_ref();
        let value = permission_value(cx, &r.value, "tenant.app.role.value");
        if let Some(&first) = role_values.get(&value) {
            cx.err(
                r.value.span(),
                "tenant.app.role.value",
                format!("app role {value:?} is declared twice in app {display_name:?} (first on line {first})"),
            );
        } else {
            role_values.insert(value.clone(), cx.line(r.value.span()));
        }
        let id = check_id(cx, &r.id, "tenant.app.role.id");
        let types_key = "tenant.app.role.allowed_member_types";
        if r.allowed_member_types.get_ref().is_empty() {
            cx.err(
                r.allowed_member_types.span(),
                types_key,
                "at least one member type is required (\"Application\" and/or \"User\")",
            );
        }
        cx.no_duplicates(r.allowed_member_types.get_ref(), types_key, exact);
        let mut allowed_member_types = Vec::new();
        for t in r.allowed_member_types.get_ref() {
            let mt = match t.get_ref().as_str() {
                "Application" => MemberType::Application,
                "User" => MemberType::User,
                other => {
                    cx.err(
                        t.span(),
                        types_key,
                        format!("{other:?} is not a valid member type (expected \"Application\" or \"User\")"),
                    );
                    continue;
                }
            };
            if !allowed_member_types.contains(&mt) {
                allowed_member_types.push(mt);
            }
        }
        roles.push(RoleSpec {
            id,
            display_name: r.display_name.as_ref().map_or_else(|| value.clone(), |v| v.get_ref().clone()),
            description: r.description.as_ref().map(|v| v.get_ref().clone()).unwrap_or_default(),
            value,
            allowed_member_types,
        });
    }

    if let Some(id) = unique_id {
        apps.insert(
            id,
            AppIndex {
                tenant,
                display_name: display_name.clone(),
                audience: sign_in_audience,
                identifier_uri: identifier_uri.clone(),
                scopes: scopes.iter().map(|s| s.value.clone()).collect(),
                admin_scopes: scopes.iter().filter(|s| s.admin_consent_required).map(|s| s.value.clone()).collect(),
                roles: roles.iter().map(|r| (r.value.clone(), r.allowed_member_types.clone())).collect(),
            },
        );
    }

    AppSpec {
        app_id: app_id.unwrap_or(AppId::from_uuid(Uuid::nil())),
        display_name,
        sign_in_audience,
        redirect_uris: a.redirect_uris.iter().map(|r| r.get_ref().clone()).collect(),
        spa_redirect_uris: a.spa_redirect_uris.iter().map(|r| r.get_ref().clone()).collect(),
        public_client,
        secrets,
        certificates,
        verified_publisher: a.verified_publisher.as_ref().is_some_and(|v| *v.get_ref()),
        identifier_uri,
        scopes,
        roles,
        required: Vec::new(),
        federated_credentials,
        group_membership_claims,
        optional_claims,
        access_token_version,
        pre_authorized,
        known_client_applications,
        webhooks,
    }
}

/// `[[tenant.app.webhook]]`: an absolute http(s) URL (whether http is allowed is the server's
/// to say) used once per app, and a Standard Webhooks secret.
fn webhooks(cx: &mut Ctx, a: &RawApp) -> Vec<WebhookSpec> {
    let mut specs: Vec<WebhookSpec> = Vec::new();
    for entry in &a.webhook {
        let w = entry.get_ref();
        let url = w.url.get_ref();
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.username().is_empty() && u.fragment().is_none() => {}
            _ => cx.err(
                w.url.span(),
                "tenant.app.webhook.url",
                format!("{url:?} is not an absolute http(s) URL without user information or a fragment"),
            ),
        }
        if specs.iter().any(|s| &s.url == url) {
            cx.err(w.url.span(), "tenant.app.webhook.url", format!("{url:?} is used twice for this app"));
        }
        let secret = w.secret.get_ref();
        let key_len = secret.strip_prefix("whsec_").and_then(|k| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(k).ok().map(|k| k.len())
        });
        if !key_len.is_some_and(|n| (24..=64).contains(&n)) {
            cx.err(
                w.secret.span(),
                "tenant.app.webhook.secret",
                "must be whsec_ followed by the base64 of 24 to 64 random bytes",
            );
        }
        specs.push(WebhookSpec { url: url.clone(), secret: secret.clone() });
    }
    specs
}

/// `[[tenant.app.federated_credential]]`: each checked by the directory's own rules, errors
/// placed on the field they are about.
fn federated_credentials(
    cx: &mut Ctx,
    a: &RawApp,
    public_client: bool,
    display_name: &str,
) -> Vec<FederatedCredentialSpec> {
    let key = "tenant.app.federated_credential";
    let mut specs = Vec::new();
    let mut checked = Vec::new();
    for entry in &a.federated_credential {
        let f = entry.get_ref();
        if public_client {
            cx.err(entry.span(), key, format!("app {display_name:?} is a public client and cannot have credentials"));
        }
        let audiences: Vec<String> = match &f.audiences {
            Some(list) => list.get_ref().iter().map(|a| a.get_ref().clone()).collect(),
            None => vec![crate::directory::TOKEN_EXCHANGE_AUDIENCE.to_string()],
        };
        let spec = FederatedCredentialSpec {
            name: f.name.get_ref().clone(),
            issuer: f.issuer.get_ref().clone(),
            subject: f.subject.get_ref().clone(),
            audiences,
            description: f.description.as_ref().map(|d| d.get_ref().clone()),
            jwks: f.jwks.as_ref().map(|j| j.get_ref().clone()),
        };
        let credential = spec.credential(Uuid::nil());
        if let Some((field, why)) = credential.problem() {
            let span = match field {
                "name" => f.name.span(),
                "issuer" => f.issuer.span(),
                "subject" => f.subject.span(),
                "audiences" => f.audiences.as_ref().map_or(entry.span(), |a| a.span()),
                "description" => f.description.as_ref().map_or(entry.span(), |d| d.span()),
                "jwks" => f.jwks.as_ref().map_or(entry.span(), |j| j.span()),
                _ => entry.span(),
            };
            cx.err(span, &format!("{key}.{field}"), why);
        }
        checked.push(credential);
        if let Some((field, why)) = crate::directory::federated_credentials_problem(&checked) {
            cx.err(entry.span(), &format!("{key}.{field}"), why);
            checked.pop();
        }
        specs.push(spec);
    }
    specs
}

/// A scope or role value: non-empty, no whitespace.
fn permission_value(cx: &mut Ctx, v: &S<String>, key: &str) -> String {
    let s = v.get_ref();
    if s.is_empty() {
        cx.err(v.span(), key, "must not be empty");
    } else if s.chars().any(char::is_whitespace) {
        cx.err(v.span(), key, format!("{s:?} must not contain spaces"));
    }
    s.clone()
}
