//! Run blocking calls off-thread; get a handle back at once.
//!
//! offthread hands synchronous work — SQLite queries, file reads, calls into legacy sync
//! libraries — to a **bounded** pool of worker threads and returns a [`Handle`] immediately.
//! The caller stays free and picks the result up however it likes:
//!
//! ```
//! use offthread::Pool;
//!
//! let pool = Pool::new();
//!
//! // 1. Block for it (a plain thread, a CLI):
//! let text = pool.submit(|| std::fs::read_to_string("Cargo.toml"))?.wait()??;
//! assert!(text.contains("offthread"));
//!
//! // 2. Await it from any runtime (tokio, smol, async-std, pollster, ...):
//! let n = pollster::block_on(async { pool.submit(|| 2 + 2)?.await.map_err(Into::into) })
//!     .map_err(|e: Box<dyn std::error::Error>| e)?;
//! assert_eq!(n, 4);
//!
//! // 3. Poll it from a frame loop that must never block:
//! let mut handle = pool.submit(|| "loaded")?;
//! let value = loop {
//!     match handle.try_wait() {
//!         Ok(outcome) => break outcome?,
//!         Err(pending) => handle = pending, // draw a frame, come back next tick
//!     }
//! };
//! assert_eq!(value, "loaded");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Bounded, with backpressure
//! A pool runs at most `max_workers` threads and queues at most `queue_capacity` jobs. When the
//! queue is full, [`Pool::submit`] waits for room, [`Pool::try_submit`] refuses at once, and
//! [`Pool::submit_async`] waits without blocking its thread. A refused job is handed back in the
//! error, so nothing is ever silently dropped:
//!
//! ```
//! use offthread::{Pool, TrySubmitError};
//! let pool = Pool::builder().max_workers(1).queue_capacity(1).build()?;
//! let (release, gate) = std::sync::mpsc::channel::<()>();
//! let busy = pool.submit(move || gate.recv().ok())?;
//! # while pool.stats().running == 0 { std::thread::yield_now(); }
//! let queued = pool.submit(|| 1)?;
//! let Err(TrySubmitError::Full(job)) = pool.try_submit(|| 2) else { panic!("not full?") };
//! assert_eq!(job(), 2); // the refused job, handed back
//! release.send(())?;
//! assert_eq!(queued.wait(), Ok(1));
//! # busy.wait()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Exactly once
//! Every accepted job resolves exactly once: its value, or a [`JobError`] — `Panicked` (the
//! worker survives), `Cancelled`, `ShutDown` or `Expired`. [`Handle::cancel`] removes a queued
//! job (it never runs, its slot frees at once) or raises a flag that a running job reads with
//! [`is_cancelled`]; a running job is never interrupted, only asked to stop.
//!
//! # A GUI inbox, priorities and options
//! A frame loop submits with [`JobBuilder::try_submit`] (never waits) and drains an [`Inbox`]
//! once per frame (never waits either). Per-job options go on the [`JobBuilder`] that
//! [`Pool::job`] returns: a [`Priority`] (interactive work jumps the queue; background work
//! never holds every worker), a start deadline (a job that cannot start in time resolves
//! `Expired` instead of running late), cancel-on-drop, a name, and where the outcome goes — a
//! handle, an inbox, or a completion callback ([`JobBuilder::on_complete`]).
//!
//! ```
//! use std::time::Duration;
//! use offthread::{Inbox, Pool, Priority};
//!
//! let pool = Pool::new();
//! let inbox = Inbox::with_wake(256, || { /* window.request_redraw() */ });
//! pool.job(|| "thumbnail.png")
//!     .priority(Priority::Interactive)
//!     .start_timeout(Duration::from_secs(1)) // stale after a second: don't bother
//!     .inbox(&inbox, "thumb")
//!     .try_submit()?;
//! pool.job(|| "index built").priority(Priority::Background).inbox(&inbox, "index").try_submit()?;
//!
//! let mut arrived = 0;
//! while arrived < 2 {
//!     // once per frame:
//!     for (key, outcome) in inbox.drain() {
//!         println!("{key}: {:?}", outcome?);
//!         arrived += 1;
//!     }
//! #   std::thread::yield_now();
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Serial lanes and nested waits
//! [`Pool::lane`] gives a [`Lane`]: its jobs run one at a time, in order, on the shared pool,
//! with no thread of their own — one lane per document, per connection, per user. A job may
//! wait on another job of its own pool without deadlocking: the waiting worker lends its place
//! to a new one (see [`Handle::wait`]). The same holds for every blocking call of the crate
//! made from a pool's own thread — iterating a stream, `Inbox::recv`, a blocking submit,
//! `shutdown` — and the waits that only the caller could end (on a later job of its own lane)
//! are refused at once with `WouldDeadlock`.
//!
//! ```
//! let pool = offthread::Pool::builder().max_workers(1).build()?;
//! let p = pool.clone();
//! let outer = pool.submit(move || p.submit(|| 20).unwrap().wait().unwrap() + 1)?;
//! assert_eq!(outer.wait(), Ok(21)); // one worker, yet the inner job ran
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Files and bounded streams
//! [`fs`] wraps the filesystem calls (`read`, `write`, `metadata`, `read_dir`, `copy`, …) so
//! each returns a handle at once; errors keep their kind and name the path. Large files stream
//! through a bounded buffer ([`fs::read_chunks`], [`fs::read_lines`]), and any producer can:
//! [`Pool::stream`] runs it on a worker and hands back a [`stream::Receiver`] — a blocking iterator, an
//! async `Stream`, or `try_next` from a frame loop — with backpressure.
//!
//! ```
//! let pool = offthread::Pool::new();
//! let mut lines = 0;
//! for line in offthread::fs::on(&pool).read_lines("Cargo.toml", 16) {
//!     line?; // io::Error with the path, or the line
//!     lines += 1;
//! }
//! assert!(lines > 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # SQLite
//! [`sqlite::Db`] (feature `sqlite`, on by default) gives a database one writer thread and a
//! pool of reader threads; every call returns a [`sqlite::Call`] at once, and one `?` gets the
//! value. See the module docs for the design.
//!
//! ```
//! # #[cfg(any(feature = "sqlite", feature = "sqlite-system"))]
//! # fn main() -> Result<(), offthread::sqlite::Error> {
//! let db = offthread::sqlite::Db::open_in_memory()?;
//! let n: i64 = db.read(|c| c.query_row("SELECT 6 * 7", (), |r| r.get(0))).wait()?;
//! assert_eq!(n, 42);
//! # Ok(())
//! # }
//! # #[cfg(not(any(feature = "sqlite", feature = "sqlite-system")))]
//! # fn main() {}
//! ```
//!
//! # Per-worker state
//! [`PoolBuilder::build_with_state`] gives each worker a value built on its own thread (a
//! database connection, a `!Send` client); jobs receive `&mut S`:
//!
//! ```
//! use std::cell::RefCell; // not Sync, and RefCell<Vec<_>> inside an Rc would not be Send
//! let pool = offthread::Pool::builder()
//!     .max_workers(1)
//!     .build_with_state(|| RefCell::new(Vec::<u32>::new()))?;
//! pool.submit(|log: &mut RefCell<Vec<u32>>| log.borrow_mut().push(1))?.wait()?;
//! let len = pool.submit(|log: &mut RefCell<Vec<u32>>| log.borrow().len())?.wait()?;
//! assert_eq!(len, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Shutdown
//! [`Pool::shutdown`] stops intake, runs what is queued and joins the workers;
//! [`Pool::shutdown_now`] resolves queued jobs `ShutDown` instead; the `_timeout` variants report
//! what was still running. Dropping the last `Pool` never blocks and never loses an accepted job.
//!
//! # Seeing what a pool does
//! [`Pool::stats`] is a consistent snapshot of the counts, with the median, 99th percentile and
//! maximum of queue wait and run time ([`Percentiles`]). With the feature `tracing`, every job
//! is a `tracing` span (name, priority, lane, queue wait, run time) entered on the worker as a
//! child of the span current where it was submitted, and refusals, panics, jobs dropped unrun
//! and worker threads starting and stopping are events; `cargo run --example event_loop
//! --features tracing` prints them. Without the feature none of it is compiled.
//!
//! # Guarantees
//! `GUARANTEES.md` in the repository states every promise above precisely, each with the test
//! that checks it.
//!
//! # The one-liner
//! [`run`] submits to a lazily built global pool: `offthread::run(|| work()).wait()`.

#![cfg_attr(docsrs, feature(doc_cfg))]

// The public API. Each public type has one path: the crate root, or its module (`fs`,
// `sqlite`, `stream`) for the extras.
mod pool;
pub use pool::{Pool, StatePool};
mod builder;
pub use builder::PoolBuilder;
mod priority;
pub use priority::WorkerPriority;
mod options;
pub use options::JobBuilder;
mod handle;
pub use handle::{Handle, JobFuture};
mod promise;
pub use promise::Promise;
mod delivery;
pub use delivery::{Delivery, Ticket, ToCallback, ToHandle, ToInbox};
mod inbox;
#[cfg(unix)]
pub use inbox::ReadyFd;
pub use inbox::{Drain, Inbox};
mod lane;
pub use lane::{Lane, StateLane};
mod error;
pub use error::{
    BuildError, JobError, ShutdownTimeout, SubmitError, SubmitTimeoutError, TrySubmitError,
};
mod stats;
pub use stats::{Percentiles, RunningJob, Stats};
mod global;
pub use global::{global, run};
// The job cell's public face: what a job resolves to, and how it is cancelled and ordered.
pub use job::{CancelOutcome, Outcome, Priority, is_cancelled};
// The generic core under both pools, and the surface they share.
mod submit;
mod surface;

// The engine below the API; the job cell it runs; the leaves both use.
mod backoff;
mod blocking;
mod engine;
mod job;
mod sync;
#[cfg(test)]
mod testing;
mod trace;
mod waiters;

// Extras built on the API.
pub mod fs;
#[cfg(any(feature = "sqlite", feature = "sqlite-system"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "sqlite-system"))))]
pub mod sqlite;
pub mod stream;

#[cfg(all(test, offthread_loom))]
mod loom;

// The README's examples compile and run as doctests (one of them needs SQLite).
#[cfg(all(doctest, any(feature = "sqlite", feature = "sqlite-system")))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
