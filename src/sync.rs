//! The synchronisation that the job state machine and the bounded stream are built on, swapped
//! for `loom`'s model-checked versions under `RUSTFLAGS="--cfg offthread_loom"` (see
//! `src/loom/`).
//!
//! Only the job's own state, closure slot and outcome slot (`job/`), the stream channel
//! (`stream/chan.rs`), the inbox (`inbox.rs`) and the spin before a wait (`backoff.rs`) are
//! modelled; the rest of the crate keeps the real primitives, and a loom build runs nothing but
//! the loom models. In a normal build these are exactly `std`'s atomics, thread parking and
//! futex-based locks.

#[cfg(not(offthread_loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

#[cfg(offthread_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

#[cfg(not(offthread_loom))]
pub(crate) use park::{Condvar, Mutex, MutexGuard};

/// Parking a thread that waits for a job's outcome, and waking it.
#[cfg(not(offthread_loom))]
pub(crate) mod thread {
    pub(crate) use std::thread::{Thread, current, park, park_timeout};
}

/// loom's parking, which has no clock: a timed park is an untimed one (models never time out).
#[cfg(offthread_loom)]
pub(crate) mod thread {
    pub(crate) use loom::thread::{Thread, current, park};

    pub(crate) fn park_timeout(_: std::time::Duration) {
        park();
    }
}

/// The locks of the pool's state, the stream channel and the inbox: `std`'s futex-based mutex
/// and condvar behind the part of `parking_lot`'s interface the crate uses (no poisoning,
/// `wait(&mut guard)`, `MutexGuard::unlocked`).
///
/// Why not `parking_lot` itself: a contended `parking_lot` lock spins, then *yields* its
/// thread several times before it parks. A UI thread that meets a lock held by a worker it
/// has just preempted then hands its CPU back to that worker with a yield and, the worker
/// being still runnable, gets it back only at the next scheduler tick: milliseconds. `std`'s
/// lock spins briefly and parks; the holder's unlock wakes the waiter, which takes its CPU back
/// at once.
pub(crate) mod park {
    use std::ops::{Deref, DerefMut};
    use std::time::Instant;

    /// A mutex whose lock never reports poisoning: a job's panic never reaches the pool's
    /// locks, and the crate's own code does not panic while holding one.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

    /// A held lock. The `Option` is `None` only while the lock is released inside
    /// [`MutexGuard::unlocked`] or [`Condvar::wait`].
    pub(crate) struct MutexGuard<'a, T> {
        mutex: &'a std::sync::Mutex<T>,
        guard: Option<std::sync::MutexGuard<'a, T>>,
    }

    /// Rounds of `try_lock` before the lock parks: the pool's critical sections take well under
    /// a microsecond, so a lock held by a running thread is almost always free within them, and
    /// taking it then costs no futex wait and wake on either side. Never a yield (see above).
    const SPIN_ROUNDS: u32 = 7;

    fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        for round in 0..SPIN_ROUNDS {
            match mutex.try_lock() {
                Ok(guard) => return guard,
                Err(std::sync::TryLockError::Poisoned(e)) => return e.into_inner(),
                // On one CPU the holder cannot release the lock while this thread spins.
                Err(std::sync::TryLockError::WouldBlock) if !crate::backoff::spin_pays() => break,
                Err(std::sync::TryLockError::WouldBlock) => {
                    for _ in 0..1u32 << round {
                        std::hint::spin_loop();
                    }
                }
            }
        }
        mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard {
                mutex: &self.0,
                guard: Some(lock(&self.0)),
            }
        }

        // Under loom the crate's modelled code uses the model's lock; only the engine uses this.
        #[cfg_attr(offthread_loom, allow(dead_code))]
        pub(crate) fn into_inner(self) -> T {
            self.0
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    impl<T> MutexGuard<'_, T> {
        /// Runs `f` with the lock released, and takes it again.
        pub(crate) fn unlocked<U>(this: &mut Self, f: impl FnOnce() -> U) -> U {
            this.guard = None;
            let out = f();
            this.guard = Some(lock(this.mutex));
            out
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            self.guard.as_deref().expect("lock held")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            self.guard.as_deref_mut().expect("lock held")
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct Condvar(std::sync::Condvar);

    impl Condvar {
        pub(crate) const fn new() -> Self {
            Self(std::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let held = guard.guard.take().expect("lock held");
            guard.guard = Some(
                self.0
                    .wait(held)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
        }

        /// Waits until notified or `deadline`.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            deadline: Instant,
        ) -> WaitTimeoutResult {
            let held = guard.guard.take().expect("lock held");
            let timeout = deadline.saturating_duration_since(Instant::now());
            let (held, result) = self
                .0
                .wait_timeout(held, timeout)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            guard.guard = Some(held);
            WaitTimeoutResult(result.timed_out())
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// Whether a timed wait ended at its deadline.
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }
}

#[cfg(offthread_loom)]
pub(crate) use model::{Condvar, Mutex, MutexGuard};

/// `loom`'s mutex and condvar behind the part of `parking_lot`'s interface the crate uses (no
/// poisoning, `wait(&mut guard)`, `MutexGuard::unlocked`).
#[cfg(offthread_loom)]
mod model {
    use std::ops::{Deref, DerefMut};

    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) struct MutexGuard<'a, T> {
        mutex: &'a loom::sync::Mutex<T>,
        /// `None` only while released inside `unlocked` or `Condvar::wait`.
        guard: Option<loom::sync::MutexGuard<'a, T>>,
    }

    fn lock<T>(mutex: &loom::sync::Mutex<T>) -> loom::sync::MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard {
                mutex: &self.0,
                guard: Some(lock(&self.0)),
            }
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T> MutexGuard<'_, T> {
        /// Runs `f` with the lock released, and takes it again.
        pub(crate) fn unlocked<U>(this: &mut Self, f: impl FnOnce() -> U) -> U {
            this.guard = None;
            let out = f();
            this.guard = Some(lock(this.mutex));
            out
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.guard.as_ref().expect("held")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.guard.as_mut().expect("held")
        }
    }

    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let held = guard.guard.take().expect("held");
            guard.guard = Some(self.0.wait(held).unwrap_or_else(|e| e.into_inner()));
        }

        /// loom has no clock: a timed wait is modelled as an untimed one that never times out.
        /// (Models use untimed waits; timeouts are covered by the ordinary tests.)
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: std::time::Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    pub(crate) struct WaitTimeoutResult;

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            false
        }
    }
}
