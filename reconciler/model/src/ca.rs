use crate::acl::SecretSource;
use mesh_diagnostics::Span;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `Kind = "ca-config"`: the Connect CA configuration (`PUT /v1/connect/ca/configuration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaConfig {
    /// `consul`, `vault` or `aws-pca`.
    pub provider: String,
    /// Provider config with Consul's CamelCase keys (`LeafCertTTL`, `PrivateKeyType`, ...).
    /// Never holds a secret: the Vault token is only referenced through `token_from`.
    pub config: Map<String, Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub force_without_cross_signing: bool,
    /// Where the Vault token comes from at apply time.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token_from: Option<SecretSource>,
    #[serde(skip)]
    pub span: Span,
}
