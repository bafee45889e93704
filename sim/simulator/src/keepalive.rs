//! Connections as Envoy keeps them. An HTTP-family upstream sends its requests over pooled mTLS
//! connections to the destination's sidecars, which authorize every request on them; a TCP
//! upstream makes one mTLS connection per application connection. A pooled connection is reused
//! only with the TLS configuration it was opened with, so after a root rotation or a leaf renewal
//! every connection handshakes again and expiry and rotation are still exercised. On loopback,
//! the application's connection to its sidecar and the destination sidecar's connection to its
//! application are kept across an HTTP-family upstream's requests as well.

use crate::node::{
    linger, AgentCache, Failure, InstancePlan, CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, PREAMBLE,
    REQUEST_TIMEOUT,
};
use crate::obs::{log, Obs};
use crate::tls;
use crate::wire::{self, Endpoint};
use crate::Outcome;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream as ClientTls;
use tokio_rustls::server::TlsStream as ServerTls;
use tokio_rustls::TlsConnector;
use turmoil::net::TcpStream;

/// How long an idle pooled connection is kept by the destination's sidecar. Envoy's default is
/// an hour; a simulation is shorter, so this only bounds connections whose caller vanished.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Wall time spent polling `f` (not waiting on the network), added to the run's client-side
/// handshake time: what the benchmark compares with raw in-memory handshakes. It reaches neither
/// the trace nor the JSON, so the run stays deterministic.
async fn timed<F: std::future::Future>(obs: &Obs, f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(|cx| {
        let started = std::time::Instant::now();
        let polled = f.as_mut().poll(cx);
        obs.borrow_mut().handshake_time += started.elapsed();
        polled
    })
    .await
}

/// Dials `endpoint` and performs mTLS with `cfg`: one handshake, timed into `timer` if given.
pub(crate) async fn dial(
    endpoint: (&str, u16),
    cfg: Arc<rustls::ClientConfig>,
    destination: &str,
    timer: Option<&Obs>,
) -> Result<ClientTls<TcpStream>, Failure> {
    let stream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(endpoint)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Failure::new(Outcome::Unreachable, false, e.to_string())),
        Err(_) => return Err(Failure::new(Outcome::TimedOut, false, "connect timed out")),
    };
    let connector = TlsConnector::from(cfg);
    let handshake = connector.connect(tls::server_name(destination), stream);
    let handshake = async {
        match timer {
            Some(obs) => timed(obs, handshake).await,
            None => handshake.await,
        }
    };
    match timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) if tls::is_tls_error(&e) => {
            Err(Failure::new(Outcome::TlsRejected, false, e.to_string()))
        }
        Ok(Err(e)) => Err(Failure::new(Outcome::Unreachable, false, e.to_string())),
        Err(_) => Err(Failure::new(
            Outcome::TimedOut,
            false,
            "handshake timed out",
        )),
    }
}

/// A connection in the pool, with the configuration it was opened with.
struct Idle {
    tls: ClientTls<TcpStream>,
    config: Arc<rustls::ClientConfig>,
}

/// One upstream's connections (Envoy keeps a pool per upstream cluster), idle ones per endpoint.
pub(crate) struct Pool {
    http: bool,
    idle: RefCell<BTreeMap<(String, u16), Vec<Idle>>>,
    obs: Obs,
}

impl Pool {
    pub(crate) fn new(http: bool, obs: Obs) -> Pool {
        Pool {
            http,
            idle: RefCell::default(),
            obs,
        }
    }

    /// An idle connection to `ep` opened with `config`; connections opened with another one
    /// (before new roots or a new leaf) are closed.
    fn take(
        &self,
        ep: &Endpoint,
        config: &Arc<rustls::ClientConfig>,
    ) -> Option<ClientTls<TcpStream>> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&(ep.host.clone(), ep.port))?;
        list.retain(|c| Arc::ptr_eq(&c.config, config));
        list.pop().map(|c| c.tls)
    }

    fn put(&self, ep: &Endpoint, config: Arc<rustls::ClientConfig>, tls: ClientTls<TcpStream>) {
        self.idle
            .borrow_mut()
            .entry((ep.host.clone(), ep.port))
            .or_default()
            .push(Idle { tls, config });
    }

    async fn dial(
        &self,
        ep: &Endpoint,
        cfg: &Arc<rustls::ClientConfig>,
        destination: &str,
    ) -> Result<ClientTls<TcpStream>, Failure> {
        self.obs.borrow_mut().handshakes += 1;
        dial(
            (&ep.host, ep.port),
            cfg.clone(),
            destination,
            Some(&self.obs),
        )
        .await
    }

    /// Sends the application's `request` to `ep` and returns the raw response.
    pub(crate) async fn call(
        &self,
        ep: &Endpoint,
        cfg: Arc<rustls::ClientConfig>,
        destination: &str,
        request: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        if !self.http {
            let tls = self.dial(ep, &cfg, destination).await?;
            return one_shot(tls, request).await;
        }
        // A pooled connection the destination closed meanwhile fails before any answer; the
        // request then goes over a new one, as an HTTP client retries on a stale connection.
        // One that timed out is not retried: the destination is not answering.
        if let Some(tls) = self.take(ep, &cfg) {
            match exchange(tls, request).await {
                Ok((tls, reply)) => {
                    self.put(ep, cfg, tls);
                    return Ok(reply);
                }
                Err(f) if f.outcome == Outcome::TimedOut => return Err(f),
                Err(_) => {}
            }
        }
        let tls = self.dial(ep, &cfg, destination).await?;
        match exchange(tls, request).await {
            Ok((tls, reply)) => {
                self.put(ep, cfg, tls);
                Ok(reply)
            }
            Err(f) => Err(f),
        }
    }
}

/// One request on a kept connection: the response is framed by its `content-length`.
async fn exchange(
    mut tls: ClientTls<TcpStream>,
    request: &[u8],
) -> Result<(ClientTls<TcpStream>, Vec<u8>), Failure> {
    let sent = async {
        tls.write_all(request).await?;
        tls.flush().await
    };
    if let Err(e) = sent.await {
        return Err(transport(e, false));
    }
    match timeout(REQUEST_TIMEOUT, wire::read_response(&mut tls)).await {
        Ok(Ok(reply)) if !reply.is_empty() => Ok((tls, reply)),
        // The destination closed after the handshake without answering.
        Ok(Ok(_)) => Err(Failure::new(
            Outcome::Unreachable,
            true,
            "closed by the destination proxy",
        )),
        Ok(Err(e)) => Err(transport(e, true)),
        Err(_) => Err(Failure::new(Outcome::TimedOut, true, "no response")),
    }
}

/// A TLS alert (a rejected client certificate shows up on the first read of TLS 1.3) or a
/// transport failure.
fn transport(e: std::io::Error, handshake: bool) -> Failure {
    if tls::is_tls_error(&e) {
        Failure::new(Outcome::TlsRejected, false, e.to_string())
    } else {
        Failure::new(Outcome::Unreachable, handshake, e.to_string())
    }
}

/// One request per connection (TCP upstreams, probes): send it, close our side, read the whole
/// answer.
pub(crate) async fn one_shot(
    mut tls: ClientTls<TcpStream>,
    request: &[u8],
) -> Result<Vec<u8>, Failure> {
    let sent = async {
        tls.write_all(request).await?;
        tls.flush().await?;
        tls.shutdown().await
    };
    if let Err(e) = sent.await {
        return Err(transport(e, false));
    }
    let (bytes, err) = match timeout(REQUEST_TIMEOUT, wire::read_all(&mut tls)).await {
        Ok(r) => r,
        Err(_) => return Err(Failure::new(Outcome::TimedOut, true, "no response")),
    };
    if !bytes.is_empty() {
        return Ok(bytes);
    }
    Err(match err {
        // A clean close (close_notify) right after the handshake is the L4 RBAC deny.
        None => Failure::new(
            Outcome::DeniedByIntention,
            true,
            "closed by the destination proxy",
        ),
        Some(e) => transport(e, true),
    })
}

/// The inbound sidecar of an HTTP-family service: every request on the connection is authorized
/// with the intentions the agent holds when it arrives (Envoy's RBAC filter in the HTTP
/// connection manager), forwarded to the application or refused with a 403; the connection stays
/// open for the next one.
pub(crate) async fn serve_requests(
    mut tls: ServerTls<TcpStream>,
    source: &str,
    inst: &InstancePlan,
    host: &str,
    cache: &Rc<RefCell<AgentCache>>,
    obs: &Obs,
) {
    let dst = &inst.service;
    let mut first = true;
    // The connection to the application, kept across the requests of this connection as
    // Envoy pools its connections to the local application.
    let mut app: Option<TcpStream> = None;
    loop {
        let wait = if first { REQUEST_TIMEOUT } else { IDLE_TIMEOUT };
        first = false;
        let head = match timeout(wait, wire::read_head(&mut tls)).await {
            Ok(Ok(h)) if !h.is_empty() => h,
            _ => break,
        };
        let Some(req) = wire::parse_request(&head) else {
            let _ = tls
                .write_all(&wire::response(400, "Bad Request", &[], "bad request"))
                .await;
            break;
        };
        let decision = {
            let k = cache.borrow();
            k.intentions
                .decide_request(source, dst, &req, k.default_allow)
        };
        let reply = if decision.allowed {
            log(obs, host, format!("proxy {dst} admitted {source}"));
            forward(&mut app, inst.app_port, source, &head).await
        } else {
            log(
                obs,
                host,
                format!("proxy {dst} denied {source}: {}", decision.reason),
            );
            // Envoy answers 403 whether an L4 or an L7 intention decided; the header (the
            // simulator's bookkeeping, like `x-sim-outcome`) tells the caller which one did.
            let layer = if decision.matched.as_ref().is_some_and(|m| m.l7) {
                "l7"
            } else {
                "l4"
            };
            wire::response(
                403,
                "Forbidden",
                &[("x-sim-rbac", layer)],
                "RBAC: access denied",
            )
        };
        let written = async {
            tls.write_all(&reply).await?;
            tls.flush().await
        };
        if written.await.is_err() {
            return;
        }
    }
    if let Some(mut a) = app {
        let _ = a.shutdown().await;
    }
    let _ = tls.shutdown().await;
    linger(tls).await;
}

/// One request to the application over loopback, on the connection kept in `app` or a new one
/// that first names the caller's verified identity. A kept connection the application closed
/// meanwhile fails before any answer; the request then goes over a new one.
async fn forward(app: &mut Option<TcpStream>, app_port: u16, source: &str, head: &[u8]) -> Vec<u8> {
    if let Some(mut kept) = app.take() {
        if let Some(reply) = ask(&mut kept, head).await {
            *app = Some(kept);
            return reply;
        }
    }
    let unavailable = || wire::response(503, "Service Unavailable", &[], "no application");
    let mut conn = match timeout(CONNECT_TIMEOUT, TcpStream::connect(("127.0.0.1", app_port))).await
    {
        Ok(Ok(s)) => s,
        _ => return unavailable(),
    };
    let mut first = format!("{PREAMBLE}{source}\n").into_bytes();
    first.extend_from_slice(head);
    match ask(&mut conn, &first).await {
        Some(reply) => {
            *app = Some(conn);
            reply
        }
        None => unavailable(),
    }
}

/// Writes `request` on `conn` and reads the one response, framed by its `content-length`.
async fn ask(conn: &mut TcpStream, request: &[u8]) -> Option<Vec<u8>> {
    let sent = async {
        conn.write_all(request).await?;
        conn.flush().await
    };
    sent.await.ok()?;
    match timeout(REQUEST_TIMEOUT, wire::read_response(conn)).await {
        Ok(Ok(reply)) if !reply.is_empty() => Some(reply),
        _ => None,
    }
}
