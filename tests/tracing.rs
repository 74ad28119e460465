//! The `tracing` feature: a span per job, a child of the span current at submission, with its
//! fields; events for panics, refusals, jobs dropped unrun and worker threads. One test: the
//! subscriber is process-wide (workers are other threads).
#![cfg(feature = "tracing")]
mod common;
use common::*;
use offthread::Pool;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing_subscriber::fmt::format::FmtSpan;

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn one_line<'a>(lines: &'a [String], what: &str, parts: &[&str]) -> &'a str {
    lines
        .iter()
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| {
            panic!(
                "no line for {what} with {parts:?} in:\n{}",
                lines.join("\n")
            )
        })
}

#[test]
fn jobs_trace_as_spans_under_the_submitter_span_with_events_for_what_happens_to_them() {
    let out = Captured::default();
    let writer = out.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .without_time()
        .init();

    watchdog("tracing", || {
        let pool = Pool::builder()
            .max_workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let request = tracing::info_span!("request", id = 7);
        request.in_scope(|| {
            pool.job(|| 1)
                .name("load")
                .submit()
                .unwrap()
                .wait()
                .unwrap();
            let lane = pool.lane();
            lane.submit(|| ()).unwrap().wait().unwrap();
            let _ = pool.submit(|| -> () { panic!("boom") }).unwrap().wait();
        });
        // A refusal, a cancel and an expiry, with the worker held.
        let gate = Gate::new();
        let busy = occupy(&pool, 1, &gate);
        let queued = pool.submit(|| ()).unwrap();
        assert!(pool.try_submit(|| ()).is_err());
        queued.cancel();
        let late = pool
            .job(|| ())
            .start_deadline(Instant::now())
            .submit()
            .unwrap();
        gate.open();
        busy.into_iter().for_each(|h| h.wait().unwrap());
        assert!(late.wait().is_err());
        pool.shutdown();
    });

    let lines = out.lines();
    let load = one_line(
        &lines,
        "the named job's span closing",
        &[
            "request{id=7}:job{",
            "name=\"load\"",
            "priority=Normal",
            "queue_wait=",
            "run_time=",
            "close",
        ],
    );
    assert!(!load.contains("lane="), "{load}");
    one_line(
        &lines,
        "the lane job",
        &["request{id=7}:job{", "lane=0x", "close"],
    );
    one_line(
        &lines,
        "the panic",
        &["request{id=7}:job{", "WARN", "job panicked", "boom"],
    );
    one_line(
        &lines,
        "the refusal",
        &["submission refused", "reason=\"queue full\""],
    );
    one_line(&lines, "the cancel", &["job dropped unrun", "cancelled"]);
    one_line(&lines, "the expiry", &["job dropped unrun", "deadline"]);
    let started = one_line(&lines, "a worker's start", &["worker started", "worker="]);
    let id = started.split("worker=").nth(1).unwrap();
    one_line(
        &lines,
        "its stop",
        &["worker stopped", &format!("worker={id} retired=false")],
    );
}
