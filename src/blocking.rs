//! The one rule for a pool's own threads that block: every blocking call the crate offers asks
//! [`enter`] first.
//!
//! A worker (or the monitor) that blocks stops serving its pool. If what it waits for needs
//! that pool — a job queued behind it, room in its queue, a stream's producer, a session on
//! the writer — the wait could last forever. So a thread that is about to block tells its pool:
//!
//! - a pool that **lends** counts the thread as blocked: the worker limit rises by one while it
//!   waits, and a worker is woken or started at once if jobs wait with nobody to take them.
//!   Growth sees the blocked thread as what it is: not serving, not coming back soon.
//! - a pool that does **not** lend (the SQLite writer: its one thread owns the only read-write
//!   connection) refuses a wait on its own work at once, with `WouldDeadlock`. A wait on other
//!   work (another pool's job, an inbox) is a plain wait.
//!
//! Threads that serve no pool wait as usual. Waits across two pools that wait on each other
//! (a worker of A waits on B while B's workers wait on A) are not covered: each pool lends
//! only for its own threads.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// What a pool offers the rule; implemented by the engine's shared state.
pub(crate) trait Lender: Send + Sync {
    /// `true` if a blocked thread may be replaced by a lent worker.
    fn lends(&self) -> bool;
    /// Counts the calling thread (one of this pool's) as blocked, and wakes or starts a worker
    /// if jobs wait with nobody to take them. `background`: the thread is running a background
    /// job, which stops counting against the background limit while it waits.
    fn enter_blocked(&self, background: bool);
    /// Undoes [`enter_blocked`](Self::enter_blocked).
    fn leave_blocked(&self, background: bool);
}

/// A thread's place in a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Worker,
    Monitor,
}

struct PoolThread {
    /// The pool's identity (see [`pool_id`]).
    id: usize,
    role: Role,
    pool: Arc<dyn Lender>,
}

thread_local! {
    /// The pool this thread serves, if any; set for its whole life by the worker or monitor.
    static POOL_THREAD: RefCell<Option<PoolThread>> = const { RefCell::new(None) };
    /// The thread is running a background job now (see [`Lender::enter_blocked`]).
    static BACKGROUND: Cell<bool> = const { Cell::new(false) };
}

/// A pool's identity: the address of its shared state. 0 is no pool.
pub(crate) fn pool_id<T>(shared: &T) -> usize {
    std::ptr::from_ref(shared) as usize
}

/// Marks the calling thread as one of `pool`'s for the rest of its life (until [`leave_pool`]).
pub(crate) fn join_pool(id: usize, role: Role, pool: Arc<dyn Lender>) {
    POOL_THREAD.with(|t| *t.borrow_mut() = Some(PoolThread { id, role, pool }));
}

/// Unmarks the calling thread (it is about to exit; this drops its reference to the pool).
pub(crate) fn leave_pool() {
    let left = POOL_THREAD.with(|t| t.borrow_mut().take());
    drop(left);
}

/// The calling thread's role in the pool `id`, if it has one.
pub(crate) fn role_in(id: usize) -> Option<Role> {
    POOL_THREAD.with(|t| t.borrow().as_ref().filter(|p| p.id == id).map(|p| p.role))
}

/// `true` on a worker or monitor thread of any pool: the only threads [`enter`] has anything
/// to do for. A cheap look, for hot paths that would otherwise let a lock go to call `enter`.
pub(crate) fn is_pool_thread() -> bool {
    POOL_THREAD.with(|t| t.borrow().is_some())
}

/// Records whether the calling worker is running a background job.
pub(crate) fn set_background(on: bool) {
    BACKGROUND.with(|b| b.set(on));
}

/// A blocking call would wait on its own pool's work, which no thread could ever do: refuse it.
#[derive(Debug)]
pub(crate) struct WouldDeadlock;

/// Held for the length of a blocking wait; gives the lent worker back when dropped.
#[must_use = "the thread counts as blocked only while the guard lives"]
pub(crate) struct Blocked {
    lent: Option<(Arc<dyn Lender>, bool)>,
}

impl Drop for Blocked {
    fn drop(&mut self) {
        if let Some((pool, background)) = self.lent.take() {
            pool.leave_blocked(background);
        }
    }
}

/// Called just before the calling thread blocks on something served by the pool `target` (its
/// [`pool_id`]; 0 when the thread that will end the wait is unknown, as for an inbox or a
/// channel fed by any thread).
///
/// # Errors
/// [`WouldDeadlock`] if the calling thread belongs to `target`, which does not lend: nothing
/// could end the wait.
pub(crate) fn enter(target: usize) -> Result<Blocked, WouldDeadlock> {
    let this = POOL_THREAD.with(|t| {
        let t = t.borrow();
        t.as_ref().map(|p| (p.id, p.role, p.pool.clone()))
    });
    let Some((id, role, pool)) = this else {
        return Ok(Blocked { lent: None });
    };
    if pool.lends() {
        let background = role == Role::Worker && BACKGROUND.with(Cell::get);
        pool.enter_blocked(background);
        return Ok(Blocked {
            lent: Some((pool, background)),
        });
    }
    // The monitor never serves jobs: a wait there holds up no job of its pool.
    if id == target && role == Role::Worker {
        return Err(WouldDeadlock);
    }
    Ok(Blocked { lent: None })
}
