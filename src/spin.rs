//! Bounded spinning before sleeping, for the two waits where the other side usually answers
//! within microseconds: a worker waiting for its next job, and a caller waiting on a result.

use std::cell::Cell;
use std::hint;
use std::thread;

/// Spin `2^step` times per step up to `SPIN_LIMIT`, then yield the CPU until `YIELD_LIMIT`.
const SPIN_LIMIT: u32 = 6;
const YIELD_LIMIT: u32 = 10;

/// Exponential backoff: a few microseconds of spinning and yielding, then `is_completed`.
#[derive(Debug)]
pub(crate) struct Backoff {
    step: Cell<u32>,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { step: Cell::new(0) }
    }

    /// Waits a little longer than last time.
    pub(crate) fn snooze(&self) {
        let step = self.step.get();
        if step <= SPIN_LIMIT {
            for _ in 0..1u32 << step {
                hint::spin_loop();
            }
        } else {
            thread::yield_now();
        }
        if step <= YIELD_LIMIT {
            self.step.set(step + 1);
        }
    }

    /// `true` once spinning is no longer worth it: block instead.
    pub(crate) fn is_completed(&self) -> bool {
        self.step.get() > YIELD_LIMIT
    }
}
