//! The futures waiting for room — in a pool's queue or in an inbox — and how they are woken.
//!
//! Each waiting future holds an id handed out here. A poll that finds no room registers its
//! waker under that id (or refreshes it); a future that gets its room or is dropped removes
//! itself. Whoever frees room takes every waker and wakes them all, outside the lock: each
//! retries, so a future dropped after its wake cannot swallow the slot it was woken for. The
//! herd is only the futures blocked on a full queue.

use std::task::Waker;

/// The registry; lives under the lock of what it waits for.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    list: Vec<(u64, Waker)>,
    next: u64,
}

impl Waiters {
    /// Registers `waker` for the future whose id is in `waiter` (handing one out the first
    /// time), or refreshes the waker already registered.
    pub(crate) fn register(&mut self, waiter: &mut Option<u64>, waker: &Waker) {
        match waiter.and_then(|id| self.list.iter_mut().find(|(w, _)| *w == id)) {
            Some((_, registered)) => registered.clone_from(waker),
            None => {
                let id = self.next;
                self.next += 1;
                self.list.push((id, waker.clone()));
                *waiter = Some(id);
            }
        }
    }

    /// Registers `waker` for a waiter that keeps no id (a stream polled through a shared
    /// handle), unless a waker that wakes the same task is registered already.
    pub(crate) fn add(&mut self, waker: &Waker) {
        if !self.list.iter().any(|(_, w)| w.will_wake(waker)) {
            let id = self.next_id();
            self.list.push((id, waker.clone()));
        }
    }

    /// Forgets the future whose id is in `waiter`, if it is registered.
    pub(crate) fn remove(&mut self, waiter: &mut Option<u64>) {
        if let Some(id) = waiter.take() {
            self.list.retain(|(w, _)| *w != id);
        }
    }

    /// No future waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Takes every registered waker, to wake once the lock is released (see [`wake_all`]).
    pub(crate) fn take(&mut self) -> Vec<Waker> {
        if self.list.is_empty() {
            return Vec::new(); // no work, no allocation
        }
        std::mem::take(&mut self.list)
            .into_iter()
            .map(|(_, waker)| waker)
            .collect()
    }

    /// A fresh id, for a waiter kept elsewhere (see `Shared::inbox_waiters`).
    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next;
        self.next += 1;
        id
    }
}

/// Wakes what [`Waiters::take`] took. Call without the lock.
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    for waker in wakers {
        waker.wake();
    }
}
