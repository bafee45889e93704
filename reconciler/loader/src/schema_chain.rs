//! The schemas of the discovery-chain kinds, with the field names and snake_case aliases of
//! `agent/structs/config_entry_discoverychain.go` (`ServiceRouterConfigEntry`,
//! `ServiceSplitterConfigEntry`, `ServiceResolverConfigEntry`).

use crate::decode::{f, fa, KeyMatch, Schema, Ty};

const fn consul(what: &'static str, fields: &'static [crate::decode::Field]) -> Schema {
    Schema {
        what,
        fields,
        matching: KeyMatch::Consul,
    }
}

// `HTTPHeaderModifiers`.
static HEADER_MODIFIERS: Schema = consul(
    "HTTPHeaderModifiers",
    &[
        f("Add", Ty::StrMap),
        f("Set", Ty::StrMap),
        f("Remove", Ty::List(&Ty::Str)),
    ],
);

// ---- service-router -------------------------------------------------------------------------

static ROUTE_HEADER: Schema = consul(
    "route header match",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Present", Ty::Bool),
        f("Exact", Ty::Str),
        f("Prefix", Ty::Str),
        f("Suffix", Ty::Str),
        f("Regex", Ty::Str),
        f("Invert", Ty::Bool),
    ],
);

static ROUTE_QUERY: Schema = consul(
    "route query parameter match",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Present", Ty::Bool),
        f("Exact", Ty::Str),
        f("Regex", Ty::Str),
    ],
);

static ROUTE_HTTP: Schema = consul(
    "route HTTP match",
    &[
        fa("PathExact", &["path_exact"], Ty::Str),
        fa("PathPrefix", &["path_prefix"], Ty::Str),
        fa("PathRegex", &["path_regex"], Ty::Str),
        f("Header", Ty::List(&Ty::Obj(&ROUTE_HEADER))),
        fa(
            "QueryParam",
            &["query_param"],
            Ty::List(&Ty::Obj(&ROUTE_QUERY)),
        ),
        f("Methods", Ty::List(&Ty::Str)),
    ],
);

static ROUTE_MATCH: Schema = consul("route match", &[f("HTTP", Ty::Obj(&ROUTE_HTTP))]);

static ROUTE_DESTINATION: Schema = consul(
    "route destination",
    &[
        f("Service", Ty::Str),
        fa("ServiceSubset", &["service_subset"], Ty::Str),
        fa("PrefixRewrite", &["prefix_rewrite"], Ty::Str),
        fa("RequestTimeout", &["request_timeout"], Ty::Duration),
        fa("IdleTimeout", &["idle_timeout"], Ty::Duration),
        fa("NumRetries", &["num_retries"], Ty::Int),
        fa(
            "RetryOnConnectFailure",
            &["retry_on_connect_failure"],
            Ty::Bool,
        ),
        fa("RetryOn", &["retry_on"], Ty::List(&Ty::Str)),
        fa(
            "RetryOnStatusCodes",
            &["retry_on_status_codes"],
            Ty::List(&Ty::Int),
        ),
        fa(
            "RequestHeaders",
            &["request_headers"],
            Ty::Obj(&HEADER_MODIFIERS),
        ),
        fa(
            "ResponseHeaders",
            &["response_headers"],
            Ty::Obj(&HEADER_MODIFIERS),
        ),
    ],
);

static ROUTE: Schema = consul(
    "route",
    &[
        f("Match", Ty::Obj(&ROUTE_MATCH)),
        f("Destination", Ty::Obj(&ROUTE_DESTINATION)),
    ],
);

pub(crate) static SERVICE_ROUTER: Schema = consul(
    "service-router",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Routes", Ty::List(&Ty::Obj(&ROUTE))),
        f("Meta", Ty::StrMap),
        f("CreateIndex", Ty::Ignored),
        f("ModifyIndex", Ty::Ignored),
    ],
);

// ---- service-splitter -----------------------------------------------------------------------

static SPLIT: Schema = consul(
    "split",
    &[
        // `Weight float32` has no omitempty: zero is written, and kept.
        f("Weight", Ty::Keep(&Ty::Float)),
        f("Service", Ty::Str),
        fa("ServiceSubset", &["service_subset"], Ty::Str),
        fa(
            "RequestHeaders",
            &["request_headers"],
            Ty::Obj(&HEADER_MODIFIERS),
        ),
        fa(
            "ResponseHeaders",
            &["response_headers"],
            Ty::Obj(&HEADER_MODIFIERS),
        ),
    ],
);

pub(crate) static SERVICE_SPLITTER: Schema = consul(
    "service-splitter",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Splits", Ty::List(&Ty::Obj(&SPLIT))),
        f("Meta", Ty::StrMap),
        f("CreateIndex", Ty::Ignored),
        f("ModifyIndex", Ty::Ignored),
    ],
);

// ---- service-resolver -----------------------------------------------------------------------

static SUBSET: Schema = consul(
    "resolver subset",
    &[
        f("Filter", Ty::Str),
        fa("OnlyPassing", &["only_passing"], Ty::Bool),
    ],
);

static REDIRECT: Schema = consul(
    "resolver redirect",
    &[
        f("Service", Ty::Str),
        fa("ServiceSubset", &["service_subset"], Ty::Str),
        f("Datacenter", Ty::Str),
        f("Peer", Ty::Str),
    ],
);

static FAILOVER_TARGET: Schema = consul(
    "failover target",
    &[
        f("Service", Ty::Str),
        fa("ServiceSubset", &["service_subset"], Ty::Str),
        f("Datacenter", Ty::Str),
        f("Peer", Ty::Str),
    ],
);

static FAILOVER_POLICY: Schema = consul(
    "failover policy",
    &[f("Mode", Ty::Str), f("Regions", Ty::List(&Ty::Str))],
);

static FAILOVER: Schema = consul(
    "resolver failover",
    &[
        f("Service", Ty::Str),
        fa("ServiceSubset", &["service_subset"], Ty::Str),
        f("Datacenters", Ty::List(&Ty::Str)),
        f("Targets", Ty::List(&Ty::Obj(&FAILOVER_TARGET))),
        f("Policy", Ty::Obj(&FAILOVER_POLICY)),
    ],
);

static RING_HASH: Schema = consul(
    "RingHashConfig",
    &[
        fa("MinimumRingSize", &["minimum_ring_size"], Ty::Int),
        fa("MaximumRingSize", &["maximum_ring_size"], Ty::Int),
    ],
);

static LEAST_REQUEST: Schema = consul(
    "LeastRequestConfig",
    &[fa("ChoiceCount", &["choice_count"], Ty::Int)],
);

static COOKIE_CONFIG: Schema = consul(
    "CookieConfig",
    &[
        f("Session", Ty::Bool),
        f("TTL", Ty::Duration),
        f("Path", Ty::Str),
    ],
);

static HASH_POLICY: Schema = consul(
    "HashPolicy",
    &[
        f("Field", Ty::Str),
        fa("FieldValue", &["field_value"], Ty::Str),
        fa("CookieConfig", &["cookie_config"], Ty::Obj(&COOKIE_CONFIG)),
        fa("SourceIP", &["source_ip"], Ty::Bool),
        f("Terminal", Ty::Bool),
    ],
);

static LOAD_BALANCER: Schema = consul(
    "LoadBalancer",
    &[
        f("Policy", Ty::Str),
        fa("RingHashConfig", &["ring_hash_config"], Ty::Obj(&RING_HASH)),
        fa(
            "LeastRequestConfig",
            &["least_request_config"],
            Ty::Obj(&LEAST_REQUEST),
        ),
        fa(
            "HashPolicies",
            &["hash_policies"],
            Ty::List(&Ty::Obj(&HASH_POLICY)),
        ),
    ],
);

pub(crate) static SERVICE_RESOLVER: Schema = consul(
    "service-resolver",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        fa("DefaultSubset", &["default_subset"], Ty::Str),
        f("Subsets", Ty::Map(&Ty::Obj(&SUBSET))),
        // `*ServiceResolverRedirect`: an empty one is present, and invalid ("Redirect is empty").
        f("Redirect", Ty::Keep(&Ty::Obj(&REDIRECT))),
        f("Failover", Ty::Map(&Ty::Obj(&FAILOVER))),
        fa("ConnectTimeout", &["connect_timeout"], Ty::Duration),
        fa("RequestTimeout", &["request_timeout"], Ty::Duration),
        fa("LoadBalancer", &["load_balancer"], Ty::Obj(&LOAD_BALANCER)),
        f("Meta", Ty::StrMap),
        f("CreateIndex", Ty::Ignored),
        f("ModifyIndex", Ty::Ignored),
    ],
);
