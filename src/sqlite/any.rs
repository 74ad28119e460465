//! The `_any` calls of [`Db`]: closures that may fail with any error — rusqlite's, I/O's, the
//! application's own — kept whole in [`Error::Other`](super::Error::Other).

use rusqlite::{Connection, Transaction};

use super::error::ClosureError;
use super::{BoxError, Call, Db, Mode, in_transaction, submit};

impl Db {
    /// As [`read`](Self::read), for a closure that may fail with any error: `?` works on
    /// rusqlite's errors and on any other `std::error::Error + Send + Sync + 'static`. A
    /// rusqlite error resolves as it would from `read` (so [`Error::Busy`](super::Error::Busy)
    /// and [`Error::Interrupted`](super::Error::Interrupted) keep their meaning); any other
    /// resolves [`Error::Other`](super::Error::Other), from which
    /// [`Error::downcast`](super::Error::downcast) gives it back.
    ///
    /// # Examples
    /// ```
    /// use offthread::sqlite::Db;
    /// let db = Db::open_in_memory()?;
    /// let parsed = db.read_any(|c| {
    ///     let text: String = c.query_row("SELECT '42'", (), |r| r.get(0))?;
    ///     Ok(text.parse::<u32>()?) // a ParseIntError on bad text
    /// });
    /// assert_eq!(parsed.wait()?, 42);
    ///
    /// let bad = db.read_any(|c| {
    ///     let text: String = c.query_row("SELECT 'x'", (), |r| r.get(0))?;
    ///     Ok(text.parse::<u32>()?)
    /// });
    /// let err = bad.wait().unwrap_err();
    /// assert!(err.downcast_ref::<std::num::ParseIntError>().is_some());
    /// # Ok::<(), offthread::sqlite::Error>(())
    /// ```
    pub fn read_any<T, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&Connection) -> Result<T, BoxError> + Send + 'static,
        T: Send + 'static,
    {
        submit(
            self.reader_pool(),
            |c| f(c).map_err(ClosureError::into_error),
            Mode::Read,
        )
    }

    /// As [`write`](Self::write), for a closure that may fail with any error (see
    /// [`read_any`](Self::read_any)).
    pub fn write_any<T, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&mut Connection) -> Result<T, BoxError> + Send + 'static,
        T: Send + 'static,
    {
        submit(
            &self.inner.writer,
            |c| f(c).map_err(ClosureError::into_error),
            Mode::Write,
        )
    }

    /// As [`transaction`](Self::transaction), for a closure that may fail with any error (see
    /// [`read_any`](Self::read_any)): an `Err` of any kind rolls the transaction back, so an
    /// application's own check can refuse a change half-way through it.
    ///
    /// # Examples
    /// ```
    /// use offthread::sqlite::Db;
    /// #[derive(Debug, PartialEq)]
    /// struct Overdrawn(i64);
    /// impl std::fmt::Display for Overdrawn {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         write!(f, "balance would be {}", self.0)
    ///     }
    /// }
    /// impl std::error::Error for Overdrawn {}
    ///
    /// let db = Db::open_in_memory()?;
    /// db.execute("CREATE TABLE acct (balance INTEGER)", ()).wait()?;
    /// db.execute("INSERT INTO acct VALUES (10)", ()).wait()?;
    /// let withdraw = |amount: i64| {
    ///     db.transaction_any(move |tx| {
    ///         tx.execute("UPDATE acct SET balance = balance - ?1", (amount,))?;
    ///         let left: i64 = tx.query_row("SELECT balance FROM acct", (), |r| r.get(0))?;
    ///         if left < 0 {
    ///             return Err(Overdrawn(left).into()); // rolls the update back
    ///         }
    ///         Ok(left)
    ///     })
    /// };
    /// assert_eq!(withdraw(4).wait()?, 6);
    /// let refused = withdraw(7).wait().unwrap_err();
    /// assert_eq!(refused.downcast::<Overdrawn>().ok(), Some(Overdrawn(-1)));
    /// assert_eq!(db.query_row::<i64, _>("SELECT balance FROM acct", ()).wait()?, 6);
    /// # Ok::<(), offthread::sqlite::Error>(())
    /// ```
    pub fn transaction_any<T, F>(&self, f: F) -> Call<T>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, BoxError> + Send + 'static,
        T: Send + 'static,
    {
        submit(&self.inner.writer, in_transaction(f), Mode::Write)
    }
}
