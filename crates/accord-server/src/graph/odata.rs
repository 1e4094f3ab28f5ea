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
                "$skiptoken" => opts.skip = decode_skiptoken(value)?,
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
        let mut parts: Vec<String> = self
            .raw
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skip") && !k.eq_ignore_ascii_case("$skiptoken"))
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        if self.skiptoken_paging {
            parts.push(format!("$skiptoken={}", encode_skiptoken(skip)));
        } else {
            parts.push(format!("$skip={skip}"));
        }
        format!("{public_url}{path}?{}", parts.join("&"))
    }

    /// The collection response: `@odata.context`, `@odata.count` (with `$count=true`), `value`
    /// and `@odata.nextLink` when more remain.
    pub fn collection(&self, context: String, page: &Page, value: Vec<Value>, public_url: &str, path: &str) -> Value {
        let mut body = Map::new();
        body.insert("@odata.context".into(), Value::String(context));
        if self.count {
            body.insert("@odata.count".into(), Value::from(page.total));
        }
        body.insert("value".into(), Value::Array(value));
        if let Some(skip) = page.next_skip {
            body.insert("@odata.nextLink".into(), Value::String(self.next_link(public_url, path, skip)));
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

fn encode_skiptoken(skip: usize) -> String {
    B64URL.encode(format!("o={skip}"))
}

fn decode_skiptoken(token: &str) -> Result<usize, GraphError> {
    let bad = || GraphError::bad_request("The '$skiptoken' value is not valid. Use the @odata.nextLink as returned.");
    let bytes = B64URL.decode(token.trim()).map_err(|_| bad())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
    text.strip_prefix("o=").and_then(|n| n.parse::<u32>().ok()).map(|n| n as usize).ok_or_else(bad)
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

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Colon,
    Slash,
    Ident(String),
    Str(String),
    Num(f64),
    DateTime(OffsetDateTime),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Colon => "':'".into(),
            Tok::Slash => "'/'".into(),
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Num(n) => format!("number {n}"),
            Tok::DateTime(_) => "a date-time".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    /// Character position (1-based) in the filter text.
    at: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | ',' | ':' | '/' => {
                out.push(Token {
                    kind: match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        ',' => Tok::Comma,
                        ':' => Tok::Colon,
                        _ => Tok::Slash,
                    },
                    at,
                });
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!("the string starting at position {at} is not closed with a quote."))
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(Token { kind: Tok::Str(s), at });
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | ':' | '+' | '-'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(Token { kind: literal_word(&word, at)?, at });
            }
            c if c.is_alphabetic() || c == '_' || c == '$' || c == '@' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '$' | '@')) {
                    i += 1;
                }
                out.push(Token { kind: Tok::Ident(chars[start..i].iter().collect()), at });
            }
            other => return Err(format!("unexpected character '{other}' at position {at}.")),
        }
        if out.len() > 2000 {
            return Err("the expression has too many parts.".into());
        }
    }
    Ok(out)
}

/// A numeric-looking word: a number, or an unquoted date-time (`2026-12-01T09:00:00Z`).
fn literal_word(word: &str, at: usize) -> Result<Tok, String> {
    if word.len() >= 10 && word.as_bytes()[4] == b'-' {
        return parse_datetime(word)
            .map(Tok::DateTime)
            .ok_or_else(|| format!("'{word}' at position {at} is not a valid date-time."));
    }
    let numeric = word.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    match word.parse::<f64>() {
        Ok(n) if numeric && n.is_finite() => Ok(Tok::Num(n)),
        _ => Err(format!("'{word}' at position {at} is not a valid number or date-time.")),
    }
}

// ---------------------------------------------------------------------------------------------
// AST and parser

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn from_word(w: &str) -> Option<CmpOp> {
        Some(match w.to_ascii_lowercase().as_str() {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "Equal",
            CmpOp::Ne => "NotEqual",
            CmpOp::Gt => "GreaterThan",
            CmpOp::Ge => "GreaterThanOrEqual",
            CmpOp::Lt => "LessThan",
            CmpOp::Le => "LessThanOrEqual",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrFn {
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    DateTime(OffsetDateTime),
}

/// A property reference: from the object (`var` = None) or from a lambda variable.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRef {
    pub var: Option<String>,
    pub segments: Vec<String>,
    pub ty: PropType,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(PathRef),
    Lit(Literal),
}

impl Operand {
    fn ty(&self) -> Option<PropType> {
        match self {
            Operand::Path(p) => Some(p.ty),
            Operand::Lit(Literal::Str(_)) => Some(PropType::String),
            Operand::Lit(Literal::Num(_)) => Some(PropType::Number),
            Operand::Lit(Literal::Bool(_)) => Some(PropType::Bool),
            Operand::Lit(Literal::DateTime(_)) => Some(PropType::DateTime),
            Operand::Lit(Literal::Null) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(CmpOp, Operand, Operand),
    Str(StrFn, Operand, Operand),
    /// `path/any(v: body)` (`all` when `all`); `path/any()` without a body.
    Lambda {
        all: bool,
        path: PathRef,
        var: String,
        body: Option<Box<Expr>>,
    },
    /// A bare operand: a Boolean property or literal.
    Value(Operand),
}

impl Expr {
    fn is_boolean(&self) -> bool {
        match self {
            Expr::Value(o) => o.ty() == Some(PropType::Bool),
            _ => true,
        }
    }
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    /// Lambda variables in scope and the properties of their elements.
    vars: Vec<(String, &'static [Prop])>,
    spec: &'a ResourceSpec,
}

type PResult<T> = Result<T, String>;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn peek_word(&self) -> Option<String> {
        match self.peek() {
            Some(Tok::Ident(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn here(&self) -> String {
        match self.tokens.get(self.pos) {
            Some(t) => format!("at position {}", t.at),
            None => "at the end of the expression".into(),
        }
    }

    fn expect(&mut self, want: Tok, what: &str) -> PResult<()> {
        if self.peek() == Some(&want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {what} {}.", self.here()))
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("the expression is nested more than {MAX_DEPTH} levels deep."));
        }
        Ok(())
    }

    fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let mut left = self.and()?;
        while self.peek_word().as_deref() == Some("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(self.boolean(left)?), Box::new(self.boolean(right)?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> PResult<Expr> {
        let mut left = self.unary()?;
        while self.peek_word().as_deref() == Some("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(self.boolean(left)?), Box::new(self.boolean(right)?));
        }
        Ok(left)
    }

    fn boolean(&self, e: Expr) -> PResult<Expr> {
        if e.is_boolean() {
            Ok(e)
        } else {
            Err("'and', 'or' and 'not' need conditions on both sides, not values.".into())
        }
    }

    fn unary(&mut self) -> PResult<Expr> {
        if self.peek_word().as_deref() == Some("not") {
            self.pos += 1;
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(self.boolean(inner)?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> PResult<Expr> {
        let left = self.primary()?;
        let Some(op) = self.peek_word().and_then(|w| CmpOp::from_word(&w)) else {
            return Ok(left);
        };
        self.pos += 1;
        let right = self.primary()?;
        let (Expr::Value(l), Expr::Value(r)) = (left, right) else {
            return Err(format!("'{}' compares values, not conditions.", op_word(op)));
        };
        check_comparison(op, l, r)
    }

    fn primary(&mut self) -> PResult<Expr> {
        let Some(tok) = self.tokens.get(self.pos).cloned() else {
            return Err("the expression ends where a value was expected.".into());
        };
        match tok.kind {
            Tok::LParen => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::Str(s) => {
                self.pos += 1;
                Ok(Expr::Value(Operand::Lit(Literal::Str(s))))
            }
            Tok::Num(n) => {
                self.pos += 1;
                Ok(Expr::Value(Operand::Lit(Literal::Num(n))))
            }
            Tok::DateTime(t) => {
                self.pos += 1;
                Ok(Expr::Value(Operand::Lit(Literal::DateTime(t))))
            }
            Tok::Ident(word) => {
                let lower = word.to_ascii_lowercase();
                match lower.as_str() {
                    "true" | "false" => {
                        self.pos += 1;
                        Ok(Expr::Value(Operand::Lit(Literal::Bool(lower == "true"))))
                    }
                    "null" => {
                        self.pos += 1;
                        Ok(Expr::Value(Operand::Lit(Literal::Null)))
                    }
                    "startswith" | "endswith" | "contains"
                        if self.tokens.get(self.pos + 1).map(|t| &t.kind) == Some(&Tok::LParen) =>
                    {
                        self.pos += 2;
                        self.string_function(&lower)
                    }
                    _ if CmpOp::from_word(&lower).is_some() || matches!(lower.as_str(), "and" | "or" | "not") => {
                        Err(format!("expected a property or a value {} but found '{word}'.", self.here()))
                    }
                    _ => self.path_or_lambda(),
                }
            }
            other => Err(format!("unexpected {} at position {}.", other.describe(), tok.at)),
        }
    }

    fn string_function(&mut self, name: &str) -> PResult<Expr> {
        let f = match name {
            "startswith" => StrFn::StartsWith,
            "endswith" => StrFn::EndsWith,
            _ => StrFn::Contains,
        };
        self.enter()?;
        let a = self.operand()?;
        self.expect(Tok::Comma, "',' between the arguments of the function")?;
        let b = self.operand()?;
        self.expect(Tok::RParen, "')' closing the function")?;
        self.depth -= 1;
        for arg in [&a, &b] {
            if arg.ty() != Some(PropType::String) {
                return Err(format!(
                    "{name}() takes two strings; got {}.",
                    arg.ty().map(PropType::edm).unwrap_or("null")
                ));
            }
        }
        Ok(Expr::Str(f, a, b))
    }

    fn operand(&mut self) -> PResult<Operand> {
        match self.primary()? {
            Expr::Value(o) => Ok(o),
            _ => Err(format!("expected a property or a value {}.", self.here())),
        }
    }

    /// `a/b/c`, possibly ending in `/any(v: …)` or `/all(v: …)`.
    fn path_or_lambda(&mut self) -> PResult<Expr> {
        let mut segments = Vec::new();
        loop {
            let Some(Tok::Ident(seg)) = self.peek().cloned() else {
                return Err(format!("expected a property name {}.", self.here()));
            };
            let is_lambda = matches!(seg.to_ascii_lowercase().as_str(), "any" | "all")
                && !segments.is_empty()
                && self.tokens.get(self.pos + 1).map(|t| &t.kind) == Some(&Tok::LParen);
            if is_lambda {
                self.pos += 2;
                let path = self.resolve(&segments)?;
                return self.lambda(seg.eq_ignore_ascii_case("all"), path);
            }
            self.pos += 1;
            segments.push(seg);
            if self.peek() == Some(&Tok::Slash) {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(Expr::Value(Operand::Path(self.resolve(&segments)?)))
    }

    fn resolve(&self, segments: &[String]) -> PResult<PathRef> {
        if let Some((var, props)) = self.vars.iter().rev().find(|(v, _)| *v == segments[0]) {
            if segments.len() == 1 {
                return Err(format!("the lambda variable '{var}' must be followed by a property, as in {var}/name."));
            }
            let rest = segments[1..].join("/");
            let prop = find_prop(props, &rest)
                .ok_or_else(|| format!("could not find a property named '{rest}' on the elements of '{var}'."))?;
            return Ok(PathRef {
                var: Some(var.clone()),
                segments: prop.path.split('/').map(String::from).collect(),
                ty: prop.ty,
            });
        }
        let path = segments.join("/");
        let prop = self.spec.prop(&path).ok_or_else(|| {
            let names: Vec<&str> = self.spec.filter.iter().map(|p| p.path).collect();
            format!(
                "could not find a filterable property named '{path}' on type '{}'. Filterable properties: {}.",
                self.spec.type_name,
                names.join(", ")
            )
        })?;
        Ok(PathRef { var: None, segments: prop.path.split('/').map(String::from).collect(), ty: prop.ty })
    }

    fn lambda(&mut self, all: bool, path: PathRef) -> PResult<Expr> {
        let word = if all { "all" } else { "any" };
        let props: &'static [Prop] = match path.ty {
            PropType::Objects(props) => props,
            PropType::Strings => &[],
            _ => return Err(format!("{word}() applies to collections; '{}' is not one.", path.segments.join("/"))),
        };
        if self.peek() == Some(&Tok::RParen) {
            self.pos += 1;
            if all {
                return Err("all() needs a condition, as in all(a: a/name eq 'x').".into());
            }
            return Ok(Expr::Lambda { all, path, var: String::new(), body: None });
        }
        let Some(Tok::Ident(var)) = self.peek().cloned() else {
            return Err(format!("expected a lambda variable in {word}() {}.", self.here()));
        };
        self.pos += 1;
        self.expect(Tok::Colon, &format!("':' after the lambda variable '{var}'"))?;
        if path.ty == PropType::Strings {
            return Err(format!(
                "{word}() over a collection of strings is not supported on '{}'.",
                path.segments.join("/")
            ));
        }
        self.enter()?;
        self.vars.push((var.clone(), props));
        let body = self.expr();
        self.vars.pop();
        let body = self.boolean(body?)?;
        self.expect(Tok::RParen, &format!("')' closing {word}()"))?;
        self.depth -= 1;
        Ok(Expr::Lambda { all, path, var, body: Some(Box::new(body)) })
    }
}

fn op_word(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "eq",
        CmpOp::Ne => "ne",
        CmpOp::Gt => "gt",
        CmpOp::Ge => "ge",
        CmpOp::Lt => "lt",
        CmpOp::Le => "le",
    }
}

/// Checks operand types and turns date-time strings into date-time literals.
fn check_comparison(op: CmpOp, l: Operand, r: Operand) -> PResult<Expr> {
    let incompatible = |a: Option<PropType>, b: Option<PropType>| {
        format!(
            "A binary operator with incompatible types was detected. Found operand types '{}' and '{}' for operator kind '{}'.",
            a.map(PropType::edm).unwrap_or("null"),
            b.map(PropType::edm).unwrap_or("null"),
            op.name()
        )
    };
    let as_datetime = |o: Operand, other: &Operand| -> PResult<Operand> {
        match (o, other) {
            (Operand::Lit(Literal::Str(s)), Operand::Path(p)) if p.ty == PropType::DateTime => parse_datetime(&s)
                .map(|t| Operand::Lit(Literal::DateTime(t)))
                .ok_or_else(|| format!("'{s}' is not a valid date-time for '{}'.", p.segments.join("/"))),
            (o, _) => Ok(o),
        }
    };
    let l = as_datetime(l, &r)?;
    let r = as_datetime(r, &l)?;
    let (lt, rt) = (l.ty(), r.ty());
    for t in [lt, rt].into_iter().flatten() {
        if matches!(t, PropType::Strings | PropType::Objects(_)) {
            return Err(format!("{} Use any() or all() on collections.", incompatible(lt, rt)));
        }
    }
    match (lt, rt) {
        (None, _) | (_, None) if !matches!(op, CmpOp::Eq | CmpOp::Ne) => {
            Err(format!("null can only be compared with 'eq' or 'ne' (operator kind '{}').", op.name()))
        }
        (Some(a), Some(b)) if a != b => Err(incompatible(lt, rt)),
        _ => Ok(Expr::Cmp(op, l, r)),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// A value found in an object, or a literal.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
    Time(OffsetDateTime),
}

fn lookup<'v>(v: &'v Value, path: &str) -> &'v Value {
    let mut cur = v;
    for seg in path.split('/') {
        cur = cur.get(seg).unwrap_or(&Value::Null);
    }
    cur
}

fn lookup_segments<'v>(v: &'v Value, segments: &[String]) -> &'v Value {
    let mut cur = v;
    for seg in segments {
        cur = cur.get(seg).unwrap_or(&Value::Null);
    }
    cur
}

fn scalar(v: &Value, ty: PropType) -> Scalar {
    match (v, ty) {
        (Value::String(s), PropType::DateTime) => parse_datetime(s).map(Scalar::Time).unwrap_or(Scalar::Null),
        (Value::String(s), _) => Scalar::Str(s.clone()),
        (Value::Number(n), _) => n.as_f64().map(Scalar::Num).unwrap_or(Scalar::Null),
        (Value::Bool(b), _) => Scalar::Bool(*b),
        _ => Scalar::Null,
    }
}

fn compare_scalars(a: &Scalar, b: &Scalar) -> Option<Ordering> {
    match (a, b) {
        (Scalar::Str(x), Scalar::Str(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Scalar::Num(x), Scalar::Num(y)) => x.partial_cmp(y),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(y)),
        (Scalar::Time(x), Scalar::Time(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Order for `$orderby`: nulls first, then by type.
fn compare_values(a: &Value, b: &Value, ty: PropType) -> Ordering {
    match (scalar(a, ty), scalar(b, ty)) {
        (Scalar::Null, Scalar::Null) => Ordering::Equal,
        (Scalar::Null, _) => Ordering::Less,
        (_, Scalar::Null) => Ordering::Greater,
        (x, y) => compare_scalars(&x, &y).unwrap_or(Ordering::Equal),
    }
}

struct Env<'v> {
    root: &'v Value,
    vars: Vec<(&'v str, &'v Value)>,
}

impl<'v> Env<'v> {
    fn value_of(&self, p: &PathRef) -> &'v Value {
        let base = match &p.var {
            Some(var) => self.vars.iter().rev().find(|(v, _)| v == var).map(|(_, v)| *v).unwrap_or(&Value::Null),
            None => self.root,
        };
        lookup_segments(base, &p.segments)
    }

    fn operand(&self, o: &Operand) -> Scalar {
        match o {
            Operand::Path(p) => scalar(self.value_of(p), p.ty),
            Operand::Lit(Literal::Str(s)) => Scalar::Str(s.clone()),
            Operand::Lit(Literal::Num(n)) => Scalar::Num(*n),
            Operand::Lit(Literal::Bool(b)) => Scalar::Bool(*b),
            Operand::Lit(Literal::DateTime(t)) => Scalar::Time(*t),
            Operand::Lit(Literal::Null) => Scalar::Null,
        }
    }
}

impl Expr {
    /// True when `item` satisfies the filter.
    pub fn matches(&self, item: &Value) -> bool {
        self.eval(&mut Env { root: item, vars: Vec::new() })
    }

    fn eval<'v>(&'v self, env: &mut Env<'v>) -> bool {
        match self {
            Expr::Or(a, b) => a.eval(env) || b.eval(env),
            Expr::And(a, b) => a.eval(env) && b.eval(env),
            Expr::Not(a) => !a.eval(env),
            Expr::Value(o) => env.operand(o) == Scalar::Bool(true),
            Expr::Cmp(op, l, r) => {
                let (a, b) = (env.operand(l), env.operand(r));
                match (op, &a, &b) {
                    (CmpOp::Eq, Scalar::Null, _) | (CmpOp::Eq, _, Scalar::Null) => a == b,
                    (CmpOp::Ne, Scalar::Null, _) | (CmpOp::Ne, _, Scalar::Null) => a != b,
                    _ => match compare_scalars(&a, &b) {
                        None => false,
                        Some(ord) => match op {
                            CmpOp::Eq => ord == Ordering::Equal,
                            CmpOp::Ne => ord != Ordering::Equal,
                            CmpOp::Gt => ord == Ordering::Greater,
                            CmpOp::Ge => ord != Ordering::Less,
                            CmpOp::Lt => ord == Ordering::Less,
                            CmpOp::Le => ord != Ordering::Greater,
                        },
                    },
                }
            }
            Expr::Str(f, a, b) => match (env.operand(a), env.operand(b)) {
                (Scalar::Str(x), Scalar::Str(y)) => {
                    let (x, y) = (x.to_lowercase(), y.to_lowercase());
                    match f {
                        StrFn::StartsWith => x.starts_with(&y),
                        StrFn::EndsWith => x.ends_with(&y),
                        StrFn::Contains => x.contains(&y),
                    }
                }
                _ => false,
            },
            Expr::Lambda { all, path, var, body } => {
                let Value::Array(items) = env.value_of(path) else { return false };
                let Some(body) = body else { return !items.is_empty() };
                let mut test = |item: &'v Value| {
                    env.vars.push((var.as_str(), item));
                    let ok = body.eval(env);
                    env.vars.pop();
                    ok
                };
                if *all {
                    items.iter().all(&mut test)
                } else {
                    items.iter().any(&mut test)
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Date-times

/// Parses ISO 8601 date-times as Graph accepts them: `2026-12-01`, `2026-12-01T09:00`,
/// `2026-12-01T09:00:00`, with up to 9 fraction digits, and `Z`, `±hh:mm`, `±hhmm` or no offset
/// (UTC). A space in place of the `+` of an offset is accepted (an unencoded `+` in a URL).
pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    parse_datetime_parts(s).map(|(t, offset)| t.assume_offset(offset.unwrap_or(UtcOffset::UTC)))
}

/// Like [`parse_datetime`], keeping the wall-clock time and the offset (if one was written) apart.
pub fn parse_datetime_parts(s: &str) -> Option<(PrimitiveDateTime, Option<UtcOffset>)> {
    let s = s.trim_start();
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date =
        Date::from_calendar_date(num(0, 4)? as i32, Month::try_from(num(5, 2)? as u8).ok()?, num(8, 2)? as u8).ok()?;
    if b.len() == 10 {
        return Some((PrimitiveDateTime::new(date, Time::MIDNIGHT), None));
    }
    if !matches!(b[10], b'T' | b't') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let (hour, minute) = (num(11, 2)?, num(14, 2)?);
    let mut i = 16;
    let mut second = 0;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b':') {
        second = num(i + 1, 2)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            let digits = end - start;
            if digits == 0 || digits > 9 {
                return None;
            }
            nanos = num(start, digits)? * 10u32.pow(9 - digits as u32);
            i = end;
        }
    }
    let time = Time::from_hms_nano(hour as u8, minute as u8, second as u8, nanos).ok()?;
    let rest = &s[i..];
    let offset = match rest {
        "" => None,
        "Z" | "z" => Some(UtcOffset::UTC),
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' | b' ' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = &rest.as_bytes()[1..];
            let (h, m) = match r.len() {
                5 if r[2] == b':' => (num_slice(&r[0..2])?, num_slice(&r[3..5])?),
                4 => (num_slice(&r[0..2])?, num_slice(&r[2..4])?),
                2 => (num_slice(r)?, 0),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            Some(UtcOffset::from_hms(sign * h as i8, sign * m as i8, 0).ok()?)
        }
    };
    Some((PrimitiveDateTime::new(date, time), offset))
}

fn num_slice(b: &[u8]) -> Option<u32> {
    (!b.is_empty() && b.iter().all(u8::is_ascii_digit)).then(|| std::str::from_utf8(b).ok()?.parse().ok())?
}

/// `2026-12-01T09:00:00.0000000`: a wall-clock time with 7 fraction digits, as in Graph's
/// `dateTimeTimeZone.dateTime`.
pub fn format_wall_clock(t: PrimitiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

/// `2026-12-01T09:00:00.0000000Z`, as Graph's `Edm.DateTimeOffset` values.
pub fn format_utc(t: OffsetDateTime) -> String {
    let u = t.to_offset(UtcOffset::UTC);
    format!("{}Z", format_wall_clock(PrimitiveDateTime::new(u.date(), u.time())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::datetime;

    const ATTENDEE: &[Prop] = &[
        Prop { path: "type", ty: PropType::String },
        Prop { path: "emailAddress/address", ty: PropType::String },
        Prop { path: "emailAddress/name", ty: PropType::String },
    ];
    const PROPS: &[Prop] = &[
        Prop { path: "id", ty: PropType::String },
        Prop { path: "subject", ty: PropType::String },
        Prop { path: "start/dateTime", ty: PropType::DateTime },
        Prop { path: "createdDateTime", ty: PropType::DateTime },
        Prop { path: "isOnlineMeeting", ty: PropType::Bool },
        Prop { path: "size", ty: PropType::Number },
        Prop { path: "categories", ty: PropType::Strings },
        Prop { path: "attendees", ty: PropType::Objects(ATTENDEE) },
    ];
    const SPEC: ResourceSpec = ResourceSpec {
        type_name: "microsoft.graph.event",
        select: &["id", "subject", "start", "attendees", "isOnlineMeeting"],
        filter: PROPS,
        orderby: &["subject", "start/dateTime", "size"],
        default_top: 10,
        max_top: 999,
        skiptoken_paging: false,
    };

    fn item(subject: &str, start: &str, online: bool, size: i64, attendees: &[&str]) -> Value {
        json!({
            "id": subject.to_lowercase(),
            "subject": subject,
            "start": {"dateTime": start, "timeZone": "UTC"},
            "createdDateTime": "2026-01-01T00:00:00.0000000Z",
            "isOnlineMeeting": online,
            "size": size,
            "categories": [],
            "attendees": attendees.iter().map(|a| json!({"type": "required", "emailAddress": {"address": a, "name": a}})).collect::<Vec<_>>(),
        })
    }

    fn items() -> Vec<Value> {
        vec![
            item("Standup", "2026-12-01T09:00:00.0000000", true, 3, &["bob@contoso.test"]),
            item("Review", "2026-12-01T14:00:00.0000000", false, 1, &["carol@contoso.test", "bob@contoso.test"]),
            item("Planning", "2026-12-02T10:30:00.0000000", true, 2, &[]),
            item("O'Brien 1:1", "2026-12-03T08:00:00.0000000", false, 5, &["dan@fabrikam.test"]),
        ]
    }

    fn run(filter: &str) -> Vec<String> {
        let f = parse_filter(filter, &SPEC).unwrap_or_else(|e| panic!("{filter}: {}", e.message));
        items().iter().filter(|v| f.matches(v)).map(|v| v["subject"].as_str().unwrap().to_string()).collect()
    }

    fn error(filter: &str) -> String {
        parse_filter(filter, &SPEC).expect_err(filter).message
    }

    #[test]
    fn comparisons_and_logic() {
        assert_eq!(run("subject eq 'Review'"), ["Review"]);
        assert_eq!(run("subject eq 'review'"), ["Review"], "string comparison ignores case");
        assert_eq!(run("subject ne 'Review'"), ["Standup", "Planning", "O'Brien 1:1"]);
        assert_eq!(run("subject eq 'O''Brien 1:1'"), ["O'Brien 1:1"]);
        assert_eq!(run("size gt 2 and size le 5"), ["Standup", "O'Brien 1:1"]);
        assert_eq!(run("size lt 2 or size ge 5"), ["Review", "O'Brien 1:1"]);
        assert_eq!(run("not (size lt 2 or size ge 5)"), ["Standup", "Planning"]);
        assert_eq!(run("isOnlineMeeting"), ["Standup", "Planning"]);
        assert_eq!(run("isOnlineMeeting eq false and not startswith(subject,'o')"), ["Review"]);
        assert_eq!(run("(((subject eq 'Review')))"), ["Review"]);
        assert_eq!(run("size eq -1 or size eq 1.0"), ["Review"]);
        assert_eq!(run("subject ne null"), ["Standup", "Review", "Planning", "O'Brien 1:1"]);
        assert_eq!(run("true"), ["Standup", "Review", "Planning", "O'Brien 1:1"]);
        // `and` binds tighter than `or`.
        assert_eq!(run("subject eq 'Standup' or subject eq 'Review' and size eq 3"), ["Standup"]);
        assert_eq!(run("SUBJECT EQ 'Review'"), ["Review"]);
    }

    #[test]
    fn string_functions() {
        assert_eq!(run("startswith(subject,'Pla')"), ["Planning"]);
        assert_eq!(run("endswith(subject, 'UP')"), ["Standup"]);
        assert_eq!(run("contains(subject,'e')"), ["Review", "O'Brien 1:1"]);
        assert_eq!(run("startswith('abc', 'a')").len(), 4);
    }

    #[test]
    fn date_times() {
        assert_eq!(run("start/dateTime ge '2026-12-01T14:00:00'"), ["Review", "Planning", "O'Brien 1:1"]);
        assert_eq!(run("start/dateTime le '2026-12-01T14:00:00Z'"), ["Standup", "Review"]);
        assert_eq!(run("start/dateTime gt 2026-12-02T00:00:00Z"), ["Planning", "O'Brien 1:1"]);
        assert_eq!(run("start/dateTime le '2026-12-01T15:00:00+01:00'"), ["Standup", "Review"]);
        assert_eq!(run("start/dateTime eq '2026-12-02T10:30:00.0000000'"), ["Planning"]);
        assert_eq!(run("start/dateTime ge '2026-12-02' and start/dateTime lt '2026-12-03'"), ["Planning"]);
        assert_eq!(run("createdDateTime lt 2026-06-01T00:00:00Z").len(), 4);
        assert!(error("start/dateTime ge 'tomorrow'").contains("not a valid date-time for 'start/dateTime'"));
        assert!(error("start/dateTime ge 2026-13-01T00:00:00Z").contains("not a valid date-time"));
    }

    #[test]
    fn lambdas() {
        assert_eq!(run("attendees/any(a: a/emailAddress/address eq 'bob@contoso.test')"), ["Standup", "Review"]);
        assert_eq!(run("attendees/any()"), ["Standup", "Review", "O'Brien 1:1"]);
        assert_eq!(
            run("attendees/all(a: endswith(a/emailAddress/address, '@contoso.test'))"),
            ["Standup", "Review", "Planning"]
        );
        assert_eq!(run("not attendees/any()"), ["Planning"]);
        assert!(error("attendees/any(a: a/nope eq 'x')").contains("'nope'"));
        assert!(error("attendees/any(a: b/type eq 'x')").contains("'b/type'"));
        assert!(error("subject/any(a: a/x eq 1)").contains("applies to collections"));
        assert!(error("attendees eq 'x'").contains("any() or all()"));
    }

    #[test]
    fn clear_errors() {
        assert!(error("nope eq 'x'").contains("'nope'"), "{}", error("nope eq 'x'"));
        assert!(error("subject eq").contains("ends where a value was expected"));
        assert!(error("subject eq 'x").contains("not closed"));
        assert!(error("subject eq 5").contains("incompatible types"));
        assert!(error("subject eq 5").contains("Edm.String"));
        assert!(error("size gt null").contains("null"));
        assert!(error("subject").contains("must be a condition"));
        assert!(error("(subject eq 'x'").contains("expected ')'"));
        assert!(error("subject eq 'x')").contains("unexpected ')'"));
        assert!(error("subject eq 'x' and").contains("ends where"));
        assert!(error("subject # 'x'").contains("unexpected character '#'"));
        assert!(error("startswith(subject, 5)").contains("two strings"));
        assert!(error("size and subject eq 'x'").contains("conditions"));
        assert!(error(&"(".repeat(100)).contains("nested"));
        assert!(error(&format!("subject eq '{}'", "x".repeat(5000))).contains("longer than"));
        assert!(error("subject eq 'x' eq 'y'").contains("unexpected"));
        assert!(error("").contains("ends where"));
    }

    fn opts(q: &str) -> Result<QueryOptions, String> {
        QueryOptions::parse(Some(q), &SPEC).map_err(|e| e.message)
    }

    #[test]
    fn query_options() {
        let o = opts("$select=Subject,start&$top=2&$orderby=size desc&$count=true").unwrap();
        assert_eq!(o.select, Some(vec!["subject", "start"]));
        assert_eq!(o.top, 2);
        assert_eq!(o.orderby, vec![OrderBy { path: "size", ty: PropType::Number, direction: Direction::Desc }]);
        assert!(o.count);
        assert_eq!(opts("").unwrap().top, 10);
        assert_eq!(opts("startDateTime=x&foo=bar").unwrap().top, 10, "endpoint parameters are not OData options");

        assert!(opts("$select=nope").unwrap_err().contains("Could not find a property named 'nope'"));
        assert!(opts("$top=0").unwrap_err().contains("between 1 and 999"));
        assert!(opts("$top=1000").unwrap_err().contains("between 1 and 999"));
        assert!(opts("$top=abc").unwrap_err().contains("'abc'"));
        assert!(opts("$skip=-1").unwrap_err().contains("$skip"));
        assert!(opts("$orderby=body").unwrap_err().contains("'body' cannot be used in '$orderby'"));
        assert!(opts("$orderby=subject sideways").unwrap_err().contains("'sideways'"));
        assert!(opts("$expand=attachments").unwrap_err().contains("'$expand' is not supported"));
        assert!(opts("$foo=1").unwrap_err().contains("'$foo'"));
        assert!(opts("$top=1&$top=2").unwrap_err().contains("more than once"));
        assert!(opts("$count=maybe").unwrap_err().contains("$count"));
        assert!(opts("$skiptoken=garbage!").unwrap_err().contains("$skiptoken"));
        assert!(opts("$filter=subject eq").unwrap_err().starts_with("Invalid filter clause"));
    }

    #[test]
    fn ordering_and_paging() {
        let o = opts("$orderby=subject&$top=3").unwrap();
        let page = o.apply(items());
        let subjects: Vec<_> = page.items.iter().map(|v| v["subject"].as_str().unwrap()).collect();
        assert_eq!(subjects, ["O'Brien 1:1", "Planning", "Review"]);
        assert_eq!((page.total, page.next_skip), (4, Some(3)));
        let link = o.next_link("https://localhost:8443", "/v1.0/me/events", 3);
        assert_eq!(link, "https://localhost:8443/v1.0/me/events?$orderby=subject&$top=3&$skip=3");
        let o2 = opts("$orderby=subject&$top=3&$skip=3").unwrap();
        let page2 = o2.apply(items());
        assert_eq!(page2.items.len(), 1);
        assert_eq!(page2.next_skip, None);

        let desc = opts("$orderby=start/dateTime desc").unwrap().apply(items());
        assert_eq!(desc.items[0]["subject"], "O'Brien 1:1");
        let multi = opts("$orderby=isOnlineMeeting desc, size");
        assert!(multi.is_err(), "isOnlineMeeting is not sortable in this spec");

        // Skip tokens round-trip, and filter values with spaces and quotes survive the link.
        let spec = ResourceSpec { skiptoken_paging: true, ..SPEC };
        let o = QueryOptions::parse(Some("$filter=subject%20eq%20'a%2Bb'&$top=1"), &spec).unwrap();
        let link = o.next_link("https://h", "/v1.0/x", 7);
        let query = link.split_once('?').unwrap().1;
        let again = QueryOptions::parse(Some(query), &spec).unwrap();
        assert_eq!(again.skip, 7);
        assert_eq!(again.filter, o.filter);
        assert!(link.contains("$filter=subject%20eq%20'a%2Bb'"), "{link}");
    }

    #[test]
    fn select_projection_and_context() {
        let o = opts("$select=subject").unwrap();
        let v = o.project(json!({"@odata.etag": "e", "id": "1", "subject": "s", "body": "b"}));
        assert_eq!(v, json!({"@odata.etag": "e", "id": "1", "subject": "s"}));
        assert_eq!(o.context("https://h", "users('u')/events"), "https://h/v1.0/$metadata#users('u')/events(subject)");
        assert_eq!(opts("").unwrap().context("https://h", "users/$entity"), "https://h/v1.0/$metadata#users/$entity");
        assert_eq!(opts("$select=*").unwrap().select.unwrap().len(), SPEC.select.len());
    }

    #[test]
    fn datetime_parsing_and_formatting() {
        assert_eq!(parse_datetime("2026-12-01T09:00:00Z"), Some(datetime!(2026-12-01 09:00 UTC)));
        assert_eq!(parse_datetime("2026-12-01T09:00:00"), Some(datetime!(2026-12-01 09:00 UTC)));
        assert_eq!(parse_datetime("2026-12-01T09:00"), Some(datetime!(2026-12-01 09:00 UTC)));
        assert_eq!(parse_datetime("2026-12-01"), Some(datetime!(2026-12-01 00:00 UTC)));
        assert_eq!(parse_datetime("2026-12-01T09:00:00.1234567"), Some(datetime!(2026-12-01 09:00:00.1234567 UTC)));
        assert_eq!(parse_datetime("2026-12-01T10:00:00+01:00"), Some(datetime!(2026-12-01 09:00 UTC)));
        assert_eq!(parse_datetime("2026-12-01T10:00:00 01:00"), Some(datetime!(2026-12-01 09:00 UTC)));
        assert_eq!(parse_datetime("2026-12-01T01:00:00-0800"), Some(datetime!(2026-12-01 09:00 UTC)));
        for bad in [
            "",
            "2026",
            "2026-12-01T",
            "2026-12-01T9:00",
            "2026-02-30T00:00:00",
            "2026-12-01T24:00:00",
            "2026-12-01T09:00:00X",
            "2026-12-01T09:00:00.",
            "2026-12-01T09:00:00+25:00",
            "２０２６-12-01",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(format_utc(datetime!(2026-12-01 10:00:00.5 +01:00)), "2026-12-01T09:00:00.5000000Z");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_filters_never_panic(text in "\\PC{0,120}") {
            if let Ok(f) = parse_filter(&text, &SPEC) {
                for v in items() {
                    let _ = f.matches(&v);
                }
            }
        }

        #[test]
        fn filter_shaped_input_never_panics(
            parts in proptest::collection::vec(prop_oneof![
                Just("subject"), Just("start/dateTime"), Just("attendees"), Just("size"), Just("isOnlineMeeting"),
                Just("a/emailAddress/address"), Just("/any("), Just("/all("), Just("a:"), Just("eq"), Just("ne"),
                Just("gt"), Just("le"), Just("and"), Just("or"), Just("not"), Just("("), Just(")"), Just(","),
                Just("'x'"), Just("'2026-12-01T09:00:00'"), Just("2026-12-01T09:00:00Z"), Just("3"), Just("-1.5"),
                Just("true"), Just("null"), Just("startswith("), Just("contains("), Just("''''"), Just("'"),
            ], 0..24)
        ) {
            let text = parts.join(" ");
            if let Ok(f) = parse_filter(&text, &SPEC) {
                for v in items() {
                    let _ = f.matches(&v);
                }
            }
        }

        #[test]
        fn arbitrary_query_strings_never_panic(q in "[$a-zA-Z=&%0-9 ',()/:.+-]{0,80}") {
            if let Ok(o) = QueryOptions::parse(Some(&q), &SPEC) {
                let page = o.apply(items());
                if let Some(skip) = page.next_skip {
                    let _ = o.next_link("https://h", "/v1.0/me/events", skip);
                }
            }
        }

        #[test]
        fn datetime_parser_never_panics(s in "\\PC{0,40}") {
            let _ = parse_datetime(&s);
        }
    }
}
