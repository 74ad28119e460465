//! A proptest state machine over random sequences of submit / try_submit / cancel / drop handle /
//! panicking job / release / shutdown / shutdown_now, with random job options (priority, lane,
//! start deadline, cancel-on-drop). Afterwards: every accepted job resolved exactly once with an
//! outcome the model allows, every refused job came back, and the stats add up.
mod common;
use common::*;
use offthread::{CancelOutcome, Handle, JobError, Pool, Priority, SubmitError, TrySubmitError};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Options of a submitted job.
#[derive(Debug, Clone, Copy)]
struct Opts {
    priority: u8,
    /// 0: the pool; 1 or 2: one of two lanes.
    lane: u8,
    /// 0: none; 1: already passed; 2: a millisecond away.
    deadline: u8,
    cancel_on_drop: bool,
}

fn opts() -> impl Strategy<Value = Opts> {
    (0..3u8, 0..3u8, 0..3u8, any::<bool>()).prop_map(
        |(priority, lane, deadline, cancel_on_drop)| Opts {
            priority,
            lane,
            deadline,
            cancel_on_drop,
        },
    )
}

#[derive(Debug, Clone)]
enum Op {
    Submit {
        panics: bool,
        gated: bool,
        opts: Opts,
    },
    TrySubmit {
        gated: bool,
    },
    Cancel(usize),
    DropHandle(usize),
    Release,
    Shutdown,
    ShutdownNow,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), any::<bool>(), opts())
            .prop_map(|(p, g, opts)| Op::Submit { panics: p && !g, gated: g, opts }),
        3 => any::<bool>().prop_map(|g| Op::TrySubmit { gated: g }),
        2 => (0..64usize).prop_map(Op::Cancel),
        1 => (0..64usize).prop_map(Op::DropHandle),
        1 => Just(Op::Release),
        1 => Just(Op::Shutdown),
        1 => Just(Op::ShutdownNow),
    ]
}

/// What the test knows of one accepted job.
struct Job {
    handle: Option<Handle<usize>>,
    id: usize,
    panics: bool,
    cancel: Option<CancelOutcome>,
    /// Has a start deadline (may resolve `Expired`).
    deadline: bool,
}

fn run(ops: Vec<Op>, workers: usize, capacity: usize) {
    let pool = Pool::builder()
        .max_workers(workers)
        .queue_capacity(capacity)
        .build()
        .unwrap();
    let lanes = [pool.lane(), pool.lane()];
    let gate = Gate::new();
    let runs: Arc<Vec<AtomicUsize>> =
        Arc::new((0..ops.len()).map(|_| AtomicUsize::new(0)).collect());
    let drops = DropCounter::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut refused_back = 0;
    let mut refused = 0;
    let mut closed = false;

    let make = |id: usize, panics: bool, gated: bool| {
        let (gate, runs, token) = (gate.clone(), runs.clone(), drops.token());
        move || {
            let _token = token;
            runs[id].fetch_add(1, Ordering::SeqCst);
            if gated {
                gate.wait();
            }
            if panics {
                panic!("job {id}");
            }
            id
        }
    };

    for (id, op) in ops.iter().cloned().enumerate() {
        match op {
            Op::Submit {
                panics,
                gated,
                opts,
            } => {
                let f = make(id, panics, gated);
                let mut job = match opts.lane {
                    0 => pool.job(f),
                    l => lanes[usize::from(l) - 1].job(f),
                };
                job = job.priority(
                    [
                        Priority::Interactive,
                        Priority::Normal,
                        Priority::Background,
                    ][usize::from(opts.priority)],
                );
                match opts.deadline {
                    1 => job = job.start_deadline(Instant::now()),
                    2 => job = job.start_timeout(Duration::from_millis(1)),
                    _ => {}
                }
                if opts.cancel_on_drop {
                    job = job.cancel_on_drop();
                }
                // Never block the test on a full queue with gated workers: use a timeout.
                match job.submit_timeout(TINY) {
                    Ok(h) => jobs.push(Job {
                        handle: Some(h),
                        id,
                        panics,
                        cancel: None,
                        deadline: opts.deadline != 0,
                    }),
                    Err(e) => {
                        assert!(!closed || e.is_shut_down());
                        refused += 1;
                        drop(e.into_inner());
                        refused_back += 1;
                    }
                }
            }
            Op::TrySubmit { gated } => match pool.try_submit(make(id, false, gated)) {
                Ok(h) => jobs.push(Job {
                    handle: Some(h),
                    id,
                    panics: false,
                    cancel: None,
                    deadline: false,
                }),
                Err(e) => {
                    if closed {
                        assert!(matches!(e, TrySubmitError::ShutDown(_)));
                    }
                    refused += 1;
                    drop(e.into_inner());
                    refused_back += 1;
                }
            },
            Op::Cancel(i) => {
                let n = jobs.len().max(1);
                if let Some(job) = jobs.get_mut(i % n)
                    && let Some(h) = &job.handle
                {
                    let c = h.cancel();
                    if job.cancel.is_none() || c == CancelOutcome::Dequeued {
                        job.cancel = Some(c);
                    }
                }
            }
            Op::DropHandle(i) => {
                let n = jobs.len().max(1);
                if let Some(job) = jobs.get_mut(i % n) {
                    job.handle = None;
                }
            }
            Op::Release => gate.open(),
            Op::Shutdown | Op::ShutdownNow => {
                // Shutting down waits for running jobs: release the gated ones first.
                closed = true;
                gate.open();
                if matches!(op, Op::Shutdown) {
                    pool.shutdown()
                } else {
                    pool.shutdown_now()
                }
                let e: SubmitError<_> = pool.submit(|| 0usize).unwrap_err();
                refused += 1;
                let _probe = e.into_inner();
                refused_back += 1;
            }
        }
    }
    gate.open();
    pool.shutdown();

    let accepted = jobs.len();
    for job in jobs {
        let ran = runs[job.id].load(Ordering::SeqCst);
        assert!(ran <= 1, "job {} ran {ran} times", job.id);
        let Some(h) = job.handle else { continue };
        match h.wait() {
            Ok(v) => {
                assert_eq!((v, ran), (job.id, 1));
                assert!(!job.panics);
                assert_ne!(job.cancel, Some(CancelOutcome::Dequeued));
            }
            Err(JobError::Panicked(msg)) => {
                assert!(job.panics && ran == 1);
                assert_eq!(msg, format!("job {}", job.id));
            }
            Err(JobError::Cancelled) => {
                assert_eq!(job.cancel, Some(CancelOutcome::Dequeued));
                assert_eq!(ran, 0);
            }
            Err(JobError::ShutDown) => assert_eq!(ran, 0),
            Err(JobError::Expired) => assert!(job.deadline && ran == 0),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let s = pool.stats();
    assert_adds_up(s);
    assert_eq!(s.submitted, accepted as u64);
    assert_eq!((s.queued, s.running, s.workers), (0, 0, 0));
    assert_eq!(s.rejected, refused);
    assert_eq!(refused_back, refused);
    // Every closure made was dropped exactly once: run, cancelled, shut down, or refused.
    assert_eq!(
        drops.dropped(),
        accepted + refused as usize
            - (ops
                .iter()
                .filter(|o| matches!(o, Op::Shutdown | Op::ShutdownNow))
                .count())
    );
}

proptest! {
    // 256 cases by default; `PROPTEST_CASES=10000 cargo test --test model` goes deeper.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]
    #[test]
    fn every_job_resolves_exactly_once(
        ops in proptest::collection::vec(op(), 1..40),
        workers in 1..4usize,
        capacity in 1..6usize,
    ) {
        run(ops, workers, capacity);
    }
}
