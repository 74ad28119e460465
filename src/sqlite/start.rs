//! A write session's start made while the writer's queue was full. `Db::session` never waits:
//! the session's job stays here until the first of the session's calls to be waited on or
//! awaited queues it (waiting for room the way that call is waited on).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use super::Error;
use super::call::{Pending, Queueing};
use crate::engine::Wait;

/// The job of a session that has not been queued yet.
pub(crate) struct Start {
    /// `None` once queued (or refused for good).
    job: Mutex<Option<Pending<()>>>,
    /// Tasks that found `job` locked by a thread waiting for room: woken when it lets go.
    tasks: Mutex<Vec<Waker>>,
}

impl Start {
    pub(super) fn new(job: Pending<()>) -> Self {
        Self {
            job: Mutex::new(Some(job)),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Queues the session's job if it is still here, waiting for room as `wait` allows.
    /// `Ok(true)` once it is queued (by this call or another), `Ok(false)` if there was no
    /// room in time, `Err` if it was refused for good (the session's calls resolve
    /// [`Error::Closed`]; this one the reason).
    pub(super) fn queue(&self, wait: Wait) -> Result<bool, Error> {
        let mut job = self.job.lock();
        let result = match job.take() {
            None => Ok(true),
            Some(pending) => match pending.queue(wait) {
                Ok(_detached) => Ok(true),
                Err((back, e)) => match back {
                    Some(back) => {
                        *job = Some(back);
                        Ok(false)
                    }
                    None => Err(e),
                },
            },
        };
        drop(job);
        for task in self.tasks.lock().drain(..) {
            task.wake();
        }
        result
    }

    /// `true` while the session's job waits here.
    pub(super) fn is_waiting(&self) -> bool {
        self.job.try_lock().is_none_or(|job| job.is_some())
    }

    /// The `.await` form of [`queue`](Self::queue): takes the job into `queueing` (which then
    /// owns it: if that future is dropped before there is room, the session never starts, as
    /// a write's `.await` given up drops the write) and drives it. Ready once the job is
    /// queued, or refused (`Err`).
    pub(super) fn poll_queue(
        &self,
        queueing: &mut Option<Queueing<()>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        if queueing.is_none() {
            let Some(mut job) = self.job.try_lock() else {
                // A thread is waiting for room with it: be woken when it lets go, then look
                // again (it may have given up at its deadline).
                let mut tasks = self.tasks.lock();
                if !tasks.iter().any(|t| t.will_wake(cx.waker())) {
                    tasks.push(cx.waker().clone());
                }
                drop(tasks);
                return match self.job.try_lock() {
                    Some(_) => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    None => Poll::Pending,
                };
            };
            match job.take() {
                None => return Poll::Ready(Ok(())),
                Some(pending) => match pending.queue_async() {
                    Some(submit) => *queueing = Some(submit),
                    None => return Poll::Ready(Err(Error::Cancelled)),
                },
            }
        }
        let Some(submit) = queueing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        match Pin::new(submit).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                *queueing = None;
                Poll::Ready(result.map(drop).map_err(|_job| Error::Closed))
            }
        }
    }
}
