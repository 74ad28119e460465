//! Model checking of the job state machine and the handle's races under `loom`.
//!
//! Run with
//! `RUSTFLAGS="--cfg offthread_loom" cargo test --release --lib --no-default-features loom_`
//! (`.ci/run` does). loom runs each model under every interleaving of its threads (no
//! preemption bound: these models are small enough) and fails on a deadlock, a lost wakeup, or
//! a failed assertion in any of them: a job run twice, lost, resolved twice or leaked.
//!
//! What is real and what is modelled: the job cell, its atomic state, its closure slot, the
//! handle (`wait`, `cancel`, drop, `.await`), the outcome slot in the cell, the priority queue
//! with its tombstone accounting, the bounded stream channel (`stream::channel`: blocking and
//! async consumers, a producer waiting for room, a consumer leaving) and the inbox
//! (reservations, delivery, a blocking `recv`, a reservation given back) are the crate's own
//! code. loom has no clock, so timed waits are not modelled; the ordinary tests cover them. The pool around them — one lock
//! holding the queue and the `closed` flag — is [`Model`] below, a transcription of the
//! protocol the engine (`engine/`) follows: submit checks `closed` and pushes under the lock; a worker pops
//! and claims under the lock and runs outside it; cancel and expiry flip a waiting job under the
//! lock and resolve it outside; `shutdown_now` closes and drains under one acquisition and
//! resolves outside. The full pool (condvars, growth, the monitor thread) is too large a state
//! space for loom; its races are covered by `tests/stress.rs`.

use std::future::IntoFuture;
use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::engine::Queue;
use crate::error::JobError;
use crate::handle::Handle;
use crate::job::LaneQueue;
use crate::job::Priority;
use crate::job::SlotSink;
use crate::job::{CancelOutcome, JobCell, JobPool, JobState, Meta, OffWorker, Place, Plain, Task};
use crate::sync::Mutex;

/// The pool's lock and what it guards.
struct Books {
    queue: Queue<()>,
    closed: bool,
    cancelled: usize,
    shut_down: usize,
    expired: usize,
}

/// The pool, as far as a job sees it.
struct Model {
    books: Mutex<Books>,
}

impl Model {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            books: Mutex::new(Books {
                queue: Queue::new(),
                closed: false,
                cancelled: 0,
                shut_down: 0,
                expired: 0,
            }),
        })
    }

    /// Submits `f`; a refused closure comes back.
    fn submit<T, F>(self: &Arc<Self>, f: F, cancel_on_drop: bool) -> Result<Handle<T>, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_task(f, cancel_on_drop)
            .map(|(handle, _)| handle)
    }

    /// Submits `f`, also returning the job as the monitor's timer would hold it.
    #[allow(clippy::type_complexity)]
    fn submit_task<T, F>(
        self: &Arc<Self>,
        f: F,
        cancel_on_drop: bool,
    ) -> Result<(Handle<T>, Arc<dyn Task<()>>), F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let link: Arc<dyn JobPool<()>> = self.clone();
        let state = JobState::new(Priority::Normal, cancel_on_drop);
        let cell = Arc::new(JobCell::new(
            Plain(f),
            SlotSink::new(),
            link,
            state,
            Meta::new(None, None, None),
        ));
        let mut books = self.books.lock();
        if books.closed {
            drop(books);
            let cell = Arc::into_inner(cell).expect("a refused job was never shared");
            let (Plain(f), _sink) = cell.into_parts();
            return Err(f);
        }
        books.queue.push(cell.clone());
        drop(books);
        let task: Arc<dyn Task<()>> = cell.clone();
        Ok((Handle::new(cell), task))
    }

    /// One worker step: claims the next job under the lock, runs it outside. `true` if it ran
    /// one.
    fn work_one(&self) -> bool {
        let mut expired = Vec::new();
        let task = self.books.lock().queue.pop_claim(true, &mut expired);
        assert!(expired.is_empty(), "no job here has a deadline");
        match task {
            Some(task) => {
                task.run(&mut (), &OffWorker, std::time::Instant::now());
                true
            }
            None => false,
        }
    }

    /// `shutdown_now`: closes intake and drains the queue under one acquisition; resolves the
    /// drained jobs outside the lock.
    fn shutdown_now(&self) {
        let mut books = self.books.lock();
        books.closed = true;
        let dropped = books.queue.drain_dropped();
        books.shut_down += dropped.len();
        drop(books);
        for task in dropped {
            task.discard(JobError::ShutDown);
        }
    }

    /// The monitor expiring a job whose start deadline passed.
    fn expire(&self, task: &Arc<dyn Task<()>>) {
        let mut books = self.books.lock();
        if task.state().drop_waiting() == Some(Place::Queue) {
            books.queue.note_dropped(task.state().priority);
            books.expired += 1;
            drop(books);
            task.discard(JobError::Expired);
        }
    }

    fn queued(&self) -> usize {
        self.books.lock().queue.len()
    }
}

impl JobPool<()> for Model {
    fn cancel_queued(&self, job: &JobState, _lane: Option<&Arc<LaneQueue<()>>>) -> bool {
        let mut books = self.books.lock();
        match job.drop_waiting() {
            Some(Place::Queue) => {
                books.queue.note_dropped(job.priority);
                books.cancelled += 1;
                true
            }
            Some(Place::Lane) => unreachable!("no lanes in the model"),
            None => false,
        }
    }
}

/// Counts how often a value (a closure's capture, a result) is dropped.
pub(super) struct Tracked(pub(super) Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A job that counts its runs, carries a tracked capture, and returns a tracked value.
fn job(
    runs: &Arc<AtomicUsize>,
    closures: &Arc<AtomicUsize>,
    values: &Arc<AtomicUsize>,
) -> impl FnOnce() -> Tracked + Send + 'static {
    let runs = runs.clone();
    let capture = Tracked(closures.clone());
    let values = values.clone();
    move || {
        let _capture = capture;
        runs.fetch_add(1, Ordering::Relaxed);
        Tracked(values)
    }
}

pub(super) fn counters() -> [Arc<AtomicUsize>; 3] {
    std::array::from_fn(|_| Arc::new(AtomicUsize::new(0)))
}

/// A pool with one job queued: the pool, its handle, and the job's counters (runs, closures
/// dropped, values dropped).
fn one_job(cancel_on_drop: bool) -> (Arc<Model>, Handle<Tracked>, [Arc<AtomicUsize>; 3]) {
    let pool = Model::new();
    let [runs, closures, values] = counters();
    let handle = pool
        .submit(job(&runs, &closures, &values), cancel_on_drop)
        .ok()
        .unwrap();
    (pool, handle, [runs, closures, values])
}

/// A worker thread taking one step.
fn worker(pool: &Arc<Model>) -> thread::JoinHandle<bool> {
    let pool = pool.clone();
    thread::spawn(move || pool.work_one())
}

pub(super) fn load(c: &Arc<AtomicUsize>) -> usize {
    c.load(Ordering::Relaxed)
}

/// Every interleaving: these models are small enough to explore without a preemption bound
/// (`LOOM_MAX_PREEMPTIONS` can still set one).
pub(super) fn model(f: impl Fn() + Sync + Send + 'static) {
    loom::model::Builder::new().check(f);
}

/// cancel-vs-start: a caller cancels while a worker claims and runs the job. Exactly one of
/// them wins: a dequeued job never runs and resolves `Cancelled`; otherwise it runs once and
/// its value arrives.
#[test]
fn loom_cancel_vs_start() {
    model(|| {
        let (pool, handle, [runs, closures, values]) = one_job(false);
        let worker = worker(&pool);
        let cancel = handle.cancel();
        let outcome = handle.wait();
        let worked = worker.join().unwrap();
        match cancel {
            CancelOutcome::Dequeued => {
                assert!(matches!(outcome, Err(JobError::Cancelled)));
                assert_eq!(load(&runs), 0);
                assert!(!worked, "the worker found only a tombstone");
                assert_eq!(pool.books.lock().cancelled, 1);
            }
            CancelOutcome::Requested | CancelOutcome::Finished => {
                assert!(outcome.is_ok());
                assert_eq!(load(&runs), 1);
                assert!(worked);
            }
        }
        drop(outcome);
        assert_eq!(load(&closures), 1, "the closure is dropped exactly once");
        assert_eq!(
            load(&values),
            load(&runs),
            "each value made is dropped once"
        );
        assert_eq!(pool.queued(), 0);
    });
}

/// shutdown-vs-submit: `shutdown_now` races a submission while a worker looks for work. A
/// refused job comes back to the caller; an accepted one either runs or resolves `ShutDown`;
/// nothing is lost or resolved twice.
#[test]
fn loom_shutdown_vs_submit() {
    model(|| {
        let pool = Model::new();
        let [runs, closures, values] = counters();
        let submitter = {
            let pool = pool.clone();
            let f = job(&runs, &closures, &values);
            thread::spawn(move || match pool.submit(f, false) {
                Ok(handle) => Some(handle.wait().is_ok()),
                Err(refused) => {
                    drop(refused); // handed back: the caller owns it again
                    None
                }
            })
        };
        let worker = worker(&pool);
        pool.shutdown_now();
        let accepted = submitter.join().unwrap();
        let worked = worker.join().unwrap();
        // A job accepted after the worker looked is still queued; shutdown drained it, or it
        // came in before shutdown and ran, or it was refused.
        let books = pool.books.lock();
        match accepted {
            None => assert_eq!((load(&runs), books.shut_down), (0, 0)),
            Some(true) => assert_eq!((load(&runs), books.shut_down, worked), (1, 0, true)),
            Some(false) => assert_eq!((load(&runs), books.shut_down, worked), (0, 1, false)),
        }
        assert!(books.closed && books.queue.len() == 0);
        drop(books);
        assert_eq!(load(&closures), 1);
        assert_eq!(load(&values), load(&runs));
    });
}

/// drop-handle-vs-complete, without cancel-on-drop: the caller drops its handle while the job
/// runs and delivers. The job still runs, and its value is dropped exactly once, on whichever
/// side is last.
#[test]
fn loom_drop_handle_vs_complete() {
    model(|| {
        let (pool, handle, [runs, closures, values]) = one_job(false);
        let worker = worker(&pool);
        drop(handle);
        assert!(worker.join().unwrap());
        assert_eq!(load(&runs), 1);
        assert_eq!(load(&closures), 1);
        assert_eq!(
            load(&values),
            1,
            "the detached value is dropped exactly once"
        );
    });
}

/// drop-handle-vs-start, with cancel-on-drop: dropping the handle dequeues the job unless the
/// worker claimed it first; either way it resolves once, and a dequeued job never runs.
#[test]
fn loom_drop_handle_vs_start_cancel_on_drop() {
    model(|| {
        let (pool, handle, [runs, closures, values]) = one_job(true);
        let worker = worker(&pool);
        drop(handle);
        let worked = worker.join().unwrap();
        let cancelled = pool.books.lock().cancelled;
        assert_eq!(load(&runs) + cancelled, 1, "runs once or is cancelled once");
        assert_eq!(worked, load(&runs) == 1);
        assert_eq!(load(&closures), 1);
        assert_eq!(load(&values), load(&runs));
        assert_eq!(pool.queued(), 0);
    });
}

/// The handle's wait races the delivery: a blocked `wait` is woken by the worker's send (no
/// lost wakeup), whichever comes first.
#[test]
fn loom_wait_vs_complete() {
    model(|| {
        let (pool, handle, [runs, closures, values]) = one_job(false);
        let worker = worker(&pool);
        assert!(handle.wait().is_ok());
        assert!(worker.join().unwrap());
        assert_eq!((load(&runs), load(&closures), load(&values)), (1, 1, 1));
    });
}

/// `.await` races the delivery: the task's waker is woken (no lost wakeup).
#[test]
fn loom_await_vs_complete() {
    model(|| {
        let (pool, handle, [runs, closures, values]) = one_job(false);
        let worker = worker(&pool);
        assert!(loom::future::block_on(handle.into_future()).is_ok());
        assert!(worker.join().unwrap());
        assert_eq!((load(&runs), load(&closures), load(&values)), (1, 1, 1));
    });
}

/// Cancel races `shutdown_now` and the monitor's expiry for the same queued job: exactly one
/// of them takes it, and the handle sees that one's error.
#[test]
fn loom_cancel_vs_shutdown_vs_expire() {
    model(|| {
        let pool = Model::new();
        let [runs, closures, values] = counters();
        let (handle, task) = pool
            .submit_task(job(&runs, &closures, &values), false)
            .ok()
            .unwrap();
        let shutdown = {
            let pool = pool.clone();
            thread::spawn(move || pool.shutdown_now())
        };
        let monitor = {
            let pool = pool.clone();
            thread::spawn(move || pool.expire(&task))
        };
        let cancel = handle.cancel();
        let outcome = handle.wait();
        shutdown.join().unwrap();
        monitor.join().unwrap();
        let books = pool.books.lock();
        let by = (books.cancelled, books.shut_down, books.expired);
        drop(books);
        match outcome {
            Err(JobError::Cancelled) => {
                assert_eq!(cancel, CancelOutcome::Dequeued);
                assert_eq!(by, (1, 0, 0));
            }
            Err(JobError::ShutDown) => {
                assert_eq!(cancel, CancelOutcome::Finished);
                assert_eq!(by, (0, 1, 0));
            }
            Err(JobError::Expired) => {
                assert_eq!(cancel, CancelOutcome::Finished);
                assert_eq!(by, (0, 0, 1));
            }
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
        assert_eq!(load(&runs), 0);
        assert_eq!(load(&closures), 1);
        assert_eq!(pool.queued(), 0);
    });
}

/// Two queued jobs; the first is cancelled while a worker drains the queue: the tombstone is
/// skipped, the second job runs, the books balance.
#[test]
fn loom_cancel_leaves_tombstone_worker_skips_it() {
    model(|| {
        let pool = Model::new();
        let [runs, closures, values] = counters();
        let first = pool
            .submit(job(&runs, &closures, &values), false)
            .ok()
            .unwrap();
        let second = pool
            .submit(job(&runs, &closures, &values), false)
            .ok()
            .unwrap();
        let worker = {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut ran = 0;
                while pool.work_one() {
                    ran += 1;
                }
                ran
            })
        };
        let cancel = first.cancel();
        let first = first.wait();
        let ran = worker.join().unwrap();
        // The worker may have stopped before the second job was reachable only if it ran it.
        assert!(second.wait().is_ok());
        assert_eq!(ran, load(&runs));
        assert_eq!(first.is_ok(), cancel != CancelOutcome::Dequeued);
        assert_eq!(load(&runs), 1 + usize::from(first.is_ok()));
        assert_eq!(load(&closures), 2);
        assert_eq!(pool.queued(), 0);
    });
}
