//! Evaluating a parsed `$filter` over the JSON objects an endpoint would return.

use super::*;

/// A value found in an object, or a literal.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
    Time(OffsetDateTime),
}

pub(super) fn lookup<'v>(v: &'v Value, path: &str) -> &'v Value {
    let mut cur = v;
    for seg in path.split('/') {
        cur = cur.get(seg).unwrap_or(&Value::Null);
    }
    cur
}

pub(super) fn lookup_segments<'v>(v: &'v Value, segments: &[String]) -> &'v Value {
    let mut cur = v;
    for seg in segments {
        cur = cur.get(seg).unwrap_or(&Value::Null);
    }
    cur
}

pub(super) fn scalar(v: &Value, ty: PropType) -> Scalar {
    match (v, ty) {
        (Value::String(s), PropType::DateTime) => parse_datetime(s).map(Scalar::Time).unwrap_or(Scalar::Null),
        (Value::String(s), _) => Scalar::Str(s.clone()),
        (Value::Number(n), _) => n.as_f64().map(Scalar::Num).unwrap_or(Scalar::Null),
        (Value::Bool(b), _) => Scalar::Bool(*b),
        _ => Scalar::Null,
    }
}

pub(super) fn compare_scalars(a: &Scalar, b: &Scalar) -> Option<Ordering> {
    match (a, b) {
        (Scalar::Str(x), Scalar::Str(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Scalar::Num(x), Scalar::Num(y)) => x.partial_cmp(y),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(y)),
        (Scalar::Time(x), Scalar::Time(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Order for `$orderby`: nulls first, then by type.
pub(super) fn compare_values(a: &Value, b: &Value, ty: PropType) -> Ordering {
    match (scalar(a, ty), scalar(b, ty)) {
        (Scalar::Null, Scalar::Null) => Ordering::Equal,
        (Scalar::Null, _) => Ordering::Less,
        (_, Scalar::Null) => Ordering::Greater,
        (x, y) => compare_scalars(&x, &y).unwrap_or(Ordering::Equal),
    }
}

pub(super) struct Env<'v> {
    pub(super) root: &'v Value,
    pub(super) vars: Vec<(&'v str, &'v Value)>,
}

impl<'v> Env<'v> {
    pub(super) fn value_of(&self, p: &PathRef) -> &'v Value {
        let base = match &p.var {
            Some(var) => self.vars.iter().rev().find(|(v, _)| v == var).map(|(_, v)| *v).unwrap_or(&Value::Null),
            None => self.root,
        };
        lookup_segments(base, &p.segments)
    }

    pub(super) fn operand(&self, o: &Operand) -> Scalar {
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

    pub(super) fn eval<'v>(&'v self, env: &mut Env<'v>) -> bool {
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
