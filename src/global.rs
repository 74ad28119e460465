//! The default pool behind `offthread::run`, built on first use.

use std::sync::OnceLock;

use crate::error::JobError;
use crate::handle::{Handle, resolved};
use crate::pool::Pool;

static GLOBAL: OnceLock<Pool> = OnceLock::new();

/// The process-wide default pool, built with [`Pool::new`]'s defaults (thread names
/// `offthread-global-N`) the first time it is asked for.
///
/// # Panics
/// On first use, if the OS refuses to start the pool's first thread.
///
/// # Examples
/// ```
/// let handle = offthread::global().submit(|| 1)?;
/// assert_eq!(handle.wait(), Ok(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn global() -> &'static Pool {
    GLOBAL.get_or_init(|| {
        Pool::builder()
            .thread_name("offthread-global")
            .build()
            .expect("offthread: could not start the global pool's first thread")
    })
}

/// Runs `f` on the [`global`] pool and returns its handle: the one-liner.
///
/// Waits for room if the global queue is full (backpressure). If the global pool was shut down,
/// the handle resolves [`JobError::ShutDown`] at once (`f` is dropped unrun).
///
/// # Panics
/// On first use, if the OS refuses to start the global pool's first thread.
///
/// # Examples
/// ```
/// let len = offthread::run(|| std::fs::read_dir(".").map(|d| d.count())).wait()??;
/// assert!(len > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run<F, T>(f: F) -> Handle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    global()
        .submit(f)
        .unwrap_or_else(|_| resolved(Err(JobError::ShutDown)))
}
