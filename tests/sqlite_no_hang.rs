//! Nothing waits forever, for `Db`: a call made from inside the writer that would wait on the
//! writer is refused at once; `close` ends live sessions and query streams and returns; a
//! session ends at its limit even when kept busy; the closures cannot commit a managed
//! transaction behind `Db`'s back or write through a reader. Each test runs under a watchdog.
#![cfg(any(feature = "sqlite", feature = "sqlite-system"))]
mod common;
use common::*;
use offthread::sqlite::{Db, Error};
use std::time::Duration;

fn file_db(dir: &TempDir) -> Db {
    let db = Db::builder(dir.join("t.db"))
        .readers(1)
        .init(|c| c.execute_batch("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        .open()
        .unwrap();
    db.write(|c| {
        for i in 0..1000 {
            c.execute("INSERT INTO t VALUES (?1)", (i,))?;
        }
        Ok(())
    })
    .wait()
    .unwrap();
    db
}

fn count(db: &Db) -> i64 {
    db.query_row("SELECT count(*) FROM t", ()).wait().unwrap()
}

/// A query stream read inside a read: refused at once where the reads run on the writer (in
/// memory), and served by a lent reader where they run on readers.
#[test]
fn a_query_stream_read_inside_a_read_completes_or_is_refused() {
    let got = watchdog("query_stream in a read, in memory", || {
        let db = Db::open_in_memory().unwrap();
        db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
        let d = db.clone();
        db.read(move |_| {
            let mut rows = d.query_stream("SELECT 1", (), 10, |r| r.get::<_, i64>(0));
            Ok(rows.next().map(|b| b.map(|v| v.len())))
        })
        .wait()
    });
    assert!(
        matches!(got, Ok(Some(Err(Error::WouldDeadlock)))),
        "{got:?}"
    );

    let dir = TempDir::new("sqlite-stream-in-read");
    let got = watchdog("query_stream in a read, readers(1)", move || {
        let db = file_db(&dir);
        let d = db.clone();
        db.read(move |_| {
            let rows = d.query_stream("SELECT x FROM t", (), 100, |r| r.get::<_, i64>(0));
            Ok(rows.map(|b| b.unwrap().len()).sum::<usize>())
        })
        .wait()
    });
    assert_eq!(got.unwrap(), 1000);
}

/// Writes made inside a write past the writer's queue capacity never block the writer: they
/// wait for room. Waited on inside the writer (only the writer could make room) they are
/// refused at once; waited on outside, they run.
#[test]
fn writes_from_inside_a_write_into_a_full_queue_wait_for_room_or_are_refused() {
    let dir = TempDir::new("sqlite-write-full-queue");
    let (inside, outside) = watchdog("writes into the writer's own full queue", move || {
        let db = Db::builder(dir.join("t.db"))
            .queue_capacity(2)
            .open()
            .unwrap();
        db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
        let d = db.clone();
        let (inside, later) = db
            .write(move |_| {
                let mut calls: Vec<_> = (0..5)
                    .map(|i| d.execute("INSERT INTO t VALUES (?1)", (i,)))
                    .collect();
                // The fifth found the queue full: waiting on it here would wait on the writer.
                let inside = calls.pop().unwrap().wait();
                Ok((inside, calls))
            })
            .wait()
            .unwrap();
        let outside: Vec<_> = later.into_iter().map(|c| c.wait()).collect();
        let n: i64 = db.query_row("SELECT count(*) FROM t", ()).wait().unwrap();
        (inside, (outside, n))
    });
    assert!(matches!(inside, Err(Error::WouldDeadlock)), "{inside:?}");
    let (outside, n) = outside;
    assert!(outside.iter().all(|r| matches!(r, Ok(1))), "{outside:?}");
    assert_eq!(n, 4);
}

/// Waiting on a session call from inside a write is refused at once (the session needs the
/// writer that the waiting closure holds).
#[test]
fn waiting_on_a_session_call_inside_a_write_is_refused() {
    let got = watchdog("session call in a write", || {
        let db = Db::open_in_memory().unwrap();
        db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
        let d = db.clone();
        db.write(move |_| {
            let s = d.session(Duration::from_secs(60));
            Ok(s.execute("INSERT INTO t VALUES (1)", ()).wait())
        })
        .wait()
    });
    assert!(matches!(got, Ok(Err(Error::WouldDeadlock))), "{got:?}");
}

/// `close` with a query stream alive and never read ends the stream and returns; its consumer
/// sees the batches read ahead, then `Closed`.
#[test]
fn close_ends_a_query_stream_nobody_reads() {
    for now in [false, true] {
        let dir = TempDir::new("sqlite-close-rows");
        let rest = watchdog("close under an unread stream", move || {
            let db = file_db(&dir);
            let rows = db.query_stream("SELECT x FROM t", (), 10, |r| r.get::<_, i64>(0));
            if now {
                db.close_now();
            } else {
                db.close();
            }
            rows.collect::<Vec<_>>()
        });
        assert!(rest.len() <= 3, "{} batches", rest.len());
        assert!(matches!(rest.last(), Some(Err(Error::Closed))), "{rest:?}");
    }
}

/// `close` on the thread that holds an open session returns at once, the session rolled back.
#[test]
fn close_ends_the_closing_threads_own_session() {
    let dir = TempDir::new("sqlite-close-session");
    let (n, late) = watchdog("close with an open session", move || {
        let db = file_db(&dir);
        let s = db.session(Duration::from_secs(3600));
        s.execute("INSERT INTO t VALUES (-1)", ()).wait().unwrap();
        db.close();
        let late = s.execute("INSERT INTO t VALUES (-2)", ()).wait();
        let db = Db::open(dir.join("t.db")).unwrap();
        (count(&db), late)
    });
    assert_eq!(n, 1000, "the open session was rolled back");
    assert!(matches!(late, Err(Error::Closed)), "{late:?}");
}

/// A session kept busy with calls still ends at its limit: the calls after it resolve
/// `Timeout`, nothing is committed, and the writer serves others again.
#[test]
fn a_busy_session_is_rolled_back_at_its_limit() {
    let (outcomes, n) = watchdog("a busy session", || {
        let db = Db::open_in_memory().unwrap();
        db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
        let s = db.session(Duration::from_millis(50));
        // Each call outlasts the limit on its own, so the limit falls among the calls.
        let calls: Vec<_> = (0..5)
            .map(|i| {
                s.run(move |c| {
                    c.execute("INSERT INTO t VALUES (?1)", (i,))?;
                    std::thread::sleep(Duration::from_millis(30));
                    Ok(())
                })
            })
            .collect();
        let commit = s.commit().wait();
        let outcomes: Vec<_> = calls.into_iter().map(|c| c.wait()).collect();
        assert!(matches!(commit, Err(Error::Timeout)), "{commit:?}");
        let n: i64 = db.query_row("SELECT count(*) FROM t", ()).wait().unwrap();
        (outcomes, n)
    });
    assert!(
        outcomes.iter().any(|r| matches!(r, Err(Error::Timeout))),
        "{outcomes:?}"
    );
    assert_eq!(n, 0, "nothing of a timed-out session is committed");
}

/// A session call still running at the limit is interrupted there.
#[test]
fn a_session_call_running_past_the_limit_is_interrupted() {
    let (call, n) = watchdog("a long session call", || {
        let db = Db::open_in_memory().unwrap();
        db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
        let s = db.session(Duration::from_millis(20));
        // An endless recursive query: only an interrupt ends it.
        let call = s
            .run(|c| {
                c.execute(
                    "INSERT INTO t WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) \
                     SELECT i FROM r",
                    (),
                )
            })
            .wait();
        let n: i64 = db.query_row("SELECT count(*) FROM t", ()).wait().unwrap();
        (call, n)
    });
    assert!(matches!(call, Err(Error::Timeout)), "{call:?}");
    assert_eq!(n, 0);
}

/// `COMMIT`, `END` or `ROLLBACK` inside a transaction or a session: a typed error, and
/// nothing of the transaction is committed, not even rows written after it.
#[test]
fn a_closure_cannot_end_a_managed_transaction() {
    let db = Db::open_in_memory().unwrap();
    db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
    for end in ["COMMIT", "END", "ROLLBACK"] {
        let got = db
            .transaction(move |tx| {
                tx.execute("INSERT INTO t VALUES (1)", ())?;
                let _ = tx.execute_batch(end);
                let _ = tx.execute("INSERT INTO t VALUES (2)", ());
                Ok(())
            })
            .wait();
        assert!(
            matches!(got, Err(Error::TransactionEndedEarly)),
            "{end}: {got:?}"
        );
        let s = db.session(Duration::from_secs(60));
        s.execute("INSERT INTO t VALUES (3)", ()).wait().unwrap();
        let got = s.run(move |c| c.execute_batch(end)).wait();
        assert!(
            matches!(got, Err(Error::TransactionEndedEarly)),
            "{end}: {got:?}"
        );
        let later = s.execute("INSERT INTO t VALUES (4)", ()).wait();
        assert!(
            matches!(later, Err(Error::SessionEnded)),
            "{end}: {later:?}"
        );
        assert_eq!(count(&db), 0, "{end}");
    }
    // A plain write is the closure's own: it may run its own transactions.
    db.write(|c| c.execute_batch("BEGIN; INSERT INTO t VALUES (5); COMMIT;"))
        .wait()
        .unwrap();
    assert_eq!(count(&db), 1);
}

/// The deleted-file guard works for a path that is not UTF-8.
#[cfg(unix)]
#[test]
fn the_deleted_file_guard_works_for_a_non_utf8_path() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new("sqlite-non-utf8");
    let path = dir.0.join(std::ffi::OsStr::from_bytes(b"caf\xe9.db"));
    let db = Db::open(&path).unwrap();
    db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
    std::fs::remove_file(&path).unwrap();
    let lost = db.execute("INSERT INTO t VALUES (1)", ()).wait();
    let err = lost.expect_err("a write into a deleted file is refused");
    assert_eq!(
        err.sqlite_code(),
        Some(rusqlite::ErrorCode::ReadOnly),
        "{err}"
    );
}

/// A reader count too large to run is a typed error, not a panic or an abort.
#[test]
fn huge_reader_counts_are_a_typed_error() {
    let dir = TempDir::new("sqlite-huge-readers");
    for n in [257, 1 << 20, usize::MAX] {
        let got = Db::builder(dir.join("t.db")).readers(n).open();
        assert!(matches!(got, Err(Error::Open(_))), "{n}: {got:?}");
    }
}

/// A huge batch size allocates what the query returns, not what was asked for.
#[test]
fn a_huge_batch_size_is_fine() {
    let db = Db::open_in_memory().unwrap();
    db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
    db.execute("INSERT INTO t VALUES (1), (2)", ())
        .wait()
        .unwrap();
    let batches: Vec<_> = db
        .query_stream("SELECT x FROM t", (), 1 << 34, |r| r.get::<_, i64>(0))
        .collect();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].as_ref().unwrap(), &[1, 2]);
}

/// A database whose writer is held by a write blocked on `gate`, with its queue (of one) full
/// behind it; the writes' calls come back.
fn full_writer_queue(dir: &TempDir, gate: &Gate) -> (Db, Vec<offthread::sqlite::Call<()>>) {
    let db = Db::builder(dir.join("t.db"))
        .queue_capacity(1)
        .init(|c| c.execute_batch("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        .open()
        .unwrap();
    let held = hold_writer(&db, gate);
    let queued = db.write(|c| c.execute_batch("INSERT INTO t VALUES (0)"));
    (db, vec![held, queued])
}

/// `Db::session` never waits for room: on a full writer queue the session's start waits until
/// one of its calls is waited on (then blocking, for room) — a call given up at its deadline
/// leaves it waiting for the next.
#[test]
fn a_session_on_a_full_writer_queue_starts_at_once_and_begins_when_waited_on() {
    let dir = TempDir::new("sqlite-session-full-wait");
    watchdog("a session on a full writer queue, waited", move || {
        let gate = Gate::new();
        let (db, writes) = full_writer_queue(&dir, &gate);
        let s = db.session(HUGE); // would hang here if it waited for room: the gate is shut
        let first = s.execute("INSERT INTO t VALUES (1)", ());
        let first = first.try_wait().unwrap_err(); // no room: not even queued
        assert!(!first.is_finished());
        let first = first.wait_timeout(Duration::from_millis(1)).unwrap_err();
        let second = s.execute("INSERT INTO t VALUES (2)", ());
        gate.open();
        assert_eq!(second.wait().unwrap(), 1); // queues the start, then its own reply
        assert_eq!(first.wait().unwrap(), 1);
        s.commit().wait().unwrap();
        for w in writes {
            w.wait().unwrap();
        }
        assert_eq!(count(&db), 3);
    });
}

/// Awaited, a session call on a full writer queue waits for room without blocking the
/// executor; a session dropped before its start found room never runs.
#[test]
fn a_session_on_a_full_writer_queue_is_awaited_without_blocking_or_dropped_unstarted() {
    let dir = TempDir::new("sqlite-session-full-await");
    watchdog("a session on a full writer queue, awaited", move || {
        let gate = Gate::new();
        let (db, writes) = full_writer_queue(&dir, &gate);
        let s = db.session(HUGE);
        let call = s.execute("INSERT INTO t VALUES (1)", ());
        // One thread runs both: the await must leave it free for the task that opens the gate.
        let (got, ()) = futures::executor::block_on(futures::future::join(
            std::future::IntoFuture::into_future(call),
            async { gate.open() },
        ));
        assert_eq!(got.unwrap(), 1);
        let commit = futures::executor::block_on(std::future::IntoFuture::into_future(s.commit()));
        commit.unwrap();
        for w in writes {
            w.wait().unwrap();
        }
        assert_eq!(count(&db), 2);

        // Dropped while waiting for room, with its calls: it never begins, and the writer
        // goes on.
        let gate = Gate::new();
        let before = db.stats().writer.completed;
        let held = hold_writer(&db, &gate);
        let queued = db.execute("INSERT INTO t VALUES (3)", ());
        let s = db.session(HUGE);
        drop(s.execute("INSERT INTO t VALUES (4)", ()));
        drop(s);
        gate.open();
        held.wait().unwrap();
        queued.wait().unwrap();
        db.execute("INSERT INTO t VALUES (5)", ()).wait().unwrap();
        // The session's job would have run before the last write: its count is in by then.
        eventually("the writes counted", || {
            db.stats().writer.completed >= before + 3
        });
        assert_eq!(
            db.stats().writer.completed,
            before + 3,
            "the session never ran"
        );
        assert_eq!(count(&db), 4);
    });
}
