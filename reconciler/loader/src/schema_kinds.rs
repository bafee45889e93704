//! The schemas of Consul's gateway, route, certificate, peering and JWT config entries: field
//! names and snake_case aliases as Consul's `api` structs declare them (`api/config_entry_*.go`),
//! types as `agent/structs` holds them. The discovery-chain kinds live elsewhere.
//!
//! `Name` and `Meta` are read here like any field; the entry module takes them out of the body.
//! `Status` (api-gateway, routes) is server-managed and set apart by the decoder.

use crate::decode::{f, fa, Field, KeyMatch, Schema, Ty};
use crate::schema::{PASSIVE_HEALTH_CHECK, UPSTREAM_LIMITS};

const fn consul(what: &'static str, fields: &'static [Field]) -> Schema {
    Schema {
        what,
        fields,
        matching: KeyMatch::Consul,
    }
}

/// The schema of `kind`, if it is one of the kinds this module knows.
pub(crate) fn schema_for(kind: &str) -> Option<&'static Schema> {
    Some(match kind {
        "ingress-gateway" => &INGRESS_GATEWAY,
        "terminating-gateway" => &TERMINATING_GATEWAY,
        "api-gateway" => &API_GATEWAY,
        "bound-api-gateway" => &BOUND_API_GATEWAY,
        "http-route" => &HTTP_ROUTE,
        "tcp-route" => &TCP_ROUTE,
        "inline-certificate" => &INLINE_CERTIFICATE,
        "file-system-certificate" => &FILE_SYSTEM_CERTIFICATE,
        "exported-services" => &EXPORTED_SERVICES,
        "sameness-group" => &SAMENESS_GROUP,
        "jwt-provider" => &JWT_PROVIDER,
        "control-plane-request-limit" => &CONTROL_PLANE_REQUEST_LIMIT,
        _ => return None,
    })
}

// ---- shared pieces -------------------------------------------------------------------------

static SDS: Schema = consul(
    "SDS",
    &[
        fa("ClusterName", &["cluster_name"], Ty::Str),
        fa("CertResource", &["cert_resource"], Ty::Str),
    ],
);

// GatewayTLSConfig (`agent/structs/config_entry_gateways.go`).
static GATEWAY_TLS: Schema = consul(
    "TLS",
    &[
        f("Enabled", Ty::Bool),
        f("SDS", Ty::Obj(&SDS)),
        fa("TLSMinVersion", &["tls_min_version"], Ty::Str),
        fa("TLSMaxVersion", &["tls_max_version"], Ty::Str),
        fa("CipherSuites", &["cipher_suites"], Ty::List(&Ty::Str)),
    ],
);

static GATEWAY_SERVICE_TLS: Schema = consul("TLS", &[f("SDS", Ty::Obj(&SDS))]);

// HTTPHeaderModifiers (`agent/structs/config_entry_discoverychain.go`).
static HEADER_MODIFIERS: Schema = consul(
    "HTTPHeaderModifiers",
    &[
        f("Add", Ty::StrMap),
        f("Set", Ty::StrMap),
        f("Remove", Ty::List(&Ty::Str)),
    ],
);

// ResourceReference (`agent/structs/config_entry_routes.go`); Namespace and Partition are
// Consul Enterprise's.
static RESOURCE_REFERENCE: Schema = consul(
    "ResourceReference",
    &[
        f("Kind", Ty::Str),
        f("Name", Ty::Str),
        f("SectionName", Ty::Str),
    ],
);

// ---- ingress-gateway -----------------------------------------------------------------------

static INGRESS_SERVICE_CONFIG: Schema = consul(
    "Defaults",
    &[
        fa("MaxConnections", &["max_connections"], Ty::Int),
        fa("MaxPendingRequests", &["max_pending_requests"], Ty::Int),
        fa(
            "MaxConcurrentRequests",
            &["max_concurrent_requests"],
            Ty::Int,
        ),
        fa(
            "PassiveHealthCheck",
            &["passive_health_check"],
            Ty::Obj(&PASSIVE_HEALTH_CHECK),
        ),
    ],
);

static INGRESS_SERVICE: Schema = consul(
    "ingress service",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Hosts", Ty::List(&Ty::Str)),
        f("TLS", Ty::Obj(&GATEWAY_SERVICE_TLS)),
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
        fa("MaxConnections", &["max_connections"], Ty::Int),
        fa("MaxPendingRequests", &["max_pending_requests"], Ty::Int),
        fa(
            "MaxConcurrentRequests",
            &["max_concurrent_requests"],
            Ty::Int,
        ),
        fa(
            "PassiveHealthCheck",
            &["passive_health_check"],
            Ty::Obj(&PASSIVE_HEALTH_CHECK),
        ),
        f("Meta", Ty::StrMap),
    ],
);

static INGRESS_LISTENER: Schema = consul(
    "ingress listener",
    &[
        f("Port", Ty::Keep(&Ty::Int)),
        f("Protocol", Ty::Str),
        f("TLS", Ty::Obj(&GATEWAY_TLS)),
        f("Services", Ty::List(&Ty::Obj(&INGRESS_SERVICE))),
    ],
);

pub(crate) static INGRESS_GATEWAY: Schema = consul(
    "ingress-gateway",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("TLS", Ty::Obj(&GATEWAY_TLS)),
        f("Listeners", Ty::List(&Ty::Obj(&INGRESS_LISTENER))),
        f("Defaults", Ty::Obj(&INGRESS_SERVICE_CONFIG)),
        f("Meta", Ty::StrMap),
    ],
);

// ---- terminating-gateway -------------------------------------------------------------------

static LINKED_SERVICE: Schema = consul(
    "linked service",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        fa("CAFile", &["ca_file"], Ty::Str),
        fa("CertFile", &["cert_file"], Ty::Str),
        fa("KeyFile", &["key_file"], Ty::Str),
        f("SNI", Ty::Str),
        fa(
            "DisableAutoHostRewrite",
            &["disable_auto_host_rewrite"],
            Ty::Bool,
        ),
    ],
);

pub(crate) static TERMINATING_GATEWAY: Schema = consul(
    "terminating-gateway",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Services", Ty::List(&Ty::Obj(&LINKED_SERVICE))),
        f("Meta", Ty::StrMap),
    ],
);

// ---- api-gateway and bound-api-gateway -----------------------------------------------------

// `APIGatewayPolicy` holds only `JWT`, which CE leaves out (`config_entry_gateways_ce.go`): a
// `JWT` key is reported as Consul Enterprise's by the decoder.
static GATEWAY_POLICY: Schema = consul("policy", &[]);

static API_GATEWAY_TLS: Schema = consul(
    "TLS",
    &[
        f("Certificates", Ty::List(&Ty::Obj(&RESOURCE_REFERENCE))),
        fa("MaxVersion", &["tls_max_version"], Ty::Str),
        fa("MinVersion", &["tls_min_version"], Ty::Str),
        fa("CipherSuites", &["cipher_suites"], Ty::List(&Ty::Str)),
    ],
);

static API_GATEWAY_LISTENER: Schema = consul(
    "api-gateway listener",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Hostname", Ty::Str),
        f("Port", Ty::Keep(&Ty::Int)),
        f("Protocol", Ty::Str),
        f("TLS", Ty::Obj(&API_GATEWAY_TLS)),
        f("Override", Ty::Obj(&GATEWAY_POLICY)),
        f("Default", Ty::Obj(&GATEWAY_POLICY)),
    ],
);

pub(crate) static API_GATEWAY: Schema = consul(
    "api-gateway",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Listeners", Ty::List(&Ty::Obj(&API_GATEWAY_LISTENER))),
        f("Meta", Ty::StrMap),
    ],
);

static BOUND_LISTENER: Schema = consul(
    "bound-api-gateway listener",
    &[
        f("Name", Ty::Str),
        f("Routes", Ty::List(&Ty::Obj(&RESOURCE_REFERENCE))),
        f("Certificates", Ty::List(&Ty::Obj(&RESOURCE_REFERENCE))),
    ],
);

pub(crate) static BOUND_API_GATEWAY: Schema = consul(
    "bound-api-gateway",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Listeners", Ty::List(&Ty::Obj(&BOUND_LISTENER))),
        // `ServiceRouteReferences`, a map keyed by service: read as given.
        f("Services", Ty::Any),
        f("Meta", Ty::StrMap),
    ],
);

// ---- http-route and tcp-route --------------------------------------------------------------

static HEADER_FILTER: Schema = consul(
    "header filter",
    &[
        f("Add", Ty::StrMap),
        f("Remove", Ty::List(&Ty::Str)),
        f("Set", Ty::StrMap),
    ],
);

static URL_REWRITE: Schema = consul("URLRewrite", &[f("Path", Ty::Str)]);

static RETRY_FILTER: Schema = consul(
    "RetryFilter",
    &[
        // `*uint32` and `*bool` in `agent/structs/config_entry_routes.go`: zero is a value.
        f("NumRetries", Ty::Keep(&Ty::Int)),
        f("RetryOn", Ty::List(&Ty::Str)),
        f("RetryOnStatusCodes", Ty::List(&Ty::Int)),
        f("RetryOnConnectFailure", Ty::Keep(&Ty::Bool)),
    ],
);

static TIMEOUT_FILTER: Schema = consul(
    "TimeoutFilter",
    &[
        f("RequestTimeout", Ty::Duration),
        f("IdleTimeout", Ty::Duration),
    ],
);

static HTTP_FILTERS: Schema = consul(
    "Filters",
    &[
        f("Headers", Ty::List(&Ty::Obj(&HEADER_FILTER))),
        f("URLRewrite", Ty::Obj(&URL_REWRITE)),
        f("RetryFilter", Ty::Obj(&RETRY_FILTER)),
        f("TimeoutFilter", Ty::Obj(&TIMEOUT_FILTER)),
    ],
);

static HTTP_RESPONSE_FILTERS: Schema = consul(
    "ResponseFilters",
    &[f("Headers", Ty::List(&Ty::Obj(&HEADER_FILTER)))],
);

static HTTP_HEADER_MATCH: Schema = consul(
    "header match",
    &[
        f("Match", Ty::Str),
        f("Name", Ty::Str),
        f("Value", Ty::Str),
        f("Invert", Ty::Bool),
    ],
);

static HTTP_PATH_MATCH: Schema = consul("Path", &[f("Match", Ty::Str), f("Value", Ty::Str)]);

static HTTP_QUERY_MATCH: Schema = consul(
    "query match",
    &[f("Match", Ty::Str), f("Name", Ty::Str), f("Value", Ty::Str)],
);

static HTTP_MATCH: Schema = consul(
    "match",
    &[
        f("Headers", Ty::List(&Ty::Obj(&HTTP_HEADER_MATCH))),
        f("Method", Ty::Str),
        f("Path", Ty::Obj(&HTTP_PATH_MATCH)),
        f("Query", Ty::List(&Ty::Obj(&HTTP_QUERY_MATCH))),
    ],
);

static HTTP_SERVICE: Schema = consul(
    "http-route service",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Weight", Ty::Int),
        f("Filters", Ty::Obj(&HTTP_FILTERS)),
        f("ResponseFilters", Ty::Obj(&HTTP_RESPONSE_FILTERS)),
        f("TLS", Ty::Obj(&GATEWAY_SERVICE_TLS)),
        f("Limits", Ty::Obj(&UPSTREAM_LIMITS)),
    ],
);

static HTTP_ROUTE_RULE: Schema = consul(
    "http-route rule",
    &[
        f("Filters", Ty::Obj(&HTTP_FILTERS)),
        f("ResponseFilters", Ty::Obj(&HTTP_RESPONSE_FILTERS)),
        f("Matches", Ty::List(&Ty::Obj(&HTTP_MATCH))),
        f("Services", Ty::List(&Ty::Obj(&HTTP_SERVICE))),
    ],
);

pub(crate) static HTTP_ROUTE: Schema = consul(
    "http-route",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Parents", Ty::List(&Ty::Obj(&RESOURCE_REFERENCE))),
        f("Rules", Ty::List(&Ty::Obj(&HTTP_ROUTE_RULE))),
        f("Hostnames", Ty::List(&Ty::Str)),
        f("Meta", Ty::StrMap),
    ],
);

static TCP_SERVICE: Schema = consul(
    "tcp-route service",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("TLS", Ty::Obj(&GATEWAY_SERVICE_TLS)),
        f("Limits", Ty::Obj(&UPSTREAM_LIMITS)),
    ],
);

pub(crate) static TCP_ROUTE: Schema = consul(
    "tcp-route",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Parents", Ty::List(&Ty::Obj(&RESOURCE_REFERENCE))),
        f("Services", Ty::List(&Ty::Obj(&TCP_SERVICE))),
        f("Meta", Ty::StrMap),
    ],
);

// ---- certificates --------------------------------------------------------------------------

pub(crate) static INLINE_CERTIFICATE: Schema = consul(
    "inline-certificate",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Certificate", Ty::Str),
        f("PrivateKey", Ty::Str),
        // A repository's reference to the key (`mesh_model::entry_secret`), never sent.
        f("PrivateKeyFrom", Ty::Str),
        f("Meta", Ty::StrMap),
    ],
);

pub(crate) static FILE_SYSTEM_CERTIFICATE: Schema = consul(
    "file-system-certificate",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Certificate", Ty::Str),
        f("PrivateKey", Ty::Str),
        f("Meta", Ty::StrMap),
    ],
);

// ---- exported-services and sameness-group --------------------------------------------------

// ServiceConsumer: `Partition` and `SamenessGroup` are decoded (they are fields of the struct in
// CE too); validation rejects them as Consul CE does.
static SERVICE_CONSUMER: Schema = consul(
    "consumer",
    &[
        f("Partition", Ty::Str),
        fa("Peer", &["peer_name"], Ty::Str),
        fa("SamenessGroup", &["sameness_group"], Ty::Str),
    ],
);

static EXPORTED_SERVICE: Schema = consul(
    "exported service",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Consumers", Ty::List(&Ty::Obj(&SERVICE_CONSUMER))),
    ],
);

pub(crate) static EXPORTED_SERVICES: Schema = consul(
    "exported-services",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Services", Ty::List(&Ty::Obj(&EXPORTED_SERVICE))),
        f("Meta", Ty::StrMap),
    ],
);

static SAMENESS_MEMBER: Schema = consul("member", &[f("Partition", Ty::Str), f("Peer", Ty::Str)]);

pub(crate) static SAMENESS_GROUP: Schema = consul(
    "sameness-group",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        fa("DefaultForFailover", &["default_for_failover"], Ty::Bool),
        fa("IncludeLocal", &["include_local"], Ty::Bool),
        f("Members", Ty::List(&Ty::Obj(&SAMENESS_MEMBER))),
        f("Meta", Ty::StrMap),
    ],
);

// ---- jwt-provider --------------------------------------------------------------------------

static LOCAL_JWKS: Schema = consul("Local", &[f("JWKS", Ty::Str), f("Filename", Ty::Str)]);

static RETRY_BACKOFF: Schema = consul(
    "RetryPolicyBackOff",
    &[
        fa("BaseInterval", &["base_interval"], Ty::Duration),
        fa("MaxInterval", &["max_interval"], Ty::Duration),
    ],
);

static JWKS_RETRY_POLICY: Schema = consul(
    "RetryPolicy",
    &[
        fa("NumRetries", &["num_retries"], Ty::Int),
        fa(
            "RetryPolicyBackOff",
            &["retry_policy_back_off"],
            Ty::Obj(&RETRY_BACKOFF),
        ),
    ],
);

static REMOTE_JWKS: Schema = consul(
    "Remote",
    &[
        f("URI", Ty::Str),
        fa("RequestTimeoutMs", &["request_timeout_ms"], Ty::Int),
        fa("CacheDuration", &["cache_duration"], Ty::Duration),
        fa("FetchAsynchronously", &["fetch_asynchronously"], Ty::Bool),
        fa(
            "RetryPolicy",
            &["retry_policy"],
            Ty::Obj(&JWKS_RETRY_POLICY),
        ),
        fa("JWKSCluster", &["jwks_cluster"], Ty::Obj(&JWKS_CLUSTER)),
    ],
);

static JWKS_PROVIDER_INSTANCE: Schema = consul(
    "CaCertificateProviderInstance",
    &[
        fa("InstanceName", &["instance_name"], Ty::Str),
        fa("CertificateName", &["certificate_name"], Ty::Str),
    ],
);

static JWKS_TRUSTED_CA: Schema = consul(
    "TrustedCA",
    &[
        f("Filename", Ty::Str),
        fa("EnvironmentVariable", &["environment_variable"], Ty::Str),
        fa("InlineString", &["inline_string"], Ty::Str),
        // `[]byte`: base64 in JSON.
        fa("InlineBytes", &["inline_bytes"], Ty::Str),
    ],
);

// The Go pointers of `JWKSTLSCertificate` are kept when empty: an empty one is present, and
// validation counts it.
static JWKS_TLS_CERTIFICATES: Schema = consul(
    "TLSCertificates",
    &[
        fa(
            "CaCertificateProviderInstance",
            &["ca_certificate_provider_instance"],
            Ty::Keep(&Ty::Obj(&JWKS_PROVIDER_INSTANCE)),
        ),
        fa(
            "TrustedCA",
            &["trusted_ca"],
            Ty::Keep(&Ty::Obj(&JWKS_TRUSTED_CA)),
        ),
    ],
);

static JWKS_CLUSTER: Schema = consul(
    "JWKSCluster",
    &[
        fa("DiscoveryType", &["discovery_type"], Ty::Str),
        fa(
            "TLSCertificates",
            &["tls_certificates"],
            Ty::Obj(&JWKS_TLS_CERTIFICATES),
        ),
        fa("ConnectTimeout", &["connect_timeout"], Ty::Duration),
    ],
);

static JSON_WEB_KEY_SET: Schema = consul(
    "JSONWebKeySet",
    &[
        f("Local", Ty::Keep(&Ty::Obj(&LOCAL_JWKS))),
        f("Remote", Ty::Keep(&Ty::Obj(&REMOTE_JWKS))),
    ],
);

static JWT_LOCATION_HEADER: Schema = consul(
    "Header",
    &[
        f("Name", Ty::Str),
        fa("ValuePrefix", &["value_prefix"], Ty::Str),
        f("Forward", Ty::Bool),
    ],
);

static JWT_LOCATION_NAME: Schema = consul("location", &[f("Name", Ty::Str)]);

static JWT_LOCATION: Schema = consul(
    "Locations",
    &[
        f("Header", Ty::Keep(&Ty::Obj(&JWT_LOCATION_HEADER))),
        fa(
            "QueryParam",
            &["query_param"],
            Ty::Keep(&Ty::Obj(&JWT_LOCATION_NAME)),
        ),
        f("Cookie", Ty::Keep(&Ty::Obj(&JWT_LOCATION_NAME))),
    ],
);

static JWT_FORWARDING: Schema = consul(
    "Forwarding",
    &[
        fa("HeaderName", &["header_name"], Ty::Str),
        fa(
            "PadForwardPayloadHeader",
            &["pad_forward_payload_header"],
            Ty::Bool,
        ),
    ],
);

static JWT_CACHE: Schema = consul("CacheConfig", &[f("Size", Ty::Int)]);

pub(crate) static JWT_PROVIDER: Schema = consul(
    "jwt-provider",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        // Go pointers, kept when empty: validation tells an empty key set from none.
        fa(
            "JSONWebKeySet",
            &["json_web_key_set"],
            Ty::Keep(&Ty::Obj(&JSON_WEB_KEY_SET)),
        ),
        f("Issuer", Ty::Str),
        f("Audiences", Ty::List(&Ty::Str)),
        f("Locations", Ty::List(&Ty::Obj(&JWT_LOCATION))),
        f("Forwarding", Ty::Keep(&Ty::Obj(&JWT_FORWARDING))),
        fa("ClockSkewSeconds", &["clock_skew_seconds"], Ty::Int),
        fa("CacheConfig", &["cache_config"], Ty::Obj(&JWT_CACHE)),
        f("Meta", Ty::StrMap),
    ],
);

// ---- control-plane-request-limit -----------------------------------------------------------

static READ_WRITE_RATES: Schema = consul(
    "rates",
    &[
        fa("ReadRate", &["read_rate"], Ty::Float),
        fa("WriteRate", &["write_rate"], Ty::Float),
    ],
);

pub(crate) static CONTROL_PLANE_REQUEST_LIMIT: Schema = consul(
    "control-plane-request-limit",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Mode", Ty::Str),
        fa("ReadRate", &["read_rate"], Ty::Float),
        fa("WriteRate", &["write_rate"], Ty::Float),
        f("ACL", Ty::Obj(&READ_WRITE_RATES)),
        f("Catalog", Ty::Obj(&READ_WRITE_RATES)),
        fa("ConfigEntry", &["config_entry"], Ty::Obj(&READ_WRITE_RATES)),
        fa("ConnectCA", &["connect_ca"], Ty::Obj(&READ_WRITE_RATES)),
        f("Coordinate", Ty::Obj(&READ_WRITE_RATES)),
        fa(
            "DiscoveryChain",
            &["discovery_chain"],
            Ty::Obj(&READ_WRITE_RATES),
        ),
        f("Health", Ty::Obj(&READ_WRITE_RATES)),
        f("Intention", Ty::Obj(&READ_WRITE_RATES)),
        f("KV", Ty::Obj(&READ_WRITE_RATES)),
        f("Tenancy", Ty::Obj(&READ_WRITE_RATES)),
        fa(
            "PreparedQuery",
            &["prepared_query"],
            Ty::Obj(&READ_WRITE_RATES),
        ),
        f("Session", Ty::Obj(&READ_WRITE_RATES)),
        f("Txn", Ty::Obj(&READ_WRITE_RATES)),
        f("Meta", Ty::StrMap),
    ],
);
