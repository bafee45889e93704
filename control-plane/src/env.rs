//! What the server takes from the world: the wall clock, identifiers and key pairs. `serve` uses
//! the machine's clock, random UUIDs and ring's keys; a simulation injects simulated time and
//! seeded generators, so the same seed replays the same certificates, IDs and timestamps.

use mesh_ca::KeyFactory;
use std::sync::Arc;
use std::time::SystemTime;

/// The wall clock (CA rotation, leaf validity, token create times, root pruning).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

pub struct Env {
    pub clock: Clock,
    pub ids: Ids,
    pub keys: Arc<dyn KeyFactory + Send + Sync>,
}

impl Env {
    /// The machine's clock, random UUIDs and ring's random keys.
    pub fn system() -> Env {
        Env {
            clock: Arc::new(SystemTime::now),
            ids: Ids::random(),
            keys: Arc::new(mesh_ca::RandomKeys),
        }
    }

    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("ids", &self.ids).finish()
    }
}

/// Where UUIDs (session IDs, ACL accessor and secret IDs, policy and role IDs) come from.
#[derive(Debug)]
pub struct Ids {
    /// `None` draws version-4 UUIDs from the operating system.
    seeded: Option<mesh_seed::SharedSplitMix64>,
}

impl Ids {
    pub fn random() -> Ids {
        Ids { seeded: None }
    }

    /// Version-4-shaped UUIDs from a seeded generator.
    pub fn seeded(seed: u64) -> Ids {
        Ids {
            seeded: Some(mesh_seed::SharedSplitMix64::new(seed ^ 0x1D5_5EED)),
        }
    }

    pub fn next(&self) -> String {
        let Some(state) = &self.seeded else {
            return uuid::Uuid::new_v4().to_string();
        };
        uuid::Builder::from_random_bytes(state.with(|g| g.bytes16()))
            .into_uuid()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_replay_and_parse_as_uuids() {
        let (a, b) = (Ids::seeded(3), Ids::seeded(3));
        let x = a.next();
        assert_eq!(x, b.next());
        assert_ne!(x, a.next());
        assert!(uuid::Uuid::parse_str(&x).is_ok());
        assert_ne!(Ids::random().next(), Ids::random().next());
    }
}
