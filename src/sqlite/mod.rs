//! SQLite without blocking: [`Db`] runs every call on its own threads — one writer that owns
//! the only read-write connection, and a pool of readers — and hands back a [`Call`] at once.
//! (Feature `sqlite`.)
//!
//! **Why this shape.** SQLite allows one writer at a time, while readers in WAL mode never block
//! it nor each other. So `Db` keeps exactly one read-write connection on one writer thread:
//! writes queue in order and never meet `database is locked` from each other. Reads go to
//! reader threads, each with a read-only connection, all pulling from **one shared bounded
//! queue** — a slow query holds one reader, never the calls behind it.
//!
//! **Readers follow the load.** `min(cpus, 4)` readers open up front
//! ([`DbBuilder::readers`]). When reads wait behind long ones — reads that have run 10 ms and
//! keep their thread computing — the `Db` opens more, up to twice the long reads plus the CPU
//! count, never past [`DbBuilder::max_readers`] (default 16): the short reads get at least as
//! many threads, and so as much CPU, as the long ones. Reads that merely wait for a busy CPU,
//! or for each other's locks, open none. Readers opened this way close after
//! [`DbBuilder::reader_keep_alive`] idle (default 10 s); [`Db::stats`] shows how many run.
//!
//! **Opening.** The writer opens first and sets the database up: `busy_timeout`, then
//! `journal_mode=WAL` (checked), `synchronous=NORMAL`, `foreign_keys=ON`, then your `init`
//! closure; the readers open after it, so they never race the WAL switch. Opening does file
//! I/O on the caller's thread while it waits for that set-up: open at start-up, or from a worker.
//!
//! **In-memory databases** (`Db::open_in_memory`) have no readers: a private in-memory database
//! is visible only to its own connection, so every call runs on the writer, in order.
//!
//! **Results.** Every call returns a [`Call<T>`]: `wait()`, `try_wait()` from a frame loop, or
//! `.await` under any executor; its outcome is `Result<T, sqlite::Error>`, so one `?` yields the
//! value whatever failed (SQL, busy, a panic in the closure, a closed database).
//! A closure that fails with errors of its own — a parse error, an application's "not
//! allowed" — goes to [`Db::read_any`], [`Db::write_any`] or [`Db::transaction_any`]: `?`
//! works on every error there, and [`Error::downcast`] gives the closure's own back.
//!
//! **Panics and leaks.** A panicking closure becomes [`Error::Panicked`]; its open transaction,
//! if any, is rolled back and the connection goes on serving. A closure that returns with a
//! transaction still open gets [`Error::TransactionLeftOpen`] and the transaction is rolled back
//! before the next call.
//!
//! **The file under a running `Db`.** SQLite in WAL mode does not notice when its database file
//! is deleted (or another file is renamed over it): it goes on writing into a file no one can
//! open again. So before each write call (and before a session's `BEGIN` and `COMMIT`) the
//! writer checks that the path still names the file it opened (one `stat`), and otherwise
//! refuses the write with SQLite's own code for this case, `SQLITE_READONLY_DBMOVED`
//! ([`Error::sqlite_code`] is `ReadOnly`): close the `Db` and open it again. A file made
//! read-only fails writes with SQLite's I/O error while reads go on; a full disk is
//! `DiskFull` and rolls the transaction back whole. Nothing committed is lost in any of these.
//!
//! # Examples
//! ```
//! use offthread::sqlite::Db;
//! let db = Db::open_in_memory()?;
//! db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)", ()).wait()?;
//! db.execute("INSERT INTO kv VALUES (?1, ?2)", ("answer".to_owned(), 42)).wait()?;
//! let v: i64 = db.query_row("SELECT v FROM kv WHERE k = ?1", ("answer".to_owned(),)).wait()?;
//! assert_eq!(v, 42);
//!
//! // Many statements atomically: BEGIN IMMEDIATE, commit on Ok, roll back on Err or panic.
//! let n = db.transaction(|tx| {
//!     tx.execute("UPDATE kv SET v = v + 1", ())?;
//!     tx.query_row("SELECT v FROM kv", (), |r| r.get::<_, i64>(0))
//! }).wait()?;
//! assert_eq!(n, 43);
//! db.close();
//! # Ok::<(), offthread::sqlite::Error>(())
//! ```

mod any;
mod backup;
mod builder;
mod busy;
mod call;
mod error;
mod file;
mod from_row;
mod lifecycle;
mod live;
mod managed;
mod query;
mod rows;
mod session;
mod start;

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::delivery::ToHandle;
use crate::engine::Opts;
use crate::engine::{Refusal, Wait};
use crate::job::Stateful;
use crate::pool::StatePool;

/// The rusqlite crate this module is built on, so an application names `Connection`, `Row`,
/// `params!` and the rest without a dependency of its own (one that could differ in version).
/// Its optional features are offthread's `sqlite-*` features.
pub use rusqlite;

pub use builder::DbBuilder;
pub use call::{Call, CallFuture};
pub use error::{BoxError, Error};
pub use from_row::FromRow;
pub use lifecycle::{Closing, DbErrors, DbStats};
pub use rows::Rows;
pub use session::Session;

use call::Reply;
use error::ClosureError;
use live::Live;

/// A worker's connection, or why it could not be opened.
pub(crate) type Conn = Result<Link, String>;

/// A worker's open connection; the writer of a file also keeps the file's identity, to refuse
/// writes once the file has been deleted or replaced (see `file.rs`).
pub(crate) struct Link {
    pub(crate) conn: Connection,
    pub(crate) file: Option<file::DbFile>,
    /// The database's error counts, shared by its connections.
    pub(crate) errors: Arc<lifecycle::ErrorCounts>,
}

/// How often (in SQLite VM steps) a reader checks whether its read was cancelled: about a
/// microsecond of work, so an interrupt lands within microseconds and costs nothing measurable.
const PROGRESS_STEPS: std::ffi::c_int = 1000;

/// A SQLite database behind one writer thread and a pool of reader threads; see the
/// [module docs](self).
///
/// Clones share the database. Dropping the last clone closes it in the background (readers
/// first, then the writer, so the `-wal` and `-shm` files go away) without blocking the
/// dropping thread; [`close`](Self::close) does the same and waits.
#[derive(Clone)]
#[must_use = "dropping the last clone closes the database"]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    writer: StatePool<Conn>,
    /// `None` for an in-memory database: reads run on the writer.
    readers: Option<StatePool<Conn>>,
    path: Option<PathBuf>,
    /// Sessions and query streams still alive, for `close` to end.
    live: Live,
    errors: Arc<lifecycle::ErrorCounts>,
}

impl Db {
    /// Opens (creating if needed) the database file at `path` with the defaults; see
    /// [`DbBuilder`].
    ///
    /// # Errors
    /// [`Error::Open`] if the file cannot be opened or set up (a missing directory, a file that
    /// is not a database, WAL refused, threads refused).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::builder(path).open()
    }

    /// Opens a private in-memory database (no reader threads: every call runs on the writer).
    ///
    /// # Errors
    /// [`Error::Open`] if set-up fails (threads refused, an `init` error).
    pub fn open_in_memory() -> Result<Self, Error> {
        DbBuilder::new(None).open()
    }

    /// A builder for the database file at `path`.
    pub fn builder(path: impl AsRef<Path>) -> DbBuilder {
        DbBuilder::new(Some(path.as_ref().to_owned()))
    }

    fn reader_pool(&self) -> &StatePool<Conn> {
        self.inner.readers.as_ref().unwrap_or(&self.inner.writer)
    }

    /// Runs `f` on a reader connection (opened read-only): for `SELECT`s. Returns at once, even
    /// when the readers' queue is full: the [`Call`] then waits for room when it is waited on
    /// (blocking) or awaited (without blocking the executor); use [`try_read`](Self::try_read)
    /// to be refused instead.
    ///
    /// Dropping the `Call` of a read that has not started cancels it (nobody wants its rows);
    /// [`Call::cancel`] also interrupts a read that is running.
    ///
    /// # Examples
    /// ```
    /// let db = offthread::sqlite::Db::open_in_memory()?;
    /// let two: i64 = db.read(|c| c.query_row("SELECT 1 + 1", (), |r| r.get(0))).wait()?;
    /// assert_eq!(two, 2);
    /// # Ok::<(), offthread::sqlite::Error>(())
    /// ```
    pub fn read<T, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        submit(
            self.reader_pool(),
            |c| f(c).map_err(Error::from),
            Mode::Read,
        )
    }

    /// As [`read`](Self::read), with a time limit counted from now: a read still running at the
    /// limit is interrupted (within a few thousand SQLite VM steps) and frees its reader, and
    /// one that has not started by then never runs; either way the call resolves
    /// [`Error::Timeout`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use offthread::sqlite::{Db, Error};
    /// let db = Db::open_in_memory()?;
    /// let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    /// let late = db.read_timeout(Duration::from_millis(10), move |c| c.query_row(endless, (), |r| r.get::<_, i64>(0)));
    /// assert!(matches!(late.wait(), Err(Error::Timeout)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn read_timeout<T, F>(&self, limit: Duration, f: F) -> Call<T>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = std::time::Instant::now().checked_add(limit);
        let job = move |c: &mut Connection| {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(Error::Timeout); // too late to start
            }
            let _limit = managed::ReadLimit::begin(deadline);
            match f(c) {
                Err(e) if session::is_interrupt(&e) && managed::past_read_limit() => {
                    Err(Error::Timeout)
                }
                result => result.map_err(Error::from),
            }
        };
        submit(self.reader_pool(), job, Mode::Read)
    }

    /// As [`read`](Self::read), but never waits: a full queue resolves [`Error::QueueFull`].
    pub fn try_read<T, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        submit(
            self.reader_pool(),
            |c| f(c).map_err(Error::from),
            Mode::TryRead,
        )
    }

    /// Runs `f` on the writer's connection: for anything that writes. Writes run one at a
    /// time, in submission order. Dropping the `Call` does not cancel a write.
    ///
    /// Returns at once, even when the writer's queue is full: the [`Call`] then waits for room
    /// when it is waited on or awaited (see [`read`](Self::read)). A call made inside a write
    /// (on the writer's own thread) while the writer's queue is full and waited on there
    /// resolves [`Error::WouldDeadlock`] at once: only the writer could make room.
    ///
    /// # Examples
    /// ```
    /// let db = offthread::sqlite::Db::open_in_memory()?;
    /// db.write(|c| c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")).wait()?;
    /// # Ok::<(), offthread::sqlite::Error>(())
    /// ```
    pub fn write<T, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        submit(
            &self.inner.writer,
            |c| f(c).map_err(Error::from),
            Mode::Write,
        )
    }

    /// As [`write`](Self::write), but never waits: a full queue resolves [`Error::QueueFull`].
    pub fn try_write<T, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        submit(
            &self.inner.writer,
            |c| f(c).map_err(Error::from),
            Mode::TryWrite,
        )
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction on the writer: committed if `f` returns
    /// `Ok`, rolled back if it returns `Err` or panics. `IMMEDIATE` takes the write lock up
    /// front, so a read-then-write transaction never fails half-way with `SQLITE_BUSY`.
    ///
    /// The transaction is `Db`'s to end: if `f` runs `COMMIT`, `END` or `ROLLBACK` itself, the
    /// commit is turned into a rollback, nothing of the transaction is committed, and the call
    /// resolves [`Error::TransactionEndedEarly`].
    ///
    /// # Examples
    /// ```
    /// let db = offthread::sqlite::Db::open_in_memory()?;
    /// db.execute("CREATE TABLE t (x INTEGER)", ()).wait()?;
    /// let failed = db.transaction(|tx| {
    ///     tx.execute("INSERT INTO t VALUES (1)", ())?;
    ///     tx.execute("INSERT INTO nowhere VALUES (2)", ()) // fails: no such table
    /// }).wait();
    /// assert!(failed.is_err());
    /// let n: i64 = db.query_row("SELECT count(*) FROM t", ()).wait()?;
    /// assert_eq!(n, 0); // the first insert was rolled back too
    /// # Ok::<(), offthread::sqlite::Error>(())
    /// ```
    pub fn transaction<T, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        submit(&self.inner.writer, in_transaction(f), Mode::Write)
    }

    /// Starts a write session: a transaction over several calls, which holds the writer for at
    /// most `limit` (then rolls back and resolves [`Error::Timeout`]); see [`Session`]. Returns
    /// at once, even when the writer's queue is full: the session's start then waits until one
    /// of its calls is waited on (blocking, for room) or awaited (without blocking); the session
    /// begins when the writer reaches it. Inside the session, a call cannot commit or roll
    /// back the session's transaction itself ([`Error::TransactionEndedEarly`]).
    pub fn session(&self, limit: Duration) -> Session {
        Session::start(&self.inner.writer, limit, &self.inner.live)
    }

    /// The database file's path (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path)
            .field("readers", &self.inner.readers.is_some())
            .finish_non_exhaustive()
    }
}

/// How a call is queued.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A read: waits for room (when its `Call` is waited on or awaited); cancelled if its `Call`
    /// is dropped before it starts.
    Read,
    /// A read that never waits for room.
    TryRead,
    /// A write: waits for room (when its `Call` is waited on, awaited or dropped); runs even if
    /// its `Call` is dropped.
    Write,
    /// A write that never waits for room.
    TryWrite,
}

/// A call's job, boxed while it waits for room in a full queue.
pub(crate) type BoxedJob<T> = Box<dyn FnOnce(&mut Conn) -> Reply<T> + Send>;

/// How a call's job is queued: a read is cancelled if its `Call` goes before it starts.
pub(crate) fn call_opts(read: bool) -> Opts<Conn> {
    Opts {
        cancel_on_drop: read,
        ..Opts::default()
    }
}

/// Queues `f` on `pool` (through [`run`]) without waiting: a refusal becomes a resolved
/// `Call`, and a full queue a `Call` that waits for room when it is waited on or awaited
/// (`try_` modes: [`Error::QueueFull`] at once).
fn submit<T, F>(pool: &StatePool<Conn>, f: F, mode: Mode) -> Call<T>
where
    F: FnOnce(&mut Connection) -> Reply<T> + Send + 'static,
    T: Send + 'static,
{
    let read = matches!(mode, Mode::Read | Mode::TryRead);
    let job = Stateful(move |conn: &mut Conn| run(conn, f));
    match pool
        .core()
        .submit_job(job, call_opts(read), ToHandle, Wait::Never)
    {
        Ok(handle) => Call::queued(handle),
        Err((Stateful(job), Refusal::Full)) if matches!(mode, Mode::Read | Mode::Write) => {
            Call::pending(pool.clone(), Box::new(job), read)
        }
        Err((_, why)) => Call::refused(refusal(why)),
    }
}

/// A writer's job running `f` inside a `BEGIN IMMEDIATE` transaction (see `Db::transaction`).
fn in_transaction<T, E, F>(f: F) -> impl FnOnce(&mut Connection) -> Reply<T> + Send + 'static
where
    F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    E: ClosureError,
{
    move |conn: &mut Connection| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let managed = managed::Managed::begin(None);
        let value = f(&tx); // on Err (or a panic) `tx` drops: rolled back
        if managed::ended_early(&tx, &value) {
            return Err(Error::TransactionEndedEarly);
        }
        drop(managed);
        let value = value.map_err(E::into_error)?;
        tx.commit()?;
        Ok(value)
    }
}

/// The `Db` error for a refused submission.
pub(crate) fn refusal(why: Refusal) -> Error {
    match why {
        Refusal::Full | Refusal::Timeout => Error::QueueFull,
        Refusal::ShutDown => Error::Closed,
        Refusal::WouldDeadlock => Error::WouldDeadlock,
    }
}

/// Runs a closure on a worker's connection, then makes sure the connection is clean for the
/// next call: a transaction left open (by an error path, a panic, or a closure that forgot) is
/// rolled back. A panic is passed on to the pool, which reports it.
pub(crate) fn run<T>(conn: &mut Conn, f: impl FnOnce(&mut Connection) -> Reply<T>) -> Reply<T> {
    let link = match conn {
        Ok(link) => link,
        Err(msg) => return Err(Error::Open(msg.clone())),
    };
    if let Some(file) = &link.file {
        file.check()?;
    }
    let conn = &mut link.conn;
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(conn)));
    let left_open = !conn.is_autocommit();
    if left_open {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let reply = match result {
        Ok(Ok(_)) if left_open => Err(Error::TransactionLeftOpen),
        Ok(result) => result,
        Err(payload) => {
            link.errors.count(&Error::Panicked(String::new()));
            panic::resume_unwind(payload)
        }
    };
    if let Err(e) = &reply {
        link.errors.count(e);
    }
    reply
}
