//! The query helpers of [`Db`]: one statement with owned parameters, through the statement
//! cache — `execute` on the writer; `query_row`, `query_all`, `query_opt` and the streamed
//! `query_stream` on a reader.

use rusqlite::Params;

use super::{Call, Db, FromRow, Rows, rows};

impl Db {
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

    /// Runs a query on a reader and returns every row, each read as a `T` (a column's value
    /// or a tuple of columns, see [`FromRow`]), through the statement cache, with owned
    /// parameters. For results too large to hold at once, see
    /// [`query_stream`](Self::query_stream).
    ///
    /// # Examples
    /// ```
    /// let db = offthread::sqlite::Db::open_in_memory()?;
    /// db.write(|c| c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3);")).wait()?;
    /// let odd: Vec<i64> = db.query_all("SELECT x FROM t WHERE x % 2 = ?1 ORDER BY x", (1,)).wait()?;
    /// assert_eq!(odd, [1, 3]);
    /// # Ok::<(), offthread::sqlite::Error>(())
    /// ```
    pub fn query_all<T, P>(&self, sql: impl Into<String>, params: P) -> Call<Vec<T>>
    where
        T: FromRow,
        P: Params + Send + 'static,
    {
        let sql = sql.into();
        self.read(move |c| {
            c.prepare_cached(&sql)?
                .query_map(params, |r| T::from_row(r))?
                .collect()
        })
    }

    /// Runs a query on a reader and returns its first row read as a `T` (see [`FromRow`]), or
    /// `None` if it returns no row, through the statement cache, with owned parameters.
    ///
    /// # Examples
    /// ```
    /// let db = offthread::sqlite::Db::open_in_memory()?;
    /// db.write(|c| c.execute_batch("CREATE TABLE users (id, name); INSERT INTO users VALUES (1, 'ada');")).wait()?;
    /// let sql = "SELECT id, name FROM users WHERE id = ?1";
    /// let ada: Option<(i64, String)> = db.query_opt(sql, (1,)).wait()?;
    /// let nobody: Option<(i64, String)> = db.query_opt(sql, (2,)).wait()?;
    /// assert_eq!((ada, nobody), (Some((1, "ada".to_owned())), None));
    /// # Ok::<(), offthread::sqlite::Error>(())
    /// ```
    pub fn query_opt<T, P>(&self, sql: impl Into<String>, params: P) -> Call<Option<T>>
    where
        T: FromRow,
        P: Params + Send + 'static,
    {
        let sql = sql.into();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(params)?;
            rows.next()?.map(T::from_row).transpose()
        })
    }

    /// Streams the rows of a query from a reader, in batches of `batch_size` rows (at least 1),
    /// each row mapped by `map` on the reader; see [`Rows`]. At most two batches wait for the
    /// consumer, so a slow consumer holds the reader (and its read snapshot) but bounds
    /// memory; dropping the stream interrupts the query and frees the reader. Returns at once,
    /// even when the readers' queue is full: the query then waits for room when its rows are
    /// iterated (blocking) or polled as a stream (without blocking), like a [`read`](Self::read)'s
    /// `Call`; [`Rows::try_next`] queues it only if there is room.
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
}
