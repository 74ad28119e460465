//! Stress: a million jobs from 8 submitting threads, with random cancels, timeouts, panics,
//! handle drops, priorities, lanes and deadlines, while another thread races `shutdown` or
//! `shutdown_now` against them. Afterwards: every kept handle resolved exactly once with an
//! outcome its job allows, every job's closure was dropped exactly once (run, cancelled, shut
//! down, expired or handed back), the stats add up, and no worker thread is left.
//!
//! `STRESS_JOBS` sets the total (default 1,000,000); `STRESS_ROUNDS` repeats it.
mod common;
use common::*;
use fastrand::Rng;
use offthread::{CancelOutcome, JobError, Pool, Priority};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Threads of this process whose name starts with `prefix` (Linux; 0 elsewhere).
fn threads_named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .count()
}

/// What one submitting thread saw.
#[derive(Default)]
struct Tally {
    accepted: usize,
    refused: usize,
    ran: usize,
    panicked: usize,
    cancelled: usize,
    shut_down: usize,
    expired: usize,
}

fn round(seed: u64, jobs: usize, now: bool) {
    const THREADS: usize = 8;
    let pool = Pool::builder()
        .thread_name("stresspool")
        .max_workers(6)
        .queue_capacity(256)
        .build()
        .unwrap();
    let lanes: Vec<_> = (0..4).map(|_| pool.lane()).collect();
    let drops = DropCounter::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS + 1));
    let per_thread = jobs / THREADS;
    // The closer waits for this many submissions, then shuts the pool down mid-stream.
    // Somewhere in the second half: most jobs race the pool running, the rest race its close.
    let half = (per_thread * THREADS / 2).max(1);
    let shut_at = half + (seed as usize).wrapping_mul(7919) % half;
    let submitted_so_far = Arc::new(AtomicUsize::new(0));

    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let closer = {
            let (pool, start, so_far) = (pool.clone(), start.clone(), submitted_so_far.clone());
            s.spawn(move || {
                start.wait();
                while so_far.load(Ordering::Relaxed) < shut_at {
                    std::thread::yield_now();
                }
                if now {
                    pool.shutdown_now();
                } else {
                    pool.shutdown();
                }
            })
        };
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (pool, lanes, drops, runs, start, so_far) = (
                    &pool,
                    &lanes,
                    &drops,
                    runs.clone(),
                    start.clone(),
                    submitted_so_far.clone(),
                );
                s.spawn(move || {
                    let mut rng =
                        Rng::with_seed(seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let mut tally = Tally::default();
                    let mut kept = Vec::new();
                    start.wait();
                    for _ in 0..per_thread {
                        let r = rng.u64(..);
                        let panics = r.is_multiple_of(53);
                        let (token, runs) = (drops.token(), runs.clone());
                        let job = move || {
                            let _token = token;
                            runs.fetch_add(1, Ordering::Relaxed);
                            if panics {
                                panic!("stress");
                            }
                            1u8
                        };
                        let mut builder = match (r >> 8) % 16 {
                            0 => lanes[(r >> 12) as usize % lanes.len()].job(job),
                            _ => pool.job(job),
                        };
                        builder = builder.priority(
                            [
                                Priority::Interactive,
                                Priority::Normal,
                                Priority::Background,
                            ][(r >> 16) as usize % 3],
                        );
                        if (r >> 20).is_multiple_of(32) {
                            builder = builder
                                .start_timeout(std::time::Duration::from_micros((r >> 24) % 200));
                        }
                        if (r >> 28).is_multiple_of(8) {
                            builder = builder.cancel_on_drop();
                        }
                        let submitted = match (r >> 32) % 3 {
                            0 => builder.try_submit().map_err(|e| drop(e.into_inner())),
                            1 => builder
                                .submit_timeout(std::time::Duration::from_micros(50))
                                .map_err(|e| drop(e.into_inner())),
                            _ => builder.submit().map_err(|e| drop(e.into_inner())),
                        };
                        so_far.fetch_add(1, Ordering::Relaxed);
                        let Ok(handle) = submitted else {
                            tally.refused += 1;
                            continue;
                        };
                        tally.accepted += 1;
                        match (r >> 36) % 8 {
                            0 => {
                                let _ = handle.cancel();
                                kept.push((handle, panics));
                            }
                            1 => drop(handle), // detached (or cancelled, with cancel_on_drop)
                            _ => kept.push((handle, panics)),
                        }
                        if kept.len() > 512 {
                            settle(&mut kept, &mut tally);
                        }
                    }
                    settle(&mut kept, &mut tally);
                    tally
                })
            })
            .collect();
        let tallies = workers.into_iter().map(|w| w.join().unwrap()).collect();
        closer.join().unwrap();
        tallies
    });
    pool.shutdown(); // idempotent; waits for every worker
    drop(lanes);

    let sum = |f: fn(&Tally) -> usize| tallies.iter().map(f).sum::<usize>();
    let (accepted, refused) = (sum(|t| t.accepted), sum(|t| t.refused));
    let s = pool.stats();
    assert_adds_up(s);
    assert_eq!(s.submitted as usize, accepted, "{s:?}");
    assert_eq!(s.rejected as usize, refused, "{s:?}");
    assert_eq!((s.queued, s.running, s.workers), (0, 0, 0), "{s:?}");
    assert_eq!(
        drops.dropped(),
        accepted + refused,
        "every closure dropped exactly once: {s:?}"
    );
    assert_eq!(
        runs.load(Ordering::Relaxed) as u64,
        s.completed + s.panicked,
        "every job that ran was counted once: {s:?}"
    );
    // What the kept handles saw is part of what the pool counted.
    assert!(sum(|t| t.ran) as u64 <= s.completed);
    assert!(sum(|t| t.panicked) as u64 <= s.panicked);
    assert!(sum(|t| t.cancelled) as u64 <= s.cancelled);
    assert!(sum(|t| t.shut_down) as u64 <= s.shut_down);
    assert!(sum(|t| t.expired) as u64 <= s.expired);
    eventually("no worker thread is left", || {
        threads_named("stresspool") == 0
    });
    println!(
        "seed {seed}: {jobs} jobs, {accepted} accepted, {refused} refused, {} completed, {} panicked, {} cancelled, {} expired, {} shut down; lost 0",
        s.completed, s.panicked, s.cancelled, s.expired, s.shut_down
    );
}

/// Waits for the kept handles and checks each outcome against its job.
fn settle(kept: &mut Vec<(offthread::Handle<u8>, bool)>, tally: &mut Tally) {
    for (handle, panics) in kept.drain(..) {
        let cancel_after = handle.cancel(); // a late cancel never changes a resolved outcome
        match handle.wait() {
            Ok(1) => {
                assert!(!panics);
                tally.ran += 1;
            }
            Ok(other) => panic!("job returned {other}"),
            Err(JobError::Panicked(msg)) => {
                assert!(panics && msg == "stress");
                tally.panicked += 1;
            }
            Err(JobError::Cancelled) => {
                assert_ne!(cancel_after, CancelOutcome::Requested);
                tally.cancelled += 1;
            }
            Err(JobError::ShutDown) => tally.shut_down += 1,
            Err(JobError::Expired) => tally.expired += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

#[test]
fn a_million_jobs_under_cancels_panics_drops_and_racing_shutdowns_lose_nothing() {
    // Jobs panic on purpose (about one in 53): keep the default hook from printing each one.
    std::panic::set_hook(Box::new(|info| {
        if info.payload().downcast_ref::<&str>() != Some(&"stress") {
            eprintln!("{info}");
        }
    }));
    let jobs = env("STRESS_JOBS", 1_000_000);
    let rounds = env("STRESS_ROUNDS", 2);
    for r in 0..rounds as u64 {
        // Half the rounds race `shutdown`, half `shutdown_now`.
        round(0x5EED + r, jobs / rounds.max(1), r % 2 == 1);
    }
}
