//! The channel under a bounded stream: a `VecDeque` under a lock with two condvars and one
//! waker slot.

use std::collections::VecDeque;
use std::task::Waker;

use crate::backoff::Backoff;
use crate::error::JobError;
use crate::sync::{AtomicUsize, Condvar, Mutex, Ordering};

/// Added to `Chan::hint` when the producer has ended.
pub(super) const DONE: usize = 1 << (usize::BITS - 1);

pub(super) struct Chan<T> {
    pub(super) state: Mutex<ChanState<T>>,
    /// Mirror of `items.len()`, plus `DONE` once the producer has ended: lets each side spin
    /// briefly without the lock before it sleeps (a chunk or a row usually arrives, or room
    /// frees, within microseconds; a futex sleep and wake costs more than that).
    pub(super) hint: AtomicUsize,
    /// The producer waits here for room.
    pub(super) room: Condvar,
    /// A blocking consumer waits here for an item.
    pub(super) ready: Condvar,
    pub(super) buffer: usize,
}

pub(super) struct ChanState<T> {
    pub(super) items: VecDeque<Result<T, JobError>>,
    /// The producer has ended (its last item, an error, may still be in `items`).
    pub(super) done: bool,
    /// The consumer is gone.
    pub(super) gone: bool,
    /// A producer waits in `send`.
    pub(super) producer_waiting: bool,
    /// A consumer blocks in `next`.
    pub(super) consumer_waiting: bool,
    /// The waker of an async consumer that found nothing.
    pub(super) waker: Option<Waker>,
}

impl<T> Chan<T> {
    /// Keeps `hint` in step with the state. Call under the lock after every change.
    pub(super) fn publish(&self, st: &ChanState<T>) {
        let done = if st.done { DONE } else { 0 };
        // ORDERING: a hint for spinners, who confirm under the lock.
        self.hint.store(st.items.len() | done, Ordering::Relaxed);
    }

    /// Spins (without the lock) while `waiting(hint)` holds, for a few microseconds at most.
    pub(super) fn spin_while(&self, waiting: impl Fn(usize) -> bool) {
        let backoff = Backoff::new();
        // ORDERING: a hint; the caller looks again under the lock.
        while waiting(self.hint.load(Ordering::Relaxed)) && !backoff.is_completed() {
            backoff.snooze();
        }
    }

    /// Takes the next item (notifying a waiting producer), or `None` if there is none yet.
    pub(super) fn pop(&self, st: &mut ChanState<T>) -> Option<Result<T, JobError>> {
        let item = st.items.pop_front()?;
        self.publish(st);
        if st.producer_waiting {
            self.room.notify_one();
        }
        Some(item)
    }

    /// Tells the consumer something changed (an item, or the end).
    pub(super) fn wake_consumer(&self, st: &mut ChanState<T>) -> Option<Waker> {
        if st.consumer_waiting {
            self.ready.notify_one();
        }
        st.waker.take()
    }

    /// Ends the stream, with `err` as its last item if the producer failed. Idempotent.
    pub(super) fn finish(&self, err: Option<JobError>) {
        let mut st = self.state.lock();
        if st.done {
            return;
        }
        st.done = true;
        if let Some(err) = err
            && !st.gone
        {
            st.items.push_back(Err(err)); // past the bound: one last item
        }
        self.publish(&st);
        let waker = self.wake_consumer(&mut st);
        drop(st);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A stream that its owner can end from outside (a database closing under a live query
/// stream; see `sqlite::Live`).
#[cfg_attr(
    not(any(feature = "sqlite", feature = "sqlite-system")),
    allow(dead_code)
)]
pub(crate) trait Cut: Send + Sync {
    /// Ends the stream: the producer's next `send` (or the one it waits in) is refused, and
    /// the consumer gets the items already buffered, then `Err(JobError::ShutDown)`.
    fn cut(&self);
}

impl<T: Send> Cut for Chan<T> {
    fn cut(&self) {
        let mut st = self.state.lock();
        if st.gone {
            return; // the consumer has left; the producer already sees it
        }
        st.gone = true;
        if !st.done {
            st.done = true;
            st.items.push_back(Err(JobError::ShutDown)); // past the bound: one last item
        }
        self.publish(&st);
        if st.producer_waiting {
            self.room.notify_one();
        }
        let waker = self.wake_consumer(&mut st);
        drop(st);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}
