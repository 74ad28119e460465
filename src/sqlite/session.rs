//! `Session`: a write transaction that spans several calls, holding the writer for at most a
//! time limit.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::{Connection, Params};

use super::call::{Call, Pending, Reply};
use super::error::ClosureError;
use super::start::Start;
use super::{BoxError, Conn, Error, Live, managed};
use super::{BoxedJob, call_opts};
use crate::delivery::ToHandle;
use crate::engine::{Refusal, Wait};
use crate::handle::detached;
use crate::job::{Resolver, Stateful, panic_message};
use crate::pool::StatePool;

/// Calls that may wait in one session before `run` refuses with [`Error::QueueFull`].
const SESSION_QUEUE: usize = 256;

/// A session call: run on the connection (`Ok`), or told why it will not run (`Err`). Returns
/// `true` if the session must end, rolled back: the call panicked, or it ended the transaction
/// itself (see `managed.rs`).
type SessionCall = Box<dyn FnOnce(Result<&Connection, Error>) -> bool + Send>;

/// One message to the session's job on the writer.
enum Msg {
    /// Run a call.
    Run(SessionCall),
    /// Commit (`true`) or roll back, and reply.
    End(bool, Resolver<Reply<()>>),
    /// The database is closing: look at `Link::closing` once the calls sent so far have run.
    Wake,
}

/// Why a session ended, for the calls that come after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Committed,
    RolledBack,
    Timeout,
    Closed,
    /// The database file was deleted or replaced before the session began.
    Moved,
    /// Started from inside the writer while the writer's queue was full.
    WouldDeadlock,
}

impl Ended {
    fn error(self) -> Error {
        match self {
            Self::Timeout => Error::Timeout,
            Self::RolledBack | Self::Committed => Error::SessionEnded,
            Self::Closed => Error::Closed,
            Self::Moved => super::file::moved("of this Db"),
            Self::WouldDeadlock => Error::WouldDeadlock,
        }
    }
}

/// A write transaction over several calls, made by [`Db::session`](super::Db::session).
///
/// The session's job takes the writer, runs `BEGIN IMMEDIATE`, and then runs the session's
/// calls in order, inside that one transaction, until [`commit`](Self::commit) or
/// [`rollback`](Self::rollback). While it lasts no other write runs, so it has a **time
/// limit**: past it, the transaction is rolled back, the writer moves on, and the session's
/// calls resolve [`Error::Timeout`] — even while calls keep coming (the clock is read before
/// each), and a statement still running at the limit is interrupted there. Dropping a session
/// without committing rolls it back; closing its database ends it too. A
/// call that panics rolls the whole session back ([`Error::Panicked`] for that call,
/// [`Error::SessionEnded`] for the later ones). An error returned by a call does not end the
/// session: decide yourself whether to go on, commit or roll back.
///
/// Every method returns at once with a [`Call`]; none blocks.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let db = offthread::sqlite::Db::open_in_memory()?;
/// db.execute("CREATE TABLE acct (id INTEGER PRIMARY KEY, balance INTEGER)", ()).wait()?;
/// db.execute("INSERT INTO acct VALUES (1, 100), (2, 0)", ()).wait()?;
///
/// let s = db.session(Duration::from_secs(5));
/// let balance: i64 = s.run(|c| c.query_row("SELECT balance FROM acct WHERE id = 1", (), |r| r.get(0))).wait()?;
/// // ... decide something on the caller's side, then go on in the same transaction:
/// s.execute("UPDATE acct SET balance = balance - ?1 WHERE id = 1", (balance / 2,)).wait()?;
/// s.execute("UPDATE acct SET balance = balance + ?1 WHERE id = 2", (balance / 2,)).wait()?;
/// s.commit().wait()?;
/// let moved: i64 = db.query_row("SELECT balance FROM acct WHERE id = 2", ()).wait()?;
/// assert_eq!(moved, 50);
/// # Ok::<(), offthread::sqlite::Error>(())
/// ```
#[must_use = "dropping a session rolls it back; `commit` it to keep its writes"]
pub struct Session {
    /// The way to the session's job; `None` once committed or rolled back.
    link: Option<Arc<Link>>,
    /// The writer pool's identity: a call's wait on the writer's own thread is refused.
    writer: usize,
    /// The session's job, while it waits for room in the writer's queue.
    start: Option<Arc<Start>>,
}

/// What a session shares with its job and with its database (which holds it weakly, to end
/// the session when the database closes). Only the `Session` holds it strongly: dropping the
/// session drops the sender, and the job sees the session gone.
pub(super) struct Link {
    tx: SyncSender<Msg>,
    /// Why the session ended, once it has.
    ended: Arc<Mutex<Option<Ended>>>,
    /// The database is closing: the job rolls back once the calls sent so far have run.
    closing: Arc<AtomicBool>,
}

impl Link {
    /// Ends the session because its database is closing (see `Db::close`): calls already
    /// sent still run, then the transaction is rolled back and later calls resolve `Closed`.
    pub(super) fn close(&self) {
        // ORDERING: Release pairs with the job's Acquire: it sees the flag after the wake.
        self.closing.store(true, Ordering::Release);
        // A full channel needs no wake: the job has calls to run and looks at the flag after.
        let _ = self.tx.try_send(Msg::Wake);
    }
}

impl Session {
    /// Queues the session's job on the writer (see `Db::session`), and registers the session
    /// with its database's `live` list, so a close can end it.
    pub(super) fn start(writer: &StatePool<Conn>, limit: Duration, live: &Live) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Msg>(SESSION_QUEUE);
        let ended = Arc::new(Mutex::new(None));
        let closing = Arc::new(AtomicBool::new(false));
        let (job_ended, job_closing) = (ended.clone(), closing.clone());
        let job = move |conn: &mut Conn| {
            let why = serve(conn, &rx, limit, &job_closing);
            *job_ended.lock() = Some(why);
            // No call is sent after this (see `send`); those already waiting will not run:
            // tell each why.
            while let Ok(msg) = rx.try_recv() {
                refuse(msg, why);
            }
        };
        // Never waits: with the writer's queue full, the job waits in `start` until one of
        // the session's calls is waited on or awaited.
        let mut start = None;
        match writer
            .core()
            .submit_job(Stateful(job), call_opts(false), ToHandle, Wait::Never)
        {
            // The job's own handle is not needed: its calls and `ended` report everything.
            Ok(_detached) => {}
            Err((Stateful(job), Refusal::Full)) => {
                let job: BoxedJob<()> = Box::new(move |conn| {
                    job(conn);
                    Ok(())
                });
                start = Some(Arc::new(Start::new(Pending::session_start(
                    writer.clone(),
                    job,
                ))));
            }
            Err((_, why)) => {
                *ended.lock() = Some(match why {
                    Refusal::WouldDeadlock => Ended::WouldDeadlock,
                    _ => Ended::Closed,
                });
            }
        }
        let link = Arc::new(Link { tx, ended, closing });
        live.add_session(&link);
        Self {
            link: Some(link),
            writer: writer.core().id(),
            start,
        }
    }

    /// Runs `f` inside the session's transaction, after the calls before it.
    ///
    /// Resolves [`Error::QueueFull`] if 256 calls already wait in the session, and
    /// [`Error::Timeout`] / [`Error::SessionEnded`] / [`Error::Closed`] once it has ended.
    pub fn run<T, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.send_call(f)
    }

    /// As [`run`](Self::run), for a closure that may fail with any error, as in
    /// [`Db::read_any`](super::Db::read_any). The session goes on after an `Err`: end it with
    /// [`rollback`](Self::rollback) when the error means the transaction must not commit.
    pub fn run_any<T, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&Connection) -> Result<T, BoxError> + Send + 'static,
        T: Send + 'static,
    {
        self.send_call(f)
    }

    fn send_call<T, E, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        E: ClosureError,
        T: Send + 'static,
    {
        let (reply, handle) = detached(self.writer);
        let msg = Msg::Run(Box::new(move |conn| {
            let (result, end) = match conn {
                Err(e) => (Err(e), false),
                Ok(c) => match panic::catch_unwind(AssertUnwindSafe(|| f(c))) {
                    // The call committed or rolled back the session's transaction itself.
                    Ok(r) if managed::ended_early(c, &r) => {
                        (Err(Error::TransactionEndedEarly), true)
                    }
                    Ok(r) => match r.map_err(E::into_error) {
                        // Interrupted by the progress handler at the session's limit.
                        Err(Error::Interrupted) if managed::past_deadline() => {
                            (Err(Error::Timeout), false)
                        }
                        // Whatever the result, a transaction SQLite rolled back (a full disk,
                        // say) ends the session.
                        r => (r, c.is_autocommit()),
                    },
                    Err(p) => (Err(Error::Panicked(panic_message(p))), true),
                },
            };
            reply.send(Ok(result));
            end
        }));
        match self.send(msg) {
            Ok(()) => self.call(handle),
            Err(e) => Call::refused(e),
        }
    }

    /// Executes one statement in the session, with owned parameters; resolves to the rows
    /// changed.
    pub fn execute<P>(&self, sql: impl Into<String>, params: P) -> Call<usize>
    where
        P: Params + Send + 'static,
    {
        let sql = sql.into();
        self.run(move |c| c.prepare_cached(&sql)?.execute(params))
    }

    /// Commits the session's transaction (after its queued calls) and ends it.
    pub fn commit(mut self) -> Call<()> {
        self.end(true)
    }

    /// Rolls the session's transaction back (after its queued calls) and ends it.
    pub fn rollback(mut self) -> Call<()> {
        self.end(false)
    }

    fn end(&mut self, commit: bool) -> Call<()> {
        let (reply, handle) = detached(self.writer);
        let result = self.send(Msg::End(commit, reply));
        self.link = None;
        match result {
            Ok(()) => self.call(handle),
            Err(e) => Call::refused(e),
        }
    }

    /// The `Call` of a message sent: behind the session's start while that waits for room.
    fn call<T: Send + 'static>(&self, reply: crate::Handle<Reply<T>>) -> Call<T> {
        match &self.start {
            Some(start) => Call::behind(start.clone(), reply),
            None => Call::queued(reply),
        }
    }

    fn send(&self, msg: Msg) -> Result<(), Error> {
        let Some(link) = &self.link else {
            return Err(Error::SessionEnded);
        };
        // Sent under the `ended` lock: the job sets `ended` under it before it drains the
        // channel, so every message is either drained (and told why) or refused here.
        let ended = link.ended.lock();
        if let Some(why) = *ended {
            return Err(why.error());
        }
        match link.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Error::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(ended.unwrap_or(Ended::Closed).error()),
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ended = self.link.as_ref().and_then(|l| *l.ended.lock());
        f.debug_struct("Session")
            .field("ended", &ended)
            .finish_non_exhaustive()
    }
}

/// The session's job: `BEGIN IMMEDIATE`, then its calls until it ends. Returns why it ended;
/// the transaction is closed (committed or rolled back) by then.
/// The session's job on the writer: `BEGIN IMMEDIATE`, then the calls in order, until the
/// session commits, rolls back, passes its limit, is dropped, or its database closes.
fn serve(
    conn: &mut Conn,
    rx: &mpsc::Receiver<Msg>,
    limit: Duration,
    closing: &AtomicBool,
) -> Ended {
    let Ok(link) = conn else {
        return Ended::Closed;
    };
    // ORDERING: Acquire pairs with `Link::close`.
    if closing.load(Ordering::Acquire) {
        return Ended::Closed;
    }
    let file = link.file.as_ref();
    if file.is_some_and(|f| f.check().is_err()) {
        return Ended::Moved;
    }
    let c = &link.conn;
    if c.execute_batch("BEGIN IMMEDIATE").is_err() {
        return Ended::RolledBack;
    }
    let deadline = Instant::now().checked_add(limit);
    // From here the transaction is managed: a commit inside a call is refused, and a
    // statement still running at the deadline is interrupted.
    let managed = managed::Managed::begin(deadline);
    let rollback = |c: &Connection| {
        let _ = c.execute_batch("ROLLBACK");
    };
    loop {
        // Calls already sent run first; a close ends the session once the channel is empty.
        let msg = match rx.try_recv() {
            Ok(msg) => Ok(msg),
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            // ORDERING: Acquire pairs with `Link::close`.
            Err(TryRecvError::Empty) if closing.load(Ordering::Acquire) => {
                rollback(c);
                return Ended::Closed;
            }
            Err(TryRecvError::Empty) => match deadline {
                Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            },
        };
        // A session kept busy still ends at its limit: the clock is read before every call.
        let late = managed::past_deadline();
        match msg {
            Ok(Msg::Wake) => {}
            Ok(Msg::Run(call)) if late => {
                call(Err(Error::Timeout));
                rollback(c);
                return Ended::Timeout;
            }
            Ok(Msg::Run(call)) => {
                if call(Ok(c)) {
                    rollback(c);
                    return Ended::RolledBack;
                }
            }
            Ok(Msg::End(_, reply)) if late => {
                reply.send(Ok(Err(Error::Timeout)));
                rollback(c);
                return Ended::Timeout;
            }
            Ok(Msg::End(commit, reply)) => {
                drop(managed); // our own COMMIT is no closure's
                let result = if commit {
                    // A commit into a deleted file would be lost: refuse it (rolled back below).
                    file.map_or(Ok(()), |f| f.check())
                        .and_then(|()| c.execute_batch("COMMIT").map_err(Error::from))
                } else {
                    c.execute_batch("ROLLBACK").map_err(Error::from)
                };
                if !c.is_autocommit() {
                    rollback(c); // a failed COMMIT leaves the transaction open
                }
                reply.send(Ok(result));
                return if commit {
                    Ended::Committed
                } else {
                    Ended::RolledBack
                };
            }
            Err(RecvTimeoutError::Timeout) => {
                rollback(c);
                return Ended::Timeout;
            }
            Err(RecvTimeoutError::Disconnected) => {
                rollback(c); // dropped without commit
                return Ended::RolledBack;
            }
        }
    }
}

/// `true` for SQLite's "interrupted" error.
pub(super) fn is_interrupt(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

fn refuse(msg: Msg, why: Ended) {
    match msg {
        Msg::Run(call) => {
            call(Err(why.error()));
        }
        Msg::End(_, reply) => {
            reply.send(Ok(Err(why.error())));
        }
        Msg::Wake => {}
    }
}
