//! `PoolBuilder`: configuration, validation, and starting the first workers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::WorkerPriority;
use crate::engine::worker;
use crate::engine::{Config, Hook, Shared, SpawnHook};
use crate::error::{BuildError, BuildErrorKind};
use crate::handle::detached;
use crate::pool::{Pool, StatePool};

/// Default `max_workers`: blocking calls mostly wait, so many may usefully wait at once (tokio
/// allows 512, smol's `blocking` 500); growth past the CPU count happens only while workers
/// block (see "How the pool grows").
const MAX_WORKERS: usize = 128;
/// Default `queue_capacity`.
const QUEUE_CAPACITY: usize = 8192;
/// Default `keep_alive`.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Configures and builds a [`Pool`] or a [`StatePool`].
///
/// | setting | default | why |
/// |---|---|---|
/// | [`min_workers`](Self::min_workers) | 1 | one thread always ready; a failed spawn can never strand a job |
/// | [`max_workers`](Self::max_workers) | 128 | blocking calls mostly *wait* (disk, network, locks): many may wait at once |
/// | [`keep_alive`](Self::keep_alive) | 10 s | threads beyond `min_workers` retire after this long idle |
/// | [`queue_capacity`](Self::queue_capacity) | 8192 | room for bursts; a flood beyond it is backpressure, not memory |
/// | [`thread_name`](Self::thread_name) | `"offthread"` | threads are named `offthread-1`, `offthread-2`, … |
/// | [`stack_size`](Self::stack_size) | the platform's | |
/// | [`worker_priority`](Self::worker_priority) | `Normal` | `Low` for a pool that serves a UI thread |
///
/// **How the pool grows.** A job that finds no idle worker (and no worker about to look at the
/// queue) starts a new thread at once while there are fewer workers than CPUs: that serves
/// CPU-ish calls. So does a job that the worker about to take it leaves untaken because it is
/// off its CPU (noticed by a caller awaiting the job; see [`JobFuture`](crate::JobFuture)).
/// Past the CPU count the pool grows by what its workers are *doing*, not by how
/// long their jobs run:
/// - the pool's monitor thread (one per pool, parked while the pool keeps up, so it costs no
///   CPU) looks every 200 µs while jobs wait and no worker is idle. A worker asleep in the OS
///   in its job (disk, network, a lock, a sleep) earns one more worker, up to `max_workers`; a
///   worker on the CPU earns none. So a flood of short blocking calls (a 100 µs read, a cold
///   SQLite page) grows the pool within a millisecond or two, while CPU-bound jobs, however
///   long, never oversubscribe the CPU. While every worker computes, the monitor looks less
///   often (down to every 5 ms).
/// - On Linux the monitor reads each worker's state from `/proc` (one open file per worker
///   thread). Where the OS does not say, it starts a worker when no job has finished for 1 ms
///   while jobs wait.
///
/// Either way, queued jobs never wait forever behind blocked workers while `max_workers`
/// allows more, even if no further submit comes. Threads beyond `min_workers` retire after
/// `keep_alive` idle.
///
/// **Bounded queue.** At most `queue_capacity` jobs wait. A cancelled job frees its slot at
/// once. A full queue makes [`Pool::submit`] wait (spinning briefly, then parking),
/// [`Pool::try_submit`] refuse, and [`Pool::submit_async`] pend.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let pool = offthread::Pool::builder()
///     .min_workers(2)
///     .max_workers(16)
///     .queue_capacity(1000)
///     .keep_alive(Duration::from_secs(30))
///     .thread_name("db-io")
///     .on_thread_start(|| { /* set up thread-locals, logging, … */ })
///     .build()?;
/// assert_eq!(pool.stats().workers, 2);
/// # Ok::<(), offthread::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder {
    min_workers: usize,
    max_workers: usize,
    keep_alive: Duration,
    queue_capacity: usize,
    /// `None`: `max_workers - 1`, at least 1.
    background_workers: Option<usize>,
    thread_name: String,
    stack_size: Option<usize>,
    priority: WorkerPriority,
    on_start: Option<Hook>,
    on_stop: Option<Hook>,
    before_spawn: Option<SpawnHook>,
    /// A worker blocked in a nested wait may be replaced by an extra one (see `Handle::wait`).
    lend: bool,
    /// Grow past the CPU count behind long jobs (see `Config::grow_behind_long_jobs`).
    grow_behind_long_jobs: bool,
}

impl PoolBuilder {
    pub(crate) fn new() -> Self {
        Self {
            min_workers: 1,
            max_workers: MAX_WORKERS,
            keep_alive: KEEP_ALIVE,
            queue_capacity: QUEUE_CAPACITY,
            background_workers: None,
            thread_name: "offthread".to_owned(),
            stack_size: None,
            priority: WorkerPriority::Normal,
            on_start: None,
            on_stop: None,
            before_spawn: None,
            lend: true,
            grow_behind_long_jobs: false,
        }
    }

    /// Past the CPU count, grow while long jobs that compute hold the workers and jobs wait,
    /// instead of by blocked workers (for a database's readers: a long read must not keep the
    /// short ones behind it waiting, and readers waiting on SQLite's locks are no reason to
    /// grow).
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "sqlite-system")),
        allow(dead_code)
    )]
    pub(crate) fn grow_behind_long_jobs(mut self) -> Self {
        self.grow_behind_long_jobs = true;
        self
    }

    /// No extra worker for a nested wait: a job that waits on a job of its own pool gets
    /// `JobError::WouldDeadlock` at once instead (for pools whose every worker must be one of
    /// exactly `max_workers`, like a database's single writer).
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "sqlite-system")),
        allow(dead_code)
    )]
    pub(crate) fn no_lending(mut self) -> Self {
        self.lend = false;
        self
    }

    /// Workers started at build time and never retired. At least 1, at most `max_workers`.
    pub fn min_workers(mut self, n: usize) -> Self {
        self.min_workers = n;
        self
    }

    /// The most worker threads the pool will run at once. At least 1.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = n;
        self
    }

    /// How long a worker beyond `min_workers` stays idle before its thread exits.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// The most jobs that may wait for a worker; 0 is taken as 1, as for every capacity in
    /// this crate (an inbox's, a stream's buffer, a database's queue). A full queue makes
    /// `submit` wait, `try_submit` refuse, and `submit_async` pend.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }

    /// The most workers that may run [`Background`](crate::Priority::Background) jobs at once.
    /// At least 1, at most `max_workers`. Default: `max_workers - 1` (at least 1), so with
    /// two or more workers one always stays free for interactive and normal jobs. See
    /// [`Priority`](crate::Priority) for the whole rule.
    ///
    /// # Examples
    /// ```
    /// // Of 8 workers, background work may use at most 2; 6 stay for everything else.
    /// let pool = offthread::Pool::builder().max_workers(8).background_workers(2).build()?;
    /// # drop(pool);
    /// # Ok::<(), offthread::BuildError>(())
    /// ```
    pub fn background_workers(mut self, n: usize) -> Self {
        self.background_workers = Some(n);
        self
    }

    /// The prefix of worker thread names: `{name}-{n}`. Must not contain a NUL byte.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// The stack size of worker threads, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// How the OS schedules the pool's threads beside the application's own; see
    /// [`WorkerPriority`]. Default [`WorkerPriority::Normal`]; a pool that serves a UI thread
    /// wants [`WorkerPriority::Low`], so that waking a worker never costs the UI thread its CPU.
    ///
    /// # Examples
    /// ```
    /// use offthread::{Pool, WorkerPriority};
    /// let ui_pool = Pool::builder().worker_priority(WorkerPriority::Low).build()?;
    /// assert_eq!(ui_pool.submit(|| 6 * 7)?.wait(), Ok(42));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker_priority(mut self, priority: WorkerPriority) -> Self {
        self.priority = priority;
        self
    }

    /// Runs `hook` on each worker thread when it starts, before it takes any job. A panic in it
    /// is a start failure: at build time a [`BuildError`], later a worker that never starts
    /// (counted in [`Stats::start_failures`](crate::Stats::start_failures)).
    pub fn on_thread_start(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_start = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on each worker thread just before it exits (a panic in it is caught).
    pub fn on_thread_stop(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_stop = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` before the pool starts each of its threads (workers and its monitor thread),
    /// with the thread's name. An `Err` refuses that start exactly as if the OS had refused
    /// it: at build time, a [`BuildError`]; later, a start failure counted in
    /// [`Stats::start_failures`](crate::Stats::start_failures) while the pool goes on with the
    /// workers it has (and its monitor tries again while jobs wait with nobody to take them).
    ///
    /// For thread budgets, logging, and testing how a program behaves when threads cannot be
    /// created.
    ///
    /// The hook runs on whichever thread starts the worker: `build`, a worker, the monitor,
    /// a submitter (an interactive job that finds no idle worker, or a pool below its CPU
    /// count starts one on the spot) — `try_submit` included, so a slow hook makes those calls
    /// slow — or a caller whose awaited job a worker off its CPU left untaken. Keep it short,
    /// and never block in it.
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let started = std::sync::Arc::new(AtomicUsize::new(0));
    /// let count = started.clone();
    /// let pool = offthread::Pool::builder()
    ///     .before_spawn(move |name| {
    ///         count.fetch_add(1, Ordering::SeqCst);
    ///         assert!(name.starts_with("offthread-"));
    ///         Ok(())
    ///     })
    ///     .build()?;
    /// assert_eq!(started.load(Ordering::SeqCst), 2); // the first worker and the monitor
    /// # drop(pool);
    /// # Ok::<(), offthread::BuildError>(())
    /// ```
    pub fn before_spawn(
        mut self,
        hook: impl Fn(&str) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.before_spawn = Some(Arc::new(hook));
        self
    }

    /// Builds a [`Pool`] and starts its `min_workers` threads.
    ///
    /// # Errors
    /// A [`BuildError`] if `max_workers` or `min_workers` is 0, if
    /// `min_workers > max_workers`, if the thread name holds a NUL byte, if the OS refuses a
    /// thread, or if a start hook panics. Threads already started are stopped first.
    pub fn build(self) -> Result<Pool, BuildError> {
        self.start(|| ()).map(Pool::from_shared)
    }

    /// Builds a [`StatePool`]: each worker runs `init` on its own thread when it starts and
    /// keeps the value for its whole life; jobs receive `&mut S`. `S` need not be `Send`.
    ///
    /// # Errors
    /// As [`build`](Self::build), and a [`BuildError`] if `init` panics on one of the first
    /// `min_workers` threads. (A later worker whose `init` panics simply does not start.)
    ///
    /// # Examples
    /// ```
    /// let err = offthread::Pool::builder()
    ///     .build_with_state(|| -> u8 { panic!("no connection") })
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("no connection"));
    /// ```
    pub fn build_with_state<S, I>(self, init: I) -> Result<StatePool<S>, BuildError>
    where
        S: 'static,
        I: Fn() -> S + Send + Sync + 'static,
    {
        self.start(init).map(StatePool::from_shared)
    }

    fn validate(&self) -> Result<(), BuildErrorKind> {
        if self.max_workers == 0 {
            return Err(BuildErrorKind::ZeroMaxWorkers);
        }
        if self.min_workers == 0 {
            return Err(BuildErrorKind::ZeroMinWorkers);
        }
        if self.min_workers > self.max_workers {
            return Err(BuildErrorKind::MinAboveMax {
                min: self.min_workers,
                max: self.max_workers,
            });
        }
        if let Some(n) = self.background_workers
            && (n == 0 || n > self.max_workers)
        {
            return Err(BuildErrorKind::BackgroundWorkers {
                n,
                max: self.max_workers,
            });
        }
        if self.thread_name.contains('\0') {
            return Err(BuildErrorKind::NulInThreadName);
        }
        Ok(())
    }

    fn start<S, I>(self, init: I) -> Result<Arc<Shared<S>>, BuildError>
    where
        S: 'static,
        I: Fn() -> S + Send + Sync + 'static,
    {
        self.validate().map_err(BuildError::new)?;
        let min = self.min_workers;
        let background_workers = self
            .background_workers
            .unwrap_or(self.max_workers.saturating_sub(1).max(1));
        let shared = Shared::new(Config {
            min_workers: min,
            max_workers: self.max_workers,
            eager_workers: num_cpus::get().max(1),
            keep_alive: self.keep_alive,
            queue_capacity: self.queue_capacity,
            background_workers,
            thread_name: self.thread_name,
            stack_size: self.stack_size,
            priority: self.priority,
            on_start: self.on_start,
            on_stop: self.on_stop,
            before_spawn: self.before_spawn,
            lend: self.lend,
            grow_behind_long_jobs: self.grow_behind_long_jobs,
            init: Box::new(init),
        });
        // Reserve every first worker before starting any, so none of them can retire below
        // `min_workers` while the others are still starting.
        {
            let mut st = shared.state.lock();
            st.workers = min;
            st.starting = min;
        }
        // Grown as threads start: a huge `min_workers` ends in the OS refusing a thread (a
        // `BuildError`), never in an allocation of that size.
        let mut readies = Vec::new();
        let mut failure = None;
        for started in 0..min {
            let (tx, rx) = detached(0);
            match worker::spawn(&shared, Some(tx)) {
                Ok(()) => readies.push(rx),
                Err(e) => {
                    let mut st = shared.state.lock();
                    st.workers -= min - started;
                    st.starting -= min - started;
                    failure = Some(BuildErrorKind::Spawn(e));
                    break;
                }
            }
        }
        for ready in readies {
            let started = ready
                .wait()
                .unwrap_or_else(|_| Err("worker thread exited while starting".to_owned()));
            if let Err(msg) = started
                && failure.is_none()
            {
                failure = Some(BuildErrorKind::StartPanicked(msg));
            }
        }
        if failure.is_none()
            && let Err(e) = worker::spawn_monitor(&shared)
        {
            failure = Some(BuildErrorKind::Spawn(e));
        }
        match failure {
            None => Ok(shared),
            Some(kind) => {
                // Partial construction: stop the workers that did start, then report.
                let _ = shared.shutdown(true, None);
                Err(BuildError::new(kind))
            }
        }
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("min_workers", &self.min_workers)
            .field("max_workers", &self.max_workers)
            .field("keep_alive", &self.keep_alive)
            .field("queue_capacity", &self.queue_capacity)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}
