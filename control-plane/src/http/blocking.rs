//! Blocking queries (`?index=&wait=`), as `agent/consul/rpc.go` `blockingQuery` serves them.

use super::{q1, ApiError, Ctx, Q};
use crate::store::Table;
use std::time::Duration;

/// `?index=&wait=`: waits until the table's index passes `index`, or the wait ends.
pub async fn block(ctx: &Ctx, table: Table, q: &Q) -> Result<(), ApiError> {
    let Some(index) = q1(q, "index") else {
        return Ok(());
    };
    let index = index
        .parse::<u64>()
        .map_err(|_| ApiError::bad_request("Invalid index"))?
        .max(1);
    let deadline = deadline(ctx, q)?;
    let mut rx = ctx.store.subscribe();
    loop {
        if ctx.store.read().table_index(table) > index {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

/// When a blocking query gives up: `?wait=` (default 5 minutes, at most 10) plus up to a
/// sixteenth of it as jitter, as Consul adds so watchers do not all return at once.
pub(super) fn deadline(ctx: &Ctx, q: &Q) -> Result<tokio::time::Instant, ApiError> {
    let wait = match q1(q, "wait") {
        None => Duration::from_secs(300),
        Some(w) => mesh_semantics::ca_config::parse_duration(w)
            .map_err(|_| ApiError::bad_request("Invalid wait time"))?
            .min(Duration::from_secs(600)),
    };
    Ok(tokio::time::Instant::now() + wait + jitter(ctx, wait / 16))
}

/// A duration in `[0, max)` from the server's seeded splitmix64 generator.
fn jitter(ctx: &Ctx, max: Duration) -> Duration {
    ctx.jitter.with(|g| g.duration_below(max))
}
