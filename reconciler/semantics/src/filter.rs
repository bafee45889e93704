//! Consul's filter expressions (`?filter=` on list endpoints), the language of
//! `github.com/hashicorp/go-bexpr` (`grammar/grammar.peg`, `evaluate.go`), evaluated over the
//! JSON an endpoint answers with: selectors are the answer's field names, as bexpr's are the Go
//! struct's field names that Consul serializes.
//!
//! Grammar: `or` binds loosest, then `and`, then `not`; parentheses group. Matches:
//! `Sel == V`, `Sel != V`, `V in Sel`, `V not in Sel`, `Sel contains V`, `Sel not contains V`,
//! `Sel is empty`, `Sel is not empty`, `Sel matches "re"`, `Sel not matches "re"`. Values are
//! `"quoted"`, `` `raw` `` or bare words and numbers. A selector is dotted (`Service.Meta.env`)
//! or a JSON pointer (`"/Service/Meta/env"`).

use serde_json::Value;

/// A filter that did not parse, or names a selector the answer does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match {
        selector: Vec<String>,
        op: Op,
        value: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    NotEqual,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Matches,
    NotMatches,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Eq,
    Ne,
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, FilterError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((i, Tok::Open));
                i += 1;
            }
            b')' => {
                out.push((i, Tok::Close));
                i += 1;
            }
            b'=' | b'!' if b.get(i + 1) == Some(&b'=') => {
                out.push((i, if c == b'=' { Tok::Eq } else { Tok::Ne }));
                i += 2;
            }
            b'"' | b'`' => {
                let start = i;
                let mut v = String::new();
                i += 1;
                loop {
                    let Some(&d) = b.get(i) else {
                        return Err(err_at(s, start, "unterminated string"));
                    };
                    if d == c {
                        i += 1;
                        break;
                    }
                    if c == b'"' && d == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch = s[i..].chars().next().unwrap_or('\0');
                    v.push(ch);
                    i += ch.len_utf8();
                }
                out.push((start, Tok::Quoted(v)));
            }
            _ => {
                let start = i;
                while i < b.len() && !b" \t\n\r()\"`=!".contains(&b[i]) {
                    i += 1;
                }
                if i == start {
                    return Err(err_at(s, start, "unexpected character"));
                }
                out.push((start, Tok::Word(s[start..i].to_owned())));
            }
        }
    }
    Ok(out)
}

/// go-bexpr's error position: `line:col (offset)`.
fn err_at(s: &str, offset: usize, what: &str) -> FilterError {
    let col = s[..offset.min(s.len())].chars().count() + 1;
    FilterError(format!("1:{col} ({offset}): {what}"))
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.src.len(), |t| t.0)
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w == k)
    }

    fn fail<T>(&self, what: &str) -> Result<T, FilterError> {
        Err(err_at(self.src, self.offset(), what))
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.or()?;
            if self.peek() != Some(&Tok::Close) {
                return self.fail("expected \")\"");
            }
            self.pos += 1;
            return Ok(e);
        }
        self.matcher()
    }

    fn value(&mut self) -> Result<String, FilterError> {
        match self.peek().cloned() {
            Some(Tok::Word(w) | Tok::Quoted(w)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => self.fail("expected a value"),
        }
    }

    fn selector(&mut self) -> Result<Vec<String>, FilterError> {
        match self.peek().cloned() {
            Some(Tok::Quoted(p)) if p.starts_with('/') => {
                self.pos += 1;
                Ok(p[1..]
                    .split('/')
                    .map(|x| x.replace("~1", "/").replace("~0", "~"))
                    .collect())
            }
            Some(Tok::Word(w)) if !w.is_empty() && !w.starts_with('.') && !w.ends_with('.') => {
                self.pos += 1;
                Ok(w.split('.').map(str::to_owned).collect())
            }
            _ => self.fail("expected a selector"),
        }
    }

    fn matcher(&mut self) -> Result<Expr, FilterError> {
        // `V in Sel` / `V not in Sel`: a value first.
        let save = self.pos;
        if let Ok(value) = self.value() {
            let negated = self.keyword("not");
            if negated {
                self.pos += 1;
            }
            if self.keyword("in") {
                self.pos += 1;
                let selector = self.selector()?;
                let op = if negated { Op::NotIn } else { Op::In };
                return Ok(Expr::Match {
                    selector,
                    op,
                    value,
                });
            }
            self.pos = save;
        }
        let selector = self.selector()?;
        let (op, value) = match self.peek().cloned() {
            Some(Tok::Eq) => {
                self.pos += 1;
                (Op::Equal, self.value()?)
            }
            Some(Tok::Ne) => {
                self.pos += 1;
                (Op::NotEqual, self.value()?)
            }
            Some(Tok::Word(w)) if w == "is" => {
                self.pos += 1;
                let not = self.keyword("not");
                if not {
                    self.pos += 1;
                }
                if !self.keyword("empty") {
                    return self.fail("expected \"empty\"");
                }
                self.pos += 1;
                let op = if not { Op::IsNotEmpty } else { Op::IsEmpty };
                (op, String::new())
            }
            Some(Tok::Word(w)) if w == "contains" || w == "matches" => {
                self.pos += 1;
                let op = if w == "contains" { Op::In } else { Op::Matches };
                (op, self.value()?)
            }
            Some(Tok::Word(w)) if w == "not" => {
                self.pos += 1;
                let op = if self.keyword("contains") {
                    Op::NotIn
                } else if self.keyword("matches") {
                    Op::NotMatches
                } else {
                    return self.fail("expected \"contains\" or \"matches\"");
                };
                self.pos += 1;
                (op, self.value()?)
            }
            _ => return self.fail("expected a match operator"),
        };
        Ok(Expr::Match {
            selector,
            op,
            value,
        })
    }
}

/// Parses a filter expression.
pub fn parse(src: &str) -> Result<Expr, FilterError> {
    let mut p = Parser {
        src,
        toks: lex(src)?,
        pos: 0,
    };
    if p.toks.is_empty() {
        return p.fail("no match found, expected an expression");
    }
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return p.fail("unexpected input after the expression");
    }
    if let Some(re) = regexes(&e)
        .into_iter()
        .find_map(|r| regex::Regex::new(r).err())
    {
        return Err(FilterError(format!("Invalid regular expression: {re}")));
    }
    Ok(e)
}

fn regexes(e: &Expr) -> Vec<&str> {
    match e {
        Expr::Or(a, b) | Expr::And(a, b) => {
            let mut v = regexes(a);
            v.extend(regexes(b));
            v
        }
        Expr::Not(a) => regexes(a),
        Expr::Match {
            op: Op::Matches | Op::NotMatches,
            value,
            ..
        } => vec![value.as_str()],
        Expr::Match { .. } => Vec::new(),
    }
}

/// Fields that are maps in Consul's structs: a missing key there is an empty value, while a
/// missing struct field is an invalid selector (bexpr validates selectors against the type).
fn is_map(field: &str) -> bool {
    field.ends_with("Meta") || matches!(field, "TaggedAddresses" | "Config" | "Checks" | "Services")
}

/// What a selector reaches in `v`: `None` when a struct field is missing. Through an array,
/// every element's value (bexpr's selectors through slices).
fn select<'a>(v: &'a Value, path: &[String], parent: &str) -> Option<Vec<&'a Value>> {
    let Some((head, rest)) = path.split_first() else {
        return Some(vec![v]);
    };
    match v {
        Value::Object(m) => match m.get(head.as_str()) {
            Some(x) => select(x, rest, head),
            None if is_map(parent) => Some(Vec::new()),
            None => None,
        },
        Value::Null => Some(Vec::new()),
        Value::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(select(i, path, parent)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// A field's value against a literal, coerced to the field's type as bexpr coerces it.
fn equal(field: &Value, lit: &str) -> bool {
    match field {
        Value::String(s) => s == lit,
        Value::Bool(b) => lit.parse::<bool>().is_ok_and(|l| l == *b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), lit.parse::<f64>()) {
            (Some(i), _, _) if lit.parse::<i64>().is_ok() => lit.parse::<i64>() == Ok(i),
            (_, Some(u), _) if lit.parse::<u64>().is_ok() => lit.parse::<u64>() == Ok(u),
            (_, _, Ok(f)) => n.as_f64() == Some(f),
            _ => false,
        },
        Value::Null => lit.is_empty(),
        _ => false,
    }
}

fn contains(field: &Value, lit: &str) -> bool {
    match field {
        Value::String(s) => s.contains(lit),
        Value::Array(a) => a.iter().any(|x| equal(x, lit)),
        Value::Object(m) => m.contains_key(lit),
        _ => false,
    }
}

fn is_empty(field: &Value) -> bool {
    match field {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

/// Evaluates `e` against one item of a list. An unknown selector is an error, as bexpr
/// refuses a selector the item's type does not have.
pub fn matches(e: &Expr, item: &Value) -> Result<bool, FilterError> {
    Ok(match e {
        Expr::Or(a, b) => matches(a, item)? || matches(b, item)?,
        Expr::And(a, b) => matches(a, item)? && matches(b, item)?,
        Expr::Not(a) => !matches(a, item)?,
        Expr::Match {
            selector,
            op,
            value,
        } => {
            let found = select(item, selector, "").ok_or_else(|| {
                FilterError(format!("Selector {:?} is not valid", selector.join(".")))
            })?;
            let any = |f: &dyn Fn(&Value) -> bool| found.iter().any(|v| f(v));
            match op {
                Op::Equal => any(&|v| equal(v, value)),
                Op::NotEqual => !any(&|v| equal(v, value)),
                Op::In => any(&|v| contains(v, value)),
                Op::NotIn => !any(&|v| contains(v, value)),
                Op::IsEmpty => found.is_empty() || found.iter().all(|v| is_empty(v)),
                Op::IsNotEmpty => !(found.is_empty() || found.iter().all(|v| is_empty(v))),
                Op::Matches | Op::NotMatches => {
                    let re = regex::Regex::new(value)
                        .map_err(|e| FilterError(format!("Invalid regular expression: {e}")))?;
                    let hit = any(&|v| v.as_str().is_some_and(|s| re.is_match(s)));
                    hit == (*op == Op::Matches)
                }
            }
        }
    })
}

/// Keeps the items `filter` matches; no filter keeps everything.
pub fn apply(filter: Option<&str>, items: Vec<Value>) -> Result<Vec<Value>, FilterError> {
    let Some(src) = filter.filter(|f| !f.trim().is_empty()) else {
        return Ok(items);
    };
    let e = parse(src)?;
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        if matches(&e, &i)? {
            out.push(i);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> Value {
        json!({
            "ID": "web-1", "Service": "web", "Port": 8080, "Tags": ["primary", "v2"],
            "Meta": {"env": "prod"}, "Connect": {"Native": false},
            "Checks": [{"Status": "passing"}, {"Status": "warning"}],
        })
    }

    fn eval(f: &str) -> bool {
        matches(&parse(f).unwrap(), &svc()).unwrap()
    }

    // Consul's API documentation, "Filtering": the examples' expressions.
    #[test]
    fn the_documented_operators_match_as_consul_does() {
        assert!(eval("Service == web"));
        assert!(eval("Service == \"web\" and Port == 8080"));
        assert!(eval("Service != db"));
        assert!(eval("primary in Tags"));
        assert!(eval("\"canary\" not in Tags"));
        assert!(eval("Tags contains v2"));
        assert!(eval("Tags not contains v3"));
        assert!(eval("Meta.env == prod"));
        assert!(eval("env in Meta"));
        assert!(eval("Meta.region is empty"));
        assert!(eval("Tags is not empty"));
        assert!(eval("Service matches \"^w.b$\""));
        assert!(eval("ID not matches `^db`"));
        assert!(eval("Connect.Native == false"));
        assert!(eval("\"/Meta/env\" == prod"));
        assert!(eval("Checks.Status == warning"));
        assert!(!eval("Service == db or (Port == 80 and not Tags is empty)"));
        assert!(eval("not Service == db and (Port == 8080 or Port == 1)"));
    }

    #[test]
    fn bad_expressions_and_unknown_selectors_are_errors() {
        for bad in [
            "",
            "Service ==",
            "Service = web",
            "(Service == web",
            "Service web",
            "Service matches \"(\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let e = parse("Nope == 1").unwrap();
        assert_eq!(
            matches(&e, &svc()).unwrap_err().0,
            "Selector \"Nope\" is not valid"
        );
    }

    #[test]
    fn apply_keeps_the_matching_items_in_order() {
        let items = vec![
            json!({"N": "a", "P": 1}),
            json!({"N": "b", "P": 2}),
            json!({"N": "c", "P": 1}),
        ];
        let kept = apply(Some("P == 1"), items.clone()).unwrap();
        assert_eq!(kept, vec![items[0].clone(), items[2].clone()]);
        assert_eq!(apply(None, items.clone()).unwrap(), items);
    }
}
