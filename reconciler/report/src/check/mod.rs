//! A check result (`check`): the verdict, the findings of the analysis, the declared upstreams
//! and their decisions, with a base what the change opened and closed, and the simulation.

pub mod chains;
pub mod github;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod text;

use mesh_check::CheckResult;

fn verdict(r: &CheckResult) -> &'static str {
    if r.failed() {
        "fail"
    } else {
        "pass"
    }
}

/// Errors and warnings among the findings.
fn counts(r: &CheckResult) -> (usize, usize) {
    let errors = r.analysis.findings.iter().filter(|d| d.is_error()).count();
    (errors, r.analysis.findings.len() - errors)
}

/// An edge's decision in one word; an L7 edge is allowed at L4, each request decided after.
fn decision(allowed: bool) -> &'static str {
    if allowed {
        "allow"
    } else {
        "deny"
    }
}

/// The mark after a service known only in Consul's catalog (`check --consul`), else nothing.
pub(crate) fn live_mark(r: &CheckResult, service: &str) -> &'static str {
    if r.live
        .as_ref()
        .is_some_and(|l| l.only_live.iter().any(|s| s == service))
    {
        " (live only)"
    } else {
        ""
    }
}

/// Load errors of the base, compared with what it declares nonetheless.
fn base_errors(base: &mesh_check::Base) -> usize {
    base.loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .count()
}

#[cfg(test)]
pub(crate) mod fixture {
    use mesh_check::{Base, CheckResult};
    use mesh_loader::{LoadOptions, Loaded, RepoFile};

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

    pub(crate) const SETTINGS: (&str, &str) = (
        "mesh-gitops.hcl",
        "datacenter = \"dc1\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\n",
    );

    /// `web` declares `api` and `db` as upstreams; `api` has no intention, so both are denied.
    pub(crate) const SERVICES: (&str, &str) = (
        "services.hcl",
        r#"services = [
  { name = "web", port = 8080, connect = { sidecar_service = { proxy = { upstreams = [
    { destination_name = "api", local_bind_port = 9090 },
    { destination_name = "db", local_bind_port = 5432 },
  ] } } } },
  { name = "api", port = 9090, connect = { sidecar_service = {} } },
  { name = "db", port = 5432, connect = { sidecar_service = {} } },
]
"#,
    );

    pub(crate) const ALLOW_API: (&str, &str) = (
        "intentions/api.hcl",
        "Kind = \"service-intentions\"\nName = \"api\"\nSources = [{ Name = \"web\", Action = \"allow\" }]\n",
    );

    pub(crate) const ALLOW_DB: (&str, &str) = (
        "intentions/db.hcl",
        "Kind = \"service-intentions\"\nName = \"db\"\nSources = [{ Name = \"web\", Action = \"allow\" }]\n",
    );

    /// The result of checking `head`, compared with `base` when given.
    pub(crate) fn result(head: &[(&str, &str)], base: Option<&[(&str, &str)]>) -> CheckResult {
        let head = load(head);
        let analysis = mesh_analysis::analyze(&head.state, &head.guardrail_files);
        let base = base.map(|files| {
            let loaded = load(files);
            let analysis = mesh_analysis::analyze(&loaded.state, &loaded.guardrail_files);
            Base {
                label: "main".into(),
                loaded,
                analysis,
            }
        });
        let diff = base
            .as_ref()
            .map(|b| mesh_analysis::diff(&b.analysis.graph, &analysis.graph));
        CheckResult {
            head,
            analysis,
            base,
            diff,
            simulation: None,
            live: None,
        }
    }

    /// `web -> db` allowed, `web -> api` denied (no intention, default deny).
    pub(crate) fn one_denied() -> CheckResult {
        result(&[SETTINGS, SERVICES, ALLOW_DB], None)
    }

    /// The change from `one_denied` that allows `web -> api` too.
    pub(crate) fn api_opened() -> CheckResult {
        result(
            &[SETTINGS, SERVICES, ALLOW_DB, ALLOW_API],
            Some(&[SETTINGS, SERVICES, ALLOW_DB]),
        )
    }
}
