//! Nomad's parse-time evaluation of HCL 2 expressions: variables, locals, operators, a
//! function library, `for` expressions. Any other root (`NOMAD_*`, `attr.*`, `meta.*`,
//! `node.*`, `env[...]`, unknown names) is kept as its literal source text wrapped in `${...}`,
//! as Nomad's HCL fork does, because the Nomad client resolves it at run time.

use hcl_edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl_edit::template::{Element, Template};
use hcl_edit::Span as _;
use std::collections::BTreeMap;
use std::ops::Range;

/// An evaluated value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Object(BTreeMap<String, Value>),
    /// A run-time reference, kept as the text Nomad would keep (`${attr.x}`).
    Unknown(String),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Object(_) => "object",
            Value::Unknown(_) => "run-time value",
        }
    }

    /// The value as template text.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::String(s) | Value::Unknown(s) => Some(s.clone()),
            Value::Number(n) => Some(number_text(*n)),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => (*n as i64).into(),
            Value::Number(n) => serde_json::Number::from_f64(*n)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) | Value::Unknown(s) => s.clone().into(),
            Value::List(l) => l.iter().map(Value::to_json).collect(),
            Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
        }
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// An evaluation failure at a byte range of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub range: Range<usize>,
    pub message: String,
    pub help: String,
}

pub type EvalResult = Result<Value, EvalError>;

/// Names in scope.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub vars: BTreeMap<String, Value>,
    pub locals: BTreeMap<String, Value>,
    /// `for` and `dynamic` iterator variables.
    pub iterators: BTreeMap<String, Value>,
}

pub struct Evaluator<'s> {
    pub source: &'s str,
    pub scope: Scope,
}

fn range_of(e: &Expression) -> Range<usize> {
    e.span().unwrap_or(0..0)
}

fn err(range: Range<usize>, message: impl Into<String>, help: impl Into<String>) -> EvalError {
    EvalError {
        range,
        message: message.into(),
        help: help.into(),
    }
}

impl Evaluator<'_> {
    fn text(&self, r: &Range<usize>) -> &str {
        self.source.get(r.clone()).unwrap_or("")
    }

    /// The literal `${...}` text Nomad keeps for a run-time reference.
    fn unknown(&self, e: &Expression) -> Value {
        Value::Unknown(format!("${{{}}}", self.text(&range_of(e)).trim()))
    }

    pub fn eval(&self, e: &Expression) -> EvalResult {
        match e {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => Ok(Value::Number(n.value().as_f64().unwrap_or(0.0))),
            Expression::String(s) => Ok(Value::String(s.value().clone())),
            Expression::Array(a) => a
                .iter()
                .map(|x| self.eval(x))
                .collect::<Result<_, _>>()
                .map(Value::List),
            Expression::Object(o) => {
                let mut out = BTreeMap::new();
                for (k, v) in o.iter() {
                    let key = match k {
                        ObjectKey::Ident(i) => i.value().as_str().to_owned(),
                        ObjectKey::Expression(x) => match self.eval(x)? {
                            Value::String(s) => s,
                            other => other.to_text().unwrap_or_default(),
                        },
                    };
                    out.insert(key, self.eval(v.expr())?);
                }
                Ok(Value::Object(out))
            }
            Expression::StringTemplate(t) => self.template(t),
            Expression::HeredocTemplate(h) => {
                let mut s = match self.template(&h.template)? {
                    Value::String(s) | Value::Unknown(s) => s,
                    other => other.to_text().unwrap_or_default(),
                };
                if let Some(indent) = h.indent() {
                    s = s
                        .split_inclusive('\n')
                        .map(|l| {
                            l.get(indent.min(l.len() - l.trim_start().len())..)
                                .unwrap_or(l)
                        })
                        .collect();
                }
                Ok(Value::String(s))
            }
            Expression::Parenthesis(p) => self.eval(p.inner()),
            Expression::Variable(v) => {
                let name = v.value().as_str();
                match self.scope.iterators.get(name) {
                    Some(val) => Ok(val.clone()),
                    None => Ok(self.unknown(e)),
                }
            }
            Expression::Traversal(t) => self.traversal(e, &t.expr, &t.operators),
            Expression::FuncCall(f) => {
                let name = f.name.name.value().as_str();
                let args: Vec<Value> = f
                    .args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<_, _>>()?;
                // Run-time arguments make the whole call run-time, as in Nomad.
                if args.iter().any(|a| matches!(a, Value::Unknown(_))) {
                    return Ok(self.unknown(e));
                }
                crate::functions::call(name, args).map_err(|m| err(range_of(e), m.0, m.1))
            }
            Expression::Conditional(c) => match self.eval(&c.cond_expr)? {
                Value::Bool(true) => self.eval(&c.true_expr),
                Value::Bool(false) => self.eval(&c.false_expr),
                Value::Unknown(_) => Ok(self.unknown(e)),
                other => Err(err(
                    range_of(&c.cond_expr),
                    format!("the condition is a {}, not a bool", other.type_name()),
                    "a condition must be true or false",
                )),
            },
            Expression::UnaryOp(u) => {
                let v = self.eval(&u.expr)?;
                match (u.operator.value(), v) {
                    (_, Value::Unknown(_)) => Ok(self.unknown(e)),
                    (UnaryOperator::Neg, Value::Number(n)) => Ok(Value::Number(-n)),
                    (UnaryOperator::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
                    (op, v) => Err(err(
                        range_of(e),
                        format!("operator {op:?} cannot apply to a {}", v.type_name()),
                        "check the operand's type",
                    )),
                }
            }
            Expression::BinaryOp(b) => {
                let l = self.eval(&b.lhs_expr)?;
                let r = self.eval(&b.rhs_expr)?;
                if matches!(l, Value::Unknown(_)) || matches!(r, Value::Unknown(_)) {
                    return Ok(self.unknown(e));
                }
                binary(*b.operator.value(), l, r)
                    .map_err(|m| err(range_of(e), m, "check the operands' types"))
            }
            Expression::ForExpr(f) => {
                let coll = self.eval(&f.intro.collection_expr)?;
                let items: Vec<(Value, Value)> = match coll {
                    Value::List(l) => l
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::Number(i as f64), v))
                        .collect(),
                    Value::Object(o) => o.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
                    Value::Unknown(_) => return Ok(self.unknown(e)),
                    other => {
                        return Err(err(
                            range_of(&f.intro.collection_expr),
                            format!("cannot iterate over a {}", other.type_name()),
                            "for expressions iterate over lists and objects",
                        ))
                    }
                };
                let mut list = Vec::new();
                let mut obj = BTreeMap::new();
                for (k, v) in items {
                    let mut inner = Evaluator {
                        source: self.source,
                        scope: self.scope.clone(),
                    };
                    if let Some(kv) = &f.intro.key_var {
                        inner
                            .scope
                            .iterators
                            .insert(kv.value().as_str().to_owned(), k);
                    }
                    inner
                        .scope
                        .iterators
                        .insert(f.intro.value_var.value().as_str().to_owned(), v);
                    if let Some(cond) = &f.cond {
                        if inner.eval(&cond.expr)? != Value::Bool(true) {
                            continue;
                        }
                    }
                    let value = inner.eval(&f.value_expr)?;
                    match &f.key_expr {
                        Some(ke) => {
                            let key = inner.eval(ke)?.to_text().unwrap_or_default();
                            obj.insert(key, value);
                        }
                        None => list.push(value),
                    }
                }
                Ok(if f.key_expr.is_some() {
                    Value::Object(obj)
                } else {
                    Value::List(list)
                })
            }
        }
    }

    fn template(&self, t: &Template) -> EvalResult {
        let mut out = String::new();
        let mut unknown = false;
        for el in t.iter() {
            match el {
                Element::Literal(s) => out.push_str(s.value()),
                Element::Interpolation(i) => {
                    let v = self.eval(&i.expr)?;
                    if matches!(v, Value::Unknown(_)) {
                        unknown = true;
                    }
                    match v.to_text() {
                        Some(s) => out.push_str(&s),
                        None => {
                            return Err(err(
                                range_of(&i.expr),
                                format!("a {} cannot be interpolated into a string", v.type_name()),
                                "interpolate strings, numbers or bools",
                            ))
                        }
                    }
                }
                Element::Directive(d) => {
                    let r = d.span().unwrap_or(0..0);
                    return Err(err(
                        r,
                        "template directives are not supported",
                        "compute the value with a conditional or a for expression",
                    ));
                }
            }
        }
        // A string that embeds a run-time reference is still text with that reference in it.
        let _ = unknown;
        Ok(Value::String(out))
    }

    fn traversal(
        &self,
        whole: &Expression,
        root: &Expression,
        ops: &[hcl_edit::Decorated<TraversalOperator>],
    ) -> EvalResult {
        // var.x and local.x are resolved; iterator variables too; anything else is run-time.
        let mut value = match root {
            Expression::Variable(v) => {
                let name = v.value().as_str();
                match (name, ops.first().map(|o| o.value())) {
                    ("var", Some(TraversalOperator::GetAttr(a))) => {
                        let n = a.value().as_str();
                        match self.scope.vars.get(n) {
                            Some(v) => v.clone(),
                            None => {
                                return Err(err(
                                    range_of(whole),
                                    format!("Unset variable \"{n}\""),
                                    format!("declare `variable \"{n}\"` with a default, or pass --var {n}=..."),
                                ))
                            }
                        }
                    }
                    ("local", Some(TraversalOperator::GetAttr(a))) => {
                        let n = a.value().as_str();
                        match self.scope.locals.get(n) {
                            Some(v) => v.clone(),
                            None => {
                                return Err(err(
                                    range_of(whole),
                                    format!("unknown local \"{n}\""),
                                    "declare it in a `locals` block",
                                ))
                            }
                        }
                    }
                    _ if self.scope.iterators.contains_key(name) => {
                        return self.apply_ops(whole, self.scope.iterators[name].clone(), ops)
                    }
                    _ => return Ok(self.unknown(whole)),
                }
            }
            other => self.eval(other)?,
        };
        if matches!(root, Expression::Variable(v) if matches!(v.value().as_str(), "var" | "local"))
        {
            value = self.apply_ops(whole, value, &ops[1..])?;
            return Ok(value);
        }
        self.apply_ops(whole, value, ops)
    }

    fn apply_ops(
        &self,
        whole: &Expression,
        mut value: Value,
        ops: &[hcl_edit::Decorated<TraversalOperator>],
    ) -> EvalResult {
        for op in ops {
            if matches!(value, Value::Unknown(_)) {
                return Ok(self.unknown(whole));
            }
            value = match op.value() {
                TraversalOperator::GetAttr(a) => match value {
                    Value::Object(mut o) => o.remove(a.value().as_str()).ok_or_else(|| {
                        err(
                            range_of(whole),
                            format!("no attribute \"{}\"", a.value().as_str()),
                            "check the object's keys",
                        )
                    })?,
                    other => {
                        return Err(err(
                            range_of(whole),
                            format!("a {} has no attributes", other.type_name()),
                            "attributes exist on objects",
                        ))
                    }
                },
                TraversalOperator::Index(i) => {
                    let idx = self.eval(i)?;
                    index(value, &idx).map_err(|m| err(range_of(whole), m, "check the index"))?
                }
                TraversalOperator::LegacyIndex(i) => {
                    index(value, &Value::Number(*i.value() as f64))
                        .map_err(|m| err(range_of(whole), m, "check the index"))?
                }
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    return Err(err(
                        range_of(whole),
                        "splat expressions are not supported",
                        "use a for expression",
                    ))
                }
            };
        }
        Ok(value)
    }
}

fn index(value: Value, idx: &Value) -> Result<Value, String> {
    match (value, idx) {
        (Value::List(l), Value::Number(n)) => l
            .get(*n as usize)
            .cloned()
            .ok_or_else(|| format!("index {} out of range", number_text(*n))),
        (Value::Object(mut o), Value::String(k)) => {
            o.remove(k).ok_or_else(|| format!("no key \"{k}\""))
        }
        (v, i) => Err(format!(
            "cannot index a {} with a {}",
            v.type_name(),
            i.type_name()
        )),
    }
}

fn binary(op: BinaryOperator, l: Value, r: Value) -> Result<Value, String> {
    use BinaryOperator::*;
    Ok(match (op, l, r) {
        (Eq, a, b) => Value::Bool(a == b),
        (NotEq, a, b) => Value::Bool(a != b),
        (And, Value::Bool(a), Value::Bool(b)) => Value::Bool(a && b),
        (Or, Value::Bool(a), Value::Bool(b)) => Value::Bool(a || b),
        (op, a, b) => {
            let n = |v: &Value| match v {
                Value::Number(n) => Some(*n),
                Value::String(s) => s.parse().ok(),
                _ => None,
            };
            let (Some(x), Some(y)) = (n(&a), n(&b)) else {
                return Err(format!(
                    "operator cannot apply to a {} and a {}",
                    a.type_name(),
                    b.type_name()
                ));
            };
            match op {
                Plus => Value::Number(x + y),
                Minus => Value::Number(x - y),
                Mul => Value::Number(x * y),
                Div if y == 0.0 => return Err("division by zero".into()),
                Div => Value::Number(x / y),
                Mod if y == 0.0 => return Err("division by zero".into()),
                Mod => Value::Number(x % y),
                Less => Value::Bool(x < y),
                LessEq => Value::Bool(x <= y),
                Greater => Value::Bool(x > y),
                GreaterEq => Value::Bool(x >= y),
                _ => return Err("operator cannot apply to numbers".into()),
            }
        }
    })
}
