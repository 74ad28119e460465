//! The submission family: submit, try_submit, submit_timeout/deadline; backpressure; every
//! refusal hands the job back.
mod common;
use common::*;
use offthread::{Pool, SubmitTimeoutError, TrySubmitError};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn submit_returns_a_handle_that_resolves_to_the_value() {
    let pool = Pool::new();
    assert_eq!(pool.submit(|| 40 + 2).unwrap().wait(), Ok(42));
}

#[test]
fn try_submit_on_a_full_queue_hands_the_job_back() {
    let pool = one_worker(2);
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let queued: Vec<_> = (0..2)
        .map(|i| pool.try_submit(move || i).unwrap())
        .collect();
    let counter = DropCounter::new();
    let token = counter.token();
    match pool.try_submit(move || {
        drop(token);
        99
    }) {
        Err(TrySubmitError::Full(job)) => {
            assert_eq!(counter.dropped(), 0, "a refused job must not be dropped");
            assert_eq!(job(), 99);
            assert_eq!(counter.dropped(), 1);
        }
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(pool.stats().rejected, 1);
    gate.open();
    for (i, h) in queued.into_iter().enumerate() {
        assert_eq!(h.wait(), Ok(i));
    }
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn submit_waits_for_room_then_succeeds() {
    let pool = one_worker(1);
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let first = pool.submit(|| 1).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        let pool = &pool;
        let blocked = s.spawn(move || {
            tx.send(()).unwrap();
            pool.submit(|| 2).unwrap().wait()
        });
        rx.recv().unwrap();
        // The queue never holds more than its capacity while the submitter waits.
        assert!(pool.stats().queued <= 1);
        gate.open();
        assert_eq!(blocked.join().unwrap(), Ok(2));
    });
    assert_eq!(first.wait(), Ok(1));
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

#[test]
fn submit_timeout_on_a_full_queue_times_out_and_hands_back() {
    let pool = one_worker(1);
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let _queued = pool.submit(|| ()).unwrap();
    match pool.submit_timeout(|| 5, TINY) {
        Err(SubmitTimeoutError::Timeout(job)) => assert_eq!(job(), 5),
        other => panic!("expected Timeout, got {other:?}"),
    }
    match pool.submit_deadline(|| 6, Instant::now()) {
        Err(e @ SubmitTimeoutError::Timeout(_)) => {
            assert!(e.is_timeout());
            assert_eq!(e.to_string(), "timed out waiting for room in the queue");
            assert_eq!(e.into_inner()(), 6);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    gate.open();
    busy.into_iter().for_each(|h| h.wait().unwrap());
    // With room, a timeout submit succeeds; a huge timeout means no limit, not an overflow.
    let h = pool.submit_timeout(|| 7, std::time::Duration::MAX).unwrap();
    assert_eq!(h.wait(), Ok(7));
}

#[test]
fn every_submit_flavour_after_shutdown_hands_the_job_back() {
    let pool = Pool::new();
    pool.shutdown();
    assert_eq!(pool.submit(|| 1).unwrap_err().into_inner()(), 1);
    let e = pool.try_submit(|| 2).unwrap_err();
    assert!(e.is_shut_down());
    assert_eq!(e.into_inner()(), 2);
    let e = pool.submit_timeout(|| 3, HUGE).unwrap_err();
    assert!(e.is_shut_down());
    assert_eq!(e.into_inner()(), 3);
    let e = pollster::block_on(pool.submit_async(|| 4)).unwrap_err();
    assert_eq!(e.to_string(), "submitting on a pool that was shut down");
    assert_eq!(e.into_inner()(), 4);
    assert_eq!(pool.stats().rejected, 4);
}

#[test]
fn shutdown_wakes_a_submitter_blocked_on_a_full_queue_and_hands_back() {
    let pool = one_worker(1);
    let gate = Gate::new();
    let busy = occupy(&pool, 1, &gate);
    let queued = pool.submit(|| ()).unwrap();
    thread::scope(|s| {
        let p = pool.clone();
        let blocked = s.spawn(move || p.submit(|| 9).map(|_| ()).unwrap_err().into_inner()());
        // shutdown_now frees the queue *and* closes intake: the blocked submitter must get
        // its job back, not sneak it into a closing pool.
        let closer = s.spawn(|| pool.shutdown_now());
        assert_eq!(blocked.join().unwrap(), 9);
        gate.open();
        closer.join().unwrap();
    });
    assert!(queued.wait().unwrap_err().is_shut_down());
    busy.into_iter().for_each(|h| h.wait().unwrap());
}

/// Runs `threads` submitter threads, each doing `body(pool, t)`, and returns the sum of their
/// results. A watchdog, not a join: a lost wakeup fails the test instead of hanging it.
fn submitters(pool: &Pool, threads: u64, body: fn(&Pool, u64) -> u64) -> u64 {
    let (done_tx, done) = mpsc::channel();
    for t in 0..threads {
        let (pool, done_tx) = (pool.clone(), done_tx.clone());
        thread::spawn(move || done_tx.send(body(&pool, t)).unwrap());
    }
    (0..threads)
        .map(|_| {
            done.recv_timeout(HUGE)
                .expect("a submitter hung: lost wakeup")
        })
        .sum()
}

#[test]
fn many_threads_submitting_through_a_small_queue_lose_nothing() {
    let pool = Pool::builder()
        .max_workers(2)
        .queue_capacity(4)
        .build()
        .unwrap();
    // Each thread queues 500 jobs, then waits for all of them.
    let total = submitters(&pool, 4, |pool, t| {
        let handles: Vec<_> = (0..500u64)
            .map(|i| pool.submit(move || t * 1000 + i).unwrap())
            .collect();
        handles.into_iter().map(|h| h.wait().unwrap()).sum()
    });
    let expected: u64 = (0..4u64)
        .map(|t| (0..500).map(|i| t * 1000 + i).sum::<u64>())
        .sum();
    assert_eq!(total, expected);
    pool.shutdown();
    let s = pool.stats();
    assert_eq!((s.submitted, s.completed), (2000, 2000));
    assert_adds_up(s);
}

#[test]
fn blocked_submitters_never_miss_a_freed_slot() {
    // Capacity 1, one worker, four submitters that block on every submit: the tightest race
    // between a submitter giving up its spin and a worker freeing the slot.
    let pool = one_worker(1);
    let total = submitters(&pool, 4, |pool, t| {
        (0..3000u64)
            .map(|i| pool.submit(move || t + i).unwrap().wait().unwrap())
            .sum()
    });
    assert_eq!(
        total,
        (0..4u64)
            .map(|t| (0..3000).map(|i| t + i).sum::<u64>())
            .sum::<u64>()
    );
}

#[test]
fn stats_give_queue_wait_and_run_time_percentiles_of_the_jobs_that_ran() {
    watchdog("percentiles", || {
        let pool = one_worker(4);
        assert_eq!(
            pool.stats().run_time,
            Default::default(),
            "no job has ended yet"
        );
        let gate = Gate::new();
        let g = gate.clone();
        // The first job holds the only worker until the second is queued, then runs 10 ms more:
        // the second waits at least those 10 ms, whatever the scheduler does.
        let first = pool
            .submit(move || {
                g.wait();
                std::thread::sleep(Duration::from_millis(10));
            })
            .unwrap();
        let second = pool.submit(|| ()).unwrap();
        gate.open();
        first.wait().unwrap();
        second.wait().unwrap();
        // Refused and cancelled jobs never ran: they are not measured.
        let g2 = Gate::new();
        let busy = occupy(&pool, 1, &g2);
        pool.submit(|| ()).unwrap().cancel();
        g2.open();
        busy.into_iter().for_each(|h| h.wait().unwrap());
        pool.shutdown();

        let s = pool.stats();
        let (wait, run) = (s.queue_wait, s.run_time);
        assert_eq!((wait.count, run.count), (3, 3), "{s:?}");
        let ten = Duration::from_millis(10);
        assert!(run.max >= ten && wait.max >= ten, "{s:?}");
        for p in [wait, run] {
            assert!(p.p50 <= p.p99 && p.p99 <= p.max, "{p:?}");
        }
    });
}
