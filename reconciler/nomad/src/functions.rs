//! The subset of Nomad's HCL function library that job files use for names, ports and lists.

use crate::eval::Value;
use std::collections::BTreeMap;

/// A failure: message and help.
pub struct FnError(pub String, pub String);

fn bad(name: &str, why: impl Into<String>) -> FnError {
    FnError(
        format!("{name}(): {}", why.into()),
        format!("see the documentation of {name}()"),
    )
}

fn text(name: &str, v: &Value) -> Result<String, FnError> {
    v.to_text().ok_or_else(|| {
        bad(
            name,
            format!("expected a string, found a {}", v.type_name()),
        )
    })
}

fn num(name: &str, v: &Value) -> Result<f64, FnError> {
    match v {
        Value::Number(n) => Ok(*n),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| bad(name, format!("\"{s}\" is not a number"))),
        other => Err(bad(
            name,
            format!("expected a number, found a {}", other.type_name()),
        )),
    }
}

fn arity(name: &str, args: &[Value], min: usize, max: usize) -> Result<(), FnError> {
    if args.len() < min || args.len() > max {
        return Err(bad(
            name,
            format!("takes {min}..={max} arguments, got {}", args.len()),
        ));
    }
    Ok(())
}

pub const NAMES: &[&str] = &[
    "lower",
    "upper",
    "title",
    "format",
    "join",
    "split",
    "concat",
    "lookup",
    "element",
    "length",
    "merge",
    "keys",
    "values",
    "contains",
    "coalesce",
    "tostring",
    "tonumber",
    "replace",
    "trimspace",
    "substr",
    "min",
    "max",
    "range",
    "distinct",
    "flatten",
    "compact",
    "abs",
];

// One arm per HCL function, each a few lines: a dispatch table reads best as one match.
#[allow(clippy::too_many_lines)]
pub fn call(name: &str, args: Vec<Value>) -> Result<Value, FnError> {
    Ok(match name {
        "lower" => {
            arity(name, &args, 1, 1)?;
            Value::String(text(name, &args[0])?.to_lowercase())
        }
        "upper" => {
            arity(name, &args, 1, 1)?;
            Value::String(text(name, &args[0])?.to_uppercase())
        }
        "title" => {
            arity(name, &args, 1, 1)?;
            let s = text(name, &args[0])?;
            let mut out = String::new();
            let mut start = true;
            for c in s.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = c.is_whitespace();
            }
            Value::String(out)
        }
        "trimspace" => {
            arity(name, &args, 1, 1)?;
            Value::String(text(name, &args[0])?.trim().to_owned())
        }
        "tostring" => {
            arity(name, &args, 1, 1)?;
            Value::String(text(name, &args[0])?)
        }
        "tonumber" => {
            arity(name, &args, 1, 1)?;
            Value::Number(num(name, &args[0])?)
        }
        "abs" => {
            arity(name, &args, 1, 1)?;
            Value::Number(num(name, &args[0])?.abs())
        }
        "format" => {
            if args.is_empty() {
                return Err(bad(name, "needs a format string"));
            }
            let spec = text(name, &args[0])?;
            let mut out = String::new();
            let mut rest = args[1..].iter();
            let mut chars = spec.chars().peekable();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('s' | 'd' | 'v') => {
                        let v = rest
                            .next()
                            .ok_or_else(|| bad(name, "too few arguments for the format"))?;
                        out.push_str(&text(name, v)?);
                    }
                    other => {
                        return Err(bad(
                            name,
                            format!("unsupported verb %{}", other.unwrap_or(' ')),
                        ))
                    }
                }
            }
            Value::String(out)
        }
        "join" => {
            arity(name, &args, 2, 2)?;
            let sep = text(name, &args[0])?;
            let Value::List(items) = &args[1] else {
                return Err(bad(name, "the second argument must be a list"));
            };
            Value::String(
                items
                    .iter()
                    .map(|v| text(name, v))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(&sep),
            )
        }
        "split" => {
            arity(name, &args, 2, 2)?;
            let sep = text(name, &args[0])?;
            let s = text(name, &args[1])?;
            Value::List(
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_owned()))
                    .collect(),
            )
        }
        "replace" => {
            arity(name, &args, 3, 3)?;
            Value::String(
                text(name, &args[0])?.replace(&text(name, &args[1])?, &text(name, &args[2])?),
            )
        }
        "substr" => {
            arity(name, &args, 3, 3)?;
            let s: Vec<char> = text(name, &args[0])?.chars().collect();
            let off = num(name, &args[1])?.max(0.0) as usize;
            let len = num(name, &args[2])?;
            let end = if len < 0.0 {
                s.len()
            } else {
                (off + len as usize).min(s.len())
            };
            Value::String(
                s.get(off.min(s.len())..end.max(off.min(s.len())))
                    .unwrap_or(&[])
                    .iter()
                    .collect(),
            )
        }
        "concat" => {
            let mut out = Vec::new();
            for a in args {
                match a {
                    Value::List(l) => out.extend(l),
                    other => {
                        return Err(bad(
                            name,
                            format!("expected lists, found a {}", other.type_name()),
                        ))
                    }
                }
            }
            Value::List(out)
        }
        "flatten" => {
            arity(name, &args, 1, 1)?;
            fn flat(v: &Value, out: &mut Vec<Value>) {
                match v {
                    Value::List(l) => l.iter().for_each(|x| flat(x, out)),
                    other => out.push(other.clone()),
                }
            }
            let mut out = Vec::new();
            flat(&args[0], &mut out);
            Value::List(out)
        }
        "compact" => {
            arity(name, &args, 1, 1)?;
            let Value::List(l) = &args[0] else {
                return Err(bad(name, "expected a list"));
            };
            Value::List(
                l.iter()
                    .filter(|v| {
                        !matches!(v, Value::String(s) if s.is_empty()) && **v != Value::Null
                    })
                    .cloned()
                    .collect(),
            )
        }
        "distinct" => {
            arity(name, &args, 1, 1)?;
            let Value::List(l) = &args[0] else {
                return Err(bad(name, "expected a list"));
            };
            let mut out: Vec<Value> = Vec::new();
            for v in l {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Value::List(out)
        }
        "lookup" => {
            arity(name, &args, 2, 3)?;
            let Value::Object(o) = &args[0] else {
                return Err(bad(name, "the first argument must be a map"));
            };
            let key = text(name, &args[1])?;
            match (o.get(&key), args.get(2)) {
                (Some(v), _) => v.clone(),
                (None, Some(default)) => default.clone(),
                (None, None) => return Err(bad(name, format!("no key \"{key}\" and no default"))),
            }
        }
        "element" => {
            arity(name, &args, 2, 2)?;
            let Value::List(l) = &args[0] else {
                return Err(bad(name, "the first argument must be a list"));
            };
            if l.is_empty() {
                return Err(bad(name, "cannot use element() on an empty list"));
            }
            let i = num(name, &args[1])?.max(0.0) as usize;
            l[i % l.len()].clone()
        }
        "length" => {
            arity(name, &args, 1, 1)?;
            Value::Number(match &args[0] {
                Value::List(l) => l.len(),
                Value::Object(o) => o.len(),
                Value::String(s) => s.chars().count(),
                other => return Err(bad(name, format!("a {} has no length", other.type_name()))),
            } as f64)
        }
        "merge" => {
            let mut out = BTreeMap::new();
            for a in args {
                match a {
                    Value::Object(o) => out.extend(o),
                    Value::Null => {}
                    other => {
                        return Err(bad(
                            name,
                            format!("expected maps, found a {}", other.type_name()),
                        ))
                    }
                }
            }
            Value::Object(out)
        }
        "keys" | "values" => {
            arity(name, &args, 1, 1)?;
            let Value::Object(o) = &args[0] else {
                return Err(bad(name, "expected a map"));
            };
            if name == "keys" {
                Value::List(o.keys().map(|k| Value::String(k.clone())).collect())
            } else {
                Value::List(o.values().cloned().collect())
            }
        }
        "contains" => {
            arity(name, &args, 2, 2)?;
            let Value::List(l) = &args[0] else {
                return Err(bad(name, "the first argument must be a list"));
            };
            Value::Bool(l.contains(&args[1]))
        }
        "coalesce" => args
            .into_iter()
            .find(|v| !matches!(v, Value::Null) && !matches!(v, Value::String(s) if s.is_empty()))
            .ok_or_else(|| bad(name, "no non-null, non-empty argument"))?,
        "min" | "max" => {
            if args.is_empty() {
                return Err(bad(name, "needs at least one number"));
            }
            let ns = args
                .iter()
                .map(|a| num(name, a))
                .collect::<Result<Vec<_>, _>>()?;
            let pick = if name == "min" {
                ns.iter().copied().fold(f64::INFINITY, f64::min)
            } else {
                ns.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            };
            Value::Number(pick)
        }
        "range" => {
            arity(name, &args, 1, 3)?;
            let ns = args
                .iter()
                .map(|a| num(name, a))
                .collect::<Result<Vec<_>, _>>()?;
            let (start, end, step) = match ns.as_slice() {
                [e] => (0.0, *e, 1.0),
                [s, e] => (*s, *e, if e >= s { 1.0 } else { -1.0 }),
                [s, e, st] => (*s, *e, *st),
                _ => unreachable!("arity checked"),
            };
            if step == 0.0 {
                return Err(bad(name, "step must not be zero"));
            }
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
                out.push(Value::Number(x));
                x += step;
                if out.len() > 100_000 {
                    return Err(bad(name, "more than 100000 elements"));
                }
            }
            Value::List(out)
        }
        _ => {
            return Err(FnError(
                format!("Call to unknown function \"{name}\""),
                format!(
                    "mesh-gitops evaluates these functions: {}",
                    NAMES.join(", ")
                ),
            ))
        }
    })
}
