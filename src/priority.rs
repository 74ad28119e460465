//! `WorkerPriority`: how the OS schedules a pool's threads beside the application's own.

/// How the OS schedules a pool's worker threads (and its monitor thread) beside the
/// application's other threads; set with
/// [`PoolBuilder::worker_priority`](crate::PoolBuilder::worker_priority) (and
/// [`DbBuilder::worker_priority`](crate::sqlite::DbBuilder::worker_priority)).
///
/// A thread that wakes a worker — a UI thread submitting a job, or taking an item from a stream
/// whose producer waits for room — can lose its CPU to that worker on the spot: the OS
/// scheduler prefers a thread that just woke. On a machine with few cores, that is a frame
/// that takes milliseconds although it only submitted and polled. `Low` workers never take the
/// CPU from a normal thread that wants it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkerPriority {
    /// The priority of the thread that started the worker (the default).
    #[default]
    Normal,
    /// Below every normal thread: the workers run only on CPU time that the application's
    /// other threads leave free. Linux: `SCHED_IDLE`; macOS, the BSDs and Windows: the lowest
    /// thread priority. Right for a pool that serves a UI thread, which sleeps between frames;
    /// wrong where normal threads keep every CPU busy (the workers would wait for them, and
    /// so would every caller waiting on a job). Best effort: where the OS refuses, the worker
    /// runs at normal priority.
    Low,
}

impl WorkerPriority {
    /// Applies the priority to the calling thread (a worker or monitor that just started).
    pub(crate) fn apply(self) {
        if self == Self::Low
            && let Err(e) = lower_this_thread()
        {
            crate::trace::priority_refused(&e);
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn lower_this_thread() -> Result<(), thread_priority::Error> {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    )
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn lower_this_thread() -> Result<(), thread_priority::Error> {
    thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
}
