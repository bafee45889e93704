//! The endpoint families clients and tools use beyond what mesh-gitops itself needs: the
//! local agent, catalog and health reads, transactions, sessions by node, and status
//! (`agent/http_register.go` lists Consul's).

use super::{agent_local as agent, catalog_read as catalog, health, json_at, txn, Ctx};
use crate::store::Table;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/v1/agent/members", get(agent::members))
        .route("/v1/agent/services", get(agent::services))
        .route("/v1/agent/service/{id}", get(agent::service))
        .route("/v1/agent/checks", get(agent::checks))
        .route("/v1/agent/check/register", put(agent::register_check))
        .route(
            "/v1/agent/check/deregister/{id}",
            put(agent::deregister_check),
        )
        .route("/v1/agent/check/update/{id}", put(agent::update))
        .route("/v1/agent/check/{verb}/{id}", put(agent::ttl_update))
        .route(
            "/v1/agent/service/maintenance/{id}",
            put(agent::service_maintenance),
        )
        .route("/v1/agent/maintenance", put(agent::node_maintenance))
        .route("/v1/catalog/datacenters", get(catalog::datacenters))
        .route("/v1/catalog/nodes", get(catalog::list_nodes))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/node/{node}", get(catalog::node))
        .route("/v1/catalog/service/{name}", get(catalog::service))
        .route("/v1/catalog/connect/{name}", get(catalog::connect))
        .route("/v1/health/service/{name}", get(health::service))
        .route("/v1/health/connect/{name}", get(health::connect))
        .route("/v1/health/checks/{name}", get(health::service_checks))
        .route("/v1/health/node/{node}", get(health::node_checks))
        .route("/v1/health/state/{state}", get(health::state))
        .route("/v1/txn", put(txn::txn))
        .route("/v1/session/node/{node}", get(sessions_of_node))
        .route("/v1/status/peers", get(peers))
}

/// `GET /v1/session/node/:node`.
async fn sessions_of_node(State(ctx): State<Arc<Ctx>>, Path(node): Path<String>) -> Response {
    let s = ctx.store.read();
    let list: Vec<Value> = s
        .sessions
        .values()
        .filter(|x| x.node == node)
        .map(super::session::session_json)
        .collect();
    json_at(Value::Array(list), s.table_index(Table::Sessions))
}

/// `GET /v1/status/peers`: the one server.
async fn peers() -> Response {
    axum::Json(json!(["127.0.0.1:8300"])).into_response()
}
