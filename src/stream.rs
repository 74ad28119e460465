//! Bounded streams: a producer runs on a worker and pushes items; the caller consumes them as a
//! blocking [`Iterator`] or as an async [`Stream`](futures_core::Stream), with at most `buffer`
//! items waiting in between.
//!
//! The channel is a `VecDeque` under a lock with two condvars and one waker slot: the producer
//! waits for room, the consumer for items, and each side tells the other when it leaves.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::backoff::Backoff;
use crate::blocking;
use crate::delivery::{Ticket, ToCallback};
use crate::engine::Opts;
use crate::engine::{Refusal, Wait};
use crate::error::JobError;
use crate::job::{JobFn, drop_quietly};
use crate::submit::Core;
use crate::sync::{AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

/// Added to `Chan::hint` when the producer has ended.
const DONE: usize = 1 << (usize::BITS - 1);

/// The consumer's side of a bounded stream, made by [`Pool::stream`](crate::Pool::stream),
/// [`StatePool::stream`](crate::StatePool::stream) or [`channel`].
///
/// Each item is `Ok(item)`, or, as the last one, `Err(JobError)` when the producer did not end
/// normally: [`JobError::Panicked`] if it panicked (with the message), `Cancelled` /
/// `ShutDown` / `Expired` if its job never ran. Errors of the work itself travel inside the
/// items (a producer of `io::Result<Chunk>` sends its `Err`s as items).
///
/// - **As an iterator** (`for item in items`): `next` blocks until an item arrives or the
///   stream ends. For worker threads and plain `main`s.
/// - **As a `Stream`** (`futures_core::Stream`): `poll_next` never blocks; any executor.
/// - **From a frame loop**: [`try_next`](Self::try_next) never blocks.
///
/// **Bounded.** At most `buffer` items wait between the two sides; a producer that gets ahead
/// waits in [`Sender::send`] until the consumer takes one. So the producer is never more than
/// `buffer + 1` items ahead (the `+ 1` is the item it holds while it waits).
///
/// **Dropping** the consumer stops the producer promptly: its next (or current) `send` returns
/// [`SendError`] with the item, [`is_cancelled`](crate::is_cancelled) turns `true` inside it, and
/// a producer that has not started never runs. Buffered items are dropped.
///
/// # Examples
/// ```
/// let pool = offthread::Pool::new();
/// // A producer that would run forever: the consumer decides how much it wants.
/// let squares = pool.stream(4, |out| {
///     for i in 0u64.. {
///         if out.send(i * i).is_err() {
///             return; // the consumer is gone
///         }
///     }
/// })?;
/// let first: Vec<u64> = squares.take(5).map(Result::unwrap).collect();
/// assert_eq!(first, [0, 1, 4, 9, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// The producer's job, to cancel when the consumer leaves.
    ticket: Option<Ticket>,
}

/// The producer's side of a bounded stream: [`send`](Self::send) items into it.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
    /// Made by `channel`: dropping the emitter ends the stream. (Inside a pool's stream job the
    /// job's outcome ends it instead, so a panic is reported with its message.)
    ends_on_drop: bool,
}

/// [`Sender::send`] failed: the consumer is gone. The item comes back.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

struct Chan<T> {
    state: Mutex<ChanState<T>>,
    /// Mirror of `items.len()`, plus `DONE` once the producer has ended: lets each side spin
    /// briefly without the lock before it sleeps (a chunk or a row usually arrives, or room
    /// frees, within microseconds; a futex sleep and wake costs more than that).
    hint: AtomicUsize,
    /// The producer waits here for room.
    room: Condvar,
    /// A blocking consumer waits here for an item.
    ready: Condvar,
    buffer: usize,
}

struct ChanState<T> {
    items: VecDeque<Result<T, JobError>>,
    /// The producer has ended (its last item, an error, may still be in `items`).
    done: bool,
    /// The consumer is gone.
    gone: bool,
    /// A producer waits in `send`.
    producer_waiting: bool,
    /// A consumer blocks in `next`.
    consumer_waiting: bool,
    /// The waker of an async consumer that found nothing.
    waker: Option<Waker>,
}

/// A bounded stream's two sides, for a producer you run yourself (on any thread, or as a job
/// with options: `pool.job(move || produce(&mut emitter)).priority(..).submit()`). Dropping the
/// emitter ends the stream; if it is dropped by a panic, the stream ends with
/// `Err(JobError::Panicked)`. A `buffer` of 0 is taken as 1.
///
/// # Examples
/// ```
/// let (mut out, items) = offthread::stream::channel(2);
/// let producer = std::thread::spawn(move || {
///     for word in ["a", "b", "c"] {
///         out.send(word).unwrap();
///     }
/// });
/// let words: Vec<_> = items.map(Result::unwrap).collect();
/// assert_eq!(words, ["a", "b", "c"]);
/// producer.join().unwrap();
/// ```
pub fn channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(ChanState {
            items: VecDeque::new(),
            done: false,
            gone: false,
            producer_waiting: false,
            consumer_waiting: false,
            waker: None,
        }),
        hint: AtomicUsize::new(0),
        room: Condvar::new(),
        ready: Condvar::new(),
        buffer: buffer.max(1),
    });
    let emitter = Sender {
        chan: chan.clone(),
        ends_on_drop: true,
    };
    (emitter, Receiver { chan, ticket: None })
}

impl<T> Chan<T> {
    /// Keeps `hint` in step with the state. Call under the lock after every change.
    fn publish(&self, st: &ChanState<T>) {
        let done = if st.done { DONE } else { 0 };
        // ORDERING: a hint for spinners, who confirm under the lock.
        self.hint.store(st.items.len() | done, Ordering::Relaxed);
    }

    /// Spins (without the lock) while `waiting(hint)` holds, for a few microseconds at most.
    fn spin_while(&self, waiting: impl Fn(usize) -> bool) {
        let backoff = Backoff::new();
        // ORDERING: a hint; the caller looks again under the lock.
        while waiting(self.hint.load(Ordering::Relaxed)) && !backoff.is_completed() {
            backoff.snooze();
        }
    }

    /// Takes the next item (notifying a waiting producer), or `None` if there is none yet.
    fn pop(&self, st: &mut ChanState<T>) -> Option<Result<T, JobError>> {
        let item = st.items.pop_front()?;
        self.publish(st);
        if st.producer_waiting {
            self.room.notify_one();
        }
        Some(item)
    }

    /// Tells the consumer something changed (an item, or the end).
    fn wake_consumer(&self, st: &mut ChanState<T>) -> Option<Waker> {
        if st.consumer_waiting {
            self.ready.notify_one();
        }
        st.waker.take()
    }

    /// Ends the stream, with `err` as its last item if the producer failed. Idempotent.
    fn finish(&self, err: Option<JobError>) {
        let mut st = self.state.lock();
        if st.done {
            return;
        }
        st.done = true;
        if let Some(err) = err
            && !st.gone
        {
            st.items.push_back(Err(err)); // past the bound: one last item
        }
        self.publish(&st);
        let waker = self.wake_consumer(&mut st);
        drop(st);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A stream that its owner can end from outside (a database closing under a live query
/// stream; see `sqlite::Live`).
#[cfg_attr(
    not(any(feature = "sqlite", feature = "sqlite-system")),
    allow(dead_code)
)]
pub(crate) trait Cut: Send + Sync {
    /// Ends the stream: the producer's next `send` (or the one it waits in) is refused, and
    /// the consumer gets the items already buffered, then `Err(JobError::ShutDown)`.
    fn cut(&self);
}

impl<T: Send> Cut for Chan<T> {
    fn cut(&self) {
        let mut st = self.state.lock();
        if st.gone {
            return; // the consumer has left; the producer already sees it
        }
        st.gone = true;
        if !st.done {
            st.done = true;
            st.items.push_back(Err(JobError::ShutDown)); // past the bound: one last item
        }
        self.publish(&st);
        if st.producer_waiting {
            self.room.notify_one();
        }
        let waker = self.wake_consumer(&mut st);
        drop(st);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Sender<T> {
    /// Sends `item`, waiting while the buffer is full.
    ///
    /// - `Ok(())`: the item is buffered for the consumer.
    /// - `Err(SendError(item))`: the consumer is gone; the item comes back. Return from the
    ///   producer.
    ///
    /// Blocks the producer (a worker) while the buffer is full: that is the backpressure. The
    /// pool counts a blocked worker as blocked, so a consumer that is a job of the same pool
    /// still finds a worker.
    ///
    /// # Errors
    /// [`SendError`] with the item, when the consumer was dropped.
    pub fn send(&mut self, item: T) -> Result<(), SendError<T>> {
        let chan = &*self.chan;
        // Declared before the lock guard, so it is dropped after it.
        let mut blocked = None;
        let mut st = chan.state.lock();
        let mut spun = false;
        loop {
            if st.gone {
                return Err(SendError(item));
            }
            if st.items.len() < chan.buffer {
                break;
            }
            if !spun {
                // Full: the consumer usually takes one within microseconds.
                spun = true;
                MutexGuard::unlocked(&mut st, || chan.spin_while(|h| h & !DONE >= chan.buffer));
                continue;
            }
            if blocked.is_none() {
                // The consumer may be a job of this worker's own pool: let it lend a worker.
                // (Never refused: the consumer is no particular pool's.)
                blocked = MutexGuard::unlocked(&mut st, || blocking::enter(0).ok());
                continue;
            }
            st.producer_waiting = true;
            chan.room.wait(&mut st);
            st.producer_waiting = false;
        }
        st.items.push_back(Ok(item));
        chan.publish(&st);
        let waker = self.chan.wake_consumer(&mut st);
        drop(st);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// `true` once the consumer is gone: a producer between sends can stop early.
    pub fn is_closed(&self) -> bool {
        self.chan.state.lock().gone
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.ends_on_drop {
            let err = std::thread::panicking()
                .then(|| JobError::Panicked("the stream's producer panicked".to_owned()));
            self.chan.finish(err);
        }
    }
}

impl<T> Receiver<T> {
    /// Takes the next item if one is ready; never blocks.
    ///
    /// - `Some(item)`: as for the iterator.
    /// - `None`: nothing is ready yet, or the stream has ended ([`is_finished`](Self::is_finished)
    ///   tells which).
    pub fn try_next(&mut self) -> Option<Result<T, JobError>> {
        let mut st = self.chan.state.lock();
        self.chan.pop(&mut st)
    }

    /// `true` once the producer has ended and every item has been taken: `next` would return
    /// `None` at once.
    pub fn is_finished(&self) -> bool {
        let st = self.chan.state.lock();
        st.done && st.items.is_empty()
    }

    /// Receiver buffered now (never more than the bound, plus a final error item).
    pub fn buffered(&self) -> usize {
        self.chan.state.lock().items.len()
    }
}

impl<T> Iterator for Receiver<T> {
    type Item = Result<T, JobError>;

    /// Blocks until the next item arrives, or returns `None` once the stream has ended.
    ///
    /// Called on a pool's own thread, the pool counts the thread as blocked, so the producer
    /// (a job of the same pool) still finds a worker; on the thread of a pool that cannot lend
    /// one (a database's writer) waiting on that pool's own producer, it returns
    /// `Some(Err(JobError::WouldDeadlock))` at once.
    fn next(&mut self) -> Option<Self::Item> {
        let chan = &*self.chan;
        // Declared before the lock guard, so it is dropped after it.
        let mut blocked = None;
        let mut st = chan.state.lock();
        let mut spun = false;
        loop {
            if let Some(item) = chan.pop(&mut st) {
                return Some(item);
            }
            if st.done {
                return None;
            }
            if !spun {
                // Empty: the producer usually sends within microseconds.
                spun = true;
                MutexGuard::unlocked(&mut st, || chan.spin_while(|h| h == 0));
                continue;
            }
            if blocked.is_none() {
                // Waiting on the producer's pool from one of its own threads: that pool lends
                // a worker, or refuses if it cannot.
                let producer = self.producer_pool();
                match MutexGuard::unlocked(&mut st, || blocking::enter(producer)) {
                    Ok(guard) => blocked = Some(guard),
                    Err(blocking::WouldDeadlock) => return Some(Err(JobError::WouldDeadlock)),
                }
                continue;
            }
            st.consumer_waiting = true;
            self.chan.ready.wait(&mut st);
            st.consumer_waiting = false;
        }
    }
}

impl<T> futures_core::Stream for Receiver<T> {
    type Item = Result<T, JobError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut st = self.chan.state.lock();
        if let Some(item) = self.chan.pop(&mut st) {
            return Poll::Ready(Some(item));
        }
        if st.done {
            return Poll::Ready(None);
        }
        match &mut st.waker {
            Some(w) => w.clone_from(cx.waker()),
            None => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

// Receiver move in and out of a `VecDeque` by value; nothing is pinned in place.
impl<T> Unpin for Receiver<T> {}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Raise the producer's cancel flag first (or dequeue it if it has not started), so a
        // producer that sees its `send` refused also sees `is_cancelled()`.
        if let Some(ticket) = &self.ticket {
            let _ = ticket.cancel();
        }
        let mut st = self.chan.state.lock();
        st.gone = true;
        let buffered = std::mem::take(&mut st.items);
        self.chan.publish(&st);
        if st.producer_waiting {
            self.chan.room.notify_one();
        }
        drop(st);
        // Buffered items' `Drop` is user code: outside the lock, and it must not unwind here.
        drop_quietly(buffered);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.chan.state.lock();
        f.debug_struct("Receiver")
            .field("buffered", &st.items.len())
            .field("done", &st.done)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the stream's consumer is gone")
    }
}

impl<T> Error for SendError<T> {}

/// A producer wrapped as a pool job: the closure and the emitter it writes to. A refused
/// submission gives the closure back.
pub(crate) struct Producer<P, T> {
    pub(crate) producer: P,
    pub(crate) emitter: Sender<T>,
}

impl<P, T> JobFn<(), ()> for Producer<P, T>
where
    P: FnOnce(&mut Sender<T>) + Send + 'static,
    T: Send + 'static,
{
    fn call(mut self, _: &mut ()) {
        (self.producer)(&mut self.emitter);
    }
}

/// A producer of a [`StatePool`](crate::StatePool): also given the worker's state.
pub(crate) struct StateProducer<P, T> {
    pub(crate) producer: P,
    pub(crate) emitter: Sender<T>,
}

impl<S, P, T> JobFn<S, ()> for StateProducer<P, T>
where
    P: FnOnce(&mut S, &mut Sender<T>) + Send + 'static,
    T: Send + 'static,
{
    fn call(mut self, state: &mut S) {
        (self.producer)(state, &mut self.emitter);
    }
}

/// Makes the two sides for a pool's stream job: the emitter does not end the stream on drop;
/// the job's outcome does (`finisher`).
pub(crate) fn job_channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    let (mut emitter, items) = channel(buffer);
    emitter.ends_on_drop = false;
    (emitter, items)
}

impl<T> Receiver<T> {
    /// The completion callback of the producer's job: ends the stream with the job's error.
    pub(crate) fn finisher(&self) -> impl FnOnce(crate::Outcome<()>) + Send + 'static
    where
        T: Send + 'static,
    {
        let chan = self.chan.clone();
        move |outcome| chan.finish(outcome.err())
    }

    /// A stream that ended before it began: its one item is `Err(err)`.
    pub(crate) fn failed(err: JobError) -> Self {
        let (emitter, items) = job_channel(1);
        items.chan.finish(Some(err));
        drop(emitter);
        items
    }

    pub(crate) fn set_ticket(&mut self, ticket: Ticket) {
        self.ticket = Some(ticket);
    }

    /// A way to end this stream from outside, held weakly (see [`Cut`]).
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "sqlite-system")),
        allow(dead_code)
    )]
    pub(crate) fn cutter(&self) -> std::sync::Weak<dyn Cut>
    where
        T: Send + 'static,
    {
        let chan: Arc<dyn Cut> = self.chan.clone();
        Arc::downgrade(&chan)
    }

    /// The identity of the pool running the producer (0: a producer of the caller's own).
    fn producer_pool(&self) -> usize {
        self.ticket.as_ref().map_or(0, Ticket::pool_id)
    }
}

/// Submits `job` (which writes into the emitter of `items`) with `wait`; on success the stream
/// holds the job's ticket, so dropping the stream cancels the job.
pub(crate) fn submit_producer<S, J, T>(
    core: &Core<S>,
    job: J,
    mut items: Receiver<T>,
    wait: Wait,
) -> Result<Receiver<T>, (J, Refusal)>
where
    S: 'static,
    J: JobFn<S, ()>,
    T: Send + 'static,
{
    let finish = items.finisher();
    let ticket = core.submit_job(job, Opts::default(), ToCallback(finish), wait)?;
    items.set_ticket(ticket);
    Ok(items)
}

/// `stream_iter`'s job: builds the iterator on the worker and sends its items.
pub(crate) struct IterJob<F, T> {
    pub(crate) make: F,
    pub(crate) emitter: Sender<T>,
}

impl<F, I> JobFn<(), ()> for IterJob<F, I::Item>
where
    F: FnOnce() -> I + Send + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
{
    fn call(mut self, _: &mut ()) {
        for item in (self.make)() {
            if self.emitter.send(item).is_err() {
                return;
            }
        }
    }
}

/// `stream_iter`'s job on a [`StatePool`](crate::StatePool): the iterator is built from the
/// worker's state.
pub(crate) struct StateIterJob<F, T> {
    pub(crate) make: F,
    pub(crate) emitter: Sender<T>,
}

impl<S, F, I> JobFn<S, ()> for StateIterJob<F, I::Item>
where
    F: FnOnce(&mut S) -> I + Send + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
{
    fn call(mut self, state: &mut S) {
        for item in (self.make)(state) {
            if self.emitter.send(item).is_err() {
                return;
            }
        }
    }
}
