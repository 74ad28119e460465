//! `cargo bench --bench files`: offthread's file API beside direct calls, `tokio::fs` and
//! `async-fs`, in one run, with interleaved repetitions. Prints medians, ratios and the
//! crate's performance targets.
//!
//! Scenarios:
//! - `small`: 2,000 files of 4 KiB, warm cache, read with up to 64 in flight (direct: serially).
//! - `stream`: a 256 MiB file read in 64 KiB chunks, each system in its own process: MiB/s and
//!   peak RSS (offthread also on a 64 MiB file, to show RSS does not grow with the file).
#![allow(missing_docs)]

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use futures::StreamExt;

const SMALL_FILES: usize = 2000;
const SMALL_SIZE: usize = 4096;
const IN_FLIGHT: usize = 64;
const SMALL_REPS: usize = 7;
const CHUNK: usize = 64 * 1024;
const BIG_MIB: usize = 256;
const STREAM_REPS: usize = 3;

fn bench_dir() -> PathBuf {
    std::env::temp_dir().join(format!("offthread-bench-files-{}", std::process::id()))
}

// ---------------------------------------------------------------------------------------------
// small: many 4 KiB files.

/// Reads every path once with up to `IN_FLIGHT` in flight; returns the bytes read.
fn read_all(system: &str, paths: &[PathBuf]) -> usize {
    match system {
        "direct (serial)" => paths.iter().map(|p| std::fs::read(p).unwrap().len()).sum(),
        "offthread" => {
            // Completion order with at most 64 in flight, as `buffer_unordered` gives the async
            // peers: an inbox of 64 bounds the reads in flight, and a full one is drained.
            let files = offthread::fs::on(offthread::global());
            let inbox = offthread::Inbox::new(IN_FLIGHT);
            let mut total = 0;
            let mut take = |(_, read): ((), offthread::Outcome<std::io::Result<Vec<u8>>>)| {
                total += read.unwrap().unwrap().len();
            };
            for p in paths {
                let mut read = files.read(p).inbox(&inbox, ());
                loop {
                    match read.try_submit() {
                        Ok(_) => break,
                        Err(offthread::TrySubmitError::Full(op)) => {
                            take(inbox.recv().unwrap());
                            read = offthread::global().job(op).inbox(&inbox, ());
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            while let Some(item) = inbox.recv() {
                take(item);
            }
            total
        }
        "tokio::fs::read" => TOKIO.with(|rt| {
            rt.block_on(async {
                futures::stream::iter(paths)
                    .map(tokio::fs::read)
                    .buffer_unordered(IN_FLIGHT)
                    .map(|r| r.unwrap().len())
                    .fold(0, |a, n| async move { a + n })
                    .await
            })
        }),
        "async-fs::read" => futures::executor::block_on(async {
            futures::stream::iter(paths)
                .map(async_fs::read)
                .buffer_unordered(IN_FLIGHT)
                .map(|r| r.unwrap().len())
                .fold(0, |a, n| async move { a + n })
                .await
        }),
        _ => unreachable!(),
    }
}

thread_local! {
    /// One tokio runtime (default multi-thread builder) for every tokio rep.
    static TOKIO: tokio::runtime::Runtime = tokio::runtime::Runtime::new().unwrap();
}

fn small(bars: &mut Vec<Bar>) {
    let dir = bench_dir().join("small");
    std::fs::create_dir_all(&dir).unwrap();
    let paths: Vec<PathBuf> = (0..SMALL_FILES)
        .map(|i| {
            let p = dir.join(format!("f{i:04}"));
            std::fs::write(&p, vec![(i % 251) as u8; SMALL_SIZE]).unwrap();
            p
        })
        .collect();
    let systems = [
        "offthread",
        "direct (serial)",
        "tokio::fs::read",
        "async-fs::read",
    ];
    // Warm the page cache and every system's threads once.
    for s in systems {
        assert_eq!(read_all(s, &paths), SMALL_FILES * SMALL_SIZE);
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
    for _ in 0..SMALL_REPS {
        for (i, s) in systems.iter().enumerate() {
            let t = Instant::now();
            read_all(s, &paths);
            times[i].push(t.elapsed().as_secs_f64());
        }
    }
    println!(
        "\n## small — {SMALL_FILES} files of {} KiB, warm cache, up to {IN_FLIGHT} in flight ({SMALL_REPS} interleaved reps)",
        SMALL_SIZE / 1024
    );
    println!("| system | files/s | wall time | offthread ÷ system (files/s) |");
    println!("|---|---|---|---|");
    let meds: Vec<f64> = times.iter_mut().map(|v| median(v)).collect();
    for (i, s) in systems.iter().enumerate() {
        println!(
            "| {s} | {:.0} | {:.2} ms | {:.2}× |",
            SMALL_FILES as f64 / meds[i],
            meds[i] * 1e3,
            meds[i] / meds[0]
        );
    }
    for (i, s) in systems.iter().enumerate().skip(1) {
        plot("2,000 small files read (files/s)", s, meds[i] / meds[0]);
    }
    println!(
        "(offthread: the global pool, `fs::on(pool).read(path)` into a 64-slot inbox, taken in \
         completion order; tokio and async-fs: `buffer_unordered(64)`; tokio: default runtime)"
    );
    let vs_tokio = meds[2] / meds[0];
    let vs_direct = meds[1] / meds[0];
    bars.push(Bar {
        what: format!("small reads ≥ 2.5× tokio::fs::read: {vs_tokio:.2}×"),
        met: vs_tokio >= 2.5,
    });
    bars.push(Bar {
        what: format!("small reads ≥ 1.0× direct serial: {vs_direct:.2}×"),
        met: vs_direct >= 1.0,
    });
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// stream: one big file in chunks, each system in its own process.

/// Child: streams `path` in 64 KiB chunks with `system`; prints "seconds peak_rss_kib".
fn stream_child(system: &str, path: &Path) {
    let t = Instant::now();
    let mut total = 0usize;
    match system {
        "offthread" => {
            for chunk in offthread::fs::read_chunks(path, CHUNK) {
                total += chunk.unwrap().len();
            }
        }
        "direct (serial)" => {
            use std::io::Read;
            let mut f = std::fs::File::open(path).unwrap();
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n;
            }
        }
        "tokio::fs::File" => {
            let rt = tokio::runtime::Runtime::new().unwrap();
            total = rt.block_on(async {
                use tokio::io::AsyncReadExt;
                let mut f = tokio::fs::File::open(path).await.unwrap();
                let mut buf = vec![0u8; CHUNK];
                let mut total = 0;
                loop {
                    let n = f.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break total;
                    }
                    total += n;
                }
            });
        }
        "async-fs::File" => {
            total = futures::executor::block_on(async {
                use futures::AsyncReadExt;
                let mut f = async_fs::File::open(path).await.unwrap();
                let mut buf = vec![0u8; CHUNK];
                let mut total = 0;
                loop {
                    let n = f.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break total;
                    }
                    total += n;
                }
            });
        }
        _ => unreachable!(),
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(total as u64, std::fs::metadata(path).unwrap().len());
    println!("{secs} {}", peak_rss_kib());
}

fn child(args: &[&str]) -> (f64, u64) {
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
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace();
    (
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    )
}

fn make_file(path: &Path, mib: usize) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0x5au8; 1 << 20];
    for _ in 0..mib {
        f.write_all(&block).unwrap();
    }
}

fn stream(bars: &mut Vec<Bar>) {
    let dir = bench_dir().join("stream");
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big");
    let small = dir.join("small");
    make_file(&big, BIG_MIB);
    make_file(&small, BIG_MIB / 4);
    let systems = [
        "offthread",
        "direct (serial)",
        "tokio::fs::File",
        "async-fs::File",
    ];
    let big_s = big.to_str().unwrap();
    for s in systems {
        child(&["stream", s, big_s]); // warm the page cache
    }
    let mut secs: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
    let mut small_rss = Vec::new();
    for _ in 0..STREAM_REPS {
        for (i, s) in systems.iter().enumerate() {
            let (t, r) = child(&["stream", s, big_s]);
            secs[i].push(t);
            rss[i].push(r as f64);
        }
        small_rss.push(child(&["stream", "offthread", small.to_str().unwrap()]).1 as f64);
    }
    println!(
        "\n## stream — a {BIG_MIB} MiB file in {} KiB chunks, warm cache, each system in its own process ({STREAM_REPS} interleaved reps)",
        CHUNK / 1024
    );
    println!("| system | MiB/s | peak RSS | offthread ÷ system (MiB/s) |");
    println!("|---|---|---|---|");
    let meds: Vec<f64> = secs.iter_mut().map(|v| median(v)).collect();
    let rss_meds: Vec<f64> = rss.iter_mut().map(|v| median(v)).collect();
    for (i, s) in systems.iter().enumerate() {
        println!(
            "| {s} | {:.0} | {:.1} MiB | {:.2}× |",
            BIG_MIB as f64 / meds[i],
            rss_meds[i] / 1024.0,
            meds[i] / meds[0]
        );
    }
    for (i, s) in systems.iter().enumerate().skip(1) {
        plot(
            "a 256 MiB file streamed in chunks (MiB/s)",
            s,
            meds[i] / meds[0],
        );
    }
    let small_med = median(&mut small_rss);
    println!(
        "offthread peak RSS: {:.1} MiB for {} MiB, {:.1} MiB for {BIG_MIB} MiB",
        small_med / 1024.0,
        BIG_MIB / 4,
        rss_meds[0] / 1024.0
    );
    // Independent of size: the 4× larger file may cost at most one more MiB of peak RSS.
    let grew = (rss_meds[0] - small_med) / 1024.0;
    bars.push(Bar {
        what: format!(
            "streaming peak RSS independent of file size: +{grew:.2} MiB from {} to {BIG_MIB} MiB",
            BIG_MIB / 4
        ),
        met: grew <= 1.0,
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        let rest: Vec<&str> = args[pos + 1..].iter().map(String::as_str).collect();
        match rest.as_slice() {
            ["stream", system, path] => stream_child(system, Path::new(path)),
            other => panic!("bad child args {other:?}"),
        }
        return;
    }
    let want = selected(&args);
    println!(
        "# offthread files benchmark — {} cores; ratios are offthread ÷ peer",
        std::thread::available_parallelism().map_or(2, |n| n.get())
    );
    let mut bars = Vec::new();
    if want("small") {
        small(&mut bars);
    }
    if want("stream") {
        stream(&mut bars);
    }
    let _ = std::fs::remove_dir_all(bench_dir());
    print_bars(&bars);
    write_chart(
        &args,
        "files.svg",
        "cargo bench --bench files: offthread::fs beside std::fs and async file APIs",
    );
}
