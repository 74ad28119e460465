//! A tour of `offthread::sqlite`: open, write, read, transactions, a write session, a streamed
//! query, cancelling a runaway read, errors, close.
//!
//! Run: `cargo run --release --features sqlite --example sqlite`

use std::time::{Duration, Instant};

use offthread::sqlite::{Db, Error};

fn main() -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("offthread-sqlite-tour-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join("tour.db");

    // Open: the writer sets up WAL and runs `init`; then the readers open.
    let db = Db::builder(&path)
        .readers(2)
        .init(|c| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
            )
        })
        .open()?;
    println!("opened {} (readers: 2, WAL)", path.display());

    // Writes return a Call at once; `.wait()?` (or `.await?`) gives the value.
    let t = Instant::now();
    let calls: Vec<_> = (0..1000)
        .map(|i| {
            db.execute(
                "INSERT INTO notes (body) VALUES (?1)",
                (format!("note {i}"),),
            )
        })
        .collect();
    println!("queued 1000 inserts in {:.2?} without waiting", t.elapsed());
    for c in calls {
        c.wait()?;
    }
    println!("all 1000 inserted after {:.2?}", t.elapsed());

    // Reads run on the readers, in parallel with writes.
    let n: i64 = db.query_row("SELECT count(*) FROM notes", ()).wait()?;
    println!("count: {n}");

    // A transaction: BEGIN IMMEDIATE, commit on Ok, roll back on Err or panic.
    let renamed = db
        .transaction(|tx| tx.execute("UPDATE notes SET body = upper(body) WHERE id <= 10", ()))
        .wait()?;
    println!("transaction changed {renamed} rows");

    // A write session: a transaction across several calls, with a time limit.
    let session = db.session(Duration::from_secs(2));
    let first: String = session
        .run(|c| c.query_row("SELECT body FROM notes WHERE id = 1", (), |r| r.get(0)))
        .wait()?;
    session
        .execute(
            "INSERT INTO notes (body) VALUES (?1)",
            (format!("after {first}"),),
        )
        .wait()?;
    session.commit().wait()?;
    println!("session committed (read {first:?}, then wrote)");

    // Stream a big result in batches: memory stays bounded, the reader is freed on drop.
    let mut total = 0;
    for batch in db.query_stream("SELECT body FROM notes", (), 128, |r| r.get::<_, String>(0)) {
        total += batch?.len();
    }
    println!("streamed {total} rows in batches of 128");

    // Cancel a runaway read: it is interrupted, and its reader is free at once.
    let runaway = db.read(|c| {
        c.query_row(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            (),
            |r| r.get::<_, i64>(0),
        )
    });
    std::thread::sleep(Duration::from_millis(20)); // let it run a little
    let t = Instant::now();
    runaway.cancel();
    match runaway.wait() {
        Err(Error::Interrupted) => {
            println!("runaway read interrupted {:.2?} after cancel", t.elapsed())
        }
        other => println!("runaway read ended as {other:?}"),
    }

    // Errors are typed; one `?` handles them all.
    match db.execute("INSERT INTO nowhere VALUES (1)", ()).wait() {
        Err(e) => println!("bad SQL: {e}"),
        Ok(_) => unreachable!(),
    }

    // Close: drain, close readers then the writer; the -wal and -shm files go away.
    db.close();
    let wal = path.with_extension("db-wal");
    println!("closed; -wal file present: {}", wal.exists());
    assert!(matches!(
        db.query_row::<i64, _>("SELECT 1", ()).wait(),
        Err(Error::Closed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
