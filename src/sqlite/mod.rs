//! SQLite without blocking: [`Db`] runs every call on its own threads — one writer that owns
//! the only read-write connection, and a pool of readers — and hands back a [`Call`] at once.
//! (Feature `sqlite`.)
//!
//! **Why this shape.** SQLite allows one writer at a time, while readers in WAL mode never block
//! it nor each other. So `Db` keeps exactly one read-write connection on one writer thread:
//! writes queue in order and never meet `database is locked` from each other. Reads go to `R`
//! reader threads (default `min(cpus, 4)`), each with a read-only connection, all pulling from
//! **one shared bounded queue** — a slow query holds one reader, never the calls behind it.
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

mod call;
mod error;
mod file;
mod managed;
mod rows;
mod session;

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use rusqlite::{Connection, OpenFlags, Params, Transaction, TransactionBehavior};

use crate::delivery::ToHandle;
use crate::job::Stateful;
use crate::options::Opts;
use crate::pool::{Pool, StatePool};
use crate::shared::{Refusal, Wait};
use crate::stream::Cut;

pub use call::{Call, CallFuture};
pub use error::Error;
pub use rows::Rows;
pub use session::Session;

use call::Reply;

/// A worker's connection, or why it could not be opened.
pub(crate) type Conn = Result<Link, String>;

/// A worker's open connection; the writer of a file also keeps the file's identity, to refuse
/// writes once the file has been deleted or replaced (see `file.rs`).
pub(crate) struct Link {
    pub(crate) conn: Connection,
    pub(crate) file: Option<file::DbFile>,
}

/// Runs on a connection before it serves (the writer's, after the built-in set-up).
type Init = Arc<dyn Fn(&Connection) -> rusqlite::Result<()> + Send + Sync>;

/// Default busy timeout: how long a connection waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default prepared-statement cache per connection (rusqlite's own default is 16).
const STATEMENT_CACHE: usize = 64;
/// The most reader threads (each with its own connection and page cache) a `Db` runs.
const MAX_READERS: usize = 256;
/// Default bound of each queue (writer's, readers').
const QUEUE_CAPACITY: usize = 1024;
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
}

/// A database's open sessions and query streams, held weakly: `close` ends each one, so that
/// neither a session waiting for its owner's next call nor a reader waiting for a consumer
/// that never reads can hold the close up.
#[derive(Default)]
struct Live {
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    /// `close` has begun: anything added from now on is ended at once.
    closed: bool,
    sessions: Vec<Weak<session::Link>>,
    streams: Vec<Weak<dyn Cut>>,
}

/// Adds `item` to `list`, sweeping out the dead entries whenever the list would grow (so its
/// length stays within twice the live entries, at constant cost per add).
fn add_live<T: ?Sized>(list: &mut Vec<Weak<T>>, item: Weak<T>) {
    if list.len() == list.capacity() {
        list.retain(|w| w.strong_count() > 0);
    }
    list.push(item);
}

impl Live {
    fn add_session(&self, link: &Arc<session::Link>) {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            link.close();
            return;
        }
        add_live(&mut st.sessions, Arc::downgrade(link));
    }

    fn add_stream(&self, stream: Weak<dyn Cut>) {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            if let Some(stream) = stream.upgrade() {
                stream.cut();
            }
            return;
        }
        add_live(&mut st.streams, stream);
    }

    /// Ends every live session (rolled back once the calls already sent have run) and query
    /// stream (its consumer gets `Closed` after the batches already read).
    fn end_all(&self) {
        let (sessions, streams) = {
            let mut st = self.state.lock();
            st.closed = true;
            (
                std::mem::take(&mut st.sessions),
                std::mem::take(&mut st.streams),
            )
        };
        for link in sessions.iter().filter_map(Weak::upgrade) {
            link.close();
        }
        for stream in streams.iter().filter_map(Weak::upgrade) {
            stream.cut();
        }
    }
}

/// Configures and opens a [`Db`]; made by [`Db::builder`].
#[must_use = "a builder does nothing until `open` is called"]
pub struct DbBuilder {
    path: Option<PathBuf>,
    readers: usize,
    busy_timeout: Duration,
    statement_cache: usize,
    queue_capacity: usize,
    init: Option<Init>,
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

    /// Runs `f` on a reader connection (opened read-only): for `SELECT`s. Waits for room if the
    /// readers' queue is full; use [`try_read`](Self::try_read) never to wait.
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
    /// Called from inside a write (on the writer's own thread) while the writer's queue is
    /// full, it resolves [`Error::WouldDeadlock`] at once: only the writer could make room.
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
        let job = move |conn: &mut Connection| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let managed = managed::Managed::begin(None);
            let value = f(&tx); // on Err (or a panic) `tx` drops: rolled back
            if managed.ended_early(&tx, &value) {
                return Err(Error::TransactionEndedEarly);
            }
            drop(managed);
            let value = value?;
            tx.commit()?;
            Ok(value)
        };
        submit(&self.inner.writer, job, Mode::Write)
    }

    /// Starts a write session: a transaction over several calls, which holds the writer for at
    /// most `limit` (then rolls back and resolves [`Error::Timeout`]); see [`Session`]. Returns
    /// at once; the session begins when the writer reaches it. Waits for room in the writer's
    /// queue like [`write`](Self::write). Inside the session, a call cannot commit or roll
    /// back the session's transaction itself ([`Error::TransactionEndedEarly`]).
    pub fn session(&self, limit: Duration) -> Session {
        Session::start(&self.inner.writer, limit, &self.inner.live)
    }

    /// Executes one statement on the writer with owned parameters (a tuple of owned values,
    /// or `()`), through the statement cache; resolves to the number of rows changed.
    pub fn execute<P>(&self, sql: impl Into<String>, params: P) -> Call<usize>
    where
        P: Params + Send + 'static,
    {
        let sql = sql.into();
        self.write(move |c| c.prepare_cached(&sql)?.execute(params))
    }

    /// Runs a query on a reader and returns the first column of its first row
    /// ([`rusqlite::Error::QueryReturnedNoRows`] if there is none), through the statement
    /// cache, with owned parameters.
    pub fn query_row<T, P>(&self, sql: impl Into<String>, params: P) -> Call<T>
    where
        T: rusqlite::types::FromSql + Send + 'static,
        P: Params + Send + 'static,
    {
        let sql = sql.into();
        self.read(move |c| c.prepare_cached(&sql)?.query_row(params, |r| r.get(0)))
    }

    /// Streams the rows of a query from a reader, in batches of `batch_size` rows (at least 1),
    /// each row mapped by `map` on the reader; see [`Rows`]. At most two batches wait for the
    /// consumer, so a slow consumer holds the reader (and its read snapshot) but bounds
    /// memory; dropping the stream interrupts the query and frees the reader. Waits for room
    /// in the readers' queue like [`read`](Self::read).
    ///
    /// # Examples
    /// ```
    /// let db = offthread::sqlite::Db::open_in_memory()?;
    /// db.execute("CREATE TABLE t (x INTEGER)", ()).wait()?;
    /// db.write(|c| {
    ///     for i in 1..=1000 {
    ///         c.execute("INSERT INTO t VALUES (?1)", (i,))?;
    ///     }
    ///     Ok(())
    /// }).wait()?;
    /// let mut sum = 0i64;
    /// for batch in db.query_stream("SELECT x FROM t", (), 100, |row| row.get::<_, i64>(0)) {
    ///     sum += batch?.iter().sum::<i64>();
    /// }
    /// assert_eq!(sum, 500_500);
    /// # Ok::<(), offthread::sqlite::Error>(())
    /// ```
    pub fn query_stream<T, P, M>(
        &self,
        sql: impl Into<String>,
        params: P,
        batch_size: usize,
        map: M,
    ) -> Rows<T>
    where
        T: Send + 'static,
        P: Params + Send + 'static,
        M: FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        rows::start(
            self.reader_pool(),
            &self.inner.live,
            sql.into(),
            params,
            batch_size.max(1),
            map,
        )
    }

    /// The database file's path (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Closes the database: stops intake, runs the calls already queued, then closes the
    /// readers and last the writer (so SQLite checkpoints the WAL and removes the `-wal` and
    /// `-shm` files) and joins every thread. Idempotent; later calls resolve
    /// [`Error::Closed`]. Blocks until done, and always returns:
    ///
    /// - a live [`Session`] is ended: the calls already sent to it run, then its transaction
    ///   is rolled back and later calls resolve [`Error::Closed`] (commit before closing);
    /// - a live query stream ([`Rows`]) is ended: its consumer gets the batches already read
    ///   ahead, then `Err(Error::Closed)`.
    ///
    /// So neither an unread stream nor a session — not even one the closing thread holds —
    /// can hold the close up.
    pub fn close(&self) {
        self.inner.close(false);
    }

    /// As [`close`](Self::close), but calls still queued resolve [`Error::Closed`] instead of
    /// running; running calls finish.
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
    /// A read: waits for room; cancelled if its `Call` is dropped before it starts.
    Read,
    /// A read that never waits for room.
    TryRead,
    /// A write: waits for room; runs even if its `Call` is dropped.
    Write,
    /// A write that never waits for room.
    TryWrite,
}

/// Queues `f` on `pool` (through [`run`]); a refusal becomes a resolved `Call`.
fn submit<T, F>(pool: &StatePool<Conn>, f: F, mode: Mode) -> Call<T>
where
    F: FnOnce(&mut Connection) -> Reply<T> + Send + 'static,
    T: Send + 'static,
{
    let opts = Opts {
        cancel_on_drop: matches!(mode, Mode::Read | Mode::TryRead),
        ..Opts::default()
    };
    let wait = match mode {
        Mode::TryRead | Mode::TryWrite => Wait::Never,
        Mode::Read | Mode::Write => Wait::Until(None),
    };
    let job = Stateful(move |conn: &mut Conn| run(conn, f));
    match pool.core().submit_job(job, opts, ToHandle, wait) {
        Ok(handle) => Call::queued(handle),
        Err((_, why)) => Call::refused(refusal(why)),
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
    match result {
        Ok(Ok(_)) if left_open => Err(Error::TransactionLeftOpen),
        Ok(result) => result,
        Err(payload) => panic::resume_unwind(payload),
    }
}

impl DbBuilder {
    fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            readers: num_cpus::get().clamp(1, 4),
            busy_timeout: BUSY_TIMEOUT,
            statement_cache: STATEMENT_CACHE,
            queue_capacity: QUEUE_CAPACITY,
            init: None,
        }
    }

    /// Reader threads (each with its own read-only connection). Default `min(cpus, 4)`;
    /// 0 is taken as 1; more than 256 fails [`open`](Self::open). Ignored in memory.
    pub fn readers(mut self, n: usize) -> Self {
        self.readers = n.max(1);
        self
    }

    /// How long a connection waits for a lock held by another process before
    /// [`Error::Busy`]. Default 5 s.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Prepared statements cached per connection. Default 64.
    pub fn statement_cache(mut self, n: usize) -> Self {
        self.statement_cache = n;
        self
    }

    /// The bound of the writer's queue and of the readers' queue. Default 1024; 0 is taken
    /// as 1.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }

    /// Runs `init` on the writer's connection after the built-in set-up (WAL, pragmas), before
    /// the readers open: create tables, set more pragmas. An error fails [`open`](Self::open).
    pub fn init(
        mut self,
        init: impl Fn(&Connection) -> rusqlite::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.init = Some(Arc::new(init));
        self
    }

    /// Opens the database: the writer first (set-up and `init`), then the readers.
    ///
    /// # Errors
    /// [`Error::Open`] naming the step that failed, or saying that `readers` is above
    /// 256.
    pub fn open(self) -> Result<Db, Error> {
        if self.readers > MAX_READERS {
            return Err(Error::Open(format!(
                "readers: {} is more than the most a Db runs ({MAX_READERS})",
                self.readers
            )));
        }
        let cfg = Arc::new(self);
        let writer = {
            let writer_cfg = cfg.clone();
            start(&cfg, "offthread-sqlite-writer", 1, move || {
                open_writer(&writer_cfg)
            })?
        };
        let readers = match &cfg.path {
            None => None,
            Some(_) => {
                let reader_cfg = cfg.clone();
                match start(&cfg, "offthread-sqlite-reader", cfg.readers, move || {
                    open_reader(&reader_cfg)
                }) {
                    Ok(pool) => Some(pool),
                    Err(e) => {
                        writer.shutdown();
                        return Err(e);
                    }
                }
            }
        };
        Ok(Db {
            inner: Arc::new(Inner {
                writer,
                readers,
                path: cfg.path.clone(),
                live: Live::default(),
            }),
        })
    }
}

impl fmt::Debug for DbBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbBuilder")
            .field("path", &self.path)
            .field("readers", &self.readers)
            .field("busy_timeout", &self.busy_timeout)
            .field("statement_cache", &self.statement_cache)
            .field("queue_capacity", &self.queue_capacity)
            .finish_non_exhaustive()
    }
}

/// Starts `n` threads that each open a connection with `open`, and checks every one opened.
fn start(
    cfg: &DbBuilder,
    name: &str,
    n: usize,
    open: impl Fn() -> Conn + Send + Sync + 'static,
) -> Result<StatePool<Conn>, Error> {
    let writer = name.ends_with("writer");
    let mut builder = Pool::builder();
    if writer {
        // The writer: a nested wait must never open a second read-write connection.
        builder = builder.no_lending();
    }
    let pool = builder
        .min_workers(n)
        .max_workers(n)
        .queue_capacity(cfg.queue_capacity)
        .thread_name(name)
        .keep_alive(Duration::MAX)
        .build_with_state(open)
        .map_err(|e| Error::Open(e.to_string()))?;
    let failures: Vec<String> = pool
        .broadcast(|conn: &mut Conn| conn.as_ref().err().cloned())
        .into_iter()
        .filter_map(|h| h.wait().ok().flatten())
        .collect();
    if let Some(first) = failures.into_iter().next() {
        pool.shutdown();
        return Err(Error::Open(first));
    }
    Ok(pool)
}

/// The writer's connection: open, then busy timeout, WAL (checked), pragmas, cache, `init`.
fn open_writer(cfg: &DbBuilder) -> Conn {
    let step = |what: &str, e: rusqlite::Error| format!("{what}: {e}");
    let conn = match &cfg.path {
        Some(path) => {
            Connection::open(path).map_err(|e| step(&format!("opening {}", path.display()), e))?
        }
        None => Connection::open_in_memory().map_err(|e| step("opening in memory", e))?,
    };
    conn.busy_timeout(cfg.busy_timeout)
        .map_err(|e| step("setting busy_timeout", e))?;
    if cfg.path.is_some() {
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", (), |r| r.get(0))
            .map_err(|e| step("setting journal_mode=WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("journal_mode=WAL was refused (mode is {mode})"));
        }
    }
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
        .map_err(|e| step("setting synchronous and foreign_keys", e))?;
    conn.set_prepared_statement_cache_capacity(cfg.statement_cache);
    managed::install(&conn, PROGRESS_STEPS).map_err(|e| step("installing hooks", e))?;
    if let Some(init) = &cfg.init {
        init(&conn).map_err(|e| step("running init", e))?;
    }
    // The file's identity comes from the path we were given (SQLite reports no path for a
    // name that is not UTF-8), now that the file exists.
    let file = cfg.path.as_deref().and_then(file::DbFile::of);
    Ok(Link { conn, file })
}

/// A reader's connection, opened read-only at the SQLite level (`SQLITE_OPEN_READONLY`): no
/// statement on it can write, whatever a closure runs (`PRAGMA query_only=OFF` included). It
/// sees the WAL through the `-wal` and `-shm` files the writer keeps open.
fn open_reader(cfg: &DbBuilder) -> Conn {
    let step = |what: &str, e: rusqlite::Error| format!("reader {what}: {e}");
    let Some(path) = &cfg.path else {
        return Err("readers need a database file".to_owned());
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| step("opening", e))?;
    conn.busy_timeout(cfg.busy_timeout)
        .map_err(|e| step("setting busy_timeout", e))?;
    conn.set_prepared_statement_cache_capacity(cfg.statement_cache);
    // Cancelling a running read interrupts it: every `PROGRESS_STEPS` VM steps SQLite asks
    // whether the job this reader is running was cancelled. The flag belongs to the job, so a
    // cancel can never reach the next job on this connection — unlike `sqlite3_interrupt`,
    // which is lost if it lands between two statements.
    conn.progress_handler(PROGRESS_STEPS, Some(crate::is_cancelled))
        .map_err(|e| step("installing the cancel check", e))?;
    Ok(Link { conn, file: None })
}
