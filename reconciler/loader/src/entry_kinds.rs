//! The config-entry kinds decoded by schema into an [`OtherEntry`]: gateways, routes,
//! certificates, exported services, sameness groups, JWT providers and request limits
//! (`crate::schema_kinds`). Their body is canonical JSON: Consul's field spelling, zero values
//! dropped as Consul's `omitempty` drops them, whatever the file's format or case.

use crate::decode::{Decoded, Decoder, Mode, Schema};
use mesh_diagnostics::{Code, Diagnostic, Diagnostics};
use mesh_model::OtherEntry;
use mesh_syntax::Node;
use serde_json::Value;

/// Decodes `node`, an entry of `kind`, with `schema`, in either mode.
pub(crate) fn decode(
    node: &Node,
    kind: &str,
    schema: &'static Schema,
    mode: Mode,
    diags: &mut Diagnostics,
) -> (Option<OtherEntry>, Decoded) {
    let mut d = Decoder::with_mode(diags, mode).decode(node, schema, &["Kind"]);
    let name = match d.json.remove("Name") {
        Some(Value::String(n)) => n,
        _ => String::new(),
    };
    let meta = match d.json.remove("Meta") {
        Some(Value::Object(m)) => m
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
            .collect(),
        _ => Default::default(),
    };
    // `exported-services` is named after its partition; an empty name is Consul's validation
    // error (`validateExportedServicesName`), reported by mesh-semantics with Consul's text.
    if name.is_empty() && kind != "exported-services" {
        diags.push(
            Diagnostic::new(
                Code::MissingField,
                node.span,
                // Consul's text (`JWTProviderConfigEntry.Validate`; the other kinds' names are
                // required by the state store's key).
                "Name is required",
            )
            .with_help("add `Name = \"...\"`"),
        );
        return (None, d);
    }
    let entry = OtherEntry {
        kind: kind.to_owned(),
        name,
        meta,
        body: std::mem::take(&mut d.json),
        span: node.span,
    };
    (Some(entry), d)
}

#[cfg(test)]
mod tests {
    use crate::{decode_config_entry, decode_server_entry};
    use mesh_diagnostics::{Code, FileId};
    use mesh_model::ConfigEntry;
    use serde_json::json;

    fn hcl(text: &str) -> Result<ConfigEntry, Vec<mesh_diagnostics::Diagnostic>> {
        decode_config_entry(&mesh_syntax::parse_hcl(FileId(0), text).unwrap())
    }

    fn json_node(text: &str) -> mesh_syntax::Node {
        mesh_syntax::parse_json(FileId(0), text).unwrap()
    }

    #[test]
    fn a_file_s_spelling_becomes_consul_s_and_unknown_keys_fail_at_the_key() {
        let e = hcl(
            "kind = \"ingress-gateway\"\nname = \"in\"\nlisteners = [{ port = 8080, protocol = \"http\", services = [{ name = \"web\", request_headers = { add = { x = \"1\" } } }] }]\n",
        )
        .unwrap();
        assert_eq!(
            e.to_json(),
            json!({"Kind": "ingress-gateway", "Name": "in", "Listeners": [{"Port": 8080,
                "Protocol": "http", "Services": [{"Name": "web",
                "RequestHeaders": {"Add": {"x": "1"}}}]}]})
        );
        let errors =
            hcl("Kind = \"jwt-provider\"\nName = \"okta\"\nIssuer = \"x\"\nIssuers = \"y\"\n")
                .unwrap_err();
        assert_eq!(errors[0].code, Code::UnknownKey);
        assert_eq!(errors[0].help.as_deref(), Some("did you mean \"Issuer\"?"));
    }

    #[test]
    fn ce_rejects_api_gateway_jwt_and_namespaces_by_name() {
        let errors = hcl(
            "Kind = \"api-gateway\"\nName = \"gw\"\nListeners = [{ Name = \"l\", Port = 80, Protocol = \"http\", Override = { JWT = { Providers = [] } } }]\n",
        )
        .unwrap_err();
        assert_eq!(errors[0].code, Code::EnterpriseOnly);
        assert!(errors[0]
            .message
            .contains("api-gateway jwt validation is a consul enterprise feature"));
        let errors =
            hcl("Kind = \"terminating-gateway\"\nName = \"t\"\nServices = [{ Name = \"a\", Namespace = \"ns\" }]\n")
                .unwrap_err();
        assert_eq!(errors[0].code, Code::EnterpriseOnly);
    }

    #[test]
    fn a_server_answer_with_status_and_zero_values_equals_the_file() {
        let file = hcl(
            "Kind = \"http-route\"\nName = \"r\"\nParents = [{ Kind = \"api-gateway\", Name = \"gw\" }]\nRules = [{ Services = [{ Name = \"web\" }] }]\n",
        )
        .unwrap();
        let answer = r#"{"Kind": "http-route", "Name": "r", "Parents": [{"Kind": "api-gateway",
            "Name": "gw", "SectionName": ""}], "Rules": [{"Filters": {"Headers": null,
            "URLRewrite": null}, "ResponseFilters": {"Headers": null}, "Matches": null,
            "Services": [{"Name": "web", "Weight": 0, "Filters": {}, "ResponseFilters": {}}]}],
            "Hostnames": null, "Meta": null, "Status": {"Conditions": [{"Type": "Accepted"}]},
            "Hash": 7, "CreateIndex": 3, "ModifyIndex": 4, "FieldOfANewerConsul": true}"#;
        let read = decode_server_entry(&json_node(answer)).unwrap();
        assert_eq!(read.entry.to_json(), file.to_json());
        assert!(read.server.contains_key("Status"));
        assert_eq!(read.unknown["/FieldOfANewerConsul"], true);
    }

    #[test]
    fn rates_are_numbers_and_durations_take_go_spelling() {
        let e = hcl(
            "Kind = \"control-plane-request-limit\"\nName = \"global\"\nMode = \"permissive\"\nread_rate = 100.5\nKV { write_rate = \"20\" }\n",
        )
        .unwrap();
        assert_eq!(e.to_json()["ReadRate"], 100.5);
        assert_eq!(e.to_json()["KV"]["WriteRate"], 20.0);
        let e = hcl(
            "Kind = \"jwt-provider\"\nName = \"okta\"\nJSONWebKeySet { Remote { URI = \"https://x\", CacheDuration = \"300s\" } }\n",
        )
        .unwrap();
        assert_eq!(
            e.to_json()["JSONWebKeySet"]["Remote"]["CacheDuration"],
            "5m0s"
        );
    }
}
