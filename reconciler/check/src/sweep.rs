//! Seeds are independent simulations: a sweep runs them on worker threads, one seed at a time
//! each, and hands the results back in seed order, so the report is the same bytes whatever the
//! number of workers.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

/// A simulation's host tasks nest deeply (TLS inside HTTP inside turmoil's scheduler); a
/// spawned thread's default stack (2 MiB) is smaller than the main thread's.
const WORKER_STACK: usize = 16 << 20;

/// The workers to use when none are asked for: every core the process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `run` for every seed of `seeds` on at most `workers` threads; returns the results in seed
/// order, stopping at the first seed (in seed order) whose result `stop` says ends the sweep.
/// `progress` hears the seeds done of the total, on the calling thread, as each one finishes.
pub fn run_seeds<T: Send>(
    seeds: Range<u64>,
    workers: usize,
    run: impl Fn(u64) -> T + Sync,
    stop: impl Fn(&T) -> bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Vec<T> {
    let total = seeds.end.saturating_sub(seeds.start);
    progress(0, total);
    let workers = workers.clamp(1, total.max(1) as usize);
    let next = AtomicU64::new(seeds.start);
    let halt = AtomicBool::new(false);
    let mut done: Vec<(u64, T)> = Vec::with_capacity(total as usize);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(u64, T)>();
        for _ in 0..workers {
            let (tx, next, halt, run) = (tx.clone(), &next, &halt, &run);
            std::thread::Builder::new()
                .name("mesh-sim-seed".into())
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, move || loop {
                    if halt.load(Ordering::Relaxed) {
                        return;
                    }
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        return;
                    }
                    if tx.send((seed, run(seed))).is_err() {
                        return;
                    }
                })
                .expect("spawn a simulation worker");
        }
        drop(tx);
        for (seed, result) in rx {
            if stop(&result) {
                // Seeds not yet started are not needed; those running finish.
                halt.store(true, Ordering::Relaxed);
            }
            done.push((seed, result));
            progress(done.len() as u64, total);
        }
    });
    done.sort_by_key(|(seed, _)| *seed);
    let mut out = Vec::with_capacity(done.len());
    for (_, result) in done {
        let last = stop(&result);
        out.push(result);
        if last {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_seed_order_whatever_the_workers() {
        for workers in [1, 2, 5] {
            let mut seen = Vec::new();
            let out = run_seeds(
                3..10,
                workers,
                |s| {
                    // Later seeds finish first.
                    std::thread::sleep(std::time::Duration::from_millis(20 - s));
                    s * 10
                },
                |_| false,
                &mut |d, t| seen.push((d, t)),
            );
            assert_eq!(out, [30, 40, 50, 60, 70, 80, 90], "{workers} workers");
            assert_eq!(seen.first(), Some(&(0, 7)));
            assert_eq!(seen.last(), Some(&(7, 7)));
            assert!(seen.windows(2).all(|w| w[1].0 == w[0].0 + 1));
        }
    }

    #[test]
    fn a_stopping_result_ends_the_sweep_at_its_seed() {
        let out = run_seeds(1..6, 2, |s| s, |s| *s == 3, &mut |_, _| {});
        assert_eq!(out, [1, 2, 3]);
        assert!(run_seeds(4..4, 2, |s| s, |_| false, &mut |_, _| {}).is_empty());
    }
}
