//! `DbBuilder`: the settings of a [`Db`](super::Db), and opening one — the writer first (its
//! set-up and `init`), then the readers, each connection on its own thread.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::lifecycle::ErrorCounts;
use super::{Conn, Db, Error, Inner, Link, Live, PROGRESS_STEPS, busy, file, managed};
use crate::pool::{Pool, StatePool};

/// What a set-up hook may fail with: any error (rusqlite's, or the caller's own), boxed.
type HookError = Box<dyn std::error::Error + Send + Sync>;

/// A set-up hook: `setup` on every connection, `init` on the writer's.
type Hook = Arc<dyn Fn(&mut Connection) -> Result<(), HookError> + Send + Sync>;

fn hook<F, E>(f: F) -> Hook
where
    F: Fn(&mut Connection) -> Result<(), E> + Send + Sync + 'static,
    E: Into<HookError>,
{
    Arc::new(move |c| f(c).map_err(Into::into))
}

/// Default busy timeout: how long a connection waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default prepared-statement cache per connection (rusqlite's own default is 16).
const STATEMENT_CACHE: usize = 64;
/// The most reader threads (each with its own connection and page cache) a `Db` runs.
const MAX_READERS: usize = 256;
/// Default bound of each queue (writer's, readers').
const QUEUE_CAPACITY: usize = 1024;
/// Default most readers: as many connections as a server's pool usually holds.
const MAX_READERS_DEFAULT: usize = 16;
/// Default time a reader started for a busy spell stays idle before it closes.
const READER_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Configures and opens a [`Db`]; made by [`Db::builder`].
#[must_use = "a builder does nothing until `open` is called"]
pub struct DbBuilder {
    path: Option<PathBuf>,
    readers: usize,
    max_readers: usize,
    reader_keep_alive: Duration,
    busy_timeout: Duration,
    statement_cache: usize,
    queue_capacity: usize,
    flags: OpenFlags,
    vfs: Option<String>,
    setup: Option<Hook>,
    init: Option<Hook>,
    /// The error counts the connections share (see `DbStats::errors`).
    errors: Arc<ErrorCounts>,
    priority: crate::WorkerPriority,
}

impl DbBuilder {
    pub(super) fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            readers: num_cpus::get().clamp(1, 4),
            max_readers: MAX_READERS_DEFAULT,
            reader_keep_alive: READER_KEEP_ALIVE,
            busy_timeout: BUSY_TIMEOUT,
            statement_cache: STATEMENT_CACHE,
            queue_capacity: QUEUE_CAPACITY,
            flags: OpenFlags::default(),
            vfs: None,
            setup: None,
            init: None,
            errors: Arc::default(),
            priority: crate::WorkerPriority::Normal,
        }
    }

    /// Reader threads opened up front and always kept (each with its own read-only
    /// connection). Default `min(cpus, 4)`; 0 is taken as 1; more than 256 fails
    /// [`open`](Self::open). Ignored in memory.
    pub fn readers(mut self, n: usize) -> Self {
        self.readers = n.max(1);
        self
    }

    /// The most reader threads. When every reader is busy, reads wait and none has finished
    /// for a millisecond (long reads hold every reader), the `Db` opens one more reader, up to
    /// this many, so a slow query never holds the point reads behind it for long; readers past
    /// [`readers`](Self::readers) close after [`reader_keep_alive`](Self::reader_keep_alive)
    /// idle. Default 16; below `readers` it is taken as `readers` (a fixed set); more than 256
    /// fails [`open`](Self::open). Ignored in memory.
    pub fn max_readers(mut self, n: usize) -> Self {
        self.max_readers = n;
        self
    }

    /// How long a reader opened past [`readers`](Self::readers) stays idle before it closes.
    /// Default 10 s.
    pub fn reader_keep_alive(mut self, keep_alive: Duration) -> Self {
        self.reader_keep_alive = keep_alive;
        self
    }

    /// How the OS schedules the writer and reader threads beside the application's own (see
    /// [`WorkerPriority`](crate::WorkerPriority)). Default `Normal`; a database that serves a
    /// UI thread wants `Low`, so that a call never costs the UI thread its CPU.
    pub fn worker_priority(mut self, priority: crate::WorkerPriority) -> Self {
        self.priority = priority;
        self
    }

    /// How long a connection waits for a lock held by another process before
    /// [`Error::Busy`], retrying on SQLite's own schedule (1 ms, 2 ms, 5 ms … then every
    /// 100 ms); [`DbStats::busy_retries`](super::DbStats::busy_retries) counts the retries.
    /// Default 5 s.
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

    /// Runs `setup` first on every connection — the writer's and each reader's, readers
    /// opened later included — before the built-in set-up: for what every connection needs
    /// and what must come first, such as an encryption key (`PRAGMA key`), user functions,
    /// collations, extensions, or pragmas like `cache_size`. Readers are read-only, so keep
    /// writes for [`init`](Self::init). It may fail with any error type (rusqlite's or the
    /// caller's own): on the first connections that fails [`open`](Self::open) with the error's
    /// message; on a reader opened later, that reader's calls resolve [`Error::Open`].
    ///
    /// # Examples
    /// ```
    /// use offthread::sqlite::Db;
    /// let dir = std::env::temp_dir().join(format!("offthread-doc-setup-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let db = Db::builder(dir.join("app.db"))
    ///     .setup(|c| c.pragma_update(None, "cache_size", -16_000))
    ///     .open()?;
    /// let pages: i64 = db.query_row("PRAGMA cache_size", ()).wait()?; // asked of a reader
    /// assert_eq!(pages, -16_000);
    /// db.close();
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn setup<F, E>(mut self, setup: F) -> Self
    where
        F: Fn(&mut Connection) -> Result<(), E> + Send + Sync + 'static,
        E: Into<HookError>,
    {
        self.setup = Some(hook(setup));
        self
    }

    /// Runs `init` on the writer's connection after the built-in set-up (WAL, pragmas), before
    /// the readers open: create tables, run migrations, set more pragmas. It may fail with any
    /// error type (rusqlite's or the caller's own, such as a migration crate's); an error
    /// fails [`open`](Self::open) with its message.
    pub fn init<F, E>(mut self, init: F) -> Self
    where
        F: Fn(&mut Connection) -> Result<(), E> + Send + Sync + 'static,
        E: Into<HookError>,
    {
        self.init = Some(hook(init));
        self
    }

    /// The flags the writer opens its connection with (readers take the same flags, made
    /// read-only). Default rusqlite's: read-write, create, URI names, no mutex.
    pub fn open_flags(mut self, flags: OpenFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Opens every connection through the SQLite VFS of this name (registered beforehand).
    pub fn vfs(mut self, name: impl Into<String>) -> Self {
        self.vfs = Some(name.into());
        self
    }

    /// Opens the database: the writer first (set-up and `init`), then the readers.
    ///
    /// # Errors
    /// [`Error::Open`] naming the step that failed, or saying that `readers` or
    /// `max_readers` is above 256.
    pub fn open(mut self) -> Result<Db, Error> {
        for (what, n) in [("readers", self.readers), ("max_readers", self.max_readers)] {
            if n > MAX_READERS {
                return Err(Error::Open(format!(
                    "{what}: {n} is more than the most a Db runs ({MAX_READERS})"
                )));
            }
        }
        self.max_readers = self.max_readers.max(self.readers);
        let cfg = Arc::new(self);
        let writer = {
            let writer_cfg = cfg.clone();
            start(&cfg, "offthread-sqlite-writer", 1..=1, move || {
                open_writer(&writer_cfg)
            })?
        };
        let readers = match &cfg.path {
            None => None,
            Some(_) => {
                let reader_cfg = cfg.clone();
                let n = cfg.readers..=cfg.max_readers;
                match start(&cfg, "offthread-sqlite-reader", n, move || {
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
                errors: cfg.errors.clone(),
            }),
        })
    }
}

impl fmt::Debug for DbBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbBuilder")
            .field("path", &self.path)
            .field("readers", &self.readers)
            .field("max_readers", &self.max_readers)
            .field("reader_keep_alive", &self.reader_keep_alive)
            .field("busy_timeout", &self.busy_timeout)
            .field("priority", &self.priority)
            .field("statement_cache", &self.statement_cache)
            .field("queue_capacity", &self.queue_capacity)
            .field("flags", &self.flags)
            .field("vfs", &self.vfs)
            .finish_non_exhaustive()
    }
}

/// Starts `n.start()` threads that each open a connection with `open` (more, up to `n.end()`,
/// when reads stall behind long ones), and checks every first one opened.
fn start(
    cfg: &DbBuilder,
    name: &str,
    n: std::ops::RangeInclusive<usize>,
    open: impl Fn() -> Conn + Send + Sync + 'static,
) -> Result<StatePool<Conn>, Error> {
    let writer = name.ends_with("writer");
    let mut builder = Pool::builder();
    if writer {
        // The writer: a nested wait must never open a second read-write connection.
        builder = builder.no_lending().keep_alive(Duration::MAX);
    } else {
        builder = builder
            .grow_behind_long_jobs()
            .keep_alive(cfg.reader_keep_alive);
    }
    let pool = builder
        .worker_priority(cfg.priority)
        .min_workers(*n.start())
        .max_workers(*n.end())
        .queue_capacity(cfg.queue_capacity)
        .thread_name(name)
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

/// Opens a connection with `flags` and the configured VFS (`path` `None`: in memory).
fn connect(
    cfg: &DbBuilder,
    path: Option<&std::path::Path>,
    flags: OpenFlags,
) -> rusqlite::Result<Connection> {
    let path = path.map_or(std::path::Path::new(":memory:"), |p| p);
    match &cfg.vfs {
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs.as_str()),
        None => Connection::open_with_flags(path, flags),
    }
}

/// Runs the caller's `setup` hook, if any, on a fresh connection.
fn run_setup(cfg: &DbBuilder, conn: &mut Connection, who: &str) -> Result<(), String> {
    match &cfg.setup {
        Some(setup) => setup(conn).map_err(|e| format!("{who}running setup: {e}")),
        None => Ok(()),
    }
}

/// The writer's connection: open, `setup`, then busy timeout, WAL (checked), pragmas, cache,
/// `init`.
fn open_writer(cfg: &DbBuilder) -> Conn {
    let step = |what: &str, e: rusqlite::Error| format!("{what}: {e}");
    let mut conn = match &cfg.path {
        Some(path) => connect(cfg, Some(path), cfg.flags)
            .map_err(|e| step(&format!("opening {}", path.display()), e))?,
        None => connect(cfg, None, cfg.flags).map_err(|e| step("opening in memory", e))?,
    };
    run_setup(cfg, &mut conn, "")?;
    busy::install(&conn, cfg.busy_timeout, &cfg.errors)
        .map_err(|e| step("setting the busy handler", e))?;
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
        init(&mut conn).map_err(|e| format!("running init: {e}"))?;
    }
    // The file's identity comes from the path we were given (SQLite reports no path for a
    // name that is not UTF-8), now that the file exists.
    let file = cfg.path.as_deref().and_then(file::DbFile::of);
    Ok(Link {
        conn,
        file,
        errors: cfg.errors.clone(),
    })
}

/// A reader's connection, opened read-only at the SQLite level (`SQLITE_OPEN_READONLY`): no
/// statement on it can write, whatever a closure runs (`PRAGMA query_only=OFF` included). It
/// sees the WAL through the `-wal` and `-shm` files the writer keeps open.
fn open_reader(cfg: &DbBuilder) -> Conn {
    let step = |what: &str, e: rusqlite::Error| format!("reader {what}: {e}");
    let Some(path) = &cfg.path else {
        return Err("readers need a database file".to_owned());
    };
    let flags = (cfg.flags - OpenFlags::SQLITE_OPEN_READ_WRITE - OpenFlags::SQLITE_OPEN_CREATE)
        | OpenFlags::SQLITE_OPEN_READ_ONLY;
    let mut conn = connect(cfg, Some(path), flags).map_err(|e| step("opening", e))?;
    run_setup(cfg, &mut conn, "reader ")?;
    busy::install(&conn, cfg.busy_timeout, &cfg.errors)
        .map_err(|e| step("setting the busy handler", e))?;
    conn.set_prepared_statement_cache_capacity(cfg.statement_cache);
    // Cancelling a running read (or its time limit) interrupts it: every `PROGRESS_STEPS` VM
    // steps SQLite asks.
    conn.progress_handler(PROGRESS_STEPS, Some(managed::reader_should_stop))
        .map_err(|e| step("installing the cancel check", e))?;
    Ok(Link {
        conn,
        file: None,
        errors: cfg.errors.clone(),
    })
}
