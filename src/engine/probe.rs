//! What a worker thread is doing, as the OS sees it: on the CPU, or asleep (blocked on I/O, a
//! lock, a sleep). On Linux each worker opens its own `/proc/thread-self/stat` when it starts;
//! the monitor reads the state field from it (a few microseconds, no system-wide lock).
//! Elsewhere there is no probe, and the monitor falls back to watching for stalls.

use std::fs::File;
use std::sync::Arc;

/// A worker thread's state file, opened on that thread.
pub(crate) struct ThreadProbe {
    file: File,
}

impl ThreadProbe {
    /// The probe of the calling thread, where the OS offers one.
    pub(crate) fn for_current_thread() -> Option<Arc<Self>> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        File::open("/proc/thread-self/stat")
            .ok()
            .map(|file| Arc::new(Self { file }))
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
            tx.send(ThreadProbe::for_current_thread().unwrap()).unwrap();
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
        assert!(!ThreadProbe::for_current_thread().unwrap().is_blocked());
    }
}
