//! Decoding 10,000 token answers as `GET /v1/acl/tokens` lists them: typed (`mesh_wire`) beside
//! the JSON tree the answer is parsed into first. Prints figures; asserts nothing about time.

use serde_json::{json, Value};
use std::time::Instant;

fn main() {
    let list: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({
                "AccessorID": format!("00000000-0000-0000-0000-{i:012}"),
                "SecretID": format!("11111111-0000-0000-0000-{i:012}"),
                "Description": format!("mesh-gitops: token-{i}"),
                "Policies": [{ "ID": "p", "Name": format!("policy-{}", i % 50) }],
                "ServiceIdentities": [{ "ServiceName": format!("svc-{i}"), "Datacenters": ["dc1"] }],
                "Local": false, "CreateTime": "2026-12-01T04:00:00Z",
                "Hash": "UuiRkOQPRZ3Y4t6bd4jBAJy1ZUvXVo4qoU8tJNhKeJk=",
                "CreateIndex": i, "ModifyIndex": i,
            })
        })
        .collect();
    let text = serde_json::to_vec(&list).unwrap();
    let start = Instant::now();
    let parsed: Value = serde_json::from_slice(&text).unwrap();
    let parse = start.elapsed();
    let start = Instant::now();
    let typed: Vec<mesh_wire::AclObject> = parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| mesh_wire::AclObject::token(v).unwrap())
        .collect();
    let decode = start.elapsed();
    let start = Instant::now();
    let mut stripped = parsed.clone();
    mesh_wire::strip_secrets(&mut stripped);
    let strip = start.elapsed();
    println!(
        "{} tokens, {} KiB: parse {:.1} ms, typed decode {:.1} ms, clone and strip_secrets on the tree (the former read path) {:.1} ms",
        typed.len(),
        text.len() / 1024,
        parse.as_secs_f64() * 1e3,
        decode.as_secs_f64() * 1e3,
        strip.as_secs_f64() * 1e3,
    );
}
