//! Reading a large scenario without holding its whole TOML tree.
//!
//! The TOML reader builds a document tree before serde sees a value, and that tree costs about
//! fifteen times the text: a 16 MB file of 100,000 users peaked at 250 MB, at every start of a
//! server loading it. Nearly all of such a file is `[[tenant.user]]` and `[[tenant.group]]`
//! entries, and each entry stands alone, so those are read a batch at a time: a lexer (no tree)
//! finds the entries' headers, each batch of entries is read as a small document of its own
//! (its spans moved back to the file's offsets), and the rest of the file (the skeleton: the
//! tenants, apps, grants, ...) is read with those entries blanked out in place, so every other
//! offset stays where it was. The result is the same `RawScenario` a whole-file read gives,
//! spans included; files written in ways this reading does not follow (quoted header keys, a
//! `[tenant]` table, entries before the first tenant, `user = [...]` inline) are read whole.

use std::ops::Range;

use serde::Deserialize;
use toml_parser::lexer::TokenKind;

use super::raw::{RawGroup, RawScenario, RawTenant, RawUser, S};

/// How many entries are read as one small document: enough that the per-document work is
/// spread thin, few enough that the batch's tree stays small (a few hundred kilobytes).
const BATCH: usize = 256;

/// A `[[tenant.user]]` or `[[tenant.group]]` entry: its tenant (the index of the `[[tenant]]`
/// before it) and its bytes, from its header to the next header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub tenant: usize,
    pub group: bool,
    pub range: Range<usize>,
}

/// A table header at the start of a line: its bytes, whether it is `[[...]]`, and its key path
/// as written with whitespace removed (`tenant.user`).
struct Header {
    start: usize,
    array: bool,
    path: String,
    quoted: bool,
}

/// The file's bulk entries, or `None` when the file should be read whole (see the module
/// comment). A file with syntax errors in its headers is read whole too: the TOML reader
/// reports them as it always does.
pub(super) fn entries(text: &str) -> Option<Vec<Entry>> {
    let headers = headers(text)?;
    let mut entries: Vec<Entry> = Vec::new();
    let mut tenant: Option<usize> = None;
    let mut open: Option<(usize, bool)> = None; // the entry being read: its start, whether a group
    for h in &headers {
        if let Some((start, group)) = open.take() {
            entries.push(Entry { tenant: tenant?, group, range: start..h.start });
        }
        if h.quoted {
            return None;
        }
        match (h.array, h.path.as_str()) {
            (true, "tenant") => tenant = Some(tenant.map_or(0, |t| t + 1)),
            (true, "tenant.user" | "tenant.group") => {
                tenant?; // an entry before any tenant: let the TOML reader say what is wrong
                open = Some((h.start, h.path == "tenant.group"));
            }
            (false, "tenant") => return None,
            (_, path) if is_under_bulk(path) => return None,
            _ => {}
        }
    }
    if let Some((start, group)) = open {
        entries.push(Entry { tenant: tenant?, group, range: start..text.len() });
    }
    Some(entries)
}

/// A header inside an entry (`[tenant.user.x]`): only a whole-file read gives it its meaning.
fn is_under_bulk(path: &str) -> bool {
    path.starts_with("tenant.user.") || path.starts_with("tenant.group.")
}

/// Every table header of the file, found with TOML's own lexer: a `[` at the start of a line
/// and outside any value (multi-line arrays and inline tables are tracked, strings and comments
/// are single tokens). `None` if a header is left unclosed.
fn headers(text: &str) -> Option<Vec<Header>> {
    let source = toml_parser::Source::new(text);
    let mut tokens = source.lex().peekable();
    let mut headers = Vec::new();
    let mut depth = 0usize; // brackets and braces open inside a value
    let mut line_start = true;
    while let Some(token) = tokens.next() {
        let kind = token.kind();
        let span = token.span();
        match kind {
            TokenKind::Newline => {
                line_start = depth == 0;
                continue;
            }
            TokenKind::Whitespace | TokenKind::Comment if line_start => continue,
            TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                let array = tokens
                    .peek()
                    .is_some_and(|t| t.kind() == TokenKind::LeftSquareBracket && t.span().start() == span.end());
                if array {
                    tokens.next();
                }
                let mut path = String::new();
                let mut quoted = false;
                loop {
                    let t = tokens.next()?;
                    match t.kind() {
                        TokenKind::RightSquareBracket => break,
                        TokenKind::Whitespace => {}
                        TokenKind::Newline | TokenKind::Eof => return None,
                        TokenKind::Atom | TokenKind::Dot => path.push_str(&text[t.span().start()..t.span().end()]),
                        _ => {
                            quoted = true;
                            path.push_str(&text[t.span().start()..t.span().end()]);
                        }
                    }
                }
                if array {
                    tokens.next(); // the second `]`
                }
                headers.push(Header { start: span.start(), array, path, quoted });
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => depth = depth.saturating_sub(1),
            _ => {}
        }
        line_start = false;
    }
    Some(headers)
}

/// One batch of entries read as a document of its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    tenant: BatchTenant,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchTenant {
    #[serde(default)]
    user: Vec<S<RawUser>>,
    #[serde(default)]
    group: Vec<S<RawGroup>>,
}

/// Each tenant's users and groups, as read from its entries.
pub(super) type TenantEntries = Vec<(Vec<S<RawUser>>, Vec<S<RawGroup>>)>;

/// Reads the entries into their tenants' lists, in file order; `None` on a TOML error in any
/// of them (the caller reads the file whole, which reports the file's first error).
pub(super) fn read_entries(text: &str, entries: &[Entry]) -> Option<TenantEntries> {
    // Each list sized once: one grown by doubling holds up to twice its entries, and copies them.
    let tenants = entries.iter().map(|e| e.tenant + 1).max().unwrap_or(0);
    let mut counts = vec![(0, 0); tenants];
    for e in entries {
        let (users, groups) = &mut counts[e.tenant];
        *if e.group { groups } else { users } += 1;
    }
    let mut read: TenantEntries =
        counts.into_iter().map(|(users, groups)| (Vec::with_capacity(users), Vec::with_capacity(groups))).collect();
    let mut rest = entries;
    while let Some(first) = rest.first() {
        // A batch: entries of one tenant that follow each other, at most BATCH of them.
        let mut n = 1;
        while n < rest.len().min(BATCH)
            && rest[n].tenant == first.tenant
            && rest[n].range.start == rest[n - 1].range.end
        {
            n += 1;
        }
        let (batch, next) = rest.split_at(n);
        rest = next;
        let range = first.range.start..batch[n - 1].range.end;
        let offset = range.start;
        let parsed: Batch = toml::from_str(&text[range]).ok()?;
        let (users, groups) = &mut read[first.tenant];
        users.extend(parsed.tenant.user.into_iter().map(|u| moved(u, offset, RawUser::moved)));
        groups.extend(parsed.tenant.group.into_iter().map(|g| moved(g, offset, RawGroup::moved)));
    }
    Some(read)
}

/// The text with the entries' bytes turned to spaces (newlines kept, so lines stay where they
/// were), for the skeleton's read.
pub(super) fn blank_entries(text: String, entries: &[Entry]) -> String {
    let mut bytes = text.into_bytes();
    for entry in entries {
        for b in &mut bytes[entry.range.clone()] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    // Entries start at a header's `[` and end at the next one or at the end: whole UTF-8
    // sequences were replaced byte for byte by ASCII spaces, so the text is still UTF-8.
    String::from_utf8(bytes).expect("entries are blanked on character boundaries")
}

/// Puts the entries read by [`read_entries`] into the skeleton's tenants. `None` if a tenant
/// already has users or groups of its own (`user = [...]` inline): such a file is read whole.
pub(super) fn attach(raw: &mut RawScenario, read: TenantEntries) -> Option<()> {
    if read.len() > raw.tenant.len() {
        return None;
    }
    for (tenant, (users, groups)) in raw.tenant.iter_mut().zip(read) {
        let tenant: &mut RawTenant = tenant.get_mut();
        if !tenant.user.is_empty() || !tenant.group.is_empty() {
            return None;
        }
        tenant.user = users;
        tenant.group = groups;
    }
    Some(())
}

/// `value` with its span and every span inside it moved `by` bytes on.
fn moved<T>(value: S<T>, by: usize, inner: fn(T, usize) -> T) -> S<T> {
    let span = value.span();
    S::new(span.start + by..span.end + by, inner(value.into_inner(), by))
}

/// A spanned leaf moved `by` bytes on.
pub(super) fn shift<T>(value: S<T>, by: usize) -> S<T> {
    moved(value, by, |v, _| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(text: &str) -> Option<Vec<(usize, &str)>> {
        Some(entries(text)?.into_iter().map(|e| (e.tenant, &text[e.range])).collect())
    }

    #[test]
    fn entries_run_from_their_header_to_the_next() {
        let text = "[[tenant]]\nid = 1\n[[tenant.user]]\nupn = \"a\"\n\n[[tenant.group]]\nmembers = [\n  \"a\",\n]\n[[tenant.app]]\nx = 1\n[[tenant]]\n[[tenant.user]]\nupn = \"b\"";
        assert_eq!(
            ranges(text).unwrap(),
            vec![
                (0, "[[tenant.user]]\nupn = \"a\"\n\n"),
                (0, "[[tenant.group]]\nmembers = [\n  \"a\",\n]\n"),
                (1, "[[tenant.user]]\nupn = \"b\""),
            ]
        );
    }

    #[test]
    fn brackets_in_values_strings_and_comments_are_not_headers() {
        let text = "[[tenant]]\n[[tenant.user]]\nroles = [\n[\"x\"],\n]\nnote = \"\"\"\n[[tenant.user]]\n\"\"\"\n# [[tenant.group]]\n  [[ tenant.group ]]\n";
        let found = ranges(text).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].1.contains("note"));
        assert!(found[1].1.starts_with("[[ tenant.group ]]"));
    }

    #[test]
    fn files_this_reading_does_not_follow_are_read_whole() {
        for text in [
            "[[tenant.user]]\nupn = \"a\"\n[[tenant]]\n", // an entry before any tenant
            "[tenant]\nid = 1\n",                         // a table, not an array
            "[[tenant]]\n[[\"tenant\".user]]\n",          // a quoted key
            "[[tenant]]\n[[tenant.user]]\n[tenant.user.extra]\nx = 1\n", // a table inside an entry
            "[[tenant]]\n[[tenant.user\n",                // an unclosed header
        ] {
            assert_eq!(entries(text), None, "{text}");
        }
    }

    #[test]
    fn blanking_keeps_every_offset_and_line() {
        let text = "[[tenant]]\n[[tenant.user]]\nupn = \"é\"\n[[tenant.app]]\n".to_string();
        let found = entries(&text).unwrap();
        let blank = blank_entries(text.clone(), &found);
        assert_eq!(blank.len(), text.len());
        assert_eq!(blank.matches('\n').count(), text.matches('\n').count());
        assert!(blank.starts_with("[[tenant]]\n"));
        assert!(blank.ends_with("[[tenant.app]]\n"));
        assert!(!blank.contains("upn"));
    }
}
