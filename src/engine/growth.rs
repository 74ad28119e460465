//! How the pool finds a worker for every job: waking idle workers one at a time, starting
//! new ones (eagerly up to the CPU count, past it only while workers are stuck), lending a
//! worker to a nested wait, and the monitor thread that watches for stalls and start deadlines.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::worker;
use super::{Deferred, Shared, State};
use crate::job::Priority;

/// How long every worker must be busy with no job finishing before the monitor grows the pool
/// past the CPU count.
const STALL_TIME: Duration = Duration::from_millis(1);

/// A job that ran at least this long while others waited starts one more worker as it ends:
/// the queue is served by blocking calls, and more threads help.
const LONG_JOB: Duration = Duration::from_micros(500);

impl<S: 'static> Shared<S> {
    /// Makes sure some worker will take the job just queued. Returns `true` if the caller must
    /// start a worker (a slot was reserved for it in `workers`).
    pub(crate) fn wake_or_grow(&self, st: &mut State<S>, priority: Priority) -> bool {
        if !self.unserved(st) {
            return false;
        }
        if st.idle > 0 {
            // One wake-up in flight at a time: the woken worker, finding a backlog, wakes the
            // next (`wake_for_backlog`). Waking one sleeper per submit instead costs a futex
            // pair per job when a fast producer keeps emptying the queue.
            if st.wakeups == 0 {
                self.wake_one(st);
            }
            return false;
        }
        // Past the CPU count, a submit never starts a thread itself: it arms the monitor,
        // which starts one if the pool stays stalled (every worker busy, no job finishing) for
        // `STALL_TIME`. Started workers then chain further growth (`grow_on_start`). An
        // interactive job is the exception: someone waits on it now.
        if st.workers >= self.config.eager_workers && priority != Priority::Interactive {
            self.arm_monitor(st);
            return false;
        }
        self.reserve_worker(st)
    }

    /// A worker counted as coming (see `job::Handoff`) is busy after all: stop counting it,
    /// and wake or start a worker for the jobs a submitter left to it meanwhile.
    pub(crate) fn handoff_failed(&self) {
        // ORDERING: SeqCst, as the raise (see `Shared::finishing`).
        self.finishing.fetch_sub(1, Ordering::SeqCst);
        let mut st = self.state.lock();
        let grow = self.wake_or_grow(&mut st, Priority::Normal);
        drop(st);
        if grow {
            self.start_reserved_worker();
        }
    }

    /// Asks the monitor to watch for a stall. Called by whoever sees jobs waiting with no idle
    /// worker to take them: a submitter, or a worker that has just taken a job (the last
    /// submit may have come while idle workers were still being woken, one at a time).
    pub(crate) fn arm_monitor(&self, st: &mut State<S>) {
        if !st.monitor_armed && st.workers < self.max_workers(st) {
            st.monitor_armed = true;
            self.monitor.notify_one();
        }
    }

    /// Wakes one idle worker (it is counted out of `idle` and into `wakeups` at once).
    pub(crate) fn wake_one(&self, st: &mut State<S>) {
        st.idle -= 1;
        st.wakeups += 1;
        self.work.notify_one();
    }

    /// Called by a worker that just took a job: if jobs still wait beyond the workers on their
    /// way, wake one more idle worker (the chain behind `wake_or_grow`'s one-at-a-time rule),
    /// or, with none idle, arm the monitor.
    pub(crate) fn wake_for_backlog(&self, st: &mut State<S>) {
        if !self.unserved(st) {
            return;
        }
        if st.idle == 0 {
            self.arm_monitor(st);
        } else if st.wakeups == 0 {
            self.wake_one(st);
        }
    }

    /// Workers certain to look at the queue soon: spinning on it, just finished a job,
    /// notified but not yet running, or still starting. On a busy machine the last two can
    /// take a scheduler tick; waking or starting more threads for their jobs only adds to the
    /// crowd.
    pub(crate) fn coming(&self, st: &State<S>) -> usize {
        // ORDERING: SeqCst pairs with the worker's raise before it delivers; a caller that got
        // that outcome and then submits sees the raise.
        st.spinning + st.wakeups + st.starting + self.finishing.load(Ordering::SeqCst)
    }

    /// `true` if more jobs wait, that a worker could start now, than there are workers on
    /// their way to take them.
    pub(crate) fn unserved(&self, st: &State<S>) -> bool {
        self.startable(st) > self.coming(st)
    }

    /// Waiting jobs a worker may start now: background jobs beyond the background limit wait.
    pub(crate) fn startable(&self, st: &State<S>) -> usize {
        st.queue.startable(self.bg_room(st)) + st.private_len
    }

    /// How many more background jobs may start now.
    pub(crate) fn bg_room(&self, st: &State<S>) -> usize {
        self.config.background_workers.saturating_sub(st.bg_running)
    }

    /// The worker limit now: `max_workers`, plus one per worker blocked in a nested wait.
    pub(crate) fn max_workers(&self, st: &State<S>) -> usize {
        self.config.max_workers + st.blocked
    }

    /// Counts a new worker in, if the worker limit allows. Returns `true` if the caller must
    /// start it (with `start_reserved_worker`, outside the lock). After intake closed, only
    /// while jobs still wait: a graceful shutdown drains the queue, and a worker blocked
    /// meanwhile still lends its place.
    pub(crate) fn reserve_worker(&self, st: &mut State<S>) -> bool {
        if (st.closed && st.queued() == 0) || st.workers >= self.max_workers(st) {
            return false;
        }
        st.workers += 1;
        st.starting += 1;
        st.finished_at_mark = st.counts.finished();
        true
    }

    /// Called by a worker whose timed job ran for `ran` while a backlog waited: if that was at
    /// least `LONG_JOB`, reserve one more worker if the backlog still exceeds the workers on
    /// their way.
    pub(crate) fn grow_after_job(&self, st: &mut State<S>, ran: Duration) -> bool {
        ran >= LONG_JOB && self.unserved(st) && self.reserve_worker(st)
    }

    /// Called by a worker that just started, under the lock: if the pool is still stalled (a
    /// backlog beyond the workers on their way, and no job finished since the last worker was
    /// reserved), reserve the next worker. This chains growth at thread-start speed for as
    /// long as the workers stay stuck in blocking calls, and stops at the first finished job.
    pub(crate) fn grow_on_start(&self, st: &mut State<S>) -> bool {
        self.unserved(st) && st.counts.finished() == st.finished_at_mark && self.reserve_worker(st)
    }

    /// The monitor thread. Two duties:
    /// - **Stalls.** Parked while the pool is healthy; armed (`arm_monitor`) when jobs wait and
    ///   no worker is idle, it then looks every `STALL_TIME` and starts a worker if no job
    ///   finished meanwhile and a backlog waits. It guarantees that queued jobs never wait
    ///   forever behind stuck workers while the worker limit allows more, even if no further
    ///   submit comes; it costs nothing while disarmed.
    /// - **Start deadlines.** It sleeps until the earliest deadline of a waiting job and
    ///   expires every job whose deadline has passed, so `Expired` arrives on time even when
    ///   no worker looks at the queue.
    pub(crate) fn monitor(&self) {
        let mut st = self.state.lock();
        // While armed: when to look next, and the finished count when the window began.
        let mut window: Option<(Instant, u64)> = None;
        'watch: loop {
            if st.closed {
                break 'watch;
            }
            let now = Instant::now();
            let mut after = Deferred::new();
            self.expire_due(&mut st, now, &mut after);
            if !after.is_empty() {
                drop(st);
                after.run(self);
                st = self.state.lock();
                continue 'watch;
            }
            let watching =
                st.monitor_armed && st.queued() > 0 && st.workers < self.max_workers(&st);
            if !watching {
                st.monitor_armed = false;
                window = None;
            } else {
                match window {
                    None => window = Some((now + STALL_TIME, st.counts.finished())),
                    Some((at, seen)) if now >= at => {
                        let stuck =
                            st.counts.finished() == seen && st.starting == 0 && st.idle == 0;
                        window = Some((now + STALL_TIME, st.counts.finished()));
                        if stuck && self.unserved(&st) && self.reserve_worker(&mut st) {
                            drop(st);
                            self.start_reserved_worker();
                            st = self.state.lock();
                            continue 'watch;
                        }
                    }
                    Some(_) => {}
                }
            }
            let next_timer = st.timers.peek().map(|t| t.at);
            let wake_at = match (window.map(|(at, _)| at), next_timer) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match wake_at {
                Some(at) => {
                    self.monitor.wait_until(&mut st, at);
                }
                None => self.monitor.wait(&mut st),
            }
        }
        st.monitor_alive = false;
        self.exited.notify_all();
    }

    /// Starts a worker whose slot was reserved by `reserve_worker`. If the OS refuses, the slot
    /// is released; the job stays queued for the workers that exist (there is always at least
    /// one: `min_workers >= 1` and started workers never retire below it).
    pub(crate) fn start_reserved_worker(&self) {
        let started = match self.me.upgrade() {
            Some(me) => worker::spawn(&me, None).is_ok(),
            None => false,
        };
        if !started {
            let mut st = self.state.lock();
            st.workers -= 1;
            self.start_failed(&mut st);
            self.exited.notify_all();
        }
    }

    /// Books a worker that will never start (the OS refused the thread, or its start hook or
    /// init panicked). Submitters counted it as `coming` and woke nobody for their jobs, so its
    /// claim passes to an idle worker if jobs wait.
    pub(crate) fn start_failed(&self, st: &mut State<S>) {
        st.starting -= 1;
        st.counts.start_failures += 1;
        if self.unserved(st) {
            if st.idle > 0 {
                self.wake_one(st);
            } else {
                // Nobody is free to take the jobs that waited for this worker: the monitor
                // tries again while the pool stays stuck (a nested wait needs that thread).
                self.arm_monitor(st);
            }
        }
    }
}
