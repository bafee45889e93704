//! A current Consul's answers, in front of the embedded control plane: an HTTP proxy on a real
//! loopback socket that forwards every request to a running `mesh-gitops serve` and reshapes the
//! config entries it answers the way Consul 1.17 and later writes them:
//!
//! - `Hash` on every entry (each kind's `Normalize` sets it with `HashConfigEntry`; `GetHash`
//!   and `SetHash` are methods of the `ConfigEntry` interface, `agent/structs/config_entry.go`);
//! - Go's `encoding/json` writes a struct field that is not a pointer even when it is zero, and
//!   fields without `omitempty` even when empty: `service-defaults` has `"Protocol": ""`,
//!   `"TransparentProxy": {}`, `"MeshGateway": {}`, `"Expose": {}` (`ServiceConfigEntry`);
//!   `proxy-defaults` has `"Config": null` and those three plus `"AccessLogs": {}`
//!   (`ProxyConfigEntry`); `mesh` has `"TransparentProxy": {"MeshDestinationsOnly": false}`
//!   (`MeshConfigEntry` in `agent/structs/config_entry_mesh.go`, no `omitempty` there);
//!   `service-intentions` has `"Sources": null` when it has none, and every source its
//!   `Precedence` and `Type` (`SourceIntention` in `agent/structs/config_entry_intentions.go`);
//! - a field from a version newer than ours, at the top and nested, which a client must keep
//!   but must not fail on or compare.
//!
//! It counts the config-entry writes that pass through it, so a test can tell that a plan or a
//! reconcile pass wrote nothing.

use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The name of the field a newer Consul adds; no version we know has it.
pub const NEWER_FIELD: &str = "FieldOfANewerConsul";

/// The proxy, listening until the test process ends.
pub struct CurrentConsul {
    addr: String,
    writes: Arc<AtomicUsize>,
}

impl CurrentConsul {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> CurrentConsul {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let addr = listener.local_addr().unwrap().to_string();
        let writes = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.trim_end_matches('/').to_owned();
        let counter = writes.clone();
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                // Blocking queries wait up to their `wait`; the client's own timeout is longer.
                .timeout(Duration::from_secs(600))
                .build()
                .unwrap();
            for conn in listener.incoming().flatten() {
                let (http, upstream, counter) = (http.clone(), upstream.clone(), counter.clone());
                std::thread::spawn(move || {
                    let _ = serve_one(conn, &http, &upstream, &counter);
                });
            }
        });
        CurrentConsul { addr, writes }
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many config-entry writes (PUT `/v1/config`, DELETE `/v1/config/...`) passed.
    pub fn config_writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(conn: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Request {
        method,
        target,
        headers,
        body,
    })
}

fn serve_one(
    mut conn: TcpStream,
    http: &reqwest::blocking::Client,
    upstream: &str,
    writes: &AtomicUsize,
) -> std::io::Result<()> {
    let req = read_request(&conn)?;
    let path = req.target.split('?').next().unwrap_or_default().to_owned();
    let is_write = (req.method == "PUT" && path == "/v1/config")
        || (req.method == "DELETE" && path.starts_with("/v1/config/"));
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
    let mut forward = http.request(method, format!("{upstream}{}", req.target));
    for (k, v) in &req.headers {
        let skip = ["host", "content-length", "connection", "transfer-encoding"];
        if !skip.iter().any(|s| s.eq_ignore_ascii_case(k)) {
            forward = forward.header(k, v);
        }
    }
    let answer = match forward.body(req.body).send() {
        Ok(a) => a,
        Err(e) => {
            let msg = format!("proxy: {e}");
            let head = format!(
                "HTTP/1.1 502 Bad Gateway\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                msg.len()
            );
            conn.write_all(head.as_bytes())?;
            return conn.write_all(msg.as_bytes());
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let mut body = answer.bytes().map(|b| b.to_vec()).unwrap_or_default();
    if is_write && status.is_success() {
        writes.fetch_add(1, Ordering::SeqCst);
    }
    if req.method == "GET" && path.starts_with("/v1/config/") && status.is_success() {
        if let Ok(mut v) = serde_json::from_slice::<Value>(&body) {
            match &mut v {
                Value::Array(items) => items.iter_mut().for_each(reshape),
                entry => reshape(entry),
            }
            body = serde_json::to_vec(&v).unwrap();
        }
    }
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (k, v) in &headers {
        let skip = ["content-length", "connection", "transfer-encoding"];
        if !skip.iter().any(|s| k.as_str().eq_ignore_ascii_case(s)) {
            head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or("")));
        }
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    conn.write_all(head.as_bytes())?;
    conn.write_all(&body)
}

/// Sets `key` to `value` unless the entry has it.
fn absent(obj: &mut Map<String, Value>, key: &str, value: Value) {
    obj.entry(key.to_owned()).or_insert(value);
}

/// One entry as a current Consul answers it (see the module documentation).
pub fn reshape(entry: &mut Value) {
    let Some(obj) = entry.as_object_mut() else {
        return;
    };
    let kind = obj.get("Kind").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "service-defaults" => {
            absent(obj, "Protocol", json!(""));
            absent(obj, "TransparentProxy", json!({}));
            absent(obj, "MeshGateway", json!({}));
            absent(obj, "Expose", json!({}));
            if let Some(Value::Object(tp)) = obj.get_mut("TransparentProxy") {
                tp.insert(NEWER_FIELD.into(), json!({"Enabled": true}));
            }
        }
        "proxy-defaults" => {
            absent(obj, "Config", Value::Null);
            absent(obj, "TransparentProxy", json!({}));
            absent(obj, "MeshGateway", json!({}));
            absent(obj, "Expose", json!({}));
            absent(obj, "AccessLogs", json!({}));
        }
        "mesh" => {
            absent(obj, "TransparentProxy", json!({}));
            if let Some(Value::Object(tp)) = obj.get_mut("TransparentProxy") {
                absent(tp, "MeshDestinationsOnly", json!(false));
            }
        }
        "service-intentions" => {
            absent(obj, "Sources", Value::Null);
            if let Some(Value::Array(sources)) = obj.get_mut("Sources") {
                for s in sources.iter_mut().filter_map(Value::as_object_mut) {
                    absent(s, "Precedence", json!(0));
                    absent(s, "Type", json!("consul"));
                }
            }
        }
        _ => {}
    }
    // Consul's hash is hashstructure's over the entry; any number has the answer's shape.
    let hash = fnv1a(entry.to_string().as_bytes());
    let obj = entry.as_object_mut().unwrap();
    obj.insert("Hash".into(), json!(hash));
    obj.insert(NEWER_FIELD.into(), json!("set by a newer Consul"));
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
