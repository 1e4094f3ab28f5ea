//! Form and query parameters, and redirects, as every browser-facing surface reads and sends them.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// Query or form parameters; the first value of a repeated name wins, unknown names are ignored.
pub fn params(raw: &[u8]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// `302 Found`, as Entra answers (axum's `Redirect::to` is a 303). Every target is a registered
/// or server-made URL; one that is not a valid header value is our bug, answered with a 500.
pub fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => {
            tracing::error!("redirect target is not a valid header value");
            (StatusCode::INTERNAL_SERVER_ERROR, "The redirect target is not valid.").into_response()
        }
    }
}

/// One field of a `multipart/form-data` body: its name and its raw bytes (a file's content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Reads a `multipart/form-data` body (RFC 7578) — what a form with a file input sends. The
/// body is already bounded by the request size limit; anything malformed is a message, never a
/// panic.
pub fn multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or("the form is not multipart/form-data with a boundary")?;
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    // Skip the preamble up to the first delimiter.
    let first = find(rest, delimiter.as_bytes()).ok_or("the form has no parts")?;
    rest = &rest[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts); // the closing delimiter
        }
        rest = rest.strip_prefix(b"\r\n").ok_or("a part does not start on a new line")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("a part has no header end")?;
        let head = std::str::from_utf8(&rest[..head_end]).map_err(|_| "a part's headers are not text")?;
        let name = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .flat_map(|l| l.split(';').map(str::trim))
            .find_map(|p| p.strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_string())
            .ok_or("a part has no name")?;
        rest = &rest[head_end + 4..];
        let closing = format!("\r\n{delimiter}");
        let end = find(rest, closing.as_bytes()).ok_or("a part is not closed")?;
        parts.push(Part { name, bytes: rest[..end].to_vec() });
        rest = &rest[end + closing.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_forms_are_read_field_by_field_binary_included() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"a.cer\"\r\nContent-Type: application/pkix-cert\r\n\r\n\x30\x82\r\x00\xff\r\n--XyZ--\r\n";
        let parts = multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts[0], Part { name: "csrf".into(), bytes: b"tok".to_vec() });
        assert_eq!(parts[1], Part { name: "file".into(), bytes: b"\x30\x82\r\x00\xff".to_vec() });
        assert!(multipart("multipart/form-data", body).is_err(), "no boundary");
        assert!(multipart("multipart/form-data; boundary=Other", body).is_err());
        assert!(multipart("multipart/form-data; boundary=XyZ", b"--XyZ\r\nno header end").is_err());
        // RFC 2046: a boundary has 1 to 70 characters (an empty one makes "--" the delimiter).
        let form = |b: &str| format!("--{b}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--{b}--\r\n");
        assert!(multipart("multipart/form-data; boundary=", form("").as_bytes()).is_err(), "an empty boundary");
        let (b70, b71) = ("b".repeat(70), "b".repeat(71));
        assert!(multipart(&format!("multipart/form-data; boundary={b70}"), form(&b70).as_bytes()).is_ok());
        assert!(multipart(&format!("multipart/form-data; boundary={b71}"), form(&b71).as_bytes()).is_err(), "71");
    }

    #[test]
    fn first_value_wins_and_redirects_are_302() {
        let p = params(b"a=1&b=two%20words&a=2");
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "two words");
        let res = found("https://app.example/cb?code=x");
        assert_eq!(res.status(), StatusCode::FOUND);
        assert_eq!(res.headers()[header::LOCATION], "https://app.example/cb?code=x");
        assert_eq!(found("bad\nvalue").status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn multipart_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300), boundary in "[a-zA-Z0-9]{0,8}") {
            let _ = multipart(&format!("multipart/form-data; boundary={boundary}"), &body);
            let mut framed = format!("--{boundary}\r\n").into_bytes();
            framed.extend_from_slice(&body);
            let _ = multipart(&format!("multipart/form-data; boundary={boundary}"), &framed);
        }
    }
}
