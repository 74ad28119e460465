//! Per-job options: `Priority` and the `JobBuilder` made by `pool.job(f)`.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::delivery::{ToHandle, ToInbox};
use crate::engine::Opts;
use crate::inbox::Inbox;
use crate::job::LaneQueue;
use crate::job::Priority;
use crate::submit::deadline_after;

/// A job with options, made by [`Pool::job`](crate::Pool::job), [`StatePool::job`](crate::StatePool::job) or a lane's `job`; submit it
/// with any call of the submission family.
///
/// | option | default | effect |
/// |---|---|---|
/// | [`priority`](Self::priority) | `Normal` | queue order; see [`Priority`] for the rule |
/// | [`start_deadline`](Self::start_deadline) / [`start_timeout`](Self::start_timeout) | none | still queued at the deadline: never starts, resolves [`JobError::Expired`](crate::JobError::Expired) |
/// | [`cancel_on_drop`](Self::cancel_on_drop) | off | dropping the handle (or ticket) cancels the job if it has not started |
/// | [`name`](Self::name) | none | shown by [`Pool::running_jobs`](crate::Pool::running_jobs) while it runs |
/// | [`inbox`](Self::inbox) / [`on_complete`](Self::on_complete) | a [`Handle`](crate::Handle) | where the outcome goes |
///
/// The submission calls are those of [`Pool`](crate::Pool): `submit` (waits for room), `try_submit` (never
/// waits), `submit_timeout`, `submit_deadline` and `submit_async`. Each refusal hands the
/// closure back.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use offthread::{Pool, Priority};
/// let pool = Pool::new();
/// let handle = pool
///     .job(|| "preview")
///     .priority(Priority::Interactive)
///     .start_timeout(Duration::from_secs(5)) // useless if it starts later than that
///     .cancel_on_drop()                      // and useless if nobody is waiting for it
///     .name("preview")
///     .submit()?;
/// assert_eq!(handle.wait(), Ok("preview"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a job builder does nothing until one of its submit calls"]
pub struct JobBuilder<'p, P, F, D = ToHandle> {
    pool: &'p P,
    f: F,
    priority: Priority,
    deadline: Option<Instant>,
    cancel_on_drop: bool,
    name: Option<Arc<str>>,
    /// The lane's queue (a `LaneQueue<S>` for the pool's `S`), when made by a lane.
    lane: Option<Arc<dyn Any + Send + Sync>>,
    delivery: D,
}

impl<'p, P, F> JobBuilder<'p, P, F> {
    pub(crate) fn new(pool: &'p P, f: F, lane: Option<Arc<dyn Any + Send + Sync>>) -> Self {
        Self {
            pool,
            f,
            priority: Priority::Normal,
            deadline: None,
            cancel_on_drop: false,
            name: None,
            lane,
            delivery: ToHandle,
        }
    }
}

impl<'p, P, F, D> JobBuilder<'p, P, F, D> {
    /// Sets the job's [`Priority`].
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The job must start by `deadline`: if it is still queued then (or waiting in its lane),
    /// it never starts and resolves [`JobError::Expired`](crate::JobError::Expired), promptly
    /// at the deadline (the pool's monitor thread keeps the deadlines; once the pool is shutting
    /// down, a late job expires when a worker reaches it instead). A job that started in time
    /// runs to its end.
    ///
    /// # Examples
    /// ```
    /// use std::time::Instant;
    /// use offthread::{JobError, Pool};
    /// let pool = Pool::builder().max_workers(1).build()?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.submit(move || gate.recv().ok())?;
    /// let late = pool.job(|| unreachable!()).start_deadline(Instant::now()).submit()?;
    /// assert_eq!(late.wait(), Err::<(), _>(JobError::Expired));
    /// release.send(())?;
    /// busy.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The job must start within `timeout` of this call; see
    /// [`start_deadline`](Self::start_deadline). A timeout too large to represent sets no
    /// deadline.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.deadline = deadline_after(timeout);
        self
    }

    /// Dropping the handle (or [`Ticket`](crate::Ticket), or the `.await`ing future) cancels
    /// the job if it has not started. A job that started runs to its end (cancel first to
    /// raise its [`is_cancelled`](crate::is_cancelled) flag).
    ///
    /// The async case this is for: a request handler awaits the job, the client goes away, the
    /// handler's future is dropped — and the queued query never runs.
    ///
    /// # Examples
    /// ```
    /// let pool = offthread::Pool::builder().max_workers(1).build()?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.submit(move || gate.recv().ok())?;
    /// let unwanted = pool.job(|| unreachable!("never runs")).cancel_on_drop().submit()?;
    /// drop::<offthread::Handle<()>>(unwanted);
    /// assert_eq!(pool.stats().cancelled, 1);
    /// release.send(())?;
    /// busy.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_on_drop(mut self) -> Self {
        self.cancel_on_drop = true;
        self
    }

    /// Names the job; the name shows in [`Pool::running_jobs`](crate::Pool::running_jobs) while it runs.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Delivers the outcome to `inbox`, tagged with `key`, instead of a handle; the submit
    /// calls then return a [`Ticket`](crate::Ticket). The submission reserves a slot in the
    /// inbox first: a full inbox is backpressure (see [`Inbox`]).
    ///
    /// # Examples
    /// ```
    /// let pool = offthread::Pool::new();
    /// let inbox = offthread::Inbox::new(16);
    /// pool.job(|| "a.png loaded").inbox(&inbox, 7).try_submit()?;
    /// assert_eq!(inbox.recv(), Some((7, Ok("a.png loaded"))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inbox<T, K>(self, inbox: &Inbox<T, K>, key: K) -> JobBuilder<'p, P, F, ToInbox<T, K>> {
        self.deliver_to(ToInbox {
            inbox: inbox.clone(),
            key,
        })
    }

    pub(crate) fn deliver_to<E>(self, delivery: E) -> JobBuilder<'p, P, F, E> {
        JobBuilder {
            pool: self.pool,
            f: self.f,
            priority: self.priority,
            deadline: self.deadline,
            cancel_on_drop: self.cancel_on_drop,
            name: self.name,
            lane: self.lane,
            delivery,
        }
    }

    /// Splits off the closure, the pool-side options and the delivery.
    pub(crate) fn into_parts<S: 'static>(self) -> (&'p P, F, Opts<S>, D) {
        let lane = self
            .lane
            .and_then(|lane| Arc::downcast::<LaneQueue<S>>(lane).ok());
        let opts = Opts {
            priority: self.priority,
            deadline: self.deadline,
            cancel_on_drop: self.cancel_on_drop,
            name: self.name,
            lane,
        };
        (self.pool, self.f, opts, self.delivery)
    }
}

impl<P, F, D> fmt::Debug for JobBuilder<'_, P, F, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobBuilder")
            .field("priority", &self.priority)
            .field("deadline", &self.deadline)
            .field("cancel_on_drop", &self.cancel_on_drop)
            .field("name", &self.name)
            .field("lane", &self.lane.is_some())
            .finish_non_exhaustive()
    }
}

/// The submission verbs of a [`JobBuilder`](crate::JobBuilder) on a pool: as the pool's own,
/// with the delivery chosen on the builder.
macro_rules! job_verbs {
    (impl [$($gen:tt)*] $Pool:ty; captures [$($p:ident),*]; args ($($arg:ty),*); wrap $Job:ident;) => {
        impl<'p, $($gen)* F, T, D> JobBuilder<'p, $Pool, F, D>
        where
            F: FnOnce($($arg),*) -> T + Send + 'static,
            T: Send + 'static,
            D: Delivery<T>,
        {
            /// Runs `callback` with the outcome instead of returning it through a handle; the
            /// submit calls then return a [`Ticket`](crate::Ticket).
            ///
            /// The callback runs where the job resolves: on the worker when the job ran, on the
            /// cancelling thread for a cancelled job, on the pool's monitor thread for an
            /// expired one, on the thread calling `shutdown_now` for a job it removed. Keep it
            /// short: a worker serves no other job while its callback runs. A panic in it is
            /// caught and counted in [`Stats::callback_panics`](crate::Stats::callback_panics);
            /// the worker survives.
            ///
            /// # Examples
            /// ```
            /// let pool = offthread::Pool::new();
            /// let (tx, rx) = std::sync::mpsc::channel();
            /// pool.job(|| 2 + 2).on_complete(move |outcome| tx.send(outcome).unwrap()).submit()?;
            /// assert_eq!(rx.recv()?, Ok(4));
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn on_complete<C>(self, callback: C) -> JobBuilder<'p, $Pool, F, ToCallback<C>>
            where
                C: FnOnce(Outcome<T>) + Send + 'static,
            {
                self.deliver_to(ToCallback(callback))
            }

            /// Queues the job, waiting for room while the queue (or the inbox) is full; as
            /// the pool's `submit`.
            ///
            /// # Errors
            /// [`SubmitError::ShutDown`] or [`SubmitError::WouldDeadlock`], with the closure.
            pub fn submit(self) -> Result<D::Receipt, SubmitError<F>> {
                let (pool, f, opts, delivery) = self.into_parts();
                pool.core()
                    .submit_job($Job(f), opts, delivery, Wait::Until(None))
                    .map_err(|(job, why)| submit_error(why, job.0))
            }

            /// Queues the job if there is room now; never blocks; as the pool's `try_submit`.
            ///
            /// # Errors
            /// [`TrySubmitError::Full`] (the queue, or the inbox, is full) or
            /// [`TrySubmitError::ShutDown`], with the closure.
            pub fn try_submit(self) -> Result<D::Receipt, TrySubmitError<F>> {
                let (pool, f, opts, delivery) = self.into_parts();
                pool.core()
                    .submit_job($Job(f), opts, delivery, Wait::Never)
                    .map_err(|(job, why)| try_submit_error(why, job.0))
            }

            /// Queues the job, waiting at most `timeout` for room; as the pool's
            /// `submit_timeout`.
            ///
            /// # Errors
            /// [`SubmitTimeoutError::Timeout`], [`SubmitTimeoutError::ShutDown`] or
            /// [`SubmitTimeoutError::WouldDeadlock`], with the closure.
            pub fn submit_timeout(self, timeout: Duration) -> Result<D::Receipt, SubmitTimeoutError<F>> {
                self.submit_until(deadline_after(timeout))
            }

            /// Queues the job, waiting until `deadline` at the latest for room; as the pool's
            /// `submit_deadline`.
            ///
            /// # Errors
            /// [`SubmitTimeoutError::Timeout`], [`SubmitTimeoutError::ShutDown`] or
            /// [`SubmitTimeoutError::WouldDeadlock`], with the closure.
            pub fn submit_deadline(self, deadline: Instant) -> Result<D::Receipt, SubmitTimeoutError<F>> {
                self.submit_until(Some(deadline))
            }

            fn submit_until(self, deadline: Option<Instant>) -> Result<D::Receipt, SubmitTimeoutError<F>> {
                let (pool, f, opts, delivery) = self.into_parts();
                pool.core()
                    .submit_job($Job(f), opts, delivery, Wait::Until(deadline))
                    .map_err(|(job, why)| timeout_error(why, job.0))
            }

            /// Queues the job from async code, waiting for room without blocking; as the pool's
            /// `submit_async`.
            ///
            /// # Errors
            /// The future resolves to [`SubmitError::ShutDown`] with the closure if the pool was
            /// shut down.
            pub fn submit_async(
                self,
            ) -> impl Future<Output = Result<D::Receipt, SubmitError<F>>> + Send + Unpin + use<$($p,)* F, T, D>
            where
                D: Send,
                D::Receipt: Send,
            {
                let (pool, f, opts, delivery) = self.into_parts();
                pool.core()
                    .submit_job_async($Job(f), opts, delivery)
                    .map_refused(|job: $Job<F>| SubmitError::ShutDown(job.0))
            }
        }
    };
}

pub(crate) use job_verbs;
