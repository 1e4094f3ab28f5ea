//! Scenario variables: `${name}` in the file's text, declared with a default in the top-level
//! `[variables]` table and overridable by whoever loads the file (`--var name=value`). They let
//! one file serve wherever the app under test happens to run, for example on a port the kernel
//! chose: `redirect_uris = ["${vendor_url}/auth/callback"]`.
//!
//! Substitution happens on the text, before the TOML is read, so a value may appear anywhere a
//! string can. Values therefore may not contain quotes, backslashes or control characters (which
//! could change the file's structure), nor `${` (variables do not nest); line numbers stay those
//! of the file as written.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{text, Diagnostic, ScenarioError};

/// Replaces every `${name}` in `source` with its value: the override from `overrides` if any,
/// else the default from the file's `[variables]` table. Every problem is reported.
pub(super) fn substitute<'s>(
    file: &str,
    source: &'s str,
    overrides: &[(String, String)],
) -> Result<Cow<'s, str>, ScenarioError> {
    // Most files use no variable: they are read once, as they are.
    if !source.contains("${") && overrides.is_empty() {
        return Ok(Cow::Borrowed(source));
    }
    let mut diags = Vec::new();
    let mut err = |line: usize, key: &str, message: String| {
        diags.push(Diagnostic { file: file.to_string(), line, key: key.to_string(), message })
    };
    let declared = declared(source).unwrap_or_default();
    let mut values: BTreeMap<&str, (&str, usize)> =
        declared.iter().map(|(k, (v, line))| (k.as_str(), (v.as_str(), *line))).collect();
    for (name, value) in overrides {
        match values.get_mut(name.as_str()) {
            Some(slot) => slot.0 = value,
            None => {
                let known: Vec<&str> = declared.keys().map(String::as_str).collect();
                let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                err(
                    0,
                    "variables",
                    format!("--var {name}: the scenario declares no variable {name:?} (declared: {known})"),
                );
            }
        }
    }
    for (name, (value, line)) in &values {
        if let Some(why) = value_problem(value) {
            err(*line, "variables", format!("the value of {name:?} ({value:?}) {why}"));
        }
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    let mut offset = 0;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let line = text::line_of(source, offset + at);
        match after.find('}') {
            Some(close) if is_name(&after[..close]) => {
                let name = &after[..close];
                match values.get(name) {
                    Some((value, _)) => out.push_str(value),
                    None => err(line, "variables", format!("${{{name}}} is not declared in [variables]")),
                }
                let used = at + 2 + close + 1;
                offset += used;
                rest = &rest[used..];
            }
            _ => {
                err(line, "variables", "\"${\" must start a variable reference like ${vendor_url}".to_string());
                out.push_str("${");
                offset += at + 2;
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if diags.is_empty() {
        Ok(Cow::Owned(out))
    } else {
        diags.sort_by_key(|d| d.line);
        Err(ScenarioError { diagnostics: diags })
    }
}

/// The `[variables]` table's string entries with their lines; `None` when the text does not read
/// as TOML or has no such table (the real parse reports syntax and type errors).
fn declared(source: &str) -> Option<BTreeMap<String, (String, usize)>> {
    #[derive(serde::Deserialize)]
    struct Doc {
        variables: Option<BTreeMap<String, toml::Spanned<toml::Value>>>,
    }
    let doc: Doc = toml::from_str(source).ok()?;
    let vars = doc.variables?;
    Some(
        vars.into_iter()
            .filter_map(|(name, v)| {
                let line = text::line_of(source, v.span().start);
                match v.into_inner() {
                    toml::Value::String(s) => Some((name, (s, line))),
                    _ => None,
                }
            })
            .collect(),
    )
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn value_problem(v: &str) -> Option<&'static str> {
    if v.contains("${") {
        Some("may not refer to another variable")
    } else if v.chars().any(|c| c == '"' || c == '\'' || c == '\\' || c.is_control()) {
        Some("may not contain quotes, backslashes or control characters")
    } else {
        None
    }
}

/// `name=value` as given on a command line.
pub fn parse_assignment(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if is_name(name) => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE (a name of letters, digits and _)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "[variables]\nvendor_url = \"https://localhost:9443\"\nother = \"x\"\n\n[[tenant]]\nredirect = \"${vendor_url}/cb\"\n";

    #[test]
    fn defaults_and_overrides() {
        let out = substitute("f.toml", FILE, &[]).unwrap();
        assert!(out.contains("redirect = \"https://localhost:9443/cb\""), "{out}");
        let out = substitute("f.toml", FILE, &[("vendor_url".into(), "https://localhost:50123".into())]).unwrap();
        assert!(out.contains("redirect = \"https://localhost:50123/cb\""), "{out}");
        // Lines are kept.
        assert_eq!(out.lines().count(), FILE.lines().count());
    }

    #[test]
    fn text_without_variables_is_untouched() {
        assert!(matches!(substitute("f.toml", "a = 1\n", &[]).unwrap(), Cow::Borrowed("a = 1\n")));
    }

    #[test]
    fn problems_are_reported_with_lines() {
        let err = substitute("f.toml", FILE, &[("nope".into(), "1".into())]).unwrap_err().to_string();
        assert!(
            err.contains("--var nope: the scenario declares no variable \"nope\" (declared: other, vendor_url)"),
            "{err}"
        );
        let err = substitute("f.toml", "x = \"${missing}\"\n", &[]).unwrap_err().to_string();
        assert_eq!(err, "f.toml:1: variables: ${missing} is not declared in [variables]");
        let err = substitute("f.toml", FILE, &[("vendor_url".into(), "a\"b".into())]).unwrap_err().to_string();
        assert!(err.starts_with("f.toml:2: variables: the value of \"vendor_url\""), "{err}");
        assert!(err.contains("may not contain quotes"), "{err}");
        let err =
            substitute("f.toml", "[variables]\na = \"x\"\n[[tenant]]\ny = \"${ a}\"\n", &[]).unwrap_err().to_string();
        assert!(err.starts_with("f.toml:4: variables: \"${\" must start"), "{err}");
    }

    #[test]
    fn assignments() {
        assert_eq!(parse_assignment("vendor_url=https://x:1/a=b"), Ok(("vendor_url".into(), "https://x:1/a=b".into())));
        assert!(parse_assignment("novalue").is_err());
        assert!(parse_assignment("1x=2").is_err());
    }
}
