//! `Rows<T>`: query results streamed from a reader in batches, through a bounded stream.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use rusqlite::Params;

use super::call::Reply;
use super::{Conn, Error, Live, run};
use crate::error::JobError;
use crate::pool::StatePool;
use crate::stream;

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
}

fn flatten<T>(item: Result<Reply<Vec<T>>, JobError>) -> Reply<Vec<T>> {
    item.unwrap_or_else(|e| Err(Error::from(e)))
}

impl<T> Rows<T> {
    /// Takes the next batch if one is ready; never blocks. `None`: nothing ready yet, or the
    /// stream has ended ([`is_finished`](Self::is_finished) tells which).
    pub fn try_next(&mut self) -> Option<Reply<Vec<T>>> {
        self.items.try_next().map(flatten)
    }

    /// Batches read ahead and waiting for the consumer now (at most two, plus a final error).
    pub fn buffered(&self) -> usize {
        self.items.buffered()
    }

    /// `true` once the query has ended and every batch has been taken.
    pub fn is_finished(&self) -> bool {
        self.items.is_finished()
    }
}

impl<T> Iterator for Rows<T> {
    type Item = Reply<Vec<T>>;

    /// Blocks until the next batch arrives, or returns `None` after the last row.
    fn next(&mut self) -> Option<Self::Item> {
        self.items.next().map(flatten)
    }
}

impl<T> futures_core::Stream for Rows<T> {
    type Item = Reply<Vec<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
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
    let items = pool
        .stream(BUFFER, producer)
        .unwrap_or_else(|_| stream::Receiver::failed(JobError::ShutDown));
    live.add_stream(items.cutter());
    Rows { items }
}
