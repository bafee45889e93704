//! The adversary: a host outside the mesh that dials every sidecar with a missing, foreign,
//! expired or denied certificate, and dials every application directly.

use crate::client::Conn;
use crate::node::{exchange, CONNECT_TIMEOUT, REQUEST_TIMEOUT};
use crate::obs::{log, now_ms, Obs};
use crate::tls::{self, Identity};
use crate::traffic::classify;
use crate::wire;
use crate::{Outcome, Probe, ProbeKind};
use mesh_semantics::intention::HttpRequest;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::{sleep, timeout};
use turmoil::net::TcpStream;

pub(crate) const HOST: &str = "probe";

/// One probe to run.
#[derive(Debug, Clone)]
pub(crate) struct ProbePlan {
    pub kind: ProbeKind,
    /// The identity the certificate claims (or the caller, for a direct connection).
    pub source: String,
    pub destination: String,
    pub host: String,
    pub port: u16,
    /// The certificate presented; `None` for no client certificate and for direct dials.
    pub identity: Option<Identity>,
    pub expected: Outcome,
}

pub(crate) async fn run(plans: Rc<Vec<ProbePlan>>, at: Duration, obs: Obs) -> turmoil::Result {
    sleep(at).await;
    let Some((td, roots)) = roots().await else {
        log(
            &obs,
            HOST,
            "cannot read the roots from the server; probes skipped",
        );
        return Ok(());
    };
    // Concurrently, so a large mesh is probed in about one round trip; results are sorted below.
    let mut handles = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let p = p.clone();
        let (td, roots) = (td.clone(), roots.clone());
        handles.push(tokio::task::spawn_local(async move {
            let (outcome, handshake, detail) = probe(&p, &td, &roots, i).await;
            (p, outcome, handshake, detail)
        }));
    }
    let mut results = Vec::new();
    for h in handles {
        if let Ok((p, outcome, handshake, detail)) = h.await {
            results.push(Probe {
                source: p.source,
                destination: p.destination,
                kind: p.kind,
                outcome,
                expected: p.expected,
                handshake,
                at_ms: now_ms(),
                detail,
            });
        }
    }
    for r in &results {
        log(
            &obs,
            HOST,
            format!(
                "probe {} {}->{}: {} (expected {})",
                r.kind.as_str(),
                r.source,
                r.destination,
                r.outcome.as_str(),
                r.expected.as_str()
            ),
        );
    }
    obs.borrow_mut().probes.extend(results);
    // A host's software must not finish; idle until the end of the run.
    loop {
        sleep(Duration::from_secs(3600)).await;
    }
}

/// The trust bundle, as any workload could read it (`GET /v1/connect/ca/roots`).
async fn roots() -> Option<(String, Vec<Vec<u8>>)> {
    let mut c = timeout(
        CONNECT_TIMEOUT,
        Conn::connect(crate::server::HOST, crate::server::HTTP_PORT),
    )
    .await
    .ok()?
    .ok()?;
    let r = timeout(REQUEST_TIMEOUT, c.get("/v1/connect/ca/roots"))
        .await
        .ok()?
        .ok()?;
    let v = r.json().ok()?;
    let mut bundle = Vec::new();
    for root in v["Roots"].as_array()? {
        bundle.extend(crate::node::pem_certs(root["RootCert"].as_str()?).ok()?);
    }
    Some((v["TrustDomain"].as_str()?.to_owned(), bundle))
}

/// The request every probe sends: `GET /`, tagged so the applications can tell probes apart.
pub(crate) fn request(destination: &str, kind: ProbeKind, i: usize) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        headers: vec![
            ("host".into(), destination.to_owned()),
            ("x-sim-probe".into(), format!("{}-{i}", kind.as_str())),
        ],
    }
}

async fn probe(p: &ProbePlan, td: &str, roots: &[Vec<u8>], i: usize) -> (Outcome, bool, String) {
    let request = wire::render_request(&request(&p.destination, p.kind, i));
    if p.kind == ProbeKind::DirectToApp {
        return direct(p, &request).await;
    }
    let cfg = match tls::client_config(roots, td, &p.destination, p.identity.as_ref()) {
        Ok(c) => c,
        Err(e) => return (Outcome::TlsRejected, false, format!("client config: {e}")),
    };
    match exchange((&p.host, p.port), cfg, &p.destination, &request).await {
        Ok(bytes) => {
            let (o, h, _, d) = classify(&bytes, &p.destination);
            (o, h, d)
        }
        Err(f) => (f.outcome, f.handshake, f.detail),
    }
}

async fn direct(p: &ProbePlan, request: &[u8]) -> (Outcome, bool, String) {
    let mut s = match timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((p.host.as_str(), p.port)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return (Outcome::Unreachable, false, e.to_string()),
        Err(_) => return (Outcome::TimedOut, false, String::new()),
    };
    if s.write_all(request).await.is_err() || s.shutdown().await.is_err() {
        return (Outcome::Unreachable, false, "closed".into());
    }
    let bytes = match timeout(REQUEST_TIMEOUT, wire::read_all(&mut s)).await {
        Ok((b, _)) => b,
        Err(_) => return (Outcome::TimedOut, false, String::new()),
    };
    let (o, _, _, d) = classify(&bytes, &p.destination);
    (o, false, d)
}
