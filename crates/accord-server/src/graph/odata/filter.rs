//! The `$filter` syntax tree and its parser, which type-checks every comparison against the
//! resource's properties.

use super::*;

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
    pub(super) fn from_word(w: &str) -> Option<CmpOp> {
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

    pub(super) fn name(self) -> &'static str {
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
    pub(super) fn ty(&self) -> Option<PropType> {
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
    pub(super) fn is_boolean(&self) -> bool {
        match self {
            Expr::Value(o) => o.ty() == Some(PropType::Bool),
            _ => true,
        }
    }
}

pub(super) struct Parser<'a> {
    pub(super) tokens: Vec<Token>,
    pub(super) pos: usize,
    pub(super) depth: usize,
    /// Lambda variables in scope and the properties of their elements.
    pub(super) vars: Vec<(String, &'static [Prop])>,
    pub(super) spec: &'a ResourceSpec,
}

pub(super) type PResult<T> = Result<T, String>;

impl Parser<'_> {
    pub(super) fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    pub(super) fn peek_word(&self) -> Option<String> {
        match self.peek() {
            Some(Tok::Ident(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    pub(super) fn here(&self) -> String {
        match self.tokens.get(self.pos) {
            Some(t) => format!("at position {}", t.at),
            None => "at the end of the expression".into(),
        }
    }

    pub(super) fn expect(&mut self, want: Tok, what: &str) -> PResult<()> {
        if self.peek() == Some(&want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {what} {}.", self.here()))
        }
    }

    pub(super) fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("the expression is nested more than {MAX_DEPTH} levels deep."));
        }
        Ok(())
    }

    pub(super) fn expr(&mut self) -> PResult<Expr> {
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

    pub(super) fn and(&mut self) -> PResult<Expr> {
        let mut left = self.unary()?;
        while self.peek_word().as_deref() == Some("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(self.boolean(left)?), Box::new(self.boolean(right)?));
        }
        Ok(left)
    }

    pub(super) fn boolean(&self, e: Expr) -> PResult<Expr> {
        if e.is_boolean() {
            Ok(e)
        } else {
            Err("'and', 'or' and 'not' need conditions on both sides, not values.".into())
        }
    }

    pub(super) fn unary(&mut self) -> PResult<Expr> {
        if self.peek_word().as_deref() == Some("not") {
            self.pos += 1;
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(self.boolean(inner)?)));
        }
        self.comparison()
    }

    pub(super) fn comparison(&mut self) -> PResult<Expr> {
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

    pub(super) fn primary(&mut self) -> PResult<Expr> {
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

    pub(super) fn string_function(&mut self, name: &str) -> PResult<Expr> {
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

    pub(super) fn operand(&mut self) -> PResult<Operand> {
        match self.primary()? {
            Expr::Value(o) => Ok(o),
            _ => Err(format!("expected a property or a value {}.", self.here())),
        }
    }

    /// `a/b/c`, possibly ending in `/any(v: …)` or `/all(v: …)`.
    pub(super) fn path_or_lambda(&mut self) -> PResult<Expr> {
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

    pub(super) fn resolve(&self, segments: &[String]) -> PResult<PathRef> {
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

    pub(super) fn lambda(&mut self, all: bool, path: PathRef) -> PResult<Expr> {
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

pub(super) fn op_word(op: CmpOp) -> &'static str {
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
pub(super) fn check_comparison(op: CmpOp, l: Operand, r: Operand) -> PResult<Expr> {
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
