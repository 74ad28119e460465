//! The state machine that makes every accepted job resolve exactly once.
//!
//! ```text
//!   LANED ──────▶ QUEUED ────────────────────▶ RUNNING ───────────▶ FINISHED
//!     │  its lane's   │     claim (pool lock)     │ cancel()             ▲
//!     │  turn         │                           ▼                      │
//!     │               │                       RUNNING_CANCEL ────────────┘
//!     │ cancel / shutdown_now / expire (pool lock)
//!     ▼               ▼
//!   DROPPED   (never ran; resolved Cancelled / ShutDown / Expired)
//! ```
//!
//! `LANED` is a job of a serial lane waiting behind its lane's running job: it is not in the
//! pool's queue yet. Every transition out of `LANED` and `QUEUED` happens under the pool's lock,
//! so the queue's accounting and the job's state never disagree; the party that wins the
//! transition is the only one that takes the closure and delivers the outcome.

use crate::sync::{AtomicU8, Ordering};

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const RUNNING_CANCEL: u8 = 2;
const FINISHED: u8 = 3;
const DROPPED: u8 = 4;
const LANED: u8 = 5;

/// What [`Handle::cancel`](crate::Handle::cancel) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The job was still queued: it will never run, its queue slot is free, and its handle
    /// resolves [`JobError::Cancelled`](crate::JobError::Cancelled).
    Dequeued,
    /// The job is running: its flag is raised, and the job sees it through
    /// [`is_cancelled`](crate::is_cancelled). A running job cannot be interrupted, only asked
    /// to stop; it still resolves with whatever it returns.
    Requested,
    /// The job had already finished or been resolved; nothing changed.
    Finished,
}

/// Where a waiting job sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// In the pool's queue.
    Queue,
    /// In its lane, behind the lane's running job.
    Lane,
}

/// The atomic state of one job, and its priority. Lives inside its [`JobCell`].
#[derive(Debug)]
pub(crate) struct JobState {
    state: AtomicU8,
    pub(crate) priority: Priority,
    /// Dropping the caller's handle (or ticket) cancels the job if it has not started.
    cancel_on_drop: bool,
}

impl JobState {
    pub(crate) fn new(priority: Priority, cancel_on_drop: bool) -> Self {
        Self {
            state: AtomicU8::new(QUEUED),
            priority,
            cancel_on_drop,
        }
    }

    /// Claims a queued job for running. Call under the pool lock.
    pub(crate) fn claim(&self) -> bool {
        // ORDERING: the pool lock orders this against every other transition out of QUEUED;
        // Acquire pairs with nothing else, Relaxed would do, but the cost is nil on x86.
        self.state
            .compare_exchange(QUEUED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Marks a waiting job as never going to run, and says where it was. Call under the pool
    /// lock.
    pub(crate) fn drop_waiting(&self) -> Option<Place> {
        // ORDERING: as in `claim`.
        let cas = |from| {
            self.state
                .compare_exchange(from, DROPPED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        };
        if cas(QUEUED) {
            Some(Place::Queue)
        } else if cas(LANED) {
            Some(Place::Lane)
        } else {
            None
        }
    }

    /// Marks a job as waiting in its lane. Call under the pool lock, before the job is shared.
    pub(crate) fn set_laned(&self) {
        // ORDERING: under the pool lock.
        self.state.store(LANED, Ordering::Relaxed);
    }

    /// LANED → QUEUED: the job's lane moves it into the pool's queue. Call under the pool lock.
    pub(crate) fn unlane(&self) -> bool {
        // ORDERING: under the pool lock.
        self.state
            .compare_exchange(LANED, QUEUED, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Still queued or laned. Read under the pool lock.
    pub(crate) fn is_waiting(&self) -> bool {
        // ORDERING: read under the pool lock, which orders it.
        matches!(self.state.load(Ordering::Relaxed), QUEUED | LANED)
    }

    /// `true` once a worker has claimed the job (it runs, or ran).
    pub(crate) fn is_started(&self) -> bool {
        // ORDERING: a hint for a caller deciding whether to spin.
        matches!(
            self.state.load(Ordering::Relaxed),
            RUNNING | RUNNING_CANCEL | FINISHED
        )
    }

    pub(crate) fn is_queued(&self) -> bool {
        // ORDERING: read under the pool lock, which orders it (or as a hint, see `is_started`).
        self.state.load(Ordering::Relaxed) == QUEUED
    }

    /// Cancels as far as still possible: a waiting job is handed to `dequeue` (which flips it
    /// under the pool lock and resolves it; `false` if a worker or a shutdown got there
    /// first), a running one gets its flag raised.
    pub(crate) fn cancel(&self, mut dequeue: impl FnMut() -> bool) -> CancelOutcome {
        loop {
            // ORDERING: Acquire so that FINISHED, once seen, orders after the job's effects.
            match self.state.load(Ordering::Acquire) {
                QUEUED | LANED => {
                    if dequeue() {
                        return CancelOutcome::Dequeued;
                    }
                    // Claimed or dropped meanwhile: look again.
                }
                RUNNING => {
                    // ORDERING: Relaxed; the flag carries no data.
                    if self
                        .state
                        .compare_exchange(
                            RUNNING,
                            RUNNING_CANCEL,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        return CancelOutcome::Requested;
                    }
                }
                RUNNING_CANCEL => return CancelOutcome::Requested,
                _ => return CancelOutcome::Finished,
            }
        }
    }

    /// `true` if dropping the caller's handle should dequeue the job: it was submitted with
    /// cancel-on-drop and has not started. A first look; the dequeue decides under the lock.
    pub(crate) fn drops_with_handle(&self) -> bool {
        // ORDERING: a first look, confirmed under the pool lock.
        self.cancel_on_drop && matches!(self.state.load(Ordering::Relaxed), QUEUED | LANED)
    }

    /// RUNNING (or RUNNING_CANCEL) → FINISHED, just before the outcome is delivered.
    pub(crate) fn mark_finished(&self) {
        // ORDERING: Release so a `cancel` that reads FINISHED also sees the job's effects.
        self.state.store(FINISHED, Ordering::Release);
    }

    pub(crate) fn cancel_requested(&self) -> bool {
        // ORDERING: a flag with no data behind it; Relaxed is enough, the job polls it.
        self.state.load(Ordering::Relaxed) == RUNNING_CANCEL
    }
}

/// How urgently a job should start. Set with [`JobBuilder::priority`](crate::JobBuilder::priority); the default is
/// [`Normal`](Self::Normal).
///
/// **The rule.** A free worker takes the oldest `Interactive` job, else the oldest `Normal` one,
/// else the oldest `Background` one, with two exceptions that keep every job moving:
/// - **No starvation.** When 16 jobs of higher priority have started while a lower-priority job
///   waited, the oldest job of that lower class starts next. So a queued job waits behind at
///   most 16 higher-priority starts per turn, however many keep arriving.
/// - **Background never holds every worker.** At most
///   [`background_workers`](crate::PoolBuilder::background_workers) workers run `Background`
///   jobs at once (default: `max_workers - 1`, at least 1), and an `Interactive` job that finds
///   no idle worker starts a new one at once (up to `max_workers`) instead of waiting for the
///   pool's growth rules. A flood of background work therefore cannot delay interactive work
///   by more than a thread start.
///
/// Priorities order the pool's queue only; a running job is never paused for a more urgent one.
///
/// # Examples
/// ```
/// use offthread::{Pool, Priority};
/// let pool = Pool::new();
/// let thumb = pool.job(|| "thumbnail").priority(Priority::Interactive).submit()?;
/// let index = pool.job(|| "index").priority(Priority::Background).submit()?;
/// assert_eq!(thumb.wait(), Ok("thumbnail"));
/// assert_eq!(index.wait(), Ok("index"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    /// Someone is waiting on it now (a click, a frame): taken before everything else.
    Interactive,
    /// Ordinary work.
    #[default]
    Normal,
    /// Work nobody waits for (indexing, prefetching, cleanup): runs when the others leave room,
    /// and never on every worker.
    Background,
}

impl Priority {
    /// Index in the queue's per-priority arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}
