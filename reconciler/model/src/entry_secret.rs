//! The one secret a config entry carries: an inline-certificate's `PrivateKey`. Consul's
//! `InlineCertificateConfigEntry` (`agent/structs/config_entry_inline_certificate.go`) has it as
//! a plain string, so a GET answers it in full. A repository names where the key is instead
//! (`PrivateKeyFrom = "env:VAR"` or `"file:PATH"`); apply reads it before the first write and
//! sends `PrivateKey` in the PUT body. Plans compare and show neither field.

use crate::config_entry::{ConfigEntry, OtherEntry};
use serde_json::Value;

pub const INLINE_CERTIFICATE: &str = "inline-certificate";
/// The secret's field in Consul's entry.
pub const PRIVATE_KEY: &str = "PrivateKey";
/// Where a repository says the secret is.
pub const PRIVATE_KEY_FROM: &str = "PrivateKeyFrom";

impl ConfigEntry {
    /// The `PrivateKeyFrom` reference of an inline-certificate, as written.
    pub fn secret_reference(&self) -> Option<&str> {
        match self {
            ConfigEntry::Other(e) if e.kind == INLINE_CERTIFICATE => {
                e.body.get(PRIVATE_KEY_FROM).and_then(Value::as_str)
            }
            _ => None,
        }
    }

    /// The entry to write: the reference replaced by the secret it names.
    pub fn with_secret(&self, secret: &str) -> ConfigEntry {
        match self {
            ConfigEntry::Other(e) if e.kind == INLINE_CERTIFICATE => {
                let mut body = e.body.clone();
                body.remove(PRIVATE_KEY_FROM);
                body.insert(PRIVATE_KEY.into(), Value::String(secret.to_owned()));
                ConfigEntry::Other(OtherEntry { body, ..e.clone() })
            }
            other => other.clone(),
        }
    }
}

/// An entry's JSON as plans compare and show it: an inline-certificate without its private key
/// and without the reference to it.
pub fn without_secrets(mut v: Value) -> Value {
    if v.get("Kind").and_then(Value::as_str) == Some(INLINE_CERTIFICATE) {
        if let Some(fields) = v.as_object_mut() {
            fields.remove(PRIVATE_KEY);
            fields.remove(PRIVATE_KEY_FROM);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cert(body: Value) -> ConfigEntry {
        let Value::Object(body) = body else { panic!() };
        ConfigEntry::Other(OtherEntry {
            kind: INLINE_CERTIFICATE.into(),
            name: "gw".into(),
            meta: Default::default(),
            body,
            span: Default::default(),
        })
    }

    #[test]
    fn the_reference_is_replaced_by_the_key_and_neither_is_compared() {
        let e = cert(json!({"Certificate": "C", "PrivateKeyFrom": "env:GW_KEY"}));
        assert_eq!(e.secret_reference(), Some("env:GW_KEY"));
        let written = e.with_secret("K").to_json();
        assert_eq!(written["PrivateKey"], "K");
        assert!(written.get("PrivateKeyFrom").is_none());
        assert_eq!(without_secrets(written), without_secrets(e.to_json()));
        assert!(without_secrets(e.to_json()).get("PrivateKeyFrom").is_none());
        let other = json!({"Kind": "mesh", "PrivateKey": "x"});
        assert_eq!(without_secrets(other.clone()), other);
    }
}
