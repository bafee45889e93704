//! `show --format json`: `settings`, `services` (each with its `source` location),
//! `config_entries` (each the exact body `PUT /v1/config` receives), `acl`, `ca_config`, and
//! `agents` when the repository has Consul agent configuration or Helm values (each setting by
//! its key path, a literal secret as `<secret>`).

use crate::Error;
use mesh_diagnostics::{SourceMap, Span};
use mesh_loader::Loaded;
use serde_json::{json, Map, Value};

pub fn value(loaded: &Loaded) -> Result<Value, Error> {
    let state = &loaded.state;
    let sources = &loaded.sources;
    let mut services = Vec::new();
    for s in &state.services {
        let mut v = serde_json::to_value(s)?;
        if let Value::Object(m) = &mut v {
            m.insert("source".into(), source(sources, s.span));
        }
        services.push(v);
    }
    let entries: Vec<Value> = state.config_entries.iter().map(|e| e.to_json()).collect();
    let with_source = |v: Value, span: Span| -> Value {
        let mut v = v;
        if let Value::Object(m) = &mut v {
            m.insert("Source".into(), source(sources, span));
        }
        v
    };
    let policies: Result<Vec<Value>, Error> = state
        .acl
        .policies
        .iter()
        .map(|p| Ok(with_source(serde_json::to_value(p)?, p.span)))
        .collect();
    let roles: Result<Vec<Value>, Error> = state
        .acl
        .roles
        .iter()
        .map(|r| Ok(with_source(serde_json::to_value(r)?, r.span)))
        .collect();
    let tokens: Result<Vec<Value>, Error> = state
        .acl
        .tokens
        .iter()
        .map(|t| Ok(with_source(serde_json::to_value(t)?, t.span)))
        .collect();
    let ca = match &state.ca_config {
        Some(c) => with_source(serde_json::to_value(c)?, c.span),
        None => Value::Null,
    };
    let mut settings = serde_json::to_value(&state.settings)?;
    if let (Value::Object(m), Some(span)) = (&mut settings, state.settings.span) {
        m.insert("source".into(), source(sources, span));
    }
    let mut out = Map::new();
    out.insert("settings".into(), settings);
    out.insert("services".into(), Value::Array(services));
    out.insert("config_entries".into(), Value::Array(entries));
    out.insert(
        "acl".into(),
        json!({ "policies": policies?, "roles": roles?, "tokens": tokens? }),
    );
    out.insert("ca_config".into(), ca);
    if !state.agents.is_empty() {
        let agents: Result<Vec<Value>, Error> = state
            .agents
            .iter()
            .map(|a| Ok(serde_json::to_value(a)?))
            .collect();
        out.insert("agents".into(), Value::Array(agents?));
    }
    Ok(Value::Object(out))
}

fn source(sources: &SourceMap, span: Span) -> Value {
    let loc = sources.location(span);
    json!({ "file": loc.file, "line": loc.line, "column": loc.column })
}

/// The document, pretty-printed, with a final newline.
pub fn render(loaded: &Loaded) -> Result<String, Error> {
    Ok(format!(
        "{}\n",
        serde_json::to_string_pretty(&value(loaded)?)?
    ))
}

#[cfg(test)]
mod tests {
    use super::value;
    use crate::check::fixture::{SERVICES, SETTINGS};
    use mesh_loader::{LoadOptions, RepoFile};

    #[test]
    fn every_service_says_where_it_was_declared() {
        let files = [SETTINGS, SERVICES]
            .into_iter()
            .map(|(path, text)| RepoFile {
                path: path.into(),
                contents: text.as_bytes().to_vec(),
            })
            .collect();
        let loaded = mesh_loader::load_files(files, &LoadOptions::default());
        let v = value(&loaded).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["settings", "services", "config_entries", "acl", "ca_config"]
        );
        let services = v["services"].as_array().unwrap();
        assert_eq!(services.len(), 3);
        for s in services {
            assert_eq!(s["source"]["file"], "services.hcl", "{s}");
        }
        assert_eq!(v["settings"]["source"]["file"], "mesh-gitops.hcl");
        assert_eq!(v["ca_config"], serde_json::Value::Null);
    }
}
