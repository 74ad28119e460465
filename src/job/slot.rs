//! A handle's outcome slot, kept in the job's own allocation: the worker puts the outcome in,
//! the handle takes it out — waiting on it (a parked thread) or awaiting it (a waker)
//! meanwhile. One allocation per job, shared by the job and its handle.

use std::marker::PhantomData;
use std::task::{Poll, Waker};
use std::time::Instant;

use super::sink::{Handoff, OutcomeSink, drop_quietly};
use super::{Control, Outcome};
use crate::error::JobError;
use crate::sync::{AtomicU8, Mutex, Ordering, thread};

/// No outcome yet (a hint: the lock holds the truth).
const EMPTY: u8 = 0;
/// Resolved: an outcome is in, or none will come.
const RESOLVED: u8 = 1;
/// The handle took the outcome (written by the handle's owner, for its own later look).
const TAKEN: u8 = 2;

/// Where one job's outcome waits for its handle.
///
/// The lock holds the truth; `state` is a hint for looks that take no lock (`is_resolved`),
/// raised only after the lock is released, so a caller spinning on it never finds the
/// sender still holding the lock.
pub struct OutcomeSlot<T> {
    state: AtomicU8,
    stage: Mutex<Stage<T>>,
}

/// Where the outcome is: one enum, so the slot costs a handle only the larger of an outcome
/// and a waker.
enum Stage<T> {
    /// No outcome yet; nobody waits.
    Empty,
    /// No outcome yet; this thread waits (parked).
    Thread(thread::Thread),
    /// No outcome yet; this task waits.
    Task(Waker),
    /// The outcome is in.
    Done(Outcome<T>),
    /// Resolved without an outcome here: the handle took it, or the sender left without one.
    Spent,
    /// The handle is gone: an outcome sent now goes back to the sender, to be dropped there.
    Abandoned,
}

impl<T> Stage<T> {
    /// No outcome has come, and the handle still waits for one.
    fn awaits_outcome(&self) -> bool {
        matches!(self, Self::Empty | Self::Thread(_) | Self::Task(_))
    }

    /// Wakes the thread or task that waited here, if any (call after the lock).
    fn wake(self) {
        match self {
            Self::Thread(thread) => thread.unpark(),
            Self::Task(waker) => waker.wake(),
            _ => {}
        }
    }
}

impl<T> Default for OutcomeSlot<T> {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            stage: Mutex::new(Stage::Empty),
        }
    }
}

impl<T> OutcomeSlot<T> {
    /// Puts the outcome in and wakes the handle. Hands it back if the handle is gone (or the
    /// slot was already resolved).
    pub(crate) fn send(&self, outcome: Outcome<T>) -> Result<(), Outcome<T>> {
        let waiter = {
            let mut stage = self.stage.lock();
            if !stage.awaits_outcome() {
                return Err(outcome);
            }
            std::mem::replace(&mut *stage, Stage::Done(outcome))
        };
        self.raise();
        waiter.wake();
        Ok(())
    }

    /// The sender leaves without an outcome: the handle resolves `ShutDown`.
    pub(crate) fn close(&self) {
        let waiter = {
            let mut stage = self.stage.lock();
            if !stage.awaits_outcome() {
                return;
            }
            std::mem::replace(&mut *stage, Stage::Spent)
        };
        self.raise();
        waiter.wake();
    }

    /// Raises the hint, after the lock: see the type's docs.
    fn raise(&self) {
        // ORDERING: Release after the unlock, so a look that sees it and then takes the lock
        // finds the slot resolved. (A handle that took the outcome before this store, without
        // looking, may see TAKEN overwritten: both read as resolved.)
        self.state.store(RESOLVED, Ordering::Release);
    }

    /// The handle is gone: later outcomes go back to the sender. Returns one that already
    /// arrived, for the caller to drop (after the lock).
    pub(crate) fn abandon(&self) -> Option<Outcome<T>> {
        // ORDERING: TAKEN was written by this handle itself: nothing is left to give up.
        if self.state.load(Ordering::Relaxed) == TAKEN {
            return None;
        }
        let left = {
            let mut stage = self.stage.lock();
            if matches!(*stage, Stage::Spent) {
                return None; // resolved, nothing here: later outcomes are refused anyway
            }
            std::mem::replace(&mut *stage, Stage::Abandoned)
        };
        // A waker's `Drop` is the executor's code: never under the lock.
        match left {
            Stage::Done(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// `true` once `take` would return at once: an outcome is in, or none will come.
    pub(crate) fn is_resolved(&self) -> bool {
        // ORDERING: Acquire pairs with the Release in `raise`.
        self.state.load(Ordering::Acquire) != EMPTY
    }

    /// Takes the outcome under the lock: `None` while none has arrived; `ShutDown` once
    /// resolved without one (or after it was taken).
    fn take_locked(&self, stage: &mut Stage<T>) -> Option<Outcome<T>> {
        match stage {
            Stage::Done(_) => {
                let Stage::Done(outcome) = std::mem::replace(stage, Stage::Spent) else {
                    unreachable!("matched above")
                };
                // ORDERING: read back only by this handle's owner (`abandon`).
                self.state.store(TAKEN, Ordering::Relaxed);
                Some(outcome)
            }
            Stage::Spent | Stage::Abandoned => Some(Err(JobError::ShutDown)),
            Stage::Empty | Stage::Thread(_) | Stage::Task(_) => None,
        }
    }

    /// Takes the outcome if it has arrived; never blocks.
    pub(crate) fn try_take(&self) -> Option<Outcome<T>> {
        if !self.is_resolved() {
            return None;
        }
        self.take_locked(&mut self.stage.lock())
    }

    /// Blocks until the outcome arrives and takes it.
    pub(crate) fn take(&self) -> Outcome<T> {
        loop {
            if let Some(outcome) = self.take_by(None) {
                return outcome;
            }
        }
    }

    /// As [`take`](Self::take), giving up at `deadline` (`None` then).
    pub(crate) fn take_until(&self, deadline: Instant) -> Option<Outcome<T>> {
        self.take_by(Some(deadline))
    }

    /// Blocks until the outcome arrives and takes it, or until `deadline` passes (`None`).
    fn take_by(&self, deadline: Option<Instant>) -> Option<Outcome<T>> {
        loop {
            let replaced = {
                let mut stage = self.stage.lock();
                if let Some(outcome) = self.take_locked(&mut stage) {
                    return Some(outcome);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // Nobody waits any more.
                    let left = std::mem::replace(&mut *stage, Stage::Empty);
                    drop(stage);
                    drop(left);
                    return None;
                }
                if matches!(*stage, Stage::Thread(_)) {
                    None
                } else {
                    Some(std::mem::replace(
                        &mut *stage,
                        Stage::Thread(thread::current()),
                    ))
                }
            };
            // A waker's `Drop` is the executor's code: never under the lock.
            drop(replaced);
            // A wake-up before this park (or a stale one) makes it return at once: the loop
            // looks again.
            match deadline {
                None => thread::park(),
                Some(d) => thread::park_timeout(d.saturating_duration_since(Instant::now())),
            }
        }
    }

    /// Takes the outcome if it has arrived, else registers `waker` to be woken when it does.
    pub(crate) fn poll_take(&self, waker: &Waker) -> Poll<Outcome<T>> {
        let replaced = {
            let mut stage = self.stage.lock();
            if let Some(outcome) = self.take_locked(&mut stage) {
                return Poll::Ready(outcome);
            }
            match &*stage {
                Stage::Task(known) if known.will_wake(waker) => return Poll::Pending,
                _ => std::mem::replace(&mut *stage, Stage::Task(waker.clone())),
            }
        };
        // A waker's `Drop` is the executor's code: never under the lock.
        drop(replaced);
        Poll::Pending
    }
}

impl<T> std::fmt::Debug for OutcomeSlot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutcomeSlot")
            .field("resolved", &self.is_resolved())
            .finish_non_exhaustive()
    }
}

/// A job whose outcome waits in an [`OutcomeSlot`] for its handle.
pub(crate) trait HeldOutcome<T>: Control {
    fn slot(&self) -> &OutcomeSlot<T>;
}

/// The sink of a job delivered to a handle: the outcome goes into the slot in the job's cell.
#[derive(Debug)]
pub struct SlotSink<T>(PhantomData<fn(T)>);

impl<T> SlotSink<T> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T: Send + 'static> OutcomeSink for SlotSink<T> {
    type Value = T;
    type Slot = OutcomeSlot<T>;
    fn deliver(self, outcome: Outcome<T>, slot: &OutcomeSlot<T>, handoff: &dyn Handoff) -> bool {
        handoff.coming();
        if let Err(unsent) = slot.send(outcome) {
            // The handle was dropped (detached): the value dies here, on the worker, and a
            // panicking `Drop` must not take the worker with it. That `Drop` is user code that
            // may take long: the worker is not coming back soon after all.
            if unsent.is_ok() && std::mem::needs_drop::<T>() {
                handoff.busy();
            }
            drop_quietly(unsent);
        }
        false
    }
}

/// An outcome slot fed from outside the pool's jobs (a write session's replies), for a
/// handle that the pool `pool_id` (0: none) serves, for the blocking rule.
pub(crate) struct Detached<T> {
    slot: OutcomeSlot<T>,
    pool_id: usize,
}

impl<T> Detached<T> {
    pub(crate) fn new(pool_id: usize) -> Self {
        Self {
            slot: OutcomeSlot::default(),
            pool_id,
        }
    }
}

impl<T: Send> Control for Detached<T> {
    fn cancel(&self) -> super::CancelOutcome {
        super::CancelOutcome::Finished
    }
    fn cancel_requested(&self) -> bool {
        false
    }
    fn pool_id(&self) -> usize {
        self.pool_id
    }
}

impl<T: Send> HeldOutcome<T> for Detached<T> {
    fn slot(&self) -> &OutcomeSlot<T> {
        &self.slot
    }
}

/// The sending side of a [`Detached`] slot. Dropping it unsent resolves the handle
/// `ShutDown`.
pub(crate) struct Resolver<T>(pub(crate) std::sync::Arc<Detached<T>>);

impl<T> Resolver<T> {
    /// Resolves the handle with `outcome` (dropped here if the handle is gone).
    pub(crate) fn send(self, outcome: Outcome<T>) {
        drop(self.0.slot.send(outcome));
    }
}

impl<T> Drop for Resolver<T> {
    fn drop(&mut self) {
        self.0.slot.close();
    }
}

#[cfg(all(test, not(offthread_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// A waker that counts its wake-ups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn an_outcome_sent_is_taken_once_then_reads_shut_down() {
        let slot = OutcomeSlot::default();
        assert!(!slot.is_resolved());
        assert_eq!(slot.try_take(), None);
        assert_eq!(slot.send(Ok(7)), Ok(()));
        assert!(slot.is_resolved());
        assert_eq!(slot.send(Ok(8)), Err(Ok(8)), "a second outcome is refused");
        assert_eq!(slot.try_take(), Some(Ok(7)));
        assert_eq!(slot.try_take(), Some(Err(JobError::ShutDown)));
        assert_eq!(slot.abandon(), None);
    }

    #[test]
    fn a_closed_slot_resolves_shut_down_and_refuses_nothing_after() {
        let slot = OutcomeSlot::<u8>::default();
        slot.close();
        assert!(slot.is_resolved());
        assert_eq!(slot.take(), Err(JobError::ShutDown));
        let slot = OutcomeSlot::default();
        assert_eq!(slot.send(Ok(1)), Ok(()));
        slot.close(); // after an outcome: no effect
        assert_eq!(slot.take(), Ok(1));
    }

    #[test]
    fn an_abandoned_slot_hands_the_outcome_back() {
        let slot = OutcomeSlot::default();
        assert_eq!(slot.send(Ok(String::from("arrived"))), Ok(()));
        assert_eq!(slot.abandon(), Some(Ok(String::from("arrived"))));
        let slot = OutcomeSlot::default();
        assert_eq!(slot.abandon(), None);
        assert_eq!(slot.send(Ok(5)), Err(Ok(5)), "nobody left to take it");
    }

    #[test]
    fn a_slot_given_up_after_its_outcome_was_taken_or_before_a_close_stays_quiet() {
        // Taken, then the handle leaves: nothing to hand back, later outcomes refused.
        let slot = OutcomeSlot::default();
        assert_eq!(slot.send(Ok(1)), Ok(()));
        assert_eq!(slot.try_take(), Some(Ok(1)));
        assert_eq!(slot.abandon(), None);
        assert_eq!(slot.send(Ok(2)), Err(Ok(2)));
        // The handle leaves first, then the sender leaves without an outcome: no wake, no
        // outcome, and an outcome after that still goes back.
        let slot = OutcomeSlot::<u8>::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        assert_eq!(slot.poll_take(&Waker::from(count.clone())), Poll::Pending);
        assert_eq!(slot.abandon(), None);
        slot.close();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "an abandoned waiter is never woken"
        );
        assert_eq!(slot.send(Ok(3)), Err(Ok(3)));
    }

    #[test]
    fn a_past_deadline_gives_up_at_once_and_an_outcome_still_wins() {
        let slot = OutcomeSlot::<u8>::default();
        assert_eq!(slot.take_until(Instant::now()), None);
        assert_eq!(slot.send(Ok(3)), Ok(()));
        assert_eq!(slot.take_until(Instant::now()), Some(Ok(3)));
    }

    #[test]
    fn a_registered_waker_is_woken_once_by_the_outcome() {
        let slot = OutcomeSlot::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        assert_eq!(slot.poll_take(&waker), Poll::Pending);
        assert_eq!(
            slot.poll_take(&waker),
            Poll::Pending,
            "polled again: still one waker"
        );
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert_eq!(slot.send(Ok(9)), Ok(()));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(slot.poll_take(&waker), Poll::Ready(Ok(9)));
        assert_eq!(slot.poll_take(&waker), Poll::Ready(Err(JobError::ShutDown)));
    }

    /// Sends from another thread while `take` waits: sender and taker race, either may come
    /// first. A lost wake-up hangs the taker, and the watchdog turns that into a failure.
    fn race(take: fn(&OutcomeSlot<u32>) -> Option<Outcome<u32>>) {
        crate::testing::watchdog(move || {
            for round in 0..200 {
                let slot = Arc::new(OutcomeSlot::default());
                let sender = {
                    let slot = slot.clone();
                    std::thread::spawn(move || slot.send(Ok(round)))
                };
                assert_eq!(take(&slot), Some(Ok(round)));
                assert_eq!(sender.join().unwrap(), Ok(()));
            }
        });
    }

    #[test]
    fn a_waiting_thread_is_woken_by_the_outcome_from_another() {
        race(|slot| Some(slot.take()));
    }

    #[test]
    fn a_timed_wait_is_woken_by_the_outcome_from_another() {
        race(|slot| slot.take_until(Instant::now() + std::time::Duration::from_secs(3600)));
    }
}
