//! Job files: the seed jobs, the fixture shapes from Nomad's own test suite (rewritten here), and
//! the mistakes Nomad rejects, each at its line and column.

use mesh_diagnostics::{Code, FileId, SourceMap};
use mesh_model::ServiceOrigin;
use mesh_nomad::{load_job, JobFile};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn load(text: &str) -> JobFile {
    load_job(FileId(0), text, &BTreeMap::new())
}

fn diag_at(text: &str, job: &JobFile, code: Code) -> (u32, u32) {
    let d = job
        .diagnostics
        .iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| panic!("no {code}: {:?}", job.diagnostics));
    let mut map = SourceMap::new();
    map.add("job.nomad.hcl", text);
    let loc = map.location(d.span.unwrap());
    (loc.line, loc.column)
}

fn wrap(service_body: &str) -> String {
    format!(
        "job \"web\" {{\n  group \"web\" {{\n    network {{\n      mode = \"bridge\"\n    }}\n    service {{\n{service_body}\n    }}\n  }}\n}}\n"
    )
}

#[test]
fn the_countdash_seed_job() {
    let job = load(include_str!(
        "../../../examples/countdash/countdash.nomad.hcl"
    ));
    assert!(job.diagnostics.is_empty(), "{:?}", job.diagnostics);
    assert_eq!(job.job.as_deref(), Some("countdash"));
    let names: Vec<&str> = job.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["count-api", "count-dashboard"]);
    let dash = &job.services[1];
    assert!(dash.sidecar);
    assert_eq!(dash.port, Some(9002));
    assert_eq!(dash.upstreams[0].destination_name, "count-api");
    assert_eq!(dash.upstreams[0].local_bind_port, 8080);
    assert_eq!(
        dash.origin,
        ServiceOrigin::NomadJob {
            job: "countdash".into(),
            group: "dashboard".into(),
            network_mode: "bridge".into()
        }
    );
    // The runtime interpolation in the task env stays literal.
    assert!(job
        .task_env
        .iter()
        .any(|e| e.value == "http://${NOMAD_UPSTREAM_ADDR_count_api}"));
}

#[test]
fn the_dynamic_app_seed_jobs() {
    let mysql = load(include_str!(
        "../../../examples/dynamic-app/jobs/mysql-server.nomad.hcl"
    ));
    assert!(mysql.diagnostics.is_empty(), "{:?}", mysql.diagnostics);
    assert_eq!(mysql.services[0].port_label.as_deref(), Some("db"));
    assert!(mysql
        .task_env
        .iter()
        .any(|e| e.key == "MYSQL_ROOT_PASSWORD" && e.value == "super-duper-password"));
    let app = load(include_str!(
        "../../../examples/dynamic-app/jobs/dynamic-app.nomad.hcl"
    ));
    assert!(app.diagnostics.is_empty(), "{:?}", app.diagnostics);
    assert_eq!(
        app.services[0].upstreams[0].destination_name,
        "mysql-server"
    );
    assert_eq!(app.services[0].upstreams[0].local_bind_port, 3306);
}

#[test]
fn repeated_upstream_blocks_keep_their_order_and_config_is_opaque() {
    let job = load(&wrap(
        "      name = \"example\"\n      port = \"8080\"\n      connect {\n        sidecar_service {\n          proxy {\n            local_service_port = 8080\n            upstreams {\n              destination_name = \"upstream1\"\n              local_bind_port  = 2001\n            }\n            upstreams {\n              destination_name = \"upstream2\"\n              local_bind_port  = 2002\n              config {\n                connect_timeout_ms = 9999\n                limits {\n                  max_connections = 10\n                }\n              }\n            }\n            config {\n              foo = \"bar\"\n            }\n          }\n        }\n      }",
    ));
    assert!(job.diagnostics.is_empty(), "{:?}", job.diagnostics);
    let ups: Vec<(&str, u16)> = job.services[0]
        .upstreams
        .iter()
        .map(|u| (u.destination_name.as_str(), u.local_bind_port))
        .collect();
    assert_eq!(ups, [("upstream1", 2001), ("upstream2", 2002)]);
    assert_eq!(job.services[0].proxy_config["foo"], "bar");
}

#[test]
fn variables_locals_functions_and_dynamic_upstreams_are_evaluated() {
    let text = r#"
variable "network_mode" {
  default = "bridge"
}
variable "deps" {
  default = ["api", "db"]
}
locals {
  prefix = "team"
  name   = "${local.prefix}-${upper("web")}"
  base   = 9000 + 100
}
job "web" {
  group "web" {
    network {
      mode = var.network_mode
    }
    service {
      name = lower(local.name)
      port = "8080"
      connect {
        sidecar_service {
          proxy {
            dynamic "upstreams" {
              for_each = var.deps
              iterator = dep
              content {
                destination_name = dep.value
                local_bind_port  = local.base + dep.key
              }
            }
          }
        }
      }
    }
  }
}
"#;
    let job = load(text);
    assert!(job.diagnostics.is_empty(), "{:?}", job.diagnostics);
    let s = &job.services[0];
    assert_eq!(s.name, "team-web");
    let ups: Vec<(&str, u16)> = s
        .upstreams
        .iter()
        .map(|u| (u.destination_name.as_str(), u.local_bind_port))
        .collect();
    assert_eq!(ups, [("api", 9100), ("db", 9101)]);
    let overridden = load_job(
        FileId(0),
        text,
        &BTreeMap::from([("network_mode".to_owned(), "host".to_owned())]),
    );
    assert!(overridden
        .diagnostics
        .iter()
        .any(|d| d.code == Code::NomadNetworkMode));
}

#[test]
fn runtime_references_stay_literal_and_unresolved_names_are_flagged() {
    let text = wrap("      name = \"web\"\n      port = \"8080\"\n      connect {\n        sidecar_service {\n          proxy {\n            upstreams {\n              destination_name = \"${NOMAD_META_x}\"\n              local_bind_port  = 9000\n            }\n          }\n        }\n      }");
    let job = load(&text);
    assert_eq!(
        job.services[0].upstreams[0].destination_name,
        "${NOMAD_META_x}"
    );
    assert_eq!(diag_at(&text, &job, Code::UnresolvedName), (13, 34));
}

#[test]
fn nomad_rejections_point_at_their_blocks() {
    let host = "job \"web\" {\n  group \"web\" {\n    network {\n      mode = \"host\"\n    }\n    service {\n      name = \"web\"\n      connect {\n        sidecar_service {}\n      }\n    }\n  }\n}\n";
    assert_eq!(diag_at(host, &load(host), Code::NomadNetworkMode), (8, 7));

    let both = wrap("      name = \"web\"\n      connect {\n        native = true\n        sidecar_service {}\n      }");
    assert_eq!(diag_at(&both, &load(&both), Code::NomadConnectKind), (8, 7));

    // A problem with the name points at its key.
    let upper = wrap("      name = \"Web\"\n      connect {\n        sidecar_service {}\n      }");
    assert_eq!(
        diag_at(&upper, &load(&upper), Code::NomadServiceName),
        (7, 7)
    );

    let attr = wrap("      name = \"web\"\n      connect {\n        sidecar_service {\n          proxy {\n            upstreams = [{ destination_name = \"a\", local_bind_port = 1 }]\n          }\n        }\n      }");
    assert_eq!(
        diag_at(&attr, &load(&attr), Code::NomadUnsupported),
        (11, 13)
    );

    let dup = wrap("      name = \"web\"\n      connect {\n        sidecar_service {\n          proxy {\n            upstreams {\n              destination_name = \"a\"\n              local_bind_port = 9000\n            }\n            upstreams {\n              destination_name = \"b\"\n              local_bind_port = 9000\n            }\n          }\n        }\n      }");
    assert_eq!(
        diag_at(&dup, &load(&dup), Code::NomadDuplicateBindPort),
        (15, 13)
    );

    // "" and 127.0.0.1 on the same port pass Nomad's textual check, as in Nomad.
    let textual = wrap("      name = \"web\"\n      connect {\n        sidecar_service {\n          proxy {\n            upstreams {\n              destination_name = \"a\"\n              local_bind_port = 9000\n            }\n            upstreams {\n              destination_name = \"b\"\n              local_bind_address = \"127.0.0.1\"\n              local_bind_port = 9000\n            }\n          }\n        }\n      }");
    assert!(load(&textual).diagnostics.is_empty());

    let no_port = wrap("      name = \"web\"\n      connect {\n        sidecar_service {\n          proxy {\n            upstreams {\n              destination_name = \"a\"\n            }\n          }\n        }\n      }");
    assert_eq!(
        diag_at(&no_port, &load(&no_port), Code::NomadUpstream),
        (11, 13)
    );

    let unknown = wrap("      name = \"web\"\n      connect {\n        sidecar_service {\n          proxy {\n            upstream {\n              destination_name = \"a\"\n            }\n          }\n        }\n      }");
    assert_eq!(
        diag_at(&unknown, &load(&unknown), Code::NomadStructure),
        (11, 13)
    );

    let hcl1 = "job \"web\" {\n  \"datacenters\" = [\"dc1\"]\n}\n";
    assert_eq!(load(hcl1).diagnostics[0].code, Code::NomadSyntax);

    let unset = "variable \"p\" {}\njob \"web\" {\n  group \"g\" {\n    count = var.p\n  }\n}\n";
    assert_eq!(diag_at(unset, &load(unset), Code::NomadEval), (4, 13));
}

#[test]
fn a_bogus_mesh_gateway_mode_is_accepted_as_nomad_does() {
    let text = wrap("      name = \"web\"\n      connect {\n        sidecar_service {\n          proxy {\n            upstreams {\n              destination_name = \"a\"\n              local_bind_port = 9000\n              mesh_gateway {\n                mode = \"bogus\"\n              }\n            }\n          }\n        }\n      }");
    assert!(load(&text).diagnostics.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn no_input_panics(text in ".{0,200}") {
        let _ = load(&text);
    }

    #[test]
    fn no_mutation_of_a_valid_job_panics(cut in 0usize..1200, insert in prop::sample::select(vec!["{", "}", "\"", "${", "=", "[", "var.", "local.", "dynamic \"upstreams\" {", "\n"])) {
        let base = include_str!("../../../examples/countdash/countdash.nomad.hcl");
        let mut at = cut.min(base.len());
        while !base.is_char_boundary(at) { at -= 1; }
        let text = format!("{}{}{}", &base[..at], insert, &base[at..]);
        let _ = load(&text);
    }
}
