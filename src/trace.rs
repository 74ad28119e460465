//! What the pool tells a [`tracing`](https://docs.rs/tracing) subscriber, with the feature
//! `tracing`: a span per job and events for refusals, panics, jobs dropped unrun, and worker
//! threads starting and stopping. Without the feature every item here is empty and inlined
//! away, so the pool's code calls them unconditionally.
//!
//! Everything is emitted outside the pool's lock (a subscriber may write to a file) under the
//! target `offthread`, at `DEBUG` except panics (`WARN`).

use std::fmt;
use std::time::Duration;

/// A job's span: opened on the submitting thread as a child of the span current there, entered
/// on the worker while the job runs and delivers its outcome, closed when the job's cell goes.
/// Fields: `name` and `lane` (when the job has them), `priority`, `queue_wait` (submission to
/// start) and `run_time` (start to end).
#[derive(Clone)]
pub(crate) struct JobSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl JobSpan {
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    #[inline]
    pub(crate) fn new(name: Option<&str>, priority: impl fmt::Debug, lane: usize) -> Self {
        #[cfg(feature = "tracing")]
        {
            use tracing::field::Empty;
            let span = tracing::debug_span!(
                target: "offthread",
                "job",
                name = Empty,
                priority = ?priority,
                lane = Empty,
                queue_wait = Empty,
                run_time = Empty,
            );
            if !span.is_disabled() {
                if let Some(name) = name {
                    span.record("name", name);
                }
                if lane != 0 {
                    span.record("lane", format_args!("{lane:#x}"));
                }
            }
            Self { span }
        }
        #[cfg(not(feature = "tracing"))]
        Self {}
    }

    /// Runs `f` (the job and its delivery) inside the span, after recording its queue wait.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    #[inline]
    pub(crate) fn run<R>(&self, queue_wait: Duration, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        {
            self.span
                .record("queue_wait", tracing::field::debug(queue_wait));
            self.span.in_scope(f)
        }
        #[cfg(not(feature = "tracing"))]
        f()
    }

    /// Records how long the job ran.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    #[inline]
    pub(crate) fn ran(&self, run_time: Duration) {
        #[cfg(feature = "tracing")]
        self.span
            .record("run_time", tracing::field::debug(run_time));
    }

    /// A job that never ran: `why` is the error it resolved with (cancelled, expired, shut
    /// down), as an event inside its span.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    #[inline]
    pub(crate) fn dropped(&self, why: &dyn fmt::Display) {
        #[cfg(feature = "tracing")]
        self.span
            .in_scope(|| tracing::debug!(target: "offthread", reason = %why, "job dropped unrun"));
    }
}

impl fmt::Debug for JobSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobSpan")
    }
}

/// A job panicked; called inside its span.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn panicked(message: &dyn fmt::Display) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "offthread", panic = %message, "job panicked");
}

/// A submission was refused; `why` says why (queue full, timed out, shut down, would
/// deadlock). The job went back to the caller.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn refused(why: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "offthread", reason = why, "submission refused");
}

/// A worker thread started and is about to serve.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn worker_started(worker: usize) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "offthread", worker, "worker started");
}

/// A worker thread failed to start (the OS refused, or a start hook or state init panicked).
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn worker_start_failed(why: &dyn fmt::Display) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "offthread", error = %why, "worker failed to start");
}

/// The OS refused to lower a worker's priority (`WorkerPriority::Low`): it runs at normal
/// priority.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn priority_refused(why: &dyn fmt::Debug) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "offthread", error = ?why, "worker priority not lowered");
}

/// A worker thread stopped: idle past its keep-alive (`retired`), or the pool closed.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn worker_stopped(worker: usize, retired: bool) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "offthread", worker, retired, "worker stopped");
}
