//! `--seed`, `--seeds` and `--faults`, shared by `simulate` and `check`.

#[derive(clap::Args, Debug, Clone, Default)]
pub struct SimArgs {
    /// The simulation's seed (all randomness comes from it).
    #[arg(long, env = "MESH_SIM_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Sweep: simulate this many seeds, starting at --seed.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seeds: u64,
    /// Faults on a schedule, e.g. `partition=web-1:server@2s..4s,rotate@3s,latency=20ms`
    /// (default: none besides the probes).
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
}

impl SimArgs {
    pub fn settings(&self) -> mesh_check::SimSettings {
        mesh_check::SimSettings {
            seed: self.seed,
            seeds: self.seeds,
            faults: self.faults.clone(),
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
