//! Fault injection for testing clients against an unreliable Consul (`serve --inject-faults`).

use super::{text, Ctx};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;

/// Faults on a seeded fraction of requests, in three kinds: a 503 before the request is
/// handled, a delay before it is handled, and a connection dropped after it was handled (the
/// client cannot tell whether its write happened: the hardest case for a retrying client).
pub struct FaultInjector {
    rate: f64,
    state: mesh_seed::SharedSplitMix64,
}

enum Fault {
    Unavailable,
    Delay,
    DropAfter,
}

impl FaultInjector {
    pub fn new(rate: f64, seed: u64) -> FaultInjector {
        FaultInjector {
            rate: rate.clamp(0.0, 1.0),
            state: mesh_seed::SharedSplitMix64::new(seed ^ 0x5EED_FA17),
        }
    }

    fn next(&self) -> Option<Fault> {
        let x = self.state.with(|g| g.next_f64());
        if x >= self.rate {
            return None;
        }
        Some(match (x / self.rate * 3.0) as u32 {
            0 => Fault::Unavailable,
            1 => Fault::Delay,
            _ => Fault::DropAfter,
        })
    }
}

pub(super) async fn inject_faults(
    State(ctx): State<Arc<Ctx>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let fault = ctx.faults.as_ref().and_then(FaultInjector::next);
    match fault {
        None => next.run(request).await,
        Some(Fault::Unavailable) => text(StatusCode::SERVICE_UNAVAILABLE, "injected fault"),
        Some(Fault::Delay) => {
            tokio::time::sleep(Duration::from_millis(150)).await;
            next.run(request).await
        }
        Some(Fault::DropAfter) => {
            let response = next.run(request).await;
            let (parts, _) = response.into_parts();
            // A body that fails at once: the server aborts the connection after the headers.
            let broken = futures_util::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("injected connection drop"))
            });
            Response::from_parts(parts, axum::body::Body::from_stream(broken))
        }
    }
}
