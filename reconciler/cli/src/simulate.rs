//! `--seed`, `--seeds`, `--seed-range` and `--faults`, shared by `simulate` and `check`.

use std::ops::Range;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct SimArgs {
    /// The simulation's seed (all randomness comes from it).
    #[arg(long, env = "MESH_SIM_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Sweep: simulate this many seeds, starting at --seed (on every core; the report is the
    /// same whatever their number).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seeds: u64,
    /// Sweep the seeds A to B, B excluded (`A..=B`: included), instead of --seed and --seeds:
    /// one part of a sweep split across machines, whose JSON reports `simulate --combine` joins.
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range, conflicts_with = "seeds")]
    pub seed_range: Option<Range<u64>>,
    /// Faults on a schedule, e.g. `partition=web-1:server@2s..4s,rotate@3s,latency=20ms`
    /// (default: none besides the probes).
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
}

/// `A..B` (B excluded, as Rust writes ranges) or `A..=B` (B included); never empty.
pub fn parse_seed_range(text: &str) -> Result<Range<u64>, String> {
    let (a, b, inclusive) = match text.split_once("..=") {
        Some((a, b)) => (a, b, true),
        None => match text.split_once("..") {
            Some((a, b)) => (a, b, false),
            None => return Err(format!("{text:?}: expected A..B or A..=B")),
        },
    };
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|e| format!("{text:?}: {s:?} is not a seed: {e}"))
    };
    let (a, b) = (num(a)?, num(b)?);
    let end = if inclusive { b.checked_add(1) } else { Some(b) };
    match end {
        Some(end) if end > a => Ok(a..end),
        _ => Err(format!("{text:?}: the range holds no seed")),
    }
}

impl SimArgs {
    pub fn settings(&self) -> mesh_check::SimSettings {
        let (seed, seeds) = match &self.seed_range {
            Some(r) => (r.start, r.end - r.start),
            None => (self.seed, self.seeds),
        };
        mesh_check::SimSettings {
            seed,
            seeds,
            faults: self.faults.clone(),
            workers: None,
        }
    }
}

/// The sweep of seeds, with its progress on a terminal (seeds done of the total).
pub fn sweep(
    head: &mesh_model::DesiredState,
    base: Option<&mesh_model::DesiredState>,
    dir: &std::path::Path,
    args: &SimArgs,
) -> anyhow::Result<mesh_check::Simulation> {
    let mut progress = crate::progress::Progress::new("simulating", "seed(s)");
    let sim = mesh_check::simulate_with(
        head,
        base,
        &dir.display().to_string(),
        &args.settings(),
        &mut |done, total| progress.set(done, total),
    )?;
    progress.clear();
    Ok(sim)
}

/// `simulate --combine`: the parts' JSON reports joined into one, written as JSON.
pub fn combine(
    paths: &[std::path::PathBuf],
    format: Option<crate::SimFormat>,
    outputs: &[crate::output::Output<crate::SimFormat>],
) -> anyhow::Result<std::process::ExitCode> {
    use crate::SimFormat;
    use anyhow::Context;
    let outputs = crate::output::destinations(format, outputs, SimFormat::Json)?;
    if let Some(o) = outputs.iter().find(|o| o.format != SimFormat::Json) {
        anyhow::bail!(
            "--combine writes JSON only (the parts hold every seed's verdict, not every seed's \
             report), not {:?}",
            o.format
        );
    }
    let mut parts = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        parts.push(doc);
    }
    let combined = mesh_report::simulation::combine::combine(&parts)?;
    crate::output::write_all(&outputs, |_| format!("{combined:#}\n"))?;
    let exit = if mesh_report::simulation::combine::passed(&combined) {
        crate::exit::Exit::Ok
    } else {
        crate::exit::Exit::Violation
    };
    Ok(exit.into())
}

#[cfg(test)]
mod tests {
    use super::parse_seed_range;

    #[test]
    fn seed_ranges_exclude_their_end_unless_written_with_an_equals_sign() {
        assert_eq!(parse_seed_range("1..5"), Ok(1..5));
        assert_eq!(parse_seed_range("1..=5"), Ok(1..6));
        assert_eq!(parse_seed_range(" 7 ..8"), Ok(7..8));
        for bad in ["5..5", "6..2", "1-5", "a..3", "1..=18446744073709551615"] {
            assert!(parse_seed_range(bad).is_err(), "{bad}");
        }
    }
}
