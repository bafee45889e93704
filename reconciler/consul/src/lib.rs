//! A client for Consul's HTTP API, for the subset mesh-gitops reads and writes: config entries
//! (consistent reads, `?cas=` writes), KV, the CA configuration, and raw JSON for the rest.
//!
//! Settings follow the `consul` CLI (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`,
//! `CONSUL_HTTP_TOKEN_FILE`, `CONSUL_CACERT`, `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`,
//! `CONSUL_TLS_SERVER_NAME`, `CONSUL_HTTP_SSL_VERIFY`). Transient failures (503, 502, 504, 429,
//! a leaderless 500, timeouts, resets) are retried with capped exponential backoff and full
//! jitter from a seeded generator; every other answer is returned as Consul gave it, so a CAS
//! `false` is a conflict and a 500 body is a validation error. The token never appears in
//! `Debug` output or errors.

pub mod live;

pub use live::{read_catalog_services, read_live, LiveEntry, LiveError, LiveService, LiveState};

use mesh_model::ConfigEntry;
pub use mesh_wire::{AclObject, CaConfiguration};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    #[error("invalid Consul client settings: {0}")]
    Config(String),
    #[error("Consul answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Consul refused the request (403): {0}")]
    Forbidden(String),
    #[error("failed to reach Consul at {address}: {reason}")]
    Transport { address: String, reason: String },
    #[error("failed to decode Consul's answer to {path}: {reason}")]
    Decode { path: String, reason: String },
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted {
        attempts: u32,
        last: Box<ConsulError>,
    },
}

impl ConsulError {
    /// Worth another try: the cluster or the network, not the request.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConsulError::Transport { .. } => true,
            ConsulError::Status { status, body } => match status {
                429 | 502 | 503 | 504 => true,
                // Consul answers most semantic errors with 500 too; only these mean "try later".
                500 => [
                    "No cluster leader",
                    "rpc error",
                    "i/o timeout",
                    "connection reset",
                    "EOF",
                ]
                .iter()
                .any(|m| body.contains(m)),
                _ => false,
            },
            _ => false,
        }
    }
}

/// Bounded retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts_max: u32,
    pub delay_base: Duration,
    pub delay_max: Duration,
    /// Seed of the jitter generator.
    pub seed: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts_max: 6,
            delay_base: Duration::from_millis(100),
            delay_max: Duration::from_secs(3),
            seed: 0x5EED,
        }
    }
}

/// Where and how to reach Consul.
#[derive(Clone, Default)]
pub struct ClientConfig {
    /// `http://127.0.0.1:8500`-style base URL.
    pub address: String,
    pub token: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub verify_tls: bool,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// The `User-Agent` sent (default `mesh-gitops`); the reconciler adds its replica's name.
    pub user_agent: Option<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca_cert", &self.ca_cert)
            .field("tls_server_name", &self.tls_server_name)
            .field("verify_tls", &self.verify_tls)
            .finish()
    }
}

/// Reads a variable; an empty one counts as unset, as in the consul CLI.
fn var(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

impl ClientConfig {
    /// Settings from `--consul` (if given) and the consul CLI's environment variables, read
    /// through `env` so tests need not touch the process environment.
    pub fn from_env(
        explicit_address: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ClientConfig, ConsulError> {
        let raw = explicit_address
            .map(str::to_owned)
            .or_else(|| var(env, "CONSUL_HTTP_ADDR"))
            .unwrap_or_else(|| "127.0.0.1:8500".into());
        let ssl = var(env, "CONSUL_HTTP_SSL").is_some_and(|v| v == "true" || v == "1");
        let address = if raw.starts_with("http://") || raw.starts_with("https://") {
            raw
        } else if let Some(path) = raw.strip_prefix("unix://") {
            return Err(ConsulError::Config(format!(
                "unix sockets ({path}) are not supported; use an HTTP address"
            )));
        } else if ssl {
            format!("https://{raw}")
        } else {
            format!("http://{raw}")
        };
        let token = match (
            var(env, "CONSUL_HTTP_TOKEN"),
            var(env, "CONSUL_HTTP_TOKEN_FILE"),
        ) {
            (Some(t), _) => Some(t),
            (None, Some(file)) => Some(
                std::fs::read_to_string(&file)
                    .map_err(|e| {
                        ConsulError::Config(format!("CONSUL_HTTP_TOKEN_FILE {file}: {e}"))
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let verify_tls =
            !var(env, "CONSUL_HTTP_SSL_VERIFY").is_some_and(|v| v == "false" || v == "0");
        Ok(ClientConfig {
            address: address.trim_end_matches('/').to_owned(),
            token,
            ca_cert: var(env, "CONSUL_CACERT").map(PathBuf::from),
            client_cert: var(env, "CONSUL_CLIENT_CERT").map(PathBuf::from),
            client_key: var(env, "CONSUL_CLIENT_KEY").map(PathBuf::from),
            tls_server_name: var(env, "CONSUL_TLS_SERVER_NAME"),
            verify_tls,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            user_agent: None,
        })
    }
}

/// A value with the `X-Consul-Index` it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed<T> {
    pub index: u64,
    pub value: T,
}

/// A config entry as stored, with its ModifyIndex (for `?cas=`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    pub entry: ConfigEntry,
    pub modify_index: u64,
    /// Fields of the answer none of our schemas knows (a newer Consul's), by JSON pointer:
    /// kept, never compared.
    pub unknown: serde_json::Map<String, Value>,
    /// `Hash`, when the server computed one (Consul 1.16 and later); never compared.
    pub hash: Option<u64>,
}

pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    jitter: mesh_seed::SharedSplitMix64,
    requests: std::sync::atomic::AtomicU64,
}

/// The ACL object types, with their API paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AclType {
    Policy,
    Role,
    Token,
}

impl AclType {
    fn one(self) -> &'static str {
        match self {
            AclType::Policy => "policy",
            AclType::Role => "role",
            AclType::Token => "token",
        }
    }
    fn list(self) -> &'static str {
        match self {
            AclType::Policy => "policies",
            AclType::Role => "roles",
            AclType::Token => "tokens",
        }
    }
    /// The field holding the object's identifier.
    pub fn id_field(self) -> &'static str {
        match self {
            AclType::Token => "AccessorID",
            _ => "ID",
        }
    }

    /// An answer of this type, decoded tolerantly (`mesh_wire`).
    fn decode(self, path: &str, v: &Value) -> Result<AclObject, ConsulError> {
        match self {
            AclType::Policy => AclObject::policy(v),
            AclType::Role => AclObject::role(v),
            AclType::Token => AclObject::token(v),
        }
        .map_err(|e| ConsulError::Decode {
            path: path.into(),
            reason: e.0,
        })
    }
}

/// Removes every `SecretID` (and the CA's secrets) from an answer before anything else sees it:
/// plans, reports and logs never hold one because they are dropped at the door.
pub use mesh_wire::strip_secrets;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish()
    }
}

enum Method {
    Get,
    Put(Vec<u8>),
    Delete,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ConsulError> {
        let mut b = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.as_deref().unwrap_or("mesh-gitops"))
            .danger_accept_invalid_certs(!config.verify_tls);
        if let Some(ca) = &config.ca_cert {
            let pem = std::fs::read(ca)
                .map_err(|e| ConsulError::Config(format!("CONSUL_CACERT {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| ConsulError::Config(format!("CONSUL_CACERT {}: {e}", ca.display())))?;
            b = b.add_root_certificate(cert);
        }
        if let (Some(cert), Some(key)) = (&config.client_cert, &config.client_key) {
            let mut pem = std::fs::read(cert)
                .map_err(|e| ConsulError::Config(format!("CONSUL_CLIENT_CERT: {e}")))?;
            pem.extend(
                std::fs::read(key)
                    .map_err(|e| ConsulError::Config(format!("CONSUL_CLIENT_KEY: {e}")))?,
            );
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| ConsulError::Config(format!("client certificate: {e}")))?;
            b = b.identity(id);
        }
        if let Some(name) = &config.tls_server_name {
            // The name the server certificate must carry, when the address is an IP.
            if let Ok(url) = reqwest::Url::parse(&config.address) {
                if let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) {
                    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
                        b = b.resolve(name, std::net::SocketAddr::new(ip, port));
                    }
                }
            }
        }
        let http = b.build().map_err(|e| ConsulError::Config(e.to_string()))?;
        let seed = config.retry.seed;
        Ok(Client {
            http,
            config,
            jitter: mesh_seed::SharedSplitMix64::new(seed),
            requests: Default::default(),
        })
    }

    pub fn address(&self) -> &str {
        &self.config.address
    }

    /// HTTP requests sent so far, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn url(&self, path: &str) -> String {
        let base = match (
            &self.config.tls_server_name,
            reqwest::Url::parse(&self.config.address),
        ) {
            (Some(name), Ok(mut url))
                if url
                    .host_str()
                    .is_some_and(|h| h.parse::<std::net::IpAddr>().is_ok()) =>
            {
                let _ = url.set_host(Some(name));
                url.as_str().trim_end_matches('/').to_owned()
            }
            _ => self.config.address.clone(),
        };
        format!("{base}{path}")
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .config
            .retry
            .delay_base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.retry.delay_max);
        // Full jitter: anywhere up to the capped exponential delay.
        let z = self.jitter.with(|g| g.next_u64());
        Duration::from_nanos(z % (cap.as_nanos() as u64).max(1))
    }

    /// One request, retried while the failure is transient. Returns status, index and body.
    async fn call(&self, method: Method, path: &str) -> Result<(u16, u64, Vec<u8>), ConsulError> {
        self.call_with(method, path, None).await
    }

    /// [`Client::call`] with a request timeout of its own (blocking queries outlive the usual).
    async fn call_with(
        &self,
        method: Method,
        path: &str,
        timeout: Option<Duration>,
    ) -> Result<(u16, u64, Vec<u8>), ConsulError> {
        let mut attempt = 0;
        loop {
            let result = self.once(&method, path, timeout).await;
            match result {
                Ok((status, index, body)) if status < 400 || status == 404 => {
                    return Ok((status, index, body))
                }
                Ok((403, _, body)) => {
                    return Err(ConsulError::Forbidden(
                        String::from_utf8_lossy(&body).into_owned(),
                    ))
                }
                Ok((status, _, body)) => {
                    let err = ConsulError::Status {
                        status,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    if !err.is_retryable() {
                        return Err(err);
                    }
                    attempt += 1;
                    if attempt >= self.config.retry.attempts_max {
                        return Err(ConsulError::Exhausted {
                            attempts: attempt,
                            last: Box::new(err),
                        });
                    }
                }
                Err(err) => {
                    attempt += 1;
                    if attempt >= self.config.retry.attempts_max {
                        return Err(ConsulError::Exhausted {
                            attempts: attempt,
                            last: Box::new(err),
                        });
                    }
                }
            }
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    async fn once(
        &self,
        method: &Method,
        path: &str,
        timeout: Option<Duration>,
    ) -> Result<(u16, u64, Vec<u8>), ConsulError> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = self.url(path);
        let mut req = match method {
            Method::Get => self.http.get(&url),
            Method::Put(body) => self.http.put(&url).body(body.clone()),
            Method::Delete => self.http.delete(&url),
        };
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        if let Some(t) = &self.config.token {
            req = req.header("X-Consul-Token", t);
        }
        let transport = |e: reqwest::Error| ConsulError::Transport {
            address: self.config.address.clone(),
            // Without the URL: query strings never carry tokens here, but keep errors short.
            reason: e.without_url().to_string(),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let index = resp
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = resp.bytes().await.map_err(transport)?.to_vec();
        Ok((status, index, body))
    }

    fn json(path: &str, body: &[u8]) -> Result<Value, ConsulError> {
        serde_json::from_slice(body).map_err(|e| ConsulError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// A consistent GET returning JSON; `None` on 404.
    pub async fn get_json(&self, path: &str) -> Result<Option<Indexed<Value>>, ConsulError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let full = format!("{path}{sep}consistent");
        let (status, index, body) = self.call(Method::Get, &full).await?;
        if status == 404 {
            return Ok(None);
        }
        Ok(Some(Indexed {
            index,
            value: Self::json(path, &body)?,
        }))
    }

    /// A PUT whose answer is a bare JSON bool (`true`, or `false` for a CAS conflict).
    pub async fn put_bool(&self, path: &str, body: &Value) -> Result<bool, ConsulError> {
        let (_, _, answer) = self
            .call(Method::Put(body.to_string().into_bytes()), path)
            .await?;
        Ok(String::from_utf8_lossy(&answer).contains("true"))
    }

    /// A PUT returning JSON.
    pub async fn put_json(&self, path: &str, body: &Value) -> Result<Value, ConsulError> {
        let (_, _, answer) = self
            .call(Method::Put(body.to_string().into_bytes()), path)
            .await?;
        if answer.is_empty() {
            return Ok(Value::Null);
        }
        Self::json(path, &answer)
    }

    /// A DELETE; `true` unless a CAS conflicted.
    pub async fn delete(&self, path: &str) -> Result<bool, ConsulError> {
        let (status, _, answer) = self.call(Method::Delete, path).await?;
        Ok(status == 404 || !String::from_utf8_lossy(&answer).contains("false"))
    }

    /// Every entry of a kind, decoded with Consul's rules (one request per kind).
    pub async fn config_entries(
        &self,
        kind: &str,
    ) -> Result<Indexed<Vec<StoredEntry>>, ConsulError> {
        let path = format!("/v1/config/{kind}");
        let Some(list) = self.get_json(&path).await? else {
            return Ok(Indexed {
                index: 0,
                value: Vec::new(),
            });
        };
        let mut out = Vec::new();
        for item in list.value.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            out.push(decode_entry(&path, item)?);
        }
        Ok(Indexed {
            index: list.index,
            value: out,
        })
    }

    pub async fn config_entry(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<Option<StoredEntry>, ConsulError> {
        let path = format!("/v1/config/{kind}/{name}");
        match self.get_json(&path).await? {
            None => Ok(None),
            Some(v) => decode_entry(&path, &v.value).map(Some),
        }
    }

    /// Writes an entry; `cas: Some(0)` creates only, `Some(n)` requires ModifyIndex `n`.
    /// `Ok(false)` is a conflict: re-read, never overwrite.
    pub async fn put_config_entry(
        &self,
        entry: &ConfigEntry,
        cas: Option<u64>,
    ) -> Result<bool, ConsulError> {
        let path = match cas {
            Some(c) => format!("/v1/config?cas={c}"),
            None => "/v1/config".to_owned(),
        };
        self.put_bool(&path, &entry.to_json()).await
    }

    pub async fn delete_config_entry(
        &self,
        kind: &str,
        name: &str,
        cas: Option<u64>,
    ) -> Result<bool, ConsulError> {
        let path = match cas {
            Some(c) => format!("/v1/config/{kind}/{name}?cas={c}"),
            None => format!("/v1/config/{kind}/{name}"),
        };
        self.delete(&path).await
    }

    /// Every object of an ACL type (one request), typed; secrets never enter.
    pub async fn acl_list(&self, t: AclType) -> Result<Vec<AclObject>, ConsulError> {
        let path = format!("/v1/acl/{}", t.list());
        let v = self
            .get_json(&path)
            .await?
            .map(|i| i.value)
            .unwrap_or(Value::Array(Vec::new()));
        match v {
            Value::Array(a) => a.iter().map(|v| t.decode(&path, v)).collect(),
            _ => Err(ConsulError::Decode {
                path,
                reason: "expected a list".into(),
            }),
        }
    }

    /// One ACL object by ID, typed; `None` if it does not exist.
    pub async fn acl_read(&self, t: AclType, id: &str) -> Result<Option<AclObject>, ConsulError> {
        let path = format!("/v1/acl/{}/{id}", t.one());
        match self.get_json(&path).await {
            Ok(v) => v.map(|i| t.decode(&path, &i.value)).transpose(),
            // Consul answers a missing ACL object with 403 "ACL not found" on some versions.
            Err(ConsulError::Forbidden(m)) if m.contains("ACL not found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates (`id: None`) or updates an ACL object; the answer, typed.
    pub async fn acl_write(
        &self,
        t: AclType,
        id: Option<&str>,
        body: &Value,
    ) -> Result<AclObject, ConsulError> {
        let path = match id {
            Some(id) => format!("/v1/acl/{}/{id}", t.one()),
            None => format!("/v1/acl/{}", t.one()),
        };
        let v = self.put_json(&path, body).await?;
        t.decode(&path, &v)
    }

    pub async fn acl_delete(&self, t: AclType, id: &str) -> Result<(), ConsulError> {
        self.delete(&format!("/v1/acl/{}/{id}", t.one())).await?;
        Ok(())
    }

    /// The Connect CA configuration, typed; `PrivateKey` and `Token` never enter.
    pub async fn ca_configuration(&self) -> Result<Option<CaConfiguration>, ConsulError> {
        let path = "/v1/connect/ca/configuration";
        self.get_json(path)
            .await?
            .map(|i| {
                mesh_wire::decode(&i.value).map_err(|e| ConsulError::Decode {
                    path: path.into(),
                    reason: e.0,
                })
            })
            .transpose()
    }

    pub async fn put_ca_configuration(&self, body: &Value) -> Result<(), ConsulError> {
        self.put_json("/v1/connect/ca/configuration", body).await?;
        Ok(())
    }

    /// A KV value and its ModifyIndex.
    pub async fn kv_get(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>, ConsulError> {
        let path = format!("/v1/kv/{key}");
        let Some(v) = self.get_json(&path).await? else {
            return Ok(None);
        };
        let item = &v.value[0];
        let value = match item["Value"].as_str() {
            Some(b64) => decode_base64(b64).ok_or_else(|| ConsulError::Decode {
                path: path.clone(),
                reason: "Value is not base64".into(),
            })?,
            None => Vec::new(),
        };
        Ok(Some((value, item["ModifyIndex"].as_u64().unwrap_or(0))))
    }

    /// The path listing every config entry of a kind, for [`Client::get_blocking`].
    pub fn config_entries_path(kind: &str) -> String {
        format!("/v1/config/{kind}")
    }

    /// The path of a KV key, for [`Client::get_blocking`].
    pub fn kv_path(key: &str) -> String {
        format!("/v1/kv/{key}")
    }

    /// A blocking query: Consul answers when the index passes `index` or after `wait` (plus its
    /// jitter of up to `wait / 16`). The value is `None` on 404; the index comes with it either
    /// way, so a watcher can wait for the key to appear.
    pub async fn get_blocking(
        &self,
        path: &str,
        index: u64,
        wait: Duration,
    ) -> Result<Indexed<Option<Value>>, ConsulError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let full = format!("{path}{sep}index={index}&wait={}ms", wait.as_millis());
        let timeout = wait + wait / 16 + self.config.request_timeout;
        let (status, index, body) = self.call_with(Method::Get, &full, Some(timeout)).await?;
        let value = if status == 404 {
            None
        } else {
            Some(Self::json(path, &body)?)
        };
        Ok(Indexed { index, value })
    }

    /// A KV entry with its ModifyIndex and the session holding its lock, if any.
    pub async fn kv_entry(&self, key: &str) -> Result<Option<KvEntry>, ConsulError> {
        let path = format!("/v1/kv/{key}");
        let Some(v) = self.get_json(&path).await? else {
            return Ok(None);
        };
        KvEntry::from_api(&path, &v.value[0]).map(Some)
    }

    /// Creates a session (`Behavior = release`) with a TTL; returns its ID.
    pub async fn session_create(&self, name: &str, ttl: Duration) -> Result<String, ConsulError> {
        let body = serde_json::json!({
            "Name": name,
            "TTL": format!("{}s", ttl.as_secs().max(10)),
            "Behavior": "release",
        });
        let answer = self.put_json("/v1/session/create", &body).await?;
        answer["ID"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ConsulError::Decode {
                path: "/v1/session/create".into(),
                reason: "no ID in the answer".into(),
            })
    }

    /// Renews a session's TTL; `false` when the session no longer exists (it expired).
    pub async fn session_renew(&self, id: &str) -> Result<bool, ConsulError> {
        let path = format!("/v1/session/renew/{id}");
        let (status, _, _) = self.call(Method::Put(Vec::new()), &path).await?;
        Ok(status != 404)
    }

    /// Destroys a session, releasing the locks it holds.
    pub async fn session_destroy(&self, id: &str) -> Result<(), ConsulError> {
        let path = format!("/v1/session/destroy/{id}");
        self.call(Method::Put(Vec::new()), &path).await?;
        Ok(())
    }

    /// Takes the lock on `key` for `session` (writing `value`); `false` if another holds it.
    pub async fn kv_acquire(
        &self,
        key: &str,
        value: &[u8],
        session: &str,
    ) -> Result<bool, ConsulError> {
        let path = format!("/v1/kv/{key}?acquire={session}");
        let (_, _, answer) = self.call(Method::Put(value.to_vec()), &path).await?;
        Ok(String::from_utf8_lossy(&answer).contains("true"))
    }

    /// Releases the lock on `key` held by `session`.
    pub async fn kv_release(&self, key: &str, session: &str) -> Result<bool, ConsulError> {
        let path = format!("/v1/kv/{key}?release={session}");
        let (_, _, answer) = self.call(Method::Put(Vec::new()), &path).await?;
        Ok(String::from_utf8_lossy(&answer).contains("true"))
    }

    pub async fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u64>,
    ) -> Result<bool, ConsulError> {
        let path = match cas {
            Some(c) => format!("/v1/kv/{key}?cas={c}"),
            None => format!("/v1/kv/{key}"),
        };
        let (_, _, answer) = self.call(Method::Put(value.to_vec()), &path).await?;
        Ok(String::from_utf8_lossy(&answer).contains("true"))
    }
}

/// One KV entry as Consul returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KvEntry {
    pub value: Vec<u8>,
    pub modify_index: u64,
    /// The session holding the key's lock.
    pub session: Option<String>,
}

impl KvEntry {
    /// Decodes one element of a `GET /v1/kv/...` answer.
    pub fn from_api(path: &str, item: &Value) -> Result<KvEntry, ConsulError> {
        let value = match item["Value"].as_str() {
            Some(b64) => decode_base64(b64).ok_or_else(|| ConsulError::Decode {
                path: path.to_owned(),
                reason: "Value is not base64".into(),
            })?,
            None => Vec::new(),
        };
        Ok(KvEntry {
            value,
            modify_index: item["ModifyIndex"].as_u64().unwrap_or(0),
            session: item["Session"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        })
    }
}

fn decode_entry(path: &str, v: &Value) -> Result<StoredEntry, ConsulError> {
    decode_entry_text(path, v, &v.to_string())
}

/// [`decode_entry`] from `text`, `v` written out: the entry's spans are offsets into `text`.
fn decode_entry_text(path: &str, v: &Value, text: &str) -> Result<StoredEntry, ConsulError> {
    let node = mesh_syntax::parse_json(mesh_diagnostics::FileId(0), text).map_err(|d| {
        ConsulError::Decode {
            path: path.to_owned(),
            reason: first(&d),
        }
    })?;
    // The tolerant decoder: a field from a newer Consul never fails a read.
    let read = mesh_loader::decode_server_entry(&node).map_err(|d| ConsulError::Decode {
        path: path.to_owned(),
        reason: first(&d),
    })?;
    let mut entry = read.entry;
    // An inline-certificate's private key, which Consul answers in full, is dropped at the door.
    if let mesh_model::ConfigEntry::Other(e) = &mut entry {
        if e.kind == mesh_model::entry_secret::INLINE_CERTIFICATE {
            e.body.remove(mesh_model::entry_secret::PRIVATE_KEY);
        }
    }
    Ok(StoredEntry {
        entry,
        modify_index: v["ModifyIndex"].as_u64().unwrap_or(0),
        unknown: read.unknown,
        hash: read.server.get("Hash").and_then(Value::as_u64),
    })
}

fn first(d: &[mesh_diagnostics::Diagnostic]) -> String {
    d.iter()
        .find(|d| d.is_error())
        .map(|d| d.message.clone())
        .unwrap_or_default()
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn settings_follow_the_consul_cli() {
        let c = ClientConfig::from_env(None, &env(&[])).unwrap();
        assert_eq!(c.address, "http://127.0.0.1:8500");
        let c = ClientConfig::from_env(
            None,
            &env(&[
                ("CONSUL_HTTP_ADDR", "consul.internal:8501"),
                ("CONSUL_HTTP_SSL", "true"),
                ("CONSUL_HTTP_TOKEN", "s3cret"),
                ("CONSUL_HTTP_SSL_VERIFY", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(c.address, "https://consul.internal:8501");
        assert_eq!(c.token.as_deref(), Some("s3cret"));
        assert!(!c.verify_tls);
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "the token is redacted"
        );
        let c = ClientConfig::from_env(
            Some("http://10.0.0.1:8500/"),
            &env(&[("CONSUL_HTTP_ADDR", "ignored:1")]),
        )
        .unwrap();
        assert_eq!(c.address, "http://10.0.0.1:8500");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let c = ClientConfig::from_env(
            None,
            &env(&[("CONSUL_HTTP_TOKEN_FILE", file.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(c.token.as_deref(), Some("from-file"));
        assert!(ClientConfig::from_env(
            None,
            &env(&[("CONSUL_HTTP_TOKEN_FILE", "/nonexistent/token")])
        )
        .is_err());
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let s = |status, body: &str| ConsulError::Status {
            status,
            body: body.into(),
        };
        assert!(s(503, "").is_retryable());
        assert!(s(429, "rate limited").is_retryable());
        assert!(s(500, "No cluster leader").is_retryable());
        assert!(!s(500, "invalid name (\"web\"), only \"global\" is supported").is_retryable());
        assert!(!s(400, "Request decoding failed").is_retryable());
        assert!(!ConsulError::Forbidden("ACL not found".into()).is_retryable());
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_base64("b25l").unwrap(), b"one");
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert!(decode_base64("%%").is_none());
    }
}
