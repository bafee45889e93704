//! ACL policies, roles and tokens, and the Connect CA configuration.
//!
//! Consul's ACL objects carry no metadata, so ownership is an inventory kept in Consul KV
//! (`mesh-gitops/<owner>/inventory`): the IDs of what mesh-gitops created, the ModifyIndex each
//! had after our write, and the body we wrote. An object is ours only through the inventory; a
//! name is claimed in the inventory *before* the object is created, so an apply killed between
//! the two converges on the next run instead of finding an "unowned" object of its own.
//!
//! Bodies are compared in a normal form: links by name and sorted, identities sorted, read-only
//! fields (IDs, indexes, hashes, create times) dropped. SecretIDs never enter: the client strips
//! them from every answer, and desired tokens only name where their secret comes from.

use crate::{Action, ObjectKind, Step};
use mesh_model::{AclLink, AclPolicy, AclRole, AclToken, CaConfig, NodeIdentity, ServiceIdentity};
use mesh_wire as wire;
use mesh_wire::AclObject;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The KV key of the inventory, under the owner's prefix.
pub fn inventory_key(owner: &str) -> String {
    format!("mesh-gitops/{owner}/inventory")
}

/// The name of the CA configuration in plans and the inventory (it is a singleton).
pub const CA_NAME: &str = "connect";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AclKind {
    #[serde(rename = "acl-policy")]
    Policy,
    #[serde(rename = "acl-role")]
    Role,
    #[serde(rename = "acl-token")]
    Token,
}

impl AclKind {
    pub const ALL: [AclKind; 3] = [AclKind::Policy, AclKind::Role, AclKind::Token];

    pub fn as_str(self) -> &'static str {
        match self {
            AclKind::Policy => "acl-policy",
            AclKind::Role => "acl-role",
            AclKind::Token => "acl-token",
        }
    }

    pub fn parse(s: &str) -> Option<AclKind> {
        AclKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The field holding the object's identifier in Consul's API.
    pub fn id_field(self) -> &'static str {
        match self {
            AclKind::Token => "AccessorID",
            _ => "ID",
        }
    }
}

/// What mesh-gitops owns, kept in Consul KV. Keys are `kind/name`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub version: u32,
    pub objects: BTreeMap<String, Record>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The Consul ID (AccessorID for tokens). Empty while a policy or role is only claimed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The ModifyIndex after our last write; 0 while only claimed.
    #[serde(default)]
    pub modify_index: u64,
    /// The normal-form body we last wrote (never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl Inventory {
    pub fn key(kind: &str, name: &str) -> String {
        format!("{kind}/{name}")
    }

    pub fn get(&self, kind: &str, name: &str) -> Option<&Record> {
        self.objects.get(&Self::key(kind, name))
    }

    /// The owned config entries, as (kind, name).
    pub fn entries(&self) -> impl Iterator<Item = (mesh_model::EntryKind, String)> + '_ {
        self.objects.keys().filter_map(|k| {
            let (kind, name) = k.split_once('/')?;
            Some((mesh_model::EntryKind::parse(kind)?, name.to_owned()))
        })
    }

    /// The owned ACL objects, as (kind, name, record).
    pub fn acl(&self) -> impl Iterator<Item = (AclKind, &str, &Record)> {
        self.objects.iter().filter_map(|(k, r)| {
            let (kind, name) = k.split_once('/')?;
            Some((AclKind::parse(kind)?, name, r))
        })
    }

    /// Parses the stored form; an unreadable inventory is an error, never "empty" (that would
    /// disown everything).
    pub fn from_json(bytes: &[u8]) -> Result<Inventory, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = self.clone();
        v.version = 1;
        serde_json::to_vec_pretty(&v).unwrap_or_default()
    }
}

/// An ACL object as read from Consul.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedAcl {
    pub kind: AclKind,
    pub id: String,
    /// Policy and role name; for tokens, empty (tokens have no name in Consul).
    pub name: String,
    /// The normal-form body; `None` when the list did not carry the details (Consul's policy
    /// list omits the rules) and they were not read.
    pub body: Option<Value>,
    pub modify_index: u64,
}

impl ObservedAcl {
    /// From one element of `/v1/acl/{policies,roles,tokens}` or a single read, typed by
    /// `mesh_wire`; `None` without an ID (or, for a policy or role, a name).
    pub fn from_api(o: &AclObject) -> Option<ObservedAcl> {
        let kind = match o {
            AclObject::Policy(_) | AclObject::PolicyStub(_) => AclKind::Policy,
            AclObject::Role(_) => AclKind::Role,
            AclObject::Token(_) => AclKind::Token,
        };
        if o.id().is_empty() || (kind != AclKind::Token && o.name().is_empty()) {
            return None;
        }
        Some(ObservedAcl {
            kind,
            id: o.id().to_owned(),
            name: o.name().to_owned(),
            body: normal_form(o),
            modify_index: o.modify_index(),
        })
    }
}

/// Link names, sorted, once each; a link without a name (by ID only) names nothing.
fn links_of(links: &[wire::AclLink]) -> Vec<String> {
    let mut out: Vec<String> = links
        .iter()
        .filter(|l| !l.name.is_empty())
        .map(|l| l.name.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Identities in their request form (absent and empty fields dropped, datacenters sorted),
/// sorted.
fn sorted_identities<T: Serialize + Clone>(items: &[T], sort: impl Fn(&mut T)) -> Vec<Value> {
    let mut out: Vec<Value> = items
        .iter()
        .map(|x| {
            let mut x = x.clone();
            sort(&mut x);
            wire::request(&x)
        })
        .collect();
    out.sort_by_key(Value::to_string);
    out
}

fn sorted_strings(s: &[String]) -> Vec<String> {
    let mut s = s.to_vec();
    s.sort();
    s
}

fn service_identities(s: &[wire::ServiceIdentity]) -> Vec<Value> {
    sorted_identities(s, |x| x.datacenters.sort())
}

fn node_identities(n: &[wire::NodeIdentity]) -> Vec<Value> {
    sorted_identities(n, |_| {})
}

/// The normal form of an object's body: the fields compared, in the order they are shown;
/// `None` for a policy listed without its rules. Read-only fields (IDs, indexes, hashes,
/// create times) and fields `mesh_wire` does not type are never part of it.
fn normal_form(o: &AclObject) -> Option<Value> {
    Some(match o {
        AclObject::PolicyStub(_) => return None,
        AclObject::Policy(p) => json!({
            "Name": p.name,
            "Description": p.description,
            "Rules": p.rules,
            "Datacenters": sorted_strings(&p.datacenters),
        }),
        AclObject::Role(r) => json!({
            "Name": r.name,
            "Description": r.description,
            "Policies": links_of(&r.policies),
            "ServiceIdentities": service_identities(&r.service_identities),
            "NodeIdentities": node_identities(&r.node_identities),
        }),
        AclObject::Token(t) => json!({
            "Description": t.description,
            "Policies": links_of(&t.policies),
            "Roles": links_of(&t.roles),
            "ServiceIdentities": service_identities(&t.service_identities),
            "NodeIdentities": node_identities(&t.node_identities),
            "Local": t.local,
        }),
    })
}

fn link_names(l: &[AclLink]) -> Vec<wire::AclLink> {
    l.iter()
        .map(|l| wire::AclLink {
            name: l.name.clone(),
            ..wire::AclLink::default()
        })
        .collect()
}

fn service_ids(s: &[ServiceIdentity]) -> Vec<wire::ServiceIdentity> {
    s.iter()
        .map(|s| wire::ServiceIdentity {
            service_name: s.service_name.clone(),
            datacenters: s.datacenters.clone(),
            ..wire::ServiceIdentity::default()
        })
        .collect()
}

fn node_ids(n: &[NodeIdentity]) -> Vec<wire::NodeIdentity> {
    n.iter()
        .map(|n| wire::NodeIdentity {
            node_name: n.node_name.clone(),
            datacenter: n.datacenter.clone(),
            ..wire::NodeIdentity::default()
        })
        .collect()
}

/// A desired ACL object: its name (the handle), the body to send and its normal form.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredAcl {
    pub kind: AclKind,
    pub name: String,
    /// What is sent to Consul (links by name). Never holds a secret.
    pub request: Value,
    /// The normal form, compared with [`ObservedAcl::body`].
    pub body: Value,
    /// The names this object links to (policies and roles), for ordering.
    pub links: Vec<(AclKind, String)>,
    /// Where the token's SecretID comes from, resolved only when the token is created.
    pub secret_from: Option<mesh_model::SecretSource>,
}

impl DesiredAcl {
    /// The request body and the normal form, both from one `mesh_wire` object.
    fn bodies(o: &AclObject) -> (Value, Value) {
        let request = match o {
            AclObject::Policy(p) => wire::request(p),
            AclObject::PolicyStub(p) => wire::request(p),
            AclObject::Role(r) => wire::request(r),
            AclObject::Token(t) => wire::request(t),
        };
        (request, normal_form(o).unwrap_or(Value::Null))
    }

    pub fn policy(p: &AclPolicy) -> DesiredAcl {
        let (request, body) = Self::bodies(&AclObject::Policy(wire::AclPolicy {
            name: p.name.clone(),
            description: p.description.clone(),
            rules: p.rules.clone(),
            datacenters: p.datacenters.clone(),
            ..wire::AclPolicy::default()
        }));
        DesiredAcl {
            kind: AclKind::Policy,
            name: p.name.clone(),
            body,
            request,
            links: Vec::new(),
            secret_from: None,
        }
    }

    pub fn role(r: &AclRole) -> DesiredAcl {
        let (request, body) = Self::bodies(&AclObject::Role(wire::AclRole {
            name: r.name.clone(),
            description: r.description.clone(),
            policies: link_names(&r.policies),
            service_identities: service_ids(&r.service_identities),
            node_identities: node_ids(&r.node_identities),
            ..wire::AclRole::default()
        }));
        DesiredAcl {
            kind: AclKind::Role,
            name: r.name.clone(),
            body,
            request,
            links: r
                .policies
                .iter()
                .map(|l| (AclKind::Policy, l.name.clone()))
                .collect(),
            secret_from: None,
        }
    }

    /// Tokens have no name in Consul: the description carries ours when none is given, so a
    /// human reading `consul acl token list` can tell them apart.
    pub fn token(t: &AclToken) -> DesiredAcl {
        let description = if t.description.is_empty() {
            format!("mesh-gitops: {}", t.name)
        } else {
            t.description.clone()
        };
        let (request, body) = Self::bodies(&AclObject::Token(wire::AclToken {
            description,
            policies: link_names(&t.policies),
            roles: link_names(&t.roles),
            service_identities: service_ids(&t.service_identities),
            node_identities: node_ids(&t.node_identities),
            local: t.local,
            ..wire::AclToken::default()
        }));
        DesiredAcl {
            kind: AclKind::Token,
            name: t.name.clone(),
            body,
            request,
            links: t
                .policies
                .iter()
                .map(|l| (AclKind::Policy, l.name.clone()))
                .chain(t.roles.iter().map(|l| (AclKind::Role, l.name.clone())))
                .collect(),
            secret_from: t.secret_id_from.clone(),
        }
    }

    pub fn all(acl: &mesh_model::Acl) -> Vec<DesiredAcl> {
        acl.policies
            .iter()
            .map(DesiredAcl::policy)
            .chain(acl.roles.iter().map(DesiredAcl::role))
            .chain(acl.tokens.iter().map(DesiredAcl::token))
            .collect()
    }
}

/// The observed ACL objects by ID and, for policies and roles (whose names are unique in
/// Consul), by name: ownership is looked up, not searched for, so planning stays linear in the
/// number of objects.
pub struct AclIndex<'o> {
    by_id: BTreeMap<(AclKind, &'o str), &'o ObservedAcl>,
    by_name: BTreeMap<(AclKind, &'o str), &'o ObservedAcl>,
}

impl<'o> AclIndex<'o> {
    pub fn new(observed: &'o [ObservedAcl]) -> AclIndex<'o> {
        AclIndex {
            by_id: observed
                .iter()
                .map(|o| ((o.kind, o.id.as_str()), o))
                .collect(),
            by_name: observed
                .iter()
                .filter(|o| o.kind != AclKind::Token)
                .map(|o| ((o.kind, o.name.as_str()), o))
                .collect(),
        }
    }

    /// The policy or role of that name.
    pub fn named(&self, kind: AclKind, name: &str) -> Option<&'o ObservedAcl> {
        self.by_name.get(&(kind, name)).copied()
    }

    /// Where an owned ACL object is in Consul: by its recorded ID, or, while only claimed (a
    /// policy or role whose create may or may not have happened), by name.
    pub fn owned(&self, kind: AclKind, name: &str, record: &Record) -> Option<&'o ObservedAcl> {
        if record.id.is_empty() {
            self.named(kind, name)
        } else {
            self.by_id.get(&(kind, record.id.as_str())).copied()
        }
    }
}

/// The observed objects whose details must be read before planning: those the list gave
/// without details and that the plan compares (desired or owned), unless the inventory proves
/// they are what we last wrote (same ModifyIndex).
pub fn needing_details<'o>(
    desired: &[DesiredAcl],
    observed: &'o [ObservedAcl],
    inventory: &Inventory,
) -> Vec<&'o ObservedAcl> {
    let wanted: BTreeSet<(AclKind, &str)> =
        desired.iter().map(|d| (d.kind, d.name.as_str())).collect();
    let index = AclIndex::new(observed);
    let owner: BTreeMap<(AclKind, &str), &Record> = inventory
        .acl()
        .filter_map(|(k, n, r)| index.owned(k, n, r).map(|o| ((k, o.id.as_str()), r)))
        .collect();
    observed
        .iter()
        .filter(|o| o.body.is_none())
        .filter(|o| match owner.get(&(o.kind, o.id.as_str())) {
            Some(r) => r.modify_index != o.modify_index || r.body.is_none(),
            None => wanted.contains(&(o.kind, o.name.as_str())),
        })
        .collect()
}

/// A step's body with the identifiers, for the report and the executor.
fn step(action: Action, kind: AclKind, name: &str, reason: String) -> Step {
    Step {
        action,
        kind: ObjectKind::Acl(kind),
        name: name.to_owned(),
        reason,
        before: None,
        after: None,
        cas: 0,
        id: None,
        root_rotation: false,
    }
}

/// The ACL part of a plan. Refusals are returned beside the steps. `owned_total` counts the
/// inventory's ACL objects that still exist, for the empty-prune guard.
pub struct AclPlan {
    pub steps: Vec<Step>,
    pub refused: Vec<crate::Refusal>,
    pub owned_total: usize,
}

pub fn plan_acl(
    desired: &[DesiredAcl],
    observed: &[ObservedAcl],
    inventory: &Inventory,
    adopt: bool,
) -> AclPlan {
    let mut steps = Vec::new();
    let mut refused = Vec::new();
    let body_of = |o: &ObservedAcl, r: Option<&Record>| -> Option<Value> {
        o.body.clone().or_else(|| {
            r.filter(|r| r.modify_index == o.modify_index)
                .and_then(|r| r.body.clone())
        })
    };
    let index = AclIndex::new(observed);
    // Unowned tokens, for adoption: every token the inventory does not name.
    let owned_ids: BTreeSet<&str> = inventory
        .acl()
        .filter_map(|(k, n, r)| index.owned(k, n, r).map(|o| o.id.as_str()))
        .collect();
    let mut adopted_tokens = BTreeSet::new();
    for d in desired {
        let record = inventory.get(d.kind.as_str(), &d.name);
        let owned = record.and_then(|r| index.owned(d.kind, &d.name, r));
        match (record, owned) {
            (Some(r), Some(o)) => {
                let before = body_of(o, Some(r));
                if before.as_ref() != Some(&d.body) {
                    steps.push(Step {
                        id: Some(o.id.clone()),
                        before,
                        after: Some(d.body.clone()),
                        cas: o.modify_index,
                        ..step(
                            Action::Update,
                            d.kind,
                            &d.name,
                            "differs from the repository".into(),
                        )
                    });
                } else if r.modify_index != o.modify_index || r.id.is_empty() {
                    // Same content; only the inventory is behind (a claim, or an edit that was
                    // reverted). Recorded without writing to Consul.
                    steps.push(Step {
                        id: Some(o.id.clone()),
                        before,
                        after: Some(d.body.clone()),
                        cas: o.modify_index,
                        ..step(
                            Action::Record,
                            d.kind,
                            &d.name,
                            "matches the repository; the inventory is brought up to date".into(),
                        )
                    });
                }
            }
            (record, _) => {
                let same_name = index.named(d.kind, &d.name);
                let adoptable_token = (d.kind == AclKind::Token && adopt)
                    .then(|| {
                        observed.iter().find(|o| {
                            o.kind == AclKind::Token
                                && !owned_ids.contains(o.id.as_str())
                                && !adopted_tokens.contains(&o.id)
                                && o.body.as_ref() == Some(&d.body)
                        })
                    })
                    .flatten();
                if let Some(o) = same_name.or(adoptable_token) {
                    let same = o.body.as_ref() == Some(&d.body);
                    if same && adopt {
                        adopted_tokens.insert(o.id.clone());
                        steps.push(Step {
                            id: Some(o.id.clone()),
                            before: o.body.clone(),
                            after: Some(d.body.clone()),
                            cas: o.modify_index,
                            ..step(
                                Action::Record,
                                d.kind,
                                &d.name,
                                "adopted: identical to the repository, now recorded as owned"
                                    .into(),
                            )
                        });
                    } else {
                        refused.push(crate::Refusal {
                            kind: ObjectKind::Acl(d.kind),
                            name: d.name.clone(),
                            reason: if same {
                                "exists with the same content but is not owned by mesh-gitops; pass --adopt to take it over".into()
                            } else {
                                "exists, differs from the repository and is not owned by mesh-gitops; it is left unchanged".into()
                            },
                            blocking: !same,
                            owner: None,
                        });
                    }
                    continue;
                }
                let reason = if record.is_some_and(|r| r.modify_index > 0) {
                    "owned by mesh-gitops but deleted outside it; recreated"
                } else {
                    "declared in the repository, absent from Consul"
                };
                let mut reason = reason.to_owned();
                if let Some(s) = &d.secret_from {
                    reason.push_str(&format!(" (SecretID from {s})"));
                }
                // A token keeps the AccessorID it was claimed with, so a retried or resumed
                // create finds it.
                let id = record
                    .filter(|r| d.kind == AclKind::Token && !r.id.is_empty())
                    .map(|r| r.id.clone());
                steps.push(Step {
                    id,
                    after: Some(d.body.clone()),
                    ..step(Action::Create, d.kind, &d.name, reason)
                });
            }
        }
    }
    let wanted: BTreeSet<(AclKind, &str)> =
        desired.iter().map(|d| (d.kind, d.name.as_str())).collect();
    let mut owned_total = 0;
    for (kind, name, r) in inventory.acl() {
        let Some(o) = index.owned(kind, name, r) else {
            if !wanted.contains(&(kind, name)) {
                steps.push(step(
                    Action::Forget,
                    kind,
                    name,
                    "owned, no longer in the repository, already gone from Consul".into(),
                ));
            }
            continue;
        };
        owned_total += 1;
        if !wanted.contains(&(kind, name)) {
            steps.push(Step {
                id: Some(o.id.clone()),
                before: body_of(o, Some(r)),
                after: None,
                cas: o.modify_index,
                ..step(
                    Action::Delete,
                    kind,
                    name,
                    "owned by mesh-gitops and no longer in the repository".into(),
                )
            });
        }
    }
    AclPlan {
        steps,
        refused,
        owned_total,
    }
}

/// The CA configuration as read from Consul (secrets already removed by the client).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedCa {
    pub provider: String,
    pub config: Map<String, Value>,
    pub force_without_cross_signing: bool,
    pub modify_index: u64,
}

impl ObservedCa {
    /// From Consul's answer; `None` when it names no provider.
    pub fn from_api(c: &wire::CaConfiguration) -> Option<ObservedCa> {
        (!c.provider.is_empty()).then(|| ObservedCa {
            provider: c.provider.clone(),
            config: c.config.clone(),
            force_without_cross_signing: c.force_without_cross_signing,
            modify_index: c.server.modify_index,
        })
    }

    fn as_model(&self) -> CaConfig {
        CaConfig {
            provider: self.provider.clone(),
            config: self.config.clone(),
            force_without_cross_signing: self.force_without_cross_signing,
            token_from: None,
            span: Default::default(),
        }
    }
}

/// The body the plan shows and the executor sends (without the Vault token, which the
/// executor adds from its source at the last moment).
pub fn ca_request(c: &CaConfig) -> Value {
    ca_body(&c.provider, &c.config, c.force_without_cross_signing)
}

/// The request body of a CA configuration (`CAConfig` in Consul's api/connect_ca.go).
fn ca_body(provider: &str, config: &Map<String, Value>, force: bool) -> Value {
    wire::request(&wire::CaConfiguration {
        provider: provider.to_owned(),
        config: config.clone(),
        force_without_cross_signing: force,
        ..wire::CaConfiguration::default()
    })
}

/// Whether the CA configuration must change, compared after Consul's defaults are applied to
/// both sides (so keys Consul fills in are no diff), and on the provider keys the repository
/// sets. The CA configuration is a cluster singleton: declaring it claims it.
pub fn plan_ca(desired: Option<&CaConfig>, observed: Option<&ObservedCa>) -> Option<Step> {
    use mesh_semantics::ca_config::{requires_rotation, CaSettings};
    let d = desired?;
    let after = ca_request(d);
    let Some(o) = observed else {
        return Some(Step {
            action: Action::Update,
            kind: ObjectKind::CaConfig,
            name: CA_NAME.into(),
            reason: "declared in the repository; Consul has no CA configuration yet".into(),
            before: None,
            after: Some(after),
            cas: 0,
            id: None,
            root_rotation: true,
        });
    };
    let ds = CaSettings::from_config(d).ok();
    let os = CaSettings::from_config(&o.as_model()).ok();
    let extra_differs = d.config.iter().any(|(k, v)| {
        !CaSettings::KEYS.iter().any(|c| c.eq_ignore_ascii_case(k))
            && !k.eq_ignore_ascii_case("Token")
            && o.config
                .iter()
                .find(|(ok, _)| ok.eq_ignore_ascii_case(k))
                .map(|(_, ov)| ov)
                != Some(v)
    });
    let differs = d.provider != o.provider
        || ds != os
        || extra_differs
        || d.force_without_cross_signing != o.force_without_cross_signing;
    if !differs {
        return None;
    }
    let rotation = d.provider != o.provider
        || match (&os, &ds) {
            (Some(a), Some(b)) => requires_rotation(a, b),
            _ => true,
        };
    let mut reason = "differs from the repository".to_owned();
    if rotation {
        reason.push_str("; ROOT ROTATION: a new root is generated and cross-signed by the current one, applied last");
    }
    Some(Step {
        action: Action::Update,
        kind: ObjectKind::CaConfig,
        name: CA_NAME.into(),
        reason,
        before: Some(ca_body(
            &o.provider,
            &o.config,
            o.force_without_cross_signing,
        )),
        after: Some(after),
        cas: o.modify_index,
        id: None,
        root_rotation: rotation,
    })
}

#[cfg(test)]
mod tests;
