//! How a [`Db`] ends and what it reports meanwhile: `stats`, `close` (blocking, awaitable,
//! or dropping the queue), and the close in the background when the last clone goes.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Db, Inner};
use crate::JobFuture;
use crate::handle::detached;
use crate::pool::StatePool;

/// The future of [`Db::close_async`]: resolves once the database is closed.
#[must_use = "futures do nothing unless polled; the close goes on regardless"]
pub struct Closing {
    done: JobFuture<()>,
    /// Set when no thread could be started: closed in place at the first poll.
    inline: Option<Arc<Inner>>,
}

impl std::future::Future for Closing {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if let Some(inner) = self.inline.take() {
            inner.close(false);
            return std::task::Poll::Ready(());
        }
        // A dropped resolver means the closing thread is gone: the close ended with it.
        std::future::Future::poll(std::pin::Pin::new(&mut self.done), cx).map(|_| ())
    }
}

impl fmt::Debug for Closing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closing").finish_non_exhaustive()
    }
}

/// How many calls ended in each kind of error, from [`DbStats::errors`]: the errors of calls
/// that ran (reads, writes, transactions, query helpers, streams' reads and backups; not the
/// steps of a write session). Refused, cancelled and closed calls are in the pools' own
/// [`Stats`](crate::Stats) (`rejected`, `cancelled`, `shut_down`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbErrors {
    /// SQLite refused: bad SQL, a constraint, a type mismatch, no rows ([`Error::Sqlite`](super::Error::Sqlite)).
    pub sqlite: u64,
    /// Locked by another process past the busy timeout ([`Error::Busy`](super::Error::Busy)).
    pub busy: u64,
    /// Interrupted: cancelled while running ([`Error::Interrupted`](super::Error::Interrupted)).
    pub interrupted: u64,
    /// Past a time limit ([`Error::Timeout`](super::Error::Timeout)).
    pub timeout: u64,
    /// The closure panicked ([`Error::Panicked`](super::Error::Panicked)).
    pub panicked: u64,
    /// A transaction left open or ended early by the closure.
    pub transaction: u64,
    /// A closure's own error ([`Error::Other`](super::Error::Other)).
    pub closure: u64,
    /// Any other error of a call that ran (a moved file, a refused nested wait, …).
    pub other: u64,
}

/// The counts behind [`DbErrors`], shared by a database's connections.
#[derive(Debug, Default)]
pub(crate) struct ErrorCounts([AtomicU64; 8], AtomicU64);

impl ErrorCounts {
    pub(crate) fn count(&self, e: &super::Error) {
        use super::Error as E;
        let i = match e {
            E::Sqlite(_) => 0,
            E::Busy(_) => 1,
            E::Interrupted => 2,
            E::Timeout => 3,
            E::Panicked(_) => 4,
            E::TransactionLeftOpen | E::TransactionEndedEarly => 5,
            E::Other(_) => 6,
            _ => 7,
        };
        // ORDERING: counters read for a snapshot.
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }

    /// One more wait for a lock held elsewhere (see `busy.rs`).
    pub(crate) fn busy_retry(&self) {
        // ORDERING: a counter read for a snapshot.
        self.1.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> DbErrors {
        // ORDERING: as in `count`.
        let n = |i: usize| self.0[i].load(Ordering::Relaxed);
        DbErrors {
            sqlite: n(0),
            busy: n(1),
            interrupted: n(2),
            timeout: n(3),
            panicked: n(4),
            transaction: n(5),
            closure: n(6),
            other: n(7),
        }
    }
}

/// A snapshot of a [`Db`]'s threads, from [`Db::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbStats {
    /// The writer's thread: its calls (writes, transactions, session steps, and every call of
    /// an in-memory database).
    pub writer: crate::Stats,
    /// The reader threads (`workers` is how many run now), or `None` in memory.
    pub readers: Option<crate::Stats>,
    /// The calls that ran and failed, by kind of error.
    pub errors: DbErrors,
    /// How many times a connection waited for a lock held by another connection or process
    /// (SQLite's busy handler, within [`DbBuilder::busy_timeout`](super::DbBuilder::busy_timeout))
    /// and tried again. Calls that still found it locked at the timeout are in
    /// [`DbErrors::busy`].
    pub busy_retries: u64,
}

impl Db {
    /// What the writer and the readers are doing: each one's [`Stats`](crate::Stats) (calls
    /// queued and running, outcomes, threads, queue wait and run time percentiles). Never
    /// blocks on a call.
    ///
    /// # Examples
    /// ```
    /// let dir = std::env::temp_dir().join(format!("offthread-doc-stats-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let db = offthread::sqlite::Db::open(dir.join("app.db"))?;
    /// db.execute("CREATE TABLE t (x)", ()).wait()?;
    /// let n: i64 = db.query_row("SELECT count(*) FROM t", ()).wait()?;
    /// assert_eq!(n, 0);
    /// let s = db.stats();
    /// let readers = s.readers.unwrap();
    /// assert!(s.writer.completed >= 1 && readers.completed >= 1 && readers.workers >= 1);
    /// db.close();
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> DbStats {
        DbStats {
            writer: self.inner.writer.stats(),
            readers: self.inner.readers.as_ref().map(StatePool::stats),
            errors: self.inner.errors.snapshot(),
            // ORDERING: as in `ErrorCounts::count`.
            busy_retries: self.inner.errors.1.load(Ordering::Relaxed),
        }
    }

    /// Closes the database: stops intake, runs the calls already queued, then closes the
    /// readers and last the writer (so SQLite checkpoints the WAL and removes the `-wal` and
    /// `-shm` files) and joins every thread. Idempotent; later calls resolve
    /// [`Error::Closed`](super::Error::Closed). Blocks until done, and always returns:
    ///
    /// - a live [`Session`](super::Session) is ended: the calls already sent to it run, then
    ///   its transaction is rolled back and later calls resolve
    ///   [`Error::Closed`](super::Error::Closed) (commit before closing);
    /// - a live query stream ([`Rows`](super::Rows)) is ended: its consumer gets the batches
    ///   already read ahead, then `Err(Error::Closed)`.
    ///
    /// So neither an unread stream nor a session — not even one the closing thread holds —
    /// can hold the close up.
    pub fn close(&self) {
        self.inner.close(false);
    }

    /// As [`close`](Self::close), awaitable: the closing runs on a thread of its own, and the
    /// future resolves once it is done, without blocking the executor. (If no thread can be
    /// started, the first poll closes in place.)
    ///
    /// # Examples
    /// ```
    /// let db = offthread::sqlite::Db::open_in_memory()?;
    /// db.execute("CREATE TABLE t (x)", ()).wait()?;
    /// pollster::block_on(db.close_async());
    /// assert!(matches!(db.execute("INSERT INTO t VALUES (1)", ()).wait(), Err(offthread::sqlite::Error::Closed)));
    /// # Ok::<(), offthread::sqlite::Error>(())
    /// ```
    pub fn close_async(&self) -> Closing {
        let (done, rx) = detached(0);
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("offthread-sqlite-close".to_owned())
            .spawn(move || {
                inner.close(false);
                done.send(Ok(()));
            });
        Closing {
            done: std::future::IntoFuture::into_future(rx),
            inline: spawned.is_err().then(|| self.inner.clone()),
        }
    }

    /// As [`close`](Self::close), but calls still queued resolve
    /// [`Error::Closed`](super::Error::Closed) instead of running; running calls finish.
    pub fn close_now(&self) {
        self.inner.close(true);
    }
}

impl Inner {
    fn close(&self, now: bool) {
        self.live.end_all();
        for pool in self.readers.iter().chain([&self.writer]) {
            if now {
                pool.shutdown_now();
            } else {
                pool.shutdown();
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close in the right order (readers, then the writer) without blocking the thread that
        // dropped the last `Db`. If no thread can be started, dropping the pools still closes
        // intake and every queued call still runs.
        let (writer, readers) = (self.writer.clone(), self.readers.clone());
        let _ = std::thread::Builder::new()
            .name("offthread-sqlite-close".to_owned())
            .spawn(move || {
                if let Some(readers) = readers {
                    readers.shutdown();
                }
                writer.shutdown();
            });
    }
}
