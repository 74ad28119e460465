//! `Handle<T>`: the caller's side of one job — wait, poll, await, cancel.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::blocking;
use crate::error::JobError;
use crate::job::{self, CancelOutcome, Control, Outcome};
use crate::job::{Detached, HeldOutcome, OutcomeSlot, Resolver};

/// The caller's side of one submitted job.
///
/// A handle comes back at once from a submission. Its job resolves exactly once, to its value
/// or a [`JobError`]; the handle gets that outcome in whichever way suits the caller:
///
/// | call | blocks? | when nothing is ready yet |
/// |---|---|---|
/// | [`wait`](Self::wait) | yes, until the job resolves | — |
/// | [`wait_timeout`](Self::wait_timeout) / [`wait_deadline`](Self::wait_deadline) | up to the limit | hands the handle back |
/// | [`try_wait`](Self::try_wait) | never | hands the handle back |
/// | `.await` | never blocks its thread | `Pending`; any executor wakes it |
/// | [`is_finished`](Self::is_finished) | never | `false` |
///
/// Dropping a handle *detaches* the job: it still runs, and its value is dropped on the worker
/// (or, if the value had already arrived, by the thread that drops the handle). Cancel first if
/// it should not run.
///
/// `Handle` can NOT be `Clone`: exactly one party receives the outcome. It is `Send` and `Sync`
/// (a job's value is always `Send`): another thread may look at it or cancel it meanwhile.
///
/// # Examples
/// ```
/// let pool = offthread::Pool::new();
/// let handle = pool.submit(|| 6 * 7)?;
/// assert_eq!(handle.wait(), Ok(42));
///
/// // The same handle, awaited from any executor:
/// let handle = pool.submit(|| "async")?;
/// assert_eq!(pollster::block_on(handle), Ok("async"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a handle detaches its job; call `wait` or `.await` to get its outcome"]
pub struct Handle<T> {
    /// The job, holding the slot its outcome arrives in.
    job: JobLink<T>,
}

/// A handle's (or its future's) reference to the job. Dropping it gives the outcome up (one
/// that already arrived is dropped here) and tells the job, which cancels itself if it was
/// submitted with cancel-on-drop and has not started.
struct JobLink<T>(Arc<dyn HeldOutcome<T>>);

impl<T> JobLink<T> {
    fn slot(&self) -> &OutcomeSlot<T> {
        self.0.slot()
    }

    fn control(&self) -> &dyn Control {
        &*self.0
    }
}

impl<T> Drop for JobLink<T> {
    fn drop(&mut self) {
        drop(self.0.slot().abandon());
        self.0.handle_dropped();
    }
}

impl<T> Handle<T> {
    pub(crate) fn new(job: Arc<dyn HeldOutcome<T>>) -> Self {
        Self { job: JobLink(job) }
    }

    /// `true` if this wait could never end because the caller is a job of the lane this job
    /// waits in (the job waited on starts only after the caller ends).
    fn waits_on_own_lane(&self) -> bool {
        // The caller's lane first: outside a lane job (most waits) that is one thread-local read.
        let lane = job::current_lane();
        lane != 0 && lane == self.job.control().lane_id() && !self.job.slot().is_resolved()
    }

    /// Blocks until the job resolves and returns its outcome.
    ///
    /// - `Ok(value)`: the job ran and returned.
    /// - `Err(JobError::Panicked(msg))`: the job panicked (the worker survived).
    /// - `Err(JobError::Cancelled)`: it was cancelled before it started.
    /// - `Err(JobError::ShutDown)`: `shutdown_now` removed it before it started.
    ///
    /// Blocks the calling thread: from async code, `.await` the handle instead. The wait spins
    /// for a few microseconds before it parks, because short jobs often finish in that time.
    ///
    /// # Waiting from inside the pool
    /// A job (or a completion callback, a wake hook, …) may wait on another job of its own
    /// pool: the waiting worker is counted as blocked, and while it waits the pool may run one
    /// extra worker beyond `max_workers` in its place (started at once if jobs wait and no
    /// worker is idle). So the job waited on always finds a worker, even on a
    /// `max_workers(1)` pool, and the wait ends. The pool's thread count can exceed
    /// `max_workers` by the number of its threads blocked in such waits. Every blocking call
    /// of the crate follows this rule (see `GUARANTEES.md`).
    ///
    /// Two waits could never end, and return [`JobError::WouldDeadlock`] at once instead: a
    /// job (or its callback) of a serial lane waiting on a later job of the same lane, and a
    /// job of a pool that must not grow (the SQLite writer) waiting on a job of that same
    /// pool.
    ///
    /// (`.await` inside a job, through an executor the job runs itself, is not such a wait:
    /// the pool cannot see it. Nor are two pools whose jobs wait on each other.)
    ///
    /// # Errors
    /// The [`JobError`] of a job that produced no value, as above.
    ///
    /// # Examples
    /// ```
    /// let pool = offthread::Pool::new();
    /// assert_eq!(pool.submit(|| 1 + 1)?.wait(), Ok(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(self) -> Outcome<T> {
        let slot = self.job.slot();
        if slot.is_resolved() {
            // Often the case for a caller that submitted many jobs before it waits on them.
            return slot.take();
        }
        if self.waits_on_own_lane() {
            return Err(JobError::WouldDeadlock);
        }
        // A job that runs, or that is next in line, often ends within microseconds: looking
        // again costs less than parking and being woken. A job behind others is not looked
        // for: the caller parks at once and leaves the CPU to the workers (and, on a busy
        // machine, to the threads that have work).
        let control = self.job.control();
        if control.starts_next() {
            // Yielding on a crowded machine puts the caller behind every job that computes,
            // for a time slice or more: then it only spins before it parks.
            let backoff = if control.crowded() {
                Backoff::spin_only()
            } else {
                Backoff::new()
            };
            // On one CPU no worker spins while this thread runs: there is nothing to nudge.
            let mut nudged = !crate::backoff::spin_pays();
            while !slot.is_resolved() && !backoff.is_completed() {
                if !nudged && backoff.yields_next() {
                    // Spun for about a microsecond: a job still queued with a worker spinning
                    // for it was left by a worker off its CPU (see `JobFuture`). An idle
                    // worker is woken for it; none is started, as the yields below hand the
                    // CPU to that worker if it shares this one.
                    nudged = true;
                    if control.starts_soon() {
                        control.nudge(false);
                    }
                }
                backoff.snooze();
            }
        }
        let _blocked = if slot.is_resolved() {
            None
        } else {
            match blocking::enter(control.pool_id()) {
                Ok(blocked) => Some(blocked),
                Err(blocking::WouldDeadlock) => return Err(JobError::WouldDeadlock),
            }
        };
        slot.take()
    }

    /// Waits at most `timeout` for the job to resolve.
    ///
    /// - `Ok(outcome)`: the job resolved (see [`wait`](Self::wait) for the outcomes).
    /// - `Err(handle)`: it had not resolved in time; the handle comes back, still usable.
    ///
    /// A timeout too large to represent waits without limit.
    ///
    /// # Errors
    /// The handle itself, when the job did not resolve in time.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let pool = offthread::Pool::new();
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let handle = pool.submit(move || gate.recv().is_ok())?;
    /// let handle = handle.wait_timeout(Duration::from_millis(1)).unwrap_err(); // not yet
    /// release.send(())?;
    /// assert_eq!(handle.wait_timeout(Duration::from_secs(60)).ok(), Some(Ok(true)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(self, timeout: Duration) -> Result<Outcome<T>, Self> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => Ok(self.wait()),
        }
    }

    /// Waits until `deadline` at the latest for the job to resolve.
    ///
    /// - `Ok(outcome)`: the job resolved (see [`wait`](Self::wait) for the outcomes).
    /// - `Err(handle)`: it had not resolved by the deadline; the handle comes back, still usable.
    ///
    /// # Errors
    /// The handle itself, when the job did not resolve in time.
    pub fn wait_deadline(self, deadline: Instant) -> Result<Outcome<T>, Self> {
        if self.waits_on_own_lane() {
            return Ok(Err(JobError::WouldDeadlock));
        }
        let slot = self.job.slot();
        let blocked = if slot.is_resolved() {
            None
        } else {
            match blocking::enter(self.job.control().pool_id()) {
                Ok(blocked) => Some(blocked),
                Err(blocking::WouldDeadlock) => return Ok(Err(JobError::WouldDeadlock)),
            }
        };
        let outcome = slot.take_until(deadline);
        drop(blocked);
        outcome.ok_or(self)
    }

    /// Returns the outcome if the job has resolved; never blocks.
    ///
    /// - `Ok(outcome)`: the job resolved (see [`wait`](Self::wait) for the outcomes).
    /// - `Err(handle)`: not yet; the handle comes back, still usable.
    ///
    /// This is the call for a frame loop: check each pending handle once per frame.
    ///
    /// # Errors
    /// The handle itself, when the job has not resolved yet.
    ///
    /// # Examples
    /// ```
    /// let pool = offthread::Pool::new();
    /// let mut pending = vec![pool.submit(|| 1)?, pool.submit(|| 2)?];
    /// let mut sum = 0;
    /// while !pending.is_empty() {
    ///     // one "frame": take what is ready, keep the rest
    ///     pending = pending
    ///         .into_iter()
    ///         .filter_map(|h| match h.try_wait() {
    ///             Ok(outcome) => { sum += outcome.unwrap(); None }
    ///             Err(h) => Some(h),
    ///         })
    ///         .collect();
    /// }
    /// assert_eq!(sum, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_wait(self) -> Result<Outcome<T>, Self> {
        self.job.slot().try_take().ok_or(self)
    }

    /// Turns the handle into a [`Promise`](crate::Promise), whose result a frame loop looks at
    /// by reference each frame ([`Promise::ready`](crate::Promise::ready)).
    pub fn into_promise(self) -> crate::Promise<Outcome<T>>
    where
        T: Send + 'static,
    {
        crate::Promise::from(self)
    }

    /// `true` once the job has resolved, so that `wait` and `try_wait` return at once.
    /// Never blocks.
    pub fn is_finished(&self) -> bool {
        self.job.slot().is_resolved()
    }

    /// Cancels the job, as far as that is still possible. Never blocks on the job.
    ///
    /// - [`CancelOutcome::Dequeued`]: it was queued; it will never run, its queue slot is free at
    ///   once, and the handle resolves [`JobError::Cancelled`].
    /// - [`CancelOutcome::Requested`]: it is running; [`is_cancelled`](crate::is_cancelled)
    ///   now returns `true` inside it. A running job cannot be interrupted, only asked to stop;
    ///   the handle resolves with whatever the job returns.
    /// - [`CancelOutcome::Finished`]: it had already resolved; nothing changed.
    ///
    /// # Examples
    /// ```
    /// use offthread::{CancelOutcome, JobError, Pool};
    /// let pool = Pool::builder().max_workers(1).build()?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.submit(move || gate.recv().ok())?;
    /// let queued = pool.submit(|| unreachable!("never runs"))?;
    /// assert_eq!(queued.cancel(), CancelOutcome::Dequeued);
    /// assert_eq!(queued.wait(), Err::<(), _>(JobError::Cancelled));
    /// release.send(())?;
    /// busy.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) -> CancelOutcome {
        self.job.control().cancel()
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// `handle.await` resolves to the job's [`Outcome`], under any executor (tokio, smol,
/// async-std, `pollster`, a hand-written `block_on`): the worker wakes the task's waker.
impl<T> IntoFuture for Handle<T> {
    type Output = Outcome<T>;
    type IntoFuture = JobFuture<T>;

    fn into_future(self) -> JobFuture<T> {
        JobFuture {
            job: self.job,
            polled: false,
        }
    }
}

/// How long the first poll of a [`JobFuture`] looks for the outcome before it registers the
/// waker.
const FIRST_POLL_SPIN: std::time::Duration = std::time::Duration::from_micros(2);

/// How long a worker that looks for work takes to pick a job up while it holds its CPU.
const PICK_UP: std::time::Duration = std::time::Duration::from_micros(1);

/// The future of a [`Handle`], made by `.await` or [`IntoFuture::into_future`].
///
/// Its first poll looks for the outcome for up to 2 µs while a worker runs the job (or is
/// spinning to take it), since a short job often finishes in that time; parking the task and
/// being woken would cost more. A job that waits behind others is not looked for: the poll
/// registers the waker at once. Later polls never spin. If the spinning worker has not taken
/// the job within 1 µs, it is off its CPU — most often behind the very thread that polls, on
/// the same CPU — and the poll has an idle worker woken, or one started up to the number of
/// CPUs, to take the job instead. A process that may use one CPU only never spins, and its
/// first poll registers the waker at once: there the worker runs only once this thread leaves
/// the CPU, and a poll that yielded the CPU to it instead would hold the executor for a whole
/// time slice whenever the job ran long.
///
/// Dropping it detaches the job, as dropping the handle does. Like every future, it must not
/// be polled again once it returned `Ready`; if it is, it returns
/// `Ready(Err(JobError::ShutDown))` again and again (the outcome was already taken), never
/// panicking and never pending forever.
#[must_use = "futures do nothing unless polled"]
pub struct JobFuture<T> {
    job: JobLink<T>,
    /// Polled before: the first poll's short spin is over.
    polled: bool,
}

impl<T> JobFuture<T> {
    /// Cancels the job; see [`Handle::cancel`].
    pub fn cancel(&self) -> CancelOutcome {
        self.job.control().cancel()
    }
}

impl<T> Future for JobFuture<T> {
    type Output = Outcome<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<T>> {
        let looking = |this: &Self| {
            !cfg!(offthread_loom)
                && !this.job.slot().is_resolved()
                && this.job.control().starts_soon()
        };
        if !std::mem::replace(&mut self.polled, true)
            && crate::backoff::spin_pays()
            && looking(&self)
        {
            // A short job that a worker runs, or is about to take, is often about to finish:
            // looking again for a moment costs less than parking the task and being woken (a
            // job behind others is not looked for at all). The outcome is looked at every two
            // `PAUSE`s; the clock and the job's state, which cost more, every 16 looks.
            let start = std::time::Instant::now();
            let mut nudged = false;
            'spin: loop {
                for _ in 0..16 {
                    if self.job.slot().is_resolved() {
                        break 'spin;
                    }
                    std::hint::spin_loop();
                    std::hint::spin_loop();
                }
                if !looking(&self) {
                    break;
                }
                let looked = start.elapsed();
                if !nudged && looked >= PICK_UP {
                    // The worker that looked for work has not taken this job: it is off its
                    // CPU (often behind this very thread). Have another take it.
                    nudged = true;
                    self.job.control().nudge(true);
                }
                if looked >= FIRST_POLL_SPIN {
                    break;
                }
            }
        }
        self.job.slot().poll_take(cx.waker())
    }
}

impl<T> fmt::Debug for JobFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobFuture").finish_non_exhaustive()
    }
}

/// A handle whose job resolved before it was ever queued (used by `offthread::run` on a pool
/// that was shut down).
pub(crate) fn resolved<T: Send + 'static>(outcome: Outcome<T>) -> Handle<T> {
    let (resolver, handle) = detached(0);
    resolver.send(outcome);
    handle
}

/// A handle fed by a [`Resolver`] outside the pool's jobs (a write session's calls), served
/// by the pool `pool_id` (0: none) for the blocking rule. It cannot be cancelled through the
/// pool; a resolver dropped unsent resolves it `ShutDown`.
pub(crate) fn detached<T: Send + 'static>(pool_id: usize) -> (Resolver<T>, Handle<T>) {
    let slot = Arc::new(Detached::new(pool_id));
    (Resolver(slot.clone()), Handle::new(slot))
}
