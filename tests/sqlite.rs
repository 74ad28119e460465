//! `offthread::sqlite::Db` on temp-dir databases: open and set-up, reads and writes,
//! transactions, panics and leaked transactions, typed errors, close. (Feature `sqlite`.)
#![cfg(any(feature = "sqlite", feature = "sqlite-system"))]
mod common;
use common::*;
use offthread::sqlite::{Db, Error};
use std::sync::mpsc;

/// The table's keys in order, run together ("ab").
fn keys(db: &Db) -> String {
    db.query_row(
        "SELECT group_concat(k, '') FROM (SELECT k FROM kv ORDER BY k)",
        (),
    )
    .wait()
    .unwrap()
}

fn kv(dir: &TempDir) -> Db {
    Db::builder(dir.join("kv.db"))
        .readers(2)
        .init(|c| c.execute_batch("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER)"))
        .open()
        .unwrap()
}

#[test]
fn a_new_file_opens_in_wal_mode_with_readers_that_see_committed_writes() {
    let dir = TempDir::new("sqlite-open");
    let db = kv(&dir);
    let mode: String = db.query_row("PRAGMA journal_mode", ()).wait().unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = db
        .write(|c| c.query_row("PRAGMA foreign_keys", (), |r| r.get(0)))
        .wait()
        .unwrap();
    assert_eq!(fk, 1);
    for i in 0..20 {
        db.execute("INSERT INTO kv VALUES (?1, ?2)", (format!("k{i}"), i))
            .wait()
            .unwrap();
    }
    let n: i64 = db.query_row("SELECT count(*) FROM kv", ()).wait().unwrap();
    assert_eq!(n, 20, "a reader sees every committed write");
    let read_only = db.read(|c| c.is_readonly("main")).wait().unwrap();
    assert!(read_only, "readers are opened read-only");
    let err = db
        .read(|c| c.execute("DELETE FROM kv", ()))
        .wait()
        .unwrap_err();
    assert!(matches!(err, Error::Sqlite(_)), "{err}");
    // Not even a closure that turns `query_only` off can write through a reader, then or in
    // a later call on the same connection.
    for _ in 0..4 {
        let err = db
            .read(|c| {
                c.execute_batch("PRAGMA query_only=OFF")?;
                c.execute("DELETE FROM kv", ())
            })
            .wait()
            .unwrap_err();
        assert_eq!(
            err.sqlite_code(),
            Some(rusqlite::ErrorCode::ReadOnly),
            "{err}"
        );
    }
    db.close();
}

#[test]
fn opening_new_files_with_readers_never_hits_busy() {
    let dir = TempDir::new("sqlite-busy-open");
    // Readers open right behind the writer's switch to WAL: a race there shows up as
    // SQLITE_BUSY at open. 1,000 fresh files, four readers each.
    for i in 0..1000 {
        let path = dir.join(&format!("n{i}.db"));
        let db = Db::builder(&path).readers(4).open().unwrap();
        let n: i64 = db
            .query_row("SELECT count(*) FROM sqlite_master", ())
            .wait()
            .unwrap();
        assert_eq!(n, 0);
        db.close();
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn a_transaction_commits_on_ok_and_rolls_back_on_err_and_on_panic() {
    let dir = TempDir::new("sqlite-tx");
    let db = kv(&dir);
    db.transaction(|tx| {
        tx.execute("INSERT INTO kv VALUES ('a', 1)", ())?;
        tx.execute("INSERT INTO kv VALUES ('b', 2)", ())
    })
    .wait()
    .unwrap();
    let err = db
        .transaction(|tx| {
            tx.execute("INSERT INTO kv VALUES ('c', 3)", ())?;
            tx.execute("INSERT INTO kv VALUES ('a', 9)", ()) // primary key clash
        })
        .wait()
        .unwrap_err();
    assert_eq!(
        err.sqlite_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    );
    let err = db
        .transaction(|tx| -> rusqlite::Result<()> {
            tx.execute("INSERT INTO kv VALUES ('d', 4)", ())?;
            panic!("bug in the middle of a transaction");
        })
        .wait()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Panicked(m) if m.contains("bug in the middle")),
        "{err}"
    );
    assert_eq!(keys(&db), "ab", "only the committed transaction's rows");
    // The writer goes on serving after the panic.
    db.execute("INSERT INTO kv VALUES ('e', 5)", ())
        .wait()
        .unwrap();
}

#[test]
fn panics_in_reads_and_writes_become_errors_and_the_connections_keep_serving() {
    let dir = TempDir::new("sqlite-panic");
    let db = kv(&dir);
    for _ in 0..4 {
        let err = db
            .read(|_| -> rusqlite::Result<()> { panic!("read bug") })
            .wait()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Panicked(m) if m == "read bug"),
            "{err}"
        );
    }
    let err = db
        .write(|_| -> rusqlite::Result<()> { panic!("write bug") })
        .wait()
        .unwrap_err();
    assert!(matches!(&err, Error::Panicked(_)));
    db.execute("INSERT INTO kv VALUES ('x', 1)", ())
        .wait()
        .unwrap();
    let n: i64 = db.query_row("SELECT count(*) FROM kv", ()).wait().unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_transaction_left_open_is_an_error_and_is_rolled_back() {
    let dir = TempDir::new("sqlite-leak");
    let db = kv(&dir);
    let err = db
        .write(|c| c.execute_batch("BEGIN; INSERT INTO kv VALUES ('leak', 1);"))
        .wait()
        .unwrap_err();
    assert!(matches!(err, Error::TransactionLeftOpen), "{err}");
    let n: i64 = db.query_row("SELECT count(*) FROM kv", ()).wait().unwrap();
    assert_eq!(n, 0, "rolled back");
    db.execute("INSERT INTO kv VALUES ('ok', 1)", ())
        .wait()
        .unwrap();
}

#[test]
fn bad_input_is_a_typed_error() {
    let dir = TempDir::new("sqlite-bad");
    let err = Db::open(dir.join("no/such/dir/x.db")).unwrap_err();
    assert!(
        matches!(&err, Error::Open(m) if m.contains("opening")),
        "{err}"
    );
    let db = kv(&dir);
    let err = db.execute("SELEKT nonsense", ()).wait().unwrap_err();
    assert!(matches!(err, Error::Sqlite(_)), "{err}");
    let err = db
        .query_row::<i64, _>("SELECT v FROM kv WHERE k = 'none'", ())
        .wait()
        .unwrap_err();
    assert!(
        matches!(err, Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)),
        "{err}"
    );
    let bad_init = Db::builder(dir.join("init.db"))
        .init(|c| c.execute_batch("CREATE TABLE"))
        .open()
        .unwrap_err();
    assert!(
        matches!(&bad_init, Error::Open(m) if m.contains("init")),
        "{bad_init}"
    );
    let not_a_db = dir.join("text.db");
    std::fs::write(&not_a_db, vec![b'x'; 4096]).unwrap();
    assert!(matches!(Db::open(&not_a_db), Err(Error::Open(_))));
}

#[test]
fn a_closed_db_refuses_calls_and_its_wal_files_are_gone() {
    let dir = TempDir::new("sqlite-close");
    let path = dir.join("kv.db");
    let db = kv(&dir);
    db.execute("INSERT INTO kv VALUES ('a', 1)", ())
        .wait()
        .unwrap();
    let queued: Vec<_> = (0..50)
        .map(|i| db.execute("INSERT INTO kv VALUES (?1, ?2)", (format!("q{i}"), i)))
        .collect();
    let wal = path.with_extension("db-wal");
    assert!(wal.exists(), "WAL in use while open");
    db.close();
    for q in queued {
        q.wait().unwrap(); // close drains what was queued
    }
    assert!(matches!(
        db.execute("DELETE FROM kv", ()).wait(),
        Err(Error::Closed)
    ));
    assert!(matches!(
        db.query_row::<i64, _>("SELECT 1", ()).wait(),
        Err(Error::Closed)
    ));
    db.close(); // twice is fine
    assert!(!wal.exists(), "-wal removed");
    assert!(!path.with_extension("db-shm").exists(), "-shm removed");
    let reopened = Db::open(&path).unwrap();
    let n: i64 = reopened
        .query_row("SELECT count(*) FROM kv", ())
        .wait()
        .unwrap();
    assert_eq!(n, 51, "nothing lost");
}

#[test]
fn dropping_the_last_db_closes_it_in_the_background() {
    let dir = TempDir::new("sqlite-drop");
    let path = dir.join("kv.db");
    let db = kv(&dir);
    db.execute("INSERT INTO kv VALUES ('a', 1)", ())
        .wait()
        .unwrap();
    drop(db);
    eventually("the -wal file is removed", || {
        !path.with_extension("db-wal").exists()
    });
}

#[test]
fn in_memory_reads_see_writes() {
    let db = Db::open_in_memory().unwrap();
    db.execute("CREATE TABLE t (x INTEGER)", ()).wait().unwrap();
    db.execute("INSERT INTO t VALUES (7)", ()).wait().unwrap();
    let x: i64 = db.query_row("SELECT x FROM t", ()).wait().unwrap();
    assert_eq!(x, 7);
    assert!(db.path().is_none());
}

#[test]
fn calls_are_awaited_under_two_executors_and_waited_plainly() {
    let dir = TempDir::new("sqlite-async");
    let db = kv(&dir);
    db.execute("INSERT INTO kv VALUES ('a', 1)", ())
        .wait()
        .unwrap();
    let v: i64 = pollster::block_on(async { db.query_row("SELECT v FROM kv", ()).await }).unwrap();
    assert_eq!(v, 1);
    let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    let db2 = db.clone();
    let v: i64 = rt
        .block_on(async move {
            db2.execute("UPDATE kv SET v = 2", ()).await?;
            db2.query_row("SELECT v FROM kv", ()).await
        })
        .unwrap();
    assert_eq!(v, 2);
}

#[test]
fn eight_threads_of_500_read_then_write_transactions_never_fail() {
    let dir = TempDir::new("sqlite-rw");
    let db = kv(&dir);
    db.execute("INSERT INTO kv VALUES ('n', 0)", ())
        .wait()
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..500 {
                    db.transaction(|tx| {
                        let v: i64 =
                            tx.query_row("SELECT v FROM kv WHERE k = 'n'", (), |r| r.get(0))?;
                        tx.execute("UPDATE kv SET v = ?1 WHERE k = 'n'", (v + 1,))
                    })
                    .wait()
                    .unwrap();
                }
            });
        }
    });
    let n: i64 = db
        .query_row("SELECT v FROM kv WHERE k = 'n'", ())
        .wait()
        .unwrap();
    assert_eq!(n, 4000, "no lost update, no error");
}

#[test]
fn try_calls_never_wait() {
    let dir = TempDir::new("sqlite-try");
    let db = Db::builder(dir.join("t.db"))
        .queue_capacity(1)
        .open()
        .unwrap();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let busy = db.write(move |_| {
        tx.send(()).unwrap();
        g.wait();
        Ok(())
    });
    rx.recv_timeout(HUGE).unwrap();
    let queued = db.try_write(|_| Ok(1));
    let refused = db.try_write(|_| Ok(2)).wait();
    assert!(matches!(refused, Err(Error::QueueFull)), "{refused:?}");
    gate.open();
    busy.wait().unwrap();
    assert_eq!(queued.wait().unwrap(), 1);
}

/// A query that never ends on its own.
const FOREVER: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

#[test]
fn cancelling_a_running_read_interrupts_it_and_frees_its_reader() {
    let dir = TempDir::new("sqlite-cancel");
    let db = Db::builder(dir.join("c.db")).readers(1).open().unwrap();
    let (tx, rx) = mpsc::channel();
    let slow = db.read(move |c| {
        tx.send(()).unwrap();
        c.query_row(FOREVER, (), |r| r.get::<_, i64>(0))
    });
    rx.recv_timeout(HUGE).unwrap();
    assert_eq!(slow.cancel(), offthread::CancelOutcome::Requested);
    let err = slow.wait_timeout(HUGE).ok().unwrap().unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err}");
    // The only reader is free, and its next query runs undisturbed.
    let one: i64 = db
        .query_row("SELECT 1", ())
        .wait_timeout(HUGE)
        .ok()
        .unwrap()
        .unwrap();
    assert_eq!(one, 1);
}

#[test]
fn a_cancel_never_interrupts_the_next_call_on_that_connection() {
    let dir = TempDir::new("sqlite-cancel-next");
    let db = Db::builder(dir.join("c.db")).readers(1).open().unwrap();
    db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
    db.execute("INSERT INTO t VALUES (1), (2), (3)", ())
        .wait()
        .unwrap();
    let mut outcomes = [0usize; 3];
    for _ in 0..5000 {
        let first = db.read(|c| c.query_row("SELECT sum(x) FROM t", (), |r| r.get::<_, i64>(0)));
        let next = db.query_row::<i64, _>("SELECT count(*) FROM t", ());
        let how = first.cancel();
        outcomes[how as usize] += 1;
        match first.wait() {
            Ok(6) | Err(Error::Cancelled) | Err(Error::Interrupted) => {}
            other => panic!("first: {other:?}"),
        }
        assert_eq!(
            next.wait().unwrap(),
            3,
            "the next call was never interrupted"
        );
    }
    println!("dequeued / requested / finished: {outcomes:?}");
}

#[test]
fn dropping_a_queued_read_means_it_never_runs_but_writes_still_run() {
    let dir = TempDir::new("sqlite-drop-read");
    let db = Db::builder(dir.join("d.db")).readers(1).open().unwrap();
    db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let held = db.read(move |_| {
        tx.send(()).unwrap();
        g.wait();
        Ok(())
    });
    rx.recv_timeout(HUGE).unwrap();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = ran.clone();
    drop(db.read(move |_| {
        r.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }));
    drop(db.execute("INSERT INTO t VALUES (1)", ()));
    gate.open();
    held.wait().unwrap();
    eventually("the dropped write ran", || {
        db.query_row::<i64, _>("SELECT count(*) FROM t", ())
            .wait()
            .unwrap()
            == 1
    });
    db.close();
    assert!(
        !ran.load(std::sync::atomic::Ordering::SeqCst),
        "the dropped read never ran"
    );
}

#[test]
fn fast_reads_never_wait_behind_a_slow_one() {
    let dir = TempDir::new("sqlite-hol");
    let db = Db::builder(dir.join("h.db")).readers(2).open().unwrap();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let slow = db.read(move |_| {
        tx.send(()).unwrap();
        g.wait(); // holds its reader until the fast reads are done
        Ok(())
    });
    rx.recv_timeout(HUGE).unwrap();
    for i in 0..100i64 {
        let v: i64 = db
            .query_row("SELECT ?1", (i,))
            .wait_timeout(HUGE)
            .ok()
            .unwrap()
            .unwrap();
        assert_eq!(v, i);
    }
    assert!(!slow.is_finished());
    gate.open();
    slow.wait().unwrap();
}

#[test]
fn a_long_write_transaction_does_not_stop_point_reads() {
    let dir = TempDir::new("sqlite-long-tx");
    let db = kv(&dir);
    db.execute("INSERT INTO kv VALUES ('a', 1)", ())
        .wait()
        .unwrap();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let long = db.transaction(move |t| {
        t.execute("UPDATE kv SET v = 2 WHERE k = 'a'", ())?;
        tx.send(()).unwrap();
        g.wait(); // the transaction stays open, holding the write lock
        Ok(())
    });
    rx.recv_timeout(HUGE).unwrap();
    for _ in 0..100 {
        let v: i64 = db
            .query_row("SELECT v FROM kv WHERE k = 'a'", ())
            .wait_timeout(HUGE)
            .ok()
            .unwrap()
            .unwrap();
        assert_eq!(v, 1, "readers see the last committed value");
    }
    gate.open();
    long.wait().unwrap();
    assert_eq!(
        db.query_row::<i64, _>("SELECT v FROM kv WHERE k = 'a'", ())
            .wait()
            .unwrap(),
        2
    );
}

fn numbers(dir: &TempDir, n: i64) -> Db {
    let db = Db::builder(dir.join("n.db")).readers(1).open().unwrap();
    db.execute("CREATE TABLE t (x INTEGER)", ()).wait().unwrap();
    db.write(move |c| {
        let tx = c.transaction()?;
        for i in 1..=n {
            tx.execute("INSERT INTO t VALUES (?1)", (i,))?;
        }
        tx.commit()
    })
    .wait()
    .unwrap();
    db
}

#[test]
fn rows_stream_in_batches_as_an_iterator_and_as_a_stream() {
    let dir = TempDir::new("sqlite-stream");
    let db = numbers(&dir, 1000);
    let batches: Vec<Vec<i64>> = db
        .query_stream("SELECT x FROM t ORDER BY x", (), 64, |r| r.get(0))
        .map(Result::unwrap)
        .collect();
    assert!(batches.iter().all(|b| b.len() <= 64));
    assert_eq!(batches.concat(), (1..=1000).collect::<Vec<_>>());
    let batches =
        collect_stream(db.query_stream("SELECT x FROM t", (), 100, |r| r.get::<_, i64>(0)));
    assert_eq!(batches.len(), 10);
    let err: Vec<_> = db
        .query_stream("SELECT nope FROM t", (), 10, |r| r.get::<_, i64>(0))
        .collect();
    assert_eq!(err.len(), 1);
    assert!(matches!(err[0], Err(Error::Sqlite(_))));
    let panicked: Vec<_> = db
        .query_stream("SELECT x FROM t", (), 10, |_| -> rusqlite::Result<i64> {
            panic!("bad row")
        })
        .collect();
    assert!(matches!(panicked.last(), Some(Err(Error::Panicked(m))) if m == "bad row"));
}

#[test]
fn dropping_a_row_stream_early_frees_the_reader_and_its_snapshot() {
    let dir = TempDir::new("sqlite-stream-drop");
    let db = numbers(&dir, 10_000);
    let mut rows = db.query_stream("SELECT x FROM t", (), 10, |r| r.get::<_, i64>(0));
    assert_eq!(rows.next().unwrap().unwrap().len(), 10);
    drop(rows);
    // The one reader serves the next read, and it sees a write made after the stream began.
    db.execute("INSERT INTO t VALUES (0)", ()).wait().unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM t", ())
        .wait_timeout(HUGE)
        .ok()
        .unwrap()
        .unwrap();
    assert_eq!(n, 10_001);
    // And an endless query is interrupted when its stream is dropped.
    let mut forever = db.query_stream(FOREVER, (), 1, |r| r.get::<_, i64>(0));
    drop(forever.try_next());
    drop(forever);
    let one: i64 = db
        .query_row("SELECT 1", ())
        .wait_timeout(HUGE)
        .ok()
        .unwrap()
        .unwrap();
    assert_eq!(one, 1);
}

#[test]
fn a_session_dropped_without_commit_rolls_back() {
    let dir = TempDir::new("sqlite-session-drop");
    let db = kv(&dir);
    let s = db.session(HUGE);
    s.execute("INSERT INTO kv VALUES ('a', 1)", ())
        .wait()
        .unwrap();
    let seen_inside: i64 = s
        .run(|c| c.query_row("SELECT count(*) FROM kv", (), |r| r.get(0)))
        .wait()
        .unwrap();
    assert_eq!(seen_inside, 1);
    drop(s);
    // This write queues behind the session's job, so it runs once the session has ended.
    db.execute("INSERT INTO kv VALUES ('b', 2)", ())
        .wait()
        .unwrap();
    assert_eq!(keys(&db), "b");
}

#[test]
fn a_session_past_its_limit_is_rolled_back_and_its_holder_gets_timeout() {
    let dir = TempDir::new("sqlite-session-timeout");
    let db = kv(&dir);
    // Hold the writer so the session's first call is already waiting when the session starts:
    // it runs at once, whatever the machine's load, and only then does the short limit pass.
    let gate = Gate::new();
    let g = gate.clone();
    let held = db.write(move |_| {
        g.wait();
        Ok(())
    });
    let s = db.session(TINY);
    let first = s.execute("INSERT INTO kv VALUES ('a', 1)", ());
    gate.open();
    held.wait().unwrap();
    first.wait().unwrap();
    // The next write waits for the writer, which the session frees only at its limit.
    db.execute("INSERT INTO kv VALUES ('b', 2)", ())
        .wait()
        .unwrap();
    assert!(matches!(
        s.execute("INSERT INTO kv VALUES ('c', 3)", ()).wait(),
        Err(Error::Timeout)
    ));
    assert!(matches!(s.commit().wait(), Err(Error::Timeout)));
    assert_eq!(keys(&db), "b", "the session's insert was rolled back");
}

#[test]
fn a_panic_in_a_session_rolls_it_back_and_the_writer_goes_on() {
    let dir = TempDir::new("sqlite-session-panic");
    let db = kv(&dir);
    let s = db.session(HUGE);
    s.execute("INSERT INTO kv VALUES ('a', 1)", ())
        .wait()
        .unwrap();
    let err = s
        .run(|_| -> rusqlite::Result<()> { panic!("session bug") })
        .wait()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Panicked(m) if m == "session bug"),
        "{err}"
    );
    assert!(matches!(s.commit().wait(), Err(Error::SessionEnded)));
    db.execute("INSERT INTO kv VALUES ('b', 2)", ())
        .wait()
        .unwrap();
    assert_eq!(keys(&db), "b");
}

#[test]
fn writes_after_a_session_wait_for_it_and_errors_inside_do_not_end_it() {
    let dir = TempDir::new("sqlite-session-order");
    let db = kv(&dir);
    let s = db.session(HUGE);
    let later = db.execute("UPDATE kv SET v = v * 10", ());
    s.execute("INSERT INTO kv VALUES ('a', 1)", ())
        .wait()
        .unwrap();
    assert!(
        s.execute("INSERT INTO kv VALUES ('a', 2)", ())
            .wait()
            .is_err(),
        "a constraint error"
    );
    assert!(!later.is_finished(), "the writer is held by the session");
    s.execute("INSERT INTO kv VALUES ('b', 2)", ())
        .wait()
        .unwrap();
    s.commit().wait().unwrap();
    assert_eq!(later.wait().unwrap(), 2);
    let sum: i64 = db.query_row("SELECT sum(v) FROM kv", ()).wait().unwrap();
    assert_eq!(sum, 30);
    db.close();
    let s = db.session(HUGE);
    assert!(matches!(
        s.execute("SELECT 1", ()).wait(),
        Err(Error::Closed)
    ));
}

#[test]
fn close_with_queued_running_and_streaming_work_leaves_no_wal_files() {
    let dir = TempDir::new("sqlite-close-busy");
    let path = dir.join("n.db");
    let db = numbers(&dir, 5000);
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let running = db.write(move |c| {
        tx.send(()).unwrap();
        g.wait();
        c.execute("INSERT INTO t VALUES (-1)", ())
    });
    rx.recv_timeout(HUGE).unwrap();
    let queued: Vec<_> = (0..20)
        .map(|i| db.execute("INSERT INTO t VALUES (?1)", (i,)))
        .collect();
    let mut rows = db.query_stream("SELECT x FROM t", (), 100, |r| r.get::<_, i64>(0));
    assert_eq!(rows.next().unwrap().unwrap().len(), 100); // a read in the middle of its rows
    eventually("the reader reads two batches ahead", || {
        rows.buffered() == 2
    });
    let closer = std::thread::spawn({
        let db = db.clone();
        move || db.close()
    });
    // The close ends the stream: after the two batches already read ahead, `Closed`.
    eventually("the close ends the stream", || rows.buffered() == 3);
    gate.open();
    let rest: Vec<_> = rows.collect();
    assert_eq!(rest.len(), 3, "two batches read ahead, then the end");
    assert!(rest[..2].iter().all(|b| b.as_ref().unwrap().len() == 100));
    assert!(matches!(rest[2], Err(Error::Closed)), "{:?}", rest[2]);
    closer.join().unwrap();
    running.wait().unwrap();
    for q in queued {
        q.wait().unwrap();
    }
    assert!(!path.with_extension("db-wal").exists());
    assert!(!path.with_extension("db-shm").exists());
    let n: i64 = Db::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM t", ())
        .wait()
        .unwrap();
    assert_eq!(n, 5021);
}

#[test]
fn a_write_waiting_on_a_write_from_inside_the_writer_is_refused_not_hung() {
    let dir = TempDir::new("sqlite-nested");
    let db = kv(&dir);
    let inner_db = db.clone();
    let (tx, rx) = mpsc::channel();
    let outer = db.write(move |_| {
        let inner = inner_db.execute("INSERT INTO kv VALUES ('inner', 1)", ());
        tx.send(matches!(inner.wait(), Err(Error::WouldDeadlock)))
            .unwrap();
        Ok(())
    });
    assert_eq!(rx.recv_timeout(HUGE), Ok(true));
    outer.wait().unwrap();
    // The inner write was not lost: it runs after the outer one, on the one writer (this
    // empty write queues behind it).
    db.write(|_| Ok(())).wait().unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM kv WHERE k = 'inner'", ())
        .wait()
        .unwrap();
    assert_eq!(n, 1);
    // A read waiting on a read from inside a reader is an ordinary nested wait.
    let inner_db = db.clone();
    let v: i64 = db
        .read(move |_| Ok(inner_db.query_row::<i64, _>("SELECT 7", ()).wait().unwrap()))
        .wait()
        .unwrap();
    assert_eq!(v, 7);
}

#[test]
fn a_long_read_on_every_reader_opens_another_for_the_reads_behind_it_which_closes_when_idle() {
    watchdog("reader growth", || {
        let dir = TempDir::new("sqlite-grow");
        let db = Db::builder(dir.join("g.db"))
            .readers(1)
            .max_readers(4)
            .reader_keep_alive(std::time::Duration::from_millis(20))
            .open()
            .unwrap();
        db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
        let (tx, rx) = mpsc::channel();
        let long = db.read(move |c| {
            tx.send(()).unwrap();
            c.query_row(FOREVER, (), |r| r.get::<_, i64>(0))
        });
        rx.recv().unwrap();
        // The only reader computes without end; a read behind it still gets its answer, from
        // a reader opened for it.
        let n: i64 = db.query_row("SELECT count(*) FROM t", ()).wait().unwrap();
        assert_eq!(n, 0);
        let readers = db.stats().readers.unwrap().workers;
        assert!((2..=4).contains(&readers), "{readers} readers");
        assert_eq!(long.cancel(), offthread::CancelOutcome::Requested);
        assert!(matches!(long.wait(), Err(Error::Interrupted)));
        // Idle past their keep-alive, the extra readers close; the first one stays.
        eventually("the extra readers close", || {
            db.stats().readers.unwrap().workers == 1
        });
        assert_eq!(db.query_row::<i64, _>("SELECT 1", ()).wait().unwrap(), 1);
    });
}

#[test]
fn max_readers_above_256_fails_open_and_below_readers_keeps_a_fixed_set() {
    let dir = TempDir::new("sqlite-max-readers");
    let err = Db::builder(dir.join("m.db"))
        .max_readers(257)
        .open()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Open(msg) if msg.contains("max_readers")),
        "{err}"
    );
    let db = Db::builder(dir.join("m.db"))
        .readers(3)
        .max_readers(1)
        .open()
        .unwrap();
    assert_eq!(db.stats().readers.unwrap().workers, 3);
    assert_eq!(db.stats().writer.workers, 1);
}

#[test]
fn setup_runs_first_on_every_connection_readers_opened_later_included() {
    watchdog("setup on every connection", || {
        let dir = TempDir::new("sqlite-setup");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let db = Db::builder(dir.join("s.db"))
            .readers(1)
            .max_readers(3)
            .setup(move |c| {
                // Before the built-in set-up: a new file is not in WAL mode yet.
                let mode: String = c.query_row("PRAGMA journal_mode", (), |r| r.get(0))?;
                log.lock().unwrap().push(mode);
                c.pragma_update(None, "cache_size", -4000)
            })
            .open()
            .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["delete", "wal"],
            "the writer, then the reader"
        );
        // Hold the only reader with an endless read: the read behind it gets a new reader,
        // set up like the others.
        let (tx, rx) = mpsc::channel();
        let long = db.read(move |c| {
            tx.send(()).unwrap();
            c.query_row(FOREVER, (), |r| r.get::<_, i64>(0))
        });
        rx.recv().unwrap();
        let pages: i64 = db.query_row("PRAGMA cache_size", ()).wait().unwrap();
        assert_eq!(pages, -4000);
        assert_eq!(
            seen.lock().unwrap().len(),
            1 + db.stats().readers.unwrap().workers
        );
        assert!(seen.lock().unwrap().len() >= 3);
        long.cancel();
        assert!(matches!(long.wait(), Err(Error::Interrupted)));
    });
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error type of the caller's own.
#[derive(Debug)]
struct SchemaTooNew(i64);

impl std::fmt::Display for SchemaTooNew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "schema version {} is newer than this program", self.0)
    }
}

impl std::error::Error for SchemaTooNew {}

#[test]
fn setup_and_init_fail_open_with_the_callers_own_error() {
    let dir = TempDir::new("sqlite-hook-errors");
    // `?` takes rusqlite's errors and the caller's own alike into the boxed error.
    let check = |c: &mut offthread::sqlite::rusqlite::Connection| -> Result<(), BoxError> {
        let v: i64 = c.query_row("PRAGMA user_version", (), |r| r.get(0))?;
        if v > 0 {
            Err(SchemaTooNew(v))?;
        }
        Ok(())
    };
    let path = dir.join("h.db");
    Db::builder(&path)
        .init(|c| c.pragma_update(None, "user_version", 7))
        .open()
        .unwrap()
        .close();
    for err in [
        Db::builder(&path).setup(check).open().unwrap_err(),
        Db::builder(&path).init(check).open().unwrap_err(),
        Db::builder(&path)
            .init(
                |c| match c.query_row("PRAGMA user_version", (), |r| r.get(0))? {
                    7 => Err(SchemaTooNew(7).into()),
                    _ => Ok::<(), BoxError>(()),
                },
            )
            .open()
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::Open(msg) if msg.contains("schema version 7 is newer")),
            "{err}"
        );
    }
}

#[test]
fn migrations_run_from_init_with_the_migration_crates_own_error() {
    use rusqlite_migration::{M, Migrations};
    let dir = TempDir::new("sqlite-migrations");
    let path = dir.join("m.db");
    let migrations = || {
        Migrations::new(vec![
            M::up("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"),
            M::up("ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0"),
        ])
    };
    let first = migrations();
    let db = Db::builder(&path)
        .init(move |c| first.to_latest(c))
        .open()
        .unwrap();
    db.execute("INSERT INTO notes (body) VALUES ('a')", ())
        .wait()
        .unwrap();
    let pinned: i64 = db.query_row("SELECT pinned FROM notes", ()).wait().unwrap();
    assert_eq!(pinned, 0);
    db.close();
    // Opening again finds the schema current; a broken migration fails open with its error.
    let again = migrations();
    let db = Db::builder(&path)
        .init(move |c| again.to_latest(c))
        .open()
        .unwrap();
    db.close();
    let broken = Migrations::new(vec![M::up("CREATE TABLE notes (x)")]);
    let err = Db::builder(dir.join("broken.db"))
        .init(move |c| {
            c.execute_batch("CREATE TABLE notes (y)")?;
            broken.to_latest(c)?;
            Ok::<(), BoxError>(())
        })
        .open()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Open(msg) if msg.contains("running init")),
        "{err}"
    );
}

#[test]
fn query_all_and_query_opt_read_rows_without_a_closure() {
    let dir = TempDir::new("sqlite-rows");
    let db = kv(&dir);
    assert_eq!(
        db.query_all::<(String, i64), _>("SELECT k, v FROM kv", ())
            .wait()
            .unwrap(),
        []
    );
    db.write(|c| c.execute_batch("INSERT INTO kv VALUES ('a', 1), ('b', NULL), ('c', 3)"))
        .wait()
        .unwrap();
    let all: Vec<(String, Option<i64>)> = db
        .query_all("SELECT k, v FROM kv ORDER BY k", ())
        .wait()
        .unwrap();
    let want = [("a", Some(1)), ("b", None), ("c", Some(3))].map(|(k, v)| (k.to_owned(), v));
    assert_eq!(all, want);
    let one: Option<i64> = db
        .query_opt("SELECT v FROM kv WHERE k = ?1", ("c",))
        .wait()
        .unwrap();
    let none: Option<i64> = db
        .query_opt("SELECT v FROM kv WHERE k = ?1", ("z",))
        .wait()
        .unwrap();
    assert_eq!((one, none), (Some(3), None));
    // A NULL read as a plain number, or a text as a number, is rusqlite's type error.
    for bad in [
        db.query_all::<i64, _>("SELECT v FROM kv ORDER BY k", ())
            .wait(),
        db.query_all::<i64, _>("SELECT k FROM kv", ()).wait(),
    ] {
        assert!(matches!(bad, Err(Error::Sqlite(_))), "{bad:?}");
    }
}

/// A database whose one reader is held by a read blocked on `gate`, with its queue (of one)
/// full behind it.
fn full_reader_queue(dir: &TempDir, gate: &Gate) -> (Db, Vec<offthread::sqlite::Call<i64>>) {
    let db = Db::builder(dir.join("full.db"))
        .readers(1)
        .max_readers(1)
        .queue_capacity(1)
        .open()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let held = db.read(move |_| {
        tx.send(()).unwrap();
        g.wait();
        Ok(1)
    });
    rx.recv().unwrap();
    let queued = db.query_row::<i64, _>("SELECT 2", ());
    (db, vec![held, queued])
}

#[test]
fn a_call_on_a_full_queue_returns_at_once_and_waits_for_room_when_waited_on() {
    watchdog("a call on a full queue", || {
        let dir = TempDir::new("sqlite-full-wait");
        let gate = Gate::new();
        let (db, mut calls) = full_reader_queue(&dir, &gate);
        // The queue is full: the call comes back at once (the gate is still shut, so a call
        // that waited for room here would hang).
        let third = db.query_row::<i64, _>("SELECT 3", ());
        let third = third.try_wait().unwrap_err(); // not queued yet: no room
        assert!(!third.is_finished());
        assert!(matches!(
            db.try_read(|_| Ok(0)).wait(),
            Err(Error::QueueFull)
        ));
        gate.open();
        calls.push(third);
        let got: Vec<i64> = calls.into_iter().map(|c| c.wait().unwrap()).collect();
        assert_eq!(got, [1, 2, 3]);
    });
}

#[test]
fn awaiting_a_call_on_a_full_queue_waits_for_room_without_blocking_the_executor() {
    watchdog("an awaited call on a full queue", || {
        let dir = TempDir::new("sqlite-full-await");
        let gate = Gate::new();
        let (db, calls) = full_reader_queue(&dir, &gate);
        let third = db.query_row::<i64, _>("SELECT 3", ());
        // One thread runs both: the await must leave it free for the task that opens the gate.
        let (got, ()) = futures::executor::block_on(async {
            futures::future::join(third.into_future(), async { gate.open() }).await
        });
        assert_eq!(got.unwrap(), 3);
        let rest: Vec<i64> = calls.into_iter().map(|c| c.wait().unwrap()).collect();
        assert_eq!(rest, [1, 2]);
    });
}

/// `query_stream` never waits for room: on a full queue its rows come back at once, and the
/// query is queued by the first look at them — `try_next` only if there is room, iterating
/// waiting for it.
#[test]
fn a_query_stream_on_a_full_queue_returns_at_once_and_waits_for_room_when_read() {
    watchdog("a query stream on a full queue", || {
        let dir = TempDir::new("sqlite-full-stream");
        let gate = Gate::new();
        let (db, calls) = full_reader_queue(&dir, &gate);
        let mut rows = db.query_stream("SELECT 3", (), 10, |r| r.get::<_, i64>(0));
        assert!(rows.try_next().is_none());
        assert!(!rows.is_finished());
        gate.open();
        assert_eq!(rows.next().unwrap().unwrap(), [3]);
        assert!(rows.next().is_none());
        let got: Vec<i64> = calls.into_iter().map(|c| c.wait().unwrap()).collect();
        assert_eq!(got, [1, 2]);
    });
}

/// Polled as a stream, a query on a full queue waits for room without blocking the executor;
/// polled once and then iterated, it waits for that same room on the iterating thread.
#[test]
fn a_query_stream_on_a_full_queue_is_polled_without_blocking() {
    use futures::StreamExt;
    watchdog("a query stream on a full queue, polled", || {
        let dir = TempDir::new("sqlite-full-stream-poll");
        let gate = Gate::new();
        let (db, calls) = full_reader_queue(&dir, &gate);
        let mut rows = db.query_stream("SELECT 3", (), 10, |r| r.get::<_, i64>(0));
        // One thread runs both: the poll must leave it free for the task that opens the gate.
        let (got, ()) =
            futures::executor::block_on(futures::future::join(StreamExt::next(&mut rows), async {
                gate.open()
            }));
        assert_eq!(got.unwrap().unwrap(), [3]);
        for c in calls {
            c.wait().unwrap();
        }

        let gate = Gate::new();
        let dir = TempDir::new("sqlite-full-stream-mixed");
        let (db, calls) = full_reader_queue(&dir, &gate);
        let mut rows = db.query_stream("SELECT 4", (), 10, |r| r.get::<_, i64>(0));
        let waker = futures::task::noop_waker();
        let polled = rows.poll_next_unpin(&mut std::task::Context::from_waker(&waker));
        assert!(polled.is_pending(), "the gate is shut and the queue full");
        let g = gate.clone();
        let opener = std::thread::spawn(move || g.open());
        assert_eq!(Iterator::next(&mut rows).unwrap().unwrap(), [4]);
        opener.join().unwrap();
        for c in calls {
            c.wait().unwrap();
        }
    });
}

#[test]
fn a_call_waiting_for_room_can_be_cancelled_and_a_dropped_write_still_runs() {
    watchdog("calls waiting for room", || {
        let dir = TempDir::new("sqlite-full-drop");
        let gate = Gate::new();
        let (db, calls) = full_reader_queue(&dir, &gate);
        let cancelled = db.query_row::<i64, _>("SELECT 3", ());
        assert_eq!(cancelled.cancel(), offthread::CancelOutcome::Dequeued);
        assert!(cancelled.is_finished());
        assert!(matches!(cancelled.wait(), Err(Error::Cancelled)));
        gate.open();
        let got: Vec<i64> = calls.into_iter().map(|c| c.wait().unwrap()).collect();
        assert_eq!(got, [1, 2]);

        // The writer held the same way: a write made then dropped runs once there is room.
        db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
        let gate = Gate::new();
        let held = hold_writer(&db, &gate);
        let queued = db.execute("INSERT INTO t VALUES (1)", ());
        let dropped = db.execute("INSERT INTO t VALUES (2)", ());
        // Dropping it waits for room (the one drop that can wait): drop it on its own thread.
        let dropper = std::thread::spawn(move || drop(dropped));
        gate.open();
        dropper.join().unwrap();
        held.wait().unwrap();
        queued.wait().unwrap();
        // On the writer, so after the writes queued before it (the dropped one included).
        let sum: i64 = db
            .write(|c| c.query_row("SELECT sum(x) FROM t", (), |r| r.get(0)))
            .wait()
            .unwrap();
        assert_eq!(sum, 3);
    });
}

#[test]
fn a_read_past_its_time_limit_is_interrupted_or_never_starts() {
    watchdog("read time limits", || {
        let dir = TempDir::new("sqlite-read-timeout");
        let db = Db::builder(dir.join("t.db"))
            .readers(1)
            .max_readers(1)
            .open()
            .unwrap();
        let limit = std::time::Duration::from_millis(20);
        let (tx, rx) = mpsc::channel();
        let running = db.read_timeout(limit, move |c| {
            tx.send(()).unwrap();
            c.query_row(FOREVER, (), |r| r.get::<_, i64>(0))
        });
        rx.recv().unwrap();
        // Behind it on the only reader: its limit passes before it can start.
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        let late = db.read_timeout(std::time::Duration::ZERO, move |_| {
            r.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        assert!(matches!(running.wait(), Err(Error::Timeout)));
        assert!(matches!(late.wait(), Err(Error::Timeout)));
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        // The reader is free, and a limit never reaches the calls after it.
        let n: i64 = db
            .read(|c| c.query_row("SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 200000) SELECT x FROM c)", (), |r| r.get(0)))
            .wait()
            .unwrap();
        assert_eq!(n, 200_000);
    });
}

#[test]
fn close_async_closes_without_blocking_the_executor() {
    watchdog("close_async", || {
        let dir = TempDir::new("sqlite-close-async");
        let db = Db::open(dir.join("c.db")).unwrap();
        db.execute("CREATE TABLE t (x)", ()).wait().unwrap();
        let gate = Gate::new();
        let (tx, rx) = mpsc::channel();
        let g = gate.clone();
        let busy = db.write(move |c| {
            tx.send(()).unwrap();
            g.wait();
            c.execute("INSERT INTO t VALUES (1)", ())
        });
        rx.recv().unwrap();
        // The close waits for the running write, which waits for the gate, which a task on
        // the same thread opens: a close that blocked the thread would never end.
        futures::executor::block_on(futures::future::join(db.close_async(), async {
            gate.open()
        }));
        assert_eq!(busy.wait().unwrap(), 1);
        assert!(matches!(
            db.query_row::<i64, _>("SELECT 1", ()).wait(),
            Err(Error::Closed)
        ));
        assert!(!dir.join("c.db-wal").exists());
    });
}

/// A database of `rows` rows of 32 KiB (several backup steps' worth).
fn blobs(dir: &TempDir, rows: i64) -> Db {
    let db = Db::open(dir.join("big.db")).unwrap();
    db.write(move |c| {
        c.execute_batch("CREATE TABLE b (id INTEGER PRIMARY KEY, data BLOB)")?;
        for i in 0..rows {
            c.execute("INSERT INTO b VALUES (?1, zeroblob(32768))", (i,))?;
        }
        Ok(())
    })
    .wait()
    .unwrap();
    db
}

#[test]
fn backup_copies_a_snapshot_in_steps_while_writes_go_on() {
    watchdog("backup", || {
        let dir = TempDir::new("sqlite-backup");
        let db = blobs(&dir, 64);
        let d = db.clone();
        let mut steps: Vec<(u64, u64)> = Vec::new();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        db.backup_to(dir.join("copy.db"), move |copied, total| {
            if steps.is_empty() {
                // A write made (and finished) while the backup runs: never held up by it,
                // and not in the copy, which is the database as of the backup's start.
                d.execute("INSERT INTO b VALUES (1000, NULL)", ())
                    .wait()
                    .unwrap();
            }
            steps.push((copied, total));
            *log.lock().unwrap() = steps.clone();
        })
        .wait()
        .unwrap();
        let steps = seen.lock().unwrap().clone();
        assert!(steps.len() >= 2, "{steps:?}");
        let (last, total) = *steps.last().unwrap();
        assert_eq!(last, total);
        assert!(steps.windows(2).all(|w| w[0].0 <= w[1].0), "{steps:?}");
        let copy = Db::open(dir.join("copy.db")).unwrap();
        let n: i64 = copy.query_row("SELECT count(*) FROM b", ()).wait().unwrap();
        assert_eq!(n, 64);
        let ok: String = copy.query_row("PRAGMA integrity_check", ()).wait().unwrap();
        assert_eq!(ok, "ok");
        let now: i64 = db.query_row("SELECT count(*) FROM b", ()).wait().unwrap();
        assert_eq!(now, 65);
        assert!(!dir.join("copy.db.offthread-partial").exists());
    });
}

#[test]
fn a_cancelled_backup_stops_between_steps_and_leaves_no_file() {
    watchdog("cancelled backup", || {
        let dir = TempDir::new("sqlite-backup-cancel");
        let db = blobs(&dir, 64);
        let (tx, rx) = mpsc::channel();
        let gate = Gate::new();
        let g = gate.clone();
        let backup = db.backup_to(dir.join("copy.db"), move |_, _| {
            let _ = tx.send(());
            g.wait();
        });
        rx.recv().unwrap();
        assert_eq!(backup.cancel(), offthread::CancelOutcome::Requested);
        gate.open();
        assert!(matches!(backup.wait(), Err(Error::Interrupted)));
        assert!(!dir.join("copy.db").exists());
        assert!(!dir.join("copy.db.offthread-partial").exists());
    });
}

#[test]
fn stats_count_the_errors_of_calls_that_ran_by_kind() {
    let dir = TempDir::new("sqlite-error-counts");
    let db = kv(&dir);
    assert_eq!(db.stats().errors, Default::default());
    let _ = db.execute("INSERT INTO nowhere VALUES (1)", ()).wait();
    let _ = db
        .query_row::<i64, _>("SELECT v FROM kv WHERE k = 'none'", ())
        .wait();
    let _ = db
        .read_timeout(std::time::Duration::ZERO, |_| Ok(()))
        .wait();
    let _ = db
        .write(|_| -> offthread::sqlite::rusqlite::Result<()> { panic!("boom") })
        .wait();
    let _ = db.write(|c| c.execute_batch("BEGIN")).wait();
    db.execute("INSERT INTO kv VALUES ('a', 1)", ())
        .wait()
        .unwrap();
    let e = db.stats().errors;
    assert_eq!(
        (
            e.sqlite,
            e.timeout,
            e.panicked,
            e.transaction,
            e.busy,
            e.interrupted,
            e.other
        ),
        (2, 1, 1, 1, 0, 0, 0),
        "{e:?}"
    );
}
