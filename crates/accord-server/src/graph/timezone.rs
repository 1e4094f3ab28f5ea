//! Graph's `Prefer` header preferences (`outlook.timezone`, `odata.maxpagesize`); the zones
//! themselves are `accord_core::time_zone`.

use axum::http::{header::HeaderName, HeaderMap};

pub use accord_core::time_zone::NamedZone;

/// The raw `outlook.timezone` preference of the `Prefer` headers, if any.
pub fn preferred_timezone(headers: &HeaderMap) -> Option<String> {
    preference(headers, "outlook.timezone")
}

/// The value of one preference from the `Prefer` headers (RFC 7240: comma-separated
/// `name[=value]`, values optionally quoted, parameters after `;` ignored).
pub fn preference(headers: &HeaderMap, name: &str) -> Option<String> {
    let prefer = HeaderName::from_static("prefer");
    for value in headers.get_all(prefer).iter().filter_map(|v| v.to_str().ok()) {
        for item in split_outside_quotes(value, ',') {
            let item = split_outside_quotes(&item, ';').into_iter().next().unwrap_or_default();
            let (key, val) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (item.trim(), ""),
            };
            if key.eq_ignore_ascii_case(name) {
                return Some(unquote(val));
            }
        }
    }
    None
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if quoted && c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
            cur.push(c);
        } else if c == sep && !quoted {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn prefer_header_parsing() {
        let mut h = HeaderMap::new();
        h.append("prefer", HeaderValue::from_static("odata.maxpagesize=5"));
        h.append(
            "prefer",
            HeaderValue::from_static("outlook.body-content-type=\"text\", Outlook.TimeZone=\"Pacific Standard Time\""),
        );
        assert_eq!(preferred_timezone(&h).as_deref(), Some("Pacific Standard Time"));
        let mut h = HeaderMap::new();
        h.insert("prefer", HeaderValue::from_static("outlook.timezone=Europe/Paris; x=1"));
        assert_eq!(preferred_timezone(&h).as_deref(), Some("Europe/Paris"));
        let mut h = HeaderMap::new();
        h.insert("prefer", HeaderValue::from_static("outlook.timezone=\"a,b \\\"c\""));
        assert_eq!(preferred_timezone(&h).as_deref(), Some("a,b \"c"));
        assert_eq!(preferred_timezone(&HeaderMap::new()), None);
    }
}
