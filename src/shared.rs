//! The state every clone of a pool and every worker share: one lock over the queue and the
//! counts, its condvars, and the submission and shutdown logic.

use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::backoff::Backoff;
use crate::blocking::{self, Role};
use crate::dequeue::{Timer, lane_idle};
use crate::error::{JobError, ShutdownTimeout};
use crate::handle::Handle;
use crate::job::LaneQueue;
use crate::job::{
    self, JobCell, JobFn, JobPool, JobState, Meta, Outcome, OutcomeSink, Stateful, Task,
};
use crate::job::{JobRef, Room};
use crate::options::Opts;
use crate::queue::Queue;
use crate::stats::RunningJob;
use crate::stats::{Counts, Stats};
use crate::waiters::{Waiters, wake_all};

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

/// A refused submission: the prepared job back, and why (`None`: not yet, the waker is
/// registered).
pub(crate) type Pending<S, J, D> = (Prepared<S, J, D>, Option<Refusal>);

/// A queued job's cell.
pub(crate) type Queued<S, J, D> = Arc<JobCell<S, J, D>>;

/// A refused submission: the prepared job back, and why.
pub(crate) type Refused<S, J, D> = (Prepared<S, J, D>, Refusal);

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
    pub(crate) init: Init<S>,
}

/// Everything under the pool's one lock.
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
    /// `counts.finished()` when the last worker was reserved (for `grow_on_start`).
    pub(crate) finished_at_mark: u64,
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
pub(crate) struct After<S> {
    pub(crate) wakers: Vec<Waker>,
    pub(crate) start: usize,
    pub(crate) discard: Vec<(Arc<dyn Task<S>>, JobError)>,
}

impl<S: 'static> After<S> {
    pub(crate) fn new() -> Self {
        Self {
            wakers: Vec::new(),
            start: 0,
            discard: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.wakers.is_empty() && self.start == 0 && self.discard.is_empty()
    }

    /// Does the work. Call without the pool lock.
    pub(crate) fn run(self, shared: &Shared<S>) {
        wake_all(self.wakers);
        for _ in 0..self.start {
            shared.start_reserved_worker();
        }
        for (task, err) in self.discard {
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
    /// Panics caught in completion callbacks and inbox wake hooks.
    pub(crate) callback_panics: AtomicU64,
    /// This pool, for starting workers from `&self` paths.
    pub(crate) me: Weak<Self>,
    pub(crate) config: Config<S>,
}

/// How long a submission may wait for room.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    Never,
    Until(Option<Instant>),
}

/// Why a submission was refused; the job comes back beside it.
pub(crate) enum Refusal {
    Full,
    Timeout,
    ShutDown,
    /// A worker of a pool that lends no worker (see `blocking.rs`) waited for room in its own
    /// queue: only it could have made room.
    WouldDeadlock,
}

/// A job ready to be queued: its cell, not yet shared.
pub(crate) struct Prepared<S, J, D> {
    cell: Arc<JobCell<S, J, D>>,
}

impl<S, J, D> Prepared<S, J, D> {
    /// Takes the job back out of a refused submission (its sink is dropped).
    pub(crate) fn into_job(self) -> J {
        match Arc::try_unwrap(self.cell) {
            Ok(cell) => cell.into_parts().0,
            Err(_) => unreachable!("a refused job's cell is never shared"),
        }
    }
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
                finished_at_mark: 0,
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
            finishing: Padded(AtomicUsize::new(0)),
            callback_panics: AtomicU64::new(0),
            me: me.clone(),
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
        let pool: Arc<dyn JobPool<S>> = self.clone();
        let meta = Meta::new(opts.name, opts.deadline, opts.lane);
        let state = JobState::new(opts.priority, opts.cancel_on_drop);
        Prepared {
            cell: Arc::new(JobCell::new(job, sink, pool, state, meta)),
        }
    }

    /// Queues a prepared job, waiting for room as `wait` allows.
    pub(crate) fn submit<J, D>(
        &self,
        prepared: Prepared<S, J, D>,
        wait: Wait,
    ) -> Result<Queued<S, J, D>, Refused<S, J, D>>
    where
        J: JobFn<S, D::Value>,
        D: OutcomeSink,
    {
        // Declared before the lock guard, so it is dropped after it: giving a lent worker back
        // takes the lock.
        let mut blocked = None;
        let mut st = self.state.lock();
        let mut spun = false;
        loop {
            if st.closed {
                st.counts.rejected += 1;
                return Err((prepared, Refusal::ShutDown));
            }
            if st.held() < self.config.queue_capacity {
                break;
            }
            let deadline = match wait {
                Wait::Never => {
                    st.counts.rejected += 1;
                    return Err((prepared, Refusal::Full));
                }
                Wait::Until(deadline) => deadline,
            };
            // The queue is full. Workers usually free a slot within microseconds: spin on the
            // lock-free hint once, then look again under the lock before parking. (Parking
            // straight after a failed spin would miss slots freed during the spin, when no one
            // knew to notify us: a lost wakeup.)
            if !spun {
                spun = true;
                self.spin_for_room(&mut st, deadline);
                continue;
            }
            if self.room_never_comes(&st) {
                st.counts.rejected += 1;
                return Err((prepared, Refusal::WouldDeadlock));
            }
            if blocked.is_none()
                && blocking::is_pool_thread()
                && deadline.is_none_or(|d| Instant::now() < d)
            {
                // This thread is about to park on the pool, and it is a pool's own: the pool
                // lends a worker in its place (or refuses, if it cannot lend). Then look
                // again: the lock was let go.
                let id = blocking::pool_id(self);
                match MutexGuard::unlocked(&mut st, || blocking::enter(id)) {
                    Ok(guard) => blocked = Some(guard),
                    Err(blocking::WouldDeadlock) => {
                        st.counts.rejected += 1;
                        return Err((prepared, Refusal::WouldDeadlock));
                    }
                }
                continue;
            }
            st.room_waiters += 1;
            match deadline {
                None => self.room.wait(&mut st),
                Some(deadline) => {
                    // Room is checked before the clock: a waiter notified at its deadline
                    // still takes the slot it was woken for.
                    let timed_out = self.room.wait_until(&mut st, deadline).timed_out();
                    if timed_out && !st.closed && st.held() >= self.config.queue_capacity {
                        st.room_waiters -= 1;
                        st.counts.rejected += 1;
                        return Err((prepared, Refusal::Timeout));
                    }
                }
            }
            st.room_waiters -= 1;
        }
        let cell = self.enqueue(st, prepared);
        drop(blocked);
        Ok(cell)
    }

    /// Waits for a slot in `room` (an inbox's) until `deadline`; gives up (`false`) if intake
    /// closes meanwhile, so a submitter blocked on a full inbox is never left behind by a
    /// shutdown.
    pub(crate) fn reserve_room(&self, room: &Arc<dyn Room>, deadline: Option<Instant>) -> bool {
        let id = {
            let mut st = self.state.lock();
            if st.closed {
                return false;
            }
            let id = st.async_waiters.next_id();
            st.inbox_waiters.push((id, room.clone()));
            id
        };
        // Lock order: the room's lock, then the pool's (in `give_up`); `close` takes the
        // pool's, lets it go, and only then the rooms'.
        let reserved = room.reserve_until(deadline, &|| self.state.lock().closed);
        self.state.lock().inbox_waiters.retain(|(w, _)| *w != id);
        reserved
    }

    /// `true` if the queue is full of jobs that wait in the caller's own lane behind the job
    /// the caller is running: no worker, lent or not, can take them before the caller returns,
    /// so waiting for room would never end. (Jobs in the queue itself, or in other lanes,
    /// free their slots as workers take them.)
    fn room_never_comes(&self, st: &State<S>) -> bool {
        let lane = job::current_lane();
        if lane == 0 || st.queue.len() > 0 {
            return false;
        }
        st.busy_lanes
            .iter()
            .find(|l| Arc::as_ptr(l) as usize == lane)
            .is_some_and(|mine| mine.jobs.lock().waiting.len() >= st.lane_waiting)
    }

    /// Counts a submission refused before it reached the queue (its inbox was full), and says
    /// why: `ShutDown` wins over `why` if intake is closed.
    pub(crate) fn refuse(&self, why: Refusal) -> Refusal {
        let mut st = self.state.lock();
        st.counts.rejected += 1;
        if st.closed { Refusal::ShutDown } else { why }
    }

    /// Spins (lock released) until the queue hint shows room or the backoff runs out. The
    /// caller must look again under the lock afterwards, whatever happened.
    fn spin_for_room(&self, st: &mut MutexGuard<'_, State<S>>, deadline: Option<Instant>) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let cap = self.config.queue_capacity;
        let backoff = Backoff::new();
        MutexGuard::unlocked(st, || {
            // ORDERING: a hint; the caller re-checks under the lock.
            while self.queued_hint.load(Ordering::Relaxed) >= cap && !backoff.is_completed() {
                backoff.snooze();
            }
        });
    }

    /// Queues a prepared job if there is room now, else registers `waker` under `waiter`.
    pub(crate) fn poll_submit<J, D>(
        &self,
        prepared: Prepared<S, J, D>,
        waiter: &mut Option<u64>,
        waker: &Waker,
    ) -> Result<Queued<S, J, D>, Pending<S, J, D>>
    where
        J: JobFn<S, D::Value>,
        D: OutcomeSink,
    {
        let mut st = self.state.lock();
        if st.closed {
            st.async_waiters.remove(waiter);
            st.counts.rejected += 1;
            return Err((prepared, Some(Refusal::ShutDown)));
        }
        if st.held() < self.config.queue_capacity {
            st.async_waiters.remove(waiter);
            return Ok(self.enqueue(st, prepared));
        }
        st.async_waiters.register(waiter, waker);
        Err((prepared, None))
    }

    /// For a future waiting on something else (an inbox's room): `true` if intake has closed
    /// (the submission is counted refused), else registers `waker` under `waiter` so that a
    /// close wakes it.
    pub(crate) fn poll_closed(&self, waiter: &mut Option<u64>, waker: &Waker) -> bool {
        let mut st = self.state.lock();
        if st.closed {
            st.async_waiters.remove(waiter);
            st.counts.rejected += 1;
            return true;
        }
        st.async_waiters.register(waiter, waker);
        false
    }

    /// Forgets an async waiter (its future was dropped).
    pub(crate) fn forget_waiter(&self, waiter: &mut Option<u64>) {
        if waiter.is_some() {
            self.state.lock().async_waiters.remove(waiter);
        }
    }

    /// Pushes a job (room already checked) into the queue, or behind its lane's running job,
    /// then wakes or starts a worker for it.
    fn enqueue<J, D>(
        &self,
        mut st: MutexGuard<'_, State<S>>,
        prepared: Prepared<S, J, D>,
    ) -> Arc<JobCell<S, J, D>>
    where
        J: JobFn<S, D::Value>,
        D: OutcomeSink,
    {
        let cell = prepared.cell;
        let task: Arc<dyn Task<S>> = cell.clone();
        st.counts.submitted += 1;
        if let Some(deadline) = task.meta().deadline() {
            self.add_timer(&mut st, deadline, task.clone());
        }
        if let Some(lane) = task.meta().lane().cloned() {
            let mut jobs = lane.jobs.lock();
            if jobs.busy {
                task.state().set_laned();
                jobs.waiting.push_back(task);
                st.lane_waiting += 1;
                return cell;
            }
            jobs.busy = true;
            jobs.slot = st.busy_lanes.len();
            drop(jobs);
            st.busy_lanes.push(lane);
        }
        let priority = task.state().priority;
        st.queue.push(task);
        self.publish_len(&st);
        let grow = self.wake_or_grow(&mut st, priority);
        drop(st);
        if grow {
            self.start_reserved_worker();
        }
        cell
    }

    /// Keeps `queued_hint` in step with the queues. Call under the lock after every change.
    pub(crate) fn publish_len(&self, st: &State<S>) {
        // ORDERING: a hint for spinners, who confirm under the lock; Relaxed is enough.
        self.queued_hint
            .store(st.held() + st.private_len, Ordering::Relaxed);
    }

    /// Called after a queue slot was freed: wakes one blocked submitter, and hands back the
    /// async waiters to wake once the lock is released.
    pub(crate) fn room_freed(&self, st: &mut State<S>) -> Vec<Waker> {
        if st.room_waiters > 0 {
            self.room.notify_one();
        }
        // Every async waiter retries (see `waiters.rs`).
        st.async_waiters.take()
    }

    /// Stops intake and wakes everyone who waits on the pool. With `abort`, every queued job is
    /// flipped to `DROPPED` under the *same* lock acquisition, so no worker can start one of
    /// them after intake closed; they resolve `ShutDown` once the lock is released.
    pub(crate) fn close(&self, abort: bool) {
        let mut st = self.state.lock();
        let mut dropped = Vec::new();
        if abort {
            dropped = st.queue.drain_dropped();
            for (_, private) in &mut st.private {
                dropped.extend(
                    private
                        .drain(..)
                        .filter(|t| t.state().drop_waiting().is_some()),
                );
            }
            st.private_len = 0;
            // Every job waiting in a lane goes too. A lane whose head was just drained is idle
            // now; one whose head is running goes idle when the head ends.
            let mut laned = Vec::new();
            for lane in &st.busy_lanes {
                let mut jobs = lane.jobs.lock();
                laned.extend(
                    jobs.waiting
                        .drain(..)
                        .filter(|t| t.state().drop_waiting().is_some()),
                );
            }
            for task in &dropped {
                if let Some(lane) = task.meta().lane() {
                    let mut jobs = lane.jobs.lock();
                    jobs.busy = false;
                    let slot = jobs.slot;
                    drop(jobs);
                    lane_idle(&mut st, slot);
                }
            }
            st.lane_waiting -= laned.len();
            dropped.extend(laned);
            st.counts.shut_down += dropped.len() as u64;
            self.publish_len(&st);
        }
        // The monitor stops with intake, and with it the timers: workers still expire late jobs
        // when they reach them. Clearing also breaks the cycle pool → timer → job → pool that
        // would otherwise keep a dropped pool alive until its last deadline entry went.
        st.timers.clear();
        let mut wakers = Vec::new();
        let mut rooms = Vec::new();
        if !st.closed {
            st.closed = true;
            st.wakeups += st.idle;
            st.idle = 0;
            self.work.notify_all();
            self.room.notify_all();
            self.monitor.notify_all();
            wakers = st.async_waiters.take();
            rooms = st.inbox_waiters.clone();
        }
        drop(st);
        wake_all(wakers);
        for (_, room) in rooms {
            room.wake_waiters();
        }
        for task in dropped {
            task.discard(JobError::ShutDown);
        }
    }

    /// Waits until every worker and the monitor have exited, or the deadline passes. Called on
    /// one of the pool's own threads (a job, or a callback that the monitor runs), it does not
    /// wait for that thread, and it counts the thread as blocked meanwhile, so queued jobs
    /// still find a worker.
    pub(crate) fn wait_exit(&self, deadline: Option<Instant>) -> Result<(), ShutdownTimeout> {
        let role = blocking::role_in(blocking::pool_id(self));
        let me = usize::from(role == Some(Role::Worker));
        let monitor_is_me = role == Some(Role::Monitor);
        let others_alive = |st: &State<S>| st.workers > me || (st.monitor_alive && !monitor_is_me);
        if !others_alive(&self.state.lock()) {
            return Ok(());
        }
        // The pool of a thread waiting here is this one: it never refuses (shutdown does not
        // wait for its own thread), so the only effect is lending.
        let _blocked = blocking::enter(0);
        let mut st = self.state.lock();
        while others_alive(&st) {
            match deadline {
                None => self.exited.wait(&mut st),
                Some(deadline) => {
                    if self.exited.wait_until(&mut st, deadline).timed_out() && others_alive(&st) {
                        return Err(ShutdownTimeout {
                            running: st.running,
                            queued: st.queued(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    pub(crate) fn shutdown(
        &self,
        now: bool,
        deadline: Option<Instant>,
    ) -> Result<(), ShutdownTimeout> {
        self.close(now);
        self.wait_exit(deadline)
    }

    /// Queues one job per ready worker on its private queue; see `StatePool::broadcast`.
    pub(crate) fn broadcast<F, T>(self: &Arc<Self>, f: Arc<F>) -> Vec<Handle<T>>
    where
        F: Fn(&mut S) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let mut st = self.state.lock();
        if st.closed {
            st.counts.rejected += 1;
            return Vec::new();
        }
        let mut handles = Vec::with_capacity(st.private.len());
        for i in 0..st.private.len() {
            let f = f.clone();
            let (tx, rx) = oneshot::channel::<Outcome<T>>();
            let job = Stateful(move |state: &mut S| f(state));
            let Prepared { cell } = self.prepare(job, tx, Opts::default());
            st.private[i].1.push_back(cell.clone());
            handles.push(Handle::new(rx, JobRef::new(cell)));
        }
        st.private_len += handles.len();
        st.counts.submitted += handles.len() as u64;
        self.publish_len(&st);
        st.wakeups += st.idle;
        st.idle = 0;
        self.work.notify_all();
        handles
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
