//! `Pool` and `StatePool<S>`: thin fronts on one generic core (`submit.rs`), with one surface
//! written once (`surface.rs`); they differ only in what a job's closure receives.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::builder::PoolBuilder;
use crate::delivery::{Delivery, ToCallback, ToHandle};
use crate::engine::{Opts, Shared, Wait};
use crate::error::{ShutdownTimeout, SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::handle::Handle;
use crate::job::{Outcome, Plain, SlotSink, Stateful};
use crate::lane::{Lane, StateLane};
use crate::options::{JobBuilder, job_verbs};
use crate::stats::{RunningJob, Stats};
use crate::stream::{
    self as stream, IterJob, Producer, StateIterJob, StateProducer, job_channel, submit_producer,
};
use crate::submit::{
    Core, deadline_after, no_limit, submit_error, timeout_error, try_submit_error,
};
use crate::surface::pool_surface;

/// A bounded pool of worker threads for blocking calls.
///
/// Submitting returns a [`Handle`] at once; the job runs on a worker thread. The pool is bounded
/// twice: at most `max_workers` threads, and at most `queue_capacity` jobs waiting for one.
/// When the queue is full, [`submit`](Self::submit) waits for room (backpressure),
/// [`try_submit`](Self::try_submit) refuses at once, and
/// [`submit_async`](Self::submit_async) waits without blocking its thread. A refused job always
/// comes back inside the error.
///
/// `Pool` is a cheap handle: clones share one pool. Dropping the last clone closes intake without
/// blocking; the jobs already accepted still run and resolve, then the workers exit.
///
/// For workers that each own a value (a database connection, a `!Send` client), see
/// [`StatePool`].
///
/// # Examples
/// ```
/// use offthread::Pool;
/// let pool = Pool::new();
/// let handles: Vec<_> = (0..4).map(|i| pool.submit(move || i * 10)).collect::<Result<_, _>>()?;
/// let values: Vec<u32> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
/// assert_eq!(values, [0, 10, 20, 30]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use = "dropping the last clone closes the pool's intake"]
pub struct Pool {
    core: Core<()>,
}

/// A pool whose workers each own a value of type `S`, built on the worker's own thread by the
/// init closure given to [`PoolBuilder::build_with_state`]. Jobs receive `&mut S`.
///
/// Because `S` is built and used only on its worker thread, it need not be `Send`: this is how
/// a `!Send` client, or one database connection per worker, gets a non-blocking face.
///
/// The submission family, shutdown and stats are those of [`Pool`]; only the closure differs.
///
/// # Examples
/// ```
/// use std::rc::Rc; // not Send
/// let pool = offthread::Pool::builder()
///     .max_workers(2)
///     .build_with_state(|| Rc::new(String::from("client")))?;
/// let len = pool.submit(|client: &mut Rc<String>| client.len())?.wait()?;
/// assert_eq!(len, 6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the last clone closes the pool's intake"]
pub struct StatePool<S: 'static> {
    core: Core<S>,
}

impl<S: 'static> Clone for StatePool<S> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
        }
    }
}

pool_surface! {
    impl [] Pool;
    captures [];
    args ();
    wrap Plain, Producer, IterJob;
    lane Lane;
    example_submit "```
let pool = offthread::Pool::new();
let handle = pool.submit(|| std::fs::metadata(\".\").is_ok())?;
assert_eq!(handle.wait(), Ok(true));
# Ok::<(), Box<dyn std::error::Error>>(())
```

A job crosses to another thread, so it must be `Send`; the compiler says so:

```compile_fail
let pool = offthread::Pool::new();
let not_send = std::rc::Rc::new(1);
let _ = pool.submit(move || *not_send); // error: `Rc<i32>` cannot be sent between threads
```

(For a value that must stay on one thread, build it on the worker with
[`PoolBuilder::build_with_state`].)";
    example_stream "```
let pool = offthread::Pool::new();
let lines = pool.stream(16, |out| {
    for n in 1..=3 {
        if out.send(format!(\"line {n}\")).is_err() {
            return;
        }
    }
})?;
let all: Result<Vec<String>, _> = lines.collect();
assert_eq!(all?, [\"line 1\", \"line 2\", \"line 3\"]);
# Ok::<(), Box<dyn std::error::Error>>(())
```";
    example_stream_iter "```
let pool = offthread::Pool::new();
let evens = pool.stream_iter(8, || (0..10).filter(|n| n % 2 == 0))?;
assert_eq!(evens.map(Result::unwrap).collect::<Vec<_>>(), [0, 2, 4, 6, 8]);
# Ok::<(), Box<dyn std::error::Error>>(())
```";
}

pool_surface! {
    impl [S: 'static] StatePool<S>;
    captures [S];
    args (&mut S);
    wrap Stateful, StateProducer, StateIterJob;
    lane StateLane<S>;
    example_submit "```
let pool = offthread::Pool::builder().build_with_state(|| String::from(\"client\"))?;
let len = pool.submit(|client: &mut String| client.len())?.wait()?;
assert_eq!(len, 6);
# Ok::<(), Box<dyn std::error::Error>>(())
```";
    example_stream "This is how a per-worker connection streams query rows.

```
let pool = offthread::Pool::builder().build_with_state(|| vec![1, 2, 3])?;
let doubled = pool.stream(2, |table: &mut Vec<i32>, out| {
    for row in table.iter() {
        if out.send(row * 2).is_err() {
            return;
        }
    }
})?;
assert_eq!(doubled.map(Result::unwrap).collect::<Vec<_>>(), [2, 4, 6]);
# Ok::<(), Box<dyn std::error::Error>>(())
```";
    example_stream_iter "```
let pool = offthread::Pool::builder().build_with_state(|| vec![1, 2, 3])?;
let rows = pool.stream_iter(8, |table: &mut Vec<i32>| table.clone())?;
assert_eq!(rows.map(Result::unwrap).collect::<Vec<_>>(), [1, 2, 3]);
# Ok::<(), Box<dyn std::error::Error>>(())
```";
}

job_verbs! { impl [] Pool; captures []; args (); wrap Plain; }
job_verbs! { impl [S: 'static,] StatePool<S>; captures [S]; args (&mut S); wrap Stateful; }

impl Pool {
    /// A pool with the default configuration (see [`PoolBuilder`] for the defaults and why).
    ///
    /// # Panics
    /// If the OS refuses to start the pool's first thread. Use [`Pool::builder`] and
    /// [`PoolBuilder::build`] to get that as an error instead.
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("offthread: could not start a worker thread")
    }

    /// A builder to configure a pool: worker limits, queue capacity, thread names, hooks.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    pub(crate) fn from_shared(shared: Arc<Shared<()>>) -> Self {
        Self {
            core: Core::new(shared),
        }
    }

    pub(crate) fn core(&self) -> &Core<()> {
        &self.core
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<S: 'static> StatePool<S> {
    pub(crate) fn from_shared(shared: Arc<Shared<S>>) -> Self {
        Self {
            core: Core::new(shared),
        }
    }

    /// Runs `f` once on the state of every worker running now, and returns one handle per
    /// worker.
    ///
    /// Broadcast jobs go to each worker's own queue, ahead of the shared queue, and do not count
    /// against `queue_capacity`. Workers started later build a fresh state with the init closure
    /// and do not see earlier broadcasts. On a pool that was shut down, the result is empty.
    ///
    /// # Examples
    /// ```
    /// let pool = offthread::Pool::builder()
    ///     .min_workers(2)
    ///     .max_workers(2)
    ///     .build_with_state(|| 0u32)?;
    /// let handles = pool.broadcast(|n: &mut u32| { *n += 1; *n });
    /// assert_eq!(handles.len(), 2);
    /// for h in handles {
    ///     assert_eq!(h.wait(), Ok(1));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn broadcast<F, T>(&self, f: F) -> Vec<Handle<T>>
    where
        F: Fn(&mut S) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let f = Arc::new(f);
        let make = || {
            let f = f.clone();
            (Stateful(move |state: &mut S| f(state)), SlotSink::new(), ())
        };
        self.core
            .shared()
            .broadcast(make)
            .into_iter()
            .map(|(cell, ())| Handle::new(cell))
            .collect()
    }

    pub(crate) fn core(&self) -> &Core<S> {
        &self.core
    }
}

impl<S: 'static> fmt::Debug for StatePool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatePool")
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::watchdog;
    use std::sync::atomic::Ordering;
    use std::sync::mpsc;

    #[test]
    fn a_first_poll_brings_a_worker_for_a_job_left_to_one_that_did_not_come() {
        watchdog(|| {
            let pool = Pool::builder()
                .min_workers(1)
                .max_workers(2)
                .build()
                .unwrap();
            let (held_tx, held_rx) = mpsc::channel();
            let (open_tx, open_rx) = mpsc::channel::<()>();
            let first = pool
                .submit(move || {
                    held_tx.send(()).unwrap();
                    let _ = open_rx.recv();
                })
                .unwrap();
            held_rx.recv().unwrap();
            // Pretend a worker is spinning for work and on its way (as one that has just
            // delivered an outcome is), but off its CPU: the submit leaves the job to it, and
            // nobody comes.
            let shared = pool.core().shared().clone();
            shared.finishing.fetch_add(1, Ordering::SeqCst);
            shared.spinner.store(true, Ordering::Relaxed);
            let second = pool.submit(|| 2).unwrap();
            assert_eq!(
                pool.stats().workers,
                1,
                "the job was left to the coming worker"
            );
            let mut future = std::pin::pin!(second.into_future());
            let first_poll = future
                .as_mut()
                .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
            if num_cpus::get() >= 2 {
                // The first poll saw the job untaken and had a worker started for it, which
                // runs it while the first job still holds the other.
                let outcome = match first_poll {
                    std::task::Poll::Ready(outcome) => outcome,
                    std::task::Poll::Pending => pollster::block_on(future),
                };
                assert_eq!(outcome, Ok(2));
                assert_eq!(pool.stats().workers, 2);
            } else {
                // One CPU: no thread is started beyond the CPU count.
                assert!(first_poll.is_pending());
                assert_eq!(pool.stats().workers, 1);
            }
            shared.finishing.fetch_sub(1, Ordering::SeqCst);
            open_tx.send(()).unwrap();
            first.wait().unwrap();
        });
    }
}
