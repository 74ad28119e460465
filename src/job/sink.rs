//! Where a job's outcome goes, as the worker sees it: a sink to deliver into, the hand-off
//! protocol that tells the pool whether the worker comes straight back, and the room a bounded
//! inbox reserves before a job is queued.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use super::Outcome;

/// Where a job's outcome goes: a handle's slot, an inbox, or a callback.
pub trait OutcomeSink: Send + 'static {
    /// The job's value type.
    type Value;
    /// What the sink keeps in the job's own cell: a handle's outcome slot, or `()`.
    type Slot: Default + Send + Sync + 'static;
    /// Hands the outcome over. Returns `true` if user code on the way (a callback, an inbox's
    /// wake hook) panicked; the panic was caught. `handoff` is told when the outcome goes
    /// straight to a waiting caller, so the pool counts the worker as coming back at once.
    fn deliver(
        self,
        outcome: Outcome<Self::Value>,
        slot: &Self::Slot,
        handoff: &dyn Handoff,
    ) -> bool;
}

/// How a sink tells the pool what its worker does while delivering: a worker that hands the
/// outcome to a waiting caller and goes straight back to the queue is *coming* (a caller woken
/// by its result and submitting the next job needs to wake nobody); a worker running user code
/// on the way (a callback, a wake hook, the `Drop` of a value nobody waits for) is busy.
pub trait Handoff {
    /// The worker is about to hand the outcome over and come back: count it as coming.
    fn coming(&self) {}
    /// The hand-off failed after [`coming`](Self::coming) (nobody waits any more) and the
    /// worker now runs user code: count it as busy again.
    fn busy(&self) {}
}

/// A delivery made off a worker (a cancel, an expiry, a shutdown): nobody is coming.
pub(crate) struct OffWorker;

impl Handoff for OffWorker {}

/// Room that a submission must reserve before it queues: a bounded inbox's capacity.
pub trait Room: Send + Sync {
    /// Takes one slot if there is one now; else returns `false`.
    fn try_reserve(&self) -> bool;
    /// Takes one slot, waiting until `deadline` (`None`: without limit). Returns `false` on
    /// timeout, or as soon as `give_up` returns `true` (it is asked before every sleep, under
    /// the room's own lock, so a [`wake_waiters`](Self::wake_waiters) after `give_up` turns
    /// true is never missed).
    fn reserve_until(
        &self,
        deadline: Option<std::time::Instant>,
        give_up: &dyn Fn() -> bool,
    ) -> bool;
    /// Wakes every thread waiting in `reserve_until`, so it asks `give_up` again.
    fn wake_waiters(&self);
    /// Takes one slot if there is one, else registers `waker` under `waiter`.
    fn poll_reserve(&self, waiter: &mut Option<u64>, waker: &std::task::Waker) -> bool;
    /// Forgets an async waiter (its future was dropped or got its slot).
    fn forget(&self, waiter: &mut Option<u64>);
    /// Gives back a slot whose job was refused by the pool.
    fn release(&self);
}

/// Turns a panic payload into its message, dropping the payload without letting its `Drop` unwind.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let msg = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any> (a panic payload that is not a string)".to_owned()
    };
    drop_quietly(payload);
    msg
}

/// Drops a value whose `Drop` is user code, swallowing a panic from it so the worker survives.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        // The payload's own Drop could panic too; leak it rather than unwind.
        std::mem::forget(payload);
    }
}
