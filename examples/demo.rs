//! The main demo: a 60 Hz main loop that must never stall, driving a real SQLite database and
//! file reads.
//!
//! It creates a database in a temp dir and fills it (through offthread, with a progress line),
//! then runs the same 3-second workload twice:
//!
//! 1. **offthread**: point reads, writes, a heavier range query and a streamed query go through
//!    `offthread::sqlite::Db`, file reads through `offthread::fs`; the loop only submits
//!    (`try_` calls, which never block) and polls (`try_wait`, `try_next`, which never block).
//! 2. **direct**: the same calls on the main thread with a plain `rusqlite::Connection` and
//!    `std::fs::read`, as code does before offthread.
//!
//! Then it prints frames drawn, median, p99 and worst frame time, the main thread's involuntary
//! context switches (Linux), query latency and throughput, side by side.
//!
//! The offthread side runs its threads at [`WorkerPriority::Low`]: waking a worker (to run a
//! call, or to read the next batch of a stream) then never costs the main thread its CPU. And
//! the streamed query hands the loop what it shows (each row's size), computed on the reader:
//! the rows themselves never cross to the main thread.
//!
//! `cargo run --release --example demo`

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fastrand::Rng;
use offthread::sqlite::{Call, Db, Rows};
use offthread::{Handle, Pool, WorkerPriority};
use rusqlite::Connection;

const FRAME: Duration = Duration::from_micros(16_667); // 60 Hz
const RUN_FOR: Duration = Duration::from_secs(3);
const ROWS: i64 = 200_000;
const FILES: usize = 32;
const FILE_SIZE: usize = 256 * 1024;
/// Per frame: point reads, one write, a file read; every 12th frame a range scan over 100,000
/// rows, every 60th a streamed query of 50,000 rows.
const POINT_READS: usize = 6;

const POINT: &str = "SELECT name, score FROM items WHERE id = ?1";
const WRITE: &str = "UPDATE items SET score = score + 1 WHERE id = ?1";
const RANGE: &str =
    "SELECT avg(length(body)) + avg(score) FROM items WHERE id BETWEEN ?1 AND ?1 + 100000";
const STREAM: &str = "SELECT body FROM items WHERE id > ?1 LIMIT 50000";

/// A row id, from a seeded generator, so both runs ask for exactly the same work.
fn id(rng: &mut Rng) -> i64 {
    rng.i64(1..=ROWS)
}

/// One frame's requests.
struct Frame {
    points: Vec<i64>,
    write: i64,
    range: Option<i64>,
    stream: Option<i64>,
    file: usize,
}

fn frame_work(rng: &mut Rng, n: usize) -> Frame {
    Frame {
        points: (0..POINT_READS).map(|_| id(rng)).collect(),
        write: id(rng),
        range: n.is_multiple_of(12).then(|| id(rng) % (ROWS - 100_000)),
        stream: n.is_multiple_of(60).then(|| id(rng) % (ROWS - 50_000)),
        file: rng.usize(..FILES),
    }
}

/// What one run measured.
#[derive(Default)]
struct Report {
    frames: usize,
    frame_times: Vec<Duration>,
    /// The main thread's involuntary context switches during the loop (`None`: not known).
    preempted: Option<u64>,
    /// Submit → result ready (stamped by the call itself), for every database call.
    latencies: Vec<Duration>,
    queries: usize,
    rows_streamed: usize,
    files_read: usize,
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn progress(label: &str, start: Instant, r: &Report, in_flight: usize) {
    let bar = 30;
    let filled = ((start.elapsed().as_secs_f64() / RUN_FOR.as_secs_f64()) * bar as f64)
        .min(bar as f64) as usize;
    print!(
        "\r{label:>9} [{}{}] frames {:4}  queries {:6}  rows streamed {:6}  in flight {in_flight:3}",
        "#".repeat(filled),
        ".".repeat(bar - filled),
        r.frames,
        r.queries,
        r.rows_streamed
    );
    let _ = std::io::stdout().flush();
}

/// The frame loop: `step(frame number, report)` does one frame and returns the calls in flight.
fn frame_loop(label: &str, mut step: impl FnMut(usize, &mut Report) -> usize) -> Report {
    let start = Instant::now();
    let mut next_frame = start;
    let mut report = Report::default();
    let preempted_before = involuntary_switches();
    while start.elapsed() < RUN_FOR {
        let frame_start = Instant::now();
        let in_flight = step(report.frames, &mut report);
        report.frames += 1;
        report.frame_times.push(frame_start.elapsed());
        if report.frames % 6 == 1 {
            progress(label, start, &report, in_flight); // 10 Hz
        }
        next_frame += FRAME;
        match next_frame.checked_duration_since(Instant::now()) {
            Some(wait) => std::thread::sleep(wait), // vsync
            None => next_frame = Instant::now(),    // fell behind: no catch-up burst
        }
    }
    println!();
    report.preempted = involuntary_switches()
        .zip(preempted_before)
        .map(|(after, before)| after - before);
    report
}

/// How often the OS took the CPU from this thread while it could have run (Linux).
fn involuntary_switches() -> Option<u64> {
    let status = fs::read_to_string("/proc/thread-self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with("nonvoluntary_ctxt_switches"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Fills the database through offthread, showing progress while the writer works.
fn fill(db: &Db) -> Result<(), offthread::sqlite::Error> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, score INTEGER, body TEXT)",
        (),
    )
    .wait()?;
    const BATCH: i64 = 10_000;
    let mut calls: Vec<Call<()>> = (0..ROWS / BATCH)
        .map(|b| {
            db.transaction(move |tx| {
                let mut stmt = tx.prepare_cached("INSERT INTO items VALUES (?1, ?2, ?3, ?4)")?;
                for id in b * BATCH + 1..=(b + 1) * BATCH {
                    let body = format!("item {id} {}", "lorem ipsum ".repeat((id % 16) as usize));
                    stmt.execute((id, format!("name-{id}"), id % 1000, body))?;
                }
                Ok(())
            })
        })
        .collect();
    let total = calls.len();
    while !calls.is_empty() {
        // The caller is free: here it just shows progress.
        let mut still = Vec::new();
        for call in calls {
            match call.try_wait() {
                Ok(done) => done?,
                Err(pending) => still.push(pending),
            }
        }
        calls = still;
        let done = total - calls.len();
        print!("\rfilling the database: {:3}% ", done * 100 / total);
        let _ = std::io::stdout().flush();
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("\rfilling the database: 100% ({ROWS} rows)");
    Ok(())
}

fn make_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut rng = Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    (0..FILES)
        .map(|i| {
            let path = dir.join(format!("asset-{i:03}.bin"));
            let data: Vec<u8> = (0..FILE_SIZE).map(|_| rng.u8(..)).collect();
            fs::write(&path, data).map(|()| path)
        })
        .collect()
}

/// A call in flight, and when it was submitted; each call returns when it finished.
enum Pending {
    Query(Call<Instant>, Instant),
    File(Handle<std::io::Result<Vec<u8>>>),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("offthread-demo-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let db_path = dir.join("demo.db");
    println!("database and files in {}", dir.display());
    let db = Db::builder(&db_path)
        .worker_priority(WorkerPriority::Low)
        .open()?;
    fill(&db)?;
    let files = make_files(&dir)?;
    println!("{FILES} files of {} KiB written\n", FILE_SIZE / 1024);

    // 1. Through offthread: submit without blocking, pick up without blocking.
    let pool = Pool::builder()
        .worker_priority(WorkerPriority::Low)
        .build()?;
    let fsys = offthread::fs::on(&pool);
    let mut rng = Rng::with_seed(42);
    let mut pending: Vec<Pending> = Vec::new();
    let mut stream: Option<(Rows<usize>, usize)> = None;
    let offthread = frame_loop("offthread", |n, report| {
        let w = frame_work(&mut rng, n);
        let now = Instant::now();
        for id in w.points {
            let call = db.try_read(move |c| {
                let _: (String, i64) = c
                    .prepare_cached(POINT)?
                    .query_row((id,), |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(Instant::now())
            });
            pending.push(Pending::Query(call, now));
        }
        let write = db.try_write(move |c| {
            c.prepare_cached(WRITE)?.execute((w.write,))?;
            Ok(Instant::now())
        });
        pending.push(Pending::Query(write, now));
        if let Some(from) = w.range {
            let range = db.try_read(move |c| {
                let _: f64 = c.prepare_cached(RANGE)?.query_row((from,), |r| r.get(0))?;
                Ok(Instant::now())
            });
            pending.push(Pending::Query(range, now));
        }
        if let (Some(from), None) = (w.stream, &stream) {
            // Each row's size, computed on the reader: the loop gets what it shows.
            let size = |r: &rusqlite::Row<'_>| Ok(r.get_ref(0)?.as_bytes()?.len());
            stream = Some((db.query_stream(STREAM, (from,), 500, size), 0));
        }
        if let Ok(h) = fsys.read(&files[w.file]).try_submit() {
            pending.push(Pending::File(h));
        }
        // Pick up whatever is ready.
        let mut still = Vec::with_capacity(pending.len());
        for p in pending.drain(..) {
            match p {
                Pending::Query(c, submitted) => match c.try_wait() {
                    Ok(done) => {
                        let done = done.expect("query");
                        report
                            .latencies
                            .push(done.saturating_duration_since(submitted));
                        report.queries += 1;
                    }
                    Err(c) => still.push(Pending::Query(c, submitted)),
                },
                Pending::File(h) => match h.try_wait() {
                    Ok(r) => {
                        r.expect("job").expect("file");
                        report.files_read += 1;
                    }
                    Err(h) => still.push(Pending::File(h)),
                },
            }
        }
        pending = still;
        // The streamed query: take the batches that are ready, never wait.
        if let Some((rows, taken)) = &mut stream {
            while let Some(batch) = rows.try_next() {
                let n = batch.expect("stream").len();
                *taken += n;
                report.rows_streamed += n;
            }
            if rows.is_finished() {
                stream = None;
            }
        }
        pending.len()
    });

    // 2. Direct calls on the main thread: the same work, in the same order.
    let conn = Connection::open(&db_path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut rng = Rng::with_seed(42);
    let direct = frame_loop("direct", |n, report| {
        let w = frame_work(&mut rng, n);
        let mut timed = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            report.latencies.push(t.elapsed());
            report.queries += 1;
        };
        for id in w.points {
            timed(&mut || {
                let _: (String, i64) = conn
                    .prepare_cached(POINT)
                    .and_then(|mut s| s.query_row((id,), |r| Ok((r.get(0)?, r.get(1)?))))
                    .expect("point read");
            });
        }
        timed(&mut || {
            conn.prepare_cached(WRITE)
                .and_then(|mut s| s.execute((w.write,)))
                .expect("write");
        });
        if let Some(from) = w.range {
            timed(&mut || {
                let _: f64 = conn
                    .prepare_cached(RANGE)
                    .and_then(|mut s| s.query_row((from,), |r| r.get(0)))
                    .expect("range");
            });
        }
        if let Some(from) = w.stream {
            let mut s = conn.prepare_cached(STREAM).expect("stream");
            let rows = s
                .query_map((from,), |r| Ok(r.get_ref(0)?.as_bytes()?.len()))
                .expect("stream");
            report.rows_streamed += rows.count();
        }
        std::hint::black_box(fs::read(&files[w.file]).expect("file"));
        report.files_read += 1;
        0
    });
    drop(conn);
    db.close();
    pool.shutdown();
    let _ = fs::remove_dir_all(&dir);

    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let row = |label: &str, a: String, b: String| println!("{label:<34}{a:>14}{b:>14}");
    println!();
    row("", "offthread".into(), "direct calls".into());
    row(
        "frames drawn (3 s at 60 Hz)",
        offthread.frames.to_string(),
        direct.frames.to_string(),
    );
    row(
        "median frame time",
        ms(pct(&offthread.frame_times, 0.5)),
        ms(pct(&direct.frame_times, 0.5)),
    );
    row(
        "p99 frame time",
        ms(pct(&offthread.frame_times, 0.99)),
        ms(pct(&direct.frame_times, 0.99)),
    );
    row(
        "worst frame time",
        ms(pct(&offthread.frame_times, 1.0)),
        ms(pct(&direct.frame_times, 1.0)),
    );
    let switches = |r: &Report| r.preempted.map_or("n/a".to_owned(), |n| n.to_string());
    row(
        "main thread preempted (times)",
        switches(&offthread),
        switches(&direct),
    );
    row(
        "query latency p50",
        ms(pct(&offthread.latencies, 0.5)),
        ms(pct(&direct.latencies, 0.5)),
    );
    row(
        "query latency p99",
        ms(pct(&offthread.latencies, 0.99)),
        ms(pct(&direct.latencies, 0.99)),
    );
    row(
        "queries done",
        offthread.queries.to_string(),
        direct.queries.to_string(),
    );
    row(
        "rows streamed",
        offthread.rows_streamed.to_string(),
        direct.rows_streamed.to_string(),
    );
    row(
        "files read",
        offthread.files_read.to_string(),
        direct.files_read.to_string(),
    );
    println!(
        "\nA frame must finish within {} to keep 60 Hz. With offthread the main thread only\n\
         submits and polls; queries, writes, the streamed query and file reads run on offthread's\n\
         threads. Query latency is submit to result ready, as stamped by the call itself.",
        ms(FRAME)
    );
    Ok(())
}
