//! `simulate --combine`: the JSON reports of a sweep split across machines (each part a
//! `simulate --seed-range A..B --format json`) joined into the document one run of all their
//! seeds writes: the full report of the lowest seed, and one `sweep` line per seed in seed order.

use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CombineError {
    #[error("part {part}: not a `simulate --format json` report ({why})")]
    NotAReport { part: usize, why: &'static str },
    #[error("seed {seed} is in part {first} and in part {second}")]
    Overlap {
        seed: u64,
        first: usize,
        second: usize,
    },
    #[error(
        "part {part} simulated another repository or other faults: {replay:?}, not {expected:?}"
    )]
    Mismatch {
        part: usize,
        replay: String,
        expected: String,
    },
    #[error("no report to combine")]
    Empty,
}

/// One seed's line of a sweep.
const LINE: [&str; 6] = [
    "seed",
    "trace_hash",
    "passed",
    "denied",
    "violations",
    "replay",
];

/// The seed's lines of one part: its `sweep`, or for a single seed the line built from the
/// report itself.
fn lines(part: usize, doc: &Value) -> Result<Vec<Value>, CombineError> {
    let not = |why| CombineError::NotAReport { part, why };
    if let Some(sweep) = doc.get("sweep") {
        return sweep
            .as_array()
            .cloned()
            .ok_or(not("`sweep` is not a list"));
    }
    let mut line = serde_json::Map::new();
    for key in LINE {
        line.insert(
            key.to_owned(),
            doc.get(key).cloned().ok_or(not("a field is missing"))?,
        );
    }
    Ok(vec![Value::Object(line)])
}

/// The replay command without its seed: the same for every part of one sweep.
fn without_seed(replay: &str) -> String {
    let mut words: Vec<&str> = replay.split(' ').collect();
    if let Some(i) = words.iter().position(|w| *w == "--seed") {
        words.drain(i..(i + 2).min(words.len()));
    }
    words.join(" ")
}

/// Joins the parts; the result is what one run of all their seeds writes. Skipped parts (no
/// service with a sidecar) combine only with skipped ones.
pub fn combine(parts: &[Value]) -> Result<Value, CombineError> {
    let first = parts.first().ok_or(CombineError::Empty)?;
    if first.get("skipped").is_some() {
        return match parts.iter().position(|p| p.get("skipped").is_none()) {
            None => Ok(first.clone()),
            Some(part) => Err(CombineError::NotAReport {
                part: part + 1,
                why: "the other parts were skipped",
            }),
        };
    }
    // Seed -> (part, line); the lowest seed's part gives the full report.
    let mut seeds: BTreeMap<u64, (usize, Value)> = BTreeMap::new();
    let mut expected: Option<String> = None;
    for (i, doc) in parts.iter().enumerate() {
        let part = i + 1;
        if doc.get("skipped").is_some() {
            return Err(CombineError::NotAReport {
                part,
                why: "it was skipped and the first part was not",
            });
        }
        for line in lines(part, doc)? {
            let seed = line["seed"].as_u64().ok_or(CombineError::NotAReport {
                part,
                why: "a seed is not a number",
            })?;
            let replay = without_seed(line["replay"].as_str().unwrap_or_default());
            match &expected {
                None => expected = Some(replay),
                Some(e) if *e != replay => {
                    return Err(CombineError::Mismatch {
                        part,
                        replay,
                        expected: e.clone(),
                    })
                }
                Some(_) => {}
            }
            if let Some((other, _)) = seeds.insert(seed, (part, line)) {
                return Err(CombineError::Overlap {
                    seed,
                    first: other,
                    second: part,
                });
            }
        }
    }
    let (lowest_part, _) = seeds.values().next().ok_or(CombineError::Empty)?;
    let mut out = parts[*lowest_part - 1].clone();
    if seeds.len() > 1 {
        out["sweep"] = seeds.into_values().map(|(_, line)| line).collect();
    } else if let Some(o) = out.as_object_mut() {
        o.remove("sweep");
    }
    Ok(out)
}

/// Whether every seed of a (combined) report passed.
pub fn passed(doc: &Value) -> bool {
    match doc.get("sweep").and_then(Value::as_array) {
        Some(lines) => lines.iter().all(|l| l["passed"] == true),
        None => doc.get("skipped").is_some() || doc["passed"] == true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulation::fixture::{report, simulation};
    use crate::simulation::json::value;

    fn part(seeds: std::ops::Range<u64>) -> Value {
        value(&simulation(
            seeds
                .map(|s| report(s, if s == 4 { &["x"] } else { &[] }))
                .collect(),
        ))
    }

    #[test]
    fn parts_combine_into_the_report_of_one_run_of_all_their_seeds() {
        let whole = part(1..6);
        // In any order, single seeds too.
        let combined = combine(&[part(3..4), part(4..6), part(1..3)]).unwrap();
        assert_eq!(
            format!("{combined:#}"),
            format!("{whole:#}"),
            "byte for byte"
        );
        assert!(!passed(&combined), "seed 4 has a violation");
        assert!(passed(&combine(&[part(1..2), part(2..4)]).unwrap()));
        assert_eq!(combine(&[part(2..3)]).unwrap(), part(2..3));
    }

    #[test]
    fn overlapping_foreign_or_malformed_parts_are_refused() {
        assert_eq!(
            combine(&[part(1..3), part(2..4)]),
            Err(CombineError::Overlap {
                seed: 2,
                first: 1,
                second: 2
            })
        );
        let mut other = part(5..6);
        other["replay"] = "mesh-gitops simulate elsewhere --seed 5".into();
        assert!(matches!(
            combine(&[part(1..3), other]),
            Err(CombineError::Mismatch { part: 2, .. })
        ));
        assert!(matches!(
            combine(&[part(1..3), serde_json::json!({"seed": 9})]),
            Err(CombineError::NotAReport { part: 2, .. })
        ));
        assert_eq!(combine(&[]), Err(CombineError::Empty));
        let skipped = value(&crate::simulation::fixture::skipped());
        assert_eq!(
            combine(&[skipped.clone(), skipped.clone()]),
            Ok(skipped.clone())
        );
        assert!(combine(&[part(1..2), skipped]).is_err());
    }

    #[test]
    fn the_replay_without_its_seed_names_the_repository_and_the_faults() {
        assert_eq!(
            without_seed("mesh-gitops simulate repo --seed 12 --faults 'rotate@2s'"),
            "mesh-gitops simulate repo --faults 'rotate@2s'"
        );
    }
}
