//! Serial lanes: one at a time, in submission order, on the shared pool; cheap; bounded; and
//! correct under cancel, expiry and shutdown.
mod common;
use common::*;
use offthread::{CancelOutcome, JobError, Pool};
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

/// Per-lane bookkeeping a lane job checks on entry and exit.
struct Track {
    /// A job of this lane is running.
    active: AtomicBool,
    /// Sequence numbers in the order the jobs ran.
    ran: Mutex<Vec<usize>>,
}

impl Track {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            active: AtomicBool::new(false),
            ran: Mutex::new(Vec::new()),
        })
    }
    /// The body of a lane job: fails if another job of the lane overlaps it.
    fn run(&self, seq: usize, spin: u32) {
        assert!(
            !self.active.swap(true, Ordering::SeqCst),
            "two jobs of one lane overlapped"
        );
        self.ran.lock().unwrap().push(seq);
        for _ in 0..spin {
            std::thread::yield_now();
        }
        self.active.store(false, Ordering::SeqCst);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        .. ProptestConfig::default()
    })]

    /// Random submissions across many lanes, with random cancels: within each lane, jobs never
    /// overlap and run in submission order; a cancelled job never runs and the lane goes on.
    #[test]
    fn lanes_run_one_at_a_time_in_order(
        ops in proptest::collection::vec((0usize..12, 0u32..4, any::<bool>()), 1..200),
        workers in 1usize..5,
    ) {
        let pool = Pool::builder().max_workers(workers).build().unwrap();
        let lanes: Vec<_> = (0..12).map(|_| (pool.lane(), Track::new())).collect();
        let mut expected: Vec<Vec<usize>> = vec![Vec::new(); 12];
        let mut handles = Vec::new();
        for (seq, &(lane, spin, cancel)) in ops.iter().enumerate() {
            let (l, track) = &lanes[lane];
            let track = track.clone();
            let h = l.submit(move || track.run(seq, spin)).unwrap();
            if cancel && h.cancel() == CancelOutcome::Dequeued {
                prop_assert_eq!(h.wait(), Err(JobError::Cancelled));
            } else {
                expected[lane].push(seq);
                handles.push(h);
            }
        }
        for h in handles {
            prop_assert_eq!(h.wait(), Ok(()));
        }
        for (i, (_, track)) in lanes.iter().enumerate() {
            prop_assert_eq!(&*track.ran.lock().unwrap(), &expected[i]);
        }
        pool.shutdown();
        assert_adds_up(pool.stats());
    }
}

#[test]
fn thousands_of_lanes_share_a_small_pool() {
    let pool = Pool::builder().max_workers(4).build().unwrap();
    let lanes: Vec<_> = (0..2000).map(|_| (pool.lane(), Track::new())).collect();
    let mut handles = Vec::new();
    for seq in 0..3 {
        for (lane, track) in &lanes {
            let track = track.clone();
            handles.push(lane.submit(move || track.run(seq, 0)).unwrap());
        }
    }
    for h in handles {
        h.wait().unwrap();
    }
    for (_, track) in &lanes {
        assert_eq!(*track.ran.lock().unwrap(), [0, 1, 2]);
    }
    assert!(pool.stats().workers <= 4);
    // Idle lanes hold no worker: all four can be taken by other work at once.
    let gate = Gate::new();
    let busy = occupy(&pool, 4, &gate);
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn a_busy_lane_does_not_hold_up_other_work() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let lane = pool.lane();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let head = lane
        .submit(move || {
            tx.send(()).unwrap();
            g.wait();
        })
        .unwrap();
    rx.recv_timeout(HUGE).unwrap();
    let behind = lane.submit(|| "behind").unwrap();
    // The lane's second job waits; the pool's other worker serves everyone else.
    for i in 0..10 {
        assert_eq!(
            pool.submit(move || i).unwrap().wait_timeout(HUGE).ok(),
            Some(Ok(i))
        );
    }
    assert!(!behind.is_finished());
    gate.open();
    head.wait().unwrap();
    assert_eq!(behind.wait(), Ok("behind"));
}

#[test]
fn cancel_or_expiry_inside_a_lane_lets_the_lane_go_on() {
    let pool = Pool::new();
    let lane = pool.lane();
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    let order = Arc::new(Mutex::new(Vec::new()));
    let g = gate.clone();
    let o = order.clone();
    let head = lane
        .submit(move || {
            tx.send(()).unwrap();
            g.wait();
            o.lock().unwrap().push("head");
        })
        .unwrap();
    rx.recv_timeout(HUGE).unwrap();
    let o = order.clone();
    let cancelled = lane
        .submit(move || o.lock().unwrap().push("cancelled"))
        .unwrap();
    let o = order.clone();
    let expired = lane
        .job(move || o.lock().unwrap().push("expired"))
        .start_timeout(TINY)
        .submit()
        .unwrap();
    let o = order.clone();
    let last = lane.submit(move || o.lock().unwrap().push("last")).unwrap();
    assert_eq!(cancelled.cancel(), CancelOutcome::Dequeued);
    assert_eq!(cancelled.wait(), Err(JobError::Cancelled));
    assert_eq!(
        expired.wait_timeout(HUGE).ok(),
        Some(Err(JobError::Expired))
    );
    gate.open();
    head.wait().unwrap();
    last.wait().unwrap();
    assert_eq!(*order.lock().unwrap(), ["head", "last"]);
    pool.shutdown();
    let s = pool.stats();
    assert_eq!((s.cancelled, s.expired, s.completed), (1, 1, 2));
    assert_adds_up(s);
}

#[test]
fn lane_jobs_count_against_the_queue_capacity() {
    let pool = one_worker(2);
    let lane = pool.lane();
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let a = lane.submit(|| 1).unwrap(); // in the queue (the lane's head)
    let b = lane.submit(|| 2).unwrap(); // in the lane
    assert_eq!(pool.stats().queued, 2);
    assert!(lane.try_submit(|| 3).unwrap_err().is_full());
    assert!(pool.try_submit(|| 3).unwrap_err().is_full());
    assert_eq!(b.cancel(), CancelOutcome::Dequeued);
    let c = lane.try_submit(|| 3).expect("cancel freed a slot");
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!((a.wait(), c.wait()), (Ok(1), Ok(3)));
}

#[test]
fn shutdown_now_resolves_every_waiting_lane_job() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let (running, queued) = (pool.lane(), pool.lane());
    let gate = Gate::new();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    let head = running
        .submit(move || {
            tx.send(()).unwrap();
            g.wait();
            "head"
        })
        .unwrap();
    rx.recv_timeout(HUGE).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let r = ran.clone();
        waiting.push(
            running
                .submit(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                    "x"
                })
                .unwrap(),
        );
    }
    // A second lane whose head is still queued (the other worker is held too).
    let busy = occupy(&pool, 1, &gate);
    for _ in 0..3 {
        let r = ran.clone();
        waiting.push(
            queued
                .submit(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                    "y"
                })
                .unwrap(),
        );
    }
    let closer = std::thread::spawn({
        let pool = pool.clone();
        move || pool.shutdown_now()
    });
    for h in waiting {
        assert_eq!(h.wait_timeout(HUGE).ok(), Some(Err(JobError::ShutDown)));
    }
    gate.open();
    closer.join().unwrap();
    assert_eq!(head.wait(), Ok("head"));
    busy.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let s = pool.stats();
    assert_eq!(s.shut_down, 6);
    assert_adds_up(s);
}

#[test]
fn state_lanes_run_in_order_with_worker_state() {
    let pool = Pool::builder()
        .max_workers(3)
        .build_with_state(|| 0u64)
        .unwrap();
    let lane = pool.lane();
    let track = Track::new();
    let handles: Vec<_> = (0..50)
        .map(|seq| {
            let track = track.clone();
            lane.submit(move |n: &mut u64| {
                *n += 1;
                track.run(seq, 1);
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        h.wait().unwrap();
    }
    assert_eq!(*track.ran.lock().unwrap(), (0..50).collect::<Vec<_>>());
}

#[test]
fn every_submission_verb_of_a_lane_keeps_its_order() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let lane = pool.lane();
    let log = Arc::new(Mutex::new(Vec::new()));
    let push = |i: usize| {
        let log = log.clone();
        move || log.lock().unwrap().push(i)
    };
    let far = std::time::Instant::now() + HUGE;
    let handles = vec![
        lane.submit(push(0)).unwrap(),
        lane.try_submit(push(1)).unwrap(),
        lane.submit_timeout(push(2), HUGE).unwrap(),
        lane.submit_deadline(push(3), far).unwrap(),
        pollster::block_on(lane.submit_async(push(4))).unwrap(),
    ];
    for h in handles {
        h.wait().unwrap();
    }
    assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 4]);

    let state = Pool::builder().build_with_state(|| 10usize).unwrap();
    let lane = state.lane();
    let a = lane.submit_timeout(|n: &mut usize| *n + 1, HUGE).unwrap();
    let b = pollster::block_on(lane.submit_async(|n: &mut usize| *n + 2)).unwrap();
    assert_eq!((a.wait(), b.wait()), (Ok(11), Ok(12)));
}
