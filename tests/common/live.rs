//! A `serve` with ACLs enforced (default deny) and a token holding only the documented
//! read-only policy (`examples/deploy/read-only-policy.hcl`), for `check --consul`.

use super::root;
use super::serve::{Serve, ServeOpts};
use serde_json::{json, Value};
use std::path::Path;

/// `serve` on `state`, ACLs on with default deny, keeping the bootstrap (management) token.
pub fn serve_with_acls(state: &Path) -> Serve {
    Serve::start(
        state,
        ServeOpts {
            bootstrap_token: true,
            extra: vec!["--acl-default-policy".into(), "deny".into()],
            ..Default::default()
        },
    )
}

/// A PUT with the management token; the answer's JSON (`Null` when it is not JSON).
pub fn put(s: &Serve, path: &str, body: Value) -> Value {
    let resp = s
        .client()
        .put(format!("{}{path}", s.url()))
        .body(body.to_string())
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    serde_json::from_str(&resp.text().unwrap()).unwrap_or(Value::Null)
}

/// A new token holding only the read-only policy; its secret.
pub fn read_only_token(s: &Serve) -> String {
    let rules =
        std::fs::read_to_string(root().join("examples/deploy/read-only-policy.hcl")).unwrap();
    let name = format!("mesh-gitops-read-{}", uuid::Uuid::new_v4());
    put(s, "/v1/acl/policy", json!({"Name": name, "Rules": rules}));
    let token = put(s, "/v1/acl/token", json!({"Policies": [{"Name": name}]}));
    token["SecretID"].as_str().unwrap().to_owned()
}
