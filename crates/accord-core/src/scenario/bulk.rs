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

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Mutex;

use serde::Deserialize;
use toml_parser::lexer::TokenKind;

use super::raw::{RawGroup, RawScenario, RawTenant, RawUser, S};

/// How many entries are read as one small document: enough that the per-document work is
/// spread thin, few enough that the batch's tree stays small (a few hundred kilobytes).
const BATCH: usize = 256;

/// A `[[tenant.user]]` or `[[tenant.group]]` entry: its tenant (the index of the `[[tenant]]`
/// before it) and its bytes, from its header to the next header.
/// Offsets are 32-bit (a file past 4 GiB is read whole): 100,000 users make 110,000 entries,
/// held while the file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub tenant: usize,
    pub group: bool,
    start: u32,
    end: u32,
}

impl Entry {
    fn new(tenant: usize, group: bool, range: Range<usize>) -> Option<Entry> {
        Some(Entry { tenant, group, start: u32::try_from(range.start).ok()?, end: u32::try_from(range.end).ok()? })
    }

    /// Its bytes in the file, from its header to the next header.
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A table header at the start of a line: where it starts and what it opens.
struct Header {
    start: usize,
    kind: HeaderKind,
}

/// What a header opens, by its key path as written with whitespace removed (`tenant.user`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum HeaderKind {
    /// `[[tenant]]`
    Tenant,
    /// `[[tenant.user]]`
    User,
    /// `[[tenant.group]]`
    Group,
    /// What only a whole-file read gives its meaning: a quoted key, `[tenant]`, or a table
    /// inside an entry (`[tenant.user.x]`).
    WholeReadOnly,
    Other,
}

impl HeaderKind {
    fn of(array: bool, path: &str, quoted: bool) -> HeaderKind {
        match (array, path) {
            _ if quoted => HeaderKind::WholeReadOnly,
            (true, "tenant") => HeaderKind::Tenant,
            (true, "tenant.user") => HeaderKind::User,
            (true, "tenant.group") => HeaderKind::Group,
            (false, "tenant") => HeaderKind::WholeReadOnly,
            (_, path) if is_under_bulk(path) => HeaderKind::WholeReadOnly,
            _ => HeaderKind::Other,
        }
    }
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
            entries.push(Entry::new(tenant?, group, start..h.start)?);
        }
        match h.kind {
            HeaderKind::Tenant => tenant = Some(tenant.map_or(0, |t| t + 1)),
            HeaderKind::User | HeaderKind::Group => {
                tenant?; // an entry before any tenant: let the TOML reader say what is wrong
                open = Some((h.start, h.kind == HeaderKind::Group));
            }
            HeaderKind::WholeReadOnly => return None,
            HeaderKind::Other => {}
        }
    }
    if let Some((start, group)) = open {
        entries.push(Entry::new(tenant?, group, start..text.len())?);
    }
    entries.shrink_to_fit();
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
    let mut path = String::new();
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
                path.clear();
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
                headers.push(Header { start: span.start(), kind: HeaderKind::of(array, &path, quoted) });
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
pub(super) struct BatchTenant {
    #[serde(default)]
    pub user: Vec<S<RawUser>>,
    #[serde(default)]
    pub group: Vec<S<RawGroup>>,
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
    for run in runs(entries, |_| true) {
        let tenant = run.tenant;
        let batch = read_batch(text, run.range)?;
        let (users, groups) = &mut read[tenant];
        users.extend(batch.user);
        groups.extend(batch.group);
    }
    Some(read)
}

/// A run of entries read as one small document: entries of one tenant that follow each other
/// in the file, at most [`BATCH`] of them.
struct Run {
    tenant: usize,
    /// Its bytes in the file.
    range: Range<usize>,
    /// Its entries' indexes in the file's list.
    entries: Range<usize>,
}

/// The runs of the entries that `wanted` keeps, in file order.
fn runs<'e>(entries: &'e [Entry], wanted: impl Fn(&Entry) -> bool + 'e) -> impl Iterator<Item = Run> + 'e {
    let mut next = 0;
    std::iter::from_fn(move || {
        let first = next + entries[next..].iter().position(&wanted)?;
        let mut end = first + 1;
        while end < entries.len()
            && end - first < BATCH
            && wanted(&entries[end])
            && entries[end].tenant == entries[first].tenant
            && entries[end].start == entries[end - 1].end
        {
            end += 1;
        }
        next = end;
        let range = entries[first].range().start..entries[end - 1].range().end;
        Some(Run { tenant: entries[first].tenant, range, entries: first..end })
    })
}

/// One run of entries, its spans moved to the file's offsets; `None` if it is not valid TOML.
fn read_batch<T: std::ops::Index<Range<usize>, Output = str> + ?Sized>(
    text: &T,
    range: Range<usize>,
) -> Option<BatchTenant> {
    let offset = range.start;
    let parsed: Batch = toml::from_str(&text[range]).ok()?;
    let BatchTenant { user, group } = parsed.tenant;
    Some(BatchTenant {
        user: user.into_iter().map(|u| moved(u, offset, RawUser::moved)).collect(),
        group: group.into_iter().map(|g| moved(g, offset, RawGroup::moved)).collect(),
    })
}

/// A file's `[[tenant.user]]` and `[[tenant.group]]` entries kept where they are written and
/// read again a batch at a time wherever they are needed, instead of held as read: at 100,000
/// users and 300,000 memberships the text is 16 MB, the entries once read several times that.
pub(super) struct BulkText {
    source: Source,
    entries: Vec<Entry>,
}

/// Where a [`BulkText`]'s entries are read from.
enum Source {
    /// A text in memory (one the variables changed, or one given as text).
    Text(String),
    /// The file itself, read again a run at a time: the text is not held at all. Each entry's
    /// digest, taken when the file was first read, tells a file changed since (a run that no
    /// longer matches reads as unreadable: never half the old file and half the new).
    File { file: Mutex<File>, digests: Vec<u64> },
}

impl BulkText {
    pub(super) fn in_memory(text: String, entries: Vec<Entry>) -> Self {
        BulkText { source: Source::Text(text), entries }
    }

    /// The entries of `text`, the content of `file`, to be read again from the file.
    pub(super) fn in_file(file: File, text: &str, entries: Vec<Entry>) -> Self {
        let digests = entries.iter().map(|e| digest(&text.as_bytes()[e.range()])).collect();
        BulkText { source: Source::File { file: Mutex::new(file), digests }, entries }
    }

    /// Tenant `tenant`'s users (`group == false`) or groups, in file order, a batch at a time,
    /// with spans in the file's offsets; an item is `None` where a batch is not valid TOML or
    /// (read from the file) the file no longer holds what it held.
    pub(super) fn batches(&self, tenant: usize, group: bool) -> impl Iterator<Item = Option<BatchTenant>> + '_ {
        runs(&self.entries, move |e| e.tenant == tenant && e.group == group).map(|run| match &self.source {
            Source::Text(text) => read_batch(text, run.range),
            Source::File { file, digests } => {
                let text = self.read_run(file, digests, &run)?;
                read_batch(&text, run.range)
            }
        })
    }

    /// A run's bytes from the file, checked against the digests of its entries; the returned
    /// text is blank before the run, so that spans come out in the file's offsets.
    fn read_run(&self, file: &Mutex<File>, digests: &[u64], run: &Run) -> Option<RunText> {
        let mut bytes = vec![0u8; run.range.len()];
        {
            let mut file = file.lock().ok()?;
            file.seek(SeekFrom::Start(run.range.start as u64)).ok()?;
            file.read_exact(&mut bytes).ok()?;
        }
        for (entry, want) in self.entries[run.entries.clone()].iter().zip(&digests[run.entries.clone()]) {
            let at = entry.range().start - run.range.start..entry.range().end - run.range.start;
            if digest(&bytes[at]) != *want {
                return None;
            }
        }
        Some(RunText { offset: run.range.start, text: String::from_utf8(bytes).ok()? })
    }

    /// The whole text again (a file whose entries turned out not to read: its whole read
    /// reports why).
    pub(super) fn whole_text(&self) -> Option<String> {
        match &self.source {
            Source::Text(text) => Some(text.clone()),
            Source::File { file, .. } => {
                let mut file = file.lock().ok()?;
                let mut text = String::new();
                file.seek(SeekFrom::Start(0)).ok()?;
                file.read_to_string(&mut text).ok()?;
                Some(text)
            }
        }
    }

    /// `text`, this file's, with the entries blanked (see [`blank_entries`]).
    pub(super) fn blanked(&self, text: String) -> String {
        blank_entries(text, &self.entries)
    }

    /// How many users (`group == false`) or groups tenant `tenant` has.
    pub(super) fn count(&self, tenant: usize, group: bool) -> usize {
        self.entries.iter().filter(|e| e.tenant == tenant && e.group == group).count()
    }

    /// How many tenants the entries reach: the last one's index and one.
    pub(super) fn tenants(&self) -> usize {
        self.entries.iter().map(|e| e.tenant + 1).max().unwrap_or(0)
    }
}

/// A run's text read from a file, which starts at `offset` of the file.
struct RunText {
    offset: usize,
    text: String,
}

/// Reads as the run's range of the whole file would: `read_batch` slices by file offsets.
impl std::ops::Index<Range<usize>> for RunText {
    type Output = str;
    fn index(&self, range: Range<usize>) -> &str {
        &self.text[range.start - self.offset..range.end - self.offset]
    }
}

/// A digest of an entry's bytes, to notice a file changed between two reads (not a defence
/// against anyone: whoever can write the file writes the scenario).
fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl PartialEq for BulkText {
    fn eq(&self, other: &Self) -> bool {
        let same_source = match (&self.source, &other.source) {
            (Source::Text(a), Source::Text(b)) => a == b,
            (Source::File { digests: a, .. }, Source::File { digests: b, .. }) => a == b,
            _ => false,
        };
        same_source && self.entries == other.entries
    }
}

impl std::fmt::Debug for BulkText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::Text(text) => format!("{} bytes of text", text.len()),
            Source::File { .. } => "the file".to_string(),
        };
        write!(f, "BulkText({} entries in {source})", self.entries.len())
    }
}

/// The text with the entries' bytes turned to spaces (newlines kept, so lines stay where they
/// were), for the skeleton's read.
pub(super) fn blank_entries(text: String, entries: &[Entry]) -> String {
    let mut bytes = text.into_bytes();
    for entry in entries {
        for b in &mut bytes[entry.range()] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    // Entries start at a header's `[` and end at the next one or at the end: whole UTF-8
    // sequences were replaced byte for byte by ASCII spaces, so the text is still UTF-8.
    String::from_utf8(bytes).expect("entries are blanked on character boundaries")
}

/// Puts the entries read by [`read_entries`] into the skeleton's tenants. `None` if the
/// entries cannot be attached (see [`attachable`]).
pub(super) fn attach(raw: &mut RawScenario, read: TenantEntries) -> Option<()> {
    if !attachable(raw, read.len()) {
        return None;
    }
    for (tenant, (users, groups)) in raw.tenant.iter_mut().zip(read) {
        let tenant: &mut RawTenant = tenant.get_mut();
        tenant.user = users;
        tenant.group = groups;
    }
    Some(())
}

/// Whether entries of the first `tenants` tenants can join the skeleton's: each of those
/// tenants exists and has no users or groups of its own (`user = [...]` inline).
pub(super) fn attachable(raw: &RawScenario, tenants: usize) -> bool {
    tenants <= raw.tenant.len()
        && raw.tenant[..tenants].iter().all(|t| t.get_ref().user.is_empty() && t.get_ref().group.is_empty())
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
        Some(entries(text)?.into_iter().map(|e| (e.tenant, &text[e.range()])).collect())
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
