//! The delivering side of an inbox: the slot a submission reserves (`Room`), and the sink that
//! puts a job's outcome into the inbox and wakes whoever waits for it.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;
use std::time::Instant;

use super::{Inbox, InboxShared};
use crate::blocking;
use crate::job::{Handoff, Outcome, OutcomeSink, Room, drop_quietly};
use crate::sync::MutexGuard;
use crate::waiters::wake_all;

impl<T: Send, K: Send> Room for InboxShared<T, K> {
    fn try_reserve(&self) -> bool {
        let mut st = self.state.lock();
        if st.reserved < self.capacity {
            st.reserved += 1;
            return true;
        }
        false
    }

    fn reserve_until(&self, deadline: Option<Instant>, give_up: &dyn Fn() -> bool) -> bool {
        // Declared before the lock guard, so it is dropped after it.
        let mut blocked = None;
        let mut st = self.state.lock();
        while st.reserved >= self.capacity {
            if give_up() {
                return false;
            }
            if blocked.is_none() {
                // The inbox's consumer may be a job of this thread's own pool: let the pool
                // lend a worker. (Never refused: an inbox is no particular pool's.)
                blocked = MutexGuard::unlocked(&mut st, || blocking::enter(0).ok());
                continue;
            }
            st.room_waiters += 1;
            let timed_out = match deadline {
                None => {
                    self.room.wait(&mut st);
                    false
                }
                Some(d) => self.room.wait_until(&mut st, d).timed_out(),
            };
            st.room_waiters -= 1;
            if timed_out && st.reserved >= self.capacity {
                return false;
            }
        }
        st.reserved += 1;
        true
    }

    fn wake_waiters(&self) {
        // Under the lock: a waiter between its `give_up` and its sleep holds it.
        let _st = self.state.lock();
        self.room.notify_all();
    }

    fn poll_reserve(&self, waiter: &mut Option<u64>, waker: &Waker) -> bool {
        let mut st = self.state.lock();
        if st.reserved < self.capacity {
            st.reserved += 1;
            st.async_waiters.remove(waiter);
            return true;
        }
        st.async_waiters.register(waiter, waker);
        false
    }

    fn forget(&self, waiter: &mut Option<u64>) {
        if waiter.is_some() {
            self.state.lock().async_waiters.remove(waiter);
        }
    }

    fn release(&self) {
        let mut st = self.state.lock();
        let wakers = self.free_slot(&mut st);
        drop(st);
        wake_all(wakers);
    }
}

/// The sink of a job submitted to an inbox: its key and where to put the outcome.
pub struct InboxSink<T, K> {
    inbox: Inbox<T, K>,
    key: K,
}

impl<T, K> fmt::Debug for InboxSink<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxSink").finish_non_exhaustive()
    }
}

impl<T, K> InboxSink<T, K> {
    pub(crate) fn new(inbox: Inbox<T, K>, key: K) -> Self {
        Self { inbox, key }
    }
}

impl<T: Send + 'static, K: Send + 'static> OutcomeSink for InboxSink<T, K> {
    type Value = T;
    type Slot = ();
    fn deliver(self, outcome: Outcome<T>, (): &(), _: &dyn Handoff) -> bool {
        let shared = &self.inbox.shared;
        let mut st = shared.state.lock();
        st.items.push_back((self.key, outcome));
        if st.receivers > 0 {
            shared.ready.notify_one();
        }
        let first = !st.signalled;
        st.signalled = true;
        #[cfg(unix)]
        if first && let Some(signal) = shared.signal.get() {
            signal.raise(); // under the lock: see `take`
        }
        let tasks = st.recv_tasks.take();
        drop(st);
        wake_all(tasks);
        let panicked = match &shared.wake {
            Some(wake) if first => match panic::catch_unwind(AssertUnwindSafe(wake)) {
                Ok(()) => false,
                Err(payload) => {
                    drop_quietly(payload);
                    true
                }
            },
            _ => false,
        };
        // The last reference may be ours (every `Inbox` dropped): the outcomes die here, and
        // their `Drop` must not unwind into the worker.
        drop_quietly(self.inbox);
        panicked
    }
}
