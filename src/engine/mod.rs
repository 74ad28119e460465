//! The engine: the state every clone of a pool and every worker share — one lock over the
//! queue and the counts, and its condvars — below the public API, which never reaches inside.
//!
//! - `submit.rs`: queueing a job (room, backpressure, lending), its async form, broadcast;
//! - `queue.rs`: the per-priority queue with tombstones and aging;
//! - `worker.rs`: a worker thread's loop;
//! - `growth.rs`: finding a worker for every job, lending, the monitor thread;
//! - `cancel.rs`: jobs that leave without running (cancel, expiry timers) and lane hand-off;
//! - `shutdown.rs`: closing intake and waiting for the threads.

mod cancel;
mod growth;
mod probe;
mod queue;
mod shutdown;
mod submit;
pub(crate) mod worker;

pub(crate) use queue::Queue;
pub(crate) use submit::{Prepared, Queued, Refusal, Wait};

use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::sync::park::{Condvar, Mutex};

use crate::error::JobError;
use crate::job::{JobCell, JobFn, JobState, LaneQueue, Meta, OutcomeSink, Priority, Room, Task};
use crate::stats::{Counts, RunningJob, Stats};
use crate::waiters::{Waiters, wake_all};
use cancel::Timer;
use growth::Kick;
use probe::ThreadProbe;

/// Keeps a hot atomic on a cache line of its own (128 bytes: adjacent-line prefetch pairs lines).
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A worker's private queue, for `broadcast`: (worker id, jobs).
pub(crate) type PrivateQueue<S> = (usize, VecDeque<Arc<dyn Task<S>>>);

/// A hook run on a worker thread (start or stop).
pub(crate) type Hook = Arc<dyn Fn() + Send + Sync>;

/// Decides whether the pool may start a thread (given its name).
pub(crate) type SpawnHook = Arc<dyn Fn(&str) -> std::io::Result<()> + Send + Sync>;

/// Builds one worker's state, on that worker's thread.
pub(crate) type Init<S> = Box<dyn Fn() -> S + Send + Sync>;

/// The pool's configuration, fixed at build time.
pub(crate) struct Config<S> {
    pub(crate) min_workers: usize,
    pub(crate) max_workers: usize,
    /// Workers started without a progress check (the CPU count): below this, a queued job and
    /// no idle worker always start a thread.
    pub(crate) eager_workers: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) queue_capacity: usize,
    /// The most workers that may run background jobs at once.
    pub(crate) background_workers: usize,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) on_start: Option<Hook>,
    pub(crate) on_stop: Option<Hook>,
    /// Asked before every thread start; an error refuses it (see `PoolBuilder::before_spawn`).
    pub(crate) before_spawn: Option<SpawnHook>,
    /// Nested waits may lend a worker (see `JobPool::enter_wait`).
    pub(crate) lend: bool,
    /// Past the eager workers, grow while long jobs that compute hold the workers and jobs
    /// wait (see `Shared::workers_short_of_long_jobs`), instead of by blocked workers.
    pub(crate) grow_behind_long_jobs: bool,
    /// How the OS schedules the pool's threads.
    pub(crate) priority: crate::WorkerPriority,
    pub(crate) init: Init<S>,
}

/// Everything under the pool's one lock. Aligned to a cache-line pair of its own, so the lock
/// word sits apart from the state it guards: a thread spinning for the lock then does not
/// take the holder's lines away from it while it works on the queue and the counts.
#[repr(align(128))]
pub(crate) struct State<S> {
    /// The shared queue (one FIFO per priority).
    pub(crate) queue: Queue<S>,
    /// Lane jobs waiting behind their lane's head (not in `queue`); they count against the
    /// capacity.
    pub(crate) lane_waiting: usize,
    /// Start deadlines of waiting jobs, earliest first; the monitor expires them on time.
    pub(crate) timers: BinaryHeap<Timer<S>>,
    /// Lanes whose head is queued or running (`LaneJobs::slot` is each one's index), so
    /// `shutdown_now` can reach every job waiting in a lane.
    pub(crate) busy_lanes: Vec<Arc<LaneQueue<S>>>,
    /// Background jobs running now.
    pub(crate) bg_running: usize,
    /// Workers blocked in a nested wait (a job waiting on a job of its own pool). Each one
    /// raises the worker limit by one while it waits, so the job waited on finds a worker.
    pub(crate) blocked: usize,
    /// Named jobs running now: (worker id, name, start).
    pub(crate) named: Vec<(usize, Arc<str>, Instant)>,
    /// Per-worker queues for `broadcast`, by worker id. They bypass the capacity (one entry per
    /// worker per call).
    pub(crate) private: Vec<PrivateQueue<S>>,
    /// Jobs in all private queues.
    pub(crate) private_len: usize,
    /// The live workers' thread probes, by worker id (empty where the OS offers none).
    pub(crate) probes: Vec<(usize, Arc<ThreadProbe>)>,
    /// In a pool that grows behind long jobs: when each live worker's current job started (ns since
    /// `Shared::epoch`, 0 while it has none), by worker id.
    pub(crate) busy_since: Vec<(usize, Arc<AtomicU64>)>,
    /// Where the monitor's next look at the probes starts (round robin).
    pub(crate) next_probe: usize,
    /// Intake is closed; workers exit once the queues are empty.
    pub(crate) closed: bool,
    /// Worker threads alive or starting.
    pub(crate) workers: usize,
    /// Of `workers`, those not yet through their start hook and init.
    pub(crate) starting: usize,
    /// Of `workers`, those that decided to retire and are on their way out. Counted under the
    /// same lock as the decision, so two workers timing out together cannot both retire below
    /// `min_workers`.
    pub(crate) retiring: usize,
    /// Workers waiting on `work` that no notification has claimed yet.
    pub(crate) idle: usize,
    /// Notifications sent to idle workers and not yet consumed. Invariant:
    /// `idle + wakeups` == workers inside (or just leaving) `work.wait`.
    pub(crate) wakeups: usize,
    /// Workers spinning on `queued_hint` before they sleep.
    pub(crate) spinning: usize,
    /// Jobs running now.
    pub(crate) running: usize,
    /// Threads blocked in `submit` / `submit_deadline` waiting for room.
    pub(crate) room_waiters: usize,
    /// Futures of `submit_async` waiting for room (or for intake to close).
    pub(crate) async_waiters: Waiters,
    /// Submitters waiting for room in an inbox (outside the pool): (id, its room), so that
    /// closing intake wakes them too.
    pub(crate) inbox_waiters: Vec<(u64, Arc<dyn Room>)>,
    /// The monitor is watching for a stall (see `Shared::monitor`).
    pub(crate) monitor_armed: bool,
    /// The monitor thread has not exited yet.
    pub(crate) monitor_alive: bool,
    pub(crate) next_worker_id: usize,
    pub(crate) counts: Counts,
}

impl<S: 'static> State<S> {
    /// Jobs accepted and not yet taken: the shared queue, the lanes and the private
    /// (broadcast) queues.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len() + self.lane_waiting + self.private_len
    }

    /// Jobs that count against `queue_capacity`.
    fn held(&self) -> usize {
        self.queue.len() + self.lane_waiting
    }
}

/// Work found under the lock that must run after it is released: wakers to wake, workers to
/// start (already reserved), jobs to resolve (their closure's `Drop` and their sink are user
/// code).
pub(crate) struct Deferred<S> {
    pub(crate) wakers: Vec<Waker>,
    /// Idle workers booked out of `idle`, to notify.
    pub(crate) wake: usize,
    /// A submitter blocked for room, to notify.
    pub(crate) room: bool,
    pub(crate) start: usize,
    pub(crate) discard: Vec<(Arc<dyn Task<S>>, JobError)>,
}

impl<S: 'static> Deferred<S> {
    pub(crate) fn new() -> Self {
        Self {
            wakers: Vec::new(),
            wake: 0,
            room: false,
            start: 0,
            discard: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.wakers.is_empty()
            && self.wake == 0
            && !self.room
            && self.start == 0
            && self.discard.is_empty()
    }

    /// Adds what `wake_or_grow` or `wake_for_backlog` booked.
    pub(crate) fn kick(&mut self, kick: Kick) {
        match kick {
            Kick::None => {}
            Kick::Wake => self.wake += 1,
            Kick::Start => self.start += 1,
        }
    }

    /// Does the work and leaves `self` empty, for reuse. Call without the pool lock.
    pub(crate) fn run(&mut self, shared: &Shared<S>) {
        for _ in 0..std::mem::take(&mut self.wake) {
            shared.work.notify_one();
        }
        if std::mem::take(&mut self.room) {
            shared.room.notify_one();
        }
        wake_all(self.wakers.drain(..));
        for _ in 0..std::mem::take(&mut self.start) {
            shared.start_reserved_worker();
        }
        for (task, err) in self.discard.drain(..) {
            task.discard(err);
        }
    }
}

pub(crate) struct Shared<S> {
    pub(crate) state: Mutex<State<S>>,
    /// Idle workers wait here for jobs.
    pub(crate) work: Condvar,
    /// Blocked submitters wait here for room.
    pub(crate) room: Condvar,
    /// Shutdown waits here for workers (and the monitor) to exit.
    pub(crate) exited: Condvar,
    /// The monitor thread waits here.
    pub(crate) monitor: Condvar,
    /// Mirror of the queued count (shared + private), for workers spinning without the lock.
    /// Padded: written on every push and pop, it must not share a cache line with `finishing`.
    pub(crate) queued_hint: Padded<AtomicUsize>,
    /// Workers whose job has ended and who are about to take the lock and look at the queue.
    /// Raised before the outcome is delivered, lowered under the lock: a submitter that sees it
    /// above zero (under the lock) knows a worker will find its job, so it wakes nobody. This
    /// closes the window where a caller, woken by its result, submits the next job before the
    /// worker that served it is back.
    pub(crate) finishing: Padded<AtomicUsize>,
    /// A worker is spinning for the next job (mirrors `State::spinning > 0`): a job queued now
    /// is taken within a moment. A hint for callers deciding whether to spin.
    pub(crate) spinner: AtomicBool,
    /// A caller found the spinning worker off its CPU and had another worker woken or started
    /// for its job (`JobPool::nudge`): the spinner, once back, leaves the job to that worker
    /// and sleeps instead.
    pub(crate) stand_down: AtomicBool,
    /// More jobs run than there are CPUs (`running > eager_workers`). A hint for callers
    /// deciding whether to yield their CPU while they wait.
    pub(crate) crowded: AtomicBool,
    /// How long workers recently stayed without work before the next job came (nanoseconds,
    /// a moving average): how long the spinning worker spins (see `worker::spin_budget`).
    pub(crate) recent_gap: AtomicU64,
    /// Panics caught in completion callbacks and inbox wake hooks.
    pub(crate) callback_panics: AtomicU64,
    /// This pool, for starting workers from `&self` paths.
    pub(crate) me: Weak<Self>,
    /// The pool's start, the zero of `State::busy_since`.
    pub(crate) epoch: Instant,
    pub(crate) config: Config<S>,
}

impl<S: 'static> Shared<S> {
    pub(crate) fn new(config: Config<S>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            state: Mutex::new(State {
                queue: Queue::new(),
                lane_waiting: 0,
                timers: BinaryHeap::new(),
                busy_lanes: Vec::new(),
                bg_running: 0,
                blocked: 0,
                named: Vec::new(),
                private: Vec::new(),
                private_len: 0,
                probes: Vec::new(),
                busy_since: Vec::new(),
                next_probe: 0,
                closed: false,
                workers: 0,
                starting: 0,
                retiring: 0,
                idle: 0,
                wakeups: 0,
                spinning: 0,
                running: 0,
                room_waiters: 0,
                async_waiters: Waiters::default(),
                inbox_waiters: Vec::new(),
                monitor_armed: false,
                monitor_alive: false,
                next_worker_id: 0,
                counts: Counts::default(),
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            exited: Condvar::new(),
            monitor: Condvar::new(),
            queued_hint: Padded(AtomicUsize::new(0)),
            crowded: AtomicBool::new(false),
            finishing: Padded(AtomicUsize::new(0)),
            spinner: AtomicBool::new(false),
            stand_down: AtomicBool::new(false),
            recent_gap: AtomicU64::new(u64::MAX),
            callback_panics: AtomicU64::new(0),
            me: me.clone(),
            epoch: Instant::now(),
            config,
        })
    }

    /// Wraps a job in its cell. Done outside the lock: allocation is the slow part.
    pub(crate) fn prepare<J, D>(
        self: &Arc<Self>,
        job: J,
        sink: D,
        opts: Opts<S>,
    ) -> Prepared<S, J, D>
    where
        J: JobFn<S, D::Value>,
        D: OutcomeSink,
    {
        let pool = self.clone();
        let meta = Meta::new(opts.name, opts.deadline, opts.lane);
        let state = JobState::new(opts.priority, opts.cancel_on_drop);
        Prepared {
            cell: Arc::new(JobCell::new(job, sink, pool, state, meta)),
        }
    }

    /// Keeps `crowded` in step with `running`. Call under the lock after every change.
    pub(crate) fn publish_running(&self, st: &State<S>) {
        let crowded = st.running > self.config.eager_workers;
        // ORDERING: a hint; Relaxed is enough. Written only when it changes: a store on every
        // job's start and end would move the cache line between the callers that read it.
        if self.crowded.load(Ordering::Relaxed) != crowded {
            self.crowded.store(crowded, Ordering::Relaxed);
        }
    }

    /// Keeps `queued_hint` in step with the queues. Call under the lock after every change.
    pub(crate) fn publish_len(&self, st: &State<S>) {
        // ORDERING: a hint for spinners, who confirm under the lock; Relaxed is enough.
        self.queued_hint
            .store(st.held() + st.private_len, Ordering::Relaxed);
    }

    /// Called after a queue slot was freed: books one blocked submitter and the async waiters
    /// in `after`, to wake once the lock is released. (The blocked submitter began its wait
    /// under the lock, so a notification after it cannot be lost.)
    pub(crate) fn room_freed(&self, st: &mut State<S>, after: &mut Deferred<S>) {
        after.room |= st.room_waiters > 0;
        // Every async waiter retries (see `waiters.rs`).
        if !st.async_waiters.is_empty() {
            after.wakers.extend(st.async_waiters.take());
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let st = self.state.lock();
        let c = &st.counts;
        Stats {
            workers: st.workers,
            idle: st.workers - st.running,
            queued: st.queued(),
            running: st.running,
            submitted: c.submitted,
            completed: c.completed,
            panicked: c.panicked,
            cancelled: c.cancelled,
            expired: c.expired,
            shut_down: c.shut_down,
            rejected: c.rejected,
            start_failures: c.start_failures,
            // ORDERING: a counter read for a snapshot.
            callback_panics: self.callback_panics.load(Ordering::Relaxed),
            queue_wait: c.queue_wait.percentiles(),
            run_time: c.run_time.percentiles(),
        }
    }

    /// The named jobs running now; see `Pool::running_jobs`.
    pub(crate) fn running_jobs(&self) -> Vec<RunningJob> {
        let st = self.state.lock();
        let now = Instant::now();
        st.named
            .iter()
            .map(|(_, name, started)| RunningJob {
                name: name.clone(),
                elapsed: now.saturating_duration_since(*started),
            })
            .collect()
    }
}

/// A job's options as the pool sees them.
pub(crate) struct Opts<S> {
    pub(crate) priority: Priority,
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel_on_drop: bool,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) lane: Option<Arc<LaneQueue<S>>>,
}

impl<S> Default for Opts<S> {
    fn default() -> Self {
        Self {
            priority: Priority::Normal,
            deadline: None,
            cancel_on_drop: false,
            name: None,
            lane: None,
        }
    }
}
