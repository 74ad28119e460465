//! Closures that fail with their own errors (`read_any`, `write_any`, `transaction_any`,
//! `Session::run_any`): kept whole in `Error::Other`, while rusqlite's errors keep their
//! meaning. (Feature `sqlite`.)
#![cfg(any(feature = "sqlite", feature = "sqlite-system"))]
mod common;
use common::*;
use offthread::sqlite::{Db, Error, rusqlite};
use std::error::Error as _;
use std::fmt;
use std::sync::mpsc;

/// A query that never ends on its own.
const FOREVER: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

#[derive(Debug, PartialEq)]
struct NotAllowed(&'static str);

impl fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not allowed: {}", self.0)
    }
}

impl std::error::Error for NotAllowed {}

fn kv(dir: &TempDir) -> Db {
    Db::builder(dir.join("kv.db"))
        .readers(2)
        .init(|c| c.execute_batch("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER)"))
        .open()
        .unwrap()
}

fn count(db: &Db) -> i64 {
    db.query_row("SELECT count(*) FROM kv", ()).wait().unwrap()
}

#[test]
fn an_own_error_comes_back_whole_and_a_rusqlite_error_keeps_its_kind() {
    let dir = TempDir::new("sqlite-own-errors");
    let db = kv(&dir);

    let own = db
        .read_any(|_| -> Result<(), _> { Err(NotAllowed("reading").into()) })
        .wait()
        .unwrap_err();
    assert_eq!(own.to_string(), "not allowed: reading");
    assert!(
        own.source().is_none(),
        "transparent: no second copy in the chain"
    );
    assert_eq!(
        own.downcast_ref::<NotAllowed>(),
        Some(&NotAllowed("reading"))
    );
    assert_eq!(own.downcast::<NotAllowed>().unwrap(), NotAllowed("reading"));

    // A rusqlite error through `?` is the same `Error` as from `read`.
    let no_rows = db
        .read_any(|c| Ok(c.query_row("SELECT v FROM kv", (), |r| r.get::<_, i64>(0))?))
        .wait()
        .unwrap_err();
    assert!(matches!(
        no_rows,
        Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)
    ));
    // Asking for the wrong type gives the error back unchanged.
    assert!(matches!(
        no_rows.downcast::<NotAllowed>(),
        Err(Error::Sqlite(_))
    ));

    // An `Error` from a nested call is passed on as itself, not wrapped.
    let inner = db.clone();
    let nested = db
        .write_any(move |_| Ok(inner.query_row::<i64, _>("SELECT nope", ()).wait()?))
        .wait()
        .unwrap_err();
    assert!(matches!(nested, Error::Sqlite(_)), "{nested:?}");

    // Other error types through `?`.
    let parsed = db
        .read_any(|c| {
            let text: String = c.query_row("SELECT 'x1'", (), |r| r.get(0))?;
            Ok(text.parse::<i32>()?)
        })
        .wait()
        .unwrap_err();
    assert!(parsed.downcast_ref::<std::num::ParseIntError>().is_some());

    // The connections go on serving.
    db.write_any(|c| Ok(c.execute("INSERT INTO kv VALUES ('a', 1)", ())?))
        .wait()
        .unwrap();
    assert_eq!(count(&db), 1);
    let e = db.stats().errors;
    assert_eq!((e.closure, e.sqlite, e.other), (2, 3, 0), "{e:?}");
}

#[test]
fn an_own_error_rolls_a_transaction_back_and_ok_commits_it() {
    let dir = TempDir::new("sqlite-own-errors-tx");
    let db = kv(&dir);
    let refused = db
        .transaction_any(|tx| {
            tx.execute("INSERT INTO kv VALUES ('a', 1)", ())?;
            Err::<(), _>(NotAllowed("a").into())
        })
        .wait()
        .unwrap_err();
    assert_eq!(refused.downcast_ref(), Some(&NotAllowed("a")));
    assert_eq!(count(&db), 0);

    let failed = db
        .transaction_any(|tx| {
            tx.execute("INSERT INTO kv VALUES ('a', 1)", ())?;
            tx.execute("INSERT INTO kv VALUES ('a', 2)", ())?; // a duplicate key
            Ok(())
        })
        .wait()
        .unwrap_err();
    assert_eq!(
        failed.sqlite_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    );
    assert_eq!(count(&db), 0);

    let committed = db
        .transaction_any(|tx| Ok(tx.execute("INSERT INTO kv VALUES ('b', 2)", ())?))
        .wait()
        .unwrap();
    assert_eq!((committed, count(&db)), (1, 1));

    // Ending the managed transaction early is still refused, whatever the error type.
    let early = db
        .transaction_any(|tx| Ok(tx.execute_batch("INSERT INTO kv VALUES ('c', 3); COMMIT")?))
        .wait()
        .unwrap_err();
    assert!(matches!(early, Error::TransactionEndedEarly), "{early:?}");
    assert_eq!(count(&db), 1);
}

#[test]
fn a_session_call_may_fail_with_its_own_error_and_the_session_goes_on() {
    let dir = TempDir::new("sqlite-own-errors-session");
    let db = kv(&dir);
    let s = db.session(HUGE);
    s.execute("INSERT INTO kv VALUES ('a', 1)", ())
        .wait()
        .unwrap();
    let own = s
        .run_any(|_| -> Result<(), _> { Err(NotAllowed("in session").into()) })
        .wait()
        .unwrap_err();
    assert_eq!(own.downcast_ref(), Some(&NotAllowed("in session")));
    let sqlite = s
        .run_any(|c| Ok(c.execute("INSERT INTO nowhere VALUES (1)", ())?))
        .wait()
        .unwrap_err();
    assert!(matches!(sqlite, Error::Sqlite(_)), "{sqlite:?}");
    s.commit().wait().unwrap();
    assert_eq!(count(&db), 1);
}

#[test]
fn cancelling_a_running_read_any_interrupts_it() {
    let dir = TempDir::new("sqlite-own-errors-cancel");
    let db = Db::builder(dir.join("c.db")).readers(1).open().unwrap();
    let (tx, rx) = mpsc::channel();
    let slow = db.read_any(move |c| {
        tx.send(()).unwrap();
        Ok(c.query_row(FOREVER, (), |r| r.get::<_, i64>(0))?)
    });
    rx.recv_timeout(HUGE).unwrap();
    assert_eq!(slow.cancel(), offthread::CancelOutcome::Requested);
    let err = slow.wait_timeout(HUGE).ok().unwrap().unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err}");
}

/// A lock held by another connection: the `Db`'s writer retries until the lock goes (counted
/// in `busy_retries`), and past its busy timeout fails with `Error::Busy`.
#[test]
fn a_lock_held_elsewhere_is_retried_and_counted_then_busy_past_the_timeout() {
    let dir = TempDir::new("sqlite-busy-retries");
    let path = dir.join("kv.db");
    let db = Db::builder(&path)
        .busy_timeout(std::time::Duration::from_millis(30))
        .init(|c| c.execute_batch("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)"))
        .open()
        .unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let late = db.execute("INSERT INTO kv VALUES ('a', 1)", ()).wait();
    assert!(matches!(late, Err(Error::Busy(_))), "{late:?}");
    let s = db.stats();
    assert_eq!(s.errors.busy, 1);
    let after_first = s.busy_retries;
    assert!(after_first >= 1, "{s:?}");

    // Now with room to wait: the lock goes while the writer retries, and the write lands.
    let db = {
        db.close();
        Db::builder(&path).busy_timeout(HUGE).open().unwrap()
    };
    let write = db.execute("INSERT INTO kv VALUES ('b', 2)", ());
    let deadline = std::time::Instant::now() + HUGE;
    while db.stats().busy_retries == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never retried"
        );
        std::thread::yield_now();
    }
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(write.wait_timeout(HUGE).ok().unwrap().unwrap(), 1);
    assert_eq!(db.stats().errors.busy, 0);
}
