//! Soak: a random mixed workload for a given time, with live counters and a final verdict.
//!
//! Run: `cargo run --release --example soak -- [SECONDS]` (default 60).
//!
//! Four submitting threads throw jobs at one pool — every submission call, every priority, lanes,
//! start deadlines, cancel-on-drop, inbox and callback delivery, cancels, dropped handles,
//! panicking jobs — and one thread runs SQLite reads, writes, transactions and streams through a
//! `Db`. Every job's closure carries a token whose drop is counted. At the end the pool and the
//! database are shut down and the verdict checks: every accepted job resolved, every closure was
//! dropped exactly once, the stats add up, and no worker thread is left.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fastrand::Rng;
use offthread::sqlite::Db;
use offthread::{Inbox, Pool, Priority};

/// Counts drops of the tokens the jobs carry.
struct Token(Arc<AtomicU64>);
impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Counters {
    made: AtomicU64,
    refused: AtomicU64,
    dropped: Arc<AtomicU64>,
    db_calls: AtomicU64,
    db_errors: AtomicU64,
    rows_streamed: AtomicU64,
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    std::panic::set_hook(Box::new(|info| {
        if info.payload().downcast_ref::<&str>() != Some(&"soak") {
            eprintln!("{info}");
        }
    }));
    let pool = Pool::builder()
        .thread_name("soakpool")
        .max_workers(16)
        .queue_capacity(512)
        .build()
        .expect("pool");
    let dir = std::env::temp_dir().join(format!("offthread-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = Db::builder(dir.join("soak.db"))
        .init(|c| {
            c.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER)")
        })
        .open()
        .expect("db");
    let c = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + Duration::from_secs(secs);
    println!("soaking for {secs} s …");

    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (pool, c, stop) = (&pool, c.clone(), stop.clone());
            s.spawn(move || {
                let mut rng = Rng::with_seed(0xA5A5 + t);
                let lanes: Vec<_> = (0..8).map(|_| pool.lane()).collect();
                let inbox: Inbox<u64, u64> = Inbox::new(256);
                let mut kept = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = rng.u64(..);
                    let token = Token(c.dropped.clone());
                    c.made.fetch_add(1, Ordering::Relaxed);
                    let panics = r.is_multiple_of(97);
                    let work = (r >> 40) % 50;
                    let job = move || {
                        let _token = token;
                        if work > 45 {
                            std::thread::sleep(Duration::from_micros(work * 10));
                        }
                        if panics {
                            panic!("soak");
                        }
                        work
                    };
                    let mut b = if (r >> 8).is_multiple_of(8) {
                        lanes[(r >> 12) as usize % 8].job(job)
                    } else {
                        pool.job(job)
                    };
                    b = b.priority(
                        [
                            Priority::Interactive,
                            Priority::Normal,
                            Priority::Background,
                        ][(r >> 16) as usize % 3],
                    );
                    if (r >> 20).is_multiple_of(16) {
                        b = b.start_timeout(Duration::from_micros((r >> 24) % 500));
                    }
                    if (r >> 28).is_multiple_of(8) {
                        b = b.cancel_on_drop();
                    }
                    match (r >> 32) % 10 {
                        0 => {
                            if b.inbox(&inbox, r)
                                .try_submit()
                                .map_err(|e| drop(e.into_inner()))
                                .is_err()
                            {
                                c.refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        1 => {
                            let ok = b
                                .on_complete(|_outcome| ())
                                .submit_timeout(Duration::from_millis(1));
                            if ok.map_err(|e| drop(e.into_inner())).is_err() {
                                c.refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => match b.submit_timeout(Duration::from_millis(1)) {
                            Ok(h) => match (r >> 36) % 4 {
                                0 => {
                                    let _ = h.cancel();
                                    kept.push(h);
                                }
                                1 => drop(h),
                                _ => kept.push(h),
                            },
                            Err(e) => {
                                drop(e.into_inner());
                                c.refused.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                    }
                    for _ in inbox.drain() {}
                    if kept.len() > 256 {
                        for h in kept.drain(..) {
                            let _ = h.wait();
                        }
                    }
                }
                for h in kept {
                    let _ = h.wait();
                }
                while inbox.recv().is_some() {}
            });
        }
        {
            let (db, c, stop) = (&db, c.clone(), stop.clone());
            s.spawn(move || {
                let mut rng = Rng::with_seed(0xDB);
                while !stop.load(Ordering::Relaxed) {
                    let r = rng.u64(..);
                    let id = (r % 10_000) as i64;
                    let ok = match r % 8 {
                        0..=3 => db
                            .query_row::<i64, _>("SELECT count(*) FROM t WHERE id < ?1", (id,))
                            .wait()
                            .is_ok(),
                        4 | 5 => db
                            .execute("INSERT OR REPLACE INTO t VALUES (?1, ?2)", (id, r as i64))
                            .wait()
                            .is_ok(),
                        6 => db
                            .transaction(move |tx| {
                                let v: i64 =
                                    tx.query_row("SELECT count(*) FROM t", (), |r| r.get(0))?;
                                tx.execute("INSERT OR REPLACE INTO t VALUES (?1, ?2)", (id, v))
                            })
                            .wait()
                            .is_ok(),
                        _ => {
                            let mut rows =
                                db.query_stream("SELECT v FROM t", (), 256, |r| r.get::<_, i64>(0));
                            let mut n = 0;
                            for batch in rows.by_ref().take(4) {
                                n += batch.map(|b| b.len()).unwrap_or(0);
                            }
                            c.rows_streamed.fetch_add(n as u64, Ordering::Relaxed);
                            true // dropped early on purpose
                        }
                    };
                    c.db_calls.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        c.db_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // Live counters, once a second.
        while Instant::now() < until {
            std::thread::sleep(Duration::from_secs(1));
            let st = pool.stats();
            println!(
                "{:>4}s  jobs {:>10}  refused {:>8}  completed {:>10}  panicked {:>7}  cancelled {:>8}  expired {:>7}  workers {:>3}  db calls {:>8} (errors {})",
                secs - until.saturating_duration_since(Instant::now()).as_secs(),
                c.made.load(Ordering::Relaxed),
                c.refused.load(Ordering::Relaxed),
                st.completed,
                st.panicked,
                st.cancelled,
                st.expired,
                st.workers,
                c.db_calls.load(Ordering::Relaxed),
                c.db_errors.load(Ordering::Relaxed),
            );
        }
        stop.store(true, Ordering::Relaxed);
    });

    pool.shutdown();
    db.close();
    let st = pool.stats();
    let made = c.made.load(Ordering::Relaxed);
    let dropped = c.dropped.load(Ordering::Relaxed);
    let accepted = st.submitted;
    let resolved = st.resolved();
    // Threads finish exiting just after the joins return: give them a moment.
    let count_left = || {
        std::fs::read_dir("/proc/self/task")
            .map(|d| {
                d.flatten()
                    .filter(|t| {
                        std::fs::read_to_string(t.path().join("comm")).is_ok_and(|n| {
                            n.starts_with("soakpool") || n.starts_with("offthread-sqli")
                        })
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    let mut threads_left = count_left();
    for _ in 0..500 {
        if threads_left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        threads_left = count_left();
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("\n== verdict after {secs} s");
    println!(
        "jobs made {made}, accepted {accepted}, refused {}",
        st.rejected
    );
    println!(
        "resolved {resolved}: completed {}, panicked {} (injected), cancelled {}, expired {}, shut down {}; callback panics {}",
        st.completed, st.panicked, st.cancelled, st.expired, st.shut_down, st.callback_panics
    );
    println!(
        "closures dropped {dropped} of {made}; db calls {} ({} errors), rows streamed {}; worker threads left {threads_left}",
        c.db_calls.load(Ordering::Relaxed),
        c.db_errors.load(Ordering::Relaxed),
        c.rows_streamed.load(Ordering::Relaxed)
    );
    let lost = made - dropped;
    let ok = lost == 0
        && resolved == accepted
        && st.queued == 0
        && st.running == 0
        && made == accepted + st.rejected
        && threads_left == 0;
    println!("lost {lost}: {}", if ok { "PASS" } else { "FAIL" });
    if !ok {
        std::process::exit(1);
    }
}
