//! `sqlite::Error`: every way a database call can fail, folded into one type so one `?` does.

use std::error::Error as StdError;
use std::fmt;

use crate::error::JobError;

/// Any error a closure of its own may fail with (see [`Db::read_any`](super::Db::read_any)):
/// `?` turns rusqlite's errors, I/O errors and the application's own into it.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a database call produced no value.
///
/// One type for every failure, so `db.read(..).wait()?` (or `.await?`) is the whole story.
/// SQLite's own errors keep their `rusqlite::Error` (and its extended code); the ones a caller
/// usually handles apart — busy, interrupted — get their own variants.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// SQLite (or rusqlite) refused: bad SQL, a constraint, a type mismatch, no rows, …
    Sqlite(rusqlite::Error),
    /// The database stayed locked by another process for longer than the busy timeout.
    Busy(rusqlite::Error),
    /// A running query was interrupted because its call was cancelled. (A session call still
    /// running at the session's limit resolves [`Timeout`](Self::Timeout) instead.)
    Interrupted,
    /// The closure panicked; this is the message. Any open transaction was rolled back and
    /// the connection goes on serving.
    Panicked(String),
    /// The call was cancelled before it started.
    Cancelled,
    /// The database was closed (or is closing) before the call could run.
    Closed,
    /// `try_` call: the queue was full.
    QueueFull,
    /// A write session passed its time limit (its transaction was rolled back), or a read
    /// passed the limit given to [`Db::read_timeout`](super::Db::read_timeout).
    Timeout,
    /// A write session had already ended (committed, rolled back, or rolled back after a
    /// panic in one of its calls) when this call reached it.
    SessionEnded,
    /// A call made from inside the writer would have waited on the writer itself — on another
    /// write, a session call, a query stream of an in-memory database, or room in the
    /// writer's full queue — and the writer is the one thread that could end that wait, so it
    /// was refused at once. (A write already queued still runs, after this one.)
    WouldDeadlock,
    /// The closure returned with a transaction still open (a `BEGIN` without `COMMIT`); it was
    /// rolled back before the next call.
    TransactionLeftOpen,
    /// Inside [`Db::transaction`](super::Db::transaction) or a write session, the closure ran
    /// `COMMIT`, `END` or `ROLLBACK` on the transaction `Db` manages. Such a commit is turned
    /// into a rollback, so nothing of the transaction is committed; a session ends with it.
    TransactionEndedEarly,
    /// The database could not be opened or set up: the message says which step failed.
    Open(String),
    /// The closure's own error, kept whole (see [`Db::read_any`](super::Db::read_any)): get it
    /// back with [`downcast`](Self::downcast) or [`downcast_ref`](Self::downcast_ref).
    Other(BoxError),
}

impl Error {
    /// `true` for [`Error::Busy`].
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Busy(_))
    }

    /// The underlying rusqlite error, for [`Sqlite`](Self::Sqlite) and [`Busy`](Self::Busy).
    pub fn as_rusqlite(&self) -> Option<&rusqlite::Error> {
        match self {
            Self::Sqlite(e) | Self::Busy(e) => Some(e),
            _ => None,
        }
    }

    /// The SQLite result code, when SQLite reported one.
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        self.as_rusqlite()
            .and_then(rusqlite::Error::sqlite_error_code)
    }
}

impl Error {
    /// Folds a closure's own error into an `Error`: a rusqlite error (or an `Error`) inside
    /// the box is classified as if it had been returned bare; anything else is kept whole as
    /// [`Other`](Self::Other).
    pub(crate) fn from_boxed(e: BoxError) -> Self {
        match e.downcast::<rusqlite::Error>() {
            Ok(e) => Self::from(*e),
            Err(e) => match e.downcast::<Self>() {
                Ok(e) => *e,
                Err(e) => Self::Other(e),
            },
        }
    }

    /// The closure's own error, if it is an `E` ([`Other`](Self::Other) holding an `E`).
    ///
    /// # Examples
    /// ```
    /// use offthread::sqlite::Db;
    /// #[derive(Debug)]
    /// struct Overdrawn;
    /// impl std::fmt::Display for Overdrawn {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("overdrawn")
    ///     }
    /// }
    /// impl std::error::Error for Overdrawn {}
    ///
    /// let db = Db::open_in_memory()?;
    /// let failed = db.read_any(|_| Err::<(), _>(Overdrawn.into())).wait().unwrap_err();
    /// assert!(failed.downcast_ref::<Overdrawn>().is_some());
    /// # Ok::<(), offthread::sqlite::Error>(())
    /// ```
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        match self {
            Self::Other(e) => e.downcast_ref(),
            _ => None,
        }
    }

    /// The closure's own error, if it is an `E`.
    ///
    /// # Errors
    /// The `Error` back, unchanged, when it holds no `E`.
    pub fn downcast<E: StdError + 'static>(self) -> Result<E, Self> {
        match self {
            Self::Other(e) => e.downcast().map(|e| *e).map_err(Self::Other),
            other => Err(other),
        }
    }
}

/// What a closure may fail with: rusqlite's error, or any error at all ([`BoxError`]).
pub(crate) trait ClosureError {
    fn into_error(self) -> Error;
}

impl ClosureError for rusqlite::Error {
    fn into_error(self) -> Error {
        Error::from(self)
    }
}

impl ClosureError for BoxError {
    fn into_error(self) -> Error {
        Error::from_boxed(self)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Self::Busy(e)
            }
            Some(rusqlite::ErrorCode::OperationInterrupted) => Self::Interrupted,
            _ => Self::Sqlite(e),
        }
    }
}

impl From<JobError> for Error {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Panicked(msg) => Self::Panicked(msg),
            JobError::Cancelled | JobError::Expired => Self::Cancelled,
            JobError::ShutDown => Self::Closed,
            JobError::WouldDeadlock => Self::WouldDeadlock,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(e) => write!(f, "sqlite: {e}"),
            Self::Busy(e) => write!(f, "database busy: {e}"),
            Self::Interrupted => f.write_str("query interrupted (its call was cancelled)"),
            Self::Panicked(msg) => write!(f, "database closure panicked: {msg}"),
            Self::Cancelled => f.write_str("database call cancelled before it started"),
            Self::Closed => f.write_str("database is closed"),
            Self::QueueFull => f.write_str("database queue is full"),
            Self::Timeout => f.write_str("time limit passed (a session is rolled back)"),
            Self::WouldDeadlock => f.write_str(
                "a call from inside the writer waited on the writer itself; refused at once",
            ),
            Self::SessionEnded => f.write_str("write session had already ended"),
            Self::TransactionLeftOpen => {
                f.write_str("the closure left a transaction open; it was rolled back")
            }
            Self::TransactionEndedEarly => f.write_str(
                "the closure committed or rolled back a managed transaction; nothing was committed",
            ),
            Self::Open(msg) => write!(f, "could not open the database: {msg}"),
            Self::Other(e) => e.fmt(f),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Other(e) => e.source(), // transparent: `Display` is the closure error's own
            _ => self.as_rusqlite().map(|e| e as _),
        }
    }
}
