//! `/v1/status/leader` and `/v1/agent/self`: what clients ask to find a server.

use super::Ctx;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

pub(super) async fn leader() -> Response {
    axum::Json(json!("127.0.0.1:8300")).into_response()
}

pub(super) async fn agent_self(State(ctx): State<Arc<Ctx>>) -> Response {
    axum::Json(json!({
        "Config": { "Datacenter": ctx.datacenter, "NodeName": ctx.node, "Server": true, "Version": "1.21.0" },
        "DebugConfig": { "ConnectEnabled": true },
        "Member": { "Name": ctx.node, "Addr": "127.0.0.1", "Port": 8301, "Status": 1 },
    }))
    .into_response()
}
