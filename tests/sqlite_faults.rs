//! Fault injection under a running `sqlite::Db`: the database file deleted, replaced, made
//! read-only, and the disk full. Every failure is a typed error, nothing hangs, nothing that was
//! committed is lost, and `PRAGMA integrity_check` passes afterwards. (Feature `sqlite`.)
#![cfg(any(feature = "sqlite", feature = "sqlite-system"))]
mod common;
use common::*;
use offthread::sqlite::{Db, Error};
use rusqlite::ErrorCode;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAL_FILES: [&str; 2] = ["-wal", "-shm"];

fn open(path: &Path) -> Db {
    Db::builder(path)
        .readers(2)
        .init(|c| c.execute_batch("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)"))
        .open()
        .unwrap()
}

fn insert(db: &Db, k: i64) -> Result<usize, Error> {
    db.execute("INSERT INTO t VALUES (?1, zeroblob(500))", (k,))
        .wait()
}

fn keys(db: &Db) -> Result<Vec<i64>, Error> {
    db.read(|c| {
        let mut stmt = c.prepare("SELECT k FROM t ORDER BY k")?;
        stmt.query_map((), |r| r.get(0))?.collect()
    })
    .wait()
}

fn integrity(db: &Db) -> String {
    db.read(|c| c.query_row("PRAGMA integrity_check", (), |r| r.get(0)))
        .wait()
        .unwrap()
}

/// SQLite's code for a write refused because the file was deleted or replaced.
fn is_moved(e: &Error) -> bool {
    matches!(
        e.as_rusqlite(),
        Some(rusqlite::Error::SqliteFailure(f, _))
            if f.extended_code == rusqlite::ffi::SQLITE_READONLY_DBMOVED
    )
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[test]
fn writes_to_a_deleted_database_file_are_refused_not_lost() {
    let dir = TempDir::new("fault-deleted");
    let path = dir.join("f.db");
    let db = open(&path);
    for k in 0..100 {
        insert(&db, k).unwrap();
    }
    std::fs::remove_file(&path).unwrap();
    // Without the writer's check SQLite would report these writes `Ok` and lose them.
    let e = insert(&db, 100).unwrap_err();
    assert!(is_moved(&e), "{e:?}");
    assert_eq!(e.sqlite_code(), Some(ErrorCode::ReadOnly));
    assert!(e.to_string().contains("deleted or replaced"), "{e}");
    let e = db
        .transaction(|tx| tx.execute("INSERT INTO t VALUES (101, NULL)", ()))
        .wait()
        .unwrap_err();
    assert!(is_moved(&e), "{e:?}");
    let session = db.session(Duration::from_secs(60));
    let e = session
        .execute("INSERT INTO t VALUES (102, NULL)", ())
        .wait();
    assert!(e.is_err());
    assert!(is_moved(&session.commit().wait().unwrap_err()));
    // Reads answer (from the open file) or fail with a typed error; none hangs or panics.
    for _ in 0..10 {
        match keys(&db) {
            Ok(ks) => assert_eq!(ks, (0..100).collect::<Vec<_>>()),
            Err(e) => assert!(e.as_rusqlite().is_some(), "{e:?}"),
        }
    }
    db.close();
    // The path opens afresh: a new, empty, sound database.
    let db = open(&path);
    assert_eq!(keys(&db).unwrap(), Vec::<i64>::new());
    assert_eq!(integrity(&db), "ok");
    insert(&db, 1).unwrap();
    db.close();
}

#[test]
fn writes_to_a_replaced_database_file_are_refused() {
    let dir = TempDir::new("fault-replaced");
    let path = dir.join("f.db");
    let db = open(&path);
    insert(&db, 1).unwrap();
    // Another file renamed over the open one: the path now names a different file.
    let other = dir.join("other.db");
    std::fs::write(&other, b"").unwrap();
    std::fs::rename(&other, &path).unwrap();
    let e = insert(&db, 2).unwrap_err();
    assert!(is_moved(&e), "{e:?}");
    db.close();
}

/// Makes files immutable (`chattr +i`), which stops even root from writing them, and makes
/// them writable again when dropped.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(paths: Vec<PathBuf>) -> Option<Self> {
        let guard = Self(Vec::new());
        let mut guard = guard;
        for p in paths {
            let ok = std::process::Command::new("chattr")
                .arg("+i")
                .arg(&p)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return None; // the guard undoes what was set
            }
            guard.0.push(p);
        }
        // The premise: the file really refuses writes now.
        let refused = std::fs::OpenOptions::new()
            .append(true)
            .open(&guard.0[0])
            .is_err();
        refused.then_some(guard)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(p)
                .status();
        }
    }
}

#[test]
fn a_database_made_read_only_under_a_running_db_fails_writes_with_typed_errors() {
    let dir = TempDir::new("fault-readonly");
    let path = dir.join("f.db");
    let db = open(&path);
    for k in 0..100 {
        insert(&db, k).unwrap();
    }
    // The database and its WAL become read-only. (Not the `-shm` file: SQLite maps it into
    // memory, and a write fault on an immutable mapping is a SIGBUS that no library can catch;
    // see GUARANTEES.md.)
    let files = vec![path.clone(), with_suffix(&path, WAL_FILES[0])];
    let Some(guard) = Immutable::set(files) else {
        eprintln!("skipped: this file system or user cannot make a file immutable (chattr +i)");
        return;
    };
    let e = insert(&db, 100).unwrap_err();
    assert_eq!(e.sqlite_code(), Some(ErrorCode::SystemIoFailure), "{e:?}");
    let e = db
        .transaction(|tx| {
            tx.execute("INSERT INTO t VALUES (101, NULL)", ())?;
            tx.execute("INSERT INTO t VALUES (102, NULL)", ())
        })
        .wait()
        .unwrap_err();
    assert!(e.as_rusqlite().is_some(), "{e:?}");
    // Reads go on, and see every committed row and nothing else.
    assert_eq!(keys(&db).unwrap(), (0..100).collect::<Vec<_>>());
    assert_eq!(integrity(&db), "ok");
    // Writable again: the same running Db writes again.
    drop(guard);
    insert(&db, 100).unwrap();
    assert_eq!(keys(&db).unwrap(), (0..=100).collect::<Vec<_>>());
    db.close();
    let db = open(&path);
    assert_eq!(keys(&db).unwrap(), (0..=100).collect::<Vec<_>>());
    assert_eq!(integrity(&db), "ok");
    db.close();
}

#[test]
fn a_full_disk_is_a_typed_error_and_rolls_back_whole_transactions() {
    let dir = TempDir::new("fault-full");
    let path = dir.join("f.db");
    let db = open(&path);
    for k in 0..100 {
        insert(&db, k).unwrap();
    }
    // A small `max_page_count` on the writer makes the database "full" a few pages on.
    let pages: i64 = db
        .write(|c| c.query_row("PRAGMA page_count", (), |r| r.get(0)))
        .wait()
        .unwrap();
    db.write(move |c| c.pragma_update(None, "max_page_count", pages + 4))
        .wait()
        .unwrap();
    let mut committed: Vec<i64> = (0..100).collect();
    let full = loop {
        let k = committed.len() as i64;
        match insert(&db, k) {
            Ok(_) => committed.push(k),
            Err(e) => break e,
        }
        assert!(k < 10_000, "the database never filled up");
    };
    assert_eq!(full.sqlite_code(), Some(ErrorCode::DiskFull), "{full:?}");
    // A transaction that runs out of room is rolled back whole.
    let e = db
        .transaction(|tx| {
            for k in 0..50 {
                tx.execute("INSERT INTO t VALUES (?1, zeroblob(500))", (1_000_000 + k,))?;
            }
            Ok(())
        })
        .wait()
        .unwrap_err();
    assert_eq!(e.sqlite_code(), Some(ErrorCode::DiskFull));
    // So is a session whose statement runs out of room and is then committed.
    let session = db.session(Duration::from_secs(60));
    let _ = session
        .execute("INSERT INTO t VALUES (2000000, zeroblob(100000))", ())
        .wait();
    let _ = session.commit().wait();
    // A panic in the middle of a transaction rolls it back too.
    let panicked: Result<(), Error> = db
        .transaction(|tx| {
            tx.execute("DELETE FROM t", ())?;
            panic!("injected")
        })
        .wait();
    assert!(matches!(panicked, Err(Error::Panicked(_))));
    assert_eq!(keys(&db).unwrap(), committed);
    assert_eq!(integrity(&db), "ok");
    // Room again: writes go on.
    db.write(|c| c.pragma_update(None, "max_page_count", 1_000_000))
        .wait()
        .unwrap();
    let k = committed.len() as i64;
    insert(&db, k).unwrap();
    committed.push(k);
    db.close();
    let db = open(&path);
    assert_eq!(keys(&db).unwrap(), committed);
    assert_eq!(integrity(&db), "ok");
    db.close();
}
