//! `cargo bench --features sqlite --bench sqlite`: offthread's `Db` beside direct rusqlite on
//! the caller, tokio-rusqlite 0.8 and async-sqlite 0.6 (all on rusqlite 0.40), in one run.
//!
//! Scenarios:
//! - `point`: 20,000 point reads by primary key with up to 64 in flight (direct: serial),
//!   offthread both waited and awaited.
//! - `latency`: one call at a time, submit then wait: median and p99.
//! - `hol`: one slow read, then 100 fast reads: how many fast reads finished after the slow one.
//! - `cancel`: cancel (or drop) a running endless read; time until a new read completes.
//! - `rw`: 4 threads × 250 read-then-write transactions: errors and wall time.
//! - `mixed`: 4 callers looping a 20–40 ms read beside 60 callers doing point reads, each
//!   system freshly opened with its defaults: point reads per second and their p99.
#![allow(missing_docs)]

mod common;
use common::*;

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use offthread::sqlite::Db;
use rusqlite::Connection;

const ROWS: i64 = 10_000;
const POINT_READS: usize = 20_000;
const IN_FLIGHT: usize = 64;
const REPS: usize = 5;
const LATENCY_CALLS: usize = 2000;
const FAST_READS: usize = 100;
const RW_THREADS: usize = 4;
const RW_TXNS: usize = 250;
const SLOW: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3000000) SELECT count(*) FROM c";
const FOREVER: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
const SYSTEMS: [&str; 4] = [
    "offthread",
    "direct (caller)",
    "tokio-rusqlite",
    "async-sqlite",
];
/// The point scenario also runs offthread awaited (under the same tokio runtime as the async
/// peers), beside the waited form above.
const POINT_SYSTEMS: [&str; 5] = [
    "offthread",
    "offthread (awaited)",
    "direct (caller)",
    "tokio-rusqlite",
    "async-sqlite",
];

/// A fresh database file with `ROWS` rows in `kv(id, v)`, set to WAL.
fn fixture(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let mut c = Connection::open(&path).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", (), |r| r.get::<_, String>(0))
        .unwrap();
    c.execute_batch("CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    let tx = c.transaction().unwrap();
    for i in 0..ROWS {
        tx.execute("INSERT INTO kv VALUES (?1, ?2)", (i, format!("value {i}")))
            .unwrap();
    }
    tx.commit().unwrap();
    path
}

fn point_sql() -> &'static str {
    "SELECT v FROM kv WHERE id = ?1"
}

/// The `mixed` scenario's systems: offthread's `Db`, tokio-rusqlite's one connection, and a
/// pool of 10 connections on 10 threads (the shape of sqlx's default pool).
const MIXED_SYSTEMS: [&str; 3] = ["offthread", "tokio-rusqlite", "10 connections"];
const MIXED_SCANNERS: usize = 4;
const MIXED_POINTS: usize = 60;
const MIXED_TIME: Duration = Duration::from_secs(2);
const MIXED_REPS: usize = 3;
/// A CPU-bound read of 20–40 ms here, like a full scan of a cached table: `?1` rows counted.
const LONG_READ: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ?1) SELECT count(*) FROM c";

/// A call for `ConnPool`.
type ConnJob = Box<dyn FnOnce(&Connection) + Send>;

/// A pool of `n` rusqlite connections, each on its own thread, taking calls from one queue.
struct ConnPool {
    tx: Option<crossbeam_channel::Sender<ConnJob>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ConnPool {
    fn open(path: &Path, n: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<ConnJob>();
        let threads = (0..n)
            .map(|_| {
                let (rx, path) = (rx.clone(), path.to_owned());
                std::thread::spawn(move || {
                    let conn = Connection::open(&path).unwrap();
                    conn.busy_timeout(Duration::from_secs(5)).unwrap();
                    for job in rx {
                        job(&conn);
                    }
                })
            })
            .collect();
        Self {
            tx: Some(tx),
            threads,
        }
    }

    fn call<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> T + Send + 'static) -> T {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |c: &Connection| {
            let _ = tx.send(f(c));
        });
        self.tx.as_ref().unwrap().send(job).unwrap();
        rx.recv().unwrap()
    }
}

impl Drop for ConnPool {
    fn drop(&mut self) {
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// One caller of the `mixed` scenario: a long read or a point read, blocking until it is done.
fn mixed_call(
    system: &str,
    db: Option<&Db>,
    tokio_conn: Option<&tokio_rusqlite::Connection>,
    pool: Option<&ConnPool>,
    long: Option<i64>,
    key: i64,
) {
    match (system, long) {
        ("offthread", Some(n)) => {
            db.unwrap()
                .query_row::<i64, _>(LONG_READ, (n,))
                .wait()
                .unwrap();
        }
        ("offthread", None) => {
            db.unwrap()
                .query_row::<String, _>(point_sql(), (key,))
                .wait()
                .unwrap();
        }
        ("tokio-rusqlite", _) => {
            futures::executor::block_on(tokio_conn.unwrap().call(move |c| {
                match long {
                    Some(n) => c
                        .query_row(LONG_READ, (n,), |r| r.get::<_, i64>(0))
                        .map(drop),
                    None => c
                        .query_row(point_sql(), (key,), |r| r.get::<_, String>(0))
                        .map(drop),
                }
            }))
            .map_err(|e| e.to_string())
            .unwrap();
        }
        (_, _) => pool
            .unwrap()
            .call(move |c| match long {
                Some(n) => c
                    .query_row(LONG_READ, (n,), |r| r.get::<_, i64>(0))
                    .map(drop),
                None => {
                    let mut stmt = c.prepare_cached(point_sql())?;
                    stmt.query_row((key,), |r| r.get::<_, String>(0)).map(drop)
                }
            })
            .unwrap(),
    }
}

/// `MIXED_SCANNERS` callers looping long reads beside `MIXED_POINTS` callers looping point
/// reads, for `MIXED_TIME`, on a freshly opened `system`: point reads per second, their
/// latencies (ns), and the offthread readers running at the end.
fn mixed(system: &str, path: &Path) -> (f64, Vec<f64>, usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = (system == "offthread").then(|| Db::open(path).unwrap());
    let tokio_conn = (system == "tokio-rusqlite")
        .then(|| rt.block_on(tokio_rusqlite::Connection::open(path)).unwrap());
    let pool = (system == "10 connections").then(|| ConnPool::open(path, 10));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let start = Instant::now();
    let lat: Vec<Vec<f64>> = std::thread::scope(|s| {
        let callers: Vec<_> = (0..MIXED_SCANNERS + MIXED_POINTS)
            .map(|t| {
                let (db, tokio_conn, pool, stop) =
                    (db.as_ref(), tokio_conn.as_ref(), pool.as_ref(), &stop);
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(t as u64 + 1);
                    let mut lat = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        if t < MIXED_SCANNERS {
                            let n = rng.i64(160_000..320_000);
                            mixed_call(system, db, tokio_conn, pool, Some(n), 0);
                        } else {
                            let key = rng.i64(0..ROWS);
                            let t0 = Instant::now();
                            mixed_call(system, db, tokio_conn, pool, None, key);
                            if t0 < start + MIXED_TIME {
                                lat.push(t0.elapsed().as_nanos() as f64);
                            }
                        }
                    }
                    lat
                })
            })
            .collect();
        std::thread::sleep(MIXED_TIME);
        stop.store(true, Ordering::Relaxed);
        callers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let readers = db
        .as_ref()
        .map_or(0, |d| d.stats().readers.map_or(0, |s| s.workers));
    let lat: Vec<f64> = lat.into_iter().flatten().collect();
    (lat.len() as f64 / MIXED_TIME.as_secs_f64(), lat, readers)
}

/// The systems, opened on one database file.
struct Systems {
    db: Db,
    direct: Connection,
    rt: tokio::runtime::Runtime,
    tokio_conn: tokio_rusqlite::Connection,
    async_pool: async_sqlite::Pool,
}

impl Systems {
    fn open(path: &Path) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let tokio_conn = rt.block_on(tokio_rusqlite::Connection::open(path)).unwrap();
        let async_pool = rt
            .block_on(
                async_sqlite::PoolBuilder::new()
                    .path(path)
                    .journal_mode(async_sqlite::JournalMode::Wal)
                    .open(),
            )
            .unwrap();
        let direct = Connection::open(path).unwrap();
        direct.busy_timeout(Duration::from_secs(5)).unwrap();
        Self {
            db: Db::open(path).unwrap(),
            direct,
            rt,
            tokio_conn,
            async_pool,
        }
    }

    /// `POINT_READS` point reads, up to 64 in flight; returns the sum of value lengths.
    fn point_reads(&self, system: &str) -> usize {
        let key = |i: usize| (i as i64 * 7919) % ROWS;
        match system {
            "offthread" => {
                let mut window = VecDeque::with_capacity(IN_FLIGHT);
                let mut total = 0;
                for i in 0..POINT_READS {
                    if window.len() == IN_FLIGHT {
                        let call: offthread::sqlite::Call<String> = window.pop_front().unwrap();
                        total += call.wait().unwrap().len();
                    }
                    window.push_back(self.db.query_row(point_sql(), (key(i),)));
                }
                total
                    + window
                        .into_iter()
                        .map(|c| c.wait().unwrap().len())
                        .sum::<usize>()
            }
            "offthread (awaited)" => self.rt.block_on(
                futures::stream::iter(0..POINT_READS)
                    .map(|i| {
                        self.db
                            .query_row::<String, _>(point_sql(), (key(i),))
                            .into_future()
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .fold(0, |a, r| async move { a + r.unwrap().len() }),
            ),
            "direct (caller)" => {
                let mut stmt = self.direct.prepare_cached(point_sql()).unwrap();
                (0..POINT_READS)
                    .map(|i| {
                        stmt.query_row((key(i),), |r| r.get::<_, String>(0))
                            .unwrap()
                            .len()
                    })
                    .sum()
            }
            "tokio-rusqlite" => self.rt.block_on(
                futures::stream::iter(0..POINT_READS)
                    .map(|i| {
                        self.tokio_conn.call(move |c| {
                            c.prepare_cached(point_sql())?
                                .query_row((key(i),), |r| r.get::<_, String>(0))
                        })
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .fold(
                        0,
                        |a, r: Result<String, tokio_rusqlite::Error<rusqlite::Error>>| async move {
                            a + r.unwrap().len()
                        },
                    ),
            ),
            "async-sqlite" => self.rt.block_on(
                futures::stream::iter(0..POINT_READS)
                    .map(|i| {
                        self.async_pool.conn(move |c| {
                            c.prepare_cached(point_sql())?
                                .query_row((key(i),), |r| r.get::<_, String>(0))
                        })
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .fold(0, |a, r| async move { a + r.unwrap().len() }),
            ),
            _ => unreachable!(),
        }
    }

    /// One call, waited: nanoseconds.
    fn one_call(&self, system: &str, i: i64) -> f64 {
        let t = Instant::now();
        let sql = point_sql();
        match system {
            "offthread" => {
                self.db.query_row::<String, _>(sql, (i,)).wait().unwrap();
            }
            "direct (caller)" => {
                self.direct
                    .prepare_cached(sql)
                    .unwrap()
                    .query_row((i,), |r| r.get::<_, String>(0))
                    .unwrap();
            }
            "tokio-rusqlite" => {
                self.rt
                    .block_on(self.tokio_conn.call(move |c| {
                        c.prepare_cached(sql)?
                            .query_row((i,), |r| r.get::<_, String>(0))
                    }))
                    .unwrap();
            }
            "async-sqlite" => {
                self.rt
                    .block_on(self.async_pool.conn(move |c| {
                        c.prepare_cached(sql)?
                            .query_row((i,), |r| r.get::<_, String>(0))
                    }))
                    .unwrap();
            }
            _ => unreachable!(),
        }
        t.elapsed().as_nanos() as f64
    }

    /// One slow read, then `FAST_READS` fast ones: how many fast reads finished after the slow
    /// one, and the slow read's time.
    fn head_of_line(&self, system: &str) -> (usize, Duration) {
        let slow_done = Arc::new(AtomicUsize::new(0));
        let behind = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        match system {
            "offthread" => {
                let slow = self
                    .db
                    .read(|c| c.query_row(SLOW, (), |r| r.get::<_, i64>(0)));
                let fast: Vec<_> = (0..FAST_READS)
                    .map(|i| self.db.query_row::<String, _>(point_sql(), (i as i64,)))
                    .collect();
                for f in fast {
                    f.wait().unwrap();
                    if slow.is_finished() {
                        behind.fetch_add(1, Ordering::SeqCst);
                    }
                }
                slow.wait().unwrap();
            }
            "tokio-rusqlite" | "async-sqlite" => {
                let tokio = system == "tokio-rusqlite";
                self.rt.block_on(async {
                    let done = slow_done.clone();
                    let slow = async move {
                        if tokio {
                            self.tokio_conn
                                .call(|c| c.query_row(SLOW, (), |r| r.get::<_, i64>(0)))
                                .await
                                .map_err(|e| e.to_string())
                                .unwrap();
                        } else {
                            self.async_pool
                                .conn(|c| c.query_row(SLOW, (), |r| r.get::<_, i64>(0)))
                                .await
                                .unwrap();
                        }
                        done.store(1, Ordering::SeqCst);
                    };
                    let fast = futures::stream::iter(0..FAST_READS)
                        .map(|i| {
                            let (slow_done, behind) = (slow_done.clone(), behind.clone());
                            async move {
                                if tokio {
                                    self.tokio_conn
                                        .call(move |c| {
                                            c.query_row(point_sql(), (i as i64,), |r| {
                                                r.get::<_, String>(0)
                                            })
                                        })
                                        .await
                                        .map_err(|e| e.to_string())
                                        .unwrap();
                                } else {
                                    self.async_pool
                                        .conn(move |c| {
                                            c.query_row(point_sql(), (i as i64,), |r| {
                                                r.get::<_, String>(0)
                                            })
                                        })
                                        .await
                                        .unwrap();
                                }
                                if slow_done.load(Ordering::SeqCst) == 1 {
                                    behind.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        })
                        .buffer_unordered(FAST_READS)
                        .collect::<Vec<()>>();
                    tokio::join!(slow, fast);
                });
            }
            _ => unreachable!(),
        }
        (behind.load(Ordering::SeqCst), t.elapsed())
    }

    /// Starts an endless read, cancels it (or drops it, for peers without cancel), and returns
    /// how long until a new read completes, capped by the slow query's natural end.
    fn cancel(&self, system: &str) -> Duration {
        match system {
            "offthread" => {
                let db = Db::builder(self.db.path().unwrap())
                    .readers(1)
                    .open()
                    .unwrap();
                let (tx, rx) = std::sync::mpsc::channel();
                let endless = db.read(move |c| {
                    tx.send(()).unwrap();
                    c.query_row(FOREVER, (), |r| r.get::<_, i64>(0))
                });
                rx.recv().unwrap();
                std::thread::sleep(Duration::from_millis(10)); // well inside the query
                let t = Instant::now();
                endless.cancel();
                db.query_row::<i64, _>("SELECT 1", ()).wait().unwrap();
                let freed = t.elapsed();
                let _ = endless.wait();
                db.close();
                freed
            }
            "tokio-rusqlite" => self.rt.block_on(async {
                let conn = tokio_rusqlite::Connection::open(self.db.path().unwrap())
                    .await
                    .unwrap();
                let c2 = conn.clone();
                let slow = tokio::spawn(async move {
                    let _ = c2
                        .call(|c| c.query_row(SLOW, (), |r| r.get::<_, i64>(0)))
                        .await;
                });
                tokio::time::sleep(Duration::from_millis(10)).await;
                let t = Instant::now();
                slow.abort(); // the closest thing to cancel: the query itself runs on
                conn.call(|c| c.query_row("SELECT 1", (), |r| r.get::<_, i64>(0)))
                    .await
                    .map_err(|e| e.to_string())
                    .unwrap();
                t.elapsed()
            }),
            _ => unreachable!(),
        }
    }

    /// `RW_THREADS` threads × `RW_TXNS` read-then-write transactions on `k = 0`: (errors,
    /// wall time, final counter).
    fn read_then_write(&self, system: &str, path: &Path) -> (usize, Duration, i64) {
        let errors = AtomicUsize::new(0);
        let t = Instant::now();
        let txn = |c: &mut Connection, immediate: bool| -> rusqlite::Result<()> {
            let behavior = if immediate {
                rusqlite::TransactionBehavior::Immediate
            } else {
                rusqlite::TransactionBehavior::Deferred
            };
            let tx = c.transaction_with_behavior(behavior)?;
            let v: i64 = tx.query_row("SELECT count(*) FROM kv WHERE id < 0", (), |r| r.get(0))?;
            tx.execute(
                "INSERT INTO kv (id, v) VALUES (-1 - ?1 - abs(random() % 1000000000), 'w')",
                (v,),
            )?;
            tx.commit()
        };
        match system {
            "offthread" => std::thread::scope(|s| {
                let db = &self.db;
                for _ in 0..RW_THREADS {
                    s.spawn(|| {
                        for _ in 0..RW_TXNS {
                            let r = db.write(move |c| txn(c, true)).wait();
                            if r.is_err() {
                                errors.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    });
                }
            }),
            "direct (caller)" => std::thread::scope(|s| {
                let errors = &errors;
                for _ in 0..RW_THREADS {
                    s.spawn(|| {
                        let mut c = Connection::open(path).unwrap();
                        c.busy_timeout(Duration::from_secs(5)).unwrap();
                        for _ in 0..RW_TXNS {
                            if txn(&mut c, false).is_err() {
                                errors.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    });
                }
            }),
            "tokio-rusqlite" => self.rt.block_on(async {
                let tasks: Vec<_> = (0..RW_THREADS)
                    .map(|_| {
                        let conn = self.tokio_conn.clone();
                        tokio::spawn(async move {
                            let mut errs = 0;
                            for _ in 0..RW_TXNS {
                                if conn.call(move |c| txn(c, false)).await.is_err() {
                                    errs += 1;
                                }
                            }
                            errs
                        })
                    })
                    .collect();
                for task in tasks {
                    errors.fetch_add(task.await.unwrap(), Ordering::SeqCst);
                }
            }),
            "async-sqlite" => self.rt.block_on(async {
                let tasks: Vec<_> = (0..RW_THREADS)
                    .map(|_| {
                        let pool = self.async_pool.clone();
                        tokio::spawn(async move {
                            let mut errs = 0;
                            for _ in 0..RW_TXNS {
                                if pool.conn_mut(move |c| txn(c, false)).await.is_err() {
                                    errs += 1;
                                }
                            }
                            errs
                        })
                    })
                    .collect();
                for task in tasks {
                    errors.fetch_add(task.await.unwrap(), Ordering::SeqCst);
                }
            }),
            _ => unreachable!(),
        }
        let written: i64 = self
            .direct
            .query_row("SELECT count(*) FROM kv WHERE id < 0", (), |r| r.get(0))
            .unwrap();
        (errors.load(Ordering::SeqCst), t.elapsed(), written)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let want = selected(&args);
    let dir = std::env::temp_dir().join(format!("offthread-bench-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "# offthread SQLite benchmark — {} cores; offthread: Db (1 writer, {} readers); ratios are offthread ÷ peer",
        std::thread::available_parallelism().map_or(2, |n| n.get()),
        num_cpus::get().clamp(1, 4)
    );
    let mut bars = Vec::new();
    let path = fixture(&dir, "bench.db");
    let sys = Systems::open(&path);

    if want("point") {
        let mut rate: Vec<Vec<f64>> = vec![Vec::new(); POINT_SYSTEMS.len()];
        for s in POINT_SYSTEMS {
            sys.point_reads(s); // warm
        }
        for _ in 0..REPS {
            for (i, s) in POINT_SYSTEMS.iter().enumerate() {
                let t = Instant::now();
                sys.point_reads(s);
                rate[i].push(POINT_READS as f64 / t.elapsed().as_secs_f64());
            }
        }
        println!(
            "\n## point — {POINT_READS} point reads by primary key, up to {IN_FLIGHT} in flight (direct: serial on the caller; async peers and offthread awaited under one tokio multi-thread runtime; {REPS} interleaved reps)"
        );
        println!("| system | reads/s | offthread waited ÷ system | offthread awaited ÷ system |");
        println!("|---|---|---|---|");
        let meds: Vec<f64> = rate.iter_mut().map(|v| median(v)).collect();
        for (i, s) in POINT_SYSTEMS.iter().enumerate() {
            println!(
                "| {s} | {:.0} | {:.2}× | {:.2}× |",
                meds[i],
                meds[0] / meds[i],
                meds[1] / meds[i]
            );
        }
        for (i, s) in POINT_SYSTEMS.iter().enumerate().skip(2) {
            plot(
                "point reads, 64 in flight, waited (reads/s)",
                s,
                meds[0] / meds[i],
            );
        }
        for (i, s) in POINT_SYSTEMS.iter().enumerate().skip(2) {
            plot(
                "point reads, 64 in flight, awaited (reads/s)",
                s,
                meds[1] / meds[i],
            );
        }
        let (waited, awaited, direct, tokio) = (meds[0], meds[1], meds[2], meds[3]);
        bars.push(Bar {
            what: format!(
                "point reads waited ≥ 1.0× tokio-rusqlite: {:.2}×",
                waited / tokio
            ),
            met: waited / tokio >= 1.0,
        });
        bars.push(Bar {
            what: format!(
                "point reads awaited ≥ 1.0× tokio-rusqlite: {:.2}×",
                awaited / tokio
            ),
            met: awaited / tokio >= 1.0,
        });
        bars.push(Bar {
            what: format!(
                "point reads awaited ≥ 0.75× direct: {:.2}×",
                awaited / direct
            ),
            met: awaited / direct >= 0.75,
        });
    }

    if want("latency") {
        let mut lat: Vec<Vec<f64>> = vec![Vec::new(); SYSTEMS.len()];
        for round in 0..REPS {
            for (i, s) in SYSTEMS.iter().enumerate() {
                for k in 0..LATENCY_CALLS / REPS {
                    lat[i].push(sys.one_call(s, ((round * 1000 + k) as i64) % ROWS));
                }
            }
        }
        println!(
            "\n## latency — one point read at a time, submit then wait ({LATENCY_CALLS} calls, interleaved)"
        );
        println!("| system | median | p99 |");
        println!("|---|---|---|");
        let mut ours = 0.0;
        for (i, s) in SYSTEMS.iter().enumerate() {
            let (m, p) = (median(&mut lat[i]), pct(&mut lat[i], 0.99));
            println!("| {s} | {} | {} |", fmt_ns(m), fmt_ns(p));
            if i == 0 {
                ours = m;
            } else {
                plot("one point read at a time (median latency)", s, m / ours);
            }
        }
    }

    if want("hol") {
        println!(
            "\n## hol — one slow read (a 3M-row recursive count), then {FAST_READS} fast point reads"
        );
        println!(
            "| system | fast reads that finished after the slow one | slow read + fast reads |"
        );
        println!("|---|---|---|");
        let mut ours = usize::MAX;
        for s in ["offthread", "tokio-rusqlite", "async-sqlite"] {
            let (behind, took) = sys.head_of_line(s);
            if s == "offthread" {
                ours = behind;
            }
            println!("| {s} | {behind} / {FAST_READS} | {took:.2?} |");
        }
        println!(
            "(tokio-rusqlite: one connection; async-sqlite: a round-robin pool of connections)"
        );
        bars.push(Bar {
            what: format!("0 fast reads behind the slow one: {ours}"),
            met: ours == 0,
        });
    }

    if want("cancel") {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..REPS {
            ours.push(sys.cancel("offthread").as_nanos() as f64);
            theirs.push(sys.cancel("tokio-rusqlite").as_nanos() as f64);
        }
        let (o, t) = (median(&mut ours), median(&mut theirs));
        println!(
            "\n## cancel — an endless read running on a one-reader Db; cancel it, then time a new read ({REPS} reps)"
        );
        println!("| system | cancel → reader free (median) |");
        println!("|---|---|");
        println!("| offthread (`Call::cancel` interrupts) | {} |", fmt_ns(o));
        println!(
            "| tokio-rusqlite (task aborted; the query runs on) | {} (the 3M-row query's own time) |",
            fmt_ns(t)
        );
        println!(
            "(direct rusqlite and async-sqlite: no way to stop a running query from the caller)"
        );
        bars.push(Bar {
            what: format!(
                "a cancelled running read frees its reader in < 5 ms: {}",
                fmt_ns(o)
            ),
            met: o < 5e6,
        });
    }

    if want("rw") {
        println!("\n## rw — {RW_THREADS} threads × {RW_TXNS} read-then-write transactions");
        println!("| system | errors | wall time | rows written |");
        println!("|---|---|---|---|");
        let mut ours = usize::MAX;
        let mut ours_took = Duration::ZERO;
        for s in SYSTEMS {
            let (errors, took, _) = sys.read_then_write(s, &path);
            let written_after: i64 = sys
                .direct
                .query_row("SELECT count(*) FROM kv WHERE id < 0", (), |r| r.get(0))
                .unwrap();
            sys.direct
                .execute("DELETE FROM kv WHERE id < 0", ())
                .unwrap();
            if s == "offthread" {
                ours = errors;
                ours_took = took;
            } else {
                let scenario = "read-then-write transactions, 4 threads (wall time)";
                let who = match errors {
                    0 => s.to_owned(),
                    n => format!("{s}, {n} of {} failed", RW_THREADS * RW_TXNS),
                };
                plot(scenario, &who, took.as_secs_f64() / ours_took.as_secs_f64());
            }
            println!("| {s} | {errors} | {took:.2?} | {written_after} |");
        }
        println!(
            "(offthread: `BEGIN IMMEDIATE` on its one writer; the others: deferred transactions, busy_timeout where the crate sets one)"
        );
        bars.push(Bar {
            what: format!("0 write errors: {ours}"),
            met: ours == 0,
        });
    }

    if want("mixed") {
        let mut rate: Vec<Vec<f64>> = vec![Vec::new(); MIXED_SYSTEMS.len()];
        let mut lat: Vec<Vec<f64>> = vec![Vec::new(); MIXED_SYSTEMS.len()];
        let mut readers = Vec::new();
        for _ in 0..MIXED_REPS {
            for (i, s) in MIXED_SYSTEMS.iter().enumerate() {
                let (r, l, n) = mixed(s, &path);
                rate[i].push(r);
                lat[i].extend(l);
                if i == 0 {
                    readers.push(n);
                }
            }
        }
        println!(
            "\n## mixed — {MIXED_SCANNERS} callers looping a 20–40 ms read beside {MIXED_POINTS} callers doing point reads, {} s per system, fresh systems with their defaults ({MIXED_REPS} interleaved reps)",
            MIXED_TIME.as_secs()
        );
        println!("| system | point reads/s | p99 point read | offthread ÷ system (reads/s) |");
        println!("|---|---|---|---|");
        let meds: Vec<f64> = rate.iter_mut().map(|v| median(v)).collect();
        let p99s: Vec<f64> = lat.iter_mut().map(|v| pct(v, 0.99)).collect();
        for (i, s) in MIXED_SYSTEMS.iter().enumerate() {
            println!(
                "| {s} | {:.0} | {} | {:.2}× |",
                meds[i],
                fmt_ns(p99s[i]),
                meds[0] / meds[i]
            );
        }
        for (i, s) in MIXED_SYSTEMS.iter().enumerate().skip(1) {
            plot(
                "point reads beside long reads (reads/s)",
                s,
                meds[0] / meds[i],
            );
            plot(
                "point reads beside long reads (p99 latency)",
                s,
                p99s[i] / p99s[0],
            );
        }
        println!(
            "(offthread readers at the end of each rep: {readers:?}; tokio-rusqlite: one connection; 10 connections: 10 threads with a rusqlite connection each, one shared queue)"
        );
        bars.push(Bar {
            what: format!(
                "mixed: point reads/s ≥ 1.0× the 10-connection pool: {:.2}×",
                meds[0] / meds[2]
            ),
            met: meds[0] >= meds[2],
        });
        bars.push(Bar {
            what: format!(
                "mixed: p99 point read ≤ 1.0× the 10-connection pool's: {:.2}×",
                p99s[0] / p99s[2]
            ),
            met: p99s[0] <= p99s[2],
        });
    }

    sys.db.close();
    drop(sys);
    let _ = std::fs::remove_dir_all(&dir);
    print_bars(&bars);
    write_chart(
        &args,
        "sqlite.svg",
        "cargo bench --bench sqlite: offthread::sqlite::Db beside rusqlite and async peers",
    );
}
