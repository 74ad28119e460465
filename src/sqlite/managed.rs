//! The transactions `Db` manages on the writer — [`Db::transaction`](super::Db::transaction)
//! and write sessions — kept whole against the closures that run inside them.
//!
//! - **Their own end.** A closure that runs `COMMIT` (or `END`) inside a managed transaction
//!   would commit half of it, and the call would still fail. The writer's commit hook turns
//!   such a commit into a rollback, and the call resolves
//!   [`Error::TransactionEndedEarly`](super::Error::TransactionEndedEarly). A `ROLLBACK` there
//!   ends the transaction too, and is reported the same way. Nothing is committed either way,
//!   and no later statement can commit on its own: the hook refuses those too until the
//!   managed transaction's call returns.
//! - **Their time limit.** A session's deadline is checked by the writer's progress handler
//!   every `PROGRESS_STEPS` virtual-machine steps, so a statement still running at the limit is
//!   interrupted there and the session rolls back on time. A read's own limit
//!   ([`Db::read_timeout`](super::Db::read_timeout)) is checked the same way, on a reader (or on
//!   the writer, in memory).
//!
//! The state is the writer thread's own (thread-locals): the hooks run on the thread that runs
//! the statement, and the writer runs one call at a time.

use std::cell::Cell;
use std::time::Instant;

use rusqlite::Connection;

thread_local! {
    /// A managed transaction is open on this thread's connection: a commit is not the
    /// closure's to make.
    static MANAGED: Cell<bool> = const { Cell::new(false) };
    /// The commit hook refused a commit while `MANAGED`.
    static REFUSED: Cell<bool> = const { Cell::new(false) };
    /// The running session's time limit, if any.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The running read's time limit, if any (`Db::read_timeout`).
    static READ_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Installs the writer's hooks. Call once, on the writer's connection.
pub(super) fn install(conn: &Connection, steps: std::ffi::c_int) -> rusqlite::Result<()> {
    conn.commit_hook(Some(|| {
        let refuse = MANAGED.get();
        if refuse {
            REFUSED.set(true);
        }
        refuse // `true` turns the commit into a rollback
    }))?;
    conn.progress_handler(steps, Some(|| past_deadline() || past_read_limit()))
}

/// A reader's progress handler: interrupts the running statement once its call was cancelled
/// or its read's time limit passed. (The flag belongs to the job, so a cancel can never reach
/// the next call on the connection — unlike `sqlite3_interrupt`, which is lost if it lands
/// between two statements.)
pub(super) fn reader_should_stop() -> bool {
    crate::is_cancelled() || past_read_limit()
}

/// `true` once the running read's time limit has passed.
pub(super) fn past_read_limit() -> bool {
    READ_DEADLINE.get().is_some_and(|d| Instant::now() >= d)
}

/// The running read's time limit, until dropped.
pub(super) struct ReadLimit(());

impl ReadLimit {
    pub(super) fn begin(deadline: Option<Instant>) -> Self {
        READ_DEADLINE.set(deadline);
        Self(())
    }
}

impl Drop for ReadLimit {
    fn drop(&mut self) {
        READ_DEADLINE.set(None);
    }
}

/// `true` once the running session's time limit has passed.
pub(super) fn past_deadline() -> bool {
    DEADLINE.get().is_some_and(|d| Instant::now() >= d)
}

/// Marks a managed transaction open on the writer (and, for a session, its deadline) until
/// dropped. Created right after the transaction's `BEGIN`.
pub(super) struct Managed(());

impl Managed {
    pub(super) fn begin(deadline: Option<Instant>) -> Self {
        MANAGED.set(true);
        REFUSED.set(false);
        DEADLINE.set(deadline);
        Self(())
    }
}

/// `true` if a closure ended the managed transaction open on `conn` itself: a commit that the
/// hook refused, or a `ROLLBACK` (back in autocommit mode though the closure succeeded). A
/// closure that failed with the transaction gone was rolled back by SQLite for its error (a
/// full disk, say): that error is the one to report.
pub(super) fn ended_early<T, E>(conn: &Connection, result: &Result<T, E>) -> bool {
    REFUSED.get() || (result.is_ok() && conn.is_autocommit())
}

impl Drop for Managed {
    fn drop(&mut self) {
        MANAGED.set(false);
        REFUSED.set(false);
        DEADLINE.set(None);
    }
}
