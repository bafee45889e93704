//! `check --consul`: the repository merged with what Consul holds now, compared with it.
//!
//! The live state ([`mesh_consul::LiveState`]) is the base; the head is what Consul will hold
//! once the repository is applied: the repository's entries in place of the live ones, the
//! entries of other owners and unowned ones kept, the entries carrying this owner's mark that
//! the repository no longer declares pruned (unless marked never to be), and in a destination
//! shared by owners the other owners' sources as they are in Consul beside the repository's.
//! Services are the repository's plus the catalog's Connect services it does not declare
//! (known only live, [`ServiceOrigin::Catalog`]), with the upstreams their sidecars declare, so
//! cutting one of those is the same error as cutting a declared one.
//!
//! Every live object is added to the source map as the JSON Consul answered, under its URL, so
//! a finding about it reads `http://consul:8500/v1/config/service-intentions:12:5`.

use crate::{Base, CheckResult};
use mesh_consul::{LiveEntry, LiveService, LiveState};
use mesh_diagnostics::{Code, Diagnostic, FileId, Severity, SourceMap, Span};
use mesh_loader::Loaded;
use mesh_model::{ConfigEntry, DesiredState, EntryKind, Service, ServiceIntentions};
use mesh_plan::shared::{self, SOURCES_PREFIX};
use std::collections::{BTreeMap, BTreeSet};

/// What a check against the live mesh knows beyond the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// The address the live state was read from.
    pub address: String,
    /// Connect services in Consul's catalog that the repository does not declare.
    pub only_live: Vec<String>,
    /// Config entries read.
    pub entries: usize,
}

/// The check of `head` (loaded, without errors) against `live`. The simulation is left to the
/// caller, as in [`crate::run`].
pub fn check_live(mut head: Loaded, live: &LiveState) -> CheckResult {
    let first_live = head.sources.len();
    let files = LiveFiles::add(&mut head.sources, live);
    let owner = head.state.settings.owner.clone();
    let declared: BTreeSet<&str> = head
        .state
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let only_live: Vec<&LiveService> = live
        .services
        .iter()
        .filter(|s| !declared.contains(s.service.name.as_str()))
        .collect();
    let live_entries = files.entries(live);
    let live_services = files.services(live.services.iter());
    let mut base_state = DesiredState {
        settings: head.state.settings.clone(),
        services: live_services.clone(),
        config_entries: live_entries.clone(),
        ..Default::default()
    };
    base_state.sort();
    let mut merged = head.state.clone();
    merged.config_entries = end_state(&head.state.config_entries, live_entries, &owner);
    merged.services = with_live(merged.services, live_services);
    merged.sort();
    let mut base_analysis = mesh_analysis::analyze(&base_state, &head.guardrail_files);
    let mut analysis = mesh_analysis::analyze(&merged, &head.guardrail_files);
    let is_live = |d: &Diagnostic| d.span.is_some_and(|s| s.file.0 as usize >= first_live);
    for f in [&mut base_analysis.findings, &mut analysis.findings] {
        // The other owners' sources are here, read from Consul: nothing is left unseen.
        f.retain(|d| d.code != Code::SharedDestination);
        f.iter_mut().filter(|d| is_live(d)).for_each(mark_live);
    }
    // A problem already in Consul is not this change's: told, not failed on.
    let before: BTreeSet<(Code, String)> = base_analysis
        .findings
        .iter()
        .map(|d| (d.code, d.message.clone()))
        .collect();
    for d in analysis
        .findings
        .iter_mut()
        .filter(|d| d.is_error() && is_live(d))
    {
        if before.contains(&(d.code, d.message.clone())) {
            d.severity = Severity::Warning;
            d.message.push_str("; already so in Consul");
        }
    }
    let diff = mesh_analysis::diff(&base_analysis.graph, &analysis.graph);
    let base = Base {
        label: format!("Consul at {}", live.address),
        loaded: Loaded {
            state: base_state,
            sources: head.sources.clone(),
            diagnostics: Vec::new(),
            files: Vec::new(),
            guardrail_files: head.guardrail_files.clone(),
        },
        analysis: base_analysis,
    };
    let summary = Live {
        address: live.address.clone(),
        only_live: only_live.iter().map(|s| s.service.name.clone()).collect(),
        entries: live.entries.len(),
    };
    head.state = merged;
    CheckResult {
        head,
        analysis,
        base: Some(base),
        diff: Some(diff),
        simulation: None,
        live: Some(summary),
    }
}

/// The repository's services with the live ones added: whole, a service it does not declare;
/// for one it declares, the upstreams its running sidecars have and the repository lacks, which
/// carry traffic until the service is deployed again.
fn with_live(mut services: Vec<Service>, live: Vec<Service>) -> Vec<Service> {
    let at: BTreeMap<String, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    for l in live {
        let Some(&i) = at.get(&l.name) else {
            services.push(l);
            continue;
        };
        let s = &mut services[i];
        for u in l.upstreams {
            if !s
                .upstreams
                .iter()
                .any(|x| x.destination_name == u.destination_name)
            {
                s.upstreams.push(u);
            }
        }
    }
    services
}

/// Says where a finding about a live object comes from.
fn mark_live(d: &mut Diagnostic) {
    d.message
        .push_str(" (read from Consul; not declared in this repository)");
}

/// The live objects' texts in the source map, by position in `live`.
struct LiveFiles {
    entries: Vec<FileId>,
    services: BTreeMap<String, FileId>,
}

impl LiveFiles {
    fn add(sources: &mut SourceMap, live: &LiveState) -> LiveFiles {
        let entries = live
            .entries
            .iter()
            .map(|e| sources.add(format!("{}{}", live.address, e.endpoint), e.text.clone()))
            .collect();
        let services = live
            .services
            .iter()
            .map(|s| {
                let id = sources.add(format!("{}{}", live.address, s.endpoint), s.text.clone());
                (s.service.name.clone(), id)
            })
            .collect();
        LiveFiles { entries, services }
    }

    /// Every live entry decoded again with its own file, so its spans point into it.
    fn entries(&self, live: &LiveState) -> Vec<ConfigEntry> {
        live.entries
            .iter()
            .zip(&self.entries)
            .map(|(e, id)| located(e, *id))
            .collect()
    }

    /// `services` with spans into their catalog answers.
    fn services<'a>(&self, services: impl Iterator<Item = &'a LiveService>) -> Vec<Service> {
        services
            .map(|s| {
                let id = self.services[&s.service.name];
                let mut service = s.service.clone();
                let whole = Span::new(id, 0, s.text.len());
                service.span =
                    find(&s.text, "DestinationServiceName", &service.name, id).unwrap_or(whole);
                for u in &mut service.upstreams {
                    u.span =
                        find(&s.text, "DestinationName", &u.destination_name, id).unwrap_or(whole);
                }
                service
            })
            .collect()
    }
}

/// The span of `"key": "value"` in a pretty-printed answer.
fn find(text: &str, key: &str, value: &str, id: FileId) -> Option<Span> {
    let needle = format!("\"{key}\": {}", serde_json::Value::from(value));
    text.find(&needle)
        .map(|at| Span::new(id, at, at + needle.len()))
}

fn located(e: &LiveEntry, id: FileId) -> ConfigEntry {
    let mut entry = mesh_syntax::parse_json(id, &e.text)
        .ok()
        .and_then(|node| mesh_loader::decode_server_entry(&node).ok())
        .map_or_else(|| e.stored.entry.clone(), |read| read.entry);
    mesh_semantics::config_entry::normalize(&mut entry);
    entry
}

fn key(e: &ConfigEntry) -> (EntryKind, String) {
    (e.kind(), e.name().to_owned())
}

/// What Consul holds once `repo` (this owner's entries) is applied over `live`.
fn end_state(repo: &[ConfigEntry], live: Vec<ConfigEntry>, owner: &str) -> Vec<ConfigEntry> {
    let declared: BTreeMap<(EntryKind, String), &ConfigEntry> =
        repo.iter().map(|e| (key(e), e)).collect();
    let mut out: Vec<ConfigEntry> = Vec::new();
    let mut seen = BTreeSet::new();
    for l in live {
        let k = key(&l);
        seen.insert(k.clone());
        match (declared.get(&k), &l) {
            (Some(ConfigEntry::ServiceIntentions(ours)), ConfigEntry::ServiceIntentions(have))
                if ours.is_shared() =>
            {
                out.push(ConfigEntry::ServiceIntentions(shared_merge(
                    ours, have, owner,
                )));
            }
            (Some(d), _) => out.push((*d).clone()),
            (None, ConfigEntry::ServiceIntentions(have)) if have.is_shared() => {
                let mut left = have.clone();
                let ours = shared::listed_sources(have, owner);
                left.sources.retain(|s| !ours.contains(&s.name));
                left.meta.remove(&shared::sources_key(owner));
                if !left.sources.is_empty() {
                    out.push(ConfigEntry::ServiceIntentions(left));
                }
            }
            (None, _) if pruned(&l, owner) => {}
            (None, _) => out.push(l),
        }
    }
    out.extend(repo.iter().filter(|e| !seen.contains(&key(e))).cloned());
    out
}

/// An entry this owner marks, no longer declared and not protected: apply deletes it.
fn pruned(e: &ConfigEntry, owner: &str) -> bool {
    let meta = e.meta();
    meta.get(mesh_plan::OWNER_KEY).map(String::as_str) == Some(owner)
        && meta.get(mesh_plan::PRUNE_KEY).map(String::as_str) != Some(mesh_plan::NEVER)
}

/// A shared destination as apply leaves it: the other owners' (and unowned) sources as they are
/// in Consul, this owner's as the repository declares them (see `mesh_plan::shared`).
fn shared_merge(
    ours: &ServiceIntentions,
    have: &ServiceIntentions,
    owner: &str,
) -> ServiceIntentions {
    let previous = shared::listed_sources(have, owner);
    let declared: BTreeSet<&str> = ours.sources.iter().map(|s| s.name.as_str()).collect();
    let mut merged = ours.clone();
    merged.sources.extend(
        have.sources
            .iter()
            .filter(|s| !previous.contains(&s.name) && !declared.contains(s.name.as_str()))
            .cloned(),
    );
    for (k, v) in &have.meta {
        if k.starts_with(SOURCES_PREFIX) && *k != shared::sources_key(owner) {
            merged.meta.insert(k.clone(), v.clone());
        }
    }
    mesh_semantics::intention::normalize(&mut merged);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_consul::StoredEntry;
    use mesh_loader::{LoadOptions, RepoFile};
    use serde_json::{json, Value};

    fn load(files: &[(&str, &str)]) -> Loaded {
        let files = files
            .iter()
            .map(|(path, text)| RepoFile {
                path: (*path).to_owned(),
                contents: text.as_bytes().to_vec(),
            })
            .collect();
        let loaded = mesh_loader::load_files(files, &LoadOptions::default());
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded
    }

    fn entry(v: Value) -> LiveEntry {
        let text = serde_json::to_string_pretty(&v).unwrap();
        let node = mesh_syntax::parse_json(FileId(0), &text).unwrap();
        let read = mesh_loader::decode_server_entry(&node).unwrap();
        LiveEntry {
            stored: StoredEntry {
                entry: read.entry,
                modify_index: 1,
                unknown: read.unknown,
                hash: None,
            },
            endpoint: format!("/v1/config/{}", v["Kind"].as_str().unwrap()),
            text,
        }
    }

    fn service(name: &str, upstreams: &[&str]) -> LiveService {
        let answer = json!([{"ServiceName": format!("{name}-sidecar-proxy"), "ServiceKind": "connect-proxy",
            "ServiceProxy": {"DestinationServiceName": name, "Upstreams": upstreams.iter().map(|u| json!({"DestinationName": u, "LocalBindPort": 9000})).collect::<Vec<_>>()}}]);
        let text = serde_json::to_string_pretty(&answer).unwrap();
        LiveService {
            service: Service {
                name: name.to_owned(),
                port: None,
                port_label: None,
                address: None,
                sidecar: true,
                native: false,
                instances: 1,
                upstreams: upstreams
                    .iter()
                    .map(|u| mesh_model::Upstream {
                        destination_name: (*u).to_owned(),
                        local_bind_port: 9000,
                        local_bind_address: None,
                        datacenter: None,
                        destination_type: None,
                        span: Default::default(),
                    })
                    .collect(),
                proxy_config: Default::default(),
                meta: Default::default(),
                origin: mesh_model::ServiceOrigin::Catalog,
                span: Default::default(),
            },
            endpoint: format!("/v1/catalog/service/{name}-sidecar-proxy"),
            text,
        }
    }

    const SETTINGS: (&str, &str) = (
        "mesh-gitops.hcl",
        "datacenter = \"dc1\"\nowner = \"a\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\n",
    );

    fn defaults(name: &str, meta: Value) -> LiveEntry {
        entry(json!({"Kind": "service-defaults", "Name": name, "Protocol": "tcp", "Meta": meta}))
    }

    #[test]
    fn the_head_is_consul_once_the_repository_is_applied() {
        let head = load(&[
            SETTINGS,
            (
                "api.hcl",
                "Kind = \"service-defaults\"\nName = \"api\"\nProtocol = \"http\"\n",
            ),
        ]);
        let live = LiveState {
            address: "http://consul:8500".into(),
            entries: vec![
                defaults("api", json!({"mesh-gitops-owner": "a"})),
                defaults("gone", json!({"mesh-gitops-owner": "a"})),
                defaults(
                    "kept",
                    json!({"mesh-gitops-owner": "a", "mesh-gitops-prune": "never"}),
                ),
                defaults("theirs", json!({"mesh-gitops-owner": "b"})),
                defaults("unowned", json!({})),
            ],
            services: Vec::new(),
            requests: 0,
        };
        let r = check_live(head, &live);
        let names: Vec<(&str, Option<&str>)> = r
            .head
            .state
            .config_entries
            .iter()
            .map(|e| match e {
                ConfigEntry::ServiceDefaults(d) => (d.name.as_str(), d.protocol.as_deref()),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            names,
            [
                ("api", Some("http")),
                ("kept", Some("tcp")),
                ("theirs", Some("tcp")),
                ("unowned", Some("tcp")),
            ],
            "the repository's api, the dropped owned entry pruned, the others kept"
        );
        assert_eq!(
            r.base.as_ref().unwrap().loaded.state.config_entries.len(),
            5
        );
        assert_eq!(
            r.base.as_ref().unwrap().label,
            "Consul at http://consul:8500"
        );
    }

    #[test]
    fn a_shared_destination_keeps_the_other_owners_sources_from_consul() {
        let head = load(&[
            SETTINGS,
            (
                "api.hcl",
                "Kind = \"service-intentions\"\nName = \"api\"\nMeta { \"mesh-gitops-shared\" = \"true\" }\nSources = [{ Name = \"web\", Action = \"allow\" }]\n",
            ),
        ]);
        let live = LiveState {
            address: "http://consul:8500".into(),
            entries: vec![entry(json!({"Kind": "service-intentions", "Name": "api",
                "Meta": {"mesh-gitops-shared": "true", "mesh-gitops-sources-a": "old",
                         "mesh-gitops-sources-b": "batch"},
                "Sources": [{"Name": "old", "Action": "allow"}, {"Name": "batch", "Action": "allow"}]}))],
            services: Vec::new(),
            requests: 0,
        };
        let r = check_live(head, &live);
        let i = r.head.state.intentions().next().unwrap();
        let mut sources: Vec<&str> = i.sources.iter().map(|s| s.name.as_str()).collect();
        sources.sort_unstable();
        assert_eq!(
            sources,
            ["batch", "web"],
            "ours replaced, the other owner's kept"
        );
        assert!(r.analysis.graph.decide("batch", "api").allowed);
        assert!(!r.analysis.graph.decide("old", "api").allowed);
        assert!(r
            .analysis
            .findings
            .iter()
            .all(|d| d.code != Code::SharedDestination));
        assert_eq!(
            r.diff.unwrap().closed,
            [("old".to_owned(), "api".to_owned())]
        );
    }

    #[test]
    fn a_live_only_service_is_analysed_and_old_problems_only_warn() {
        let head = load(&[SETTINGS]);
        let live = LiveState {
            address: "http://consul:8500".into(),
            entries: Vec::new(),
            services: vec![service("legacy", &["api"])],
            requests: 0,
        };
        let r = check_live(head, &live);
        assert_eq!(r.live.as_ref().unwrap().only_live, ["legacy"]);
        let denied = r
            .analysis
            .findings
            .iter()
            .find(|d| d.code == Code::UpstreamDenied)
            .unwrap();
        // Denied before the change as after it: not this change's fault.
        assert_eq!(denied.severity, Severity::Warning);
        assert!(
            denied.message.ends_with("; already so in Consul"),
            "{}",
            denied.message
        );
        let loc = crate::location(denied, &r.head.sources).unwrap();
        assert_eq!(
            loc.0,
            "http://consul:8500/v1/catalog/service/legacy-sidecar-proxy"
        );
        assert!(!r.failed());
    }

    #[test]
    fn a_live_upstream_the_repository_lacks_still_counts_until_redeployed() {
        // The repository's web no longer declares db, and drops db's intentions, which it owns.
        let head = load(&[
            SETTINGS,
            (
                "services.hcl",
                "services = [{ name = \"web\", port = 80, connect = { sidecar_service = { proxy = { upstreams = [{ destination_name = \"api\", local_bind_port = 9000 }] } } } }]\n",
            ),
        ]);
        let live = LiveState {
            address: "http://consul:8500".into(),
            entries: vec![entry(json!({"Kind": "service-intentions", "Name": "db",
                "Meta": {"mesh-gitops-owner": "a"},
                "Sources": [{"Name": "web", "Action": "allow"}]}))],
            services: vec![service("web", &["api", "db"])],
            requests: 0,
        };
        let r = check_live(head, &live);
        assert!(r.live.as_ref().unwrap().only_live.is_empty());
        let web = r.head.state.service("web").unwrap();
        let ups: Vec<&str> = web
            .upstreams
            .iter()
            .map(|u| u.destination_name.as_str())
            .collect();
        assert_eq!(ups, ["api", "db"]);
        assert_eq!(
            r.diff.as_ref().unwrap().closed,
            [("web".to_owned(), "db".to_owned())]
        );
        let cut = r
            .analysis
            .findings
            .iter()
            .find(|d| d.code == Code::UpstreamDenied && d.message.contains("\"db\""))
            .unwrap();
        assert!(cut.is_error(), "cut by this change: {cut:?}");
        assert!(r.failed());
    }
}
