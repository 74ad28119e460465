//! `Call<T>`: the handle of one database call. Like [`Handle`](crate::Handle), but its outcome
//! is a `Result<T, sqlite::Error>`: one `?` yields the value.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::Arc;

use super::start::Start;
use super::{BoxedJob, Conn, Error, call_opts, refusal};
use crate::delivery::ToHandle;
use crate::engine::{Refusal, Wait};
use crate::handle::{Handle, JobFuture};
use crate::job::{CancelOutcome, Stateful};
use crate::pool::StatePool;
use crate::submit::SubmitAsync;

/// The result a database job hands back: the closure's value or error.
pub(crate) type Reply<T> = Result<T, Error>;

/// The pending result of one database call: wait for it, poll it, or `.await` it.
///
/// Its outcome is `Result<T, sqlite::Error>` whatever went wrong — SQL, busy, a panic in the
/// closure, cancellation, a closed database — so one `?` yields the value.
///
/// Making a call never blocks: when the queue is full, the `Call` holds the call until it is
/// waited on (then it waits for room, blocking) or awaited (then it waits for room without
/// blocking the executor).
///
/// Dropping a `Call` detaches it: the call still runs (a write is never undone by dropping its
/// handle). A read that was still waiting for room is dropped with it, as a queued read would
/// be cancelled; a write still waiting for room is queued by the drop, which waits for room
/// (the one drop that can wait). A `.await` of a write still waiting for room, given up before
/// the room came (its task cancelled), drops that write: it never runs.
#[must_use = "dropping a call detaches it; `wait` or `.await` it for its result"]
pub struct Call<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Queued(Handle<Reply<T>>),
    /// A session's call made while the session's own start waits for room: the start is
    /// queued first, then the call's reply comes as a queued one's.
    Behind(Arc<Start>, Handle<Reply<T>>),
    /// Made while the queue was full: queued when waited on or awaited.
    Pending(Pending<T>),
    /// Refused before it was queued (closed, queue full).
    Refused(Option<Error>),
}

/// The future that queues a call made while its queue was full.
pub(super) type Queueing<T> = SubmitAsync<Conn, Stateful<BoxedJob<T>>, Reply<T>, ToHandle>;

/// A call made while its queue was full.
pub(super) struct Pending<T> {
    pool: StatePool<Conn>,
    /// Taken when it is queued (or dropped unqueued).
    job: Option<BoxedJob<T>>,
    read: bool,
    cancelled: AtomicBool,
    /// Queues a write whose `Call` was dropped before it was queued (made where `T`'s
    /// bounds are known: a `Drop` impl cannot ask for them).
    detach: fn(&StatePool<Conn>, BoxedJob<T>),
}

/// Queues a detached write, waiting for room; its handle goes, so it runs detached.
fn queue_detached<T: Send + 'static>(pool: &StatePool<Conn>, job: BoxedJob<T>) {
    let core = pool.core();
    let _ = core.submit_job(Stateful(job), call_opts(false), ToHandle, Wait::Until(None));
}

impl Pending<()> {
    /// A session's job, made while the writer's queue was full; dropped unqueued, it is
    /// dropped (the session never began, so there is nothing to roll back).
    pub(super) fn session_start(pool: StatePool<Conn>, job: BoxedJob<()>) -> Self {
        Self {
            pool,
            job: Some(job),
            read: false,
            cancelled: AtomicBool::new(false),
            detach: |_, _| {},
        }
    }
}

impl<T: Send + 'static> Pending<T> {
    /// Queues the job, waiting for room as `wait` allows; gives itself back if it may try
    /// again (no room in time).
    pub(super) fn queue(mut self, wait: Wait) -> Result<Handle<Reply<T>>, (Option<Self>, Error)> {
        // ORDERING: set and read by the caller's own thread(s) through `&self`; a cancel
        // that races the queueing is the cancel of a queued call.
        if self.cancelled.load(Ordering::Acquire) {
            self.job = None;
            return Err((None, Error::Cancelled));
        }
        let Some(job) = self.job.take() else {
            return Err((None, Error::Closed));
        };
        let core = self.pool.core();
        match core.submit_job(Stateful(job), call_opts(self.read), ToHandle, wait) {
            Ok(handle) => Ok(handle),
            Err((Stateful(job), why @ (Refusal::Full | Refusal::Timeout))) => {
                self.job = Some(job);
                Err((Some(self), refusal(why)))
            }
            Err((_, why)) => Err((None, refusal(why))),
        }
    }

    /// The `.await` form of `queue`: waits for room without blocking.
    pub(super) fn queue_async(mut self) -> Option<Queueing<T>> {
        // ORDERING: as in `queue`.
        if self.cancelled.load(Ordering::Acquire) {
            return None;
        }
        let job = self.job.take()?;
        Some(
            self.pool
                .core()
                .submit_job_async(Stateful(job), call_opts(self.read), ToHandle),
        )
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        // ORDERING: as in `queue`.
        if self.read || self.cancelled.load(Ordering::Acquire) {
            return;
        }
        if let Some(job) = self.job.take() {
            // A detached write still runs.
            (self.detach)(&self.pool, job);
        }
    }
}

fn fold<T>(outcome: crate::Outcome<Reply<T>>) -> Reply<T> {
    outcome.unwrap_or_else(|e| Err(Error::from(e)))
}

impl<T: Send + 'static> Call<T> {
    pub(crate) fn queued(handle: Handle<Reply<T>>) -> Self {
        Self {
            inner: Inner::Queued(handle),
        }
    }

    pub(crate) fn pending(pool: StatePool<Conn>, job: BoxedJob<T>, read: bool) -> Self {
        Self {
            inner: Inner::Pending(Pending {
                pool,
                job: Some(job),
                read,
                cancelled: AtomicBool::new(false),
                detach: queue_detached::<T>,
            }),
        }
    }

    pub(crate) fn behind(start: Arc<Start>, handle: Handle<Reply<T>>) -> Self {
        Self {
            inner: Inner::Behind(start, handle),
        }
    }

    pub(crate) fn refused(err: Error) -> Self {
        Self {
            inner: Inner::Refused(Some(err)),
        }
    }

    /// Blocks until the call has run and returns its result.
    ///
    /// # Errors
    /// Any [`Error`]: the closure's, SQLite's, or the pool's (panicked, cancelled, closed).
    pub fn wait(self) -> Reply<T> {
        match self.inner {
            Inner::Queued(h) => fold(h.wait()),
            Inner::Behind(start, h) => match start.queue(Wait::Until(None)) {
                Err(e) => Err(e),
                Ok(_) => fold(h.wait()),
            },
            Inner::Pending(p) => match p.queue(Wait::Until(None)) {
                Ok(h) => fold(h.wait()),
                Err((_, e)) => Err(e),
            },
            Inner::Refused(mut e) => Err(e.take().unwrap_or(Error::Closed)),
        }
    }

    /// Waits at most `timeout`; gives the call back if it has not finished.
    ///
    /// # Errors
    /// The call itself, when it did not finish in time.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Reply<T>, Self> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => Ok(self.wait()),
        }
    }

    /// Waits until `deadline` at the latest; gives the call back if it has not finished.
    ///
    /// # Errors
    /// The call itself, when it did not finish in time.
    pub fn wait_deadline(self, deadline: Instant) -> Result<Reply<T>, Self> {
        match self.inner {
            Inner::Queued(h) => h.wait_deadline(deadline).map(fold).map_err(Self::queued),
            Inner::Behind(start, h) => match start.queue(Wait::Until(Some(deadline))) {
                Err(e) => Ok(Err(e)),
                Ok(false) => Err(Self::behind(start, h)),
                Ok(true) => h.wait_deadline(deadline).map(fold).map_err(Self::queued),
            },
            Inner::Pending(p) => match p.queue(Wait::Until(Some(deadline))) {
                Ok(h) => h.wait_deadline(deadline).map(fold).map_err(Self::queued),
                Err((Some(p), _)) => Err(Self {
                    inner: Inner::Pending(p),
                }),
                Err((None, e)) => Ok(Err(e)),
            },
            refused @ Inner::Refused(_) => Ok(Self { inner: refused }.wait()),
        }
    }

    /// The result if the call has finished; never blocks.
    ///
    /// # Errors
    /// The call itself, when it has not finished yet.
    pub fn try_wait(self) -> Result<Reply<T>, Self> {
        match self.inner {
            Inner::Queued(h) => h.try_wait().map(fold).map_err(Self::queued),
            Inner::Behind(start, h) => match start.queue(Wait::Never) {
                Err(e) => Ok(Err(e)),
                Ok(false) => Err(Self::behind(start, h)),
                Ok(true) => h.try_wait().map(fold).map_err(Self::queued),
            },
            // Queued now if there is room: it can only have finished later.
            Inner::Pending(p) => match p.queue(Wait::Never) {
                Ok(h) => h.try_wait().map(fold).map_err(Self::queued),
                Err((Some(p), _)) => Err(Self {
                    inner: Inner::Pending(p),
                }),
                Err((None, e)) => Ok(Err(e)),
            },
            refused @ Inner::Refused(_) => Ok(Self { inner: refused }.wait()),
        }
    }

    /// `true` once the result is ready; never blocks.
    pub fn is_finished(&self) -> bool {
        match &self.inner {
            Inner::Queued(h) => h.is_finished(),
            Inner::Behind(start, h) => !start.is_waiting() && h.is_finished(),
            // ORDERING: as in `Pending::queue`.
            Inner::Pending(p) => p.cancelled.load(Ordering::Acquire),
            Inner::Refused(_) => true,
        }
    }

    /// Cancels the call.
    ///
    /// - Not started yet: it never runs, and resolves [`Error::Cancelled`]
    ///   ([`CancelOutcome::Dequeued`]).
    /// - A **read** that is running (on a database file): its query is interrupted within a
    ///   few thousand SQLite VM steps, so it resolves [`Error::Interrupted`] and its reader is
    ///   free at once. Only this call's statements are affected, never the next call on that
    ///   connection ([`CancelOutcome::Requested`]).
    /// - A running write or transaction is not interrupted (half a write is worse than a late
    ///   one); it runs to its end ([`CancelOutcome::Requested`]). Reads of an in-memory
    ///   database run on the writer, and are not interrupted either.
    /// - Already finished: nothing changes ([`CancelOutcome::Finished`]).
    pub fn cancel(&self) -> CancelOutcome {
        match &self.inner {
            Inner::Queued(h) | Inner::Behind(_, h) => h.cancel(),
            // ORDERING: as in `Pending::queue`.
            Inner::Pending(p) => match p.cancelled.swap(true, Ordering::AcqRel) {
                false => CancelOutcome::Dequeued,
                true => CancelOutcome::Finished,
            },
            Inner::Refused(_) => CancelOutcome::Finished,
        }
    }
}

impl<T: Send + 'static> crate::promise::Pending<Reply<T>> for Call<T> {
    fn poll(self: Box<Self>) -> Result<Reply<T>, Box<dyn crate::promise::Pending<Reply<T>>>> {
        (*self).try_wait().map_err(|c| Box::new(c) as _)
    }

    fn cancel(&self) -> CancelOutcome {
        Call::cancel(self)
    }
}

impl<T: Send + 'static> Call<T> {
    /// Turns the call into a [`Promise`](crate::Promise), whose result a frame loop looks at by
    /// reference each frame. Like [`try_wait`](Self::try_wait), each look at a call made on a
    /// full queue queues it if there is room by then.
    pub fn into_promise(self) -> crate::Promise<Reply<T>> {
        crate::Promise::new(Box::new(self))
    }
}

impl<T> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.inner {
            Inner::Queued(_) => "queued",
            Inner::Behind(..) => "behind its session's start",
            Inner::Pending(_) => "waiting for room",
            Inner::Refused(_) => "refused",
        };
        f.debug_struct("Call")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// `call.await` resolves to the call's result under any executor.
impl<T: Send + 'static> IntoFuture for Call<T> {
    type Output = Reply<T>;
    type IntoFuture = CallFuture<T>;

    fn into_future(self) -> CallFuture<T> {
        CallFuture {
            inner: match self.inner {
                Inner::Queued(h) => FutInner::Queued(h.into_future()),
                Inner::Behind(start, h) => FutInner::Behind(start, None, h.into_future()),
                Inner::Pending(p) => match p.queue_async() {
                    Some(submit) => FutInner::Queueing(submit),
                    None => FutInner::Refused(Some(Error::Cancelled)),
                },
                Inner::Refused(e) => FutInner::Refused(e),
            },
        }
    }
}

/// The future of a [`Call`], made by `.await`.
#[must_use = "futures do nothing unless polled"]
pub struct CallFuture<T: Send + 'static> {
    inner: FutInner<T>,
}

enum FutInner<T: Send + 'static> {
    /// Waiting for room in a full queue.
    Queueing(Queueing<T>),
    Queued(JobFuture<Reply<T>>),
    /// Queueing its session's start (once taken from the `Start`), then waiting for its reply.
    Behind(Arc<Start>, Option<Queueing<()>>, JobFuture<Reply<T>>),
    Refused(Option<Error>),
}

impl<T: Send + 'static> Future for CallFuture<T> {
    type Output = Reply<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply<T>> {
        loop {
            match &mut self.inner {
                FutInner::Queueing(submit) => match Pin::new(submit).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(handle)) => {
                        self.inner = FutInner::Queued(handle.into_future());
                    }
                    Poll::Ready(Err(_job)) => self.inner = FutInner::Refused(Some(Error::Closed)),
                },
                FutInner::Queued(f) => return Pin::new(f).poll(cx).map(fold),
                FutInner::Behind(start, queueing, _) => match start.poll_queue(queueing, cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => self.inner = FutInner::Refused(Some(e)),
                    Poll::Ready(Ok(())) => {
                        let FutInner::Behind(_, _, then) =
                            std::mem::replace(&mut self.inner, FutInner::Refused(None))
                        else {
                            unreachable!("matched above")
                        };
                        self.inner = FutInner::Queued(then);
                    }
                },
                FutInner::Refused(e) => {
                    return Poll::Ready(Err(e.take().unwrap_or(Error::Closed)));
                }
            }
        }
    }
}

impl<T: Send + 'static> CallFuture<T> {
    /// Cancels the call, as [`Call::cancel`] does; a call still waiting for room is dropped
    /// unrun. The future then resolves the cancelled call's result.
    pub fn cancel(&mut self) -> CancelOutcome {
        match &self.inner {
            FutInner::Queued(f) | FutInner::Behind(_, _, f) => f.cancel(),
            FutInner::Queueing(_) => {
                self.inner = FutInner::Refused(Some(Error::Cancelled));
                CancelOutcome::Dequeued
            }
            FutInner::Refused(_) => CancelOutcome::Finished,
        }
    }
}

impl<T: Send + 'static> fmt::Debug for CallFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFuture").finish_non_exhaustive()
    }
}
