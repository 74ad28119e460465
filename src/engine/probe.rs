//! What a worker thread is doing, as the OS sees it: on the CPU, or asleep (blocked on I/O, a
//! lock, a sleep). On Linux each worker opens its own `/proc/thread-self/stat` when it starts;
//! the monitor reads the state field from it (a few microseconds, no system-wide lock).
//! Elsewhere there is no probe, and the monitor falls back to watching for stalls.

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

/// A worker thread's state file (and, if asked for, its scheduler statistics), opened on that
/// thread.
pub(crate) struct ThreadProbe {
    file: File,
    sched: Option<File>,
}

impl ThreadProbe {
    /// The probe of the calling thread, where the OS offers one; with `cpu`, it can also tell
    /// how much CPU time the thread has used.
    pub(crate) fn for_current_thread(cpu: bool) -> Option<Arc<Self>> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let file = File::open("/proc/thread-self/stat").ok()?;
        let sched = cpu
            .then(|| File::open("/proc/thread-self/schedstat").ok())
            .flatten();
        Some(Arc::new(Self { file, sched }))
    }

    /// The CPU time the thread has used (the first field of `schedstat`, in nanoseconds; the
    /// OS brings it up to date when the thread is switched or at a timer tick), if known.
    pub(crate) fn cpu_time(&self) -> Option<Duration> {
        let mut buf = [0u8; 128];
        let n = read_at_start(self.sched.as_ref()?, &mut buf).ok()?;
        let first = buf[..n].split(|b| b.is_ascii_whitespace()).next()?;
        std::str::from_utf8(first)
            .ok()?
            .parse()
            .ok()
            .map(Duration::from_nanos)
    }

    /// `true` if the thread is asleep in the OS now (`S`: interruptible, `D`: disk), `false`
    /// if it runs or waits for a CPU (or the state cannot be read).
    pub(crate) fn is_blocked(&self) -> bool {
        let mut buf = [0u8; 512];
        let Ok(n) = read_at_start(&self.file, &mut buf) else {
            return false;
        };
        state(&buf[..n]).is_some_and(|s| matches!(s, b'S' | b'D'))
    }
}

#[cfg(unix)]
fn read_at_start(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, 0)
}

#[cfg(not(unix))]
fn read_at_start(_: &File, _: &mut [u8]) -> std::io::Result<usize> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// The state field of a `stat` line: `pid (comm) S …`, where `comm` may hold spaces and
/// parentheses, so the field follows the last `)`.
fn state(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_the_last_parenthesis() {
        assert_eq!(state(b"12 (offthread-1) S 1 2 3"), Some(b'S'));
        assert_eq!(state(b"12 (a) b) (c) R 1"), Some(b'R'));
        assert_eq!(state(b"12 (x) D"), Some(b'D'));
        assert_eq!(state(b"garbage"), None);
        assert_eq!(state(b"12 (x)"), None);
    }

    #[test]
    fn a_thread_that_sleeps_reads_blocked_and_one_that_computes_does_not() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            tx.send(ThreadProbe::for_current_thread(false).unwrap())
                .unwrap();
            gate.recv().ok();
        });
        let probe = rx.recv().unwrap();
        // The sleeper is blocked in `recv` once it has sent its probe; wait until the OS says so.
        let mut seen = false;
        for _ in 0..100_000 {
            if probe.is_blocked() {
                seen = true;
                break;
            }
            std::thread::yield_now();
        }
        assert!(seen, "a thread blocked in recv never read as blocked");
        release.send(()).unwrap();
        sleeper.join().unwrap();
        // This thread is running while it reads its own state.
        assert!(!ThreadProbe::for_current_thread(false).unwrap().is_blocked());
    }

    #[test]
    fn a_thread_that_computes_shows_cpu_time_growing() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let probe = ThreadProbe::for_current_thread(true).unwrap();
        let before = probe.cpu_time().expect("schedstat is readable");
        // Compute until the OS has brought the figure up to date (at a tick or a switch; a
        // billion steps take far longer than a tick).
        let mut x = 0u64;
        for _ in 0..1000 {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            if probe.cpu_time().unwrap() != before {
                break;
            }
        }
        assert!(probe.cpu_time().unwrap() > before, "no CPU time after {x}");
        assert_eq!(
            ThreadProbe::for_current_thread(false).unwrap().cpu_time(),
            None
        );
    }
}
