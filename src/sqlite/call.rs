//! `Call<T>`: the handle of one database call. Like [`Handle`](crate::Handle), but its outcome
//! is a `Result<T, sqlite::Error>`: one `?` yields the value.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::Error;
use crate::handle::{Handle, JobFuture};
use crate::job::CancelOutcome;

/// The result a database job hands back: the closure's value or error.
pub(crate) type Reply<T> = Result<T, Error>;

/// The pending result of one database call: wait for it, poll it, or `.await` it.
///
/// Its outcome is `Result<T, sqlite::Error>` whatever went wrong — SQL, busy, a panic in the
/// closure, cancellation, a closed database — so one `?` yields the value.
///
/// Dropping a `Call` detaches it: the call still runs (a write is never undone by dropping its
/// handle).
#[must_use = "dropping a call detaches it; `wait` or `.await` it for its result"]
pub struct Call<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Queued(Handle<Reply<T>>),
    /// Refused before it was queued (closed, queue full).
    Refused(Option<Error>),
}

fn fold<T>(outcome: crate::Outcome<Reply<T>>) -> Reply<T> {
    outcome.unwrap_or_else(|e| Err(Error::from(e)))
}

impl<T> Call<T> {
    pub(crate) fn queued(handle: Handle<Reply<T>>) -> Self {
        Self {
            inner: Inner::Queued(handle),
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
            refused @ Inner::Refused(_) => Ok(Self { inner: refused }.wait()),
        }
    }

    /// `true` once the result is ready; never blocks.
    pub fn is_finished(&self) -> bool {
        match &self.inner {
            Inner::Queued(h) => h.is_finished(),
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
            Inner::Queued(h) => h.cancel(),
            Inner::Refused(_) => CancelOutcome::Finished,
        }
    }
}

impl<T> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// `call.await` resolves to the call's result under any executor.
impl<T> IntoFuture for Call<T> {
    type Output = Reply<T>;
    type IntoFuture = CallFuture<T>;

    fn into_future(self) -> CallFuture<T> {
        CallFuture {
            inner: match self.inner {
                Inner::Queued(h) => FutInner::Queued(h.into_future()),
                Inner::Refused(e) => FutInner::Refused(e),
            },
        }
    }
}

/// The future of a [`Call`], made by `.await`.
#[must_use = "futures do nothing unless polled"]
pub struct CallFuture<T> {
    inner: FutInner<T>,
}

enum FutInner<T> {
    Queued(JobFuture<Reply<T>>),
    Refused(Option<Error>),
}

impl<T> Future for CallFuture<T> {
    type Output = Reply<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply<T>> {
        match &mut self.inner {
            FutInner::Queued(f) => Pin::new(f).poll(cx).map(fold),
            FutInner::Refused(e) => Poll::Ready(Err(e.take().unwrap_or(Error::Closed))),
        }
    }
}

impl<T> fmt::Debug for CallFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFuture").finish_non_exhaustive()
    }
}
