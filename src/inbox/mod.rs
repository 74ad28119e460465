//! `Inbox<T, K>`: a bounded completion queue that an event loop drains without blocking.

#[cfg(unix)]
mod signal;
mod sink;
#[cfg(unix)]
pub use signal::ReadyFd;
pub(crate) use sink::InboxSink;

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::blocking;
use crate::job::Outcome;
use crate::job::Room;
use crate::sync::{Condvar, Mutex, MutexGuard};
use crate::waiters::{Waiters, wake_all};

/// An outcome taken from the inbox, and the submitters to wake for the slot it freed.
type Taken<T, K> = ((K, Outcome<T>), Vec<Waker>);

/// The hook run when the inbox becomes non-empty.
type Wake = Box<dyn Fn() + Send + Sync>;

/// A completion queue for event loops: jobs submitted to it deliver their outcomes here, each
/// tagged with a key the caller chose, in the order they finish.
///
/// The owner drains it when convenient — a GUI once per frame with [`drain`](Self::drain) or
/// [`try_recv`](Self::try_recv), which never block; a worker thread with
/// [`recv`](Self::recv) or [`recv_timeout`](Self::recv_timeout); an async task as a
/// [`Stream`](futures_core::Stream).
///
/// **Waking an event loop.** An event loop that sleeps until something happens learns of
/// outcomes in one of two ways, both *once per batch*, not once per outcome: a wake hook
/// ([`with_wake`](Self::with_wake)), which runs when the inbox becomes non-empty (request a
/// repaint, post to the event-loop proxy), and, on Unix, a readiness handle
/// ([`readiness`](Self::readiness)) that is readable while outcomes wait, for loops built on
/// `poll`/`epoll`. Either fires again only after the inbox was emptied: on each wake, drain it.
///
/// **Bounded.** An inbox of capacity `n` holds at most `n` outcomes *including those still on
/// their way*: every submission to it reserves a slot, and receiving the outcome frees it. So a
/// delivery never blocks a worker and never drops an outcome; instead, submitting to a full
/// inbox is backpressure, exactly like a full queue: `try_submit` refuses with `Full` and hands
/// the job back, `submit` waits for room (so never call it from the thread that drains the
/// inbox), `submit_timeout` waits up to its limit, and `submit_async` pends.
///
/// Clones share one inbox. An outcome whose inbox was dropped is dropped on delivery.
///
/// # Examples
/// ```
/// use offthread::{Inbox, Pool, Priority};
/// let pool = Pool::new();
/// let inbox = Inbox::new(64);
/// for id in 0..3 {
///     pool.job(move || id * 10).priority(Priority::Interactive).inbox(&inbox, id).submit()?;
/// }
/// let mut got = Vec::new();
/// while got.len() < 3 {
///     // each frame: take what has arrived, never wait
///     for (id, outcome) in inbox.drain() {
///         got.push((id, outcome?));
///     }
/// #   if got.len() < 3 { std::thread::yield_now(); }
/// }
/// got.sort();
/// assert_eq!(got, [(0, 0), (1, 10), (2, 20)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Inbox<T, K = ()> {
    shared: Arc<InboxShared<T, K>>,
}

impl<T, K> Clone for Inbox<T, K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

struct InboxShared<T, K> {
    state: Mutex<InboxState<T, K>>,
    /// `recv` waits here for an outcome.
    ready: Condvar,
    /// Submitters wait here for a slot.
    room: Condvar,
    capacity: usize,
    wake: Option<Wake>,
    /// The readiness handle's socket pair, once asked for.
    #[cfg(unix)]
    signal: std::sync::OnceLock<signal::Signal>,
}

struct InboxState<T, K> {
    /// Delivered outcomes, oldest first.
    items: VecDeque<(K, Outcome<T>)>,
    /// Slots taken: outcomes on their way plus `items`. Never above `capacity`.
    reserved: usize,
    /// Threads blocked in `recv`.
    receivers: usize,
    /// Threads blocked waiting for a slot.
    room_waiters: usize,
    /// Futures of `submit_async` waiting for a slot.
    async_waiters: Waiters,
    /// Tasks polling the inbox as a stream, waiting for an outcome.
    recv_tasks: Waiters,
    /// The wake hook (and the readiness handle) fired since the inbox was last emptied.
    signalled: bool,
}

impl<T, K> Inbox<T, K> {
    /// An inbox that holds at most `capacity` outcomes, counting those on their way. A
    /// capacity of 0 is taken as 1 (an inbox that can hold nothing could never be used).
    ///
    /// # Examples
    /// ```
    /// let inbox: offthread::Inbox<u32> = offthread::Inbox::new(0);
    /// assert_eq!(inbox.capacity(), 1);
    /// ```
    pub fn new(capacity: usize) -> Self {
        Self::build(capacity, None)
    }

    /// Like [`new`](Self::new), with a hook that runs when the inbox becomes non-empty: once
    /// for the first outcome delivered, then not again until the inbox has been emptied (by
    /// [`try_recv`](Self::try_recv), [`drain`](Self::drain), [`recv`](Self::recv) or the
    /// stream taking its last outcome). So a burst of deliveries wakes an event loop once, and
    /// the loop drains everything on each wake. It runs on the thread that delivers (usually a
    /// worker; the canceller's thread for a cancelled job), after the outcome is in the inbox.
    /// A panic in the hook is caught and counted in
    /// [`Stats::callback_panics`](crate::Stats::callback_panics) of the pool that delivered.
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let wakes = Arc::new(AtomicUsize::new(0));
    /// let counter = wakes.clone();
    /// let inbox = offthread::Inbox::with_wake(8, move || {
    ///     counter.fetch_add(1, Ordering::Relaxed); // e.g. window.request_redraw()
    /// });
    /// let pool = offthread::Pool::new();
    /// for i in 0..3 {
    ///     pool.job(move || i).inbox(&inbox, ()).submit()?;
    /// }
    /// pool.shutdown(); // every outcome delivered, every hook run
    /// assert_eq!(wakes.load(Ordering::Relaxed), 1); // one wake for the batch
    /// assert_eq!(inbox.drain().count(), 3); // emptied: the next delivery wakes again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_wake(capacity: usize, wake: impl Fn() + Send + Sync + 'static) -> Self {
        Self::build(capacity, Some(Box::new(wake)))
    }

    fn build(capacity: usize, wake: Option<Wake>) -> Self {
        Self {
            shared: Arc::new(InboxShared {
                state: Mutex::new(InboxState {
                    items: VecDeque::new(),
                    reserved: 0,
                    receivers: 0,
                    room_waiters: 0,
                    async_waiters: Waiters::default(),
                    recv_tasks: Waiters::default(),
                    signalled: false,
                }),
                ready: Condvar::new(),
                room: Condvar::new(),
                capacity: capacity.max(1),
                wake,
                #[cfg(unix)]
                signal: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Takes the oldest delivered outcome, if any; never blocks.
    ///
    /// - `Some((key, outcome))`: the key given at submission and the job's outcome.
    /// - `None`: nothing has arrived (jobs may still be on their way; see
    ///   [`in_flight`](Self::in_flight)).
    pub fn try_recv(&self) -> Option<(K, Outcome<T>)> {
        let mut st = self.shared.state.lock();
        let (item, wakers) = self.shared.take(&mut st)?;
        drop(st);
        wake_all(wakers);
        Some(item)
    }

    /// An iterator over the outcomes delivered so far; never blocks. It yields at most the
    /// number of outcomes present when it was made, so a frame's drain always ends even while
    /// workers keep delivering.
    pub fn drain(&self) -> Drain<'_, T, K> {
        let left = self.len();
        Drain { inbox: self, left }
    }

    /// Blocks until an outcome arrives and takes it.
    ///
    /// - `Some((key, outcome))`: the oldest outcome.
    /// - `None`: the inbox is empty and no job is on its way to it, so waiting would never end.
    ///
    /// For worker threads; a frame loop uses [`try_recv`](Self::try_recv) or
    /// [`drain`](Self::drain). Called on a pool's own thread, it counts that thread as blocked
    /// while it waits, so jobs of that pool on their way here still find a worker.
    pub fn recv(&self) -> Option<(K, Outcome<T>)> {
        self.recv_until(None)
    }

    /// Waits at most `timeout` for an outcome. `None`: nothing arrived in time, or nothing is on
    /// its way (see [`recv`](Self::recv)). A timeout too large to represent waits without
    /// limit.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<(K, Outcome<T>)> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Waits until `deadline` at the latest for an outcome; as
    /// [`recv_timeout`](Self::recv_timeout).
    pub fn recv_deadline(&self, deadline: Instant) -> Option<(K, Outcome<T>)> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Option<(K, Outcome<T>)> {
        // Declared before the lock guard, so it is dropped after it.
        let mut blocked = None;
        let mut st = self.shared.state.lock();
        loop {
            if let Some((item, wakers)) = self.shared.take(&mut st) {
                drop(st);
                wake_all(wakers);
                return Some(item);
            }
            if st.reserved == 0 {
                return None; // nothing on its way: waiting would never end
            }
            if blocked.is_none() {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return None;
                }
                // Jobs of this thread's own pool may be the ones on their way here: let the
                // pool lend a worker. (Never refused: an inbox is no particular pool's.)
                blocked = MutexGuard::unlocked(&mut st, || blocking::enter(0).ok());
                continue;
            }
            st.receivers += 1;
            let timed_out = match deadline {
                None => {
                    self.shared.ready.wait(&mut st);
                    false
                }
                Some(d) => self.shared.ready.wait_until(&mut st, d).timed_out(),
            };
            st.receivers -= 1;
            if timed_out && st.items.is_empty() {
                return None;
            }
        }
    }

    /// Outcomes delivered and not yet received.
    pub fn len(&self) -> usize {
        self.shared.state.lock().items.len()
    }

    /// `true` if no outcome waits to be received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Jobs submitted to this inbox whose outcome has not been delivered yet.
    pub fn in_flight(&self) -> usize {
        let st = self.shared.state.lock();
        st.reserved - st.items.len()
    }

    /// The most outcomes this inbox holds, counting those on their way.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// A file descriptor that is readable while outcomes wait in this inbox (Unix): register
    /// it with a `poll`/`epoll` event loop — mio, calloop, glib's `unix_fd_add`, Qt's socket
    /// notifiers — and drain the inbox when it fires. It becomes readable when the inbox
    /// becomes non-empty and stops being readable when the inbox is emptied, with one byte in a
    /// socket pair (made on the first call; later calls hand out the same socket). No timer,
    /// no callback thread.
    ///
    /// # Errors
    /// The OS refused the socket pair (out of file descriptors).
    ///
    /// # Examples
    /// ```
    /// # #[cfg(unix)] {
    /// use std::os::fd::AsRawFd;
    /// let inbox = offthread::Inbox::new(8);
    /// let ready = inbox.readiness()?;
    /// let fd = ready.as_raw_fd(); // register with the event loop, for readability
    /// # let _ = fd;
    /// let pool = offthread::Pool::new();
    /// pool.job(|| 42).inbox(&inbox, ()).submit()?;
    /// pool.shutdown(); // here, to wait for the delivery; the loop waits for `fd` instead
    /// for ((), outcome) in inbox.drain() {
    ///     assert_eq!(outcome, Ok(42));
    /// }
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn readiness(&self) -> std::io::Result<ReadyFd> {
        let shared = &self.shared;
        if let Some(signal) = shared.signal.get() {
            return signal.handle();
        }
        let made = signal::Signal::new()?;
        let mut st = shared.state.lock();
        let signal = shared.signal.get_or_init(|| made);
        if !st.items.is_empty() {
            // Outcomes already wait: readable at once, and lowered when they are taken.
            st.signalled = true;
            signal.raise();
        }
        drop(st);
        signal.handle()
    }
}

/// An inbox is also a [`Stream`](futures_core::Stream) of its outcomes, for a task that awaits
/// them: `inbox.next().await` (with `futures`' `StreamExt`). The stream never ends — an inbox
/// stays open as long as it exists, and jobs may be submitted to it at any time — so a loop
/// over it runs until the task is dropped or stops itself.
impl<T, K> futures_core::Stream for Inbox<T, K> {
    type Item = (K, Outcome<T>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut st = self.shared.state.lock();
        if let Some((item, wakers)) = self.shared.take(&mut st) {
            drop(st);
            wake_all(wakers);
            return Poll::Ready(Some(item));
        }
        // Woken by the next delivery, which takes every registration.
        st.recv_tasks.add(cx.waker());
        Poll::Pending
    }
}

impl<T: Send + 'static, K: Send + 'static> Inbox<T, K> {
    pub(crate) fn room(&self) -> Arc<dyn Room> {
        self.shared.clone()
    }
}

impl<T, K> fmt::Debug for Inbox<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.state.lock();
        f.debug_struct("Inbox")
            .field("ready", &st.items.len())
            .field("in_flight", &(st.reserved - st.items.len()))
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

impl<T, K> InboxShared<T, K> {
    /// Takes the oldest outcome, if any, with the async submitters to wake once the lock is
    /// released. Emptying the inbox re-arms its wake hook and lowers its readiness handle.
    fn take(&self, st: &mut InboxState<T, K>) -> Option<Taken<T, K>> {
        let item = st.items.pop_front()?;
        if st.items.is_empty() && st.signalled {
            st.signalled = false;
            // Under the lock: a delivery that follows raises it again, after this.
            #[cfg(unix)]
            if let Some(signal) = self.signal.get() {
                signal.lower();
            }
        }
        let wakers = self.free_slot(st);
        Some((item, wakers))
    }

    /// Frees one slot (an outcome was received, or a reservation given back): wakes one blocked
    /// submitter and hands back the async waiters to wake outside the lock.
    fn free_slot(&self, st: &mut InboxState<T, K>) -> Vec<Waker> {
        st.reserved -= 1;
        if st.room_waiters > 0 {
            self.room.notify_one();
        }
        if st.reserved == 0 && st.receivers > 0 {
            // A reservation was given back and nothing is on its way any more: blocked
            // receivers would wait forever; wake them to return `None`.
            self.ready.notify_all();
        }
        st.async_waiters.take()
    }
}

/// The iterator of [`Inbox::drain`]: the outcomes present when it was made; never blocks.
pub struct Drain<'a, T, K> {
    inbox: &'a Inbox<T, K>,
    left: usize,
}

impl<T, K> Iterator for Drain<'_, T, K> {
    type Item = (K, Outcome<T>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.inbox.try_recv()
    }
}

impl<T, K> fmt::Debug for Drain<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain").field("left", &self.left).finish()
    }
}
