//! The stable diagnostic codes. A code never changes meaning once released; `docs/diagnostics.md`
//! documents each one and a test checks that the two agree.

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $sev:ident, $summary:literal), )*) => {
        /// A stable diagnostic code such as `E0201`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in code order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The code as printed, e.g. `E0201`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            /// One line saying what the code means.
            pub fn summary(self) -> &'static str {
                match self { $( Code::$variant => $summary, )* }
            }

            pub fn default_severity(self) -> crate::Severity {
                match self { $( Code::$variant => crate::Severity::$sev, )* }
            }

            pub fn from_code_str(s: &str) -> Option<Code> {
                match s { $( $code => Some(Code::$variant), )* _ => None }
            }
        }
    };
}

codes! {
    // ---- E01xx: reading files and syntax -------------------------------------------------
    HclSyntax = ("E0101", Error, "HCL syntax error"),
    JsonSyntax = ("E0102", Error, "JSON syntax error"),
    YamlSyntax = ("E0103", Error, "YAML syntax error"),
    NotUtf8 = ("E0104", Error, "file is not valid UTF-8"),
    UnrecognizedFile = ("E0105", Error, "a config file that matches no known format"),
    UnreadableFile = ("E0106", Error, "a file or directory could not be read"),
    MeshIgnore = ("E0107", Error, "invalid pattern in .meshignore"),

    // ---- E02xx: structure of objects (keys, types) ----------------------------------------
    UnknownKey = ("E0201", Error, "a key Consul does not accept for this object"),
    WrongType = ("E0202", Error, "a value of the wrong type"),
    MissingField = ("E0203", Error, "a required field is missing"),
    DuplicateKey = ("E0204", Error, "a key given twice, or in two spellings"),
    EnterpriseOnly = ("E0205", Error, "a Consul Enterprise field (Namespace, Partition) in a CE repository"),
    UnknownKind = ("E0207", Error, "an unknown config entry kind"),
    MissingKind = ("E0208", Error, "an object with no Kind"),

    // ---- E03xx: service-intentions ---------------------------------------------------------
    IntentionName = ("E0301", Error, "invalid intention source or destination name"),
    IntentionNoSources = ("E0302", Error, "a service-intentions entry with no sources"),
    IntentionAction = ("E0303", Error, "an intention source with a missing or invalid Action"),
    IntentionActionAndPermissions = ("E0304", Error, "an intention source with both Action and Permissions"),
    IntentionWildcardPermissions = ("E0305", Error, "L7 permissions on a wildcard destination"),
    IntentionPermission = ("E0306", Error, "an invalid L7 permission"),
    IntentionDuplicateSource = ("E0307", Error, "the same source twice in one service-intentions entry"),
    IntentionDescription = ("E0308", Error, "an intention description longer than 512 bytes"),
    IntentionType = ("E0309", Error, "an intention source Type other than consul"),
    IntentionPeer = ("E0310", Error, "conflicting Peer, Partition and SamenessGroup on a source"),
    IntentionL7NeedsHttp = ("E0311", Error, "L7 intentions on a service whose protocol is not http, http2 or grpc"),
    IntentionLegacyField = ("E0312", Error, "legacy intention fields on a config entry"),

    // ---- E04xx: other config entries -------------------------------------------------------
    EntryName = ("E0401", Error, "an invalid config entry name"),
    MetaLimits = ("E0402", Error, "config entry Meta over Consul's limits"),
    EntryField = ("E0403", Error, "a config entry field with an invalid value"),
    GatewayListener = ("E0420", Error, "an invalid gateway listener (ingress-gateway, api-gateway)"),
    GatewayService = ("E0421", Error, "an invalid gateway service, route or certificate in a gateway entry"),
    MissingEntryReference = ("E0422", Error, "a reference to a config entry the repository does not define"),
    PermissiveMutualTls = ("E0423", Error, "MutualTLSMode permissive while the mesh entry does not allow it"),
    ReadOnlyKind = ("E0424", Error, "a config entry kind only Consul writes"),
    ExportedServices = ("E0425", Error, "an invalid exported-services entry"),
    ChainInvalid = ("E0426", Error, "a discovery chain Consul cannot compile (a router or splitter without an HTTP protocol, mixed protocols, a missing subset, a cycle)"),
    RouteRegex = ("W0427", Warning, "a route regular expression Consul accepts and Envoy rejects"),

    // ---- E05xx: ACL ----------------------------------------------------------------------
    AclRulesSyntax = ("E0501", Error, "ACL policy rules that do not parse"),
    AclRule = ("E0502", Error, "an invalid ACL rule (resource or access level)"),
    AclName = ("E0503", Error, "an invalid ACL policy, role or token name"),
    LiteralSecret = ("E0504", Error, "a literal secret in the repository"),
    AclMissingReference = ("E0505", Error, "an ACL link to a policy or role the repository does not define"),
    SecretSource = ("E0506", Error, "an invalid SecretIDFrom or TokenFrom source"),
    AclIdentity = ("E0507", Error, "an invalid service or node identity"),

    // ---- E06xx: Connect CA ---------------------------------------------------------------
    CaTtl = ("E0601", Error, "a CA TTL that is malformed or outside Consul's bounds"),
    CaKey = ("E0602", Error, "an unsupported CA private key type or size"),
    CaProvider = ("E0603", Error, "an unknown CA provider or a provider field that does not fit it"),
    CaConfigTwice = ("E0604", Error, "more than one ca-config in the repository"),

    // ---- E07xx: Nomad job files -------------------------------------------------------------
    NomadSyntax = ("E0701", Error, "Nomad job file syntax error"),
    NomadEval = ("E0702", Error, "an expression in a Nomad job file that cannot be evaluated"),
    NomadNetworkMode = ("E0703", Error, "Connect sidecar in a group without bridge or CNI networking"),
    NomadDuplicateBindPort = ("E0704", Error, "two upstreams in one group bound to the same address and port"),
    NomadConnectKind = ("E0705", Error, "a connect block that is not exactly one of native, sidecar_service or gateway"),
    NomadUpstream = ("E0706", Error, "an upstream without destination_name or local_bind_port"),
    NomadServiceName = ("E0707", Error, "an invalid Connect service or group name"),
    NomadUnsupported = ("E0708", Error, "a Nomad construct written in a form Nomad does not accept"),
    NomadStructure = ("E0709", Error, "a job file whose block structure Nomad rejects"),
    UnresolvedName = ("W0710", Warning, "a service or upstream name left as a runtime interpolation"),

    // ---- E08xx: Consul service definitions ----------------------------------------------------
    ServiceDefinition = ("E0801", Error, "an invalid Consul service definition"),
    ServiceDuplicateBindPort = ("E0802", Error, "two upstreams of one proxy bound to the same address and port"),
    LegacyManagedProxy = ("W0803", Warning, "a Consul 1.2-1.5 managed proxy, read as a sidecar service"),

    // ---- E09xx / W09xx: the repository as a whole ------------------------------------------------
    DuplicateObject = ("E0901", Error, "the same object defined twice"),
    UnknownService = ("W0902", Warning, "an intention or upstream names a service declared nowhere"),
    Settings = ("E0903", Error, "an invalid mesh-gitops.hcl"),
    ForeignResource = ("W0904", Warning, "a Kubernetes resource that is not a Consul resource, ignored"),
    EmptyRepository = ("W0905", Warning, "the repository declares nothing"),

    // ---- E10xx / W10xx: analysis of the mesh (`check`) ---------------------------------------
    UpstreamDenied = ("E1001", Error, "a declared upstream that the intentions deny"),
    IntentionShadowed = ("W1002", Warning, "an intention that never takes effect: higher-precedence intentions decide every connection it matches"),
    IntentionRedundant = ("W1003", Warning, "an intention that changes nothing: without it every connection it decides is decided the same way"),
    WildcardExposure = ("W1004", Warning, "a wildcard intention that allows every service in or out"),
    AclPosture = ("W1005", Warning, "ACLs disabled or defaulting to allow"),
    TokenWritesOthers = ("W1006", Warning, "a token or role that can write services other than its own, and so obtain their identity"),
    BroadServiceWrite = ("W1007", Warning, "a policy granting service:write on every service"),
    BroadIntentionWrite = ("W1008", Warning, "a policy granting intentions:write on every service"),
    SharedToken = ("W1009", Warning, "one token carrying the identity of several services"),
    ListenerAroundProxy = ("W1010", Warning, "an application listener reachable around its sidecar proxy"),
    SecretInEnv = ("W1011", Warning, "a literal secret in a workload's environment"),
    PermissionShadowed = ("W1012", Warning, "an L7 permission that never matches because an earlier one matches every request"),
    SharedDestination = ("W1013", Warning, "a destination shared by owners: sources other repositories declare also decide who reaches it"),
    ChainTargetDenied = ("E1014", Error, "a declared upstream whose route, split or failover target the intentions deny"),
    RouteNeverMatches = ("W1015", Warning, "a service-router route that never matches: an earlier route matches every request it would"),
    ChainTargetUnknown = ("W1016", Warning, "a route, split, redirect or failover target declared nowhere"),

    // ---- E11xx: guardrails ------------------------------------------------------------------
    GuardrailFailed = ("E1101", Error, "a guardrail assertion that the mesh does not satisfy"),
    GuardrailInvalid = ("E1102", Error, "a guardrail file that does not parse or has an invalid rule"),
    UnknownGuardrailPack = ("E1103", Error, "a built-in guardrail pack that does not exist"),

    // ---- E12xx / W12xx: Consul agent configuration and consul-k8s Helm values (`check`) -------
    AgentConfigInvalid = ("E1201", Error, "an agent configuration Consul refuses to load: a setting of the wrong type or an invalid gossip key"),
    AgentTlsOff = ("W1201", Warning, "agents without TLS: RPC between agents and servers travels in clear text"),
    AgentTlsVerify = ("W1202", Warning, "agent TLS verification off or missing (verify_incoming, verify_outgoing, verify_server_hostname)"),
    GossipUnencrypted = ("W1203", Warning, "gossip not encrypted: no gossip key, or unencrypted gossip still accepted"),
    LiteralGossipKey = ("W1204", Warning, "a literal gossip encryption key in the repository"),
    LiteralAgentSecret = ("W1205", Warning, "a literal ACL token or other secret in an agent configuration or Helm values"),
    AgentAclPosture = ("W1206", Warning, "ACLs disabled or defaulting to allow on the agents"),
    ConnectDisabled = ("W1207", Warning, "Connect disabled on a server agent, or connect-inject off, while the repository declares sidecars"),
    TlsPortsMissing = ("W1208", Warning, "TLS configured but no HTTPS or gRPC TLS port, so the HTTP API or the proxies' xDS stream stays in clear text"),
    DeprecatedAgentKey = ("W1209", Warning, "a deprecated top-level TLS or ACL key, which Consul 1.12+ reads from the tls or acl block"),
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {c}");
            assert_eq!(Code::from_code_str(c.as_str()), Some(*c));
            let prefix_ok = match c.default_severity() {
                crate::Severity::Error => c.as_str().starts_with('E'),
                _ => c.as_str().starts_with('W'),
            };
            assert!(prefix_ok, "{c}: the letter must match the default severity");
        }
    }
}
