//! The Connect CA configuration: Go durations, defaults, and Consul's bounds (consul-semantics
//! 4.1).

use mesh_diagnostics::{Code, Diagnostic};
use mesh_model::CaConfig;
use serde_json::Value;
use std::time::Duration;

/// Parses a Go duration (`72h`, `1h30m`, `1.5h`, `300ms`; `-1s` is rejected), exactly, with
/// Go's error text.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse_go(s)
        .and_then(|n| u64::try_from(n).ok())
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("time: invalid duration {s:?}"))
}

/// The effective settings of a CA configuration, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct CaSettings {
    pub provider: String,
    pub leaf_cert_ttl: Duration,
    pub intermediate_cert_ttl: Duration,
    pub root_cert_ttl: Duration,
    pub private_key_type: String,
    pub private_key_bits: u32,
    pub skip_validate: bool,
    /// A user-supplied root certificate (consul provider), if any.
    pub root_cert: Option<String>,
}

const H: u64 = 3600;

impl CaSettings {
    /// The provider `Config` keys these settings are read from (with Consul's defaults when
    /// absent); comparing two configurations compares the settings for these, the values for
    /// the rest.
    pub const KEYS: &'static [&'static str] = &[
        "LeafCertTTL",
        "IntermediateCertTTL",
        "RootCertTTL",
        "PrivateKeyType",
        "PrivateKeyBits",
        "SkipValidate",
        "RootCert",
    ];

    /// Reads settings; an unparseable duration is an error.
    pub fn from_config(c: &CaConfig) -> Result<CaSettings, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut dur = |key: &str, default: u64| -> Duration {
            match c.config.get(key) {
                None => Duration::from_secs(default),
                Some(Value::String(s)) => parse_duration(s).unwrap_or_else(|e| {
                    errors.push(
                        Diagnostic::new(Code::CaTtl, c.span, format!("Config.{key}: {e}"))
                            .with_field(format!("Config.{key}"))
                            .with_help("write a Go duration such as \"72h\""),
                    );
                    Duration::from_secs(default)
                }),
                Some(Value::Number(n)) => Duration::from_nanos(n.as_u64().unwrap_or(0)),
                Some(_) => {
                    errors.push(
                        Diagnostic::new(
                            Code::CaTtl,
                            c.span,
                            format!("Config.{key}: expected a duration"),
                        )
                        .with_field(format!("Config.{key}")),
                    );
                    Duration::from_secs(default)
                }
            }
        };
        let leaf = dur("LeafCertTTL", 72 * H);
        let intermediate = dur("IntermediateCertTTL", 8760 * H);
        let root = dur("RootCertTTL", 87600 * H);
        let key_type = c
            .config
            .get("PrivateKeyType")
            .and_then(Value::as_str)
            .unwrap_or("ec")
            .to_owned();
        // `defaultCommonConfig` (`provider_consul_config.go`): 256 bits whatever the type, so
        // `PrivateKeyType = "rsa"` alone is refused. Read as mapstructure's weak decoding reads
        // it (a number, or a string of one).
        let bits = match c.config.get("PrivateKeyBits") {
            None => 256,
            Some(Value::String(t)) => t.trim().parse::<u32>().unwrap_or(0),
            Some(v) => v.as_u64().unwrap_or(0) as u32,
        };
        let settings = CaSettings {
            provider: c.provider.clone(),
            leaf_cert_ttl: leaf,
            intermediate_cert_ttl: intermediate,
            root_cert_ttl: root,
            private_key_type: key_type,
            private_key_bits: bits,
            skip_validate: c
                .config
                .get("SkipValidate")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            root_cert: c
                .config
                .get("RootCert")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

/// Consul's checks on a CA configuration: provider, TTL bounds, key type and size, the fields
/// a provider needs, and no literal secret.
pub fn validate(c: &CaConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let d = |code: Code, msg: String, help: &str| {
        Diagnostic::new(code, c.span, msg).with_help(help.to_owned())
    };
    if !["consul", "vault", "aws-pca"].contains(&c.provider.as_str()) {
        out.push(
            d(
                Code::CaProvider,
                format!("unknown CA provider {:?}", c.provider),
                "Provider is \"consul\", \"vault\" or \"aws-pca\"",
            )
            .with_field("Provider"),
        );
        return out;
    }
    for secret in ["Token", "PrivateKey"] {
        if c.config.contains_key(secret) {
            out.push(
                d(
                    Code::LiteralSecret,
                    format!(
                        "Config.{secret} is a secret and must not be written in the repository"
                    ),
                    "reference it with TokenFrom = \"env:VAR\"",
                )
                .with_field(format!("Config.{secret}")),
            );
        }
    }
    if c.provider == "vault" {
        for key in ["Address", "RootPKIPath", "IntermediatePKIPath"] {
            if c.config
                .get(key)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                out.push(
                    d(
                        Code::CaProvider,
                        format!("Config.{key} is required by the vault provider"),
                        "set the Vault address and PKI mount paths",
                    )
                    .with_field("Config"),
                );
            }
        }
        if c.token_from.is_none() && c.config.get("AuthMethod").is_none() {
            out.push(
                d(
                    Code::CaProvider,
                    "the vault provider needs a token: set Config.TokenFrom or Config.AuthMethod"
                        .into(),
                    "TokenFrom = \"env:VAULT_TOKEN\"",
                )
                .with_field("Config"),
            );
        }
    }
    if c.provider == "aws-pca" && c.config.contains_key("LeafCertTTL") {
        // Allowed; no provider-specific checks beyond the TTLs.
    }
    if c.provider == "consul"
        && c.config
            .get("RootCert")
            .and_then(Value::as_str)
            .is_some_and(|r| !r.is_empty())
        && c.config
            .get("PrivateKey")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        // `ParseConsulCAConfig` (`agent/connect/ca/provider_consul_config.go`).
        out.push(
            d(
                Code::CaProvider,
                "must provide a private key when providing a root cert".into(),
                "the consul provider signs with the key of the root it is given",
            )
            .with_field("Config.RootCert"),
        );
    }
    let s = match CaSettings::from_config(c) {
        Ok(s) => s,
        Err(errors) => {
            out.extend(errors);
            return out;
        }
    };
    if !s.skip_validate {
        out.extend(
            common_rules(&s)
                .into_iter()
                .map(|(code, field, msg, help)| d(code, msg, help).with_field(field)),
        );
    }
    out
}

/// `CommonCAProviderConfig.Validate` (`agent/structs/connect_ca.go`), its checks in its order
/// (an API write answers the first) and its words: (code, field, message, hint).
fn common_rules(s: &CaSettings) -> Vec<(Code, &'static str, String, &'static str)> {
    let go = |d: Duration| crate::duration::to_go(d.as_nanos());
    let mut out = Vec::new();
    if s.root_cert_ttl < s.intermediate_cert_ttl {
        out.push((
            Code::CaTtl,
            "Config.RootCertTTL",
            format!(
                "root cert TTL is set and is not greater than intermediate cert ttl. root cert ttl: {}, intermediate cert ttl: {}",
                go(s.root_cert_ttl),
                go(s.intermediate_cert_ttl)
            ),
            "the root must outlive the intermediates it signs",
        ));
    }
    if s.leaf_cert_ttl < Duration::from_secs(H) {
        out.push((
            Code::CaTtl,
            "Config.LeafCertTTL",
            "leaf cert TTL must be greater or equal than 1h0m0s".to_owned(),
            "LeafCertTTL is between 1h and 8760h",
        ));
    }
    if s.leaf_cert_ttl > Duration::from_secs(8760 * H) {
        out.push((
            Code::CaTtl,
            "Config.LeafCertTTL",
            "leaf cert TTL must be less than 8760h0m0s".to_owned(),
            "LeafCertTTL is between 1h and 8760h",
        ));
    }
    if s.intermediate_cert_ttl < Duration::from_secs(3 * H) {
        out.push((
            Code::CaTtl,
            "Config.IntermediateCertTTL",
            "Intermediate Cert TTL must be greater or equal than 3h".to_owned(),
            "IntermediateCertTTL is at least 3h and 3x LeafCertTTL",
        ));
    } else if s.intermediate_cert_ttl < s.leaf_cert_ttl * 3 {
        out.push((
            Code::CaTtl,
            "Config.IntermediateCertTTL",
            format!(
                "Intermediate Cert TTL must be greater or equal than 3 * LeafCertTTL (>={}).",
                go(s.leaf_cert_ttl * 3)
            ),
            "raise IntermediateCertTTL or lower LeafCertTTL",
        ));
    }
    match (s.private_key_type.as_str(), s.private_key_bits) {
        ("ec", 224 | 256 | 384 | 521) | ("rsa", 2048 | 4096) => {}
        ("ec", _) => out.push((
            Code::CaKey,
            "Config.PrivateKeyBits",
            "EC key length must be one of (224, 256, 384, 521) bits".to_owned(),
            "ec keys are 224, 256, 384 or 521 bits",
        )),
        ("rsa", _) => out.push((
            Code::CaKey,
            "Config.PrivateKeyBits",
            "RSA key length must be 2048 or 4096 bits".to_owned(),
            "rsa keys are 2048 or 4096 bits (PrivateKeyBits defaults to 256 whatever the type)",
        )),
        _ => out.push((
            Code::CaKey,
            "Config.PrivateKeyType",
            "private key type must be either 'ec' or 'rsa'".to_owned(),
            "PrivateKeyType is \"ec\" or \"rsa\"",
        )),
    }
    out
}

/// Whether moving from `old` to `new` generates a new root (a rotation with cross-signing).
pub fn requires_rotation(old: &CaSettings, new: &CaSettings) -> bool {
    old.provider != new.provider
        || old.private_key_type != new.private_key_type
        || old.private_key_bits != new.private_key_bits
        || old.root_cert != new.root_cert
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ca(config: Value) -> CaConfig {
        CaConfig {
            provider: "consul".into(),
            config: config.as_object().cloned().unwrap_or_default(),
            force_without_cross_signing: false,
            token_from: None,
            span: Default::default(),
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("72h"), Ok(Duration::from_secs(72 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert!(parse_duration("72").is_err());
        assert!(parse_duration("-1h").is_err());
        assert!(parse_duration("1d").is_err());
    }

    #[test]
    fn bounds_and_key_types() {
        assert!(validate(&ca(json!({}))).is_empty(), "defaults are valid");
        let leaf = validate(&ca(json!({"LeafCertTTL": "30m"})));
        assert_eq!(leaf[0].code, Code::CaTtl);
        let inter = validate(&ca(
            json!({"LeafCertTTL": "72h", "IntermediateCertTTL": "100h"}),
        ));
        assert!(inter[0].message.contains("3 * LeafCertTTL (>=216h0m0s)"));
        let bits = validate(&ca(json!({"PrivateKeyType": "ec", "PrivateKeyBits": 512})));
        assert_eq!(bits[0].code, Code::CaKey);
        assert!(validate(&ca(
            json!({"PrivateKeyType": "rsa", "PrivateKeyBits": 4096})
        ))
        .is_empty());
        let skip = validate(&ca(json!({"LeafCertTTL": "30m", "SkipValidate": true})));
        assert!(skip.is_empty());
        let mut vault = ca(json!({"Address": "https://v:8200"}));
        vault.provider = "vault".into();
        assert!(validate(&vault)
            .iter()
            .any(|d| d.message.contains("RootPKIPath")));
    }

    #[test]
    fn rotation_on_key_or_provider_change_only() {
        let a = CaSettings::from_config(&ca(json!({}))).unwrap();
        let ttl = CaSettings::from_config(&ca(json!({"LeafCertTTL": "24h"}))).unwrap();
        let key = CaSettings::from_config(&ca(json!({"PrivateKeyBits": 384}))).unwrap();
        assert!(!requires_rotation(&a, &ttl));
        assert!(requires_rotation(&a, &key));
    }
}
