//! The fault specification: `partition=agents-server@5s..8s,crash=node-web@10s,rotate@12s,
//! latency=20ms`. Host names are resolved later, against the simulated topology.

use crate::SimError;
use std::time::Duration;

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// Cut the links between two host groups from `from` until `until` (forever without it).
    Partition {
        a: String,
        b: String,
        from: Duration,
        until: Option<Duration>,
    },
    /// Crash a host group at `at`; restart its software at `restart`, if given.
    Crash {
        host: String,
        at: Duration,
        restart: Option<Duration>,
    },
    /// Rotate the CA root (cross-signed by the old one) at `at`.
    Rotate { at: Duration },
}

/// Faults plus network settings for the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultSpec {
    pub faults: Vec<Fault>,
    /// Maximum one-way message latency; `None` keeps the simulator's small default.
    pub latency: Option<Duration>,
    /// Leaf certificates live this long (`leaf-ttl=2s`), so that expiry and renewal happen
    /// within a run; `None` keeps the repository's CA setting.
    pub leaf_ttl: Option<Duration>,
    /// The text it was parsed from, for the replay command.
    pub text: String,
}

fn duration(s: &str, whole: &str) -> Result<Duration, SimError> {
    mesh_semantics::ca_config::parse_duration(s)
        .map_err(|e| SimError::Faults(format!("{whole:?}: {e}")))
}

/// `A..B` or `A`.
fn window(s: &str, whole: &str) -> Result<(Duration, Option<Duration>), SimError> {
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (duration(a, whole)?, duration(b, whole)?);
            if b < a {
                return Err(SimError::Faults(format!(
                    "{whole:?}: the window ends before it starts"
                )));
            }
            Ok((a, Some(b)))
        }
        None => Ok((duration(s, whole)?, None)),
    }
}

impl FaultSpec {
    pub fn parse(text: &str) -> Result<FaultSpec, SimError> {
        let mut spec = FaultSpec {
            text: text.trim().to_owned(),
            ..FaultSpec::default()
        };
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (head, at) = match item.split_once('@') {
                Some((h, a)) => (h, Some(a)),
                None => (item, None),
            };
            let (name, value) = match head.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (head.trim(), None),
            };
            let need_at =
                || at.ok_or_else(|| SimError::Faults(format!("{item:?}: missing `@time`")));
            let need_value = || {
                value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| SimError::Faults(format!("{item:?}: missing `=target`")))
            };
            match name {
                "partition" => {
                    let (from, until) = window(need_at()?, item)?;
                    let target = need_value()?;
                    // `a/b` is unambiguous; `a-b` is split later, where host names are known.
                    let (a, b) = match target.split_once('/') {
                        Some((a, b)) => (a.to_owned(), b.to_owned()),
                        None => (target.to_owned(), String::new()),
                    };
                    spec.faults.push(Fault::Partition { a, b, from, until });
                }
                "crash" => {
                    let (at, restart) = window(need_at()?, item)?;
                    spec.faults.push(Fault::Crash {
                        host: need_value()?.to_owned(),
                        at,
                        restart,
                    });
                }
                "rotate" => {
                    let (at, until) = window(need_at()?, item)?;
                    if until.is_some() || value.is_some() {
                        return Err(SimError::Faults(format!("{item:?}: rotate takes one time")));
                    }
                    spec.faults.push(Fault::Rotate { at });
                }
                "latency" => {
                    if at.is_some() {
                        return Err(SimError::Faults(format!(
                            "{item:?}: latency applies to the whole run"
                        )));
                    }
                    spec.latency = Some(duration(need_value()?, item)?);
                }
                "leaf-ttl" => {
                    if at.is_some() {
                        return Err(SimError::Faults(format!(
                            "{item:?}: leaf-ttl applies to the whole run"
                        )));
                    }
                    let ttl = duration(need_value()?, item)?;
                    if ttl < Duration::from_secs(1) {
                        return Err(SimError::Faults(format!(
                            "{item:?}: certificate times have one-second resolution; use 1s or more"
                        )));
                    }
                    spec.leaf_ttl = Some(ttl);
                }
                other => {
                    return Err(SimError::Faults(format!(
                        "{item:?}: unknown fault {other:?} (partition, crash, rotate, latency, leaf-ttl)"
                    )))
                }
            }
        }
        Ok(spec)
    }

    /// When the last fault is over: the network healed, crashed hosts restarted, the root rotated.
    pub fn heal_time(&self) -> Duration {
        self.faults
            .iter()
            .map(|f| match f {
                Fault::Partition { from, until, .. } => until.unwrap_or(*from),
                Fault::Crash { at, restart, .. } => restart.unwrap_or(*at),
                Fault::Rotate { at } => *at,
            })
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let s = FaultSpec::parse(
            "partition=agent-server@5s..8s,crash=node-web@10s,rotate@12s,latency=20ms",
        )
        .unwrap();
        assert_eq!(s.latency, Some(Duration::from_millis(20)));
        assert_eq!(s.faults.len(), 3);
        assert_eq!(
            s.faults[0],
            Fault::Partition {
                a: "agent-server".into(),
                b: String::new(),
                from: Duration::from_secs(5),
                until: Some(Duration::from_secs(8)),
            }
        );
        assert_eq!(s.heal_time(), Duration::from_secs(12));
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        for bad in [
            "crash=x",
            "rotate",
            "latency=20ms@1s",
            "explode@1s",
            "partition=a/b@9s..1s",
            "crash=@1s",
            "rotate@x",
        ] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(FaultSpec::parse("").unwrap().faults, vec![]);
    }
}
