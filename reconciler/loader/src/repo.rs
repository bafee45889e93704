//! Discovering files, recognising their formats, and assembling one desired state with the
//! checks that span files (duplicates, references, the L7 protocol rule).

use crate::entry::{config_entry, config_entry_located, kind_of, FieldSpans, MESH_GITOPS_KINDS};
use crate::kinds::{own_kind, settings, OwnKind};
use crate::{agent, k8s, service_def};
use mesh_diagnostics::{Code, Diagnostic, Diagnostics, FileId, SourceMap, Span};
use mesh_model::{ConfigEntry, DesiredState, Service, Settings};
use mesh_syntax::Node;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One file of a repository: its path relative to the root (with `/`) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    pub path: String,
    pub contents: Vec<u8>,
}

/// What a file was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    Settings,
    ConfigEntry,
    MeshGitopsKind,
    KubernetesResources,
    ServiceDefinition,
    NomadJob,
    Guardrails,
    /// A Consul agent configuration file (linted by `check`, not written to Consul).
    AgentConfig,
    /// consul-k8s Helm chart values (linted by `check`).
    HelmValues,
    /// Did not parse or matched no format (reported).
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadedFile {
    pub path: String,
    pub format: FileFormat,
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Values for Nomad job variables (`-var name=value`).
    pub nomad_vars: BTreeMap<String, String>,
}

/// The result of loading a repository.
#[derive(Debug)]
pub struct Loaded {
    pub state: DesiredState,
    pub sources: SourceMap,
    /// Sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    pub files: Vec<LoadedFile>,
    /// Parsed `policies/*.hcl` files (guardrails), kept for the analysis.
    pub guardrail_files: Vec<(FileId, Node)>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Config file endings. Other files (README.md, scripts, ...) are not read.
const CONFIG_EXTENSIONS: &[&str] = &[".hcl", ".nomad", ".json", ".yaml", ".yml"];

/// Reads every file below `root` (hidden files and directories excluded; `.meshignore` honoured
/// later, by [`load_files`]) and loads them.
pub fn load_dir(root: &Path, options: &LoadOptions) -> Loaded {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        // Hidden files and directories (.git, .github, the state directory) are not
        // configuration, except the ignore file itself.
        .filter_entry(|e| {
            e.depth() == 0 || {
                let name = e.file_name().to_string_lossy();
                !name.starts_with('.') || name == ".meshignore"
            }
        })
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    for item in walker {
        match item {
            Ok(entry) => {
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    continue;
                }
                let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if !is_candidate(&rel) {
                    continue;
                }
                match std::fs::read(entry.path()) {
                    Ok(contents) => files.push(RepoFile {
                        path: rel,
                        contents,
                    }),
                    Err(e) => errors.push(Diagnostic::global(
                        Code::UnreadableFile,
                        format!("cannot read {rel}: {e}"),
                    )),
                }
            }
            Err(e) => errors.push(Diagnostic::global(
                Code::UnreadableFile,
                format!("cannot read {}: {e}", root.display()),
            )),
        }
    }
    if !root.is_dir() {
        errors.push(
            Diagnostic::global(
                Code::UnreadableFile,
                format!("{} is not a directory", root.display()),
            )
            .with_help("pass the repository's root directory"),
        );
    }
    let mut loaded = load_files(files, options);
    loaded.diagnostics.splice(0..0, errors);
    loaded
}

fn is_candidate(path: &str) -> bool {
    path == ".meshignore" || CONFIG_EXTENSIONS.iter().any(|e| path.ends_with(e))
}

fn is_nomad_path(path: &str) -> bool {
    path.ends_with(".nomad") || path.ends_with(".nomad.hcl")
}

/// Loads a repository given as files (from a directory or a git tree).
pub fn load_files(mut files: Vec<RepoFile>, options: &LoadOptions) -> Loaded {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    let ignore = files
        .iter()
        .find(|f| f.path == ".meshignore")
        .map(|f| meshignore(f, &mut sources, &mut diags));
    let mut b = Builder::default();
    for file in files {
        if file.path == ".meshignore" || !is_candidate(&file.path) {
            continue;
        }
        if let Some(ig) = &ignore {
            if ig
                .matched_path_or_any_parents(&file.path, false)
                .is_ignore()
            {
                continue;
            }
        }
        let format = b.load_file(file, &mut sources, &mut diags, options);
        b.files.push(format);
    }
    let mut state = b.assemble(&mut diags);
    state.sort();
    for span in std::mem::take(&mut b.redact) {
        sources.redact(span);
    }
    // A literal secret is reported where it is written (E0504 here, W1011 by the analysis); its
    // value must not reach an excerpt.
    for e in state.workload_env.iter().filter(|e| e.is_literal_secret()) {
        sources.redact_value(e.span);
    }
    for d in diags.iter().filter(|d| d.code == Code::LiteralSecret) {
        if let Some(span) = d.span {
            sources.redact_value(span);
        }
    }
    Loaded {
        state,
        diagnostics: diags.into_sorted(&sources),
        sources,
        files: b.files,
        guardrail_files: b.guardrails,
    }
}

fn meshignore(
    file: &RepoFile,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> ignore::gitignore::Gitignore {
    let text = String::from_utf8_lossy(&file.contents).into_owned();
    let id = sources.add(file.path.clone(), text.as_str());
    let mut builder = ignore::gitignore::GitignoreBuilder::new("");
    let mut offset = 0usize;
    for line in text.split_inclusive('\n') {
        let pattern = line.trim_end_matches(['\n', '\r']);
        if let Err(e) = builder.add_line(None, pattern) {
            diags.push(
                Diagnostic::new(
                    Code::MeshIgnore,
                    Span::new(id, offset, offset + pattern.len()),
                    format!("invalid .meshignore pattern: {e}"),
                )
                .with_help("patterns use gitignore syntax"),
            );
        }
        offset += line.len();
    }
    builder
        .build()
        .unwrap_or_else(|_| ignore::gitignore::Gitignore::empty())
}

#[derive(Default)]
struct Builder {
    files: Vec<LoadedFile>,
    settings: Option<Settings>,
    services: Vec<Service>,
    entries: Vec<(ConfigEntry, FieldSpans)>,
    own: Vec<OwnKind>,
    guardrails: Vec<(FileId, Node)>,
    env: Vec<mesh_model::WorkloadEnv>,
    agents: Vec<mesh_model::AgentConfig>,
    /// Literal secrets of agent files, masked in the source map once every file is read.
    redact: Vec<Span>,
}

impl Builder {
    fn load_file(
        &mut self,
        file: RepoFile,
        sources: &mut SourceMap,
        diags: &mut Diagnostics,
        options: &LoadOptions,
    ) -> LoadedFile {
        let path = file.path.clone();
        let text = match String::from_utf8(file.contents) {
            Ok(t) => t,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let id = sources.add(path.clone(), lossy);
                diags.push(
                    Diagnostic::new(
                        Code::NotUtf8,
                        Span::new(id, valid, valid + 1),
                        "file is not valid UTF-8",
                    )
                    .with_help("save the file as UTF-8"),
                );
                return LoadedFile {
                    path,
                    format: FileFormat::Invalid,
                };
            }
        };
        let id = sources.add(path.clone(), text.as_str());
        let format = self.load_text(&path, id, &text, diags, options);
        LoadedFile { path, format }
    }

    fn load_text(
        &mut self,
        path: &str,
        id: FileId,
        text: &str,
        diags: &mut Diagnostics,
        options: &LoadOptions,
    ) -> FileFormat {
        if path == "mesh-gitops.hcl" {
            return match mesh_syntax::parse_hcl(id, text) {
                Ok(node) => {
                    self.settings = Some(settings(&node, diags));
                    FileFormat::Settings
                }
                Err(e) => invalid(diags, e),
            };
        }
        if path.starts_with("policies/") && path.ends_with(".hcl") && !path[9..].contains('/') {
            return match mesh_syntax::parse_hcl(id, text) {
                Ok(node) => {
                    self.guardrails.push((id, node));
                    FileFormat::Guardrails
                }
                Err(e) => invalid(diags, e),
            };
        }
        if is_nomad_path(path) || (path.ends_with(".hcl") && looks_like_nomad(text)) {
            let job = mesh_nomad::load_job(id, text, &options.nomad_vars);
            diags.extend(job.diagnostics);
            self.services.extend(job.services);
            let job_id = job.job.unwrap_or_default();
            self.env
                .extend(job.task_env.into_iter().map(|e| mesh_model::WorkloadEnv {
                    workload: format!("{job_id}/{}/{}", e.group, e.task),
                    key: e.key,
                    value: e.value,
                    span: e.span,
                }));
            return FileFormat::NomadJob;
        }
        if path.ends_with(".hcl") || path.ends_with(".json") {
            let parsed = if path.ends_with(".hcl") {
                mesh_syntax::parse_hcl(id, text)
            } else {
                mesh_syntax::parse_json(id, text)
            };
            return match parsed {
                // Consul reads agent configuration in HCL or JSON only.
                Ok(node) if agent::is_agent_config(&node) => {
                    let (config, services) =
                        agent::agent_config(path, &node, diags, &mut self.redact);
                    self.agents.push(config);
                    self.services.extend(services);
                    FileFormat::AgentConfig
                }
                Ok(node) => self.object(&node, id, text, diags),
                Err(e) => invalid(diags, e),
            };
        }
        // YAML: one or more documents.
        match mesh_syntax::parse_yaml(id, text) {
            Ok(docs) => {
                let mut format = FileFormat::Invalid;
                for doc in &docs {
                    let f = if agent::is_helm_values(doc) {
                        self.agents
                            .push(agent::helm_values(path, doc, &mut self.redact));
                        FileFormat::HelmValues
                    } else {
                        self.object(doc, id, text, diags)
                    };
                    format = f.min(format);
                }
                if docs.is_empty() {
                    diags.push(
                        Diagnostic::new(
                            Code::UnrecognizedFile,
                            Span::new(id, 0, 0),
                            "empty YAML file",
                        )
                        .with_help("remove the file or add it to .meshignore"),
                    );
                }
                format
            }
            Err(e) => invalid(diags, e),
        }
    }

    /// Recognises one parsed object by its content.
    fn object(
        &mut self,
        node: &Node,
        id: FileId,
        text: &str,
        diags: &mut Diagnostics,
    ) -> FileFormat {
        if node.as_object().is_some() && k8s::is_k8s_resource(node) {
            if let Some(e) = k8s::resource(node, diags) {
                self.entries.push(e);
            }
            return FileFormat::KubernetesResources;
        }
        if let Some((kind, _)) = kind_of(node) {
            if MESH_GITOPS_KINDS.contains(&kind.as_str()) {
                if let Some(k) = own_kind(node, &kind, text, diags) {
                    self.own.push(k);
                }
                return FileFormat::MeshGitopsKind;
            }
            if let Some(mut e) = config_entry_located(node, diags) {
                crate::kinds::inline_certificate_key(&mut e.0, &e.1, diags);
                self.entries.push(e);
            }
            return FileFormat::ConfigEntry;
        }
        if node.as_object().is_some()
            && node.get_ci("name").is_some()
            && node.get_ci("job").is_none()
        {
            // Looks like a config entry that forgot its Kind: say so, not "unrecognised".
            config_entry(node, diags);
            return FileFormat::Invalid;
        }
        if node.as_object().is_some() && service_def::is_service_definition(node) {
            self.services
                .extend(service_def::service_definitions(node, diags));
            return FileFormat::ServiceDefinition;
        }
        let is_nomad_json = node.get_ci("job").is_some();
        let mut d = Diagnostic::new(
            Code::UnrecognizedFile,
            Span::new(id, node.span.start as usize, node.span.start as usize + 1),
            "this file matches no format mesh-gitops reads",
        );
        d = if is_nomad_json {
            d.with_help(
                "mesh-gitops reads Nomad jobs as HCL job files (*.nomad.hcl), not as API JSON",
            )
        } else if node.as_object().is_some() && node.get_ci("kind").is_none() {
            d.with_help(
                "a config entry needs `Kind`; a service definition `service { ... }`; add files \
                 that are not mesh configuration to .meshignore",
            )
        } else {
            d.with_help("add files that are not mesh configuration to .meshignore")
        };
        diags.push(d);
        FileFormat::Invalid
    }

    fn assemble(&mut self, diags: &mut Diagnostics) -> DesiredState {
        let mut state = DesiredState {
            settings: self.settings.take().unwrap_or_default(),
            workload_env: std::mem::take(&mut self.env),
            agents: std::mem::take(&mut self.agents),
            ..DesiredState::default()
        };
        // Config entries: normalized as Consul does on write, then validated.
        let mut seen: BTreeMap<(String, String), Span> = BTreeMap::new();
        // Where each kept entry's fields are written, for the problems across entries.
        let mut located = Vec::new();
        for (mut e, fields) in std::mem::take(&mut self.entries) {
            mesh_semantics::config_entry::normalize(&mut e);
            let key = (e.kind().as_str().to_owned(), e.name().to_owned());
            if let Some(first) = seen.get(&key) {
                diags.push(duplicate(
                    e.span(),
                    *first,
                    &format!("{} \"{}\"", key.0, key.1),
                ));
                continue;
            }
            seen.insert(key, e.span());
            if e.kind().as_str() == "bound-api-gateway" {
                diags.push(read_only_kind(e.span()));
                continue;
            }
            for mut d in mesh_semantics::config_entry::validate(&e) {
                fields.place(&mut d);
                // An Action that is neither allow nor deny was reported where it is written.
                if d.code == Code::IntentionAction && diags_mention(diags, &d) {
                    continue;
                }
                diags.push(d);
            }
            state.config_entries.push(e);
            located.push(fields);
        }
        // A repository is written whole: each entry is a write with nothing before it.
        let written = state.config_entries.iter().flat_map(|e| {
            mesh_semantics::cross_entry::validate_write(&state.config_entries, e, None)
        });
        let mut said = BTreeSet::new();
        let cross: Vec<_> = written
            .chain(mesh_semantics::config_entry::validate_graph(
                &state.config_entries,
            ))
            // A rule both of the write and of the set (an ingress listener's protocol) says
            // its problem once.
            .filter(|d| said.insert((d.message.clone(), d.span.map(|s| (s.start, s.end)))))
            .collect();
        for mut d in cross {
            if let Some(fields) = located.iter().find(|f| f.holds(d.span)) {
                fields.place(&mut d);
            }
            diags.push(d);
        }

        // Our own kinds. Names seen so far, per kind, for duplicates in linear time.
        let mut seen_own: BTreeMap<(&str, String), Span> = BTreeMap::new();
        let mut first_of = |kind: &'static str, name: &str, span: Span| -> Option<Span> {
            match seen_own.get(&(kind, name.to_owned())) {
                Some(first) => Some(*first),
                None => {
                    seen_own.insert((kind, name.to_owned()), span);
                    None
                }
            }
        };
        for k in std::mem::take(&mut self.own) {
            match k {
                OwnKind::Policy(p) => {
                    if let Some(first) = first_of("acl-policy", &p.name, p.span) {
                        diags.push(duplicate(
                            p.span,
                            first,
                            &format!("acl-policy \"{}\"", p.name),
                        ));
                    } else {
                        state.acl.policies.push(p);
                    }
                }
                OwnKind::Role(r) => {
                    if let Some(first) = first_of("acl-role", &r.name, r.span) {
                        diags.push(duplicate(
                            r.span,
                            first,
                            &format!("acl-role \"{}\"", r.name),
                        ));
                    } else {
                        state.acl.roles.push(r);
                    }
                }
                OwnKind::Token(t) => {
                    if let Some(first) = first_of("acl-token", &t.name, t.span) {
                        diags.push(duplicate(
                            t.span,
                            first,
                            &format!("acl-token \"{}\"", t.name),
                        ));
                    } else {
                        state.acl.tokens.push(t);
                    }
                }
                OwnKind::Ca(c) => match &state.ca_config {
                    Some(first) => diags.push(
                        Diagnostic::new(
                            Code::CaConfigTwice,
                            c.span,
                            "the repository defines ca-config more than once",
                        )
                        .with_label(first.span, "first defined here")
                        .with_help("the Connect CA has one configuration; keep one ca-config"),
                    ),
                    None => state.ca_config = Some(c),
                },
            }
        }

        // Services.
        let mut seen_services: BTreeMap<String, Span> = BTreeMap::new();
        for s in std::mem::take(&mut self.services) {
            if let Some(first) = seen_services.get(&s.name) {
                diags.push(
                    duplicate(s.span, *first, &format!("service \"{}\"", s.name)).with_help(
                        "declare each service once (a Nomad group's `count` runs more instances)",
                    ),
                );
                continue;
            }
            seen_services.insert(s.name.clone(), s.span);
            state.services.push(s);
        }
        check_references(&state, diags);
        if !diags.has_errors()
            && state.services.is_empty()
            && state.config_entries.is_empty()
            && state.acl.policies.is_empty()
            && state.acl.roles.is_empty()
            && state.acl.tokens.is_empty()
            && state.ca_config.is_none()
            && state.agents.is_empty()
        {
            diags.push(
                Diagnostic::global(Code::EmptyRepository, "the repository declares nothing")
                    .with_help("add config entries, service definitions or Nomad job files"),
            );
        }
        state
    }
}

fn diags_mention(diags: &Diagnostics, d: &Diagnostic) -> bool {
    diags.iter().any(|x| {
        x.code == d.code
            && match (x.span, d.span) {
                (Some(a), Some(b)) => a.file == b.file && a.start >= b.start && a.end <= b.end,
                _ => false,
            }
    })
}

fn duplicate(span: Span, first: Span, what: &str) -> Diagnostic {
    Diagnostic::new(
        Code::DuplicateObject,
        span,
        format!("{what} is defined twice"),
    )
    .with_label(first, "first defined here")
    .with_help("keep one definition of each object")
}

fn invalid(diags: &mut Diagnostics, errors: Vec<Diagnostic>) -> FileFormat {
    diags.extend(errors);
    FileFormat::Invalid
}

/// Nomad job files that do not end in `.nomad`/`.nomad.hcl`: a top-level `job`, `variable` or
/// `locals` block.
fn looks_like_nomad(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim_start();
        let indent = l.len() - t.len();
        indent == 0
            && [
                "job ",
                "job\t",
                "variable ",
                "variables ",
                "locals ",
                "locals{",
                "variables{",
            ]
            .iter()
            .any(|p| t.starts_with(p))
    })
}

/// References across objects: ACL links must resolve (error); intentions and upstreams should
/// name services the repository declares (warning).
fn check_references(state: &DesiredState, diags: &mut Diagnostics) {
    let policies: BTreeSet<&str> = state.acl.policies.iter().map(|p| p.name.as_str()).collect();
    let roles: BTreeSet<&str> = state.acl.roles.iter().map(|r| r.name.as_str()).collect();
    let missing = |diags: &mut Diagnostics, link: &mesh_model::AclLink, what: &str, owner: &str| {
        diags.push(
            Diagnostic::new(
                Code::AclMissingReference,
                link.span,
                format!(
                    "{owner} links {what} \"{}\", which the repository does not define",
                    link.name
                ),
            )
            .with_help(format!(
                "add an acl-{what} named \"{}\" or remove the link",
                link.name
            )),
        );
    };
    for r in &state.acl.roles {
        for p in r
            .policies
            .iter()
            .filter(|p| !policies.contains(p.name.as_str()))
        {
            missing(diags, p, "policy", &format!("acl-role \"{}\"", r.name));
        }
    }
    for t in &state.acl.tokens {
        for p in t
            .policies
            .iter()
            .filter(|p| !policies.contains(p.name.as_str()))
        {
            missing(diags, p, "policy", &format!("acl-token \"{}\"", t.name));
        }
        for r in t.roles.iter().filter(|r| !roles.contains(r.name.as_str())) {
            missing(diags, r, "role", &format!("acl-token \"{}\"", t.name));
        }
    }

    // A repository that declares no services (consul-k8s registers them through connect-inject)
    // cannot tell a typo from a service registered elsewhere.
    if state.services.is_empty() {
        return;
    }
    let mut known: BTreeSet<&str> = state.services.iter().map(|s| s.name.as_str()).collect();
    for e in &state.config_entries {
        if let ConfigEntry::ServiceDefaults(sd) = e {
            known.insert(sd.name.as_str());
        }
    }
    let unknown = |diags: &mut Diagnostics, name: &str, span: Span, role: &str| {
        diags.push(
            Diagnostic::new(
                Code::UnknownService,
                span,
                format!("{role} \"{name}\" is not declared by any service definition, job or service-defaults"),
            )
            .with_help("check the spelling, or declare the service in this repository"),
        );
    };
    for i in state.intentions() {
        if i.name != "*" && !known.contains(i.name.as_str()) {
            unknown(diags, &i.name, i.span, "intention destination");
        }
        for s in &i.sources {
            if s.name != "*"
                && s.peer.is_none()
                && s.sameness_group.is_none()
                && !known.contains(s.name.as_str())
            {
                unknown(diags, &s.name, s.span, "intention source");
            }
        }
    }
    for s in &state.services {
        for u in &s.upstreams {
            if !u.destination_name.contains("${") && !known.contains(u.destination_name.as_str()) {
                unknown(diags, &u.destination_name, u.span, "upstream");
            }
        }
    }
}

/// A `bound-api-gateway` entry in a repository: Consul's API gateway controller writes these
/// ("never written from the client", `BoundAPIGatewayConfigEntry` in
/// `agent/structs/config_entry_gateways.go`).
fn read_only_kind(span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::ReadOnlyKind,
        span,
        "bound-api-gateway entries are written by Consul's API gateway controller, not declared",
    )
    .with_help("declare the api-gateway and its routes; Consul derives the bound gateway")
}
