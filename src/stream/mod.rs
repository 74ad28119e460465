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
use std::task::{Context, Poll};

use crate::blocking;
use crate::delivery::Ticket;
use crate::error::JobError;
use crate::job::drop_quietly;
use crate::sync::{AtomicUsize, Condvar, Mutex, MutexGuard};

mod chan;
mod job;

#[cfg(any(feature = "sqlite", feature = "sqlite-system"))]
pub(crate) use chan::Cut;
use chan::{Chan, ChanState, DONE};
pub(crate) use job::{
    IterJob, Producer, StateIterJob, StateProducer, job_channel, submit_producer,
};

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
#[must_use = "dropping the receiver ends the stream: the producer's next `send` fails"]
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// The producer's job, to cancel when the consumer leaves.
    ticket: Option<Ticket>,
}

/// The producer's side of a bounded stream: [`send`](Self::send) items into it.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
    /// Made by `channel`: dropping the sender ends the stream. (Inside a pool's stream job the
    /// job's outcome ends it instead, so a panic is reported with its message.)
    ends_on_drop: bool,
}

/// [`Sender::send`] failed: the consumer is gone. The item comes back.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// A bounded stream's two sides, for a producer you run yourself (on any thread, or as a job
/// with options: `pool.job(move || produce(&mut sender)).priority(..).submit()`). Dropping the
/// sender ends the stream; if it is dropped by a panic, the stream ends with
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
    let sender = Sender {
        chan: chan.clone(),
        ends_on_drop: true,
    };
    (sender, Receiver { chan, ticket: None })
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
