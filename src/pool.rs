//! `Pool` and `StatePool<S>`: the submission family, shutdown and stats. Both are thin fronts on
//! one generic core; they differ only in what a job's closure receives.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::builder::PoolBuilder;
use crate::delivery::ToHandle;
use crate::engine::Opts;
use crate::engine::{Refusal, Shared, Wait};
use crate::error::{ShutdownTimeout, SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::handle::Handle;
use crate::job::{JobRef, Outcome, Plain, Stateful};
use crate::lane::{Lane, StateLane};
use crate::options::JobBuilder;
use crate::stats::{RunningJob, Stats};

/// A bounded pool of worker threads for blocking calls.
///
/// Submitting returns a [`Handle`] at once; the job runs on a worker thread. The pool is bounded
/// twice: at most `max_workers` threads, and at most `queue_capacity` jobs waiting for one.
/// When the queue is full, [`submit`](Self::submit) waits for room (backpressure),
/// [`try_submit`](Self::try_submit) refuses at once, and
/// [`submit_async`](Self::submit_async) waits without blocking its thread. A refused job always
/// comes back inside the error.
///
/// `Pool` is a cheap handle: clones share one pool. Dropping the last clone closes intake without
/// blocking; the jobs already accepted still run and resolve, then the workers exit.
///
/// For workers that each own a value (a database connection, a `!Send` client), see
/// [`StatePool`].
///
/// # Examples
/// ```
/// use offthread::Pool;
/// let pool = Pool::new();
/// let handles: Vec<_> = (0..4).map(|i| pool.submit(move || i * 10)).collect::<Result<_, _>>()?;
/// let values: Vec<u32> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
/// assert_eq!(values, [0, 10, 20, 30]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Pool {
    core: Core<()>,
}

/// A pool whose workers each own a value of type `S`, built on the worker's own thread by the
/// init closure given to [`PoolBuilder::build_with_state`]. Jobs receive `&mut S`.
///
/// Because `S` is built and used only on its worker thread, it need not be `Send`: this is how
/// a `!Send` client, or one database connection per worker, gets a non-blocking face.
///
/// The submission family, shutdown and stats are those of [`Pool`]; only the closure differs.
///
/// # Examples
/// ```
/// use std::rc::Rc; // not Send
/// let pool = offthread::Pool::builder()
///     .max_workers(2)
///     .build_with_state(|| Rc::new(String::from("client")))?;
/// let len = pool.submit(|client: &mut Rc<String>| client.len())?.wait()?;
/// assert_eq!(len, 6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StatePool<S: 'static> {
    core: Core<S>,
}

impl<S: 'static> Clone for StatePool<S> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
        }
    }
}

/// The part every clone shares. Dropping the last one closes intake (without waiting); workers
/// hold the `Shared` directly, so they finish the queue after that.
struct Owner<S: 'static> {
    shared: Arc<Shared<S>>,
}

impl<S: 'static> Drop for Owner<S> {
    fn drop(&mut self) {
        self.shared.close(false);
    }
}

pub(crate) struct Core<S: 'static>(Arc<Owner<S>>);

impl<S: 'static> Clone for Core<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S: 'static> Core<S> {
    pub(crate) fn shared(&self) -> &Arc<Shared<S>> {
        &self.0.shared
    }

    /// The pool's identity for the blocking rule (see `blocking.rs`).
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "sqlite-system")),
        allow(dead_code)
    )]
    pub(crate) fn id(&self) -> usize {
        crate::blocking::pool_id(&**self.shared())
    }

    fn shutdown_until(&self, now: bool, deadline: Option<Instant>) -> Result<(), ShutdownTimeout> {
        self.shared().shutdown(now, deadline)
    }
}

pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    // Overflow means "no deadline": wait without limit.
    Instant::now().checked_add(timeout)
}

fn no_limit(result: Result<(), ShutdownTimeout>) {
    debug_assert!(result.is_ok(), "a wait without deadline cannot time out");
}

pub(crate) fn submit_error<F>(why: Refusal, f: F) -> SubmitError<F> {
    match why {
        Refusal::WouldDeadlock => SubmitError::WouldDeadlock(f),
        // A wait without deadline ends only with room, or with shutdown.
        Refusal::ShutDown | Refusal::Full | Refusal::Timeout => SubmitError::ShutDown(f),
    }
}

pub(crate) fn try_submit_error<F>(why: Refusal, f: F) -> TrySubmitError<F> {
    match why {
        Refusal::Full | Refusal::Timeout => TrySubmitError::Full(f),
        // `try_submit` never waits, so it never needs refusing as a deadlock.
        Refusal::ShutDown | Refusal::WouldDeadlock => TrySubmitError::ShutDown(f),
    }
}

pub(crate) fn timeout_error<F>(why: Refusal, f: F) -> SubmitTimeoutError<F> {
    match why {
        Refusal::Full | Refusal::Timeout => SubmitTimeoutError::Timeout(f),
        Refusal::ShutDown => SubmitTimeoutError::ShutDown(f),
        Refusal::WouldDeadlock => SubmitTimeoutError::WouldDeadlock(f),
    }
}

impl Pool {
    /// A pool with the default configuration (see [`PoolBuilder`] for the defaults and why).
    ///
    /// # Panics
    /// If the OS refuses to start the pool's first thread. Use [`Pool::builder`] and
    /// [`PoolBuilder::build`] to get that as an error instead.
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("offthread: could not start a worker thread")
    }

    /// A builder to configure a pool: worker limits, queue capacity, thread names, hooks.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    pub(crate) fn from_shared(shared: Arc<Shared<()>>) -> Self {
        Self {
            core: Core(Arc::new(Owner { shared })),
        }
    }

    /// Queues `f`, waiting for room while the queue is full (backpressure).
    ///
    /// - `Ok(handle)`: accepted; it will resolve exactly once.
    /// - `Err(SubmitError::ShutDown(f))`: the pool was shut down; `f` comes back.
    /// - `Err(SubmitError::WouldDeadlock(f))`: called from a job of a serial lane, the queue
    ///   is full, and every slot holds a later job of that lane (none can start before the
    ///   caller returns); `f` comes back at once instead of waiting forever.
    ///
    /// Blocks only while the queue is full. From async code use
    /// [`submit_async`](Self::submit_async), and from a frame loop
    /// [`try_submit`](Self::try_submit). A job of this pool that waits here is counted as
    /// blocked, so a lent worker takes queued jobs and makes room.
    ///
    /// # Errors
    /// [`SubmitError::ShutDown`] with the job, if the pool no longer accepts jobs;
    /// [`SubmitError::WouldDeadlock`] with the job, as above.
    ///
    /// # Examples
    /// ```
    /// let pool = offthread::Pool::new();
    /// let handle = pool.submit(|| std::fs::metadata(".").is_ok())?;
    /// assert_eq!(handle.wait(), Ok(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A job crosses to another thread, so it must be `Send`; the compiler says so:
    ///
    /// ```compile_fail
    /// let pool = offthread::Pool::new();
    /// let not_send = std::rc::Rc::new(1);
    /// let _ = pool.submit(move || *not_send); // error: `Rc<i32>` cannot be sent between threads
    /// ```
    ///
    /// (For a value that must stay on one thread, build it on the worker with
    /// [`PoolBuilder::build_with_state`].)
    pub fn submit<F, T>(&self, f: F) -> Result<Handle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .submit_job(Plain(f), Opts::default(), ToHandle, Wait::Until(None))
            .map_err(|(job, why)| submit_error(why, job.0))
    }

    /// Queues `f` if there is room now; never blocks.
    ///
    /// - `Ok(handle)`: accepted.
    /// - `Err(TrySubmitError::Full(f))`: the queue holds `queue_capacity` jobs; `f` comes back.
    /// - `Err(TrySubmitError::ShutDown(f))`: the pool was shut down; `f` comes back.
    ///
    /// # Errors
    /// As listed above; the job is always handed back.
    pub fn try_submit<F, T>(&self, f: F) -> Result<Handle<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .submit_job(Plain(f), Opts::default(), ToHandle, Wait::Never)
            .map_err(|(job, why)| try_submit_error(why, job.0))
    }

    /// Queues `f`, waiting at most `timeout` for room. A timeout too large to represent waits
    /// without limit.
    ///
    /// - `Ok(handle)`: accepted.
    /// - `Err(SubmitTimeoutError::Timeout(f))`: no room in time; `f` comes back.
    /// - `Err(SubmitTimeoutError::ShutDown(f))`: the pool was shut down; `f` comes back.
    ///
    /// # Errors
    /// As listed above; the job is always handed back.
    pub fn submit_timeout<F, T>(
        &self,
        f: F,
        timeout: Duration,
    ) -> Result<Handle<T>, SubmitTimeoutError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .submit_job(
                Plain(f),
                Opts::default(),
                ToHandle,
                Wait::Until(deadline_after(timeout)),
            )
            .map_err(|(job, why)| timeout_error(why, job.0))
    }

    /// Queues `f`, waiting until `deadline` at the latest for room; as
    /// [`submit_timeout`](Self::submit_timeout).
    ///
    /// # Errors
    /// [`SubmitTimeoutError::Timeout`] or [`SubmitTimeoutError::ShutDown`], with the job.
    pub fn submit_deadline<F, T>(
        &self,
        f: F,
        deadline: Instant,
    ) -> Result<Handle<T>, SubmitTimeoutError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .submit_job(
                Plain(f),
                Opts::default(),
                ToHandle,
                Wait::Until(Some(deadline)),
            )
            .map_err(|(job, why)| timeout_error(why, job.0))
    }

    /// Queues `f` from async code: the returned future waits for room without blocking its
    /// thread, under any executor, and resolves to the job's handle.
    ///
    /// - `Ok(handle)`: accepted (`.await` the handle for the outcome).
    /// - `Err(SubmitError::ShutDown(f))`: the pool was shut down; `f` comes back.
    ///
    /// Dropping the future before it resolves submits nothing and drops `f`.
    ///
    /// # Errors
    /// The future resolves to [`SubmitError::ShutDown`] with the job if the pool was shut down.
    ///
    /// # Examples
    /// ```
    /// let pool = offthread::Pool::new();
    /// let value = pollster::block_on(async {
    ///     let handle = pool.submit_async(|| 5).await?;
    ///     Ok::<_, Box<dyn std::error::Error>>(handle.await?)
    /// })?;
    /// assert_eq!(value, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_async<F, T>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<Handle<T>, SubmitError<F>>> + Send + Unpin + use<F, T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .submit_job_async(Plain(f), Opts::default(), ToHandle)
            .map_refused(|job: Plain<F>| SubmitError::ShutDown(job.0))
    }

    /// Stops intake, lets the queued jobs run, and waits for every worker to exit.
    ///
    /// Idempotent, and callable from any clone. Blocks until the running and queued jobs are
    /// done. Called from inside one of this pool's jobs, it waits for every *other* worker
    /// (and counts the caller as blocked, so queued jobs still find a worker); called from a
    /// callback that the pool's monitor thread runs (an expired job's), it does not wait for
    /// the monitor. It always returns.
    ///
    /// # Examples
    /// ```
    /// let pool = offthread::Pool::new();
    /// let handle = pool.submit(|| 1)?;
    /// pool.shutdown();
    /// assert_eq!(handle.wait(), Ok(1));         // accepted jobs still resolve
    /// assert!(pool.submit(|| 2).is_err());      // intake is closed
    /// pool.shutdown();                          // a second call is a no-op
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) {
        no_limit(self.core.shutdown_until(false, None));
    }

    /// As [`shutdown`](Self::shutdown), but waits at most `timeout`.
    ///
    /// # Errors
    /// [`ShutdownTimeout`] with the jobs still running and queued at the deadline; they still
    /// resolve, only the wait ended.
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        self.core.shutdown_until(false, deadline_after(timeout))
    }

    /// As [`shutdown`](Self::shutdown), but waits until `deadline` at the latest.
    ///
    /// # Errors
    /// [`ShutdownTimeout`], as for [`shutdown_timeout`](Self::shutdown_timeout).
    pub fn shutdown_deadline(&self, deadline: Instant) -> Result<(), ShutdownTimeout> {
        self.core.shutdown_until(false, Some(deadline))
    }

    /// Stops intake, resolves every queued job [`JobError::ShutDown`](crate::JobError::ShutDown)
    /// (they never run), and waits for the running ones to finish.
    ///
    /// Idempotent; a later [`shutdown`](Self::shutdown) is a no-op.
    pub fn shutdown_now(&self) {
        no_limit(self.core.shutdown_until(true, None));
    }

    /// As [`shutdown_now`](Self::shutdown_now), but waits at most `timeout` for running jobs.
    ///
    /// # Errors
    /// [`ShutdownTimeout`] with the jobs still running at the deadline.
    pub fn shutdown_now_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        self.core.shutdown_until(true, deadline_after(timeout))
    }

    /// A snapshot of the pool's counters; see [`Stats`]. Never blocks beyond a brief lock.
    pub fn stats(&self) -> Stats {
        self.core.shared().stats()
    }

    /// A job with options — priority, start deadline, cancel-on-drop, a name, delivery to an
    /// [`Inbox`](crate::Inbox) or a callback — submitted with any call of the submission
    /// family. See [`JobBuilder`].
    ///
    /// # Examples
    /// ```
    /// use offthread::{Pool, Priority};
    /// let pool = Pool::new();
    /// let handle = pool.job(|| 1).priority(Priority::Interactive).try_submit()?;
    /// assert_eq!(handle.wait(), Ok(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn job<F>(&self, f: F) -> JobBuilder<'_, Self, F> {
        JobBuilder::new(self, f, None)
    }

    /// A new serial lane on this pool: jobs submitted through it run one at a time, in order,
    /// on this pool's workers. See [`Lane`].
    pub fn lane(&self) -> Lane {
        Lane::new(self.clone())
    }

    /// The named jobs ([`JobBuilder::name`]) running now, with how long each has run. Jobs
    /// without a name are not listed (see [`Stats::running`] for the count of all).
    ///
    /// # Examples
    /// ```
    /// let pool = offthread::Pool::new();
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// let job = pool.job(move || { started_tx.send(()).unwrap(); gate.recv().ok() })
    ///     .name("reindex")
    ///     .submit()?;
    /// started.recv()?;
    /// assert_eq!(&*pool.running_jobs()[0].name, "reindex");
    /// release.send(())?;
    /// job.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn running_jobs(&self) -> Vec<RunningJob> {
        self.core.shared().running_jobs()
    }

    pub(crate) fn core(&self) -> &Core<()> {
        &self.core
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<S: 'static> StatePool<S> {
    pub(crate) fn from_shared(shared: Arc<Shared<S>>) -> Self {
        Self {
            core: Core(Arc::new(Owner { shared })),
        }
    }

    /// Queues `f`, waiting for room; `f` runs with the worker's state. See [`Pool::submit`].
    ///
    /// # Errors
    /// [`SubmitError::ShutDown`] with the job, if the pool no longer accepts jobs.
    pub fn submit<F, T>(&self, f: F) -> Result<Handle<T>, SubmitError<F>>
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .submit_job(Stateful(f), Opts::default(), ToHandle, Wait::Until(None))
            .map_err(|(job, why)| submit_error(why, job.0))
    }

    /// Queues `f` if there is room now; never blocks. See [`Pool::try_submit`].
    ///
    /// # Errors
    /// [`TrySubmitError::Full`] or [`TrySubmitError::ShutDown`], with the job.
    pub fn try_submit<F, T>(&self, f: F) -> Result<Handle<T>, TrySubmitError<F>>
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .submit_job(Stateful(f), Opts::default(), ToHandle, Wait::Never)
            .map_err(|(job, why)| try_submit_error(why, job.0))
    }

    /// Queues `f`, waiting at most `timeout` for room. See [`Pool::submit_timeout`].
    ///
    /// # Errors
    /// [`SubmitTimeoutError::Timeout`] or [`SubmitTimeoutError::ShutDown`], with the job.
    pub fn submit_timeout<F, T>(
        &self,
        f: F,
        timeout: Duration,
    ) -> Result<Handle<T>, SubmitTimeoutError<F>>
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .submit_job(
                Stateful(f),
                Opts::default(),
                ToHandle,
                Wait::Until(deadline_after(timeout)),
            )
            .map_err(|(job, why)| timeout_error(why, job.0))
    }

    /// Queues `f`, waiting until `deadline` at the latest for room. See [`Pool::submit_deadline`].
    ///
    /// # Errors
    /// [`SubmitTimeoutError::Timeout`] or [`SubmitTimeoutError::ShutDown`], with the job.
    pub fn submit_deadline<F, T>(
        &self,
        f: F,
        deadline: Instant,
    ) -> Result<Handle<T>, SubmitTimeoutError<F>>
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .submit_job(
                Stateful(f),
                Opts::default(),
                ToHandle,
                Wait::Until(Some(deadline)),
            )
            .map_err(|(job, why)| timeout_error(why, job.0))
    }

    /// Queues `f` from async code, waiting for room without blocking. See [`Pool::submit_async`].
    ///
    /// # Errors
    /// The future resolves to [`SubmitError::ShutDown`] with the job if the pool was shut down.
    pub fn submit_async<F, T>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<Handle<T>, SubmitError<F>>> + Send + Unpin + use<F, T, S>
    where
        F: FnOnce(&mut S) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .submit_job_async(Stateful(f), Opts::default(), ToHandle)
            .map_refused(|job: Stateful<F>| SubmitError::ShutDown(job.0))
    }

    /// Runs `f` once on the state of every worker running now, and returns one handle per
    /// worker.
    ///
    /// Broadcast jobs go to each worker's own queue, ahead of the shared queue, and do not count
    /// against `queue_capacity`. Workers started later build a fresh state with the init closure
    /// and do not see earlier broadcasts. On a pool that was shut down, the result is empty.
    ///
    /// # Examples
    /// ```
    /// let pool = offthread::Pool::builder()
    ///     .min_workers(2)
    ///     .max_workers(2)
    ///     .build_with_state(|| 0u32)?;
    /// let handles = pool.broadcast(|n: &mut u32| { *n += 1; *n });
    /// assert_eq!(handles.len(), 2);
    /// for h in handles {
    ///     assert_eq!(h.wait(), Ok(1));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn broadcast<F, T>(&self, f: F) -> Vec<Handle<T>>
    where
        F: Fn(&mut S) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let f = Arc::new(f);
        let make = || {
            let f = f.clone();
            let (tx, rx) = oneshot::channel::<Outcome<T>>();
            (Stateful(move |state: &mut S| f(state)), tx, rx)
        };
        self.core
            .shared()
            .broadcast(make)
            .into_iter()
            .map(|(cell, rx)| Handle::new(rx, JobRef::new(cell)))
            .collect()
    }

    /// Stops intake, runs what is queued, waits for every worker. See [`Pool::shutdown`].
    pub fn shutdown(&self) {
        no_limit(self.core.shutdown_until(false, None));
    }

    /// As [`shutdown`](Self::shutdown), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`ShutdownTimeout`] with the jobs still running and queued at the deadline.
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        self.core.shutdown_until(false, deadline_after(timeout))
    }

    /// As [`shutdown`](Self::shutdown), waiting until `deadline` at the latest.
    ///
    /// # Errors
    /// [`ShutdownTimeout`] with the jobs still running and queued at the deadline.
    pub fn shutdown_deadline(&self, deadline: Instant) -> Result<(), ShutdownTimeout> {
        self.core.shutdown_until(false, Some(deadline))
    }

    /// Stops intake, resolves queued jobs `ShutDown`, waits for running ones. See
    /// [`Pool::shutdown_now`].
    pub fn shutdown_now(&self) {
        no_limit(self.core.shutdown_until(true, None));
    }

    /// As [`shutdown_now`](Self::shutdown_now), waiting at most `timeout` for running jobs.
    ///
    /// # Errors
    /// [`ShutdownTimeout`] with the jobs still running at the deadline.
    pub fn shutdown_now_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        self.core.shutdown_until(true, deadline_after(timeout))
    }

    /// A snapshot of the pool's counters; see [`Stats`].
    pub fn stats(&self) -> Stats {
        self.core.shared().stats()
    }

    /// A job with options, submitted with any call of the submission family; see
    /// [`JobBuilder`] and [`Pool::job`].
    pub fn job<F>(&self, f: F) -> JobBuilder<'_, Self, F> {
        JobBuilder::new(self, f, None)
    }

    /// A new serial lane on this pool; see [`StateLane`].
    pub fn lane(&self) -> StateLane<S> {
        StateLane::new(self.clone())
    }

    /// The named jobs running now; see [`Pool::running_jobs`].
    pub fn running_jobs(&self) -> Vec<RunningJob> {
        self.core.shared().running_jobs()
    }

    pub(crate) fn core(&self) -> &Core<S> {
        &self.core
    }
}

impl<S: 'static> fmt::Debug for StatePool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatePool")
            .field("stats", &self.stats())
            .finish()
    }
}
