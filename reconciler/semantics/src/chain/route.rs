//! A request through a compiled chain: the route that matches it (Envoy's route semantics for
//! the match Consul generates in `agent/xds/routes.go`), the split a roll in `[0, 100)` picks,
//! and the resolver's target with its failover order. Subset filters are go-bexpr expressions
//! over the instance (`Service.Meta.version == v2`), evaluated by [`Filter`].

use super::compile::{CompiledChain, Node};
use mesh_model::chain::{RouteHttpMatch, ServiceRoute};
use std::collections::BTreeMap;

/// The attributes of an HTTP request a route can match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The index of the router's route that matched; `None` without a router or for the
    /// catch-all route.
    pub route: Option<usize>,
    /// The target's ID, then the failover targets in order.
    pub targets: Vec<String>,
}

impl CompiledChain {
    /// Routes `req`; `roll` in `[0, 100)` picks a split by cumulative weight.
    pub fn route(&self, req: &HttpRequest, roll: f64) -> Routed {
        let mut route = None;
        let mut key = self.start.as_str();
        loop {
            match self.nodes.get(key) {
                Some(Node::Router { routes, .. }) => {
                    let n = routes.len();
                    let (i, next) = routes
                        .iter()
                        .enumerate()
                        .find(|(_, (r, _))| route_matches(r, req))
                        .map(|(i, (_, next))| (i, next))
                        .unwrap_or((n - 1, &routes[n - 1].1));
                    route = (i + 1 < n).then_some(i);
                    key = next;
                }
                Some(Node::Splitter { splits, .. }) => {
                    key = pick(splits, roll);
                }
                Some(Node::Resolver {
                    target, failover, ..
                }) => {
                    let mut targets = vec![target.clone()];
                    targets.extend(failover.iter().cloned());
                    return Routed { route, targets };
                }
                None => {
                    return Routed {
                        route,
                        targets: Vec::new(),
                    }
                }
            }
        }
    }

    /// Every way `req` can go, with its share in percent: the splits' weights multiplied.
    pub fn outcomes(&self, req: &HttpRequest) -> Vec<(f64, Routed)> {
        let first = self.route(req, 0.0);
        let mut key = self.start.as_str();
        if let Some(Node::Router { routes, .. }) = self.nodes.get(key) {
            key = match first.route {
                Some(i) => &routes[i].1,
                None => &routes[routes.len() - 1].1,
            };
        }
        match self.nodes.get(key) {
            Some(Node::Splitter { splits, .. }) => splits
                .iter()
                .map(|(w, next)| {
                    let targets = match self.nodes.get(next) {
                        Some(Node::Resolver {
                            target, failover, ..
                        }) => std::iter::once(target.clone())
                            .chain(failover.iter().cloned())
                            .collect(),
                        _ => Vec::new(),
                    };
                    (
                        *w,
                        Routed {
                            route: first.route,
                            targets,
                        },
                    )
                })
                .collect(),
            _ => vec![(100.0, first)],
        }
    }
}

fn pick(splits: &[(f64, String)], roll: f64) -> &str {
    let mut acc = 0.0;
    for (w, next) in splits {
        acc += w;
        if roll < acc {
            return next;
        }
    }
    splits.last().map_or("", |(_, n)| n.as_str())
}

/// Whether a route's match accepts the request: every criterion given must hold.
pub fn route_matches(route: &ServiceRoute, req: &HttpRequest) -> bool {
    match route.http() {
        None => true,
        Some(http) => http_matches(http, req),
    }
}

fn full_match(re: &str, s: &str) -> bool {
    regex::Regex::new(&format!("^(?:{re})$")).is_ok_and(|r| r.is_match(s))
}

pub fn http_matches(m: &RouteHttpMatch, req: &HttpRequest) -> bool {
    if m.path_exact.as_ref().is_some_and(|p| *p != req.path)
        || m.path_prefix
            .as_ref()
            .is_some_and(|p| !req.path.starts_with(p.as_str()))
        || m.path_regex
            .as_ref()
            .is_some_and(|re| !full_match(re, &req.path))
    {
        return false;
    }
    if !m.methods.is_empty() && !m.methods.contains(&req.method) {
        return false;
    }
    for h in &m.header {
        let value = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&h.name))
            .map(|(_, v)| v.as_str());
        let hit = match value {
            None => false,
            Some(v) => {
                h.present
                    || h.exact.as_ref().is_some_and(|e| e == v)
                    || h.prefix.as_ref().is_some_and(|p| v.starts_with(p.as_str()))
                    || h.suffix.as_ref().is_some_and(|s| v.ends_with(s.as_str()))
                    || h.regex.as_ref().is_some_and(|re| full_match(re, v))
            }
        };
        if hit == h.invert {
            return false;
        }
    }
    for q in &m.query_param {
        let value = req
            .query
            .iter()
            .find(|(k, _)| *k == q.name)
            .map(|(_, v)| v.as_str());
        let hit = match value {
            None => false,
            Some(v) => {
                q.present
                    || q.exact.as_ref().is_some_and(|e| e == v)
                    || q.regex.as_ref().is_some_and(|re| full_match(re, v))
            }
        };
        if !hit {
            return false;
        }
    }
    true
}

/// A service instance as a subset filter sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub node_meta: BTreeMap<String, String>,
}

/// A go-bexpr filter (the subset of the grammar Consul's documentation uses for subsets:
/// `==`, `!=`, `in`, `not in`, `contains`, `not contains`, `matches`, `is empty`,
/// `is not empty`, `and`, `or`, `not`, parentheses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Match {
        selector: Vec<String>,
        op: Op,
        value: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Contains,
    NotContains,
    Matches,
    NotMatches,
    Empty,
    NotEmpty,
}

fn tokens(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(&c) = it.peek() {
        if c.is_whitespace() {
            it.next();
        } else if c == '(' || c == ')' {
            out.push(c.to_string());
            it.next();
        } else if c == '"' || c == '`' {
            it.next();
            let mut v = String::from("\u{0}");
            loop {
                match it.next() {
                    Some(x) if x == c => break,
                    Some('\\') if c == '"' => v.extend(it.next()),
                    Some(x) => v.push(x),
                    None => return Err("unterminated string".to_owned()),
                }
            }
            out.push(v);
        } else if c == '=' || c == '!' {
            it.next();
            if it.next() != Some('=') {
                return Err(format!("unexpected {c:?}"));
            }
            out.push(format!("{c}="));
        } else {
            let mut w = String::new();
            while let Some(&x) = it.peek() {
                if x.is_whitespace() || "()\"`=!".contains(x) {
                    break;
                }
                w.push(x);
                it.next();
            }
            out.push(w);
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<String>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.at).map(String::as_str)
    }
    fn next(&mut self) -> Option<String> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek() == Some("or") {
            self.next();
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.peek() == Some("and") {
            self.next();
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Filter, String> {
        match self.peek() {
            Some("not") => {
                self.next();
                Ok(Filter::Not(Box::new(self.unary()?)))
            }
            Some("(") => {
                self.next();
                let f = self.or()?;
                if self.next().as_deref() != Some(")") {
                    return Err("missing )".to_owned());
                }
                Ok(f)
            }
            _ => self.matcher(),
        }
    }
    fn value(&mut self) -> Result<String, String> {
        let v = self.next().ok_or("missing value")?;
        Ok(v.strip_prefix('\u{0}').unwrap_or(&v).to_owned())
    }
    fn matcher(&mut self) -> Result<Filter, String> {
        let first = self.next().ok_or("empty expression")?;
        if let Some(v) = first.strip_prefix('\u{0}') {
            // `"value" in Selector` / `not in`.
            let op = match self.next().as_deref() {
                Some("in") => Op::In,
                Some("not") if self.next().as_deref() == Some("in") => Op::NotIn,
                other => return Err(format!("unexpected {other:?} after a value")),
            };
            let sel = self.next().ok_or("missing selector")?;
            return Ok(Filter::Match {
                selector: sel.split('.').map(str::to_owned).collect(),
                op,
                value: v.to_owned(),
            });
        }
        let selector: Vec<String> = first.split('.').map(str::to_owned).collect();
        if selector.iter().any(|s| {
            s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        }) {
            return Err(format!("invalid selector {first:?}"));
        }
        let op = match self.next().as_deref() {
            Some("==") => Op::Eq,
            Some("!=") => Op::Ne,
            Some("contains") => Op::Contains,
            Some("matches") => Op::Matches,
            Some("is") => match self.next().as_deref() {
                Some("empty") => Op::Empty,
                Some("not") if self.next().as_deref() == Some("empty") => Op::NotEmpty,
                other => return Err(format!("unexpected {other:?} after \"is\"")),
            },
            Some("not") => match self.next().as_deref() {
                Some("contains") => Op::NotContains,
                Some("matches") => Op::NotMatches,
                other => return Err(format!("unexpected {other:?} after \"not\"")),
            },
            other => {
                return Err(format!(
                    "expected an operator after {first:?}, found {other:?}"
                ))
            }
        };
        let value = match op {
            Op::Empty | Op::NotEmpty => String::new(),
            _ => self.value()?,
        };
        if matches!(op, Op::Matches | Op::NotMatches) && regex::Regex::new(&value).is_err() {
            return Err(format!("invalid regular expression {value:?}"));
        }
        Ok(Filter::Match {
            selector,
            op,
            value,
        })
    }
}

enum Field<'a> {
    One(&'a str),
    Many(Vec<&'a str>),
}

impl Filter {
    /// Parses an expression; the error says why it is not one.
    pub fn parse(expr: &str) -> Result<Filter, String> {
        let mut p = Parser {
            toks: tokens(expr)?,
            at: 0,
        };
        let f = p.or()?;
        match p.peek() {
            None => Ok(f),
            Some(t) => Err(format!("unexpected {t:?}")),
        }
    }

    pub fn matches(&self, i: &Instance) -> bool {
        match self {
            Filter::And(a, b) => a.matches(i) && b.matches(i),
            Filter::Or(a, b) => a.matches(i) || b.matches(i),
            Filter::Not(a) => !a.matches(i),
            Filter::Match {
                selector,
                op,
                value,
            } => {
                let sel: Vec<&str> = selector.iter().map(String::as_str).collect();
                let field = match sel.as_slice() {
                    ["Service", "Meta", k] | ["ServiceMeta", k] => {
                        i.meta.get(*k).map(|v| Field::One(v))
                    }
                    ["Node", "Meta", k] | ["NodeMeta", k] => {
                        i.node_meta.get(*k).map(|v| Field::One(v))
                    }
                    ["Service", "Tags"] | ["ServiceTags"] => {
                        Some(Field::Many(i.tags.iter().map(String::as_str).collect()))
                    }
                    ["Service", "ID"] | ["ServiceID"] => Some(Field::One(&i.id)),
                    ["Service", "Service"] | ["ServiceName"] => Some(Field::One(&i.service)),
                    ["Service", "Meta"] => {
                        Some(Field::Many(i.meta.keys().map(String::as_str).collect()))
                    }
                    _ => None,
                };
                let text = |f: &Option<Field<'_>>| match f {
                    Some(Field::One(v)) => (*v).to_owned(),
                    _ => String::new(),
                };
                let has = |f: &Option<Field<'_>>| match f {
                    Some(Field::One(v)) => v.contains(value.as_str()),
                    Some(Field::Many(vs)) => vs.contains(&value.as_str()),
                    None => false,
                };
                let empty = match &field {
                    None => true,
                    Some(Field::One(v)) => v.is_empty(),
                    Some(Field::Many(vs)) => vs.is_empty(),
                };
                let re = || regex::Regex::new(value).is_ok_and(|r| r.is_match(&text(&field)));
                match op {
                    Op::Eq => text(&field) == *value,
                    Op::Ne => text(&field) != *value,
                    Op::In | Op::Contains => has(&field),
                    Op::NotIn | Op::NotContains => !has(&field),
                    Op::Matches => re(),
                    Op::NotMatches => !re(),
                    Op::Empty => empty,
                    Op::NotEmpty => !empty,
                }
            }
        }
    }
}
