//! Bad configuration is a typed BuildError, never a panic; growth and retirement.
mod common;
use common::*;
use offthread::Pool;
use std::time::Duration;

#[test]
fn invalid_configurations_are_errors() {
    let cases = [
        (
            Pool::builder().max_workers(0),
            "max_workers must be at least 1",
        ),
        (
            Pool::builder().min_workers(0),
            "min_workers must be at least 1 (a pool keeps one thread so no job is stranded)",
        ),
        (
            Pool::builder().min_workers(5).max_workers(2),
            "min_workers (5) is greater than max_workers (2)",
        ),
        (
            Pool::builder().thread_name("a\0b"),
            "thread_name contains a NUL byte",
        ),
    ];
    for (builder, msg) in cases {
        let err = builder.build().unwrap_err();
        assert!(err.is_config());
        assert_eq!(err.to_string(), msg);
        assert!(std::error::Error::source(&err).is_none());
    }
}

#[test]
fn a_capacity_of_zero_is_taken_as_one() {
    let pool = Pool::builder()
        .max_workers(1)
        .queue_capacity(0)
        .build()
        .unwrap();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = std::sync::mpsc::channel();
    let busy = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            gate.recv().ok()
        })
        .unwrap();
    started.recv().unwrap();
    let queued = pool.try_submit(|| 1).unwrap(); // one slot
    assert!(matches!(
        pool.try_submit(|| 2),
        Err(offthread::TrySubmitError::Full(_))
    ));
    release.send(()).unwrap();
    assert_eq!(busy.wait(), Ok(Some(())));
    assert_eq!(queued.wait(), Ok(1));
}

#[test]
fn workers_are_named_after_the_builder() {
    let pool = Pool::builder().thread_name("db-io").build().unwrap();
    let name = pool
        .submit(|| std::thread::current().name().map(str::to_owned))
        .unwrap()
        .wait()
        .unwrap()
        .unwrap();
    assert!(name.starts_with("db-io-"), "{name}");
}

#[test]
fn the_pool_grows_to_max_workers_when_all_are_blocked_and_no_further() {
    let pool = Pool::builder().max_workers(4).build().unwrap();
    assert_eq!(pool.stats().workers, 1);
    let gate = Gate::new();
    // Four blocking jobs: none finishes, so the pool grows to 4 and runs them all at once.
    let busy = occupy(&pool, 4, &gate);
    let extra = pool.submit(|| ()).unwrap();
    let s = pool.stats();
    assert_eq!((s.workers, s.running, s.queued), (4, 4, 1));
    gate.open();
    extra.wait().unwrap();
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn idle_workers_retire_down_to_min_workers_and_never_below() {
    // Six workers go idle together and time out together: only five may retire. (A bug once let
    // simultaneous timeouts retire every worker, leaving none to run later jobs.)
    let pool = Pool::builder()
        .min_workers(1)
        .max_workers(6)
        .keep_alive(Duration::from_millis(1))
        .build()
        .unwrap();
    for round in 0..20 {
        let gate = Gate::new();
        let busy = occupy(&pool, 6, &gate);
        assert_eq!(pool.stats().workers, 6, "round {round}");
        gate.open();
        busy.into_iter().for_each(|h| h.wait().unwrap());
        eventually("extra workers retire", || pool.stats().workers <= 1);
        assert_eq!(
            pool.stats().workers,
            1,
            "round {round}: retired below min_workers"
        );
        // And the pool still serves, growing again when needed.
        assert_eq!(pool.submit(|| 1).unwrap().wait(), Ok(1));
    }
}

#[test]
fn jobs_that_wait_for_each_other_all_start_on_a_warm_pool() {
    // Six jobs that can only finish together: every one must get its own thread although no
    // further submit comes to trigger growth (the pool's monitor must notice the stall, and
    // must be told about it even when the last submit found idle workers still waking up).
    let pool = Pool::builder()
        .min_workers(2)
        .max_workers(6)
        .build()
        .unwrap();
    for round in 0..30 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let b = barrier.clone();
                pool.submit(move || {
                    b.wait();
                    i
                })
                .unwrap()
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(h.wait_timeout(HUGE).unwrap(), Ok(i), "round {round}");
        }
    }
}

/// Short blocking calls (each sleeps 200 µs, so jobs keep finishing: the pool never looks
/// stalled) grow the pool past the CPU count while a backlog waits.
#[test]
fn short_blocking_calls_grow_the_pool_past_the_cpu_count() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = Pool::builder().max_workers(cores + 8).build().unwrap();
    let mut peak = 0;
    let mut window = std::collections::VecDeque::new();
    // Keep a backlog of blocking calls until the pool has grown (or the watchdog fires).
    eventually("the pool grows past the CPU count", || {
        while window.len() < 64 {
            window.push_back(
                pool.submit(|| std::thread::sleep(Duration::from_micros(200)))
                    .unwrap(),
            );
        }
        window.pop_front().unwrap().wait().unwrap();
        peak = peak.max(pool.stats().workers);
        peak > cores
    });
    window.into_iter().for_each(|h| h.wait().unwrap());
}

/// CPU-bound jobs keep every worker on the CPU: the pool stays at the CPU count, however long
/// the backlog, and more threads would only contend.
#[test]
fn cpu_bound_jobs_do_not_grow_the_pool_past_the_cpu_count() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = Pool::builder().max_workers(cores + 8).build().unwrap();
    let handles: Vec<_> = (0..48)
        .map(|_| {
            pool.submit(|| {
                let mut x = 0u64;
                for _ in 0..3_000_000 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
                x
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        h.wait().unwrap();
    }
    let workers = pool.stats().workers;
    assert!(workers <= cores + 1, "{workers} workers for {cores} cores");
}

/// A worker reported ready by `build` is counted as on its way until it waits for jobs, so a
/// job submitted the moment `build` returns goes to it and starts no second worker.
#[test]
fn a_job_submitted_as_build_returns_starts_no_extra_worker() {
    for round in 0..200 {
        let pool = Pool::builder().max_workers(4).build().unwrap();
        assert_eq!(pool.submit(|| 1).unwrap().wait(), Ok(1));
        assert_eq!(pool.stats().workers, 1, "round {round}");
    }
}

/// `WorkerPriority::Low` puts the workers in `SCHED_IDLE` on Linux (policy 5 in field 41 of
/// the thread's `stat`); `Normal` leaves them in `SCHED_OTHER` (0).
#[cfg(target_os = "linux")]
#[test]
fn low_priority_workers_run_under_sched_idle() {
    fn policy() -> u32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command name (in parentheses, which may hold spaces).
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(41 - 3).unwrap().parse().unwrap()
    }
    for (priority, want) in [
        (offthread::WorkerPriority::Low, 5),
        (offthread::WorkerPriority::Normal, 0),
    ] {
        let pool = offthread::Pool::builder()
            .worker_priority(priority)
            .build()
            .unwrap();
        assert_eq!(
            pool.submit(policy).unwrap().wait(),
            Ok(want),
            "{priority:?}"
        );
        pool.shutdown();
    }
    assert_eq!(policy(), 0, "the caller's own thread is untouched");
}
