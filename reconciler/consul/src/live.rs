//! The live mesh: what Consul holds now, read once into the model the repository loads into.
//!
//! [`read_live`] reads every config entry of every kind the token can read (all owners; Consul
//! leaves out what the token may not read), decoded with the loader's tolerant decoder, and the
//! catalog's Connect services: every service with a sidecar proxy (`Kind = "connect-proxy"`)
//! or Connect-native instances, with the upstreams its sidecars declare. Only reads: the token
//! needs no write permission (see `docs/live.md` for the least-privilege policy).
//!
//! Each object keeps the JSON text it was read as and the endpoint it came from, so a finding
//! about a live object can point at `ADDRESS/v1/...:line:col` like one about a file.

use crate::{Client, ConsulError, StoredEntry};
use mesh_model::{EntryKind, Service, ServiceOrigin, Upstream};
use serde_json::Value;
use std::collections::BTreeMap;

/// What Consul holds now.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    /// The address it was read from.
    pub address: String,
    /// Every config entry the token can read, sorted by kind then name.
    pub entries: Vec<LiveEntry>,
    /// The catalog's Connect services, sorted by name.
    pub services: Vec<LiveService>,
    /// HTTP requests the read made.
    pub requests: u64,
}

/// A config entry as Consul holds it.
#[derive(Debug, Clone)]
pub struct LiveEntry {
    pub stored: StoredEntry,
    /// The path it was listed by (`/v1/config/<kind>`).
    pub endpoint: String,
    /// The entry as Consul answered it, pretty-printed; `stored`'s spans are offsets into it
    /// (file 0).
    pub text: String,
}

/// A Connect service in the catalog, as a [`Service`] with origin [`ServiceOrigin::Catalog`].
#[derive(Debug, Clone)]
pub struct LiveService {
    pub service: Service,
    /// The catalog path its sidecars were read from (`/v1/catalog/service/<proxy>`), or its
    /// own for a Connect-native service.
    pub endpoint: String,
    /// That answer, pretty-printed.
    pub text: String,
}

/// A read that failed: where, and why. Nothing is known of the live state then.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the live state from Consul at {address}: GET {endpoint}")]
pub struct LiveError {
    pub address: String,
    pub endpoint: String,
    #[source]
    pub source: ConsulError,
}

impl LiveState {
    /// The live service named `name`.
    pub fn service(&self, name: &str) -> Option<&LiveService> {
        self.services
            .binary_search_by(|s| s.service.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.services[i])
    }
}

/// Reads the live state through `client` (see the module's documentation).
pub async fn read_live(client: &Client) -> Result<LiveState, LiveError> {
    let before = client.requests();
    let fail = |endpoint: &str| {
        let endpoint = endpoint.to_owned();
        move |source| LiveError {
            address: client.address().to_owned(),
            endpoint,
            source,
        }
    };
    let mut entries = Vec::new();
    for kind in EntryKind::CONSUL_KINDS {
        let path = Client::config_entries_path(kind);
        let list = client.get_json(&path).await.map_err(fail(&path))?;
        let items = list.map(|l| l.value).unwrap_or(Value::Array(Vec::new()));
        for item in items.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            entries.push(entry(&path, item).map_err(fail(&path))?);
        }
    }
    entries.sort_by(|a, b| {
        let key = |e: &LiveEntry| {
            (
                e.stored.entry.kind().as_str().to_owned(),
                e.stored.entry.name().to_owned(),
            )
        };
        key(a).cmp(&key(b))
    });
    let services = read_catalog_services(client).await?;
    Ok(LiveState {
        address: client.address().to_owned(),
        entries,
        services,
        requests: client.requests() - before,
    })
}

/// The catalog's Connect services with their sidecars' upstreams (the second half of
/// [`read_live`]), sorted by name: what a rollout simulated from the live state adds to the
/// services a repository declares.
pub async fn read_catalog_services(client: &Client) -> Result<Vec<LiveService>, LiveError> {
    let path = "/v1/catalog/services";
    let names: Vec<String> = match client.get_json(path).await.map_err(|source| LiveError {
        address: client.address().to_owned(),
        endpoint: path.to_owned(),
        source,
    })? {
        Some(v) => v
            .value
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let answers = read_catalog(client, &names).await?;
    Ok(services(answers))
}

fn entry(path: &str, item: &Value) -> Result<LiveEntry, ConsulError> {
    let text = serde_json::to_string_pretty(item).unwrap_or_default();
    let stored = crate::decode_entry_text(path, item, &text)?;
    Ok(LiveEntry {
        stored,
        endpoint: path.to_owned(),
        text,
    })
}

/// `GET /v1/catalog/service/<name>` for every name, eight at a time; sorted by path.
async fn read_catalog(
    client: &Client,
    names: &[String],
) -> Result<Vec<(String, Value)>, LiveError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let reader = || async {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(name) = names.get(i) else {
                return Ok(out);
            };
            let path = format!("/v1/catalog/service/{name}");
            match client.get_json(&path).await {
                Ok(v) => out.push((path, v.map(|v| v.value).unwrap_or(Value::Null))),
                Err(source) => {
                    return Err(LiveError {
                        address: client.address().to_owned(),
                        endpoint: path,
                        source,
                    })
                }
            }
        }
    };
    // A fixed number of readers sharing one queue (no task is spawned: they borrow the client).
    let r = tokio::join!(
        reader(),
        reader(),
        reader(),
        reader(),
        reader(),
        reader(),
        reader(),
        reader()
    );
    let mut all = Vec::new();
    for part in [r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7] {
        all.extend(part?);
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(all)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The Connect services among the catalog's answers: destinations of `connect-proxy`
/// instances and Connect-native instances. The fields are those `CatalogServiceNodes`
/// (`agent/catalog_endpoint.go`) answers with: `ServiceKind` (`ServiceKindConnectProxy`,
/// `agent/structs/structs.go`), `ServiceProxy` (`ConnectProxyConfig`, with its
/// `DestinationServiceName` and `Upstreams`, `agent/structs/connect_proxy_config.go`) and
/// `ServiceConnect.Native`.
fn services(answers: Vec<(String, Value)>) -> Vec<LiveService> {
    let mut by_name: BTreeMap<String, LiveService> = BTreeMap::new();
    for (path, answer) in &answers {
        let text = || serde_json::to_string_pretty(answer).unwrap_or_default();
        for inst in answer.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let proxy = inst.get("ServiceProxy").unwrap_or(&Value::Null);
            let (name, sidecar) = match str_of(inst, "ServiceKind") {
                "connect-proxy" => (str_of(proxy, "DestinationServiceName"), true),
                "" if inst["ServiceConnect"]["Native"].as_bool() == Some(true) => {
                    (str_of(inst, "ServiceName"), false)
                }
                _ => continue,
            };
            if name.is_empty() {
                continue;
            }
            let s = by_name
                .entry(name.to_owned())
                .or_insert_with(|| LiveService {
                    service: Service {
                        name: name.to_owned(),
                        port: None,
                        port_label: None,
                        address: None,
                        sidecar: false,
                        native: false,
                        instances: 0,
                        upstreams: Vec::new(),
                        proxy_config: Default::default(),
                        meta: Default::default(),
                        origin: ServiceOrigin::Catalog,
                        span: Default::default(),
                    },
                    endpoint: path.clone(),
                    text: text(),
                });
            s.service.instances += 1;
            if !sidecar {
                s.service.native = true;
                continue;
            }
            s.service.sidecar = true;
            s.service.port = s.service.port.or_else(|| {
                proxy["LocalServicePort"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
            });
            if let Some(config) = proxy["Config"].as_object() {
                if s.service.proxy_config.is_empty() {
                    s.service.proxy_config = config.clone();
                }
            }
            for u in proxy["Upstreams"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                let Some(up) = upstream(u) else { continue };
                if !s
                    .service
                    .upstreams
                    .iter()
                    .any(|x| x.destination_name == up.destination_name)
                {
                    s.service.upstreams.push(up);
                }
            }
        }
    }
    by_name.into_values().collect()
}

/// One of a sidecar's `Upstreams` (`Upstream` in `agent/structs/connect_proxy_config.go`); a
/// `prepared_query` destination (`UpstreamDestTypePreparedQuery`) is not a service.
fn upstream(u: &Value) -> Option<Upstream> {
    let kind = str_of(u, "DestinationType");
    if kind == "prepared_query" {
        return None;
    }
    let name = str_of(u, "DestinationName");
    if name.is_empty() {
        return None;
    }
    let opt = |k: &str| Some(str_of(u, k).to_owned()).filter(|s| !s.is_empty());
    Some(Upstream {
        destination_name: name.to_owned(),
        local_bind_port: u["LocalBindPort"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        local_bind_address: opt("LocalBindAddress"),
        datacenter: opt("Datacenter"),
        destination_type: opt("DestinationType"),
        span: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sidecars_give_their_destination_and_upstreams() {
        let proxy = json!([{
            "ServiceName": "legacy-sidecar-proxy", "ServiceKind": "connect-proxy",
            "ServiceProxy": {
                "DestinationServiceName": "legacy", "LocalServicePort": 8080,
                "Upstreams": [
                    {"DestinationName": "api", "LocalBindPort": 9090},
                    {"DestinationName": "q", "DestinationType": "prepared_query", "LocalBindPort": 9091},
                ],
            },
        }]);
        let plain = json!([{ "ServiceName": "legacy", "ServiceKind": "" }]);
        let native = json!([{ "ServiceName": "nat", "ServiceKind": "", "ServiceConnect": {"Native": true} }]);
        let got = services(vec![
            ("/v1/catalog/service/legacy".into(), plain),
            ("/v1/catalog/service/legacy-sidecar-proxy".into(), proxy),
            ("/v1/catalog/service/nat".into(), native),
        ]);
        let names: Vec<_> = got.iter().map(|s| s.service.name.as_str()).collect();
        assert_eq!(names, ["legacy", "nat"]);
        let legacy = &got[0];
        assert!(legacy.service.sidecar && !legacy.service.native);
        assert_eq!(legacy.service.port, Some(8080));
        assert_eq!(legacy.service.origin, ServiceOrigin::Catalog);
        let ups: Vec<_> = legacy
            .service
            .upstreams
            .iter()
            .map(|u| (u.destination_name.as_str(), u.local_bind_port))
            .collect();
        assert_eq!(ups, [("api", 9090)], "a prepared query is not a service");
        assert_eq!(legacy.endpoint, "/v1/catalog/service/legacy-sidecar-proxy");
        assert!(got[1].service.native && !got[1].service.sidecar);
    }
}
