//! `FromRow`: a value read from one row by column position, for the helpers that need no
//! closure ([`Db::query_all`](super::Db::query_all), [`Db::query_opt`](super::Db::query_opt)).

use rusqlite::Row;
use rusqlite::types::{FromSql, Value};

/// A value read from one row by column position: one column's value (a number, `bool`,
/// `String`, `Vec<u8>`, a [`Value`], or an `Option` of one, for a column that may be `NULL`),
/// or a tuple of up to eight columns of any [`FromSql`] types.
///
/// # Examples
/// ```
/// let db = offthread::sqlite::Db::open_in_memory()?;
/// db.write(|c| c.execute_batch("CREATE TABLE t (id, name); INSERT INTO t VALUES (1, 'a'), (2, NULL);")).wait()?;
/// let ids: Vec<i64> = db.query_all("SELECT id FROM t ORDER BY id", ()).wait()?;
/// let rows: Vec<(i64, Option<String>)> = db.query_all("SELECT id, name FROM t ORDER BY id", ()).wait()?;
/// assert_eq!((ids, rows), (vec![1, 2], vec![(1, Some("a".to_owned())), (2, None)]));
/// # Ok::<(), offthread::sqlite::Error>(())
/// ```
pub trait FromRow: Sized + Send + 'static {
    /// Reads the value from `row`.
    ///
    /// # Errors
    /// rusqlite's, when a column is missing or of another type.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self>;
}

macro_rules! one_column {
    ($($t:ty),*) => {$(
        impl FromRow for $t {
            fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
                row.get(0)
            }
        }
        impl FromRow for Option<$t> {
            fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
                row.get(0)
            }
        }
    )*};
}

one_column!(
    i8,
    i16,
    i32,
    i64,
    isize,
    u8,
    u16,
    u32,
    f32,
    f64,
    bool,
    String,
    Vec<u8>,
    Value
);

macro_rules! columns {
    ($($name:ident $i:tt),+) => {
        impl<$($name: FromSql + Send + 'static),+> FromRow for ($($name,)+) {
            fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $name>($i)?,)+))
            }
        }
    };
}

columns!(A 0);
columns!(A 0, B 1);
columns!(A 0, B 1, C 2);
columns!(A 0, B 1, C 2, D 3);
columns!(A 0, B 1, C 2, D 3, E 4);
columns!(A 0, B 1, C 2, D 3, E 4, F 5);
columns!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
columns!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
