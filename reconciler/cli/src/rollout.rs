//! The rollout simulated from the live state (`mesh_check::simulate_live_rollout`): the vetting
//! `apply` and `reconcile` put every plan to before writing, and `plan --simulate`'s report.

use mesh_apply::Rollout;
use mesh_check::{LiveRollout, SimSettings};
use mesh_loader::Loaded;

/// The vetting of a plan before its writes: with `simulate`, the rollout from the live state is
/// simulated, its summary and transients told to `say`, and a break of a kept edge refuses it
/// unless `allow_transient`. Without `simulate` (`--skip-check`) every plan passes.
pub fn vet<'a>(
    loaded: &'a Loaded,
    repo: &'a str,
    simulate: bool,
    allow_transient: bool,
    say: &'a (dyn Fn(String) + Sync),
) -> impl Fn(&Rollout<'_>) -> Result<(), String> + Sync + 'a {
    move |rollout| {
        if !simulate {
            return Ok(());
        }
        let simulated = mesh_check::simulate_live_rollout(
            &loaded.state,
            rollout,
            repo,
            &SimSettings::default(),
        )
        .map_err(|e| format!("the rollout from the live state could not be simulated: {e}"))?;
        let Some(live) = simulated else {
            return Ok(());
        };
        say(live.summary());
        for line in live.lines() {
            say(format!("  {line}"));
        }
        match live.refusal(allow_transient) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

/// `plan --simulate`'s section: the summary and one line per transient, or why there is none.
pub fn report(live: Option<&LiveRollout>) -> String {
    let Some(live) = live else {
        return "rollout from the live state: nothing to simulate (no service-intentions change, or no service with a sidecar)\n".into();
    };
    let mut out = format!("{}\n", live.summary());
    for line in live.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    if let Some(why) = live.refusal(false) {
        out.push_str(&format!("  apply would refuse: {why}\n"));
    }
    out
}
