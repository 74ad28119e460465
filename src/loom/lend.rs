//! Model checking of the lend decision (see `blocking.rs`) under `loom`: a job that blocks on a
//! job of its own pool must always find that job run — a woken idle worker, a worker on its
//! way back, or a lent one — whatever the interleaving, and a pool that cannot lend refuses.
//!
//! This is a transcription, not the engine itself: the engine's state lives under a
//! `parking_lot` lock that loom cannot see into, and its whole state space (growth, the
//! monitor, timers) is far too large. [`Pool`] keeps exactly the counts the decision reads —
//! queued jobs, idle workers, wake-ups in flight, workers starting, workers coming back from a
//! hand-off (`finishing`), blocked threads, the worker limit — and transcribes the three
//! places that change them: `Shared::wake_or_grow` (a submit), the worker loop's claim and
//! sleep (`worker::serve`), and `Lender::enter_blocked` / `leave_blocked`. Each model fails
//! when its part is broken on purpose: taking the lending out of `enter_blocked` (or the
//! blocked count out of the worker limit) deadlocks the one-worker model; a submit that
//! counts an idle worker as woken without notifying it deadlocks the two-worker one.

use std::collections::VecDeque;
use std::sync::Arc;

use loom::sync::{Condvar, Mutex};
use loom::thread;

/// A job of the model: `A` submits `B` and blocks until `B` has run; `C` only runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    A,
    B,
    C,
}

struct State {
    queue: VecDeque<Job>,
    idle: usize,
    wakeups: usize,
    starting: usize,
    /// Workers that ran a job and will look at the queue again (the engine's `finishing`).
    finishing: usize,
    workers: usize,
    blocked: usize,
    max_workers: usize,
    lends: bool,
    b_done: bool,
    a_done: bool,
    closed: bool,
    /// Workers started by lending, for the model to join.
    spawned: Vec<thread::JoinHandle<()>>,
}

/// `growth::Kick`: what a caller does once it has released the lock.
enum Kick {
    None,
    Wake,
    Start,
}

struct Pool {
    st: Mutex<State>,
    work: Condvar,
    done: Condvar,
}

impl Pool {
    fn new(workers: usize, max_workers: usize, lends: bool) -> Arc<Self> {
        Arc::new(Self {
            st: Mutex::new(State {
                queue: VecDeque::new(),
                idle: 0,
                wakeups: 0,
                starting: 0,
                finishing: 0,
                workers,
                blocked: 0,
                max_workers,
                lends,
                b_done: false,
                a_done: false,
                closed: false,
                spawned: Vec::new(),
            }),
            work: Condvar::new(),
            done: Condvar::new(),
        })
    }

    /// `Shared::unserved`: more jobs wait than workers on their way to them.
    fn unserved(st: &State) -> bool {
        st.queue.len() > st.wakeups + st.starting + st.finishing
    }

    /// `Shared::reserve_worker`: counts a new worker in if the limit (raised by blocked
    /// threads) allows.
    fn reserve(st: &mut State) -> bool {
        if st.workers >= st.max_workers + st.blocked {
            return false;
        }
        st.workers += 1;
        st.starting += 1;
        true
    }

    /// `Shared::wake_or_grow`, for a job just queued: books what to do once the lock is
    /// released (the engine notifies after the unlock).
    fn wake_or_grow(st: &mut State) -> Kick {
        if !Self::unserved(st) {
            return Kick::None;
        }
        if st.idle > 0 {
            if st.wakeups == 0 {
                st.idle -= 1;
                st.wakeups += 1;
                return Kick::Wake;
            }
            return Kick::None;
        }
        if Self::reserve(st) {
            Kick::Start
        } else {
            Kick::None
        }
    }

    /// `Shared::kick`: does what `wake_or_grow` booked, without the lock.
    fn kick(self: &Arc<Self>, kick: Kick) {
        match kick {
            Kick::None => {}
            Kick::Wake => self.work.notify_one(),
            Kick::Start => self.start_worker(),
        }
    }

    fn submit(self: &Arc<Self>, job: Job) {
        let mut st = self.st.lock().unwrap();
        st.queue.push_back(job);
        let kick = Self::wake_or_grow(&mut st);
        drop(st);
        self.kick(kick);
    }

    fn start_worker(self: &Arc<Self>) {
        let pool = self.clone();
        let handle = thread::spawn(move || pool.serve(true));
        self.st.lock().unwrap().spawned.push(handle);
    }

    /// `Lender::enter_blocked`: `Err` if this pool cannot lend (the waiter is refused).
    fn enter_blocked(self: &Arc<Self>) -> Result<(), ()> {
        let mut st = self.st.lock().unwrap();
        if !st.lends {
            return Err(());
        }
        st.blocked += 1;
        let kick = Self::wake_or_grow(&mut st);
        drop(st);
        self.kick(kick);
        Ok(())
    }

    fn leave_blocked(&self) {
        self.st.lock().unwrap().blocked -= 1;
    }

    /// Runs a job on a worker (the lock released). Returns `true` if the worker handed an
    /// outcome to a waiting caller and so counts as coming back (`finishing`) until it holds
    /// the lock again.
    fn run(self: &Arc<Self>, job: Job) -> bool {
        match job {
            Job::A => {
                self.submit(Job::B);
                // The handle's wait: lend (or be refused), then sleep until B has run.
                let refused = self.enter_blocked().is_err();
                let mut st = self.st.lock().unwrap();
                if !refused {
                    while !st.b_done {
                        st = self.done.wait(st).unwrap();
                    }
                }
                st.a_done = true;
                drop(st);
                self.done.notify_all();
                if !refused {
                    self.leave_blocked();
                }
                false
            }
            Job::B => {
                // The hand-off to A, who waits: raised before the outcome goes.
                let mut st = self.st.lock().unwrap();
                st.finishing += 1;
                st.b_done = true;
                drop(st);
                self.done.notify_all();
                true
            }
            Job::C => false,
        }
    }

    /// `worker::serve`: claim under the lock, run outside it; sleep counted in `idle`, woken
    /// counted out through `wakeups`. `fresh`: a started worker, still in `starting`. A worker
    /// that ran a job is `finishing` until it holds the lock again.
    fn serve(self: &Arc<Self>, fresh: bool) {
        let mut st = self.st.lock().unwrap();
        if fresh {
            st.starting -= 1;
        }
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                let handed_off = self.run(job);
                st = self.st.lock().unwrap();
                if handed_off {
                    st.finishing -= 1;
                }
                continue;
            }
            if st.closed {
                break;
            }
            st.idle += 1;
            st = self.work.wait(st).unwrap();
            if st.wakeups > 0 {
                st.wakeups -= 1;
            } else {
                st.idle -= 1;
            }
        }
        st.workers -= 1;
    }

    fn close(&self) -> Vec<thread::JoinHandle<()>> {
        let mut st = self.st.lock().unwrap();
        st.closed = true;
        st.wakeups += st.idle;
        st.idle = 0;
        self.work.notify_all();
        std::mem::take(&mut st.spawned)
    }

    /// Waits until `A` has returned (its wait ended, or was refused).
    fn wait_for_a(&self) {
        let mut st = self.st.lock().unwrap();
        while !st.a_done {
            st = self.done.wait(st).unwrap();
        }
    }
}

/// These models spawn workers on demand and have several threads each: every interleaving is
/// too many, so they run with loom's preemption bound (3 unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise), which is where loom finds almost all real bugs.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// One worker, `max_workers(1)`: `A` runs on it, submits `B` and blocks on it. The lend
/// decision must start a worker for `B` in every interleaving.
#[test]
fn loom_lend_a_one_worker_pool_serves_the_job_its_only_worker_waits_on() {
    model(|| {
        let pool = Pool::new(1, 1, true);
        pool.st.lock().unwrap().queue.push_back(Job::A);
        let p = pool.clone();
        let worker = thread::spawn(move || p.serve(false));
        pool.wait_for_a();
        assert!(pool.st.lock().unwrap().b_done);
        for lent in pool.close() {
            lent.join().unwrap();
        }
        worker.join().unwrap();
        let st = pool.st.lock().unwrap();
        assert_eq!((st.blocked, st.workers), (0, 0));
    });
}

/// Two workers, `max_workers(2)`: one runs `A`, the other runs `C` and comes back (or goes to
/// sleep) while `A` submits `B` and blocks: whichever way they interleave — the second worker
/// woken, back on its own, or a worker lent — `B` runs.
#[test]
fn loom_lend_a_returning_or_sleeping_worker_or_a_lent_one_serves_the_job() {
    model(|| {
        let pool = Pool::new(2, 2, true);
        pool.st.lock().unwrap().queue.extend([Job::A, Job::C]);
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let p = pool.clone();
                thread::spawn(move || p.serve(false))
            })
            .collect();
        pool.wait_for_a();
        assert!(pool.st.lock().unwrap().b_done);
        for lent in pool.close() {
            lent.join().unwrap();
        }
        for w in workers {
            w.join().unwrap();
        }
    });
}

/// A pool that cannot lend (the SQLite writer) refuses the wait at once instead of hanging;
/// `B` still runs once `A` has returned.
#[test]
fn loom_lend_a_pool_that_cannot_lend_refuses_and_still_runs_the_job() {
    model(|| {
        let pool = Pool::new(1, 1, false);
        pool.st.lock().unwrap().queue.push_back(Job::A);
        let p = pool.clone();
        let worker = thread::spawn(move || p.serve(false));
        pool.wait_for_a();
        let mut st = pool.st.lock().unwrap();
        while !st.b_done {
            st = pool.done.wait(st).unwrap();
        }
        drop(st);
        for lent in pool.close() {
            lent.join().unwrap();
        }
        worker.join().unwrap();
    });
}
