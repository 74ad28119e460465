//! A proptest model of `sqlite::Db`: random writes, transactions (committed, failed, panicking,
//! cancelled), write sessions (committed, rolled back, dropped), detached and cancelled calls,
//! reads, cancelled reads, streamed scans and reopening, against a sorted `Vec` model of the
//! table. After every step the database equals the model, and at the end it passes
//! `PRAGMA integrity_check`. (Feature `sqlite`.)
#![cfg(any(feature = "sqlite", feature = "sqlite-system"))]
mod common;
use common::*;
use offthread::CancelOutcome;
use offthread::sqlite::{Call, Db, Error};
use proptest::prelude::*;
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// The table, as the model holds it: `(k, v)` sorted by `k`.
type Table = Vec<(i64, i64)>;

#[derive(Debug, Clone, Copy)]
enum Stmt {
    /// Fails (constraint) if `k` exists.
    Insert(i64, i64),
    Update(i64, i64),
    Delete(i64),
}

impl Stmt {
    /// Applies the statement to the model; `false` if SQLite would fail it.
    fn apply(self, t: &mut Table) -> bool {
        let at = |t: &Table, k| t.binary_search_by_key(&k, |&(k, _)| k);
        match self {
            Stmt::Insert(k, v) => match at(t, k) {
                Ok(_) => return false,
                Err(i) => t.insert(i, (k, v)),
            },
            Stmt::Update(k, v) => {
                if let Ok(i) = at(t, k) {
                    t[i].1 = v;
                }
            }
            Stmt::Delete(k) => {
                if let Ok(i) = at(t, k) {
                    t.remove(i);
                }
            }
        }
        true
    }

    /// Runs it on a connection.
    fn exec(self, c: &Connection) -> rusqlite::Result<usize> {
        match self {
            Stmt::Insert(k, v) => c.execute("INSERT INTO kv (k, v) VALUES (?1, ?2)", (k, v)),
            Stmt::Update(k, v) => c.execute("UPDATE kv SET v = ?2 WHERE k = ?1", (k, v)),
            Stmt::Delete(k) => c.execute("DELETE FROM kv WHERE k = ?1", (k,)),
        }
    }

    /// Queues it on the writer through the statement cache (`Db::execute`).
    fn submit(self, db: &Db) -> Call<usize> {
        match self {
            Stmt::Insert(k, v) => db.execute("INSERT INTO kv (k, v) VALUES (?1, ?2)", (k, v)),
            Stmt::Update(k, v) => db.execute("UPDATE kv SET v = ?2 WHERE k = ?1", (k, v)),
            Stmt::Delete(k) => db.execute("DELETE FROM kv WHERE k = ?1", (k,)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum TxEnd {
    Commit,
    /// The closure returns `Err` after its statements.
    Fail,
    Panic,
}

#[derive(Debug, Clone, Copy)]
enum SessionEnd {
    Commit,
    Rollback,
    Drop,
}

#[derive(Debug, Clone)]
enum Op {
    Write(Stmt),
    /// Submitted, then cancelled at once: it runs whole or not at all.
    WriteCancelled(Stmt),
    /// The call is dropped: the write still runs.
    WriteDetached(Stmt),
    Transaction(Vec<Stmt>, TxEnd),
    TransactionCancelled(Vec<Stmt>),
    Session(Vec<Stmt>, SessionEnd),
    Read(i64),
    ReadCancelled(i64),
    Stream(usize),
    Reopen,
}

fn stmt() -> impl Strategy<Value = Stmt> {
    let k = 0..8i64;
    prop_oneof![
        (k.clone(), 0..100i64).prop_map(|(k, v)| Stmt::Insert(k, v)),
        (k.clone(), 0..100i64).prop_map(|(k, v)| Stmt::Update(k, v)),
        k.prop_map(Stmt::Delete),
    ]
}

fn stmts() -> impl Strategy<Value = Vec<Stmt>> {
    proptest::collection::vec(stmt(), 0..5)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => stmt().prop_map(Op::Write),
        1 => stmt().prop_map(Op::WriteCancelled),
        1 => stmt().prop_map(Op::WriteDetached),
        2 => (stmts(), prop_oneof![Just(TxEnd::Commit), Just(TxEnd::Fail), Just(TxEnd::Panic)])
            .prop_map(|(s, e)| Op::Transaction(s, e)),
        1 => stmts().prop_map(Op::TransactionCancelled),
        2 => (stmts(), prop_oneof![
            Just(SessionEnd::Commit),
            Just(SessionEnd::Rollback),
            Just(SessionEnd::Drop)
        ])
            .prop_map(|(s, e)| Op::Session(s, e)),
        2 => (0..8i64).prop_map(Op::Read),
        1 => (0..8i64).prop_map(Op::ReadCancelled),
        1 => (1..4usize).prop_map(Op::Stream),
        1 => Just(Op::Reopen),
    ]
}

fn open(path: &Path) -> Db {
    Db::builder(path)
        .readers(2)
        .init(|c| {
            c.execute_batch("CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v INTEGER)")
        })
        .open()
        .unwrap()
}

fn scan(db: &Db) -> Table {
    db.read(|c| {
        let mut stmt = c.prepare_cached("SELECT k, v FROM kv ORDER BY k")?;
        stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    })
    .wait()
    .unwrap()
}

fn point(db: &Db, k: i64) -> Call<Option<i64>> {
    db.read(move |c| {
        use rusqlite::OptionalExtension;
        c.query_row("SELECT v FROM kv WHERE k = ?1", (k,), |r| r.get(0))
            .optional()
    })
}

fn expect_point(t: &Table, k: i64) -> Option<i64> {
    t.iter().find(|&&(key, _)| key == k).map(|&(_, v)| v)
}

/// Checks one write's reply against the model, applying it there.
fn check_write(reply: Result<usize, Error>, s: Stmt, t: &mut Table) {
    let ok = s.apply(t);
    match reply {
        Ok(_) => assert!(ok, "{s:?} succeeded; the model says it fails"),
        Err(e) => {
            assert!(!ok, "{s:?} failed: {e}");
            assert_eq!(
                e.sqlite_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation)
            );
        }
    }
}

fn step(db: &mut Db, path: &Path, op: &Op, t: &mut Table) {
    match op {
        &Op::Write(s) => check_write(s.submit(db).wait(), s, t),
        &Op::WriteCancelled(s) => {
            let call = s.submit(db);
            let cancel = call.cancel();
            let reply = call.wait();
            if cancel == CancelOutcome::Dequeued {
                assert!(matches!(reply, Err(Error::Cancelled)), "{reply:?}");
            } else {
                check_write(reply, s, t);
            }
        }
        &Op::WriteDetached(s) => {
            drop(s.submit(db));
            s.apply(t);
            // Writes run in order: once a later one is done, so is the detached one.
            db.write(|_| Ok(())).wait().unwrap();
        }
        Op::Transaction(stmts, end) => {
            let (stmts, end) = (stmts.clone(), *end);
            let reply = db
                .transaction(move |tx| {
                    for s in &stmts {
                        s.exec(tx)?;
                    }
                    match end {
                        TxEnd::Commit => Ok(()),
                        TxEnd::Fail => Err(rusqlite::Error::InvalidQuery),
                        TxEnd::Panic => panic!("injected"),
                    }
                })
                .wait();
            let mut after = t.clone();
            let all_ok = stmts_apply(op_stmts(op), &mut after);
            match (end, all_ok) {
                (TxEnd::Commit, true) => {
                    assert!(reply.is_ok(), "{reply:?}");
                    *t = after;
                }
                (TxEnd::Panic, true) => assert!(matches!(reply, Err(Error::Panicked(_)))),
                _ => assert!(reply.is_err()),
            }
        }
        Op::TransactionCancelled(stmts) => {
            let moved = stmts.clone();
            let call = db.transaction(move |tx| {
                for s in &moved {
                    s.exec(tx)?;
                }
                Ok(())
            });
            let cancel = call.cancel();
            let reply = call.wait();
            let mut after = t.clone();
            let all_ok = stmts_apply(stmts, &mut after);
            if cancel == CancelOutcome::Dequeued {
                assert!(matches!(reply, Err(Error::Cancelled)), "{reply:?}");
            } else {
                assert_eq!(reply.is_ok(), all_ok, "{reply:?}");
                if all_ok {
                    *t = after;
                }
            }
        }
        Op::Session(stmts, end) => {
            let session = db.session(Duration::from_secs(600));
            let mut after = t.clone();
            for &s in stmts {
                // A failed statement is undone alone; the session goes on.
                check_write(
                    session.execute(stmt_sql(s), stmt_params(s)).wait(),
                    s,
                    &mut after,
                );
            }
            match end {
                SessionEnd::Commit => {
                    session.commit().wait().unwrap();
                    *t = after;
                }
                SessionEnd::Rollback => session.rollback().wait().unwrap(),
                SessionEnd::Drop => drop(session),
            }
        }
        &Op::Read(k) => assert_eq!(point(db, k).wait().unwrap(), expect_point(t, k)),
        &Op::ReadCancelled(k) => {
            let call = point(db, k);
            call.cancel();
            match call.wait() {
                Ok(v) => assert_eq!(v, expect_point(t, k)),
                Err(Error::Cancelled | Error::Interrupted) => {}
                Err(e) => panic!("a cancelled read failed with {e:?}"),
            }
        }
        &Op::Stream(batch) => {
            let rows: Table = db
                .query_stream("SELECT k, v FROM kv ORDER BY k", (), batch, |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .flat_map(|b| b.unwrap())
                .collect();
            assert_eq!(&rows, t);
        }
        Op::Reopen => {
            db.close();
            *db = open(path);
        }
    }
}

fn op_stmts(op: &Op) -> &[Stmt] {
    match op {
        Op::Transaction(s, _) | Op::TransactionCancelled(s) | Op::Session(s, _) => s,
        _ => &[],
    }
}

/// Applies statements in order; `false` (and stops) at the first the model says fails.
fn stmts_apply(stmts: &[Stmt], t: &mut Table) -> bool {
    stmts.iter().all(|s| s.apply(t))
}

fn stmt_sql(s: Stmt) -> &'static str {
    match s {
        Stmt::Insert(..) => "INSERT INTO kv (k, v) VALUES (?1, ?2)",
        Stmt::Update(..) => "UPDATE kv SET v = ?2 WHERE k = ?1",
        Stmt::Delete(_) => "DELETE FROM kv WHERE k = ?1 AND ?2 IS NOT NULL",
    }
}

fn stmt_params(s: Stmt) -> (i64, i64) {
    match s {
        Stmt::Insert(k, v) | Stmt::Update(k, v) => (k, v),
        Stmt::Delete(k) => (k, 0),
    }
}

fn run(ops: &[Op]) {
    let dir = TempDir::new("sqlite-model");
    let path = dir.join("model.db");
    let mut db = open(&path);
    let mut table = Table::new();
    for op in ops {
        step(&mut db, &path, op, &mut table);
        assert_eq!(scan(&db), table, "after {op:?}");
    }
    let check: String = db
        .read(|c| c.query_row("PRAGMA integrity_check", (), |r| r.get(0)))
        .wait()
        .unwrap();
    assert_eq!(check, "ok");
    db.close();
    // Everything committed survived the close.
    let db = open(&path);
    assert_eq!(scan(&db), table);
    db.close();
}

proptest! {
    // 64 cases by default (each opens a database); `.ci/run` runs 1,000.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]
    #[test]
    fn the_database_always_equals_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(&ops);
    }
}
