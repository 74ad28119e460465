//! A type-erased job: its closure, where its outcome goes, and the state machine that makes every
//! accepted job resolve exactly once.
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

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use crate::error::JobError;
use crate::lane::LaneQueue;
use crate::options::Priority;
use crate::sync::{AtomicU8, Mutex, Ordering};

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const RUNNING_CANCEL: u8 = 2;
const FINISHED: u8 = 3;
const DROPPED: u8 = 4;
const LANED: u8 = 5;

/// What a job resolves to: its value, or why there is none.
pub type Outcome<T> = Result<T, JobError>;

/// What [`Handle::cancel`](crate::Handle::cancel) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The job was still queued: it will never run, its queue slot is free, and its handle
    /// resolves [`JobError::Cancelled`].
    Dequeued,
    /// The job is running: its flag is raised, and the job sees it through
    /// [`is_cancelled`](crate::is_cancelled). A running job cannot be interrupted, only asked
    /// to stop; it still resolves with whatever it returns.
    Requested,
    /// The job had already finished or been resolved; nothing changed.
    Finished,
}

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

/// Where a job's outcome goes: a handle's one-shot slot, an inbox, or a callback.
pub trait Deliver: Send + 'static {
    /// The job's value type.
    type Value;
    /// Hands the outcome over. Returns `true` if user code on the way (a callback, an inbox's
    /// wake hook) panicked; the panic was caught. `handoff` is told when the outcome goes
    /// straight to a waiting caller, so the pool counts the worker as coming back at once.
    fn deliver(self, outcome: Outcome<Self::Value>, handoff: &dyn Handoff) -> bool;
}

/// How a sink tells the pool what its worker does while delivering: a worker that hands the
/// outcome to a waiting caller and goes straight back to the queue is *coming* (a caller woken
/// by its result and submitting the next job needs to wake nobody); a worker running user code
/// on the way (a callback, a wake hook, the `Drop` of a value nobody waits for) is busy.
pub trait Handoff {
    /// The worker is about to hand the outcome over and come back: count it as coming.
    fn coming(&self) {}
    /// The hand-off failed after [`coming`](Self::coming) (nobody waits any more) and the
    /// worker now runs user code: count it as busy again.
    fn busy(&self) {}
}

/// A delivery made off a worker (a cancel, an expiry, a shutdown): nobody is coming.
pub(crate) struct OffWorker;

impl Handoff for OffWorker {}

impl<T: Send + 'static> Deliver for oneshot::Sender<Outcome<T>> {
    type Value = T;
    fn deliver(self, outcome: Outcome<T>, handoff: &dyn Handoff) -> bool {
        handoff.coming();
        if let Err(unsent) = self.send(outcome) {
            // The handle was dropped (detached): the value dies here, on the worker, and a
            // panicking `Drop` must not take the worker with it. That `Drop` is user code that
            // may take long: the worker is not coming back soon after all.
            let value = unsent.into_inner();
            if value.is_ok() && std::mem::needs_drop::<T>() {
                handoff.busy();
            }
            drop_quietly(value);
        }
        false
    }
}

/// What a job needs from its pool, free of the pool's other types.
pub(crate) trait PoolLink<S>: Send + Sync {
    /// Flips a waiting job (queued, or in its lane) to `DROPPED` under the pool lock and frees
    /// its slot. Returns `false` if the job had already left.
    fn cancel_queued(&self, job: &JobState, lane: Option<&Arc<LaneQueue<S>>>) -> bool;
    /// Counts a panic caught in a completion callback or an inbox's wake hook.
    fn callback_panicked(&self) {}
    /// The pool's identity, for the blocking rule (see `blocking.rs`).
    fn pool_id(&self) -> usize {
        0
    }
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

    pub(crate) fn is_queued(&self) -> bool {
        // ORDERING: read under the pool lock, which orders it.
        self.state.load(Ordering::Relaxed) == QUEUED
    }

    fn cancel_requested(&self) -> bool {
        // ORDERING: a flag with no data behind it; Relaxed is enough, the job polls it.
        self.state.load(Ordering::Relaxed) == RUNNING_CANCEL
    }
}

/// A job's options that the pool reads: its name, start deadline and lane. Boxed, and absent
/// for a plain job, so they cost a plain job one pointer.
pub(crate) struct Meta<S>(Option<Box<Extra<S>>>);

struct Extra<S> {
    name: Option<Arc<str>>,
    deadline: Option<Instant>,
    lane: Option<Arc<LaneQueue<S>>>,
}

impl<S> Meta<S> {
    pub(crate) fn new(
        name: Option<Arc<str>>,
        deadline: Option<Instant>,
        lane: Option<Arc<LaneQueue<S>>>,
    ) -> Self {
        if name.is_none() && deadline.is_none() && lane.is_none() {
            return Self(None);
        }
        Self(Some(Box::new(Extra {
            name,
            deadline,
            lane,
        })))
    }

    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.0.as_ref()?.name.as_ref()
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.0.as_ref()?.deadline
    }

    pub(crate) fn lane(&self) -> Option<&Arc<LaneQueue<S>>> {
        self.0.as_ref()?.lane.as_ref()
    }
}

/// The operations a [`Handle`](crate::Handle) and `is_cancelled` need, free of the closure's type.
pub(crate) trait Control: Send + Sync {
    fn cancel(&self) -> CancelOutcome;
    /// The caller's handle (or ticket) was dropped: with cancel-on-drop, dequeues the job if it
    /// has not started; never touches a running one.
    fn handle_dropped(&self) {}
    fn cancel_requested(&self) -> bool;
    /// RUNNING (or RUNNING_CANCEL) → FINISHED, just before the outcome is delivered.
    fn mark_finished(&self) {}
    /// Identity of the job's lane (0: none).
    fn lane_id(&self) -> usize {
        0
    }
    /// The identity of the pool that runs the job (0: none), for the blocking rule.
    fn pool_id(&self) -> usize {
        0
    }
    fn callback_panicked(&self) {}
}

/// The operations a worker and the queue need, free of the closure's type.
pub(crate) trait Task<S>: Send + Sync {
    fn state(&self) -> &JobState;
    fn meta(&self) -> &Meta<S>;
    /// Runs a claimed job on the worker, catching a panic, and delivers its outcome, telling
    /// `handoff` what the worker does meanwhile. Returns `true` if it panicked.
    fn run(self: Arc<Self>, state: &mut S, handoff: &dyn Handoff) -> bool;
    /// Resolves a job that was flipped to `DROPPED` (by cancel, shutdown or expiry) with `err`,
    /// dropping its closure. Call outside the pool lock: the closure's `Drop` is user code.
    fn discard(&self, err: JobError);
}

/// One job: state, closure and sink in a single allocation.
pub(crate) struct JobCell<S, J, D> {
    /// The job's place in the state machine above.
    state: JobState,
    /// The closure and the sink, taken exactly once by whoever wins the transition out of
    /// QUEUED. The lock is never contended: the state transition already picked the one taker.
    slot: Mutex<Option<(J, D)>>,
    /// The pool, for freeing the queue slot on cancel.
    pool: Arc<dyn PoolLink<S>>,
    meta: Meta<S>,
}

impl<S, J, D> JobCell<S, J, D> {
    pub(crate) fn new(
        job: J,
        sink: D,
        pool: Arc<dyn PoolLink<S>>,
        state: JobState,
        meta: Meta<S>,
    ) -> Self {
        Self {
            state,
            slot: Mutex::new(Some((job, sink))),
            pool,
            meta,
        }
    }

    /// Takes the closure and sink back out of a cell that was never shared (a refused job).
    pub(crate) fn into_parts(self) -> (J, D) {
        self.slot
            .into_inner()
            .expect("a cell that was never queued still holds its job")
    }
}

impl<S: 'static, J, D> Control for JobCell<S, J, D>
where
    J: Send,
    D: Deliver,
{
    fn cancel(&self) -> CancelOutcome {
        loop {
            // ORDERING: Acquire so that FINISHED, once seen, orders after the job's effects.
            match self.state.state.load(Ordering::Acquire) {
                QUEUED | LANED => {
                    if self.dequeue() {
                        return CancelOutcome::Dequeued;
                    }
                    // Claimed or dropped meanwhile: look again.
                }
                RUNNING => {
                    // ORDERING: Relaxed; the flag carries no data.
                    if self
                        .state
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

    fn handle_dropped(&self) {
        // ORDERING: a first look; `dequeue` decides under the pool lock.
        if self.state.cancel_on_drop
            && matches!(self.state.state.load(Ordering::Relaxed), QUEUED | LANED)
        {
            self.dequeue();
        }
    }

    fn cancel_requested(&self) -> bool {
        self.state.cancel_requested()
    }

    fn mark_finished(&self) {
        // ORDERING: Release so a `cancel` that reads FINISHED also sees the job's effects.
        self.state.state.store(FINISHED, Ordering::Release);
    }

    fn lane_id(&self) -> usize {
        self.meta.lane().map_or(0, |l| Arc::as_ptr(l) as usize)
    }

    fn pool_id(&self) -> usize {
        self.pool.pool_id()
    }

    fn callback_panicked(&self) {
        self.pool.callback_panicked();
    }
}

impl<S, J, D: Deliver> JobCell<S, J, D> {
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
            drop_quietly(job);
            if sink.deliver(Err(err), &OffWorker) {
                self.pool.callback_panicked();
            }
        }
    }
}

impl<S, J, D> Task<S> for JobCell<S, J, D>
where
    S: 'static,
    J: JobFn<S, D::Value>,
    D: Deliver,
{
    fn state(&self) -> &JobState {
        &self.state
    }

    fn meta(&self) -> &Meta<S> {
        &self.meta
    }

    fn run(self: Arc<Self>, state: &mut S, handoff: &dyn Handoff) -> bool {
        let Some((job, sink)) = self.slot.lock().take() else {
            return false; // unreachable: a claimed job still holds its closure
        };
        // The job's own reference moves into the thread-local for `is_cancelled` and comes
        // back after: no reference-count traffic on the hot path.
        let previous = CURRENT.with(|c| c.replace(Some(self as Arc<dyn Control>)));
        let result = panic::catch_unwind(AssertUnwindSafe(|| job.call(state)));
        let panicked = result.is_err();
        let outcome = result.map_err(|payload| JobError::Panicked(panic_message(payload)));
        CURRENT.with(|c| {
            if let Some(this) = &*c.borrow() {
                this.mark_finished();
            }
        });
        // The job stays current through its delivery: its lane moves on only after, so a
        // completion callback or wake hook that waits on a later job of the lane (or on room
        // that only such jobs hold) is refused like the job itself would be.
        let callback_panicked = sink.deliver(outcome, handoff);
        let this = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous));
        if callback_panicked && let Some(this) = &this {
            this.callback_panicked();
        }
        panicked
    }

    fn discard(&self, err: JobError) {
        self.discard_now(err);
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

/// Turns a panic payload into its message, dropping the payload without letting its `Drop` unwind.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let msg = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any> (a panic payload that is not a string)".to_owned()
    };
    drop_quietly(payload);
    msg
}

/// Drops a value whose `Drop` is user code, swallowing a panic from it so the worker survives.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        // The payload's own Drop could panic too; leak it rather than unwind.
        std::mem::forget(payload);
    }
}
