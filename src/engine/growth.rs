//! How the pool finds a worker for every job: waking idle workers one at a time, starting
//! new ones (eagerly up to the CPU count, past it only while its workers block rather than
//! compute), lending a worker to a nested wait, and the monitor thread that watches the
//! backlog and start deadlines.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::sync::park::MutexGuard;

use super::probe::ThreadProbe;
use super::worker;
use super::{Deferred, Shared, State};
use crate::job::Priority;
use crate::trace;

/// How often the armed monitor looks at the backlog and at what its workers are doing.
const TICK: Duration = Duration::from_micros(200);

/// The longest the armed monitor waits between looks while nothing needs adding (it backs off
/// from `TICK` while every worker computes, and starts over at `TICK` once it adds one).
const LONGEST_TICK: Duration = Duration::from_millis(5);

/// Where the OS does not say what a thread is doing: how long every worker must be busy with
/// no job finishing before the monitor grows the pool past the CPU count.
const STALL_TIME: Duration = Duration::from_millis(1);

/// In a pool that grows behind long jobs, how long a job must have run to count as long: longer than
/// a short job waits for a busy CPU.
const LONG_JOB: Duration = Duration::from_millis(10);

/// A long job computes when its thread got at least this share (1/n) of the time the monitor
/// watched it. A thread waiting on a lock or on I/O gets next to none; one that computes on a
/// machine crowded with runnable threads gets its fair share of the CPUs, which is small: 10
/// threads computing on 2 CPUs get a fifth each.
const COMPUTING_SHARE: u32 = 16;

/// The most workers the monitor looks at per tick (a few microseconds each).
const SAMPLES: usize = 8;

/// A job the monitor saw running for `LONG_JOB` or more: which worker, since when, and the
/// thread's CPU time when first seen.
#[derive(Clone, Copy)]
struct Sight {
    worker: usize,
    since: u64,
    cpu: Duration,
    at: Instant,
}

/// What the monitor saw at the start of its current window.
#[derive(Clone, Copy)]
struct Window {
    at: Instant,
    /// How long this window lasts.
    length: Duration,
    finished: u64,
    /// Blocked workers seen at its start.
    seen: usize,
}

/// Of `sampled` workers, `blocked` were asleep in the OS: scaled to all `workers`, rounded
/// down. Threads asleep while the pool has no idle worker are blocked in their jobs (on I/O, a
/// lock, a sleep); each earns one more worker. Workers on the CPU earn none, so CPU-bound jobs
/// never oversubscribe the pool however long they run.
fn blocked_workers(blocked: usize, sampled: usize, workers: usize) -> usize {
    if sampled == 0 {
        return 0;
    }
    blocked * workers / sampled
}

/// What a caller must do, once it has released the lock, for the job it just queued.
#[must_use]
pub(crate) enum Kick {
    None,
    /// Notify `work`: an idle worker was booked out of `idle`.
    Wake,
    /// Start the worker reserved in `workers`.
    Start,
}

impl<S: 'static> Shared<S> {
    /// Makes sure some worker will take the job just queued: says which worker the caller
    /// must wake or start once it has released the lock (the choice is booked already).
    pub(crate) fn wake_or_grow(&self, st: &mut State<S>, priority: Priority) -> Kick {
        if !self.unserved(st) {
            return Kick::None;
        }
        if st.idle > 0 {
            // One wake-up in flight at a time: the woken worker, finding a backlog, wakes the
            // next (`wake_for_backlog`). Waking one sleeper per submit instead costs a futex
            // pair per job when a fast producer keeps emptying the queue.
            if st.wakeups == 0 {
                self.book_wake(st);
                return Kick::Wake;
            }
            return Kick::None;
        }
        // Past the CPU count, a submit never starts a thread itself: it arms the monitor,
        // which starts workers while the busy ones block instead of using the CPU (see
        // `monitor`). An interactive job is the exception: someone waits on it now.
        if st.workers >= self.config.eager_workers && priority != Priority::Interactive {
            self.arm_monitor(st);
            return Kick::None;
        }
        if self.reserve_worker(st) {
            Kick::Start
        } else {
            Kick::None
        }
    }

    /// Does what `wake_or_grow` booked. Call without the lock.
    pub(crate) fn kick(&self, kick: Kick) {
        match kick {
            Kick::None => {}
            Kick::Wake => self.work.notify_one(),
            Kick::Start => self.start_reserved_worker(),
        }
    }

    /// A worker counted as coming (see `job::Handoff`) is busy after all: stop counting it,
    /// and wake or start a worker for the jobs a submitter left to it meanwhile.
    pub(crate) fn handoff_failed(&self) {
        // ORDERING: SeqCst, as the raise (see `Shared::finishing`).
        self.finishing.fetch_sub(1, Ordering::SeqCst);
        let mut st = self.state.lock();
        let kick = self.wake_or_grow(&mut st, Priority::Normal);
        drop(st);
        self.kick(kick);
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

    /// Wakes one idle worker (it is counted out of `idle` and into `wakeups` at once), under
    /// the lock: for the rare paths (a worker that failed to start) that hold the lock deep
    /// inside; the frequent ones book the wake-up and notify after (see `book_wake`).
    pub(crate) fn wake_one(&self, st: &mut State<S>) {
        self.book_wake(st);
        self.work.notify_one();
    }

    /// Counts one idle worker out of `idle` and into `wakeups`; the caller notifies `work`
    /// once it has released the lock. (Notifying after the lock is safe: the worker joined
    /// `idle` and began its wait under the lock, so the notification cannot come before its
    /// wait; if another worker begins a wait meanwhile and takes the notification, the first
    /// stays counted in `idle`.) A holder that makes the futex call inside the lock keeps
    /// every other thread off the lock for a system call.
    pub(super) fn book_wake(&self, st: &mut State<S>) {
        st.idle -= 1;
        st.wakeups += 1;
    }

    /// Called by a worker that just took a job: if jobs still wait beyond the workers on their
    /// way, book a wake-up for one more idle worker (the chain behind `wake_or_grow`'s
    /// one-at-a-time rule), or, with none idle, arm the monitor. Returns what to do once the
    /// lock is released.
    pub(crate) fn wake_for_backlog(&self, st: &mut State<S>) -> Kick {
        if !self.unserved(st) {
            return Kick::None;
        }
        if st.idle == 0 {
            self.arm_monitor(st);
        } else if st.wakeups == 0 {
            self.book_wake(st);
            return Kick::Wake;
        }
        Kick::None
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
        true
    }

    /// The monitor thread. Two duties:
    /// - **Growth past the CPU count.** Parked while the pool keeps up; armed (`arm_monitor`)
    ///   when jobs wait and no worker is idle, it looks every `TICK`. If the backlog is still
    ///   unserved, it compares the CPU time the process used in that window with the workers
    ///   that ran jobs: workers that use no CPU are blocked, and while the CPU has room it
    ///   starts one worker per blocked one (up to the limit), so a flood of short blocking
    ///   calls grows the pool within a few ticks while CPU-bound jobs never oversubscribe it.
    ///   Where no CPU clock exists, it grows by one when no job finished for `STALL_TIME`.
    ///   A pool that asked for it (`grow_behind_long_jobs`: a database's readers, whose long
    ///   reads compute and must not keep short ones waiting) grows instead to twice its long
    ///   jobs plus the CPU count (see `workers_short_of_long_jobs`).
    ///   Either way queued jobs never wait forever behind blocked workers while the limit
    ///   allows more, even if no further submit comes; it costs nothing while disarmed.
    /// - **Start deadlines.** It sleeps until the earliest deadline of a waiting job and
    ///   expires every job whose deadline has passed, so `Expired` arrives on time even when
    ///   no worker looks at the queue.
    pub(crate) fn monitor(&self) {
        let mut st = self.state.lock();
        // While armed: the window the next decision looks back on.
        let mut window: Option<Window> = None;
        // How long the next window lasts. Kept across disarming: a pool that keeps arming the
        // monitor with nothing to add (a burst of short jobs) is not looked at every tick.
        let mut length = TICK;
        // In a pool that grows behind long jobs: the long jobs seen so far (see `Sight`).
        let mut sights: Vec<Sight> = Vec::new();
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
                st.monitor_armed && self.unserved(&st) && st.workers < self.max_workers(&st);
            if !watching {
                st.monitor_armed = false;
                window = None;
            } else {
                let due = window.is_none_or(|w| now >= w.at + w.length);
                if due {
                    let finished = st.counts.finished();
                    let probing = !st.probes.is_empty();
                    let long_jobs = self.config.grow_behind_long_jobs;
                    // Just armed: only start the window (arming can be frequent; looking costs).
                    let seen = match window {
                        None => 0,
                        Some(_) if long_jobs => {
                            self.workers_short_of_long_jobs(&mut st, &mut sights)
                        }
                        Some(w) => self.blocked_now(&mut st, w, finished),
                    };
                    // With probes, a worker counts as blocked only if seen so on two looks in a
                    // row: a page fault or a preemption is no reason to grow. Workers already
                    // starting count against it.
                    let add = match window {
                        None => 0,
                        Some(w) if probing || long_jobs => seen.min(w.seen),
                        Some(_) => seen,
                    }
                    .saturating_sub(st.starting);
                    // Back off only while nobody is seen blocked.
                    length = match window {
                        _ if !probing || long_jobs => STALL_TIME,
                        Some(_) if seen == 0 => (length * 2).min(LONGEST_TICK),
                        Some(_) => TICK,
                        None => length,
                    };
                    window = Some(Window {
                        at: Instant::now(),
                        length,
                        finished,
                        seen,
                    });
                    let mut started = 0;
                    while started < add && self.unserved(&st) && self.reserve_worker(&mut st) {
                        started += 1;
                    }
                    if started > 0 {
                        drop(st);
                        for _ in 0..started {
                            self.start_reserved_worker();
                        }
                        st = self.state.lock();
                        continue 'watch;
                    }
                }
            }
            let next_timer = st.timers.peek().map(|t| t.at);
            let wake_at = match (window.map(|w| w.at + w.length), next_timer) {
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

    /// How many workers are blocked now, beyond those replaced already (see `monitor`).
    /// Reads what up to `SAMPLES` workers are doing, without the lock; without probes, counts
    /// one if no job finished during the window `w`.
    fn blocked_now(&self, st: &mut MutexGuard<'_, State<S>>, w: Window, finished: u64) -> usize {
        if st.idle > 0 {
            return 0; // an idle worker takes the next job
        }
        if st.workers <= st.blocked && st.starting == 0 {
            // Every thread waits on the pool in a nested wait and its replacement could not
            // start: try again now.
            return 1;
        }
        if st.probes.is_empty() {
            return usize::from(finished == w.finished);
        }
        let start = st.next_probe % st.probes.len();
        let picked: Vec<_> = st
            .probes
            .iter()
            .cycle()
            .skip(start)
            .take(SAMPLES.min(st.probes.len()))
            .map(|(_, probe)| probe.clone())
            .collect();
        st.next_probe = start + picked.len();
        let asleep = MutexGuard::unlocked(st, || picked.iter().filter(|p| p.is_blocked()).count());
        // Scaled to the workers that run (those starting have no probe yet). Threads in nested
        // waits read as asleep too; they are replaced already.
        blocked_workers(asleep, picked.len(), st.probes.len()).saturating_sub(st.blocked)
    }

    /// In a pool that grows behind long jobs (called while jobs wait and no worker is idle):
    /// how many workers it lacks to run twice the jobs running for `LONG_JOB` or more, plus the
    /// CPU count. So long jobs never hold the short ones behind them: the short ones get at
    /// least as many threads as the long ones (and so, from the OS scheduler, at least as much
    /// CPU), and the CPU count on top. While no job is long (a CPU too busy to finish short
    /// jobs quickly), it asks for none: more threads would only share the same CPU.
    ///
    /// A job counts as long when it has run `LONG_JOB` and its thread computed for at least
    /// `1/COMPUTING_SHARE` of the time the monitor watched it: a short job whose thread waits for a CPU
    /// held by others (no CPU time) is not long, however old. The workers' own waits (on
    /// SQLite's locks, on the pool's) are no reason to grow either: the probes' "blocked" rule
    /// is not used here. Reads the probes without the lock.
    fn workers_short_of_long_jobs(
        &self,
        st: &mut MutexGuard<'_, State<S>>,
        sights: &mut Vec<Sight>,
    ) -> usize {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let long_job = u64::try_from(LONG_JOB.as_nanos()).unwrap_or(u64::MAX);
        let old: Vec<(usize, u64, Option<Arc<ThreadProbe>>)> = st
            .busy_since
            .iter()
            // ORDERING: hints written by each worker; a stale one only delays a decision.
            .map(|(id, since)| (*id, since.load(Ordering::Relaxed)))
            .filter(|&(_, since)| since != 0 && now.saturating_sub(since) >= long_job)
            .map(|(id, since)| {
                let probe = st.probes.iter().find(|(w, _)| *w == id);
                (id, since, probe.map(|(_, p)| p.clone()))
            })
            .collect();
        let workers = st.workers;
        let long = MutexGuard::unlocked(st, || {
            let at = Instant::now();
            let mut long = 0;
            let mut seen = Vec::with_capacity(old.len());
            for (worker, since, probe) in old {
                let Some(cpu) = probe.and_then(|p| p.cpu_time()) else {
                    long += 1; // no CPU clock: its age alone decides
                    continue;
                };
                match sights
                    .iter()
                    .find(|s| s.worker == worker && s.since == since)
                {
                    Some(first) => {
                        let watched = at.saturating_duration_since(first.at);
                        if cpu.saturating_sub(first.cpu) * COMPUTING_SHARE >= watched {
                            long += 1;
                        }
                        seen.push(*first);
                    }
                    None => seen.push(Sight {
                        worker,
                        since,
                        cpu,
                        at,
                    }),
                }
            }
            *sights = seen;
            long
        });
        (2 * long + self.config.eager_workers).saturating_sub(workers)
    }

    /// Starts a worker whose slot was reserved by `reserve_worker`. If the OS refuses, the slot
    /// is released; the job stays queued for the workers that exist (there is always at least
    /// one: `min_workers >= 1` and started workers never retire below it).
    pub(crate) fn start_reserved_worker(&self) {
        let started = match self.me.upgrade() {
            Some(me) => match worker::spawn(&me, None) {
                Ok(()) => true,
                Err(e) => {
                    trace::worker_start_failed(&e);
                    false
                }
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_workers_scale_the_sample_to_the_pool() {
        assert_eq!(blocked_workers(8, 8, 8), 8); // all asleep: one more each
        assert_eq!(blocked_workers(0, 8, 64), 0); // all on the CPU: none
        assert_eq!(blocked_workers(4, 8, 64), 32);
        assert_eq!(blocked_workers(1, 3, 3), 1);
        assert_eq!(blocked_workers(1, 8, 7), 0); // rounded down
        assert_eq!(blocked_workers(0, 0, 5), 0); // nothing sampled
    }
}
