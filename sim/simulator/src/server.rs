//! The control-plane server host: the CA, the intentions and the catalog, served to agents over
//! the JSON-lines protocol. Its state lives outside the host's software so the driver can change
//! it between steps (rollout steps, root rotation) and so it survives a crash of the host, as a
//! server's raft log would.

use crate::keys::SeededKeys;
use crate::obs::{log, now_ms, Obs};
use crate::wire::{read_json, write_json, Endpoint, Request, Response, SERVER_PORT};
use mesh_ca::{CaParams, CaState};
use mesh_model::ServiceIntentions;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime};
use tokio::io::BufReader;
use turmoil::net::{TcpListener, TcpStream};

pub(crate) const HOST: &str = "server";

/// One version of the intentions, for the checkers.
#[derive(Debug, Clone)]
pub(crate) struct IntentionsVersion {
    pub at_ms: u64,
    pub index: u64,
    pub entries: Vec<ServiceIntentions>,
}

pub(crate) struct ControlPlane {
    pub ca: CaState,
    pub ca_params: CaParams,
    pub keys: SeededKeys,
    pub datacenter: String,
    pub default_allow: bool,
    pub intentions: BTreeMap<String, ServiceIntentions>,
    pub intentions_index: u64,
    pub roots_index: u64,
    pub catalog: BTreeMap<String, Vec<Endpoint>>,
    pub history: Vec<IntentionsVersion>,
    pub epoch: SystemTime,
}

pub(crate) type Shared = Rc<RefCell<ControlPlane>>;

impl ControlPlane {
    /// Simulated wall time: inside a host, turmoil's clock; in the driver, `epoch + elapsed`.
    fn now(&self, elapsed: Duration) -> SystemTime {
        turmoil::since_epoch()
            .map(|d| SystemTime::UNIX_EPOCH + d)
            .unwrap_or(self.epoch + elapsed)
    }

    pub fn entries(&self) -> Vec<ServiceIntentions> {
        self.intentions.values().cloned().collect()
    }

    fn record_version(&mut self, at_ms: u64) {
        let entries = self.entries();
        self.history.push(IntentionsVersion {
            at_ms,
            index: self.intentions_index,
            entries,
        });
    }

    /// Writes (`Some`) or deletes (`None`) the intentions of one destination.
    pub fn set_intentions(&mut self, name: &str, entry: Option<ServiceIntentions>, at_ms: u64) {
        match entry {
            Some(mut e) => {
                mesh_semantics::intention::normalize(&mut e);
                self.intentions.insert(name.to_owned(), e);
            }
            None => {
                self.intentions.remove(name);
            }
        }
        self.intentions_index += 1;
        self.record_version(at_ms);
    }

    pub fn initial_version(&mut self) {
        self.intentions_index = 1;
        self.roots_index = 1;
        self.record_version(0);
    }

    /// A new root cross-signed by the old one, as a CA configuration change does.
    pub fn rotate(&mut self, elapsed: Duration) -> Result<(), mesh_ca::CaError> {
        let now = self.now(elapsed);
        self.ca
            .rotate(self.ca_params.clone(), true, now, &self.keys)?;
        self.roots_index += 1;
        Ok(())
    }

    fn active_root(&self) -> (String, u64) {
        self.ca
            .active_root()
            .map(|r| (r.id.clone(), r.serial_number))
            .unwrap_or_default()
    }

    fn handle(&mut self, req: Request) -> (Response, Option<String>) {
        match req {
            Request::Roots => (
                Response::Roots {
                    index: self.roots_index,
                    trust_domain: self.ca.trust_domain.clone(),
                    active_root_id: self.active_root().0,
                    bundle: self.ca.trust_bundle_der(),
                },
                None,
            ),
            Request::Intentions => (
                Response::Intentions {
                    index: self.intentions_index,
                    default_allow: self.default_allow,
                    entries: self.entries(),
                },
                None,
            ),
            Request::Catalog => (
                Response::Catalog {
                    services: self.catalog.clone(),
                },
                None,
            ),
            Request::Leaf { service } => {
                let now = self.now(Duration::ZERO);
                let dc = self.datacenter.clone();
                let (root_id, root_serial) = self.active_root();
                match self.ca.issue_leaf(&service, &dc, now, &self.keys) {
                    Ok(leaf) => {
                        // Serials come from the CA's counter, so they are deterministic; root
                        // IDs are certificate hashes (ECDSA signatures are randomized) and are
                        // kept out of the trace.
                        let event = format!(
                            "issued leaf for {service} serial {} under root {root_serial}",
                            leaf.serial_number
                        );
                        (
                            Response::Leaf {
                                service,
                                root_id,
                                serial: leaf.serial_number.clone(),
                                chain: leaf.cert_chain_der().to_vec(),
                                key: leaf.private_key_der().to_vec(),
                                valid_before_unix: leaf.valid_before_unix,
                            },
                            Some(event),
                        )
                    }
                    Err(e) => (
                        Response::Error {
                            message: e.to_string(),
                        },
                        Some(format!("leaf for {service} failed: {e}")),
                    ),
                }
            }
        }
    }
}

/// The server host's software.
pub(crate) async fn serve(cp: Shared, obs: Obs) -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", SERVER_PORT)).await?;
    log(&obs, HOST, "listening");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::task::spawn_local(connection(stream, cp.clone(), obs.clone()));
    }
}

async fn connection(stream: TcpStream, cp: Shared, obs: Obs) {
    let mut stream = BufReader::new(stream);
    loop {
        let req: Request = match read_json(&mut stream).await {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => return,
        };
        let (resp, event) = cp.borrow_mut().handle(req);
        if let Some(e) = event {
            obs.borrow_mut().log(now_ms(), HOST, e);
        }
        if write_json(&mut stream, &resp).await.is_err() {
            return;
        }
    }
}
