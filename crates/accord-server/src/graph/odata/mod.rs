//! The OData query options every Graph collection shares: `$select`, `$top`, `$skip`,
//! `$skiptoken`, `$orderby`, `$filter` and `$count`, paging with `@odata.nextLink`, and
//! `@odata.context` values shaped like Graph's.
//!
//! Each resource declares what it allows in a [`ResourceSpec`]; anything else is a 400 naming
//! the problem. `$filter` is parsed into an [`Expr`], type-checked against the resource's
//! properties, and evaluated over the JSON objects the endpoint would return.

use super::errors::GraphError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The type of a filterable property.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PropType {
    String,
    /// A date-time: an `Edm.DateTimeOffset`, or the string `dateTime` of a `dateTimeTimeZone`.
    /// Compared as instants; text without an offset is UTC.
    DateTime,
    Number,
    Bool,
    /// A collection of strings.
    Strings,
    /// A collection of objects with these properties (for `any`/`all`).
    Objects(&'static [Prop]),
}

impl PropType {
    fn edm(self) -> &'static str {
        match self {
            PropType::String => "Edm.String",
            PropType::DateTime => "Edm.DateTimeOffset",
            PropType::Number => "Edm.Double",
            PropType::Bool => "Edm.Boolean",
            PropType::Strings => "Collection(Edm.String)",
            PropType::Objects(_) => "Collection(Edm.ComplexType)",
        }
    }
}

/// A property path (`start/dateTime`) usable in `$filter` and `$orderby`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prop {
    pub path: &'static str,
    pub ty: PropType,
}

/// What one resource collection allows.
#[derive(Debug, Clone, Copy)]
pub struct ResourceSpec {
    /// `microsoft.graph.event`, used in messages.
    pub type_name: &'static str,
    /// Top-level properties `$select` may name.
    pub select: &'static [&'static str],
    /// Properties `$filter` may use.
    pub filter: &'static [Prop],
    /// Property paths `$orderby` may use (each also in `filter`, which gives its type).
    pub orderby: &'static [&'static str],
    /// Page size without `$top`.
    pub default_top: usize,
    pub max_top: usize,
    /// Pages continue with `$skiptoken` (opaque) rather than `$skip`.
    pub skiptoken_paging: bool,
}

impl ResourceSpec {
    fn prop(&self, path: &str) -> Option<&'static Prop> {
        find_prop(self.filter, path)
    }
}

fn find_prop(props: &'static [Prop], path: &str) -> Option<&'static Prop> {
    props.iter().find(|p| p.path.eq_ignore_ascii_case(path))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub path: &'static str,
    pub ty: PropType,
    pub direction: Direction,
}

/// Parsed query options of one request.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Canonical property names, when `$select` was given.
    pub select: Option<Vec<&'static str>>,
    pub top: usize,
    pub skip: usize,
    pub filter: Option<Expr>,
    pub orderby: Vec<OrderBy>,
    pub count: bool,
    /// A `$skiptoken` of a collection read from an index a page at a time: where the previous
    /// page ended (see [`KeysetPosition`]).
    pub after: Option<KeysetPosition>,
    /// Every query parameter as received (decoded), to carry into `@odata.nextLink`.
    raw: Vec<(String, String)>,
    skiptoken_paging: bool,
}

/// Options Graph knows but this API does not serve.
const UNSUPPORTED: &[&str] = &["$expand", "$search", "$format", "$levels", "$apply", "$compute", "$deltatoken"];
const MAX_FILTER_LEN: usize = 4096;
const MAX_DEPTH: usize = 32;

impl QueryOptions {
    /// Parses the raw query string (`None` = no query) for a resource.
    pub fn parse(raw_query: Option<&str>, spec: &ResourceSpec) -> Result<QueryOptions, GraphError> {
        let raw: Vec<(String, String)> = form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut opts = QueryOptions {
            select: None,
            top: spec.default_top,
            skip: 0,
            filter: None,
            orderby: Vec::new(),
            count: false,
            after: None,
            raw: Vec::new(),
            skiptoken_paging: spec.skiptoken_paging,
        };
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in &raw {
            if !key.starts_with('$') {
                continue; // endpoint parameters (startDateTime, …) and anything else: not ours
            }
            let name = key.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(GraphError::bad_request(format!(
                    "Query option '{name}' was specified more than once, but it must be specified at most once."
                )));
            }
            seen.push(name.clone());
            match name.as_str() {
                "$select" => opts.select = Some(parse_select(value, spec)?),
                "$top" => opts.top = parse_top(value, spec)?,
                "$skip" => {
                    opts.skip = value.trim().parse::<u32>().map_err(|_| {
                        GraphError::bad_request(format!(
                            "Invalid value '{value}' for query option '$skip': a non-negative integer is required."
                        ))
                    })? as usize
                }
                "$skiptoken" => match decode_skiptoken(value)? {
                    SkipToken::Offset(n) => opts.skip = n,
                    SkipToken::After(p) => opts.after = Some(p),
                },
                "$filter" => opts.filter = Some(parse_filter(value, spec)?),
                "$orderby" => opts.orderby = parse_orderby(value, spec)?,
                "$count" => {
                    opts.count = match value.trim().to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(GraphError::bad_request(format!(
                                "Invalid value '{value}' for query option '$count': 'true' or 'false' is required."
                            )))
                        }
                    }
                }
                other if UNSUPPORTED.contains(&other) => {
                    return Err(GraphError::bad_request(format!(
                        "Query option '{other}' is not supported on this resource."
                    )))
                }
                other => {
                    return Err(GraphError::bad_request(format!("Query option '{other}' is not supported.")));
                }
            }
        }
        if seen.iter().any(|n| n == "$skip") && seen.iter().any(|n| n == "$skiptoken") {
            return Err(GraphError::bad_request("Query options '$skip' and '$skiptoken' cannot be used together."));
        }
        opts.raw = raw;
        Ok(opts)
    }

    /// A `$filter` that is one `property eq 'text'` on a property of `keys` (either order of
    /// the operands), with no `$orderby`: at most one object, found by its key.
    pub fn key_lookup(&self, keys: &[&'static str]) -> Option<(&'static str, String)> {
        if !self.orderby.is_empty() {
            return None;
        }
        let Some(Expr::Cmp(CmpOp::Eq, a, b)) = &self.filter else { return None };
        let ((Operand::Path(p), Operand::Lit(Literal::Str(text)))
        | (Operand::Lit(Literal::Str(text)), Operand::Path(p))) = (a, b)
        else {
            return None;
        };
        if p.var.is_some() || p.segments.len() != 1 {
            return None;
        }
        let key = keys.iter().copied().find(|k| p.segments[0].eq_ignore_ascii_case(k))?;
        Some((key, text.clone()))
    }

    /// What a store index can serve a page at a time: the collection in its natural order with
    /// nothing but `$top`, `$select`, `$count`, a keyset `$skiptoken` and, at most, a `$filter`
    /// that is one `startswith(property, 'text')` on a property of `indexed`. `Some(None)`: no
    /// filter; `Some(Some((property, text)))`: that prefix; `None`: filter and order in memory.
    pub fn indexed_listing(&self, indexed: &[&'static str]) -> Option<Option<(&'static str, String)>> {
        if !self.orderby.is_empty() || self.skip != 0 {
            return None;
        }
        match &self.filter {
            None => Some(None),
            Some(Expr::Str(StrFn::StartsWith, Operand::Path(p), Operand::Lit(Literal::Str(text))))
                if p.var.is_none() && p.segments.len() == 1 =>
            {
                let property = indexed.iter().copied().find(|i| p.segments[0].eq_ignore_ascii_case(i))?;
                Some(Some((property, text.clone())))
            }
            Some(_) => None,
        }
    }

    /// The absolute URL of the page after `position` (a keyset `$skiptoken`).
    pub fn next_link_after(&self, public_url: &str, path: &str, position: &KeysetPosition) -> String {
        self.link_with(public_url, path, &format!("$skiptoken={}", encode_keyset(position)))
    }

    /// Filters, orders and pages `items` (objects as the caller may see them, before `$select`).
    pub fn apply(&self, items: Vec<Value>) -> Page {
        let mut items: Vec<Value> = match &self.filter {
            Some(f) => items.into_iter().filter(|v| f.matches(v)).collect(),
            None => items,
        };
        if !self.orderby.is_empty() {
            items.sort_by(|a, b| {
                for o in &self.orderby {
                    let ord = compare_values(lookup(a, o.path), lookup(b, o.path), o.ty);
                    let ord = if o.direction == Direction::Desc { ord.reverse() } else { ord };
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                Ordering::Equal
            });
        }
        let total = items.len();
        let start = self.skip.min(total);
        let end = start.saturating_add(self.top).min(total);
        let next_skip = (end < total).then_some(end);
        let items = items.into_iter().skip(start).take(end - start).collect();
        Page { items, total, next_skip }
    }

    /// Applies `$select` to one object: the selected properties (in the object's order), with
    /// `id` and `@odata.etag` always kept, as Graph does.
    pub fn project(&self, value: Value) -> Value {
        let Some(select) = &self.select else { return value };
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(k, _)| k == "id" || k == "@odata.etag" || select.iter().any(|s| s == k))
                    .collect(),
            ),
            other => other,
        }
    }

    /// `{base}/v1.0/$metadata#{entity_set}` with the `$select` list, as Graph's `@odata.context`.
    pub fn context(&self, public_url: &str, entity_set: &str) -> String {
        match &self.select {
            Some(s) => format!("{public_url}/v1.0/$metadata#{entity_set}({})", s.join(",")),
            None => format!("{public_url}/v1.0/$metadata#{entity_set}"),
        }
    }

    /// The absolute URL of the page that starts at `skip`: the request's path and options with
    /// the paging option replaced.
    pub fn next_link(&self, public_url: &str, path: &str, skip: usize) -> String {
        let paging = if self.skiptoken_paging {
            format!("$skiptoken={}", encode_skiptoken(skip))
        } else {
            format!("$skip={skip}")
        };
        self.link_with(public_url, path, &paging)
    }

    /// The request's path and options with the paging option replaced by `paging`.
    fn link_with(&self, public_url: &str, path: &str, paging: &str) -> String {
        let mut parts: Vec<String> = self
            .raw
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skip") && !k.eq_ignore_ascii_case("$skiptoken"))
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        parts.push(paging.to_string());
        format!("{public_url}{path}?{}", parts.join("&"))
    }

    /// The collection response: `@odata.context`, `@odata.count` (with `$count=true`), `value`
    /// and `@odata.nextLink` when more remain.
    pub fn collection(&self, context: String, page: &Page, value: Vec<Value>, public_url: &str, path: &str) -> Value {
        let next = page.next_skip.map(|skip| self.next_link(public_url, path, skip));
        self.collection_body(context, page.total as u64, value, next)
    }

    /// The collection response from its parts: `total` is shown with `$count=true`.
    pub fn collection_body(&self, context: String, total: u64, value: Vec<Value>, next_link: Option<String>) -> Value {
        let mut body = Map::new();
        body.insert("@odata.context".into(), Value::String(context));
        if self.count {
            body.insert("@odata.count".into(), Value::from(total));
        }
        body.insert("value".into(), Value::Array(value));
        if let Some(next) = next_link {
            body.insert("@odata.nextLink".into(), Value::String(next));
        }
        Value::Object(body)
    }
}

/// One page of a collection.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Value>,
    /// Matches before paging (for `@odata.count`).
    pub total: usize,
    /// Where the next page starts, if there is one.
    pub next_skip: Option<usize>,
}

/// Percent-encodes a query key or value, keeping the characters OData links usually show.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b'$' | b'\'' | b'(' | b')' | b',' | b':' | b'/' | b'@' | b'!' | b'*' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Where a page read from an index ended: the sort key and id of its last object (for users
/// and groups, the case-folded display name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysetPosition {
    pub key: String,
    pub id: uuid::Uuid,
}

enum SkipToken {
    /// An offset into a collection filtered and ordered in memory.
    Offset(usize),
    /// After a position in a collection read from an index.
    After(KeysetPosition),
}

fn encode_skiptoken(skip: usize) -> String {
    B64URL.encode(format!("o={skip}"))
}

fn encode_keyset(p: &KeysetPosition) -> String {
    B64URL.encode(format!("k={}:{}", p.id, p.key))
}

fn decode_skiptoken(token: &str) -> Result<SkipToken, GraphError> {
    let bad = || GraphError::bad_request("The '$skiptoken' value is not valid. Use the @odata.nextLink as returned.");
    let bytes = B64URL.decode(token.trim()).map_err(|_| bad())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
    if let Some(n) = text.strip_prefix("o=") {
        return n.parse::<u32>().map(|n| SkipToken::Offset(n as usize)).map_err(|_| bad());
    }
    let (id, key) = text.strip_prefix("k=").and_then(|rest| rest.split_once(':')).ok_or_else(bad)?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| bad())?;
    Ok(SkipToken::After(KeysetPosition { key: key.to_string(), id }))
}

fn no_property(name: &str, spec: &ResourceSpec) -> GraphError {
    GraphError::bad_request(format!("Could not find a property named '{name}' on type '{}'.", spec.type_name))
}

fn parse_select(value: &str, spec: &ResourceSpec) -> Result<Vec<&'static str>, GraphError> {
    let mut out: Vec<&'static str> = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(GraphError::bad_request("Invalid '$select': an empty property name."));
        }
        if item == "*" {
            for p in spec.select {
                if !out.contains(p) {
                    out.push(p);
                }
            }
            continue;
        }
        let p = spec
            .select
            .iter()
            .copied()
            .find(|p| p.eq_ignore_ascii_case(item))
            .ok_or_else(|| no_property(item, spec))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn parse_top(value: &str, spec: &ResourceSpec) -> Result<usize, GraphError> {
    let max = spec.max_top;
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 1 && (n as u64) <= max as u64 => Ok(n as usize),
        _ => Err(GraphError::bad_request(format!(
            "Invalid page size specified: '{value}'. '$top' must be an integer between 1 and {max} inclusive."
        ))),
    }
}

fn parse_orderby(value: &str, spec: &ResourceSpec) -> Result<Vec<OrderBy>, GraphError> {
    let mut out = Vec::new();
    for clause in value.split(',') {
        let mut words = clause.split_whitespace();
        let Some(path) = words.next() else {
            return Err(GraphError::bad_request("Invalid '$orderby': an empty clause."));
        };
        let direction = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => Direction::Asc,
            Some("desc") => Direction::Desc,
            Some(other) => {
                return Err(GraphError::bad_request(format!(
                    "Invalid '$orderby' direction '{other}' for '{path}': use 'asc' or 'desc'."
                )))
            }
        };
        if let Some(extra) = words.next() {
            return Err(GraphError::bad_request(format!("Invalid '$orderby': unexpected '{extra}' after '{path}'.")));
        }
        let canonical = spec.orderby.iter().copied().find(|p| p.eq_ignore_ascii_case(path));
        let (Some(canonical), Some(prop)) = (canonical, spec.prop(path)) else {
            return Err(GraphError::bad_request(format!(
                "The property '{path}' cannot be used in '$orderby' on type '{}'. Sortable properties: {}.",
                spec.type_name,
                spec.orderby.join(", ")
            )));
        };
        out.push(OrderBy { path: canonical, ty: prop.ty, direction });
    }
    if out.len() > 5 {
        return Err(GraphError::bad_request("Invalid '$orderby': at most 5 clauses are supported."));
    }
    Ok(out)
}

/// Parses and type-checks a `$filter` expression for `spec`.
pub fn parse_filter(text: &str, spec: &ResourceSpec) -> Result<Expr, GraphError> {
    let fail = |e: String| GraphError::bad_request(format!("Invalid filter clause: {e}"));
    if text.len() > MAX_FILTER_LEN {
        return Err(fail(format!("the expression is longer than {MAX_FILTER_LEN} characters.")));
    }
    let tokens = lex(text).map_err(fail)?;
    let mut p = Parser { tokens, pos: 0, depth: 0, vars: Vec::new(), spec };
    let expr = p.expr().map_err(fail)?;
    if let Some(t) = p.tokens.get(p.pos) {
        return Err(fail(format!("unexpected {} at position {}.", t.kind.describe(), t.at)));
    }
    if !expr.is_boolean() {
        return Err(fail("the expression must be a condition (true or false), not a value.".into()));
    }
    Ok(expr)
}

mod datetime;
mod eval;
mod filter;
mod lexer;
#[cfg(test)]
mod tests;

pub use datetime::*;
use eval::{compare_values, lookup};
pub use filter::*;
use lexer::*;
