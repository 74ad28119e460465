//! The generic core under `Pool` and `StatePool`, and the one submission path behind every
//! `submit` call: reserve room in the delivery's inbox (if any), wrap the job, queue it, and
//! build the receipt; `SubmitAsync`, its future form; and how a refusal maps to each error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::delivery::{Delivery, seal::Sealed};
use crate::engine::Opts;
use crate::engine::{Prepared, Queued, Refusal, Shared, Wait};
use crate::error::{ShutdownTimeout, SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::job::JobFn;
use crate::job::Room;
use crate::trace;

/// The part every clone shares. Dropping the last one closes intake (without waiting); workers
/// hold the `Shared` directly, so they finish the queue after that.
struct Owner<S: 'static> {
    shared: Arc<Shared<S>>,
}

impl<S: 'static> Drop for Owner<S> {
    fn drop(&mut self) {
        self.shared.close(false);
    }
}

/// The generic core under `Pool` and `StatePool`: the engine's shared state, owned.
pub(crate) struct Core<S: 'static>(Arc<Owner<S>>);

impl<S: 'static> Clone for Core<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S: 'static> Core<S> {
    pub(crate) fn new(shared: Arc<Shared<S>>) -> Self {
        Self(Arc::new(Owner { shared }))
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<S>> {
        &self.0.shared
    }

    /// The pool's identity for the blocking rule (see `blocking.rs`).
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "sqlite-system")),
        allow(dead_code)
    )]
    pub(crate) fn id(&self) -> usize {
        crate::blocking::pool_id(&**self.shared())
    }

    pub(crate) fn shutdown_until(
        &self,
        now: bool,
        deadline: Option<Instant>,
    ) -> Result<(), ShutdownTimeout> {
        self.shared().shutdown(now, deadline)
    }
}

pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    // Overflow means "no deadline": wait without limit.
    Instant::now().checked_add(timeout)
}

pub(crate) fn no_limit(result: Result<(), ShutdownTimeout>) {
    debug_assert!(result.is_ok(), "a wait without deadline cannot time out");
}

pub(crate) fn submit_error<F>(why: Refusal, f: F) -> SubmitError<F> {
    match why {
        Refusal::WouldDeadlock => SubmitError::WouldDeadlock(f),
        // A wait without deadline ends only with room, or with shutdown.
        Refusal::ShutDown | Refusal::Full | Refusal::Timeout => SubmitError::ShutDown(f),
    }
}

pub(crate) fn try_submit_error<F>(why: Refusal, f: F) -> TrySubmitError<F> {
    match why {
        Refusal::Full | Refusal::Timeout => TrySubmitError::Full(f),
        // `try_submit` never waits, so it never needs refusing as a deadlock.
        Refusal::ShutDown | Refusal::WouldDeadlock => TrySubmitError::ShutDown(f),
    }
}

pub(crate) fn timeout_error<F>(why: Refusal, f: F) -> SubmitTimeoutError<F> {
    match why {
        Refusal::Full | Refusal::Timeout => SubmitTimeoutError::Timeout(f),
        Refusal::ShutDown => SubmitTimeoutError::ShutDown(f),
        Refusal::WouldDeadlock => SubmitTimeoutError::WouldDeadlock(f),
    }
}

type Sink<D, T> = <D as Sealed<T>>::Sink;
type Rest<D, T> = <D as Sealed<T>>::Rest;

/// A job waiting to be queued, with the caller's part of its delivery.
type Waiting<S, J, D, T> = (Prepared<S, J, Sink<D, T>>, Rest<D, T>);

impl<S: 'static> Core<S> {
    /// Submits `job` with `opts`, delivering to `delivery`, waiting for room as `wait` allows.
    pub(crate) fn submit_job<J, T, D>(
        &self,
        job: J,
        opts: Opts<S>,
        delivery: D,
        wait: Wait,
    ) -> Result<D::Receipt, (J, Refusal)>
    where
        J: JobFn<S, T>,
        T: Send + 'static,
        D: Delivery<T>,
    {
        let shared = self.shared();
        let (sink, rest, room) = delivery.split();
        if let Some(room) = &room {
            let reserved = match wait {
                Wait::Never => room.try_reserve(),
                Wait::Until(deadline) => room.try_reserve() || shared.reserve_room(room, deadline),
            };
            if !reserved {
                let why = match wait {
                    Wait::Never => Refusal::Full,
                    Wait::Until(_) => Refusal::Timeout,
                };
                let why = shared.refuse(why);
                trace::refused(why.reason());
                return Err((job, why));
            }
        }
        match shared.submit(shared.prepare(job, sink, opts), wait) {
            Ok(cell) => Ok(D::receipt(rest, cell)),
            Err((prepared, why)) => {
                let job = prepared.into_job();
                if let Some(room) = room {
                    room.release();
                }
                trace::refused(why.reason());
                Err((job, why))
            }
        }
    }

    /// The future form of [`submit_job`](Self::submit_job): waits for room without blocking.
    pub(crate) fn submit_job_async<J, T, D>(
        &self,
        job: J,
        opts: Opts<S>,
        delivery: D,
    ) -> SubmitAsync<S, J, T, D>
    where
        J: JobFn<S, T>,
        T: Send + 'static,
        D: Delivery<T>,
    {
        let shared = self.shared().clone();
        let (sink, rest, room) = delivery.split();
        let prepared = shared.prepare(job, sink, opts);
        SubmitAsync {
            shared,
            pending: Some((prepared, rest)),
            room,
            reserved: false,
            room_waiter: None,
            waiter: None,
        }
    }
}

/// The future behind `submit_async`: reserves inbox room (if any), then tries to queue on each
/// poll, registering its waker where it waits.
pub(crate) struct SubmitAsync<S: 'static, J, T, D: Sealed<T>> {
    shared: Arc<Shared<S>>,
    /// The job, wrapped once, and the caller's part of the delivery; `None` once resolved.
    pending: Option<Waiting<S, J, D, T>>,
    /// The inbox room to reserve first, if the delivery has one.
    room: Option<Arc<dyn Room>>,
    /// The room slot is ours.
    reserved: bool,
    /// Our registration among the inbox's async waiters, if any.
    room_waiter: Option<u64>,
    /// Our registration among the pool's async waiters, if any.
    waiter: Option<u64>,
}

// The job is never pinned in place: it moves in and out of an `Option` by value.
impl<S: 'static, J, T, D: Sealed<T>> Unpin for SubmitAsync<S, J, T, D> {}

impl<S: 'static, J, T, D> Future for SubmitAsync<S, J, T, D>
where
    J: JobFn<S, T>,
    T: Send + 'static,
    D: Delivery<T>,
{
    type Output = Result<D::Receipt, J>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some((prepared, rest)) = this.pending.take() else {
            panic!("submit_async future polled after it resolved");
        };
        if let Some(room) = &this.room
            && !this.reserved
        {
            if !room.poll_reserve(&mut this.room_waiter, cx.waker()) {
                // Waiting on the inbox's consumer: a shutdown must end that wait too.
                if this.shared.poll_closed(&mut this.waiter, cx.waker()) {
                    trace::refused(Refusal::ShutDown.reason());
                    return Poll::Ready(Err(prepared.into_job()));
                }
                this.pending = Some((prepared, rest));
                return Poll::Pending;
            }
            this.reserved = true;
        }
        match this
            .shared
            .poll_submit(prepared, &mut this.waiter, cx.waker())
        {
            Ok(cell) => {
                this.reserved = false; // the slot now belongs to the queued job
                let job: Queued<S, J, Sink<D, T>> = cell;
                Poll::Ready(Ok(D::receipt(rest, job)))
            }
            Err((prepared, Some(why))) => {
                trace::refused(why.reason());
                Poll::Ready(Err(prepared.into_job()))
            }
            Err((prepared, None)) => {
                this.pending = Some((prepared, rest));
                Poll::Pending
            }
        }
    }
}

impl<S: 'static, J, T, D: Sealed<T>> Drop for SubmitAsync<S, J, T, D> {
    fn drop(&mut self) {
        self.shared.forget_waiter(&mut self.waiter);
        if let Some(room) = &self.room {
            room.forget(&mut self.room_waiter);
            if self.reserved {
                room.release();
            }
        }
    }
}

impl<S: 'static, J, T, D: Sealed<T>> SubmitAsync<S, J, T, D> {
    /// Maps a refused job to the caller's error.
    pub(crate) fn map_refused<E, M>(self, map: M) -> MapRefused<Self, M>
    where
        M: Fn(J) -> E,
    {
        MapRefused(self, map)
    }
}

/// Maps the wrapped job of a refused `submit_async` to the caller's error.
pub(crate) struct MapRefused<Fut, M>(Fut, M);

impl<Fut: Unpin, M> Unpin for MapRefused<Fut, M> {}

impl<Fut, M, J, E, R> Future for MapRefused<Fut, M>
where
    Fut: Future<Output = Result<R, J>> + Unpin,
    M: Fn(J) -> E + Unpin,
{
    type Output = Result<R, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.map_err(|job| (self.1)(job)))
    }
}
