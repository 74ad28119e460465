//! The main demo: a 60 Hz "game loop" on the main thread that must never stall.
//!
//! Each frame it asks for blocking work — reads of files it generated in a temp dir, and calls
//! of varied length into a pretend legacy library — and draws a progress line. Run twice:
//!
//! 1. **offthread**: work is handed over with `try_submit` (never blocks; a full queue just
//!    means "ask again next frame") and picked up with `try_wait` (never blocks).
//! 2. **direct**: the same work called right on the main thread, as code does before offthread.
//!
//! Then it prints frames drawn, worst and p99 frame time, and jobs done, side by side.
//!
//! `cargo run --release --example demo`

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use offthread::{Handle, Pool, TrySubmitError};

const FRAME: Duration = Duration::from_micros(16_667); // 60 Hz
const RUN_FOR: Duration = Duration::from_secs(3);
const FILES: usize = 64;
const FILE_SIZE: usize = 512 * 1024;
const JOBS_PER_FRAME: usize = 3;

/// One unit of blocking work.
#[derive(Clone)]
enum Work {
    /// Read a file and checksum it.
    Read(PathBuf),
    /// A call into a slow synchronous library: blocks for this long, then returns a value.
    Legacy(Duration),
}

fn run_work(work: Work) -> u64 {
    match work {
        Work::Read(path) => fs::read(&path)
            .map(|bytes| bytes.iter().map(|&b| u64::from(b)).sum())
            .unwrap_or(0),
        Work::Legacy(d) => {
            std::thread::sleep(d);
            d.as_micros() as u64
        }
    }
}

/// A small deterministic generator, so both runs ask for exactly the same work.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn next_work(rng: &mut Rng, files: &[PathBuf]) -> Work {
    let r = rng.next();
    if r.is_multiple_of(3) {
        Work::Legacy(Duration::from_millis(1 + r % 40)) // 1–40 ms, like a slow query
    } else {
        Work::Read(files[(r as usize / 3) % files.len()].clone())
    }
}

fn make_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..FILES)
        .map(|i| {
            let path = dir.join(format!("asset-{i:03}.bin"));
            let data: Vec<u8> = (0..FILE_SIZE).map(|_| rng.next() as u8).collect();
            fs::write(&path, data).map(|()| path)
        })
        .collect()
}

/// What one run measured.
struct Report {
    frames: usize,
    frame_times: Vec<Duration>,
    jobs_done: usize,
}

impl Report {
    fn worst(&self) -> Duration {
        self.frame_times.iter().copied().max().unwrap_or_default()
    }
    fn p99(&self) -> Duration {
        let mut v = self.frame_times.clone();
        v.sort();
        v.get((v.len() * 99) / 100).copied().unwrap_or_default()
    }
}

fn progress(label: &str, start: Instant, frames: usize, done: usize, in_flight: usize) {
    let bar_len = 30;
    let filled = ((start.elapsed().as_secs_f64() / RUN_FOR.as_secs_f64()) * bar_len as f64)
        .min(bar_len as f64) as usize;
    print!(
        "\r{label:>9} [{}{}] frames {frames:4}  jobs done {done:4}  in flight {in_flight:3}",
        "#".repeat(filled),
        ".".repeat(bar_len - filled)
    );
    let _ = std::io::stdout().flush();
}

/// The frame loop. `step` does one frame's work and returns (jobs finished, jobs in flight).
fn frame_loop(label: &str, mut step: impl FnMut() -> (usize, usize)) -> Report {
    let start = Instant::now();
    let mut next_frame = start;
    let mut report = Report {
        frames: 0,
        frame_times: Vec::new(),
        jobs_done: 0,
    };
    while start.elapsed() < RUN_FOR {
        let frame_start = Instant::now();
        let (done, in_flight) = step();
        report.jobs_done += done;
        report.frames += 1;
        report.frame_times.push(frame_start.elapsed());
        if report.frames % 6 == 1 {
            progress(label, start, report.frames, report.jobs_done, in_flight); // 10 Hz
        }
        next_frame += FRAME;
        if let Some(wait) = next_frame.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait); // vsync
        } else {
            next_frame = Instant::now(); // we fell behind: no catch-up burst
        }
    }
    println!();
    report
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("offthread-demo-{}", std::process::id()));
    print!(
        "generating {FILES} files of {} KiB in {} ... ",
        FILE_SIZE / 1024,
        dir.display()
    );
    std::io::stdout().flush()?;
    let files = make_files(&dir)?;
    println!("done\n");

    // 1. Through offthread: submit without blocking, pick up without blocking.
    let pool = Pool::builder().max_workers(32).queue_capacity(64).build()?;
    let mut rng = Rng(42);
    let mut pending: Vec<Handle<u64>> = Vec::new();
    let mut backlog: Option<Work> = None;
    let offthread = frame_loop("offthread", || {
        for _ in 0..JOBS_PER_FRAME {
            let work = backlog
                .take()
                .unwrap_or_else(|| next_work(&mut rng, &files));
            let job = {
                let w = work.clone();
                move || run_work(w)
            };
            match pool.try_submit(job) {
                Ok(h) => pending.push(h),
                Err(TrySubmitError::Full(_)) | Err(TrySubmitError::ShutDown(_)) => {
                    backlog = Some(work); // ask again next frame
                    break;
                }
            }
        }
        let before = pending.len();
        pending = std::mem::take(&mut pending)
            .into_iter()
            .filter_map(|h| h.try_wait().err())
            .collect();
        (before - pending.len(), pending.len())
    });
    pool.shutdown();

    // 2. Direct calls on the main thread: the same work, in the same order.
    let mut rng = Rng(42);
    let direct = frame_loop("direct", || {
        for _ in 0..JOBS_PER_FRAME {
            std::hint::black_box(run_work(next_work(&mut rng, &files)));
        }
        (JOBS_PER_FRAME, 0)
    });

    let _ = fs::remove_dir_all(&dir);

    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    println!("\n{:<28}{:>14}{:>14}", "", "offthread", "direct calls");
    println!(
        "{:<28}{:>14}{:>14}",
        "frames drawn (3 s at 60 Hz)", offthread.frames, direct.frames
    );
    println!(
        "{:<28}{:>14}{:>14}",
        "worst frame time",
        ms(offthread.worst()),
        ms(direct.worst())
    );
    println!(
        "{:<28}{:>14}{:>14}",
        "p99 frame time",
        ms(offthread.p99()),
        ms(direct.p99())
    );
    println!(
        "{:<28}{:>14}{:>14}",
        "jobs done", offthread.jobs_done, direct.jobs_done
    );
    println!(
        "\nA frame must finish within {} to keep 60 Hz. With offthread the main thread only\n\
         submits and polls; the blocking reads and calls run on the pool's workers.",
        ms(FRAME)
    );
    Ok(())
}
