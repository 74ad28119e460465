//! Bounded spinning before sleeping, for the two waits where the other side usually answers
//! within microseconds: a worker waiting for its next job, and a caller waiting on a result.
//!
//! The spin is *fine-grained*: the condition is checked every few `PAUSE`s. (An exponential
//! backoff overshoots: its last steps spin 64 `PAUSE`s, about 3 µs, between checks, which is
//! longer than a whole round trip.)
//!
//! On a process that may use only one CPU, nothing spins: the thread a spinner waits for
//! cannot run while it spins, so every wait yields or blocks instead (see [`spin_pays`]).

use std::cell::Cell;
use std::hint;
use std::sync::OnceLock;
use std::thread;

/// `PAUSE`s between two checks of the condition.
const SPINS_PER_STEP: u32 = 4;
/// Steps that spin (about 1–2 µs in all), before ...
const SPIN_STEPS: u32 = 16;
/// ... steps that yield the CPU to another thread, before a caller blocks ...
const YIELD_STEPS: u32 = 32;
/// ... or before a worker sleeps (yielding longer would take the CPU from the producers).
const WORKER_YIELD_STEPS: u32 = 4;

/// Spin, then yield, then `is_completed`: block instead.
#[derive(Debug)]
pub(crate) struct Backoff {
    step: Cell<u32>,
    /// Total steps before `is_completed`.
    limit: u32,
}

/// `false` if this process may run on one CPU only (its affinity mask or its CPU quota allow
/// one): then the thread that a spinning thread waits for can only run once the spinner
/// leaves the CPU, and a spin is time taken from it. Read once.
pub(crate) fn spin_pays() -> bool {
    static MANY_CPUS: OnceLock<bool> = OnceLock::new();
    *MANY_CPUS.get_or_init(|| num_cpus::get() > 1)
}

impl Backoff {
    /// `limit` steps in all, of which the first `SPIN_STEPS` spin if `spin`, and are skipped
    /// if not.
    fn with_limit(limit: u32, spin: bool) -> Self {
        let first = if spin { 0 } else { SPIN_STEPS };
        Self {
            step: Cell::new(first.min(limit)),
            limit,
        }
    }

    /// For a caller waiting on a result: spin, then yield for a while (a worker on the same
    /// CPU gets to run), then block.
    pub(crate) fn new() -> Self {
        Self::with_limit(SPIN_STEPS + YIELD_STEPS, spin_pays())
    }

    /// For a caller waiting on a result while more jobs run than there are CPUs: spin, then
    /// block. A yield would hand the CPU to those jobs and wait behind them.
    pub(crate) fn spin_only() -> Self {
        Self::with_limit(SPIN_STEPS, spin_pays())
    }

    /// For a worker waiting for its next job: spin, yield only briefly, then sleep. Yielding
    /// longer would take the CPU from the threads producing the jobs.
    pub(crate) fn short() -> Self {
        Self::with_limit(SPIN_STEPS + WORKER_YIELD_STEPS, spin_pays())
    }

    /// Waits a little before the caller checks its condition again.
    pub(crate) fn snooze(&self) {
        let step = self.step.get();
        if step < SPIN_STEPS {
            for _ in 0..SPINS_PER_STEP {
                hint::spin_loop();
            }
        } else {
            thread::yield_now();
        }
        self.step.set(step + 1);
    }

    /// `true` if the next [`snooze`](Self::snooze) yields the CPU instead of spinning.
    pub(crate) fn yields_next(&self) -> bool {
        self.step.get() >= SPIN_STEPS
    }

    /// `true` once spinning is no longer worth it.
    pub(crate) fn is_completed(&self) -> bool {
        // Under loom a spin is only more interleavings to explore: block at once.
        cfg!(offthread_loom) || self.step.get() >= self.limit
    }
}

#[cfg(all(test, not(offthread_loom)))]
mod tests {
    use super::*;

    #[test]
    fn spins_first_where_spinning_pays() {
        let backoff = Backoff::with_limit(SPIN_STEPS + YIELD_STEPS, true);
        for _ in 0..SPIN_STEPS {
            assert!(!backoff.yields_next());
            backoff.snooze();
        }
        for _ in 0..YIELD_STEPS {
            assert!(backoff.yields_next() && !backoff.is_completed());
            backoff.snooze();
        }
        assert!(backoff.is_completed());
    }

    #[test]
    fn never_spins_on_one_cpu() {
        let backoff = Backoff::with_limit(SPIN_STEPS + YIELD_STEPS, false);
        for _ in 0..YIELD_STEPS {
            assert!(backoff.yields_next() && !backoff.is_completed());
            backoff.snooze();
        }
        assert!(backoff.is_completed());
        // A wait that would only spin blocks at once.
        assert!(Backoff::with_limit(SPIN_STEPS, false).is_completed());
    }
}
