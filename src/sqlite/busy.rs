//! The busy handler every connection of a `Db` runs: it waits for a lock held by another
//! process the way SQLite's own `busy_timeout` does, and counts each retry for
//! [`DbStats::busy_retries`](super::DbStats::busy_retries).

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::lifecycle::ErrorCounts;

/// SQLite's own back-off between retries, in milliseconds; the last one repeats.
const DELAYS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

thread_local! {
    /// The busy timeout of this thread's connection (each connection lives on one thread).
    static LIMIT_MS: Cell<u64> = const { Cell::new(0) };
    /// Where this thread's connection counts its retries.
    static COUNTS: RefCell<Option<Arc<ErrorCounts>>> = const { RefCell::new(None) };
}

/// Installs the handler on `conn`, which lives on this thread from now on.
pub(super) fn install(
    conn: &Connection,
    timeout: Duration,
    counts: &Arc<ErrorCounts>,
) -> rusqlite::Result<()> {
    LIMIT_MS.set(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
    COUNTS.set(Some(counts.clone()));
    conn.busy_handler(Some(retry))
}

/// SQLite calls this when a lock it needs is held; `true` means "try again". `tries` is how
/// many times it was called before for the same lock.
fn retry(tries: i32) -> bool {
    let delay = delay_ms(usize::try_from(tries).unwrap_or(0), LIMIT_MS.get());
    if delay == 0 {
        return false; // the timeout is spent: the statement fails with SQLITE_BUSY
    }
    COUNTS.with_borrow(|c| {
        if let Some(c) = c {
            c.busy_retry();
        }
    });
    std::thread::sleep(Duration::from_millis(delay));
    true
}

/// How long the retry after `tries` earlier ones waits, within a timeout of `limit_ms`
/// (0: give up).
fn delay_ms(tries: usize, limit_ms: u64) -> u64 {
    let last = DELAYS_MS.len() - 1;
    // What the earlier retries waited.
    let waited: u64 = if tries <= last {
        DELAYS_MS[..tries].iter().sum()
    } else {
        let repeats = u64::try_from(tries - last).unwrap_or(u64::MAX); // the last, `repeats` times
        DELAYS_MS[..last]
            .iter()
            .sum::<u64>()
            .saturating_add(DELAYS_MS[last].saturating_mul(repeats))
    };
    DELAYS_MS[tries.min(last)].min(limit_ms.saturating_sub(waited))
}

#[cfg(test)]
mod tests {
    use super::delay_ms;

    /// The waits made for one lock within `limit_ms`, until the handler gives up.
    fn waits(limit_ms: u64) -> Vec<u64> {
        (0..)
            .map(|tries| delay_ms(tries, limit_ms))
            .take_while(|&d| d > 0)
            .collect()
    }

    #[test]
    fn the_waits_follow_sqlites_schedule_and_stop_at_the_timeout() {
        assert_eq!(waits(0), Vec::<u64>::new());
        assert_eq!(waits(10), [1, 2, 5, 2]);
        assert_eq!(waits(228), [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50]);
        let long = waits(500);
        assert_eq!(long.iter().sum::<u64>(), 500);
        assert_eq!(long[11..], [100, 100, 72]); // 228 + 100 + 100 + 72
        assert_eq!(delay_ms(usize::MAX, 1_000), 0);
    }
}
