//! Nested waits: a job that waits on another job of its own pool completes, even on a
//! one-worker pool; a wait on a later job of one's own lane is refused at once.
mod common;
use common::*;
use offthread::{JobError, Pool};
use std::sync::mpsc;

#[test]
fn a_job_waiting_on_a_job_of_its_own_one_worker_pool_completes() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let p = pool.clone();
    let outer = pool
        .submit(move || {
            let inner = p.submit(|| 21).unwrap();
            inner.wait().map(|v| v * 2)
        })
        .unwrap();
    assert_eq!(outer.wait_timeout(HUGE).ok(), Some(Ok(Ok(42))));
    // The lent worker is extra to max_workers only while the outer job waits.
    let s = pool.stats();
    assert!(s.workers <= 2, "{s:?}");
}

/// A job at depth `d` waits on a job at depth `d - 1`, all on one pool.
fn chain(pool: &Pool, depth: u32) -> offthread::Handle<u32> {
    let p = pool.clone();
    pool.submit(move || {
        if depth == 0 {
            return 0;
        }
        chain(&p, depth - 1).wait().unwrap() + 1
    })
    .unwrap()
}

#[test]
fn deep_chains_of_nested_waits_complete_on_one_worker() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    assert_eq!(chain(&pool, 8).wait_timeout(HUGE).ok(), Some(Ok(8)));
}

#[test]
fn nested_waits_with_timeouts_and_many_waiters_complete() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    // More waiting jobs than workers: each one's wait lends a worker.
    let outers: Vec<_> = (0..6)
        .map(|i| {
            let p = pool.clone();
            pool.submit(move || {
                let inner = p.submit(move || i).unwrap();
                inner.wait_timeout(HUGE).ok().unwrap().unwrap()
            })
            .unwrap()
        })
        .collect();
    for (i, h) in outers.into_iter().enumerate() {
        assert_eq!(h.wait_timeout(HUGE).ok(), Some(Ok(i)));
    }
}

#[test]
fn nested_waits_work_on_a_state_pool() {
    let pool = Pool::builder()
        .max_workers(1)
        .build_with_state(|| 5u32)
        .unwrap();
    let p = pool.clone();
    let outer = pool
        .submit(move |n: &mut u32| {
            let inner = p.submit(|m: &mut u32| *m * 2).unwrap();
            *n + inner.wait().unwrap()
        })
        .unwrap();
    assert_eq!(outer.wait_timeout(HUGE).ok(), Some(Ok(15)));
}

#[test]
fn waiting_on_a_later_job_of_ones_own_lane_is_refused_at_once() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let lane = pool.lane();
    let l = lane.clone();
    let (tx, rx) = mpsc::channel();
    let outer = lane
        .submit(move || {
            let later = l.submit(move || tx.send("later ran").unwrap()).unwrap();
            later.wait()
        })
        .unwrap();
    assert_eq!(
        outer.wait_timeout(HUGE).ok(),
        Some(Ok(Err(JobError::WouldDeadlock)))
    );
    // The job waited on is untouched: it runs in its turn.
    assert_eq!(rx.recv_timeout(HUGE), Ok("later ran"));
    // Waiting on a job of *another* lane is an ordinary nested wait.
    let other = pool.lane();
    let outer = lane
        .submit(move || other.submit(|| 3).unwrap().wait())
        .unwrap();
    assert_eq!(outer.wait_timeout(HUGE).ok(), Some(Ok(Ok(3))));
}
