//! Serial lanes: jobs that run one at a time, in submission order, on the shared pool.
//!
//! A lane is a FIFO of jobs that waits *outside* the pool's queue. Only its head is in the
//! pool's queue (or running); when the head resolves — it ran, was cancelled or expired — the
//! next job moves into the pool's queue, under the pool's lock. So a lane never holds a worker
//! while it has nothing to run, costs one small allocation, and its order is exact. Lane jobs
//! count against the pool's `queue_capacity` like any other queued job.

use std::fmt;
use std::sync::Arc;

use crate::error::{SubmitError, TrySubmitError};
use crate::handle::Handle;
use crate::job::LaneQueue;
use crate::options::JobBuilder;
use crate::pool::{Pool, StatePool};

/// A serial lane on a [`Pool`], made by [`Pool::lane`]: jobs submitted through it run one at a
/// time, in submission order, on the pool's workers, without a thread of their own.
///
/// - **Order.** A lane job starts only after the previous one resolved (ran, was cancelled, or
///   expired). Priorities order a lane's jobs against *other* work, never within the lane.
/// - **Cheap.** An idle lane holds no worker and no thread; thousands of lanes are fine.
/// - **Bounded.** Lane jobs count against the pool's `queue_capacity`; the submission family
///   applies backpressure as usual.
/// - **Nested waits.** A lane job that waits on a later job of its *own* lane would wait
///   forever; that wait returns [`JobError::WouldDeadlock`](crate::JobError::WouldDeadlock) at
///   once instead.
///
/// Clones share one lane. A lane keeps its pool open, as a clone of the pool would.
///
/// # Examples
/// ```
/// use std::sync::{Arc, Mutex};
/// let pool = offthread::Pool::new();
/// let lane = pool.lane();
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let handles: Vec<_> = (0..5)
///     .map(|i| {
///         let log = log.clone();
///         lane.submit(move || log.lock().unwrap().push(i))
///     })
///     .collect::<Result<_, _>>()?;
/// for h in handles {
///     h.wait()?;
/// }
/// assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 4]); // in order, one at a time
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Lane {
    pool: Pool,
    queue: Arc<LaneQueue<()>>,
}

impl Lane {
    pub(crate) fn new(pool: Pool) -> Self {
        Self {
            pool,
            queue: LaneQueue::new(),
        }
    }

    /// A job on this lane with options (priority, deadline, inbox, …); see [`JobBuilder`].
    pub fn job<F>(&self, f: F) -> JobBuilder<'_, Pool, F> {
        JobBuilder::new(&self.pool, f, Some(self.queue.clone()))
    }

    /// Queues `f` on this lane, waiting for room in the pool's queue; as [`Pool::submit`].
    ///
    /// # Errors
    /// [`SubmitError::ShutDown`] with the job, if the pool no longer accepts jobs.
    pub fn submit<F, T>(&self, f: F) -> Result<Handle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.job(f).submit()
    }

    /// Queues `f` on this lane if there is room now; never blocks; as [`Pool::try_submit`].
    ///
    /// # Errors
    /// [`TrySubmitError::Full`] or [`TrySubmitError::ShutDown`], with the job.
    pub fn try_submit<F, T>(&self, f: F) -> Result<Handle<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.job(f).try_submit()
    }
}

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lane").finish_non_exhaustive()
    }
}

/// A serial lane on a [`StatePool`], made by [`StatePool::lane`]; as [`Lane`], with jobs that
/// receive the worker's state. Successive jobs of one lane may run on different workers, and
/// so see different states.
pub struct StateLane<S: 'static> {
    pool: StatePool<S>,
    queue: Arc<LaneQueue<S>>,
}

impl<S: 'static> Clone for StateLane<S> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            queue: self.queue.clone(),
        }
    }
}

impl<S: 'static> StateLane<S> {
    pub(crate) fn new(pool: StatePool<S>) -> Self {
        Self {
            pool,
            queue: LaneQueue::new(),
        }
    }

    /// A job on this lane with options; see [`JobBuilder`].
    pub fn job<F>(&self, f: F) -> JobBuilder<'_, StatePool<S>, F> {
        JobBuilder::new(&self.pool, f, Some(self.queue.clone()))
    }

    /// Queues `f` on this lane, waiting for room; as [`StatePool::submit`].
    ///
    /// # Errors
    /// [`SubmitError::ShutDown`] with the job, if the pool no longer accepts jobs.
    pub fn submit<F, T>(&self, f: F) -> Result<Handle<T>, SubmitError<F>>
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.job(f).submit()
    }

    /// Queues `f` on this lane if there is room now; never blocks.
    ///
    /// # Errors
    /// [`TrySubmitError::Full`] or [`TrySubmitError::ShutDown`], with the job.
    pub fn try_submit<F, T>(&self, f: F) -> Result<Handle<T>, TrySubmitError<F>>
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.job(f).try_submit()
    }
}

impl<S: 'static> fmt::Debug for StateLane<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateLane").finish_non_exhaustive()
    }
}
