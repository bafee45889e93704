//! The checkers: safety (nothing the converged intentions deny, and nothing without a valid
//! certificate, reaches an application), liveness (allowed declared edges work again soon after
//! the last fault), agreement of the converged decisions with the static analysis, the probes'
//! expectations, and the transient breaks and openings of a rollout.

use crate::obs::{Attempt, Observations};
use crate::server::IntentionsVersion;
use crate::{EdgeReport, Outcome, TargetReport, Transient, TransientKind};
use mesh_analysis::PolicyGraph;
use mesh_semantics::intention::IntentionSet;
use std::collections::{BTreeMap, BTreeSet};

/// A receipt is judged only when every live agent had the intentions in force this long before.
const CONVERGED_MARGIN_MS: u64 = 500;

pub(crate) struct Input<'a> {
    pub setup_hosts: Vec<String>,
    pub hosts_of: &'a BTreeMap<String, Vec<String>>,
    pub edges: &'a BTreeSet<(String, String)>,
    /// The upstreams routed by their discovery chain.
    pub chained: &'a BTreeSet<String>,
    /// The static analysis of the chains: (source, upstream, target service) -> (allowed, why),
    /// for every target `mesh-analysis` `chains` finds.
    pub chain_targets: &'a BTreeMap<(String, String, String), (bool, String)>,
    pub http: &'a BTreeMap<String, bool>,
    pub graph: &'a PolicyGraph,
    pub before: Option<&'a PolicyGraph>,
    pub history: &'a [IntentionsVersion],
    pub final_roots_index: u64,
    /// Crashed host groups: (hosts, crash time, restart time).
    pub down_groups: Vec<(Vec<String>, u64, Option<u64>)>,
    pub last_event_ms: u64,
    pub liveness_bound_ms: u64,
    /// (time, step index) of each rollout step applied.
    pub applied_steps: &'a [(u64, usize)],
    pub end_ms: u64,
}

pub(crate) struct Checked {
    pub edges: Vec<EdgeReport>,
    pub targets: Vec<TargetReport>,
    pub violations: Vec<String>,
    pub transient: Vec<Transient>,
}

impl Input<'_> {
    fn down_at(&self, host: &str, t: u64) -> bool {
        self.down_groups.iter().any(|(hs, at, restart)| {
            hs.iter().any(|h| h == host) && t >= *at && restart.is_none_or(|r| t < r)
        })
    }

    fn service_down_at_end(&self, service: &str) -> bool {
        self.hosts_of
            .get(service)
            .is_none_or(|hs| hs.iter().all(|h| self.down_at(h, self.end_ms)))
    }

    fn version_at(&self, t: u64) -> Option<&IntentionsVersion> {
        self.history.iter().rev().find(|v| v.at_ms <= t)
    }

    /// The analysis's decisions for `src`'s requests on `upstream`, per target: a range of the
    /// map, which is keyed by (source, upstream, target), not a scan of every chain.
    fn targets_of<'b>(
        &'b self,
        src: &'b str,
        upstream: &'b str,
    ) -> impl Iterator<Item = &'b (bool, String)> + 'b {
        let from = (src.to_owned(), upstream.to_owned(), String::new());
        self.chain_targets
            .range(from..)
            .take_while(move |((s, u, _), _)| s == src && u == upstream)
            .map(|(_, d)| d)
    }

    /// Whether the static analysis follows `upstream` of `src` through its chain.
    fn analysed(&self, src: &str, upstream: &str) -> bool {
        self.chained.contains(upstream) && self.targets_of(src, upstream).next().is_some()
    }

    /// The static decision for `src`'s requests on `upstream` that reach `target`: the chain
    /// analysis's, else (no chain entries in the final state) the intentions of the target.
    fn decide_target(&self, src: &str, upstream: &str, target: &str) -> Option<(bool, String)> {
        if self.analysed(src, upstream) {
            let key = (src.to_owned(), upstream.to_owned(), target.to_owned());
            return self.chain_targets.get(&key).cloned();
        }
        let d = self.graph.decide(src, target);
        Some((d.allowed, d.reason))
    }
}

/// When every node that is up had caught up with intentions `index` and roots `roots`, or
/// `None` if some never did.
fn converged_at(
    input: &Input,
    obs: &Observations,
    index: u64,
    roots: u64,
    since: u64,
) -> Option<u64> {
    let mut latest = since;
    for host in &input.setup_hosts {
        if input.down_at(host, input.end_ms) {
            continue;
        }
        let t = obs
            .syncs
            .iter()
            .find(|s| {
                s.node == *host
                    && s.at_ms >= since
                    && s.intentions_index >= index
                    && s.roots_index >= roots
            })
            .map(|s| s.at_ms)
            // Already up to date before the change (the change may not concern it).
            .or_else(|| {
                obs.syncs
                    .iter()
                    .rev()
                    .find(|s| s.node == *host && s.at_ms < since)
                    .filter(|s| s.intentions_index >= index && s.roots_index >= roots)
                    .map(|_| since)
            })?;
        latest = latest.max(t);
    }
    Some(latest)
}

/// Each node's agent syncs as (simulated ms, intentions index), in the order they happened (a
/// host's clock only moves forward, so each list is sorted by time).
fn syncs_by_node(obs: &Observations) -> BTreeMap<&str, Vec<(u64, u64)>> {
    let mut by_node: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for s in &obs.syncs {
        by_node
            .entry(s.node.as_str())
            .or_default()
            .push((s.at_ms, s.intentions_index));
    }
    by_node
}

/// Whether every node up at `t` had intentions `index` already `CONVERGED_MARGIN_MS` before.
fn converged_before(
    input: &Input,
    syncs: &BTreeMap<&str, Vec<(u64, u64)>>,
    index: u64,
    t: u64,
) -> bool {
    let cutoff = t.saturating_sub(CONVERGED_MARGIN_MS);
    input
        .setup_hosts
        .iter()
        .filter(|h| !input.down_at(h, t))
        .all(|h| {
            // The node's last sync at or before the cutoff.
            let list = syncs.get(h.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            let upto = list.partition_point(|(at, _)| *at <= cutoff);
            upto > 0 && list[upto - 1].1 >= index
        })
}

pub(crate) fn run(input: &Input, obs: &Observations) -> Checked {
    let mut violations = Vec::new();
    let final_version = input.history.last();
    let final_index = final_version.map(|v| v.index).unwrap_or(0);
    let final_change = final_version.map(|v| v.at_ms).unwrap_or(0);
    let conv = converged_at(
        input,
        obs,
        final_index,
        input.final_roots_index,
        final_change,
    );
    let settled_from = match conv {
        Some(t) => t.max(input.last_event_ms),
        None => {
            violations.push(format!(
                "agents never converged on intentions index {final_index} and roots index {}",
                input.final_roots_index
            ));
            input.end_ms
        }
    };

    safety(input, obs, &mut violations);
    // Each edge's calls, in the order they were made.
    let mut calls: BTreeMap<(&str, &str), Vec<&Attempt>> = BTreeMap::new();
    for a in &obs.attempts {
        calls
            .entry((a.source.as_str(), a.destination.as_str()))
            .or_default()
            .push(a);
    }
    let edges = input
        .edges
        .iter()
        .map(|(src, dst)| {
            let attempts = calls.remove(&(src.as_str(), dst.as_str()));
            let attempts = attempts.unwrap_or_default();
            edge(input, attempts, settled_from, (src, dst), &mut violations)
        })
        .collect();
    let targets = input
        .edges
        .iter()
        .filter(|(_, dst)| input.chained.contains(dst))
        .flat_map(|(src, dst)| targets(input, obs, settled_from, (src, dst), &mut violations))
        .collect();
    probes(obs, &mut violations);
    let transient = transients(input, obs, settled_from);
    violations.sort();
    violations.dedup();
    Checked {
        edges,
        targets,
        violations,
        transient,
    }
}

/// Safety: nothing without a valid certificate, nothing around the sidecar, and nothing the
/// converged intentions deny reached an application.
fn safety(input: &Input, obs: &Observations, violations: &mut Vec<String>) {
    let syncs = syncs_by_node(obs);
    let sets: BTreeMap<u64, IntentionSet> = input
        .history
        .iter()
        .map(|v| (v.index, IntentionSet::new(&v.entries)))
        .collect();
    for r in &obs.receipts {
        if let Some(p) = &r.probe {
            if ["no-client-cert", "foreign-ca", "expired-cert"]
                .iter()
                .any(|k| p.starts_with(k))
            {
                violations.push(format!(
                    "safety: probe {p} without a valid certificate reached the {} application at {} ms",
                    r.destination, r.at_ms
                ));
            }
        }
        let Some(src) = &r.source else {
            violations.push(format!(
                "safety: the {} application was reached around its sidecar at {} ms",
                r.destination, r.at_ms
            ));
            continue;
        };
        let Some(v) = input.version_at(r.at_ms) else {
            continue;
        };
        if !converged_before(input, &syncs, v.index, r.at_ms) {
            continue;
        }
        let Some(set) = sets.get(&v.index) else {
            continue;
        };
        let http = input.http.get(&r.destination).copied().unwrap_or(false);
        let d = if http {
            set.decide_request(src, &r.destination, &r.request, input.graph.default_allow)
        } else {
            set.decide(src, &r.destination, input.graph.default_allow)
        };
        if !d.allowed {
            violations.push(format!(
                "safety: {src} reached {} ({} {}) at {} ms although intentions index {} deny it: {}",
                r.destination, r.request.method, r.request.path, r.at_ms, v.index, d.reason
            ));
        }
    }
}

/// One declared edge: liveness once the faults are over, and agreement of the converged
/// decision with the static analysis.
fn edge(
    input: &Input,
    attempts: Vec<&Attempt>,
    settled_from: u64,
    (src, dst): (&String, &String),
    violations: &mut Vec<String>,
) -> EdgeReport {
    let mut d = input.graph.decide(src, dst);
    // Routed by its chain, the upstream is allowed when a target is: each target's decision is
    // checked on its own (`targets`), and a request a target's intentions refuse reached a
    // proxy that decided, which is what liveness asks.
    let chained = input.chained.contains(dst);
    if chained {
        let mut expected = input
            .targets_of(src, dst)
            .map(|(allowed, _)| *allowed)
            .peekable();
        if expected.peek().is_some() {
            d.allowed = expected.any(|a| a);
        }
    }
    let mut outcomes = BTreeMap::new();
    for a in &attempts {
        *outcomes.entry(a.outcome).or_insert(0) += 1;
    }
    let admitted = |a: &Attempt| {
        a.outcome == Outcome::Allowed
            || a.l7_denied
            || (chained && a.handshake && a.outcome == Outcome::DeniedByIntention)
    };
    let settled: Vec<_> = attempts
        .iter()
        .filter(|a| a.at_ms >= settled_from + CONVERGED_MARGIN_MS)
        .collect();
    let converged_allowed = if settled.iter().any(|a| admitted(a)) {
        Some(true)
    } else if settled
        .iter()
        .any(|a| a.outcome == Outcome::DeniedByIntention)
    {
        Some(false)
    } else {
        None
    };
    // Liveness: once the faults are over, the edge succeeds within the bound. A later
    // isolated failure is counted in the outcomes, not a liveness violation; an edge that
    // fails again at the end is reported below.
    let after: Vec<_> = attempts
        .iter()
        .filter(|a| a.at_ms >= input.last_event_ms)
        .collect();
    let first_success = after.iter().find(|a| admitted(a)).map(|a| a.at_ms);
    let last_failed = after.last().is_some_and(|a| !admitted(a));
    let ends_up = !input.service_down_at_end(src) && !input.service_down_at_end(dst);
    if ends_up {
        if let Some(c) = converged_allowed.filter(|_| !chained) {
            if c != d.allowed {
                violations.push(format!(
                    "decision: {src} -> {dst} was {} once converged, the static analysis says {} ({})",
                    if c { "admitted" } else { "denied" },
                    if d.allowed { "allowed" } else { "denied" },
                    d.reason
                ));
            }
        }
        if d.allowed {
            match first_success {
                Some(_) if last_failed => violations.push(format!(
                    "liveness: {src} -> {dst} worked again after the last fault but its last call failed ({})",
                    summary(&outcomes)
                )),
                Some(t) if t <= input.last_event_ms + input.liveness_bound_ms => {}
                Some(t) => violations.push(format!(
                    "liveness: {src} -> {dst} succeeded only {} ms after the last fault (bound {} ms)",
                    t - input.last_event_ms,
                    input.liveness_bound_ms
                )),
                None => violations.push(format!(
                    "liveness: {src} -> {dst} is allowed but still failed at the end, after {} ms ({})",
                    input.last_event_ms,
                    summary(&outcomes)
                )),
            }
        } else if converged_allowed.is_none() && !attempts.is_empty() {
            violations.push(format!(
                "decision: {src} -> {dst} never reached the destination's proxy once converged ({})",
                summary(&outcomes)
            ));
        }
    }
    // Denied as `check` decides it (the shared evaluation, `E1001`), and refused in the
    // simulation: requests were refused by the intentions and none got through once converged.
    let refused = outcomes.contains_key(&Outcome::DeniedByIntention);
    let delivered_settled = settled.iter().any(|a| a.outcome == Outcome::Allowed);
    let denied_by =
        (!chained && !d.allowed && refused && !delivered_settled).then(|| d.reason.clone());
    EdgeReport {
        source: src.clone(),
        destination: dst.clone(),
        expected_allowed: d.allowed,
        l7: d.l7,
        attempts: attempts.len(),
        outcomes,
        denied_after_handshake: attempts
            .iter()
            .filter(|a| a.outcome == Outcome::DeniedByIntention && a.handshake)
            .count(),
        converged_allowed,
        recovered_at_ms: first_success,
        denied_by,
    }
}

/// The targets of a chained upstream: what each one's intentions decided once converged,
/// compared with the static analysis of the chain, and a target the analysis does not reach.
fn targets(
    input: &Input,
    obs: &Observations,
    settled_from: u64,
    (src, dst): (&String, &String),
    violations: &mut Vec<String>,
) -> Vec<TargetReport> {
    let mut by_target: BTreeMap<&str, Vec<&crate::obs::Attempt>> = BTreeMap::new();
    for a in obs
        .attempts
        .iter()
        .filter(|a| a.source == *src && a.destination == *dst)
    {
        by_target.entry(a.target.as_str()).or_default().push(a);
    }
    // Targets the analysis predicts get a row even without traffic (a failover target).
    for (s, u, t) in input.chain_targets.keys() {
        if s == src && u == dst {
            by_target.entry(t.as_str()).or_default();
        }
    }
    let mut out = Vec::new();
    for (target, attempts) in by_target {
        let count = |o: Outcome| attempts.iter().filter(|a| a.outcome == o).count();
        let (allowed, denied) = (count(Outcome::Allowed), count(Outcome::DeniedByIntention));
        let settled: Vec<_> = attempts
            .iter()
            .filter(|a| a.at_ms >= settled_from + CONVERGED_MARGIN_MS)
            .collect();
        let converged = if settled
            .iter()
            .any(|a| a.outcome == Outcome::Allowed || a.l7_denied)
        {
            Some(true)
        } else if settled
            .iter()
            .any(|a| a.outcome == Outcome::DeniedByIntention)
        {
            Some(false)
        } else {
            None
        };
        let expected = input.decide_target(src, dst, target);
        if expected.is_none() && converged.is_none() && allowed + denied == 0 {
            // Calls that failed before any target was chosen (no chain yet).
            continue;
        }
        let ends_up = !input.service_down_at_end(src) && !input.service_down_at_end(target);
        match (&expected, converged) {
            (None, Some(_)) => violations.push(format!(
                "routing: {src} -> {dst} sent requests to {target}, which the static analysis of the chain does not reach"
            )),
            (Some((e, why)), Some(c)) if ends_up && c != *e => violations.push(format!(
                "decision: {src} -> {dst} -> target {target} was {} once converged, the static analysis says {} ({why})",
                if c { "admitted" } else { "denied" },
                if *e { "allowed" } else { "denied" },
            )),
            _ => {}
        }
        let (expected_allowed, why) = expected.unwrap_or((true, String::new()));
        let delivered_settled = settled.iter().any(|a| a.outcome == Outcome::Allowed);
        out.push(TargetReport {
            source: src.clone(),
            upstream: dst.clone(),
            target: target.to_owned(),
            expected_allowed,
            allowed,
            denied,
            failed: attempts.len() - allowed - denied,
            denied_by: (!expected_allowed && denied > 0 && !delivered_settled).then_some(why),
        });
    }
    out
}

/// Probes that did not end as expected.
fn probes(obs: &Observations, violations: &mut Vec<String>) {
    for p in &obs.probes {
        if p.outcome != p.expected {
            violations.push(format!(
                "probe {} {} -> {}: {} but expected {} ({})",
                p.kind.as_str(),
                p.source,
                p.destination,
                p.outcome.as_str(),
                p.expected.as_str(),
                p.detail
            ));
        }
    }
}

/// Rollout transients: breaks and openings between the first step and convergence on the
/// last one.
fn transients(input: &Input, obs: &Observations, settled_from: u64) -> Vec<Transient> {
    let mut transient = Vec::new();
    if let (Some(before), Some(&(first_ms, _))) = (input.before, input.applied_steps.first()) {
        let mut seen = BTreeSet::new();
        for a in &obs.attempts {
            if a.at_ms < first_ms || a.at_ms >= settled_from {
                continue;
            }
            // The intentions of the service the request was sent to decide it.
            let (b, f) = (
                before.decide(&a.source, &a.target).allowed,
                input.graph.decide(&a.source, &a.target).allowed,
            );
            let kind = if b && f && a.outcome == Outcome::DeniedByIntention && !a.l7_denied {
                TransientKind::Break
            } else if !b && !f && a.outcome == Outcome::Allowed {
                TransientKind::Opening
            } else {
                continue;
            };
            let step = input
                .applied_steps
                .iter()
                .rev()
                .find(|(t, _)| *t <= a.at_ms)
                .map(|(_, i)| *i)
                .unwrap_or(0);
            if seen.insert((kind, a.source.clone(), a.destination.clone(), step)) {
                transient.push(Transient {
                    kind,
                    source: a.source.clone(),
                    destination: a.destination.clone(),
                    step,
                    at_ms: a.at_ms,
                });
            }
        }
    }
    transient
}

fn summary(outcomes: &BTreeMap<Outcome, usize>) -> String {
    if outcomes.is_empty() {
        return "no calls".into();
    }
    outcomes
        .iter()
        .map(|(o, n)| format!("{} {n}", o.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::{AgentSync, Receipt};
    use mesh_model::{
        ConfigEntry, DesiredState, IntentionAction, ServiceIntentions, SourceIntention,
    };
    use mesh_semantics::intention::HttpRequest;

    fn receipt(at_ms: u64, source: Option<&str>, probe: Option<&str>) -> Receipt {
        Receipt {
            at_ms,
            destination: "db".into(),
            source: source.map(str::to_owned),
            request: HttpRequest {
                method: "GET".into(),
                path: "/".into(),
                headers: Vec::new(),
            },
            probe: probe.map(str::to_owned),
        }
    }

    #[test]
    fn safety_catches_what_reached_an_application_it_should_not_have() {
        let entry = ServiceIntentions {
            name: "db".into(),
            sources: vec![SourceIntention {
                name: "web".into(),
                action: Some(IntentionAction::Deny),
                ..SourceIntention::default()
            }],
            ..ServiceIntentions::default()
        };
        let mut state = DesiredState::default();
        state
            .config_entries
            .push(ConfigEntry::ServiceIntentions(entry.clone()));
        let graph = PolicyGraph::build(&state);
        let history = vec![IntentionsVersion {
            at_ms: 0,
            index: 1,
            entries: vec![entry],
        }];
        let (hosts_of, edges, http) = (
            [("db".to_owned(), vec!["node-db".to_owned()])].into(),
            BTreeSet::new(),
            [("db".to_owned(), false)].into(),
        );
        let input = Input {
            setup_hosts: vec!["node-db".into()],
            hosts_of: &hosts_of,
            edges: &edges,
            chained: &BTreeSet::new(),
            chain_targets: &BTreeMap::new(),
            http: &http,
            graph: &graph,
            before: None,
            history: &history,
            final_roots_index: 1,
            down_groups: Vec::new(),
            last_event_ms: 0,
            liveness_bound_ms: 4000,
            applied_steps: &[],
            end_ms: 5000,
        };
        let mut obs = Observations::default();
        obs.syncs.push(AgentSync {
            at_ms: 10,
            node: "node-db".into(),
            intentions_index: 1,
            roots_index: 1,
        });
        obs.receipts = vec![
            // Before the agents had converged for long enough: not judged.
            receipt(100, Some("web"), None),
            receipt(2000, Some("web"), None),
            receipt(2100, None, None),
            receipt(2200, Some("api"), Some("expired-cert-3")),
            receipt(2300, Some("api"), None),
        ];
        let v = run(&input, &obs).violations;
        assert_eq!(v.len(), 3, "{v:#?}");
        assert!(v
            .iter()
            .any(|m| m.starts_with("safety: web reached db (GET /) at 2000 ms")));
        assert!(v
            .iter()
            .any(|m| m.contains("reached around its sidecar at 2100 ms")));
        assert!(v
            .iter()
            .any(|m| m.contains("probe expired-cert-3 without a valid certificate")));
    }

    #[test]
    fn each_edge_counts_its_own_calls_in_order() {
        let state = DesiredState::default();
        let graph = PolicyGraph::build(&state);
        let edges: BTreeSet<(String, String)> = [
            ("web".to_owned(), "db".to_owned()),
            ("api".to_owned(), "db".to_owned()),
            ("web".to_owned(), "cache".to_owned()),
        ]
        .into();
        let (hosts_of, http) = (BTreeMap::new(), BTreeMap::new());
        let (chained, chain_targets) = (BTreeSet::new(), BTreeMap::new());
        let input = Input {
            setup_hosts: Vec::new(),
            hosts_of: &hosts_of,
            edges: &edges,
            chained: &chained,
            chain_targets: &chain_targets,
            http: &http,
            graph: &graph,
            before: None,
            history: &[],
            final_roots_index: 0,
            down_groups: Vec::new(),
            last_event_ms: 0,
            liveness_bound_ms: 4000,
            applied_steps: &[],
            end_ms: 5000,
        };
        let call = |at_ms, source: &str, outcome| Attempt {
            at_ms,
            source: source.into(),
            destination: "db".into(),
            target: "db".into(),
            outcome,
            handshake: true,
            l7_denied: false,
        };
        let obs = Observations {
            attempts: vec![
                call(1000, "web", Outcome::Allowed),
                call(1100, "api", Outcome::Unreachable),
                call(1200, "web", Outcome::Unreachable),
                call(1300, "api", Outcome::Allowed),
                call(1400, "web", Outcome::Allowed),
            ],
            ..Observations::default()
        };
        let checked = run(&input, &obs);
        let by_source: BTreeMap<(&str, &str), &EdgeReport> = checked
            .edges
            .iter()
            .map(|e| ((e.source.as_str(), e.destination.as_str()), e))
            .collect();
        let web = by_source[&("web", "db")];
        assert_eq!(web.attempts, 3);
        assert_eq!(web.delivered(), 2);
        assert_eq!(web.recovered_at_ms, Some(1000));
        let api = by_source[&("api", "db")];
        assert_eq!(api.attempts, 2);
        assert_eq!(api.delivered(), 1);
        // The first success after the last fault, not the first call.
        assert_eq!(api.recovered_at_ms, Some(1300));
        assert_eq!(by_source[&("web", "cache")].attempts, 0);
    }
}
