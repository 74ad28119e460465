//! The pool's counters, the `Stats` snapshot, and `RunningJob`.

use std::sync::Arc;
use std::time::Duration;

/// A snapshot of a pool's counters, from [`Pool::stats`](crate::Pool::stats).
///
/// The snapshot is taken under the pool's lock, so it is a consistent cut: at every instant
///
/// ```text
/// submitted == queued + running + completed + panicked + cancelled + expired + shut_down
/// ```
///
/// A worker records a job's outcome just after delivering it, so a handle can resolve a moment
/// before `completed` counts it; after [`shutdown`](crate::Pool::shutdown) returns, the counts
/// are final.
///
/// # Examples
/// ```
/// let pool = offthread::Pool::new();
/// pool.submit(|| ())?.wait()?;
/// pool.shutdown();
/// let s = pool.stats();
/// assert_eq!((s.submitted, s.completed, s.queued, s.running), (1, 1, 0, 0));
/// assert_eq!(s.submitted, s.resolved() + s.queued as u64 + s.running as u64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Worker threads alive (including ones still starting; not counting the pool's monitor
    /// thread).
    pub workers: usize,
    /// Workers not running a job.
    pub idle: usize,
    /// Jobs accepted and waiting for a worker.
    pub queued: usize,
    /// Jobs running now.
    pub running: usize,
    /// Jobs accepted, ever.
    pub submitted: u64,
    /// Jobs that ran and returned a value.
    pub completed: u64,
    /// Jobs that ran and panicked.
    pub panicked: u64,
    /// Jobs cancelled while queued (they never ran).
    pub cancelled: u64,
    /// Jobs whose start deadline passed while queued (they never ran).
    pub expired: u64,
    /// Jobs resolved `ShutDown` by `shutdown_now` (they never ran).
    pub shut_down: u64,
    /// Submissions refused (queue full, timed out, or pool shut down); not part of `submitted`.
    pub rejected: u64,
    /// Worker threads that failed to start (the OS refused, or a start hook or state init
    /// panicked). The pool goes on with the workers it has.
    pub start_failures: u64,
    /// Panics caught in completion callbacks ([`JobBuilder::on_complete`](crate::JobBuilder::on_complete))
    /// and inbox wake hooks ([`Inbox::with_wake`](crate::Inbox::with_wake)). The job itself is
    /// counted by its own outcome; the worker survived. (Counted outside the lock, so not part
    /// of the consistent cut.)
    pub callback_panics: u64,
}

impl Stats {
    /// Jobs that have resolved: completed, panicked, cancelled, expired or shut down.
    pub fn resolved(&self) -> u64 {
        self.completed + self.panicked + self.cancelled + self.expired + self.shut_down
    }
}

/// The counters, kept inside the pool's lock (so a snapshot is a consistent cut and no atomic is
/// touched on the hot path: every update rides on a lock the pool takes anyway).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) submitted: u64,
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cancelled: u64,
    pub(crate) expired: u64,
    pub(crate) shut_down: u64,
    pub(crate) rejected: u64,
    pub(crate) start_failures: u64,
}

impl Counts {
    /// Jobs that ran to the end (value or panic); the progress signal for growing the pool.
    pub(crate) fn finished(&self) -> u64 {
        self.completed + self.panicked
    }
}

/// A named job that is running now, from [`Pool::running_jobs`](crate::Pool::running_jobs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunningJob {
    /// The name given with [`JobBuilder::name`](crate::JobBuilder::name).
    pub name: Arc<str>,
    /// How long it has been running.
    pub elapsed: Duration,
}
