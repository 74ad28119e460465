//! A type-erased job: its closure, where its outcome goes, and its state (see `state.rs`).

mod meta;
mod sink;
mod slot;
mod state;

pub(crate) use meta::{LaneQueue, Meta};
pub(crate) use sink::{Handoff, OutcomeSink};
pub(crate) use sink::{OffWorker, Room, drop_quietly, panic_message};
pub(crate) use slot::{Detached, HeldOutcome, OutcomeSlot, Resolver, SlotSink};
pub use state::{CancelOutcome, Priority};
pub(crate) use state::{JobState, Place};

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::JobError;
use crate::sync::Mutex;
use crate::trace::{self, JobSpan};

/// What a job resolves to: its value, or why there is none.
pub type Outcome<T> = Result<T, JobError>;

/// A job's closure, called with the worker's state (`()` for a plain pool).
pub(crate) trait JobFn<S, T>: Send + 'static {
    fn call(self, state: &mut S) -> T;
}

/// A zero-argument closure of a plain [`Pool`](crate::Pool).
pub(crate) struct Plain<F>(pub(crate) F);

impl<F, T> JobFn<(), T> for Plain<F>
where
    F: FnOnce() -> T + Send + 'static,
{
    fn call(self, _: &mut ()) -> T {
        (self.0)()
    }
}

/// A closure of a [`StatePool`](crate::StatePool), given the worker's state.
pub(crate) struct Stateful<F>(pub(crate) F);

impl<S, F, T> JobFn<S, T> for Stateful<F>
where
    F: FnOnce(&mut S) -> T + Send + 'static,
{
    fn call(self, state: &mut S) -> T {
        (self.0)(state)
    }
}

/// What a job needs from its pool, free of the pool's other types.
pub(crate) trait JobPool<S>: Send + Sync {
    /// Flips a waiting job (queued, or in its lane) to `DROPPED` under the pool lock and frees
    /// its slot. Returns `false` if the job had already left.
    fn cancel_queued(&self, job: &JobState, lane: Option<&Arc<LaneQueue<S>>>) -> bool;
    /// Counts a panic caught in a completion callback or an inbox's wake hook.
    fn callback_panicked(&self) {}
    /// The pool's identity, for the blocking rule (see `blocking.rs`).
    fn pool_id(&self) -> usize {
        0
    }
    /// A worker is looking for a job right now (a hint).
    fn takes_jobs_now(&self) -> bool {
        false
    }
    /// The queue holds one job at most (a hint): a job in it is next in line.
    fn holds_one_job_at_most(&self) -> bool {
        false
    }
    /// More jobs run than the machine has CPUs (a hint).
    fn crowded(&self) -> bool {
        false
    }
    /// A queued job was not taken although a worker counted as about to take it: that worker
    /// is off its CPU. Wakes an idle worker, or, if `start`, starts one up to the CPU count.
    fn nudge(&self, _start: bool) {}
}

/// The operations a [`Handle`](crate::Handle) and `is_cancelled` need, free of the closure's type.
pub(crate) trait Control: Send + Sync {
    fn cancel(&self) -> CancelOutcome;
    /// The caller's handle (or ticket) was dropped: with cancel-on-drop, dequeues the job if it
    /// has not started; never touches a running one.
    fn handle_dropped(&self) {}
    fn cancel_requested(&self) -> bool;
    /// `true` if the job runs, or a worker is about to take it (a hint: it may change at
    /// once).
    fn starts_soon(&self) -> bool {
        false
    }
    /// The job is still queued though a worker looked for it: see `JobPool::nudge`.
    fn nudge(&self, _start: bool) {}
    /// As `starts_soon`, or next in line: it starts within a worker's wake-up, not behind
    /// other jobs (a hint).
    fn starts_next(&self) -> bool {
        false
    }
    /// The job's pool runs more jobs than the machine has CPUs (a hint): a caller that yields
    /// its CPU hands it to those jobs, and waits behind them, rather than to its own.
    fn crowded(&self) -> bool {
        false
    }
    /// Identity of the job's lane (0: none).
    fn lane_id(&self) -> usize {
        0
    }
    /// The identity of the pool that runs the job (0: none), for the blocking rule.
    fn pool_id(&self) -> usize {
        0
    }
    fn callback_panicked(&self) {}
    /// The job cell itself, for its worker's delivery (see `Task::run`).
    fn as_any(&self) -> &dyn Any {
        &()
    }
}

/// The operations a worker and the queue need, free of the closure's type.
pub(crate) trait Task<S>: Send + Sync {
    fn state(&self) -> &JobState;
    fn meta(&self) -> &Meta<S>;
    /// Runs a claimed job on the worker, which took it at `started`, catching a panic, and
    /// delivers its outcome, telling `handoff` what the worker does meanwhile.
    fn run(self: Arc<Self>, state: &mut S, handoff: &dyn Handoff, started: Instant) -> Ran;
    /// Resolves a job that was flipped to `DROPPED` (by cancel, shutdown or expiry) with `err`,
    /// dropping its closure. Call outside the pool lock: the closure's `Drop` is user code.
    fn discard(&self, err: JobError);
}

/// How a job ran: whether it panicked, how long it waited for its start, how long it ran.
pub(crate) struct Ran {
    pub(crate) panicked: bool,
    pub(crate) queue_wait: Duration,
    pub(crate) run_time: Duration,
}

/// One job: state, closure, sink and (for a handle) the outcome's slot in a single allocation.
/// `P` is the pool's own type (a thin pointer per job), or `dyn JobPool<S>`.
pub(crate) struct JobCell<S, J, D: OutcomeSink, P: ?Sized = dyn JobPool<S>> {
    /// The job's place in the state machine above.
    state: JobState,
    /// The closure and the sink, taken exactly once by whoever wins the transition out of
    /// QUEUED. The lock is never contended: the state transition already picked the one taker.
    slot: Mutex<Option<(J, D)>>,
    /// The pool, for freeing the queue slot on cancel.
    pool: Arc<P>,
    meta: Meta<S>,
    /// When it was submitted, for its queue wait.
    submitted: Instant,
    span: JobSpan,
    /// Where the sink keeps the outcome for a handle (`()` for other sinks).
    outcome: D::Slot,
}

impl<S, J, D: OutcomeSink, P: ?Sized> JobCell<S, J, D, P> {
    pub(crate) fn new(job: J, sink: D, pool: Arc<P>, state: JobState, meta: Meta<S>) -> Self {
        let span = JobSpan::new(meta.name().map(|n| &**n), state.priority, meta.lane_id());
        Self {
            state,
            slot: Mutex::new(Some((job, sink))),
            pool,
            meta,
            submitted: Instant::now(),
            span,
            outcome: D::Slot::default(),
        }
    }

    /// Takes the closure and sink back out of a cell that was never shared (a refused job).
    pub(crate) fn into_parts(self) -> (J, D) {
        self.slot
            .into_inner()
            .expect("a cell that was never queued still holds its job")
    }
}

impl<S: 'static, J, D, P> Control for JobCell<S, J, D, P>
where
    J: Send + 'static,
    D: OutcomeSink,
    P: JobPool<S> + ?Sized + 'static,
{
    fn cancel(&self) -> CancelOutcome {
        self.state.cancel(|| self.dequeue())
    }

    fn handle_dropped(&self) {
        if self.state.drops_with_handle() {
            self.dequeue();
        }
    }

    fn cancel_requested(&self) -> bool {
        self.state.cancel_requested()
    }

    fn starts_soon(&self) -> bool {
        self.state.is_started() || (self.state.is_queued() && self.pool.takes_jobs_now())
    }

    fn starts_next(&self) -> bool {
        self.starts_soon() || (self.state.is_queued() && self.pool.holds_one_job_at_most())
    }

    fn nudge(&self, start: bool) {
        if self.state.is_queued() {
            self.pool.nudge(start);
        }
    }

    fn crowded(&self) -> bool {
        self.pool.crowded()
    }

    fn lane_id(&self) -> usize {
        self.meta.lane_id()
    }

    fn pool_id(&self) -> usize {
        self.pool.pool_id()
    }

    fn callback_panicked(&self) {
        self.pool.callback_panicked();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl<S, J, D: OutcomeSink, P: JobPool<S> + ?Sized> JobCell<S, J, D, P> {
    /// Takes a waiting job out of the pool and resolves it `Cancelled`.
    fn dequeue(&self) -> bool {
        if self.pool.cancel_queued(&self.state, self.meta.lane()) {
            self.discard_now(JobError::Cancelled);
            return true;
        }
        false
    }

    fn discard_now(&self, err: JobError) {
        let taken = self.slot.lock().take();
        if let Some((job, sink)) = taken {
            self.span.dropped(&err);
            drop_quietly(job);
            if sink.deliver(Err(err), &self.outcome, &OffWorker) {
                self.pool.callback_panicked();
            }
        }
    }
}

impl<S, J, D, P> Task<S> for JobCell<S, J, D, P>
where
    S: 'static,
    J: JobFn<S, D::Value>,
    D: OutcomeSink,
    P: JobPool<S> + ?Sized + 'static,
{
    fn state(&self) -> &JobState {
        &self.state
    }

    fn meta(&self) -> &Meta<S> {
        &self.meta
    }

    fn run(self: Arc<Self>, state: &mut S, handoff: &dyn Handoff, started: Instant) -> Ran {
        let queue_wait = started.saturating_duration_since(self.submitted);
        let Some((job, sink)) = self.slot.lock().take() else {
            // Unreachable: a claimed job still holds its closure.
            return Ran {
                panicked: false,
                queue_wait,
                run_time: Duration::ZERO,
            };
        };
        // The job's own reference moves below; the span goes on (free without the feature).
        let span = self.span.clone();
        let panicked = span.run(queue_wait, || {
            // The job's own reference moves into the thread-local for `is_cancelled` and
            // comes back after.
            let previous = CURRENT.with(|c| c.replace(Some(self as Arc<dyn Control>)));
            let result = panic::catch_unwind(AssertUnwindSafe(|| job.call(state)));
            let panicked = result.is_err();
            let outcome = result.map_err(|payload| {
                let msg = panic_message(payload);
                trace::panicked(&msg);
                JobError::Panicked(msg)
            });
            // The job stays current through its delivery: its lane moves on only after, so a
            // completion callback or wake hook that waits on a later job of the lane (or on
            // room that only such jobs hold) is refused like the job itself would be. The
            // cell is reached through the thread-local, not a second reference (two more
            // atomic updates of the cell's count per job); only this function ever replaces
            // the thread-local, so the borrow held meanwhile never stands in the way of a
            // callback reading it.
            let (callback_panicked, this) = CURRENT.with(|c| {
                let callback_panicked = {
                    let current = c.borrow();
                    let cell = current
                        .as_deref()
                        .and_then(|job| job.as_any().downcast_ref::<Self>())
                        .expect("the running job is current on its worker");
                    cell.state.mark_finished();
                    sink.deliver(outcome, &cell.outcome, handoff)
                };
                (callback_panicked, c.replace(previous))
            });
            if callback_panicked && let Some(this) = &this {
                this.callback_panicked();
            }
            panicked
        });
        let run_time = started.elapsed();
        span.ran(run_time);
        Ran {
            panicked,
            queue_wait,
            run_time,
        }
    }

    fn discard(&self, err: JobError) {
        self.discard_now(err);
    }
}

impl<S: 'static, J: Send + 'static, T: Send + 'static, P> HeldOutcome<T>
    for JobCell<S, J, SlotSink<T>, P>
where
    P: JobPool<S> + ?Sized + 'static,
{
    fn slot(&self) -> &OutcomeSlot<T> {
        &self.outcome
    }
}

#[cfg(not(offthread_loom))]
thread_local! {
    /// The job this thread is running, for [`is_cancelled`].
    static CURRENT: RefCell<Option<Arc<dyn Control>>> = const { RefCell::new(None) };
}

// A loom model runs its threads on one OS thread: each needs its own slot.
#[cfg(offthread_loom)]
loom::thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn Control>>> = RefCell::new(None);
}

/// `true` if the job running on this thread has been asked to stop by
/// [`Handle::cancel`](crate::Handle::cancel).
///
/// Long jobs poll this between steps and return early; offthread never interrupts a running job.
/// Outside a job (on any thread that is not running one) it returns `false`.
///
/// # Examples
/// ```
/// use offthread::{is_cancelled, CancelOutcome, Pool};
/// let pool = Pool::new();
/// let (started_tx, started) = std::sync::mpsc::channel();
/// let handle = pool.submit(move || {
///     started_tx.send(()).unwrap();
///     let mut steps = 0u64;
///     while !is_cancelled() {
///         steps += 1;
///         std::thread::yield_now();
///     }
///     steps
/// })?;
/// started.recv()?;
/// assert_eq!(handle.cancel(), CancelOutcome::Requested);
/// assert!(handle.wait().is_ok()); // it stopped on its own terms and returned a value
/// assert!(!is_cancelled());       // not inside a job here
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn is_cancelled() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|job| job.cancel_requested())
    })
}

/// Identity of the lane whose job this thread is running (0: none, or not in a job).
pub(crate) fn current_lane() -> usize {
    CURRENT.with(|c| c.borrow().as_ref().map_or(0, |job| job.lane_id()))
}

/// The caller's reference to a job: cancels it, and cancels a job that has not started when
/// dropped if the job was submitted with `cancel_on_drop` (a flag the job itself carries, so
/// this stays one fat pointer).
pub(crate) struct JobRef {
    job: Arc<dyn Control>,
}

impl fmt::Debug for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobRef").finish_non_exhaustive()
    }
}

impl JobRef {
    pub(crate) fn new(job: Arc<dyn Control>) -> Self {
        Self { job }
    }

    pub(crate) fn control(&self) -> &dyn Control {
        &*self.job
    }
}

impl Drop for JobRef {
    fn drop(&mut self) {
        self.job.handle_dropped();
    }
}
