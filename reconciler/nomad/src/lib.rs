//! Nomad job files (HCL 2) with Consul Connect: the services and upstreams they declare, with
//! Nomad's parse-time evaluation and the Connect checks the Nomad server makes at submit time
//! (nomad-connect reference, sections 1 and 3). Parsing uses hcl-edit, which keeps spans.

mod eval;
mod functions;

pub use eval::Value;

use eval::{EvalError, Evaluator, Scope};
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Attribute, Block, BlockLabel, Body, Structure};
use hcl_edit::Span as _;
use mesh_diagnostics::{Code, Diagnostic, FileId, Span};
use mesh_model::{Service, ServiceOrigin, Upstream};
use std::collections::BTreeMap;

/// What a job file declares.
#[derive(Debug, Clone, Default)]
pub struct JobFile {
    /// The job ID (the `job` block's label).
    pub job: Option<String>,
    /// Every group-level service, Connect or not.
    pub services: Vec<Service>,
    /// Literal task environment values, for the secrets check.
    pub task_env: Vec<EnvVar>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub group: String,
    pub task: String,
    pub key: String,
    pub value: String,
    pub span: Span,
}

/// Loads one job file. `vars` override variable defaults (`-var name=value`).
pub fn load_job(file: FileId, text: &str, vars: &BTreeMap<String, String>) -> JobFile {
    let mut out = JobFile::default();
    let body = match hcl_edit::parser::parse_body(text) {
        Ok(b) => b,
        Err(e) => {
            let loc = e.location();
            let start = loc.offset().min(text.len());
            let mut end = (start + 1).min(text.len());
            while end < text.len() && !text.is_char_boundary(end) {
                end += 1;
            }
            let mut d = Diagnostic::new(
                Code::NomadSyntax,
                Span::new(file, start, end),
                e.message().to_lowercase(),
            );
            d = d.with_help(if text.contains("\"=") || e.message().contains("quoted") {
                "this looks like HCL 1; Nomad 1.9 and later read only HCL 2"
            } else {
                "check the syntax near this position"
            });
            out.diagnostics.push(d);
            return out;
        }
    };
    let mut loader = JobLoader {
        file,
        text,
        out: &mut out,
        scope: Scope::default(),
    };
    loader.load(&body, vars);
    out
}

struct JobLoader<'a> {
    file: FileId,
    text: &'a str,
    out: &'a mut JobFile,
    scope: Scope,
}

fn span_of(r: Option<std::ops::Range<usize>>, file: FileId) -> Span {
    let r = r.unwrap_or(0..0);
    Span::new(file, r.start, r.end)
}

fn label(l: &BlockLabel) -> &str {
    match l {
        BlockLabel::Ident(i) => i.value().as_str(),
        BlockLabel::String(s) => s.value().as_str(),
    }
}

const PORT_MAX: f64 = 65535.0;

impl JobLoader<'_> {
    fn span(&self, r: Option<std::ops::Range<usize>>) -> Span {
        span_of(r, self.file)
    }

    fn diag(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.out
            .diagnostics
            .push(Diagnostic::new(code, span, message).with_help(help));
    }

    fn eval_err(&mut self, e: EvalError) {
        let span = Span::new(self.file, e.range.start, e.range.end);
        self.diag(Code::NomadEval, span, e.message, e.help);
    }

    fn eval(&mut self, e: &Expression) -> Option<Value> {
        let ev = Evaluator {
            source: self.text,
            scope: self.scope.clone(),
        };
        match ev.eval(e) {
            Ok(v) => Some(v),
            Err(err) => {
                self.eval_err(err);
                None
            }
        }
    }

    fn load(&mut self, body: &Body, overrides: &BTreeMap<String, String>) {
        // Variables: defaults, then overrides.
        for s in body.iter() {
            if let Structure::Block(b) = s {
                match b.ident.value().as_str() {
                    "variable" => {
                        let Some(name) = b.labels.first().map(label) else {
                            self.diag(
                                Code::NomadStructure,
                                self.span(b.span()),
                                "variable block needs a name",
                                "write `variable \"name\" { default = ... }`",
                            );
                            continue;
                        };
                        let name = name.to_owned();
                        if let Some(v) = overrides.get(&name) {
                            let typed = match b.body.get_attribute("type").map(|a| {
                                self.text.get(a.value.span().unwrap_or(0..0)).unwrap_or("")
                            }) {
                                Some("number") => v
                                    .parse::<f64>()
                                    .map(Value::Number)
                                    .unwrap_or(Value::String(v.clone())),
                                Some("bool") => v
                                    .parse::<bool>()
                                    .map(Value::Bool)
                                    .unwrap_or(Value::String(v.clone())),
                                _ => Value::String(v.clone()),
                            };
                            self.scope.vars.insert(name, typed);
                        } else if let Some(d) = b.body.get_attribute("default") {
                            if let Some(v) = self.eval(&d.value) {
                                self.scope.vars.insert(name, v);
                            }
                        }
                    }
                    "variables" => {
                        for a in b.body.attributes() {
                            let name = a.key.value().as_str().to_owned();
                            if let Some(v) = overrides.get(&name) {
                                self.scope.vars.insert(name, Value::String(v.clone()));
                            } else if let Some(v) = self.eval(&a.value) {
                                self.scope.vars.insert(name, v);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        self.locals(body);
        let jobs: Vec<&Block> = body
            .blocks()
            .filter(|b| b.ident.value().as_str() == "job")
            .collect();
        for b in body.iter() {
            match b {
                Structure::Block(b)
                    if !matches!(
                        b.ident.value().as_str(),
                        "job" | "variable" | "variables" | "locals"
                    ) =>
                {
                    let s = self.span(b.ident.span());
                    self.diag(
                        Code::NomadStructure,
                        s,
                        format!(
                            "unsupported top-level block \"{}\"",
                            b.ident.value().as_str()
                        ),
                        "a job file holds `variable`, `locals` and one `job` block",
                    );
                }
                Structure::Attribute(a) => {
                    let s = self.span(a.key.span());
                    self.diag(
                        Code::NomadStructure,
                        s,
                        format!(
                            "unexpected top-level argument \"{}\"",
                            a.key.value().as_str()
                        ),
                        "a job file holds `variable`, `locals` and one `job` block",
                    );
                }
                _ => {}
            }
        }
        match jobs.as_slice() {
            [] => {
                self.diag(
                    Code::NomadStructure,
                    Span::new(self.file, 0, 0),
                    "the file has no job block",
                    "write `job \"name\" { group \"name\" { ... } }`",
                );
            }
            [job, rest @ ..] => {
                for extra in rest {
                    let s = self.span(extra.ident.span());
                    self.diag(
                        Code::NomadStructure,
                        s,
                        "Duplicate job block",
                        "a job file holds exactly one job; split the jobs into files",
                    );
                }
                self.job(job);
            }
        }
    }

    fn locals(&mut self, body: &Body) {
        let attrs: Vec<&Attribute> = body
            .blocks()
            .filter(|b| b.ident.value().as_str() == "locals")
            .flat_map(|b| b.body.attributes())
            .collect();
        let mut pending: Vec<&Attribute> = attrs.clone();
        // Locals may refer to each other: evaluate until nothing changes (Nomad retries 100 times).
        for _ in 0..100 {
            let mut next = Vec::new();
            for a in pending {
                let ev = Evaluator {
                    source: self.text,
                    scope: self.scope.clone(),
                };
                match ev.eval(&a.value) {
                    Ok(v) => {
                        self.scope
                            .locals
                            .insert(a.key.value().as_str().to_owned(), v);
                    }
                    Err(e) if e.message.starts_with("unknown local") => next.push(a),
                    Err(e) => self.eval_err(e),
                }
            }
            if next.is_empty() {
                return;
            }
            pending = next;
        }
        for a in pending {
            let s = self.span(a.span());
            self.diag(
                Code::NomadEval,
                s,
                format!(
                    "local \"{}\" cannot be resolved (a cycle?)",
                    a.key.value().as_str()
                ),
                "locals must not depend on themselves",
            );
        }
    }

    fn attr_text(&mut self, body: &Body, name: &str) -> Option<(String, Span)> {
        let a = body.get_attribute(name)?;
        let span = self.span(a.value.span());
        match self.eval(&a.value)? {
            Value::Null => None,
            v => match v.to_text() {
                Some(t) => Some((t, span)),
                None => {
                    self.diag(
                        Code::NomadStructure,
                        span,
                        format!("{name}: expected a string, found a {}", v.type_name()),
                        format!("write `{name} = \"...\"`"),
                    );
                    None
                }
            },
        }
    }

    fn attr_number(&mut self, body: &Body, name: &str) -> Option<(f64, Span)> {
        let a = body.get_attribute(name)?;
        let span = self.span(a.value.span());
        match self.eval(&a.value)? {
            Value::Number(n) => Some((n, span)),
            // gohcl converts a numeric string into a number attribute.
            Value::String(s) if s.trim().parse::<f64>().is_ok() => {
                Some((s.trim().parse().unwrap_or(0.0), span))
            }
            v => {
                self.diag(
                    Code::NomadStructure,
                    span,
                    format!("{name}: expected a number, found a {}", v.type_name()),
                    format!("write `{name} = 1234`"),
                );
                None
            }
        }
    }

    fn attr_bool(&mut self, body: &Body, name: &str) -> Option<bool> {
        let a = body.get_attribute(name)?;
        let span = self.span(a.value.span());
        match self.eval(&a.value)? {
            Value::Bool(b) => Some(b),
            Value::String(s) if s == "true" || s == "false" => Some(s == "true"),
            v => {
                self.diag(
                    Code::NomadStructure,
                    span,
                    format!("{name}: expected a bool, found a {}", v.type_name()),
                    format!("write `{name} = true`"),
                );
                None
            }
        }
    }

    /// Blocks of `kind` under `body`, with `dynamic "kind"` blocks expanded.
    fn blocks_expanded<'b>(&mut self, body: &'b Body, kind: &str) -> Vec<(&'b Body, Span, Scope)> {
        let mut out = Vec::new();
        for b in body.blocks() {
            let ident = b.ident.value().as_str();
            if ident == kind {
                out.push((&b.body, self.span(b.span()), self.scope.clone()));
            } else if ident == "dynamic" && b.labels.first().map(label) == Some(kind) {
                let span = self.span(b.span());
                let Some(for_each) = b.body.get_attribute("for_each") else {
                    self.diag(
                        Code::NomadEval,
                        span,
                        "dynamic block needs for_each",
                        "add `for_each = [...]`",
                    );
                    continue;
                };
                let iterator = match b.body.get_attribute("iterator") {
                    Some(a) => self
                        .text
                        .get(a.value.span().unwrap_or(0..0))
                        .unwrap_or(kind)
                        .trim()
                        .to_owned(),
                    None => kind.to_owned(),
                };
                let Some(content) = b
                    .body
                    .blocks()
                    .find(|c| c.ident.value().as_str() == "content")
                else {
                    self.diag(
                        Code::NomadEval,
                        span,
                        "dynamic block needs a content block",
                        "add `content { ... }`",
                    );
                    continue;
                };
                let items: Vec<(Value, Value)> = match self.eval(&for_each.value) {
                    Some(Value::List(l)) => l
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::Number(i as f64), v))
                        .collect(),
                    Some(Value::Object(o)) => {
                        o.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                    }
                    Some(other) => {
                        let s = self.span(for_each.value.span());
                        self.diag(
                            Code::NomadEval,
                            s,
                            format!(
                                "for_each must be a list or map, found a {}",
                                other.type_name()
                            ),
                            "iterate over a list or a map",
                        );
                        continue;
                    }
                    None => continue,
                };
                for (k, v) in items {
                    let mut scope = self.scope.clone();
                    let mut it = std::collections::BTreeMap::new();
                    it.insert("key".to_owned(), k);
                    it.insert("value".to_owned(), v);
                    scope.iterators.insert(iterator.clone(), Value::Object(it));
                    out.push((&content.body, self.span(content.span()), scope));
                }
            }
        }
        out
    }

    fn check_names(&mut self, body: &Body, allowed: &[&str], what: &str) {
        for s in body.iter() {
            let (name, span, is_block) = match s {
                Structure::Attribute(a) => (a.key.value().as_str(), a.key.span(), false),
                Structure::Block(b) => (b.ident.value().as_str(), b.ident.span(), true),
            };
            if is_block && name == "dynamic" {
                continue;
            }
            if !allowed.contains(&name) {
                let sp = self.span(span);
                let kind = if is_block { "block type" } else { "argument" };
                self.diag(
                    Code::NomadStructure,
                    sp,
                    format!("Unsupported {kind} \"{name}\" in {what}"),
                    format!("{what} accepts: {}", allowed.join(", ")),
                );
            }
        }
    }

    fn job(&mut self, job: &Block) {
        let Some(job_id) = job.labels.first().map(label).map(str::to_owned) else {
            let s = self.span(job.ident.span());
            self.diag(
                Code::NomadStructure,
                s,
                "job block needs a name",
                "write `job \"name\" { ... }`",
            );
            return;
        };
        self.out.job = Some(job_id.clone());
        for b in job.body.blocks() {
            match b.ident.value().as_str() {
                "group" => self.group(&job_id, b),
                // A task directly under job becomes its own group.
                "task" => {
                    for s in b
                        .body
                        .blocks()
                        .filter(|s| s.ident.value().as_str() == "service")
                    {
                        if s.body
                            .blocks()
                            .any(|c| c.ident.value().as_str() == "connect")
                        {
                            let sp = self.span(s.span());
                            self.diag(
                                Code::NomadStructure,
                                sp,
                                "a task-level service cannot use connect",
                                "move the service to the group",
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn group(&mut self, job: &str, group: &Block) {
        let Some(name) = group.labels.first().map(label).map(str::to_owned) else {
            let s = self.span(group.ident.span());
            self.diag(
                Code::NomadStructure,
                s,
                "group block needs a name",
                "write `group \"name\" { ... }`",
            );
            return;
        };
        let count = self
            .attr_number(&group.body, "count")
            .map(|(n, _)| n.max(0.0) as u32)
            .unwrap_or(1);
        let networks: Vec<&Block> = group
            .body
            .blocks()
            .filter(|b| b.ident.value().as_str() == "network")
            .collect();
        let (mode, mode_span) = match networks.first() {
            Some(n) => match self.attr_text(&n.body, "mode") {
                Some((m, s)) => (m, Some(s)),
                None => ("host".to_owned(), Some(self.span(n.span()))),
            },
            None => ("host".to_owned(), None),
        };
        // Task env literals, for the secrets check, and task-level connect.
        for task in group
            .body
            .blocks()
            .filter(|b| b.ident.value().as_str() == "task")
        {
            let task_name = task.labels.first().map(label).unwrap_or("").to_owned();
            // `env = { ... }` (attribute form) as well as `env { ... }`.
            if let Some(a) = task.body.get_attribute("env") {
                let span = self.span(a.span());
                if let Some(Value::Object(m)) = self.eval(&a.value) {
                    for (k, v) in m {
                        if let Value::String(v) = v {
                            self.out.task_env.push(EnvVar {
                                group: name.clone(),
                                task: task_name.clone(),
                                key: k,
                                value: v,
                                span,
                            });
                        }
                    }
                }
            }
            for env in task
                .body
                .blocks()
                .filter(|b| b.ident.value().as_str() == "env")
            {
                for a in env.body.attributes() {
                    let span = self.span(a.span());
                    if let Some(Value::String(v)) = self.eval(&a.value) {
                        self.out.task_env.push(EnvVar {
                            group: name.clone(),
                            task: task_name.clone(),
                            key: a.key.value().as_str().to_owned(),
                            value: v,
                            span,
                        });
                    }
                }
            }
            for s in task
                .body
                .blocks()
                .filter(|b| b.ident.value().as_str() == "service")
            {
                if s.body
                    .blocks()
                    .any(|c| c.ident.value().as_str() == "connect")
                {
                    let sp = self.span(s.span());
                    self.diag(
                        Code::NomadStructure,
                        sp,
                        "a task-level service cannot use connect",
                        "move the service to the group",
                    );
                }
            }
        }
        let mut group_upstreams: Vec<Upstream> = Vec::new();
        for (svc_body, svc_span, scope) in self.blocks_expanded(&group.body, "service") {
            let saved = std::mem::replace(&mut self.scope, scope);
            if let Some(s) = self.service(
                job,
                &name,
                &mode,
                mode_span,
                networks.len(),
                count,
                svc_body,
                svc_span,
            ) {
                group_upstreams.extend(s.upstreams.iter().cloned());
                self.out.services.push(s);
            }
            self.scope = saved;
        }
        // Nomad's check is textual on address:port across every service of the group.
        let mut seen: BTreeMap<String, &Upstream> = BTreeMap::new();
        for u in &group_upstreams {
            if u.local_bind_port == 0 {
                continue;
            }
            let key = format!(
                "{}:{}",
                u.local_bind_address.clone().unwrap_or_default(),
                u.local_bind_port
            );
            if let Some(first) = seen.get(&key) {
                let d = Diagnostic::new(
                    Code::NomadDuplicateBindPort,
                    u.span,
                    format!("Consul Connect services {:?} and {:?} in group {name:?} using same address for upstreams ({key})", first.destination_name, u.destination_name),
                )
                .with_label(first.span, "first bound here")
                .with_help("give each upstream its own local_bind_port");
                self.out.diagnostics.push(d);
            } else {
                seen.insert(key, u);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn service(
        &mut self,
        job: &str,
        group: &str,
        mode: &str,
        mode_span: Option<Span>,
        networks: usize,
        count: u32,
        body: &Body,
        span: Span,
    ) -> Option<Service> {
        let (name, name_span) = self
            .attr_text(body, "name")
            .unwrap_or_else(|| (format!("{job}-{group}"), span));
        let (port, port_label) = match body.get_attribute("port") {
            Some(a) => match self.eval(&a.value) {
                Some(Value::Number(n)) if (0.0..=PORT_MAX).contains(&n) => (Some(n as u16), None),
                Some(Value::String(s)) => match s.parse::<u16>() {
                    Ok(p) => (Some(p), None),
                    Err(_) => (None, Some(s)),
                },
                Some(v) => {
                    let s = self.span(a.value.span());
                    self.diag(
                        Code::NomadStructure,
                        s,
                        format!(
                            "port: expected a port label or number, found a {}",
                            v.type_name()
                        ),
                        "write `port = \"http\"` or `port = \"8080\"`",
                    );
                    (None, None)
                }
                None => (None, None),
            },
            None => (None, None),
        };
        let connects: Vec<&Block> = body
            .blocks()
            .filter(|b| b.ident.value().as_str() == "connect")
            .collect();
        let mut svc = Service {
            name: name.clone(),
            port,
            port_label,
            address: self.attr_text(body, "address").map(|(a, _)| a),
            sidecar: false,
            native: false,
            instances: count,
            upstreams: Vec::new(),
            proxy_config: serde_json::Map::new(),
            meta: Default::default(),
            origin: ServiceOrigin::NomadJob {
                job: job.to_owned(),
                group: group.to_owned(),
                network_mode: mode.to_owned(),
            },
            span,
        };
        if name.contains("${") {
            self.diag(
                Code::UnresolvedName,
                name_span,
                format!("service name {name:?} is resolved only at run time"),
                "mesh-gitops cannot know this service's name; use a literal or a variable",
            );
        }
        let Some(connect) = connects.first() else {
            return Some(svc);
        };
        let cspan = self.span(connect.span());
        self.check_names(
            &connect.body,
            &["native", "sidecar_service", "sidecar_task", "gateway"],
            "connect",
        );
        let native = self.attr_bool(&connect.body, "native").unwrap_or(false);
        let sidecar = connect
            .body
            .blocks()
            .find(|b| b.ident.value().as_str() == "sidecar_service");
        let gateway = connect
            .body
            .blocks()
            .any(|b| b.ident.value().as_str() == "gateway");
        let kinds = [native, sidecar.is_some(), gateway]
            .iter()
            .filter(|x| **x)
            .count();
        if kinds != 1 {
            self.diag(Code::NomadConnectKind, cspan, "Consul Connect must be exclusively native, make use of a sidecar, or represent a Gateway", "keep exactly one of native, sidecar_service or gateway");
        }
        if sidecar.is_some() || native {
            if name.chars().any(|c| c.is_ascii_uppercase()) && !name.contains("${") {
                // The `name = ...` attribute, key to value, when it is written.
                let at = body
                    .get_attribute("name")
                    .map_or(name_span, |a| self.span(a.span()));
                self.out.diagnostics.push(
                    Diagnostic::new(
                        Code::NomadServiceName,
                        at,
                        format!("Consul Connect service name {name:?} must not contain uppercase characters"),
                    )
                    .with_field("name")
                    .with_help("Envoy rejects uppercase names: use lower case"),
                );
            }
            if group.chars().any(|c| c.is_ascii_uppercase()) {
                self.diag(
                    Code::NomadServiceName,
                    span,
                    format!(
                        "Consul Connect group name {group:?} must not contain uppercase characters"
                    ),
                    "use a lower-case group name",
                );
            }
        }
        if let Some(sc) = sidecar {
            if networks != 1 {
                self.diag(
                    Code::NomadNetworkMode,
                    cspan,
                    "Consul Connect sidecars require exactly one network",
                    "add `network { mode = \"bridge\" }` to the group",
                );
            } else if mode != "bridge" && !mode.starts_with("cni/") {
                let mut d = Diagnostic::new(Code::NomadNetworkMode, cspan, format!("invalid network mode {mode:?} for Consul Connect: a sidecar needs bridge or cni networking"))
                    .with_help("set `network { mode = \"bridge\" }` in the group");
                if let Some(ms) = mode_span {
                    d = d.with_label(ms, "the group's network mode");
                }
                self.out.diagnostics.push(d);
            }
            svc.sidecar = true;
            self.sidecar_service(&sc.body, &mut svc);
        }
        svc.native = native;
        Some(svc)
    }

    fn sidecar_service(&mut self, body: &Body, svc: &mut Service) {
        self.check_names(
            body,
            &["port", "tags", "meta", "disable_default_tcp_check", "proxy"],
            "sidecar_service",
        );
        let Some(proxy) = body.blocks().find(|b| b.ident.value().as_str() == "proxy") else {
            return;
        };
        self.check_names(
            &proxy.body,
            &[
                "local_service_address",
                "local_service_port",
                "upstreams",
                "expose",
                "transparent_proxy",
                "config",
            ],
            "proxy",
        );
        if let Some(a) = proxy.body.get_attribute("upstreams") {
            let s = self.span(a.key.span());
            self.diag(Code::NomadUnsupported, s, "Unsupported argument; An argument named \"upstreams\" is not expected here. Did you mean to define a block of type \"upstreams\"?", "write one `upstreams { destination_name = \"...\" local_bind_port = ... }` block per upstream");
        }
        if let Some(cfg) = proxy
            .body
            .blocks()
            .find(|b| b.ident.value().as_str() == "config")
        {
            if let serde_json::Value::Object(m) = self.opaque(&cfg.body) {
                svc.proxy_config = m;
            }
        }
        for (ub, span, scope) in self.blocks_expanded(&proxy.body, "upstreams") {
            let saved = std::mem::replace(&mut self.scope, scope);
            self.check_names(
                ub,
                &[
                    "destination_name",
                    "destination_namespace",
                    "destination_partition",
                    "destination_peer",
                    "destination_type",
                    "local_bind_port",
                    "local_bind_address",
                    "local_bind_socket_path",
                    "local_bind_socket_mode",
                    "datacenter",
                    "mesh_gateway",
                    "config",
                ],
                "upstreams",
            );
            let dest = self.attr_text(ub, "destination_name");
            let port = self.attr_number(ub, "local_bind_port");
            let socket = ub.get_attribute("local_bind_socket_path").is_some();
            match (dest, port) {
                (None, _) => self.diag(Code::NomadUpstream, span, "upstream has no destination_name", "write `destination_name = \"<service>\"`"),
                (Some(_), None) if !socket && ub.get_attribute("local_bind_port").is_some() => {}
                (Some(_), None) if !socket => self.diag(Code::NomadUpstream, span, "upstream has no local_bind_port", "write `local_bind_port = <port>`; the app reaches the upstream on 127.0.0.1:<port>"),
                (Some((d, dspan)), port) => {
                    let p = match port {
                        Some((n, ps)) if !(1.0..=PORT_MAX).contains(&n) || n.fract() != 0.0 => {
                            self.diag(Code::NomadUpstream, ps, format!("local_bind_port {n} is not a port"), "ports are 1-65535");
                            0
                        }
                        Some((n, _)) => n as u16,
                        None => 0,
                    };
                    if d.contains("${") {
                        self.diag(Code::UnresolvedName, dspan, format!("upstream destination {d:?} is resolved only at run time"), "mesh-gitops cannot check an upstream whose name is unknown; use a literal or a variable");
                    }
                    let up = Upstream {
                        destination_name: d,
                        local_bind_port: p,
                        local_bind_address: self.attr_text(ub, "local_bind_address").map(|x| x.0),
                        datacenter: self.attr_text(ub, "datacenter").map(|x| x.0),
                        destination_type: self.attr_text(ub, "destination_type").map(|x| x.0),
                        span,
                    };
                    svc.upstreams.push(up);
                }
            }
            self.scope = saved;
        }
    }

    /// An opaque `config {}` map: attributes evaluated, nested blocks as lists of objects.
    fn opaque(&mut self, body: &Body) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => {
                    if let Some(v) = self.eval(&a.value) {
                        m.insert(a.key.value().as_str().to_owned(), v.to_json());
                    }
                }
                Structure::Block(b) => {
                    let v = self.opaque(&b.body);
                    let key = b.ident.value().as_str().to_owned();
                    match m.get_mut(&key) {
                        Some(serde_json::Value::Array(list)) => list.push(v),
                        _ => {
                            m.insert(key, serde_json::Value::Array(vec![v]));
                        }
                    }
                }
            }
        }
        serde_json::Value::Object(m)
    }
}
