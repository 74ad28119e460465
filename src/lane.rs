//! Serial lanes: jobs that run one at a time, in submission order, on the shared pool.
//!
//! A lane is a FIFO of jobs that waits *outside* the pool's queue. Only its head is in the
//! pool's queue (or running); when the head resolves — it ran, was cancelled or expired — the
//! next job moves into the pool's queue, under the pool's lock. So a lane never holds a worker
//! while it has nothing to run, costs one small allocation, and its order is exact. Lane jobs
//! count against the pool's `queue_capacity` like any other queued job.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::handle::Handle;
use crate::job::LaneQueue;
use crate::options::JobBuilder;
use crate::pool::{Pool, StatePool};
use crate::surface::lane_surface;

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
pub struct Lane {
    pool: Pool,
    queue: Arc<LaneQueue<()>>,
}

/// A serial lane on a [`StatePool`], made by [`StatePool::lane`]; as [`Lane`], with jobs that
/// receive the worker's state. Successive jobs of one lane may run on different workers, and
/// so see different states.
pub struct StateLane<S: 'static> {
    pool: StatePool<S>,
    queue: Arc<LaneQueue<S>>,
}

lane_surface! { impl [] Lane; captures []; pool Pool; args (); }
lane_surface! { impl [S: 'static] StateLane<S>; captures [S]; pool StatePool<S>; args (&mut S); }

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lane").finish_non_exhaustive()
    }
}

impl<S: 'static> fmt::Debug for StateLane<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateLane").finish_non_exhaustive()
    }
}
