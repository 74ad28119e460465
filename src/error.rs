//! Errors: refused submissions (which hand the job back), job outcomes, and configuration.

use std::error::Error;
use std::fmt;
use std::io;

/// The error of [`Pool::submit`](crate::Pool::submit) and
/// [`Pool::submit_async`](crate::Pool::submit_async): the pool was shut down, or waiting for
/// room could never end.
///
/// The refused job is handed back, so nothing is lost.
///
/// # Examples
/// ```
/// let pool = offthread::Pool::new();
/// pool.shutdown();
/// let err = pool.submit(|| 7).unwrap_err();
/// assert!(err.is_shut_down());
/// let job = err.into_inner();
/// assert_eq!(job(), 7);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SubmitError<F> {
    /// The pool no longer accepts jobs.
    ShutDown(F),
    /// The queue is full, and every job holding a slot waits in the caller's own serial lane
    /// behind the caller's job: only the caller's return could make room. Refused at once
    /// instead of waiting forever.
    WouldDeadlock(F),
}

/// The error of [`Pool::try_submit`](crate::Pool::try_submit), with the job handed back.
///
/// # Examples
/// ```
/// use offthread::{Pool, TrySubmitError};
/// let pool = Pool::builder().max_workers(1).queue_capacity(1).build()?;
/// let (release, gate) = std::sync::mpsc::channel::<()>();
/// let busy = pool.submit(move || gate.recv().ok())?; // occupies the only worker ...
/// # while pool.stats().running == 0 { std::thread::yield_now(); }
/// let _queued = pool.submit(|| ())?;                  // ... and fills the queue
/// match pool.try_submit(|| "late") {
///     Err(TrySubmitError::Full(job)) => assert_eq!(job(), "late"),
///     other => panic!("expected Full, got {other:?}"),
/// }
/// release.send(()).unwrap();
/// # busy.wait().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySubmitError<F> {
    /// The queue holds `queue_capacity` jobs already.
    Full(F),
    /// The pool no longer accepts jobs.
    ShutDown(F),
}

/// The error of [`Pool::submit_timeout`](crate::Pool::submit_timeout) and
/// [`Pool::submit_deadline`](crate::Pool::submit_deadline), with the job handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SubmitTimeoutError<F> {
    /// No room became free in the queue before the deadline.
    Timeout(F),
    /// The pool no longer accepts jobs.
    ShutDown(F),
    /// Room could never come in time; see [`SubmitError::WouldDeadlock`].
    WouldDeadlock(F),
}

impl<F> SubmitError<F> {
    /// Returns the refused job.
    pub fn into_inner(self) -> F {
        match self {
            Self::ShutDown(f) | Self::WouldDeadlock(f) => f,
        }
    }

    /// `true` if the pool was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, Self::ShutDown(_))
    }

    /// `true` if waiting for room could never have ended.
    pub fn is_would_deadlock(&self) -> bool {
        matches!(self, Self::WouldDeadlock(_))
    }
}

impl<F> TrySubmitError<F> {
    /// Returns the refused job.
    pub fn into_inner(self) -> F {
        match self {
            Self::Full(f) | Self::ShutDown(f) => f,
        }
    }

    /// `true` if the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// `true` if the pool was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, Self::ShutDown(_))
    }
}

impl<F> SubmitTimeoutError<F> {
    /// Returns the refused job.
    pub fn into_inner(self) -> F {
        match self {
            Self::Timeout(f) | Self::ShutDown(f) | Self::WouldDeadlock(f) => f,
        }
    }

    /// `true` if waiting for room could never have ended.
    pub fn is_would_deadlock(&self) -> bool {
        matches!(self, Self::WouldDeadlock(_))
    }

    /// `true` if no room became free in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// `true` if the pool was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, Self::ShutDown(_))
    }
}

// Debug is written by hand: jobs are closures, and closures are never `Debug`.
impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShutDown(_) => f.write_str("ShutDown(..)"),
            Self::WouldDeadlock(_) => f.write_str("WouldDeadlock(..)"),
        }
    }
}

impl<F> fmt::Debug for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<F> fmt::Debug for SubmitTimeoutError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::ShutDown(_) => f.write_str("ShutDown(..)"),
            Self::WouldDeadlock(_) => f.write_str("WouldDeadlock(..)"),
        }
    }
}

const SHUT_DOWN_MSG: &str = "submitting on a pool that was shut down";
const DEADLOCK_MSG: &str =
    "submitting from a lane's job into a queue full of that lane's later jobs would never end";

impl<F> fmt::Display for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShutDown(_) => f.write_str(SHUT_DOWN_MSG),
            Self::WouldDeadlock(_) => f.write_str(DEADLOCK_MSG),
        }
    }
}

impl<F> fmt::Display for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("submitting on a full queue"),
            Self::ShutDown(_) => f.write_str(SHUT_DOWN_MSG),
        }
    }
}

impl<F> fmt::Display for SubmitTimeoutError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("timed out waiting for room in the queue"),
            Self::ShutDown(_) => f.write_str(SHUT_DOWN_MSG),
            Self::WouldDeadlock(_) => f.write_str(DEADLOCK_MSG),
        }
    }
}

impl<F> Error for SubmitError<F> {}
impl<F> Error for TrySubmitError<F> {}
impl<F> Error for SubmitTimeoutError<F> {}

impl<F> From<SubmitError<F>> for TrySubmitError<F> {
    fn from(err: SubmitError<F>) -> Self {
        Self::ShutDown(err.into_inner())
    }
}

/// Why an accepted job produced no value.
///
/// Every accepted job resolves exactly once: with its value, or with one of these.
///
/// # Examples
/// ```
/// let pool = offthread::Pool::new();
/// let err = pool.submit(|| -> u32 { panic!("boom") })?.wait().unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.panic_message(), Some("boom"));
/// // The worker survived the panic.
/// assert_eq!(pool.submit(|| 2 + 2)?.wait(), Ok(4));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The job panicked; this is the panic message (or a placeholder when the payload was not a
    /// string). The worker caught the panic and goes on serving.
    Panicked(String),
    /// The job was cancelled (see [`Handle::cancel`](crate::Handle::cancel)) before it started.
    Cancelled,
    /// The pool was shut down with [`shutdown_now`](crate::Pool::shutdown_now) before the job
    /// started.
    ShutDown,
    /// The job's start deadline passed while it was still queued.
    Expired,
    /// A wait that could never end was refused at once: a job of a serial lane waited on a
    /// later job of the same lane (which cannot start before the waiting job ends), or a job
    /// of a pool that must not grow (the SQLite writer) waited on a job of that pool. The job
    /// waited on is not affected; it runs in its turn.
    WouldDeadlock,
}

impl JobError {
    /// `true` if the job panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, Self::Panicked(_))
    }

    /// `true` if the job was cancelled before it started.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled)
    }

    /// `true` if the pool was shut down before the job started.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, Self::ShutDown)
    }

    /// `true` if the job's start deadline passed while it was queued.
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired)
    }

    /// `true` if the wait was refused because it could never end.
    pub fn is_would_deadlock(&self) -> bool {
        matches!(self, Self::WouldDeadlock)
    }

    /// The panic message, if the job panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Self::Panicked(msg) => Some(msg),
            _ => None,
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(msg) => write!(f, "job panicked: {msg}"),
            Self::Cancelled => f.write_str("job was cancelled before it started"),
            Self::ShutDown => f.write_str("pool was shut down before the job started"),
            Self::Expired => f.write_str("job's start deadline passed before it started"),
            Self::WouldDeadlock => {
                f.write_str("refused a wait on a later job of the lane the waiting job runs in")
            }
        }
    }
}

impl Error for JobError {}

/// [`Pool::shutdown_timeout`](crate::Pool::shutdown_timeout) gave up waiting: this is what was
/// still in the pool at the deadline.
///
/// Intake stays closed and the remaining jobs still resolve; only the wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownTimeout {
    /// Jobs still running at the deadline.
    pub running: usize,
    /// Jobs still queued at the deadline (always 0 after a `shutdown_now` variant).
    pub queued: usize,
}

impl fmt::Display for ShutdownTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shutdown timed out with {} job(s) running and {} queued",
            self.running, self.queued
        )
    }
}

impl Error for ShutdownTimeout {}

/// A pool could not be built: the configuration was invalid, the OS refused a thread, or the
/// per-worker state failed to initialise.
///
/// # Examples
/// ```
/// let err = offthread::Pool::builder().max_workers(0).build().unwrap_err();
/// assert_eq!(err.to_string(), "max_workers must be at least 1");
/// ```
#[derive(Debug)]
pub struct BuildError {
    kind: BuildErrorKind,
}

#[derive(Debug)]
pub(crate) enum BuildErrorKind {
    ZeroMaxWorkers,
    ZeroMinWorkers,
    MinAboveMax { min: usize, max: usize },
    BackgroundWorkers { n: usize, max: usize },
    NulInThreadName,
    Spawn(io::Error),
    StartPanicked(String),
}

impl BuildError {
    pub(crate) fn new(kind: BuildErrorKind) -> Self {
        Self { kind }
    }

    /// `true` if the configuration itself was invalid (as opposed to a failure to start).
    pub fn is_config(&self) -> bool {
        !matches!(
            self.kind,
            BuildErrorKind::Spawn(_) | BuildErrorKind::StartPanicked(_)
        )
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BuildErrorKind::ZeroMaxWorkers => f.write_str("max_workers must be at least 1"),
            BuildErrorKind::ZeroMinWorkers => f.write_str(
                "min_workers must be at least 1 (a pool keeps one thread so no job is stranded)",
            ),
            BuildErrorKind::MinAboveMax { min, max } => {
                write!(f, "min_workers ({min}) is greater than max_workers ({max})")
            }
            BuildErrorKind::BackgroundWorkers { n, max } => write!(
                f,
                "background_workers ({n}) must be at least 1 and at most max_workers ({max})"
            ),
            BuildErrorKind::NulInThreadName => f.write_str("thread_name contains a NUL byte"),
            BuildErrorKind::Spawn(_) => f.write_str("the OS refused to start a worker thread"),
            BuildErrorKind::StartPanicked(msg) => {
                write!(f, "a worker's start hook or state init panicked: {msg}")
            }
        }
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.kind {
            BuildErrorKind::Spawn(e) => Some(e),
            _ => None,
        }
    }
}
