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

#[cfg(test)]
mod tests {
    use super::*;

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
