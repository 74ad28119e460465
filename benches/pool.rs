//! `cargo bench --bench pool`: offthread beside its peers, in one run, with interleaved
//! repetitions. Prints medians and ratios (offthread ÷ peer) and checks the crate's performance targets.
//!
//! Scenarios:
//! - `rtt`: serial submit-then-wait of a trivial job (median and p99 per round trip).
//! - `rtt_await`: the same round trip awaited, the caller under `pollster::block_on` and under
//!   a tokio current-thread runtime, beside offthread's waited round trip.
//! - `burst`: 200,000 trivial jobs submitted, then all waited for; jobs/s and peak RSS, each
//!   system in its own process (and 50,000 to show how RSS scales with the job count); then
//!   the same burst awaited under `pollster` and a tokio current-thread runtime.
//! - `submit`: time for a submit to return while every worker is busy (fixed N = cores pools).
//! - `sleepy`: 256 jobs that each sleep 1 ms, default builders, wall time until all are done.
//! - `io`: 4,096 calls that each block 100 µs, 64 in flight, default builders: wall time and
//!   peak threads (each system in its own process).
//! - `cpu_burst`: 64 CPU-bound jobs of 2 ms, default builders: wall time and the threads left
//!   once they are done (each system in its own process).
//! - `idle`: CPU used by an idle pool over 1 s (own process).
//! - `priority`: queue wait of interactive jobs while background jobs flood an 8-worker pool,
//!   with and without priorities (and peers that have none).
//! - `lanes`: throughput of serial lanes against one dedicated thread per lane.
#![allow(missing_docs)]

mod common;
use common::*;

use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const SYSTEMS: [&str; 7] = [
    "offthread",
    "minimal",
    "tokio",
    "blocking",
    "rayon",
    "threadpool",
    "inline",
];

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

// ---------------------------------------------------------------------------------------------
// The minimal fixed pool: the design's floor. crossbeam bounded queue, N = cores, oneshot result.

type BoxJob = Box<dyn FnOnce() + Send>;

struct Minimal {
    tx: Option<crossbeam_channel::Sender<BoxJob>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Minimal {
    fn new(n: usize, capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<BoxJob>(capacity);
        let threads = (0..n)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    for job in rx {
                        job();
                    }
                })
            })
            .collect();
        Self {
            tx: Some(tx),
            threads,
        }
    }
    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .unwrap()
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .unwrap();
        rx
    }
}

impl Drop for Minimal {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One system, ready to take jobs. `fixed` asks for N = cores workers where the crate allows it.

enum Sys {
    Offthread(offthread::Pool),
    Minimal(Minimal),
    Tokio(tokio::runtime::Runtime),
    Blocking,
    Rayon(rayon::ThreadPool),
    Threadpool(Mutex<threadpool::ThreadPool>),
    Inline,
}

/// A pending result of any system.
enum Pending<T> {
    Offthread(offthread::Handle<T>),
    Oneshot(oneshot::Receiver<T>),
    Tokio(tokio::task::JoinHandle<T>),
    Blocking(blocking::Task<T>),
    Ready(T),
}

impl Sys {
    fn new(name: &str, fixed: bool) -> Self {
        let n = cores();
        match name {
            "offthread" => Sys::Offthread(if fixed {
                offthread::Pool::builder()
                    .min_workers(n)
                    .max_workers(n)
                    .build()
                    .unwrap()
            } else {
                offthread::Pool::new()
            }),
            "minimal" => Sys::Minimal(Minimal::new(n, 8192)),
            "tokio" => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                if fixed {
                    b.max_blocking_threads(n);
                }
                Sys::Tokio(b.build().unwrap())
            }
            "blocking" => Sys::Blocking,
            "rayon" => Sys::Rayon(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap(),
            ),
            "threadpool" => Sys::Threadpool(Mutex::new(threadpool::ThreadPool::new(n))),
            "inline" => Sys::Inline,
            _ => panic!("unknown system {name}"),
        }
    }

    fn submit<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Pending<T> {
        match self {
            Sys::Offthread(p) => Pending::Offthread(p.submit(f).unwrap()),
            Sys::Minimal(m) => Pending::Oneshot(m.submit(f)),
            Sys::Tokio(rt) => Pending::Tokio(rt.spawn_blocking(f)),
            Sys::Blocking => Pending::Blocking(blocking::unblock(f)),
            Sys::Rayon(p) => {
                let (tx, rx) = oneshot::channel();
                p.spawn(move || {
                    let _ = tx.send(f());
                });
                Pending::Oneshot(rx)
            }
            Sys::Threadpool(p) => {
                let (tx, rx) = oneshot::channel();
                p.lock().unwrap().execute(move || {
                    let _ = tx.send(f());
                });
                Pending::Oneshot(rx)
            }
            Sys::Inline => Pending::Ready(f()),
        }
    }

    fn wait<T>(&self, p: Pending<T>) -> T {
        match p {
            Pending::Offthread(h) => h.wait().unwrap(),
            Pending::Oneshot(rx) => rx.recv().unwrap(),
            Pending::Tokio(h) => match self {
                Sys::Tokio(rt) => rt.block_on(h).unwrap(),
                _ => unreachable!(),
            },
            Pending::Blocking(t) => pollster::block_on(t),
            Pending::Ready(v) => v,
        }
    }
}

impl<T> Pending<T> {
    /// The result, awaited (from any executor) instead of waited for.
    async fn into_future(self) -> T {
        match self {
            Pending::Offthread(h) => h.await.unwrap(),
            Pending::Oneshot(rx) => rx.await.unwrap(),
            Pending::Tokio(h) => h.await.unwrap(),
            Pending::Blocking(t) => t.await,
            Pending::Ready(v) => v,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics and printing.

/// Prints one row per system: the median of its samples (ns) and offthread's ratio to it.
fn print_medians(names: &[&str], samples: &mut [Vec<f64>], what: &str) -> Vec<f64> {
    let meds: Vec<f64> = samples.iter_mut().map(|v| median(v)).collect();
    println!("| system | {what} | offthread ÷ system |");
    println!("|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        println!(
            "| {name} | {} | {:.2}× |",
            fmt_ns(meds[i]),
            meds[0] / meds[i]
        );
    }
    meds
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

const RTT_ROUNDS: usize = 5;
const RTT_PER_ROUND: usize = 2000;

fn rtt(bars: &mut Vec<Bar>) {
    println!(
        "\n## rtt — serial submit then wait of a trivial job ({RTT_ROUNDS} interleaved rounds × {RTT_PER_ROUND})"
    );
    let systems: Vec<(&str, Sys)> = SYSTEMS.iter().map(|&n| (n, Sys::new(n, false))).collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
    for _ in 0..RTT_ROUNDS {
        for (i, (_, sys)) in systems.iter().enumerate() {
            for _ in 0..200 {
                let p = sys.submit(|| 1u64); // warm up
                sys.wait(p);
            }
            for _ in 0..RTT_PER_ROUND {
                let t = Instant::now();
                let p = sys.submit(|| std::hint::black_box(1u64));
                std::hint::black_box(sys.wait(p));
                samples[i].push(t.elapsed().as_nanos() as f64);
            }
        }
    }
    let meds: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    let p99s: Vec<f64> = samples.iter_mut().map(|s| pct(s, 0.99)).collect();
    println!("| system | median | p99 | offthread ÷ system (median) |");
    println!("|---|---|---|---|");
    for (i, (name, _)) in systems.iter().enumerate() {
        println!(
            "| {name} | {} | {} | {:.2}× |",
            fmt_ns(meds[i]),
            fmt_ns(p99s[i]),
            meds[0] / meds[i]
        );
    }
    for (i, (name, _)) in systems.iter().enumerate().skip(1) {
        if *name != "inline" {
            plot("round trip, waited (time)", name, meds[i] / meds[0]);
        }
    }
    if let Sys::Offthread(p) = &systems[0].1 {
        println!("(offthread workers after rtt: {})", p.stats().workers);
    }
    let ratio_min = meds[0] / meds[1];
    let ratio_tokio = meds[0] / meds[2];
    bars.push(Bar {
        what: format!("rtt median ≤ 1.0× minimal pool: {ratio_min:.2}×"),
        met: ratio_min <= 1.0,
    });
    bars.push(Bar {
        what: format!("rtt median ≤ 0.1× tokio: {ratio_tokio:.3}×"),
        met: ratio_tokio <= 0.1,
    });
}

/// The executors an awaiting caller runs under in `rtt_await`.
const EXECUTORS: [&str; 2] = ["pollster", "tokio current_thread"];

fn rtt_await(bars: &mut Vec<Bar>) {
    println!(
        "\n## rtt_await — serial submit then `.await` of a trivial job, the caller under an executor's `block_on` ({RTT_ROUNDS} interleaved rounds × {RTT_PER_ROUND})"
    );
    let names = ["offthread", "minimal", "tokio", "blocking"];
    let systems: Vec<Sys> = names.iter().map(|&n| Sys::new(n, false)).collect();
    let tokio_ct = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let block_on = |exec: usize, p: Pending<u64>| -> u64 {
        match exec {
            0 => pollster::block_on(p.into_future()),
            _ => tokio_ct.block_on(p.into_future()),
        }
    };
    // [executor][system], plus offthread waited as the reference.
    let mut samples: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); names.len()]; EXECUTORS.len()];
    let mut waited = Vec::new();
    for _ in 0..RTT_ROUNDS {
        for (exec, per_sys) in samples.iter_mut().enumerate() {
            for (i, sys) in systems.iter().enumerate() {
                for _ in 0..200 {
                    block_on(exec, sys.submit(|| 1u64)); // warm up
                }
                for _ in 0..RTT_PER_ROUND {
                    let t = Instant::now();
                    let p = sys.submit(|| std::hint::black_box(1u64));
                    std::hint::black_box(block_on(exec, p));
                    per_sys[i].push(t.elapsed().as_nanos() as f64);
                }
            }
        }
        for _ in 0..RTT_PER_ROUND {
            let t = Instant::now();
            let p = systems[0].submit(|| std::hint::black_box(1u64));
            std::hint::black_box(systems[0].wait(p));
            waited.push(t.elapsed().as_nanos() as f64);
        }
    }
    let waited = median(&mut waited);
    println!("| executor | system | median | p99 | offthread ÷ system (median) |");
    println!("|---|---|---|---|---|");
    for (exec, per_sys) in samples.iter_mut().enumerate() {
        let meds: Vec<f64> = per_sys.iter_mut().map(|s| median(s)).collect();
        for (i, name) in names.iter().enumerate() {
            let p99 = pct(&mut per_sys[i], 0.99);
            println!(
                "| {} | {name} | {} | {} | {:.2}× |",
                EXECUTORS[exec],
                fmt_ns(meds[i]),
                fmt_ns(p99),
                meds[0] / meds[i]
            );
        }
        for (i, name) in names.iter().enumerate().skip(1) {
            let scenario = format!("round trip, awaited under {} (time)", EXECUTORS[exec]);
            plot(&scenario, name, meds[i] / meds[0]);
        }
        let vs_min = meds[0] / meds[1];
        let vs_waited = meds[0] / waited;
        bars.push(Bar {
            what: format!(
                "awaited rtt ({}) ≤ 1.0× the minimal pool awaited: {vs_min:.2}×",
                EXECUTORS[exec]
            ),
            met: vs_min <= 1.0,
        });
        bars.push(Bar {
            what: format!(
                "awaited rtt ({}) ≤ 1.5× offthread waited ({}): {vs_waited:.2}×",
                EXECUTORS[exec],
                fmt_ns(waited)
            ),
            met: vs_waited <= 1.5,
        });
    }
}

const BURST_JOBS: usize = 200_000;
const BURST_REPS: usize = 3;

/// Runs in a child process: `burst <system> <jobs>` → prints `jobs_per_s peak_rss_kib workers`.
fn burst_child(name: &str, jobs: usize, how: &str) {
    let sys = Sys::new(name, false);
    let tokio_ct = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let t = Instant::now();
    let pending: Vec<_> = (0..jobs)
        .map(|i| sys.submit(move || std::hint::black_box(i)))
        .collect();
    let mut sum = 0usize;
    match how {
        "wait" => {
            for p in pending {
                sum = sum.wrapping_add(sys.wait(p));
            }
        }
        "pollster" => {
            for p in pending {
                sum = sum.wrapping_add(pollster::block_on(p.into_future()));
            }
        }
        _ => {
            sum = tokio_ct.block_on(async {
                let mut sum = 0usize;
                for p in pending {
                    sum = sum.wrapping_add(p.into_future().await);
                }
                sum
            });
        }
    }
    let secs = t.elapsed().as_secs_f64();
    std::hint::black_box(sum);
    let workers = match &sys {
        Sys::Offthread(p) => p.stats().workers,
        _ => 0,
    };
    println!("{} {} {}", jobs as f64 / secs, peak_rss_kib(), workers);
}

fn child(args: &[&str]) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--child")
        .args(args)
        .output()
        .expect("child process");
    assert!(
        out.status.success(),
        "child {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn burst(bars: &mut Vec<Bar>) {
    println!(
        "\n## burst — {BURST_JOBS} trivial jobs submitted, then all waited for (each system in its own process, {BURST_REPS} interleaved reps)"
    );
    let mut rate: Vec<Vec<f64>> = vec![Vec::new(); SYSTEMS.len()];
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); SYSTEMS.len()];
    let mut rss_small: Vec<Vec<f64>> = vec![Vec::new(); SYSTEMS.len()];
    let mut workers = Vec::new();
    for _ in 0..BURST_REPS {
        for (i, name) in SYSTEMS.iter().enumerate() {
            let out = child(&["burst", name, &BURST_JOBS.to_string()]);
            let f: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
            rate[i].push(f[0]);
            rss[i].push(f[1]);
            if i == 0 {
                workers.push(f[2]);
            }
            let out = child(&["burst", name, &(BURST_JOBS / 4).to_string()]);
            let f: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
            rss_small[i].push(f[1]);
        }
    }
    let r: Vec<f64> = rate.iter_mut().map(|v| median(v)).collect();
    let m: Vec<f64> = rss.iter_mut().map(|v| median(v)).collect();
    let ms: Vec<f64> = rss_small.iter_mut().map(|v| median(v)).collect();
    println!(
        "| system | jobs/s | offthread ÷ system | peak RSS (200k) | peak RSS (50k) | offthread ÷ system (RSS 200k) |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, name) in SYSTEMS.iter().enumerate() {
        println!(
            "| {name} | {:.0} | {:.2}× | {:.1} MiB | {:.1} MiB | {:.2}× |",
            r[i],
            r[0] / r[i],
            m[i] / 1024.0,
            ms[i] / 1024.0,
            m[0] / m[i]
        );
    }
    for (i, name) in SYSTEMS.iter().enumerate().skip(1) {
        if *name != "inline" {
            plot("burst of trivial jobs, waited (jobs/s)", name, r[0] / r[i]);
        }
    }
    println!(
        "offthread workers after the burst: {:?} (max_workers 128, {} cores)",
        workers,
        cores()
    );
    let vs_min = r[0] / r[1];
    let vs_tokio = r[0] / r[2];
    let rss_vs_tokio = m[0] / m[2];
    bars.push(Bar {
        what: format!("burst ≥ 0.9× minimal pool: {vs_min:.2}×"),
        met: vs_min >= 0.9,
    });
    bars.push(Bar {
        what: format!("burst ≥ 20× tokio: {vs_tokio:.1}×"),
        met: vs_tokio >= 20.0,
    });
    bars.push(Bar {
        what: format!("burst peak RSS ≤ 0.5× tokio's: {rss_vs_tokio:.2}×"),
        met: rss_vs_tokio <= 0.5,
    });
    let per_job_big = (m[0] - ms[0]) * 1024.0 / (BURST_JOBS as f64 * 0.75);
    println!(
        "offthread RSS growth from 50k to 200k jobs: {:.0} bytes per job (the caller holds every handle; the queue is capped at queue_capacity)",
        per_job_big
    );
    burst_awaited(bars);
}

/// The burst again, the results awaited in order under each executor instead of waited for.
fn burst_awaited(bars: &mut Vec<Bar>) {
    let names = ["offthread", "minimal", "tokio", "blocking"];
    println!(
        "\nThe same {BURST_JOBS} jobs, the results then awaited in order under an executor's `block_on` ({BURST_REPS} interleaved reps):"
    );
    println!("| executor | system | jobs/s | offthread ÷ system |");
    println!("|---|---|---|---|");
    for exec in ["pollster", "tokio current_thread"] {
        let how = if exec == "pollster" {
            "pollster"
        } else {
            "tokio"
        };
        let mut rate: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        for _ in 0..BURST_REPS {
            for (i, name) in names.iter().enumerate() {
                let out = child(&["burst", name, &BURST_JOBS.to_string(), how]);
                rate[i].push(out.split_whitespace().next().unwrap().parse().unwrap());
            }
        }
        let r: Vec<f64> = rate.iter_mut().map(|v| median(v)).collect();
        for (i, name) in names.iter().enumerate() {
            println!("| {exec} | {name} | {:.0} | {:.2}× |", r[i], r[0] / r[i]);
        }
        for (i, name) in names.iter().enumerate().skip(1) {
            let scenario = format!("burst, awaited under {exec} (jobs/s)");
            plot(&scenario, name, r[0] / r[i]);
        }
        let vs_min = r[0] / r[1];
        bars.push(Bar {
            what: format!("burst awaited ({exec}) ≥ 0.9× minimal pool: {vs_min:.2}×"),
            met: vs_min >= 0.9,
        });
    }
}

const SUBMIT_JOBS: usize = 1000;
const SUBMIT_BATCH: usize = 100;
const SUBMIT_REPS: usize = 5;

fn submit(bars: &mut Vec<Bar>) {
    println!(
        "\n## submit — time for submit to return while all workers are busy (N = cores = {} workers where configurable; {SUBMIT_REPS} interleaved reps, batches of {SUBMIT_BATCH})",
        cores()
    );
    let names = &SYSTEMS[..SYSTEMS.len() - 1]; // inline has no queue
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..SUBMIT_REPS {
        for (i, name) in names.iter().enumerate() {
            let sys = Sys::new(name, true);
            // Occupy every worker: N gated jobs that report when they run.
            let gate = Arc::new((Mutex::new(false), Condvar::new()));
            let (tx, rx) = mpsc::channel();
            let busy: Vec<_> = (0..cores())
                .map(|_| {
                    let (g, tx) = (gate.clone(), tx.clone());
                    sys.submit(move || {
                        tx.send(()).unwrap();
                        let (m, c) = &*g;
                        let mut open = m.lock().unwrap();
                        while !*open {
                            open = c.wait(open).unwrap();
                        }
                    })
                })
                .collect();
            for _ in 0..cores() {
                rx.recv().unwrap();
            }
            let mut pending = Vec::with_capacity(SUBMIT_JOBS);
            for _ in 0..SUBMIT_JOBS / SUBMIT_BATCH {
                let t = Instant::now();
                for _ in 0..SUBMIT_BATCH {
                    pending.push(sys.submit(|| std::hint::black_box(1u8)));
                }
                per[i].push(t.elapsed().as_nanos() as f64 / SUBMIT_BATCH as f64);
            }
            {
                let (m, c) = &*gate;
                *m.lock().unwrap() = true;
                c.notify_all();
            }
            for p in busy {
                sys.wait(p);
            }
            for p in pending {
                sys.wait(p);
            }
        }
    }
    let meds = print_medians(names, &mut per, "submit (median per job)");
    for (i, name) in names.iter().enumerate().skip(1) {
        plot(
            "submit while every worker is busy (time)",
            name,
            meds[i] / meds[0],
        );
    }
    println!("(blocking: its pool size cannot be set in-process; tokio: max_blocking_threads = N)");
    bars.push(Bar {
        what: format!(
            "submit while every worker is busy ≤ 0.1 µs: {}",
            fmt_ns(meds[0])
        ),
        met: meds[0] <= 100.0,
    });
}

const SLEEPY_JOBS: usize = 256;
const SLEEPY_REPS: usize = 5;

fn sleepy(bars: &mut Vec<Bar>) {
    println!(
        "\n## sleepy — {SLEEPY_JOBS} jobs that each sleep 1 ms, default builders, fresh pool per rep ({SLEEPY_REPS} interleaved reps)"
    );
    let names = &SYSTEMS[..SYSTEMS.len() - 1];
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..SLEEPY_REPS {
        for (i, name) in names.iter().enumerate() {
            let sys = Sys::new(name, false);
            let t = Instant::now();
            let pending: Vec<_> = (0..SLEEPY_JOBS)
                .map(|_| sys.submit(|| std::thread::sleep(Duration::from_millis(1))))
                .collect();
            for p in pending {
                sys.wait(p);
            }
            wall[i].push(t.elapsed().as_nanos() as f64);
        }
    }
    let meds = print_medians(names, &mut wall, "wall time");
    for (i, name) in names.iter().enumerate().skip(1) {
        plot("256 sleeps of 1 ms (wall time)", name, meds[i] / meds[0]);
    }
    println!("(blocking's pool is process-global: its threads stay warm between reps)");
    let r = meds[0] / meds[2];
    bars.push(Bar {
        what: format!("sleepy ≤ 1.5× tokio: {r:.2}×"),
        met: r <= 1.5,
    });
}

const IO_CALLS: usize = 4096;
const IO_IN_FLIGHT: usize = 64;
const IO_BLOCK: Duration = Duration::from_micros(100);
const IO_REPS: usize = 3;
const CPU_JOBS: usize = 64;
const CPU_JOB: Duration = Duration::from_millis(2);

/// Fixed CPU work of about `CPU_JOB` on an idle core (calibrated once per process): a job
/// timed by the wall clock would finish early when oversubscribed.
fn cpu_work(iterations: u64) -> u64 {
    let mut x = 0u64;
    for _ in 0..iterations {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
    x
}

fn cpu_iterations() -> u64 {
    let probe = 1_000_000;
    let t = Instant::now();
    cpu_work(probe);
    (probe as f64 * CPU_JOB.as_secs_f64() / t.elapsed().as_secs_f64()) as u64
}

/// Threads of this process now.
fn threads_now() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Runs `work` while a sampler counts this process's threads every 200 µs; returns the wall
/// time of `work` and the most threads seen beyond those alive before it.
fn with_thread_peak(work: impl FnOnce()) -> (Duration, usize) {
    let before = threads_now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(threads_now());
                std::thread::sleep(Duration::from_micros(200));
            }
            peak.max(threads_now())
        })
    };
    let t = Instant::now();
    work();
    let wall = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    // The sampler itself is one of the threads it saw.
    (wall, peak.saturating_sub(before + 1))
}

/// Runs in a child process: `io <system>` → wall ns and peak threads of `IO_CALLS` calls that
/// each block `IO_BLOCK`, `IO_IN_FLIGHT` in flight.
fn io_child(name: &str) {
    let sys = Sys::new(name, false);
    let p = sys.submit(|| 1); // the pool exists and has served a job
    sys.wait(p);
    let (wall, peak) = with_thread_peak(|| {
        let mut window = std::collections::VecDeque::with_capacity(IO_IN_FLIGHT);
        for _ in 0..IO_CALLS {
            if window.len() == IO_IN_FLIGHT {
                sys.wait(window.pop_front().unwrap());
            }
            window.push_back(sys.submit(|| std::thread::sleep(IO_BLOCK)));
        }
        for p in window {
            sys.wait(p);
        }
    });
    println!("{} {}", wall.as_nanos(), peak);
}

fn io(bars: &mut Vec<Bar>) {
    println!(
        "\n## io — {IO_CALLS} calls that each block {} µs, {IO_IN_FLIGHT} in flight, default builders (own process each; {IO_REPS} interleaved reps)",
        IO_BLOCK.as_micros()
    );
    let names = ["offthread", "tokio", "blocking", "minimal"];
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut peak: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..IO_REPS {
        for (i, name) in names.iter().enumerate() {
            let out = child(&["io", name]);
            let mut it = out.split_whitespace().map(|x| x.parse::<f64>().unwrap());
            wall[i].push(it.next().unwrap());
            peak[i].push(it.next().unwrap());
        }
    }
    println!("| system | wall time | offthread ÷ system | peak threads |");
    println!("|---|---|---|---|");
    let meds: Vec<f64> = wall.iter_mut().map(|v| median(v)).collect();
    for (i, name) in names.iter().enumerate() {
        println!(
            "| {name} | {} | {:.2}× | {:.0} |",
            fmt_ns(meds[i]),
            meds[0] / meds[i],
            median(&mut peak[i])
        );
    }
    for (i, name) in names.iter().enumerate().skip(1) {
        plot(
            "io: 4,096 calls blocking 100 µs (wall time)",
            name,
            meds[i] / meds[0],
        );
    }
    println!("(minimal: a fixed pool of one thread per core, the floor without growth)");
    let r = meds[0] / meds[1];
    bars.push(Bar {
        what: format!("io ≤ 1.0× tokio spawn_blocking: {r:.2}×"),
        met: r <= 1.0,
    });
}

/// Runs in a child process: `cpu <system>` → wall ns of `CPU_JOBS` CPU-bound jobs and the
/// threads left (beyond those before the pool was built) once they are done.
fn cpu_child(name: &str) {
    let iterations = cpu_iterations();
    let before = threads_now();
    let sys = Sys::new(name, false);
    let t = Instant::now();
    let pending: Vec<_> = (0..CPU_JOBS)
        .map(|_| sys.submit(move || cpu_work(iterations)))
        .collect();
    for p in pending {
        sys.wait(p);
    }
    let wall = t.elapsed();
    let left = match &sys {
        Sys::Offthread(p) => p.stats().workers,
        _ => threads_now().saturating_sub(before),
    };
    println!("{} {}", wall.as_nanos(), left);
}

fn cpu_burst(bars: &mut Vec<Bar>) {
    println!(
        "\n## cpu_burst — {CPU_JOBS} CPU-bound jobs of {} ms, default builders: wall time and threads left after (own process each)",
        CPU_JOB.as_millis()
    );
    let names = ["offthread", "tokio", "blocking", "minimal"];
    println!("| system | wall time | threads left |");
    println!("|---|---|---|");
    let mut ours = 0.0;
    for (i, name) in names.iter().enumerate() {
        let out = child(&["cpu", name]);
        let mut it = out.split_whitespace().map(|x| x.parse::<f64>().unwrap());
        let (wall, left) = (it.next().unwrap(), it.next().unwrap());
        if i == 0 {
            ours = left;
        }
        println!("| {name} | {} | {left:.0} |", fmt_ns(wall));
    }
    println!("(offthread: its workers; peers: threads of the process beyond those before)");
    bars.push(Bar {
        what: format!(
            "a CPU-bound burst leaves at most cores + 1 workers: {ours:.0} (cores {})",
            cores()
        ),
        met: ours <= (cores() + 1) as f64,
    });
}

/// Sum of CPU time of every thread of this process, from /proc (nanoseconds).
fn process_cpu_ns() -> u64 {
    let mut total = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                total += s
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// Runs in a child process: `idle <system>` → prints CPU % of one core used over 1 s idle.
fn idle_child(name: &str) {
    let sys = Sys::new(name, false);
    let p = sys.submit(|| 1); // threads exist and have served a job
    sys.wait(p);
    std::thread::sleep(Duration::from_millis(100)); // let spinning settle
    let cpu0 = process_cpu_ns();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let cpu = process_cpu_ns() - cpu0;
    println!("{}", cpu as f64 / t.elapsed().as_nanos() as f64 * 100.0);
    drop(sys);
}

fn idle(bars: &mut Vec<Bar>) {
    println!("\n## idle — CPU used by an idle pool over 1 s (own process each)");
    let names = &SYSTEMS[..SYSTEMS.len() - 1];
    println!("| system | CPU (% of one core) |");
    println!("|---|---|");
    let mut ours = 0.0;
    for (i, name) in names.iter().enumerate() {
        let v: f64 = child(&["idle", name]).trim().parse().unwrap();
        if i == 0 {
            ours = v;
        }
        println!("| {name} | {v:.3}% |");
    }
    bars.push(Bar {
        what: format!("idle < 1% of a core: {ours:.3}%"),
        met: ours < 1.0,
    });
}

const FLOOD_WORKERS: usize = 8;
const FLOOD_JOBS: usize = 2000;
const FLOOD_SLEEP: Duration = Duration::from_millis(2);
const FLOOD_PROBES: usize = 100;
const FLOOD_PACE: Duration = Duration::from_millis(2);
const FLOOD_REPS: usize = 3;

/// One run of the flood: `FLOOD_JOBS` sleeping jobs queued at once, then `FLOOD_PROBES`
/// trivial jobs paced `FLOOD_PACE` apart; returns each probe's queue wait (submit → start, ns).
fn flood_run(system: &str) -> Vec<f64> {
    use offthread::Priority;
    let probe = |at: Instant| move || at.elapsed().as_nanos() as f64;
    let flood = || std::thread::sleep(FLOOD_SLEEP);
    match system {
        "offthread" | "offthread (no priorities)" => {
            let prio = system == "offthread";
            let pool = offthread::Pool::builder()
                .max_workers(FLOOD_WORKERS)
                .build()
                .unwrap();
            let bg = if prio {
                Priority::Background
            } else {
                Priority::Normal
            };
            let fg = if prio {
                Priority::Interactive
            } else {
                Priority::Normal
            };
            let floods: Vec<_> = (0..FLOOD_JOBS)
                .map(|_| pool.job(flood).priority(bg).submit().unwrap())
                .collect();
            let probes: Vec<_> = (0..FLOOD_PROBES)
                .map(|_| {
                    std::thread::sleep(FLOOD_PACE);
                    pool.job(probe(Instant::now()))
                        .priority(fg)
                        .submit()
                        .unwrap()
                })
                .collect();
            let waits = probes.into_iter().map(|h| h.wait().unwrap()).collect();
            floods.into_iter().for_each(|h| h.wait().unwrap());
            waits
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .max_blocking_threads(FLOOD_WORKERS)
                .build()
                .unwrap();
            let floods: Vec<_> = (0..FLOOD_JOBS).map(|_| rt.spawn_blocking(flood)).collect();
            let probes: Vec<_> = (0..FLOOD_PROBES)
                .map(|_| {
                    std::thread::sleep(FLOOD_PACE);
                    rt.spawn_blocking(probe(Instant::now()))
                })
                .collect();
            let waits = probes
                .into_iter()
                .map(|h| rt.block_on(h).unwrap())
                .collect();
            for h in floods {
                rt.block_on(h).unwrap();
            }
            waits
        }
        "minimal" => {
            let m = Minimal::new(FLOOD_WORKERS, 8192);
            let floods: Vec<_> = (0..FLOOD_JOBS).map(|_| m.submit(flood)).collect();
            let probes: Vec<_> = (0..FLOOD_PROBES)
                .map(|_| {
                    std::thread::sleep(FLOOD_PACE);
                    m.submit(probe(Instant::now()))
                })
                .collect();
            let waits = probes.into_iter().map(|rx| rx.recv().unwrap()).collect();
            floods.into_iter().for_each(|rx| rx.recv().unwrap());
            waits
        }
        _ => unreachable!(),
    }
}

fn priority(bars: &mut Vec<Bar>) {
    println!(
        "\n## priority — {FLOOD_JOBS} jobs sleeping {FLOOD_SLEEP:?} flood {FLOOD_WORKERS} workers; \
         {FLOOD_PROBES} trivial probes {FLOOD_PACE:?} apart: queue wait (submit → start), \
         {FLOOD_REPS} interleaved reps pooled"
    );
    let names = ["offthread", "offthread (no priorities)", "tokio", "minimal"];
    let mut waits: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..FLOOD_REPS {
        for (i, name) in names.iter().enumerate() {
            waits[i].extend(flood_run(name));
        }
    }
    println!("| system | median wait | p99 wait |");
    println!("|---|---|---|");
    let mut ours = (0.0, 0.0);
    for (i, name) in names.iter().enumerate() {
        let (m, p) = (median(&mut waits[i]), pct(&mut waits[i], 0.99));
        if i == 0 {
            ours = (m, p);
        }
        println!("| {name} | {} | {} |", fmt_ns(m), fmt_ns(p));
    }
    println!(
        "(offthread: probes Interactive, flood Background; the others queue everything FIFO. \
         tokio: max_blocking_threads = {FLOOD_WORKERS})"
    );
    bars.push(Bar {
        what: format!(
            "interactive p99 wait under a background flood < one flood job ({FLOOD_SLEEP:?}): {}",
            fmt_ns(ours.1)
        ),
        met: ours.1 < FLOOD_SLEEP.as_nanos() as f64,
    });
}

const LANE_JOBS: usize = 64_000;
const LANE_REPS: usize = 5;
const LANE_BLOCKING_JOBS: usize = 4096;
const LANE_WORK: Duration = Duration::from_micros(100);

/// `lanes` lanes, `jobs` jobs (each sleeping `work`, or trivial) spread round-robin, all
/// awaited: jobs per second.
fn lanes_run(system: &str, lanes: usize, jobs: usize, work: Duration) -> f64 {
    let per = jobs / lanes;
    let job = move |j: usize| {
        if !work.is_zero() {
            std::thread::sleep(work);
        }
        j
    };
    let t = Instant::now();
    match system {
        "offthread lanes" | "offthread lanes, min_workers = L" => {
            let pool = if system == "offthread lanes" {
                offthread::Pool::new()
            } else {
                offthread::Pool::builder()
                    .min_workers(lanes)
                    .build()
                    .unwrap()
            };
            let ls: Vec<_> = (0..lanes).map(|_| pool.lane()).collect();
            let mut handles = Vec::with_capacity(jobs);
            for j in 0..per {
                for l in &ls {
                    handles.push(l.submit(move || job(j)).unwrap());
                }
            }
            for h in handles {
                h.wait().unwrap();
            }
        }
        "thread per lane" => {
            let threads: Vec<_> = (0..lanes)
                .map(|_| {
                    let (tx, rx) = crossbeam_channel::unbounded::<BoxJob>();
                    let t = std::thread::spawn(move || {
                        for job in rx {
                            job();
                        }
                    });
                    (tx, t)
                })
                .collect();
            let mut results = Vec::with_capacity(jobs);
            for j in 0..per {
                for (tx, _) in &threads {
                    let (rtx, rrx) = oneshot::channel();
                    tx.send(Box::new(move || {
                        let _ = rtx.send(job(j));
                    }))
                    .unwrap();
                    results.push(rrx);
                }
            }
            for r in results {
                r.recv().unwrap();
            }
            for (tx, t) in threads {
                drop(tx);
                t.join().unwrap();
            }
        }
        _ => unreachable!(),
    }
    (per * lanes) as f64 / t.elapsed().as_secs_f64()
}

/// The peer of `l` lanes, as the chart names it.
fn per_lane(l: usize) -> String {
    match l {
        1 => "1 thread for the lane".to_owned(),
        _ => format!("{l} threads, one per lane"),
    }
}

fn lanes(bars: &mut Vec<Bar>) {
    println!(
        "\n## lanes — {LANE_JOBS} trivial jobs round-robin over L serial lanes, all awaited \
         (setup and teardown included; {LANE_REPS} interleaved reps)"
    );
    println!("| L | offthread lanes (jobs/s) | thread per lane (jobs/s) | offthread ÷ threads |");
    println!("|---|---|---|---|");
    for l in [1, 8, 64, 1000] {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..LANE_REPS {
            ours.push(lanes_run("offthread lanes", l, LANE_JOBS, Duration::ZERO));
            theirs.push(lanes_run("thread per lane", l, LANE_JOBS, Duration::ZERO));
        }
        let (a, b) = (median(&mut ours), median(&mut theirs));
        println!("| {l} | {a:.0} | {b:.0} | {:.2}× |", a / b);
        plot("serial lanes, trivial jobs (jobs/s)", &per_lane(l), a / b);
        if l == 64 {
            bars.push(Bar {
                what: format!(
                    "64 lanes ≥ 1.0× 64 dedicated threads (trivial jobs): {:.2}×",
                    a / b
                ),
                met: a >= b,
            });
        }
    }
    println!(
        "\n{LANE_BLOCKING_JOBS} jobs that each block {LANE_WORK:?} (sleep), round-robin over L lanes \
         (default pool, max_workers 128; {LANE_REPS} interleaved reps):"
    );
    println!(
        "| L | offthread lanes (jobs/s) | offthread lanes, min_workers = L | thread per lane (jobs/s) | offthread ÷ threads | min_workers = L ÷ threads |"
    );
    println!("|---|---|---|---|---|---|");
    for l in [8, 64] {
        let (mut ours, mut warm, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..LANE_REPS {
            ours.push(lanes_run(
                "offthread lanes",
                l,
                LANE_BLOCKING_JOBS,
                LANE_WORK,
            ));
            warm.push(lanes_run(
                "offthread lanes, min_workers = L",
                l,
                LANE_BLOCKING_JOBS,
                LANE_WORK,
            ));
            theirs.push(lanes_run(
                "thread per lane",
                l,
                LANE_BLOCKING_JOBS,
                LANE_WORK,
            ));
        }
        let (a, w, b) = (median(&mut ours), median(&mut warm), median(&mut theirs));
        let scenario = "serial lanes, jobs blocking 100 µs (jobs/s)";
        plot(scenario, &per_lane(l), a / b);
        println!(
            "| {l} | {a:.0} | {w:.0} | {b:.0} | {:.2}× | {:.2}× |",
            a / b,
            w / b
        );
    }
    println!(
        "(the default pool grows past the CPU count while its workers sleep in these jobs; \
         min_workers = L starts every worker up front)"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        let rest: Vec<&str> = args[pos + 1..].iter().map(String::as_str).collect();
        match rest.as_slice() {
            ["burst", name, jobs] => burst_child(name, jobs.parse().unwrap(), "wait"),
            ["burst", name, jobs, how] => burst_child(name, jobs.parse().unwrap(), how),
            ["idle", name] => idle_child(name),
            ["io", name] => io_child(name),
            ["cpu", name] => cpu_child(name),
            other => panic!("bad child args {other:?}"),
        }
        return;
    }
    // `cargo bench -- NAME` runs only the named scenarios.
    let want = selected(&args);
    println!(
        "# offthread pool benchmark — {} cores; ratios are offthread ÷ peer",
        cores()
    );
    let mut bars = Vec::new();
    if want("rtt") {
        rtt(&mut bars);
    }
    if want("rtt_await") {
        rtt_await(&mut bars);
    }
    if want("burst") {
        burst(&mut bars);
    }
    if want("submit") {
        submit(&mut bars);
    }
    if want("sleepy") {
        sleepy(&mut bars);
    }
    if want("io") {
        io(&mut bars);
    }
    if want("cpu_burst") {
        cpu_burst(&mut bars);
    }
    if want("idle") {
        idle(&mut bars);
    }
    if want("priority") {
        priority(&mut bars);
    }
    if want("lanes") {
        lanes(&mut bars);
    }
    print_bars(&bars);
    write_chart(
        &args,
        "pool.svg",
        "cargo bench --bench pool: offthread beside other thread pools",
    );
}
