//! The surface [`Pool`](crate::Pool) and [`StatePool`](crate::StatePool) share, written once:
//! the submission family, streams, shutdown, stats, job builders and lanes. Each macro takes
//! the shape of a job's closure — `()` for a plain pool, `(&mut S)` for a pool with state —
//! and the wrappers that turn such a closure into a job; everything else is the same code, so
//! the two surfaces cannot drift apart.

/// The methods of a pool. Arguments: the impl's generics and type, the closure's extra
/// arguments, the job / producer / iterator wrappers, the lane type, and the examples of the
/// three calls whose closures differ.
macro_rules! pool_surface {
    (
        impl [$($gen:tt)*] $Pool:ty;
        captures [$($p:ident),*];
        args ($($arg:ty),*);
        wrap $Job:ident, $Producer:ident, $Iter:ident;
        lane $Lane:ty;
        example_submit $ex_submit:literal;
        example_stream $ex_stream:literal;
        example_stream_iter $ex_iter:literal;
    ) => {
        impl<$($gen)*> $Pool {
            /// Queues `f`, waiting for room while the queue is full (backpressure).
            ///
            /// - `Ok(handle)`: accepted; it will resolve exactly once.
            /// - `Err(SubmitError::ShutDown(f))`: the pool was shut down; `f` comes back.
            /// - `Err(SubmitError::WouldDeadlock(f))`: called from a job of a serial lane, the
            ///   queue is full, and every slot holds a later job of that lane (none can start
            ///   before the caller returns); `f` comes back at once instead of waiting forever.
            ///
            /// Blocks only while the queue is full. From async code use
            /// [`submit_async`](Self::submit_async), and from a frame loop
            /// [`try_submit`](Self::try_submit). A job of this pool that waits here is counted
            /// as blocked, so a lent worker takes queued jobs and makes room.
            ///
            /// # Errors
            /// [`SubmitError::ShutDown`] with the job, if the pool no longer accepts jobs;
            /// [`SubmitError::WouldDeadlock`] with the job, as above.
            ///
            /// # Examples
            #[doc = $ex_submit]
            pub fn submit<F, T>(&self, f: F) -> Result<Handle<T>, SubmitError<F>>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.core()
                    .submit_job($Job(f), Opts::default(), ToHandle, Wait::Until(None))
                    .map_err(|(job, why)| submit_error(why, job.0))
            }

            /// Queues `f` if there is room now; never blocks.
            ///
            /// - `Ok(handle)`: accepted.
            /// - `Err(TrySubmitError::Full(f))`: the queue holds `queue_capacity` jobs; `f`
            ///   comes back.
            /// - `Err(TrySubmitError::ShutDown(f))`: the pool was shut down; `f` comes back.
            ///
            /// # Errors
            /// As listed above; the job is always handed back.
            pub fn try_submit<F, T>(&self, f: F) -> Result<Handle<T>, TrySubmitError<F>>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.core()
                    .submit_job($Job(f), Opts::default(), ToHandle, Wait::Never)
                    .map_err(|(job, why)| try_submit_error(why, job.0))
            }

            /// Queues `f`, waiting at most `timeout` for room. A timeout too large to represent
            /// waits without limit.
            ///
            /// - `Ok(handle)`: accepted.
            /// - `Err(SubmitTimeoutError::Timeout(f))`: no room in time; `f` comes back.
            /// - `Err(SubmitTimeoutError::ShutDown(f))`: the pool was shut down; `f` comes back.
            ///
            /// # Errors
            /// As listed above, and [`SubmitTimeoutError::WouldDeadlock`] as for
            /// [`submit`](Self::submit); the job is always handed back.
            pub fn submit_timeout<F, T>(
                &self,
                f: F,
                timeout: Duration,
            ) -> Result<Handle<T>, SubmitTimeoutError<F>>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.submit_until(f, deadline_after(timeout))
            }

            /// Queues `f`, waiting until `deadline` at the latest for room; as
            /// [`submit_timeout`](Self::submit_timeout).
            ///
            /// # Errors
            /// [`SubmitTimeoutError::Timeout`], [`SubmitTimeoutError::ShutDown`] or
            /// [`SubmitTimeoutError::WouldDeadlock`], with the job.
            pub fn submit_deadline<F, T>(
                &self,
                f: F,
                deadline: Instant,
            ) -> Result<Handle<T>, SubmitTimeoutError<F>>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.submit_until(f, Some(deadline))
            }

            fn submit_until<F, T>(
                &self,
                f: F,
                deadline: Option<Instant>,
            ) -> Result<Handle<T>, SubmitTimeoutError<F>>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.core()
                    .submit_job($Job(f), Opts::default(), ToHandle, Wait::Until(deadline))
                    .map_err(|(job, why)| timeout_error(why, job.0))
            }

            /// Queues `f` from async code: the returned future waits for room without blocking
            /// its thread, under any executor, and resolves to the job's handle.
            ///
            /// - `Ok(handle)`: accepted (`.await` the handle for the outcome).
            /// - `Err(SubmitError::ShutDown(f))`: the pool was shut down; `f` comes back.
            ///
            /// Dropping the future before it resolves submits nothing and drops `f`.
            ///
            /// # Errors
            /// The future resolves to [`SubmitError::ShutDown`] with the job if the pool was
            /// shut down.
            ///
            /// # Examples
            /// ```
            /// let pool = offthread::Pool::new();
            /// let value = pollster::block_on(async {
            ///     let handle = pool.submit_async(|| 5).await?;
            ///     Ok::<_, Box<dyn std::error::Error>>(handle.await?)
            /// })?;
            /// assert_eq!(value, 5);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn submit_async<F, T>(
                &self,
                f: F,
            ) -> impl Future<Output = Result<Handle<T>, SubmitError<F>>> + Send + Unpin + use<F, T, $($p),*>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.core()
                    .submit_job_async($Job(f), Opts::default(), ToHandle)
                    .map_refused(|job: $Job<F>| SubmitError::ShutDown(job.0))
            }

            /// Runs `producer` on a worker and returns its items as a bounded stream, at once;
            /// see [`stream::Receiver`]. At most `buffer` items (at least 1) wait between producer and
            /// consumer. Waits for room in the queue like [`submit`](Self::submit).
            ///
            /// # Errors
            /// [`SubmitError::ShutDown`] with the producer, if the pool no longer accepts jobs.
            ///
            /// # Examples
            #[doc = $ex_stream]
            pub fn stream<T, P>(&self, buffer: usize, producer: P) -> Result<stream::Receiver<T>, SubmitError<P>>
            where
                P: FnOnce($($arg,)* &mut stream::Sender<T>) + Send + 'static,
                T: Send + 'static,
            {
                let (sender, items) = job_channel(buffer);
                let job = $Producer { producer, sender };
                submit_producer(self.core(), job, items, Wait::Until(None))
                    .map_err(|(job, why)| submit_error(why, job.producer))
            }

            /// As [`stream`](Self::stream), but never waits for room in the queue.
            ///
            /// # Errors
            /// [`TrySubmitError::Full`] or [`TrySubmitError::ShutDown`], with the producer.
            pub fn try_stream<T, P>(
                &self,
                buffer: usize,
                producer: P,
            ) -> Result<stream::Receiver<T>, TrySubmitError<P>>
            where
                P: FnOnce($($arg,)* &mut stream::Sender<T>) + Send + 'static,
                T: Send + 'static,
            {
                let (sender, items) = job_channel(buffer);
                let job = $Producer { producer, sender };
                submit_producer(self.core(), job, items, Wait::Never)
                    .map_err(|(job, why)| try_submit_error(why, job.producer))
            }

            /// Streams the items of the iterator that `make` builds on the worker, with at most
            /// `buffer` waiting; stops early when the consumer is dropped. Waits for room in the
            /// queue like [`submit`](Self::submit).
            ///
            /// # Errors
            /// [`SubmitError::ShutDown`] with `make`, if the pool no longer accepts jobs.
            ///
            /// # Examples
            #[doc = $ex_iter]
            pub fn stream_iter<I, F>(
                &self,
                buffer: usize,
                make: F,
            ) -> Result<stream::Receiver<I::Item>, SubmitError<F>>
            where
                F: FnOnce($($arg),*) -> I + Send + 'static,
                I: IntoIterator,
                I::Item: Send + 'static,
            {
                let (sender, items) = job_channel(buffer);
                let job = $Iter { make, sender };
                submit_producer(self.core(), job, items, Wait::Until(None))
                    .map_err(|(job, why)| submit_error(why, job.make))
            }

            /// A job with options — priority, start deadline, cancel-on-drop, a name, delivery
            /// to an [`Inbox`](crate::Inbox) or a callback — submitted with any call of the
            /// submission family. See [`JobBuilder`].
            ///
            /// # Examples
            /// ```
            /// use offthread::{Pool, Priority};
            /// let pool = Pool::new();
            /// let handle = pool.job(|| 1).priority(Priority::Interactive).try_submit()?;
            /// assert_eq!(handle.wait(), Ok(1));
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn job<F>(&self, f: F) -> JobBuilder<'_, Self, F> {
                JobBuilder::new(self, f, None)
            }

            /// A new serial lane on this pool: jobs submitted through it run one at a time, in
            /// order, on this pool's workers. See [`Lane`](crate::Lane).
            pub fn lane(&self) -> $Lane {
                <$Lane>::new(self.clone())
            }

            /// Stops intake, lets the queued jobs run, and waits for every worker to exit.
            ///
            /// Idempotent, and callable from any clone. Blocks until the running and queued
            /// jobs are done. Called from inside one of this pool's jobs, it waits for every
            /// *other* worker (and counts the caller as blocked, so queued jobs still find a
            /// worker); called from a callback that the pool's monitor thread runs (an expired
            /// job's), it does not wait for the monitor. It always returns.
            ///
            /// # Examples
            /// ```
            /// let pool = offthread::Pool::new();
            /// let handle = pool.submit(|| 1)?;
            /// pool.shutdown();
            /// assert_eq!(handle.wait(), Ok(1));         // accepted jobs still resolve
            /// assert!(pool.submit(|| 2).is_err());      // intake is closed
            /// pool.shutdown();                          // a second call is a no-op
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn shutdown(&self) {
                no_limit(self.core().shutdown_until(false, None));
            }

            /// As [`shutdown`](Self::shutdown), but waits at most `timeout`.
            ///
            /// # Errors
            /// [`ShutdownTimeout`] with the jobs still running and queued at the deadline; they
            /// still resolve, only the wait ended.
            pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
                self.core().shutdown_until(false, deadline_after(timeout))
            }

            /// As [`shutdown`](Self::shutdown), but waits until `deadline` at the latest.
            ///
            /// # Errors
            /// [`ShutdownTimeout`], as for [`shutdown_timeout`](Self::shutdown_timeout).
            pub fn shutdown_deadline(&self, deadline: Instant) -> Result<(), ShutdownTimeout> {
                self.core().shutdown_until(false, Some(deadline))
            }

            /// Stops intake, resolves every queued job
            /// [`JobError::ShutDown`](crate::JobError::ShutDown) (they never run), and waits for
            /// the running ones to finish.
            ///
            /// Idempotent; a later [`shutdown`](Self::shutdown) is a no-op.
            pub fn shutdown_now(&self) {
                no_limit(self.core().shutdown_until(true, None));
            }

            /// As [`shutdown_now`](Self::shutdown_now), but waits at most `timeout` for running
            /// jobs.
            ///
            /// # Errors
            /// [`ShutdownTimeout`] with the jobs still running at the deadline.
            pub fn shutdown_now_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
                self.core().shutdown_until(true, deadline_after(timeout))
            }

            /// As [`shutdown_now`](Self::shutdown_now), but waits until `deadline` at the latest
            /// for running jobs.
            ///
            /// # Errors
            /// [`ShutdownTimeout`] with the jobs still running at the deadline.
            pub fn shutdown_now_deadline(&self, deadline: Instant) -> Result<(), ShutdownTimeout> {
                self.core().shutdown_until(true, Some(deadline))
            }

            /// A snapshot of the pool's counters; see [`Stats`]. Never blocks beyond a brief
            /// lock.
            pub fn stats(&self) -> Stats {
                self.core().shared().stats()
            }

            /// The named jobs ([`JobBuilder::name`]) running now, with how long each has run.
            /// Jobs without a name are not listed (see [`Stats::running`] for the count of
            /// all).
            ///
            /// # Examples
            /// ```
            /// let pool = offthread::Pool::new();
            /// let (release, gate) = std::sync::mpsc::channel::<()>();
            /// let (started_tx, started) = std::sync::mpsc::channel();
            /// let job = pool.job(move || { started_tx.send(()).unwrap(); gate.recv().ok() })
            ///     .name("reindex")
            ///     .submit()?;
            /// started.recv()?;
            /// assert_eq!(&*pool.running_jobs()[0].name, "reindex");
            /// release.send(())?;
            /// job.wait()?;
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn running_jobs(&self) -> Vec<RunningJob> {
                self.core().shared().running_jobs()
            }
        }

    };
}

/// The methods of a serial lane: the pool's five submission verbs and `job`, each through the
/// lane.
macro_rules! lane_surface {
    (impl [$($gen:tt)*] $Lane:ty; captures [$($p:ident),*]; pool $Pool:ty; args ($($arg:ty),*);) => {
        impl<$($gen)*> $Lane {
            pub(crate) fn new(pool: $Pool) -> Self {
                Self {
                    pool,
                    queue: LaneQueue::new(),
                }
            }

            /// A job with options for this lane; see [`JobBuilder`]. The job keeps its place in
            /// the lane's order whatever its options (a priority orders the lane against other
            /// work only).
            pub fn job<F>(&self, f: F) -> JobBuilder<'_, $Pool, F> {
                JobBuilder::new(&self.pool, f, Some(self.queue.clone()))
            }

            /// Queues `f` at the end of the lane, waiting for room in the pool's queue; as the
            /// pool's `submit`.
            ///
            /// # Errors
            /// [`SubmitError::ShutDown`] or [`SubmitError::WouldDeadlock`], with the job.
            pub fn submit<F, T>(&self, f: F) -> Result<Handle<T>, SubmitError<F>>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.job(f).submit()
            }

            /// Queues `f` at the end of the lane if the pool's queue has room now; never
            /// blocks.
            ///
            /// # Errors
            /// [`TrySubmitError::Full`] or [`TrySubmitError::ShutDown`], with the job.
            pub fn try_submit<F, T>(&self, f: F) -> Result<Handle<T>, TrySubmitError<F>>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.job(f).try_submit()
            }

            /// Queues `f` at the end of the lane, waiting at most `timeout` for room.
            ///
            /// # Errors
            /// [`SubmitTimeoutError::Timeout`], [`SubmitTimeoutError::ShutDown`] or
            /// [`SubmitTimeoutError::WouldDeadlock`], with the job.
            pub fn submit_timeout<F, T>(
                &self,
                f: F,
                timeout: Duration,
            ) -> Result<Handle<T>, SubmitTimeoutError<F>>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.job(f).submit_timeout(timeout)
            }

            /// Queues `f` at the end of the lane, waiting until `deadline` at the latest for
            /// room.
            ///
            /// # Errors
            /// [`SubmitTimeoutError::Timeout`], [`SubmitTimeoutError::ShutDown`] or
            /// [`SubmitTimeoutError::WouldDeadlock`], with the job.
            pub fn submit_deadline<F, T>(
                &self,
                f: F,
                deadline: Instant,
            ) -> Result<Handle<T>, SubmitTimeoutError<F>>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.job(f).submit_deadline(deadline)
            }

            /// Queues `f` at the end of the lane from async code, waiting for room without
            /// blocking.
            ///
            /// # Errors
            /// The future resolves to [`SubmitError::ShutDown`] with the job if the pool was
            /// shut down.
            pub fn submit_async<F, T>(
                &self,
                f: F,
            ) -> impl Future<Output = Result<Handle<T>, SubmitError<F>>> + Send + Unpin + use<F, T, $($p),*>
            where
                F: FnOnce($($arg),*) -> T + Send + 'static,
                T: Send + 'static,
            {
                self.job(f).submit_async()
            }
        }

        impl<$($gen)*> Clone for $Lane {
            fn clone(&self) -> Self {
                Self {
                    pool: self.pool.clone(),
                    queue: self.queue.clone(),
                }
            }
        }

    };
}

pub(crate) use {lane_surface, pool_surface};
