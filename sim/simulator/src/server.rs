//! The control-plane server host: `mesh-control-plane`'s state machine and HTTP API, the same
//! as `mesh-gitops serve` runs, served over turmoil's TCP with hyper. Its state (the store, in
//! memory) lives outside the host's software so that it survives a crash of the host, as a
//! server's raft log would, and so that the checkers can read it afterwards.
//!
//! The operator runs on the same host and changes the state only through the HTTP API, as
//! `consul config write` on a server would: rollout steps (`PUT /v1/config`, `DELETE
//! /v1/config/...`) and root rotations (`PUT /v1/connect/ca/configuration` with a new key
//! size). The driver queues its actions; a crashed server runs them once it is back.

use crate::client::Conn;
use crate::obs::{log, now_ms, Obs};
use crate::RolloutStep;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use mesh_control_plane::http::Ctx;
use mesh_control_plane::store::Table;
use mesh_model::{ConfigEntry, ServiceIntentions};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{sleep, timeout};
use turmoil::net::TcpListener;

pub(crate) const HOST: &str = "server";
/// Consul's HTTP port.
pub(crate) const HTTP_PORT: u16 = 8500;
/// The operator's requests give up after this long and are retried.
const OPERATOR_TIMEOUT: Duration = Duration::from_secs(2);
const OPERATOR_RETRY: Duration = Duration::from_millis(250);

/// One version of the intentions, for the checkers.
#[derive(Debug, Clone)]
pub(crate) struct IntentionsVersion {
    pub at_ms: u64,
    pub index: u64,
    pub entries: Vec<ServiceIntentions>,
}

/// What the driver asks the operator to do.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Rotate,
    Step(usize),
}

pub(crate) struct ControlPlane {
    pub ctx: Arc<Ctx>,
    pub history: RefCell<Vec<IntentionsVersion>>,
    pub ops: RefCell<VecDeque<Op>>,
    pub wake: Notify,
    pub steps: Vec<RolloutStep>,
    /// The index of the last leaf logged.
    pub leaves_logged: Cell<u64>,
}

pub(crate) type Shared = Rc<ControlPlane>;

impl ControlPlane {
    /// The intentions in the store now, normalized as written.
    pub fn entries(&self) -> Vec<ServiceIntentions> {
        self.ctx
            .store
            .read()
            .config
            .values()
            .filter_map(|e| match &e.entry {
                ConfigEntry::ServiceIntentions(i) => Some(i.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn config_index(&self) -> u64 {
        self.ctx.store.read().table_index(Table::Config)
    }

    pub fn roots_index(&self) -> u64 {
        self.ctx.store.read().table_index(Table::Ca)
    }

    /// Records the intentions after a write that changed the config entries' index.
    pub fn record_version(&self, at_ms: u64) {
        let index = self.config_index();
        let mut h = self.history.borrow_mut();
        if h.last().is_some_and(|v| v.index == index) {
            return;
        }
        let entries = self.entries();
        h.push(IntentionsVersion {
            at_ms,
            index,
            entries,
        });
    }

    /// Logs the leaves signed since the last call. Serials come from the CA's counter, so they
    /// are deterministic; root IDs are certificate hashes (ECDSA signatures are randomized) and
    /// are kept out of the trace.
    fn log_new_leaves(&self, obs: &Obs) {
        // The leaf cache before the store, the order the leaf endpoint takes them in.
        let leaves = self.ctx.leaves.lock().unwrap_or_else(|p| p.into_inner());
        let store = self.ctx.store.read();
        let mut new: Vec<_> = leaves
            .iter()
            .filter(|(_, c)| c.index > self.leaves_logged.get())
            .collect();
        new.sort_by_key(|(_, c)| c.index);
        for (service, c) in new {
            let root = store
                .ca
                .as_ref()
                .and_then(|ca| ca.roots.iter().find(|r| r.id == c.root))
                .map(|r| r.serial_number)
                .unwrap_or_default();
            log(
                obs,
                HOST,
                format!(
                    "issued leaf for {service} serial {} under root {root}",
                    c.leaf.serial_number
                ),
            );
            self.leaves_logged.set(c.index);
        }
    }

    pub fn push(&self, op: Op) {
        self.ops.borrow_mut().push_back(op);
        self.wake.notify_one();
    }
}

/// The server host's software: the HTTP API and the operator.
pub(crate) async fn serve(cp: Shared, obs: Obs) -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", HTTP_PORT)).await?;
    log(&obs, HOST, "listening");
    tokio::task::spawn_local(operator(cp.clone(), obs.clone()));
    let router = TowerToHyperService::new(mesh_control_plane::http::router(cp.ctx.clone()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (router, cp, obs) = (router.clone(), cp.clone(), obs.clone());
        // The API as it is, plus a trace line for each leaf the server signs.
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let leaf = req.uri().path().starts_with("/v1/agent/connect/ca/leaf/");
            let answer = hyper::service::Service::call(&router, req);
            let (cp, obs) = (cp.clone(), obs.clone());
            async move {
                let r = answer.await;
                if leaf {
                    cp.log_new_leaves(&obs);
                }
                r
            }
        });
        tokio::task::spawn_local(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Runs the queued actions in order, each until the server answered it.
async fn operator(cp: Shared, obs: Obs) {
    let mut conn: Option<Conn> = None;
    loop {
        let Some(op) = cp.ops.borrow().front().copied() else {
            cp.wake.notified().await;
            continue;
        };
        if conn.is_none() {
            conn = Conn::connect("127.0.0.1", HTTP_PORT).await.ok();
        }
        let done = match conn.as_mut() {
            Some(c) => timeout(OPERATOR_TIMEOUT, run(c, &cp, op)).await.ok(),
            None => None,
        };
        match done {
            Some(Ok(event)) => {
                cp.ops.borrow_mut().pop_front();
                log(&obs, HOST, event);
            }
            // Not answered (the server is still starting): reconnect and try again.
            Some(Err(_)) | None => {
                conn = None;
                sleep(OPERATOR_RETRY).await;
            }
        }
    }
}

/// One action through the HTTP API; the event to log once the server answered.
async fn run(c: &mut Conn, cp: &ControlPlane, op: Op) -> std::io::Result<String> {
    match op {
        Op::Rotate => {
            // A new key size makes the CA generate a new root, cross-signed by the old one.
            let current = c.get("/v1/connect/ca/configuration").await?;
            if current.status != 200 {
                return Ok(format!("rotation failed: {}", current.text().trim()));
            }
            let mut v = current.json()?;
            let config = v
                .get_mut("Config")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| std::io::Error::other("no CA Config"))?;
            let bits = config.get("PrivateKeyBits").and_then(Value::as_u64);
            let next = if bits == Some(384) { 256 } else { 384 };
            config.insert("PrivateKeyType".into(), "ec".into());
            config.insert("PrivateKeyBits".into(), next.into());
            let body = serde_json::json!({
                "Provider": v["Provider"],
                "Config": v["Config"],
            });
            let r = c
                .request(
                    "PUT",
                    "/v1/connect/ca/configuration",
                    Some(body.to_string().into_bytes()),
                )
                .await?;
            Ok(if r.status == 200 {
                format!("rotated the CA root to ec {next} (cross-signed)")
            } else {
                format!("rotation failed: {}", r.text().trim())
            })
        }
        Op::Step(i) => {
            let s = &cp.steps[i];
            let r = match &s.entry {
                Some(e) => {
                    let body = e.to_json().to_string().into_bytes();
                    c.request("PUT", "/v1/config", Some(body)).await?
                }
                None => {
                    let path = format!("/v1/config/{}/{}", s.kind.as_str(), s.name);
                    c.request("DELETE", &path, None).await?
                }
            };
            let verb = if s.entry.is_some() {
                "wrote"
            } else {
                "deleted"
            };
            if r.status == 200 && r.text().trim() != "false" {
                cp.record_version(now_ms());
                Ok(format!(
                    "step {i}: {verb} {} {} (index {})",
                    s.kind.as_str(),
                    s.name,
                    cp.config_index()
                ))
            } else {
                Ok(format!(
                    "step {i}: {} {} refused: {} {}",
                    s.kind.as_str(),
                    s.name,
                    r.status,
                    r.text().trim()
                ))
            }
        }
    }
}
