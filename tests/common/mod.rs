//! Test helpers: gates to hold workers busy, start signals, drop counters. No sleeps.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A latch jobs block on until the test opens it.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn wait(&self) {
        let (lock, cv) = &*self.0;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }
    pub fn open(&self) {
        let (lock, cv) = &*self.0;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
}

/// A pool of one worker whose queue holds `capacity` jobs.
pub fn one_worker(capacity: usize) -> offthread::Pool {
    offthread::Pool::builder()
        .max_workers(1)
        .queue_capacity(capacity)
        .build()
        .unwrap()
}

/// Occupies `n` workers of `pool` with jobs that block on `gate`; returns once all `n` run.
pub fn occupy(pool: &offthread::Pool, n: usize, gate: &Gate) -> Vec<offthread::Handle<()>> {
    let (tx, rx) = mpsc::channel();
    let handles = (0..n)
        .map(|_| {
            let gate = gate.clone();
            let tx = tx.clone();
            pool.submit(move || {
                tx.send(()).unwrap();
                gate.wait();
            })
            .unwrap()
        })
        .collect();
    for _ in 0..n {
        rx.recv_timeout(HUGE)
            .expect("worker never started the gated job");
    }
    handles
}

/// A timeout for waits that must succeed: only a hang reaches it.
pub const HUGE: Duration = Duration::from_secs(60);
/// A timeout for waits that must time out.
pub const TINY: Duration = Duration::from_millis(5);

/// Counts drops of values made by `token()`.
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

pub struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl DropCounter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn token(&self) -> Token {
        Token(self.0.clone())
    }
    pub fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Polls `cond` (yielding) until it holds; fails the test after `HUGE`. For states that a test
/// cannot be told about through a channel (a worker retiring, a thread parking).
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + HUGE;
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::yield_now();
    }
}

/// Asserts the pool's counts add up.
pub fn assert_adds_up(s: offthread::Stats) {
    assert_eq!(
        s.submitted,
        s.resolved() + s.queued as u64 + s.running as u64,
        "counts do not add up: {s:?}"
    );
    assert_eq!(s.idle + s.running, s.workers, "{s:?}");
    let ran = s.completed + s.panicked;
    assert_eq!((s.queue_wait.count, s.run_time.count), (ran, ran), "{s:?}");
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("offthread-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
    pub fn join(&self, p: &str) -> std::path::PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Drives a `Stream` to its end with `pollster` (any executor would do).
pub fn collect_stream<S: futures_core::Stream + Unpin>(mut s: S) -> Vec<S::Item> {
    use std::task::Poll;
    let mut out = Vec::new();
    pollster::block_on(std::future::poll_fn(|cx| {
        loop {
            match std::pin::Pin::new(&mut s).poll_next(cx) {
                Poll::Ready(Some(item)) => out.push(item),
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }));
    out
}

/// Runs `f` on its own thread and returns its value; panics (failing the test) if it has not
/// returned within `HUGE`, so a hang is a failure rather than a stuck run. The hung thread is
/// left behind; the test binary exits without it.
pub fn watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HUGE) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Disconnected) => match runner.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the runner sends before it returns"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("hang: {what} did not return within {HUGE:?}")
        }
    }
}

/// A write that holds `db`'s writer until `gate` opens; returns once it runs.
#[cfg(any(feature = "sqlite", feature = "sqlite-system"))]
pub fn hold_writer(db: &offthread::sqlite::Db, gate: &Gate) -> offthread::sqlite::Call<()> {
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let held = db.write(move |_| {
        tx.send(()).unwrap();
        g.wait();
        Ok(())
    });
    rx.recv().unwrap();
    held
}
