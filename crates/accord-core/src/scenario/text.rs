//! Text helpers: byte offsets to lines, key paths for TOML errors, and the string syntaxes a
//! scenario uses (GUIDs, domains, UPNs, e-mail addresses, URLs). Nothing here panics on any
//! input.

use std::ops::Range;

use uuid::Uuid;

/// The 1-based line containing byte `offset` (clamped to the text).
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let bytes = text.as_bytes();
    let end = offset.min(bytes.len());
    1 + bytes[..end].iter().filter(|&&b| b == b'\n').count()
}

/// Where each line of a text starts, so that finding the line of an offset is a binary search:
/// validation asks for the line of every object, and counting newlines from the start each time
/// made a 100,000-user file quadratic.
pub(super) struct LineIndex {
    /// Byte offsets of the newlines, in order: 32-bit, as a 100,000-user file has a million
    /// lines; a file past 4 GiB counts its later lines as one.
    newlines: Vec<u32>,
    len: usize,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let mut newlines: Vec<u32> =
            text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map_while(|(i, _)| u32::try_from(i).ok()).collect();
        newlines.shrink_to_fit();
        LineIndex { newlines, len: text.len() }
    }

    /// The 1-based line containing byte `offset` (clamped to the text), as [`line_of`] says.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.len);
        1 + self.newlines.partition_point(|&n| (n as usize) < end)
    }
}

// ---------------------------------------------------------------------------------------------
// Key paths for errors reported by the TOML parser
// ---------------------------------------------------------------------------------------------

/// A best-effort dotted key path for a TOML parse/deserialize error at `span`.
///
/// The TOML crate reports a byte span but not the key; this scans the text up to the span,
/// tracking table headers, keys and inline tables/arrays, and appends the field named in
/// `unknown field` / `missing field` messages.
pub(super) fn toml_error_key(text: &str, span: Range<usize>, message: &str) -> String {
    let bytes = text.as_bytes();
    let start = span.start.min(bytes.len());
    let end = span.end.clamp(start, bytes.len());
    let spanned = &bytes[start..end];

    let mut path: Vec<String> = if spanned.first() == Some(&b'[') {
        // The span is a whole `[table]` / `[[array]]` (e.g. a missing field): use its header.
        parse_header(spanned).unwrap_or_default()
    } else {
        scan_path(bytes, start)
    };

    if let Some(field) =
        backticked_after(message, "unknown field `").or_else(|| backticked_after(message, "missing field `"))
    {
        path.push(field.to_string());
    } else if spanned.first().is_some_and(|&b| is_bare_key_byte(b) || b == b'"' || b == b'\'') {
        // The span starts at a key (e.g. a duplicate key): name it.
        let (parts, next) = parse_key(bytes, start);
        let rest = &bytes[next.min(bytes.len())..];
        let after = rest.iter().find(|&&b| b != b' ' && b != b'\t');
        if !parts.is_empty() && after == Some(&b'=') {
            path.extend(parts);
        }
    }
    path.join(".")
}

fn backticked_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(&rest[..rest.find('`')?])
}

/// The key path in effect at byte `at`: header + enclosing inline keys + the current key.
fn scan_path(bytes: &[u8], at: usize) -> Vec<String> {
    let mut header: Vec<String> = Vec::new();
    // Each open `[` / `{` with the key path (relative) that was current when it opened.
    let mut stack: Vec<(u8, Vec<String>)> = Vec::new();
    let mut key: Vec<String> = Vec::new();
    let mut expecting_key = true;
    let mut i = 0;
    while i < at && i < bytes.len() {
        let c = bytes[i];
        match c {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\n' if stack.is_empty() => {
                key.clear();
                expecting_key = true;
            }
            b'"' | b'\'' if !expecting_key => {
                i = skip_string(bytes, i);
                continue;
            }
            b'[' if stack.is_empty() && expecting_key => {
                let line_end = bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p);
                if line_end >= at {
                    // The position is inside this header (e.g. an unknown table name): the
                    // path is the part of the header before it.
                    return parse_header(&bytes[i..at]).unwrap_or_default();
                }
                if let Some(h) = parse_header(&bytes[i..line_end]) {
                    header = h;
                }
                key.clear();
                i = line_end;
                continue;
            }
            b'[' | b'{' => {
                stack.push((c, std::mem::take(&mut key)));
                expecting_key = c == b'{';
            }
            b']' | b'}' => {
                if let Some((_, k)) = stack.pop() {
                    key = k;
                }
                expecting_key = false;
            }
            b'=' => expecting_key = false,
            b',' => {
                if matches!(stack.last(), Some((b'{', _))) {
                    key.clear();
                    expecting_key = true;
                }
            }
            b' ' | b'\t' | b'\r' => {}
            _ if expecting_key => {
                let (parts, next) = parse_key(bytes, i);
                if next > i {
                    key = parts;
                    i = next;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = header;
    for (_, k) in &stack {
        path.extend(k.iter().cloned());
    }
    path.extend(key);
    path
}

/// Skips a basic, literal or multi-line string starting at `i`; returns the index after it.
fn skip_string(bytes: &[u8], i: usize) -> usize {
    let q = bytes[i];
    let triple = bytes.len() >= i + 3 && bytes[i + 1] == q && bytes[i + 2] == q;
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < bytes.len() {
        let b = bytes[j];
        if q == b'"' && b == b'\\' {
            j += 2;
            continue;
        }
        if !triple && b == b'\n' {
            return j;
        }
        if b == q {
            if !triple {
                return j + 1;
            }
            if bytes.len() >= j + 3 && bytes[j + 1] == q && bytes[j + 2] == q {
                return j + 3;
            }
        }
        j += 1;
    }
    bytes.len()
}

/// Parses a (dotted, possibly quoted) key starting at `i`; returns its parts and the index of
/// the first byte after it (equal to `i` if there is no key).
fn parse_key(bytes: &[u8], mut i: usize) -> (Vec<String>, usize) {
    let begin = i;
    let mut parts = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let b = bytes[i];
        if b == b'"' || b == b'\'' {
            let end = skip_string(bytes, i);
            let inner_end = end.saturating_sub(1).max(i + 1);
            parts.push(String::from_utf8_lossy(&bytes[i + 1..inner_end.min(bytes.len())]).into());
            i = end;
        } else {
            let s = i;
            while i < bytes.len() && is_bare_key_byte(bytes[i]) {
                i += 1;
            }
            if i == s {
                break;
            }
            parts.push(String::from_utf8_lossy(&bytes[s..i]).into());
        }
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            continue;
        }
        break;
    }
    if parts.is_empty() {
        (parts, begin)
    } else {
        (parts, i)
    }
}

fn is_bare_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Parses a `[a.b]` or `[[a.b]]` header line into its key parts.
fn parse_header(line: &[u8]) -> Option<Vec<String>> {
    let mut i = 0;
    while i < line.len() && line[i] == b'[' && i < 2 {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let (parts, _) = parse_key(line, i);
    if parts.is_empty() {
        None
    } else {
        Some(parts)
    }
}

// ---------------------------------------------------------------------------------------------
// Value syntaxes
// ---------------------------------------------------------------------------------------------

/// Parses a GUID in its canonical hyphenated form (any letter case).
pub(super) fn parse_guid(s: &str) -> Result<Uuid, String> {
    match Uuid::try_parse(s) {
        Ok(id) if s.len() == 36 && id.is_nil() => Err(format!("{s:?} is the nil GUID, which is not a valid object id")),
        Ok(id) if s.len() == 36 => Ok(id),
        _ => Err(format!("{s:?} is not a valid GUID (expected the form 00000000-0000-0000-0000-000000000000)")),
    }
}

/// A DNS-ish host name: dot-separated labels of ASCII letters, digits and hyphens, each 1–63
/// characters, not starting or ending with a hyphen; at most 253 characters.
pub(super) fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A domain name: a host name with at least two labels whose last label is not numeric.
pub(super) fn is_domain(s: &str) -> bool {
    is_host_name(s)
        && s.contains('.')
        && !s.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

/// Why `s` is not a valid user principal name, if it is not.
pub(super) fn upn_problem(s: &str) -> Option<String> {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return Some(format!("{s:?} is not a valid user principal name (expected name@domain)"));
    };
    if local.is_empty() || domain.is_empty() {
        return Some(format!("{s:?} is not a valid user principal name (expected name@domain)"));
    }
    let local_ok = local.len() <= 64
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"'.-_!#^~".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return Some(format!(
            "{s:?} is not a valid user principal name (the part before @ may contain only \
             letters, digits and ' . - _ ! # ^ ~, at most 64 of them, and may not start or end \
             with a period)"
        ));
    }
    if !is_domain(domain) {
        return Some(format!("{s:?} is not a valid user principal name ({domain:?} is not a valid domain name)"));
    }
    None
}

/// The domain part of a UPN (after the last `@`).
pub(super) fn upn_domain(upn: &str) -> &str {
    upn.rsplit_once('@').map_or("", |(_, d)| d)
}

/// An e-mail-like string: `local@domain`, a local part without whitespace or `@`, and a domain.
pub(super) fn is_email_like(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !local.chars().any(|c| c.is_whitespace() || c.is_control()) && is_domain(domain)
        }
        None => false,
    }
}

/// The parts of an absolute http(s) URL that validation cares about.
pub(super) struct HttpUrl {
    pub scheme: String,
    pub host: String,
    pub has_fragment: bool,
}

/// Parses an absolute URL of the form `scheme://host[:port][/path][?query][#fragment]`.
pub(super) fn parse_url(s: &str) -> Result<HttpUrl, String> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{s:?} must not contain spaces or control characters"));
    }
    let not_absolute = || format!("{s:?} is not an absolute URL (expected e.g. https://host/path)");
    let (scheme, rest) = s.split_once("://").ok_or_else(not_absolute)?;
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(not_absolute());
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains('@') {
        return Err(format!("{s:?} must not contain user information (user@host)"));
    }
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let close = after.find(']').ok_or_else(not_absolute)?;
        let port = &after[close + 1..];
        (&authority[..close + 2], port.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
            return Err(format!("{s:?} has an invalid port"));
        }
        if port.parse::<u32>().map_or(true, |p| p == 0 || p > 65535) {
            return Err(format!("{s:?} has an invalid port"));
        }
    }
    let host_ok = if host.starts_with('[') {
        host.len() > 2 && host[1..host.len() - 1].bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        is_host_name(host)
    };
    if !host_ok {
        return Err(format!("{s:?} has no valid host name"));
    }
    Ok(HttpUrl {
        scheme: scheme.to_ascii_lowercase(),
        host: host.to_ascii_lowercase(),
        has_fragment: rest.contains('#'),
    })
}

/// Why `s` is not an acceptable redirect URI, if it is not.
pub(super) fn redirect_uri_problem(s: &str) -> Option<String> {
    let url = match parse_url(s) {
        Ok(url) => url,
        Err(e) => return Some(e),
    };
    if url.has_fragment {
        return Some(format!("{s:?} must not contain a fragment (#…)"));
    }
    match url.scheme.as_str() {
        "https" => None,
        "http" if url.host == "localhost" || url.host == "127.0.0.1" => None,
        "http" => Some(format!("{s:?} uses http, which is allowed only for localhost and 127.0.0.1 (use https)")),
        other => Some(format!("{s:?} uses the scheme {other:?} (expected https, or http for localhost)")),
    }
}

/// Why `s` is not an acceptable http(s) URL (for links such as online meeting URLs).
pub(super) fn http_url_problem(s: &str) -> Option<String> {
    match parse_url(s) {
        Err(e) => Some(e),
        Ok(url) if url.scheme == "https" || url.scheme == "http" => None,
        Ok(url) => Some(format!("{s:?} uses the scheme {:?} (expected https or http)", url.scheme)),
    }
}

/// Why `s` is not an acceptable App ID URI (`scheme:rest`, no whitespace), if it is not.
pub(super) fn identifier_uri_problem(s: &str) -> Option<String> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("{s:?} must not contain spaces or control characters"));
    }
    let ok = match s.split_once(':') {
        Some((scheme, rest)) => {
            scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && !rest.trim_start_matches('/').is_empty()
        }
        None => false,
    };
    if ok {
        None
    } else {
        Some(format!("{s:?} is not an absolute URI (expected e.g. api://my-api or https://api.example.com)"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_line_index_agrees_with_counting_newlines() {
        for text in ["", "a", "\n", "a\nb", "a\n\nbc\n", "é\nü\n\n"] {
            let index = LineIndex::new(text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(index.line_of(offset), line_of(text, offset), "{text:?} at {offset}");
            }
        }
    }

    use super::*;

    #[test]
    fn key_paths() {
        let t = "[[tenant]]\nname = 5\n";
        assert_eq!(toml_error_key(t, 18..19, "invalid type"), "tenant.name");
        let t = "[[tenant]]\nuser = [{upn=\"a\"}, {upn=\"b\", zzz=1}]\n";
        let at = t.find("zzz").unwrap();
        assert_eq!(toml_error_key(t, at..at + 3, "unknown field `zzz`, expected `upn`"), "tenant.user.zzz");
        let t = "[[tenant]]\nx=1\n[[ tenant . \"user\" ]]\n";
        let at = t.find("[[ tenant").unwrap();
        assert_eq!(toml_error_key(t, at..t.len(), "missing field `upn`"), "tenant.user.upn");
        let t = "a = \"\"\"x\n[not.a.header]\n\"\"\"\nb = [1,\n 'x']\n";
        let at = t.find("'x'").unwrap();
        assert_eq!(toml_error_key(t, at..at + 3, "invalid type"), "b");
    }

    #[test]
    fn urls() {
        assert!(redirect_uri_problem("https://localhost:9443/auth/callback").is_none());
        assert!(redirect_uri_problem("http://127.0.0.1:8080/cb").is_none());
        assert!(redirect_uri_problem("http://LOCALHOST/cb").is_none());
        assert!(redirect_uri_problem("https://[::1]:8443/cb").is_none());
        assert!(redirect_uri_problem("http://example.com/cb").is_some());
        assert!(redirect_uri_problem("https://example.com/cb#x").is_some());
        assert!(redirect_uri_problem("ftp://example.com/").is_some());
        assert!(redirect_uri_problem("/relative").is_some());
        assert!(redirect_uri_problem("https://:80/").is_some());
        assert!(redirect_uri_problem("https://host:99999/").is_some());
        assert!(identifier_uri_problem("api://meeting-insights").is_none());
        assert!(identifier_uri_problem("api://").is_some());
    }

    #[test]
    fn names() {
        assert!(upn_problem("bob@contoso.test").is_none());
        assert!(upn_problem("o'neil.x_y@contoso.test").is_none());
        assert!(upn_problem("bob").is_some());
        assert!(upn_problem("bob@").is_some());
        assert!(upn_problem(".bob@contoso.test").is_some());
        assert!(upn_problem("bo b@contoso.test").is_some());
        assert!(upn_problem("bob@contoso").is_some());
        assert!(is_domain("contoso.test"));
        assert!(!is_domain("contoso"));
        assert!(!is_domain("-a.test"));
        assert!(!is_domain("10.0.0.1"));
        assert!(is_email_like("partner@example.com"));
        assert!(!is_email_like("partner"));
        assert!(parse_guid("6f1c2a4e-2b1d-4c8e-9a57-0d3e5b7c9f10").is_ok());
        assert!(parse_guid("6f1c2a4e2b1d4c8e9a570d3e5b7c9f10").is_err());
        assert!(parse_guid("00000000-0000-0000-0000-000000000000").is_err());
    }
}
