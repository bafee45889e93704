//! The `time.Duration` fields of a config entry as Consul's `GET /v1/config/<kind>/<name>`
//! answers them. The HTTP handler encodes the `agent/structs` entry with Go's `encoding/json`
//! (`configGet` in `agent/config_endpoint.go`), which writes a `time.Duration` as its integer
//! nanoseconds, except where a struct has its own `MarshalJSON`:
//!
//! - service-resolver `ConnectTimeout`, `RequestTimeout`: Go's spelling (`5s`), absent when zero
//!   (`ServiceResolverConfigEntry.MarshalJSON` in `agent/structs/config_entry_discoverychain.go`);
//! - service-router `Routes[].Destination.RequestTimeout`, `IdleTimeout`: Go's spelling
//!   (`ServiceRouteDestination.MarshalJSON`, same file).
//!
//! The stored entry keeps Go's spelling (what the loader decodes), so those two answer it as is;
//! every other duration field is rewritten here to nanoseconds.

use serde_json::Value;

/// Per kind, the paths to the duration fields Consul answers in nanoseconds (`*`: every item
/// of a list). Types in `agent/structs`: `PassiveHealthCheck.Interval`, `BaseEjectionTime`
/// (`connect_proxy_config.go`, under service-defaults' `UpstreamConfig` and ingress-gateway's
/// services); `CookieConfig.TTL` (`config_entry_discoverychain.go`; the resolver's
/// `MarshalJSON` rewrites only its own two fields); `RemoteJWKS.CacheDuration`,
/// `RetryPolicyBackOff.BaseInterval`, `MaxInterval`, `JWKSCluster.ConnectTimeout`
/// (`config_entry_jwt_provider.go`); `TimeoutFilter.RequestTimeout`, `IdleTimeout`
/// (`config_entry_routes.go`).
const NANOSECONDS: &[(&str, &[&str])] = &[
    (
        "service-defaults",
        &[
            "UpstreamConfig",
            "Defaults",
            "PassiveHealthCheck",
            "Interval",
        ],
    ),
    (
        "service-defaults",
        &[
            "UpstreamConfig",
            "Defaults",
            "PassiveHealthCheck",
            "BaseEjectionTime",
        ],
    ),
    (
        "service-defaults",
        &[
            "UpstreamConfig",
            "Overrides",
            "*",
            "PassiveHealthCheck",
            "Interval",
        ],
    ),
    (
        "service-defaults",
        &[
            "UpstreamConfig",
            "Overrides",
            "*",
            "PassiveHealthCheck",
            "BaseEjectionTime",
        ],
    ),
    (
        "ingress-gateway",
        &["Defaults", "PassiveHealthCheck", "Interval"],
    ),
    (
        "ingress-gateway",
        &["Defaults", "PassiveHealthCheck", "BaseEjectionTime"],
    ),
    (
        "ingress-gateway",
        &[
            "Listeners",
            "*",
            "Services",
            "*",
            "PassiveHealthCheck",
            "Interval",
        ],
    ),
    (
        "ingress-gateway",
        &[
            "Listeners",
            "*",
            "Services",
            "*",
            "PassiveHealthCheck",
            "BaseEjectionTime",
        ],
    ),
    (
        "service-resolver",
        &["LoadBalancer", "HashPolicies", "*", "CookieConfig", "TTL"],
    ),
    (
        "jwt-provider",
        &["JSONWebKeySet", "Remote", "CacheDuration"],
    ),
    (
        "jwt-provider",
        &[
            "JSONWebKeySet",
            "Remote",
            "RetryPolicy",
            "RetryPolicyBackOff",
            "BaseInterval",
        ],
    ),
    (
        "jwt-provider",
        &[
            "JSONWebKeySet",
            "Remote",
            "RetryPolicy",
            "RetryPolicyBackOff",
            "MaxInterval",
        ],
    ),
    (
        "jwt-provider",
        &["JSONWebKeySet", "Remote", "JWKSCluster", "ConnectTimeout"],
    ),
    (
        "http-route",
        &["Rules", "*", "Filters", "TimeoutFilter", "RequestTimeout"],
    ),
    (
        "http-route",
        &["Rules", "*", "Filters", "TimeoutFilter", "IdleTimeout"],
    ),
    (
        "http-route",
        &[
            "Rules",
            "*",
            "Services",
            "*",
            "Filters",
            "TimeoutFilter",
            "RequestTimeout",
        ],
    ),
    (
        "http-route",
        &[
            "Rules",
            "*",
            "Services",
            "*",
            "Filters",
            "TimeoutFilter",
            "IdleTimeout",
        ],
    ),
];

/// The entry's JSON (Go's spelling everywhere) with every duration Consul answers in
/// nanoseconds rewritten to them.
pub(super) fn as_consul_answers(entry: &mut Value) {
    let kind = entry
        .get("Kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    for (_, path) in NANOSECONDS.iter().filter(|(k, _)| *k == kind) {
        to_nanoseconds(entry, path);
    }
}

fn to_nanoseconds(v: &mut Value, path: &[&str]) {
    match path.split_first() {
        None => {
            let nanos = v
                .as_str()
                .and_then(mesh_semantics::duration::parse_go)
                .and_then(|n| i64::try_from(n).ok());
            if let Some(n) = nanos {
                *v = Value::from(n);
            }
        }
        Some((&"*", rest)) => {
            if let Value::Array(items) = v {
                for item in items {
                    to_nanoseconds(item, rest);
                }
            }
        }
        Some((key, rest)) => {
            if let Some(next) = v.get_mut(*key) {
                to_nanoseconds(next, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolver_and_router_keep_go_spelling_the_rest_answer_nanoseconds() {
        let mut r = json!({"Kind": "service-resolver", "ConnectTimeout": "2s",
            "LoadBalancer": {"HashPolicies": [{"CookieConfig": {"TTL": "1m30s"}}]}});
        as_consul_answers(&mut r);
        assert_eq!(r["ConnectTimeout"], "2s");
        assert_eq!(
            r["LoadBalancer"]["HashPolicies"][0]["CookieConfig"]["TTL"],
            json!(90_000_000_000_i64)
        );
        let mut sd = json!({"Kind": "service-defaults", "UpstreamConfig": {
            "Defaults": {"PassiveHealthCheck": {"Interval": "10s", "BaseEjectionTime": "0s"}},
            "Overrides": [{"Name": "db", "PassiveHealthCheck": {"Interval": "1.5s"}}]}});
        as_consul_answers(&mut sd);
        let d = &sd["UpstreamConfig"]["Defaults"]["PassiveHealthCheck"];
        assert_eq!(d["Interval"], json!(10_000_000_000_i64));
        assert_eq!(d["BaseEjectionTime"], json!(0));
        let o = &sd["UpstreamConfig"]["Overrides"][0]["PassiveHealthCheck"];
        assert_eq!(o["Interval"], json!(1_500_000_000_i64));
        let mut other = json!({"Kind": "service-router", "Routes": [{"Destination": {"RequestTimeout": "5s"}}]});
        as_consul_answers(&mut other);
        assert_eq!(other["Routes"][0]["Destination"]["RequestTimeout"], "5s");
    }
}
