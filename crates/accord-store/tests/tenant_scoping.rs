//! Tenant scoping, checked in the SQL itself (issue 20). Mutation testing cannot see it:
//! cargo-mutants changes Rust expressions, never the text of a string literal, so a statement
//! that lost its `tenant_id = $1` would pass it by. The conformance suite's `tenant_isolation`
//! tests show the reads it makes are scoped; this test holds every statement of the store to
//! the rule, including the ones added after it was written:
//!
//! every statement that reads or changes a tenant-owned table (one with a `tenant_id` column in
//! the migrations, or a table named by a `{placeholder}`) compares `tenant_id` — an `INSERT`
//! names it — unless it is one of the cross-tenant statements listed below, each with the
//! reason it may span tenants. A listed statement that no longer exists fails the test too, so
//! the list cannot outlive what it excuses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The statements that may span tenants: a fragment of each, and why it may.
const CROSS_TENANT: &[(&str, &str)] = &[
    // Looked up by the hash of a secret the caller holds: unique across the platform, and the
    // row carries its tenant, which the service layer checks against the request.
    ("expires_at FROM sessions WHERE id_hash = $1", "a session, by its cookie's hash"),
    ("DELETE FROM sessions WHERE id_hash = $1", "sign-out, by the cookie's hash"),
    ("FROM refresh_tokens t LEFT JOIN refresh_token_families", "a refresh token, by its hash"),
    ("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", "rotation, by the token's hash"),
    ("FROM device_authorizations WHERE user_code_hash = $1", "a device sign-in, by its user code"),
    ("FROM device_authorizations WHERE device_code_hash = $1", "a device's poll, by its device code"),
    ("UPDATE device_authorizations SET status = 'redeemed'", "a device's redemption, by its device code"),
    // An app registration is the vendor's, seen by every tenant that uses it.
    ("DELETE FROM consent_requests WHERE client_app_id = $1", "deleting an app registration"),
    ("DELETE FROM refresh_tokens WHERE client_app_id = $1", "deleting an app registration"),
    ("DELETE FROM service_principals WHERE app_id = $1", "deleting an app registration"),
    ("FROM consent_events WHERE app_id = $1 AND seq > $2", "a vendor's consent events across its customers"),
    ("SELECT COALESCE(MAX(seq), 0) AS seq FROM consent_events", "the platform-wide event sequence"),
    // Platform housekeeping: every tenant's due work, in one sweep.
    ("DELETE FROM {table} WHERE expires_at <= $1", "purging expired protocol state"),
    ("DELETE FROM calendar_changes WHERE deleted = 1 AND changed_at < $1", "purging old tombstones"),
    ("DELETE FROM consent_events WHERE at < $1", "purging old consent events"),
    ("DELETE FROM graph_notifications WHERE subscription_id IN", "purging expired subscriptions' queue"),
    ("DELETE FROM graph_subscriptions WHERE expires_at <= $1", "purging expired subscriptions"),
    ("FROM graph_subscriptions WHERE status <> 'removed' AND id > $1", "reviewing every subscription"),
    ("FROM graph_notifications WHERE next_attempt_at <= $1", "the change-notification queue"),
    ("UPDATE graph_notifications SET next_attempt_at = $1 WHERE id = $2", "claiming a queued notification"),
    ("UPDATE graph_notifications SET attempts = $1", "recording a delivery attempt"),
    ("DELETE FROM graph_notifications WHERE id = $1", "a delivered notification"),
    ("FROM notifications WHERE sent_at IS NULL AND attempts < $1", "the e-mail queue"),
    ("FROM consent_requests WHERE status = $1 AND expires_at <= $2", "expiring admin consent requests"),
    ("FROM delegated_grants WHERE expires_at IS NOT NULL AND expires_at <= $1", "ending time-bound grants"),
    ("FROM app_role_assignments WHERE expires_at IS NOT NULL", "ending time-bound assignments"),
    ("DELETE FROM refresh_token_families WHERE", "purging families no token refers to"),
    // The whole store at once.
    ("DELETE FROM {table}", "test mode's reset empties every table"),
    ("SELECT tenant_id, id, display_name, name_key FROM {table}", "a migration's backfill of name keys"),
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Tables with a `tenant_id` column, from the SQLite migrations (PostgreSQL's have the same).
fn tenant_owned_tables() -> BTreeSet<String> {
    let mut tables = BTreeSet::new();
    for path in files(&crate_dir().join("migrations/sqlite"), "sql") {
        let text = std::fs::read_to_string(&path).unwrap().to_lowercase();
        for part in text.split("create table").skip(1) {
            let name = part.trim_start().trim_start_matches("if not exists").trim_start();
            let name: String = name.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let body = part.split(");").next().unwrap_or_default();
            // A `tenant_id` column, not `home_tenant_id` (an app registration is the platform's).
            let has_column = body
                .match_indices("tenant_id")
                .any(|(at, _)| !body[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'));
            if has_column {
                tables.insert(name);
            }
        }
        for part in text.split("alter table").skip(1) {
            let mut words = part.split_whitespace();
            let (name, rest) = (words.next().unwrap_or_default(), words.collect::<Vec<_>>().join(" "));
            if rest.starts_with("add column tenant_id") {
                tables.insert(name.to_string());
            }
        }
    }
    tables
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// The string literals of Rust source, each with the line it starts on: escapes undone, `\`
/// line continuations joined as the compiler joins them, comments and char literals skipped.
fn string_literals(src: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = src.chars().collect();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        match chars[i] {
            '\n' => line += 1,
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
                i += 2;
                continue;
            }
            // A char literal ('"', '\'', 'x'); a lifetime ('a) has no closing quote after one char.
            '\'' if chars.get(i + 1) == Some(&'\\') => {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
            }
            '\'' if chars.get(i + 2) == Some(&'\'') => i += 2,
            'r' if (i == 0 || !ident(chars[i - 1])) && matches!(chars.get(i + 1), Some('"') | Some('#')) => {
                let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                if chars.get(i + 1 + hashes) == Some(&'"') {
                    let start = i + 2 + hashes;
                    let closing: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                    let rest: String = chars[start..].iter().collect();
                    let end = rest.find(&closing).expect("a closed raw string");
                    let text: String = rest[..end].to_string();
                    out.push((line, text.clone()));
                    line += text.matches('\n').count();
                    i = start + rest[..end].chars().count() + closing.chars().count();
                    continue;
                }
            }
            '"' => {
                let (start_line, mut text) = (line, String::new());
                i += 1;
                while chars[i] != '"' {
                    if chars[i] == '\\' {
                        match chars[i + 1] {
                            '\n' => {
                                line += 1;
                                i += 2;
                                while chars[i].is_whitespace() {
                                    line += usize::from(chars[i] == '\n');
                                    i += 1;
                                }
                                continue;
                            }
                            'n' => text.push('\n'),
                            't' => text.push('\t'),
                            other => text.push(other),
                        }
                        i += 2;
                        continue;
                    }
                    line += usize::from(chars[i] == '\n');
                    text.push(chars[i]);
                    i += 1;
                }
                out.push((start_line, text));
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The file's `const NAME: &str = "…"` values (statements are often built from them, as
/// `format!("{TOKEN_SELECT} WHERE …")`): the literal on the declaration's line or the next.
fn str_consts(src: &str, literals: &[(usize, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (n, text) in src.lines().enumerate() {
        let Some((_, rest)) = text.split_once("const ") else { continue };
        let Some((name, _)) = rest.split_once(": &str") else { continue };
        let line = n + 1;
        if let Some((_, value)) = literals.iter().find(|(l, _)| *l == line || *l == line + 1) {
            out.push((name.trim().to_string(), value.clone()));
        }
    }
    out
}

/// The literal with each `{NAME}` of the file's string constants replaced by its value.
fn expand(text: &str, consts: &[(String, String)]) -> String {
    consts.iter().fold(text.to_string(), |t, (name, value)| t.replace(&format!("{{{name}}}"), value))
}

/// The tables a statement reads or changes (`FROM`, `JOIN`, `UPDATE`, `INTO`), lowercased;
/// a `{placeholder}` stands for a table chosen at run time.
fn tables_named(statement: &str) -> Vec<String> {
    let words: Vec<String> = statement
        .split(|c: char| c.is_whitespace() || c == '(' || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words
        .windows(2)
        .filter(|w| matches!(w[0].as_str(), "from" | "join" | "update" | "into"))
        .map(|w| w[1].trim_end_matches(';').to_string())
        .collect()
}

/// Whether the statement scopes itself to a tenant: compares `tenant_id` (possibly qualified,
/// `t.tenant_id`), or for an `INSERT` names the column.
fn names_its_tenant(statement: &str) -> bool {
    let lower = statement.to_lowercase();
    if lower.trim_start().starts_with("insert") {
        return lower.contains("tenant_id");
    }
    lower.match_indices("tenant_id").any(|(at, m)| {
        let after = lower[at + m.len()..].trim_start();
        after.starts_with('=') || after.starts_with("in ") || after.starts_with("in(")
    })
}

fn is_statement(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default().to_lowercase();
    matches!(first.as_str(), "select" | "update" | "delete" | "insert" | "with")
}

#[test]
fn every_statement_on_a_tenant_owned_table_compares_its_tenant() {
    let tenant_owned = tenant_owned_tables();
    for expected in ["users", "directory_groups", "delegated_grants", "service_principals", "calendar_events"] {
        assert!(tenant_owned.contains(expected), "the migrations were not read: {tenant_owned:?}");
    }
    let mut sources = files(&crate_dir().join("src/sql"), "rs");
    sources.push(crate_dir().join("src/sql.rs"));
    let (mut checked, mut unscoped, mut excused) = (0, Vec::new(), vec![0usize; CROSS_TENANT.len()]);
    for path in &sources {
        let src = std::fs::read_to_string(path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy();
        let literals = string_literals(&src);
        let consts = str_consts(&src, &literals);
        let statements = literals.into_iter().map(|(line, text)| (line, expand(&text, &consts)));
        for (line, text) in statements.filter(|(_, t)| is_statement(t)) {
            let owned = tables_named(&text).iter().any(|t| tenant_owned.contains(t) || t.starts_with('{'));
            if !owned {
                continue;
            }
            checked += 1;
            if names_its_tenant(&text) {
                continue;
            }
            match CROSS_TENANT.iter().position(|(fragment, _)| text.contains(fragment)) {
                Some(k) => excused[k] += 1,
                None => {
                    unscoped.push(format!("{file}:{line}: {}", text.split_whitespace().collect::<Vec<_>>().join(" ")))
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} statements found: the reader is broken");
    assert!(
        unscoped.is_empty(),
        "statements on tenant-owned tables that do not compare tenant_id (scope them, or list them in CROSS_TENANT \
         with the reason they may span tenants):\n{}",
        unscoped.join("\n")
    );
    let stale: Vec<_> = CROSS_TENANT.iter().zip(&excused).filter(|(_, n)| **n == 0).map(|((f, _), _)| *f).collect();
    assert!(stale.is_empty(), "CROSS_TENANT excuses statements that no longer exist: {stale:?}");
}

#[test]
fn the_rule_tells_scoped_statements_from_unscoped_ones() {
    assert!(names_its_tenant("SELECT x FROM users WHERE tenant_id = $1 AND id = $2"));
    assert!(names_its_tenant("DELETE FROM t WHERE t.tenant_id IN (SELECT 1)"));
    assert!(names_its_tenant("INSERT INTO users (tenant_id, id) VALUES ($1, $2)"));
    assert!(!names_its_tenant("SELECT tenant_id, id FROM users WHERE id = $1"), "selected, not compared");
    assert!(!names_its_tenant("SELECT x FROM users WHERE id = $1 ORDER BY tenant_id"));
    assert_eq!(tables_named("SELECT a FROM users u JOIN group_members m ON m.x = u.y"), ["users", "group_members"]);
    assert_eq!(tables_named("INSERT INTO used_once(key_hash) VALUES ($1)"), ["used_once"]);
    assert_eq!(tables_named("DELETE FROM {table} WHERE expires_at <= $1"), ["{table}"]);
}

#[test]
fn literals_are_read_as_the_compiler_reads_them() {
    let src = "let a = \"SELECT 1 \\\n     FROM users\"; // \"not this\"\n/* \"nor this\" */ let c = '\"';\n\
               let d = r#\"raw \"quoted\"\"#; fn f<'a>(x: &'a str) {} let e = \"x\\\"y\";";
    let found: Vec<(usize, String)> = string_literals(src);
    assert_eq!(
        found,
        vec![(1, "SELECT 1 FROM users".to_string()), (4, "raw \"quoted\"".to_string()), (4, "x\"y".to_string()),]
    );
}
