//! The state every clone of a pool and every worker share: one lock over the queue and the
//! counts, three condvars, and the submission and shutdown logic.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{JobError, ShutdownTimeout};
use crate::handle::Handle;
use crate::job::{Dequeue, JobCell, JobFn, JobState, Outcome, Stateful, Task};
use crate::queue::Queue;
use crate::stats::{Counts, Stats};
use crate::worker;

/// A worker's private queue, for `broadcast`: (worker id, jobs).
pub(crate) type PrivateQueue<S> = (usize, VecDeque<Arc<dyn Task<S>>>);

/// A refused submission: the prepared job back, and why (`None`: not yet, the waker is
/// registered).
pub(crate) type Pending<J, T> = (Prepared<J, T>, Option<Refusal>);

/// A hook run on a worker thread (start or stop).
pub(crate) type Hook = Arc<dyn Fn() + Send + Sync>;

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
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) on_start: Option<Hook>,
    pub(crate) on_stop: Option<Hook>,
    pub(crate) init: Init<S>,
}

/// Everything under the pool's one lock.
pub(crate) struct State<S> {
    /// The shared FIFO.
    pub(crate) queue: Queue<S>,
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
    /// Futures of `submit_async` waiting for room: (id, waker).
    pub(crate) async_waiters: Vec<(u64, Waker)>,
    pub(crate) next_waiter: u64,
    /// `counts.finished()` when the pool last grew past `eager_workers`.
    pub(crate) finished_at_growth: u64,
    pub(crate) next_worker_id: usize,
    pub(crate) counts: Counts,
}

pub(crate) struct Shared<S> {
    pub(crate) state: Mutex<State<S>>,
    /// Idle workers wait here for jobs.
    pub(crate) work: Condvar,
    /// Blocked submitters wait here for room.
    pub(crate) room: Condvar,
    /// Shutdown waits here for workers to exit.
    pub(crate) exited: Condvar,
    /// Mirror of the queued count (shared + private), for workers spinning without the lock.
    pub(crate) queued_hint: AtomicUsize,
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
}

/// A job ready to be queued: its cell and the receiving end of its handle.
pub(crate) struct Prepared<J, T> {
    cell: Arc<JobCell<J, oneshot::Sender<Outcome<T>>>>,
    rx: oneshot::Receiver<Outcome<T>>,
}

impl<J, T> Prepared<J, T> {
    /// Takes the job back out of a refused submission.
    pub(crate) fn into_job(self) -> J {
        match Arc::try_unwrap(self.cell) {
            Ok(cell) => cell.into_parts().0,
            Err(_) => unreachable!("a refused job's cell is never shared"),
        }
    }
}

impl<S: 'static> Shared<S> {
    pub(crate) fn new(config: Config<S>) -> Self {
        Self {
            state: Mutex::new(State {
                queue: Queue::new(),
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
                async_waiters: Vec::new(),
                next_waiter: 0,
                finished_at_growth: 0,
                next_worker_id: 0,
                counts: Counts::default(),
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            exited: Condvar::new(),
            queued_hint: AtomicUsize::new(0),
            config,
        }
    }

    /// Wraps a job in its cell. Done outside the lock: allocation is the slow part.
    pub(crate) fn prepare<J, T>(self: &Arc<Self>, job: J) -> Prepared<J, T>
    where
        J: JobFn<S, T>,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let pool: Arc<dyn Dequeue> = self.clone();
        Prepared {
            cell: Arc::new(JobCell::new(job, tx, pool)),
            rx,
        }
    }

    /// Queues a prepared job, waiting for room as `wait` allows.
    pub(crate) fn submit<J, T>(
        self: &Arc<Self>,
        prepared: Prepared<J, T>,
        wait: Wait,
    ) -> Result<Handle<T>, (Prepared<J, T>, Refusal)>
    where
        J: JobFn<S, T>,
        T: Send + 'static,
    {
        let mut st = self.state.lock();
        loop {
            if st.closed {
                st.counts.rejected += 1;
                return Err((prepared, Refusal::ShutDown));
            }
            if st.queue.len() < self.config.queue_capacity {
                break;
            }
            let deadline = match wait {
                Wait::Never => {
                    st.counts.rejected += 1;
                    return Err((prepared, Refusal::Full));
                }
                Wait::Until(deadline) => deadline,
            };
            st.room_waiters += 1;
            match deadline {
                None => self.room.wait(&mut st),
                Some(deadline) => {
                    // Room is checked before the clock: a waiter notified at its deadline
                    // still takes the slot it was woken for.
                    let timed_out = self.room.wait_until(&mut st, deadline).timed_out();
                    if timed_out && !st.closed && st.queue.len() >= self.config.queue_capacity {
                        st.room_waiters -= 1;
                        st.counts.rejected += 1;
                        return Err((prepared, Refusal::Timeout));
                    }
                }
            }
            st.room_waiters -= 1;
        }
        Ok(self.enqueue(st, prepared))
    }

    /// Queues a prepared job if there is room now, else registers `waker` under `waiter`.
    pub(crate) fn poll_submit<J, T>(
        self: &Arc<Self>,
        prepared: Prepared<J, T>,
        waiter: &mut Option<u64>,
        waker: &Waker,
    ) -> Result<Handle<T>, Pending<J, T>>
    where
        J: JobFn<S, T>,
        T: Send + 'static,
    {
        let mut st = self.state.lock();
        if st.closed {
            remove_waiter(&mut st, waiter);
            st.counts.rejected += 1;
            return Err((prepared, Some(Refusal::ShutDown)));
        }
        if st.queue.len() < self.config.queue_capacity {
            remove_waiter(&mut st, waiter);
            return Ok(self.enqueue(st, prepared));
        }
        match waiter.and_then(|id| st.async_waiters.iter_mut().find(|(w, _)| *w == id)) {
            Some((_, registered)) => registered.clone_from(waker),
            None => {
                let id = st.next_waiter;
                st.next_waiter += 1;
                st.async_waiters.push((id, waker.clone()));
                *waiter = Some(id);
            }
        }
        Err((prepared, None))
    }

    /// Forgets an async waiter (its future was dropped).
    pub(crate) fn forget_waiter(&self, waiter: &mut Option<u64>) {
        if waiter.is_some() {
            remove_waiter(&mut self.state.lock(), waiter);
        }
    }

    /// Pushes a job (room already checked), then wakes or starts a worker for it.
    fn enqueue<J, T>(
        self: &Arc<Self>,
        mut st: MutexGuard<'_, State<S>>,
        prepared: Prepared<J, T>,
    ) -> Handle<T>
    where
        J: JobFn<S, T>,
        T: Send + 'static,
    {
        let Prepared { cell, rx } = prepared;
        st.queue.push(cell.clone());
        st.counts.submitted += 1;
        self.publish_len(&st);
        let grow = self.wake_or_grow(&mut st);
        drop(st);
        if grow {
            self.start_reserved_worker();
        }
        Handle::new(rx, cell)
    }

    /// Makes sure some worker will take the job just queued. Returns `true` if the caller must
    /// start a worker (a slot was reserved for it in `workers`).
    fn wake_or_grow(&self, st: &mut State<S>) -> bool {
        if st.idle > 0 {
            st.idle -= 1;
            st.wakeups += 1;
            self.work.notify_one();
            return false;
        }
        let queued = st.queue.len() + st.private_len;
        if st.spinning >= queued {
            return false; // a spinning worker sees `queued_hint` and takes it
        }
        let cfg = &self.config;
        if st.workers >= cfg.max_workers {
            return false;
        }
        // Below the CPU count, grow at once. Past it, grow only while no job has finished since
        // the last growth: the workers are stuck in blocking calls, not merely behind a burst
        // of short jobs (which extra threads would only slow down).
        let finished = st.counts.finished();
        if st.workers >= cfg.eager_workers && finished != st.finished_at_growth {
            st.finished_at_growth = finished;
            return false;
        }
        st.finished_at_growth = finished;
        st.workers += 1;
        st.starting += 1;
        true
    }

    /// Starts a worker whose slot was reserved by `wake_or_grow`. If the OS refuses, the slot is
    /// released; the job stays queued for the workers that exist (there is always at least one:
    /// `min_workers >= 1` and started workers never retire below it).
    fn start_reserved_worker(self: &Arc<Self>) {
        if worker::spawn(self, None).is_err() {
            let mut st = self.state.lock();
            st.workers -= 1;
            st.starting -= 1;
            st.counts.start_failures += 1;
            self.exited.notify_all();
        }
    }

    /// Keeps `queued_hint` in step with the queues. Call under the lock after every change.
    pub(crate) fn publish_len(&self, st: &State<S>) {
        // ORDERING: a hint for spinners, who confirm under the lock; Relaxed is enough.
        self.queued_hint
            .store(st.queue.len() + st.private_len, Ordering::Relaxed);
    }

    /// Called after a queue slot was freed: wakes one blocked submitter, and hands back the
    /// async waiters to wake once the lock is released.
    pub(crate) fn room_freed(&self, st: &mut State<S>) -> Vec<(u64, Waker)> {
        if st.room_waiters > 0 {
            self.room.notify_one();
        }
        // Every async waiter retries: simple, and a future dropped after its wake cannot
        // swallow the slot. The herd is only the futures blocked on a full queue.
        std::mem::take(&mut st.async_waiters)
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
                dropped.extend(private.drain(..).filter(|t| t.state().drop_queued()));
            }
            st.private_len = 0;
            st.counts.shut_down += dropped.len() as u64;
            self.publish_len(&st);
        }
        let mut wakers = Vec::new();
        if !st.closed {
            st.closed = true;
            st.wakeups += st.idle;
            st.idle = 0;
            self.work.notify_all();
            self.room.notify_all();
            wakers = std::mem::take(&mut st.async_waiters);
        }
        drop(st);
        wake_all(wakers);
        for task in dropped {
            task.discard(JobError::ShutDown);
        }
    }

    /// Waits until every worker has exited (or only the calling worker is left, when a job shuts
    /// its own pool down), or the deadline passes.
    pub(crate) fn wait_exit(&self, deadline: Option<Instant>) -> Result<(), ShutdownTimeout> {
        let me = usize::from(worker::is_worker_of(self));
        let mut st = self.state.lock();
        while st.workers > me {
            match deadline {
                None => self.exited.wait(&mut st),
                Some(deadline) => {
                    if self.exited.wait_until(&mut st, deadline).timed_out() && st.workers > me {
                        return Err(ShutdownTimeout {
                            running: st.running,
                            queued: st.queue.len() + st.private_len,
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
            let Prepared { cell, rx } = self.prepare(Stateful(move |state: &mut S| f(state)));
            st.private[i].1.push_back(cell.clone());
            handles.push(Handle::new(rx, cell));
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
            queued: st.queue.len() + st.private_len,
            running: st.running,
            submitted: c.submitted,
            completed: c.completed,
            panicked: c.panicked,
            cancelled: c.cancelled,
            expired: c.expired,
            shut_down: c.shut_down,
            rejected: c.rejected,
            start_failures: c.start_failures,
        }
    }
}

impl<S: 'static> Dequeue for Shared<S> {
    fn cancel_queued(&self, job: &JobState) -> bool {
        let mut st = self.state.lock();
        if !job.drop_queued() {
            return false;
        }
        // A broadcast job lives in a private queue; everything else in the shared one.
        let in_private = (st.private_len > 0)
            .then(|| {
                st.private
                    .iter()
                    .position(|(_, q)| q.iter().any(|t| std::ptr::eq(t.state(), job)))
            })
            .flatten();
        if let Some(i) = in_private {
            st.private[i].1.retain(|t| !std::ptr::eq(t.state(), job));
            st.private_len -= 1;
        } else {
            st.queue.note_dropped();
        }
        st.counts.cancelled += 1;
        self.publish_len(&st);
        let wakers = self.room_freed(&mut st);
        drop(st);
        wake_all(wakers);
        true
    }
}

fn remove_waiter<S>(st: &mut State<S>, waiter: &mut Option<u64>) {
    if let Some(id) = waiter.take() {
        st.async_waiters.retain(|(w, _)| *w != id);
    }
}

pub(crate) fn wake_all(wakers: Vec<(u64, Waker)>) {
    for (_, waker) in wakers {
        waker.wake();
    }
}
