//! Scenario files (see docs/scenarios.md).
//!
//! A scenario file declares a whole world — tenants, users, groups, directory roles, app
//! registrations, enterprise-app settings, consent grants, assignments and calendar events — in
//! one TOML file. This module turns the text of such a file into a validated [`Scenario`]; it
//! performs no I/O (the caller reads the file and passes its name and text in).
//!
//! ```
//! let text = r#"
//! [[tenant]]
//! display_name = "Contoso"
//! domains = ["contoso.test"]
//!
//! [[tenant.user]]
//! upn = "admin@contoso.test"
//! display_name = "Contoso Administrator"
//! password = "correct horse battery staple"
//! roles = ["Global Administrator"]
//! "#;
//! let scenario = accord_core::scenario::parse("contoso.toml", text).unwrap();
//! assert_eq!(scenario.tenants[0].users[0].upn, "admin@contoso.test");
//!
//! let err = accord_core::scenario::parse("bad.toml", "[[tenant]]\ndisplay_name = \"X\"\ndomains = [\"x.test\"]\ncolour = \"red\"\n")
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("bad.toml:4: tenant.colour: unknown field `colour`"));
//! ```
//!
//! Parsing either succeeds completely or returns a [`ScenarioError`] listing *every* problem
//! found, each with the file name, the 1-based line and the dotted key (e.g. `tenant.user.upn`).
//! Syntax and type errors stop the parse at the first one (the TOML parser cannot continue);
//! semantic errors are all collected.

use std::borrow::Cow;
use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::ids::{AppId, TenantId, UserId};

pub use crate::directory::{DirectoryRole, SignInAudience, UserConsent};

mod bulk;
pub mod generate;
mod raw;
mod relative_time;
mod text;
mod validate;
mod variables;

pub use variables::parse_assignment as parse_variable_assignment;

#[cfg(test)]
mod tests;

/// Microsoft Graph's application (client) id. Graph is built into every tenant; a scenario
/// refers to it by this id or by [`GRAPH_RESOURCE_URI`].
pub use crate::well_known::GRAPH_APP_ID;

/// Microsoft Graph's identifier URI.
pub const GRAPH_RESOURCE_URI: &str = "https://graph.microsoft.com";

/// The Microsoft Graph delegated permissions (scope values) Accord knows about.
pub const GRAPH_DELEGATED: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "User.Read",
    "User.ReadBasic.All",
    "User.Read.All",
    "Calendars.Read",
    "Calendars.ReadBasic",
    "Calendars.ReadWrite",
    "Calendars.Read.Shared",
    "Calendars.ReadWrite.Shared",
    "OnlineMeetings.Read",
    "Directory.Read.All",
    "Group.Read.All",
    "GroupMember.Read.All",
    "Application.Read.All",
    "Application.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Policy.Read.All",
    "Policy.ReadWrite.Authorization",
    "Policy.ReadWrite.ConsentRequest",
    "Policy.ReadWrite.PermissionGrant",
    "ConsentRequest.Read.All",
    "ConsentRequest.ReadWrite.All",
    "User.ReadWrite.All",
    "User-PasswordProfile.ReadWrite.All",
    "Group.ReadWrite.All",
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
];

/// The Microsoft Graph application permissions (app role values) Accord knows about.
pub const GRAPH_APPLICATION: &[&str] = &[
    "Calendars.Read",
    "Calendars.ReadWrite",
    "User.Read.All",
    "OnlineMeetings.Read.All",
    "Directory.Read.All",
    "Group.Read.All",
    "GroupMember.Read.All",
    "Application.Read.All",
    "Application.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Policy.Read.All",
    "Policy.ReadWrite.Authorization",
    "Policy.ReadWrite.ConsentRequest",
    "Policy.ReadWrite.PermissionGrant",
    "ConsentRequest.Read.All",
    "ConsentRequest.ReadWrite.All",
    "User.ReadWrite.All",
    "User-PasswordProfile.ReadWrite.All",
    "Group.ReadWrite.All",
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
];

/// The permissions Microsoft Graph offers, as far as scenario validation is concerned.
///
/// [`parse`] uses [`BuiltinGraphCatalog`] (the [`GRAPH_DELEGATED`] and [`GRAPH_APPLICATION`]
/// lists); a richer Graph catalogue can be plugged in with [`parse_with_catalog`].
/// Values are compared exactly (case-sensitively).
pub trait GraphCatalog {
    /// Whether Graph exposes a delegated permission (scope) with this value.
    fn delegated_scope_exists(&self, value: &str) -> bool;
    /// Whether Graph exposes an application permission (app role) with this value.
    fn app_role_exists(&self, value: &str) -> bool;
    /// Whether the delegated permission `value` requires admin consent (such permissions cannot
    /// be classified). The default consults Accord's built-in Graph ([`crate::microsoft_graph`]);
    /// values it does not know count as not admin-restricted.
    fn delegated_scope_requires_admin(&self, value: &str) -> bool {
        graph_delegated_scope_requires_admin(value)
    }
}

/// The built-in Graph catalogue: [`GRAPH_DELEGATED`] and [`GRAPH_APPLICATION`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuiltinGraphCatalog;

impl GraphCatalog for BuiltinGraphCatalog {
    fn delegated_scope_exists(&self, value: &str) -> bool {
        graph_delegated_scope_exists(value)
    }
    fn app_role_exists(&self, value: &str) -> bool {
        graph_app_role_exists(value)
    }
}

/// Whether `value` is in [`GRAPH_DELEGATED`].
pub fn graph_delegated_scope_exists(value: &str) -> bool {
    GRAPH_DELEGATED.contains(&value)
}

/// Whether `value` is in [`GRAPH_APPLICATION`].
pub fn graph_app_role_exists(value: &str) -> bool {
    GRAPH_APPLICATION.contains(&value)
}

/// Whether Accord's built-in Graph marks the delegated permission `value` (exact spelling) as
/// requiring admin consent, e.g. `User.Read.All`.
pub fn graph_delegated_scope_requires_admin(value: &str) -> bool {
    crate::microsoft_graph::application().scopes.iter().any(|s| s.value == value && s.admin_consent_required)
}

/// Parses and validates a scenario file against the built-in Graph catalogue, with relative
/// times read against the current time and variables at their defaults.
///
/// `source_name` is only used in error messages (usually the file name as the user typed it).
pub fn parse(source_name: &str, text: &str) -> Result<Scenario, ScenarioError> {
    parse_with(source_name, text, &ParseOptions::now())
}

/// Parses and validates a scenario file, checking Graph permission names against `graph`.
pub fn parse_with_catalog(source_name: &str, text: &str, graph: &dyn GraphCatalog) -> Result<Scenario, ScenarioError> {
    parse_with(source_name, text, &ParseOptions { graph, ..ParseOptions::now() })
}

/// How a scenario is read: the load time relative times count from, variable overrides, and
/// the Graph catalogue permission names are checked against.
pub struct ParseOptions<'a> {
    /// "now" for relative times (`"monday 09:00"`, `"now+1h"`).
    pub loaded_at: OffsetDateTime,
    /// `name=value` overrides of the file's `[variables]` defaults.
    pub variables: Vec<(String, String)>,
    pub graph: &'a dyn GraphCatalog,
    /// Keep a large file's `[[tenant.user]]` and `[[tenant.group]]` entries as its text once
    /// checked, for [`Scenario::user_batches`] and [`Scenario::group_batches`] to read again,
    /// instead of in [`TenantSpec::users`] and [`TenantSpec::groups`] (left empty): a server
    /// loading 100,000 users holds a sixth of the memory. Files that the split read does not
    /// follow (see `bulk.rs`) are kept whole as ever.
    pub bulk_as_text: bool,
}

impl ParseOptions<'static> {
    /// The current time, no overrides, the built-in Graph catalogue.
    pub fn now() -> ParseOptions<'static> {
        ParseOptions::at(crate::clock::now())
    }

    /// Relative times counted from `loaded_at` (tests, and any caller with its own clock).
    pub fn at(loaded_at: OffsetDateTime) -> ParseOptions<'static> {
        ParseOptions { loaded_at, variables: Vec::new(), graph: &BuiltinGraphCatalog, bulk_as_text: false }
    }
}

/// Parses and validates a scenario file as `options` say.
pub fn parse_with(source_name: &str, text: &str, options: &ParseOptions<'_>) -> Result<Scenario, ScenarioError> {
    parse_owned(source_name, text.to_string(), options)
}

/// [`parse_with`] for a text the caller gives up: a large file is read without a second copy
/// (its bulk entries are blanked in place once read, see `bulk.rs`).
pub fn parse_owned(source_name: &str, text: String, options: &ParseOptions<'_>) -> Result<Scenario, ScenarioError> {
    parse_text(source_name, text, None, options)
}

/// [`parse_owned`] for `text`, the content of `file`: with `bulk_as_text`, the users and
/// groups of a file that no variable changes are read again from the file itself when they are
/// needed, and its text is not held past the check (see [`ParseOptions::bulk_as_text`]).
pub fn parse_file_text(
    source_name: &str,
    text: String,
    file: std::fs::File,
    options: &ParseOptions<'_>,
) -> Result<Scenario, ScenarioError> {
    parse_text(source_name, text, Some(file), options)
}

fn parse_text(
    source_name: &str,
    text: String,
    file: Option<std::fs::File>,
    options: &ParseOptions<'_>,
) -> Result<Scenario, ScenarioError> {
    let (text, file) = match variables::substitute(source_name, &text, &options.variables)? {
        // Only a regular file can be read again: a pipe (`<(…)`, `/dev/stdin`) is kept as text.
        Cow::Borrowed(_) => (text, file.filter(|f| f.metadata().is_ok_and(|m| m.is_file()))),
        // Substituted: no longer the file's text, so never read again from the file.
        Cow::Owned(substituted) => (substituted, None),
    };
    let Some(entries) = bulk::entries(&text).filter(|e| !e.is_empty()) else {
        return read_whole(source_name, &text, options);
    };
    if options.bulk_as_text {
        return read_bulk_as_text(source_name, text, file, entries, options);
    }
    // A TOML error in an entry: the whole read reports the file's first error, as it always did.
    let Some(read) = bulk::read_entries(&text, &entries) else {
        return read_whole(source_name, &text, options);
    };
    let first_entry_line = text::line_of(&text, entries[0].range().start);
    let skeleton = bulk::blank_entries(text, &entries);
    let mut raw = read_raw(source_name, &skeleton)?;
    if bulk::attach(&mut raw, read).is_none() {
        return Err(mixed_entries(source_name, first_entry_line));
    }
    // Past the TOML read only the lines matter: the text (16 MB at 100,000 users) goes now.
    let lines = text::LineIndex::new(&skeleton);
    drop(skeleton);
    validate_raw(source_name, lines, raw, options)
}

/// The split read with the entries left where they are: the skeleton is read with the entries
/// blanked, the entries a batch at a time as validation goes (never all at once), and the
/// scenario keeps the file (or, for a text in memory, the text) to read them again.
fn read_bulk_as_text(
    source_name: &str,
    text: String,
    file: Option<std::fs::File>,
    entries: Vec<bulk::Entry>,
    options: &ParseOptions<'_>,
) -> Result<Scenario, ScenarioError> {
    let first_entry_line = text::line_of(&text, entries[0].range().start);
    let (skeleton, bulk) = match file {
        // Blanked in place: the entries are in the file.
        Some(file) => {
            let bulk = bulk::BulkText::in_file(file, &text, entries);
            (bulk.blanked(text), bulk)
        }
        None => {
            let bulk = bulk::BulkText::in_memory(text.clone(), entries);
            (bulk.blanked(text), bulk)
        }
    };
    let raw = read_raw(source_name, &skeleton)?;
    if !bulk::attachable(&raw, bulk.tenants()) {
        return Err(mixed_entries(source_name, first_entry_line));
    }
    // Blanking keeps every newline where it was: the skeleton's lines are the file's.
    let lines = text::LineIndex::new(&skeleton);
    drop(skeleton);
    match validate::validate(source_name, lines, raw, options, validate::Entries::Text(&bulk)) {
        Ok((mut scenario, notes)) => {
            let source_name = source_name.to_string();
            scenario.bulk = Some(std::sync::Arc::new(BulkRead { text: bulk, notes, source_name }));
            Ok(scenario)
        }
        Err(validate::Invalid::Problems(e)) => Err(e),
        // A TOML error in an entry (or a file changed since): the whole read reports the
        // first error of what the file now holds.
        Err(validate::Invalid::Unreadable) => {
            read_whole(source_name, &bulk.whole_text().ok_or_else(|| unreadable(source_name))?, options)
        }
    }
}

/// A file whose users and groups no longer read as they did when it was checked: written over
/// in between (or no longer readable).
fn unreadable(source_name: &str) -> ScenarioError {
    ScenarioError {
        diagnostics: vec![Diagnostic {
            file: source_name.to_string(),
            line: 1,
            key: String::new(),
            message: "the file changed while it was being loaded: its users and groups no longer read as they \
                      did when it was checked; nothing was loaded"
                .into(),
        }],
    }
}

fn mixed_entries(source_name: &str, line: usize) -> ScenarioError {
    ScenarioError {
        diagnostics: vec![Diagnostic {
            file: source_name.to_string(),
            line,
            key: "tenant.user".into(),
            message: "a tenant's users and groups are written either as [[tenant.user]] and [[tenant.group]] \
                      entries or as inline arrays, not both"
                .into(),
        }],
    }
}

/// The text with the variables substituted (the same string when it uses none).
#[cfg(test)]
fn substituted(source_name: &str, text: String, options: &ParseOptions<'_>) -> Result<String, ScenarioError> {
    let substituted = match variables::substitute(source_name, &text, &options.variables)? {
        Cow::Owned(substituted) => Some(substituted),
        Cow::Borrowed(_) => None,
    };
    Ok(substituted.unwrap_or(text))
}

/// [`parse_owned`] in one TOML read of the whole file: what the split read must agree with.
#[cfg(test)]
fn parse_whole(source_name: &str, text: String, options: &ParseOptions<'_>) -> Result<Scenario, ScenarioError> {
    read_whole(source_name, &substituted(source_name, text, options)?, options)
}

/// Reads and validates the file in one TOML read (small files, and files `bulk.rs` does not
/// split).
fn read_whole(source_name: &str, text: &str, options: &ParseOptions<'_>) -> Result<Scenario, ScenarioError> {
    let raw = read_raw(source_name, text)?;
    validate_raw(source_name, text::LineIndex::new(text), raw, options)
}

/// Validates a file whose users and groups are all in `raw` (nothing is read from text).
fn validate_raw(
    source_name: &str,
    lines: text::LineIndex,
    raw: raw::RawScenario,
    options: &ParseOptions<'_>,
) -> Result<Scenario, ScenarioError> {
    match validate::validate(source_name, lines, raw, options, validate::Entries::Raw) {
        Ok((scenario, _)) => Ok(scenario),
        Err(validate::Invalid::Problems(e)) => Err(e),
        // Only entries read from the text can be unreadable, and none are.
        Err(validate::Invalid::Unreadable) => Err(ScenarioError {
            diagnostics: vec![Diagnostic {
                file: source_name.to_string(),
                line: 1,
                key: String::new(),
                message: "the file could not be read".into(),
            }],
        }),
    }
}

/// The TOML read into the raw structs; a syntax or type error is the one diagnostic.
fn read_raw(source_name: &str, text: &str) -> Result<raw::RawScenario, ScenarioError> {
    toml::from_str(text).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim().to_string();
        let key = text::toml_error_key(text, span.clone(), &message);
        ScenarioError {
            diagnostics: vec![Diagnostic {
                file: source_name.to_string(),
                line: text::line_of(text, span.start),
                key,
                message,
            }],
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One problem found in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The source name passed to [`parse`].
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// Dotted key path, e.g. `tenant.user.upn` (array indices are not included: the line number
    /// identifies the entry). Empty when the problem is not tied to a key (some syntax errors).
    pub key: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}:{}: {}: {}", self.file, self.line, self.key, self.message)
        }
    }
}

/// A scenario file that cannot be loaded; holds every problem found, ordered by line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// At least one diagnostic.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ScenarioError {
    /// One diagnostic per line (no trailing newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The parsed world
// ---------------------------------------------------------------------------------------------

/// A validated scenario: every reference in it resolves.
///
/// References between objects use natural keys: users by UPN (spelled exactly as in the user's
/// `upn` key, even where the file referred to them with different letter case), groups by display
/// name (likewise canonicalised), apps by app id.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The tenants, in file order.
    pub tenants: Vec<TenantSpec>,
    /// What a later load does with events placed by relative times.
    pub relative_times: RelativeTimes,
    /// The world's limits (`[throttling]`); a server flag wins over each, a default fills in
    /// what neither gives.
    pub throttling: ThrottlingSpec,
    /// Test mode's fault rules (`[[fault]]`), each checked; a server not in test mode ignores
    /// them.
    pub faults: Vec<crate::fault_rules::RuleSpec>,
    /// The users and groups kept as the file's text (`ParseOptions::bulk_as_text`).
    bulk: Option<std::sync::Arc<BulkRead>>,
}

/// A file's users and groups kept as its text: [`Scenario::user_batches`] and
/// [`Scenario::group_batches`] read them again, a batch at a time.
#[derive(Debug, PartialEq)]
struct BulkRead {
    text: bulk::BulkText,
    notes: validate::TextNotes,
    /// The file's name, for a message.
    source_name: String,
}

/// How many users or groups [`Scenario::user_batches`] and [`Scenario::group_batches`] give at a
/// time.
pub const BATCH: usize = 256;

/// `[throttling]`: Graph's and the token endpoint's limits (0 turns one off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThrottlingSpec {
    /// Per application and mailbox, in ten minutes (Outlook's 10,000).
    pub mailbox_requests_per_10_minutes: Option<u32>,
    /// Per application and mailbox, at once (Outlook's 4).
    pub mailbox_concurrent: Option<u32>,
    /// Per application and tenant, any Graph request, in ten seconds.
    pub tenant_requests_per_10_seconds: Option<u32>,
    /// Per client id and network address, at the token endpoint, in a minute.
    pub token_requests_per_minute: Option<u32>,
}

/// `relative_times`: whether events placed by relative times stay where the first load put them
/// or follow every load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelativeTimes {
    /// Placed once: a later load (another day) leaves such an event where it is.
    #[default]
    Keep,
    /// Placed anew by every load, relative to that load: a world that lives in the present.
    Move,
}

impl Scenario {
    /// How many users tenant `tenant` (its index in [`Scenario::tenants`]) declares.
    pub fn user_count(&self, tenant: usize) -> usize {
        match &self.bulk {
            Some(bulk) => bulk.text.count(tenant, false),
            None => self.tenants[tenant].users.len(),
        }
    }

    /// Tenant `tenant`'s users in file order, [`BATCH`] at a time: from
    /// [`TenantSpec::users`], or read again from the file's text for a scenario parsed with
    /// `bulk_as_text`. An error only if that text no longer reads (it validated).
    pub fn user_batches(
        &self,
        tenant: usize,
    ) -> Box<dyn Iterator<Item = Result<Vec<UserSpec>, ScenarioError>> + Send + '_> {
        match &self.bulk {
            Some(bulk) => Box::new(bulk.text.batches(tenant, false).map(|batch| {
                let batch = batch.ok_or_else(|| unreadable(&bulk.source_name))?;
                Ok(batch.user.into_iter().map(|u| validate::user_spec(u.into_inner())).collect())
            })),
            None => Box::new(self.tenants[tenant].users.chunks(BATCH).map(|c| Ok(c.to_vec()))),
        }
    }

    /// Tenant `tenant`'s group names in file order (without reading the groups again).
    pub fn group_names(&self, tenant: usize) -> Box<dyn Iterator<Item = &str> + Send + '_> {
        match &self.bulk {
            Some(bulk) => Box::new(bulk.notes.group_names.get(tenant).into_iter().flatten().map(String::as_str)),
            None => Box::new(self.tenants[tenant].groups.iter().map(|g| g.display_name.as_str())),
        }
    }

    /// Tenant `tenant`'s groups in file order, [`BATCH`] at a time, as
    /// [`Scenario::user_batches`] gives users.
    pub fn group_batches(
        &self,
        tenant: usize,
    ) -> Box<dyn Iterator<Item = Result<Vec<GroupSpec>, ScenarioError>> + Send + '_> {
        match &self.bulk {
            Some(bulk) => Box::new(bulk.text.batches(tenant, true).map(|batch| {
                let batch = batch.ok_or_else(|| unreadable(&bulk.source_name))?;
                Ok(batch
                    .group
                    .into_iter()
                    .map(|g| validate::group_spec(g.into_inner(), &bulk.notes.respelled))
                    .collect())
            })),
            None => Box::new(self.tenants[tenant].groups.chunks(BATCH).map(|c| Ok(c.to_vec()))),
        }
    }

    /// The app registration with this app id and the tenant that homes it.
    pub fn find_app(&self, app_id: AppId) -> Option<(&TenantSpec, &AppSpec)> {
        self.tenants.iter().find_map(|t| t.apps.iter().find(|a| a.app_id == app_id).map(|app| (t, app)))
    }
}

/// A tenant (`[[tenant]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSpec {
    /// The tenant id; `None` means the loader generates one (and prints it).
    pub id: Option<TenantId>,
    /// Organisation display name.
    pub display_name: String,
    /// Verified domains, at least one; the first is the default domain.
    pub domains: Vec<String>,
    /// Who may consent to apps (default [`UserConsent::All`]).
    pub user_consent: UserConsent,
    /// The admin-consent request workflow (disabled unless configured).
    pub admin_consent_requests: AdminConsentRequestSpec,
    /// `[[tenant.user]]`; empty when parsed with `bulk_as_text` from entries kept as text:
    /// read users with [`Scenario::user_batches`], which serves both.
    pub users: Vec<UserSpec>,
    /// `[[tenant.group]]`; likewise [`Scenario::group_batches`].
    pub groups: Vec<GroupSpec>,
    /// App registrations homed in this tenant (`[[tenant.app]]`).
    pub apps: Vec<AppSpec>,
    /// Service-principal settings for apps (`[[tenant.enterprise_app]]`).
    pub enterprise_apps: Vec<EnterpriseAppSpec>,
    /// Existing consent (`[[tenant.grant]]`).
    pub grants: Vec<GrantSpec>,
    /// Users and groups assigned to enterprise apps (`[[tenant.assignment]]`).
    pub assignments: Vec<AssignmentSpec>,
    /// Calendar events (`[[tenant.event]]`).
    pub events: Vec<EventSpec>,
    /// Delegated permission classifications (`[[tenant.classification]]`, an Accord
    /// extension), at most one entry per resource.
    pub classifications: Vec<ClassificationSpec>,
}

impl TenantSpec {
    /// The default (first) domain.
    pub fn default_domain(&self) -> &str {
        self.domains.first().map(String::as_str).unwrap_or("")
    }

    /// The user with this UPN (case-insensitive).
    pub fn user(&self, upn: &str) -> Option<&UserSpec> {
        self.users.iter().find(|u| u.upn.eq_ignore_ascii_case(upn))
    }

    /// The group with this display name (case-insensitive).
    pub fn group(&self, display_name: &str) -> Option<&GroupSpec> {
        self.groups.iter().find(|g| g.display_name.to_lowercase() == display_name.to_lowercase())
    }
}

/// The admin-consent request workflow (`[tenant.admin_consent_requests]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConsentRequestSpec {
    /// Whether users may request admin consent (default `false`).
    pub enabled: bool,
    /// Who reviews requests (users or groups of the tenant).
    pub reviewers: Vec<PrincipalRef>,
    /// Requests expire after this many days, 1–30 (default 30).
    pub expire_after_days: u32,
    /// Whether reviewers are notified of new requests (default `true`).
    pub notify_reviewers: bool,
}

impl Default for AdminConsentRequestSpec {
    fn default() -> Self {
        AdminConsentRequestSpec { enabled: false, reviewers: Vec::new(), expire_after_days: 30, notify_reviewers: true }
    }
}

/// Every directory role a scenario may assign.
pub const KNOWN_ROLES: &[DirectoryRole] = &DirectoryRole::ALL;

/// A user (`[[tenant.user]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// The object id; `None` means the loader generates one.
    pub id: Option<UserId>,
    /// User principal name, `name@domain` with a domain of the tenant; unique (case-insensitive).
    pub upn: String,
    /// Display name.
    pub display_name: String,
    /// The password in clear, exactly as written (the loader hashes it); `None`: the user cannot
    /// sign in with a password (a member that a fixture needs only in groups and lists, which
    /// also spares the loader an argon2 hash).
    pub password: Option<String>,
    /// Directory roles, without duplicates, in file order.
    pub roles: Vec<DirectoryRole>,
}

/// A reference to a user or a group of the same tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PrincipalRef {
    /// A user, by UPN (`"name@domain"`).
    User(String),
    /// A group, by display name (`"group:<display name>"`).
    Group(String),
}

impl PrincipalRef {
    /// The UPN or the group's display name.
    pub fn name(&self) -> &str {
        match self {
            PrincipalRef::User(name) | PrincipalRef::Group(name) => name,
        }
    }

    /// The same kind of reference to `name`.
    pub fn with_name(self, name: String) -> PrincipalRef {
        match self {
            PrincipalRef::User(_) => PrincipalRef::User(name),
            PrincipalRef::Group(_) => PrincipalRef::Group(name),
        }
    }
}

impl fmt::Display for PrincipalRef {
    /// The scenario-file spelling (`upn` or `group:name`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrincipalRef::User(upn) => f.write_str(upn),
            PrincipalRef::Group(name) => write!(f, "group:{name}"),
        }
    }
}

/// A security group (`[[tenant.group]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// Display name, unique within the tenant (case-insensitive).
    pub display_name: String,
    /// Direct members: users and (nested) groups of the tenant. Membership may be cyclic
    /// through other groups (only direct self-membership is refused); consumers computing
    /// transitive membership must keep a visited set.
    pub members: Vec<PrincipalRef>,
}

/// An app registration (`[[tenant.app]]`), homed in the tenant that declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// The application (client) id, unique in the file.
    pub app_id: AppId,
    /// Display name.
    pub display_name: String,
    /// Default [`SignInAudience::SingleOrg`].
    pub sign_in_audience: SignInAudience,
    /// Absolute https URLs (http only for localhost / 127.0.0.1), no fragments.
    pub redirect_uris: Vec<String>,
    /// Single-page-app redirect URIs (`spa_redirect_uris`), under the same rules; a URI is
    /// registered on one platform only.
    pub spa_redirect_uris: Vec<String>,
    /// Public client (no secrets allowed). Default `false`.
    pub public_client: bool,
    /// Client secrets in clear, exactly as written (the loader hashes them).
    pub secrets: Vec<String>,
    /// Certificates the app authenticates with (`private_key_jwt`), each one PEM
    /// `CERTIFICATE` block as written; the loader reads their thumbprints and validity.
    pub certificates: Vec<String>,
    /// Whether the publisher is verified (affects `user_consent = "low"`). Default `false`.
    pub verified_publisher: bool,
    /// The App ID URI, for apps that expose an API; unique in the file.
    pub identifier_uri: Option<String>,
    /// Delegated permissions the app exposes (`[[tenant.app.scope]]`).
    pub scopes: Vec<ScopeSpec>,
    /// App roles (`[[tenant.app.role]]`).
    pub roles: Vec<RoleSpec>,
    /// Statically required permissions (`[[tenant.app.required]]`), one entry per resource.
    pub required: Vec<RequiredSpec>,
    /// Workload identity federation (`[[tenant.app.federated_credential]]`).
    pub federated_credentials: Vec<FederatedCredentialSpec>,
    /// `group_membership_claims = "SecurityGroup"` (`None` by default).
    pub group_membership_claims: crate::directory::GroupMembershipClaims,
    /// `[tenant.app.optional_claims]` with `id_token` and `access_token` lists.
    pub optional_claims: crate::directory::OptionalClaims,
    /// `access_token_version = 1` for v1-shaped access tokens (default 2).
    pub access_token_version: u8,
    /// `[[tenant.app.pre_authorized]]`: clients that may use these scopes of this API without
    /// consent (`app` a client id, `scopes` values this app exposes).
    pub pre_authorized: Vec<PreAuthorizedSpec>,
    /// `known_client_applications = ["<client id>"]`: consenting to those clients consents to
    /// this API too (clients registered in the same tenant).
    pub known_client_applications: Vec<AppId>,
    /// Consent webhooks (`[[tenant.app.webhook]]`, an Accord extension): where the app's
    /// consent events from every tenant are pushed, signed with `secret`.
    pub webhooks: Vec<WebhookSpec>,
}

/// A consent webhook of an app, as a scenario declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    /// An absolute http(s) URL; the server's notification-URL rules apply when it loads.
    pub url: String,
    /// The signing secret, `whsec_` and the base64 of 24 to 64 bytes (Standard Webhooks).
    pub secret: String,
}

/// One pre-authorized client of an API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreAuthorizedSpec {
    pub app_id: AppId,
    pub scopes: Vec<String>,
}

impl FederatedCredentialSpec {
    /// The directory's credential, with the id the loader chose.
    pub fn credential(&self, id: Uuid) -> crate::directory::FederatedCredential {
        crate::directory::FederatedCredential {
            id,
            name: self.name.clone(),
            issuer: self.issuer.clone(),
            subject: self.subject.clone(),
            audiences: self.audiences.clone(),
            description: self.description.clone(),
            jwks: self.jwks.clone(),
        }
    }
}

/// A federated identity credential (`[[tenant.app.federated_credential]]`): tokens `issuer`
/// signs for `subject` and `audiences` authenticate the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredentialSpec {
    /// 3–120 characters: letters, digits, `-` and `_`, starting with a letter or digit; unique
    /// in the app.
    pub name: String,
    /// The issuer exactly as its tokens' `iss` (https, or http for localhost).
    pub issuer: String,
    /// The tokens' `sub`, compared exactly (case-sensitive).
    pub subject: String,
    /// One value; default `api://AzureADTokenExchange`.
    pub audiences: Vec<String>,
    pub description: Option<String>,
    /// A JWKS document pinning the issuer's keys (for CI without network); default: fetched
    /// from the issuer's discovery document.
    pub jwks: Option<String>,
}

/// A delegated permission exposed by an app (`[[tenant.app.scope]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSpec {
    /// Permission id (Accord extension key `id`); `None` means the loader generates one.
    pub id: Option<Uuid>,
    /// The scope value, e.g. `Notes.Read`: non-empty, no whitespace, unique in the app.
    pub value: String,
    /// Whether only an administrator may consent. Default `true` (as in the Entra portal).
    pub admin_consent_required: bool,
    /// Default: the value.
    pub admin_consent_display_name: String,
    /// Accord extension; default empty.
    pub admin_consent_description: String,
    /// Default: the admin consent display name.
    pub user_consent_display_name: String,
    /// Accord extension; default: the admin consent description.
    pub user_consent_description: String,
}

/// Who an app role can be given to (`allowed_member_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberType {
    /// `"Application"`: an application permission (granted to apps).
    Application,
    /// `"User"`: a role users and groups are assigned.
    User,
}

impl MemberType {
    /// The scenario-file (and Entra) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberType::Application => "Application",
            MemberType::User => "User",
        }
    }
}

/// An app role (`[[tenant.app.role]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    /// Role id (Accord extension key `id`); `None` means the loader generates one.
    pub id: Option<Uuid>,
    /// The role value, e.g. `Notes.Read.All`: non-empty, no whitespace, unique in the app.
    pub value: String,
    /// At least one, without duplicates.
    pub allowed_member_types: Vec<MemberType>,
    /// Default: the value.
    pub display_name: String,
    /// Accord extension; default empty.
    pub description: String,
}

impl RoleSpec {
    /// Whether this role may be given to `member_type`.
    pub fn allows(&self, member_type: MemberType) -> bool {
        self.allowed_member_types.contains(&member_type)
    }
}

/// A resource whose permissions are required or granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceRef {
    /// Microsoft Graph (built in).
    MicrosoftGraph,
    /// An app of the scenario, by app id (written as its app id or its identifier URI).
    App(AppId),
}

impl ResourceRef {
    /// The resource's app id ([`GRAPH_APP_ID`] for Graph).
    pub fn app_id(self) -> AppId {
        match self {
            ResourceRef::MicrosoftGraph => GRAPH_APP_ID,
            ResourceRef::App(id) => id,
        }
    }
}

/// Permissions an app statically requires from one resource (`[[tenant.app.required]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredSpec {
    /// Default [`ResourceRef::MicrosoftGraph`].
    pub resource: ResourceRef,
    /// Scope values.
    pub delegated: Vec<String>,
    /// App role values (roles allowing `Application`).
    pub application: Vec<String>,
}

/// A tenant's service-principal settings for an app (`[[tenant.enterprise_app]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseAppSpec {
    /// The app (any tenant's; a `single_org` app only in its home tenant).
    pub app: AppId,
    /// Whether users must be assigned to sign in. Default `false`.
    pub assignment_required: bool,
    /// Whether users may sign in at all. Default `true`.
    pub enabled: bool,
}

/// On whose behalf delegated consent was given (`tenant.grant.for`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GrantFor {
    /// `"all"`: admin consent for the whole organisation (`AllPrincipals`). The default.
    All,
    /// A single user, by UPN (`Principal`).
    User(String),
}

/// Consent that already exists in the tenant (`[[tenant.grant]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSpec {
    /// The client app.
    pub app: AppId,
    /// Default [`ResourceRef::MicrosoftGraph`].
    pub resource: ResourceRef,
    /// Delegated scopes granted.
    pub delegated: Vec<String>,
    /// The file's `for` key.
    pub consent_for: GrantFor,
    /// App roles granted to the app itself (only with `for = "all"`).
    pub application: Vec<String>,
    /// The file's `expires`: a time-bound grant ends then (an Accord extension).
    pub expires_at: Option<OffsetDateTime>,
}

/// A user or group assigned to an enterprise app (`[[tenant.assignment]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentSpec {
    /// The app.
    pub app: AppId,
    /// The assigned user or group.
    pub principal: PrincipalRef,
    /// An app role value (a role allowing `User`); `None` (the file's `""`) = default access.
    pub role: Option<String>,
    /// The file's `expires`: a time-bound assignment ends then (an Accord extension).
    pub expires_at: Option<OffsetDateTime>,
}

/// A tenant's delegated permission classifications for one resource (`[[tenant.classification]]`,
/// an Accord extension; Entra's `delegatedPermissionClassification`). With
/// `user_consent = "low"`, users may consent only to permissions classified low (and only for
/// apps from a verified publisher or registered in their own tenant).
///
/// The entry is the whole truth for its resource in its tenant: loading it classifies exactly
/// these permissions low and removes the resource's other classifications. Resources without an
/// entry are left as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassificationSpec {
    /// Default [`ResourceRef::MicrosoftGraph`]. An app must expose delegated permissions and,
    /// when homed in another tenant, be `multiple_orgs`.
    pub resource: ResourceRef,
    /// Scope values classified low: delegated permissions of the resource that users can consent
    /// to (not admin-restricted), without duplicates, in file order. May be empty.
    pub low: Vec<String>,
}

/// A calendar event (`[[tenant.event]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// The organiser, by UPN.
    pub owner: String,
    /// Subject line.
    pub subject: String,
    /// Start time (a relative start resolved against the load time).
    pub start: OffsetDateTime,
    /// The start as written, when it is relative to the load time (`"monday 09:00"`): with the
    /// owner and subject, it names the event across loads on different days.
    pub relative_start: Option<String>,
    /// End time, after the start.
    pub end: OffsetDateTime,
    /// Attendee email addresses (may be outside the tenant).
    pub attendees: Vec<String>,
    /// Join URL of the online meeting, if any.
    pub online_meeting_url: Option<String>,
}
