//! `import --out DIR` end to end: from a running `serve` reached over HTTP and from the embedded
//! control plane's state directory, the written repository validates and `plan` on it says no
//! changes; `--adopt` takes it over; no secret is ever written.

mod common;

use common::examples::expected_check_code;
use common::serve::{Serve, ServeOpts};
use common::{example, examples, mesh_gitops, Run};
use serde_json::json;
use std::path::Path;

fn serve_acl(state: &Path) -> Serve {
    Serve::start(
        state,
        ServeOpts {
            bootstrap_token: true,
            extra: vec!["--acl-default-policy".into(), "deny".into()],
            ..ServeOpts::default()
        },
    )
}

const SECRETS: &[(&str, &str)] = &[
    ("WEB_CONSUL_TOKEN", "6f1c2f0e-3b8a-4c55-9a41-7d0e5b2c9f10"),
    ("API_CONSUL_TOKEN", "0b9d4e7a-52c1-4f3e-8e6d-1a2b3c4d5e6f"),
];

fn against(server: &Serve, args: &[&str]) -> Run {
    let cwd = tempfile::tempdir().unwrap();
    server
        .mesh_gitops(args)
        .current_dir(cwd.path())
        .envs(SECRETS)
        .run()
}

/// Every file under `dir`, concatenated, for looking for secrets.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.push_str(&all_text(&p));
        } else {
            out.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    out
}

#[test]
fn every_example_applied_then_imported_plans_with_no_changes_and_no_secret() {
    for name in examples() {
        let state = tempfile::tempdir().unwrap();
        let server = serve_acl(state.path());
        let dir = example(&name);
        let mut args = vec!["apply", dir.to_str().unwrap()];
        if expected_check_code(&name) != 0 {
            args.push("--skip-check");
        }
        against(&server, &args).assert_code(0);
        let out = tempfile::tempdir().unwrap();
        let repo = out.path().join("repo");
        let import = against(&server, &["import", "--out", repo.to_str().unwrap()]);
        import.assert_code(0);
        mesh_gitops(&["validate", repo.to_str().unwrap()])
            .run()
            .assert_code(0);
        let plan = against(&server, &["plan", repo.to_str().unwrap()]);
        assert_eq!(plan.code, Some(0), "{name}: {}{}", plan.stdout, plan.stderr);
        assert!(
            plan.stdout.starts_with("No changes."),
            "{name}: {}",
            plan.stdout
        );
        let text = all_text(&repo);
        for (_, secret) in SECRETS {
            assert!(!text.contains(secret), "{name}: a secret was written");
        }
        assert!(
            !text.contains(server.token.as_deref().unwrap()),
            "{name}: the bootstrap token was written"
        );
    }
}

#[test]
fn a_hand_made_mesh_is_imported_readably_and_adopt_takes_it_over() {
    let state = tempfile::tempdir().unwrap();
    let server = serve_acl(state.path());
    let http = server.client();
    let put = |path: &str, body: serde_json::Value| {
        let r = http
            .put(format!("{}{path}", server.url()))
            .body(body.to_string())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
        r.json::<serde_json::Value>().unwrap()
    };
    put(
        "/v1/config",
        json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}}),
    );
    put(
        "/v1/config",
        json!({"Kind": "service-defaults", "Name": "api", "Protocol": "http",
               "Meta": {"team": "orders", "app.kubernetes.io/name": "api"}}),
    );
    put(
        "/v1/config",
        json!({"Kind": "service-intentions", "Name": "api", "Sources": [
            {"Name": "web", "Permissions": [{"Action": "allow",
                "HTTP": {"PathPrefix": "/v1/", "Methods": ["GET"]}}]},
            {"Name": "*", "Action": "deny", "Description": "nobody \"else\""}]}),
    );
    put(
        "/v1/acl/policy",
        json!({"Name": "api", "Description": "api registers itself",
               "Rules": "service \"api\" {\n  policy = \"write\"\n}\n"}),
    );
    put(
        "/v1/acl/role",
        json!({"Name": "operators", "Policies": [{"Name": "api"}],
               "ServiceIdentities": [{"ServiceName": "web"}]}),
    );
    let secret = "9a7b3c1d-0e2f-4a5b-8c6d-7e8f9a0b1c2d";
    put(
        "/v1/acl/token",
        json!({"SecretID": secret, "Description": "token for api",
               "Policies": [{"Name": "api"}], "Roles": [{"Name": "operators"}]}),
    );
    let out = tempfile::tempdir().unwrap();
    let repo = out.path().join("repo");
    let import = against(&server, &["import", "--out", repo.to_str().unwrap()]);
    import.assert_code(0);
    assert!(
        import.stdout.contains(
            "links to the built-in \"global-management\", which a repository cannot manage"
        ),
        "{}",
        import.stdout
    );
    let read = |p: &str| std::fs::read_to_string(repo.join(p)).unwrap();
    let defaults = read("config/service-defaults/api.hcl");
    assert!(defaults.contains("Protocol = \"http\""), "{defaults}");
    assert!(
        defaults.contains("\"app.kubernetes.io/name\" = \"api\""),
        "{defaults}"
    );
    let token = read("acl/tokens/token-for-api.hcl");
    assert!(
        token.contains("SecretIDFrom = \"env:CONSUL_TOKEN_TOKEN_FOR_API\""),
        "{token}"
    );
    assert!(read("acl/policies/api.hcl").contains("Rules = <<EOF\nservice \"api\" {"));
    assert!(read("mesh-gitops.hcl").contains("default_policy = \"deny\""));
    assert!(
        !all_text(&repo).contains(secret),
        "the token's secret was written"
    );
    // Unowned and identical: the plan changes nothing, but the token is not known by name.
    let plan = against(&server, &["plan", repo.to_str().unwrap()]);
    assert!(
        plan.stdout.contains("+ acl-token \"token-for-api\""),
        "{}",
        plan.stdout
    );
    // Adopted, everything is owned and the plan is empty.
    let again = out.path().join("again");
    let adopt = against(
        &server,
        &["import", "--adopt", "--out", again.to_str().unwrap()],
    );
    adopt.assert_code(0);
    assert!(
        adopt.stdout.contains("Adopted: 6 object(s) now owned."),
        "{}",
        adopt.stdout
    );
    let plan = against(&server, &["plan", again.to_str().unwrap()]);
    assert_eq!(plan.code, Some(0), "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.starts_with("No changes."), "{}", plan.stdout);
    let inventory: serde_json::Value = http
        .get(format!(
            "{}/v1/kv/mesh-gitops/mesh-gitops/inventory?raw",
            server.url()
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(inventory["objects"]["acl-token/token-for-api"].is_object());
    assert!(inventory["objects"]["service-intentions/api"].is_object());
    // A non-empty directory is never written into.
    let refused = against(&server, &["import", "--out", again.to_str().unwrap()]);
    refused.assert_code(1);
    assert!(
        refused.stderr.contains("is not empty"),
        "{}",
        refused.stderr
    );
}

#[test]
fn the_embedded_control_plane_is_imported_from_its_state_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        mesh_gitops(args)
            .current_dir(cwd.path())
            .envs(SECRETS)
            .run()
    };
    let prod = example("production");
    run(&["apply", prod.to_str().unwrap()]).assert_code(0);
    run(&["import", "--out", "imported"]).assert_code(0);
    let plan = run(&["plan", "imported"]);
    assert_eq!(plan.code, Some(0), "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.starts_with("No changes."), "{}", plan.stdout);
    assert!(
        std::fs::read_to_string(cwd.path().join("imported/mesh-gitops.hcl"))
            .unwrap()
            .contains("owner      = \"platform\"")
    );
}
