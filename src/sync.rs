//! The synchronisation the job state machine is built on, swapped for `loom`'s model-checked
//! versions under `RUSTFLAGS="--cfg offthread_loom --cfg oneshot_loom"` (see `src/loom_model.rs`).
//!
//! Only the job's own state (`job.rs`), its handle's spin (`spin.rs`) and the one-shot result
//! slot (the `oneshot` crate, through its `oneshot_loom` cfg) are modelled; the rest of the
//! crate keeps the real primitives, and a loom build runs nothing but the loom models.

#[cfg(not(offthread_loom))]
pub(crate) use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(offthread_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, Ordering};

#[cfg(not(offthread_loom))]
pub(crate) use parking_lot::Mutex;

#[cfg(offthread_loom)]
pub(crate) use model::Mutex;

#[cfg(offthread_loom)]
mod model {
    /// `loom`'s mutex behind `parking_lot`'s interface (no poisoning).
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(|e| e.into_inner())
        }
    }
}
