//! Submission: queueing a prepared job (waiting for room as allowed, lending a worker when
//! a pool thread waits), its async form, inbox room, and broadcast.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;
use std::time::Instant;

use crate::sync::park::MutexGuard;

use super::{Opts, Shared, State};
use crate::backoff::Backoff;
use crate::blocking;
use crate::job::{self, JobCell, JobFn, OutcomeSink, Room, Task};

/// A refused submission: the prepared job back, and why (`None`: not yet, the waker is
/// registered).
pub(crate) type Pending<S, J, D> = (Prepared<S, J, D>, Option<Refusal>);

/// A queued job's cell.
pub(crate) type Queued<S, J, D> = Arc<Cell<S, J, D>>;

/// A job cell of this engine: its pool pointer is a thin one.
pub(crate) type Cell<S, J, D> = JobCell<S, J, D, Shared<S>>;

/// A refused submission: the prepared job back, and why.
pub(crate) type Refused<S, J, D> = (Prepared<S, J, D>, Refusal);

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

impl Refusal {
    /// Why, in a few words (for diagnostics).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Full => "queue full",
            Self::Timeout => "timed out waiting for room",
            Self::ShutDown => "shut down",
            Self::WouldDeadlock => "would deadlock",
        }
    }
}

/// A job ready to be queued: its cell, not yet shared.
pub(crate) struct Prepared<S, J, D: OutcomeSink> {
    pub(super) cell: Arc<Cell<S, J, D>>,
}

impl<S, J, D: OutcomeSink> Prepared<S, J, D> {
    /// Takes the job back out of a refused submission (its sink is dropped).
    pub(crate) fn into_job(self) -> J {
        match Arc::try_unwrap(self.cell) {
            Ok(cell) => cell.into_parts().0,
            Err(_) => unreachable!("a refused job's cell is never shared"),
        }
    }
}

impl<S: 'static> Shared<S> {
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
    ) -> Arc<Cell<S, J, D>>
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
        let kick = self.wake_or_grow(&mut st, priority);
        drop(st);
        self.kick(kick);
        cell
    }

    /// Queues one job per ready worker on its private queue (see `StatePool::broadcast`),
    /// each made by `make` with its sink; returns the queued cells, with `make`'s other part.
    pub(crate) fn broadcast<J, D, R>(
        self: &Arc<Self>,
        mut make: impl FnMut() -> (J, D, R),
    ) -> Vec<(Queued<S, J, D>, R)>
    where
        J: JobFn<S, D::Value>,
        D: OutcomeSink,
    {
        let mut st = self.state.lock();
        if st.closed {
            st.counts.rejected += 1;
            return Vec::new();
        }
        let mut queued = Vec::with_capacity(st.private.len());
        for i in 0..st.private.len() {
            let (job, sink, rest) = make();
            let Prepared { cell } = self.prepare(job, sink, Opts::default());
            st.private[i].1.push_back(cell.clone());
            queued.push((cell, rest));
        }
        st.private_len += queued.len();
        st.counts.submitted += queued.len() as u64;
        self.publish_len(&st);
        st.wakeups += st.idle;
        st.idle = 0;
        self.work.notify_all();
        queued
    }
}
