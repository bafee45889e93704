//! Traffic: the application calling its upstreams through its sidecar, and its view of each
//! call's outcome.

use crate::node::{UpstreamPlan, CONNECT_TIMEOUT, REQUEST_TIMEOUT};
use crate::obs::{log, now_ms, Attempt, Obs};
use crate::wire;
use crate::Outcome;
use mesh_semantics::intention::HttpRequest;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::{sleep, timeout};
use turmoil::net::TcpStream;

/// The application's calls on one upstream, every `every` from `start`: its requests in turn,
/// from the `first` one the seed picked.
pub(crate) async fn traffic(
    source: String,
    up: Rc<UpstreamPlan>,
    host: Rc<str>,
    obs: Obs,
    (start, every): (Duration, Duration),
    first: usize,
) {
    sleep(start).await;
    let mut n = 0u64;
    // An HTTP-family upstream's connection to the local sidecar, kept across calls.
    let mut kept: Option<TcpStream> = None;
    loop {
        let request = &up.requests[(first + n as usize) % up.requests.len()];
        n += 1;
        let (outcome, handshake, l7_denied, detail, target) =
            call_upstream(&up, request, &mut kept).await;
        log(
            &obs,
            &host,
            format!(
                "call {source}->{}{} #{n}: {}{}",
                up.destination,
                target
                    .as_deref()
                    .filter(|t| *t != up.destination)
                    .map(|t| format!(" (target {t})"))
                    .unwrap_or_default(),
                outcome.as_str(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ),
        );
        obs.borrow_mut().attempts.push(Attempt {
            at_ms: now_ms(),
            source: source.clone(),
            destination: up.destination.clone(),
            target: target.unwrap_or_else(|| up.destination.clone()),
            outcome,
            handshake,
            l7_denied,
        });
        sleep(every).await;
    }
}

/// (outcome, handshake completed, denied by L7 permissions, detail, the chain's target)
async fn call_upstream(
    up: &UpstreamPlan,
    request: &HttpRequest,
    kept: &mut Option<TcpStream>,
) -> (Outcome, bool, bool, String, Option<String>) {
    let rendered = wire::render_request(request);
    // A kept connection the sidecar closed meanwhile fails before any answer; the request then
    // goes over a new one, as an HTTP client retries on a stale connection.
    if let Some(mut s) = kept.take() {
        match ask(&mut s, &rendered).await {
            Asked::Answer(bytes) => {
                *kept = Some(s);
                return finish(&bytes, up);
            }
            Asked::TimedOut => return (Outcome::TimedOut, false, false, String::new(), None),
            Asked::Closed => {}
        }
    }
    let mut s = match timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect(("127.0.0.1", up.bind_port)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return (
                Outcome::Unreachable,
                false,
                false,
                format!("local sidecar: {e}"),
                None,
            )
        }
        Err(_) => {
            return (
                Outcome::TimedOut,
                false,
                false,
                "local sidecar".into(),
                None,
            )
        }
    };
    if up.http {
        return match ask(&mut s, &rendered).await {
            Asked::Answer(bytes) => {
                *kept = Some(s);
                finish(&bytes, up)
            }
            Asked::TimedOut => (Outcome::TimedOut, false, false, String::new(), None),
            Asked::Closed => finish(&[], up),
        };
    }
    let sent = async {
        s.write_all(&rendered).await?;
        s.shutdown().await
    };
    if sent.await.is_err() {
        return (
            Outcome::Unreachable,
            false,
            false,
            "local sidecar closed".into(),
            None,
        );
    }
    // Longer than the sidecar's own timeouts, so its verdict arrives first.
    let bytes = match timeout(REQUEST_TIMEOUT * 3, wire::read_all(&mut s)).await {
        Ok((b, _)) => b,
        Err(_) => return (Outcome::TimedOut, false, false, String::new(), None),
    };
    finish(&bytes, up)
}

/// What a request on a kept connection got.
enum Asked {
    Answer(Vec<u8>),
    TimedOut,
    /// Closed or failed before any answer.
    Closed,
}

/// One request on the application's connection to its sidecar, the response framed by its
/// `content-length`.
async fn ask(s: &mut TcpStream, request: &[u8]) -> Asked {
    let sent = async {
        s.write_all(request).await?;
        s.flush().await
    };
    if sent.await.is_err() {
        return Asked::Closed;
    }
    // Longer than the sidecar's own timeouts, so its verdict arrives first.
    match timeout(REQUEST_TIMEOUT * 3, wire::read_response(s)).await {
        Ok(Ok(bytes)) if !bytes.is_empty() => Asked::Answer(bytes),
        Ok(_) => Asked::Closed,
        Err(_) => Asked::TimedOut,
    }
}

fn finish(bytes: &[u8], up: &UpstreamPlan) -> (Outcome, bool, bool, String, Option<String>) {
    let target = wire::parse_response(bytes)
        .and_then(|r| r.headers.get(crate::chain::TARGET_HEADER).cloned());
    let (o, h, l7, d) = classify(bytes, &up.destination);
    (o, h, l7, d, target)
}

/// Reads the application's view of a call: the destination's answer, an L7 403, or the
/// sidecar's 503 naming what failed.
pub(crate) fn classify(bytes: &[u8], destination: &str) -> (Outcome, bool, bool, String) {
    let Some(r) = wire::parse_response(bytes) else {
        return (Outcome::Unreachable, false, false, "no response".into());
    };
    let handshake = r.headers.get("x-sim-handshake").is_none_or(|h| h == "ok");
    // Routed by a discovery chain, the answer comes from the target the sidecar names.
    let destination = r
        .headers
        .get(crate::chain::TARGET_HEADER)
        .map_or(destination, String::as_str);
    match r.status {
        200 if r.headers.get("x-sim-service").map(String::as_str) == Some(destination) => {
            (Outcome::Allowed, true, false, String::new())
        }
        200 => (
            Outcome::Unreachable,
            true,
            false,
            format!("answered by {:?}", r.body),
        ),
        // An L7 permission refused the request (the connection was admitted); an L4 intention
        // on an HTTP destination refuses every request with the same 403.
        403 if r.headers.get("x-sim-rbac").map(String::as_str) == Some("l4") => {
            (Outcome::DeniedByIntention, true, false, "L4".into())
        }
        403 => (Outcome::DeniedByIntention, true, true, "L7".into()),
        _ => {
            let outcome = match r.headers.get("x-sim-outcome").map(String::as_str) {
                Some("denied") => Outcome::DeniedByIntention,
                Some("tls-rejected") => Outcome::TlsRejected,
                Some("timeout") => Outcome::TimedOut,
                _ => Outcome::Unreachable,
            };
            let detail = if outcome == Outcome::DeniedByIntention {
                String::new()
            } else {
                r.body
            };
            (outcome, handshake, false, detail)
        }
    }
}
