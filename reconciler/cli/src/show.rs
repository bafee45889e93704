//! `mesh-gitops show`: the normalized desired state.

use crate::StateFormat;
use anyhow::Result;
use mesh_diagnostics::{SourceMap, Span};
use serde_json::{json, Map, Value};
use std::io::Write;

/// The desired state as JSON: `settings`, `services` (each with its `source` location),
/// `config_entries` (each the exact body `PUT /v1/config` receives), `acl`, `ca_config`.
pub fn state_json(loaded: &mesh_loader::Loaded) -> Result<Value> {
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
    let policies: Result<Vec<Value>> = state
        .acl
        .policies
        .iter()
        .map(|p| Ok(with_source(serde_json::to_value(p)?, p.span)))
        .collect();
    let roles: Result<Vec<Value>> = state
        .acl
        .roles
        .iter()
        .map(|r| Ok(with_source(serde_json::to_value(r)?, r.span)))
        .collect();
    let tokens: Result<Vec<Value>> = state
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
    Ok(Value::Object(out))
}

fn source(sources: &SourceMap, span: Span) -> Value {
    let loc = sources.location(span);
    json!({ "file": loc.file, "line": loc.line, "column": loc.column })
}

pub fn print(loaded: &mesh_loader::Loaded, format: StateFormat) -> Result<()> {
    let value = state_json(loaded)?;
    let mut out = std::io::stdout().lock();
    match format {
        StateFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &value)?;
            writeln!(out)?;
        }
        StateFormat::Yaml => {
            let text = serde_saphyr::to_string(&value)?;
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(())
}
