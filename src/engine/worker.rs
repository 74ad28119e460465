//! A worker thread: start hook and state init, then the loop — take a job, run it, record it;
//! spin briefly when the queue is empty; sleep; retire after `keep_alive` idle.

use std::cell::Cell;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::sync::park::MutexGuard;

use super::probe::ThreadProbe;
use super::{Deferred, Shared, State};
use crate::backoff::Backoff;
use crate::blocking::{self, Role};
use crate::error::JobError;
use crate::job::Priority;
use crate::job::{Handoff, Resolver, Task, drop_quietly, panic_message};
use crate::trace;

/// The worker's side of a delivery (see `job::Handoff`): it raises `Shared::finishing` just
/// before the outcome goes to a waiting caller, and lowers it again if the worker turns out
/// to be busy (running the `Drop` of a value nobody waited for).
struct WorkerHandoff<'a, S> {
    shared: &'a Shared<S>,
    raised: Cell<bool>,
}

impl<S: 'static> Handoff for WorkerHandoff<'_, S> {
    fn coming(&self) {
        // ORDERING: SeqCst, see `Shared::finishing`.
        self.shared.finishing.fetch_add(1, Ordering::SeqCst);
        self.raised.set(true);
    }

    fn busy(&self) {
        if self.raised.replace(false) {
            self.shared.handoff_failed();
        }
    }
}

/// Reports a build-time worker's start: `Ok` once its state is ready, or the panic message.
pub(crate) type Ready = Resolver<Result<(), String>>;

/// Starts the pool's monitor thread (see `Shared::monitor`).
pub(crate) fn spawn_monitor<S: 'static>(shared: &Arc<Shared<S>>) -> io::Result<()> {
    shared.state.lock().monitor_alive = true;
    let name = format!("{}-monitor", shared.config.thread_name);
    let allowed = shared
        .config
        .before_spawn
        .as_ref()
        .map_or(Ok(()), |hook| hook(&name));
    let started = allowed.and_then(|()| {
        let shared = shared.clone();
        thread::Builder::new()
            .name(name)
            .stack_size(256 * 1024)
            .spawn(move || {
                shared.config.priority.apply();
                let id = blocking::pool_id(&*shared);
                blocking::join_pool(id, Role::Monitor, shared.clone());
                shared.monitor();
                blocking::leave_pool();
            })
    });
    if started.is_err() {
        shared.state.lock().monitor_alive = false;
    }
    started.map(drop)
}

/// Starts one worker thread. Its slot must already be counted in `workers` and `starting`.
pub(crate) fn spawn<S: 'static>(shared: &Arc<Shared<S>>, ready: Option<Ready>) -> io::Result<()> {
    let id = {
        let mut st = shared.state.lock();
        st.next_worker_id += 1;
        st.next_worker_id
    };
    let cfg = &shared.config;
    let name = format!("{}-{id}", cfg.thread_name);
    if let Some(hook) = &cfg.before_spawn {
        hook(&name)?;
    }
    let mut builder = thread::Builder::new().name(name);
    if let Some(size) = cfg.stack_size {
        builder = builder.stack_size(size);
    }
    let shared = shared.clone();
    builder.spawn(move || main(&shared, id, ready)).map(drop)
}

/// Counts the worker out however it leaves (return or unwind), so shutdown never waits forever.
struct ExitGuard<'a, S: 'static> {
    shared: &'a Shared<S>,
    /// Still in `starting` (start hook or init not done).
    starting: bool,
    /// Counted in `retiring` (decided to retire).
    retiring: bool,
}

impl<S: 'static> Drop for ExitGuard<'_, S> {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        st.workers -= 1;
        if self.retiring {
            st.retiring -= 1;
        }
        if self.starting {
            self.shared.start_failed(&mut st);
        }
        self.shared.exited.notify_all();
    }
}

fn main<S: 'static>(shared: &Arc<Shared<S>>, id: usize, ready: Option<Ready>) {
    shared.config.priority.apply();
    blocking::join_pool(blocking::pool_id(&**shared), Role::Worker, shared.clone());
    let mut guard = ExitGuard {
        shared,
        starting: true,
        retiring: false,
    };
    let cfg = &shared.config;
    let started = panic::catch_unwind(AssertUnwindSafe(|| {
        if let Some(hook) = &cfg.on_start {
            hook();
        }
        (cfg.init)()
    }));
    let mut state = match started {
        Ok(state) => state,
        Err(payload) => {
            let msg = panic_message(payload);
            trace::worker_start_failed(&msg);
            if let Some(ready) = ready {
                ready.send(Ok(Err(msg)));
            }
            blocking::leave_pool();
            return; // the guard counts the failure
        }
    };
    // Registered (a private queue for broadcasts, a probe for the monitor) before it reports
    // ready, so a broadcast right after `build` reaches it; still counted as starting (so as
    // coming to the queue) until it is in its loop, so a caller that submits as soon as
    // `build` returns finds it on its way and starts no other worker.
    let probe = ThreadProbe::for_current_thread(cfg.grow_behind_long_jobs);
    let busy = cfg
        .grow_behind_long_jobs
        .then(|| Arc::new(AtomicU64::new(0)));
    {
        let mut st = shared.state.lock();
        if !st.private.iter().any(|(w, _)| *w == id) {
            st.private.push((id, Default::default()));
        }
        if let Some(probe) = probe {
            st.probes.push((id, probe));
        }
        if let Some(busy) = &busy {
            st.busy_since.push((id, busy.clone()));
        }
    }
    if let Some(ready) = ready {
        ready.send(Ok(Ok(())));
    }
    trace::worker_started(id);
    let mut st = shared.state.lock();
    st.starting -= 1;
    guard.starting = false;
    guard.retiring = serve(shared, st, id, &mut state, busy.as_deref());
    trace::worker_stopped(id, guard.retiring);

    drop_quietly(state);
    if let Some(hook) = &cfg.on_stop {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| hook()));
    }
    blocking::leave_pool();
}

/// The worker loop, entered with the lock held. Returns when the pool is closed and drained
/// (`false`), or to retire (`true`, already counted in `retiring`).
fn serve<'a, S: 'static>(
    shared: &'a Arc<Shared<S>>,
    mut st: MutexGuard<'a, State<S>>,
    id: usize,
    state: &mut S,
    busy: Option<&AtomicU64>,
) -> bool {
    let cfg = &shared.config;
    let mut retire = false;
    let mut expired = Vec::new();
    // When this worker last ran out of work, while it has not found any since.
    let mut idle_since: Option<Instant> = None;
    // When this worker's last job ended, while it has not looked for work since. One clock
    // read serves as a job's end and the start of the idleness after it; another as the end
    // of idleness and the start of the next job.
    let mut last_end: Option<Instant> = None;
    // Whether this worker was the one spinning for the next job in its current idleness:
    // only that worker's wait measures the gap between jobs. (One that slept at once, while
    // another spun, may sleep through many jobs that others took.)
    let mut spun = false;
    // Work to do after the lock, reused from job to job.
    let mut after = Deferred::new();
    'serve: loop {
        let next = next_task(shared, &mut st, id, &mut expired);
        let mut found_at = None;
        if next.is_some()
            && let Some(since) = idle_since.take()
        {
            let now = Instant::now();
            if std::mem::take(&mut spun) {
                note_gap(shared, now.saturating_duration_since(since));
            }
            found_at = Some(now);
        }
        // Jobs whose start deadline passed while queued resolve `Expired`, after the lock.
        if !expired.is_empty() {
            for task in expired.drain(..) {
                st.counts.expired += 1;
                if let Some(lane) = task.meta().lane() {
                    shared.advance_lane(&mut st, lane, &mut after);
                }
                after.discard.push((task, JobError::Expired));
            }
        }
        if let Some(task) = next {
            let ran = run_claimed(shared, &mut st, id, state, task, &mut after, found_at, busy);
            last_end = Some(ran);
            continue 'serve;
        }
        if !after.is_empty() {
            shared.room_freed(&mut st, &mut after);
            MutexGuard::unlocked(&mut st, || after.run(shared));
            continue 'serve;
        }
        if st.closed {
            break 'serve;
        }

        // Spin: the next job often arrives within microseconds (a caller waiting on one result
        // submits the next). Catching it here saves a futex sleep and wake on both sides.
        // At most one worker spins: more spinners than that only steal the CPU from the
        // worker running a job and from the caller (on 2 cores, three runnable threads cost a
        // scheduler tick, milliseconds, at the tail).
        let since = *idle_since.get_or_insert_with(|| last_end.unwrap_or_else(Instant::now));
        last_end = None;
        if st.spinning == 0 {
            st.spinning += 1;
            spun = true;
            // ORDERING: a hint for callers (see `Shared::spinner`).
            shared.spinner.store(true, Ordering::Relaxed);
            // ORDERING: a hint (see `Shared::stand_down`); one left from before is stale.
            shared.stand_down.store(false, Ordering::Relaxed);
            drop(st);
            let budget = spin_budget(shared);
            let backoff = Backoff::short();
            // ORDERING: a hint; the lock below confirms.
            let idle = || shared.queued_hint.load(Ordering::Relaxed) == 0;
            while idle() && !backoff.is_completed() {
                backoff.snooze();
            }
            // Then spin on, without yielding: a worker that yields lets the scheduler stack it
            // on the caller's CPU, and the two then take turns on one core.
            while idle() && !cfg!(offthread_loom) && since.elapsed() < budget {
                for _ in 0..8 {
                    std::hint::spin_loop();
                }
            }
            shared.spinner.store(false, Ordering::Relaxed);
            st = shared.state.lock();
            st.spinning -= 1;
            // A caller found this worker off its CPU while it spun, and had another come for
            // the job: leave it to that one (placed on a free CPU) and sleep.
            // ORDERING: a hint, read under the lock.
            let startable = shared.startable(&st);
            let stand_down =
                shared.stand_down.swap(false, Ordering::Relaxed) && startable <= shared.coming(&st);
            if st.closed || has_private(&st, id) || (startable > 0 && !stand_down) {
                continue 'serve;
            }
        }

        // Sleep until a submitter claims us, or keep_alive passes.
        st.idle += 1;
        let timed_out = match Instant::now().checked_add(cfg.keep_alive) {
            Some(deadline) => shared.work.wait_until(&mut st, deadline).timed_out(),
            None => {
                shared.work.wait(&mut st);
                false
            }
        };
        if st.wakeups > 0 {
            st.wakeups -= 1; // a notifier already took us out of `idle`
        } else {
            st.idle -= 1;
        }
        let staying = st.workers - st.starting - st.retiring;
        if timed_out
            && !st.closed
            && shared.startable(&st) == 0
            && !has_private(&st, id)
            && staying > cfg.min_workers
        {
            st.retiring += 1;
            retire = true;
            break 'serve;
        }
    }
    // Leave our private queue's slot; a late broadcast finds no entry and skips us.
    st.private.retain(|(w, _)| *w != id);
    st.probes.retain(|(w, _)| *w != id);
    st.busy_since.retain(|(w, _)| *w != id);
    drop(st);
    retire
}

/// The longest a worker spins for its next job (while the gaps between jobs stay this short);
/// beyond it, a futex sleep and wake cost less than the spin.
const MAX_SPIN: Duration = Duration::from_micros(50);

/// Records how long a worker waited between running out of work and finding the next job.
/// A gap is counted as `MAX_SPIN` at most: any gap that long already means "do not spin", and
/// one long pause (a caller that stopped for a while) must not keep the average there for
/// the dozens of short gaps after it.
fn note_gap<S>(shared: &Shared<S>, gap: Duration) {
    let gap = u64::try_from(gap.min(MAX_SPIN).as_nanos()).unwrap_or(u64::MAX);
    // ORDERING: a statistic; a lost update only shifts the average a little.
    let old = shared.recent_gap.load(Ordering::Relaxed);
    let new = if old == u64::MAX {
        gap
    } else {
        old - old / 8 + gap / 8
    };
    shared.recent_gap.store(new, Ordering::Relaxed);
}

/// How long the spinning worker keeps looking for its next job before it sleeps: twice the
/// recent gap between jobs, while those gaps stay under `MAX_SPIN`. A caller that awaits each
/// result parks meanwhile and needs a wake-up (microseconds on a VM) before it submits the
/// next job; a worker that slept in that time would need one too. When jobs come further
/// apart, the worker sleeps after the short spin. Where the process has one CPU only, it
/// never spins: the caller it waits for would be the one kept off that CPU.
fn spin_budget<S>(shared: &Shared<S>) -> Duration {
    // ORDERING: a statistic.
    let gap = Duration::from_nanos(shared.recent_gap.load(Ordering::Relaxed));
    if gap < MAX_SPIN && crate::backoff::spin_pays() {
        (gap * 2).min(MAX_SPIN)
    } else {
        Duration::ZERO
    }
}

/// Runs a job this worker has just claimed, then records it; `after` holds work found while
/// claiming it (and is left empty), `found_at` when it was found (if the clock was read then);
/// `busy` is where it shows when its job started, in a pool that grows behind long jobs.
/// Called and returns with the lock held. Returns when the job ended.
#[allow(clippy::too_many_arguments)]
fn run_claimed<S: 'static>(
    shared: &Shared<S>,
    st: &mut MutexGuard<'_, State<S>>,
    id: usize,
    state: &mut S,
    task: Arc<dyn Task<S>>,
    after: &mut Deferred<S>,
    found_at: Option<Instant>,
    busy: Option<&AtomicU64>,
) -> Instant {
    let background = task.state().priority == Priority::Background;
    st.running += 1;
    shared.publish_running(st);
    if background {
        st.bg_running += 1;
    }
    let named = match task.meta().name() {
        Some(name) => {
            st.named.push((id, name.clone(), Instant::now()));
            true
        }
        None => false,
    };
    let lane = task.meta().lane().cloned();
    after.kick(shared.wake_for_backlog(st));
    shared.room_freed(st, after);
    let handoff = WorkerHandoff {
        shared,
        raised: Cell::new(false),
    };
    let (ran, started) = MutexGuard::unlocked(st, || {
        if !after.is_empty() {
            after.run(shared);
        }
        if background {
            blocking::set_background(true);
        }
        let started = found_at.unwrap_or_else(Instant::now);
        if let Some(busy) = busy {
            let since = started.saturating_duration_since(shared.epoch).as_nanos();
            // ORDERING: a hint for the monitor, read under the lock later; never 0 while busy.
            busy.store(
                u64::try_from(since).unwrap_or(u64::MAX).max(1),
                Ordering::Relaxed,
            );
        }
        let ran = task.run(state, &handoff, started);
        if let Some(busy) = busy {
            // ORDERING: as above.
            busy.store(0, Ordering::Relaxed);
        }
        if background {
            blocking::set_background(false);
        }
        (ran, started)
    });
    if handoff.raised.get() {
        // ORDERING: SeqCst, see `Shared::finishing`.
        shared.finishing.fetch_sub(1, Ordering::SeqCst);
    }
    st.running -= 1;
    shared.publish_running(st);
    if background {
        st.bg_running -= 1;
    }
    if named {
        st.named.retain(|(worker, ..)| *worker != id);
    }
    if ran.panicked {
        st.counts.panicked += 1;
    } else {
        st.counts.completed += 1;
    }
    st.counts.queue_wait.record(ran.queue_wait);
    st.counts.run_time.record(ran.run_time);
    if let Some(lane) = lane {
        shared.advance_lane(st, &lane, after);
    }
    if !after.is_empty() {
        MutexGuard::unlocked(st, || after.run(shared));
    }
    started + ran.run_time
}

fn has_private<S>(st: &State<S>, id: usize) -> bool {
    st.private_len > 0 && st.private.iter().any(|(w, q)| *w == id && !q.is_empty())
}

/// Takes this worker's next job: its broadcast jobs first, then the shared queue. Jobs found
/// expired on the way go to `expired`.
fn next_task<S: 'static>(
    shared: &Shared<S>,
    st: &mut MutexGuard<'_, State<S>>,
    id: usize,
    expired: &mut Vec<Arc<dyn Task<S>>>,
) -> Option<Arc<dyn Task<S>>> {
    if st.private_len > 0 {
        let mut claimed = None;
        let mut dropped = 0;
        if let Some((_, q)) = st.private.iter_mut().find(|(w, _)| *w == id) {
            while let Some(task) = q.pop_front() {
                dropped += 1;
                if task.state().claim() {
                    claimed = Some(task);
                    break;
                }
            }
        }
        st.private_len -= dropped;
        if claimed.is_some() {
            shared.publish_len(st);
            return claimed;
        }
    }
    let bg_ok = shared.bg_room(st) > 0;
    let task = st.queue.pop_claim(bg_ok, expired);
    if task.is_some() || !expired.is_empty() {
        shared.publish_len(st);
    }
    task
}
