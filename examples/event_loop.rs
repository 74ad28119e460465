//! A 60 Hz frame loop that never blocks: it floods the pool with background work, submits one
//! interactive job per frame (a "click"), and drains an inbox each frame. Interactive results
//! arrive within a frame or two while the flood keeps every background worker busy.
//!
//! Run: `cargo run --release --example event_loop`
//!
//! The same loop runs twice: with priorities (clicks `Interactive`, flood `Background`), then
//! with every job `Normal`, to show what the priorities buy.
//!
//! With `--features tracing` each frame is a `tracing` span and each click a job span inside it
//! (queue wait and run time recorded), printed to stderr with the pool's worker events:
//! `cargo run --release --example event_loop --features tracing 2>trace.log`

use std::time::{Duration, Instant};

use offthread::{Inbox, Pool, Priority};

/// What came back, and when it was asked for.
#[derive(Clone, Copy)]
enum Key {
    Click { frame: u32, at: Instant },
    Background,
}

const FRAMES: u32 = 120; // two seconds
const FRAME: Duration = Duration::from_micros(16_667);
const FLOOD: usize = 8000;
const WORKERS: usize = 8;

struct Report {
    click_latency: Vec<Duration>,
    frames_late: Vec<u32>,
    background_done: usize,
    worst_frame: Duration,
}

fn run(priorities: bool) -> Report {
    let pool = Pool::builder().max_workers(WORKERS).build().unwrap();
    let inbox: Inbox<Instant, Key> = Inbox::new(FLOOD + 256);
    let (bg, fg) = if priorities {
        (Priority::Background, Priority::Interactive)
    } else {
        (Priority::Normal, Priority::Normal)
    };
    // The flood: 8,000 blocking calls of 3 ms each (a disk scan, say): 3 s of work for 8
    // threads, more than the loop's 2 s. `try_submit` never blocks the loop; the inbox was sized to take them all.
    for i in 0..FLOOD {
        let _ = pool
            .job(move || {
                std::thread::sleep(Duration::from_millis(3));
                let _ = i;
                Instant::now()
            })
            .priority(bg)
            .inbox(&inbox, Key::Background)
            .try_submit()
            .expect("room for the whole flood");
    }
    let mut report = Report {
        click_latency: Vec::new(),
        frames_late: Vec::new(),
        background_done: 0,
        worst_frame: Duration::ZERO,
    };
    let start = Instant::now();
    for frame in 0..FRAMES {
        #[cfg(feature = "tracing")]
        let frame_span = tracing::info_span!("frame", n = frame).entered();
        let frame_start = Instant::now();
        // A click: a short blocking call (a metadata lookup) whose answer the UI shows.
        let at = Instant::now();
        let _ = pool
            .job(move || {
                std::thread::sleep(Duration::from_micros(300));
                Instant::now() // when the answer was ready
            })
            .priority(fg)
            .name("click")
            .inbox(&inbox, Key::Click { frame, at })
            .try_submit();
        // Take whatever has arrived; never wait.
        for (key, outcome) in inbox.drain() {
            let ready = outcome.expect("no job fails here");
            match key {
                Key::Click { frame: asked, at } => {
                    report.click_latency.push(ready - at);
                    report.frames_late.push(frame - asked);
                }
                Key::Background => report.background_done += 1,
            }
        }
        // "Draw", then sleep to the next frame.
        let spent = frame_start.elapsed();
        #[cfg(feature = "tracing")]
        drop(frame_span);
        report.worst_frame = report.worst_frame.max(spent);
        let next = start + FRAME * (frame + 1);
        if let Some(rest) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(rest);
        }
    }
    pool.shutdown_now(); // the rest of the flood is not needed any more
    report
}

/// The `p` quantile, printed; "—" when there are no samples.
fn pct(v: &mut [Duration], p: f64) -> String {
    v.sort();
    match v.get(((v.len() as f64 - 1.0) * p).round() as usize) {
        Some(d) if !v.is_empty() => format!("{d:.2?}"),
        _ => "—".to_owned(),
    }
}

/// With `--features tracing`: frames, the clicks inside them and the pool's worker events, to
/// stderr (the flood's 8,000 jobs, submitted outside any frame, are left out).
#[cfg(feature = "tracing")]
fn show_traces() {
    use tracing_subscriber::filter::dynamic_filter_fn;
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::prelude::*;
    let in_a_frame = dynamic_filter_fn(|meta, cx| {
        meta.target() != "offthread"
            || cx.lookup_current().is_some()
            || meta.fields().field("worker").is_some()
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::CLOSE)
        .with_thread_names(true)
        .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with_filter(in_a_frame);
    tracing_subscriber::registry().with(layer).init();
}

fn main() {
    #[cfg(feature = "tracing")]
    show_traces();
    println!(
        "{FRAMES} frames at 60 Hz; {FLOOD} background jobs of 3 ms flood {WORKERS} workers; \
         one 0.3 ms click per frame\n"
    );
    println!(
        "| run | clicks answered | answer ready after (p50) | (p99) | shown by the next frame | background done | worst frame (loop's own work) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for priorities in [true, false] {
        let mut r = run(priorities);
        let answered = r.click_latency.len();
        let prompt = r.frames_late.iter().filter(|&&late| late <= 1).count();
        println!(
            "| {} | {answered}/{FRAMES} | {} | {} | {prompt} | {} | {:.2?} |",
            if priorities {
                "with priorities"
            } else {
                "all Normal"
            },
            pct(&mut r.click_latency, 0.5),
            pct(&mut r.click_latency, 0.99),
            r.background_done,
            r.worst_frame,
        );
    }
    println!(
        "\nWith priorities a click jumps the flood and comes back within a frame; without them it \
         waits behind the flood. The loop itself never blocks either way."
    );
}
