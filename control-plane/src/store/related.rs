//! The entries a config-entry write is validated with: those its change can make invalid, not
//! the whole store, so a write costs the same with 100 entries stored as with 50,000 (of the
//! kinds written in bulk: service defaults and intentions).
//!
//! Consul does the same: `validateProposedConfigEntryInServiceGraph`
//! (`agent/consul/state/config_entry.go`) collects only the chains and intentions a change can
//! affect: for a proxy-defaults (or mesh) change, every chain and every intention; for an
//! intentions entry, its destination's chain; for any other kind, the service's own chain, its
//! intentions and the chains that link to it. The stored set was valid after every earlier
//! write, so validating the related entries decides exactly what validating all of them would.

use super::State;
use mesh_model::ConfigEntry;
use std::ops::Bound;

/// Kinds whose entry changes every service's protocol or chain.
const GLOBAL: [&str; 2] = ["proxy-defaults", "mesh"];

/// Discovery-chain kinds: an entry of one service may name another (routes, splits, redirects,
/// failover), so they are kept whichever service is written. There are few of them.
const CHAIN: [&str; 3] = ["service-router", "service-splitter", "service-resolver"];

/// Kinds that name other services or entries (gateways and their routes list services and
/// check their protocols, intentions name JWT providers, exports name services): few, kept
/// whichever entry is written, and a write of one of them is checked with every entry.
const REFERRING: [&str; 7] = [
    "jwt-provider",
    "ingress-gateway",
    "terminating-gateway",
    "api-gateway",
    "http-route",
    "tcp-route",
    "exported-services",
];

fn wide(kind: &str) -> bool {
    GLOBAL.contains(&kind) || CHAIN.contains(&kind) || REFERRING.contains(&kind)
}

/// The stored entries a write of `key` (kind, name) is validated with, without `key` itself
/// (the caller adds the proposed entry, if any).
pub(crate) fn entries(s: &State, key: &(String, String)) -> Vec<ConfigEntry> {
    if wide(&key.0) {
        return s
            .config
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(_, v)| v.entry.clone())
            .collect();
    }
    let mut out = Vec::new();
    for kind in kinds(s) {
        if wide(kind) {
            out.extend(of_kind(s, kind).filter(|(k, _)| *k != key).map(|(_, e)| e));
            continue;
        }
        let wanted = [key.1.as_str(), "*"];
        for name in wanted {
            let k = (kind.to_owned(), name.to_owned());
            if &k == key {
                continue;
            }
            if let Some(e) = s.config.get(&k) {
                out.push(e.entry.clone());
            }
        }
    }
    // A chain or an ingress gateway reaches other services, and checking it needs each one's
    // protocol: with one stored, every service's defaults take part, as Consul's compile reads
    // them (`discoverychain.Compile` through `readDiscoveryChainConfigEntries`).
    let reaching = out
        .iter()
        .any(|e| CHAIN.contains(&e.kind().as_str()) || e.kind().as_str() == "ingress-gateway");
    if reaching {
        let listed: std::collections::BTreeSet<(String, String)> = out
            .iter()
            .map(|e| (e.kind().as_str().to_owned(), e.name().to_owned()))
            .collect();
        out.extend(
            of_kind(s, "service-defaults")
                .filter(|(k, _)| *k != key && !listed.contains(*k))
                .map(|(_, e)| e),
        );
    }
    out
}

/// The distinct kinds stored, each found with one ordered lookup (the map is sorted by kind).
fn kinds(s: &State) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut from = Bound::Unbounded;
    while let Some(((kind, _), _)) = s.config.range((from, Bound::Unbounded)).next() {
        out.push(kind.as_str());
        // The smallest key of a greater kind: no kind lies between `kind` and `kind + "\0"`.
        from = Bound::Included((format!("{kind}\0"), String::new()));
    }
    out
}

fn of_kind<'a>(
    s: &'a State,
    kind: &str,
) -> impl Iterator<Item = (&'a (String, String), ConfigEntry)> + 'a {
    let from = (kind.to_owned(), String::new());
    let kind = kind.to_owned();
    s.config
        .range(from..)
        .take_while(move |((k, _), _)| *k == kind)
        .map(|(k, v)| (k, v.entry.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredEntry;
    use mesh_model::{ProxyDefaults, ServiceDefaults, ServiceIntentions};

    fn state(entries: Vec<ConfigEntry>) -> State {
        let mut s = State::default();
        for entry in entries {
            let key = (entry.kind().as_str().to_owned(), entry.name().to_owned());
            let stored = StoredEntry {
                entry,
                create_index: 1,
                modify_index: 1,
            };
            s.config.insert(key, stored);
        }
        s
    }

    fn sd(name: &str) -> ConfigEntry {
        ConfigEntry::ServiceDefaults(ServiceDefaults {
            name: name.into(),
            ..Default::default()
        })
    }

    fn ixn(name: &str) -> ConfigEntry {
        ConfigEntry::ServiceIntentions(ServiceIntentions {
            name: name.into(),
            ..Default::default()
        })
    }

    fn names(v: &[ConfigEntry]) -> Vec<(String, String)> {
        let mut out: Vec<_> = v
            .iter()
            .map(|e| (e.kind().as_str().to_owned(), e.name().to_owned()))
            .collect();
        out.sort();
        out
    }

    fn key(kind: &str, name: &str) -> (String, String) {
        (kind.into(), name.into())
    }

    #[test]
    fn a_service_write_sees_its_own_entries_the_globals_and_the_wildcard() {
        let pd = ConfigEntry::ProxyDefaults(ProxyDefaults {
            name: "global".into(),
            ..Default::default()
        });
        let s = state(vec![sd("a"), sd("b"), ixn("a"), ixn("b"), ixn("*"), pd]);
        let got = entries(&s, &key("service-defaults", "a"));
        assert_eq!(
            names(&got),
            [
                key("proxy-defaults", "global"),
                key("service-intentions", "*"),
                key("service-intentions", "a"),
            ]
        );
        let got = entries(&s, &key("service-intentions", "b"));
        assert_eq!(
            names(&got),
            [
                key("proxy-defaults", "global"),
                key("service-defaults", "b"),
                key("service-intentions", "*"),
            ]
        );
    }

    #[test]
    fn a_chain_write_sees_every_service_s_defaults_for_the_protocols_it_reaches() {
        // A splitter of api sending part of its traffic to api-v2 compiles with api-v2's protocol.
        let s = state(vec![sd("api"), sd("api-v2"), ixn("api")]);
        let got = entries(&s, &key("service-splitter", "api"));
        assert_eq!(
            names(&got),
            [
                key("service-defaults", "api"),
                key("service-defaults", "api-v2"),
                key("service-intentions", "api"),
            ]
        );
    }

    #[test]
    fn a_proxy_defaults_write_sees_every_other_entry() {
        let s = state(vec![sd("a"), sd("b"), ixn("a")]);
        let got = entries(&s, &key("proxy-defaults", "global"));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn kinds_are_found_even_when_one_is_a_prefix_of_another() {
        let mut s = state(vec![sd("a")]);
        for (kind, name) in [("service-defaults2", "x"), ("service-defaults", "z")] {
            let stored = StoredEntry {
                entry: sd(name),
                create_index: 1,
                modify_index: 1,
            };
            s.config.insert(key(kind, name), stored);
        }
        assert_eq!(kinds(&s), ["service-defaults", "service-defaults2"]);
    }
}
