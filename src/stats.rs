//! The pool's counters, the `Stats` snapshot, and `RunningJob`.

use std::sync::Arc;
use std::time::Duration;

/// A snapshot of a pool's counters, from [`Pool::stats`](crate::Pool::stats).
///
/// The snapshot is taken under the pool's lock, so it is a consistent cut: at every instant
///
/// ```text
/// submitted == queued + running + completed + panicked + cancelled + expired + shut_down
/// ```
///
/// A worker records a job's outcome just after delivering it, so a handle can resolve a moment
/// before `completed` counts it; after [`shutdown`](crate::Pool::shutdown) returns, the counts
/// are final.
///
/// # Examples
/// ```
/// let pool = offthread::Pool::new();
/// pool.submit(|| ())?.wait()?;
/// pool.shutdown();
/// let s = pool.stats();
/// assert_eq!((s.submitted, s.completed, s.queued, s.running), (1, 1, 0, 0));
/// assert_eq!(s.submitted, s.resolved() + s.queued as u64 + s.running as u64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Worker threads alive (including ones still starting; not counting the pool's monitor
    /// thread).
    pub workers: usize,
    /// Workers not running a job.
    pub idle: usize,
    /// Jobs accepted and waiting for a worker.
    pub queued: usize,
    /// Jobs running now.
    pub running: usize,
    /// Jobs accepted, ever.
    pub submitted: u64,
    /// Jobs that ran and returned a value.
    pub completed: u64,
    /// Jobs that ran and panicked.
    pub panicked: u64,
    /// Jobs cancelled while queued (they never ran).
    pub cancelled: u64,
    /// Jobs whose start deadline passed while queued (they never ran).
    pub expired: u64,
    /// Jobs resolved `ShutDown` by `shutdown_now` (they never ran).
    pub shut_down: u64,
    /// Submissions refused (queue full, timed out, or pool shut down); not part of `submitted`.
    pub rejected: u64,
    /// Worker threads that failed to start (the OS refused, or a start hook or state init
    /// panicked). The pool goes on with the workers it has.
    pub start_failures: u64,
    /// Panics caught in completion callbacks ([`JobBuilder::on_complete`](crate::JobBuilder::on_complete))
    /// and inbox wake hooks ([`Inbox::with_wake`](crate::Inbox::with_wake)). The job itself is
    /// counted by its own outcome; the worker survived. (Counted outside the lock, so not part
    /// of the consistent cut.)
    pub callback_panics: u64,
    /// How long jobs waited between submission and their start (in their lane too, for a
    /// lane's job), over every job that has run to the end since the pool started: recorded
    /// with the job's outcome, so `queue_wait.count == run_time.count == completed +
    /// panicked` in every snapshot.
    pub queue_wait: Percentiles,
    /// How long jobs ran on their worker (the closure and the delivery of its outcome), over
    /// every job that has run to the end since the pool started.
    pub run_time: Percentiles,
}

impl Stats {
    /// Jobs that have resolved: completed, panicked, cancelled, expired or shut down.
    pub fn resolved(&self) -> u64 {
        self.completed + self.panicked + self.cancelled + self.expired + self.shut_down
    }
}

/// The distribution of a duration over the jobs a pool has run: median, 99th percentile and
/// maximum, from [`Stats::queue_wait`] and [`Stats::run_time`].
///
/// The pool keeps a histogram of fixed size (a few KiB, whatever the number of jobs), so the
/// percentiles are rounded up to the top of their bucket: at most 12.5 % above the true
/// value, and never above `max`, which is exact. All zero before the first job ends.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let pool = offthread::Pool::new();
/// for _ in 0..10 {
///     pool.submit(|| std::thread::sleep(Duration::from_millis(1)))?.wait()?;
/// }
/// pool.shutdown();
/// let run = pool.stats().run_time;
/// assert_eq!(run.count, 10);
/// assert!(run.p50 >= Duration::from_millis(1) && run.p50 <= run.p99 && run.p99 <= run.max);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Percentiles {
    /// Jobs measured.
    pub count: u64,
    /// Half of the jobs took at most this long.
    pub p50: Duration,
    /// 99 % of the jobs took at most this long.
    pub p99: Duration,
    /// The longest.
    pub max: Duration,
}

/// Sub-buckets per power of two: 2^3 = 8, so a bucket spans at most 1/8 of its lower bound.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Values below `SUB` nanoseconds get a bucket each; above, `SUB` buckets per power of two up
/// to 2^64 ns.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// A log-linear histogram of nanoseconds in constant memory (about 4 KiB): O(1) to record,
/// one pass over the buckets to read.
#[derive(Clone)]
pub(crate) struct Histogram {
    buckets: Box<[u64; BUCKETS]>,
    count: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: Box::new([0; BUCKETS]),
            count: 0,
            max: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// The bucket of `v` nanoseconds.
fn bucket(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    let sub = ((v >> shift) as usize) & (SUB - 1);
    (shift as usize + 1) * SUB + sub
}

/// The largest value in bucket `i`.
fn bucket_top(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = (i / SUB - 1) as u32;
    let low = ((SUB + i % SUB) as u64) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    pub(crate) fn record(&mut self, d: Duration) {
        let v = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket(v)] += 1;
        self.count += 1;
        self.max = self.max.max(v);
    }

    pub(crate) fn percentiles(&self) -> Percentiles {
        if self.count == 0 {
            return Percentiles::default();
        }
        // The smallest bucket with at least `rank` values at or below its top.
        let rank = |q: u64| (self.count * q).div_ceil(100).max(1);
        let (r50, r99) = (rank(50), rank(99));
        let (mut p50, mut p99, mut seen) = (None, None, 0);
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            seen += n;
            let top = bucket_top(i).min(self.max);
            if p50.is_none() && seen >= r50 {
                p50 = Some(top);
            }
            if seen >= r99 {
                p99 = Some(top);
                break;
            }
        }
        let ns = |v: Option<u64>| Duration::from_nanos(v.unwrap_or(self.max));
        Percentiles {
            count: self.count,
            p50: ns(p50),
            p99: ns(p99),
            max: Duration::from_nanos(self.max),
        }
    }
}

/// The counters, kept inside the pool's lock (so a snapshot is a consistent cut and no atomic is
/// touched on the hot path: every update rides on a lock the pool takes anyway).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) submitted: u64,
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cancelled: u64,
    pub(crate) expired: u64,
    pub(crate) shut_down: u64,
    pub(crate) rejected: u64,
    pub(crate) start_failures: u64,
    /// Submission to start, and start to end, of every job that ran to the end.
    pub(crate) queue_wait: Histogram,
    pub(crate) run_time: Histogram,
}

impl Counts {
    /// Jobs that ran to the end (value or panic); the progress signal for growing the pool.
    pub(crate) fn finished(&self) -> u64 {
        self.completed + self.panicked
    }
}

/// A named job that is running now, from [`Pool::running_jobs`](crate::Pool::running_jobs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunningJob {
    /// The name given with [`JobBuilder::name`](crate::JobBuilder::name).
    pub name: Arc<str>,
    /// How long it has been running.
    pub elapsed: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_top(BUCKETS - 1), u64::MAX);
        for i in 1..BUCKETS {
            // Each bucket starts just above the previous one's top.
            assert_eq!(bucket(bucket_top(i - 1) + 1), i, "bucket {i}");
            assert_eq!(bucket(bucket_top(i)), i, "bucket {i}");
        }
    }

    #[test]
    fn an_empty_histogram_reads_zero() {
        assert_eq!(Histogram::default().percentiles(), Percentiles::default());
    }

    proptest! {
        /// Against the exact percentiles of the same values: never below, at most 1/8 above,
        /// never above the maximum.
        #[test]
        fn percentiles_are_the_exact_ones_rounded_up_by_at_most_an_eighth(
            values in proptest::collection::vec(0u64..1 << 40, 1..400)
        ) {
            let mut h = Histogram::default();
            for &v in &values {
                h.record(Duration::from_nanos(v));
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let exact = |q: usize| sorted[(sorted.len() * q).div_ceil(100).max(1) - 1];
            let p = h.percentiles();
            prop_assert_eq!(p.count, values.len() as u64);
            prop_assert_eq!(p.max, Duration::from_nanos(*sorted.last().unwrap()));
            for (got, want) in [(p.p50, exact(50)), (p.p99, exact(99))] {
                let got = got.as_nanos() as u64;
                prop_assert!(got >= want, "{} < {}", got, want);
                prop_assert!(got <= want + want / 8, "{} > {} + 1/8", got, want);
                prop_assert!(got <= p.max.as_nanos() as u64);
            }
        }
    }
}
