//! The schemas of what mesh-gitops reads: Consul's config entries (field names and snake_case
//! aliases as Consul's `api` structs declare them), mesh-gitops's own kinds, agent service
//! definitions and the settings file.

use crate::decode::{f, fa, Field, KeyMatch, Schema, Ty};

const fn consul(what: &'static str, fields: &'static [Field]) -> Schema {
    Schema {
        what,
        fields,
        matching: KeyMatch::Consul,
    }
}

const fn loose(what: &'static str, fields: &'static [Field]) -> Schema {
    Schema {
        what,
        fields,
        matching: KeyMatch::Loose,
    }
}

// ---- shared pieces -------------------------------------------------------------------------

static MESH_GATEWAY: Schema = consul("MeshGateway", &[f("Mode", Ty::Str)]);

static TRANSPARENT_PROXY: Schema = consul(
    "TransparentProxy",
    &[
        fa("OutboundListenerPort", &["outbound_listener_port"], Ty::Int),
        fa("DialedDirectly", &["dialed_directly"], Ty::Bool),
    ],
);

static EXPOSE_PATH: Schema = consul(
    "Expose.Paths",
    &[
        fa("ListenerPort", &["listener_port"], Ty::Int),
        f("Path", Ty::Str),
        fa("LocalPathPort", &["local_path_port"], Ty::Int),
        f("Protocol", Ty::Str),
        f("ParsedFromCheck", Ty::Bool),
    ],
);

static EXPOSE: Schema = consul(
    "Expose",
    &[
        f("Checks", Ty::Bool),
        f("Paths", Ty::List(&Ty::Obj(&EXPOSE_PATH))),
    ],
);

// `*int` fields in `agent/structs/connect_proxy_config.go` (UpstreamLimits): zero is a value.
pub(crate) static UPSTREAM_LIMITS: Schema = consul(
    "Limits",
    &[
        fa("MaxConnections", &["max_connections"], Ty::Keep(&Ty::Int)),
        fa(
            "MaxPendingRequests",
            &["max_pending_requests"],
            Ty::Keep(&Ty::Int),
        ),
        fa(
            "MaxConcurrentRequests",
            &["max_concurrent_requests"],
            Ty::Keep(&Ty::Int),
        ),
    ],
);

// PassiveHealthCheck in `agent/structs/connect_proxy_config.go`: the last three are pointers.
pub(crate) static PASSIVE_HEALTH_CHECK: Schema = consul(
    "PassiveHealthCheck",
    &[
        f("Interval", Ty::Duration),
        fa("MaxFailures", &["max_failures"], Ty::Int),
        fa(
            "EnforcingConsecutive5xx",
            &["enforcing_consecutive_5xx"],
            Ty::Keep(&Ty::Int),
        ),
        fa(
            "MaxEjectionPercent",
            &["max_ejection_percent"],
            Ty::Keep(&Ty::Int),
        ),
        fa(
            "BaseEjectionTime",
            &["base_ejection_time"],
            Ty::Keep(&Ty::Duration),
        ),
    ],
);

static UPSTREAM_CONFIG: Schema = consul(
    "UpstreamConfig",
    &[
        f("Name", Ty::Str),
        f("Peer", Ty::Str),
        fa("EnvoyListenerJSON", &["envoy_listener_json"], Ty::Str),
        fa("EnvoyClusterJSON", &["envoy_cluster_json"], Ty::Str),
        f("Protocol", Ty::Str),
        fa("ConnectTimeoutMs", &["connect_timeout_ms"], Ty::Int),
        f("Limits", Ty::Obj(&UPSTREAM_LIMITS)),
        fa(
            "PassiveHealthCheck",
            &["passive_health_check"],
            Ty::Obj(&PASSIVE_HEALTH_CHECK),
        ),
        fa("MeshGateway", &["mesh_gateway"], Ty::Obj(&MESH_GATEWAY)),
        fa(
            "BalanceOutboundConnections",
            &["balance_outbound_connections"],
            Ty::Str,
        ),
    ],
);

static UPSTREAM_CONFIGURATION: Schema = consul(
    "UpstreamConfig",
    &[
        f("Overrides", Ty::List(&Ty::Obj(&UPSTREAM_CONFIG))),
        f("Defaults", Ty::Obj(&UPSTREAM_CONFIG)),
    ],
);

// AccessLogsConfig in `agent/structs/connect_proxy_config.go`: a struct, written as `{}` when
// unset.
static ACCESS_LOGS: Schema = consul(
    "AccessLogs",
    &[
        f("Enabled", Ty::Bool),
        fa("DisableListenerLogs", &["disable_listener_logs"], Ty::Bool),
        f("Type", Ty::Str),
        f("Path", Ty::Str),
        fa("JSONFormat", &["json_format"], Ty::Str),
        fa("TextFormat", &["text_format"], Ty::Str),
    ],
);

static DESTINATION: Schema = consul(
    "Destination",
    &[f("Addresses", Ty::List(&Ty::Str)), f("Port", Ty::Int)],
);

// ---- service-defaults -------------------------------------------------------------------

// `Name` is kept even when empty: validation names the problem ("Name is required").
pub(crate) static SERVICE_DEFAULTS: Schema = consul(
    "service-defaults",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Protocol", Ty::Str),
        f("Mode", Ty::Str),
        fa(
            "TransparentProxy",
            &["transparent_proxy"],
            Ty::Obj(&TRANSPARENT_PROXY),
        ),
        fa("MutualTLSMode", &["mutual_tls_mode"], Ty::Str),
        fa("MeshGateway", &["mesh_gateway"], Ty::Obj(&MESH_GATEWAY)),
        f("Expose", Ty::Obj(&EXPOSE)),
        fa("ExternalSNI", &["external_sni"], Ty::Str),
        fa(
            "UpstreamConfig",
            &["upstream_config"],
            Ty::Obj(&UPSTREAM_CONFIGURATION),
        ),
        f("Destination", Ty::Obj(&DESTINATION)),
        fa(
            "MaxInboundConnections",
            &["max_inbound_connections"],
            Ty::Int,
        ),
        fa(
            "LocalConnectTimeoutMs",
            &["local_connect_timeout_ms"],
            Ty::Int,
        ),
        fa(
            "LocalRequestTimeoutMs",
            &["local_request_timeout_ms"],
            Ty::Int,
        ),
        fa(
            "BalanceInboundConnections",
            &["balance_inbound_connections"],
            Ty::Str,
        ),
        fa("RateLimits", &["rate_limits"], Ty::Any),
        fa("EnvoyExtensions", &["envoy_extensions"], Ty::List(&Ty::Any)),
        f("Meta", Ty::StrMap),
        f("CreateIndex", Ty::Ignored),
        f("ModifyIndex", Ty::Ignored),
        f("Hash", Ty::Ignored),
    ],
);

// ---- proxy-defaults ---------------------------------------------------------------------

pub(crate) static PROXY_DEFAULTS: Schema = consul(
    "proxy-defaults",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Mode", Ty::Str),
        fa(
            "TransparentProxy",
            &["transparent_proxy"],
            Ty::Obj(&TRANSPARENT_PROXY),
        ),
        fa("MutualTLSMode", &["mutual_tls_mode"], Ty::Str),
        f("Config", Ty::Any),
        fa("MeshGateway", &["mesh_gateway"], Ty::Obj(&MESH_GATEWAY)),
        f("Expose", Ty::Obj(&EXPOSE)),
        fa("AccessLogs", &["access_logs"], Ty::Obj(&ACCESS_LOGS)),
        fa("EnvoyExtensions", &["envoy_extensions"], Ty::List(&Ty::Any)),
        fa("FailoverPolicy", &["failover_policy"], Ty::Any),
        fa("PrioritizeByLocality", &["prioritize_by_locality"], Ty::Any),
        f("Meta", Ty::StrMap),
        f("CreateIndex", Ty::Ignored),
        f("ModifyIndex", Ty::Ignored),
    ],
);

// ---- mesh -----------------------------------------------------------------------------------

static MESH_TPROXY: Schema = consul(
    "TransparentProxy",
    &[fa(
        "MeshDestinationsOnly",
        &["mesh_destinations_only"],
        Ty::Bool,
    )],
);

static MESH_TLS_DIRECTION: Schema = consul(
    "TLS",
    &[
        fa("TLSMinVersion", &["tls_min_version"], Ty::Str),
        fa("TLSMaxVersion", &["tls_max_version"], Ty::Str),
        fa("CipherSuites", &["cipher_suites"], Ty::List(&Ty::Str)),
    ],
);

static MESH_TLS: Schema = consul(
    "TLS",
    &[
        f("Incoming", Ty::Obj(&MESH_TLS_DIRECTION)),
        f("Outgoing", Ty::Obj(&MESH_TLS_DIRECTION)),
    ],
);

static MESH_HTTP: Schema = consul(
    "HTTP",
    &[
        fa(
            "SanitizeXForwardedClientCert",
            &["sanitize_x_forwarded_client_cert"],
            Ty::Bool,
        ),
        f("Incoming", Ty::Any),
    ],
);

static MESH_PEERING: Schema = consul(
    "Peering",
    &[fa(
        "PeerThroughMeshGateways",
        &["peer_through_mesh_gateways"],
        Ty::Bool,
    )],
);

pub(crate) static MESH: Schema = consul(
    "mesh",
    &[
        fa(
            "TransparentProxy",
            &["transparent_proxy"],
            Ty::Obj(&MESH_TPROXY),
        ),
        fa(
            "AllowEnablingPermissiveMutualTLS",
            &["allow_enabling_permissive_mutual_tls"],
            Ty::Bool,
        ),
        fa("ValidateClusters", &["validate_clusters"], Ty::Bool),
        f("TLS", Ty::Obj(&MESH_TLS)),
        f("HTTP", Ty::Obj(&MESH_HTTP)),
        f("Peering", Ty::Obj(&MESH_PEERING)),
        f("Meta", Ty::StrMap),
        f("CreateIndex", Ty::Ignored),
        f("ModifyIndex", Ty::Ignored),
    ],
);

// ---- service-intentions -------------------------------------------------------------------

static HEADER_PERMISSION: Schema = consul(
    "intention header permission",
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

static HTTP_PERMISSION: Schema = consul(
    "intention HTTP permission",
    &[
        fa("PathExact", &["path_exact"], Ty::Str),
        fa("PathPrefix", &["path_prefix"], Ty::Str),
        fa("PathRegex", &["path_regex"], Ty::Str),
        f("Header", Ty::List(&Ty::Obj(&HEADER_PERMISSION))),
        f("Methods", Ty::List(&Ty::Str)),
    ],
);

static PERMISSION: Schema = consul(
    "intention permission",
    &[
        f("Action", Ty::Keep(&Ty::Str)),
        // `*IntentionHTTPPermission`: an empty one is present, and invalid ("should not be
        // empty"), not absent.
        f("HTTP", Ty::Keep(&Ty::Obj(&HTTP_PERMISSION))),
        f("JWT", Ty::Any),
    ],
);

static SOURCE: Schema = consul(
    "intention source",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Peer", Ty::Str),
        fa("SamenessGroup", &["sameness_group"], Ty::Str),
        f("Action", Ty::Keep(&Ty::Str)),
        f("Permissions", Ty::List(&Ty::Obj(&PERMISSION))),
        f("Precedence", Ty::Int),
        f("Type", Ty::Str),
        f("Description", Ty::Str),
        fa("LegacyID", &["legacy_id"], Ty::Str),
        fa("LegacyMeta", &["legacy_meta"], Ty::StrMap),
        fa("LegacyCreateTime", &["legacy_create_time"], Ty::Str),
        fa("LegacyUpdateTime", &["legacy_update_time"], Ty::Str),
    ],
);

pub(crate) static SERVICE_INTENTIONS: Schema = consul(
    "service-intentions",
    &[
        f("Name", Ty::Keep(&Ty::Str)),
        f("Sources", Ty::List(&Ty::Obj(&SOURCE))),
        f("JWT", Ty::Any),
        f("Meta", Ty::StrMap),
        f("CreateIndex", Ty::Ignored),
        f("ModifyIndex", Ty::Ignored),
    ],
);

// ---- mesh-gitops kinds ----------------------------------------------------------------------

static ACL_LINK: Schema = loose("ACL link", &[f("Name", Ty::Str), f("ID", Ty::Str)]);

static SERVICE_IDENTITY: Schema = loose(
    "service identity",
    &[
        f("ServiceName", Ty::Str),
        f("Datacenters", Ty::List(&Ty::Str)),
    ],
);

static NODE_IDENTITY: Schema = loose(
    "node identity",
    &[f("NodeName", Ty::Str), f("Datacenter", Ty::Str)],
);

pub(crate) static ACL_POLICY: Schema = loose(
    "acl-policy",
    &[
        f("Name", Ty::Str),
        f("Description", Ty::Str),
        f("Rules", Ty::Str),
        f("Datacenters", Ty::List(&Ty::Str)),
    ],
);

pub(crate) static ACL_ROLE: Schema = loose(
    "acl-role",
    &[
        f("Name", Ty::Str),
        f("Description", Ty::Str),
        f("Policies", Ty::List(&Ty::Obj(&ACL_LINK))),
        f("ServiceIdentities", Ty::List(&Ty::Obj(&SERVICE_IDENTITY))),
        f("NodeIdentities", Ty::List(&Ty::Obj(&NODE_IDENTITY))),
    ],
);

pub(crate) static ACL_TOKEN: Schema = loose(
    "acl-token",
    &[
        f("Name", Ty::Str),
        f("Description", Ty::Str),
        f("Policies", Ty::List(&Ty::Obj(&ACL_LINK))),
        f("Roles", Ty::List(&Ty::Obj(&ACL_LINK))),
        f("ServiceIdentities", Ty::List(&Ty::Obj(&SERVICE_IDENTITY))),
        f("NodeIdentities", Ty::List(&Ty::Obj(&NODE_IDENTITY))),
        f("Local", Ty::Bool),
        fa("SecretIDFrom", &["secret_id_from"], Ty::Str),
        // Accepted only to be rejected with a precise message: secrets never live in git.
        fa("SecretID", &["secret_id"], Ty::Str),
    ],
);

/// Keys of the CA provider `Config`, canonical spelling; snake_case also matches (the
/// agent-file form).
pub(crate) static CA_PROVIDER_CONFIG: Schema = loose(
    "ca-config Config",
    &[
        // A Go duration string, or a number of nanoseconds: `ParseConsulCAConfig` decodes with
        // `ParseDurationFunc` and weakly typed input (`provider_consul_config.go`).
        f("LeafCertTTL", Ty::Any),
        f("IntermediateCertTTL", Ty::Any),
        f("RootCertTTL", Ty::Any),
        f("PrivateKeyType", Ty::Str),
        f("PrivateKeyBits", Ty::Int),
        f("CSRMaxPerSecond", Ty::Any),
        f("CSRMaxConcurrent", Ty::Int),
        f("SkipValidate", Ty::Bool),
        f("RootCert", Ty::Str),
        f("PrivateKey", Ty::Str),
        f("Address", Ty::Str),
        f("Token", Ty::Str),
        f("TokenFrom", Ty::Str),
        f("RootPKIPath", Ty::Str),
        f("IntermediatePKIPath", Ty::Str),
        f("RootPKINamespace", Ty::Str),
        f("IntermediatePKINamespace", Ty::Str),
        f("Namespace", Ty::Str),
        f("CAFile", Ty::Str),
        f("CAPath", Ty::Str),
        f("CertFile", Ty::Str),
        f("KeyFile", Ty::Str),
        f("TLSServerName", Ty::Str),
        f("TLSSkipVerify", Ty::Bool),
        f("AuthMethod", Ty::Any),
        f("ExistingARN", Ty::Str),
        f("DeleteOnExit", Ty::Bool),
    ],
);

pub(crate) static CA_CONFIG: Schema = loose(
    "ca-config",
    &[
        f("Provider", Ty::Str),
        f("Config", Ty::Obj(&CA_PROVIDER_CONFIG)),
        f("ForceWithoutCrossSigning", Ty::Bool),
    ],
);

// ---- settings -------------------------------------------------------------------------------

static SETTINGS_ACL: Schema = loose(
    "acl settings",
    &[f("enabled", Ty::Bool), f("default_policy", Ty::Str)],
);

// A webhook URL carries its token: only `url_from` is read; `url` is accepted to be rejected
// precisely.
static NOTIFY_HOOK: Schema = loose(
    "notification webhook",
    &[f("url_from", Ty::Str), f("url", Ty::Str)],
);

static NOTIFY_GITHUB: Schema = loose(
    "github notifications",
    &[
        f("repository", Ty::Str),
        f("token_from", Ty::Str),
        f("token", Ty::Str),
        f("api_url", Ty::Str),
        f("context", Ty::Str),
    ],
);

static SETTINGS_NOTIFICATIONS: Schema = loose(
    "notifications",
    &[
        f("webhook", Ty::Obj(&NOTIFY_HOOK)),
        f("slack", Ty::Obj(&NOTIFY_HOOK)),
        f("github", Ty::Obj(&NOTIFY_GITHUB)),
    ],
);

pub(crate) static SETTINGS: Schema = loose(
    "mesh-gitops.hcl",
    &[
        f("datacenter", Ty::Str),
        f("acl", Ty::Obj(&SETTINGS_ACL)),
        f("owner", Ty::Str),
        f("guardrails", Ty::List(&Ty::Str)),
        f("notifications", Ty::Obj(&SETTINGS_NOTIFICATIONS)),
    ],
);

// ---- agent service definitions -------------------------------------------------------------

static UPSTREAM: Schema = loose(
    "upstream",
    &[
        f("destination_type", Ty::Str),
        f("destination_name", Ty::Str),
        f("destination_peer", Ty::Str),
        f("datacenter", Ty::Str),
        f("local_bind_address", Ty::Str),
        f("local_bind_port", Ty::Int),
        f("local_bind_socket_path", Ty::Str),
        f("local_bind_socket_mode", Ty::Str),
        f("config", Ty::Any),
        f("mesh_gateway", Ty::Obj(&MESH_GATEWAY)),
        f("centrally_configured", Ty::Bool),
    ],
);

static PROXY: Schema = loose(
    "proxy",
    &[
        f("destination_service_name", Ty::Str),
        f("destination_service_id", Ty::Str),
        f("local_service_address", Ty::Str),
        f("local_service_port", Ty::Int),
        f("local_service_socket_path", Ty::Str),
        f("mode", Ty::Str),
        f("transparent_proxy", Ty::Any),
        f("config", Ty::Any),
        f("upstreams", Ty::List(&Ty::Obj(&UPSTREAM))),
        f("mesh_gateway", Ty::Obj(&MESH_GATEWAY)),
        f("expose", Ty::Any),
        f("access_logs", Ty::Any),
    ],
);

static SIDECAR_SERVICE: Schema = loose(
    "sidecar_service",
    &[
        f("name", Ty::Str),
        f("port", Ty::Int),
        f("address", Ty::Str),
        f("tags", Ty::List(&Ty::Str)),
        f("meta", Ty::StrMap),
        f("check", Ty::Any),
        f("checks", Ty::List(&Ty::Any)),
        f("proxy", Ty::Obj(&PROXY)),
        f("weights", Ty::Any),
        f("enable_tag_override", Ty::Bool),
    ],
);

static CONNECT: Schema = loose(
    "connect",
    &[
        f("native", Ty::Bool),
        f("sidecar_service", Ty::Obj(&SIDECAR_SERVICE)),
        // Consul 1.2-1.5 managed proxies (`connect { proxy { config { upstreams } } }`).
        f("proxy", Ty::Any),
    ],
);

pub(crate) static SERVICE_DEFINITION: Schema = loose(
    "service definition",
    &[
        f("id", Ty::Str),
        f("name", Ty::Str),
        f("kind", Ty::Str),
        f("tags", Ty::List(&Ty::Str)),
        f("address", Ty::Str),
        f("tagged_addresses", Ty::Any),
        f("port", Ty::Int),
        f("socket_path", Ty::Str),
        f("meta", Ty::StrMap),
        f("enable_tag_override", Ty::Bool),
        f("check", Ty::Any),
        f("checks", Ty::List(&Ty::Any)),
        f("weights", Ty::Any),
        f("proxy", Ty::Obj(&PROXY)),
        f("connect", Ty::Obj(&CONNECT)),
        f("locality", Ty::Any),
        // Accepted only to be rejected precisely: an ACL token is a secret.
        f("token", Ty::Str),
    ],
);
