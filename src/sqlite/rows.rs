//! `Rows<T>`: query results streamed from a reader in batches, through a bounded stream.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use rusqlite::Params;

use super::call::Reply;
use super::{Conn, Error, Live, run};
use crate::delivery::ToCallback;
use crate::engine::{Opts, Refusal, Wait};
use crate::error::JobError;
use crate::job::Stateful;
use crate::pool::StatePool;
use crate::stream;
use crate::submit::SubmitAsync;

/// Batches waiting between the reader and the consumer.
const BUFFER: usize = 2;

/// The most rows a batch is given room for up front.
const PREALLOC_ROWS: usize = 1024;

/// The rows of [`Db::query_stream`](super::Db::query_stream), in batches: a blocking
/// [`Iterator`], an async [`Stream`](futures_core::Stream), or [`try_next`](Self::try_next) from
/// a frame loop.
///
/// Each item is `Ok(batch)` (in query order), or an `Err` that ends the stream: SQLite's error,
/// [`Error::Panicked`] if the row mapper panicked, [`Error::Closed`] if the database closed
/// first. Dropping the stream interrupts the query, ends its read transaction and frees its
/// reader.
#[must_use = "dropping the stream interrupts its query and frees its reader"]
pub struct Rows<T> {
    items: stream::Receiver<Reply<Vec<T>>>,
    /// The query's job, while it waits for room in the readers' queue.
    start: Option<Start>,
}

/// The query's job, boxed: it writes into the sender of `items`.
type Producer = Stateful<Box<dyn FnOnce(&mut Conn) + Send>>;
/// Where the job's end is told: the stream's finisher.
type Finish = ToCallback<Box<dyn FnOnce(crate::Outcome<()>) + Send>>;

/// A query made while the readers' queue was full: queued by the first look at its rows —
/// waiting for room when iterated (blocking) or polled (without blocking), not at all by
/// `try_next`.
enum Start {
    Waiting(StatePool<Conn>, Producer),
    Queueing(SubmitAsync<Conn, Producer, (), Finish>),
}

impl<T: Send + 'static> Rows<T> {
    fn finish(&self) -> Finish {
        ToCallback(Box::new(self.items.finisher()))
    }

    /// Queues the query if it waits for room, as `wait` allows; `false` while it still waits.
    fn queue(&mut self, wait: Wait) -> bool {
        let (pool, job) = match self.start.take() {
            None => return true,
            Some(Start::Waiting(pool, job)) => (pool, job),
            Some(Start::Queueing(submit)) => {
                // Polled before, iterated now: wait for that room here.
                let queued = block_on(submit);
                return self.queued(queued.map_err(|_job| Refusal::ShutDown));
            }
        };
        let finish = self.finish();
        match pool.core().submit_job(job, Opts::default(), finish, wait) {
            Err((job, Refusal::Full | Refusal::Timeout)) => {
                self.start = Some(Start::Waiting(pool, job));
                false
            }
            queued => self.queued(queued.map_err(|(_, why)| why)),
        }
    }

    /// The `Stream` form of [`queue`](Self::queue).
    fn poll_queue(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut submit = match self.start.take() {
            None => return Poll::Ready(()),
            Some(Start::Queueing(submit)) => submit,
            Some(Start::Waiting(pool, job)) => {
                let finish = self.finish();
                pool.core().submit_job_async(job, Opts::default(), finish)
            }
        };
        match Pin::new(&mut submit).poll(cx) {
            Poll::Pending => {
                self.start = Some(Start::Queueing(submit));
                Poll::Pending
            }
            Poll::Ready(queued) => {
                self.queued(queued.map_err(|_job| Refusal::ShutDown));
                Poll::Ready(())
            }
        }
    }

    /// Records how the queueing ended: the stream now cancels the job when dropped, or ends
    /// with the refusal's error.
    fn queued(&mut self, queued: Result<crate::Ticket, Refusal>) -> bool {
        match queued {
            Ok(ticket) => self.items.set_ticket(ticket),
            Err(why) => (self.items.finisher())(Err(match why {
                Refusal::WouldDeadlock => JobError::WouldDeadlock,
                _ => JobError::ShutDown,
            })),
        }
        true
    }
}

/// Waits for `f` on this thread (a query polled as a stream, then iterated).
fn block_on<F: Future + Unpin>(mut f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = Pin::new(&mut f).poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

fn flatten<T>(item: Result<Reply<Vec<T>>, JobError>) -> Reply<Vec<T>> {
    item.unwrap_or_else(|e| Err(Error::from(e)))
}

impl<T: Send + 'static> Rows<T> {
    /// Takes the next batch if one is ready; never blocks. `None`: nothing ready yet, or the
    /// stream has ended ([`is_finished`](Self::is_finished) tells which).
    pub fn try_next(&mut self) -> Option<Reply<Vec<T>>> {
        if !self.queue(Wait::Never) {
            return None; // still no room for the query
        }
        self.items.try_next().map(flatten)
    }
}

impl<T> Rows<T> {
    /// Batches read ahead and waiting for the consumer now (at most two, plus a final error).
    pub fn buffered(&self) -> usize {
        self.items.buffered()
    }

    /// `true` once the query has ended and every batch has been taken.
    pub fn is_finished(&self) -> bool {
        self.items.is_finished()
    }
}

impl<T: Send + 'static> Iterator for Rows<T> {
    type Item = Reply<Vec<T>>;

    /// Blocks until the next batch arrives (the query first waits for room in the readers'
    /// queue, if it was made while that was full), or returns `None` after the last row.
    fn next(&mut self) -> Option<Self::Item> {
        self.queue(Wait::Until(None));
        self.items.next().map(flatten)
    }
}

impl<T: Send + 'static> futures_core::Stream for Rows<T> {
    type Item = Reply<Vec<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.poll_queue(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.items)
            .poll_next(cx)
            .map(|item| item.map(flatten))
    }
}

impl<T> fmt::Debug for Rows<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rows").field("items", &self.items).finish()
    }
}

/// Starts the query on a reader.
pub(super) fn start<T, P, M>(
    pool: &StatePool<Conn>,
    live: &Live,
    sql: String,
    params: P,
    batch_size: usize,
    mut map: M,
) -> Rows<T>
where
    T: Send + 'static,
    P: Params + Send + 'static,
    M: FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T> + Send + 'static,
{
    let producer = move |conn: &mut Conn, out: &mut stream::Sender<Reply<Vec<T>>>| {
        let result = run(conn, |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(params)?;
            // Allocated as it fills past `PREALLOC_ROWS`: a huge batch size costs the rows the
            // query returns, not the rows asked for.
            let prealloc = batch_size.min(PREALLOC_ROWS);
            let mut batch = Vec::with_capacity(prealloc);
            while let Some(row) = rows.next()? {
                batch.push(map(row)?);
                if batch.len() == batch_size {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(prealloc));
                    if out.send(Ok(full)).is_err() {
                        return Ok(()); // the consumer is gone: end the read
                    }
                }
            }
            if !batch.is_empty() {
                let _ = out.send(Ok(batch));
            }
            Ok(())
        });
        if let Err(e) = result {
            let _ = out.send(Err(e));
        }
    };
    let (mut sender, items) = stream::job_channel(BUFFER);
    let job: Producer = Stateful(Box::new(move |conn: &mut Conn| producer(conn, &mut sender)));
    live.add_stream(items.cutter());
    let mut rows = Rows {
        items,
        start: Some(Start::Waiting(pool.clone(), job)),
    };
    // Queued now if there is room; otherwise the first look at the rows queues it.
    rows.queue(Wait::Never);
    rows
}
